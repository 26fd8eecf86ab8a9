/* testutil.h - helpers shared by the Check unit tests. */
#ifndef GRAFT_TESTUTIL_H
#define GRAFT_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "format.h"

#include <stdbool.h>

/* Write bytes to a fresh file in a temporary folder; returns its path (static buffer per call slot). */
const char *tu_write_temp(const char *name, const void *data, size_t n);
/* A fresh temporary folder, removed at exit. */
const char *tu_temp_dir(void);
/* Read a whole file; caller frees.  NULL if missing. */
uint8_t *tu_read_file(const char *path, size_t *n);
/* A context and an arena on it, fresh for each test: add tu_arena_setup and
 * tu_arena_teardown with tcase_add_checked_fixture. */
extern graft_ctx *tu_ctx;
extern graft_arena tu_arena;
void tu_arena_setup(void);
void tu_arena_teardown(void);
/*
 * Allocation-failure sweep.  run(ctx, payload) does one whole job and frees
 * what it made; it returns 0 or a negative graft status, and may assert what
 * a failure must leave behind (no output file, ...).  It is run once to count
 * its allocations (it must succeed), then once per allocation with exactly
 * that one failing: every such run must return GRAFT_ENOMEM with an "out of
 * memory" message in ctx.  Returns the number of allocations (> 0).
 */
typedef int (*tu_alloc_fn)(graft_ctx *ctx, void *payload);
long tu_each_alloc_failure(graft_ctx *ctx, tu_alloc_fn run, void *payload);
/* A fill taking each tensor's bytes from the skeleton itself, as is or with
 * the elements in reverse flat order. */
typedef struct tu_self_fill {
    graft_fill base;
    const graft_model *m;
    bool reverse;
} tu_self_fill;
int tu_emit_self(graft_fill *f, size_t index, graft_sink *out, graft_ctx *c);
/* Open `in` and write a copy of it to `out` in its own format (tu_self_fill). */
int tu_rewrite(const char *in, const char *out, bool reverse, graft_ctx *c);
/* Both files open, with the same names, dtypes, shapes and element bytes. */
void tu_same_tensors(const char *a_path, const char *b_path, graft_ctx *c);
/* tu_each_alloc_failure job: open the file `payload` and hash every tensor. */
int tu_open_and_hash(graft_ctx *c, void *payload);
/* Run one suite; returns the process exit code. */
int tu_run(Suite *s);

#endif
