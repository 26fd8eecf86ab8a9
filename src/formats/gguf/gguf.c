/*
 * gguf.c - GGUF v3 files (llama.cpp / ggml): reader and skeleton writer.
 *
 * Layout (ggml docs/gguf.md and src/gguf.cpp; little-endian):
 *  1. magic "GGUF", u32 version (2 or 3; 1 is refused as ggml does);
 *  2. i64 tensor count, i64 key-value count;
 *  3. the key-value pairs (gguf_kv.c);
 *  4. per tensor: name (u64 length + bytes, shorter than 64), u32 n_dims
 *     (<= 4), n_dims i64 ne[] innermost first, u32 ggml type, u64 offset
 *     relative to the data section;
 *  5. zero padding to ALIGNMENT (general.alignment, default 32), then the
 *     data section: each tensor's bytes at its offset, each padded to
 *     ALIGNMENT.  As ggml requires, tensor i starts where tensor i-1's
 *     padded bytes end (the first at 0).
 * Element counts are checked against INT64_MAX and byte sizes against
 * SIZE_MAX as in gguf.cpp; a row (ne[0]) must hold whole blocks.
 *
 * The writer keeps the skeleton's version and key-value bytes verbatim and
 * rewrites the tensor infos and data in the same layout, so only tensor
 * data changes; a model that `graft convert` prepared gets new metadata.
 */
#include "gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const graft_ggml_type types[] = {
    {GGML_F32, "f32", GRAFT_FLOAT32, 1, 4},   {GGML_F16, "f16", GRAFT_FLOAT16, 1, 2},
    {GGML_Q4_0, "q4_0", GRAFT_UINT8, 32, 18}, {GGML_Q8_0, "q8_0", GRAFT_UINT8, 32, 34},
    {GGML_I8, "i8", GRAFT_INT8, 1, 1},        {GGML_I16, "i16", GRAFT_INT16, 1, 2},
    {GGML_I32, "i32", GRAFT_INT32, 1, 4},     {GGML_I64, "i64", GRAFT_INT64, 1, 8},
    {GGML_F64, "f64", GRAFT_FLOAT64, 1, 8},   {GGML_BF16, "bf16", GRAFT_BFLOAT16, 1, 2},
};
#define NTYPES (sizeof types / sizeof *types)
#define GGML_TYPE_COUNT 40u /* ids at or above are invalid in any ggml */

const graft_ggml_type *graft_gguf__type(uint32_t id)
{
    for (size_t i = 0; i < NTYPES; i++)
        if (types[i].id == id) return &types[i];
    return NULL;
}

const graft_ggml_type *graft_gguf__type_of_dtype(graft_dtype dt)
{
    for (size_t i = 0; i < NTYPES; i++)
        if (types[i].block_elems == 1 && types[i].dtype == dt) return &types[i];
    return NULL;
}

const graft_ggml_type *graft_gguf__type_by_name(const char *name)
{
    for (size_t i = 0; i < NTYPES; i++)
        if (types[i].block_elems > 1 && strcmp(types[i].name, name) == 0) return &types[i];
    return NULL;
}

const char *graft_gguf__encoding(const graft_model *m, const graft_tensor *t)
{
    static char buf[NTYPES][80];
    const graft_ggml_type *ty;
    if (m->format != &graft_format_gguf || !(ty = graft_gguf__type((uint32_t)t->aux)) ||
        ty->block_elems == 1)
        return NULL;
    size_t i = (size_t)(ty - types);
    snprintf(buf[i], sizeof buf[i], "ggml %s: blocks of %u elements, %u bytes each", ty->name,
             ty->block_elems, ty->block_bytes);
    return buf[i];
}

typedef struct gguf_state {
    uint32_t version;
    graft_gguf_kv kv;
} gguf_state;

static void state_free(void *p)
{
    gguf_state *st = p;
    if (!st) return;
    graft_gguf__kv_free(&st->kv);
    free(st);
}

static bool gguf_probe(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    (void)path;
    return !is_dir && n >= 4 && memcmp(head, "GGUF", 4) == 0;
}

