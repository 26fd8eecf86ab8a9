/*
 * permute.c - N-d permute as a cache-blocked strided gather.
 *
 * The output is written in order; each output axis i reads the input with
 * stride s[i] elements.  After dropping size-1 axes and merging output
 * neighbours that are also neighbours in the input, two cases remain:
 *   1. the innermost output axis has stride 1: copy runs with memcpy;
 *   2. otherwise it is a transpose between the innermost output axis and the
 *      output axis with the smallest input stride: walk TxT tiles of that
 *      pair so both the reads and the writes stay within a few cache lines.
 * Large outputs headed for a sink are produced in slabs of whole outer rows,
 * each gathered by two threads; a large 2-D transpose from a source the
 * caller can release goes through column bands instead, so that only a
 * band of the mapped source is resident at a time, and other large
 * permutes that move the source's outermost axis inward go out of core
 * (ooc.c).
 */
#include "kernels.h"
#include "error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Tile edge per element size (measured on 4096x4096 transposes). */
#define EDGE(w) ((w) <= 2 ? 128 : (w) <= 4 ? 64 : (w) <= 8 ? 32 : 16)
static int64_t tile_edge(size_t esize)
{
    return EDGE(esize);
}

/*
 * One tile: dst[a*da + b] = src[a*sa + b*sb] for a < na, b < nb (elements).
 * When the source runs along a (sa == 1) the tile is first copied row by row
 * into a small buffer and transposed there: with power-of-two row pitches
 * the direct loop would touch nb lines of one cache set per step and thrash
 * it.  memcpy of a constant size compiles to one load and one store and has
 * no alignment requirement, which mapped file data does not meet.
 */
