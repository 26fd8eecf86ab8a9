/*
 * h5_rewrite.c - a copy of a skeleton HDF5 file with new dataset values (see
 * graft_h5__rewrite in h5.h).  Datasets stored contiguous, unfiltered and
 * little-endian are emitted straight into the copy at their file offsets, so
 * their bytes are written once; the rest (chunked, compressed, big-endian,
 * never written, or in an image held in memory) are emitted into a scratch
 * file first and written through libhdf5 into the copy.
 */
#define _GNU_SOURCE
#include "h5.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>


/* Everything written so far reaches the file (a zero-byte patch flushes). */
static int sink_flush(graft_sink *s)
{
    static const uint8_t none[1];
    return graft_sink_pwrite(s, 0, none, 0);
}

static int emit_exact(const graft_model *m, size_t i, graft_sink *out, graft_fill *fill,
                      graft_ctx *ctx)
{
    return graft_fill_emit(fill, m, i, out, ctx);
}

static int by_offset(const void *pa, const void *pb, void *payload)
{
    const graft_model *m = payload;
    uint64_t a = m->tensors[*(const size_t *)pa].offset;
    uint64_t b = m->tensors[*(const size_t *)pb].offset;
    return a < b ? -1 : a > b;
}

typedef struct slow_job {
    const graft_model *m;
    const size_t *slow;      /* tensor indices */
    const uint64_t *at;      /* each one's bytes in `bytes` */
    size_t n;
    uint8_t *copy;           /* the copy so far (fast tensors in place), private mapping */
    size_t copy_size;
    uint8_t *bytes;          /* the slow tensors' new bytes, private mapping */
} slow_job;

/* In a child: write the slow tensors into the copy through libhdf5, then
 * send the whole file image back. */
static int slow_child(void *arg, int fd, graft_ctx *ctx)
{
    const slow_job *j = arg;
    hid_t f = graft_h5__open_image(j->copy, j->copy_size, true, ctx);
    uint8_t *img;
    ssize_t size;
    if (f < 0) return graft_ctx_status(ctx);
    for (size_t k = 0; k < j->n; k++) {
        const graft_tensor *t = &j->m->tensors[j->slow[k]];
        const char *path = t->aux_ptr;
        hid_t d, ft = H5I_INVALID_HID;
        graft_h5__doing("writing dataset '%s'", path);
        d = H5Dopen2(f, path, H5P_DEFAULT);
        if (d >= 0) ft = H5Dget_type(d);
        if (ft >= 0 && H5Tget_size(ft) == graft_dtype_size(t->dtype))
            graft_h5__byteswap(j->bytes + j->at[k], t->nbytes, graft_h5__swap_unit(ft));
        if (ft < 0 || H5Tget_size(ft) != graft_dtype_size(t->dtype) ||
            H5Dwrite(d, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, j->bytes + j->at[k]) < 0)
            return graft_h5__fail(ctx, GRAFT_EIO, "dataset '%s'", path);
    }
    graft_h5__doing("flushing the copy");
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 || (size = H5Fget_file_image(f, NULL, 0)) <= 0 ||
        !(img = malloc((size_t)size)) || H5Fget_file_image(f, img, (size_t)size) != size)
        return graft_h5__fail(ctx, GRAFT_EIO, "the rewritten file image");
    graft_h5__doing("sending the rewritten copy");
    for (ssize_t off = 0; off < size; off += 1 << 20)
        if (graft_h5__put(fd, 'D', img + off, (size_t)(size - off < (1 << 20) ? size - off
                                                                                : (1 << 20))) < 0)
            return graft_error(ctx, GRAFT_EIO, "pipe closed");
    return GRAFT_OK;
}

static int put_image(void *arg, uint8_t kind, const uint8_t *p, size_t n)
{
    return kind == 'D' ? graft_sink_write(arg, p, n) : GRAFT_OK;
}

/* Map the bytes of a scratch sink, privately writable. */
static int map_sink(graft_sink *s, uint8_t **out, size_t *size, graft_ctx *ctx)
{
    int fd;
    *out = MAP_FAILED;
    *size = (size_t)graft_sink_tell(s);
    GRAFT_TRY(graft_sink_reopen(s, &fd, ctx));
    if (*size) *out = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (*out == MAP_FAILED)
        return graft_error(ctx, GRAFT_EIO, "%s: cannot map a scratch file", graft_sink_path(s));
    return GRAFT_OK;
}

/* The slow tensors: their bytes emitted into a scratch file, then written
 * by libhdf5 in a child into `copy` (the image with the fast ones in
 * place); the child's whole new image goes to out. */