static uint64_t pad(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* One tensor info; adds the tensor (offset relative to the data section). */
static int read_info(graft_model *m, graft_rd *r, uint64_t *expect, uint32_t alignment,
                     graft_ctx *ctx)
{
    const uint8_t *name;
    uint64_t len, off, numel = 1, nbytes;
    uint32_t ndims, type;
    int64_t ne[GGML_MAX_DIMS], shape[GGML_MAX_DIMS + 1];
    const graft_ggml_type *ty;
    graft_tensor *t;
    char tn[GGML_MAX_NAME + 2];

    GRAFT_TRY(graft_rd_u64le(r, &len));
    if (len >= GGML_MAX_NAME)
        return graft_rd_fail(r, "tensor name of %llu bytes: ggml allows fewer than %d",
                             (unsigned long long)len, GGML_MAX_NAME);
    GRAFT_TRY(graft_rd_take(r, (size_t)len, &name));
    snprintf(tn, sizeof tn, "%.*s", (int)len, (const char *)name);
    GRAFT_TRY(graft_rd_u32le(r, &ndims));
    if (ndims > GGML_MAX_DIMS)
        return graft_rd_fail(r, "tensor '%s': %u dimensions, ggml allows at most %d", tn, ndims,
                             GGML_MAX_DIMS);
    for (uint32_t i = 0; i < ndims; i++) {
        uint64_t d;
        GRAFT_TRY(graft_rd_u64le(r, &d));
        if (d > INT64_MAX)
            return graft_rd_fail(r, "tensor '%s': dimension %u is negative", tn, i);
        ne[i] = (int64_t)d;
        if (graft_mul_overflow(numel, d, &numel) || numel > INT64_MAX)
            return graft_rd_fail(r, "tensor '%s': the element count overflows int64", tn);
    }
    GRAFT_TRY(graft_rd_u32le(r, &type));
    GRAFT_TRY(graft_rd_u64le(r, &off));
    if (type >= GGML_TYPE_COUNT)
        return graft_rd_fail(r, "tensor '%s': invalid ggml type %u", tn, type);
    if (!(ty = graft_gguf__type(type)))
        return graft_error(ctx, GRAFT_EFORMAT, "tensor '%s': ggml type %u is not supported "
                           "(only f32 f16 bf16 f64 i8-i64 q8_0 q4_0)", tn, type);
    if (ty->block_elems > 1 && (ndims == 0 || ne[0] % ty->block_elems))
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': %s row of %lld elements is not a multiple of the "
                           "block size %u",
                           tn, ty->name, ndims ? (long long)ne[0] : 1LL, ty->block_elems);
    if (graft_mul_overflow(numel / ty->block_elems, ty->block_bytes, &nbytes) ||
        nbytes > SIZE_MAX)
        return graft_error(ctx, GRAFT_ELIMIT, "tensor '%s': byte size overflows", tn);
    if (off != *expect)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': data offset %llu, expected %llu (ggml requires "
                           "tensors in order, each padded to %u)",
                           tn, (unsigned long long)off, (unsigned long long)*expect, alignment);
    *expect = off + pad(nbytes, alignment);
    if (*expect < off) return graft_error(ctx, GRAFT_ELIMIT, "tensor '%s': offset overflows", tn);
    for (uint32_t i = 0; i < ndims; i++) shape[i] = ne[ndims - 1 - i];
    if (ty->block_elems > 1) {
        shape[ndims - 1] = ne[0] / ty->block_elems;
        shape[ndims] = ty->block_bytes;
    }
    t = graft_model__add(m, (const char *)name, (size_t)len, ty->dtype,
                         ndims + (ty->block_elems > 1), shape, ctx);
    if (!t) return ctx->status;
    t->src = m->sources[0];
    t->offset = off;
    t->aux = type;
    return GRAFT_OK;
}

