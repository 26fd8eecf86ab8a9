/*
 * pb_check.h - is this protobuf the message it claims to be?
 *
 * Protobuf has no magic: a TensorProto, a text file or any other bytes may
 * walk as "a message" of any type, and a reader that skips what it does not
 * know then lists nothing.  A format checks the top level of its message
 * against the fields its schema defines (unknown fields stay allowed, as
 * protobuf allows them) and refuses it with the message's name otherwise.
 */
#ifndef GRAFT_CORE_PB_CHECK_H
#define GRAFT_CORE_PB_CHECK_H

#include "error.h"

#include <stdbool.h>

/* One field of a message's schema. */
typedef struct graft_pb_rule {
    uint32_t num;       /* field number */
    uint32_t wt;        /* wire type (GRAFT_PB_*); a repeated scalar may also be packed */
    const char *name;   /* as in the .proto */
    bool required;      /* the message means nothing without it */
    bool message;       /* a LEN field holding a message: its own fields must parse */
} graft_pb_rule;

/*
 * Walk the top-level fields of [p, p+n): every field must parse (else the
 * reader's GRAFT_ECORRUPT naming the offset), each field
 * in `rules` must have its wire type, and the required ones must be there.
 * Otherwise GRAFT_ECORRUPT with "not <what>: ..." (what: "an ONNX ModelProto") (the offset or the field
 * that disagrees).
 */
int graft_pb_check(const uint8_t *p, size_t n, const char *what, const graft_pb_rule *rules,
                   size_t nrules, graft_ctx *ctx);

#endif
