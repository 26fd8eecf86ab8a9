/*
 * quant_driver.c - runs the quantize / dequantize kernels on a file, so that
 * test_quant.py can compare them with a NumPy reference.
 *   quant_driver quantize|dequantize DTYPE AXIS DIMS SCALES ZEROS IN OUT
 * DIMS "2,3,4"; SCALES hex floats "0x1p-7,0x1.8p-6"; ZEROS "0,-3" or "-"
 * (none); IN raw float32 (quantize) or DTYPE (dequantize) elements.
 * Exit 0 and OUT written, or exit 1 with the kernel's message on stderr.
 */
#include "quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t split(const char *s, char **items, size_t cap, char *buf, size_t bufsz)
{
    size_t n = 0;
    snprintf(buf, bufsz, "%s", s);
    for (char *tok = strtok(buf, ","); tok && n < cap; tok = strtok(NULL, ",")) items[n++] = tok;
    return n;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p = NULL;
    long size;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (p = malloc((size_t)size + 1)) && fread(p, 1, (size_t)size, f) == (size_t)size)
        *n = (size_t)size;
    else {
        free(p);
        p = NULL;
    }
    fclose(f);
    return p;
}

int main(int argc, char **argv)
{
    static char b1[1 << 16], b2[1 << 16], b3[1 << 16];
    char *items[4096];
    int64_t shape[GRAFT_MAX_NDIM], zeros[4096];
    float scales[4096];
    size_t ndim, ns, nz = 0, nin = 0, nout;
    graft_dtype dt;
    graft_ctx *ctx = graft_ctx_new();
    uint8_t *in, *out;
    int rc;
    FILE *f;

    if (argc != 9 || !ctx) return 2;
    dt = graft_dtype_from_name(argv[2]);
    ndim = split(argv[4], items, GRAFT_MAX_NDIM, b1, sizeof b1);
    for (size_t i = 0; i < ndim; i++) shape[i] = strtoll(items[i], NULL, 10);
    ns = split(argv[5], items, 4096, b2, sizeof b2);
    for (size_t i = 0; i < ns; i++) scales[i] = strtof(items[i], NULL);
    if (strcmp(argv[6], "-") != 0) nz = split(argv[6], items, 4096, b3, sizeof b3);
    for (size_t i = 0; i < nz; i++) zeros[i] = strtoll(items[i], NULL, 10);
    graft_quant q = {.nscale = ns, .scale = scales, .nzero = nz, .zero_point = zeros,
                     .axis = (int32_t)atoi(argv[3])};
    uint64_t numel = 1;
    for (size_t i = 0; i < ndim; i++) numel *= (uint64_t)shape[i];
    in = slurp(argv[7], &nin);
    nout = (size_t)numel * (strcmp(argv[1], "quantize") == 0 ? graft_dtype_size(dt) : 4);
    out = malloc(nout + 1);
    if (!in || !out) return 2;
    graft_xout o = {.mem = out, .ctx = ctx};
    if (strcmp(argv[1], "quantize") == 0)
        rc = nin == numel * 4 ? graft_xform__quantize(&o, (const float *)in, dt, (uint32_t)ndim,
                                                      shape, &q, ctx) : -1;
    else
        rc = nin == numel * graft_dtype_size(dt)
                 ? graft_xform__dequantize(&o, in, dt, (uint32_t)ndim, shape, &q, ctx) : -1;
    if (rc < 0) {
        fprintf(stderr, "%s\n", rc == -1 && !graft_ctx_message(ctx)[0] ? "input size"
                                                                        : graft_ctx_message(ctx));
        rc = 1;
    } else {
        f = fopen(argv[8], "wb");
        rc = !f || fwrite(out, 1, o.pos, f) != o.pos || fclose(f) != 0 ? 2 : 0;
    }
    free(in); /* also on failure: the sanitizer build checks for leaks */
    free(out);
    graft_ctx_free(ctx);
    return rc;
}
