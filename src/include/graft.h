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
 * Worked example: the whole transplant (examples/list_and_transplant.c).
 *
 *     graft_rules *r = NULL;
 *     graft_plan *p = NULL;
 *     graft_plan_options po = GRAFT_PLAN_OPTIONS_INIT;  // .reverse, .strict, formats
 *     graft_apply_options ao = GRAFT_APPLY_OPTIONS_INIT; // .progress, .cancel, .manifest
 *     if (graft_rules_load(&r, "resnet18.yaml", ctx) < 0 ||
 *         graft_plan_open(&p, r, "model.pth", "skeleton.h5", &po, ctx) < 0)
 *         fail(graft_ctx_message(ctx));
 *     for (size_t i = 0; i < graft_plan_count(p); i++)   // pairs, ops, why
 *         ... graft_plan_entry_status(p, i), graft_plan_entry_message(p, i) ...
 *     if (graft_plan_apply(p, "trained.h5", &ao, NULL, ctx) < 0)  // GRAFT_EPLAN when
 *         fail(graft_ctx_message(ctx));                          // the plan is incomplete
 *     graft_plan_free(p);   // the plan owns the models it opened
 *     graft_rules_free(r);  // after every plan that uses the rules
 *
 * Ownership: a `**out` result belongs to the caller and is freed with the
 * matching *_free function (all accept NULL), or with graft_free() (or
 * free()) where a function says so (text and bytes it returns).  A pointer returned by a getter is
 * borrowed and lives as long as its parent object: tensors and ops of a plan
 * as long as the plan, rule file names as long as the rules.  A plan borrows
 * its rules, which must outlive it.  Objects are not locked: use one from
 * one thread at a time (different objects may be used in parallel, each
 * with its own graft_ctx).
 *
 * Stability: every option struct starts with a `version` set by its *_INIT
 * macro; later versions only add fields at the end, so code built against
 * an older header keeps working.  Status codes and dtype names only grow.
 */
#ifndef GRAFT_H
#define GRAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Symbols of the shared library are hidden unless declared here with
 * GRAFT_EXTERN: `nm -D --defined-only libgraft.so` lists exactly this API.
 */
#if defined(__GNUC__) || defined(__clang__)
#define GRAFT_EXTERN __attribute__((visibility("default")))
#else
#define GRAFT_EXTERN
#endif

/* The version of this header; graft_version() gives the library's.  The
 * soname changes with GRAFT_VERSION_MAJOR (0: the API may still change
 * between minor versions; each change is listed in the NEWS of its release). */
#define GRAFT_VERSION_MAJOR 0
#define GRAFT_VERSION_MINOR 1
#define GRAFT_VERSION_PATCH 0
#define GRAFT_VERSION "0.1.0"
#define GRAFT_VERSION_NUMBER \
    (GRAFT_VERSION_MAJOR * 10000 + GRAFT_VERSION_MINOR * 100 + GRAFT_VERSION_PATCH)

/** The library's version string ("0.1.0"), which may differ from GRAFT_VERSION
 * when a program runs against a newer shared library than it was built with. */
GRAFT_EXTERN const char *graft_version(void);
/** The library's GRAFT_VERSION_NUMBER. */
GRAFT_EXTERN unsigned graft_version_number(void);

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
    GRAFT_EPLAN = -11,     /**< the plan is incomplete: nothing was written */
    GRAFT_ECANCELED = -12, /**< the caller's cancel flag was set: nothing was written */
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
    GRAFT_FLOAT8_E4M3FN, /**< 1 sign, 4 exponent (bias 7), 3 mantissa; no Inf, NaN = S.1111.111 */
    GRAFT_FLOAT8_E5M2,   /**< 1 sign, 5 exponent (bias 15), 2 mantissa; IEEE Inf and NaN */
    GRAFT_DTYPE_COUNT
} graft_dtype;

/** "float32", "bfloat16", ...; "invalid" for an unknown value. */
GRAFT_EXTERN const char *graft_dtype_name(graft_dtype dt);
/** Parse a dtype name; GRAFT_DTYPE_INVALID when unknown. */
GRAFT_EXTERN graft_dtype graft_dtype_from_name(const char *name);
/** Bytes per element; 0 for GRAFT_STRING and invalid values. */
GRAFT_EXTERN size_t graft_dtype_size(graft_dtype dt);

/* ------------------------------------------------------------------ */
/* Context: error state, limits, allocation-failure injection.         */

typedef struct graft_ctx graft_ctx;

/** A new context, or NULL when out of memory.  Free with graft_ctx_free. */
GRAFT_EXTERN graft_ctx *graft_ctx_new(void);
GRAFT_EXTERN void graft_ctx_free(graft_ctx *ctx);
/** The message of the last failure ("" when none); borrowed. */
GRAFT_EXTERN const char *graft_ctx_message(const graft_ctx *ctx);
/** The code of the last failure (GRAFT_OK when none). */
GRAFT_EXTERN int graft_ctx_status(const graft_ctx *ctx);
/** Forget the last failure. */
GRAFT_EXTERN void graft_ctx_clear(graft_ctx *ctx);
/**
 * Memory budget of the op chains run with this context (apply, convert):
 * a permute (or a chain that composes to one) that reads a source tensor
 * larger than half of `bytes` out of order runs in column bands or in two
 * passes through a temporary file beside the output, so that only a few
 * blocks of it are resident; smaller tensors are permuted from the mapped
 * file (the other half is for the buffers).  0 (the default):
 * 64 MiB.  Peak memory does not grow with tensor size either way.
 */
GRAFT_EXTERN void graft_ctx_set_memory_budget(graft_ctx *ctx, uint64_t bytes);
/**
 * Whether outputs written with this context are flushed to the disk
 * (fsync) before they are renamed into place: 1 (the default) or 0.
 * Either way an output appears whole or not at all to other programs; with
 * 0, a power loss or system crash soon after may leave it empty or partial,
 * as after cp, in return for not waiting for the disk.
 */
GRAFT_EXTERN void graft_ctx_set_sync(graft_ctx *ctx, int sync);

/**
 * Remove the named temporary files of outputs being written right now.
 * Outputs are written to a temporary file (unnamed where the system has
 * O_TMPFILE) and renamed into place; call this from a SIGTERM/SIGINT handler
 * so a killed program leaves no ".<name>.graft-XXXXXX" behind.  Only calls
 * unlink(), so it is async-signal-safe.
 */
