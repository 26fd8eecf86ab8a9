/*
 * gather.c - building a chain's gather plan (gather.h); gather_run.c runs it.
 *
 * Building walks the chain once, keeping the current tensor as pieces over
 * physical axes: a permute reorders them, a reshape regroups them (cutting
 * an axis in two where a new boundary falls inside it), slice/take/unstack
 * clip the pieces and shift their maps, chunks moves the clipped parts, pad
 * adds a constant piece, a leading concat or stack starts from one piece
 * per source.  Value ops are listed in order; a leading sum, fold_bn,
 * quantize or dequantize is the head (fold_bn's channel is a second affine
 * map), a trailing quantize the tail.
 */
#include "gather.h"
#include "optab.h"

#include <stdlib.h>
#include <string.h>

#define MAXE GRAFT_GP_MAXE

/* ---- building ---------------------------------------------------------- */

static graft_gpiece *add_piece(graft_gplan *g, graft_ctx *ctx)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4;
        graft_gpiece *p = realloc(g->p, cap * sizeof *p);
        if (!p || cap > (1u << 16)) { /* more pieces than any real chain makes */
            if (p) g->p = p;
            graft_error_oom(ctx, "a gather plan");
            return NULL;
        }
        g->p = p;
        g->cap = cap;
    }
    graft_gpiece *q = &g->p[g->n++];
    memset(q, 0, sizeof *q);
    return q;
}

static void drop_piece(graft_gplan *g, size_t i)
{
    g->p[i] = g->p[--g->n];
}

/* Insert a physical axis of size `size` at position j (maps: stride 0). */
static int insert_phys(graft_gplan *g, uint32_t j, int64_t size)
{
    if (g->np >= GRAFT_GP_MAXP) return 1;
    memmove(&g->pd[j + 1], &g->pd[j], (g->np - j) * sizeof g->pd[0]);
    g->pd[j] = size;
    for (size_t i = 0; i < g->n; i++) {
        graft_gpiece *q = &g->p[i];
        memmove(&q->lo[j + 1], &q->lo[j], (g->np - j) * sizeof q->lo[0]);
        memmove(&q->hi[j + 1], &q->hi[j], (g->np - j) * sizeof q->hi[0]);
        for (int m = 0; m < 2; m++) {
            memmove(&q->st[m][j + 1], &q->st[m][j], (g->np - j) * sizeof q->st[m][0]);
            q->st[m][j] = 0;
        }
        q->lo[j] = 0;
        q->hi[j] = size;
    }
    g->np++;
    return 0;
}

static void remove_phys(graft_gplan *g, uint32_t j)
{
    for (size_t i = g->n; i-- > 0;) {
        graft_gpiece *q = &g->p[i];
        /* A piece empty along j (a zero-sized source, then padded) covers
         * nothing; without axis j nothing would say so, and with no axes
         * left every piece is taken to cover the one element. */
        if (q->lo[j] >= q->hi[j]) {
            drop_piece(g, i);
            continue;
        }
        q->off[0] += q->lo[j] * q->st[0][j];
        q->off[1] += q->lo[j] * q->st[1][j];
        memmove(&q->lo[j], &q->lo[j + 1], (g->np - j - 1) * sizeof q->lo[0]);
        memmove(&q->hi[j], &q->hi[j + 1], (g->np - j - 1) * sizeof q->hi[0]);
        for (int m = 0; m < 2; m++)
            memmove(&q->st[m][j], &q->st[m][j + 1], (g->np - j - 1) * sizeof q->st[m][0]);
    }
    memmove(&g->pd[j], &g->pd[j + 1], (g->np - j - 1) * sizeof g->pd[0]);
    g->np--;
}

/* Cut piece i along physical axis j at coordinate x (strictly inside). */
static int cut_piece(graft_gplan *g, size_t i, uint32_t j, int64_t x, graft_ctx *ctx)
{
    if (!add_piece(g, ctx)) return GRAFT_ENOMEM;
    graft_gpiece *a = &g->p[i], *b = &g->p[g->n - 1];
    *b = *a;
    a->hi[j] = x;
    b->lo[j] = x;
    return GRAFT_OK;
}

/* Split physical axis j of size p into (p / r, r): pieces are first cut so
 * that each box is whole rows of r or inside one row. */
