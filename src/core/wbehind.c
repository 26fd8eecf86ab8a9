/*
 * wbehind.c - a sink's write-behind thread (see wbehind.h).
 *
 * Copying a buffer into the page cache (write / pwrite) was a quarter of
 * an apply's CPU time, all of it on the thread that also reads, permutes
 * and casts.  Here a second thread takes filled buffers off a queue and
 * pwrites each at its offset, while the caller fills the next one.  A few
 * buffers circulate: the caller blocks only when all are queued.
 */
#define _GNU_SOURCE
#include "wbehind.h"
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define WB_COUNT 4

typedef struct job {
    uint8_t *p;
    uint64_t off;
    size_t n;
    bool lent; /* the caller's memory (graft_wb__lend), not one of ours */
} job;

/* Room for lent jobs too: a caller lends many rows of one buffer. */
#define WB_QUEUE 64

struct graft_wb {
    int fd;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* one condition for both sides: few waits, few buffers */
    uint8_t *free_[WB_COUNT];
    int nfree;
    job queue[WB_QUEUE];
    int head, count;
    bool busy, stop;
    int err; /* the first failed write's errno */
    uint64_t queued, done; /* jobs so far: the tickets of graft_wb__lend */
    uint64_t pending; /* bytes written since the last kick (writer thread's) */
    /* Kicks go to a thread of their own: a 32 MB one spends 10-15 ms
     * allocating blocks and submitting the writes, which held up the
     * writes behind it (B1 3% faster this way). */
    pthread_t kicker;
    pthread_cond_t kcv;
    bool kick, has_kicker, kick_req;
};

/*
 * An fsync of a 500 MB output took 0.2-0.3 s on its own, a fifth of an
 * apply, because nothing had been written back yet.  Asking for writeback
 * as the output grows lets the disk work while graft computes: the final
 * fsync then waits for the last few MB.  Errors are left to that fsync
 * (a pipe or a file system without it just says no here).
 */
static void writeback(int fd)
{
#ifdef SYNC_FILE_RANGE_WRITE
    (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd;
#endif
}

void graft_wb__kick(int fd, uint64_t *pending, uint64_t n)
{
    *pending += n;
    if (*pending < GRAFT_WB_KICK) return;
    *pending = 0;
    writeback(fd);
}

/* n more bytes are in the file (w->mu held): past GRAFT_WB_KICK it is the
 * kicker's turn, or, with no kicker, the caller's (true: outside the lock). */
static bool count_written(graft_wb *w, uint64_t n)
{
    if (!w->kick || (w->pending += n) < GRAFT_WB_KICK) return false;
    w->pending = 0;
    if (!w->has_kicker) return true;
    w->kick_req = true;
    pthread_cond_signal(&w->kcv);
    return false;
}

void graft_wb__written(graft_wb *w, uint64_t n)
{
    pthread_mutex_lock(&w->mu);
    bool due = count_written(w, n);
    pthread_mutex_unlock(&w->mu);
    if (due) writeback(w->fd);
}

static void *kicker(void *arg)
{
    graft_wb *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->kick_req && !w->stop) pthread_cond_wait(&w->kcv, &w->mu);
        if (!w->kick_req) break;
        w->kick_req = false;
        pthread_mutex_unlock(&w->mu);
        writeback(w->fd);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Under no lock; the writer has stopped (or never started). */
static void stop_kicker(graft_wb *w)
{
    if (!w->has_kicker) return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->kcv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->kicker, NULL);
    pthread_cond_destroy(&w->kcv);
    w->has_kicker = false;
}

