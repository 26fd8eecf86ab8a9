/*
 * tf_pb.h - walking protobuf wire format in place (TensorFlow's GraphDef and
 * friends are edited at this level so that unknown fields survive).
 * Each field is read through graft_rd, so every length is bounds-checked;
 * offsets are absolute file offsets.
 */
#ifndef GRAFT_FORMATS_TF_PB_H
#define GRAFT_FORMATS_TF_PB_H

#include "rd.h"

#include <string.h>

/* One field: its number, wire type and value or payload. */
typedef struct graft_pbf {
    uint32_t num, wt, taglen;
    uint64_t v;          /* varint and fixed values */
    graft_rd sub;        /* payload of a length-delimited field */
    uint64_t start, pstart, end;
} graft_pbf;

static inline int graft_pb_next(graft_rd *r, graft_pbf *f)
{
    uint64_t tag, len;
    const uint8_t *b;
    f->start = graft_rd_offset(r);
    GRAFT_TRY(graft_rd_varint(r, &tag));
    f->taglen = (uint32_t)(graft_rd_offset(r) - f->start);
    f->num = (uint32_t)(tag >> 3);
    f->wt = (uint32_t)(tag & 7);
    if (tag >> 3 == 0 || tag >> 32) return graft_rd_fail(r, "bad protobuf field number");
    /* a valid empty payload for non-length-delimited fields */
    graft_rd_init(&f->sub, NULL, 0, graft_rd_offset(r), r->ctx);
    f->pstart = graft_rd_offset(r);
    switch (f->wt) {
    case 0: GRAFT_TRY(graft_rd_varint(r, &f->v)); break;
    case 1: GRAFT_TRY(graft_rd_take(r, 8, &b)); f->v = graft_le64(b); break;
    case 5: GRAFT_TRY(graft_rd_take(r, 4, &b)); f->v = graft_le32(b); break;
    case 2:
        GRAFT_TRY(graft_rd_varint(r, &len));
        if (len > graft_rd_left(r))
            return graft_rd_fail(r, "field %u of %llu bytes runs past the end of its message",
                                 f->num, (unsigned long long)len);
        f->pstart = graft_rd_offset(r);
        GRAFT_TRY(graft_rd_sub(r, (size_t)len, &f->sub));
        break;
    default: return graft_rd_fail(r, "protobuf wire type %u is not supported", f->wt);
    }
    f->end = graft_rd_offset(r);
    return GRAFT_OK;
}

static inline bool graft_pb_is(const graft_pbf *f, const char *s)
{
    size_t n = strlen(s);
    return f->wt == 2 && f->sub.len == n && memcmp(f->sub.p, s, n) == 0;
}

static inline unsigned graft_pb_varint_len(uint64_t v)
{
    unsigned n = 1;
    while (v > 0x7f) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline uint8_t *graft_pb_put_varint(uint8_t *p, uint64_t v)
{
    do {
        *p++ = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return p;
}

#endif
