/*
 * fuzz_tfjs.c - TF.js model.json files: the JSON, the weightsManifest
 * groups, paths, specs, quantization and the group bounds.  The input is
 * written as model.json into a private folder that also holds two shards,
 * "a.bin" (1000 bytes) and "b.bin" (3 bytes), so manifests that name them
 * reach the weight layout and the loaders; every tensor that opens is
 * read and hashed.
 */
#include "fuzz_open.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static int put(const char *name, const uint8_t *p, size_t n)
{
    char path[128];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!(f = fopen(path, "wb"))) return -1;
    if (n && fwrite(p, 1, n, f) != n) n = 0;
    return fclose(f);
}

static void cleanup(void)
{
    static const char *const names[] = {"model.json", "a.bin", "b.bin"};
    char path[128];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t shard[1000];
    char path[128];
    graft_ctx *ctx;
    graft_model *m = NULL;
    uint8_t digest[32];

    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/graft-fuzz-tfjs-%ld", (long)getpid());
        if (mkdir(dir, 0700) < 0) return 0;
        atexit(cleanup);
        for (size_t i = 0; i < sizeof shard; i++) shard[i] = (uint8_t)(i * 37 + 11);
        put("a.bin", shard, sizeof shard);
        put("b.bin", shard, 3);
    }
    if (put("model.json", data, size) < 0 || !(ctx = graft_ctx_new())) return 0;
    snprintf(path, sizeof path, "%s/model.json", dir);
    graft_open_options opts = GRAFT_OPEN_OPTIONS_INIT;
    opts.format = "tfjs";
    if (graft_model_open(&m, path, &opts, ctx) == GRAFT_OK)
        for (size_t i = 0; i < graft_model_count(m); i++)
            graft_tensor_sha256(m, graft_model_tensor(m, i), digest, ctx);
    graft_model_free(m);
    graft_ctx_free(ctx);
    return 0;
}
