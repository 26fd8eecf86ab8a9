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
 *
 * `quantize: q8_0` / `q4_0` and `dequantize: q8_0` / `q4_0` (op->index = a
 * graft_ggml_block; 0 for the affine forms) are ggml's block quantization
 * instead (kernels: ggml_quant.c): float values whose last axis holds whole
 * 32-element blocks <-> uint8 [..., n / 32, block bytes], the layout GGUF
 * tensors of those types are listed in; no parameters are bound.
 */
#include "ggml_quant.h"
#include "optab.h"
#include "quant.h"

#include <stdlib.h>
#include <string.h>

static bool quantized(graft_dtype t)
{
    return t == GRAFT_INT8 || t == GRAFT_UINT8 || t == GRAFT_INT16 || t == GRAFT_INT32;
}

/* ---- ggml blocks --------------------------------------------------------- */

static const char *const block_names[] = {NULL, "q8_0", "q4_0"};

/* "q8_0" / "q4_0" -> the block type in op->index; false for anything else. */
static bool parse_block(const char *s, graft_op *op)
{
    for (int q = GRAFT_GGML_Q8_0; q <= GRAFT_GGML_Q4_0; q++)
        if (strcmp(s, block_names[q]) == 0) {
            op->index = q;
            op->dtype = GRAFT_UINT8;
            return true;
        }
    return false;
}

/* An op built in memory (a fuzzer) rather than parsed: index in range. */
static int check_block(const graft_op *op, graft_ctx *ctx)
{
    if (op->index >= 0 && op->index <= GRAFT_GGML_Q4_0) return GRAFT_OK;
    return graft_op__error(ctx, op, GRAFT_ERULE, "block type %lld is not q8_0 or q4_0",
                           (long long)op->index);
}

static int infer_block_quantize(const graft_op *op, graft_shape *s, graft_ctx *ctx)
{
    if (!graft_op__is_float(s->dtype))
        return graft_op__error(ctx, op, GRAFT_ESHAPE, "the source is %s, not floats",
                               graft_dtype_name(s->dtype));
    if (s->ndim == 0 || s->ndim >= GRAFT_MAX_NDIM || s->dim[s->ndim - 1] % GRAFT_QK ||
        s->dim[s->ndim - 1] == 0)
        return graft_op__error(ctx, op, GRAFT_ESHAPE, "the last axis must hold whole blocks of "
                               "%d, not %lld elements", GRAFT_QK,
                               s->ndim ? (long long)s->dim[s->ndim - 1] : 1LL);
    s->dim[s->ndim - 1] /= GRAFT_QK;
    s->dim[s->ndim++] = (int64_t)graft_ggml_block_bytes((graft_ggml_block)op->index);
    s->dtype = GRAFT_UINT8;
    return GRAFT_OK;
}

static int infer_block_dequantize(const graft_op *op, graft_shape *s, graft_ctx *ctx)
{
    int64_t bb = (int64_t)graft_ggml_block_bytes((graft_ggml_block)op->index);
    if (s->dtype != GRAFT_UINT8 || s->ndim < 2 || s->dim[s->ndim - 1] != bb)
        return graft_op__error(ctx, op, GRAFT_ESHAPE, "the source must be uint8 [..., blocks, "
                               "%lld] %s blocks", (long long)bb, block_names[op->index]);
    s->ndim--;
    s->dim[s->ndim - 1] *= GRAFT_QK;
    s->dtype = GRAFT_FLOAT32;
    return GRAFT_OK;
}

#define BLOCKS 256 /* blocks converted per step */

static int run_block_quantize(const graft_op *op, const graft_shape *s, const uint8_t *src,
                              graft_xout *o, graft_ctx *ctx)
{
    graft_ggml_block q = (graft_ggml_block)op->index;
    size_t es = graft_dtype_size(s->dtype), bb = graft_ggml_block_bytes(q);
    uint64_t n = graft_op__numel(s);
    float f[BLOCKS * GRAFT_QK];
    uint8_t blocks[BLOCKS * 34];
    for (uint64_t at = 0; at < n; at += BLOCKS * GRAFT_QK) {
        uint64_t k = n - at < BLOCKS * GRAFT_QK ? n - at : BLOCKS * GRAFT_QK;
        graft_xout m = {.mem = (uint8_t *)f, .ctx = ctx};
        GRAFT_TRY(graft_xform__cast(&m, src + at * es, s->dtype, GRAFT_FLOAT32, k, ctx));
        if (graft_ggml_quantize(q, f, k, blocks, ctx) < 0)
            return graft_error_prefix(ctx, "%s:%u: quantize: block %llu", op->file ? op->file : "?",
                                      op->line, (unsigned long long)(at / GRAFT_QK));
        GRAFT_TRY(graft_xform__emit(o, blocks, (size_t)(k / GRAFT_QK * bb)));
    }
    return GRAFT_OK;
}

