/*
 * op_split.c - the ops that cut a tensor along one axis or join several:
 * chunks (reorder equal chunks), take (one chunk, or a run of rows) and
 * concat (join the sources of a pairs entry).  Kernels: split.c.
 */
#include "optab.h"

#include <inttypes.h>
#include <stdlib.h>

/* The axis, and the divisibility chunks and take both need (parts > 0). */
static int divisible_axis(const graft_op *op, const graft_shape *s, int64_t parts, uint32_t *axis,
                          graft_ctx *ctx)
{
    GRAFT_TRY(graft_op__want_axis(op, op->axis, s->ndim, axis, ctx));
    if (parts > 0 && s->dim[*axis] % parts != 0)
        return graft_op__error(ctx, op, GRAFT_ESHAPE,
                               "axis %u has %" PRId64 " rows, not divisible into %" PRId64
                               " chunks", *axis, s->dim[*axis], parts);
    return GRAFT_OK;
}

/* ---- chunks ------------------------------------------------------------- */

static int parse_chunks(const graft_oparg *a, graft_op *op)
{
    static const char *const keys[] = {"axis", "order", NULL};
    GRAFT_TRY(graft_oparg_keys(a, keys));
    GRAFT_TRY(graft_op__parse_axis(a, op));
    GRAFT_TRY(graft_oparg_ints(a, "order", 0, GRAFT_MAX_NDIM - 1, &op->v, &op->n));
    if (op->n == 0) return graft_oparg_fail(a, "order", "order is empty");
    bool seen[GRAFT_MAX_NDIM] = {false};
    for (uint32_t i = 0; i < op->n; i++) {
        if (op->v[i] >= (int64_t)op->n || seen[op->v[i]])
            return graft_oparg_fail(a, "order", "order: not a permutation of 0..%u", op->n - 1);
        seen[op->v[i]] = true;
    }
    return 0;
}

static int infer_chunks(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *s,
                        graft_ctx *ctx)
{
    uint32_t axis = 0;
    (void)in, (void)nin;
    if (op->n == 0) return graft_op__error(ctx, op, GRAFT_ERULE, "empty order");
    for (uint32_t i = 0; i < op->n; i++) {
        if (op->v[i] < 0 || op->v[i] >= op->n)
            return graft_op__error(ctx, op, GRAFT_ERULE,
                                   "order entry %" PRId64 " out of range 0..%u", op->v[i],
                                   op->n - 1);
        for (uint32_t j = 0; j < i; j++)
            if (op->v[j] == op->v[i])
                return graft_op__error(ctx, op, GRAFT_ERULE, "order entry %" PRId64 " repeated",
                                       op->v[i]);
    }
    return divisible_axis(op, s, op->n, &axis, ctx);
}

static int run_chunks(const graft_op *op, const graft_shape *s, const uint8_t *src,
                      const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx)
{
    uint32_t axis = 0;
    uint64_t outer, mid, inner;
    (void)in, (void)nin, (void)ctx;
    graft_op__axis(op->axis, s->ndim, &axis);
    graft_op__split3(s, axis, &outer, &mid, &inner);
    return graft_xform__chunks(o, src, outer, mid, inner, op->v, op->n);
}

/* The inverse order: chunk order[i] goes back to place i. */
static int invert_chunks(const graft_op *op, const graft_shape *s, const graft_shape *in,
                         size_t nin, size_t which, graft_op *r, graft_ctx *ctx)
{
    (void)s, (void)in, (void)nin, (void)which;
    GRAFT_TRY(graft_op__alloc_v(r, op->n, ctx));
    for (uint32_t i = 0; i < op->n; i++) r->v[op->v[i]] = i;
    return GRAFT_OK;
}

static void json_chunks(const graft_op *op, graft_jsonw *b)
{
    graft_jsonw_printf(b, "{\"axis\": %d, \"order\": ", (int)op->axis);
    graft_jsonw_ints(b, op->v, op->n);
    graft_jsonw_printf(b, "}");
}

const graft_op_def graft_op_def_chunks = {
    .name = "chunks", .minor = 0, .flags = GRAFT_OPF_LAYOUT, .parse = parse_chunks,
    .infer = infer_chunks, .run = run_chunks, .invert = invert_chunks, .json = json_chunks,
};

