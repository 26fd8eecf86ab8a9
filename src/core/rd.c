/* rd.c - bounds-checked reading of untrusted bytes (see rd.h). */
#include "rd.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void graft_rd_init(graft_rd *r, const uint8_t *p, size_t len, uint64_t origin,
                   graft_ctx *ctx)
{
    r->p = p;
    r->len = p ? len : 0;
    r->pos = 0;
    r->origin = origin;
    r->ctx = ctx;
}

int graft_rd_fail(graft_rd *r, const char *fmt, ...)
{
    char what[GRAFT_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return graft_error(r->ctx, GRAFT_ECORRUPT, "offset 0x%llx: %s",
                       (unsigned long long)graft_rd_offset(r), what);
}

static int need(graft_rd *r, size_t n)
{
    if (n > graft_rd_left(r))
        return graft_rd_fail(r, "need %zu bytes, %zu left", n, graft_rd_left(r));
    return GRAFT_OK;
}

int graft_rd_take(graft_rd *r, size_t n, const uint8_t **out)
{
    GRAFT_TRY(need(r, n));
    *out = r->p + r->pos;
    r->pos += n;
    return GRAFT_OK;
}

int graft_rd_skip(graft_rd *r, size_t n)
{
    GRAFT_TRY(need(r, n));
    r->pos += n;
    return GRAFT_OK;
}

int graft_rd_sub(graft_rd *r, size_t n, graft_rd *out)
{
    GRAFT_TRY(need(r, n));
    graft_rd_init(out, r->p + r->pos, n, graft_rd_offset(r), r->ctx);
    r->pos += n;
    return GRAFT_OK;
}

int graft_rd_seek(graft_rd *r, size_t pos)
{
    if (pos > r->len)
        return graft_error(r->ctx, GRAFT_ECORRUPT,
                           "offset 0x%llx: past the end (%zu bytes)",
                           (unsigned long long)(r->origin + pos), r->len);
    r->pos = pos;
    return GRAFT_OK;
}

int graft_rd_u8(graft_rd *r, uint8_t *out)
{
    GRAFT_TRY(need(r, 1));
    *out = r->p[r->pos++];
    return GRAFT_OK;
}

int graft_rd_u16le(graft_rd *r, uint16_t *out)
{
    GRAFT_TRY(need(r, 2));
    *out = graft_le16(r->p + r->pos);
    r->pos += 2;
    return GRAFT_OK;
}

int graft_rd_u32le(graft_rd *r, uint32_t *out)
{
    GRAFT_TRY(need(r, 4));
    *out = graft_le32(r->p + r->pos);
    r->pos += 4;
    return GRAFT_OK;
}

int graft_rd_u64le(graft_rd *r, uint64_t *out)
{
    GRAFT_TRY(need(r, 8));
    *out = graft_le64(r->p + r->pos);
    r->pos += 8;
    return GRAFT_OK;
}

int graft_rd_u32be(graft_rd *r, uint32_t *out)
{
    const uint8_t *p;
    GRAFT_TRY(graft_rd_take(r, 4, &p));
    *out = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return GRAFT_OK;
}

int graft_rd_u64be(graft_rd *r, uint64_t *out)
{
    uint32_t hi, lo;
    size_t save = r->pos;
    if (graft_rd_u32be(r, &hi) < 0) return GRAFT_ECORRUPT;
    if (graft_rd_u32be(r, &lo) < 0) {
        r->pos = save;
        return GRAFT_ECORRUPT;
    }
    *out = (uint64_t)hi << 32 | lo;
    return GRAFT_OK;
}

int graft_rd_varint(graft_rd *r, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 10; i++) {
        if (r->pos + i >= r->len)
            return graft_rd_fail(r, "varint runs past the end");
        uint8_t b = r->p[r->pos + i];
        if (i == 9 && b > 1)
            return graft_rd_fail(r, "varint overflows 64 bits");
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            r->pos += i + 1;
            *out = v;
            return GRAFT_OK;
        }
    }
    return graft_rd_fail(r, "varint longer than 10 bytes");
}

void graft_rd_skip_ws(graft_rd *r)
{
    while (r->pos < r->len) {
        uint8_t c = r->p[r->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        r->pos++;
    }
}

bool graft_rd_eat(graft_rd *r, const char *s)
{
    size_t n = strlen(s);
    if (n > graft_rd_left(r) || memcmp(r->p + r->pos, s, n) != 0) return false;
    r->pos += n;
    return true;
}

bool graft_rd_find(const graft_rd *r, uint8_t c, size_t *n)
{
    const uint8_t *at = graft_rd_left(r) ? memchr(r->p + r->pos, c, graft_rd_left(r)) : NULL;
    if (!at) return false;
    *n = (size_t)(at - (r->p + r->pos));
    return true;
}
