/*
 * gguf_kv.c - the key-value metadata section of a GGUF file: checked walk
 * of a stored section, and encoding of new pairs for `graft convert`.
 *
 * Layout of one pair (ggml docs/gguf.md, GGUF v3, little-endian):
 *  1. key: u64 length, then that many UTF-8 bytes (no NUL);
 *  2. u32 value type (gguf_type: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32,
 *     6 f32, 7 bool (1 byte), 8 string, 9 array, 10 u64, 11 i64, 12 f64);
 *  3. the value: fixed-size scalars as is; a string as in 1; an array as
 *     u32 element type (not array), u64 count, then the elements.
 * Limits follow ggml's gguf.cpp: strings and arrays at most 64 Mi bytes /
 * elements and never longer than what is left, keys unique,
 * general.alignment a u32 power of two no larger than 1 MiB.
 */
#include "gguf.h"

#include <errno.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t type_size[GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
static const char *const type_name[GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"};

typedef struct key_ref {
    const uint8_t *p;
    size_t len;
} key_ref;

static int cmp_key(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* A u64-length-prefixed string, borrowed. */
static int read_string(graft_rd *r, const char *what, const uint8_t **p, size_t *len)
{
    uint64_t n;
    GRAFT_TRY(graft_rd_u64le(r, &n));
    if (n > GGUF_MAX_STRING_LENGTH)
        return graft_rd_fail(r, "%s: string length %llu exceeds the cap of %u", what,
                             (unsigned long long)n, GGUF_MAX_STRING_LENGTH);
    if (n > graft_rd_left(r))
        return graft_rd_fail(r, "%s: string length %llu runs past the end (%zu bytes left)", what,
                             (unsigned long long)n, graft_rd_left(r));
    *len = (size_t)n;
    return graft_rd_take(r, (size_t)n, p);
}

static int read_value(graft_rd *r, uint32_t type, const char *key)
{
    const uint8_t *p;
    size_t len;
    if (type == GGUF_STRING) return read_string(r, key, &p, &len);
    return graft_rd_skip(r, type_size[type]);
}

static int read_pair(graft_rd *r, key_ref *k, uint32_t *alignment, graft_ctx *ctx)
{
    char key[96];
    uint32_t type, etype = 0;
    uint64_t count = 1;
    size_t at;

    GRAFT_TRY(read_string(r, "key", &k->p, &k->len));
    snprintf(key, sizeof key, "key '%.*s'", (int)(k->len < 64 ? k->len : 64), (const char *)k->p);
    at = r->pos;
    GRAFT_TRY(graft_rd_u32le(r, &type));
    if (type >= GGUF_TYPE_COUNT)
        return graft_rd_fail(r, "%s: invalid value type %u", key, type);
    if (type == GGUF_ARRAY) {
        if (k->len == 17 && memcmp(k->p, "general.alignment", 17) == 0)
            return graft_rd_fail(r, "general.alignment is an array, not u32");
        GRAFT_TRY(graft_rd_u32le(r, &etype));
        if (etype >= GGUF_TYPE_COUNT || etype == GGUF_ARRAY)
            return graft_rd_fail(r, "%s: invalid array element type %u", key, etype);
        GRAFT_TRY(graft_rd_u64le(r, &count));
        if (count > GGUF_MAX_ARRAY_ELEMENTS)
            return graft_rd_fail(r, "%s: array of %llu elements exceeds the cap of %u", key,
                                 (unsigned long long)count, GGUF_MAX_ARRAY_ELEMENTS);
        /* each element needs at least its size (a string its 8-byte length) */
        if (count * (etype == GGUF_STRING ? 8 : type_size[etype]) > graft_rd_left(r))
            return graft_rd_fail(r, "%s: array of %llu %s runs past the end (%zu bytes left)",
                                 key, (unsigned long long)count, type_name[etype],
                                 graft_rd_left(r));
        for (uint64_t i = 0; i < count; i++) GRAFT_TRY(read_value(r, etype, key));
        return GRAFT_OK;
    }
    if (k->len == 17 && memcmp(k->p, "general.alignment", 17) == 0) {
        uint32_t a;
        if (type != GGUF_U32)
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "offset 0x%llx: general.alignment is %s, not u32",
                               (unsigned long long)(r->origin + at), type_name[type]);
        GRAFT_TRY(graft_rd_u32le(r, &a));
        if (a == 0 || (a & (a - 1)) || a > GGUF_MAX_ALIGNMENT)
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "offset 0x%llx: general.alignment %u is not a power of two "
                               "up to %u",
                               (unsigned long long)(r->origin + at), a, GGUF_MAX_ALIGNMENT);
        *alignment = a;
        return GRAFT_OK;
    }
    return read_value(r, type, key);
}

