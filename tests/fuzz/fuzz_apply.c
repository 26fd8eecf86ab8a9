/*
 * fuzz_apply.c - a hostile file as both source and skeleton of an identity
 * transplant: any format by its magic bytes, then its writer copying the
 * skeleton (everything a writer re-reads of it: pickles, zip members,
 * headers, protobuf fields) with every tensor streamed back through graft_apply.
 * Oracle: a written file reopens in the same format and `diff` finds every
 * tensor equal to the input's (NaN == NaN), else the target traps.  Keras
 * (HDF5) inputs are skipped: see is_hdf5().
 */
#include "../../src/apply/apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], out_file[96];

static void remove_dir(void)
{
    unlink(out_file);
    rmdir(dir);
}

/* One private folder per process for the output (and the writer's temporary). */
static const char *out_path(void)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/graft-fuzz-apply-XXXXXX");
        if (!mkdtemp(dir)) abort();
        snprintf(out_file, sizeof out_file, "%s/out", dir);
        atexit(remove_dir);
    }
    return out_file;
}

/* Every tensor of the output equals the input's. */
static void check_round_trip(const graft_model *in, const char *path, graft_ctx *ctx)
{
    graft_open_options opts = GRAFT_OPEN_OPTIONS_INIT;
    graft_model *out = NULL;
    graft_diff_result r;

    opts.format = graft_model_format(in);
    if (graft_model_open(&out, path, &opts, ctx) < 0) {
        fprintf(stderr, "fuzz_apply: %s wrote a file it cannot read: %s\n", opts.format,
                graft_ctx_message(ctx));
        __builtin_trap();
    }
    for (size_t i = 0; i < graft_model_count(in); i++) {
        const graft_tensor *t = graft_model_tensor(in, i);
        const graft_tensor *o = graft_model_find(out, graft_tensor_name(t));
        if (!o && graft_model_count(in) == 1 && graft_model_count(out) == 1)
            o = graft_model_tensor(out, 0); /* .npy: named after the file */
        if (!o || graft_diff_pair(in, &i, 1, NULL, 0, out, (size_t)(o - out->tensors), &r,
                                  ctx) < 0 || !r.equal) {
            fprintf(stderr, "fuzz_apply: %s: tensor '%s' did not survive the round trip: %s\n",
                    opts.format, graft_tensor_name(t), o ? graft_ctx_message(ctx) : "missing");
            __builtin_trap();
        }
    }
    graft_model_free(out);
}

/* Keras files go to libhdf5, whose own failures on hostile files
 * (tests/fuzz/known-libhdf5/, contained by the sandbox) would drown everything else here; fuzz_keras
 * covers them.  Same choice as the core: the first format that claims it. */
static bool is_hdf5(const uint8_t *data, size_t size)
{
    for (size_t i = 0; graft_formats[i]; i++)
        if (graft_formats[i]->probe("fuzz-apply-input", false, data, size))
            return !strncmp(graft_formats[i]->name, "keras", 5);
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    graft_ctx *ctx = graft_ctx_new();
    graft_model *m = NULL;
    graft_apply_item *items = NULL;
    size_t *idx = NULL;
    const char *path = out_path();

    if (!ctx) return 0;
    if (is_hdf5(data, size)) goto done;
    if (graft_model_open_buffer(&m, "fuzz-apply-input", data, size, NULL, ctx) < 0) goto done;
    if (!m->format->write) goto done;
    items = calloc(m->count + 1, sizeof *items);
    idx = calloc(m->count + 1, sizeof *idx);
    if (!items || !idx) goto done;
    for (size_t i = 0; i < m->count; i++) {
        idx[i] = i;
        items[i] = (graft_apply_item){.nsrc = 1, .src = &idx[i]};
    }
    graft_apply_plan plan = {items, m->count};
    unlink(path);
    if (graft_apply_write(m, m, &plan, path, ctx) == GRAFT_OK) check_round_trip(m, path, ctx);
    unlink(path);
done:
    free(idx);
    free(items);
    graft_model_free(m);
    graft_ctx_free(ctx);
    return 0;
}