static int gguf_open(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    const graft_source *src;
    gguf_state *st;
    graft_rd r;
    uint32_t version;
    uint64_t nt, nkv, expect = 0, data;
    size_t first;

    (void)opts;
    if (m->nsources == 0) return graft_error(ctx, GRAFT_EFORMAT, "a folder is not a GGUF file");
    src = m->sources[0];
    graft_rd_init(&r, src->data, src->size, 0, ctx);
    GRAFT_TRY(graft_rd_skip(&r, 4));
    GRAFT_TRY(graft_rd_u32le(&r, &version));
    if ((version & 0xffff) == 0)
        return graft_error(ctx, GRAFT_EFORMAT, "offset 0x4: version 0x%x: a big-endian GGUF is "
                           "not supported", version);
    if (version < 2 || version > GGUF_VERSION)
        return graft_error(ctx, GRAFT_EFORMAT, "offset 0x4: GGUF version %u (graft reads 2 and 3)",
                           version);
    GRAFT_TRY(graft_rd_u64le(&r, &nt));
    GRAFT_TRY(graft_rd_u64le(&r, &nkv));
    /* a tensor info takes at least 8 + 4 + 4 + 8 bytes */
    if (nt > INT64_MAX || nt > graft_rd_left(&r) / 24)
        return graft_error(ctx, GRAFT_ECORRUPT, "offset 0x8: %llu tensors cannot fit in the "
                           "%zu-byte file", (unsigned long long)nt, src->size);
    if (nt > GRAFT_MAX_TENSORS)
        return graft_error(ctx, GRAFT_ELIMIT, "offset 0x8: %llu tensors exceed the cap of %u",
                           (unsigned long long)nt, GRAFT_MAX_TENSORS);
    if (nkv > INT64_MAX)
        return graft_error(ctx, GRAFT_ECORRUPT, "offset 0x10: key-value count %lld is negative",
                           (long long)nkv);
    st = graft_calloc(ctx, 1, sizeof *st);
    if (!st) return graft_error_oom(ctx, "the GGUF state");
    st->version = version;
    m->state = st;
    m->state_free = state_free;
    GRAFT_TRY(graft_gguf__kv_parse(&r, nkv, &st->kv, ctx));
    first = m->count;
    for (uint64_t i = 0; i < nt; i++)
        GRAFT_TRY(read_info(m, &r, &expect, st->kv.alignment, ctx));
    data = pad(graft_rd_offset(&r), st->kv.alignment);
    if (nt && data > src->size)
        return graft_error(ctx, GRAFT_ECORRUPT, "the data section at %llu starts past the end "
                           "of the %zu-byte file", (unsigned long long)data, src->size);
    for (size_t i = first; i < m->count; i++) {
        graft_tensor *t = &m->tensors[i];
        if (t->offset + t->nbytes > src->size - data)
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "tensor '%s': data [%llu, %llu) runs past the end of the "
                               "%llu-byte data section",
                               t->name, (unsigned long long)t->offset,
                               (unsigned long long)(t->offset + t->nbytes),
                               (unsigned long long)(src->size - data));
        t->offset += data;
    }
    return GRAFT_OK;
}

static void gguf_extras(const graft_model *m, const char *select, graft_extras *out)
{
    const gguf_state *st = m->state;
    (void)select;
    if (!st || !st->kv.n) return;
    out->count = st->kv.n;
    snprintf(out->summary, sizeof out->summary, "%llu metadata key%s",
             (unsigned long long)st->kv.n, st->kv.n > 1 ? "s" : "");
}

/* ---- writer ------------------------------------------------------------- */

static int put_u32(graft_sink *s, uint32_t v)
{
    uint8_t b[4];
    graft_put_le32(b, v);
    return graft_sink_write(s, b, 4);
}

static int put_u64(graft_sink *s, uint64_t v)
{
    uint8_t b[8];
    graft_put_le64(b, v);
    return graft_sink_write(s, b, 8);
}

/* t's ggml dims (innermost first) from its row-major shape and type. */
static int ggml_dims(const graft_tensor *t, const graft_ggml_type *ty, uint32_t *n,
                     int64_t ne[GGML_MAX_DIMS], graft_ctx *ctx)
{
    uint32_t q = ty->block_elems > 1;
    if (q && (t->ndim < 2 || t->dtype != GRAFT_UINT8 || t->shape[t->ndim - 1] != ty->block_bytes))
        return graft_error(ctx, GRAFT_ESHAPE, "tensor '%s': %s needs uint8 [..., blocks, %u]",
                           t->name, ty->name, ty->block_bytes);
    if (!q && t->dtype != ty->dtype)
        return graft_error(ctx, GRAFT_ESHAPE, "tensor '%s': %s is not ggml %s", t->name,
                           graft_dtype_name(t->dtype), ty->name);
    *n = t->ndim - q;
    if (*n > GGML_MAX_DIMS)
        return graft_error(ctx, GRAFT_ESHAPE, "tensor '%s': rank %u, GGUF allows at most %d",
                           t->name, *n, GGML_MAX_DIMS);
    for (uint32_t i = 0; i < *n; i++) ne[i] = t->shape[*n - 1 - i];
    if (q) ne[0] *= ty->block_elems;
    return GRAFT_OK;
}

