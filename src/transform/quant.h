/*
 * quant.h - the quantize / dequantize kernels (quant.c), affine int8/uint8
 * (also int16/int32, as TFLite stores biases) with per-tensor or
 * per-channel scale and zero point, as TFLite's reference kernels do:
 *   quantize:   q = clamp(round(x / (float)scale) + zero_point, dtype range),
 *               round half away from zero (TfLiteRound), float32 division
 *               (tensorflow/lite/kernels/internal/reference/quantize.h);
 *   dequantize: x = (float)(scale * (double)(q - zero_point))
 *               (reference/dequantize.h).
 * Per-channel: element i uses channel (i / inner) % shape[axis], inner the
 * product of the dimensions after `axis`.
 */
#ifndef GRAFT_TRANSFORM_QUANT_H
#define GRAFT_TRANSFORM_QUANT_H

#include "kernels.h"

/* Whether q fits a tensor of dtype dt and this shape: a quantized integer
 * dtype, one scale or one per channel of shape[axis], scales finite and > 0,
 * zero points (none = 0) inside dt's range.  GRAFT_ESHAPE with the reason. */
int graft_xform__quant_check(graft_dtype dt, uint32_t ndim, const int64_t *shape,
                             const graft_quant *q, graft_ctx *ctx);
/* numel float32 elements of src (row-major, shape) into dt; a NaN is refused
 * naming its index. */
int graft_xform__quantize(graft_xout *o, const float *src, graft_dtype dt, uint32_t ndim,
                          const int64_t *shape, const graft_quant *q, graft_ctx *ctx);
/* numel dt elements of src into float32. */
int graft_xform__dequantize(graft_xout *o, const uint8_t *src, graft_dtype dt, uint32_t ndim,
                            const int64_t *shape, const graft_quant *q, graft_ctx *ctx);

#endif