/* ---- take --------------------------------------------------------------- */

/* {axis, count, index}, or (format 1.1) {axis, start, length}: rows
 * [start, start + length), kept in v[0..2) as graft_ops_invert makes it. */
static int parse_take(const graft_oparg *a, graft_op *op)
{
    static const char *const keys0[] = {"axis", "count", "index", NULL};
    static const char *const keys1[] = {"axis", "count", "index", "start", "length", NULL};
    GRAFT_TRY(graft_oparg_keys(a, graft_oparg_minor(a) ? keys1 : keys0));
    GRAFT_TRY(graft_op__parse_axis(a, op));
    if (graft_oparg_has(a, "start") || graft_oparg_has(a, "length")) {
        if (graft_oparg_has(a, "count") || graft_oparg_has(a, "index"))
            return graft_oparg_fail(a, NULL, "give either count and index or start and length");
        op->v = graft_oparg_alloc(a, 2 * sizeof *op->v);
        if (!op->v) return GRAFT_ENOMEM;
        op->n = 2;
        GRAFT_TRY(graft_oparg_int(a, "start", 0, INT64_MAX, &op->v[0]));
        return graft_oparg_int(a, "length", 0, INT64_MAX, &op->v[1]);
    }
    if (!graft_oparg_has(a, "count")) return graft_oparg_fail(a, NULL, "'count' is required");
    if (!graft_oparg_has(a, "index")) return graft_oparg_fail(a, NULL, "'index' is required");
    GRAFT_TRY(graft_oparg_int(a, "count", 1, INT32_MAX, &op->count));
    GRAFT_TRY(graft_oparg_int(a, "index", 0, INT32_MAX, &op->index));
    if (op->index >= op->count)
        return graft_oparg_fail(a, "index", "index %lld is not below count %lld",
                                (long long)op->index, (long long)op->count);
    return 0;
}

static int infer_take(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *s,
                      graft_ctx *ctx)
{
    uint32_t axis = 0;
    (void)in, (void)nin;
    if (op->n == 2) {
        GRAFT_TRY(graft_op__rows_inside(op, s, op->v[0], op->v[1], &axis, ctx));
        s->dim[axis] = op->v[1];
        return GRAFT_OK;
    }
    if (op->count < 1)
        return graft_op__error(ctx, op, GRAFT_ERULE, "count %" PRId64 " must be at least 1",
                               op->count);
    if (op->index < 0 || op->index >= op->count)
        return graft_op__error(ctx, op, GRAFT_ERULE, "index %" PRId64 " not in 0..%" PRId64,
                               op->index, op->count - 1);
    GRAFT_TRY(divisible_axis(op, s, op->count, &axis, ctx));
    s->dim[axis] /= op->count;
    return GRAFT_OK;
}

static int run_take(const graft_op *op, const graft_shape *s, const uint8_t *src,
                    const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx)
{
    uint32_t axis = 0;
    uint64_t rows;
    (void)in, (void)nin, (void)ctx;
    if (op->n == 2)
        return graft_op__emit_rows(op, s, src, (uint64_t)op->v[0], (uint64_t)op->v[1], o);
    graft_op__axis(op->axis, s->ndim, &axis);
    rows = (uint64_t)s->dim[axis] / (uint64_t)op->count;
    return graft_op__emit_rows(op, s, src, rows * (uint64_t)op->index, rows, o);
}

/* Piece `index` of `count` (or rows v[0]+v[1]) of the joined tensor: a
 * concat that knows which piece this source was. */
static int invert_take(const graft_op *op, const graft_shape *s, const graft_shape *in,
                       size_t nin, size_t which, graft_op *r, graft_ctx *ctx)
{
    (void)s, (void)in, (void)nin, (void)which;
    r->kind = GRAFT_OP_CONCAT;
    if (op->n == 2) {
        GRAFT_TRY(graft_op__alloc_v(r, 2, ctx));
        r->v[0] = op->v[0];
        r->v[1] = op->v[1];
        r->count = 0;
    }
    return GRAFT_OK;
}