GRAFT_EXTERN void graft_unlink_temporaries(void);

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
GRAFT_EXTERN int graft_model_open(graft_model **out, const char *path,
                     const graft_open_options *opts, graft_ctx *ctx);
GRAFT_EXTERN void graft_model_free(graft_model *m);

/** Name of the format that read the model ("pytorch-zip", ...). */
GRAFT_EXTERN const char *graft_model_format(const graft_model *m);
/** The path given to graft_model_open. */
GRAFT_EXTERN const char *graft_model_path(const graft_model *m);
GRAFT_EXTERN size_t graft_model_count(const graft_model *m);
/** Tensor i in file order, i < graft_model_count(m). */
GRAFT_EXTERN const graft_tensor *graft_model_tensor(const graft_model *m, size_t i);
/** The tensor with this exact name, or NULL. */
GRAFT_EXTERN const graft_tensor *graft_model_find(const graft_model *m, const char *name);

GRAFT_EXTERN const char *graft_tensor_name(const graft_tensor *t);
GRAFT_EXTERN graft_dtype graft_tensor_dtype(const graft_tensor *t);
GRAFT_EXTERN uint32_t graft_tensor_ndim(const graft_tensor *t);
/** ndim dimensions, outermost first; borrowed. */
GRAFT_EXTERN const int64_t *graft_tensor_shape(const graft_tensor *t);
GRAFT_EXTERN uint64_t graft_tensor_numel(const graft_tensor *t);
/** Size of the row-major little-endian element bytes. */
GRAFT_EXTERN uint64_t graft_tensor_nbytes(const graft_tensor *t);

/**
 * The tensor's elements in row-major order, little-endian, bool one byte
 * per element.  When the file holds them that way already, *out points into
 * the mapped file and *owned is NULL (no copy); otherwise they are gathered
 * into a buffer returned in *owned, which the caller frees with free().
 */
GRAFT_EXTERN int graft_tensor_bytes(const graft_model *m, const graft_tensor *t,
                       const uint8_t **out, void **owned, graft_ctx *ctx);

/**
 * Where t's elements lie in the mapped file, for callers that look at them in
 * place without a copy (NumPy arrays over the file): *data receives element
 * 0's address in read-only memory borrowed from the model (valid until
 * graft_model_free; never write through it), and strides, an array of
 * graft_tensor_ndim(t) entries the caller provides, each dimension's step in
 * bytes (0 for dimensions of one element; negative steps are possible).
 * Elements are of graft_tensor_dtype(t), little-endian, bool one byte each.
 * @return true; false, with *data NULL, when t's elements are not stored
 *         that way (compressed or decoded records, big-endian data, strings,
 *         empty tensors): read them with graft_tensor_bytes
 */
GRAFT_EXTERN bool graft_tensor_view(const graft_model *m, const graft_tensor *t,
                                    const uint8_t **data, int64_t *strides);

/**
 * How t's bytes encode its values when they are not plain elements of its
 * dtype, e.g. "ggml q8_0: blocks of 32 elements, 34 bytes each" for a GGUF
 * quantized tensor (listed as uint8 [..., blocks, block bytes]); NULL for
 * ordinary tensors.  Borrowed, static.
 */
GRAFT_EXTERN const char *graft_tensor_encoding(const graft_model *m, const graft_tensor *t);

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
GRAFT_EXTERN const graft_quant *graft_tensor_quant(const graft_tensor *t);

/**
 * The stored type of a tensor graft lists but cannot read ("numpy '|S3'"
 * for a byte-string array of an .npz), or NULL for every readable tensor.
 * Such a tensor's dtype is GRAFT_DTYPE_INVALID and graft_tensor_bytes() and
 * graft_tensor_sha256() refuse it (GRAFT_EFORMAT); in a skeleton it is
 * copied unchanged, as a source it is an error only when a target needs it.
 * Borrowed; lives as long as the model.
 */
GRAFT_EXTERN const char *graft_tensor_unsupported(const graft_tensor *t);

/** SHA-256 of graft_tensor_bytes(); out receives 32 bytes. */
GRAFT_EXTERN int graft_tensor_sha256(const graft_model *m, const graft_tensor *t,
                        uint8_t out[32], graft_ctx *ctx);

/** Free memory the library handed over (text, gathered tensor bytes): the
 * same as free(), for callers that do not share this C library's allocator
 * (ctypes, other languages).  NULL is ignored. */
GRAFT_EXTERN void graft_free(void *p);

/** A SHA-256 digest as 64 lowercase hex digits and a NUL. */
GRAFT_EXTERN void graft_sha256_hex(const uint8_t digest[32], char out[65]);

/** Names of the formats compiled in, NULL-terminated; borrowed. */
GRAFT_EXTERN const char *const *graft_format_names(void);

/* ------------------------------------------------------------------ */
/* Rules files (man 5 graft-rules).                                    */

typedef struct graft_rules graft_rules;

/**
 * Load and check a rules file: YAML, known keys and types, regexes compile,
 * ops well-formed, includes resolve.  Errors name "<file>:<line>:<col>".
 *
 * @param[out] out  the rules; free with graft_rules_free
 * @return GRAFT_OK; GRAFT_ERULE for a wrong file, GRAFT_ENOTFOUND / GRAFT_EIO
 *         when it cannot be read, GRAFT_ELIMIT past the size caps
 */
GRAFT_EXTERN int graft_rules_load(graft_rules **out, const char *path, graft_ctx *ctx);
/** The same from memory (not copied past the call); `name` is used in
 * messages and `include:` is refused. */
GRAFT_EXTERN int graft_rules_load_buffer(graft_rules **out, const char *name, const char *data,
                                         size_t size, graft_ctx *ctx);
GRAFT_EXTERN void graft_rules_free(graft_rules *r);
/** The path (or name) the rules were loaded from; borrowed. */
GRAFT_EXTERN const char *graft_rules_path(const graft_rules *r);
/** The `select:` sub-tree of the source, NULL when absent; borrowed. */
GRAFT_EXTERN const char *graft_rules_select(const graft_rules *r);

/** What graft_rules_count counts. */
typedef enum graft_rules_item {
    GRAFT_RULES_SOURCE_RENAMES,
    GRAFT_RULES_TARGET_RENAMES,
    GRAFT_RULES_PAIRS,
    GRAFT_RULES_TRANSFORMS,
    GRAFT_RULES_SOURCE_IGNORES,
    GRAFT_RULES_TARGET_IGNORES,
} graft_rules_item;

