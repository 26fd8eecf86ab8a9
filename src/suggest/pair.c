/*
 * pair.c - which source tensor fills each target, and how sure that is.
 *
 *   1. names: a target and a source whose tokens (collect.c) are the same,
 *      each the only such one of its kind and shape for the other: certain;
 *   2. shapes: the only unpaired tensor of its kind and sorted dims on both
 *      sides;
 *   3. order: a sequence alignment (Needleman-Wunsch, gaps free) of the
 *      remaining tensors of the two files in file order, a match scoring
 *      1 + 3 x name similarity, allowed only between compatible tensors;
 *   4. leftovers (tensors the two files keep in different orders, like a
 *      ResNet shortcut before or after its block): the most similar
 *      compatible unpaired source, next to the source of the target before.
 *
 * Between 1 and 2, whole layers are paired first (layers.c).
 * Confidence of a target paired by 3 or 4: certain when it has one
 * compatible source at all; likely when names single it out by a margin, or
 * when both its neighbours in the file are paired with the sources right
 * beside its own (the two orders agree around it); else guess.
 */
#include "suggest_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NW_MAX_CELLS ((size_t)4 << 20)

void sg_link(graft_suggestion *s, size_t ti, size_t si)
{
    s->dst.v[ti].pair = (long)si;
    s->src.v[si].pair = (long)ti;
}

int sg_set_conf(sg_t *t, int conf, const char *reason, bool own, graft_ctx *ctx)
{
    free(t->reason_owned);
    t->reason_owned = NULL;
    t->conf = conf;
    t->reason = reason;
    if (own) {
        if (!(t->reason_owned = graft_strdup(ctx, reason))) return graft_error_oom(ctx, "reason");
        t->reason = t->reason_owned;
    }
    return 0;
}

/* Free tensors of side b compatible with a (and with the same tokens when
 * names): how many, and the last one. */
static size_t count_compatible(const sg_t *a, const sg_side *b, bool names, bool only_free,
                               size_t *last)
{
    size_t n = 0;
    for (size_t j = 0; j < b->n; j++) {
        const sg_t *y = &b->v[j];
        if (!sg_live(y) || (only_free && y->pair >= 0) || !sg_compatible(a, y)) continue;
        if (names && !sg_same_tokens(a, y)) continue;
        n++;
        *last = j;
    }
    return n;
}

static int by_names(graft_suggestion *s, graft_ctx *ctx)
{
    for (size_t i = 0; i < s->dst.n; i++) {
        sg_t *t = &s->dst.v[i];
        size_t j = 0, back = 0;
        if (!sg_unpaired(t) || count_compatible(t, &s->src, true, true, &j) != 1) continue;
        if (count_compatible(&s->src.v[j], &s->dst, true, true, &back) != 1 || back != i) continue;
        sg_link(s, i, j);
        if (sg_set_conf(t, GRAFT_SUGGEST_CERTAIN, "names, kind and shape agree", false, ctx) < 0)
            return -1;
    }
    return 0;
}

static int by_shapes(graft_suggestion *s, graft_ctx *ctx)
{
    bool more = true;
    while (more) {
        more = false;
        for (size_t i = 0; i < s->dst.n; i++) {
            sg_t *t = &s->dst.v[i];
            size_t j = 0, back = 0, any = 0;
            if (!sg_unpaired(t) || count_compatible(t, &s->src, false, true, &j) != 1) continue;
            if (count_compatible(&s->src.v[j], &s->dst, false, true, &back) != 1 || back != i)
                continue;
            sg_link(s, i, j);
            more = true;
            bool alone = count_compatible(t, &s->src, false, false, &any) == 1 &&
                         count_compatible(&s->src.v[j], &s->dst, false, false, &any) == 1;
            if (sg_set_conf(t, alone ? GRAFT_SUGGEST_CERTAIN : GRAFT_SUGGEST_LIKELY,
                            alone ? "the only tensor of its kind and shape on both sides"
                                  : "the only unpaired tensor of its kind and shape",
                            false, ctx) < 0)
                return -1;
        }
    }
    return 0;
}