#define TILE_FN(name, W)                                                                           \
    static void name(uint8_t *dst, int64_t da, const uint8_t *src, int64_t sa, int64_t sb,         \
                     int64_t na, int64_t nb)                                                       \
    {                                                                                              \
        if (sa == 1 && na > 1) {                                                                   \
            uint8_t buf[EDGE(W) * EDGE(W) * (W)];                                                  \
            for (int64_t b = 0; b < nb; b++)                                                       \
                memcpy(buf + b * na * (W), src + b * sb * (W), (size_t)(na * (W)));                \
            for (int64_t a = 0; a < na; a++) {                                                     \
                uint8_t *d = dst + a * da * (W);                                                   \
                for (int64_t b = 0; b < nb; b++)                                                   \
                    memcpy(d + b * (W), buf + (b * na + a) * (W), (W));                            \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        for (int64_t a = 0; a < na; a++) {                                                         \
            uint8_t *d = dst + a * da * (W);                                                       \
            const uint8_t *s = src + a * sa * (W);                                                 \
            for (int64_t b = 0; b < nb; b++)                                                       \
                memcpy(d + b * (W), s + b * sb * (W), (W));                                        \
        }                                                                                          \
    }
TILE_FN(tile1, 1)
TILE_FN(tile2_scalar, 2)
TILE_FN(tile4_scalar, 4)
TILE_FN(tile8, 8)
TILE_FN(tile16, 16)

#ifdef __SSE2__
#include <emmintrin.h>
/* 4-byte elements, source running along a: 4x4 blocks moved through SSE2
 * registers (unaligned loads and stores), the ragged edges by the scalar
 * tile.  SSE2 is part of x86-64, so this is the path there. */
static void tile4(uint8_t *dst, int64_t da, const uint8_t *src, int64_t sa, int64_t sb, int64_t na,
                  int64_t nb)
{
    if (sa != 1 || na < 4 || nb < 4) {
        tile4_scalar(dst, da, src, sa, sb, na, nb);
        return;
    }
    int64_t na4 = na & ~(int64_t)3, nb4 = nb & ~(int64_t)3;
    for (int64_t a = 0; a < na4; a += 4) {
        for (int64_t b = 0; b < nb4; b += 4) {
            const float *s = (const float *)(const void *)(src + (a + b * sb) * 4);
            __m128 r0 = _mm_loadu_ps(s), r1 = _mm_loadu_ps(s + sb);
            __m128 r2 = _mm_loadu_ps(s + 2 * sb), r3 = _mm_loadu_ps(s + 3 * sb);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            float *d = (float *)(void *)(dst + (a * da + b) * 4);
            _mm_storeu_ps(d, r0);
            _mm_storeu_ps(d + da, r1);
            _mm_storeu_ps(d + 2 * da, r2);
            _mm_storeu_ps(d + 3 * da, r3);
        }
    }
    if (nb4 < nb) tile4_scalar(dst + nb4 * 4, da, src + nb4 * sb * 4, 1, sb, na, nb - nb4);
    if (na4 < na) tile4_scalar(dst + na4 * da * 4, da, src + na4 * 4, 1, sb, na - na4, nb4);
}

/* 2-byte elements: 8x8 blocks, transposed by three rounds of unpacks. */
static void tile2(uint8_t *dst, int64_t da, const uint8_t *src, int64_t sa, int64_t sb, int64_t na,
                  int64_t nb)
{
    if (sa != 1 || na < 8 || nb < 8) {
        tile2_scalar(dst, da, src, sa, sb, na, nb);
        return;
    }
    int64_t na8 = na & ~(int64_t)7, nb8 = nb & ~(int64_t)7;
    for (int64_t a = 0; a < na8; a += 8) {
        for (int64_t b = 0; b < nb8; b += 8) {
            const uint8_t *s = src + (a + b * sb) * 2;
            __m128i r[8], t[8], u[8];
            for (int i = 0; i < 8; i++)
                r[i] = _mm_loadu_si128((const __m128i *)(const void *)(s + i * sb * 2));
            for (int i = 0; i < 8; i += 2) {
                t[i] = _mm_unpacklo_epi16(r[i], r[i + 1]);
                t[i + 1] = _mm_unpackhi_epi16(r[i], r[i + 1]);
            }
            for (int i = 0; i < 8; i += 4) {
                u[i] = _mm_unpacklo_epi32(t[i], t[i + 2]);
                u[i + 1] = _mm_unpackhi_epi32(t[i], t[i + 2]);
                u[i + 2] = _mm_unpacklo_epi32(t[i + 1], t[i + 3]);
                u[i + 3] = _mm_unpackhi_epi32(t[i + 1], t[i + 3]);
            }
            uint8_t *d = dst + (a * da + b) * 2;
            for (int i = 0; i < 4; i++) {
                _mm_storeu_si128((__m128i *)(void *)(d + 2 * i * da * 2),
                                 _mm_unpacklo_epi64(u[i], u[i + 4]));
                _mm_storeu_si128((__m128i *)(void *)(d + (2 * i + 1) * da * 2),
                                 _mm_unpackhi_epi64(u[i], u[i + 4]));
            }
        }
    }
    if (nb8 < nb) tile2_scalar(dst + nb8 * 2, da, src + nb8 * sb * 2, 1, sb, na, nb - nb8);
    if (na8 < na) tile2_scalar(dst + na8 * da * 2, da, src + na8 * 2, 1, sb, na - na8, nb8);
}
#else
#define tile4 tile4_scalar
#define tile2 tile2_scalar
#endif

typedef void (*tile_fn)(uint8_t *, int64_t, const uint8_t *, int64_t, int64_t, int64_t, int64_t);

static tile_fn tile_for(size_t esize)
{
    switch (esize) {
    case 1:
        return tile1;
    case 2:
        return tile2;
    case 4:
        return tile4;
    case 8:
        return tile8;
    case 16:
        return tile16;
    default:
        return NULL;
    }
}

/* Odd element sizes (none of graft's dtypes today) go one element at a time. */
static void tile_any(uint8_t *dst, int64_t da, const uint8_t *src, int64_t sa, int64_t sb,
                     int64_t na, int64_t nb, size_t w)
{
    for (int64_t a = 0; a < na; a++)
        for (int64_t b = 0; b < nb; b++)
            memcpy(dst + (a * da + b) * (int64_t)w, src + (a * sa + b * sb) * (int64_t)w, w);
}

/* memcpy for runs that are often short (an HW of 3x3 floats is 36 bytes),
 * where the call costs more than the copy. */
static void copy_run(uint8_t *d, const uint8_t *s, size_t n)
{
    if (n > 128) {
        memcpy(d, s, n);
        return;
    }
    for (; n >= 16; n -= 16, d += 16, s += 16)
        memcpy(d, s, 16);
    if (n >= 8) {
        memcpy(d, s, 8);
        n -= 8, d += 8, s += 8;
    }
    for (; n; n--)
        *d++ = *s++;
}

/* Drop size-1 axes and merge output neighbours contiguous in the input.
 * Returns the new rank; 0 means a single element. */
static uint32_t simplify(uint32_t n, const int64_t *dim, const int64_t *st, int64_t *d, int64_t *s)
{
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (dim[i] == 1) continue;
        if (m > 0 && s[m - 1] == st[i] * dim[i]) {
            d[m - 1] *= dim[i];
            s[m - 1] = st[i];
            continue;
        }
        d[m] = dim[i];
        s[m] = st[i];
        m++;
    }
    return m;
}

void graft_xform__gather(uint8_t *dst, const uint8_t *src, size_t esize, uint32_t n,
                         const int64_t *dim, const int64_t *stride)
{
    int64_t d[GRAFT_MAX_NDIM], s[GRAFT_MAX_NDIM], ds[GRAFT_MAX_NDIM];
    int64_t od[GRAFT_MAX_NDIM], os[GRAFT_MAX_NDIM], odst[GRAFT_MAX_NDIM], idx[GRAFT_MAX_NDIM];
    const int64_t w = (int64_t)esize;

    for (uint32_t i = 0; i < n; i++)
        if (dim[i] == 0) return;
    uint32_t m = simplify(n, dim, stride, d, s);
    if (m == 0) {
        memcpy(dst, src, esize);
        return;
    }
    /* Output strides (elements) of the simplified shape. */
    ds[m - 1] = 1;
    for (uint32_t i = m - 1; i > 0; i--)
        ds[i - 1] = ds[i] * d[i];

    /* The tiled pair: b = innermost output axis, a = smallest input stride
     * among the others (a = b when there is none).  When b has stride 1,
     * a is the next axis out and each step copies d[a] runs. */
    uint32_t b = m - 1, a = b;
    if (s[b] == 1 && m > 1)
        a = m - 2;
    else if (s[b] != 1)
        for (uint32_t i = 0; i + 1 < m; i++)
            if (a == b || s[i] < s[a]) a = i;

    /* Every other axis is walked by an odometer. */
    uint32_t no = 0;
    for (uint32_t i = 0; i < m; i++) {
        if (i == a || i == b) continue;
        od[no] = d[i];
        os[no] = s[i];
        odst[no] = ds[i];
        idx[no] = 0;
        no++;
    }

    tile_fn tile = tile_for(esize);
    int64_t edge = tile_edge(esize), bedge = edge;
    /* A short a (an HW of 9, say) is better served by narrow tiles: measured
     * on (512,512,3,3) -> HWIO, they keep more source lines for the next
     * odometer step. */
    if (a != b && d[a] < edge) bedge = 16;
    int64_t soff = 0, doff = 0;
    for (;;) {
        const uint8_t *sp = src + soff * w;
        uint8_t *dp = dst + doff * w;
        if (s[b] == 1) {
            size_t run = (size_t)(d[b] * w);
            if (a == b)
                copy_run(dp, sp, run);
            else
                for (int64_t r = 0; r < d[a]; r++)
                    copy_run(dp + r * ds[a] * w, sp + r * s[a] * w, run);
        } else if (a == b) {
            if (tile)
                tile(dp, 0, sp, 0, s[b], 1, d[b]);
            else
                tile_any(dp, 0, sp, 0, s[b], 1, d[b], esize);
        } else {
            for (int64_t a0 = 0; a0 < d[a]; a0 += edge) {
                int64_t na = d[a] - a0 < edge ? d[a] - a0 : edge;
                for (int64_t b0 = 0; b0 < d[b]; b0 += bedge) {
                    int64_t nb = d[b] - b0 < bedge ? d[b] - b0 : bedge;
                    uint8_t *td = dp + (a0 * ds[a] + b0) * w;
                    const uint8_t *ts = sp + (a0 * s[a] + b0 * s[b]) * w;
                    if (tile)
                        tile(td, ds[a], ts, s[a], s[b], na, nb);
                    else
                        tile_any(td, ds[a], ts, s[a], s[b], na, nb, esize);
                }
            }
        }
        /* Next odometer position, innermost first. */
        uint32_t k = no;
        while (k > 0) {
            k--;
            idx[k]++;
            soff += os[k];
            doff += odst[k];
            if (idx[k] < od[k]) break;
            soff -= os[k] * od[k];
            doff -= odst[k] * od[k];
            idx[k] = 0;
            if (k == 0) return;
        }
        if (no == 0) return;
    }
}

/*
 * A slab's gather on two threads, each taking half of its outer rows (of
 * row_bytes each): a permute like the flatten reorder [O,C,H,W] -> [H,W,C,O]
 * reads one element per cache line and is bound by memory latency, which a
 * second core hides.  Small slabs are not worth a thread.
 */
#define PAR_MIN ((uint64_t)1 << 20)
typedef struct half_gather {
    uint8_t *dst;
    const uint8_t *src;
    size_t esize;
    uint32_t n;
    int64_t dim[GRAFT_MAX_NDIM];
    const int64_t *stride;
} half_gather;

static void *run_half(void *arg)
{
    half_gather *h = arg;
    graft_xform__gather(h->dst, h->src, h->esize, h->n, h->dim, h->stride);
    return NULL;
}

void graft_xform__gather2(uint8_t *dst, const uint8_t *src, size_t esize, uint32_t n,
                          const int64_t *dim, const int64_t *stride, uint64_t row_bytes)
{
    pthread_t t;
    int64_t top = dim[0] / 2;
    half_gather h = {.dst = dst + (uint64_t)top * row_bytes,
                     .src = src + top * stride[0] * (int64_t)esize,
                     .esize = esize, .n = n, .stride = stride};
    memcpy(h.dim, dim, n * sizeof *dim);
    h.dim[0] = dim[0] - top;
    if (top == 0 || (uint64_t)dim[0] * row_bytes < PAR_MIN ||
        pthread_create(&t, NULL, run_half, &h) != 0) {
        graft_xform__gather(dst, src, esize, n, dim, stride);
        return;
    }
    int64_t mine[GRAFT_MAX_NDIM];
    memcpy(mine, dim, n * sizeof *dim);
    mine[0] = top;
    graft_xform__gather(dst, src, esize, n, mine, stride);
    pthread_join(t, NULL);
}

/*
 * Rows of a strided source read into dst with o->read (pread), half of them
 * on a second thread: a few-KB pread costs ~2 us of kernel time, mostly
 * copying out of the page cache, and the band and out-of-core permutes make
 * ~100k of them for vgg11's fc1.  The second thread reports into a context
 * of its own, copied over on failure.
 */
typedef struct half_read {
    graft_xout *o;
    uint8_t *dst;
    const uint8_t *src;
    uint64_t from, to, pitch, seg;
    graft_ctx *ctx;
    int rc;
} half_read;

static void read_rows(half_read *h)
{
    h->rc = GRAFT_OK;
    for (uint64_t r = h->from; r < h->to && h->rc == GRAFT_OK; r++)
        h->rc = h->o->read(h->o->payload, h->src + r * h->pitch, h->dst + r * h->seg,
                           (size_t)h->seg, h->ctx);
}

static void *run_read(void *arg)
{
    read_rows(arg);
    return NULL;
}

#define STAGE_GROUP ((uint64_t)4 << 20) /* source bytes mapped between releases */

int graft_xform__stage_rows(graft_xout *o, uint8_t *dst, const uint8_t *src, uint64_t rows,
                            uint64_t pitch, uint64_t seg, bool pread)
{
    if (!pread) {
        uint64_t group = STAGE_GROUP / pitch ? STAGE_GROUP / pitch : 1;
        for (uint64_t r = 0; r < rows; r++) {
            memcpy(dst + r * seg, src + r * pitch, (size_t)seg);
            if ((r + 1) % group == 0 || r + 1 == rows) o->release(o->payload);
        }
        return GRAFT_OK;
    }
    pthread_t t;
    graft_ctx own = {0};
    half_read mine = {o, dst, src, 0, rows, pitch, seg, o->ctx, 0}, other = mine;
    other.ctx = &own;
    mine.to = other.from = rows * seg >= PAR_MIN ? rows / 2 : rows;
    bool two = other.from < rows && pthread_create(&t, NULL, run_read, &other) == 0;
    if (!two) mine.to = rows;
    read_rows(&mine);
    if (two) pthread_join(t, NULL);
    if (mine.rc < 0 || !two || other.rc == GRAFT_OK) return mine.rc;
    return graft_error(o->ctx, other.rc, "%s", own.msg);
}

/*
 * A large 2-D transpose ([R, C] -> [C, R]) from a mapped file into a sink
 * that can release the source.  The slab loop would read a few bytes of
 * every source row per slab, and a fault maps a whole page-cache folio
 * (up to 2 MiB), so the whole source would become resident.  Instead copy
 * bands of W columns into a staging buffer a few rows at a time, dropping
 * the mapped pages after each group, and transpose each band from there.
 * Returns 1 when the shape is not one this handles.
 */
#define BAND_STAGE ((size_t)16 << 20) /* staging buffer */
#define BAND_MIN ((uint64_t)32 << 20) /* smaller sources may stay resident: half of
                                       * graft_ctx_set_memory_budget's default */
#define BAND_MAP_ROW ((size_t)32 << 10) /* source rows up to this are copied mapped */
static int banded_transpose(graft_xout *o, const uint8_t *src, size_t esize, int64_t rows,
                            int64_t cols)
{
    size_t rbytes = (size_t)rows * esize, cbytes = (size_t)cols * esize;
    if (rbytes > BAND_STAGE) return 1;
    int64_t w = (int64_t)(BAND_STAGE / rbytes);
    if (w > cols) w = cols;
    int64_t per_slab = (int64_t)(GRAFT_XFORM_SLAB / rbytes);
    if (per_slab < 1) per_slab = 1;
    if (per_slab > w) per_slab = w;
    uint8_t *stage = graft_malloc(o->ctx, (size_t)w * rbytes);
    /* two slab buffers: the writer thread writes one while the other fills */
    uint8_t *buf = graft_malloc(o->ctx, 2 * (size_t)per_slab * rbytes);
    uint64_t lent[2] = {0, 0};
    int half = 0, rc = GRAFT_OK;
    if (!stage || !buf) {
        rc = graft_error_oom(o->ctx, "a transpose buffer");
        goto cleanup;
    }
    /* pread (o->read) costs a call per row and band, mapping a fault per
     * window of 16 pages: with short rows a window holds several, and
     * mapping won (L1's bf16 projections, 8 KB rows: 642k preads, 1.55 ->
     * 1.16 s CPU); with long rows a pread is cheaper (ooc.c's fc1). */
    bool read = cbytes > BAND_MAP_ROW && o->read;
    for (int64_t j = 0; j < cols; j += w) {
        int64_t bw = cols - j < w ? cols - j : w;
        size_t run = (size_t)bw * esize;
        rc = graft_xform__stage_rows(o, stage, src + (size_t)j * esize, (uint64_t)rows, cbytes, run,
                                     read);
        if (rc < 0) goto cleanup;
        for (int64_t k = 0; k < bw; k += per_slab) {
            int64_t dims[2] = {bw - k < per_slab ? bw - k : per_slab, rows}, st[2] = {1, bw};
            uint8_t *slab = buf + (size_t)half * (size_t)per_slab * rbytes;
            if ((rc = graft_xform__wait(o, lent[half])) < 0) goto cleanup;
            graft_xform__gather2(slab, stage + (size_t)k * esize, esize, 2, dims, st, rbytes);
            rc = graft_xform__lend(o, slab, (size_t)dims[0] * rbytes, &lent[half]);
            if (rc < 0) goto cleanup;
            half ^= 1;
        }
    }
cleanup:
    for (int i = 0; i < 2; i++) { /* buf is freed below: its writes first */
        int e = graft_xform__wait(o, lent[i]);
        if (rc == GRAFT_OK) rc = e;
    }
    free(buf);
    free(stage);
    return rc;
}

int graft_xform__permute(graft_xout *o, const uint8_t *src, size_t esize, uint32_t n,
                         const int64_t *dim, const uint32_t *axes)
{
    int64_t istride[GRAFT_MAX_NDIM], odim[GRAFT_MAX_NDIM], ost[GRAFT_MAX_NDIM];
    uint64_t numel = 1;

    if (n > 0) istride[n - 1] = 1;
    for (uint32_t i = n; i > 1; i--)
        istride[i - 2] = istride[i - 1] * dim[i - 1];
    for (uint32_t i = 0; i < n; i++) {
        odim[i] = dim[axes[i]];
        ost[i] = istride[axes[i]];
        numel *= (uint64_t)dim[i];
    }
    if (numel == 0) return GRAFT_OK;
    if (o->mem) {
        graft_xform__gather(o->mem + o->pos, src, esize, n, odim, ost);
        o->pos += numel * esize;
        return GRAFT_OK;
    }
    if (o->release) {
        int64_t d[GRAFT_MAX_NDIM], s[GRAFT_MAX_NDIM];
        uint32_t m = simplify(n, odim, ost, d, s);
        uint64_t budget = o->ctx && o->ctx->mem_budget ? o->ctx->mem_budget / 2 : BAND_MIN;
        if (numel * esize >= budget && m == 2 && s[0] == 1 && s[1] == d[0]) {
            int rc = banded_transpose(o, src, esize, d[1], d[0]);
            if (rc != 1) return rc;
        }
        int rc = graft_xform__permute_ooc(o, src, esize, m, d, s);
        if (rc != 1) return rc;
    }

    /*
     * To a sink: slabs of at most GRAFT_XFORM_SLAB bytes.  Axis q is the
     * outermost one whose inner block (axes after q) fits a slab; a slab is
     * one position of the axes before q and a run of rows of axis q.
     * Such a permute may read most of its source for every slab (the
     * flatten reorder [O,C,H,W] -> [H,W,C,O] reads all of it): releasing it
     * on the way would only fault it back in, so it is held to the end.
     */
    void (*release)(void *) = o->release;
    o->release = NULL;
    uint64_t inner = esize;
    uint32_t q = n;
    while (q > 0 && inner * (uint64_t)odim[q - 1] <= GRAFT_XFORM_SLAB) {
        q--;
        inner *= (uint64_t)odim[q];
    }
    if (q == 0) { /* the whole tensor fits one slab */
        uint8_t *buf = graft_malloc(o->ctx, (size_t)inner);
        if (!buf) {
            o->release = release;
            return graft_error_oom(o->ctx, "a permute buffer");
        }
        graft_xform__gather(buf, src, esize, n, odim, ost);
        int rc = graft_xform__emit(o, buf, (size_t)inner);
        free(buf);
        o->release = release;
        return rc;
    }
    q--; /* axis q is split into runs of `rows` */
    uint64_t rows = GRAFT_XFORM_SLAB / inner;
    if (rows == 0) rows = 1;
    if (rows > (uint64_t)odim[q]) rows = (uint64_t)odim[q];
    uint8_t *buf = graft_malloc(o->ctx, (size_t)(rows * inner));
    int rc = GRAFT_OK;
    if (!buf) {
        rc = graft_error_oom(o->ctx, "a permute buffer");
        goto cleanup;
    }

    int64_t idx[GRAFT_MAX_NDIM] = {0}, sub[GRAFT_MAX_NDIM];
    memcpy(sub, odim, sizeof(int64_t) * n);
    for (;;) {
        int64_t base = 0;
        for (uint32_t i = 0; i < q; i++)
            base += idx[i] * ost[i];
        for (int64_t r = 0; r < odim[q]; r += (int64_t)rows) {
            sub[q] = odim[q] - r < (int64_t)rows ? odim[q] - r : (int64_t)rows;
            graft_xform__gather2(buf, src + (base + r * ost[q]) * (int64_t)esize, esize, n - q,
                                 sub + q, ost + q, inner);
            rc = graft_xform__emit(o, buf, (size_t)((uint64_t)sub[q] * inner));
            if (rc < 0) goto cleanup;
        }
        uint32_t k = q;
        while (k > 0 && ++idx[k - 1] == odim[k - 1])
            idx[--k] = 0;
        if (k == 0) break;
    }
cleanup:
    o->release = release;
    free(buf);
    return rc;
}