/** Entries of one kind, includes merged; 0 for an unknown kind. */
GRAFT_EXTERN size_t graft_rules_count(const graft_rules *r, graft_rules_item what);

/* ------------------------------------------------------------------ */
/* The shipped rules library: <dir>/<from>-to-<to>/<family>.yaml files.  */

typedef struct graft_rules_library graft_rules_library;

/**
 * Read every <dir>/<direction>/<family>.yaml of the folders, in order
 * (missing folders are skipped; a relative name found in several folders is
 * taken from the first).  A file that does not load fails the scan.
 * @param[out] out  free with graft_rules_library_free
 */
GRAFT_EXTERN int graft_rules_library_scan(graft_rules_library **out, const char *const *dirs,
                                          size_t ndirs, graft_ctx *ctx);
GRAFT_EXTERN void graft_rules_library_free(graft_rules_library *lib);
/** Files in the library, sorted by name. */
GRAFT_EXTERN size_t graft_rules_library_count(const graft_rules_library *lib);

/** What graft_rules_library_get returns of a file. */
typedef enum graft_rules_field {
    GRAFT_RULES_FIELD_PATH,        /**< the file */
    GRAFT_RULES_FIELD_NAME,        /**< "torch-to-keras/resnet18": folder-relative, no .yaml */
    GRAFT_RULES_FIELD_DIRECTION,   /**< its folder: "torch-to-keras" */
    GRAFT_RULES_FIELD_TITLE,       /**< its `name:`, or "" */
    GRAFT_RULES_FIELD_DESCRIPTION, /**< its `description:`, whitespace collapsed, or "" */
} graft_rules_field;

/** A field of file i < graft_rules_library_count(lib); borrowed from the library. */
GRAFT_EXTERN const char *graft_rules_library_get(const graft_rules_library *lib, size_t i,
                                                 graft_rules_field what);

/** One rules file of a library planned against two models. */
typedef struct graft_rules_match {
    size_t entry;       /**< index in the library */
    const char *name;   /**< its name (borrowed from the library) */
    size_t filled;      /**< skeleton tensors filled from the source */
    size_t targets;     /**< skeleton tensors */
    size_t unused;      /**< source tensors no target uses (ignored ones left out) */
    size_t warnings;    /**< plan warnings */
    size_t errors;      /**< plan errors: 0 = the file fills the skeleton completely */
} graft_rules_match;

/**
 * Plan every file of the library from `source` onto `skeleton` (reverse: in
 * the files' opposite direction).  *out receives the complete fills (errors
 * 0), best first: most tensors filled, then fewest unused sources, then
 * fewest warnings, then by name.  The open options (NULL: detect) open the
 * two models; a file's `select:` narrows the source as in graft_plan_open.
 * @param[out] out  n matches; free with graft_free
 */
GRAFT_EXTERN int graft_rules_library_match(const graft_rules_library *lib, const char *source,
                                           const graft_open_options *src_opts,
                                           const char *skeleton,
                                           const graft_open_options *skel_opts, bool reverse,
                                           graft_rules_match **out, size_t *n, graft_ctx *ctx);

/* ------------------------------------------------------------------ */
/* Plans: which source tensors fill each skeleton tensor, through which ops. */

typedef struct graft_plan graft_plan;
typedef struct graft_op graft_op;

typedef struct graft_plan_options {
    unsigned int version;         /**< GRAFT_PLAN_OPTIONS_VERSION */
    /**
     * The rules were written for the opposite direction: renames, pairs,
     * ignore lists and policies swap sides and op chains are inverted.  With
     * rules that `select:` a sub-tree, that sub-tree of the skeleton is planned
     * (graft_plan_target) and graft_plan_apply still writes the whole skeleton.
     */
    bool reverse;
    /** Every warning is an error (rules that matched nothing, a source
     * feeding several targets, unused sources...): reported as an error by
     * graft_plan_problem and counted by graft_plan_errors. */
    bool strict;
    const char *source_format;    /**< graft_plan_open: force a format, NULL = detect */
    const char *skeleton_format;  /**< graft_plan_open: force a format, NULL = detect */
    /** graft_plan_open: the source's sub-tree; NULL = the rules' `select:`. */
    const char *select;
} graft_plan_options;

#define GRAFT_PLAN_OPTIONS_VERSION 1
#define GRAFT_PLAN_OPTIONS_INIT {.version = GRAFT_PLAN_OPTIONS_VERSION}

/**
 * Open both models read-only and plan the transplant: pair every skeleton
 * tensor with its source(s) through `rules`, choose each pair's op chain and
 * check shapes and dtypes.  Problems of the plan itself (missing targets,
 * mismatches, bad chains, `expect:` not met) do not fail the call: they are
 * counted by graft_plan_errors and described by the getters below.
 *
 * @param[out] out  the plan, owning both models; free with graft_plan_free
 * @param rules     NULL pairs tensors by identical names, with no ops; borrowed,
 *                  must outlive the plan
 * @param opts      NULL for defaults
 * @return GRAFT_OK, or the failure opening a model (file and problem in ctx),
 *         GRAFT_ENOMEM, GRAFT_ERULE when a rule breaks while applied
 */
GRAFT_EXTERN int graft_plan_open(graft_plan **out, const graft_rules *rules, const char *source,
                                 const char *skeleton, const graft_plan_options *opts,
                                 graft_ctx *ctx);
/**
 * The same over models already open (borrowed: they and the rules must outlive
 * the plan).  The format and select options are not used, and a reversed
 * `select:` is not applied: open the skeleton's sub-tree yourself.
 */
GRAFT_EXTERN int graft_plan_build(graft_plan **out, const graft_rules *rules,
                                  const graft_model *source, const graft_model *skeleton,
                                  const graft_plan_options *opts, graft_ctx *ctx);
GRAFT_EXTERN void graft_plan_free(graft_plan *p);

/** Status of one planned skeleton tensor. */
typedef enum graft_plan_status {
    GRAFT_PLAN_OK = 0,   /**< paired; shape and dtype agree after the ops */
    GRAFT_PLAN_MISSING,  /**< no source (an error under policy missing: error) */
    GRAFT_PLAN_KEPT,     /**< the skeleton's value stays (policy keep, ignored target) */
    GRAFT_PLAN_MISMATCH, /**< shape or dtype differs after the ops */
    GRAFT_PLAN_ERROR,    /**< the pair or its op chain is wrong (see the message) */
} graft_plan_status;