int sg_align(size_t na, size_t nb, float (*score)(void *, size_t, size_t),
             void (*match)(void *, size_t, size_t), void *arg, graft_ctx *ctx)
{
    float *h;
    size_t w = nb + 1;
    if (!na || !nb || (na + 1) * w > NW_MAX_CELLS) return 0;
    if (!(h = graft_calloc(ctx, (na + 1) * w, sizeof *h))) return graft_error_oom(ctx, "alignment");
    for (size_t a = 1; a <= na; a++)
        for (size_t b = 1; b <= nb; b++) {
            float up = h[(a - 1) * w + b], left = h[a * w + b - 1];
            float best = up > left ? up : left, sc = score(arg, a - 1, b - 1);
            if (sc > 0 && h[(a - 1) * w + b - 1] + sc > best) best = h[(a - 1) * w + b - 1] + sc;
            h[a * w + b] = best;
        }
    for (size_t a = na, b = nb; a > 0 && b > 0;) {
        float sc = score(arg, a - 1, b - 1);
        if (sc > 0 && h[a * w + b] == h[(a - 1) * w + b - 1] + sc) {
            match(arg, a - 1, b - 1);
            a--, b--;
        } else if (h[a * w + b] == h[(a - 1) * w + b]) {
            a--;
        } else {
            b--;
        }
    }
    free(h);
    return 0;
}

typedef struct tensor_lists {
    graft_suggestion *s;
    size_t *ft, *fs;
} tensor_lists;

static float tensor_score(void *arg, size_t a, size_t b)
{
    const tensor_lists *x = arg;
    const sg_t *t = &x->s->dst.v[x->ft[a]], *y = &x->s->src.v[x->fs[b]];
    return sg_compatible(t, y) ? (float)(1.0 + 3.0 * sg_similarity(t, y, true)) : -1.0f;
}

static void tensor_match(void *arg, size_t a, size_t b)
{
    tensor_lists *x = arg;
    sg_link(x->s, x->ft[a], x->fs[b]);
}

/* Sequence alignment of the unpaired tensors in file order. */
static int by_order(graft_suggestion *s, graft_ctx *ctx)
{
    tensor_lists x = {.s = s};
    size_t nt = 0, ns = 0;
    int rc;
    x.ft = graft_malloc(ctx, (s->dst.n + 1) * sizeof *x.ft);
    x.fs = graft_malloc(ctx, (s->src.n + 1) * sizeof *x.fs);
    if (!x.ft || !x.fs) {
        rc = graft_error_oom(ctx, "alignment");
    } else {
        for (size_t i = 0; i < s->dst.n; i++)
            if (sg_unpaired(&s->dst.v[i])) x.ft[nt++] = i;
        for (size_t j = 0; j < s->src.n; j++)
            if (sg_unpaired(&s->src.v[j])) x.fs[ns++] = j;
        rc = sg_align(nt, ns, tensor_score, tensor_match, &x, ctx);
    }
    free(x.ft);
    free(x.fs);
    return rc;
}

/* Tensors left over: most similar compatible unpaired source, preferring the
 * one right after the source of the target before. */
static void leftovers(graft_suggestion *s)
{
    long prev_src = -1;
    for (size_t i = 0; i < s->dst.n; i++) {
        sg_t *t = &s->dst.v[i];
        if (!sg_live(t)) continue;
        if (t->pair >= 0) {
            prev_src = t->pair;
            continue;
        }
        double best = -1;
        long pick = -1;
        for (size_t j = 0; j < s->src.n; j++) {
            const sg_t *y = &s->src.v[j];
            if (!sg_unpaired(y) || !sg_compatible(t, y)) continue;
            double sc = sg_similarity(t, y, true);
            long k = prev_src + 1;
            while (k >= 0 && (size_t)k < s->src.n && !sg_live(&s->src.v[k])) k++;
            if (k == (long)j) sc += 0.5;
            if (sc > best) best = sc, pick = (long)j;
        }
        if (pick >= 0) {
            sg_link(s, i, (size_t)pick);
            prev_src = pick;
        }
    }
}

/* The next live tensor of side v after (dir 1) or before (dir -1) index i. */
static long step(const sg_side *v, long i, int dir)
{
    for (i += dir; i >= 0 && (size_t)i < v->n; i += dir)
        if (sg_live(&v->v[i])) return i;
    return -1;
}

/* Do the neighbours of target i in file order pair with the sources next to
 * its own?  1 yes, 0 no, -1 no such neighbour. */
static int neighbour_agrees(const graft_suggestion *s, size_t i, int dir)
{
    long n = step(&s->dst, (long)i, dir);
    if (n < 0 || s->dst.v[n].pair < 0) return -1;
    return step(&s->src, s->dst.v[i].pair, dir) == s->dst.v[n].pair;
}

