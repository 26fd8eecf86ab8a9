/*
 * tf_bundle.h - a TensorFlow checkpoint V2 ("tensor bundle": PREFIX.index +
 * PREFIX.data-NNNNN-of-MMMMM) as a graft tensor table, and its writer.
 * Shared by the tf-checkpoint and tf-savedmodel formats; see tf_bundle.c.
 */
#ifndef GRAFT_FORMATS_TF_BUNDLE_H
#define GRAFT_FORMATS_TF_BUNDLE_H

#include "format.h"

#define GRAFT_TF_MAX_SHARDS 100000   /* data file names use %05d */

/*
 * Fill m's tensor table from the index `index` (mapped; borrowed) of the
 * bundle at `prefix`, map its data files and check every tensor's CRC-32C.
 * Sets m->state to the bundle (freed with the model).
 */
int graft_tf__bundle_open(graft_model *m, const char *prefix, const graft_source *index,
                          graft_ctx *ctx);

/*
 * Write a copy of the bundle held by skeleton m (opened with
 * graft_tf__bundle_open) at out_prefix, tensor bytes from fill.  Data files are
 * written first, then the index, each through a graft_sink.  With the
 * skeleton's own bytes the output is byte-identical to TensorFlow's files.
 */
int graft_tf__bundle_write(const graft_model *m, const char *out_prefix, graft_fill *fill,
                           graft_ctx *ctx);

/* The prefix a bundle model was opened from; NULL when it has no bundle. */
const char *graft_tf__bundle_prefix(const graft_model *m);
/* The data shards graft_tf__bundle_write writes for m (0: m is no bundle). */
uint32_t graft_tf__bundle_nshards(const graft_model *m);
/* convert: make m (tensors sorted by name, no bytes) a new one-shard bundle
 * at `prefix` that graft_tf__bundle_write can write. */
int graft_tf__bundle_new(graft_model *m, const char *prefix, graft_ctx *ctx);

/* "PREFIX.data-00001-of-00002" into a new malloc'd string; NULL on OOM. */
char *graft_tf__data_path(const char *prefix, uint32_t shard, uint32_t nshards,
                          graft_ctx *ctx);

#endif