static int split_phys(graft_gplan *g, uint32_t j, int64_t r, graft_ctx *ctx)
{
    if (g->np >= GRAFT_GP_MAXP) return 1;
    for (size_t i = 0; i < g->n; i++) {
        int64_t lo = g->p[i].lo[j], hi = g->p[i].hi[j];
        int64_t a = (lo + r - 1) / r * r, b = hi / r * r;
        if (a >= b) { /* no whole row: at most two partial rows */
            if (lo / r != (hi - 1) / r) GRAFT_TRY(cut_piece(g, i, j, a, ctx));
            continue;
        }
        if (b < hi) GRAFT_TRY(cut_piece(g, i, j, b, ctx));
        if (a > lo) GRAFT_TRY(cut_piece(g, i, j, a, ctx));
    }
    int64_t p = g->pd[j];
    GRAFT_TRY(insert_phys(g, j + 1, r));
    g->pd[j] = p / r;
    for (size_t i = 0; i < g->n; i++) {
        graft_gpiece *q = &g->p[i];
        int64_t lo = q->lo[j], hi = q->hi[j];
        for (int m = 0; m < 2; m++) {
            q->st[m][j + 1] = q->st[m][j];
            q->st[m][j] *= r;
        }
        if (lo % r == 0 && hi % r == 0) {
            q->lo[j] = lo / r, q->hi[j] = hi / r;
            q->lo[j + 1] = 0, q->hi[j + 1] = r;
        } else {
            q->lo[j] = lo / r, q->hi[j] = lo / r + 1;
            q->lo[j + 1] = lo % r, q->hi[j + 1] = lo % r + (hi - lo);
        }
    }
    return GRAFT_OK;
}

/* Make logical axis ax a single physical axis: insert one for a size-1
 * axis, merge a run whose maps keep it contiguous.  1: cannot. */
static int single_phys(graft_gplan *g, uint32_t ax)
{
    uint32_t a = g->grp[ax], b = g->grp[ax + 1];
    if (b == a) {
        if (insert_phys(g, a, 1)) return 1;
        for (uint32_t i = ax + 1; i <= g->ndim; i++) g->grp[i]++;
        return 0;
    }
    while (b - a > 1) { /* merge a+1 into a */
        int64_t in = g->pd[a + 1];
        for (size_t i = 0; i < g->n; i++) {
            const graft_gpiece *q = &g->p[i];
            if (q->lo[a + 1] != 0 || q->hi[a + 1] != in) {
                if (q->hi[a] - q->lo[a] != 1) return 1;
            }
            for (int m = 0; m < 2; m++)
                if (q->st[m][a] != q->st[m][a + 1] * in && q->hi[a] - q->lo[a] != 1) return 1;
        }
        for (size_t i = 0; i < g->n; i++) {
            graft_gpiece *q = &g->p[i];
            int64_t lo = q->lo[a] * in + q->lo[a + 1], hi = (q->hi[a] - 1) * in + q->hi[a + 1];
            for (int m = 0; m < 2; m++) {
                q->off[m] += q->lo[a] * q->st[m][a] - q->lo[a] * in * q->st[m][a + 1];
                q->st[m][a] = q->st[m][a + 1];
            }
            q->lo[a + 1] = lo, q->hi[a + 1] = hi;
        }
        /* axis a now carries nothing: make it size 1 and drop it */
        for (size_t i = 0; i < g->n; i++) g->p[i].lo[a] = 0, g->p[i].hi[a] = 1;
        g->pd[a + 1] *= g->pd[a];
        g->pd[a] = 1;
        remove_phys(g, a);
        for (uint32_t i = ax + 1; i <= g->ndim; i++) g->grp[i]--;
        b--;
    }
    return 0;
}

/* The physical axis and the unit (physical rows per logical row... in
 * elements of that axis) for an op on logical axis ax whose boundaries are
 * all multiples of `unit`-sized inner blocks: the run's outer axis when the
 * boundaries line up with it, else the run merged into one. */
static int axis_for(graft_gplan *g, uint32_t ax, const int64_t *bounds, size_t nb, uint32_t *j,
                    int64_t *unit)
{
    uint32_t a = g->grp[ax], b = g->grp[ax + 1];
    if (b > a) {
        int64_t inner = 1;
        for (uint32_t k = a + 1; k < b; k++) inner *= g->pd[k];
        bool ok = inner > 0;
        for (size_t k = 0; ok && k < nb; k++) ok = bounds[k] % inner == 0;
        if (ok) {
            *j = a;
            *unit = inner;
            return 0;
        }
    }
    if (single_phys(g, ax)) return 1;
    *j = g->grp[ax];
    *unit = 1;
    return 0;
}

