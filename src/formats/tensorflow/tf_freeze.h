/*
 * tf_freeze.h - the graph half of `graft freeze` (TensorFlow's
 * convert_variables_to_constants): prune a graph to what its outputs need,
 * turn variables into Const nodes and clear devices.  The Consts hold zeros;
 * `graft freeze` then fills them from the checkpoint through the rule engine
 * and the tf-graphdef writer, like `graft apply`.
 */
#ifndef GRAFT_FORMATS_TF_FREEZE_H
#define GRAFT_FORMATS_TF_FREEZE_H

#include "sink.h"
#include "error.h"

/**
 * Write the frozen skeleton of `graph` (a binary GraphDef, a .meta
 * MetaGraphDef, a saved_model.pb or a SavedModel folder) to the sink `out`
 * (neither committed nor aborted here).  VariableV2 / Variable / VarHandleOp nodes become
 * Const nodes of their `dtype` and `shape` attrs; ReadVariableOp becomes
 * Identity, ResourceGather GatherV2; nodes carrying a resource between them get attr T; nodes the
 * outputs do not need are dropped; devices are cleared; the library is kept.
 *
 * @param outputs    noutputs node names (a ":N" suffix is ignored); none keeps
 *                   every node
 * @param[out] vars  the names of the variables turned into Consts, in graph
 *                   order; free with graft_tf__names_free
 * @return GRAFT_OK; GRAFT_ENOTFOUND for an output not in the graph,
 *         GRAFT_EFORMAT for a variable graft cannot freeze (unknown shape,
 *         batched resource gathers, a read not fed by a variable)
 */
int graft_tf__freeze_skeleton(const char *graph, const char *const *outputs, size_t noutputs,
                              graft_sink *out, char ***vars, size_t *nvars,
                              graft_ctx *ctx);
/* The same for a graph in memory, written to out_path; `name` tells the
 * kind as a path would (".meta", "saved_model.pb") and prefixes messages. */
int graft_tf__freeze_buffer(const uint8_t *data, size_t size, const char *name,
                            const char *const *outputs, size_t noutputs, const char *out_path,
                            char ***vars, size_t *nvars, graft_ctx *ctx);
void graft_tf__names_free(char **names, size_t n);

#endif
