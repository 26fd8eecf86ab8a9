/*
 * pb.h - the one protobuf wire-format reader (TensorFlow's GraphDef family
 * and ONNX), walking fields in place through graft_rd so that every length is
 * bounds-checked and unknown fields can be copied byte for byte.
 *
 * Wire format (protobuf encoding, proto2/proto3 alike): a message is a
 * sequence of fields, each a varint tag (field_number << 3 | wire_type) and a
 * payload:
 *   0 VARINT  base-128 varint, 1 to 10 bytes
 *   1 I64     8 bytes little-endian (fixed64, sfixed64, double)
 *   2 LEN     varint length, then that many bytes (strings, bytes, messages,
 *             packed repeated scalars)
 *   5 I32     4 bytes little-endian (fixed32, sfixed32, float)
 * Field numbers run from 1 to 2^29 - 1.  Wire types 3 and 4 (groups) occur in
 * neither TensorFlow's nor ONNX's schemas and are refused.
 */
#ifndef GRAFT_CORE_PB_H
#define GRAFT_CORE_PB_H

#include "rd.h"
#include "sink.h"

#include <stdbool.h>

enum { GRAFT_PB_VARINT = 0, GRAFT_PB_I64 = 1, GRAFT_PB_LEN = 2, GRAFT_PB_I32 = 5 };

#define GRAFT_PB_MAX_FIELD 0x1fffffffu  /* 2^29 - 1 */

/* One field, as read from the wire. */
typedef struct graft_pbf {
    uint32_t num;           /* field number, 1 .. GRAFT_PB_MAX_FIELD */
    uint32_t wt;            /* wire type (GRAFT_PB_*) */
    uint32_t taglen;        /* bytes of the tag varint */
    uint64_t v;             /* VARINT, I64 and I32 values */
    graft_rd sub;           /* LEN payload; an empty window for the other types */
    const uint8_t *at;      /* first byte of the tag, in the parent's window */
    size_t span;            /* tag + payload bytes */
    uint64_t start;         /* file offset of the tag */
    uint64_t pstart;        /* file offset of the payload (after a LEN's length) */
    uint64_t end;           /* file offset just past the field */
} graft_pbf;

/*
 * Read the next field of the message in r.  On failure the cursor stays on
 * the field and the call returns GRAFT_ECORRUPT with a message naming the
 * field's offset: a zero or too large field number, an unsupported wire type,
 * a truncated value or a length past the end of the message.
 */
int graft_pb_next(graft_rd *r, graft_pbf *f);

/* The field is LEN and its payload is exactly the string s. */
bool graft_pb_is(const graft_pbf *f, const char *s);

/* Bytes of v as a varint (1 to 10). */
unsigned graft_pb_varint_len(uint64_t v);
/* Write v as a varint at p (room for 10 bytes); returns the end. */
uint8_t *graft_pb_put_varint(uint8_t *p, uint64_t v);
/* Write v as a varint to a sink. */
int graft_pb_sink_varint(graft_sink *s, uint64_t v);

#endif
