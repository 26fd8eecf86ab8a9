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

/* Emit the slow tensors into a scratch file, then write them with libhdf5. */
static int rewrite_slow(const graft_model *m, graft_sink *out, const size_t *slow, size_t n,
                        graft_fill *fill, graft_ctx *ctx)
{
    const graft_h5_file *h = m->state;
    graft_sink *scratch = NULL;
    uint64_t *at = NULL, total;
    uint8_t *map = MAP_FAILED;
    char *spath = NULL;
    hid_t f = H5I_INVALID_HID, fapl = H5I_INVALID_HID;
    int fd = -1, rc = GRAFT_OK;

    at = graft_calloc(ctx, n, sizeof *at);
    spath = graft_malloc(ctx, strlen(graft_sink_tmp_path(out)) + 16);
    if (!at || !spath) {
        rc = graft_error_oom(ctx, "the rewrite list");
        goto cleanup;
    }
    sprintf(spath, "%s.scratch", graft_sink_tmp_path(out));
    if ((rc = graft_sink_open(&scratch, spath, ctx)) < 0) goto cleanup;
    for (size_t j = 0; j < n; j++) {
        at[j] = graft_sink_tell(scratch);
        if ((rc = emit_exact(m, slow[j], scratch, fill, ctx)) < 0) goto cleanup;
    }
    if ((rc = sink_flush(scratch)) < 0) goto cleanup;
    total = graft_sink_tell(scratch);
    if (total) {
        fd = open(graft_sink_tmp_path(scratch), O_RDONLY | O_CLOEXEC);
        /* private and writable: big-endian datasets are swapped in place */
        if (fd >= 0) map = mmap(NULL, (size_t)total, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            rc = graft_error(ctx, GRAFT_EIO, "%s: cannot map the scratch file",
                             graft_sink_path(out));
            goto cleanup;
        }
    }
    /* The temporary copy is ours alone: no flock() (some filesystems refuse it). */
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0) H5Pset_file_locking(fapl, false, true);
    f = H5Fopen(graft_sink_tmp_path(out), H5F_ACC_RDWR, fapl >= 0 ? fapl : H5P_DEFAULT);
    if (f < 0) {
        rc = graft_h5__fail(ctx, GRAFT_EIO, "%s: reopening the copy", graft_sink_path(out));
        goto cleanup;
    }
    for (size_t j = 0; j < n && rc == GRAFT_OK; j++) {
        const graft_tensor *t = &m->tensors[slow[j]];
        const char *path = t->aux_ptr;
        hid_t d = H5Dopen2(f, path, h->dapl), ft = H5I_INVALID_HID;
        if (d >= 0) ft = H5Dget_type(d);
        if (ft >= 0 && H5Tget_size(ft) == graft_dtype_size(t->dtype))
            graft_h5__byteswap(map + at[j], t->nbytes, graft_h5__swap_unit(ft));
        if (ft < 0 || H5Tget_size(ft) != graft_dtype_size(t->dtype) ||
            H5Dwrite(d, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, map + at[j]) < 0)
            rc = graft_h5__fail(ctx, GRAFT_EIO, "%s: dataset '%s'", graft_sink_path(out), path);
        if (ft >= 0) H5Tclose(ft);
        if (d >= 0) H5Dclose(d);
    }
    if (H5Fclose(f) < 0 && rc == GRAFT_OK)
        rc = graft_h5__fail(ctx, GRAFT_EIO, "%s: closing the copy", graft_sink_path(out));
cleanup:
    if (fapl >= 0) H5Pclose(fapl);
    H5Eclear2(H5E_DEFAULT);
    if (map != MAP_FAILED) munmap(map, (size_t)total);
    if (fd >= 0) close(fd);
    graft_sink_abort(scratch);
    free(spath);
    free(at);
    return rc;
}

int graft_h5__rewrite(const graft_model *m, graft_sink *out, graft_fill *fill, graft_ctx *ctx)
{
    const graft_h5_file *h = m->state;
    const uint8_t *image;
    size_t *fast = NULL, *slow = NULL, nfast = 0, nslow = 0;
    uint64_t pos = 0;
    int rc = GRAFT_OK;

    if (!h || m->state_free != graft_h5__state_free)
        return graft_error(ctx, GRAFT_ERROR, "not an HDF5 model");
    image = h->image ? h->image : h->src->data + h->base;
    fast = graft_calloc(ctx, m->count + 1, sizeof *fast);
    slow = graft_calloc(ctx, m->count + 1, sizeof *slow);
    if (!fast || !slow) {
        rc = graft_error_oom(ctx, "the rewrite list");
        goto cleanup;
    }
    for (size_t i = 0; i < m->count; i++) {
        const graft_tensor *t = &m->tensors[i];
        if (t->nbytes == 0) continue;
        if (!t->load && t->src == h->src && !t->big_endian && !t->strides)
            fast[nfast++] = i;
        else
            slow[nslow++] = i;
    }
    qsort_r(fast, nfast, sizeof *fast, by_offset, (void *)m);
    /* Emit each fast tensor where its bytes sit in the copy. */
    for (size_t k = 0; k < nfast; k++) {
        const graft_tensor *t = &m->tensors[fast[k]];
        uint64_t off = t->offset - h->base;
        if (off < pos) { /* overlapping datasets: let libhdf5 sort them out */
            slow[nslow++] = fast[k];
            continue;
        }
        if ((rc = graft_sink_write(out, image + pos, (size_t)(off - pos))) < 0) goto cleanup;
        /* the object headers copied: their pages (and the folio around
         * each) would otherwise stay resident, a few per dataset */
        if (!h->image) graft_source_release(h->src, h->base + pos, off - pos);
        if ((rc = emit_exact(m, fast[k], out, fill, ctx)) < 0) goto cleanup;
        pos = off + t->nbytes;
    }
    if ((rc = graft_sink_write(out, image + pos, (size_t)(h->size - pos))) < 0 ||
        (rc = sink_flush(out)) < 0)
        goto cleanup;
    if (nslow) rc = rewrite_slow(m, out, slow, nslow, fill, ctx);
cleanup:
    free(fast);
    free(slow);
    return rc;
}