/* Keep rows [s, s + l) of physical axis j (renumbered from 0). */
static void slice_phys(graft_gplan *g, uint32_t j, int64_t s, int64_t l)
{
    for (size_t i = g->n; i-- > 0;) {
        graft_gpiece *q = &g->p[i];
        int64_t lo = q->lo[j] > s ? q->lo[j] : s, hi = q->hi[j] < s + l ? q->hi[j] : s + l;
        if (lo >= hi) {
            drop_piece(g, i);
            continue;
        }
        q->lo[j] = lo - s, q->hi[j] = hi - s;
        q->off[0] += s * q->st[0][j];
        q->off[1] += s * q->st[1][j];
    }
    g->pd[j] = l;
}

static int op_slice(graft_gplan *g, uint32_t ax, int64_t s, int64_t l)
{
    int64_t b[2] = {s, l}, unit;
    uint32_t j;
    if (axis_for(g, ax, b, 2, &j, &unit)) return 1;
    slice_phys(g, j, s / unit, l / unit);
    return 0;
}

static int op_chunks(graft_gplan *g, uint32_t ax, const int64_t *order, uint32_t k,
                     int64_t len, graft_ctx *ctx)
{
    int64_t b[1] = {len / k}, unit;
    uint32_t j;
    if (axis_for(g, ax, b, 1, &j, &unit)) return 1;
    int64_t m = len / k / unit;
    size_t n0 = g->n;
    for (size_t i = 0; i < n0; i++) {
        for (uint32_t c = 0; c < k; c++) {
            graft_gpiece *q = &g->p[i];
            int64_t s = order[c] * m;
            int64_t lo = q->lo[j] > s ? q->lo[j] : s, hi = q->hi[j] < s + m ? q->hi[j] : s + m;
            if (lo >= hi) continue;
            graft_gpiece *r = add_piece(g, ctx);
            if (!r) return GRAFT_ENOMEM;
            q = &g->p[i];
            *r = *q;
            int64_t shift = (int64_t)c * m - s; /* new coordinate = old + shift */
            r->lo[j] = lo + shift, r->hi[j] = hi + shift;
            r->off[0] -= shift * r->st[0][j];
            r->off[1] -= shift * r->st[1][j];
        }
    }
    memmove(g->p, g->p + n0, (g->n - n0) * sizeof *g->p);
    g->n -= n0;
    return 0;
}

static int op_pad(graft_gplan *g, uint32_t ax, int64_t from, int64_t to, const uint8_t *fill,
                  size_t esize, graft_ctx *ctx)
{
    int64_t b[2] = {from, to}, unit;
    uint32_t j;
    if (axis_for(g, ax, b, 2, &j, &unit)) return 1;
    if (to == from) return 0;
    graft_gpiece *q = add_piece(g, ctx);
    if (!q) return GRAFT_ENOMEM;
    q->src = -1;
    q->stage = (uint32_t)g->nvals;
    memcpy(q->fill, fill, esize);
    for (uint32_t k = 0; k < g->np; k++) q->hi[k] = g->pd[k];
    q->lo[j] = from / unit;
    q->hi[j] = to / unit;
    g->pd[j] = to / unit;
    g->fills = true;
    return 0;
}

static int op_permute(graft_gplan *g, const uint32_t *axes)
{
    int64_t pd[GRAFT_GP_MAXP];
    uint32_t map[GRAFT_GP_MAXP], grp[GRAFT_MAX_NDIM + 1], n = 0;
    for (uint32_t i = 0; i < g->ndim; i++) {
        grp[i] = n;
        for (uint32_t k = g->grp[axes[i]]; k < g->grp[axes[i] + 1]; k++) map[n++] = k;
    }
    grp[g->ndim] = n;
    for (uint32_t k = 0; k < n; k++) pd[k] = g->pd[map[k]];
    memcpy(g->pd, pd, n * sizeof *pd);
    memcpy(g->grp, grp, (g->ndim + 1) * sizeof *grp);
    for (size_t i = 0; i < g->n; i++) {
        graft_gpiece *q = &g->p[i], t = *q;
        for (uint32_t k = 0; k < n; k++) {
            q->lo[k] = t.lo[map[k]], q->hi[k] = t.hi[map[k]];
            q->st[0][k] = t.st[0][map[k]], q->st[1][k] = t.st[1][map[k]];
        }
    }
    return 0;
}

