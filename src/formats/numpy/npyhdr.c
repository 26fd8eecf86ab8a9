/*
 * npyhdr.c - parse and write the .npy header (layout in npyhdr.h).
 *
 * The header dict is a Python literal; it is read by a small parser of just
 * the forms numpy writes (quoted strings, True/False, tuples of integers),
 * never evaluated.
 */
#include "npyhdr.h"

#include "rd.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

static const struct {
    char kind;
    unsigned size;
    graft_dtype dtype;
    const char *descr;       /* what the writer emits */
} kinds[] = {
    {'f', 2, GRAFT_FLOAT16, "<f2"},  {'f', 4, GRAFT_FLOAT32, "<f4"},
    {'f', 8, GRAFT_FLOAT64, "<f8"},  {'i', 1, GRAFT_INT8, "|i1"},
    {'i', 2, GRAFT_INT16, "<i2"},    {'i', 4, GRAFT_INT32, "<i4"},
    {'i', 8, GRAFT_INT64, "<i8"},    {'u', 1, GRAFT_UINT8, "|u1"},
    {'u', 2, GRAFT_UINT16, "<u2"},   {'u', 4, GRAFT_UINT32, "<u4"},
    {'u', 8, GRAFT_UINT64, "<u8"},   {'b', 1, GRAFT_BOOL, "|b1"},
    {'c', 8, GRAFT_COMPLEX64, "<c8"}, {'c', 16, GRAFT_COMPLEX128, "<c16"},
};

int graft_npy__header_size(const uint8_t *p, size_t n, uint64_t origin, uint64_t *out,
                           graft_ctx *ctx)
{
    graft_rd r;
    const uint8_t *m;
    uint8_t major, minor;
    uint32_t hlen;
    graft_rd_init(&r, p, n, origin, ctx);
    GRAFT_TRY(graft_rd_take(&r, 6, &m));
    if (memcmp(m, magic, 6) != 0) {
        r.pos = 0;
        return graft_rd_fail(&r, "not a .npy array (no \\x93NUMPY magic)");
    }
    GRAFT_TRY(graft_rd_u8(&r, &major));
    GRAFT_TRY(graft_rd_u8(&r, &minor));
    if (major < 1 || major > 3 || minor != 0) {
        r.pos = 6;
        return graft_rd_fail(&r, "unsupported .npy version %u.%u", major, minor);
    }
    if (major == 1) {
        uint16_t h16;
        GRAFT_TRY(graft_rd_u16le(&r, &h16));
        hlen = h16;
    } else {
        GRAFT_TRY(graft_rd_u32le(&r, &hlen));
    }
    if (hlen > GRAFT_NPY_HEADER_MAX)
        return graft_error(ctx, GRAFT_ELIMIT, "offset 0x%llx: header of %u bytes exceeds the cap of %u",
                           (unsigned long long)origin + 8, hlen, GRAFT_NPY_HEADER_MAX);
    *out = r.pos + (uint64_t)hlen;
    return GRAFT_OK;
}

/* ---- the dict literal, read with the bounded cursor (core/rd.h) -------- */

#define lit_fail(r, ...) graft_rd_fail((r), "header dict: " __VA_ARGS__)

static bool lit_eat(graft_rd *r, const char *s)
{
    graft_rd_skip_ws(r);
    return graft_rd_eat(r, s);
}

/* 'text' or "text" without escapes, borrowed. */
static int lit_string(graft_rd *r, const uint8_t **s, size_t *len)
{
    int q;
    size_t n;
    graft_rd_skip_ws(r);
    q = graft_rd_peek(r);
    if (q != '\'' && q != '"') return lit_fail(r, "expected a quoted string");
    r->pos++;
    bool closed = graft_rd_find(r, (uint8_t)q, &n);
    if (!closed) n = graft_rd_left(r);
    const uint8_t *esc = n ? memchr(r->p + r->pos, '\\', n) : NULL;
    if (esc) {
        r->pos = (size_t)(esc - r->p);
        return lit_fail(r, "escapes in strings are not supported");
    }
    if (!closed) {
        r->pos = r->len;
        return lit_fail(r, "unterminated string");
    }
    GRAFT_TRY(graft_rd_take(r, n, s));
    *len = n;
    r->pos++; /* the closing quote */
    return GRAFT_OK;
}

