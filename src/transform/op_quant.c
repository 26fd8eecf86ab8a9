/*
 * op_quant.c - quantize: float values of a tensor whose last axis holds
 * whole 32-element blocks into ggml blocks (uint8 [..., n / 32, block
 * bytes], the layout GGUF tensors of those types are listed in);
 * dequantize: such blocks back to float32 [..., n].  Types q8_0 (34-byte
 * blocks) and q4_0 (18), bit for bit as ggml's reference code (quant.c).
 * Each is the other's reverse (quantizing loses precision: the reverse of
 * a dequantize gives the blocks back, that of a quantize only close values).
 */
#include "optab.h"
#include "quant.h"

#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"q8_0", "q4_0"};

static int parse_quant(const graft_oparg *a, graft_op *op)
{
    const char *s = NULL;
    GRAFT_TRY(graft_oparg_str(a, NULL, &s));
    for (int q = 0; q < 2; q++)
        if (strcmp(s, names[q]) == 0) {
            op->index = q; /* a graft_quant_type */
            return 0;
        }
    return graft_oparg_fail(a, NULL, "unknown block type '%s' (expected q8_0 or q4_0)", s);
}

/* An op built in memory (a fuzzer, an inverted chain) rather than parsed. */
static int check_type(const graft_op *op, graft_ctx *ctx)
{
    if (op->index == GRAFT_Q8_0 || op->index == GRAFT_Q4_0) return GRAFT_OK;
    return graft_op__error(ctx, op, GRAFT_ERULE, "block type %lld is not q8_0 or q4_0",
                           (long long)op->index);
}

static int infer_quantize(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *s,
                          graft_ctx *ctx)
{
    (void)in, (void)nin;
    GRAFT_TRY(check_type(op, ctx));
    if (!graft_op__is_float(s->dtype))
        return graft_op__error(ctx, op, GRAFT_ESHAPE, "the source is %s, not floats",
                               graft_dtype_name(s->dtype));
    if (s->ndim == 0 || s->ndim >= GRAFT_MAX_NDIM || s->dim[s->ndim - 1] % GRAFT_QK ||
        s->dim[s->ndim - 1] == 0)
        return graft_op__error(ctx, op, GRAFT_ESHAPE, "the last axis must hold whole blocks of "
                               "%d, not %lld elements", GRAFT_QK,
                               s->ndim ? (long long)s->dim[s->ndim - 1] : 1LL);
    s->dim[s->ndim - 1] /= GRAFT_QK;
    s->dim[s->ndim++] = (int64_t)graft_quant_block_bytes((graft_quant_type)op->index);
    s->dtype = GRAFT_UINT8;
    return GRAFT_OK;
}

static int infer_dequantize(const graft_op *op, const graft_shape *in, size_t nin,
                            graft_shape *s, graft_ctx *ctx)
{
    int64_t bb = (int64_t)graft_quant_block_bytes((graft_quant_type)op->index);
    (void)in, (void)nin;
    GRAFT_TRY(check_type(op, ctx));
    if (s->dtype != GRAFT_UINT8 || s->ndim < 2 || s->dim[s->ndim - 1] != bb)
        return graft_op__error(ctx, op, GRAFT_ESHAPE, "the source must be uint8 [..., blocks, "
                               "%lld] %s blocks", (long long)bb, names[op->index]);
    s->ndim--;
    s->dim[s->ndim - 1] *= GRAFT_QK;
    s->dtype = GRAFT_FLOAT32;
    return GRAFT_OK;
}

#define BLOCKS 256 /* blocks converted per step */

static int run_quantize(const graft_op *op, const graft_shape *s, const uint8_t *src,
                        const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx)
{
    graft_quant_type q = (graft_quant_type)op->index;
    size_t es = graft_dtype_size(s->dtype), bb = graft_quant_block_bytes(q);
    uint64_t n = graft_op__numel(s);
    float f[BLOCKS * GRAFT_QK];
    uint8_t blocks[BLOCKS * 34];
    (void)in, (void)nin;
    for (uint64_t at = 0; at < n; at += BLOCKS * GRAFT_QK) {
        uint64_t k = n - at < BLOCKS * GRAFT_QK ? n - at : BLOCKS * GRAFT_QK;
        graft_xout m = {.mem = (uint8_t *)f, .ctx = ctx};
        GRAFT_TRY(graft_xform__cast(&m, src + at * es, s->dtype, GRAFT_FLOAT32, k, ctx));
        if (graft_quantize(q, f, k, blocks, ctx) < 0) {
            graft_error_prefix(ctx, "%s:%u: quantize: block %llu", op->file ? op->file : "?",
                               op->line, (unsigned long long)(at / GRAFT_QK));
            return graft_ctx_status(ctx);
        }
        GRAFT_TRY(graft_xform__emit(o, blocks, (size_t)(k / GRAFT_QK * bb)));
    }
    return GRAFT_OK;
}

static int run_dequantize(const graft_op *op, const graft_shape *s, const uint8_t *src,
                          const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx)
{
    graft_quant_type q = (graft_quant_type)op->index;
    size_t bb = graft_quant_block_bytes(q);
    uint64_t nb = graft_op__numel(s) / bb;
    float f[BLOCKS * GRAFT_QK];
    (void)in, (void)nin;
    for (uint64_t at = 0; at < nb; at += BLOCKS) {
        uint64_t k = nb - at < BLOCKS ? nb - at : BLOCKS;
        GRAFT_TRY(graft_dequantize(q, src + at * bb, k, f, ctx));
        GRAFT_TRY(graft_xform__emit(o, f, (size_t)(k * GRAFT_QK * 4)));
    }
    return GRAFT_OK;
}

static int invert_quantize(const graft_op *op, const graft_shape *s, const graft_shape *in,
                           size_t nin, size_t which, graft_op *r, graft_ctx *ctx)
{
    (void)op, (void)s, (void)in, (void)nin, (void)which, (void)ctx;
    r->kind = GRAFT_OP_DEQUANTIZE;
    return GRAFT_OK;
}

static int invert_dequantize(const graft_op *op, const graft_shape *s, const graft_shape *in,
                             size_t nin, size_t which, graft_op *r, graft_ctx *ctx)
{
    (void)op, (void)s, (void)in, (void)nin, (void)which, (void)ctx;
    r->kind = GRAFT_OP_QUANTIZE;
    return GRAFT_OK;
}

static void json_quant(const graft_op *op, graft_jbuf *b)
{
    graft_jbuf_printf(b, "\"%s\"", names[op->index == GRAFT_Q4_0]);
}

const graft_op_def graft_op_def_quantize = {
    .name = "quantize", .minor = 1, .flags = 0, .parse = parse_quant, .infer = infer_quantize,
    .run = run_quantize, .invert = invert_quantize, .json = json_quant,
};

const graft_op_def graft_op_def_dequantize = {
    .name = "dequantize", .minor = 1, .flags = 0, .parse = parse_quant,
    .infer = infer_dequantize, .run = run_dequantize, .invert = invert_dequantize,
    .json = json_quant,
};