static int write_infos(const graft_model *m, graft_sink *s, uint32_t alignment, graft_ctx *ctx)
{
    uint64_t off = 0;
    for (size_t i = 0; i < m->count; i++) {
        const graft_tensor *t = &m->tensors[i];
        const graft_ggml_type *ty = graft_gguf__type((uint32_t)t->aux);
        int64_t ne[GGML_MAX_DIMS];
        uint32_t n = 0;
        size_t len = strlen(t->name);
        if (!ty) return graft_error(ctx, GRAFT_ERROR, "tensor '%s': no ggml type", t->name);
        if (len >= GGML_MAX_NAME)
            return graft_error(ctx, GRAFT_ESHAPE, "tensor '%s': name of %zu bytes, ggml allows "
                               "fewer than %d", t->name, len, GGML_MAX_NAME);
        GRAFT_TRY(ggml_dims(t, ty, &n, ne, ctx));
        GRAFT_TRY(put_u64(s, len));
        GRAFT_TRY(graft_sink_write(s, t->name, len));
        GRAFT_TRY(put_u32(s, n));
        for (uint32_t d = 0; d < n; d++) GRAFT_TRY(put_u64(s, (uint64_t)ne[d]));
        GRAFT_TRY(put_u32(s, ty->id));
        GRAFT_TRY(put_u64(s, off));
        off += pad(t->nbytes, alignment);
    }
    return GRAFT_OK;
}

static int gguf_write(const graft_model *m, const char *out_path, graft_fill *fill,
                      graft_ctx *ctx)
{
    const gguf_state *st = m->state;
    graft_sink *s = NULL;
    uint32_t a;
    int rc;

    if (!st) return graft_error(ctx, GRAFT_ERROR, "no GGUF metadata to write");
    a = st->kv.alignment;
    if ((rc = graft_sink_open(&s, out_path, ctx)) < 0) return rc;
    if ((rc = graft_sink_write(s, "GGUF", 4)) < 0 || (rc = put_u32(s, st->version)) < 0 ||
        (rc = put_u64(s, m->count)) < 0 || (rc = put_u64(s, st->kv.n)) < 0 ||
        (rc = graft_sink_write(s, st->kv.bytes, st->kv.len)) < 0 ||
        (rc = write_infos(m, s, a, ctx)) < 0)
        goto cleanup;
    if (m->count && (rc = graft_sink_fill(s, 0, pad(graft_sink_tell(s), a) - graft_sink_tell(s))) < 0)
        goto cleanup;
    for (size_t i = 0; i < m->count; i++) {
        if ((rc = graft_fill_emit(fill, m, i, s, ctx)) < 0) goto cleanup;
        if ((rc = graft_sink_fill(s, 0, pad(m->tensors[i].nbytes, a) - m->tensors[i].nbytes)) < 0)
            goto cleanup;
    }
    rc = graft_sink_commit(s);
    s = NULL;
cleanup:
    graft_sink_abort(s);
    return rc;
}

int graft_gguf__prepare(graft_model *m, const char *const *meta, size_t nmeta,
                        const graft_ggml_type *const *types, graft_ctx *ctx)
{
    gguf_state *st;
    bool arch = false;
    for (size_t i = 0; i < nmeta; i++)
        arch |= strncmp(meta[i], "general.architecture", 20) == 0 &&
                (meta[i][20] == '=' || meta[i][20] == ':');
    if (!arch)
        return graft_error(ctx, GRAFT_ERROR, "a GGUF needs general.architecture: give "
                           "--meta general.architecture=NAME (llama, gpt2, ...)");
    for (size_t i = 0; i < m->count; i++) {
        graft_tensor *t = &m->tensors[i];
        const graft_ggml_type *ty = types && types[i] ? types[i] : graft_gguf__type_of_dtype(t->dtype);
        if (!ty)
            return graft_error(ctx, GRAFT_EFORMAT, "tensor '%s': GGUF has no %s type (cast it)",
                               t->name, graft_dtype_name(t->dtype));
        t->aux = ty->id;
    }
    st = graft_calloc(ctx, 1, sizeof *st);
    if (!st) return graft_error_oom(ctx, "the GGUF state");
    st->version = GGUF_VERSION;
    m->state = st;
    m->state_free = state_free;
    m->format = &graft_format_gguf;
    return graft_gguf__kv_build(meta, nmeta, &st->kv, ctx);
}

const graft_format graft_format_gguf = {
    .name = "gguf",
    .probe = gguf_probe,
    .open = gguf_open,
    .write = gguf_write,
    .tensor_encoding = graft_gguf__encoding,
    .extras = gguf_extras,
};
