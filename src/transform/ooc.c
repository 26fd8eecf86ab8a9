/*
 * ooc.c - a large permute that moves the source's outermost axis inward
 * (the flatten reorder [O,C,H,W] -> [H,W,C,O]), done out of core.
 *
 * The slab path reads a little of every source row for each output slab,
 * so the whole mapped source stays resident.  Instead, in two passes:
 *   1. read the source in order, B outer rows (about OOC_BLOCK bytes) at a
 *      time; permute each block on its own (the output axis order with O
 *      cut to the block's rows) and write it to an unlinked temporary file
 *      in the output's folder, releasing the source pages after each block;
 *   2. build the output in order: for a run of output rows, every block
 *      holds one contiguous piece, so one pread per block fills a buffer
 *      that is interleaved into the output slab.
 * The temporary file holds the whole tensor once, so the output's folder
 * needs that much space beside the output until the permute is done.
 * Memory is two buffers of about OOC_BLOCK bytes.
 *
 * When the output is a file at known offsets (a sink with no running
 * checksum), there is no temporary file: see positioned() below.
 *
 * Temporary file layout: output axes are [A..., O, I...]; A has na rows
 * in all, one row of I is ni bytes.  Block k (source rows r_k .. r_k+b_k)
 * is stored from r_k * na * ni as [A..., b_k, I...], so output row P of
 * block k is the b_k * ni bytes at r_k * na * ni + P * b_k * ni.
 */
#define _GNU_SOURCE
#include "kernels.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OOC_MIN ((uint64_t)32 << 20) /* smaller tensors stay in memory: half the default
                                      * budget, the rest is for buffers */
#define OOC_BLOCK ((size_t)8 << 20)  /* pass-1 block, pass-2 slab */

static uint64_t ooc_min = OOC_MIN;
static size_t ooc_block = OOC_BLOCK;
static bool ooc_block_set; /* by a test: positioned() takes it as is */
static uint64_t in_place_runs; /* permutes done by positioned(), for tests */

uint64_t graft_xform__ooc_in_place(void)
{
    return in_place_runs;
}

void graft_xform__set_ooc(uint64_t min_bytes, size_t block_bytes)
{
    ooc_min = min_bytes ? min_bytes : OOC_MIN;
    ooc_block = block_bytes ? block_bytes : OOC_BLOCK;
    ooc_block_set = block_bytes != 0;
}

/* The folder of the sink's output ("." when it has none): its temporary
 * file lives there too (often unnamed, so asking its name would make one). */
static char *sink_dir(graft_xout *o)
{
    const char *p = graft_sink_path(o->sink);
    const char *slash = p ? strrchr(p, '/') : NULL;
    size_t n = slash ? (size_t)(slash - p) : 0;
    char *dir = graft_malloc(o->ctx, n + 2);
    if (!dir) return NULL;
    if (!slash)
        strcpy(dir, ".");
    else if (n == 0)
        strcpy(dir, "/");
    else {
        memcpy(dir, p, n);
        dir[n] = '\0';
    }
    return dir;
}

/* An unlinked read-write file in dir: O_TMPFILE where the file system has
 * it, else mkstemp + unlink.  -1 with errno set on failure. */
static int open_tmp(const char *dir)
{
#ifdef O_TMPFILE
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)) return fd;
#endif
    size_t n = strlen(dir) + sizeof "/.graft-permute-XXXXXX";
    char *path = malloc(n);
    if (!path) return -1;
    snprintf(path, n, "%s/.graft-permute-XXXXXX", dir);
    int t = mkstemp(path);
    if (t >= 0) unlink(path);
    free(path);
    return t;
}

static int write_at(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    int e = graft_pwrite_all(fd, p, n, off);
    if (e) errno = e;
    return e ? -1 : 0;
}

static int read_at(int fd, uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t k = pread(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (k == 0) {
            errno = EIO; /* the file is ours: it cannot have shrunk */
            return -1;
        }
        p += k, n -= (size_t)k, off += (uint64_t)k;
    }
    return 0;
}

/*
 * One pass, written in place.  Take X, the source axis just inside O (the
 * second largest stride).  A block of X indices [x0, x1) is, in every source
 * row of O, one contiguous segment (X and everything inside it); staged
 * together those segments are a small tensor [O, x1-x0, ...] permuted like
 * the whole, and in the output the block is, for each position of the
 * output axes before X, one contiguous run of (x1-x0) X-rows: pwrite each
 * run at its offset in the space graft_sink_reserve set aside.  For the
 * flatten reorder [O,C,HW] -> [HW,C,O]: channels c0..c1 are columns
 * c*HW.. of each source row, and output rows hw*C+c0.. are one run per hw.
 * The segments are read with o->read (pread) where the caller offers it:
 * touching them through the mapping would fault every page of the source
 * in again for each block; without it the staged rows are released in
 * groups, so the mapped source never becomes resident as a whole.  Returns 1 when the shape does not suit
 * (a block of one X index over the budget, runs too short to write one by
 * one) or the sink cannot take positioned writes.
 */