static void *writer(void *arg)
{
    graft_wb *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->count && !w->stop) pthread_cond_wait(&w->cv, &w->mu);
        if (!w->count) break;
        job j = w->queue[w->head];
        w->head = (w->head + 1) % WB_QUEUE;
        w->count--;
        w->busy = true;
        bool skip = w->err != 0; /* after a failure only the buffers come back */
        pthread_mutex_unlock(&w->mu);
        int e = skip ? 0 : graft_pwrite_all(w->fd, j.p, j.n, j.off);
        pthread_mutex_lock(&w->mu);
        if (!e && !skip && count_written(w, j.n)) {
            pthread_mutex_unlock(&w->mu);
            writeback(w->fd);
            pthread_mutex_lock(&w->mu);
        }
        if (e && !w->err) w->err = e;
        if (!j.lent) w->free_[w->nfree++] = j.p;
        w->done++;
        w->busy = false;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int graft_wb__start(graft_wb **out, int fd, bool kick)
{
    graft_wb *w = calloc(1, sizeof *w);
    *out = NULL;
    if (!w) return -1;
    w->fd = fd;
    w->kick = kick;
    for (; w->nfree < WB_COUNT; w->nfree++)
        if (!(w->free_[w->nfree] = malloc(GRAFT_WB_BUF))) goto fail;
    if (pthread_mutex_init(&w->mu, NULL)) goto fail;
    if (pthread_cond_init(&w->cv, NULL)) {
        pthread_mutex_destroy(&w->mu);
        goto fail;
    }
    /* before the writer, which reads has_kicker: without it, the writer
     * kicks for itself */
    if (kick && pthread_cond_init(&w->kcv, NULL) == 0) {
        w->has_kicker = pthread_create(&w->kicker, NULL, kicker, w) == 0;
        if (!w->has_kicker) pthread_cond_destroy(&w->kcv);
    }
    if (pthread_create(&w->thread, NULL, writer, w)) {
        stop_kicker(w);
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        goto fail;
    }
    *out = w;
    return 0;
fail:
    for (int i = 0; i < w->nfree; i++) free(w->free_[i]);
    free(w);
    return -1;
}

uint8_t *graft_wb__buffer(graft_wb *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->nfree) pthread_cond_wait(&w->cv, &w->mu);
    uint8_t *p = w->free_[--w->nfree];
    pthread_mutex_unlock(&w->mu);
    return p;
}

/* Queue j (w->mu held), waiting for room while lent jobs fill the queue. */
static void enqueue(graft_wb *w, job j)
{
    while (w->count == WB_QUEUE) pthread_cond_wait(&w->cv, &w->mu);
    w->queue[(w->head + w->count) % WB_QUEUE] = j;
    w->count++;
    w->queued++;
}

void graft_wb__submit(graft_wb *w, uint8_t *p, uint64_t off, size_t n)
{
    pthread_mutex_lock(&w->mu);
    if (n == 0) /* nothing to write: straight back */
        w->free_[w->nfree++] = p;
    else
        enqueue(w, (job){p, off, n, false});
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

uint64_t graft_wb__lend(graft_wb *w, const uint8_t *p, uint64_t off, size_t n)
{
    pthread_mutex_lock(&w->mu);
    if (n) {
        enqueue(w, (job){(uint8_t *)p, off, n, true});
        pthread_cond_broadcast(&w->cv);
    }
    uint64_t ticket = w->queued;
    pthread_mutex_unlock(&w->mu);
    return ticket;
}

int graft_wb__wait(graft_wb *w, uint64_t ticket)
{
    pthread_mutex_lock(&w->mu);
    while (w->done < ticket) pthread_cond_wait(&w->cv, &w->mu);
    int e = w->err;
    pthread_mutex_unlock(&w->mu);
    return e;
}

int graft_wb__error(graft_wb *w)
{
    pthread_mutex_lock(&w->mu);
    int e = w->err;
    pthread_mutex_unlock(&w->mu);
    return e;
}

int graft_wb__drain(graft_wb *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->count || w->busy) pthread_cond_wait(&w->cv, &w->mu);
    int e = w->err;
    pthread_mutex_unlock(&w->mu);
    return e;
}

int graft_wb__stop(graft_wb *w)
{
    if (!w) return 0;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL); /* it empties the queue first */
    stop_kicker(w);
    int e = w->err;
    for (int i = 0; i < w->nfree; i++) free(w->free_[i]);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return e;
}
