/* model.c - the tensor table: building, validation, lookup, element access. */
#include "model.h"

#include "format.h"
#include "sha256.h"

#include <stdlib.h>
#include <string.h>

int graft_model__new(graft_model **out, const char *path, graft_ctx *ctx)
{
    graft_model *m = graft_calloc(ctx, 1, sizeof *m);
    *out = NULL;
    if (!m) return graft_error_oom(ctx, "a model");
    graft_arena_init(&m->arena, ctx);
    m->path = graft_strdup(ctx, path);
    if (!m->path) {
        free(m);
        return graft_error_oom(ctx, "a path");
    }
    *out = m;
    return GRAFT_OK;
}

void graft_model_free(graft_model *m)
{
    if (!m) return;
    if (m->state_free) m->state_free(m->state);
    for (size_t i = 0; i < m->nsources; i++) graft_source_free(m->sources[i]);
    free(m->sources);
    free(m->tensors);
    graft_strmap_free(&m->index);
    free(m->path);
    graft_arena_free(&m->arena);
    free(m);
}

int graft_model__own_source(graft_model *m, graft_source *src, graft_ctx *ctx)
{
    if (m->nsources == m->srccap) {
        size_t cap = m->srccap ? m->srccap * 2 : 4;
        graft_source **s = graft_realloc(ctx, m->sources, cap * sizeof *s);
        if (!s) {
            graft_source_free(src);
            return graft_error_oom(ctx, "the source list");
        }
        m->sources = s;
        m->srccap = cap;
    }
    m->sources[m->nsources++] = src;
    return GRAFT_OK;
}

int graft_model__add_source(graft_model *m, const char *path,
                            const graft_source **out, graft_ctx *ctx)
{
    graft_source *src;
    GRAFT_TRY(graft_source_open(&src, path, ctx));
    GRAFT_TRY(graft_model__own_source(m, src, ctx));
    *out = src;
    return GRAFT_OK;
}

graft_tensor *graft_model__add(graft_model *m, const char *name, size_t name_len,
                               graft_dtype dtype, uint32_t ndim,
                               const int64_t *shape, graft_ctx *ctx)
{
    uint64_t numel = 1, nbytes;
    graft_tensor *t;

    if (name_len > GRAFT_MAX_NAME) {
        graft_error(ctx, GRAFT_ELIMIT, "tensor name of %zu bytes exceeds the cap of %u",
                    name_len, GRAFT_MAX_NAME);
        return NULL;
    }
    if (ndim > GRAFT_MAX_NDIM) {
        graft_error(ctx, GRAFT_ELIMIT, "tensor '%.*s': rank %u exceeds the cap of %d",
                    (int)name_len, name, ndim, GRAFT_MAX_NDIM);
        return NULL;
    }
    if (m->count >= GRAFT_MAX_TENSORS) {
        graft_error(ctx, GRAFT_ELIMIT, "more than %u tensors", GRAFT_MAX_TENSORS);
        return NULL;
    }
    for (uint32_t i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            graft_error(ctx, GRAFT_ECORRUPT, "tensor '%.*s': negative dimension %lld",
                        (int)name_len, name, (long long)shape[i]);
            return NULL;
        }
        if (graft_mul_overflow(numel, (uint64_t)shape[i], &numel) || numel > INT64_MAX) {
            graft_error(ctx, GRAFT_ELIMIT, "tensor '%.*s': element count overflows",
                        (int)name_len, name);
            return NULL;
        }
    }
    if (graft_mul_overflow(numel, graft_dtype_size(dtype), &nbytes) || nbytes > INT64_MAX) {
        graft_error(ctx, GRAFT_ELIMIT, "tensor '%.*s': byte size overflows",
                    (int)name_len, name);
        return NULL;
    }
    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        graft_tensor *nt = graft_realloc(ctx, m->tensors, cap * sizeof *nt);
        if (!nt) {
            graft_error_oom(ctx, "the tensor table");
            return NULL;
        }
        m->tensors = nt;
        m->cap = cap;
    }
    t = &m->tensors[m->count];
    memset(t, 0, sizeof *t);
    t->name = graft_arena_strndup(&m->arena, name, name_len);
    t->shape = ndim ? graft_arena_alloc(&m->arena, ndim * sizeof *t->shape) : NULL;
    if (!t->name || (ndim && !t->shape)) {
        graft_error_oom(ctx, "a tensor name");
        return NULL;
    }
    if (ndim) memcpy(t->shape, shape, ndim * sizeof *shape);
    t->dtype = dtype;
    t->ndim = ndim;
    t->numel = numel;
    t->nbytes = nbytes;
    m->count++;
    return t;
}

