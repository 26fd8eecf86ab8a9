/*
 * onnx_sparse.c - SparseTensorProto (a graph's sparse_initializer, a
 * Constant's sparse_value) read as the dense tensor it stands for.
 *
 * onnx.proto: values (1) is a TensorProto of shape [NNZ], indices (2) an
 * INT64 TensorProto of shape [NNZ] (linearized indices) or [NNZ, rank]
 * (index tuples), dims (3) the dense shape; the indices "must appear in
 * ascending order without duplication" (lexicographic for tuples, which is
 * ascending linearized order too).  Every other element is zero.
 */
#include "onnx_wire.h"

#include <stdlib.h>
#include <string.h>

int graft_onnx__parse_sparse(graft_rd *msg, graft_onnx_sparse *sp)
{
    graft_pbf f;

    memset(sp, 0, sizeof *sp);
    while (graft_rd_left(msg)) {
        GRAFT_TRY(graft_pb_next(msg, &f));
        if (f.num == 1 || f.num == 2) {
            graft_rd b = f.sub;
            if (f.wt != GRAFT_PB_LEN)
                return graft_rd_fail(msg, "SparseTensorProto field %u: wire type %u", f.num, f.wt);
            if (f.num == 1) {
                GRAFT_TRY(graft_onnx__parse_tensor(&b, NULL, &sp->values));
                sp->has_values = true;
                sp->values_off = f.sub.origin;
                sp->values_len = f.sub.len;
            } else {
                GRAFT_TRY(graft_onnx__parse_tensor(&b, NULL, &sp->indices));
                sp->has_indices = true;
                sp->indices_off = f.sub.origin;
                sp->indices_len = f.sub.len;
            }
        } else if (f.num == 3) {
            graft_rd b = f.sub;
            uint64_t v = f.v;
            if (f.wt != GRAFT_PB_VARINT && f.wt != GRAFT_PB_LEN)
                return graft_rd_fail(msg, "SparseTensorProto dims: wire type %u", f.wt);
            while (f.wt == GRAFT_PB_VARINT || graft_rd_left(&b)) {
                if (f.wt == GRAFT_PB_LEN) GRAFT_TRY(graft_rd_varint(&b, &v));
                if (sp->ndim == GRAFT_MAX_NDIM)
                    return graft_rd_fail(msg, "SparseTensorProto: more than %d dims",
                                         GRAFT_MAX_NDIM);
                sp->dims[sp->ndim++] = (int64_t)v;
                if (f.wt == GRAFT_PB_VARINT) break;
            }
        }
    }
    return GRAFT_OK;
}

/* The elements of one TensorProto (raw_data or its typed field) as
 * little-endian units, in a new buffer of units * unit bytes. */
static int elements(const uint8_t *base, const graft_onnx_tensor *t, uint64_t off, uint64_t len,
                    graft_dtype dt, size_t unit, uint64_t units, uint8_t **out, graft_ctx *ctx)
{
    graft_dtype tdt;
    int field = graft_onnx__typed_field(t->data_type, &tdt);
    uint8_t *buf;
    graft_rd r;

    *out = NULL;
    if (t->has_raw && t->raw.n != units * unit)
        return graft_error(ctx, GRAFT_ECORRUPT, "raw_data holds %zu bytes where %llu are needed",
                           t->raw.n, (unsigned long long)(units * unit));
    if (!t->has_raw && t->count[field] != units)
        return graft_error(ctx, GRAFT_ECORRUPT, "%llu values where %llu are needed",
                           (unsigned long long)t->count[field], (unsigned long long)units);
    if (!(buf = graft_malloc(ctx, (size_t)(units * unit) + 1)))
        return graft_error_oom(ctx, "sparse tensor elements");
    if (t->has_raw) {
        memcpy(buf, t->raw.p, t->raw.n);
    } else {
        graft_rd_init(&r, base + off, (size_t)len, off, ctx);
        if (graft_onnx__decode(&r, field, dt, unit, units, buf) < 0) {
            free(buf);
            return ctx->status;
        }
    }
    *out = buf;
    return GRAFT_OK;
}

