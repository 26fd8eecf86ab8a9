/*
 * model.h - the tensor table every format reader fills (internal).
 *
 * A reader creates tensors with graft_model_add() and says where each one's
 * elements live: a (possibly strided, possibly big-endian) view into a mapped
 * source, or a load() callback for bytes that must be decoded (deflated zip
 * members, protobuf typed fields, HDF5 datasets).  graft_model_validate()
 * then checks the whole table once for every format: dtypes known, element
 * counts that fit, views inside their file, names unique.
 */
#ifndef GRAFT_CORE_MODEL_H
#define GRAFT_CORE_MODEL_H

#include "arena.h"
#include "source.h"
#include "strmap.h"

#define GRAFT_MAX_NDIM 64              /* cap on rank from any input */
#define GRAFT_MAX_TENSORS (1u << 24)   /* cap on tensors in one model */
#define GRAFT_MAX_NAME (64u * 1024)    /* cap on one tensor name, bytes */

struct graft_format;

/* Fill dst with the tensor's t->nbytes row-major little-endian bytes. */
typedef int (*graft_load_fn)(const graft_model *m, const graft_tensor *t,
                             uint8_t *dst, graft_ctx *ctx);
/* The same bytes handed to fn in order, in pieces, without holding the whole
 * tensor (a deflated member); fn's error stops it. */
typedef int (*graft_piece_fn)(void *arg, const uint8_t *p, size_t n);
/* A streaming decoder's callback (ONNX typed fields, TF V1 values): each
 * piece handed to fn, then the file's pages before `at` released behind it,
 * so hashing a large tensor keeps memory flat.  fn_rc keeps fn's own
 * failure apart from the decoder's. */
typedef struct graft_releasing_pieces {
    graft_piece_fn fn;
    void *arg;
    const graft_source *src;
    uint64_t released;       /* file bytes before this are done with */
    int fn_rc;               /* the consumer's own failure */
} graft_releasing_pieces;
int graft_releasing_piece(void *arg, const uint8_t *p, size_t n, uint64_t at);
typedef int (*graft_stream_fn)(const graft_model *m, const graft_tensor *t,
                               graft_piece_fn fn, void *arg, graft_ctx *ctx);
/* A check of t's stored bytes (a CRC) that the format left for later: see
 * graft_model.defer_checks. */
typedef int (*graft_check_fn)(const graft_model *m, const graft_tensor *t, graft_ctx *ctx);

struct graft_tensor {
    const char *name;        /* arena; unique within the model */
    graft_dtype dtype;
    uint32_t ndim;
    int64_t *shape;          /* arena; ndim entries, each >= 0 */
    uint64_t numel;          /* product of shape (1 for a scalar) */
    uint64_t nbytes;         /* numel * dtype size; strings: serialized size */

    /* Either a view into a mapped source... */
    const graft_source *src; /* file holding the elements; borrowed from the model */
    uint64_t offset;         /* byte offset of element 0 in src */
    int64_t *strides;        /* arena; in elements; NULL = row-major contiguous */
    bool big_endian;         /* elements stored most significant byte first */
    /* ...or bytes the format produces on demand (then src may be NULL). */
    graft_load_fn load;
    graft_stream_fn stream;  /* optional with load: the bytes in pieces */
    /* Optional: run before the bytes are handed out (graft_tensor_bytes,
     * graft_tensor__pieces); graft_tensor_view refuses such a tensor. */
    graft_check_fn check;

    uint64_t aux;            /* format-private: record index, file offset... */
    void *aux_ptr;           /* format-private; owned by the format state */
    const struct graft_layout *layout; /* role and layout from the file's structure
                                        * (layout/layout.h); arena; NULL = none */
    const graft_quant *quant; /* arena; quantization parameters, NULL when none */
    /* A member graft cannot read (a byte-string array, an object array, an
     * unknown dtype): its stored type ("numpy '|S3'"), arena; NULL for
     * every readable tensor.  Such a tensor has dtype GRAFT_DTYPE_INVALID,
     * nbytes = its stored bytes and no data graft hands out: a skeleton's
     * writer copies it as it is, and a plan needing it as a source fails. */
    const char *unsupported;
};

struct graft_model {
    graft_arena arena;               /* names, shapes, strides */
    char *path;                      /* as opened; owned */
    const struct graft_format *format;
    graft_tensor *tensors;           /* count entries, file order; owned */
    size_t count, cap;
    graft_source **sources;          /* nsources mapped files; [0] primary; owned */
    size_t nsources, srccap;
    graft_strmap index;              /* tensor name -> index; owned */
    void *state;                     /* format-private, e.g. for writers; owned */
    /* Opened with graft_model__open_deferred: a format may leave the
     * checksums of tensors' bytes to t->check, so that only the tensors
     * read are verified (a skeleton's kept ones, a source's used ones); the
     * rest are only replaced or ignored, their framing (bounds, sizes)
     * checked in open. */
    bool defer_checks;
    /* A thread runs the checks (core/verify.h): reads skip them. */
    bool verifying;
    void (*state_free)(void *state);
};

int graft_model__new(graft_model **out, const char *path, graft_ctx *ctx);
/* Map another file (shard, data file) that lives as long as the model. */
int graft_model__add_source(graft_model *m, const char *path,
                            const graft_source **out, graft_ctx *ctx);
/* Take ownership of an already opened source. */
int graft_model__own_source(graft_model *m, graft_source *src, graft_ctx *ctx);
/*
 * Append a tensor; name and shape are copied.  numel and nbytes are computed
 * with overflow checks.  Returns NULL with the error in ctx.  The returned
 * pointer is valid until the next graft_model__add.
 */
graft_tensor *graft_model__add(graft_model *m, const char *name, size_t name_len,
                               graft_dtype dtype, uint32_t ndim,
                               const int64_t *shape, graft_ctx *ctx);
/* Append a tensor graft cannot read (see graft_tensor.unsupported):
 * `stored` names its stored type, `stored_bytes` its size in the file. */
graft_tensor *graft_model__add_unsupported(graft_model *m, const char *name, size_t name_len,
                                           const char *stored, uint32_t ndim,
                                           const int64_t *shape, uint64_t stored_bytes,
                                           graft_ctx *ctx);
/* Set strides (elements) on t; copied into the arena. */
int graft_model__set_strides(graft_model *m, graft_tensor *t,
                             const int64_t *strides, graft_ctx *ctx);
/* Check the whole table (see top of file) and index names. */
int graft_model_validate(graft_model *m, graft_ctx *ctx);
/* Keep only tensors under "prefix." and strip it; error if none. */
int graft_model__select(graft_model *m, const char *prefix, graft_ctx *ctx);
/* t's row-major little-endian bytes handed to fn in order, in pieces of a
 * few MB, without holding the whole tensor: mapped bytes leave the resident
 * set after each piece, strided and big-endian views are gathered piece by
 * piece, decoded tensors stream when their format can (else they are
 * decoded whole, as graft_tensor_bytes does).  fn's error stops it. */
int graft_tensor__pieces(const graft_model *m, const graft_tensor *t, graft_piece_fn fn,
                         void *arg, graft_ctx *ctx);
/* Byte extent [lo, hi) of t's view relative to t->offset (hi=lo=0 if empty). */
int graft_tensor__extent(const graft_tensor *t, int64_t *lo, int64_t *hi,
                         graft_ctx *ctx);

#endif