static int positioned(graft_xout *o, const uint8_t *src, size_t esize, uint32_t m,
                      const int64_t *d, const int64_t *s)
{
    if (o->filter || m < 2) return 1;
    uint32_t io = 0, ix = m; /* output positions of O and X */
    for (uint32_t i = 1; i < m; i++)
        if (s[i] > s[io]) io = i;
    for (uint32_t i = 0; i < m; i++)
        if (i != io && (ix == m || s[i] > s[ix])) ix = i;
    uint64_t es = esize, so = (uint64_t)s[io], sx = (uint64_t)s[ix];
    uint64_t nrow = (uint64_t)d[io], nx = (uint64_t)d[ix];
    if (so != nx * sx) return 1; /* not a contiguous source */
    uint64_t inner = 1, outer = 1; /* output elements inside one X row; positions before X */
    for (uint32_t i = ix + 1; i < m; i++) inner *= (uint64_t)d[i];
    for (uint32_t i = 0; i < ix; i++) outer *= (uint64_t)d[i];
    uint64_t slice = nrow * sx * es; /* one X index, all rows */
    /* Its two buffers take half the budget: the larger a block, the longer
     * each row's segment and the fewer preads (4096 a block for vgg11's fc1,
     * ~1 us each), which were a quarter of that apply. */
    uint64_t block = o->ctx && o->ctx->mem_budget ? o->ctx->mem_budget / 4 : OOC_MIN / 2;
    if (ooc_block_set || block < ooc_block) block = ooc_block;
    uint64_t bx = block / slice;
    if (bx > nx) bx = nx;
    if (bx < 1) return 1;
    uint64_t run = bx * inner * es;
    if (run < ooc_block / 128) return 1; /* runs this short: the two passes */
    uint64_t total = nrow * so * es, base = 0, cap = bx * slice;
    uint8_t *in = graft_malloc(o->ctx, (size_t)cap), *out = graft_malloc(o->ctx, (size_t)cap);
    int rc = !in || !out ? graft_error_oom(o->ctx, "permute buffers") : GRAFT_OK;
    if (rc == GRAFT_OK) rc = graft_sink_reserve(o->sink, total, &base);
    for (uint64_t x0 = 0; rc == GRAFT_OK && x0 < nx; x0 += bx) {
        uint64_t nb = nx - x0 < bx ? nx - x0 : bx, seg = nb * sx * es;
        /* preads where offered: no fault, nothing resident */
        rc = graft_xform__stage_rows(o, in, src + x0 * sx * es, nrow, so * es, seg,
                                     o->read != NULL);
        if (rc < 0) break;
        /* the writer thread may still be writing the last block from out */
        if ((rc = graft_sink_settle(o->sink)) < 0) break;
        int64_t bd[GRAFT_MAX_NDIM], bs[GRAFT_MAX_NDIM];
        for (uint32_t i = 0; i < m; i++) bd[i] = d[i], bs[i] = s[i];
        bd[ix] = (int64_t)nb;
        bs[io] = (int64_t)(nb * sx);
        /* the whole block at once: its tiles keep the staged rows' stride-1 axis */
        graft_xform__gather2(out, in, esize, m, bd, bs, nb * slice / (uint64_t)bd[0]);
        uint64_t len = nb * inner * es;
        for (uint64_t p = 0; rc == GRAFT_OK && p < outer; p++) {
            /* written from out by the sink's writer thread, while the next
             * block is read; settled above before out is gathered again */
            uint64_t ticket;
            rc = graft_sink_lend_at(o->sink, base + (p * nx + x0) * inner * es, out + p * len,
                                    (size_t)len, &ticket);
        }
    }
    int settled = graft_sink_settle(o->sink); /* before out is freed */
    if (rc == GRAFT_OK) rc = settled;
    if (rc == GRAFT_OK) {
        o->pos += total;
        in_place_runs++;
    }
    free(in);
    free(out);
    return rc;
}