graft_tensor *graft_model__add_unsupported(graft_model *m, const char *name, size_t name_len,
                                           const char *stored, uint32_t ndim,
                                           const int64_t *shape, uint64_t stored_bytes,
                                           graft_ctx *ctx)
{
    graft_tensor *t = graft_model__add(m, name, name_len, GRAFT_DTYPE_INVALID, ndim, shape, ctx);
    if (!t) return NULL;
    if (!(t->unsupported = graft_arena_strdup(&m->arena, stored))) {
        graft_error_oom(ctx, "a stored type");
        return NULL;
    }
    t->nbytes = stored_bytes;
    return t;
}

int graft_model__set_strides(graft_model *m, graft_tensor *t,
                             const int64_t *strides, graft_ctx *ctx)
{
    bool contiguous = true;
    int64_t expect = 1;
    if (t->numel == 0) {
        t->strides = NULL;
        return GRAFT_OK;
    }
    for (uint32_t i = t->ndim; i-- > 0;) {
        if (t->shape[i] != 1 && strides[i] != expect) contiguous = false;
        expect *= t->shape[i] ? t->shape[i] : 1;
    }
    if (contiguous) {
        t->strides = NULL;
        return GRAFT_OK;
    }
    t->strides = graft_arena_alloc(&m->arena, t->ndim * sizeof *strides);
    if (!t->strides) return graft_error_oom(ctx, "strides");
    memcpy(t->strides, strides, t->ndim * sizeof *strides);
    return GRAFT_OK;
}

int graft_tensor__extent(const graft_tensor *t, int64_t *lo, int64_t *hi,
                         graft_ctx *ctx)
{
    int64_t l = 0, h = 0, es = (int64_t)graft_dtype_size(t->dtype), step;
    *lo = *hi = 0;
    if (t->numel == 0) return GRAFT_OK;
    if (!t->strides) {
        *hi = (int64_t)t->nbytes;
        return GRAFT_OK;
    }
    for (uint32_t i = 0; i < t->ndim; i++) {
        if (__builtin_mul_overflow(t->shape[i] - 1, t->strides[i], &step))
            goto overflow;
        if (step >= 0 ? __builtin_add_overflow(h, step, &h)
                      : __builtin_add_overflow(l, step, &l))
            goto overflow;
    }
    if (__builtin_mul_overflow(l, es, lo) || __builtin_add_overflow(h, 1, &h) ||
        __builtin_mul_overflow(h, es, hi))
        goto overflow;
    return GRAFT_OK;
overflow:
    return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': strides overflow", t->name);
}

static const char *tensor_key(const void *owner, size_t i, size_t *len)
{
    const char *name = ((const graft_model *)owner)->tensors[i].name;
    *len = strlen(name);
    return name;
}

static int build_index(graft_model *m, graft_ctx *ctx)
{
    graft_strmap_free(&m->index);
    graft_strmap_init(&m->index, tensor_key, m);
    GRAFT_TRY(graft_strmap_reserve(&m->index, m->count, ctx));
    for (size_t i = 0; i < m->count; i++)
        if (graft_strmap_put(&m->index, i) != GRAFT_STRMAP_NONE)
            return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': name appears twice",
                               m->tensors[i].name);
    return GRAFT_OK;
}

static int validate_tensor(const graft_tensor *t, graft_ctx *ctx)
{
    int64_t lo, hi;
    if (t->unsupported) {
        /* Only its raw bytes are ever copied: they must lie in their file. */
        if (t->load || !t->src || t->strides) return GRAFT_OK;
        if (t->offset > t->src->size || t->nbytes > t->src->size - t->offset)
            return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': %llu stored bytes at %llu "
                               "lie outside the %zu-byte file %s", t->name,
                               (unsigned long long)t->nbytes, (unsigned long long)t->offset,
                               t->src->size, t->src->path);
        return GRAFT_OK;
    }
    if (t->dtype <= GRAFT_DTYPE_INVALID || t->dtype >= GRAFT_DTYPE_COUNT)
        return graft_error(ctx, GRAFT_EFORMAT, "tensor '%s': unknown dtype", t->name);
    if (t->load) return GRAFT_OK;
    if (t->numel == 0 && t->nbytes == 0) return GRAFT_OK;
    if (!t->src)
        return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': no data", t->name);
    if (t->dtype == GRAFT_STRING && t->strides)
        return graft_error(ctx, GRAFT_EFORMAT, "tensor '%s': strided strings", t->name);
    GRAFT_TRY(graft_tensor__extent(t, &lo, &hi, ctx));
    if (t->dtype == GRAFT_STRING) hi = (int64_t)t->nbytes;
    if ((lo < 0 && (uint64_t)-lo > t->offset) ||
        t->offset > t->src->size || (uint64_t)hi > t->src->size - t->offset)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': data [%llu, %llu) lies outside the %zu-byte file %s",
                           t->name, (unsigned long long)(t->offset + (uint64_t)lo),
                           (unsigned long long)(t->offset + (uint64_t)hi), t->src->size,
                           t->src->path);
    return GRAFT_OK;
}

