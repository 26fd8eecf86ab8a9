/*
 * convert.h - `graft convert`: every tensor of a source model, renamed and
 * transformed by a rules file's source side, written into a new file of a
 * container format (safetensors, sharded too; npz; npy; PyTorch zip state
 * dict; GGUF).  There is no skeleton: the target's tensor table is built
 * from the source and the format's writer lays it out from scratch.
 *
 *     graft_convert_options o = GRAFT_CONVERT_OPTIONS_INIT;
 *     graft_convert_result r = {0};
 *     o.rules_path = "hf-llama-to-gguf.yaml";
 *     o.meta = (const char *[]){"general.architecture=llama"}; o.nmeta = 1;
 *     if (graft_convert("model.safetensors", "model.gguf", &o, &r, ctx) < 0) ...
 *     ... r.tensors, r.out_path, r.dropped ...
 *     graft_convert_result_free(&r);
 */
#ifndef GRAFT_APPLY_CONVERT_H
#define GRAFT_APPLY_CONVERT_H

#include "apply.h"

/* graft_convert_options, graft_convert_result, graft_convert() and
 * graft_convert_format_for() are public: graft.h. */

#endif
