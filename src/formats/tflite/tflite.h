/*
 * tflite.h - what the TFLite reader (tflite.c) leaves for its writer
 * (tflite_write.c): where each buffer's bytes and each reference live.
 */
#ifndef GRAFT_TFLITE_H
#define GRAFT_TFLITE_H

#include "format.h"

/* Field ids from tensorflow/compiler/mlir/lite/schema/schema.fbs (schema v3c). */
enum {
    TFL_MODEL_VERSION = 0, TFL_MODEL_SUBGRAPHS = 2, TFL_MODEL_BUFFERS = 4,
    TFL_SUBGRAPH_TENSORS = 0, TFL_SUBGRAPH_NAME = 4,
    TFL_BUFFER_DATA = 0, TFL_BUFFER_OFFSET = 1, TFL_BUFFER_SIZE = 2,
    TFL_TENSOR_SHAPE = 0, TFL_TENSOR_TYPE = 1, TFL_TENSOR_BUFFER = 2, TFL_TENSOR_NAME = 3,
    TFL_TENSOR_QUANTIZATION = 4, TFL_TENSOR_SPARSITY = 6,
    TFL_QUANT_SCALE = 2, TFL_QUANT_ZERO_POINT = 3, TFL_QUANT_DETAILS_TYPE = 4,
    TFL_QUANT_DIMENSION = 6,
};

typedef struct tfl_buffer {
    uint64_t data;       /* file offset of the bytes (0 when empty) */
    uint64_t size;       /* bytes */
    bool external;       /* the offset/size form (large models) */
} tfl_buffer;

/* A listed tensor's aux: its buffer index (low 32 bits) and the position of
 * its Tensor.buffer field (high 32 bits). */
#define TFL_AUX_BUFFER(aux) ((uint32_t)(aux))
#define TFL_AUX_FIELD(aux) ((size_t)((aux) >> 32))

typedef struct tfl_state {
    size_t size;               /* the FlatBuffer (file) size */
    size_t buffers_field;      /* position of Model.buffers (a uoffset) */
    uint32_t nbuffers;
    tfl_buffer *buffers;       /* owned; nbuffers entries */
} tfl_state;

/* The writer (tflite_write.c). */
int graft_tflite__write(const graft_model *m, const char *out_path, graft_fill *fill,
                        graft_ctx *ctx);

#endif
