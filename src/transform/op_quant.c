/*
 * op_quant.c - quantize / dequantize (kernels: quant.c), with the
 * quantization parameters of the tensors themselves.
 *
 * `quantize: int8` turns float32 values into the target dtype (int8, uint8,
 * int16, int32) with the *skeleton target's* scale and zero point (per-tensor
 * or per-channel, as its format stores them: TFLite); `dequantize` turns a
 * quantized *source* tensor into float32 with the source's own parameters.
 * The parameters are not in the rules file: graft_ops_bind_quant() gives
 * them to a copy of the chain when a pair is applied or compared.
 */
#include "optab.h"
#include "quant.h"

#include <stdlib.h>
#include <string.h>

static bool quantized(graft_dtype t)
{
    return t == GRAFT_INT8 || t == GRAFT_UINT8 || t == GRAFT_INT16 || t == GRAFT_INT32;
}

static int parse_quantize(const graft_oparg *a, graft_op *op)
{
    const char *s = NULL;
    GRAFT_TRY(graft_oparg_str(a, NULL, &s));
    op->dtype = graft_dtype_from_name(s);
    if (!quantized(op->dtype))
        return graft_oparg_fail(a, NULL, "'%s' is not int8, uint8, int16 or int32", s);
    return 0;
}

static int infer_quantize(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *s,
                          graft_ctx *ctx)
{
    (void)in, (void)nin;
    if (s->dtype != GRAFT_FLOAT32)
        return graft_op__error(ctx, op, GRAFT_ESHAPE, "quantizes float32, not %s",
                               graft_dtype_name(s->dtype));
    s->dtype = op->dtype;
    return GRAFT_OK;
}

static int run_quantize(const graft_op *op, const graft_shape *s, const uint8_t *src,
                        const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx)
{
    (void)in, (void)nin;
    if (graft_xform__quantize(o, (const float *)(const void *)src, op->dtype, s->ndim, s->dim,
                              op->quant, ctx) < 0)
        return graft_error_prefix(ctx, "%s:%u: quantize: the target's parameters", op->file,
                                  op->line);
    return GRAFT_OK;
}

static int invert_quantize(const graft_op *op, const graft_shape *s, const graft_shape *in,
                           size_t nin, size_t which, graft_op *r, graft_ctx *ctx)
{
    (void)op, (void)s, (void)in, (void)nin, (void)which, (void)ctx;
    r->kind = GRAFT_OP_DEQUANTIZE;
    return GRAFT_OK;
}

static void json_quantize(const graft_op *op, graft_jbuf *b)
{
    graft_jbuf_printf(b, "\"%s\"", graft_dtype_name(op->dtype));
}

const graft_op_def graft_op_def_quantize = {
    .name = "quantize", .minor = 1, .flags = 0, .parse = parse_quantize,
    .infer = infer_quantize, .run = run_quantize, .invert = invert_quantize,
    .json = json_quantize,
};

static int parse_dequantize(const graft_oparg *a, graft_op *op)
{
    (void)op;
    if (graft_oparg_type(a) != GRAFT_OPARG_NONE) return graft_oparg_fail(a, NULL, "takes no value");
    return 0;
}

static int infer_dequantize(const graft_op *op, const graft_shape *in, size_t nin,
                            graft_shape *s, graft_ctx *ctx)
{
    (void)in, (void)nin;
    if (!quantized(s->dtype))
        return graft_op__error(ctx, op, GRAFT_ESHAPE, "dequantizes int8, uint8, int16 or "
                               "int32, not %s", graft_dtype_name(s->dtype));
    s->dtype = GRAFT_FLOAT32;
    return GRAFT_OK;
}

static int run_dequantize(const graft_op *op, const graft_shape *s, const uint8_t *src,
                          const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx)
{
    (void)in, (void)nin;
    if (graft_xform__dequantize(o, src, s->dtype, s->ndim, s->dim, op->quant, ctx) < 0)
        return graft_error_prefix(ctx, "%s:%u: dequantize: the source's parameters", op->file,
                                  op->line);
    return GRAFT_OK;
}

static int invert_dequantize(const graft_op *op, const graft_shape *s, const graft_shape *in,
                             size_t nin, size_t which, graft_op *r, graft_ctx *ctx)
{
    (void)op, (void)in, (void)nin, (void)which, (void)ctx;
    r->kind = GRAFT_OP_QUANTIZE;
    r->dtype = s->dtype;
    return GRAFT_OK;
}

const graft_op_def graft_op_def_dequantize = {
    .name = "dequantize", .minor = 1, .flags = GRAFT_OPF_BARE, .parse = parse_dequantize,
    .infer = infer_dequantize, .run = run_dequantize, .invert = invert_dequantize,
    .json = NULL,
};

int graft_ops_bind_quant(const graft_op *ops, size_t nops, const graft_quant *source,
                         const graft_quant *target, graft_op **out, graft_ctx *ctx)
{
    bool any = false;
    *out = NULL;
    for (size_t i = 0; i < nops; i++)
        any |= ops[i].kind == GRAFT_OP_QUANTIZE || ops[i].kind == GRAFT_OP_DEQUANTIZE;
    if (!any) return GRAFT_OK;
    *out = graft_malloc(ctx, nops * sizeof **out);
    if (!*out) return graft_error_oom(ctx, "an op chain");
    memcpy(*out, ops, nops * sizeof **out);
    for (size_t i = 0; i < nops; i++)
        if (ops[i].kind == GRAFT_OP_QUANTIZE || ops[i].kind == GRAFT_OP_DEQUANTIZE)
            (*out)[i].quant = ops[i].kind == GRAFT_OP_QUANTIZE ? target : source;
    return GRAFT_OK;
}
