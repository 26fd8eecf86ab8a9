/*
 * op_layout.c - the ops that only reorder a tensor's elements: permute,
 * transpose and reshape (which moves nothing at all).
 */
#include "optab.h"

#include <inttypes.h>
#include <string.h>

/* ---- permute ------------------------------------------------------------ */

/* "OIHW->HWIO": out axis i is the input axis holding letter i of the right side. */
static int permute_letters(const graft_oparg *a, graft_op *op)
{
    const char *s = NULL, *arrow;
    GRAFT_TRY(graft_oparg_str(a, NULL, &s));
    arrow = strstr(s, "->");
    if (!arrow)
        return graft_oparg_fail(a, NULL, "expected 'LETTERS->LETTERS' or a list of axes, got '%s'",
                                s);
    size_t len = strlen(s), nl = (size_t)(arrow - s), nr = len - nl - 2;
    const char *right = arrow + 2;
    if (nl > GRAFT_MAX_NDIM) return graft_oparg_fail(a, NULL, "more than %d axes", GRAFT_MAX_NDIM);
    for (size_t i = 0; i < nl; i++) {
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')))
            return graft_oparg_fail(a, NULL, "'%c' in '%s' is not a letter", s[i], s);
        if (memchr(s, s[i], i))
            return graft_oparg_fail(a, NULL, "letter '%c' repeated in '%s'", s[i], s);
    }
    for (size_t i = 0; i < nr; i++) {
        if (memchr(right, right[i], i))
            return graft_oparg_fail(a, NULL, "letter '%c' repeated in '%s'", right[i], s);
        if (!memchr(s, right[i], nl))
            return graft_oparg_fail(a, NULL,
                                    "letter '%c' of the right side is not on the left in '%s'",
                                    right[i], s);
    }
    if (nl != nr)
        return graft_oparg_fail(a, NULL, "'%s' has %zu letters on the left and %zu on the right",
                                s, nl, nr);
    op->v = graft_oparg_alloc(a, (nl ? nl : 1) * sizeof *op->v);
    if (!op->v) return GRAFT_ENOMEM;
    for (size_t i = 0; i < nr; i++) op->v[i] = (const char *)memchr(s, right[i], nl) - s;
    op->n = (uint32_t)nl;
    return 0;
}

/* v[0..n) must be a permutation of 0..n-1. */
static int check_permutation(const graft_oparg *a, const char *key, const int64_t *v, uint32_t n)
{
    bool seen[GRAFT_MAX_NDIM] = {false};
    for (uint32_t i = 0; i < n; i++) {
        if (v[i] < 0 || v[i] >= (int64_t)n || seen[v[i]])
            return graft_oparg_fail(a, key, "%s%snot a permutation of 0..%u", key ? key : "",
                                    key ? ": " : "", n ? n - 1 : 0);
        seen[v[i]] = true;
    }
    return 0;
}

static int parse_permute(const graft_oparg *a, graft_op *op)
{
    if (graft_oparg_type(a) != GRAFT_OPARG_LIST) return permute_letters(a, op);
    GRAFT_TRY(graft_oparg_ints(a, NULL, 0, GRAFT_MAX_NDIM - 1, &op->v, &op->n));
    return check_permutation(a, NULL, op->v, op->n);
}

static int infer_permute(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *s,
                         graft_ctx *ctx)
{
    graft_shape r = *s;
    uint64_t seen = 0; /* ranks are capped at 64 */
    (void)in, (void)nin;
    if (op->n != s->ndim)
        return graft_op__error(ctx, op, GRAFT_ESHAPE, "source has rank %u, the op needs %u",
                               s->ndim, op->n);
    for (uint32_t i = 0; i < op->n; i++) {
        uint32_t ax;
        if (!graft_op__axis(op->v[i], s->ndim, &ax))
            return graft_op__error(ctx, op, GRAFT_ERULE,
                                   "axis %" PRId64 " out of range for rank %u", op->v[i], s->ndim);
        if (seen >> ax & 1)
            return graft_op__error(ctx, op, GRAFT_ERULE, "axis %" PRId64 " repeated", op->v[i]);
        seen |= 1ull << ax;
        r.dim[i] = s->dim[ax];
    }
    *s = r;
    return GRAFT_OK;
}

static int run_permute(const graft_op *op, const graft_shape *s, const uint8_t *src,
                       const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx)
{
    uint32_t axes[GRAFT_MAX_NDIM];
    (void)in, (void)nin, (void)ctx;
    for (uint32_t i = 0; i < s->ndim; i++) graft_op__axis(op->v[i], s->ndim, &axes[i]);
    return graft_xform__permute(o, src, graft_dtype_size(s->dtype), s->ndim, s->dim, axes);
}

/* The inverse permutation: r->v[axis[i]] = i. */
static int invert_permute(const graft_op *op, const graft_shape *s, const graft_shape *in,
                          size_t nin, size_t which, graft_op *r, graft_ctx *ctx)
{
    (void)in, (void)nin, (void)which;
    GRAFT_TRY(graft_op__alloc_v(r, op->n, ctx));
    for (uint32_t i = 0; i < op->n; i++) {
        uint32_t axis = 0;
        graft_op__axis(op->v[i], s->ndim, &axis);
        r->v[axis] = i;
    }
    return GRAFT_OK;
}

static void json_ints(const graft_op *op, graft_jsonw *b)
{
    graft_jsonw_ints(b, op->v, op->n);
}

