/*
 * tf_common.h - the TensorFlow DataType enum (framework/types.proto) and its
 * mapping to graft dtypes, shared by the checkpoint, SavedModel and GraphDef
 * readers.  Quantized, resource and variant types have no graft dtype.
 */
#ifndef GRAFT_FORMATS_TF_COMMON_H
#define GRAFT_FORMATS_TF_COMMON_H

#include "graft.h"

/* graft dtype of a TensorFlow DataType value; GRAFT_DTYPE_INVALID if none. */
static inline graft_dtype graft_tf__dtype(uint64_t tf)
{
    switch (tf) {
    case 1: return GRAFT_FLOAT32;
    case 2: return GRAFT_FLOAT64;
    case 3: return GRAFT_INT32;
    case 4: return GRAFT_UINT8;
    case 5: return GRAFT_INT16;
    case 6: return GRAFT_INT8;
    case 7: return GRAFT_STRING;
    case 8: return GRAFT_COMPLEX64;
    case 9: return GRAFT_INT64;
    case 10: return GRAFT_BOOL;
    case 14: return GRAFT_BFLOAT16;
    case 17: return GRAFT_UINT16;
    case 18: return GRAFT_COMPLEX128;
    case 19: return GRAFT_FLOAT16;
    case 22: return GRAFT_UINT32;
    case 23: return GRAFT_UINT64;
    default: return GRAFT_DTYPE_INVALID;
    }
}

/* TensorFlow DataType value of a graft dtype (0 = DT_INVALID). */
static inline int graft_tf__dtype_to_tf(graft_dtype dt)
{
    for (int v = 1; v <= 23; v++)
        if (graft_tf__dtype((uint64_t)v) == dt) return v;
    return 0;
}

/* Messages a TensorFlow graph file holds. */
enum { GRAFT_TF_GRAPHDEF = 0, GRAFT_TF_METAGRAPHDEF = 1, GRAFT_TF_SAVEDMODEL = 2 };

/* Refuse bytes that are not that message (its top-level fields' wire types,
 * and the graph or meta graph it must hold), naming the message expected;
 * defined in tf_graphdef.c. */
int graft_tf__check_message(int kind, const uint8_t *p, size_t n, graft_ctx *ctx);

#endif