int graft_gguf__kv_parse(graft_rd *r, uint64_t n, graft_gguf_kv *out, graft_ctx *ctx)
{
    size_t start = r->pos;
    key_ref *keys = NULL;
    int rc = GRAFT_OK;

    memset(out, 0, sizeof *out);
    out->alignment = GGUF_DEFAULT_ALIGNMENT;
    /* a pair takes at least 8 (key length) + 4 (type) + 1 bytes */
    if (n > graft_rd_left(r) / 13)
        return graft_rd_fail(r, "%llu key-value pairs cannot fit in the %zu bytes left",
                             (unsigned long long)n, graft_rd_left(r));
    keys = graft_calloc(ctx, (size_t)n + 1, sizeof *keys);
    if (!keys) return graft_error_oom(ctx, "the metadata keys");
    for (uint64_t i = 0; i < n && rc == GRAFT_OK; i++) rc = read_pair(r, &keys[i], &out->alignment, ctx);
    if (rc == GRAFT_OK) {
        qsort(keys, (size_t)n, sizeof *keys, cmp_key);
        for (uint64_t i = 1; i < n && rc == GRAFT_OK; i++)
            if (cmp_key(&keys[i - 1], &keys[i]) == 0)
                rc = graft_error(ctx, GRAFT_ECORRUPT, "duplicate metadata key '%.*s'",
                                 (int)(keys[i].len < 64 ? keys[i].len : 64),
                                 (const char *)keys[i].p);
    }
    free(keys);
    if (rc < 0) return rc;
    out->bytes = r->p + start;
    out->len = r->pos - start;
    out->n = n;
    return GRAFT_OK;
}

void graft_gguf__kv_free(graft_gguf_kv *kv)
{
    if (kv && kv->owned) free((void *)kv->bytes);
    if (kv) memset(kv, 0, sizeof *kv);
}

/* ---- building pairs for a new file ------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static int put(buf *b, const void *p, size_t n, graft_ctx *ctx)
{
    if (b->len + n > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256) + n;
        uint8_t *q = graft_realloc(ctx, b->p, cap);
        if (!q) return graft_error_oom(ctx, "the metadata");
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return GRAFT_OK;
}

static int put_u64(buf *b, uint64_t v, graft_ctx *ctx)
{
    uint8_t le[8];
    graft_put_le64(le, v);
    return put(b, le, 8, ctx);
}

static int put_u32(buf *b, uint32_t v, graft_ctx *ctx)
{
    uint8_t le[4];
    graft_put_le32(le, v);
    return put(b, le, 4, ctx);
}

static int parse_type(const char *s, size_t n)
{
    for (int t = 0; t < GGUF_TYPE_COUNT; t++)
        if (t != GGUF_ARRAY && strlen(type_name[t]) == n && memcmp(type_name[t], s, n) == 0)
            return t;
    return -1;
}

/* The scalar text v as type t, little-endian into out (size type_size[t]). */
static int encode_scalar(int t, const char *v, uint8_t out[8], const char *item, graft_ctx *ctx)
{
    char *end = NULL;
    errno = 0;
    if (t == GGUF_BOOL) {
        if (strcmp(v, "true") && strcmp(v, "false"))
            return graft_error(ctx, GRAFT_ERROR, "--meta %s: bool is true or false", item);
        out[0] = v[0] == 't';
        return GRAFT_OK;
    }
    if (t == GGUF_F32 || t == GGUF_F64) {
        double d = strtod(v, &end);
        float f = (float)d;
        if (!*v || *end || errno)
            return graft_error(ctx, GRAFT_ERROR, "--meta %s: not a number", item);
        if (t == GGUF_F64) {
            uint64_t bits;
            memcpy(&bits, &d, 8);
            graft_put_le64(out, bits);
        } else {
            uint32_t bits;
            memcpy(&bits, &f, 4);
            graft_put_le32(out, bits);
        }
        return GRAFT_OK;
    }
    bool is_signed = t == GGUF_I8 || t == GGUF_I16 || t == GGUF_I32 || t == GGUF_I64;
    unsigned bits = type_size[t] * 8;
    if (is_signed) {
        long long x = strtoll(v, &end, 10);
        long long lim = bits == 64 ? 0 : 1LL << (bits - 1);
        if (!*v || *end || errno || (bits < 64 && (x < -lim || x >= lim)))
            return graft_error(ctx, GRAFT_ERROR, "--meta %s: not an integer that fits in %s",
                               item, type_name[t]);
        graft_put_le64(out, (uint64_t)x);
    } else {
        unsigned long long x = strtoull(v, &end, 10);
        if (!*v || *v == '-' || *end || errno || (bits < 64 && x >> bits))
            return graft_error(ctx, GRAFT_ERROR, "--meta %s: not an integer that fits in %s",
                               item, type_name[t]);
        graft_put_le64(out, x);
    }
    return GRAFT_OK;
}

