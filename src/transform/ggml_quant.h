/*
 * ggml_quant.h - ggml block quantization kernels (Q8_0, Q4_0), bit for bit as
 * ggml's reference quantize_row_q8_0_ref / quantize_row_q4_0_ref and
 * dequantize_row_* (ggml/src/ggml-quants.c), run by the ops `quantize: q8_0`
 * / `dequantize: q4_0` (op_quant.c).
 *
 * Block layouts (ggml-common.h, 32 elements per block, little-endian):
 *   q8_0: f16 d, then 32 x int8 qs;                x = qs[j] * d     (34 bytes)
 *   q4_0: f16 d, then 16 bytes qs; element j < 16 is qs[j] & 15, element
 *         j + 16 is qs[j] >> 4;                    x = (q - 8) * d   (18 bytes)
 */
#ifndef GRAFT_TRANSFORM_GGML_QUANT_H
#define GRAFT_TRANSFORM_GGML_QUANT_H

#include "error.h"

#define GRAFT_QK 32  /* elements per block of both types */

typedef enum graft_ggml_block { GRAFT_GGML_Q8_0 = 1, GRAFT_GGML_Q4_0 = 2 } graft_ggml_block;

/* Bytes of one block of type q. */
size_t graft_ggml_block_bytes(graft_ggml_block q);
/* Quantize n float32 (n a multiple of 32) into n / 32 blocks at out. */
int graft_ggml_quantize(graft_ggml_block q, const float *x, uint64_t n, uint8_t *out,
                        graft_ctx *ctx);
/* Dequantize nblocks blocks into nblocks * 32 float32. */
int graft_ggml_dequantize(graft_ggml_block q, const uint8_t *blocks, uint64_t nblocks,
                          float *out, graft_ctx *ctx);

#endif