/** "ok", "missing", "kept", "mismatch", "error". */
GRAFT_EXTERN const char *graft_plan_status_name(graft_plan_status s);

/** The source model tensors are read from; borrowed from the plan. */
GRAFT_EXTERN const graft_model *graft_plan_source(const graft_plan *p);
/** The model the entries describe: the skeleton, or its selected sub-tree
 * (reverse with `select:`); borrowed. */
GRAFT_EXTERN const graft_model *graft_plan_target(const graft_plan *p);
/** The whole skeleton, as graft_plan_apply writes it; borrowed. */
GRAFT_EXTERN const graft_model *graft_plan_skeleton(const graft_plan *p);
/** Errors that keep the plan from being applied; 0 = complete. */
GRAFT_EXTERN size_t graft_plan_errors(const graft_plan *p);

/** Entries: one per tensor of graft_plan_target(), in its order. */
GRAFT_EXTERN size_t graft_plan_count(const graft_plan *p);
/** The entry of a target tensor by name (with or without the selected
 * sub-tree's prefix), or SIZE_MAX. */
GRAFT_EXTERN size_t graft_plan_index(const graft_plan *p, const char *target_name);
/* Getters of entry i < graft_plan_count(p); pointers are borrowed from the plan. */
GRAFT_EXTERN graft_plan_status graft_plan_entry_status(const graft_plan *p, size_t i);
GRAFT_EXTERN const graft_tensor *graft_plan_entry_target(const graft_plan *p, size_t i);
/** Source tensors feeding entry i (several when its chain starts with concat). */
GRAFT_EXTERN size_t graft_plan_entry_nsources(const graft_plan *p, size_t i);
GRAFT_EXTERN const graft_tensor *graft_plan_entry_source(const graft_plan *p, size_t i, size_t k);
/** The op chain run on the sources (already inverted when reversed). */
GRAFT_EXTERN size_t graft_plan_entry_nops(const graft_plan *p, size_t i);
GRAFT_EXTERN const graft_op *graft_plan_entry_op(const graft_plan *p, size_t i, size_t k);
/** The target's name after the renames (what it was paired by). */
GRAFT_EXTERN const char *graft_plan_entry_key(const graft_plan *p, size_t i);
/** Why the status is not ok (one line), or NULL. */
GRAFT_EXTERN const char *graft_plan_entry_message(const graft_plan *p, size_t i);
/** true when the target matches an `ignore:` pattern. */
GRAFT_EXTERN bool graft_plan_entry_ignored(const graft_plan *p, size_t i);

/** The rules that decided an entry. */
typedef enum graft_rule_kind {
    GRAFT_RULE_PAIR,      /**< the explicit `pairs:` entry (none: paired by renamed name) */
    GRAFT_RULE_TRANSFORM, /**< the `transforms:` entry whose ops were chosen */
} graft_rule_kind;

/**
 * Where the rule of that kind behind entry i was written: *file (borrowed
 * from the rules) and *line.  false when no such rule decided the entry.
 */
GRAFT_EXTERN bool graft_plan_entry_rule(const graft_plan *p, size_t i, graft_rule_kind kind,
                                        const char **file, unsigned *line);

/** Skeleton tensors without a source (missing or kept). */
GRAFT_EXTERN size_t graft_plan_missing_count(const graft_plan *p);
GRAFT_EXTERN const graft_tensor *graft_plan_missing(const graft_plan *p, size_t k);
/** Source tensors that feed nothing (ignored ones left out). */
GRAFT_EXTERN size_t graft_plan_unused_count(const graft_plan *p);
GRAFT_EXTERN const graft_tensor *graft_plan_unused(const graft_plan *p, size_t k);
/** Findings about the plan as a whole (unused sources, `expect:` not met),
 * in the order found: the message, and whether it is an error (else a warning). */
GRAFT_EXTERN size_t graft_plan_problem_count(const graft_plan *p);
GRAFT_EXTERN const char *graft_plan_problem(const graft_plan *p, size_t k, bool *is_error);

/** A receiver of one-line messages (one call per problem found). */
typedef void (*graft_message_fn)(const char *message, void *payload);

/**
 * Check that the renames are one to one on the actual names, as a reversed
 * apply needs: each renamed name unique on its side, no source feeding two
 * targets (except through take).  Calls fn for each problem.
 * @param[out] nproblems  how many were found
 * @return GRAFT_OK (problems are not failures) or GRAFT_ENOMEM
 */
GRAFT_EXTERN int graft_plan_check_one_to_one(const graft_plan *p, graft_message_fn fn,
                                             void *payload, size_t *nproblems, graft_ctx *ctx);

/**
 * The plan as JSON (what `graft plan --json` prints, man graft(1)):
 * {"pairs": [{"target", "sources", "ops", "source_shape", "target_shape",
 * "dtype", "source_dtype", "status", "transform": "file:line",
 * "pair": "file:line", "message"}], "missing", "unused", "warnings",
 * "problems", "errors"}; warnings and problems are strings, except a
 * layout finding: {"kind": "layout", "target", "source", "expected",
 * "actual", "rule", "message"}.
 * @param[out] out  NUL-terminated text; free with free()
 */
GRAFT_EXTERN int graft_plan_json(char **out, const graft_plan *p, graft_ctx *ctx);
/**
 * The trace behind one target tensor (what `graft explain` prints): each
 * rename that changed its name and its sources' (rule file:line), the
 * pairing, the transform chosen and the shape after each op, then the
 * layout section: each side's role, layout and certainty and whether the
 * ops move the elements as the two layouts call for.
 * @param[out] out  text, one line each; free with free()
 * @return GRAFT_ENOTFOUND when name is no target tensor (the message names
 *         the targets it feeds when it is a source)
 */
GRAFT_EXTERN int graft_plan_explain(char **out, const graft_plan *p, const char *name,
                                    graft_ctx *ctx);

/* ------------------------------------------------------------------ */
/* Ops (the `ops:` of a rules file).                                   */

/**
 * The op as in a rules file, in JSON: {"permute": [2, 3, 1, 0]}, "transpose",
 * {"take": {"axis": 0, "count": 2, "index": 1}}, ...
 * @param[out] out  free with free()
 */
GRAFT_EXTERN int graft_op_json(char **out, const graft_op *op, graft_ctx *ctx);
/** The rules file and line the op was written at (*file NULL when none). */
GRAFT_EXTERN void graft_op_where(const graft_op *op, const char **file, unsigned *line);