static int run_block_dequantize(const graft_op *op, const graft_shape *s, const uint8_t *src,
                                graft_xout *o, graft_ctx *ctx)
{
    graft_ggml_block q = (graft_ggml_block)op->index;
    size_t bb = graft_ggml_block_bytes(q);
    uint64_t nb = graft_op__numel(s) / bb;
    float f[BLOCKS * GRAFT_QK];
    for (uint64_t at = 0; at < nb; at += BLOCKS) {
        uint64_t k = nb - at < BLOCKS ? nb - at : BLOCKS;
        GRAFT_TRY(graft_ggml_dequantize(q, src + at * bb, k, f, ctx));
        GRAFT_TRY(graft_xform__emit(o, f, (size_t)(k * GRAFT_QK * 4)));
    }
    return GRAFT_OK;
}

/* ---- the ops ------------------------------------------------------------ */

static int parse_quantize(const graft_oparg *a, graft_op *op)
{
    const char *s = NULL;
    GRAFT_TRY(graft_oparg_str(a, NULL, &s));
    if (parse_block(s, op)) return 0;
    op->dtype = graft_dtype_from_name(s);
    if (!quantized(op->dtype))
        return graft_oparg_fail(a, NULL, "'%s' is not int8, uint8, int16, int32, q8_0 or q4_0", s);
    return 0;
}

static int infer_quantize(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *s,
                          graft_ctx *ctx)
{
    (void)in, (void)nin;
    GRAFT_TRY(check_block(op, ctx));
    if (op->index) return infer_block_quantize(op, s, ctx);
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
    if (op->index) return run_block_quantize(op, s, src, o, ctx);
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

static void json_quantize(const graft_op *op, graft_jsonw *b)
{
    graft_jsonw_printf(b, "\"%s\"", op->index == GRAFT_GGML_Q8_0   ? "q8_0"
                                    : op->index == GRAFT_GGML_Q4_0 ? "q4_0"
                                                                   : graft_dtype_name(op->dtype));
}

const graft_op_def graft_op_def_quantize = {
    .name = "quantize", .minor = 1, .flags = 0, .parse = parse_quantize,
    .infer = infer_quantize, .run = run_quantize, .invert = invert_quantize,
    .json = json_quantize,
};

static int parse_dequantize(const graft_oparg *a, graft_op *op)
{
    const char *s = NULL;
    if (graft_oparg_type(a) == GRAFT_OPARG_NONE) return 0;
    GRAFT_TRY(graft_oparg_str(a, NULL, &s));
    if (!parse_block(s, op))
        return graft_oparg_fail(a, NULL, "'%s' is not q8_0 or q4_0 (or no value: the source's "
                                "own parameters)", s);
    return 0;
}

static int infer_dequantize(const graft_op *op, const graft_shape *in, size_t nin,
                            graft_shape *s, graft_ctx *ctx)
{
    (void)in, (void)nin;
    GRAFT_TRY(check_block(op, ctx));
    if (op->index) return infer_block_dequantize(op, s, ctx);
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
    if (op->index) return run_block_dequantize(op, s, src, o, ctx);
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

/* Nothing for the affine form: it is written bare. */
static void json_dequantize(const graft_op *op, graft_jsonw *b)
{
    if (op->index) json_quantize(op, b);
}

const graft_op_def graft_op_def_dequantize = {
    .name = "dequantize", .minor = 1, .flags = GRAFT_OPF_BARE, .parse = parse_dequantize,
    .infer = infer_dequantize, .run = run_dequantize, .invert = invert_dequantize,
    .json = json_dequantize,
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
