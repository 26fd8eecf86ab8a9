/*
 * gather.c - building a chain's gather plan and running it (gather.h).
 *
 * Building walks the chain once, keeping the current tensor as pieces over
 * physical axes.  Running emits the output in row-major order, in blocks of
 * at most BLK elements (a position of the outer axes and a run of rows of
 * one axis): each piece's part of the block is one strided gather (the
 * tiled kernel of permute.c), then the value ops, the constants and the
 * tail.  A plan that is a pure permute of one source goes to the permute
 * kernel instead, which takes a large one out of core (ooc.c) or in column
 * bands, with the value ops applied to its output stream by a filter.
 */
#include "gather.h"
#include "optab.h"

#include <stdlib.h>
#include <string.h>

#define BLK_DEFAULT ((size_t)1 << 17) /* elements per block */
static size_t blk_elems = BLK_DEFAULT;
#define BLK blk_elems

void graft_gplan__set_block(size_t elements)
{
    blk_elems = elements ? elements : BLK_DEFAULT;
}
#define MAXE 16               /* largest element (complex128) */

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
    for (size_t i = 0; i < g->n; i++) {
        graft_gpiece *q = &g->p[i];
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

/* ---- running: the value ops and the tail ------------------------------- */

/* Elements a block buffer needs: BLK, or fewer for a small tensor; whole
 * ggml blocks. */
static size_t block_cap(const graft_gplan *g)
{
    uint64_t n = 1;
    for (uint32_t k = 0; k < g->np && n < BLK; k++) n *= (uint64_t)g->pd[k];
    if (g->identity) n = g->base_numel; /* the pieces may leave out size-1 axes */
    n = n < 1 ? 1 : n < BLK ? n : BLK;
    return (size_t)(n + 31) / 32 * 32;
}

/* Value ops vals[from..) over n elements of a (dtype vdt[from]); the result
 * ends in a or b: returned. */
static uint8_t *run_vals(const graft_gplan *g, size_t from, uint8_t *a, uint8_t *b, size_t n,
                         graft_ctx *ctx, int *rc)
{
    *rc = GRAFT_OK;
    for (size_t v = from; v < g->nvals; v++) {
        const graft_op *op = g->vals[v];
        graft_shape s = {.dtype = g->vdt[v], .ndim = 1, .dim = {(int64_t)n}};
        graft_xout m = {.mem = b, .ctx = ctx};
        *rc = graft_op_def_of(op->kind)->run(op, &s, a, NULL, 0, &m, ctx);
        if (*rc < 0) {
            if (op->file) graft_error_prefix(ctx, "%s:%u: %s", op->file, op->line,
                                             graft_op_name(op->kind));
            return NULL;
        }
        uint8_t *t = a;
        a = b, b = t;
    }
    return a;
}

/* What the producers write into: element bytes of dtype `from`, turned by
 * the value ops (when vals) and the tail into `next`. */
typedef struct vfilter {
    graft_xout x; /* first */
    const graft_gplan *g;
    bool vals;
    graft_xout *next;
    uint8_t *in, *a, *b;
    size_t have, cap; /* bytes in `in` */
    size_t esize;     /* input element */
} vfilter;

static int vf_process(vfilter *f, bool last)
{
    const graft_gplan *g = f->g;
    size_t n = f->have / f->esize, keep;
    graft_ctx *ctx = f->x.ctx;
    int rc = GRAFT_OK;
    if (g->tail && g->tail->index && !last) n -= n % 32; /* whole ggml blocks */
    if (n == 0) return GRAFT_OK;
    keep = f->have - n * f->esize;
    const uint8_t *p = f->in;
    graft_dtype dt = f->vals ? g->vdt[0] : g->vdt[g->nvals];
    if (f->vals) {
        memcpy(f->a, f->in, n * f->esize);
        p = run_vals(g, 0, f->a, f->b, n, ctx, &rc);
        if (!p) return rc;
        dt = g->vdt[g->nvals];
    }
    if (g->tail) {
        graft_shape s = {.dtype = dt, .ndim = 1, .dim = {(int64_t)n}};
        rc = graft_op_def_of(g->tail->kind)->run(g->tail, &s, p, NULL, 0, f->next, ctx);
        if (rc < 0 && g->tail->file)
            graft_error_prefix(ctx, "%s:%u: quantize", g->tail->file, g->tail->line);
    } else {
        rc = graft_xform__emit(f->next, p, n * graft_dtype_size(dt));
    }
    memmove(f->in, f->in + n * f->esize, keep);
    f->have = keep;
    return rc;
}

static int vf_write(graft_xout *x, const void *p, size_t n)
{
    vfilter *f = (vfilter *)x;
    const uint8_t *s = p;
    while (n > 0) {
        size_t k = f->cap - f->have < n ? f->cap - f->have : n;
        memcpy(f->in + f->have, s, k);
        f->have += k, s += k, n -= k;
        if (f->have == f->cap) GRAFT_TRY(vf_process(f, false));
    }
    return GRAFT_OK;
}

static void vf_release(void *payload)
{
    vfilter *f = payload;
    if (f->next->release) f->next->release(f->next->payload);
}

static int vf_open(vfilter *f, const graft_gplan *g, bool vals, graft_xout *next, graft_ctx *ctx)
{
    memset(f, 0, sizeof *f);
    f->g = g, f->vals = vals, f->next = next;
    size_t ne = block_cap(g);
    f->esize = graft_dtype_size(vals ? g->vdt[0] : g->vdt[g->nvals]);
    f->cap = ne * f->esize;
    f->in = graft_malloc(ctx, f->cap);
    if (vals) {
        f->a = graft_malloc(ctx, ne * MAXE);
        f->b = graft_malloc(ctx, ne * MAXE);
    }
    if (!f->in || (vals && (!f->a || !f->b))) return graft_error_oom(ctx, "a block buffer");
    f->x.ctx = ctx;
    f->x.filter = vf_write;
    f->x.sink = next->sink; /* where a kernel puts its temporary file */
    if (next->release) {
        f->x.release = vf_release;
        f->x.payload = f;
    }
    return GRAFT_OK;
}

static void vf_close(vfilter *f)
{
    free(f->in);
    free(f->a);
    free(f->b);
}

/* ---- running: blocks --------------------------------------------------- */

typedef struct box {
    int64_t lo[GRAFT_GP_MAXP], hi[GRAFT_GP_MAXP];
} box;

/* Visit the box's rows: for each position of the axes before u, the gather
 * of axes [u, np) lands contiguously in the block (the block spans the
 * axes after u in full).  f gets the element offset in the block and the
 * position (coordinates in c). */
typedef struct walk {
    const graft_gplan *g;
    const box *blk;
    int64_t bst[GRAFT_GP_MAXP]; /* block strides */
} walk;

static uint32_t first_partial(const walk *w, const int64_t *lo, const int64_t *hi)
{
    uint32_t t = w->g->np;
    while (t > 0 && lo[t - 1] == w->blk->lo[t - 1] && hi[t - 1] == w->blk->hi[t - 1]) t--;
    return t > 0 ? t - 1 : 0;
}

/* Each position of axes [0, u) of box [lo, hi): c holds it. */
static bool next_pos(int64_t *c, const int64_t *lo, const int64_t *hi, uint32_t u)
{
    uint32_t k = u;
    while (k > 0) {
        k--;
        if (++c[k] < hi[k]) return true;
        c[k] = lo[k];
    }
    return false;
}

static int64_t block_at(const walk *w, const int64_t *c, uint32_t u)
{
    int64_t at = 0;
    for (uint32_t k = 0; k < w->g->np; k++) at += (c[k] - w->blk->lo[k]) * w->bst[k];
    (void)u;
    return at;
}

/* Map m of piece q over box [lo, hi) into dst (elements of es bytes):
 * a gather from src, or (src NULL) the map's values as int64. */
static void fill_map(const walk *w, const graft_gpiece *q, int m, const int64_t *lo,
                     const int64_t *hi, const uint8_t *src, size_t es, uint8_t *dst)
{
    uint32_t np = w->g->np, u = first_partial(w, lo, hi);
    int64_t c[GRAFT_GP_MAXP], dim[GRAFT_GP_MAXP];
    if (np == 0) { /* a scalar */
        if (src)
            memcpy(dst, src + q->off[m] * (int64_t)es, es);
        else
            memcpy(dst, &q->off[m], sizeof q->off[m]);
        return;
    }
    memcpy(c, lo, np * sizeof *c);
    for (uint32_t k = u; k < np; k++) {
        dim[k] = hi[k] - lo[k];
        c[k] = lo[k];
    }
    do {
        int64_t off = q->off[m], at = block_at(w, c, u);
        for (uint32_t k = 0; k < np; k++) off += c[k] * q->st[m][k];
        if (src) {
            graft_xform__gather(dst + at * (int64_t)es, src + off * (int64_t)es, es, np - u,
                                dim + u, q->st[m] + u);
            continue;
        }
        /* the values of the map, row-major over axes [u, np) */
        int64_t *out = (int64_t *)(void *)dst + at, d[GRAFT_GP_MAXP] = {0};
        for (;;) {
            int64_t v = off;
            for (uint32_t k = u; k < np; k++) v += d[k] * q->st[m][k];
            *out++ = v;
            uint32_t k = np;
            while (k > u && ++d[k - 1] == dim[k - 1]) d[--k] = 0;
            if (k == u) break;
        }
    } while (next_pos(c, lo, hi, u));
}

/* Constant bytes pat (es) over box [lo, hi) of the block. */
static void fill_const(const walk *w, const int64_t *lo, const int64_t *hi, const uint8_t *pat,
                       size_t es, uint8_t *dst)
{
    uint32_t np = w->g->np, u = first_partial(w, lo, hi);
    int64_t c[GRAFT_GP_MAXP], run = 1;
    memcpy(c, lo, np * sizeof *c);
    for (uint32_t k = u; k < np; k++) run *= hi[k] - lo[k];
    do {
        uint8_t *d = dst + block_at(w, c, u) * (int64_t)es;
        for (int64_t e = 0; e < run; e++) memcpy(d + e * (int64_t)es, pat, es);
    } while (next_pos(c, lo, hi, u));
}

static bool clip(const graft_gpiece *q, const box *b, uint32_t np, int64_t *lo, int64_t *hi)
{
    for (uint32_t k = 0; k < np; k++) {
        lo[k] = q->lo[k] > b->lo[k] ? q->lo[k] : b->lo[k];
        hi[k] = q->hi[k] < b->hi[k] ? q->hi[k] : b->hi[k];
        if (lo[k] >= hi[k]) return false;
    }
    return true;
}

typedef struct bufs {
    uint8_t *a, *b;           /* BLK * MAXE each */
    uint8_t **src;            /* head: one block per source */
    double **x;               /* head: as float64 */
    int64_t *ch;              /* fold_bn: channels */
    graft_fold fold;
} bufs;

/* The head's values for the block's n elements (sum, fold_bn), into a. */
static int head_block(const graft_gplan *g, const walk *w, const graft_tview *in, size_t nin,
                      bufs *B, size_t n, graft_ctx *ctx)
{
    const graft_op *h = g->head;
    size_t ns = h->kind == GRAFT_OP_SUM ? nin : (B->fold.has_b ? 1 : 0);
    if (g->fills) { /* constants: anything valid, overwritten after */
        for (size_t k = 0; k < ns; k++) memset(B->src[k], 0, n * MAXE);
        if (B->ch) memset(B->ch, 0, n * sizeof *B->ch);
    }
    for (size_t i = 0; i < g->n; i++) {
        int64_t lo[GRAFT_GP_MAXP], hi[GRAFT_GP_MAXP];
        const graft_gpiece *q = &g->p[i];
        if (q->src < 0 || !clip(q, w->blk, g->np, lo, hi)) continue;
        for (size_t k = 0; k < ns; k++)
            fill_map(w, q, 0, lo, hi, in[k].data, graft_dtype_size(in[k].shape.dtype), B->src[k]);
        if (h->kind == GRAFT_OP_FOLD_BN) fill_map(w, q, 1, lo, hi, NULL, 8, (uint8_t *)B->ch);
    }
    double *out = (double *)(void *)B->b;
    for (size_t k = 0; k < ns; k++) graft_xform__to_f64(B->src[k], in[k].shape.dtype, n, B->x[k]);
    if (h->kind == GRAFT_OP_SUM) {
        memcpy(out, B->x[0], n * sizeof *out);
        for (size_t k = 1; k < nin; k++)
            for (size_t e = 0; e < n; e++) out[e] += B->x[k][e];
    } else {
        graft_fold__at(&B->fold, ns ? B->x[0] : NULL, B->ch, 0, out, n);
    }
    (void)ctx;
    graft_xform__from_f64(B->a, g->base, out, n);
    return GRAFT_OK;
}

static int alloc_bufs(const graft_gplan *g, const graft_tview *in, size_t nin, bufs *B,
                      graft_ctx *ctx)
{
    size_t cap = block_cap(g);
    memset(B, 0, sizeof *B);
    B->a = graft_malloc(ctx, cap * MAXE);
    B->b = graft_malloc(ctx, cap * MAXE);
    if (!B->a || !B->b) return graft_error_oom(ctx, "a block buffer");
    if (!g->head || g->identity) return GRAFT_OK;
    B->src = graft_calloc(ctx, nin, sizeof *B->src);
    B->x = graft_calloc(ctx, nin, sizeof *B->x);
    if (!B->src || !B->x) return graft_error_oom(ctx, "block buffers");
    for (size_t k = 0; k < nin; k++) {
        B->src[k] = graft_malloc(ctx, cap * MAXE);
        B->x[k] = graft_malloc(ctx, cap * sizeof(double));
        if (!B->src[k] || !B->x[k]) return graft_error_oom(ctx, "block buffers");
    }
    if (g->head->kind == GRAFT_OP_FOLD_BN) {
        B->ch = graft_malloc(ctx, cap * sizeof *B->ch);
        if (!B->ch) return graft_error_oom(ctx, "a block buffer");
        GRAFT_TRY(graft_fold__prepare(g->head, in, nin, &B->fold, ctx));
    }
    return GRAFT_OK;
}

static void free_bufs(bufs *B, size_t nin)
{
    for (size_t k = 0; B->src && k < nin; k++) free(B->src[k]);
    for (size_t k = 0; B->x && k < nin; k++) free(B->x[k]);
    free(B->src);
    free(B->x);
    free(B->ch);
    graft_fold__free(&B->fold);
    free(B->a);
    free(B->b);
}

/* One block: gather (or the head), value ops, constants, then out. */
static int run_block(const graft_gplan *g, const walk *w, const graft_tview *in, size_t nin,
                     bufs *B, size_t n, graft_xout *out, graft_ctx *ctx)
{
    size_t es = graft_dtype_size(g->base);
    int rc;
    static const uint8_t zero[MAXE];
    if (g->head) {
        GRAFT_TRY(head_block(g, w, in, nin, B, n, ctx));
    } else {
        for (size_t i = 0; i < g->n; i++) {
            int64_t lo[GRAFT_GP_MAXP], hi[GRAFT_GP_MAXP];
            const graft_gpiece *q = &g->p[i];
            if (q->src < 0 || !clip(q, w->blk, g->np, lo, hi)) continue;
            fill_map(w, q, 0, lo, hi, in[q->src].data, es, B->a);
        }
    }
    for (size_t i = 0; g->fills && i < g->n; i++) { /* what the value ops see at a constant */
        int64_t lo[GRAFT_GP_MAXP], hi[GRAFT_GP_MAXP];
        const graft_gpiece *q = &g->p[i];
        if (q->src < 0 && clip(q, w->blk, g->np, lo, hi)) fill_const(w, lo, hi, zero, es, B->a);
    }
    uint8_t *p = run_vals(g, 0, B->a, B->b, n, ctx, &rc);
    if (!p) return rc;
    if (g->fills) {
        size_t fs = graft_dtype_size(g->vdt[g->nvals]);
        for (size_t i = 0; i < g->n; i++) {
            int64_t lo[GRAFT_GP_MAXP], hi[GRAFT_GP_MAXP];
            const graft_gpiece *q = &g->p[i];
            if (q->src >= 0 || !clip(q, w->blk, g->np, lo, hi)) continue;
            fill_const(w, lo, hi, q->fill, fs, p);
        }
    }
    return graft_xform__emit(out, p, n * graft_dtype_size(g->vdt[g->nvals]));
}

static int run_blocks(const graft_gplan *g, const graft_tview *in, size_t nin, graft_xout *out,
                      graft_ctx *ctx)
{
    bufs B;
    box blk;
    walk w = {.g = g, .blk = &blk};
    uint32_t np = g->np, k = 0;
    int64_t inner = 1, rows;
    int rc = alloc_bufs(g, in, nin, &B, ctx);
    if (rc < 0) goto cleanup;
    for (uint32_t j = 0; j < np; j++)
        if (g->pd[j] == 0) goto cleanup; /* nothing to emit */
    /* k: the outermost axis whose inner block fits; blocks are runs of its rows */
    for (k = np; k > 0 && g->pd[k - 1] <= (int64_t)BLK / inner; k--) inner *= g->pd[k - 1];
    if (k > 0) k--;
    if (np == 0) {
        w.bst[0] = 1;
        rc = run_block(g, &w, in, nin, &B, 1, out, ctx);
        goto cleanup;
    }
    {
        int64_t in_k = 1;
        for (uint32_t j = k + 1; j < np; j++) in_k *= g->pd[j];
        rows = (int64_t)BLK / in_k;
        if (rows < 1) rows = 1;
        if (rows > g->pd[k]) rows = g->pd[k];
        for (uint32_t j = 0; j < np; j++) blk.lo[j] = 0, blk.hi[j] = j < k ? 1 : g->pd[j];
        for (;;) {
            for (int64_t r = 0; r < g->pd[k]; r += rows) {
                blk.lo[k] = r;
                blk.hi[k] = r + rows < g->pd[k] ? r + rows : g->pd[k];
                int64_t st = 1;
                for (uint32_t j = np; j-- > 0;) {
                    w.bst[j] = st;
                    st *= blk.hi[j] - blk.lo[j];
                }
                rc = run_block(g, &w, in, nin, &B, (size_t)st, out, ctx);
                if (rc < 0) goto cleanup;
            }
            uint32_t j = k;
            while (j > 0 && ++blk.lo[j - 1] == g->pd[j - 1]) {
                blk.lo[j - 1] = 0;
                blk.hi[j - 1] = 1;
                j--;
            }
            if (j == 0) break;
            blk.hi[j - 1] = blk.lo[j - 1] + 1;
        }
    }
cleanup:
    free_bufs(&B, nin);
    return rc;
}

/* ---- running: the streaming cases -------------------------------------- */

/* A single piece reading all of source 0 in some order: its axes as a
 * permute of a contiguous tensor (dims in source order, axes). */
static bool as_permute(const graft_gplan *g, int64_t *dim, uint32_t *axes, uint32_t *n)
{
    if (g->head || g->fills || g->n != 1 || g->p[0].src != 0 || g->p[0].off[0] != 0)
        return false;
    const graft_gpiece *q = &g->p[0];
    uint32_t idx[GRAFT_GP_MAXP], m = 0;
    for (uint32_t k = 0; k < g->np; k++) {
        if (q->lo[k] != 0 || q->hi[k] != g->pd[k]) return false;
        if (g->pd[k] != 1) idx[m++] = k;
    }
    /* source order: strides descending */
    for (uint32_t a = 1; a < m; a++)
        for (uint32_t b = a; b > 0 && q->st[0][idx[b - 1]] < q->st[0][idx[b]]; b--) {
            uint32_t t = idx[b];
            idx[b] = idx[b - 1], idx[b - 1] = t;
        }
    int64_t st = 1;
    for (uint32_t a = m; a-- > 0;) {
        if (q->st[0][idx[a]] != st) return false;
        st *= g->pd[idx[a]];
    }
    for (uint32_t a = 0; a < m; a++) {
        dim[a] = g->pd[idx[a]];
        for (uint32_t b = 0, o = 0; b < g->np; b++)
            if (g->pd[b] != 1) {
                if (b == idx[a]) axes[o] = a;
                o++;
            }
    }
    *n = m;
    return true;
}

int graft_gplan_run(const graft_gplan *g, const graft_tview *in, size_t nin, graft_xout *o,
                    graft_ctx *ctx)
{
    int64_t dim[GRAFT_GP_MAXP];
    uint32_t axes[GRAFT_GP_MAXP], m = 0;
    bool perm = !g->identity && as_permute(g, dim, axes, &m);
    bool blocks = !g->identity && !perm;
    /* blocks run the value ops themselves (constants go in after them) */
    bool vals = !blocks && g->nvals > 0, filter = vals || g->tail;
    vfilter f;
    graft_xout *dst = o;
    int rc = GRAFT_OK;
    if (filter) {
        rc = vf_open(&f, g, vals, o, ctx);
        if (rc < 0) goto cleanup;
        dst = &f.x;
    }
    if (blocks)
        rc = run_blocks(g, in, nin, dst, ctx);
    else if (perm)
        rc = graft_xform__permute(dst, in[0].data, graft_dtype_size(g->base), m, dim, axes);
    else if (g->head)
        rc = graft_op_def_of(g->head->kind)->run(g->head, &g->head_in, in[0].data, in, nin, dst,
                                                 ctx);
    else
        rc = graft_xform__emit(dst, in[0].data,
                               (size_t)(graft_op__numel(&in[0].shape) * graft_dtype_size(g->base)));
    if (rc == GRAFT_OK && filter) rc = vf_process(&f, true);
cleanup:
    if (filter) vf_close(&f);
    return rc;
}
