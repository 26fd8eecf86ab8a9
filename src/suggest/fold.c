/*
 * fold.c - BatchNorms folded into the convolution before them, where the
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

int sg_folds(graft_suggestion *s, graft_ctx *ctx)
{
    sg_side *src = &s->src;
    if (!target_folds(&s->dst)) return 0;
    for (size_t i = 0; i < src->n; i++) {
        sg_fold f;
        const sg_t *x = &src->v[i];
        if (x->kind != SG_MEAN || x->fold >= 0 || !vector_of(x, x->t->shape[0]) || !bn_group(src, i, &f) ||
            !conv_before(src, &f))
            continue;
        sg_fold *nf = graft_realloc(ctx, s->folds, (s->nfolds + 1) * sizeof *nf);
        if (!nf) return graft_error_oom(ctx, "folds");
        s->folds = nf;
        long k = (long)s->nfolds;
        s->folds[s->nfolds++] = f;
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
    if (t->pair < 0 || s->src.v[t->pair].fold < 0) return -1;
    const sg_fold *f = &s->folds[s->src.v[t->pair].fold];
    return t->pair == f->w ? 0 : t->pair == f->b ? 1 : -1;
}

size_t sg_sources(const graft_suggestion *s, const sg_t *t, long out[5])
{
    int part = sg_fold_part(s, t);
    size_t n = 0;
    if (part < 0) {
        out[0] = t->pair;
        return t->pair >= 0;
    }
    const sg_fold *f = &s->folds[s->src.v[t->pair].fold];
    if (part == 0) out[n++] = f->w;
    else if (f->cb >= 0) out[n++] = f->cb;
    out[n++] = f->g, out[n++] = f->b, out[n++] = f->m, out[n++] = f->v;
    return n;
}

bool sg_src_used(const graft_suggestion *s, size_t j)
{
    const sg_t *y = &s->src.v[j];
    if (!y->hidden) return y->pair >= 0;
    const sg_fold *f = &s->folds[y->fold];
    return s->src.v[f->w].pair >= 0 || s->src.v[f->b].pair >= 0;
}