/* ------------------------------------------------------------------ */
/* Applying a plan.                                                    */

/** Called after each skeleton tensor is written: tensors done of total, and
 * the bytes written so far.  It must not free anything the apply uses. */
typedef void (*graft_progress_fn)(size_t done, size_t total, uint64_t bytes, void *payload);

typedef struct graft_apply_options {
    unsigned int version;        /**< GRAFT_APPLY_OPTIONS_VERSION */
    graft_progress_fn progress;  /**< NULL: none */
    void *payload;               /**< given to progress */
    /** Checked between tensors: non-zero stops the apply with GRAFT_ECANCELED
     * and nothing written (set it from another thread or a signal handler). */
    const volatile int *cancel;
    /** Also write the JSON provenance record here (atomically), NULL: none. */
    const char *manifest;
    /** The rules file, refused as an output and hashed into the manifest;
     * NULL: graft_rules_path() of the plan's rules. */
    const char *rules_path;
} graft_apply_options;

#define GRAFT_APPLY_OPTIONS_VERSION 1
#define GRAFT_APPLY_OPTIONS_INIT {.version = GRAFT_APPLY_OPTIONS_VERSION}

/** What graft_plan_apply wrote. */
typedef struct graft_apply_stats {
    size_t tensors;       /**< skeleton tensors written */
    size_t transplanted;  /**< of them filled from the source */
    size_t kept;          /**< of them with the skeleton's own bytes */
    uint64_t bytes;       /**< tensor bytes written */
} graft_apply_stats;

/**
 * The output path used when none is given: "dir/x.safetensors" ->
 * "dir/x.grafted.safetensors", "x" -> "x.grafted", "folder/" -> "folder.grafted".
 * @param[out] out  free with free()
 */
GRAFT_EXTERN int graft_default_output(char **out, const char *skeleton, graft_ctx *ctx);
/**
 * Refuse outputs that would overwrite an input: out_path or manifest (may be
 * NULL) naming any file the plan's models were read from, the rules file,
 * or each other.  graft_plan_apply checks this too; call it to fail early.
 * @return GRAFT_OK or GRAFT_EIO with the path named
 */
GRAFT_EXTERN int graft_check_outputs(const graft_plan *p, const char *out_path,
                                     const char *manifest, const char *rules_path,
                                     graft_ctx *ctx);
/**
 * Write the skeleton's format to out_path with every entry's source run
 * through its op chain, every other tensor and everything else the skeleton
 * holds kept.  Written to a temporary file renamed into place: on failure
 * nothing is left at out_path.  Sources and skeletons are never modified.
 *
 * @param opts       NULL for defaults
 * @param[out] stats may be NULL
 * @return GRAFT_OK; GRAFT_EPLAN when graft_plan_errors(p) > 0; GRAFT_ECANCELED;
 *         GRAFT_EFORMAT when the skeleton's format cannot be written; the
 *         failure reading, converting or writing, tensor named in ctx
 */
GRAFT_EXTERN int graft_plan_apply(const graft_plan *p, const char *out_path,
                                  const graft_apply_options *opts, graft_apply_stats *stats,
                                  graft_ctx *ctx);

/* ------------------------------------------------------------------ */
/* Comparing two models through a plan (`graft diff`).                 */

typedef struct graft_diff_result {
    bool numeric;      /**< compared as numbers in float64: max_abs is set */
    double max_abs;    /**< max |a - b|; INFINITY when a NaN meets a number */
    bool equal;        /**< every element equal (NaN == NaN) */
    uint64_t numel;    /**< elements compared */
    /** numeric: max |a - b| / |b| over the elements where b != 0 (numpy's
     * "max relative difference"); where every b is 0: 0 when equal, else
     * INFINITY.  The elements of b == 0 count in max_abs. */
    double max_rel;
} graft_diff_result;

/**
 * Compare target tensor i (of graft_plan_target, model B) with its sources
 * (of graft_plan_source, model A) run through its op chain.  Floats, integers
 * and bool compare as numbers (integers exactly), complex part by part,
 * strings byte for byte.  Entries whose shapes agree compare even when the
 * plan reports a dtype mismatch.
 * @return GRAFT_OK; GRAFT_ENOTFOUND when entry i has no source; GRAFT_ESHAPE
 *         when the shapes (or incomparable dtypes) differ, both named
 */
GRAFT_EXTERN int graft_plan_diff(const graft_plan *p, size_t i, graft_diff_result *out,
                                 graft_ctx *ctx);

/* ------------------------------------------------------------------ */
/* Freezing a TensorFlow graph (`graft freeze`).                       */

typedef struct graft_freeze_options {
    unsigned int version;          /**< GRAFT_FREEZE_OPTIONS_VERSION */
    const graft_rules *rules;      /**< map checkpoint names (source) to variables; NULL = same names */
    const char *checkpoint_format; /**< NULL = detect */
    graft_message_fn problem;      /**< called for each variable without a value; NULL = none */
    void *payload;                 /**< given to problem */
} graft_freeze_options;

#define GRAFT_FREEZE_OPTIONS_VERSION 1
#define GRAFT_FREEZE_OPTIONS_INIT {.version = GRAFT_FREEZE_OPTIONS_VERSION}

/**
 * What TensorFlow's freeze_graph does: write out_path, a GraphDef of the
 * nodes `outputs` need, with every variable turned into a Const holding its
 * value from `checkpoint` (any format graft reads), devices cleared.
 *
 * @param graph      a binary GraphDef, a .meta MetaGraphDef or a SavedModel
 * @param[out] nfrozen  variables frozen (may be NULL)
 * @return GRAFT_OK; GRAFT_EPLAN when a variable has no value (each reported
 *         to opts->problem; nothing written); GRAFT_ENOTFOUND for an output
 *         not in the graph; GRAFT_EFORMAT for a variable graft cannot freeze
 */
GRAFT_EXTERN int graft_freeze(const char *graph, const char *checkpoint,
                              const char *const *outputs, size_t noutputs, const char *out_path,
                              const graft_freeze_options *opts, size_t *nfrozen, graft_ctx *ctx);

/* ------------------------------------------------------------------ */
/* Converting a model to another container format (`graft convert`).   */

/** Values a model holds besides tensors (pickle scalars, metadata entries). */
typedef struct graft_extras {
    uint64_t count;          /**< how many */
    char summary[200];       /**< "2 ints, 1 string"; "" when count is 0 */
} graft_extras;

