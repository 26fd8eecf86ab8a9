/*
 * graft.h - the public API of libgraft.
 *
 * libgraft reads the tensors of model files of many frameworks without running
 * any code they hold, and writes trained weights into a skeleton model file of
 * another framework.  The library never prints and never exits: every fallible
 * call returns a graft_status and leaves a one-line message in its graft_ctx.
 *
 * Worked example: list the tensors of a file.
 *
 *     graft_ctx *ctx = graft_ctx_new();
 *     graft_model *m = NULL;
 *     if (graft_model_open(&m, "model.pth", NULL, ctx) < 0) {
 *         fprintf(stderr, "%s\n", graft_ctx_message(ctx));
 *     } else {
 *         for (size_t i = 0; i < graft_model_count(m); i++) {
 *             const graft_tensor *t = graft_model_tensor(m, i);
 *             printf("%s %s\n", graft_tensor_name(t),
 *                    graft_dtype_name(graft_tensor_dtype(t)));
 *         }
 *     }
 *     graft_model_free(m);
 *     graft_ctx_free(ctx);
 *
 * Ownership: a `**out` result belongs to the caller and is freed with the
 * matching *_free function (all accept NULL).  A pointer returned by a getter
 * is borrowed and lives as long as its parent object.
 */
#ifndef GRAFT_H
#define GRAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GRAFT_VERSION "0.1.0"

/** Status codes: 0 on success, negative on failure. */
typedef enum graft_status {
    GRAFT_OK = 0,
    GRAFT_ERROR = -1,      /**< anything not covered below */
    GRAFT_ENOTFOUND = -2,  /**< a file, member, tensor or key does not exist */
    GRAFT_EFORMAT = -3,    /**< a valid file of a kind graft does not support */
    GRAFT_ECORRUPT = -4,   /**< malformed input: truncated, inconsistent, hostile */
    GRAFT_ELIMIT = -5,     /**< input exceeds a safety cap (header size, ndim...) */
    GRAFT_ESHAPE = -6,     /**< shapes or dtypes do not agree */
    GRAFT_ERULE = -7,      /**< a rules file is wrong */
    GRAFT_EIO = -8,        /**< the operating system refused a read or write */
    GRAFT_ENOMEM = -9,     /**< out of memory */
    GRAFT_EUNSAFE = -10,   /**< input asks for code execution (pickle global) */
} graft_status;

/** Element types.  Names (graft_dtype_name) are part of the CLI contract. */
typedef enum graft_dtype {
    GRAFT_DTYPE_INVALID = 0,
    GRAFT_FLOAT16,
    GRAFT_BFLOAT16,
    GRAFT_FLOAT32,
    GRAFT_FLOAT64,
    GRAFT_INT8,
    GRAFT_INT16,
    GRAFT_INT32,
    GRAFT_INT64,
    GRAFT_UINT8,
    GRAFT_UINT16,
    GRAFT_UINT32,
    GRAFT_UINT64,
    GRAFT_BOOL,       /**< one byte per element, 0 or 1 */
    GRAFT_COMPLEX64,  /**< two float32, real first */
    GRAFT_COMPLEX128, /**< two float64, real first */
    GRAFT_STRING,     /**< variable-size elements; bytes are format-serialized */
    GRAFT_DTYPE_COUNT
} graft_dtype;

/** "float32", "bfloat16", ...; "invalid" for an unknown value. */
const char *graft_dtype_name(graft_dtype dt);
/** Parse a dtype name; GRAFT_DTYPE_INVALID when unknown. */
graft_dtype graft_dtype_from_name(const char *name);
/** Bytes per element; 0 for GRAFT_STRING and invalid values. */
size_t graft_dtype_size(graft_dtype dt);

/* ------------------------------------------------------------------ */
/* Context: error state, limits, allocation-failure injection.         */

typedef struct graft_ctx graft_ctx;

