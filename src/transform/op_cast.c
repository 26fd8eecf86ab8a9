/* op_cast.c - cast: convert every element to another dtype (kernel: cast.c). */
#include "optab.h"

static int parse_cast(const graft_oparg *a, graft_op *op)
{
    const char *s = NULL;
    GRAFT_TRY(graft_oparg_str(a, NULL, &s));
    op->dtype = graft_dtype_from_name(s);
    if (op->dtype == GRAFT_DTYPE_INVALID || op->dtype == GRAFT_STRING)
        return graft_oparg_fail(a, NULL, "unknown dtype '%s'", s);
    return 0;
}

static int infer_cast(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *s,
                      graft_ctx *ctx)
{
    (void)in, (void)nin;
    if (graft_dtype_size(op->dtype) == 0)
        return graft_op__error(ctx, op, GRAFT_ERULE, "cannot cast to %s",
                               graft_dtype_name(op->dtype));
    if (!graft_xform__can_cast(s->dtype, op->dtype))
        return graft_op__error(ctx, op, GRAFT_ESHAPE, "cannot cast %s to %s",
                               graft_dtype_name(s->dtype), graft_dtype_name(op->dtype));
    s->dtype = op->dtype;
    return GRAFT_OK;
}

static int run_cast(const graft_op *op, const graft_shape *s, const uint8_t *src,
                    const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx)
{
    (void)in, (void)nin;
    return graft_xform__cast(o, src, s->dtype, op->dtype, graft_op__numel(s), ctx);
}

/* Back to the input's dtype. */
static int invert_cast(const graft_op *op, const graft_shape *s, const graft_shape *in,
                       size_t nin, size_t which, graft_op *r, graft_ctx *ctx)
{
    (void)op, (void)in, (void)nin, (void)which, (void)ctx;
    r->dtype = s->dtype;
    return GRAFT_OK;
}

static void json_cast(const graft_op *op, graft_jsonw *b)
{
    graft_jsonw_printf(b, "\"%s\"", graft_dtype_name(op->dtype));
}

const graft_op_def graft_op_def_cast = {
    .name = "cast", .minor = 0, .flags = 0, .parse = parse_cast, .infer = infer_cast,
    .run = run_cast, .invert = invert_cast, .json = json_cast,
};
