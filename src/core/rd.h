/*
 * rd.h - the one bounds-checked cursor used to parse untrusted bytes.
 *
 * Every read is checked against what is left; on failure the cursor does not
 * move and the call returns GRAFT_ECORRUPT with a message naming the absolute
 * offset ("offset 0x1f3: need 8 bytes, 3 left").  `origin` is the offset of
 * p[0] in the file, so sub-cursors report file offsets.
 */
#ifndef GRAFT_CORE_RD_H
#define GRAFT_CORE_RD_H

#include "error.h"

typedef struct graft_rd {
    const uint8_t *p;   /* first byte of the window */
    size_t len;         /* bytes in the window */
    size_t pos;         /* cursor, 0 <= pos <= len */
    uint64_t origin;    /* file offset of p[0], for messages */
    graft_ctx *ctx;     /* where failures are reported */
} graft_rd;

void graft_rd_init(graft_rd *r, const uint8_t *p, size_t len, uint64_t origin,
                   graft_ctx *ctx);

static inline size_t graft_rd_left(const graft_rd *r) { return r->len - r->pos; }
static inline uint64_t graft_rd_offset(const graft_rd *r) { return r->origin + r->pos; }

int graft_rd_u8(graft_rd *r, uint8_t *out);
int graft_rd_u16le(graft_rd *r, uint16_t *out);
int graft_rd_u32le(graft_rd *r, uint32_t *out);
int graft_rd_u64le(graft_rd *r, uint64_t *out);
int graft_rd_u32be(graft_rd *r, uint32_t *out);
int graft_rd_u64be(graft_rd *r, uint64_t *out);
/* Protobuf/LevelDB base-128 varint, at most 10 bytes. */
int graft_rd_varint(graft_rd *r, uint64_t *out);
/* Borrow n bytes. */
int graft_rd_take(graft_rd *r, size_t n, const uint8_t **out);
int graft_rd_skip(graft_rd *r, size_t n);
/* A child cursor over the next n bytes; the parent moves past them. */
int graft_rd_sub(graft_rd *r, size_t n, graft_rd *out);
/* Position the cursor at absolute window position `pos` (<= len). */
int graft_rd_seek(graft_rd *r, size_t pos);
/* Report a problem at the current offset: "offset 0x..: <message>". */
int graft_rd_fail(graft_rd *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- text: JSON documents, the .npy header dict, pickle text operands -- */

/* The next byte, or -1 at the end. */
static inline int graft_rd_peek(const graft_rd *r) { return r->pos < r->len ? r->p[r->pos] : -1; }
/* Skip JSON / Python whitespace: space, tab, LF, CR. */
void graft_rd_skip_ws(graft_rd *r);
/* Consume the bytes of s if they come next; otherwise false, nothing consumed. */
bool graft_rd_eat(graft_rd *r, const char *s);
/* How many bytes come before the next c (not consumed); false when no c is left. */
bool graft_rd_find(const graft_rd *r, uint8_t c, size_t *n);

/* Explicit byte-order loads from memory (never cast structs onto bytes). */
static inline uint16_t graft_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t graft_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t graft_le64(const uint8_t *p)
{
    return (uint64_t)graft_le32(p) | (uint64_t)graft_le32(p + 4) << 32;
}
static inline void graft_put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void graft_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void graft_put_le64(uint8_t *p, uint64_t v)
{
    graft_put_le32(p, (uint32_t)v);
    graft_put_le32(p + 4, (uint32_t)(v >> 32));
}

#endif