/* One "KEY[:TYPE]=VALUE" into b; the key is returned for duplicate checks. */
static int build_pair(buf *b, const char *item, uint32_t *alignment, graft_ctx *ctx)
{
    const char *eq = strchr(item, '='), *colon;
    size_t klen;
    int t = GGUF_STRING;
    uint8_t v[8];

    if (!eq || eq == item)
        return graft_error(ctx, GRAFT_ERROR, "--meta %s: expected KEY=VALUE or KEY:TYPE=VALUE",
                           item);
    colon = memchr(item, ':', (size_t)(eq - item));
    klen = (size_t)((colon ? colon : eq) - item);
    if (colon && (t = parse_type(colon + 1, (size_t)(eq - colon - 1))) < 0)
        return graft_error(ctx, GRAFT_ERROR,
                           "--meta %s: unknown type '%.*s' (u8 i8 u16 i16 u32 i32 u64 i64 f32 "
                           "f64 bool str)",
                           item, (int)(eq - colon - 1), colon + 1);
    if (klen == 0) return graft_error(ctx, GRAFT_ERROR, "--meta %s: empty key", item);
    if (klen == 17 && memcmp(item, "general.alignment", 17) == 0) {
        unsigned long a;
        char *end;
        if (t != GGUF_U32 && colon)
            return graft_error(ctx, GRAFT_ERROR, "--meta %s: general.alignment is a u32", item);
        t = GGUF_U32;
        a = strtoul(eq + 1, &end, 10);
        if (*end || a == 0 || (a & (a - 1)) || a > GGUF_MAX_ALIGNMENT)
            return graft_error(ctx, GRAFT_ERROR,
                               "--meta %s: alignment must be a power of two up to %u", item,
                               GGUF_MAX_ALIGNMENT);
        *alignment = (uint32_t)a;
    }
    GRAFT_TRY(put_u64(b, klen, ctx));
    GRAFT_TRY(put(b, item, klen, ctx));
    GRAFT_TRY(put_u32(b, (uint32_t)t, ctx));
    if (t == GGUF_STRING) {
        GRAFT_TRY(put_u64(b, strlen(eq + 1), ctx));
        return put(b, eq + 1, strlen(eq + 1), ctx);
    }
    GRAFT_TRY(encode_scalar(t, eq + 1, v, item, ctx));
    return put(b, v, type_size[t], ctx);
}

static bool same_key(const char *a, const char *b)
{
    size_t x = strcspn(a, ":="), y = strcspn(b, ":=");
    return x == y && memcmp(a, b, x) == 0;
}

int graft_gguf__kv_build(const char *const *meta, size_t n, graft_gguf_kv *out,
                         graft_ctx *ctx)
{
    buf b = {0};
    uint64_t count = 0;
    int rc = GRAFT_OK;

    memset(out, 0, sizeof *out);
    out->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < n && rc == GRAFT_OK; i++) {
        bool later = false;
        for (size_t j = i + 1; j < n && !later; j++) later = same_key(meta[i], meta[j]);
        if (later) continue; /* the last one given wins */
        rc = build_pair(&b, meta[i], &out->alignment, ctx);
        count++;
    }
    if (rc < 0) {
        free(b.p);
        return rc;
    }
    out->bytes = b.p;
    out->len = b.len;
    out->n = count;
    out->owned = true;
    return GRAFT_OK;
}
