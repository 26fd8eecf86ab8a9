/*
 * ops.h - the operations applied to source tensors on the way to a target
 * (the `ops:` of a rules file), as pure functions over row-major buffers.
 *
 * An op chain turns one source tensor (or several, when the chain starts with
 * an op that joins them: concat, stack, sum, fold_bn) into one target tensor.  graft_ops_infer() computes shapes and
 * dtypes and checks every op's input, naming the rule's file:line on failure;
 * graft_ops_run() computes the bytes; graft_ops_invert() gives the chain
 * that undoes it (for `apply --reverse`).
 */
#ifndef GRAFT_TRANSFORM_OPS_H
#define GRAFT_TRANSFORM_OPS_H

#include "model.h"
#include "sink.h"

/* One value per line of ops.def (GRAFT_OP_PERMUTE ...); what each op does
 * is in its graft_op_def (optab.h) and man/graft-rules.5. */
typedef enum graft_op_kind {
#define OP(E, name, minor) GRAFT_OP_##E,
#include "ops.def"
#undef OP
    GRAFT_OP_COUNT
} graft_op_kind;

typedef enum graft_bn_part { GRAFT_BN_WEIGHT = 0, GRAFT_BN_BIAS = 1 } graft_bn_part;

typedef struct graft_op {
    graft_op_kind kind;
    uint32_t n;          /* entries in v */
    int64_t *v;          /* permute: axes; reshape: dims; chunks: order; take (n == 2):
                          * {start, length}; owned by the rules (or the inverted chain) */
    int32_t axis;        /* chunks, take, concat, stack, unstack, pad, slice (negative
                          * counts from the end) */
    int64_t count;       /* take: number of chunks; in a concat made by graft_ops_invert,
                          * count/index (or v, n == 2) say which piece of the take it
                          * undoes this source was */
    int64_t index;       /* take: which chunk; unstack: which slice; quantize,
                          * dequantize: the block type (a graft_quant_type) */
    int64_t start;       /* slice: first row */
    int64_t length;      /* slice: rows; pad: the axis' length after padding (`to`) */
    double mul, add;     /* scale: x * mul + add */
    double eps;          /* fold_bn */
    double value;        /* pad: the fill value */
    graft_bn_part part;  /* fold_bn */
    graft_dtype dtype;   /* cast, quantize: target dtype */
    const graft_quant *quant; /* quantize / dequantize: the target's / source's parameters,
                               * set by graft_ops_bind_quant on a copy; borrowed */
    const char *file;    /* rules file, for messages; borrowed */
    uint32_t line, col;  /* position of the op in that file (1-based) */
} graft_op;

/* A shape with its dtype. */
typedef struct graft_shape {
    graft_dtype dtype;
    uint32_t ndim;
    int64_t dim[GRAFT_MAX_NDIM];
} graft_shape;

/* A read-only row-major little-endian tensor in memory. */
typedef struct graft_tview {
    graft_shape shape;
    const uint8_t *data;  /* numel * dtype size bytes; borrowed */
} graft_tview;

/* Shapes after each op: out receives the final shape.  Errors read
 * "<file>:<line>: permute: source has rank 2, the op needs 4". */
int graft_ops_infer(const graft_op *ops, size_t nops, const graft_shape *in, size_t nin,
                    graft_shape *out, graft_ctx *ctx);
/* Shape after the first k ops (for `explain`); k <= nops. */
int graft_ops_infer_prefix(const graft_op *ops, size_t nops, size_t k, const graft_shape *in,
                           size_t nin, graft_shape *out, graft_ctx *ctx);
/* Run the chain and write the result's bytes to `out`.  A chain of several
 * data-moving ops runs as one gather plan (gather.h), block by block; only
 * a chain the plan does not take (a quantize before other ops, a dequantize
 * before a layout op, a reshape the plan's axes cannot regroup) runs op by
 * op through whole intermediates. */
int graft_ops_run(const graft_op *ops, size_t nops, const graft_tview *in, size_t nin,
                  graft_sink *out, graft_ctx *ctx);
/* The same, calling release(payload) after every GRAFT_OPS_RELEASE bytes of
 * output: the caller drops the mapped source pages from its resident set
 * (the kernels fault back in from the page cache any they read again). */
#define GRAFT_OPS_RELEASE ((uint64_t)16 << 20)
int graft_ops_run_released(const graft_op *ops, size_t nops, const graft_tview *in, size_t nin,
                           graft_sink *out, void (*release)(void *payload), void *payload,
                           graft_ctx *ctx);
/* The same, with read(payload, at, dst, n, ctx): copies n bytes at `at`,
 * inside one of the inputs, into dst without mapping them (a pread of the
 * file behind it), for the kernels that read a large source in scattered
 * pieces (the out-of-core permute, the banded transpose); < 0 with its ctx
 * argument set on error.  It is called from two threads at once, each with
 * a ctx of its own. */
int graft_ops_run_io(const graft_op *ops, size_t nops, const graft_tview *in, size_t nin,
                     graft_sink *out, void (*release)(void *payload),
                     int (*read)(void *payload, const uint8_t *at, void *dst, size_t n,
                                 graft_ctx *ctx),
                     void *payload, graft_ctx *ctx);
/* The same, into memory (dst holds the final shape's bytes and must not
 * overlap the inputs).  A cast that meets a value the target type cannot
 * hold fails with "<file>:<line>: cast: element 7: 300 does not fit in int8";
 * a sink may then hold part of the output (abort it). */
int graft_ops_run_mem(const graft_op *ops, size_t nops, const graft_tview *in, size_t nin,
                      uint8_t *dst, graft_ctx *ctx);
/*
 * The inverse chain, for inputs of shapes `in` (as given to the forward
 * chain): permute -> inverse permute, reshape -> reshape back, chunks ->
 * inverse order, cast -> cast back, transpose -> transpose.  A chain with
 * take or concat is inverted one source at a time: `which` selects the
 * source of a concat (its inverse ends with take) and a take inverts to
 * the matching concat position (at most one take or concat per chain, else
 * GRAFT_ERULE).  Each inverted op keeps the forward op's file:line.  *out
 * is allocated (free with graft_ops_free); v arrays are owned by it.
 */
int graft_ops_invert(const graft_op *ops, size_t nops, const graft_shape *in, size_t nin,
                     size_t which, graft_op **out, size_t *nout, graft_ctx *ctx);
void graft_ops_free(graft_op *ops, size_t nops);
/* A copy of the chain (free() it; the v arrays stay the rules') whose
 * quantize ops use `target`'s quantization parameters and dequantize ops
 * `source`'s; *out NULL (use ops as they are) when it has neither op. */
int graft_ops_bind_quant(const graft_op *ops, size_t nops, const graft_quant *source,
                         const graft_quant *target, graft_op **out, graft_ctx *ctx);

/* Whether op consumes all the sources of a pairs entry (concat, stack, sum,
 * fold_bn). */
bool graft_ops_joins(const graft_op *op);
/* Whether the chain takes one part of its source (take, unstack, slice):
 * several targets reading one source through such chains split it. */
bool graft_ops_take_part(const graft_op *ops, size_t nops);

/* The op's name in a rules file ("permute"), "op" for an unknown kind. */
const char *graft_op_name(graft_op_kind kind);
/* The op as JSON: op_json.h. */

#endif
