/*
 * gather_run.c - running a gather plan (gather.h).
 *
 * The output is emitted in row-major order, in blocks of at most BLK
 * elements (a position of the outer axes and a run of rows of one axis):
 * each piece's part of the block is one strided gather (the tiled kernel of
 * permute.c), then the value ops, the constants and the tail.  A plan that
 * is a pure permute of one source goes to the permute kernel instead, which
 * takes a large one out of core (ooc.c) or in column bands, with the value
 * ops applied to its output stream by a filter; an identity layout streams
 * the source (or the head's output) through the same filter.
 */
#include "gather.h"
#include "optab.h"

#include <stdlib.h>
#include <string.h>

#define MAXE GRAFT_GP_MAXE
#define BLK_DEFAULT ((size_t)1 << 17) /* elements per block */
static size_t blk_elems = BLK_DEFAULT;
#define BLK blk_elems

void graft_gplan__set_block(size_t elements)
{
    blk_elems = elements ? elements : BLK_DEFAULT;
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

/* The value ops over n elements at `in` (dtype vdt[0]), alternating
 * between the scratch buffers a and b (`in` may be a).  With `out`, the
 * last op writes there (a cast into the sink's buffer) and NULL comes back
 * with *rc GRAFT_OK; else the result does (`in` when there are no ops). */
static const uint8_t *run_vals(const graft_gplan *g, const uint8_t *in, uint8_t *a, uint8_t *b,
                               size_t n, graft_xout *out, graft_ctx *ctx, int *rc)
{
    *rc = GRAFT_OK;
    for (size_t v = 0; v < g->nvals; v++) {
        const graft_op *op = g->vals[v];
        graft_shape s = {.dtype = g->vdt[v], .ndim = 1, .dim = {(int64_t)n}};
        uint8_t *dst = in == a ? b : a;
        graft_xout m = {.mem = dst, .ctx = ctx};
        bool last = out && v + 1 == g->nvals;
        *rc = graft_op_def_of(op->kind)->run(op, &s, in, NULL, 0, last ? out : &m, ctx);
        if (*rc < 0) {
            if (op->file) graft_error_prefix(ctx, "%s:%u: %s", op->file, op->line,
                                             graft_op_name(op->kind));
            return NULL;
        }
        in = dst;
    }
    return out && g->nvals ? NULL : in;
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

/* n elements at `in` through the value ops and the tail into `next` */
static int vf_run(vfilter *f, const uint8_t *in, size_t n)
{
    const graft_gplan *g = f->g;
    graft_ctx *ctx = f->x.ctx;
    int rc = GRAFT_OK;
    /* with no tail the last value op writes into `next` itself (NULL back) */
    if (f->vals && !(in = run_vals(g, in, f->a, f->b, n, g->tail ? NULL : f->next, ctx, &rc)))
        return rc;
    graft_shape s = {.dtype = g->vdt[g->nvals], .ndim = 1, .dim = {(int64_t)n}};
    rc = graft_op_def_of(g->tail->kind)->run(g->tail, &s, in, NULL, 0, f->next, ctx);
    if (rc < 0 && g->tail->file)
        graft_error_prefix(ctx, "%s:%u: quantize", g->tail->file, g->tail->line);
    return rc;
}

/* What `in` holds: all of it when last, else whole ggml blocks of it. */
static int vf_process(vfilter *f, bool last)
{
    const graft_gplan *g = f->g;
    size_t n = f->have / f->esize;
    if (g->tail && g->tail->index && !last) n -= n % 32; /* whole ggml blocks */
    if (n == 0) return GRAFT_OK;
    size_t keep = f->have - n * f->esize;
    int rc = vf_run(f, f->in, n);
    memmove(f->in, f->in + n * f->esize, keep);
    f->have = keep;
    return rc;
}

static int vf_write(graft_xout *x, const void *p, size_t n)
{
    vfilter *f = (vfilter *)x;
    const uint8_t *s = p;
    while (n > 0) {
        if (f->have == 0 && n >= f->cap) { /* whole blocks from the producer's memory */
            GRAFT_TRY(vf_run(f, s, f->cap / f->esize)); /* cap: whole ggml blocks */
            s += f->cap, n -= f->cap;
            continue;
        }
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

static int vf_read(void *payload, const uint8_t *at, void *dst, size_t n, graft_ctx *ctx)
{
    vfilter *f = payload;
    return f->next->read(f->next->payload, at, dst, n, ctx);
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
        if (next->read) f->x.read = vf_read;
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
    const uint8_t *r = run_vals(g, B->a, B->a, B->b, n, NULL, ctx, &rc);
    if (!r) return rc;
    uint8_t *p = r == B->b ? B->b : B->a; /* the constants go in after the ops */
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