const graft_op_def graft_op_def_permute = {
    .name = "permute", .minor = 0, .flags = GRAFT_OPF_LAYOUT, .parse = parse_permute,
    .infer = infer_permute, .run = run_permute, .invert = invert_permute, .json = json_ints,
};

/* ---- transpose ---------------------------------------------------------- */

static int parse_transpose(const graft_oparg *a, graft_op *op)
{
    (void)op;
    if (graft_oparg_type(a) != GRAFT_OPARG_NONE) return graft_oparg_fail(a, NULL, "takes no value");
    return 0;
}

static int infer_transpose(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *s,
                           graft_ctx *ctx)
{
    graft_shape r = *s;
    (void)op, (void)in, (void)nin, (void)ctx;
    for (uint32_t k = 0; k < s->ndim; k++) r.dim[k] = s->dim[s->ndim - 1 - k];
    *s = r;
    return GRAFT_OK;
}

static int run_transpose(const graft_op *op, const graft_shape *s, const uint8_t *src,
                         const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx)
{
    uint32_t axes[GRAFT_MAX_NDIM];
    (void)op, (void)in, (void)nin, (void)ctx;
    for (uint32_t i = 0; i < s->ndim; i++) axes[i] = s->ndim - 1 - i;
    return graft_xform__permute(o, src, graft_dtype_size(s->dtype), s->ndim, s->dim, axes);
}

static int invert_self(const graft_op *op, const graft_shape *s, const graft_shape *in,
                       size_t nin, size_t which, graft_op *r, graft_ctx *ctx)
{
    (void)op, (void)s, (void)in, (void)nin, (void)which, (void)r, (void)ctx;
    return GRAFT_OK;
}

const graft_op_def graft_op_def_transpose = {
    .name = "transpose", .minor = 0, .flags = GRAFT_OPF_LAYOUT | GRAFT_OPF_BARE,
    .parse = parse_transpose, .infer = infer_transpose, .run = run_transpose,
    .invert = invert_self, .json = NULL,
};

/* ---- reshape ------------------------------------------------------------ */

static int parse_reshape(const graft_oparg *a, graft_op *op)
{
    bool minus = false;
    GRAFT_TRY(graft_oparg_ints(a, NULL, -1, INT64_MAX, &op->v, &op->n));
    for (uint32_t i = 0; i < op->n; i++) {
        if (op->v[i] != -1) continue;
        if (minus) return graft_oparg_fail(a, NULL, "more than one -1");
        minus = true;
    }
    return 0;
}

static int infer_reshape(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *s,
                         graft_ctx *ctx)
{
    char a[256], b[256];
    uint64_t numel = graft_op__numel(s), known = 1;
    int wild = -1;
    (void)in, (void)nin;
    if (op->n > GRAFT_MAX_NDIM)
        return graft_op__error(ctx, op, GRAFT_ERULE, "%u dimensions, at most %d", op->n,
                               GRAFT_MAX_NDIM);
    for (uint32_t i = 0; i < op->n; i++) {
        if (op->v[i] == -1) {
            if (wild >= 0) return graft_op__error(ctx, op, GRAFT_ERULE, "more than one -1");
            wild = (int)i;
        } else if (op->v[i] < 0) {
            return graft_op__error(ctx, op, GRAFT_ERULE, "dimension %" PRId64 " is negative",
                                   op->v[i]);
        } else if (graft_mul_overflow(known, (uint64_t)op->v[i], &known) || known > INT64_MAX) {
            return graft_op__error(ctx, op, GRAFT_ESHAPE, "%s has too many elements",
                                   graft_op__dims(a, sizeof a, op->n, op->v));
        }
    }
    graft_op__dims(a, sizeof a, op->n, op->v);
    graft_op__dims(b, sizeof b, s->ndim, s->dim);
    if (wild >= 0 && known == 0)
        return graft_op__error(ctx, op, GRAFT_ESHAPE, "%s: -1 is undefined next to a 0 dimension",
                               a);
    if (wild >= 0 && numel % known != 0)
        return graft_op__error(ctx, op, GRAFT_ESHAPE,
                               "%s cannot hold the %" PRIu64 " elements of the source %s", a,
                               numel, b);
    if (wild < 0 && known != numel)
        return graft_op__error(ctx, op, GRAFT_ESHAPE,
                               "%s has %" PRIu64 " elements, the source %s has %" PRIu64, a, known,
                               b, numel);
    s->ndim = op->n;
    for (uint32_t i = 0; i < op->n; i++)
        s->dim[i] = (int)i == wild ? (int64_t)(numel / known) : op->v[i];
    return GRAFT_OK;
}

/* Back to the input's dims. */
static int invert_reshape(const graft_op *op, const graft_shape *s, const graft_shape *in,
                          size_t nin, size_t which, graft_op *r, graft_ctx *ctx)
{
    (void)op, (void)in, (void)nin, (void)which;
    GRAFT_TRY(graft_op__alloc_v(r, s->ndim, ctx));
    memcpy(r->v, s->dim, s->ndim * sizeof *r->v);
    return GRAFT_OK;
}

const graft_op_def graft_op_def_reshape = {
    .name = "reshape", .minor = 0, .flags = GRAFT_OPF_LAYOUT, .parse = parse_reshape,
    .infer = infer_reshape, .run = NULL, .invert = invert_reshape, .json = json_ints,
};
