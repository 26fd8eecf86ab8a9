/*
 * tf_tensorproto.h - a TensorFlow TensorProto (framework/tensor.proto) read
 * at the wire level (tf_graphdef.c): 1 dtype, 2 tensor_shape, 4
 * tensor_content, or typed repeated values.  Shared by the GraphDef reader
 * and the V1 checkpoint reader (whose SavedSlice data carry no dtype).
 */
#ifndef GRAFT_FORMATS_TF_TENSORPROTO_H
#define GRAFT_FORMATS_TF_TENSORPROTO_H

#include "model.h"
#include "rd.h"

typedef struct graft_tf_tproto {
    int dtype;
    uint32_t ndim;
    int64_t shape[GRAFT_MAX_NDIM];
    bool has_content;
    graft_rd content;    /* last tensor_content */
    uint32_t vfield;     /* typed field in use (13 or 7 for bfloat16) */
    uint64_t k;          /* typed values present (pairs for complex) */
    uint64_t str_bytes;  /* string_val: sum of lengths */
    uint64_t last_len;   /* string_val: length of the last one */
} graft_tf_tproto;

/* Parse the TensorProto in r; `dtype` (a DataType value) applies when the
 * proto has no dtype field. */
int graft_tf__parse_tensor(graft_rd r, int dtype, graft_tf_tproto *tp);
/* Decode its typed values into t's numel elements at dst (t->nbytes). */
int graft_tf__decode_typed(graft_rd r, const graft_tf_tproto *tp, const graft_tensor *t,
                           uint8_t *dst);
/* The same for a number tensor through buf (cap bytes, a multiple of the
 * element size), handed to flush(arg, buf, bytes, at) whenever it fills and
 * at the end; `at` is the offset the decoding has reached in r. */
typedef int (*graft_tf_flush_fn)(void *arg, const uint8_t *p, size_t n, uint64_t at);
int graft_tf__decode_pieces(graft_rd r, const graft_tf_tproto *tp, const graft_tensor *t,
                            uint8_t *buf, size_t cap, graft_tf_flush_fn flush, void *arg);

#endif
