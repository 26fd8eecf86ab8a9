/*
 * fold.c - sources joined into one target, where the skeleton shows it.
 *
 * A PyTorch recurrent layer's bias_ih_lN and bias_hh_lN into a skeleton
 * whose recurrent layers keep one bias (Keras): their sum when it has the
 * size of one (LSTM; a GRU with reset_after=False computes otherwise and
 * is a guess, opchain.c), stacked when it is (2, n) (GRU reset_after=True);
 * bias_ih stands in, bias_hh is hidden.  And the
 * other way, a Keras GRU's (2, n) bias split into bias_ih and bias_hh (take).
 *
 * BatchNorms folded into the convolution before them, where the
 * skeleton's structure shows it: the skeleton has convolutions with a bias
 * (an ONNX Conv node's B input) and no BatchNorm statistics at all, as
 * torch.onnx.export writes an eval-mode model; the source has BatchNorm
 * layers (weight, bias, running mean and variance of C channels), each
 * right after a convolution kernel of C output channels (PyTorch OIHW
 * order, its own bias, if any, between them).
 *
 * Each such BatchNorm becomes two stand-ins for the pairing: the conv
 * kernel (the folded weight) and the BN bias (the folded bias); its other
 * tensors, and the conv's own bias, are hidden from the pairing and go with
 * the stand-ins into one `pairs:` entry each (draft.c) under
 * fold_bn {part: weight | bias, eps: SG_FOLD_EPS}.
 */
#include "suggest_int.h"

#include <stdlib.h>
#include <string.h>

static size_t prefix_len(const char *name)
{
    const char *a = strrchr(name, '/'), *b = strrchr(name, '.');
    const char *p = a > b ? a : b;
    return p ? (size_t)(p - name) : strlen(name);
}

static bool same_prefix(const sg_t *a, const sg_t *b)
{
    size_t n = prefix_len(a->name);
    return n == prefix_len(b->name) && !strncmp(a->name, b->name, n);
}

static bool vector_of(const sg_t *x, int64_t c)
{
    return sg_live(x) && x->t->ndim == 1 && x->t->shape[0] == c && sg_is_float(x->t->dtype);
}

/* Does the skeleton's structure show folded BatchNorms? */
static bool target_folds(const sg_side *d)
{
    bool conv_bias = false;
    for (size_t i = 0; i < d->n; i++) {
        const sg_t *x = &d->v[i];
        if (!sg_live(x)) continue;
        if (x->kind == SG_MEAN || x->kind == SG_VAR) return false;
        conv_bias |= x->lay.certainty == GRAFT_CERT_STRUCTURE && x->lay.role == GRAFT_ROLE_BIAS &&
                     x->lay.op && !strcmp(x->lay.op, "Conv");
    }
    return conv_bias;
}

/* The BatchNorm whose running mean is source i: fold f (w, cb unset), or false. */
static bool bn_group(const sg_side *s, size_t i, sg_fold *f)
{
    const sg_t *m = &s->v[i];
    int64_t c = m->t->shape[0];
    size_t lo = i > 4 ? i - 4 : 0, hi = i + 4 < s->n ? i + 4 : s->n - 1;
    f->g = f->b = f->v = -1;
    f->m = (long)i;
    for (size_t j = lo; j <= hi; j++) {
        const sg_t *x = &s->v[j];
        if (j == i || !vector_of(x, c) || !same_prefix(x, m)) continue;
        if (x->kind == SG_WEIGHT && f->g < 0) f->g = (long)j;
        else if (x->kind == SG_BIAS && f->b < 0) f->b = (long)j;
        else if (x->kind == SG_VAR && f->v < 0) f->v = (long)j;
    }
    return f->g >= 0 && f->b >= 0 && f->v >= 0;
}

/* The convolution right before the group: its kernel (and bias). */
static bool conv_before(const sg_side *s, sg_fold *f)
{
    long first = f->g;
    if (f->b < first) first = f->b;
    if (f->m < first) first = f->m;
    if (f->v < first) first = f->v;
    int64_t c = s->v[f->m].t->shape[0];
    f->w = f->cb = -1;
    for (long j = first - 1; j >= 0 && j >= first - 3; j--) {
        const sg_t *x = &s->v[j];
        if (x->ignore) continue;
        if (!sg_live(x) || x->fold >= 0) return false;
        if (f->cb < 0 && vector_of(x, c) && x->kind == SG_BIAS) {
            f->cb = j;
            continue;
        }
        if (x->kind == SG_WEIGHT && x->t->ndim >= 3 && x->t->shape[0] == c &&
            x->lay.family != GRAFT_FAM_KERAS && sg_is_float(x->t->dtype) &&
            (f->cb < 0 || same_prefix(x, &s->v[f->cb]))) {
            f->w = j;
            return true;
        }
        return false;
    }
    return false;
}

