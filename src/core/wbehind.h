/*
 * wbehind.h - write-behind for a sink (internal to src/core/sink.c): a
 * thread pwrites filled buffers at their offsets while the caller fills
 * the next.  Buffers are GRAFT_WB_BUF bytes and belong to the graft_wb: take
 * one with graft_wb__buffer, give it back (filled or not) with submit.
 * Errors are errnos; the caller words them.
 */
#ifndef GRAFT_CORE_WBEHIND_H
#define GRAFT_CORE_WBEHIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRAFT_WB_BUF ((size_t)1 << 20)

typedef struct graft_wb graft_wb;

/* 0, or -1 (no memory, no thread): the caller writes synchronously.
 * kick: ask for writeback as the file grows (see graft_wb__kick). */
int graft_wb__start(graft_wb **out, int fd, bool kick);
/* A free buffer; waits while all are queued. */
uint8_t *graft_wb__buffer(graft_wb *w);
/* Queue n bytes of p (a buffer from graft_wb__buffer) for offset off. */
void graft_wb__submit(graft_wb *w, uint8_t *p, uint64_t off, size_t n);
/* Queue n bytes of the caller's memory at p for offset off, without a
 * copy.  p must stay untouched until graft_wb__wait on the ticket returned
 * (or graft_wb__drain) returns. */
uint64_t graft_wb__lend(graft_wb *w, const uint8_t *p, uint64_t off, size_t n);
/* Wait until the job of a ticket, and all before it, are written; the first
 * errno so far, or 0. */
int graft_wb__wait(graft_wb *w, uint64_t ticket);
/* The first failed write's errno so far, 0 if none. */
int graft_wb__error(graft_wb *w);
/* Wait until everything queued is written; the first errno, or 0. */
int graft_wb__drain(graft_wb *w);
/* Drain, end the thread, free the buffers; the first errno, or 0.  NULL: 0. */
int graft_wb__stop(graft_wb *w);

/* Count n more bytes written to fd in *pending; past GRAFT_WB_KICK, start
 * the kernel writing the file's dirty pages back (without waiting), so the
 * fsync before commit finds little left to write.  One counter a thread. */
#define GRAFT_WB_KICK ((uint64_t)32 << 20)
void graft_wb__kick(int fd, uint64_t *pending, uint64_t n);
/* The same for n bytes the caller wrote to w's file itself (copy_file_range):
 * the kick goes to w's kicker thread, so the caller does not wait for it. */
void graft_wb__written(graft_wb *w, uint64_t n);

#endif
