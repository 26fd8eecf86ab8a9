/*
 * fb.h - bounds-checked FlatBuffers reading without generated code.
 *
 * Wire format (flatbuffers.dev "FlatBuffers internals"), all little-endian:
 *  1. uoffset_t (u32) at byte 0: the root table's position.  A uoffset is
 *     relative to where it is stored and unsigned, so every reference points
 *     forward; a walk that follows only uoffsets cannot loop.  A zero uoffset
 *     (an object on top of its own reference) is refused.
 *  2. A table starts with a soffset_t (i32): its vtable is at table - soffset,
 *     anywhere in the buffer.
 *  3. A vtable: u16 vtable size in bytes, u16 table size in bytes, then one
 *     u16 per field id: the field's offset from the table start, 0 = absent
 *     (the schema default applies).  Field id n is at vtable + 4 + 2n; a union
 *     field takes two ids (type, then value).
 *  4. A vector or string field holds a uoffset to a u32 element count followed
 *     by the elements (strings: bytes, then a NUL not counted).  A vector of
 *     tables holds one uoffset per element.
 *
 * Every function checks its reads against the buffer and reports
 * "offset 0x..: <what>: <problem>" in ctx.
 */
#ifndef GRAFT_TFLITE_FB_H
#define GRAFT_TFLITE_FB_H

#include "error.h"

typedef struct graft_fb {
    const uint8_t *p;   /* the whole FlatBuffer */
    size_t n;           /* its size */
    graft_ctx *ctx;
} graft_fb;

typedef struct graft_fb_table {
    size_t pos;         /* table start (its soffset) */
    size_t vt;          /* vtable start */
    uint16_t vtlen;     /* vtable size in bytes */
    uint16_t tlen;      /* table size in bytes */
} graft_fb_table;

typedef struct graft_fb_vec {
    size_t pos;         /* first element (after the count) */
    uint32_t len;       /* elements */
} graft_fb_vec;

/* The root table (uoffset at 0).  `what` names it in messages. */
int graft_fb__root(const graft_fb *b, graft_fb_table *out);
/* Position of field `id` of width `width` bytes, 0 when absent. */
int graft_fb__field(const graft_fb *b, const graft_fb_table *t, unsigned id, size_t width,
                    const char *what, size_t *out);
/* Scalars; `def` when absent. */
int graft_fb__u8(const graft_fb *b, const graft_fb_table *t, unsigned id, uint8_t def,
                 const char *what, uint8_t *out);
int graft_fb__u32(const graft_fb *b, const graft_fb_table *t, unsigned id, uint32_t def,
                  const char *what, uint32_t *out);
int graft_fb__u64(const graft_fb *b, const graft_fb_table *t, unsigned id, uint64_t def,
                  const char *what, uint64_t *out);
/* A sub-table; *present false (and out untouched) when absent. */
int graft_fb__table(const graft_fb *b, const graft_fb_table *t, unsigned id, const char *what,
                    graft_fb_table *out, bool *present);
/* A vector of `elem` -byte elements (a table vector: elem 4); empty when absent. */
int graft_fb__vector(const graft_fb *b, const graft_fb_table *t, unsigned id, size_t elem,
                     const char *what, graft_fb_vec *out);
/* Element i of a vector of tables. */
int graft_fb__vec_table(const graft_fb *b, const graft_fb_vec *v, uint32_t i, const char *what,
                        graft_fb_table *out);
/* A string field: bytes and length (no NUL check); "" when absent. */
int graft_fb__string(const graft_fb *b, const graft_fb_table *t, unsigned id, const char *what,
                     const char **out, uint32_t *len);

#endif