/* Checked indices (linearized, ascending) and, with want_values, the
 * values of sparse tensor `name`; both arrays are the caller's to free. */
static int sparse_decode(const uint8_t *base, const graft_onnx_sparse *sp, const char *name,
                         graft_dtype dt, bool want_values, uint8_t **vals_out,
                         uint64_t **lin_out, uint64_t *nnz_out, graft_ctx *ctx)
{
    bool cplx = dt == GRAFT_COMPLEX64 || dt == GRAFT_COMPLEX128;
    size_t esize = graft_dtype_size(dt), unit = esize / (cplx ? 2 : 1);
    const graft_onnx_tensor *v = &sp->values, *ix = &sp->indices;
    uint8_t *vals = NULL, *idx = NULL;
    uint64_t nnz, numel = 1, rank, prev = 0, *lin;
    int rc = GRAFT_OK;

    *vals_out = NULL;
    *lin_out = NULL;
    if (v->ndim != 1)
        return graft_error(ctx, GRAFT_ECORRUPT, "sparse tensor '%s': values have %u dims, not 1 "
                           "([NNZ])", name, v->ndim);
    nnz = *nnz_out = (uint64_t)v->dims[0];
    for (uint32_t d = 0; d < sp->ndim; d++) numel *= (uint64_t)sp->dims[d]; /* checked by the caller */
    if (nnz > numel)
        return graft_error(ctx, GRAFT_ECORRUPT, "sparse tensor '%s': %llu values for %llu "
                           "elements", name, (unsigned long long)nnz, (unsigned long long)numel);
    if (!sp->has_indices) {
        if (nnz) return graft_error(ctx, GRAFT_ECORRUPT, "sparse tensor '%s': %llu values and no "
                                    "indices", name, (unsigned long long)nnz);
        return GRAFT_OK;
    }
    if (ix->data_type != 7 || ix->external || ix->segment)
        return graft_error(ctx, GRAFT_ECORRUPT, "sparse tensor '%s': indices must be an INT64 "
                           "tensor in the model file (data_type %lld)", name,
                           (long long)ix->data_type);
    rank = ix->ndim == 2 ? (uint64_t)ix->dims[1] : 1;
    if (ix->ndim < 1 || ix->ndim > 2 || (uint64_t)ix->dims[0] != nnz ||
        (ix->ndim == 2 && rank != sp->ndim))
        return graft_error(ctx, GRAFT_ECORRUPT, "sparse tensor '%s': indices of shape [%lld%s%lld] "
                           "for %llu values of rank %u; the spec allows [NNZ] or [NNZ, rank]",
                           name, ix->ndim ? (long long)ix->dims[0] : 0LL,
                           ix->ndim == 2 ? ", " : "", ix->ndim == 2 ? (long long)ix->dims[1] : 0LL,
                           (unsigned long long)nnz, sp->ndim);
    if (ix->ndim == 2 && rank == 0 && nnz)
        return graft_error(ctx, GRAFT_ECORRUPT, "sparse tensor '%s': rank 0 index tuples", name);
    /* Every index takes a byte at least: this bounds NNZ by the file. */
    if (nnz > sp->indices_len / (rank ? rank : 1) || nnz > sp->values_len)
        return graft_error(ctx, GRAFT_ECORRUPT, "sparse tensor '%s': %llu values claimed, more "
                           "than its indices or values hold", name, (unsigned long long)nnz);
    rc = elements(base, ix, sp->indices_off, sp->indices_len, GRAFT_INT64, 8, nnz * rank, &idx, ctx);
    if (rc < 0) {
        graft_error_prefix(ctx, "sparse tensor '%s': indices", name);
        goto cleanup;
    }
    if (want_values &&
        (rc = elements(base, v, sp->values_off, sp->values_len, dt, unit, nnz * (cplx ? 2 : 1),
                       &vals, ctx)) < 0) {
        graft_error_prefix(ctx, "sparse tensor '%s': values", name);
        goto cleanup;
    }
    lin = (uint64_t *)(void *)idx; /* linearized in place: entry i is read before it is written */
    for (uint64_t i = 0; i < nnz; i++) {
        uint64_t l = 0;
        for (uint64_t j = 0; j < rank; j++) {
            int64_t k = (int64_t)graft_le64(idx + 8 * (i * rank + j));
            uint64_t dim = ix->ndim == 2 ? (uint64_t)sp->dims[j] : numel;
            if (k < 0 || (uint64_t)k >= dim) {
                rc = graft_error(ctx, GRAFT_ECORRUPT, "sparse tensor '%s': index %lld of value "
                                 "%llu is out of range [0, %llu)", name, (long long)k,
                                 (unsigned long long)i, (unsigned long long)dim);
                goto cleanup;
            }
            l = l * dim + (uint64_t)k;
        }
        if (i && l <= prev) {
            rc = graft_error(ctx, GRAFT_ECORRUPT, "sparse tensor '%s': value %llu's index "
                             "%s the one before it; the spec wants them ascending without "
                             "duplicates", name, (unsigned long long)i,
                             l == prev ? "repeats" : "comes before");
            goto cleanup;
        }
        prev = lin[i] = l;
    }
    *vals_out = vals;
    *lin_out = lin;
    vals = idx = NULL;
cleanup:
    free(vals);
    free(idx);
    return rc;
}