static int rewrite_slow(const graft_model *m, graft_sink *copy, graft_sink *out,
                        const size_t *slow, size_t n, graft_fill *fill, graft_ctx *ctx)
{
    graft_sink *scratch = NULL;
    uint64_t *at = NULL;
    slow_job j = {m, slow, NULL, n, MAP_FAILED, 0, MAP_FAILED};
    size_t bytes_size = 0;
    int rc;

    if (!(at = graft_calloc(ctx, n, sizeof *at))) return graft_error_oom(ctx, "the rewrite list");
    j.at = at;
    if ((rc = graft_sink_open(&scratch, graft_sink_path(out), ctx)) < 0) goto cleanup;
    for (size_t k = 0; k < n; k++) {
        at[k] = graft_sink_tell(scratch);
        if ((rc = emit_exact(m, slow[k], scratch, fill, ctx)) < 0) goto cleanup;
    }
    if (graft_sink_tell(scratch) == 0) (void)graft_sink_write(scratch, "", 1); /* mappable */
    if ((rc = map_sink(scratch, &j.bytes, &bytes_size, ctx)) < 0 ||
        (rc = map_sink(copy, &j.copy, &j.copy_size, ctx)) < 0)
        goto cleanup;
    {
        /* the image is copied once by libhdf5 and grows by the new bytes */
        graft_h5_budget b = {2 * (uint64_t)j.copy_size + bytes_size, j.copy_size + bytes_size,
                             j.copy_size + bytes_size};
        rc = graft_h5__sandbox(slow_child, &j, &b, put_image, out, ctx);
    }
    if (rc < 0) graft_error_prefix(ctx, "%s", graft_sink_path(out));
cleanup:
    if (j.copy != MAP_FAILED) munmap(j.copy, j.copy_size);
    if (j.bytes != MAP_FAILED) munmap(j.bytes, bytes_size);
    graft_sink_abort(scratch);
    free(at);
    return rc;
}

int graft_h5__rewrite(const graft_model *m, graft_sink *out, graft_fill *fill, graft_ctx *ctx)
{
    const graft_h5_file *h = m->state;
    const uint8_t *image;
    graft_sink *copy = NULL, *dst = out;
    size_t *fast = NULL, *slow = NULL, nfast = 0, nslow = 0;
    uint64_t pos = 0;
    int rc = GRAFT_OK;

    if (!h || m->state_free != graft_h5__state_free)
        return graft_error(ctx, GRAFT_ERROR, "not an HDF5 model");
    image = graft_h5__image(h);
    fast = graft_calloc(ctx, m->count + 1, sizeof *fast);
    slow = graft_calloc(ctx, m->count + 1, sizeof *slow);
    if (!fast || !slow) {
        rc = graft_error_oom(ctx, "the rewrite list");
        goto cleanup;
    }
    for (size_t i = 0; i < m->count; i++) {
        const graft_tensor *t = &m->tensors[i];
        if (t->nbytes == 0 || t->unsupported) continue; /* left as the copy holds it */
        if (!t->load && t->src == h->src && !t->big_endian && !t->strides)
            fast[nfast++] = i;
        else
            slow[nslow++] = i;
    }
    qsort_r(fast, nfast, sizeof *fast, by_offset, (void *)m);
    for (size_t k = 1; k < nfast; k++) /* overlapping datasets: let libhdf5 sort them out */
        if (m->tensors[fast[k]].offset < m->tensors[fast[k - 1]].offset + m->tensors[fast[k - 1]].nbytes) {
            slow[nslow++] = fast[k];
            memmove(fast + k, fast + k + 1, (--nfast - k) * sizeof *fast);
            k--;
        }
    /* With slow tensors, the fast ones go into a scratch copy first. */
    if (nslow && (rc = graft_sink_open(&copy, graft_sink_path(out), ctx)) < 0) goto cleanup;
    if (copy) dst = copy;
    /* Emit each fast tensor where its bytes sit in the copy. */
    for (size_t k = 0; k < nfast; k++) {
        const graft_tensor *t = &m->tensors[fast[k]];
        uint64_t off = t->offset - h->base;
        if ((rc = graft_sink_write(dst, image + pos, (size_t)(off - pos))) < 0) goto cleanup;
        /* the object headers copied: their pages (and the folio around
         * each) would otherwise stay resident, a few per dataset */
        if (!h->image) graft_source_release(h->src, h->base + pos, off - pos);
        if ((rc = emit_exact(m, fast[k], dst, fill, ctx)) < 0) goto cleanup;
        pos = off + t->nbytes;
    }
    if ((rc = graft_sink_write(dst, image + pos, (size_t)(h->size - pos))) < 0 ||
        (rc = sink_flush(dst)) < 0)
        goto cleanup;
    if (nslow && (rc = rewrite_slow(m, copy, out, slow, nslow, fill, ctx)) == 0)
        rc = sink_flush(out);
cleanup:
    graft_sink_abort(copy);
    free(fast);
    free(slow);
    return rc;
}