/* Regroup the physical axes for the logical shape `to` (same count of
 * elements), splitting a physical axis where a new boundary falls inside. */
static int op_reshape(graft_gplan *g, const graft_shape *to, graft_ctx *ctx)
{
    uint32_t grp[GRAFT_MAX_NDIM + 1];
    int64_t j = (int64_t)g->np; /* physical axes [j, np) are taken */
    grp[to->ndim] = g->np;
    for (uint32_t i = to->ndim; i-- > 0;) {
        int64_t need = to->dim[i];
        if (need == 0) return 1;
        while (need > 1) {
            if (j == 0) return 1;
            int64_t p = g->pd[j - 1];
            if (p == 0) return 1;
            if (p <= need) {
                if (need % p) return 1;
                need /= p;
                j--;
                continue;
            }
            if (p % need) return 1;
            int rc = split_phys(g, (uint32_t)(j - 1), need, ctx);
            if (rc) return rc;
            for (uint32_t k = i + 1; k <= to->ndim; k++) grp[k]++;
            need = 1;
        }
        grp[i] = (uint32_t)j;
    }
    /* physical axes left over are of size 1: they join the first axis */
    for (int64_t k = 0; k < j; k++)
        if (g->pd[k] != 1) return 1;
    grp[0] = 0;
    if (to->ndim == 0) {
        while (g->np) remove_phys(g, 0);
        grp[0] = 0;
    }
    g->ndim = to->ndim;
    memcpy(g->grp, grp, (to->ndim + 1) * sizeof *grp);
    return 0;
}

static void init_layout(graft_gplan *g, const graft_shape *s)
{
    g->ndim = s->ndim;
    g->np = s->ndim;
    for (uint32_t i = 0; i <= s->ndim; i++) g->grp[i] = i;
    for (uint32_t i = 0; i < s->ndim; i++) g->pd[i] = s->dim[i];
}

static graft_gpiece *whole_piece(graft_gplan *g, const graft_shape *s, int32_t src, graft_ctx *ctx)
{
    graft_gpiece *q = add_piece(g, ctx);
    if (!q) return NULL;
    q->src = src;
    int64_t st = 1;
    for (uint32_t i = s->ndim; i-- > 0;) {
        q->lo[i] = 0, q->hi[i] = s->dim[i];
        q->st[0][i] = st;
        st *= s->dim[i];
    }
    return q;
}

/* A leading concat or stack: one piece per source. */
static int init_join(graft_gplan *g, const graft_op *op, const graft_shape *in, size_t nin,
                     graft_ctx *ctx)
{
    bool stack = op->kind == GRAFT_OP_STACK;
    uint32_t ax = 0;
    if (op->count || (op->v && op->n)) return 1; /* a concat or stack made by reverse */
    graft_op__axis(op->axis, in[0].ndim + (stack ? 1 : 0), &ax);
    init_layout(g, &in[0]);
    if (stack && insert_phys(g, ax, (int64_t)nin)) return 1;
    if (stack) {
        g->ndim++;
        for (uint32_t i = 0; i <= g->ndim; i++) g->grp[i] = i;
    }
    int64_t at = 0;
    for (size_t k = 0; k < nin; k++) {
        graft_gpiece *q = whole_piece(g, &in[k], (int32_t)k, ctx);
        if (!q) return GRAFT_ENOMEM;
        if (stack) {
            memmove(&q->lo[ax + 1], &q->lo[ax], (in[k].ndim - ax) * sizeof q->lo[0]);
            memmove(&q->hi[ax + 1], &q->hi[ax], (in[k].ndim - ax) * sizeof q->hi[0]);
            memmove(&q->st[0][ax + 1], &q->st[0][ax], (in[k].ndim - ax) * sizeof q->st[0][0]);
            q->st[0][ax] = 0;
            q->lo[ax] = (int64_t)k, q->hi[ax] = (int64_t)k + 1;
        } else {
            q->lo[ax] = at, q->hi[ax] = at + in[k].dim[ax];
            q->off[0] = -at * q->st[0][ax];
            at += in[k].dim[ax];
        }
    }
    if (!stack) g->pd[ax] = at;
    return 0;
}

