/* error.c - graft_ctx: the last error, and counted allocation. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

graft_ctx *graft_ctx_new(void)
{
    return calloc(1, sizeof(graft_ctx));
}

void graft_ctx_free(graft_ctx *ctx)
{
    free(ctx);
}

const char *graft_ctx_message(const graft_ctx *ctx)
{
    return ctx->msg;
}

int graft_ctx_status(const graft_ctx *ctx)
{
    return ctx->status;
}

void graft_ctx_set_sync(graft_ctx *ctx, int sync)
{
    ctx->no_sync = !sync;
}

void graft_ctx_set_memory_budget(graft_ctx *ctx, uint64_t bytes)
{
    ctx->mem_budget = bytes;
}

void graft_ctx_clear(graft_ctx *ctx)
{
    ctx->status = GRAFT_OK;
    ctx->msg[0] = '\0';
}

/* Replace control characters so a message stays on one line whatever names
 * the input file carried. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

int graft_error(graft_ctx *ctx, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
    va_end(ap);
    one_line(ctx->msg);
    ctx->status = code;
    return code;
}

int graft_error_prefix(graft_ctx *ctx, const char *fmt, ...)
{
    char prefix[GRAFT_MSG_MAX], old[GRAFT_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, ctx->msg, sizeof old);
    /* Truncation is fine: the message just loses its tail. */
    size_t n = strnlen(prefix, sizeof ctx->msg - 3);
    memcpy(ctx->msg, prefix, n);
    memcpy(ctx->msg + n, ": ", 2);
    n += 2;
    size_t k = strnlen(old, sizeof ctx->msg - 1 - n);
    memcpy(ctx->msg + n, old, k);
    ctx->msg[n + k] = '\0';
    one_line(ctx->msg);
    if (ctx->status == GRAFT_OK) ctx->status = GRAFT_ERROR;
    return ctx->status;
}

int graft_error_oom(graft_ctx *ctx, const char *what)
{
    return graft_error(ctx, GRAFT_ENOMEM, "out of memory allocating %s", what);
}

static bool injected_failure(graft_ctx *ctx)
{
    if (!ctx) return false;
    ctx->alloc_count++;
    return ctx->fail_alloc_at > 0 && ctx->alloc_count == ctx->fail_alloc_at;
}

void *graft_malloc(graft_ctx *ctx, size_t n)
{
    if (injected_failure(ctx)) return NULL;
    return malloc(n ? n : 1);
}

void *graft_calloc(graft_ctx *ctx, size_t n, size_t size)
{
    if (injected_failure(ctx)) return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *graft_realloc(graft_ctx *ctx, void *p, size_t n)
{
    if (injected_failure(ctx)) return NULL;
    return realloc(p, n ? n : 1);
}

char *graft_strdup(graft_ctx *ctx, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = graft_malloc(ctx, n);
    if (d) memcpy(d, s, n);
    return d;
}