int graft_xform__permute_ooc(graft_xout *o, const uint8_t *src, size_t esize, uint32_t m,
                             const int64_t *d, const int64_t *s)
{
    if (!o->sink || !o->release || m < 2) return 1;
    uint32_t p = 0; /* the output position of the source's outermost axis */
    for (uint32_t i = 1; i < m; i++)
        if (s[i] > s[p]) p = i;
    uint64_t rowb = (uint64_t)s[p] * esize, total = (uint64_t)d[p] * rowb;
    uint64_t budget = o->ctx && o->ctx->mem_budget ? o->ctx->mem_budget / 2 : ooc_min;
    if (p == 0 || total < budget) return 1;
    int rc = positioned(o, src, esize, m, d, s);
    if (rc != 1 || rowb > ooc_block) return rc;
    rc = GRAFT_OK;

    uint64_t na = 1, ni = esize;
    for (uint32_t i = 0; i < p; i++)
        na *= (uint64_t)d[i];
    for (uint32_t i = p + 1; i < m; i++)
        ni *= (uint64_t)d[i];
    int64_t b = (int64_t)(ooc_block / rowb); /* source rows per block */
    if (b > d[p]) b = d[p];
    uint64_t rowp = (uint64_t)d[p] * ni; /* one output row of A */
    uint64_t q = ooc_block / rowp;       /* output rows of A per slab */
    if (q < 1) q = 1;
    if (q > na) q = na;
    /* A row of A longer than a block goes out piece by piece instead. */
    uint64_t slab = q > 1 ? q * rowp : 0;
    size_t cap = (size_t)((uint64_t)b * rowb > slab ? (uint64_t)b * rowb : slab);

    int fd = -1;
    char *dir = sink_dir(o);
    uint8_t *buf = graft_malloc(o->ctx, cap), *out = slab ? graft_malloc(o->ctx, slab) : NULL;
    if (!dir || !buf || (slab && !out)) {
        rc = graft_error_oom(o->ctx, "out-of-core permute buffers");
        goto cleanup;
    }
    fd = open_tmp(dir);
    if (fd < 0) {
        rc = graft_error(o->ctx, GRAFT_EIO,
                         "permute of %" PRIu64 " bytes: cannot create a temporary file in '%s': %s",
                         total, dir, strerror(errno));
        goto cleanup;
    }

    /* Pass 1: blocks of source rows, each permuted on its own. */
    int64_t dims[GRAFT_MAX_NDIM];
    memcpy(dims, d, m * sizeof *d);
    for (int64_t r = 0; r < d[p]; r += b) {
        dims[p] = d[p] - r < b ? d[p] - r : b;
        uint64_t bytes = (uint64_t)dims[p] * rowb;
        graft_xform__gather2(buf, src + (uint64_t)r * rowb, esize, m, dims, s,
                             bytes / (uint64_t)d[0]);
        o->release(o->payload);
        if (write_at(fd, buf, (size_t)bytes, (uint64_t)r * rowb) < 0) {
            rc = graft_error(o->ctx, GRAFT_EIO,
                             "permute: writing %" PRIu64 " bytes at %" PRIu64
                             " of a temporary file in '%s': %s",
                             bytes, (uint64_t)r * rowb, dir, strerror(errno));
            goto cleanup;
        }
    }

    /* Pass 2: slabs of q output rows of A; block k gives each row b_k * ni
     * bytes, and the q rows' pieces are contiguous in its part of the file. */
    for (uint64_t a = 0; a < na; a += q) {
        uint64_t nq = na - a < q ? na - a : q;
        for (int64_t r = 0; r < d[p]; r += b) {
            uint64_t bk = (uint64_t)(d[p] - r < b ? d[p] - r : b), piece = bk * ni;
            uint8_t *stage = nq == 1 ? buf : buf + (uint64_t)r * nq * ni;
            if (read_at(fd, stage, (size_t)(nq * piece), (uint64_t)r * rowb + a * piece) < 0) {
                rc = graft_error(o->ctx, GRAFT_EIO,
                                 "permute: reading back a temporary file in '%s': %s", dir,
                                 strerror(errno));
                goto cleanup;
            }
            if (nq == 1) {
                rc = graft_xform__emit(o, buf, (size_t)piece);
                if (rc < 0) goto cleanup;
                continue;
            }
            for (uint64_t j = 0; j < nq; j++)
                memcpy(out + j * rowp + (uint64_t)r * ni, stage + j * piece, (size_t)piece);
        }
        if (nq > 1) {
            rc = graft_xform__emit(o, out, (size_t)(nq * rowp));
            if (rc < 0) goto cleanup;
        }
    }
cleanup:
    if (fd >= 0) close(fd);
    free(out);
    free(buf);
    free(dir);
    return rc;
}
