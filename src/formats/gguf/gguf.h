/*
 * gguf.h - GGUF (llama.cpp / ggml) internals shared by the reader/writer
 * (gguf.c), the metadata codec (gguf_kv.c) and `graft convert` (internal).
 *
 * A ggml tensor of an unquantized type is a graft tensor of the matching
 * dtype whose shape is ggml's ne[] reversed (row-major, as NumPy shows it).
 * A block-quantized tensor (Q8_0, Q4_0) is a uint8 tensor whose last two
 * dims are the block layout: ne[n-1] .. ne[1], ne[0] / block_elems,
 * block_bytes.  t->aux holds the ggml type of every GGUF tensor.
 */
#ifndef GRAFT_FORMATS_GGUF_H
#define GRAFT_FORMATS_GGUF_H

#include "format.h"
#include "rd.h"

#define GGUF_VERSION 3
#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_ALIGNMENT (1u << 20)           /* ggml gguf.cpp GGUF_MAX_ALIGNMENT */
#define GGUF_MAX_STRING_LENGTH (64u << 20)      /* ggml gguf.cpp */
#define GGUF_MAX_ARRAY_ELEMENTS (64u << 20)     /* ggml gguf.cpp */
#define GGML_MAX_DIMS 4
#define GGML_MAX_NAME 64                        /* names are shorter than this */

enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q8_0 = 8, GGML_I8 = 24, GGML_I16 = 25,
       GGML_I32 = 26, GGML_I64 = 27, GGML_F64 = 28, GGML_BF16 = 30 };

/* GGUF metadata value types (gguf.h enum gguf_type). */
enum { GGUF_U8 = 0, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL,
       GGUF_STRING, GGUF_ARRAY, GGUF_U64, GGUF_I64, GGUF_F64, GGUF_TYPE_COUNT };

typedef struct graft_ggml_type {
    uint32_t id;             /* ggml_type value */
    const char *name;        /* "q8_0", as ggml_type_name */
    graft_dtype dtype;       /* unquantized: the element dtype; quantized: GRAFT_UINT8 */
    uint32_t block_elems;    /* 1 for unquantized */
    uint32_t block_bytes;    /* bytes of one block (element size when unquantized) */
} graft_ggml_type;

/* The type with ggml id `id`, or NULL when graft does not support it. */
const graft_ggml_type *graft_gguf__type(uint32_t id);
/* The unquantized type for a dtype, or NULL (GGUF has no unsigned or bool). */
const graft_ggml_type *graft_gguf__type_of_dtype(graft_dtype dt);
/* The quantized type named "q8_0" / "q4_0", or NULL. */
const graft_ggml_type *graft_gguf__type_by_name(const char *name);
/* "ggml q8_0: blocks of 32 elements, 34 bytes each" for a quantized tensor. */
const char *graft_gguf__encoding(const graft_model *m, const graft_tensor *t);

/* Metadata: the raw key-value section and what was learned from it. */
typedef struct graft_gguf_kv {
    const uint8_t *bytes;    /* the n KV pairs as stored; borrowed or malloc'ed (owned) */
    size_t len;
    uint64_t n;
    uint32_t alignment;      /* general.alignment or 32 */
    bool owned;
} graft_gguf_kv;

/*
 * Walk and check the KV section at r (n pairs): key and string lengths
 * against what is left and GGUF_MAX_STRING_LENGTH, array counts against
 * GGUF_MAX_ARRAY_ELEMENTS, value types, duplicate keys, general.alignment
 * (a u32 power of two <= 1 MiB).  Leaves r after the section.
 */
int graft_gguf__kv_parse(graft_rd *r, uint64_t n, graft_gguf_kv *out, graft_ctx *ctx);
/*
 * Encode "KEY=VALUE" or "KEY:TYPE=VALUE" (TYPE u8 i8 u16 i16 u32 i32 u64
 * i64 f32 f64 bool str; default str) as one KV pair appended to *buf.
 * A later pair with the same key replaces an earlier one.
 */
int graft_gguf__kv_build(const char *const *meta, size_t n, graft_gguf_kv *out,
                         graft_ctx *ctx);
void graft_gguf__kv_free(graft_gguf_kv *kv);

/*
 * Turn m (tensors named, typed and shaped, no GGUF state) into a GGUF to be
 * written: metadata from meta[] ("KEY[:TYPE]=VALUE"), which must set
 * general.architecture; tensor i's ggml type is types[i] (a quantized type,
 * for uint8 [..., blocks, block bytes]) or, when that is NULL, its dtype's.
 */
int graft_gguf__prepare(graft_model *m, const char *const *meta, size_t nmeta,
                        const graft_ggml_type *const *types, graft_ctx *ctx);

extern const graft_format graft_format_gguf;

#endif
