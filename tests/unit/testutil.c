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

int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