/* (d0, d1, ...) with an optional trailing comma; old files add 'L'. */
static int lit_shape(graft_rd *L, graft_npy_header *h)
{
    if (!lit_eat(L, "(")) return lit_fail(L, "'shape' must be a tuple");
    h->ndim = 0;
    for (;;) {
        uint64_t v = 0;
        if (lit_eat(L, ")")) break;
        if (graft_rd_peek(L) == '-') return lit_fail(L, "negative dimension");
        if (graft_rd_peek(L) < '0' || graft_rd_peek(L) > '9')
            return lit_fail(L, "expected a dimension");
        while (graft_rd_peek(L) >= '0' && graft_rd_peek(L) <= '9') {
            if (graft_mul_overflow(v, 10, &v) ||
                graft_add_overflow(v, (uint64_t)(graft_rd_peek(L) - '0'), &v) || v > INT64_MAX)
                return graft_error(L->ctx, GRAFT_ELIMIT, "offset 0x%llx: header dict: dimension overflows",
                                   (unsigned long long)graft_rd_offset(L));
            L->pos++;
        }
        graft_rd_eat(L, "L");
        if (h->ndim == GRAFT_MAX_NDIM)
            return graft_error(L->ctx, GRAFT_ELIMIT, "offset 0x%llx: header dict: more than %d dimensions",
                               (unsigned long long)graft_rd_offset(L), GRAFT_MAX_NDIM);
        h->shape[h->ndim++] = (int64_t)v;
        if (lit_eat(L, ",")) continue;
        if (lit_eat(L, ")")) break;
        return lit_fail(L, "expected ',' or ')' in 'shape'");
    }
    return GRAFT_OK;
}

/* A descr graft has no dtype for: listed as unsupported, never read (an
 * object array's data is a pickle, which is not even parsed). */
static void unsupported(graft_npy_header *h, const char *what, const uint8_t *s, size_t len)
{
    h->dtype = GRAFT_DTYPE_INVALID;
    snprintf(h->unsupported, sizeof h->unsupported, "numpy dtype '%.*s'%s",
             (int)(len > 48 ? 48 : len), s, what);
}

static int parse_descr(graft_rd *L, graft_npy_header *h, const uint8_t *s, size_t len)
{
    char order, kind;
    unsigned size = 0;
    if (len >= 2 && s[1] == 'O') {
        unsupported(h, " (an object array: a pickle)", s, len);
        return GRAFT_OK;
    }
    if (len < 3 || len > 6) {
        unsupported(h, "", s, len);
        return GRAFT_OK;
    }
    order = (char)s[0];
    kind = (char)s[1];
    for (size_t i = 2; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            unsupported(h, "", s, len);
            return GRAFT_OK;
        }
        size = size * 10 + (unsigned)(s[i] - '0');
    }
    if (order != '<' && order != '>' && order != '|' && order != '=')
        return graft_error(L->ctx, GRAFT_ECORRUPT, "descr '%.*s': bad byte order '%c'", (int)len,
                           s, order);
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (kinds[i].kind == kind && kinds[i].size == size) {
            h->dtype = kinds[i].dtype;
            h->big_endian = order == '>' && size > 1;
            return GRAFT_OK;
        }
    unsupported(h, "", s, len);
    return GRAFT_OK;
}

/* Skip a structured descr: a list of tuples of strings, ints and lists. */
static int skip_list(graft_rd *L)
{
    int depth = 0;
    do {
        const uint8_t *s;
        size_t n;
        int c;
        graft_rd_skip_ws(L);
        c = graft_rd_peek(L);
        if (c < 0) return lit_fail(L, "unterminated structured descr");
        if (c == '\'' || c == '"') {
            GRAFT_TRY(lit_string(L, &s, &n));
            continue;
        }
        if (c == '[' || c == '(') {
            if (++depth > 32) return lit_fail(L, "structured descr nests deeper than 32");
        } else if (c == ']' || c == ')') {
            depth--;
        }
        L->pos++;
    } while (depth > 0);
    return GRAFT_OK;
}