static int add(graft_suggestion *s, const sg_fold *f, graft_ctx *ctx)
{
    sg_fold *nf = graft_realloc(ctx, s->folds, (s->nfolds + 1) * sizeof *nf);
    if (!nf) return graft_error_oom(ctx, "folds");
    s->folds = nf;
    s->folds[s->nfolds++] = *f;
    return 0;
}

/* The join a target recurrent bias of n gates x units per side calls for:
 * one (n) the sum, two stacked (2, n); -1 none. */
static int rnn_join(const sg_side *d, uint64_t n)
{
    int op = -1;
    for (size_t i = 0; i < d->n; i++) {
        const sg_t *x = &d->v[i];
        if (!sg_live(x) || x->lay.role != GRAFT_ROLE_RNN_BIAS) continue;
        if (x->t->ndim == 2 && x->t->shape[0] == 2 && (uint64_t)x->t->shape[1] == n) return SG_JOIN_STACK;
        if (x->t->ndim == 1 && x->t->numel == n) op = SG_JOIN_SUM;
    }
    return op;
}

/* A PyTorch recurrent layer's bias_ih / bias_hh into a skeleton with one
 * bias per layer (Keras): summed, or stacked as GRU reset_after keeps them. */
static int rnn_biases(graft_suggestion *s, graft_ctx *ctx)
{
    sg_side *src = &s->src;
    for (size_t i = 0; i < src->n; i++) {
        sg_t *x = &src->v[i];
        const char *ih = strstr(x->name, "bias_ih");
        if (!sg_live(x) || x->fold >= 0 || x->lay.role != GRAFT_ROLE_RNN_INPUT_BIAS || !ih) continue;
        int op = rnn_join(&s->dst, x->t->numel);
        if (op < 0) continue;
        for (size_t j = 0; j < src->n; j++) {
            sg_t *y = &src->v[j];
            size_t at = (size_t)(ih - x->name);
            if (j == i || !sg_live(y) || y->fold >= 0 || y->lay.role != GRAFT_ROLE_RNN_HIDDEN_BIAS ||
                strlen(y->name) != strlen(x->name) || strncmp(y->name, x->name, at) ||
                strncmp(y->name + at, "bias_hh", 7) || strcmp(y->name + at + 7, ih + 7) ||
                y->t->numel != x->t->numel || y->t->dtype != x->t->dtype)
                continue;
            sg_fold f = {.op = (sg_join)op, .w = -1, .cb = -1, .g = (long)j, .b = (long)i, .m = -1, .v = -1};
            if (add(s, &f, ctx) < 0) return -1;
            x->fold = y->fold = (long)s->nfolds - 1;
            y->hidden = true;
            if (op == SG_JOIN_STACK) {  /* the stand-in pairs as the stacked tensor */
                x->nd = 2, x->sd[0] = 2, x->sd[1] = (int64_t)x->t->numel, x->numel = 2 * x->t->numel;
                if (x->sd[1] < 2) x->sd[0] = x->sd[1], x->sd[1] = 2;
            }
            break;
        }
    }
    return 0;
}

/* A Keras GRU bias (2, n) (reset_after) into a skeleton with PyTorch's
 * bias_ih_lN / bias_hh_lN of n: it stands in as one of n and pairs with a
 * bias_ih; its bias_hh is hidden and follows (sg_split_follow). */
static int rnn_splits(graft_suggestion *s, graft_ctx *ctx)
{
    sg_side *src = &s->src, *dst = &s->dst;
    for (size_t i = 0; i < dst->n; i++) {
        sg_t *x = &dst->v[i];
        const char *ih = strstr(x->name, "bias_ih");
        if (!sg_live(x) || x->fold >= 0 || x->lay.role != GRAFT_ROLE_RNN_INPUT_BIAS || !ih) continue;
        size_t at = (size_t)(ih - x->name);
        bool any = false;
        for (size_t j = 0; j < src->n && !any; j++) {
            const sg_t *y = &src->v[j];
            any = sg_live(y) && y->lay.role == GRAFT_ROLE_RNN_BIAS && y->t->ndim == 2 && y->t->shape[0] == 2 &&
                  (uint64_t)y->t->shape[1] == x->t->numel;
        }
        for (size_t j = 0; any && j < dst->n; j++) {
            sg_t *y = &dst->v[j];
            if (j == i || !sg_live(y) || y->fold >= 0 || y->lay.role != GRAFT_ROLE_RNN_HIDDEN_BIAS ||
                strlen(y->name) != strlen(x->name) || strncmp(y->name, x->name, at) ||
                strncmp(y->name + at, "bias_hh", 7) || strcmp(y->name + at + 7, ih + 7) ||
                y->t->numel != x->t->numel)
                continue;
            sg_fold f = {.op = SG_JOIN_SPLIT, .w = -1, .cb = -1, .b = -1, .g = (long)i, .m = (long)j, .v = -1};
            if (add(s, &f, ctx) < 0) return -1;
            x->fold = y->fold = (long)s->nfolds - 1;
            y->hidden = true;
            break;
        }
    }
    /* the Keras biases stand in as one half */
    for (size_t j = 0; s->nfolds && j < src->n; j++) {
        sg_t *y = &src->v[j];
        if (!sg_live(y) || y->lay.role != GRAFT_ROLE_RNN_BIAS || y->t->ndim != 2 || y->t->shape[0] != 2) continue;
        y->split = true;
        y->nd = 1, y->sd[0] = y->t->shape[1], y->numel = (uint64_t)y->t->shape[1];
    }
    return 0;
}