typedef struct graft_convert_options {
    unsigned int version;          /**< GRAFT_CONVERT_OPTIONS_VERSION */
    const char *to;                /**< target format name; NULL: from the output's extension */
    const char *rules_path;        /**< source-side renames, ignores and ops; NULL: names kept */
    const char *select;            /**< dotted sub-tree of the source; NULL: the rules' or all */
    const char *source_format;     /**< NULL: detect */
    const char *const *meta;       /**< GGUF: nmeta "KEY[:TYPE]=VALUE"; must set general.architecture */
    size_t nmeta;
    /** GGUF: "q8_0" or "q4_0" for float matrices whose rows hold whole blocks
     * (as llama.cpp quantizes); NULL: none */
    const char *quantize;
    /** GGUF sources: q8_0 / q4_0 tensors become float32 (ggml's
     * dequantize_row_*) before their ops */
    bool dequantize;
    /** safetensors: shard at this many bytes as huggingface_hub does (files
     * NAME-0000k-of-0000n.safetensors plus NAME.safetensors.index.json); 0: one file */
    uint64_t shard_size;
    bool strict;                   /**< refuse a source holding non-tensor values */
    const char *manifest;          /**< also write the JSON provenance record here; NULL: none */
    graft_progress_fn progress;    /**< after each tensor; NULL: none */
    void *progress_payload;
} graft_convert_options;

#define GRAFT_CONVERT_OPTIONS_VERSION 1
#define GRAFT_CONVERT_OPTIONS_INIT {.version = GRAFT_CONVERT_OPTIONS_VERSION}

/** What graft_convert wrote; free with graft_convert_result_free. */
typedef struct graft_convert_result {
    size_t tensors;                /**< written */
    size_t ignored;                /**< left out by the rules' source ignores */
    size_t quantized;              /**< written quantized */
    size_t dequantized;            /**< read from quantized blocks as float32 */
    uint64_t bytes;                /**< tensor bytes written */
    const char *format;            /**< the target format's name; static */
    char *out_path;                /**< the file written (the index of a sharded set) */
    graft_extras dropped;          /**< the source's non-tensor values, not written */
} graft_convert_result;

/**
 * Write every tensor of `source`, renamed and transformed by the source side
 * of a rules file, into a new file of a container format (safetensors,
 * sharded too; npz; npy; PyTorch zip state dict; GGUF).  No skeleton: the
 * format's writer lays the file out from the source's tensor table.
 *
 * @return GRAFT_OK; GRAFT_EFORMAT with nothing written when a renamed name
 *         repeats, an op chain does not fit its tensor, the target format
 *         cannot hold a dtype, the output is one of the inputs, or (strict)
 *         the source holds non-tensor values (naming them).  Each output
 *         file is written atomically.
 */
GRAFT_EXTERN int graft_convert(const char *source, const char *out_path,
                               const graft_convert_options *o, graft_convert_result *res,
                               graft_ctx *ctx);
GRAFT_EXTERN void graft_convert_result_free(graft_convert_result *res);
/** The target format's name for an output path's extension, or NULL. */
GRAFT_EXTERN const char *graft_convert_format_for(const char *out_path);
/** The formats graft_convert writes, NULL-terminated; borrowed, static. */
GRAFT_EXTERN const char *const *graft_convert_format_names(void);

/* ------------------------------------------------------------------ */
/* Statistics and the HTML report (`--html`).                          */

/** Histogram bins of graft_stats. */
#define GRAFT_STATS_BINS 32

/** What graft_tensor_statistics measures of one tensor. */
typedef struct graft_stats {
    bool numeric;        /**< a real dtype (not string or complex): the rest is set */
    uint64_t count;      /**< finite elements, which every figure below describes */
    uint64_t nan;        /**< NaN elements */
    uint64_t inf;        /**< infinite elements */
    double min, max;     /**< 0 when count is 0 */
    double mean;
    double std;          /**< population standard deviation (numpy's default, ddof 0) */
    /** numpy.histogram(x.astype(float64), GRAFT_STATS_BINS) of the finite
     * elements: equal bins over [min, max] (the last closed; min == max:
     * [min - 0.5, max + 0.5]) */
    uint64_t hist[GRAFT_STATS_BINS];
} graft_stats;

/**
 * Statistics of t's elements as numbers (floats exactly, integers and bool as
 * doubles), read twice in pieces of a few MB: memory stays flat whatever the
 * tensor's size (a decoded tensor of a format that cannot stream, HDF5 or a
 * protobuf field, is decoded whole, as apply does).
 * @return GRAFT_OK (out->numeric false for strings and complex); the
 *         failure reading the tensor
 */
GRAFT_EXTERN int graft_tensor_statistics(const graft_model *m, const graft_tensor *t,
                                         graft_stats *out, graft_ctx *ctx);

/** What graft_plan_html puts on the page beyond the plan. */
typedef struct graft_report_options {
    unsigned int version;     /**< GRAFT_REPORT_OPTIONS_VERSION */
    const char *title;        /**< the page's heading; NULL: "graft plan" (or "graft diff") */
    const char *command;      /**< the command line shown under it; NULL: none */
    bool stats;               /**< graft_tensor_statistics of every tensor of both models */
    /** graft_plan_diff of every entry: max abs and max rel error per target,
     * worst first (a "diff" page) */
    bool diff;
    /** One confidence in [0, 1] per entry (graft_plan_count), e.g. of rules
     * suggested for the pair (graft_suggest's certain 1, likely 0.75, guess
     * 0.25); NULL: none.  Borrowed for the call. */
    const double *confidence;
    /** Entries whose confidence is below this are "low-confidence"; 0: 0.5. */
    double low_confidence;
    /** One line per entry shown with it (e.g. why a suggestion was made),
     * NULL or a NULL line: none.  Borrowed for the call. */
    const char *const *notes;
} graft_report_options;

#define GRAFT_REPORT_OPTIONS_VERSION 1
#define GRAFT_REPORT_OPTIONS_INIT {.version = GRAFT_REPORT_OPTIONS_VERSION}

