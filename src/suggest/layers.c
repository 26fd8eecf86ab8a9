/*
 * layers.c - pairing whole layers: the unpaired tensors of each side
 * grouped by name prefix (everything before the last '/' or '.'), each
 * group with its signature (the kinds and sorted dims of its tensors).
 *
 *   1. a signature found once on each side: certain;
 *   2. extension: the layer after (before) a paired layer pairs with the
 *      layer after (before) its source when their signatures agree, so a
 *      block the two files list in different orders (a ResNet shortcut
 *      first in Keras, last in torchvision) stays together: likely;
 *   3. a sequence alignment of the layers left (sg_align), then the most
 *      similar left over: certain when one source layer has the signature,
 *      likely when names single it out, else guess;
 * then 2 again from the new pairs.  Inside a layer pair, tensors pair by
 * kind and shape in file order and take the layer's confidence.
 */
#include "suggest_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct layer {
    size_t *mem;    /* tensor indices, file order */
    size_t n, cap;
    char *sig;
    long pair;
    bool pre;       /* paired before the alignment (unique or extended) */
} layer;

typedef struct lside {
    sg_side *side;
    layer *v;
    size_t n, cap;
} lside;

typedef struct lctx {
    graft_suggestion *s;
    lside t, src;
    size_t *ft, *fs;  /* unpaired layers, for the alignment */
    graft_ctx *ctx;
} lctx;

/* At most this many layers of one shape between two known pairs are told
 * apart by their order (likely); more are a guess. */
#define SG_ORDER_MAX 4

