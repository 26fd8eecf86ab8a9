/*
 * op_pad.c - pad: lengthen one axis to `to` rows, the new rows at the end
 * filled with `value` (vocabulary padding); slice: keep `length` rows of an
 * axis from `start` (trimming).  pad's reverse is a slice from row 0, and a
 * slice from row 0 reverses to a pad (the trimmed rows come back as 0).
 */
#include "optab.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* ---- pad ---------------------------------------------------------------- */

static int parse_pad(const graft_oparg *a, graft_op *op)
{
    static const char *const keys[] = {"axis", "to", "value", NULL};
    GRAFT_TRY(graft_oparg_keys(a, keys));
    GRAFT_TRY(graft_op__parse_axis(a, op));
    GRAFT_TRY(graft_oparg_int(a, "to", 0, INT64_MAX, &op->length));
    op->value = 0;
    if (graft_oparg_has(a, "value")) GRAFT_TRY(graft_oparg_num(a, "value", &op->value));
    return 0;
}

static int infer_pad(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *cur,
                     graft_ctx *ctx)
{
    uint32_t axis = 0;
    uint8_t elem[16];
    (void)in, (void)nin;
    GRAFT_TRY(graft_op__want_axis(op, op->axis, cur->ndim, &axis, ctx));
    if (op->length < cur->dim[axis])
        return graft_op__error(ctx, op, GRAFT_ESHAPE,
                               "axis %u has %" PRId64 " rows, more than to: %" PRId64, axis,
                               cur->dim[axis], op->length);
    if (graft_xform__scalar(elem, cur->dtype, op->value, ctx) < 0) {
        graft_error_prefix(ctx, "%s:%u: pad: value", op->file ? op->file : "?", op->line);
        return graft_ctx_status(ctx);
    }
    cur->dim[axis] = op->length;
    return GRAFT_OK;
}

static int run_pad(const graft_op *op, const graft_shape *s, const uint8_t *src,
                   const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx)
{
    uint32_t axis = 0;
    uint64_t outer, mid, inner;
    size_t esize = graft_dtype_size(s->dtype);
    uint8_t fill[4096];
    (void)in, (void)nin;
    graft_op__axis(op->axis, s->ndim, &axis);
    graft_op__split3(s, axis, &outer, &mid, &inner);
    GRAFT_TRY(graft_xform__scalar(fill, s->dtype, op->value, ctx));
    for (size_t k = esize; k + esize <= sizeof fill; k += esize) memcpy(fill + k, fill, esize);
    size_t chunk = sizeof fill / esize * esize;
    uint64_t extra = ((uint64_t)op->length - mid) * inner;
    for (uint64_t i = 0; i < outer; i++) {
        GRAFT_TRY(graft_xform__emit(o, src + i * mid * inner, (size_t)(mid * inner)));
        for (uint64_t left = extra; left > 0;) {
            size_t n = left < chunk ? (size_t)left : chunk;
            GRAFT_TRY(graft_xform__emit(o, fill, n));
            left -= n;
        }
    }
    return GRAFT_OK;
}

/* Rows 0.. of the input's length. */
static int invert_pad(const graft_op *op, const graft_shape *s, const graft_shape *in,
                      size_t nin, size_t which, graft_op *r, graft_ctx *ctx)
{
    uint32_t axis = 0;
    (void)op, (void)in, (void)nin, (void)which, (void)ctx;
    graft_op__axis(op->axis, s->ndim, &axis);
    r->kind = GRAFT_OP_SLICE;
    r->start = 0;
    r->length = s->dim[axis];
    return GRAFT_OK;
}

static void json_pad(const graft_op *op, graft_jsonw *b)
{
    graft_jsonw_printf(b, "{\"axis\": %d, \"to\": %" PRId64 ", \"value\": ", (int)op->axis,
                      op->length);
    graft_jsonw_num(b, op->value);
    graft_jsonw_printf(b, "}");
}

const graft_op_def graft_op_def_pad = {
    .name = "pad", .minor = 1, .flags = 0, .parse = parse_pad, .infer = infer_pad,
    .run = run_pad, .invert = invert_pad, .json = json_pad,
};

/* ---- slice -------------------------------------------------------------- */

static int parse_slice(const graft_oparg *a, graft_op *op)
{
    static const char *const keys[] = {"axis", "start", "length", NULL};
    GRAFT_TRY(graft_oparg_keys(a, keys));
    GRAFT_TRY(graft_op__parse_axis(a, op));
    GRAFT_TRY(graft_oparg_int(a, "start", 0, INT64_MAX, &op->start));
    return graft_oparg_int(a, "length", 0, INT64_MAX, &op->length);
}

static int infer_slice(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *cur,
                       graft_ctx *ctx)
{
    uint32_t axis = 0;
    (void)in, (void)nin;
    GRAFT_TRY(graft_op__rows_inside(op, cur, op->start, op->length, &axis, ctx));
    cur->dim[axis] = op->length;
    return GRAFT_OK;
}

static int run_slice(const graft_op *op, const graft_shape *s, const uint8_t *src,
                     const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx)
{
    (void)in, (void)nin, (void)ctx;
    return graft_op__emit_rows(op, s, src, (uint64_t)op->start, (uint64_t)op->length, o);
}

static int invert_slice(const graft_op *op, const graft_shape *s, const graft_shape *in,
                        size_t nin, size_t which, graft_op *r, graft_ctx *ctx)
{
    uint32_t axis = 0;
    (void)in, (void)nin, (void)which;
    if (op->start != 0)
        return graft_op__error(ctx, op, GRAFT_ERULE,
                               "a slice from row %" PRId64 " has no reverse (pad adds rows at "
                               "the end)", op->start);
    graft_op__axis(op->axis, s->ndim, &axis);
    r->kind = GRAFT_OP_PAD;
    r->length = s->dim[axis];
    r->value = 0;
    return GRAFT_OK;
}

static void json_slice(const graft_op *op, graft_jsonw *b)
{
    graft_jsonw_printf(b, "{\"axis\": %d, \"start\": %" PRId64 ", \"length\": %" PRId64 "}",
                      (int)op->axis, op->start, op->length);
}

const graft_op_def graft_op_def_slice = {
    .name = "slice", .minor = 1, .flags = GRAFT_OPF_PART, .parse = parse_slice,
    .infer = infer_slice, .run = run_slice, .invert = invert_slice, .json = json_slice,
};