int sg_split_follow(graft_suggestion *s, graft_ctx *ctx)
{
    for (size_t k = 0; k < s->nfolds; k++) {
        const sg_fold *f = &s->folds[k];
        if (f->op != SG_JOIN_SPLIT) continue;
        const sg_t *ih = &s->dst.v[f->g];
        sg_t *hh = &s->dst.v[f->m];
        if (ih->pair < 0 || !s->src.v[ih->pair].split) continue;
        hh->pair = ih->pair;  /* the source keeps pointing at its first target */
        if (sg_set_conf(hh, ih->conf, ih->reason, true, ctx) < 0) return -1;
    }
    return 0;
}

int sg_folds(graft_suggestion *s, graft_ctx *ctx)
{
    sg_side *src = &s->src;
    if (rnn_biases(s, ctx) < 0 || rnn_splits(s, ctx) < 0) return -1;
    if (!target_folds(&s->dst)) return 0;
    for (size_t i = 0; i < src->n; i++) {
        sg_fold f;
        const sg_t *x = &src->v[i];
        if (x->kind != SG_MEAN || x->fold >= 0 || !vector_of(x, x->t->shape[0]) || !bn_group(src, i, &f) ||
            !conv_before(src, &f))
            continue;
        f.op = SG_JOIN_BN;
        long k = (long)s->nfolds;
        if (add(s, &f, ctx) < 0) return -1;
        /* the folded bias is the conv's output: it goes by the conv's words */
        sg_t *b = &src->v[f.b], *w = &src->v[f.w];
        char **tok = graft_calloc(ctx, w->ntok + 1, sizeof *tok);
        if (!tok) return graft_error_oom(ctx, "folds");
        for (size_t q = 0; q < w->ntok; q++)
            if (!(tok[q] = graft_strdup(ctx, w->tok[q]))) {
                for (size_t r = 0; r < q; r++) free(tok[r]);
                free(tok);
                return graft_error_oom(ctx, "folds");
            }
        for (size_t q = 0; q < b->ntok; q++) free(b->tok[q]);
        free(b->tok);
        b->tok = tok, b->ntok = w->ntok;
        long all[6] = {f.w, f.cb, f.g, f.b, f.m, f.v};
        for (int q = 0; q < 6; q++) {
            if (all[q] < 0) continue;
            src->v[all[q]].fold = k;
            src->v[all[q]].hidden = all[q] != f.w && all[q] != f.b;
        }
    }
    return 0;
}

int sg_fold_part(const graft_suggestion *s, const sg_t *t)
{
    if (t->pair >= 0 && s->src.v[t->pair].split && t->fold >= 0)
        return t == &s->dst.v[s->folds[t->fold].g] ? SG_PART_SPLIT0 : SG_PART_SPLIT1;
    if (t->pair < 0 || s->src.v[t->pair].fold < 0) return -1;
    const sg_fold *f = &s->folds[s->src.v[t->pair].fold];
    if (f->op == SG_JOIN_SUM || f->op == SG_JOIN_STACK)
        return t->pair != f->b ? -1 : f->op == SG_JOIN_SUM ? SG_PART_SUM : SG_PART_STACK;
    return t->pair == f->w ? SG_PART_BN_WEIGHT : t->pair == f->b ? SG_PART_BN_BIAS : -1;
}

size_t sg_sources(const graft_suggestion *s, const sg_t *t, long out[5])
{
    int part = sg_fold_part(s, t);
    size_t n = 0;
    if (part < 0 || part >= SG_PART_SPLIT0) {
        out[0] = t->pair;
        return t->pair >= 0;
    }
    const sg_fold *f = &s->folds[s->src.v[t->pair].fold];
    if (part >= SG_PART_SUM) {
        out[0] = f->b, out[1] = f->g;
        return 2;
    }
    if (part == SG_PART_BN_WEIGHT) out[n++] = f->w;
    else if (f->cb >= 0) out[n++] = f->cb;
    out[n++] = f->g, out[n++] = f->b, out[n++] = f->m, out[n++] = f->v;
    return n;
}

bool sg_src_used(const graft_suggestion *s, size_t j)
{
    const sg_t *y = &s->src.v[j];
    if (!y->hidden) return y->pair >= 0;
    const sg_fold *f = &s->folds[y->fold];
    return (f->w >= 0 && s->src.v[f->w].pair >= 0) || s->src.v[f->b].pair >= 0;
}