int graft_model_validate(graft_model *m, graft_ctx *ctx)
{
    for (size_t i = 0; i < m->count; i++) GRAFT_TRY(validate_tensor(&m->tensors[i], ctx));
    return build_index(m, ctx);
}

int graft_model__select(graft_model *m, const char *prefix, graft_ctx *ctx)
{
    size_t plen = strlen(prefix), kept = 0;
    for (size_t i = 0; i < m->count; i++) {
        graft_tensor t = m->tensors[i];
        if (strncmp(t.name, prefix, plen) != 0) continue;
        if (t.name[plen] == '.')
            t.name += plen + 1;
        else if (t.name[plen] != '\0')
            continue;
        m->tensors[kept++] = t;
    }
    if (kept == 0)
        return graft_error(ctx, GRAFT_ENOTFOUND, "--select '%s': no tensor under that key",
                           prefix);
    m->count = kept;
    return build_index(m, ctx);
}

/* ---- public getters ---------------------------------------------------- */

const char *graft_model_format(const graft_model *m) { return m->format ? m->format->name : "?"; }
const char *graft_model_path(const graft_model *m) { return m->path; }
size_t graft_model_count(const graft_model *m) { return m->count; }
const graft_tensor *graft_model_tensor(const graft_model *m, size_t i)
{
    return i < m->count ? &m->tensors[i] : NULL;
}

const graft_tensor *graft_model_find(const graft_model *m, const char *name)
{
    size_t i = graft_strmap_get(&m->index, name);
    return i == GRAFT_STRMAP_NONE ? NULL : &m->tensors[i];
}

const char *graft_tensor_name(const graft_tensor *t) { return t->name; }
graft_dtype graft_tensor_dtype(const graft_tensor *t) { return t->dtype; }
uint32_t graft_tensor_ndim(const graft_tensor *t) { return t->ndim; }
const int64_t *graft_tensor_shape(const graft_tensor *t) { return t->shape; }
uint64_t graft_tensor_numel(const graft_tensor *t) { return t->numel; }
uint64_t graft_tensor_nbytes(const graft_tensor *t) { return t->nbytes; }
const graft_quant *graft_tensor_quant(const graft_tensor *t) { return t->quant; }
const char *graft_tensor_unsupported(const graft_tensor *t) { return t->unsupported; }

/* The error for asking an unsupported tensor's elements. */
static int unreadable(const graft_tensor *t, graft_ctx *ctx)
{
    return graft_error(ctx, GRAFT_EFORMAT, "tensor '%s': stored as %s, which graft cannot read",
                       t->name, t->unsupported);
}

/* ---- element access ---------------------------------------------------- */

/* Copy rows [r0, r0 + nrows) of a strided view into row-major order, the
 * innermost run by memcpy (a row: the last dimension). */