/* The first op: a join, or an op computed before the layout (head). */
static int init_first(graft_gplan *g, const graft_op *ops, size_t nops, const graft_shape *in,
                      size_t nin, const graft_shape *after, size_t *next, graft_ctx *ctx)
{
    graft_op_kind k = nops ? ops[0].kind : GRAFT_OP_COUNT;
    *next = 0;
    if (k == GRAFT_OP_CONCAT || k == GRAFT_OP_STACK) {
        *next = 1;
        return init_join(g, &ops[0], in, nin, ctx);
    }
    if (k == GRAFT_OP_SUM || k == GRAFT_OP_FOLD_BN || k == GRAFT_OP_QUANTIZE ||
        k == GRAFT_OP_DEQUANTIZE) {
        *next = 1;
        g->head = &ops[0];
        g->head_in = in[0];
        init_layout(g, after);
        graft_gpiece *q = whole_piece(g, after, 0, ctx);
        if (!q) return GRAFT_ENOMEM;
        if (k == GRAFT_OP_FOLD_BN && after->ndim) {
            q->st[1][0] = 1; /* the channel: the first axis (a bias: its only one) */
            if (ops[0].part == GRAFT_BN_WEIGHT && after->dim[0] > 0) {
                for (uint32_t i = 1; i < after->ndim; i++) q->st[1][i] = 0;
            }
        }
        return 0;
    }
    init_layout(g, &in[0]);
    return whole_piece(g, &in[0], 0, ctx) ? 0 : GRAFT_ENOMEM;
}

/* The final bytes of a pad's constant: the value ops after it, on one element. */
static int finish_fills(graft_gplan *g, graft_ctx *ctx)
{
    for (size_t i = 0; i < g->n; i++) {
        graft_gpiece *q = &g->p[i];
        if (q->src >= 0) continue;
        uint8_t a[MAXE], b[MAXE];
        memcpy(a, q->fill, MAXE);
        for (size_t v = q->stage; v < g->nvals; v++) {
            const graft_op *op = g->vals[v];
            graft_shape s = {.dtype = g->vdt[v], .ndim = 1, .dim = {1}};
            graft_xout m = {.mem = b, .ctx = ctx};
            GRAFT_TRY(graft_op_def_of(op->kind)->run(op, &s, a, NULL, 0, &m, ctx));
            memcpy(a, b, MAXE);
        }
        memcpy(q->fill, a, MAXE);
    }
    return GRAFT_OK;
}

/* One piece reading all of source 0 (of `numel` elements) in order. */
static bool is_identity(const graft_gplan *g, uint64_t numel)
{
    if (g->n != 1 || g->p[0].src != 0 || g->p[0].off[0] != 0) return false;
    int64_t st = 1;
    for (uint32_t k = g->np; k-- > 0;) {
        const graft_gpiece *q = &g->p[0];
        if (q->lo[k] != 0 || q->hi[k] != g->pd[k]) return false;
        if (g->pd[k] != 1 && q->st[0][k] != st) return false;
        st *= g->pd[k];
    }
    return (uint64_t)st == numel;
}

