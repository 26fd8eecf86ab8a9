/*
 * op_stack.c - stack: the sources of a pairs entry, all of one shape, become
 * one tensor with a new axis; unstack: slice `index` of an axis, with the
 * axis dropped (a stacked source feeding per-layer targets).  Each undoes
 * the other.  Kernels: split.c (a stack is a concat of rows of one).
 */
#include "optab.h"

#include <inttypes.h>
#include <stdlib.h>

static int infer_stack(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *cur,
                       graft_ctx *ctx)
{
    uint32_t axis = 0;
    if (in[0].ndim + 1 > GRAFT_MAX_NDIM)
        return graft_op__error(ctx, op, GRAFT_ESHAPE, "rank %u is the most a tensor has",
                               in[0].ndim);
    GRAFT_TRY(graft_op__want_axis(op, op->axis, in[0].ndim + 1, &axis, ctx));
    GRAFT_TRY(graft_op__same_dtype(op, in, nin, false, ctx));
    GRAFT_TRY(graft_op__same_shape(op, in, nin, ctx));
    cur->dtype = in[0].dtype;
    cur->ndim = in[0].ndim + 1;
    for (uint32_t i = 0, j = 0; i < cur->ndim; i++)
        cur->dim[i] = i == axis ? (int64_t)nin : in[0].dim[j++];
    return GRAFT_OK;
}

static int run_stack(const graft_op *op, const graft_shape *s, const uint8_t *src,
                     const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx)
{
    uint32_t axis = 0;
    uint64_t outer = 1, inner = graft_dtype_size(s->dtype);
    const uint8_t **sp = graft_malloc(ctx, nin * sizeof *sp);
    uint64_t *mp = graft_malloc(ctx, nin * sizeof *mp);
    int rc;
    (void)src;
    if (!sp || !mp) {
        rc = graft_error_oom(ctx, "stack sources");
        goto cleanup;
    }
    graft_op__axis(op->axis, s->ndim + 1, &axis);
    for (uint32_t i = 0; i < s->ndim; i++) {
        if (i < axis)
            outer *= (uint64_t)s->dim[i];
        else
            inner *= (uint64_t)s->dim[i];
    }
    for (size_t k = 0; k < nin; k++) {
        sp[k] = in[k].data;
        mp[k] = 1;
    }
    rc = graft_xform__concat(o, sp, mp, nin, outer, inner);
cleanup:
    free(sp);
    free(mp);
    return rc;
}

/* Source `which` is slice `which` of the stacked axis. */
static int invert_stack(const graft_op *op, const graft_shape *s, const graft_shape *in,
                        size_t nin, size_t which, graft_op *r, graft_ctx *ctx)
{
    (void)op, (void)s, (void)in, (void)nin, (void)ctx;
    r->kind = GRAFT_OP_UNSTACK;
    r->index = (int64_t)which;
    return GRAFT_OK;
}

const graft_op_def graft_op_def_stack = {
    .name = "stack", .minor = 1, .flags = GRAFT_OPF_JOIN | GRAFT_OPF_LAYOUT,
    .parse = graft_op__parse_axis_only, .infer = infer_stack, .run = run_stack,
    .invert = invert_stack, .json = graft_op__json_axis,
};

/* ---- unstack ------------------------------------------------------------ */

static int parse_unstack(const graft_oparg *a, graft_op *op)
{
    static const char *const keys[] = {"axis", "index", NULL};
    GRAFT_TRY(graft_oparg_keys(a, keys));
    GRAFT_TRY(graft_op__parse_axis(a, op));
    return graft_oparg_int(a, "index", 0, INT64_MAX, &op->index);
}

static int infer_unstack(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *cur,
                         graft_ctx *ctx)
{
    uint32_t axis = 0;
    (void)in, (void)nin;
    GRAFT_TRY(graft_op__want_axis(op, op->axis, cur->ndim, &axis, ctx));
    if (op->index < 0 || op->index >= cur->dim[axis])
        return graft_op__error(ctx, op, GRAFT_ESHAPE,
                               "index %" PRId64 " outside axis %u of %" PRId64 " rows", op->index,
                               axis, cur->dim[axis]);
    for (uint32_t i = axis; i + 1 < cur->ndim; i++) cur->dim[i] = cur->dim[i + 1];
    cur->ndim--;
    return GRAFT_OK;
}

static int run_unstack(const graft_op *op, const graft_shape *s, const uint8_t *src,
                       const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx)
{
    (void)in, (void)nin, (void)ctx;
    return graft_op__emit_rows(op, s, src, (uint64_t)op->index, 1, o);
}

/* Piece `index` of a stack (joined back by the planner, as take is). */
static int invert_unstack(const graft_op *op, const graft_shape *s, const graft_shape *in,
                          size_t nin, size_t which, graft_op *r, graft_ctx *ctx)
{
    uint32_t axis = 0;
    (void)in, (void)nin, (void)which, (void)ctx;
    graft_op__axis(op->axis, s->ndim, &axis);
    r->kind = GRAFT_OP_STACK;
    r->axis = (int32_t)axis;
    r->count = s->dim[axis];
    return GRAFT_OK;
}

static void json_unstack(const graft_op *op, graft_jsonw *b)
{
    graft_jsonw_printf(b, "{\"axis\": %d, \"index\": %" PRId64 "}", (int)op->axis, op->index);
}

const graft_op_def graft_op_def_unstack = {
    .name = "unstack", .minor = 1, .flags = GRAFT_OPF_PART,
    .parse = parse_unstack, .infer = infer_unstack, .run = run_unstack,
    .invert = invert_unstack, .json = json_unstack,
};
