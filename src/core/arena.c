/* arena.c - bump allocator in growing blocks (see arena.h). */
#include "arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK (64 * 1024)

struct graft_arena_block {
    graft_arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void graft_arena_init(graft_arena *a, graft_ctx *ctx)
{
    a->head = NULL;
    a->ctx = ctx;
}

void graft_arena_free(graft_arena *a)
{
    graft_arena_block *b = a->head;
    while (b) {
        graft_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

void *graft_arena_alloc(graft_arena *a, size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    graft_arena_block *b = a->head;
    if (need < n) return NULL;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > ARENA_BLOCK ? need : ARENA_BLOCK;
        if (cap > SIZE_MAX - sizeof *b) return NULL;
        b = graft_malloc(a->ctx, sizeof *b + cap);
        if (!b) return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    memset(p, 0, n);
    return p;
}

char *graft_arena_strndup(graft_arena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX) return NULL;
    char *d = graft_arena_alloc(a, n + 1);
    if (d) {
        if (n) memcpy(d, s, n);  /* an empty span may have no pointer (an unnamed node) */
        d[n] = '\0';
    }
    return d;
}

char *graft_arena_strdup(graft_arena *a, const char *s)
{
    return graft_arena_strndup(a, s, strlen(s));
}

char *graft_arena_printf(graft_arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *d = n < 0 ? NULL : graft_arena_alloc(a, (size_t)n + 1);
    if (d) vsnprintf(d, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return d;
}