static int build(graft_gplan *g, const graft_op *ops, size_t nops, const graft_shape *in,
                 size_t nin, const graft_shape *shapes, graft_ctx *ctx)
{
    size_t i;
    int rc = init_first(g, ops, nops, in, nin, &shapes[1], &i, ctx);
    if (rc) return rc;
    g->base = i ? shapes[1].dtype : in[0].dtype;
    for (; i < nops; i++) {
        const graft_op *op = &ops[i];
        const graft_shape *s = &shapes[i], *t = &shapes[i + 1];
        uint32_t ax = 0, axes[GRAFT_MAX_NDIM];
        switch (op->kind) {
        case GRAFT_OP_PERMUTE:
        case GRAFT_OP_TRANSPOSE:
            for (uint32_t k = 0; k < s->ndim; k++) {
                if (op->kind == GRAFT_OP_TRANSPOSE)
                    axes[k] = s->ndim - 1 - k;
                else
                    graft_op__axis(op->v[k], s->ndim, &axes[k]);
            }
            rc = op_permute(g, axes);
            break;
        case GRAFT_OP_RESHAPE:
            rc = op_reshape(g, t, ctx);
            break;
        case GRAFT_OP_CHUNKS:
            graft_op__axis(op->axis, s->ndim, &ax);
            rc = op_chunks(g, ax, op->v, op->n, s->dim[ax], ctx);
            break;
        case GRAFT_OP_TAKE:
        case GRAFT_OP_SLICE:
            graft_op__axis(op->axis, s->ndim, &ax);
            if (op->kind == GRAFT_OP_SLICE)
                rc = op_slice(g, ax, op->start, op->length);
            else if (op->n == 2)
                rc = op_slice(g, ax, op->v[0], op->v[1]);
            else
                rc = op_slice(g, ax, s->dim[ax] / op->count * op->index, s->dim[ax] / op->count);
            break;
        case GRAFT_OP_UNSTACK:
            graft_op__axis(op->axis, s->ndim, &ax);
            rc = op_slice(g, ax, op->index, 1);
            if (rc == 0) { /* the axis now has one row: regroup it away */
                graft_shape r = *t;
                rc = op_reshape(g, &r, ctx);
            }
            break;
        case GRAFT_OP_PAD: {
            uint8_t fill[MAXE] = {0};
            graft_op__axis(op->axis, s->ndim, &ax);
            GRAFT_TRY(graft_xform__scalar(fill, s->dtype, op->value, ctx));
            rc = op_pad(g, ax, s->dim[ax], op->length, fill, graft_dtype_size(s->dtype), ctx);
            break;
        }
        case GRAFT_OP_CAST:
        case GRAFT_OP_SCALE:
            if (g->nvals == sizeof g->vals / sizeof g->vals[0]) return 1;
            g->vdt[g->nvals] = s->dtype;
            g->vals[g->nvals++] = op;
            break;
        case GRAFT_OP_QUANTIZE:
            /* ggml blocks or one scale: position plays no part */
            if (i + 1 != nops || (!op->index && (!op->quant || op->quant->nscale != 1))) return 1;
            g->tail = op;
            g->tail_in = s->dtype;
            break;
        default:
            return 1;
        }
        if (rc) return rc;
    }
    g->vdt[g->nvals] = g->tail ? g->tail_in : shapes[nops].dtype;
    g->out = shapes[nops];
    g->base_numel = graft_op__numel(g->head ? &shapes[1] : &in[0]);
    g->identity = is_identity(g, g->base_numel);
    /* a head computed at positions it does not compute in order: only sum, fold_bn */
    if (g->head && !g->identity && g->head->kind != GRAFT_OP_SUM &&
        g->head->kind != GRAFT_OP_FOLD_BN)
        return 1;
    return finish_fills(g, ctx);
}

int graft_gplan_build(graft_gplan *g, const graft_op *ops, size_t nops, const graft_shape *in,
                      size_t nin, graft_ctx *ctx)
{
    graft_shape *shapes = graft_malloc(ctx, (nops + 1) * sizeof *shapes);
    int rc;
    memset(g, 0, sizeof *g);
    if (!shapes) return graft_error_oom(ctx, "op shapes");
    if (nin == 0 || (nops == 0 && nin > 1)) {
        rc = 1;
        goto cleanup;
    }
    shapes[0] = in[0];
    for (size_t k = 1; k <= nops; k++) {
        rc = graft_ops_infer_prefix(ops, nops, k, in, nin, &shapes[k], ctx);
        if (rc < 0) goto cleanup;
    }
    for (size_t s = 0; s < nin; s++)
        if (in[s].ndim > GRAFT_GP_MAXP) {
            rc = 1;
            goto cleanup;
        }
    rc = build(g, ops, nops, in, nin, shapes, ctx);
cleanup:
    if (rc) graft_gplan_free(g);
    free(shapes);
    return rc;
}

void graft_gplan_free(graft_gplan *g)
{
    free(g->p);
    g->p = NULL;
    g->n = g->cap = 0;
}

const graft_gpiece *graft_gplan_piece_at(const graft_gplan *g, uint64_t pos, int64_t *off)
{
    int64_t c[GRAFT_GP_MAXP];
    for (uint32_t k = g->np; k-- > 0;) {
        uint64_t d = g->pd[k] > 0 ? (uint64_t)g->pd[k] : 1;
        c[k] = (int64_t)(pos % d);
        pos /= d;
    }
    for (size_t i = 0; i < g->n; i++) {
        const graft_gpiece *q = &g->p[i];
        uint32_t k = 0;
        while (k < g->np && c[k] >= q->lo[k] && c[k] < q->hi[k]) k++;
        if (k < g->np) continue;
        *off = q->off[0];
        for (k = 0; k < g->np; k++) *off += c[k] * q->st[0][k];
        return q;
    }
    return NULL;
}