static size_t prefix_len(const char *name)
{
    const char *a = strrchr(name, '/'), *b = strrchr(name, '.');
    const char *p = a > b ? a : b;
    return p ? (size_t)(p - name) : strlen(name);
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int build(lside *L, sg_side *side, graft_ctx *ctx)
{
    L->side = side;
    for (size_t i = 0; i < side->n; i++) {
        const sg_t *x = &side->v[i];
        if (!sg_unpaired(x)) continue;
        size_t pl = prefix_len(x->name), k = L->n;
        /* layers are contiguous in practice: look back a little first */
        for (size_t q = L->n; q-- > 0 && k == L->n;) {
            const char *f = side->v[L->v[q].mem[0]].name;
            if (prefix_len(f) == pl && !strncmp(f, x->name, pl)) k = q;
        }
        if (k == L->n) {
            if (L->n == L->cap) {
                size_t cap = L->cap ? 2 * L->cap : 64;
                layer *nv = graft_realloc(ctx, L->v, cap * sizeof *nv);
                if (!nv) return graft_error_oom(ctx, "layers");
                L->v = nv, L->cap = cap;
            }
            memset(&L->v[L->n++], 0, sizeof *L->v);
            L->v[k].pair = -1;
        }
        layer *y = &L->v[k];
        if (y->n == y->cap) {
            size_t cap = y->cap ? 2 * y->cap : 4;
            size_t *nm = graft_realloc(ctx, y->mem, cap * sizeof *nm);
            if (!nm) return graft_error_oom(ctx, "layers");
            y->mem = nm, y->cap = cap;
        }
        y->mem[y->n++] = i;
    }
    /* signatures: "kind:d,d,d" of each member, sorted, joined by ';' */
    for (size_t k = 0; k < L->n; k++) {
        layer *y = &L->v[k];
        char **parts = graft_calloc(ctx, y->n, sizeof *parts);
        size_t total = 1;
        if (!parts) return graft_error_oom(ctx, "layers");
        for (size_t m = 0; m < y->n; m++) {
            const sg_t *x = &side->v[y->mem[m]];
            char buf[256];
            size_t len = (size_t)snprintf(buf, sizeof buf, "%d:", (int)x->kind);
            for (uint32_t d = 0; d < x->nd && len < sizeof buf - 24; d++)
                if (x->sd[d] != 1) len += (size_t)snprintf(buf + len, sizeof buf - len, "%lld,", (long long)x->sd[d]);
            parts[m] = graft_strdup(ctx, buf);
            if (!parts[m]) {
                for (size_t q = 0; q < m; q++) free(parts[q]);
                free(parts);
                return graft_error_oom(ctx, "layers");
            }
            total += strlen(buf) + 1;
        }
        qsort(parts, y->n, sizeof *parts, cmp_cstr);
        y->sig = graft_malloc(ctx, total);
        if (y->sig) {
            y->sig[0] = '\0';
            for (size_t m = 0; m < y->n; m++) strcat(strcat(y->sig, parts[m]), ";");
        }
        for (size_t m = 0; m < y->n; m++) free(parts[m]);
        free(parts);
        if (!y->sig) return graft_error_oom(ctx, "layers");
    }
    return 0;
}

static void lside_free(lside *L)
{
    for (size_t k = 0; k < L->n; k++) free(L->v[k].mem), free(L->v[k].sig);
    free(L->v);
}

static size_t count_sig(const lside *L, const char *sig, bool only_free)
{
    size_t n = 0;
    for (size_t k = 0; k < L->n; k++) n += !strcmp(L->v[k].sig, sig) && (!only_free || L->v[k].pair < 0);
    return n;
}

static double layer_sim(const lctx *c, size_t a, size_t b, bool near)
{
    return sg_similarity(&c->s->dst.v[c->t.v[a].mem[0]], &c->s->src.v[c->src.v[b].mem[0]], near);
}

/* Pair layer a with b, and their tensors by kind and shape in order. */
static int join(lctx *c, size_t a, size_t b, int conf, const char *why, bool own)
{
    layer *x = &c->t.v[a], *y = &c->src.v[b];
    x->pair = (long)b, y->pair = (long)a;
    for (size_t m = 0; m < x->n; m++) {
        sg_t *t = &c->s->dst.v[x->mem[m]];
        for (size_t q = 0; q < y->n; q++) {
            size_t j = y->mem[q];
            if (!sg_unpaired(&c->s->src.v[j]) || !sg_compatible(t, &c->s->src.v[j])) continue;
            sg_link(c->s, x->mem[m], j);
            if (sg_set_conf(t, conf, why, own, c->ctx) < 0) return -1;
            break;
        }
    }
    return 0;
}

static int unique(lctx *c)
{
    for (size_t a = 0; a < c->t.n; a++) {
        const char *sig = c->t.v[a].sig;
        if (count_sig(&c->t, sig, false) != 1 || count_sig(&c->src, sig, false) != 1) continue;
        for (size_t b = 0; b < c->src.n; b++)
            if (!strcmp(c->src.v[b].sig, sig) &&
                join(c, a, b, GRAFT_SUGGEST_CERTAIN,
                     "its layer is the only one of its kinds and shapes on both sides", false) < 0)
                return -1;
    }
    return 0;
}

static int extend(lctx *c)
{
    bool more = true;
    char why[512];
    while (more) {
        more = false;
        for (size_t a = 0; a < c->t.n; a++) {
            long b = c->t.v[a].pair;
            if (b < 0) continue;
            for (int dir = -1; dir <= 1; dir += 2) {
                long na = (long)a + dir, nb = b + dir;
                if (na < 0 || nb < 0 || (size_t)na >= c->t.n || (size_t)nb >= c->src.n) continue;
                layer *x = &c->t.v[na], *y = &c->src.v[nb];
                if (x->pair >= 0 || y->pair >= 0 || strcmp(x->sig, y->sig)) continue;
                const sg_t *anchor = &c->s->dst.v[c->t.v[a].mem[0]];
                int conf = anchor->conf == GRAFT_SUGGEST_GUESS ? GRAFT_SUGGEST_GUESS : GRAFT_SUGGEST_LIKELY;
                size_t cands = count_sig(&c->src, x->sig, false);
                if (cands == 1) conf = GRAFT_SUGGEST_CERTAIN;
                snprintf(why, sizeof why, "its layer is %s %s as its source's is %s %s (%zu layers of its shapes)",
                         dir > 0 ? "after" : "before", anchor->name, dir > 0 ? "after" : "before",
                         c->s->src.v[c->src.v[b].mem[0]].name, cands);
                if (join(c, (size_t)na, (size_t)nb, conf, why, true) < 0) return -1;
                more = true;
            }
        }
    }
    return 0;
}

static float layer_score(void *arg, size_t a, size_t b)
{
    lctx *c = arg;
    size_t x = c->ft[a], y = c->fs[b];
    if (strcmp(c->t.v[x].sig, c->src.v[y].sig)) return -1.0f;
    return (float)(1.0 + 3.0 * layer_sim(c, x, y, true));
}

static void layer_match(void *arg, size_t a, size_t b)
{
    lctx *c = arg;
    c->t.v[c->ft[a]].pair = (long)c->fs[b];
    c->src.v[c->fs[b]].pair = (long)c->ft[a];
}

/* Layers of signature sig not paired before the alignment, strictly
 * between positions lo and hi of side L, and the rank of layer k among them. */
static size_t between(const lside *L, const char *sig, long lo, long hi, size_t k, size_t *rank)
{
    size_t n = 0;
    for (long q = lo + 1; q < hi; q++) {
        const layer *y = &L->v[q];
        if (y->pre || strcmp(y->sig, sig)) continue;
        if ((size_t)q == k) *rank = n;
        n++;
    }
    return n;
}

/* Does a's place among the layers of its shapes between the nearest layers
 * paired before the alignment agree with its source's? */
static bool in_place(const lctx *c, size_t a, size_t b)
{
    long pa = (long)a - 1, na = (long)a + 1;
    while (pa >= 0 && !c->t.v[pa].pre) pa--;
    while ((size_t)na < c->t.n && !c->t.v[na].pre) na++;
    long pb = pa >= 0 ? c->t.v[pa].pair : -1;
    long nb = (size_t)na < c->t.n ? c->t.v[na].pair : (long)c->src.n;
    if (pb >= nb || (long)b <= pb || (long)b >= nb) return false;
    size_t ra = SIZE_MAX, rb = SIZE_MAX;
    size_t ca = between(&c->t, c->t.v[a].sig, pa, na, a, &ra);
    size_t cb = between(&c->src, c->t.v[a].sig, pb, nb, b, &rb);
    /* order among many alike (eight heads of one shape) is only a guess */
    bool anchored = pa >= 0 || (size_t)na < c->t.n;
    return anchored && ca <= SG_ORDER_MAX && ca == cb && ra == rb && ra != SIZE_MAX;
}

/* Confidence of a layer paired by the alignment or as a leftover. */
static int settle(lctx *c, size_t a)
{
    size_t b = (size_t)c->t.v[a].pair, cands = count_sig(&c->src, c->t.v[a].sig, false);
    double mine = layer_sim(c, a, b, false), alt = -1;
    char why[256];
    int conf = GRAFT_SUGGEST_GUESS;
    for (size_t q = 0; q < c->src.n; q++)
        if (q != b && !strcmp(c->src.v[q].sig, c->t.v[a].sig) && layer_sim(c, a, q, false) > alt)
            alt = layer_sim(c, a, q, false);
    if (cands == 1) {
        conf = GRAFT_SUGGEST_CERTAIN;
        snprintf(why, sizeof why, "its layer is the only source layer of its kinds and shapes");
    } else if (mine - alt >= 0.2) {
        conf = GRAFT_SUGGEST_LIKELY;
        snprintf(why, sizeof why, "names single its layer out among %zu of its shapes", cands);
    } else if (alt - mine < 0.2 && in_place(c, a, b)) {
        conf = GRAFT_SUGGEST_LIKELY;
        snprintf(why, sizeof why,
                 "its layer holds the same place among the layers of its shapes between the "
                 "nearest pairs known as its source's (%zu of its shapes in all)", cands);
    } else {
        snprintf(why, sizeof why, "its layer is paired by file order alone among %zu of its shapes",
                 cands);
    }
    c->t.v[a].pair = c->src.v[b].pair = -1;
    return join(c, a, b, conf, why, true);
}

static int align_rest(lctx *c)
{
    size_t nt = 0, ns = 0;
    int rc;
    c->ft = graft_malloc(c->ctx, (c->t.n + 1) * sizeof *c->ft);
    c->fs = graft_malloc(c->ctx, (c->src.n + 1) * sizeof *c->fs);
    if (!c->ft || !c->fs) return graft_error_oom(c->ctx, "layers");
    for (size_t a = 0; a < c->t.n; a++)
        if (c->t.v[a].pair < 0) c->ft[nt++] = a;
    for (size_t b = 0; b < c->src.n; b++)
        if (c->src.v[b].pair < 0) c->fs[ns++] = b;
    if ((rc = sg_align(nt, ns, layer_score, layer_match, c, c->ctx)) < 0) return rc;
    /* leftovers: the most similar free source layer of the same signature */
    for (size_t k = 0; k < nt; k++) {
        size_t a = c->ft[k];
        if (c->t.v[a].pair >= 0) continue;
        long pick = -1;
        double best = -1;
        for (size_t b = 0; b < c->src.n; b++)
            if (c->src.v[b].pair < 0 && !strcmp(c->src.v[b].sig, c->t.v[a].sig) &&
                layer_sim(c, a, b, true) > best)
                best = layer_sim(c, a, b, true), pick = (long)b;
        if (pick >= 0) c->t.v[a].pair = pick, c->src.v[pick].pair = (long)a;
    }
    for (size_t k = 0; k < nt; k++)
        if (c->t.v[c->ft[k]].pair >= 0 && settle(c, c->ft[k]) < 0) return -1;
    return 0;
}

static void mark_pre(lside *L)
{
    for (size_t k = 0; k < L->n; k++) L->v[k].pre = L->v[k].pair >= 0;
}

int sg_pair_layers(graft_suggestion *s, graft_ctx *ctx)
{
    lctx c = {.s = s, .ctx = ctx};
    int rc;
    if ((rc = build(&c.t, &s->dst, ctx)) < 0 || (rc = build(&c.src, &s->src, ctx)) < 0 ||
        (rc = unique(&c)) < 0 || (rc = extend(&c)) < 0 ||
        (mark_pre(&c.t), mark_pre(&c.src), (rc = align_rest(&c)) < 0) ||
        (rc = extend(&c)) < 0)
        goto cleanup;
cleanup:
    free(c.ft);
    free(c.fs);
    lside_free(&c.t);
    lside_free(&c.src);
    return rc;
}
