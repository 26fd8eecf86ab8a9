/* quant.c - quantize / dequantize with a skeleton's scale and zero point (see quant.h). */
#include "quant.h"

#include <math.h>
#include <string.h>

#include "rd.h"

/* The range of a quantized dtype; false for any other. */
static bool qrange(graft_dtype dt, double *lo, double *hi)
{
    switch (dt) {
    case GRAFT_INT8: *lo = -128; *hi = 127; return true;
    case GRAFT_UINT8: *lo = 0; *hi = 255; return true;
    case GRAFT_INT16: *lo = -32768; *hi = 32767; return true;
    case GRAFT_INT32: *lo = -2147483648.0; *hi = 2147483647.0; return true;
    default: return false;
    }
}

/* Elements per channel step (product of the dims after axis) and channels. */
static void channels(uint32_t ndim, const int64_t *shape, const graft_quant *q,
                     uint64_t *inner, uint64_t *nch)
{
    *inner = 1;
    *nch = 1;
    if (q->nscale <= 1) return;
    for (uint32_t i = (uint32_t)q->axis + 1; i < ndim; i++) *inner *= (uint64_t)shape[i];
    *nch = (uint64_t)shape[q->axis];
}

int graft_xform__quant_check(graft_dtype dt, uint32_t ndim, const int64_t *shape,
                             const graft_quant *q, graft_ctx *ctx)
{
    double lo, hi;
    if (!qrange(dt, &lo, &hi))
        return graft_error(ctx, GRAFT_ESHAPE, "%s is not a quantized integer type",
                           graft_dtype_name(dt));
    if (!q || q->nscale == 0)
        return graft_error(ctx, GRAFT_ESHAPE, "the tensor has no scale and zero point");
    if (q->nscale > 1 && (q->axis < 0 || (uint32_t)q->axis >= ndim ||
                          (uint64_t)shape[q->axis] != q->nscale))
        return graft_error(ctx, GRAFT_ESHAPE, "%zu scales do not match axis %d of a %u-d tensor",
                           q->nscale, (int)q->axis, ndim);
    if (q->nzero && q->nzero != q->nscale)
        return graft_error(ctx, GRAFT_ESHAPE, "%zu scales but %zu zero points", q->nscale,
                           q->nzero);
    for (size_t c = 0; c < q->nscale; c++) {
        if (!(q->scale[c] > 0) || !isfinite(q->scale[c]))
            return graft_error(ctx, GRAFT_ESHAPE, "scale %zu is %g", c, (double)q->scale[c]);
        if (c < q->nzero && ((double)q->zero_point[c] < lo || (double)q->zero_point[c] > hi))
            return graft_error(ctx, GRAFT_ESHAPE, "zero point %zu is %lld, outside %s", c,
                               (long long)q->zero_point[c], graft_dtype_name(dt));
    }
    return GRAFT_OK;
}

static void put_q(uint8_t *p, graft_dtype dt, double v)
{
    switch (dt) {
    case GRAFT_INT8: *p = (uint8_t)(int8_t)v; break;
    case GRAFT_UINT8: *p = (uint8_t)v; break;
    case GRAFT_INT16: graft_put_le16(p, (uint16_t)(int16_t)v); break;
    default: graft_put_le32(p, (uint32_t)(int32_t)v); break;
    }
}

static int64_t get_q(const uint8_t *p, graft_dtype dt)
{
    switch (dt) {
    case GRAFT_INT8: return (int8_t)*p;
    case GRAFT_UINT8: return *p;
    case GRAFT_INT16: return (int16_t)graft_le16(p);
    default: return (int32_t)graft_le32(p);
    }
}

static uint64_t count(uint32_t ndim, const int64_t *shape)
{
    uint64_t n = 1;
    for (uint32_t i = 0; i < ndim; i++) n *= (uint64_t)shape[i];
    return n;
}

int graft_xform__quantize(graft_xout *o, const float *src, graft_dtype dt, uint32_t ndim,
                          const int64_t *shape, const graft_quant *q, graft_ctx *ctx)
{
    uint8_t slab[4096];
    size_t es = graft_dtype_size(dt), fill = 0;
    uint64_t numel = count(ndim, shape), inner, nch;
    double lo = 0, hi = 0;

    GRAFT_TRY(graft_xform__quant_check(dt, ndim, shape, q, ctx));
    qrange(dt, &lo, &hi);
    channels(ndim, shape, q, &inner, &nch);
    for (uint64_t i = 0; i < numel; i++) {
        size_t c = (size_t)((i / inner) % nch);
        float x;
        memcpy(&x, (const uint8_t *)src + 4 * i, 4);
        if (isnan(x))
            return graft_error(ctx, GRAFT_ESHAPE, "element %llu is NaN", (unsigned long long)i);
        /* float32 division and half-away rounding, as TfLiteRound(val / (float)scale) */
        double v = round((double)(x / q->scale[c])) + (double)(c < q->nzero ? q->zero_point[c] : 0);
        put_q(slab + fill, dt, v < lo ? lo : v > hi ? hi : v);
        fill += es;
        if (fill + es > sizeof slab) {
            GRAFT_TRY(graft_xform__emit(o, slab, fill));
            fill = 0;
        }
    }
    return graft_xform__emit(o, slab, fill);
}

int graft_xform__dequantize(graft_xout *o, const uint8_t *src, graft_dtype dt, uint32_t ndim,
                            const int64_t *shape, const graft_quant *q, graft_ctx *ctx)
{
    uint8_t slab[4096];
    size_t es = graft_dtype_size(dt), fill = 0;
    uint64_t numel = count(ndim, shape), inner, nch;

    GRAFT_TRY(graft_xform__quant_check(dt, ndim, shape, q, ctx));
    channels(ndim, shape, q, &inner, &nch);
    for (uint64_t i = 0; i < numel; i++) {
        size_t c = (size_t)((i / inner) % nch);
        int64_t zp = c < q->nzero ? q->zero_point[c] : 0;
        float x = (float)((double)q->scale[c] * (double)(get_q(src + es * i, dt) - zp));
        memcpy(slab + fill, &x, 4);
        fill += 4;
        if (fill + 4 > sizeof slab) {
            GRAFT_TRY(graft_xform__emit(o, slab, fill));
            fill = 0;
        }
    }
    return graft_xform__emit(o, slab, fill);
}