/**
 * Write one self-contained HTML page describing the plan (atomically, to
 * path): both models as collapsible trees of name segments with each
 * tensor's dtype, shape, role and layout; each target linked to its sources;
 * a status per tensor (ok, missing, unused, ignored, mismatch, layout
 * finding, low-confidence) with colours, a legend, counts and a filter; per
 * target the trace of graft_plan_explain; and, as the options ask,
 * statistics with histograms and the diff of every entry.  The page loads
 * nothing: no URL, no external file, no web font.
 * @param opts  NULL: the plan alone
 * @return GRAFT_OK; GRAFT_EIO when the page cannot be written; the failure
 *         reading a tensor (stats, diff), named
 */
GRAFT_EXTERN int graft_plan_html(const graft_plan *p, const char *path,
                                 const graft_report_options *opts, graft_ctx *ctx);

/* ------------------------------------------------------------------ */
/* Drafting a rules file from the two models (`graft suggest`).        */

typedef struct graft_suggest_options {
    unsigned int version;         /**< GRAFT_SUGGEST_OPTIONS_VERSION */
    const char *source_format;    /**< NULL = detect */
    const char *skeleton_format;  /**< NULL = detect */
} graft_suggest_options;

#define GRAFT_SUGGEST_OPTIONS_VERSION 1
#define GRAFT_SUGGEST_OPTIONS_INIT {.version = GRAFT_SUGGEST_OPTIONS_VERSION}

/** How sure a draft is of one skeleton tensor ("certain", "likely", "guess",
 * "unpaired" in JSON). */
typedef enum graft_confidence {
    /** one candidate consistent with names, shapes and structure (or a
     * tensor known to stay out: optimizer slot, step counter) */
    GRAFT_SUGGEST_CERTAIN = 0,
    GRAFT_SUGGEST_LIKELY,    /**< one best candidate by a clear margin */
    /** several candidates (paired by order alone), evidence that disagrees,
     * or a square matrix whose transpose rests on naming conventions alone */
    GRAFT_SUGGEST_GUESS,
    GRAFT_SUGGEST_UNPAIRED,  /**< no source found: the skeleton's value is kept */
} graft_confidence;

/** A drafted rules file with what it decided per skeleton tensor. */
typedef struct graft_suggestion graft_suggestion;

/**
 * Draft a rules file (format 1.1) that maps `skeleton` from `source`: pairs
 * from names (one vocabulary for the frameworks' words), kinds, shapes under
 * any layout change, file order and the files' structure; op chains from the
 * two layouts (src/layout); renames generalised into regexes with index
 * arithmetic, `pairs:` for the rest, `expect:` on every entry, a comment on
 * every entry that is not certain; optimizer slots and known extras under
 * `ignore:`.  The draft is checked before it is returned: it loads, the plan
 * it gives is complete and pairs what was decided (else GRAFT_ERROR naming
 * the first problem), and whether its renames are one to one and its
 * reverse plan complete is recorded (JSON "one_to_one", "reversible").
 * @param[out] out  free with graft_suggestion_free
 * @return GRAFT_OK, or the failure opening a model
 */
GRAFT_EXTERN int graft_suggest(graft_suggestion **out, const char *source, const char *skeleton,
                               const graft_suggest_options *opts, graft_ctx *ctx);
GRAFT_EXTERN void graft_suggestion_free(graft_suggestion *s);
/** The drafted rules file (YAML text); borrowed from the suggestion. */
GRAFT_EXTERN const char *graft_suggestion_rules(const graft_suggestion *s);
/** Skeleton tensors with confidence c (0 for an unknown c). */
GRAFT_EXTERN size_t graft_suggestion_count(const graft_suggestion *s, graft_confidence c);
/**
 * The suggestion as JSON (what `graft suggest --json` prints):
 * {"targets": [{"target", "sources": [...], "ops": [...], "confidence",
 * "reason"}], "rules": "<the YAML>", "entries": {"rename", "pairs",
 * "transforms"}, "one_to_one", "reversible"}; targets in skeleton order,
 * ops as in graft_op_json.
 * @param[out] out  free with free()
 */
GRAFT_EXTERN int graft_suggestion_json(char **out, const graft_suggestion *s, graft_ctx *ctx);
/** Write the rules file to path, atomically (a temporary file renamed). */
GRAFT_EXTERN int graft_suggestion_write(const graft_suggestion *s, const char *path,
                                        graft_ctx *ctx);
/**
 * The report page of graft_plan_html for the plan the draft's rules give,
 * each target with its confidence (guesses and unpaired targets shown as
 * low-confidence) and the reason, as `graft suggest --html` writes it.
 * @param command  the command line shown on the page; NULL: none
 */
GRAFT_EXTERN int graft_suggestion_html(const graft_suggestion *s, const char *path,
                                       const char *command, graft_ctx *ctx);

/* ------------------------------------------------------------------ */
/* JSON.                                                               */

/** The tensors of m as `graft ls --json` prints them, one per line:
 * [{"name", "dtype", "shape", "sha256", ["encoding",] ["quant",] "role",
 * "layout", "certainty", ["gates",] ["flatten",] ["layer",] ["op"]}].
 * @param[out] out free with free() */
GRAFT_EXTERN int graft_model_json(char **out, const graft_model *m, graft_ctx *ctx);

/* ------------------------------------------------------------------ */
/* Diffing every tensor (`graft diff`, also with --json).              */

/** What became of one tensor in graft_plan_diff_all. */
typedef enum graft_diff_status {
    GRAFT_DIFF_OK,        /**< compared: every element within the tolerance */
    GRAFT_DIFF_OVER,      /**< compared: some element outside it */
    GRAFT_DIFF_MISMATCH,  /**< not comparable: shapes or dtypes, or the pair's rules, are wrong */
    GRAFT_DIFF_ONLY_B,    /**< a tensor of B that nothing of A is paired with */
    GRAFT_DIFF_ONLY_A,    /**< a tensor of A that feeds nothing in B */
    /** a tensor of B stored in a dtype graft cannot read (graft_tensor_unsupported):
     * not compared, and nothing fills it */
    GRAFT_DIFF_SKIPPED,
} graft_diff_status;

/** "ok", "over", "mismatch", "only_b", "only_a", "skipped". */
GRAFT_EXTERN const char *graft_diff_status_name(graft_diff_status s);

typedef struct graft_diff_options {
    unsigned int version;  /**< GRAFT_DIFF_OPTIONS_VERSION */
    double atol;           /**< an element is within when |a - b| <= atol + rtol * |b| */
    double rtol;           /**< (numpy.isclose, b being B's value); both 0: exact */
} graft_diff_options;

