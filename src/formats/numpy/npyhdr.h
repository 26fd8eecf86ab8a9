/*
 * npyhdr.h - the NumPy .npy header, shared by the npy and npz formats.
 *
 * Layout (numpy/lib/_format_impl.py):
 *  1. 6 bytes  magic "\x93NUMPY";
 *  2. 1 byte major version (1, 2 or 3), 1 byte minor (0);
 *  3. HEADER_LEN: u16 LE (v1) or u32 LE (v2, v3);
 *  4. HEADER_LEN bytes: a Python dict literal with exactly the keys 'descr',
 *     'fortran_order', 'shape', padded with spaces and ended by '\n';
 *  5. the data: numel * itemsize bytes, C or Fortran order.
 */
#ifndef GRAFT_FORMATS_NPYHDR_H
#define GRAFT_FORMATS_NPYHDR_H

#include "json.h"
#include "model.h"

#define GRAFT_NPY_HEADER_MAX (1u << 20) /* cap on HEADER_LEN */

typedef struct graft_npy_header {
    graft_dtype dtype;
    bool big_endian;       /* '>' with itemsize > 1 */
    bool fortran;          /* column-major data */
    uint32_t ndim;
    int64_t shape[GRAFT_MAX_NDIM];
    uint64_t data_offset;  /* bytes from the magic to the first element */
    uint64_t numel, nbytes;
    /* A descr graft cannot read ('|S3', '<U5', 'O', a structured list...):
     * dtype is GRAFT_DTYPE_INVALID, nbytes 0, and this names the stored
     * type ("numpy dtype '|S3'"); empty otherwise. */
    char unsupported[96];
} graft_npy_header;

/* Bytes of magic + version + length field + header text, from the first
 * 12 (or fewer, then GRAFT_ECORRUPT) bytes. */
int graft_npy__header_size(const uint8_t *p, size_t n, uint64_t origin, uint64_t *out,
                           graft_ctx *ctx);
/* Parse a whole header; p holds at least graft_npy__header_size() bytes.
 * An unsupported descr is no error: see graft_npy_header.unsupported. */
int graft_npy__parse(graft_npy_header *h, const uint8_t *p, size_t n, uint64_t origin,
                     graft_ctx *ctx);
/* Describe the data at src->data + offset on tensor t (strides, byte order). */
int graft_npy__set_view(graft_model *m, graft_tensor *t, const graft_npy_header *h,
                        graft_ctx *ctx);
/* Reorder raw .npy data (h->nbytes at src) to row-major little-endian dst. */
void graft_npy__to_rowmajor(const graft_npy_header *h, const uint8_t *src, uint8_t *dst);
/* The header numpy 1.24 writes for a C-order little-endian array of t's
 * dtype and shape (magic to '\n', a multiple of 64 bytes) into w. */
int graft_npy__write_header(graft_jsonw *w, const graft_tensor *t, graft_ctx *ctx);

#endif
