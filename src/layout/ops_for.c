/*
 * ops_for.c - the op chain two layouts call for (for `explain` and for a
 * suggester): from a tensor of layout s to one of layout t, the same element
 * mapping the layout check expects.
 *
 * The source is reshaped to its factors (one axis per letter: gates and
 * units apart, a flattened feature map's channels and positions apart, a
 * PyTorch depthwise O as C, M), the gate axis reordered with `chunks` when
 * the two gate orders differ, the factors permuted into the target's order
 * and the result reshaped to the target's shape.  Steps that change nothing
 * are left out, and a swap of two axes is written `transpose`.
 */
#include "lcheck.h"
#include "layout_int.h"

#include <stdlib.h>
#include <string.h>

int graft_layout__add_op(graft_op *ops, size_t *n, graft_op_kind kind, const int64_t *v, uint32_t nv,
                  int32_t axis, graft_ctx *ctx)
{
    graft_op *op = &ops[(*n)++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->axis = axis;
    op->dtype = GRAFT_DTYPE_INVALID;
    if (nv) {
        if (!(op->v = graft_malloc(ctx, nv * sizeof *op->v))) return graft_error_oom(ctx, "ops");
        memcpy(op->v, v, nv * sizeof *v);
        op->n = nv;
    }
    return 0;
}

static bool same_dims(const int64_t *a, uint32_t na, const graft_shape *s)
{
    if (na != s->ndim) return false;
    for (uint32_t i = 0; i < na; i++)
        if (a[i] != s->dim[i]) return false;
    return true;
}

int graft_layout_ops(const graft_layout *s, const graft_shape *ss, const graft_layout *t,
                     const graft_shape *ts, graft_op **out, size_t *nout, graft_ctx *ctx)
{
    graft_layout sl = *s, tl = *t;
    lview sv, tv;
    char why[160];
    graft_op *ops = NULL;
    size_t n = 0;
    int64_t dims[MAXF], perm[MAXF];
    int rc = 0;

    *out = NULL;
    *nout = 0;
    if (!graft_lview__reconcile(&tl, &sl, ts->ndim, ss->ndim, why, sizeof why) ||
        !graft_lview__build(&sl, ss, &tl, ts, &sv) || !graft_lview__build(&tl, ts, &sl, ss, &tv) ||
        sv.nf != tv.nf || sl.role == GRAFT_ROLE_RNN_BIAS || tl.role == GRAFT_ROLE_RNN_BIAS)
        return graft_error(ctx, GRAFT_ENOTFOUND, "no op chain between layouts: %s",
                           why[0] ? why : "their axes differ");
    for (int i = 0; i < tv.nf; i++) {
        int j = graft_lview__find(&sv, tv.f[i].letter);
        if (j < 0 || sv.f[j].size != tv.f[i].size)
            return graft_error(ctx, GRAFT_ENOTFOUND, "no op chain between layouts: axis %c",
                               tv.f[i].letter);
        perm[i] = j;
    }
    if (!(ops = graft_calloc(ctx, 4, sizeof *ops))) return graft_error_oom(ctx, "ops");
    /* 1. the source's factors */
    for (int i = 0; i < sv.nf; i++) dims[i] = sv.f[i].size;
    if (!same_dims(dims, (uint32_t)sv.nf, ss) &&
        (rc = graft_layout__add_op(ops, &n, GRAFT_OP_RESHAPE, dims, (uint32_t)sv.nf, 0, ctx)) < 0)
        goto fail;
    /* 2. gates into the target's order */
    int g = graft_lview__find(&sv, 'G');
    if (g >= 0) {
        int64_t order[8];
        bool moved = false;
        uint32_t ng = (uint32_t)sv.f[g].size;
        for (uint32_t k = 0; k < ng && k < 8; k++) {
            const char *q = sv.gates;
            while (*q && graft_lview__gate(*q) != graft_lview__gate(tv.gates[k])) q++;
            order[k] = q - sv.gates;
            moved |= order[k] != (int64_t)k;
        }
        if (moved && (rc = graft_layout__add_op(ops, &n, GRAFT_OP_CHUNKS, order, ng, g, ctx)) < 0) goto fail;
    }
    /* 3. the factors into the target's order */
    bool identity = true;
    for (int i = 0; i < tv.nf; i++) identity &= perm[i] == i;
    if (!identity) {
        bool swap2 = tv.nf == 2;
        if ((rc = graft_layout__add_op(ops, &n, swap2 ? GRAFT_OP_TRANSPOSE : GRAFT_OP_PERMUTE, perm,
                         swap2 ? 0 : (uint32_t)tv.nf, 0, ctx)) < 0)
            goto fail;
    }
    /* 4. the target's shape (after any op the tensor has the target's factors) */
    for (int i = 0; i < tv.nf; i++) dims[i] = tv.f[i].size;
    if (n ? !same_dims(dims, (uint32_t)tv.nf, ts) : !same_dims(ss->dim, ss->ndim, ts)) {
        if ((rc = graft_layout__add_op(ops, &n, GRAFT_OP_RESHAPE, ts->dim, ts->ndim, 0, ctx)) < 0) goto fail;
    }
    *out = ops;
    *nout = n;
    return 0;
fail:
    graft_ops_free(ops, n);
    return rc;
}
