/*
 * error.h - the error state kept in graft_ctx, and helpers to fill it.
 *
 * The innermost function states the problem with graft_error(); each outer
 * layer that knows a name (file, member, tensor, rule) prefixes it once with
 * graft_error_prefix() and never rewrites the rest.
 */
#ifndef GRAFT_CORE_ERROR_H
#define GRAFT_CORE_ERROR_H

#include "graft.h"

#define GRAFT_MSG_MAX 1024

struct graft_ctx {
    int status;                 /* code of the last failure, GRAFT_OK if none */
    char msg[GRAFT_MSG_MAX];    /* one line, NUL-terminated */
    long fail_alloc_at;         /* tests: make the Nth allocation fail (0 = never) */
    long alloc_count;           /* allocations made through graft_malloc */
    uint64_t mem_budget;        /* graft_ctx_set_memory_budget; 0: the default */
    bool no_sync;               /* graft_ctx_set_sync(ctx, 0) */
    struct graft_verify *verify; /* a source's checksums still running: commits wait */
};

/* Set status and message; returns `code` so callers can `return graft_error(...)`. */
int graft_error(graft_ctx *ctx, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepend "<prefix>: " to the current message; returns the current status. */
int graft_error_prefix(graft_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* GRAFT_ENOMEM with a message naming what was being allocated. */
int graft_error_oom(graft_ctx *ctx, const char *what);

/* Allocation wrappers: count allocations so tests can inject failures.
 * They set no message; callers report with graft_error_oom. */
void *graft_malloc(graft_ctx *ctx, size_t n);
void *graft_calloc(graft_ctx *ctx, size_t n, size_t size);
void *graft_realloc(graft_ctx *ctx, void *p, size_t n);
char *graft_strdup(graft_ctx *ctx, const char *s);

#define GRAFT_TRY(expr)                                                       \
    do {                                                                      \
        int graft_try_rc_ = (expr);                                           \
        if (graft_try_rc_ < 0) return graft_try_rc_;                          \
    } while (0)

#define GRAFT_FAIL_IF(cond, ctx, code, ...)                                   \
    do {                                                                      \
        if (cond) return graft_error((ctx), (code), __VA_ARGS__);             \
    } while (0)

/* Checked arithmetic on sizes that come from input. */
static inline bool graft_mul_overflow(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}
static inline bool graft_add_overflow(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_add_overflow(a, b, out);
}

#endif
