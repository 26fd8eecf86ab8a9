/*
 * op_fold_bn.c - fold_bn: fold a BatchNorm into the layer before it, as
 * exporters do (torch.onnx.export in eval mode, TFLite converters).
 *
 * Over the sources of a pairs entry, in this order:
 *   part: weight  [W, gamma, beta, mean, var]  ->  W * gamma / sqrt(var + eps),
 *                 the factor broadcast over W's first axis (the channels);
 *   part: bias    [b, gamma, beta, mean, var] or [gamma, beta, mean, var]
 *                 (no bias: b = 0)  ->  (b - mean) * gamma / sqrt(var + eps) + beta.
 * gamma, beta, mean and var are vectors of W's first dimension (b's length).
 * Everything is computed in float64 and rounded once to the dtype of W (of b,
 * or of gamma without b).  It has no reverse.
 */
#include "gather.h"
#include "optab.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int parse_fold_bn(const graft_oparg *a, graft_op *op)
{
    static const char *const keys[] = {"part", "eps", NULL};
    const char *part = NULL;
    GRAFT_TRY(graft_oparg_keys(a, keys));
    GRAFT_TRY(graft_oparg_str(a, "part", &part));
    if (!strcmp(part, "weight"))
        op->part = GRAFT_BN_WEIGHT;
    else if (!strcmp(part, "bias"))
        op->part = GRAFT_BN_BIAS;
    else
        return graft_oparg_fail(a, "part", "part: '%s' is not one of weight | bias", part);
    GRAFT_TRY(graft_oparg_num(a, "eps", &op->eps));
    if (!(op->eps >= 0)) return graft_oparg_fail(a, "eps", "eps: %g is negative", op->eps);
    return 0;
}

/* Index of gamma among the sources. */
static size_t first_bn(const graft_op *op, size_t nin)
{
    return op->part == GRAFT_BN_BIAS && nin == 4 ? 0 : 1;
}

static int infer_fold_bn(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *cur,
                         graft_ctx *ctx)
{
    char a[256];
    bool bias = op->part == GRAFT_BN_BIAS;
    if (nin != 5 && !(bias && nin == 4))
        return graft_op__error(ctx, op, GRAFT_ERULE,
                               "%zu sources; part %s needs [%s, gamma, beta, mean, var]%s", nin,
                               bias ? "bias" : "weight", bias ? "b" : "W",
                               bias ? " or [gamma, beta, mean, var]" : "");
    for (size_t k = 0; k < nin; k++)
        if (!graft_op__is_float(in[k].dtype))
            return graft_op__error(ctx, op, GRAFT_ESHAPE,
                                   "source %zu is %s: only float16, bfloat16, float32 and float64",
                                   k, graft_dtype_name(in[k].dtype));
    size_t g = first_bn(op, nin);
    if (g == 1 && (in[0].ndim < 1 || (bias && in[0].ndim != 1)))
        return graft_op__error(ctx, op, GRAFT_ESHAPE, "source 0 has shape %s, expected %s",
                               graft_op__dims(a, sizeof a, in[0].ndim, in[0].dim),
                               bias ? "a vector" : "at least one axis");
    int64_t c = g == 1 ? in[0].dim[0] : in[0].ndim == 1 ? in[0].dim[0] : -1;
    for (size_t k = g; k < nin; k++)
        if (in[k].ndim != 1 || in[k].dim[0] != c)
            return graft_op__error(ctx, op, GRAFT_ESHAPE,
                                   "source %zu has shape %s, expected [%" PRId64 "] (%s)", k,
                                   graft_op__dims(a, sizeof a, in[k].ndim, in[k].dim), c,
                                   g == 1 ? "the first axis of source 0" : "a vector");
    *cur = in[0];
    return GRAFT_OK;
}

int graft_fold__prepare(const graft_op *op, const graft_tview *in, size_t nin, graft_fold *f,
                        graft_ctx *ctx)
{
    size_t g = first_bn(op, nin);
    uint64_t c = (uint64_t)in[g].shape.dim[0], numel = graft_op__numel(&in[0].shape);
    double *v = graft_malloc(ctx, (c ? c : 1) * 4 * sizeof *v);
    if (!v) return graft_error_oom(ctx, "fold_bn factors");
    double *scale = v, *beta = v + c, *mean = v + 2 * c, *var = v + 3 * c;
    graft_xform__to_f64(in[g].data, in[g].shape.dtype, (size_t)c, scale); /* gamma, for now */
    graft_xform__to_f64(in[g + 1].data, in[g + 1].shape.dtype, (size_t)c, beta);
    graft_xform__to_f64(in[g + 2].data, in[g + 2].shape.dtype, (size_t)c, mean);
    graft_xform__to_f64(in[g + 3].data, in[g + 3].shape.dtype, (size_t)c, var);
    for (uint64_t i = 0; i < c; i++) scale[i] /= sqrt(var[i] + op->eps);
    *f = (graft_fold){.scale = scale, .mean = mean, .beta = beta, .per = c ? numel / c : 1,
                      .bias = op->part == GRAFT_BN_BIAS, .has_b = g == 1, .first_bn = g};
    return GRAFT_OK;
}

void graft_fold__at(const graft_fold *f, const double *x, const int64_t *ch, uint64_t first,
                    double *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t e = ch ? (uint64_t)ch[i] : f->bias ? first + i : (first + i) / f->per;
        if (!f->bias)
            out[i] = x[i] * f->scale[e];
        else
            out[i] = ((f->has_b ? x[i] : 0) - f->mean[e]) * f->scale[e] + f->beta[e];
    }
}

void graft_fold__free(graft_fold *f)
{
    free(f->scale);
    f->scale = NULL;
}

static void fold_block(const void *payload, double *const *x, size_t nin, uint64_t first,
                       double *out, size_t n)
{
    (void)nin;
    graft_fold__at(payload, x[0], NULL, first, out, n);
}

static int run_fold_bn(const graft_op *op, const graft_shape *s, const uint8_t *src,
                       const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx)
{
    graft_fold f;
    (void)src;
    GRAFT_TRY(graft_fold__prepare(op, in, nin, &f, ctx));
    /* without b the map still needs an input: gamma stands in, unread */
    int rc = graft_op__map_f64(o, &in[0].data, &in[0].shape.dtype, 1, graft_op__numel(s),
                               s->dtype, fold_block, &f, ctx);
    graft_fold__free(&f);
    return rc;
}

static void json_fold_bn(const graft_op *op, graft_jsonw *b)
{
    graft_jsonw_printf(b, "{\"part\": \"%s\", \"eps\": ",
                      op->part == GRAFT_BN_BIAS ? "bias" : "weight");
    graft_jsonw_num(b, op->eps);
    graft_jsonw_printf(b, "}");
}

const graft_op_def graft_op_def_fold_bn = {
    .name = "fold_bn", .minor = 1, .flags = GRAFT_OPF_JOIN, .parse = parse_fold_bn,
    .infer = infer_fold_bn, .run = run_fold_bn, .invert = NULL, .json = json_fold_bn,
};
