/*
 * diff.c - compare one tensor of B with what A's paired tensors become after
 * their op chain (`graft diff`).
 *
 * Numbers compare in float64, except integer against integer, which is
 * exact (int64 values differing by 1 near 2^62 round to the same double).
 * NaN equals NaN and is infinitely far from any number; infinities of the
 * same sign are equal.  Complex numbers compare part by part, strings byte
 * for byte.
 */
#include "apply.h"

#include "../core/rd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Exact integer differences: int64 - uint64 needs 65 bits. */
__extension__ typedef __int128 i128;

static bool is_int(graft_dtype d)
{
    return (d >= GRAFT_INT8 && d <= GRAFT_UINT64) || d == GRAFT_BOOL;
}

static double half_to_double(uint16_t h)
{
    int e = (h >> 10) & 0x1f;
    double m = h & 0x3ff, v;
    if (e == 0x1f) v = (h & 0x3ff) ? NAN : INFINITY;
    else if (e == 0) v = ldexp(m, -24);
    else v = ldexp(m + 1024, e - 25);
    return (h & 0x8000) ? -v : v;
}

static double float_at(const uint8_t *p, graft_dtype d, uint64_t i)
{
    union { uint32_t u; float f; } f32;
    union { uint64_t u; double f; } f64;
    switch (d) {
    case GRAFT_FLOAT16: return half_to_double(graft_le16(p + 2 * i));
    case GRAFT_BFLOAT16: f32.u = (uint32_t)graft_le16(p + 2 * i) << 16; return f32.f;
    case GRAFT_FLOAT32: f32.u = graft_le32(p + 4 * i); return f32.f;
    default: f64.u = graft_le64(p + 8 * i); return f64.f;
    }
}

static i128 int_at(const uint8_t *p, graft_dtype d, uint64_t i)
{
    switch (d) {
    case GRAFT_INT8: return (int8_t)p[i];
    case GRAFT_INT16: return (int16_t)graft_le16(p + 2 * i);
    case GRAFT_INT32: return (int32_t)graft_le32(p + 4 * i);
    case GRAFT_INT64: return (int64_t)graft_le64(p + 8 * i);
    case GRAFT_UINT16: return graft_le16(p + 2 * i);
    case GRAFT_UINT32: return graft_le32(p + 4 * i);
    case GRAFT_UINT64: return graft_le64(p + 8 * i);
    default: return p[i]; /* uint8, bool */
    }
}

static double num_at(const uint8_t *p, graft_dtype d, uint64_t i)
{
    return is_int(d) ? (double)int_at(p, d, i) : float_at(p, d, i);
}

static double distance(double a, double b)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0 : INFINITY;
    if (a == b) return 0; /* also equal infinities, whose difference is NaN */
    return fabs(a - b);
}

/* Complex numbers as pairs of their part type. */
static graft_dtype part_type(graft_dtype d, uint64_t *numel)
{
    if (d == GRAFT_COMPLEX64 || d == GRAFT_COMPLEX128) {
        *numel *= 2;
        return d == GRAFT_COMPLEX64 ? GRAFT_FLOAT32 : GRAFT_FLOAT64;
    }
    return d;
}

/* One element's |a - b| / |b| (b != 0) into the running maximum; NaN (b NaN
 * or infinite with a difference) counts as infinitely far. */
static void relative(double *rel, uint64_t *nonzero, double diff, double scale)
{
    double x = diff == 0 ? 0 : diff / scale;
    if (isnan(x)) x = INFINITY;
    if (x > *rel) *rel = x;
    (*nonzero)++;
}

static int compare(const uint8_t *a, graft_dtype da, const uint8_t *b, graft_dtype db,
                   uint64_t numel, uint64_t nbytes, graft_diff_result *r)
{
    bool ca = da == GRAFT_COMPLEX64 || da == GRAFT_COMPLEX128;
    bool cb = db == GRAFT_COMPLEX64 || db == GRAFT_COMPLEX128;
    uint64_t n = numel, nonzero = 0;
    double worst = 0, rel = 0;

    r->numel = numel;
    if (da == GRAFT_STRING || db == GRAFT_STRING || ca != cb) {
        if (da != db) return -1;
        r->numeric = false;
        r->equal = memcmp(a, b, (size_t)nbytes) == 0;
        return 0;
    }
    da = part_type(da, &n);
    db = part_type(db, &numel);
    r->numeric = true;
    if (is_int(da) && is_int(db)) {
        for (uint64_t i = 0; i < n; i++) {
            i128 bi = int_at(b, db, i), d = int_at(a, da, i) - bi;
            double v = (double)(d < 0 ? -d : d);
            if (v > worst) worst = v;
            if (bi != 0) relative(&rel, &nonzero, v, (double)(bi < 0 ? -bi : bi));
        }
    } else {
        for (uint64_t i = 0; i < n; i++) {
            double y = num_at(b, db, i), v = distance(num_at(a, da, i), y);
            if (v > worst || isnan(v)) worst = v;
            if (y != 0) relative(&rel, &nonzero, v, fabs(y));
        }
    }
    r->max_abs = worst;
    r->equal = worst == 0;
    /* Only zeros in b: no scale to be relative to. */
    r->max_rel = nonzero ? rel : r->equal ? 0 : INFINITY;
    return 0;
}