static int judge(graft_suggestion *s, size_t i, graft_ctx *ctx)
{
    sg_t *t = &s->dst.v[i];
    const sg_t *y = &s->src.v[t->pair];
    size_t any = 0, cands = count_compatible(t, &s->src, false, false, &any);
    size_t same = count_compatible(t, &s->src, true, false, &any);
    double mine = sg_similarity(t, y, false), alt = -1;
    const char *alt_name = NULL;
    char why[512];
    if (cands == 1)
        return sg_set_conf(t, GRAFT_SUGGEST_CERTAIN, "the only source of its kind and shape",
                           false, ctx);
    if (same == 1 && sg_same_tokens(t, y))
        return sg_set_conf(t, GRAFT_SUGGEST_CERTAIN, "names, kind and shape agree", false, ctx);
    for (size_t j = 0; j < s->src.n; j++) {
        const sg_t *z = &s->src.v[j];
        if ((long)j == t->pair || !sg_live(z) || !sg_compatible(t, z)) continue;
        double sim = sg_similarity(t, z, false);
        if (sim > alt) alt = sim, alt_name = z->name;
    }
    if (mine - alt >= 0.2) {
        snprintf(why, sizeof why, "names single it out among %zu sources of its shape", cands);
        return sg_set_conf(t, GRAFT_SUGGEST_LIKELY, why, true, ctx);
    }
    if (alt - mine >= 0.2) {
        snprintf(why, sizeof why, "paired by file order, but its name is closer to %s", alt_name);
        return sg_set_conf(t, GRAFT_SUGGEST_GUESS, why, true, ctx);
    }
    int before = neighbour_agrees(s, i, -1), after = neighbour_agrees(s, i, 1);
    if ((before == 1 && after != 0) || (after == 1 && before != 0)) {
        snprintf(why, sizeof why,
                 "file order: its neighbours pair with the sources beside it (%zu sources of "
                 "its shape)", cands);
        return sg_set_conf(t, GRAFT_SUGGEST_LIKELY, why, true, ctx);
    }
    snprintf(why, sizeof why, "paired by order alone among %zu sources of its shape", cands);
    return sg_set_conf(t, GRAFT_SUGGEST_GUESS, why, true, ctx);
}

int sg_pair(graft_suggestion *s, graft_ctx *ctx)
{
    if (by_names(s, ctx) < 0 || sg_pair_layers(s, ctx) < 0 || by_shapes(s, ctx) < 0 ||
        by_order(s, ctx) < 0)
        return -1;
    leftovers(s);
    for (size_t i = 0; i < s->dst.n; i++) {
        sg_t *t = &s->dst.v[i];
        int rc = 0;
        if (!t->ignore && t->pair < 0 && (!sg_is_float(t->t->dtype) || t->t->ndim == 0)) {
            /* torch.onnx.export's Constant nodes (a Clip's bounds): one pattern */
            const char *c = strstr(t->name, "Constant");
            bool node_const = c && (c == t->name || c[-1] == '/') && strstr(c, "_output_0") &&
                              !strcmp(strstr(c, "_output_0"), "_output_0");
            t->ignore = node_const && t->t->ndim == 0 ? "(?:^|/)Constant(?:_\\d+)?_output_0$" : "";
            t->ignore_why = t->t->ndim ? "an integer tensor without a source: not a weight"
                                       : "a scalar without a source: a graph constant, not a weight";
        }
        if (t->ignore)
            rc = sg_set_conf(t, GRAFT_SUGGEST_CERTAIN, t->ignore_why, false, ctx);
        else if (t->pair < 0)
            rc = sg_set_conf(t, GRAFT_SUGGEST_UNPAIRED,
                             t->nd > SG_MAXD ? "rank above 8" : "no source of its kind and shape left",
                             false, ctx);
        else if (t->conf < 0)
            rc = judge(s, i, ctx);
        if (rc < 0) return -1;
    }
    if (sg_split_follow(s, ctx) < 0) return -1;
    for (size_t j = 0; j < s->src.n; j++) {
        sg_t *y = &s->src.v[j];
        if (!y->ignore && y->pair < 0 && !sg_is_float(y->t->dtype)) {
            y->ignore = "";
            y->ignore_why = "an integer tensor no target takes: not a weight";
        }
    }
    return 0;
}