static void json_take(const graft_op *op, graft_jsonw *b)
{
    if (op->n == 2)
        graft_jsonw_printf(b, "{\"axis\": %d, \"start\": %" PRId64 ", \"length\": %" PRId64 "}",
                          (int)op->axis, op->v[0], op->v[1]);
    else
        graft_jsonw_printf(b, "{\"axis\": %d, \"count\": %" PRId64 ", \"index\": %" PRId64 "}",
                          (int)op->axis, op->count, op->index);
}

const graft_op_def graft_op_def_take = {
    .name = "take", .minor = 0, .flags = GRAFT_OPF_PART, .parse = parse_take,
    .infer = infer_take, .run = run_take, .invert = invert_take, .json = json_take,
};

/* ---- concat ------------------------------------------------------------- */

static int infer_concat(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *out,
                        graft_ctx *ctx)
{
    char a[256], b[256];
    uint32_t axis = 0;
    uint64_t total = 0;
    *out = in[0];
    GRAFT_TRY(graft_op__want_axis(op, op->axis, in[0].ndim, &axis, ctx));
    GRAFT_TRY(graft_op__same_dtype(op, in, nin, false, ctx));
    for (size_t s = 0; s < nin; s++) {
        bool same = in[s].ndim == in[0].ndim;
        for (uint32_t i = 0; same && i < in[0].ndim; i++)
            same = i == axis || in[s].dim[i] == in[0].dim[i];
        if (!same)
            return graft_op__error(ctx, op, GRAFT_ESHAPE,
                                   "source %zu has shape %s, source 0 %s: only axis %u may differ",
                                   s, graft_op__dims(a, sizeof a, in[s].ndim, in[s].dim),
                                   graft_op__dims(b, sizeof b, in[0].ndim, in[0].dim), axis);
        if (graft_add_overflow(total, (uint64_t)in[s].dim[axis], &total) || total > INT64_MAX)
            return graft_op__error(ctx, op, GRAFT_ESHAPE, "joined axis %u is too long", axis);
    }
    out->dim[axis] = (int64_t)total;
    return GRAFT_OK;
}

static int run_concat(const graft_op *op, const graft_shape *s, const uint8_t *src,
                      const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx)
{
    const uint8_t *srcs[64];
    uint64_t mids[64], outer = 1, inner = 0;
    const uint8_t **sp = nin <= 64 ? srcs : graft_malloc(ctx, nin * sizeof *sp);
    uint64_t *mp = nin <= 64 ? mids : graft_malloc(ctx, nin * sizeof *mp);
    uint32_t axis = 0;
    int rc;
    (void)src;
    if (!sp || !mp) {
        rc = graft_error_oom(ctx, "concat sources");
        goto cleanup;
    }
    graft_op__axis(op->axis, s->ndim, &axis);
    for (size_t k = 0; k < nin; k++) {
        graft_op__split3(&in[k].shape, axis, &outer, &mp[k], &inner);
        sp[k] = in[k].data;
    }
    rc = graft_xform__concat(o, sp, mp, nin, outer, inner);
cleanup:
    if (sp != srcs) free(sp);
    if (mp != mids) free(mp);
    return rc;
}

/* Source `which`'s piece: chunk `which` of nin when all are as long along
 * the axis, else its run of rows. */
static int invert_concat(const graft_op *op, const graft_shape *s, const graft_shape *in,
                         size_t nin, size_t which, graft_op *r, graft_ctx *ctx)
{
    bool equal = true;
    int64_t start = 0;
    uint32_t axis = 0;
    (void)s;
    graft_op__axis(op->axis, in[0].ndim, &axis);
    for (size_t k = 0; k < nin; k++) {
        equal = equal && in[k].dim[axis] == in[0].dim[axis];
        if (k < which) start += in[k].dim[axis];
    }
    r->kind = GRAFT_OP_TAKE;
    if (equal) {
        r->count = (int64_t)nin;
        r->index = (int64_t)which;
        return GRAFT_OK;
    }
    GRAFT_TRY(graft_op__alloc_v(r, 2, ctx));
    r->v[0] = start;
    r->v[1] = in[which].dim[axis];
    return GRAFT_OK;
}

const graft_op_def graft_op_def_concat = {
    .name = "concat", .minor = 0, .flags = GRAFT_OPF_JOIN | GRAFT_OPF_LAYOUT,
    .parse = graft_op__parse_axis_only, .infer = infer_concat, .run = run_concat,
    .invert = invert_concat, .json = graft_op__json_axis,
};