/** A new context, or NULL when out of memory.  Free with graft_ctx_free. */
graft_ctx *graft_ctx_new(void);
void graft_ctx_free(graft_ctx *ctx);
/** The message of the last failure ("" when none); borrowed. */
const char *graft_ctx_message(const graft_ctx *ctx);
/** The code of the last failure (GRAFT_OK when none). */
int graft_ctx_status(const graft_ctx *ctx);
/** Forget the last failure. */
void graft_ctx_clear(graft_ctx *ctx);

/* ------------------------------------------------------------------ */
/* Models and tensors.                                                 */

typedef struct graft_model graft_model;
typedef struct graft_tensor graft_tensor;

typedef struct graft_open_options {
    unsigned int version;  /**< GRAFT_OPEN_OPTIONS_VERSION */
    const char *format;    /**< force a format by name ("safetensors"), NULL = detect */
    const char *select;    /**< dotted sub-tree of a nested checkpoint, NULL = all */
} graft_open_options;

#define GRAFT_OPEN_OPTIONS_VERSION 1
#define GRAFT_OPEN_OPTIONS_INIT {GRAFT_OPEN_OPTIONS_VERSION, NULL, NULL}

/**
 * Open a model file read-only and fill its tensor table.  Tensor bytes are
 * not read: they stay in the mapped file until asked for.
 *
 * @param[out] out   the model; free with graft_model_free
 * @param path       the file (or folder, for formats stored as folders)
 * @param opts       NULL for defaults
 * @return GRAFT_OK, or a negative graft_status with the message in ctx
 */
int graft_model_open(graft_model **out, const char *path,
                     const graft_open_options *opts, graft_ctx *ctx);
void graft_model_free(graft_model *m);

/** Name of the format that read the model ("pytorch-zip", ...). */
const char *graft_model_format(const graft_model *m);
/** The path given to graft_model_open. */
const char *graft_model_path(const graft_model *m);
size_t graft_model_count(const graft_model *m);
/** Tensor i in file order, i < graft_model_count(m). */
const graft_tensor *graft_model_tensor(const graft_model *m, size_t i);
/** The tensor with this exact name, or NULL. */
const graft_tensor *graft_model_find(const graft_model *m, const char *name);

const char *graft_tensor_name(const graft_tensor *t);
graft_dtype graft_tensor_dtype(const graft_tensor *t);
uint32_t graft_tensor_ndim(const graft_tensor *t);
/** ndim dimensions, outermost first; borrowed. */
const int64_t *graft_tensor_shape(const graft_tensor *t);
uint64_t graft_tensor_numel(const graft_tensor *t);
/** Size of the row-major little-endian element bytes. */
uint64_t graft_tensor_nbytes(const graft_tensor *t);

/**
 * The tensor's elements in row-major order, little-endian, bool one byte
 * per element.  When the file holds them that way already, *out points into
 * the mapped file and *owned is NULL (no copy); otherwise they are gathered
 * into a buffer returned in *owned, which the caller frees with free().
 */
int graft_tensor_bytes(const graft_model *m, const graft_tensor *t,
                       const uint8_t **out, void **owned, graft_ctx *ctx);

/**
 * Quantization parameters a format stores with a tensor (TFLite): real value
 * = scale[c] * (q - zero_point[c]), c the index along `axis` (per-channel) or
 * 0 (per-tensor, nscale == 1).  Borrowed; lives as long as the model.
 */
typedef struct graft_quant {
    size_t nscale;             /**< entries in scale; >= 1 */
    const float *scale;        /**< nscale scales */
    size_t nzero;              /**< entries in zero_point (0 when the file has none) */
    const int64_t *zero_point; /**< nzero zero points */
    int32_t axis;              /**< the quantized dimension */
} graft_quant;

/** The tensor's quantization parameters, or NULL when it has none. */
const graft_quant *graft_tensor_quant(const graft_tensor *t);

/** SHA-256 of graft_tensor_bytes(); out receives 32 bytes. */
int graft_tensor_sha256(const graft_model *m, const graft_tensor *t,
                        uint8_t out[32], graft_ctx *ctx);

/** Names of the formats compiled in, NULL-terminated; borrowed. */
const char *const *graft_format_names(void);

#ifdef __cplusplus
}
#endif
#endif /* GRAFT_H */
