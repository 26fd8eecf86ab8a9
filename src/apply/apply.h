/*
 * apply.h - the transplant: a skeleton model rewritten with tensors taken
 * from a source model through a plan, plus its provenance record and the
 * tensor-by-tensor comparison that proves it (`graft apply`, `graft diff`).
 *
 * The plan here is deliberately plain (indices and borrowed op chains), so
 * it does not depend on how the rules engine builds it: one item per
 * skeleton tensor, in skeleton order.
 */
#ifndef GRAFT_APPLY_H
#define GRAFT_APPLY_H

#include "../core/format.h"
#include "../transform/ops.h"

typedef struct graft_apply_item {
    size_t nsrc;            /* source tensors; 0 = keep the skeleton's own bytes */
    const size_t *src;      /* nsrc indices into the source model; borrowed */
    const graft_op *ops;    /* op chain applied to the sources; borrowed */
    size_t nops;
} graft_apply_item;

typedef struct graft_apply_plan {
    const graft_apply_item *items;  /* one per skeleton tensor, skeleton order; borrowed */
    size_t count;                   /* == graft_model_count(skeleton) */
} graft_apply_plan;

/* Called after each skeleton tensor is written: tensors written so far of
 * total, and their bytes (for a progress line). */
typedef void (*graft_apply_progress_fn)(size_t done, size_t total, uint64_t bytes,
                                        void *payload);

/*
 * The default output path for a skeleton: "dir/x.safetensors" ->
 * "dir/x.grafted.safetensors", "x" -> "x.grafted", "folder/" -> "folder.grafted".
 * *out is malloc'ed; the caller frees it.
 */
int graft_apply_default_output(char **out, const char *skeleton, graft_ctx *ctx);

/*
 * Refuse an output path that is (or links to) any file the models were read
 * from: their paths and every file they mapped, compared by device and inode.
 * GRAFT_EIO when out_path names one of them (a folder model's folder too).
 */
int graft_apply_check_output(const char *out_path, const graft_model *const *models,
                             size_t nmodels, graft_ctx *ctx);

/*
 * Write the skeleton's format to out_path (through the format's write(),
 * which writes a temporary file and renames it into place): every tensor
 * filled by its plan item.  Source bytes are borrowed from the mapped file
 * when they are stored row-major little-endian.  Each item's op chain must
 * produce the skeleton tensor's dtype and shape (GRAFT_ESHAPE otherwise).
 * GRAFT_EFORMAT when the skeleton's format cannot be written yet.
 */
int graft_apply_write(const graft_model *source, const graft_model *skeleton,
                      const graft_apply_plan *plan, const char *out_path, graft_ctx *ctx);
/* The same, calling progress(..., payload) after each tensor (NULL: never). */
int graft_apply_write_progress(const graft_model *source, const graft_model *skeleton,
                               const graft_apply_plan *plan, const char *out_path,
                               graft_apply_progress_fn progress, void *payload, graft_ctx *ctx);

/* The same, also stopping with GRAFT_ECANCELED (nothing written) when
 * *cancel is non-zero before a tensor (cancel may be NULL). */
int graft_apply__write(const graft_model *source, const graft_model *skeleton,
                       const graft_apply_plan *plan, const char *out_path,
                       graft_apply_progress_fn progress, void *payload,
                       const volatile int *cancel, graft_ctx *ctx);

/* Items of a plan (rules.h) for its whole skeleton, skeleton order: an
 * entry that is not OK, and every tensor outside a reversed `select:`
 * sub-tree (p->sub), keeps the skeleton's bytes.  *out: free() it.
 * (api/apply_api.c) */
struct graft_plan;
int graft_apply__items(const struct graft_plan *p, graft_apply_item **out, graft_ctx *ctx);

/* Views of tensors idx[0..n) of m: borrowed from the map, or gathered into
 * owned[i] (free with graft_apply__unviews, also after a failure). */
int graft_apply__views(const graft_model *m, const size_t *idx, size_t n, graft_tview *views,
                       void **owned, graft_ctx *ctx);
void graft_apply__unviews(void **owned, size_t n);
/* "float32 [3,4]" into buf; -1 if it does not fit. */
int graft_apply__shape_text(const graft_shape *s, char *buf, size_t n);

/* ---- manifest.c --------------------------------------------------------- */

typedef struct graft_manifest_info {
    const graft_model *source, *skeleton;
    const char *rules_path;        /* NULL when none */
    bool reverse;                  /* rules applied in reverse */
    const graft_apply_plan *plan;
    const char *out_path;          /* the file apply wrote */
} graft_manifest_info;

/*
 * Write the JSON provenance record of a finished apply to path (atomically):
 * inputs and rules with the sha256 of their files, the output with the sha256
 * of the file, and per target tensor its sources, op chain, and the sha256 of
 * the elements in the output (read back from out_path).
 */
int graft_manifest_write(const char *path, const graft_manifest_info *info, graft_ctx *ctx);

/* ---- diff.c ------------------------------------------------------------- */

/* graft_diff_result is declared in graft.h. */

/*
 * Compare B's tensor b_index with A's tensors `src` run through `ops`.
 * Floats, integers and bool compare as numbers (integers exactly); complex
 * numbers part by part; strings byte for byte.  GRAFT_ESHAPE when the shapes
 * (or incomparable dtypes) differ, with both named in the message.
 */
int graft_diff_pair(const graft_model *a, const size_t *src, size_t nsrc, const graft_op *ops,
                    size_t nops, const graft_model *b, size_t b_index, graft_diff_result *out,
                    graft_ctx *ctx);

/* The tolerance of a comparison (numpy.isclose: |a - b| <= atol + rtol * |b|,
 * b being B's value) and what it found. */
typedef struct graft_diff_tol {
    double atol, rtol;   /* in */
    uint64_t nover;      /* out: elements outside the tolerance (all, for unequal strings) */
} graft_diff_tol;

/* graft_diff_pair, also counting the elements outside tol (NULL: none). */
int graft_diff_pair_tol(const graft_model *a, const size_t *src, size_t nsrc,
                        const graft_op *ops, size_t nops, const graft_model *b, size_t b_index,
                        graft_diff_result *out, graft_diff_tol *tol, graft_ctx *ctx);

#endif
