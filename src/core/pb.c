/* pb.c - the protobuf wire-format reader and varint writers (see pb.h). */
#include "pb.h"

#include <string.h>

int graft_pb_next(graft_rd *r, graft_pbf *f)
{
    size_t start = r->pos;
    uint64_t tag, len;
    const uint8_t *p;

    memset(f, 0, sizeof *f);
    GRAFT_TRY(graft_rd_varint(r, &tag));
    f->at = r->p + start;
    f->start = r->origin + start;
    f->taglen = (uint32_t)(r->pos - start);
    f->num = (uint32_t)(tag >> 3);
    f->wt = (uint32_t)(tag & 7);
    if (tag >> 3 == 0 || tag >> 3 > GRAFT_PB_MAX_FIELD) {
        r->pos = start;
        return graft_rd_fail(r, "bad protobuf field number %llu",
                             (unsigned long long)(tag >> 3));
    }
    f->pstart = graft_rd_offset(r);
    graft_rd_init(&f->sub, NULL, 0, f->pstart, r->ctx);
    switch (f->wt) {
    case GRAFT_PB_VARINT:
        if (graft_rd_varint(r, &f->v) < 0) goto fail;
        break;
    case GRAFT_PB_I64:
        if (graft_rd_u64le(r, &f->v) < 0) goto fail;
        break;
    case GRAFT_PB_I32: {
        uint32_t v;
        if (graft_rd_u32le(r, &v) < 0) goto fail;
        f->v = v;
        break;
    }
    case GRAFT_PB_LEN:
        if (graft_rd_varint(r, &len) < 0) goto fail;
        if (len > graft_rd_left(r)) {
            size_t left = graft_rd_left(r);
            r->pos = start; /* report the field's own offset */
            return graft_rd_fail(r, "field %u: length %llu runs past the end (%zu bytes left)",
                                 f->num, (unsigned long long)len, left);
        }
        f->pstart = graft_rd_offset(r);
        if (graft_rd_take(r, (size_t)len, &p) < 0) goto fail;
        graft_rd_init(&f->sub, p, (size_t)len, f->pstart, r->ctx);
        break;
    default:
        r->pos = start;
        return graft_rd_fail(r, "field %u: unsupported protobuf wire type %u", f->num, f->wt);
    }
    f->span = r->pos - start;
    f->end = graft_rd_offset(r);
    return GRAFT_OK;
fail:
    r->pos = start;
    return r->ctx->status;
}

bool graft_pb_is(const graft_pbf *f, const char *s)
{
    size_t n = strlen(s);
    return f->wt == GRAFT_PB_LEN && f->sub.len == n && memcmp(f->sub.p, s, n) == 0;
}

unsigned graft_pb_varint_len(uint64_t v)
{
    unsigned n = 1;
    while (v > 0x7f) {
        v >>= 7;
        n++;
    }
    return n;
}

uint8_t *graft_pb_put_varint(uint8_t *p, uint64_t v)
{
    do {
        *p++ = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return p;
}

int graft_pb_sink_varint(graft_sink *s, uint64_t v)
{
    uint8_t b[10];
    return graft_sink_write(s, b, (size_t)(graft_pb_put_varint(b, v) - b));
}
