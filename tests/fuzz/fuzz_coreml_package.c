/*
 * fuzz_coreml_package.c - Core ML .mlpackage folders: the input is a u32
 * little-endian length L, then L bytes of model.mlmodel (the ML Program
 * protobuf), then weight.bin.  They are written into a temporary package,
 * which is opened and every tensor read and hashed.
 */
#define _GNU_SOURCE /* mkdtemp */
#include "fuzz_open.h"
#include "rd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static void put(const char *rel, const uint8_t *p, size_t n)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    f = fopen(path, "wb");
    if (!f) abort();
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

static void cleanup(void)
{
    const char *const rel[] = {"Manifest.json", "Data/com.apple.CoreML/model.mlmodel",
                               "Data/com.apple.CoreML/weights/weight.bin",
                               "Data/com.apple.CoreML/weights", "Data/com.apple.CoreML", "Data"};
    char path[512];
    for (size_t i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, rel[i]);
        i < 3 ? unlink(path) : rmdir(path);
    }
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    graft_open_options opts = GRAFT_OPEN_OPTIONS_INIT;
    graft_ctx *ctx;
    graft_model *m = NULL;
    uint8_t digest[32];
    size_t len;

    if (!dir[0]) {
        char path[512];
        snprintf(dir, sizeof dir, "%s/fuzz-mlpackage-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir)) abort();
        snprintf(path, sizeof path, "%s/Data", dir);
        mkdir(path, 0755);
        snprintf(path, sizeof path, "%s/Data/com.apple.CoreML", dir);
        mkdir(path, 0755);
        snprintf(path, sizeof path, "%s/Data/com.apple.CoreML/weights", dir);
        mkdir(path, 0755);
        put("Manifest.json", (const uint8_t *)"{}", 2);
        atexit(cleanup);
    }
    if (size < 4) return 0;
    len = graft_le32(data);
    if (len > size - 4) len = size - 4;
    put("Data/com.apple.CoreML/model.mlmodel", data + 4, len);
    put("Data/com.apple.CoreML/weights/weight.bin", data + 4 + len, size - 4 - len);
    ctx = graft_ctx_new();
    if (!ctx) return 0;
    opts.format = "coreml-package";
    if (graft_model_open(&m, dir, &opts, ctx) == GRAFT_OK)
        for (size_t i = 0; i < graft_model_count(m); i++)
            graft_tensor_sha256(m, graft_model_tensor(m, i), digest, ctx);
    graft_model_free(m);
    graft_ctx_free(ctx);
    return 0;
}