int graft_onnx__densify(const uint8_t *base, const graft_onnx_sparse *sp, const char *name,
                        graft_dtype dt, uint8_t *dst, graft_ctx *ctx)
{
    size_t esize = graft_dtype_size(dt);
    uint64_t numel = 1, nnz, *lin = NULL;
    uint8_t *vals = NULL;
    int rc;

    for (uint32_t d = 0; d < sp->ndim; d++) numel *= (uint64_t)sp->dims[d];
    rc = sparse_decode(base, sp, name, dt, dst != NULL, &vals, &lin, &nnz, ctx);
    if (rc == GRAFT_OK && dst) {
        memset(dst, 0, (size_t)(numel * esize));
        for (uint64_t i = 0; lin && i < nnz; i++)
            memcpy(dst + lin[i] * esize, vals + i * esize, esize);
    }
    free(vals);
    free(lin);
    return rc;
}

int graft_onnx__sparse_pieces(const uint8_t *base, const graft_onnx_sparse *sp, const char *name,
                              graft_dtype dt, graft_piece_fn fn, void *arg, graft_ctx *ctx)
{
    static const uint8_t zeros[1 << 16];
    size_t esize = graft_dtype_size(dt);
    uint64_t numel = 1, nnz, *lin = NULL, pos = 0; /* bytes of the dense tensor handed out */
    uint8_t *vals = NULL;
    int rc;

    for (uint32_t d = 0; d < sp->ndim; d++) numel *= (uint64_t)sp->dims[d];
    rc = sparse_decode(base, sp, name, dt, true, &vals, &lin, &nnz, ctx);
    for (uint64_t i = 0; rc == GRAFT_OK && i <= nnz; i++) {
        uint64_t upto = i < nnz ? lin[i] * esize : numel * esize;
        while (rc == GRAFT_OK && pos < upto) {
            size_t k = upto - pos < sizeof zeros ? (size_t)(upto - pos) : sizeof zeros;
            rc = fn(arg, zeros, k);
            pos += k;
        }
        if (rc == GRAFT_OK && i < nnz) {
            rc = fn(arg, vals + i * esize, esize);
            pos += esize;
        }
    }
    free(vals);
    free(lin);
    return rc;
}