#define GRAFT_DIFF_OPTIONS_VERSION 1
#define GRAFT_DIFF_OPTIONS_INIT {.version = GRAFT_DIFF_OPTIONS_VERSION}

/** One tensor of a diff report. */
typedef struct graft_diff_entry {
    graft_diff_status status;
    const char *name;      /**< B's tensor (A's for GRAFT_DIFF_ONLY_A); borrowed from the plan */
    const char *source;    /**< A's first paired tensor, or NULL; borrowed from the plan */
    size_t nsources;       /**< A's tensors feeding it */
    bool numeric;          /**< compared as numbers: max_abs and max_rel are set */
    bool equal;            /**< every element equal */
    double max_abs;        /**< max |a - b| (INFINITY when a NaN meets a number) */
    double max_rel;        /**< max |a - b| / |b| (INFINITY where b is 0 and a is not) */
    uint64_t numel;        /**< elements compared */
    uint64_t nover;        /**< of them outside the tolerance */
    char *message;         /**< why GRAFT_DIFF_MISMATCH, or NULL; owned by the report */
} graft_diff_entry;

/** Every tensor of both sides, and the tally.  Free with graft_diff_report_free. */
typedef struct graft_diff_report {
    size_t count;
    graft_diff_entry *entries;  /**< B's tensors in order (ignored ones left out), then A's unused */
    size_t compared, over, mismatched, unpaired;
    size_t rule_errors;         /**< plan-level errors (graft_plan_problem), which make pairs suspect */
    double atol, rtol;
    /** When nothing was compared but tensors are unpaired: how many of B's
     * tensors pair when B is taken as the source (A and B probably swapped). */
    size_t swapped_pairs;
} graft_diff_report;

/**
 * Compare every target tensor of the plan (model B) with its sources (model
 * A) run through their op chains (graft_plan_diff for each), and list the
 * tensors either side leaves unpaired.  A diff through rules proves that B
 * holds what the rules make of A: not that the rules are right (the layout
 * check of graft_plan_open and forward passes prove that).
 * @param opts  NULL: exact (atol = rtol = 0)
 * @param[out] out  free with graft_diff_report_free
 * @return GRAFT_OK (differences are not failures); a read failure, tensor named
 */
GRAFT_EXTERN int graft_plan_diff_all(graft_diff_report **out, const graft_plan *p,
                                     const graft_diff_options *opts, graft_ctx *ctx);
GRAFT_EXTERN void graft_diff_report_free(graft_diff_report *r);
/** true when nothing is over, mismatched or unpaired and the rules report no error. */
GRAFT_EXTERN bool graft_diff_report_ok(const graft_diff_report *r);
/** The report as `graft diff --json` prints it (schemas/cli/diff.schema.json).
 * @param[out] out  free with free() */
GRAFT_EXTERN int graft_diff_report_json(char **out, const graft_diff_report *r, graft_ctx *ctx);

/* ------------------------------------------------------------------ */
/* What the commands report, as JSON (`--json`; schemas/cli/COMMAND.schema.json). */

/** One finding of `graft check`: its kind ("load", "one-to-one", "plan",
 * "entry"), whether it is an error (else a warning), its one-line message. */
typedef void (*graft_finding_fn)(const char *kind, bool is_error, const char *message,
                                 void *payload);

/**
 * What `graft check RULES SOURCE SKELETON` reports on a plan: the renames'
 * one-to-one problems (graft_plan_check_one_to_one), the plan-level errors,
 * then each entry's error, one call of fn each.
 * @param[out] nproblems  one-to-one problems + graft_plan_errors(p)
 */
GRAFT_EXTERN int graft_plan_check(const graft_plan *p, graft_finding_fn fn, void *payload,
                                  size_t *nproblems, graft_ctx *ctx);
/**
 * `graft check --json`: rules loaded from rules_path (r NULL when loading
 * failed, load_error its message), and when p is not NULL the findings of
 * graft_plan_check on it.
 * @param[out] out  free with free()
 */
GRAFT_EXTERN int graft_check_json(char **out, const char *rules_path, const graft_rules *r,
                                  const char *load_error, const graft_plan *p, graft_ctx *ctx);
/** graft_plan_explain as JSON (schemas/cli/explain.schema.json); the same errors. */
GRAFT_EXTERN int graft_plan_explain_json(char **out, const graft_plan *p, const char *name,
                                         graft_ctx *ctx);
/**
 * The files graft_plan_apply writes for out_path, NULL-terminated (one
 * allocation: free with free()): out_path itself for most formats; for a
 * tf-checkpoint skeleton PREFIX.index, its data shards and the `checkpoint`
 * state file beside them, which TensorFlow reads to find the latest
 * checkpoint of a folder and which is replaced.
 */
GRAFT_EXTERN int graft_plan_output_files(char ***out, const graft_plan *p, const char *out_path,
                                         graft_ctx *ctx);
/**
 * Whether path's extension fits a file of format `format` (".h5" for
 * keras-h5...).  false only when the extension is one graft knows for other
 * formats; then *expected (may be NULL) names such a format.
 */
GRAFT_EXTERN bool graft_format_fits_path(const char *format, const char *path,
                                         const char **expected);
/** `graft apply --json`: what graft_plan_apply wrote (stats) to out_path, from where. */
GRAFT_EXTERN int graft_apply_json(char **out, const graft_plan *p, const char *out_path,
                                  const graft_apply_options *opts,
                                  const graft_apply_stats *stats, graft_ctx *ctx);
/** `graft freeze --json`: what graft_freeze wrote. */
GRAFT_EXTERN int graft_freeze_json(char **out, const char *graph, const char *checkpoint,
                                   const char *const *outputs, size_t noutputs,
                                   const char *out_path, size_t nfrozen, graft_ctx *ctx);
/** `graft convert --json`: what graft_convert wrote (res) from source. */
GRAFT_EXTERN int graft_convert_json(char **out, const char *source,
                                    const graft_convert_options *o,
                                    const graft_convert_result *res, graft_ctx *ctx);
/** `graft rules --json`: the library's files. */
GRAFT_EXTERN int graft_rules_library_json(char **out, const graft_rules_library *lib,
                                          graft_ctx *ctx);
/** `graft rules --match --json`: the n matches of graft_rules_library_match (m may be
 * NULL when n is 0). */
GRAFT_EXTERN int graft_rules_match_json(char **out, const graft_rules_library *lib,
                                        const graft_rules_match *m, size_t n, graft_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif /* GRAFT_H */
