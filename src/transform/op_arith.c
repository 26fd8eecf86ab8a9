/*
 * op_arith.c - element-wise arithmetic: sum (of the sources of a pairs
 * entry) and scale (x * mul + add).  Both compute in float64 and round once
 * to the dtype of their input; they accept float16, bfloat16, float32 and
 * float64.
 */
#include "optab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The inputs' element types and data. */
static int join_inputs(const graft_tview *in, size_t nin, const uint8_t ***src, graft_dtype **dt,
                       graft_ctx *ctx)
{
    *src = graft_malloc(ctx, nin * sizeof **src);
    *dt = graft_malloc(ctx, nin * sizeof **dt);
    if (!*src || !*dt) {
        free(*src);
        free(*dt);
        return graft_error_oom(ctx, "op inputs");
    }
    for (size_t k = 0; k < nin; k++) {
        (*src)[k] = in[k].data;
        (*dt)[k] = in[k].shape.dtype;
    }
    return GRAFT_OK;
}

/* ---- sum ---------------------------------------------------------------- */

static int parse_bare(const graft_oparg *a, graft_op *op)
{
    (void)op;
    if (graft_oparg_type(a) != GRAFT_OPARG_NONE) return graft_oparg_fail(a, NULL, "takes no value");
    return 0;
}

static int infer_sum(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *cur,
                     graft_ctx *ctx)
{
    GRAFT_TRY(graft_op__same_dtype(op, in, nin, true, ctx));
    GRAFT_TRY(graft_op__same_shape(op, in, nin, ctx));
    *cur = in[0];
    return GRAFT_OK;
}

static void add_all(const void *payload, double *const *x, size_t nin, uint64_t first,
                    double *out, size_t n)
{
    (void)payload, (void)first;
    memcpy(out, x[0], n * sizeof *out);
    for (size_t k = 1; k < nin; k++)
        for (size_t i = 0; i < n; i++) out[i] += x[k][i];
}

static int run_sum(const graft_op *op, const graft_shape *s, const uint8_t *src,
                   const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx)
{
    const uint8_t **srcs = NULL;
    graft_dtype *dt = NULL;
    (void)op, (void)src;
    GRAFT_TRY(join_inputs(in, nin, &srcs, &dt, ctx));
    int rc = graft_op__map_f64(o, srcs, dt, nin, graft_op__numel(s), s->dtype, add_all, NULL, ctx);
    free(srcs);
    free(dt);
    return rc;
}

const graft_op_def graft_op_def_sum = {
    .name = "sum", .minor = 1, .flags = GRAFT_OPF_JOIN | GRAFT_OPF_BARE, .parse = parse_bare,
    .infer = infer_sum, .run = run_sum, .invert = NULL, .json = NULL,
};

/* ---- scale -------------------------------------------------------------- */

static int parse_scale(const graft_oparg *a, graft_op *op)
{
    static const char *const keys[] = {"mul", "add", NULL};
    GRAFT_TRY(graft_oparg_keys(a, keys));
    op->mul = 1;
    op->add = 0;
    if (graft_oparg_has(a, "mul")) GRAFT_TRY(graft_oparg_num(a, "mul", &op->mul));
    if (graft_oparg_has(a, "add")) GRAFT_TRY(graft_oparg_num(a, "add", &op->add));
    return 0;
}

static int infer_scale(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *cur,
                       graft_ctx *ctx)
{
    (void)in, (void)nin;
    return graft_op__same_dtype(op, cur, 1, true, ctx);
}

static void mul_add(const void *payload, double *const *x, size_t nin, uint64_t first,
                    double *out, size_t n)
{
    const graft_op *op = payload;
    (void)nin, (void)first;
    for (size_t i = 0; i < n; i++) out[i] = x[0][i] * op->mul + op->add;
}

static int run_scale(const graft_op *op, const graft_shape *s, const uint8_t *src,
                     const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx)
{
    (void)in, (void)nin;
    return graft_op__map_f64(o, &src, &s->dtype, 1, graft_op__numel(s), s->dtype, mul_add, op,
                             ctx);
}

/* y = x * M + A  =>  x = y * (1 / M) + (-A / M) */
static int invert_scale(const graft_op *op, const graft_shape *s, const graft_shape *in,
                        size_t nin, size_t which, graft_op *r, graft_ctx *ctx)
{
    (void)s, (void)in, (void)nin, (void)which;
    if (op->mul == 0) return graft_op__error(ctx, op, GRAFT_ERULE, "mul 0 has no reverse");
    r->mul = 1 / op->mul;
    r->add = -op->add / op->mul;
    if (!isfinite(r->mul) || !isfinite(r->add)) /* mul 1e-310: no finite inverse */
        return graft_op__error(ctx, op, GRAFT_ERULE, "mul %g has no finite reverse", op->mul);
    return GRAFT_OK;
}

static void json_scale(const graft_op *op, graft_jsonw *b)
{
    graft_jsonw_printf(b, "{\"mul\": ");
    graft_jsonw_num(b, op->mul);
    graft_jsonw_printf(b, ", \"add\": ");
    graft_jsonw_num(b, op->add == 0 ? 0 : op->add); /* no -0 */
    graft_jsonw_printf(b, "}");
}

const graft_op_def graft_op_def_scale = {
    .name = "scale", .minor = 1, .flags = 0, .parse = parse_scale, .infer = infer_scale,
    .run = run_scale, .invert = invert_scale, .json = json_scale,
};
