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

typedef struct graft_convert_options {
    unsigned int version;          /* GRAFT_CONVERT_OPTIONS_VERSION */
    const char *to;                /* target format name; NULL: from the output's extension */
    const char *rules_path;        /* source-side renames, ignores and ops; NULL: names kept */
    const char *select;            /* dotted sub-tree of the source; NULL: the rules' or all */
    const char *source_format;     /* NULL: detect */
    const char *const *meta;       /* GGUF: nmeta "KEY[:TYPE]=VALUE"; must set general.architecture */
    size_t nmeta;
    const char *quantize;          /* GGUF: "q8_0" or "q4_0" for float matrices whose rows hold
                                    * whole blocks (as llama.cpp quantizes); NULL: none */
    bool dequantize;               /* GGUF sources: q8_0 / q4_0 tensors become float32
                                    * (ggml's dequantize_row_*) before their ops */
    uint64_t shard_size;           /* safetensors: shard at this many bytes as huggingface_hub
                                    * does (files NAME-0000k-of-0000n.safetensors plus
                                    * NAME.safetensors.index.json); 0: one file */
    bool strict;                   /* refuse a source holding non-tensor values */
    const char *manifest;          /* also write the JSON provenance record here; NULL: none */
    graft_apply_progress_fn progress; /* after each tensor; NULL: none */
    void *progress_payload;
} graft_convert_options;

#define GRAFT_CONVERT_OPTIONS_VERSION 1
#define GRAFT_CONVERT_OPTIONS_INIT {.version = GRAFT_CONVERT_OPTIONS_VERSION}

typedef struct graft_convert_result {
    size_t tensors;                /* written */
    size_t ignored;                /* left out by the rules' source ignores */
    size_t quantized;              /* written quantized */
    size_t dequantized;            /* read from quantized blocks as float32 */
    uint64_t bytes;                /* tensor bytes written */
    const char *format;            /* the target format's name; static */
    char *out_path;                /* the file written (the index of a sharded set); malloc */
    graft_extras dropped;          /* the source's non-tensor values, not written */
} graft_convert_result;

/*
 * Convert `source` into `out_path`.  Fails with nothing written when a
 * renamed name repeats, an op chain does not fit its tensor, the target
 * format cannot hold a dtype (GRAFT_EFORMAT), the output is one of the
 * inputs, or (strict) the source holds non-tensor values (GRAFT_EFORMAT,
 * naming them).  Each output file is written atomically.
 */
int graft_convert(const char *source, const char *out_path, const graft_convert_options *o,
                  graft_convert_result *res, graft_ctx *ctx);
void graft_convert_result_free(graft_convert_result *res);
/* The target format's name for an output path's extension, or NULL. */
const char *graft_convert_format_for(const char *out_path);

#endif
