/* testutil.c - helpers shared by the Check unit tests. */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

graft_ctx *tu_ctx;
graft_arena tu_arena;

void tu_arena_setup(void)
{
    tu_ctx = graft_ctx_new();
    graft_arena_init(&tu_arena, tu_ctx);
}

void tu_arena_teardown(void)
{
    graft_arena_free(&tu_arena);
    graft_ctx_free(tu_ctx);
}

static void remove_dir(void)
{
    char cmd[300];
    if (!dir[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

const char *tu_temp_dir(void)
{
    if (!dir[0]) {
        pid_t owner = getpid();
        snprintf(dir, sizeof dir, "/tmp/graft-unit-XXXXXX");
        if (!mkdtemp(dir)) abort();
        if (getpid() == owner) atexit(remove_dir);
    }
    return dir;
}

const char *tu_write_temp(const char *name, const void *data, size_t n)
{
    static char paths[8][512];
    static int slot;
    char *path = paths[slot++ % 8];
    snprintf(path, 512, "%s/%s", tu_temp_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) abort();
    fclose(f);
    return path;
}

uint8_t *tu_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long len;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)len + 1);
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) abort();
    fclose(f);
    *n = (size_t)len;
    return buf;
}

long tu_each_alloc_failure(graft_ctx *ctx, tu_alloc_fn run, void *payload)
{
    graft_ctx_clear(ctx);
    ctx->fail_alloc_at = 0;
    ctx->alloc_count = 0;
    int rc = run(ctx, payload);
    ck_assert_msg(rc == 0, "without failures: %d: %s", rc, graft_ctx_message(ctx));
    long total = ctx->alloc_count;
    ck_assert_msg(total > 0, "the job allocates nothing: nothing to fail");
    for (long n = 1; n <= total; n++) {
        graft_ctx_clear(ctx);
        ctx->alloc_count = 0;
        ctx->fail_alloc_at = n;
        rc = run(ctx, payload);
        ctx->fail_alloc_at = 0;
        ck_assert_msg(rc == GRAFT_ENOMEM, "allocation %ld of %ld failing: returned %d: %s", n,
                      total, rc, graft_ctx_message(ctx));
        ck_assert_msg(strstr(graft_ctx_message(ctx), "out of memory"),
                      "allocation %ld of %ld failing: message '%s'", n, total,
                      graft_ctx_message(ctx));
    }
    graft_ctx_clear(ctx);
    return total;
}

int tu_emit_self(graft_fill *f, size_t index, graft_sink *out, graft_ctx *c)
{
    tu_self_fill *sf = (tu_self_fill *)f;
    const graft_tensor *t = graft_model_tensor(sf->m, index);
    const uint8_t *p;
    void *owned;
    int rc;
    GRAFT_TRY(graft_tensor_bytes(sf->m, t, &p, &owned, c));
    if (!sf->reverse) {
        rc = graft_sink_write(out, p, (size_t)t->nbytes);
    } else {
        size_t es = graft_dtype_size(t->dtype);
        rc = GRAFT_OK;
        for (uint64_t i = t->numel; i-- > 0 && rc == GRAFT_OK;)
            rc = graft_sink_write(out, p + i * es, es);
    }
    free(owned);
    return rc;
}

int tu_rewrite(const char *in, const char *out, bool reverse, graft_ctx *c)
{
    graft_model *m = NULL;
    tu_self_fill f = {{tu_emit_self, NULL}, NULL, reverse};
    int rc = graft_model_open(&m, in, NULL, c);
    if (rc < 0) return rc;
    f.m = m;
    rc = m->format->write(m, out, &f.base, c);
    graft_model_free(m);
    return rc;
}

void tu_same_tensors(const char *a_path, const char *b_path, graft_ctx *c)
{
    graft_model *a = NULL, *b = NULL;
    ck_assert_msg(graft_model_open(&a, a_path, NULL, c) == 0, "%s", graft_ctx_message(c));
    ck_assert_msg(graft_model_open(&b, b_path, NULL, c) == 0, "%s", graft_ctx_message(c));
    ck_assert_uint_eq(graft_model_count(a), graft_model_count(b));
    for (size_t i = 0; i < graft_model_count(a); i++) {
        const graft_tensor *x = graft_model_tensor(a, i), *y = graft_model_tensor(b, i);
        uint8_t hx[32], hy[32];
        ck_assert_str_eq(x->name, y->name);
        ck_assert_int_eq(x->dtype, y->dtype);
        ck_assert_uint_eq(x->ndim, y->ndim);
        for (uint32_t d = 0; d < x->ndim; d++) ck_assert_int_eq(x->shape[d], y->shape[d]);
        ck_assert_int_eq(graft_tensor_sha256(a, x, hx, c), 0);
        ck_assert_int_eq(graft_tensor_sha256(b, y, hy, c), 0);
        ck_assert(memcmp(hx, hy, 32) == 0);
    }
    graft_model_free(a);
    graft_model_free(b);
}

int tu_open_and_hash(graft_ctx *c, void *payload)
{
    graft_model *m = NULL;
    uint8_t digest[32];
    int rc = graft_model_open(&m, payload, NULL, c);
    if (rc < 0) ck_assert_ptr_null(m);  /* a failed open hands nothing back */
    for (size_t i = 0; rc == 0 && i < graft_model_count(m); i++)
        rc = graft_tensor_sha256(m, graft_model_tensor(m, i), digest, c);
    graft_model_free(m);
    return rc;
}

int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