static void gather_rows(const graft_tensor *t, const uint8_t *base, uint64_t r0, uint64_t nrows,
                        uint8_t *dst)
{
    size_t es = graft_dtype_size(t->dtype);
    int64_t idx[GRAFT_MAX_NDIM] = {0};
    uint32_t nd = t->ndim;
    int64_t inner = nd ? t->shape[nd - 1] : 1;
    int64_t inner_stride = nd ? t->strides[nd - 1] : 1;

    for (uint32_t d = nd ? nd - 1 : 0; d-- > 0;) { /* r0 as indices of the outer dims */
        idx[d] = (int64_t)(r0 % (uint64_t)t->shape[d]);
        r0 /= (uint64_t)t->shape[d];
    }
    for (uint64_t r = 0; r < nrows; r++) {
        int64_t off = 0;
        for (uint32_t d = 0; d + 1 < nd; d++) off += idx[d] * t->strides[d];
        if (inner_stride == 1) {
            memcpy(dst, base + off * (int64_t)es, (size_t)inner * es);
            dst += (size_t)inner * es;
        } else {
            for (int64_t i = 0; i < inner; i++, dst += es)
                memcpy(dst, base + (off + i * inner_stride) * (int64_t)es, es);
        }
        for (uint32_t d = nd ? nd - 1 : 0; d-- > 0;) { /* odometer over outer dims */
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
}

static void byteswap(uint8_t *p, uint64_t nbytes, size_t unit)
{
    if (unit < 2) return;
    for (uint64_t i = 0; i + unit <= nbytes; i += unit)
        for (size_t a = 0, b = unit - 1; a < b; a++, b--) {
            uint8_t c = p[i + a];
            p[i + a] = p[i + b];
            p[i + b] = c;
        }
}

/* Bytes swapped together in a big-endian element: complex parts one by one. */
static size_t swap_unit(const graft_tensor *t)
{
    size_t unit = graft_dtype_size(t->dtype);
    return t->dtype == GRAFT_COMPLEX64 || t->dtype == GRAFT_COMPLEX128 ? unit / 2 : unit;
}

/* Rows of t (runs of its last dimension). */
static uint64_t rows_of(const graft_tensor *t)
{
    int64_t inner = t->ndim ? t->shape[t->ndim - 1] : 1;
    return inner ? t->numel / (uint64_t)inner : 0;
}

static int tensor_bytes(const graft_model *m, const graft_tensor *t, const uint8_t **out,
                        void **owned, graft_ctx *ctx);

int graft_tensor_bytes(const graft_model *m, const graft_tensor *t,
                       const uint8_t **out, void **owned, graft_ctx *ctx)
{
    *out = NULL;
    *owned = NULL;
    if (t->check && !m->verifying && !t->unsupported && t->nbytes) GRAFT_TRY(t->check(m, t, ctx));
    return tensor_bytes(m, t, out, owned, ctx);
}

static int tensor_bytes(const graft_model *m, const graft_tensor *t, const uint8_t **out,
                        void **owned, graft_ctx *ctx)
{
    static const uint8_t empty[1];
    uint8_t *buf;
    *out = NULL;
    *owned = NULL;
    if (t->unsupported) return unreadable(t, ctx);
    if (t->nbytes == 0) {
        *out = empty;
        return GRAFT_OK;
    }
    if (!t->load && !t->strides && !t->big_endian) {
        *out = t->src->data + t->offset;
        return GRAFT_OK;
    }
    if (t->nbytes > SIZE_MAX || !(buf = graft_malloc(ctx, (size_t)t->nbytes)))
        return graft_error(ctx, GRAFT_ENOMEM, "tensor '%s': out of memory for %llu bytes",
                           t->name, (unsigned long long)t->nbytes);
    if (t->load) {
        int rc = t->load(m, t, buf, ctx);
        if (rc < 0) {
            free(buf);
            return rc;
        }
    } else {
        if (t->strides)
            gather_rows(t, t->src->data + t->offset, 0, rows_of(t), buf);
        else
            memcpy(buf, t->src->data + t->offset, (size_t)t->nbytes);
        if (t->big_endian) byteswap(buf, t->nbytes, swap_unit(t));
    }
    *out = buf;
    *owned = buf;
    return GRAFT_OK;
}

/* Does a strided view (strides >= 0) reach over more than 4 pieces' bytes? */
static bool spread(const graft_tensor *t, size_t step)
{
    uint64_t es = graft_dtype_size(t->dtype), reach = es;
    if (t->ndim == 0 || t->numel == 0) return false;
    for (uint32_t d = 0; d < t->ndim; d++) {
        if (t->strides[d] < 0) return false;
        reach += (uint64_t)(t->shape[d] - 1) * (uint64_t)t->strides[d] * es;
    }
    return reach > 4 * (uint64_t)step;
}

/*
 * A strided view spread over far more bytes than a piece (a transposed or
 * permuted one): gathering rows in order would touch pages all over its
 * extent for every piece, and the kernel maps 16 pages around each fault,
 * so the whole extent would become resident.  Instead each piece is a
 * product set (fixed leading indices, a range of dimension k, the trailing
 * dimensions whole) of at most `step` bytes, walked in decreasing stride
 * order so the mapping is read front to back, and the pages behind the
 * walk are released as it goes.  All strides must be >= 0.
 */
static int spread_pieces(const graft_tensor *t, size_t step, graft_piece_fn fn, void *arg,
                         graft_ctx *ctx)
{
    const uint32_t nd = t->ndim;
    const uint64_t es = graft_dtype_size(t->dtype), rel = 1u << 20;
    uint64_t suffix[GRAFT_MAX_NDIM + 1], dstr[GRAFT_MAX_NDIM], lead = 1, len;
    int64_t pre[GRAFT_MAX_NDIM] = {0};
    uint32_t k = 0, order[GRAFT_MAX_NDIM], no = 0;
    uint8_t *buf;
    int rc = GRAFT_OK;

    suffix[nd] = es;
    for (uint32_t d = nd; d-- > 0;) suffix[d] = suffix[d + 1] * (uint64_t)t->shape[d];
    while (k + 1 < nd && suffix[k + 1] > step) k++;
    len = step / suffix[k + 1] ? step / suffix[k + 1] : 1;
    if (len > (uint64_t)t->shape[k]) len = (uint64_t)t->shape[k];
    for (uint32_t d = 0; d < k; d++) lead *= (uint64_t)t->shape[d];
    for (uint32_t d = k; d < nd; d++) { /* the piece's dimensions, largest stride first */
        uint32_t at = no++;
        while (at > 0 && t->strides[order[at - 1]] < t->strides[d]) order[at] = order[at - 1], at--;
        order[at] = d;
    }
    if (!(buf = graft_malloc(ctx, (size_t)(len * suffix[k + 1]))))
        return graft_error(ctx, GRAFT_ENOMEM, "tensor '%s': out of memory for %llu bytes", t->name,
                           (unsigned long long)(len * suffix[k + 1]));
    for (uint64_t l = 0; l < lead && rc == GRAFT_OK; l++) {
        int64_t base = 0;
        for (uint32_t d = 0; d < k; d++) base += pre[d] * t->strides[d];
        for (uint64_t a = 0; a < (uint64_t)t->shape[k] && rc == GRAFT_OK; a += len) {
            int64_t ext[GRAFT_MAX_NDIM], idx[GRAFT_MAX_NDIM] = {0}, src, dst = 0;
            uint64_t n = (uint64_t)t->shape[k] - a < len ? (uint64_t)t->shape[k] - a : len;
            uint64_t mark = t->offset + (uint64_t)(base + (int64_t)a * t->strides[k]) * es, count;
            uint64_t top = mark;
            for (uint32_t d = k; d < nd; d++) ext[d] = d == k ? (int64_t)n : t->shape[d];
            dstr[nd - 1] = 1;
            for (uint32_t d = nd - 1; d > k; d--) dstr[d - 1] = dstr[d] * (uint64_t)ext[d];
            src = base + (int64_t)a * t->strides[k];
            count = n * (suffix[k + 1] / es);
            for (uint64_t e = 0; e < count; e++) {
                uint64_t pos = t->offset + (uint64_t)src * es;
                memcpy(buf + (uint64_t)dst * es, t->src->data + pos, es);
                if (pos > top) top = pos;
                if (pos > mark + 2 * rel) { /* behind the walk: done with */
                    graft_source_release(t->src, mark, pos - rel - mark);
                    mark = pos - rel;
                }
                for (uint32_t o = no; o-- > 0;) { /* odometer, smallest stride fastest */
                    uint32_t d = order[o];
                    src += t->strides[d];
                    dst += (int64_t)dstr[d];
                    if (++idx[d] < ext[d]) break;
                    src -= ext[d] * t->strides[d];
                    dst -= ext[d] * (int64_t)dstr[d];
                    idx[d] = 0;
                }
            }
            if (t->big_endian) byteswap(buf, n * suffix[k + 1], swap_unit(t));
            rc = fn(arg, buf, (size_t)(n * suffix[k + 1]));
            graft_source_release(t->src, mark, top + es - mark);
        }
        for (uint32_t d = k; d-- > 0;) { /* next leading indices */
            if (++pre[d] < t->shape[d]) break;
            pre[d] = 0;
        }
    }
    free(buf);
    return rc;
}

/* A strided or big-endian view, rows gathered into a buffer of about
 * `step` bytes (at least one row) and handed on: never the whole tensor,
 * unless it is one row. */
static int view_pieces(const graft_tensor *t, size_t step, graft_piece_fn fn, void *arg,
                       graft_ctx *ctx)
{
    uint64_t rows = rows_of(t), row_bytes = rows ? t->nbytes / rows : 0;
    uint64_t per = row_bytes && row_bytes < step ? step / row_bytes : 1;
    const uint8_t *base = t->src->data + t->offset;
    uint8_t *buf;
    int rc = GRAFT_OK;

    if (!t->strides) { /* contiguous big-endian: any whole elements will do */
        rows = t->nbytes / swap_unit(t);
        row_bytes = swap_unit(t);
        per = step / row_bytes;
    }
    if (per > rows) per = rows;
    if (per * row_bytes > SIZE_MAX || !(buf = graft_malloc(ctx, (size_t)(per * row_bytes))))
        return graft_error(ctx, GRAFT_ENOMEM, "tensor '%s': out of memory for %llu bytes",
                           t->name, (unsigned long long)(per * row_bytes));
    for (uint64_t r = 0; r < rows && rc == GRAFT_OK; r += per) {
        uint64_t n = rows - r < per ? rows - r : per;
        size_t len = (size_t)(n * row_bytes);
        if (t->strides)
            gather_rows(t, base, r, n, buf);
        else
            memcpy(buf, base + r * row_bytes, len);
        if (t->big_endian) byteswap(buf, len, swap_unit(t));
        rc = fn(arg, buf, len);
        if (!t->strides) graft_source_release(t->src, t->offset + r * row_bytes, len);
    }
    free(buf);
    return rc;
}

int graft_releasing_piece(void *arg, const uint8_t *p, size_t n, uint64_t at)
{
    graft_releasing_pieces *rp = arg;
    if ((rp->fn_rc = rp->fn(rp->arg, p, n)) < 0) return rp->fn_rc;
    if (at > rp->released) {
        graft_source_release(rp->src, rp->released, at - rp->released);
        rp->released = at;
    }
    return GRAFT_OK;
}

int graft_tensor__pieces(const graft_model *m, const graft_tensor *t, graft_piece_fn fn,
                         void *arg, graft_ctx *ctx)
{
    const size_t step = 8u << 20;
    const uint8_t *p;
    void *owned;
    int rc = GRAFT_OK;

    if (t->unsupported) return unreadable(t, ctx);
    if (t->nbytes == 0) return GRAFT_OK;
    if (t->check && !m->verifying) GRAFT_TRY(t->check(m, t, ctx));
    /* Decoded tensors that can stream (deflated members) come piece by piece. */
    if (t->load && t->stream) return t->stream(m, t, fn, arg, ctx);
    if (!t->load && t->strides && spread(t, step)) return spread_pieces(t, step, fn, arg, ctx);
    if (!t->load && (t->strides || t->big_endian)) return view_pieces(t, step, fn, arg, ctx);
    GRAFT_TRY(tensor_bytes(m, t, &p, &owned, ctx));
    /* A mapped tensor in steps, each step's pages released after it. */
    for (uint64_t off = 0; off < t->nbytes && rc == GRAFT_OK; off += step) {
        size_t n = t->nbytes - off < step ? (size_t)(t->nbytes - off) : step;
        rc = fn(arg, p + off, n);
        if (!owned) graft_source_release(t->src, t->offset + off, n);
    }
    free(owned);
    return rc;
}

bool graft_tensor_view(const graft_model *m, const graft_tensor *t, const uint8_t **data,
                       int64_t *strides)
{
    int64_t es = (int64_t)graft_dtype_size(t->dtype), step = es;
    (void)m;
    *data = NULL;
    if (t->load || t->check || t->big_endian || !t->src || es == 0 || t->numel == 0)
        return false;
    for (uint32_t d = t->ndim; d-- > 0;) {
        if (t->strides) {
            /* A dimension of one element never steps: any stride will do. */
            if (t->shape[d] < 2) strides[d] = 0;
            else if (__builtin_mul_overflow(t->strides[d], es, &strides[d])) return false;
        } else {
            strides[d] = step;
            if (__builtin_mul_overflow(step, t->shape[d], &step)) return false;
        }
    }
    *data = t->src->data + t->offset;
    return true;
}

static int sha_piece(void *arg, const uint8_t *p, size_t n)
{
    graft_sha256_update(arg, p, n);
    return GRAFT_OK;
}

int graft_tensor_sha256(const graft_model *m, const graft_tensor *t,
                        uint8_t out[32], graft_ctx *ctx)
{
    graft_sha256_ctx c;
    graft_sha256_init(&c);
    GRAFT_TRY(graft_tensor__pieces(m, t, sha_piece, &c, ctx));
    graft_sha256_final(&c, out);
    return GRAFT_OK;
}
