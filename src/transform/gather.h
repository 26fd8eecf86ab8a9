/*
 * gather.h - a whole op chain composed into one gather plan (gather.c
 * builds it, gather_run.c runs it), internal to src/transform/.
 *
 * The layout ops of a chain (permute, transpose, reshape, chunks, take,
 * slice, unstack, pad, and a leading concat or stack) only decide where each
 * output element comes from.  They are composed into pieces: boxes of the
 * output, each an affine map into one source (element offset = off +
 * sum(coord * stride)) or a constant (a pad's fill).  The value ops (cast,
 * scale) are element-wise and independent of position, so they run after
 * the gather, in the chain's order, on each output block.  A leading sum or
 * fold_bn is computed from its sources gathered through the same maps (a
 * second map gives fold_bn's channel), and a trailing quantize (ggml blocks
 * or one scale) runs on the output stream.  So a chain runs block by block:
 * no intermediate holds a whole tensor.
 *
 * A plan is built over "physical" axes: each logical axis of the current
 * shape is a run of physical axes, so a reshape only regroups them (or
 * splits one); it cannot be composed when it would merge axes the maps do
 * not keep contiguous in a way a later op needs, and then (or for an op the
 * plan does not take) graft_gplan_build returns 1 and the caller runs the
 * chain op by op.
 */
#ifndef GRAFT_TRANSFORM_GATHER_H
#define GRAFT_TRANSFORM_GATHER_H

#include "kernels.h"

#define GRAFT_GP_MAXP 32 /* physical axes of a plan */
#define GRAFT_GP_MAXE 16 /* largest element (complex128) */

typedef struct graft_gpiece {
    int32_t src;                         /* source index; -1: a constant */
    uint32_t stage;                      /* constant: value ops before the pad that made it */
    int64_t lo[GRAFT_GP_MAXP], hi[GRAFT_GP_MAXP]; /* the box, in physical coordinates */
    int64_t off[2];                      /* map 0: element of the source; 1: channel */
    int64_t st[2][GRAFT_GP_MAXP];
    uint8_t fill[16];                    /* constant: its final bytes */
} graft_gpiece;

typedef struct graft_gplan {
    uint32_t np;                         /* physical axes */
    int64_t pd[GRAFT_GP_MAXP];           /* their sizes */
    uint32_t ndim;                       /* logical axes */
    uint32_t grp[GRAFT_MAX_NDIM + 1];    /* logical axis i = physical [grp[i], grp[i+1]) */
    graft_gpiece *p;
    size_t n, cap;
    const graft_op *head;                /* sum, fold_bn, quantize or dequantize first */
    graft_shape head_in;                 /* the shape head reads (source 0's) */
    const graft_op *vals[64];            /* cast, scale, in chain order */
    graft_dtype vdt[65];                 /* dtype before vals[i]; vdt[nvals] after */
    size_t nvals;
    const graft_op *tail;                /* quantize last */
    graft_dtype tail_in;
    graft_dtype base;                    /* what the gather moves */
    graft_shape out;                     /* the chain's result */
    bool identity;                       /* the layout moves nothing */
    uint64_t base_numel;                 /* elements of source 0 (of the head's result) */
    bool fills;                          /* some piece is a constant */
} graft_gplan;

/* 0: *g describes the chain over inputs of shapes in[0..nin); 1: the chain
 * is not one a plan takes (run it op by op); < 0: an error (a bad chain). */
int graft_gplan_build(graft_gplan *g, const graft_op *ops, size_t nops, const graft_shape *in,
                      size_t nin, graft_ctx *ctx);
/* Emit the chain's result into o. */
int graft_gplan_run(const graft_gplan *g, const graft_tview *in, size_t nin, graft_xout *o,
                    graft_ctx *ctx);
void graft_gplan_free(graft_gplan *g);
/* The piece holding output position pos (row-major over g->out), and the
 * element of its source there in *off (map 0); NULL if none does.  The
 * layout check's point queries of a large tensor. */
const graft_gpiece *graft_gplan_piece_at(const graft_gplan *g, uint64_t pos, int64_t *off);
/* Tests only: elements per block (0: the default, 128 Ki). */
void graft_gplan__set_block(size_t elements);

/* fold_bn's arithmetic (op_fold_bn.c), shared with the plan's blocks. */
typedef struct graft_fold {
    double *scale;       /* gamma / sqrt(var + eps), per channel */
    const double *mean, *beta;
    uint64_t per;        /* weight: elements per channel */
    bool bias, has_b;
    size_t first_bn;     /* index of gamma among the sources */
} graft_fold;
int graft_fold__prepare(const graft_op *op, const graft_tview *in, size_t nin, graft_fold *f,
                        graft_ctx *ctx);
/* out[i] for element x[i] (unused without b) of channel ch[i] (NULL: the
 * element's index first + i decides it). */
void graft_fold__at(const graft_fold *f, const double *x, const int64_t *ch, uint64_t first,
                    double *out, size_t n);
void graft_fold__free(graft_fold *f);

#endif