int graft_npy__parse(graft_npy_header *h, const uint8_t *p, size_t n, uint64_t origin,
                     graft_ctx *ctx)
{
    uint64_t total, numel = 1;
    size_t start;
    bool seen[3] = {false, false, false};
    graft_rd r, *L = &r;

    memset(h, 0, sizeof *h);
    GRAFT_TRY(graft_npy__header_size(p, n, origin, &total, ctx));
    if (total > n)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "offset 0x%llx: header of %llu bytes runs past the end (%zu bytes)",
                           (unsigned long long)origin, (unsigned long long)total, n);
    start = p[6] == 1 ? 10 : 12;
    graft_rd_init(L, p + start, (size_t)total - start, origin + start, ctx);
    if (!lit_eat(L, "{")) return lit_fail(L, "expected '{'");
    while (!lit_eat(L, "}")) {
        const uint8_t *key;
        size_t klen;
        int which;
        GRAFT_TRY(lit_string(L, &key, &klen));
        which = klen == 5 && !memcmp(key, "descr", 5)           ? 0
              : klen == 13 && !memcmp(key, "fortran_order", 13) ? 1
              : klen == 5 && !memcmp(key, "shape", 5)           ? 2 : -1;
        if (which < 0) return lit_fail(L, "unexpected key '%.*s'", (int)(klen > 32 ? 32 : klen), key);
        if (seen[which]) return lit_fail(L, "key '%.*s' appears twice", (int)klen, key);
        seen[which] = true;
        if (!lit_eat(L, ":")) return lit_fail(L, "expected ':'");
        if (which == 0) {
            const uint8_t *s;
            size_t len;
            graft_rd_skip_ws(L);
            if (graft_rd_peek(L) == '[') {
                size_t at = L->pos, n;
                GRAFT_TRY(skip_list(L));
                n = L->pos - at;
                h->dtype = GRAFT_DTYPE_INVALID;
                snprintf(h->unsupported, sizeof h->unsupported, "numpy structured dtype %.*s%s",
                         (int)(n > 48 ? 48 : n), (const char *)L->p + at, n > 48 ? "..." : "");
            } else {
                GRAFT_TRY(lit_string(L, &s, &len));
                GRAFT_TRY(parse_descr(L, h, s, len));
            }
        } else if (which == 1) {
            if (lit_eat(L, "True")) h->fortran = true;
            else if (!lit_eat(L, "False")) return lit_fail(L, "'fortran_order' must be True or False");
        } else {
            GRAFT_TRY(lit_shape(L, h));
        }
        if (lit_eat(L, ",")) continue;
        if (lit_eat(L, "}")) break;
        return lit_fail(L, "expected ',' or '}'");
    }
    graft_rd_skip_ws(L);
    if (graft_rd_left(L)) return lit_fail(L, "unexpected text after the dict");
    if (!seen[0] || !seen[1] || !seen[2])
        return graft_error(ctx, GRAFT_ECORRUPT, "offset 0x%llx: header dict lacks '%s'",
                           (unsigned long long)origin + start,
                           !seen[0] ? "descr" : !seen[1] ? "fortran_order" : "shape");
    for (uint32_t i = 0; i < h->ndim; i++)
        if (graft_mul_overflow(numel, (uint64_t)h->shape[i], &numel) || numel > INT64_MAX)
            return graft_error(ctx, GRAFT_ELIMIT, "shape: element count overflows");
    if (graft_mul_overflow(numel, graft_dtype_size(h->dtype), &h->nbytes) || h->nbytes > INT64_MAX)
        return graft_error(ctx, GRAFT_ELIMIT, "shape: byte size overflows");
    h->numel = numel;
    h->data_offset = total;
    return GRAFT_OK;
}

