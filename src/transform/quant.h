/*
 * quant.h - ggml block quantization kernels (Q8_0, Q4_0), bit for bit as
 * ggml's reference quantize_row_q8_0_ref / quantize_row_q4_0_ref and
 * dequantize_row_* (ggml/src/ggml-quants.c).  Plain entry points until the
 * op table (branch ops-rules) registers them as `quantize:` / `dequantize:`.
 *
 * Block layouts (ggml-common.h, 32 elements per block, little-endian):
 *   q8_0: f16 d, then 32 x int8 qs;                x = qs[j] * d     (34 bytes)
 *   q4_0: f16 d, then 16 bytes qs; element j < 16 is qs[j] & 15, element
 *         j + 16 is qs[j] >> 4;                    x = (q - 8) * d   (18 bytes)
 */
#ifndef GRAFT_TRANSFORM_QUANT_H
#define GRAFT_TRANSFORM_QUANT_H

#include "error.h"

#define GRAFT_QK 32  /* elements per block of both types */

typedef enum graft_quant_type { GRAFT_Q8_0 = 0, GRAFT_Q4_0 = 1 } graft_quant_type;

/* Bytes of one block of type q. */
size_t graft_quant_block_bytes(graft_quant_type q);
/* Quantize n float32 (n a multiple of 32) into n / 32 blocks at out. */
int graft_quantize(graft_quant_type q, const float *x, uint64_t n, uint8_t *out, graft_ctx *ctx);
/* Dequantize nblocks blocks into nblocks * 32 float32. */
int graft_dequantize(graft_quant_type q, const uint8_t *blocks, uint64_t nblocks, float *out,
                     graft_ctx *ctx);

#endif