static void shape_of(const graft_tensor *t, graft_shape *s)
{
    s->dtype = t->dtype;
    s->ndim = t->ndim;
    for (uint32_t i = 0; i < t->ndim && i < GRAFT_MAX_NDIM; i++) s->dim[i] = t->shape[i];
}

static bool same_dims(const graft_shape *x, const graft_shape *y)
{
    if (x->ndim != y->ndim) return false;
    for (uint32_t i = 0; i < x->ndim; i++)
        if (x->dim[i] != y->dim[i]) return false;
    return true;
}

int graft_diff_pair(const graft_model *a, const size_t *src, size_t nsrc, const graft_op *ops,
                    size_t nops, const graft_model *b, size_t b_index, graft_diff_result *out,
                    graft_ctx *ctx)
{
    graft_tview *views = NULL;
    graft_shape *ins = NULL, got, want;
    void **owned = NULL, *b_owned = NULL;
    uint8_t *buf = NULL;
    const uint8_t *pa, *pb;
    const graft_tensor *bt;
    uint64_t nbytes;
    char s1[512], s2[512];
    int rc;

    memset(out, 0, sizeof *out);
    if (b_index >= b->count || nsrc == 0)
        return graft_error(ctx, GRAFT_ERROR, "diff: nothing to compare");
    bt = &b->tensors[b_index];
    shape_of(bt, &want);
    views = graft_calloc(ctx, nsrc, sizeof *views);
    owned = graft_calloc(ctx, nsrc, sizeof *owned);
    ins = graft_calloc(ctx, nsrc, sizeof *ins);
    if (!views || !owned || !ins) {
        rc = graft_error_oom(ctx, "source views");
        goto cleanup;
    }
    rc = graft_apply__views(a, src, nsrc, views, owned, ctx);
    if (rc < 0) goto cleanup;
    for (size_t i = 0; i < nsrc; i++) ins[i] = views[i].shape;
    if (nops) {
        rc = graft_ops_infer(ops, nops, ins, nsrc, &got, ctx);
        if (rc < 0) goto cleanup;
    } else {
        got = ins[0];
    }
    if (!same_dims(&got, &want) || (got.dtype == GRAFT_STRING) != (want.dtype == GRAFT_STRING)) {
        graft_apply__shape_text(&got, s1, sizeof s1);
        graft_apply__shape_text(&want, s2, sizeof s2);
        rc = graft_error(ctx, GRAFT_ESHAPE, "A gives %s, B holds %s", s1, s2);
        goto cleanup;
    }
    if (nops) {
        size_t es = graft_dtype_size(got.dtype);
        if (es == 0 || graft_mul_overflow(bt->numel, es, &nbytes) || nbytes > SIZE_MAX) {
            rc = graft_error(ctx, GRAFT_ELIMIT, "A's result is too large for memory");
            goto cleanup;
        }
        buf = graft_malloc(ctx, nbytes ? (size_t)nbytes : 1);
        if (!buf) {
            rc = graft_error_oom(ctx, "the result of the op chain");
            goto cleanup;
        }
        graft_op *bound = NULL;
        rc = graft_ops_bind_quant(ops, nops, a->tensors[src[0]].quant, bt->quant, &bound, ctx);
        if (rc == GRAFT_OK) rc = graft_ops_run_mem(bound ? bound : ops, nops, views, nsrc, buf, ctx);
        free(bound);
        if (rc < 0) goto cleanup;
        pa = buf;
    } else {
        pa = views[0].data;
        nbytes = a->tensors[src[0]].nbytes;
    }
    rc = graft_tensor_bytes(b, bt, &pb, &b_owned, ctx);
    if (rc < 0) goto cleanup;
    if (got.dtype == GRAFT_STRING && nbytes != bt->nbytes) {
        out->numel = bt->numel;
        out->equal = false;
        goto cleanup;
    }
    if (compare(pa, got.dtype, pb, want.dtype, bt->numel, bt->nbytes, out) < 0) {
        graft_apply__shape_text(&got, s1, sizeof s1);
        graft_apply__shape_text(&want, s2, sizeof s2);
        rc = graft_error(ctx, GRAFT_ESHAPE, "A gives %s, B holds %s: not comparable", s1, s2);
    }
    /* Compared: let the mapped pages go, so diffing big models stays small. */
    if (rc == GRAFT_OK && !b_owned) graft_source_release(bt->src, bt->offset, bt->nbytes);
    for (size_t i = 0; rc == GRAFT_OK && i < nsrc; i++) {
        const graft_tensor *at = &a->tensors[src[i]];
        if (!owned[i]) graft_source_release(at->src, at->offset, at->nbytes);
    }
cleanup:
    free(b_owned);
    free(buf);
    if (owned) graft_apply__unviews(owned, nsrc);
    free(owned);
    free(ins);
    free(views);
    return rc;
}