int graft_npy__set_view(graft_model *m, graft_tensor *t, const graft_npy_header *h,
                        graft_ctx *ctx)
{
    t->big_endian = h->big_endian;
    if (h->fortran && h->ndim > 1 && h->numel > 0) {
        int64_t strides[GRAFT_MAX_NDIM], s = 1;
        for (uint32_t i = 0; i < h->ndim; i++) {
            strides[i] = s;
            s *= h->shape[i]; /* prefix products are <= numel, which fits */
        }
        return graft_model__set_strides(m, t, strides, ctx);
    }
    return GRAFT_OK;
}

void graft_npy__to_rowmajor(const graft_npy_header *h, const uint8_t *src, uint8_t *dst)
{
    size_t es = graft_dtype_size(h->dtype), unit;
    if (!h->fortran || h->ndim < 2) {
        memcpy(dst, src, (size_t)h->nbytes);
    } else if (h->numel) {
        /* odometer over the C-order index; Fortran offset = sum idx[d] * prod(shape[<d]) */
        int64_t idx[GRAFT_MAX_NDIM] = {0}, fstride[GRAFT_MAX_NDIM], s = 1;
        for (uint32_t d = 0; d < h->ndim; d++) {
            fstride[d] = s;
            s *= h->shape[d];
        }
        for (uint64_t k = 0; k < h->numel; k++) {
            int64_t off = 0;
            for (uint32_t d = 0; d < h->ndim; d++) off += idx[d] * fstride[d];
            memcpy(dst + k * es, src + (size_t)off * es, es);
            for (uint32_t d = h->ndim; d-- > 0;) {
                if (++idx[d] < h->shape[d]) break;
                idx[d] = 0;
            }
        }
    }
    if (!h->big_endian) return;
    unit = h->dtype == GRAFT_COMPLEX64 || h->dtype == GRAFT_COMPLEX128 ? es / 2 : es;
    for (uint64_t i = 0; i + unit <= h->nbytes; i += unit)
        for (size_t a = 0, b = unit - 1; a < b; a++, b--) {
            uint8_t c = dst[i + a];
            dst[i + a] = dst[i + b];
            dst[i + b] = c;
        }
}

int graft_npy__write_header(graft_jsonw *w, const graft_tensor *t, graft_ctx *ctx)
{
    const char *descr = NULL;
    graft_jsonw text;
    size_t pad, lenfield;
    uint8_t pre[12];
    int rc;

    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (kinds[i].dtype == t->dtype) descr = kinds[i].descr;
    if (!descr)
        return graft_error(ctx, GRAFT_EFORMAT, "tensor '%s': %s has no .npy descr", t->name,
                           graft_dtype_name(t->dtype));
    graft_jsonw_init(&text, ctx);
    graft_jsonw_printf(&text, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (uint32_t d = 0; d < t->ndim; d++)
        graft_jsonw_printf(&text, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    graft_jsonw_printf(&text, "%s), }", t->ndim == 1 ? "," : "");
    if (t->ndim) {
        /* numpy >= 1.24 leaves room to grow the first axis in place */
        char digits[24];
        int k = snprintf(digits, sizeof digits, "%lld", (long long)t->shape[0]);
        for (int i = k; i < 21; i++) graft_jsonw_raw(&text, " ", 1);
    }
    if ((rc = text.rc) < 0) goto cleanup;
    lenfield = text.len + 1 + 64 <= 65535 ? 2 : 4;
    pad = 64 - (8 + lenfield + text.len + 1) % 64;
    memcpy(pre, magic, 6);
    pre[6] = lenfield == 2 ? 1 : 2;
    pre[7] = 0;
    if (lenfield == 2)
        graft_put_le16(pre + 8, (uint16_t)(text.len + pad + 1));
    else
        graft_put_le32(pre + 8, (uint32_t)(text.len + pad + 1));
    graft_jsonw_raw(w, (const char *)pre, 8 + lenfield);
    graft_jsonw_raw(w, text.p, text.len);
    for (size_t i = 0; i < pad; i++) graft_jsonw_raw(w, " ", 1);
    graft_jsonw_raw(w, "\n", 1);
    rc = w->rc;
cleanup:
    graft_jsonw_free(&text);
    return rc;
}
