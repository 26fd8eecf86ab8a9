/*
 * ggml_quant.c - Q8_0 and Q4_0 block quantization as ggml's reference C code
 * does it (see ggml_quant.h).  The arithmetic is float32 throughout, in ggml's
 * order, so results match it bit for bit: q8_0 rounds half away from zero
 * (roundf), q4_0 truncates x + 8.5; scales are stored as float16 rounded
 * to nearest even (the cast kernel, as GGML_FP32_TO_FP16).
 */
#include "ggml_quant.h"

#include "kernels.h"

#include <math.h>
#include <string.h>

size_t graft_ggml_block_bytes(graft_ggml_block q) { return q == GRAFT_GGML_Q8_0 ? 34 : 18; }

static int f32_to_f16(float d, uint8_t out[2], graft_ctx *ctx)
{
    uint8_t in[4];
    graft_xout o = {.mem = out, .ctx = ctx};
    memcpy(in, &d, 4); /* host order: graft only builds on little-endian hosts */
    return graft_xform__cast(&o, in, GRAFT_FLOAT32, GRAFT_FLOAT16, 1, ctx);
}

static int f16_to_f32(const uint8_t in[2], float *d, graft_ctx *ctx)
{
    uint8_t out[4];
    graft_xout o = {.mem = out, .ctx = ctx};
    GRAFT_TRY(graft_xform__cast(&o, in, GRAFT_FLOAT16, GRAFT_FLOAT32, 1, ctx));
    memcpy(d, out, 4);
    return GRAFT_OK;
}

static int q8_block(const float *x, uint8_t *y, graft_ctx *ctx)
{
    float amax = 0.0f;
    for (int j = 0; j < GRAFT_QK; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]); /* MAX */
    const float d = amax / ((1 << 7) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    GRAFT_TRY(f32_to_f16(d, y, ctx));
    for (int j = 0; j < GRAFT_QK; j++) y[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    return GRAFT_OK;
}

static int q4_block(const float *x, uint8_t *y, graft_ctx *ctx)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < GRAFT_QK; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    GRAFT_TRY(f32_to_f16(d, y, ctx));
    for (int j = 0; j < GRAFT_QK / 2; j++) {
        const float x0 = x[j] * id, x1 = x[GRAFT_QK / 2 + j] * id;
        const int8_t a = (int8_t)(x0 + 8.5f), b = (int8_t)(x1 + 8.5f);
        const uint8_t xi0 = (uint8_t)(a < 15 ? a : 15), xi1 = (uint8_t)(b < 15 ? b : 15);
        y[2 + j] = (uint8_t)(xi0 | xi1 << 4);
    }
    return GRAFT_OK;
}

int graft_ggml_quantize(graft_ggml_block q, const float *x, uint64_t n, uint8_t *out,
                        graft_ctx *ctx)
{
    size_t bb = graft_ggml_block_bytes(q);
    if (n % GRAFT_QK)
        return graft_error(ctx, GRAFT_ESHAPE, "quantize: %llu elements are not whole blocks of %d",
                           (unsigned long long)n, GRAFT_QK);
    for (uint64_t i = 0; i < n / GRAFT_QK; i++) {
        const float *xb = x + i * GRAFT_QK;
        /* ggml's float-to-int conversions are undefined past int8: refuse
         * what it cannot quantize rather than guess */
        for (int j = 0; j < GRAFT_QK; j++)
            if (!isfinite(xb[j]))
                return graft_error(ctx, GRAFT_ERROR, "quantize: element %llu is not finite",
                                   (unsigned long long)(i * GRAFT_QK + (uint64_t)j));
        GRAFT_TRY(q == GRAFT_GGML_Q8_0 ? q8_block(xb, out + i * bb, ctx) : q4_block(xb, out + i * bb, ctx));
    }
    return GRAFT_OK;
}

int graft_ggml_dequantize(graft_ggml_block q, const uint8_t *blocks, uint64_t nblocks,
                          float *out, graft_ctx *ctx)
{
    size_t bb = graft_ggml_block_bytes(q);
    for (uint64_t i = 0; i < nblocks; i++) {
        const uint8_t *b = blocks + i * bb;
        float d, *y = out + i * GRAFT_QK;
        GRAFT_TRY(f16_to_f32(b, &d, ctx));
        for (int j = 0; j < GRAFT_QK && q == GRAFT_GGML_Q8_0; j++) y[j] = (float)(int8_t)b[2 + j] * d;
        for (int j = 0; j < GRAFT_QK / 2 && q == GRAFT_GGML_Q4_0; j++) {
            y[j] = (float)((b[2 + j] & 0x0f) - 8) * d;
            y[j + GRAFT_QK / 2] = (float)((b[2 + j] >> 4) - 8) * d;
        }
    }
    return GRAFT_OK;
}
