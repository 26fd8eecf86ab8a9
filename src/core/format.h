/*
 * format.h - the interface every format implements (one file per format in
 * src/formats/, each exporting only `const graft_format graft_format_<name>`).
 *
 * Reading: graft_model_open() maps the file (a path that is none goes to
 * each format's resolve()), asks each format's probe() about the first bytes
 * (or the folder), lets the one that claims it pick a sibling by layout(),
 * and calls that format's open().  open() fills the model's tensor table;
 * validation is done by the core.
 *
 * Writing: write() produces a new file in the skeleton's format at out_path:
 * a copy of the skeleton with every tensor's bytes taken from fill->emit().
 */
#ifndef GRAFT_CORE_FORMAT_H
#define GRAFT_CORE_FORMAT_H

#include "model.h"
#include "sink.h"

typedef struct graft_fill graft_fill;

/* What a model holds besides its tensors (`graft convert` drops it). */
/* graft_extras (non-tensor values of a model) is in graft.h. */

struct graft_fill {
    /*
     * Write exactly skeleton tensor `index`'s nbytes, row-major little-endian
     * (the skeleton's dtype and shape), to `out`.
     */
    int (*emit)(graft_fill *f, size_t index, graft_sink *out, graft_ctx *ctx);
    void *payload;
};

typedef struct graft_format {
    const char *name;        /* "safetensors"; what --format takes */
    /* Claim a file by its first bytes (head may be short), or a folder
     * (head NULL, is_dir true).  Magic bytes only: no allocation. */
    bool (*probe)(const char *path, bool is_dir, const uint8_t *head, size_t n);
    /* Fill m's tensor table.  m->sources[0] is the mapped file (none for a
     * folder).  opts->select is handled by the core afterwards. */
    int (*open)(graft_model *m, const graft_open_options *opts, graft_ctx *ctx);
    /* Write a copy of skeleton m to out_path with tensor bytes from fill;
     * NULL when the format cannot be a skeleton yet. */
    int (*write)(const graft_model *m, const char *out_path, graft_fill *fill,
                 graft_ctx *ctx);
    /* Optional: `path` names no file or folder; open the source this format
     * reads for it (a TensorFlow checkpoint prefix: its ".index").  Return
     * GRAFT_ENOTFOUND to pass, leaving ctx as it is or saying what was tried. */
    int (*resolve)(graft_source **out, const char *path, graft_ctx *ctx);
    /* Optional, for formats that share a container (Keras 2 and Keras 3 in
     * HDF5): once the file is claimed, set *out to the format of the family
     * whose layout it holds (unchanged to keep this one).  It may leave state
     * in m for that format's open().  Only the core sets m->format. */
    int (*layout)(graft_model *m, const struct graft_format **out, graft_ctx *ctx);
    /* Optional: how a tensor's bytes encode its values when that is not
     * plain elements of its dtype (GGUF quantized blocks); NULL otherwise. */
    const char *(*tensor_encoding)(const graft_model *m, const graft_tensor *t);
    /* Optional: count what m holds that is not a tensor, under the dotted
     * sub-tree `select` (NULL: all); absent means nothing. */
    void (*extras)(const graft_model *m, const char *select, graft_extras *out);
    /* Optional: the files write() makes for out_path, NULL-terminated, in
     * one allocation (free()); absent: out_path alone. */
    int (*outputs)(const graft_model *m, const char *out_path, char ***files, graft_ctx *ctx);
} graft_format;

/* fill->emit() for tensor `index` of skeleton m, checking it wrote exactly
 * that tensor's nbytes: a short or long emit would shift every later byte of
 * the output file.  Writers call this, never fill->emit directly. */
int graft_fill_emit(graft_fill *fill, const graft_model *m, size_t index, graft_sink *out,
                    graft_ctx *ctx);

/* m's non-tensor parts through its format's extras() (zero when it has none). */
void graft_model__extras(const graft_model *m, const char *select, graft_extras *out);
/* A writer for formats whose tensors are views into their one file that
 * keep their size: the skeleton's bytes, each tensor's replaced in place
 * (core/inplace.c).  Views must not overlap. */
int graft_write_in_place(const graft_model *m, const char *out_path, graft_fill *fill,
                         graft_ctx *ctx);
/* The same for one file `src` of a model with several: the tensors stored in
 * it (tensors of other files are skipped unless src is the primary one). */
int graft_write_source_in_place(const graft_model *m, const graft_source *src,
                                const char *out_path, graft_fill *fill, graft_ctx *ctx);

/* The registry, NULL-terminated, in probe order. */
extern const graft_format *const graft_formats[];
const graft_format *graft_format_find(const char *name);
/* Open a model from memory (fuzzers, tests): `name` is used in messages. */
/* graft_model_open for a skeleton, whose tensors a plan mostly replaces,
 * or a source a transplant reads (alongside core/verify.h): the checksums
 * of tensors' bytes are verified when the bytes are read (see
 * graft_model.defer_checks), so a kept or used tensor is still checked, a
 * replaced or ignored one only for its framing. */
int graft_model__open_deferred(graft_model **out, const char *path,
                               const graft_open_options *opts, graft_ctx *ctx);
int graft_model_open_buffer(graft_model **out, const char *name, const uint8_t *data,
                            size_t size, const graft_open_options *opts, graft_ctx *ctx);

#endif
