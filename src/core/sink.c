/* sink.c - atomic, buffered output files (see sink.h). */
#define _GNU_SOURCE
#include "sink.h"
#include "source.h"
#include "verify.h"
#include "wbehind.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SINK_BUF GRAFT_WB_BUF
#define WB_MIN ((uint64_t)4 << 20) /* smaller outputs stay on one thread */

struct graft_sink {
    graft_ctx *ctx;
    int fd;
    char *path, *tmp;     /* owned */
    uint8_t *buf;         /* SINK_BUF bytes; owned */
    size_t fill;          /* bytes waiting in buf */
    uint64_t flushed;     /* bytes already in the file */
    bool crc_on, crc32c_on;
    bool anon;            /* O_TMPFILE: no name until tmp_path or commit */
    bool mkdirs;          /* the output's folders do not exist yet: commit makes them */
    bool synced;          /* graft_sink_sync ran, at `flushed` == synced_at */
    uint64_t synced_at;
    uint32_t crc, crc32c;
    bool in_memory;       /* graft_sink_open_mem: bytes collect in mem, no file */
    uint8_t *mem;         /* owned; memcap bytes */
    size_t memcap;
    graft_wb *wb;         /* write-behind, once the output is large; owns buf then */
    bool wb_tried;
    uint64_t unsynced;    /* bytes this thread wrote since the last writeback kick */
};

static void release(graft_sink *s);

/*
 * Named temporary files alive in this process, for a signal handler that
 * must remove them (graft_unlink_temporaries).  Slots are claimed under a
 * lock; the handler only reads them.
 */
#define MAX_LIVE 64
static char *volatile live[MAX_LIVE];
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;

static void live_add(char *path)
{
    pthread_mutex_lock(&live_lock);
    for (size_t i = 0; i < MAX_LIVE; i++)
        if (!live[i]) {
            live[i] = path;
            break;
        }
    pthread_mutex_unlock(&live_lock);
}

static void live_remove(const char *path)
{
    pthread_mutex_lock(&live_lock);
    for (size_t i = 0; i < MAX_LIVE; i++)
        if (live[i] == path) live[i] = NULL;
    pthread_mutex_unlock(&live_lock);
}

void graft_unlink_temporaries(void)
{
    for (size_t i = 0; i < MAX_LIVE; i++) {
        char *p = live[i];
        if (p && p[0]) unlink(p);
    }
}

/* A fresh name ".<base>.graft-XXXXXX" beside the output, created (mkostemp). */
static int named_temp(graft_sink *s, int flags)
{
    const char *slash = strrchr(s->path, '/');
    size_t dirlen = slash ? (size_t)(slash - s->path + 1) : 0;
    sprintf(s->tmp, "%.*s.%s.graft-XXXXXX", (int)dirlen, s->path, s->path + dirlen);
    int fd = mkostemp(s->tmp, flags);
    if (fd < 0) s->tmp[0] = '\0';
    else live_add(s->tmp);
    return fd;
}

/* mkdir every missing folder on the way to file `path`. */
static void make_folders(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return;
    for (char *c = buf + 1; (c = strchr(c, '/')); c++) {
        *c = '\0';
        (void)mkdir(buf, 0777);
        *c = '/';
    }
}

/* The folder output being written by this thread (graft_sink_folder_output). */
static _Thread_local const char *folder_root;

void graft_sink_folder_output(const char *dir) { folder_root = dir; }

static bool below_folder_root(const char *path)
{
    size_t n = folder_root ? strlen(folder_root) : 0;
    return n && strncmp(path, folder_root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

#ifdef O_TMPFILE
/* An unnamed file in the deepest existing folder of `dir` (a folder output
 * whose folders commit makes; linkat keeps to one file system). */
static int tmpfile_in_ancestor(char *dir, mode_t mode)
{
    for (char *c; (c = strrchr(dir, '/')) && c != dir;) {
        *c = '\0';
        int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
        if (fd >= 0 || errno != ENOENT) return fd;
    }
    return -1;
}
#endif

int graft_sink_open(graft_sink **out, const char *final_path, graft_ctx *ctx)
{
    graft_sink *s;
    const char *slash = strrchr(final_path, '/');
    size_t dirlen = slash ? (size_t)(slash - final_path + 1) : 0;
    mode_t um = umask(0);

    umask(um);
    *out = NULL;
    s = graft_calloc(ctx, 1, sizeof *s);
    if (!s) return graft_error_oom(ctx, "an output");
    s->ctx = ctx;
    s->fd = -1;
    s->path = graft_strdup(ctx, final_path);
    s->tmp = graft_malloc(ctx, strlen(final_path) + 32);
    s->buf = graft_malloc(ctx, SINK_BUF);
    if (!s->path || !s->tmp || !s->buf) {
        graft_sink_abort(s);
        return graft_error_oom(ctx, "an output buffer");
    }
    s->tmp[0] = '\0';
#ifdef O_TMPFILE
    /* An unnamed file in the output's folder: a killed process (even by
     * SIGKILL) leaves nothing behind; commit links it into place. */
    {
        char *dir = graft_strdup(ctx, dirlen ? final_path : ".");
        if (!dir) {
            graft_sink_abort(s);
            return graft_error_oom(ctx, "a path");
        }
        if (dirlen) dir[dirlen > 1 ? dirlen - 1 : 1] = '\0';
        s->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666 & ~um);
        if (s->fd < 0 && errno == ENOENT && dirlen && below_folder_root(final_path))
            s->mkdirs = (s->fd = tmpfile_in_ancestor(dir, 0666 & ~um)) >= 0;
        free(dir);
        s->anon = s->fd >= 0;
    }
#endif
    if (s->fd < 0 && dirlen && below_folder_root(final_path))
        make_folders(final_path); /* the named fallback needs them */
    if (s->fd < 0 && (s->fd = named_temp(s, O_CLOEXEC)) >= 0)
        fchmod(s->fd, 0666 & ~um); /* mkstemp makes 0600; outputs are ordinary files */
    if (s->fd < 0) {
        int e = errno;
        graft_sink_abort(s);
        return graft_error(ctx, GRAFT_EIO, "%s: cannot create a temporary file beside it: %s",
                           final_path, strerror(e));
    }
    *out = s;
    return GRAFT_OK;
}

/* The memory form: append (or overwrite at s->flushed) n bytes of p. */
static int mem_put(graft_sink *s, uint64_t at, const uint8_t *p, size_t n)
{
    if (at + n > s->memcap) {
        size_t cap = s->memcap ? s->memcap : 4096;
        while (cap < at + n) {
            if (cap > SIZE_MAX / 2) return graft_error_oom(s->ctx, "an in-memory output");
            cap *= 2;
        }
        uint8_t *m = graft_realloc(s->ctx, s->mem, cap);
        if (!m) return graft_error_oom(s->ctx, "an in-memory output");
        s->mem = m;
        s->memcap = cap;
    }
    memcpy(s->mem + at, p, n);
    return GRAFT_OK;
}

/* n more bytes went into the file from this thread: count them toward the
 * next writeback kick, which the writer thread's kicker makes if there is
 * one, so this thread does not wait for it. */
static void wrote(graft_sink *s, uint64_t n)
{
    if (s->ctx->no_sync) return; /* kicks only shorten the fsync */
    if (s->wb) graft_wb__written(s->wb, n);
    else graft_wb__kick(s->fd, &s->unsynced, n);
}

static int write_all(graft_sink *s, const uint8_t *p, size_t n)
{
    if (s->in_memory) {
        GRAFT_TRY(mem_put(s, s->flushed, p, n));
        s->flushed += n;
        return GRAFT_OK;
    }
    while (n) {
        ssize_t k = write(s->fd, p, n < GRAFT_WRITE_PIECE ? n : GRAFT_WRITE_PIECE);
        if (k < 0) {
            if (errno == EINTR) continue;
            return graft_error(s->ctx, GRAFT_EIO, "%s: write failed: %s", s->path,
                               strerror(errno));
        }
        p += k;
        n -= (size_t)k;
        s->flushed += (uint64_t)k;
        wrote(s, (uint64_t)k);
    }
    return GRAFT_OK;
}

static int wb_failed(graft_sink *s, int e)
{
    return graft_error(s->ctx, GRAFT_EIO, "%s: write failed: %s", s->path, strerror(e));
}

static int flush(graft_sink *s)
{
    if (s->wb) { /* hand the buffer to the writer thread */
        if (s->fill) {
            graft_wb__submit(s->wb, s->buf, s->flushed, s->fill);
            s->flushed += s->fill;
            s->fill = 0;
            s->buf = graft_wb__buffer(s->wb);
        }
        int e = graft_wb__error(s->wb);
        return e ? wb_failed(s, e) : GRAFT_OK;
    }
    int rc = write_all(s, s->buf, s->fill);
    s->fill = 0;
    return rc;
}

/* Everything handed to the writer thread is in the file. */
static int drain(graft_sink *s)
{
    GRAFT_TRY(flush(s));
    int e = s->wb ? graft_wb__drain(s->wb) : 0;
    return e ? wb_failed(s, e) : GRAFT_OK;
}

/* Past WB_MIN bytes, go on with a write-behind thread (or stay on this one
 * if it cannot start).  Its writes are pwrites at offsets, so the file
 * position no longer matters. */
static void maybe_write_behind(graft_sink *s, uint64_t more)
{
    if (s->wb || s->wb_tried || s->in_memory || graft_sink_tell(s) + more < WB_MIN) return;
    s->wb_tried = true;
    if (flush(s) < 0) return; /* the error is in ctx; the next write reports it again */
    if (graft_wb__start(&s->wb, s->fd, !s->ctx->no_sync) < 0) return;
    free(s->buf);
    s->buf = graft_wb__buffer(s->wb);
}

static void checksum(graft_sink *s, const uint8_t *p, size_t n)
{
    if (s->crc_on) s->crc = graft_crc32(s->crc, p, n);
    if (s->crc32c_on) s->crc32c = graft_crc32c(s->crc32c, p, n);
}

int graft_sink_write(graft_sink *s, const void *data, size_t n)
{
    const uint8_t *p = data;
    checksum(s, p, n);
    maybe_write_behind(s, n);
    while (s->wb && n) { /* copied into the writer's buffers */
        size_t k = SINK_BUF - s->fill < n ? SINK_BUF - s->fill : n;
        memcpy(s->buf + s->fill, p, k);
        s->fill += k, p += k, n -= k;
        if (s->fill == SINK_BUF) GRAFT_TRY(flush(s));
    }
    if (!n) return GRAFT_OK;
    if (n >= SINK_BUF) { /* large tensors go straight through */
        GRAFT_TRY(flush(s));
        return write_all(s, p, n);
    }
    if (s->fill + n > SINK_BUF) GRAFT_TRY(flush(s));
    memcpy(s->buf + s->fill, p, n);
    s->fill += n;
    return GRAFT_OK;
}

uint8_t *graft_sink_room(graft_sink *s, size_t *room)
{
    maybe_write_behind(s, SINK_BUF);
    *room = SINK_BUF - s->fill;
    return s->buf + s->fill;
}

int graft_sink_filled(graft_sink *s, size_t n)
{
    checksum(s, s->buf + s->fill, n);
    s->fill += n;
    return s->fill == SINK_BUF ? flush(s) : GRAFT_OK;
}

int graft_sink_copy_range(graft_sink *s, int fd, uint64_t off, uint64_t n)
{
    bool first = true;
    if (s->in_memory || s->crc_on || s->crc32c_on || fd < 0) return 1;
    maybe_write_behind(s, n); /* for its kicker: the copy does not wait for writeback */
    GRAFT_TRY(drain(s)); /* the writer thread's queue is in the file first */
    while (n) {
        loff_t in = (loff_t)off, out = (loff_t)s->flushed;
        /* in steps, so writeback can start while the rest is copied */
        size_t step = n > GRAFT_WB_KICK ? (size_t)GRAFT_WB_KICK : (size_t)n;
        ssize_t k = copy_file_range(fd, &in, s->fd, &out, step, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0 && first && (k == 0 || errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                                errno == EOPNOTSUPP || errno == EBADF || errno == EPERM))
            return 1; /* this kernel or file system cannot: the caller writes */
        if (k <= 0)
            return graft_error(s->ctx, GRAFT_EIO, "%s: copying %llu bytes failed: %s", s->path,
                               (unsigned long long)n, k < 0 ? strerror(errno) : "source ended");
        first = false;
        off += (uint64_t)k, n -= (uint64_t)k, s->flushed += (uint64_t)k;
        wrote(s, (uint64_t)k);
    }
    /* later writes go on from the end (write() uses the file position) */
    if (lseek(s->fd, (off_t)s->flushed, SEEK_SET) < 0)
        return graft_error(s->ctx, GRAFT_EIO, "%s: seek failed: %s", s->path, strerror(errno));
    return 0;
}

int graft_sink_fill(graft_sink *s, uint8_t b, uint64_t n)
{
    uint8_t chunk[4096];
    memset(chunk, b, sizeof chunk);
    while (n) {
        size_t k = n > sizeof chunk ? sizeof chunk : (size_t)n;
        GRAFT_TRY(graft_sink_write(s, chunk, k));
        n -= k;
    }
    return GRAFT_OK;
}

int graft_sink_reopen(graft_sink *s, int *fd, graft_ctx *ctx)
{
    char proc[64];
    *fd = -1;
    if (s->in_memory) return graft_error(ctx, GRAFT_ERROR, "an in-memory output has no file");
    GRAFT_TRY(drain(s));
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", s->fd);
    *fd = open(s->anon ? proc : s->tmp, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return graft_error(ctx, GRAFT_EIO, "%s: cannot reopen the output being written: %s",
                           s->path, strerror(errno));
    return GRAFT_OK;
}

int graft_sink_pwrite(graft_sink *s, uint64_t off, const void *data, size_t n)
{
    const uint8_t *p = data;
    if (off + n > graft_sink_tell(s))
        return graft_error(s->ctx, GRAFT_ERROR, "%s: patch past the end", s->path);
    GRAFT_TRY(drain(s)); /* the patch may fall in a buffer still queued */
    if (s->in_memory) return mem_put(s, off, p, n);
    int e = graft_pwrite_all(s->fd, p, n, off);
    return e ? wb_failed(s, e) : GRAFT_OK;
}

int graft_sink_reserve(graft_sink *s, uint64_t n, uint64_t *off)
{
    if (s->in_memory || s->crc_on || s->crc32c_on) return 1;
    GRAFT_TRY(flush(s));
    *off = s->flushed;
    if (lseek(s->fd, (off_t)(s->flushed + n), SEEK_SET) < 0)
        return graft_error(s->ctx, GRAFT_EIO, "%s: seek failed: %s", s->path, strerror(errno));
    s->flushed += n;
    return GRAFT_OK;
}

int graft_pwrite_all(int fd, const void *data, size_t n, uint64_t off)
{
    const uint8_t *p = data;
    while (n) {
        ssize_t k = pwrite(fd, p, n < GRAFT_WRITE_PIECE ? n : GRAFT_WRITE_PIECE, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return k < 0 ? errno : EIO;
        p += k, off += (uint64_t)k, n -= (size_t)k;
    }
    return 0;
}

int graft_sink_pwrite_reserved(const graft_sink *s, uint64_t off, const void *data, size_t n)
{
    return graft_pwrite_all(s->fd, data, n, off);
}

int graft_sink_write_at(graft_sink *s, uint64_t off, const void *data, size_t n)
{
    const uint8_t *p = data;
    maybe_write_behind(s, n);
    if (!s->wb) {
        int e = graft_sink_pwrite_reserved(s, off, p, n);
        return e ? wb_failed(s, e) : GRAFT_OK;
    }
    while (n) {
        size_t k = n < SINK_BUF ? n : SINK_BUF;
        uint8_t *b = graft_wb__buffer(s->wb);
        memcpy(b, p, k);
        graft_wb__submit(s->wb, b, off, k);
        p += k, off += k, n -= k;
    }
    int e = graft_wb__error(s->wb);
    return e ? wb_failed(s, e) : GRAFT_OK;
}

int graft_sink_lend_at(graft_sink *s, uint64_t off, const void *p, size_t n, uint64_t *ticket)
{
    *ticket = 0;
    maybe_write_behind(s, n);
    if (!s->wb) return graft_sink_write_at(s, off, p, n);
    *ticket = graft_wb__lend(s->wb, p, off, n);
    int e = graft_wb__error(s->wb);
    return e ? wb_failed(s, e) : GRAFT_OK;
}

int graft_sink_lend(graft_sink *s, const void *p, size_t n, uint64_t *ticket)
{
    *ticket = 0;
    maybe_write_behind(s, n);
    if (!s->wb || n < SINK_BUF) return graft_sink_write(s, p, n); /* short: a copy is cheaper */
    checksum(s, p, n);
    GRAFT_TRY(flush(s)); /* what is buffered goes first */
    *ticket = graft_wb__lend(s->wb, p, s->flushed, n);
    s->flushed += n;
    int e = graft_wb__error(s->wb);
    return e ? wb_failed(s, e) : GRAFT_OK;
}

int graft_sink_wait(graft_sink *s, uint64_t ticket)
{
    int e = s->wb && ticket ? graft_wb__wait(s->wb, ticket) : 0;
    return e ? wb_failed(s, e) : GRAFT_OK;
}

int graft_sink_settle(graft_sink *s)
{
    return s->wb ? drain(s) : GRAFT_OK;
}

uint64_t graft_sink_tell(const graft_sink *s) { return s->flushed + s->fill; }
const char *graft_sink_path(const graft_sink *s) { return s->path; }
/* An unnamed file gets a name here, for libraries that reopen it by path
 * (libhdf5): linked beside the output as a named temp would have been. */
const char *graft_sink_tmp_path(const graft_sink *cs)
{
    graft_sink *s = (graft_sink *)cs; /* the name is made once, on demand */
    if (s->wb && drain(s) < 0) return ""; /* a library may read it by name */
    if (s->anon && !s->tmp[0]) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", s->fd);
        if (s->mkdirs) make_folders(s->path);
        for (int tries = 0; tries < 100; tries++) {
            int fd = named_temp(s, O_CLOEXEC); /* reserve a name... */
            if (fd < 0) break;
            close(fd);
            unlink(s->tmp);
            if (linkat(AT_FDCWD, proc, AT_FDCWD, s->tmp, AT_SYMLINK_FOLLOW) == 0) break;
            live_remove(s->tmp); /* ...and take it, unless someone was quicker */
            s->tmp[0] = '\0';
            if (errno != EEXIST) break;
        }
    }
    return s->tmp;
}

void graft_sink_crc32_begin(graft_sink *s)
{
    s->crc_on = true;
    s->crc = 0;
}

uint32_t graft_sink_crc32_end(graft_sink *s)
{
    s->crc_on = false;
    return s->crc;
}

void graft_sink_crc32c_begin(graft_sink *s)
{
    s->crc32c_on = true;
    s->crc32c = 0;
}

uint32_t graft_sink_crc32c_end(graft_sink *s)
{
    s->crc32c_on = false;
    return s->crc32c;
}

static void release(graft_sink *s)
{
    if (s->wb) {
        graft_wb__submit(s->wb, s->buf, 0, 0); /* buf back among its buffers */
        graft_wb__stop(s->wb);
        s->buf = NULL;
    }
    if (s->tmp) live_remove(s->tmp);
    if (s->fd >= 0) close(s->fd);
    free(s->mem);
    free(s->buf);
    free(s->tmp);
    free(s->path);
    free(s);
}

int graft_sink_sync(graft_sink *s)
{
    int rc;
    if (s->in_memory) return GRAFT_OK;
    rc = drain(s); /* the writer thread's queue too */
    if (rc == GRAFT_OK && !s->ctx->no_sync && fsync(s->fd) < 0)
        rc = graft_error(s->ctx, GRAFT_EIO, "%s: fsync failed: %s", s->path, strerror(errno));
    s->synced = rc == GRAFT_OK;
    s->synced_at = s->flushed;
    return rc;
}

int graft_sink_commit(graft_sink *s)
{
    int rc;
    if (!s) return GRAFT_OK;
    if (s->in_memory) {
        graft_ctx *ctx = s->ctx;
        release(s);
        return graft_error(ctx, GRAFT_ERROR, "an in-memory output cannot be committed");
    }
    /* bytes read from a source whose checksums are still running: wait */
    if (s->ctx->verify && (rc = graft_verify_wait(s->ctx->verify, s->ctx)) < 0) {
        graft_sink_abort(s);
        return rc;
    }
    rc = s->synced && !s->fill && s->flushed == s->synced_at ? GRAFT_OK : graft_sink_sync(s);
    /* unnamed: link it in place when nothing is there yet, else name it
     * beside the output and rename that over the old file */
    if (rc == GRAFT_OK && s->anon && !s->tmp[0]) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", s->fd);
        if (s->mkdirs) make_folders(s->path);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, s->path, AT_SYMLINK_FOLLOW) == 0) {
            release(s);
            return GRAFT_OK;
        }
        if (errno != EEXIST || !graft_sink_tmp_path(s)[0])
            rc = graft_error(s->ctx, GRAFT_EIO, "%s: cannot link the new file into place: %s",
                             s->path, strerror(errno));
    }
    if (rc == GRAFT_OK && close(s->fd) < 0)
        rc = graft_error(s->ctx, GRAFT_EIO, "%s: close failed: %s", s->path, strerror(errno));
    s->fd = -1;
    if (rc == GRAFT_OK && rename(s->tmp, s->path) < 0)
        rc = graft_error(s->ctx, GRAFT_EIO, "%s: cannot rename the temporary file into place: %s",
                         s->path, strerror(errno));
    if (rc < 0 && s->tmp[0]) unlink(s->tmp);
    release(s);
    return rc;
}

void graft_sink_abort(graft_sink *s)
{
    if (!s) return;
    if (s->tmp && s->tmp[0]) unlink(s->tmp);
    release(s);
}

int graft_sink_open_mem(graft_sink **out, graft_ctx *ctx)
{
    graft_sink *s = graft_calloc(ctx, 1, sizeof *s);
    *out = NULL;
    if (!s) return graft_error_oom(ctx, "an in-memory output");
    s->ctx = ctx;
    s->fd = -1;
    s->in_memory = true;
    s->path = graft_strdup(ctx, "(memory)");
    s->buf = graft_malloc(ctx, SINK_BUF);
    if (!s->path || !s->buf) {
        graft_sink_abort(s);
        return graft_error_oom(ctx, "an in-memory output");
    }
    *out = s;
    return GRAFT_OK;
}

int graft_sink_mem(graft_sink *s, const uint8_t **p, size_t *n)
{
    GRAFT_FAIL_IF(!s->in_memory, s->ctx, GRAFT_ERROR, "%s: not an in-memory output", s->path);
    GRAFT_TRY(flush(s));
    *p = s->mem;
    *n = (size_t)s->flushed;
    return GRAFT_OK;
}

/* ---- CRC-32C, slicing-by-8 ------------------------------------------- */

static uint32_t crc32c_table[8][256];

static void crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc32c_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc32c_table[t][i] = (crc32c_table[t - 1][i] >> 8) ^
                                 crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#include <wmmintrin.h>
#include <smmintrin.h>
#define GRAFT_CRC32C_HW 1

/* a(x) * b(x) mod P, bit-reflected (x^0 is the top bit), as zlib's multmodp. */
static uint32_t crc32c_mulmod(uint32_t a, uint32_t b)
{
    uint32_t p = 0;
    for (uint32_t m = 1u << 31; m; m >>= 1) {
        if (a & m) p ^= b;
        b = b & 1 ? (b >> 1) ^ 0x82f63b78u : b >> 1;
    }
    return p;
}

/* x^(8n) mod P: what appending n zero bytes multiplies a CRC register by. */
static uint32_t crc32c_shift_bytes(uint64_t n)
{
    uint32_t r = 1u << 31, sq = 1u << 23; /* x^0, x^8 */
    for (; n; n >>= 1, sq = crc32c_mulmod(sq, sq))
        if (n & 1) r = crc32c_mulmod(r, sq);
    return r;
}

/* The crc32 instruction takes 3 cycles but issues every cycle: three
 * independent lanes over adjacent blocks, joined by shifting the first two
 * past the blocks after them, run it at ~3x one lane's ~8 GB/s. */
#define CRC32C_LANE 8192
static uint32_t crc32c_lane1, crc32c_lane2; /* x^(8 LANE), x^(16 LANE) mod P */

static void crc32c_lanes_init(void)
{
    crc32c_lane1 = crc32c_shift_bytes(CRC32C_LANE);
    crc32c_lane2 = crc32c_shift_bytes(2 * CRC32C_LANE);
}

/* SSE4.2's crc32 instruction computes CRC-32C: ~8 GB/s a lane against ~1.5
 * for slicing-by-8, which made CRCs the larger part of a TF checkpoint write. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
                                                            size_t n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    uint64_t c = ~crc;
    for (; n && ((uintptr_t)p & 7); n--) c = _mm_crc32_u8((uint32_t)c, *p++);
    if (n >= 3 * CRC32C_LANE) pthread_once(&once, crc32c_lanes_init);
    for (; n >= 3 * CRC32C_LANE; n -= 3 * CRC32C_LANE, p += 3 * CRC32C_LANE) {
        uint64_t a = c, b = 0, d = 0;
        for (size_t i = 0; i < CRC32C_LANE; i += 8) {
            uint64_t wa, wb, wd;
            memcpy(&wa, p + i, 8);
            memcpy(&wb, p + CRC32C_LANE + i, 8);
            memcpy(&wd, p + 2 * CRC32C_LANE + i, 8);
            a = _mm_crc32_u64(a, wa);
            b = _mm_crc32_u64(b, wb);
            d = _mm_crc32_u64(d, wd);
        }
        c = crc32c_mulmod(crc32c_lane2, (uint32_t)a) ^ crc32c_mulmod(crc32c_lane1, (uint32_t)b) ^
            (uint32_t)d;
    }
    for (; n >= 32; n -= 32, p += 32) {
        uint64_t w[4];
        memcpy(w, p, sizeof w);
        c = _mm_crc32_u64(c, w[0]);
        c = _mm_crc32_u64(c, w[1]);
        c = _mm_crc32_u64(c, w[2]);
        c = _mm_crc32_u64(c, w[3]);
    }
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, sizeof w);
        c = _mm_crc32_u64(c, w);
    }
    for (; n; n--) c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

/*
 * CRC-32 (zip's) by carry-less multiplication: 64-byte blocks folded four
 * lanes at a time, then to 128 bits, 64, and a Barrett reduction, with the
 * bit-reflected constants of Intel's "Fast CRC Computation for Generic
 * Polynomials Using PCLMULQDQ" (as zlib-ng and Chromium's zlib use them).
 * ~10 GB/s against ~2 for zlib's tables: CRC-32 was the largest single
 * cost of reading a .pth source.  Takes len >= 64, a multiple of 16, and
 * the running value pre-inverted; graft_crc32 does the rest with zlib.
 */
#define GRAFT_CRC32_HW 1
__attribute__((target("sse4.1,pclmul"))) static uint32_t crc32_fold(uint32_t crc,
                                                                     const uint8_t *p,
                                                                     size_t len)
{
    const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596, 0x0154442bd4);
    const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
    const __m128i k5k0 = _mm_set_epi64x(0, 0x0163cd6124);
    const __m128i poly = _mm_set_epi64x(0x01f7011641, 0x01db710641);
    __m128i x1 = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i x2 = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(const void *)(p + 32));
    __m128i x4 = _mm_loadu_si128((const __m128i *)(const void *)(p + 48));
    __m128i x0 = k1k2, x5, x6, x7, x8;
    x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
    p += 64, len -= 64;
    for (; len >= 64; p += 64, len -= 64) {
        x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x6 = _mm_clmulepi64_si128(x2, x0, 0x00);
        x7 = _mm_clmulepi64_si128(x3, x0, 0x00);
        x8 = _mm_clmulepi64_si128(x4, x0, 0x00);
        x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
        x2 = _mm_clmulepi64_si128(x2, x0, 0x11);
        x3 = _mm_clmulepi64_si128(x3, x0, 0x11);
        x4 = _mm_clmulepi64_si128(x4, x0, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x5),
                           _mm_loadu_si128((const __m128i *)(const void *)p));
        x2 = _mm_xor_si128(_mm_xor_si128(x2, x6),
                           _mm_loadu_si128((const __m128i *)(const void *)(p + 16)));
        x3 = _mm_xor_si128(_mm_xor_si128(x3, x7),
                           _mm_loadu_si128((const __m128i *)(const void *)(p + 32)));
        x4 = _mm_xor_si128(_mm_xor_si128(x4, x8),
                           _mm_loadu_si128((const __m128i *)(const void *)(p + 48)));
    }
    x0 = k3k4; /* four lanes into one */
    x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, x0, 0x11), x2), x5);
    x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, x0, 0x11), x3), x5);
    x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, x0, 0x11), x4), x5);
    for (; len >= 16; p += 16, len -= 16) {
        x2 = _mm_loadu_si128((const __m128i *)(const void *)p);
        x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, x0, 0x11), x2), x5);
    }
    /* 128 bits to 64, then Barrett to 32 */
    x2 = _mm_clmulepi64_si128(x1, x0, 0x10);
    x3 = _mm_setr_epi32(~0, 0, ~0, 0);
    x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x2);
    x0 = k5k0;
    x2 = _mm_srli_si128(x1, 4);
    x1 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, x3), x0, 0x00), x2);
    x0 = poly;
    x2 = _mm_clmulepi64_si128(_mm_and_si128(x1, x3), x0, 0x10);
    x2 = _mm_clmulepi64_si128(_mm_and_si128(x2, x3), x0, 0x00);
    x1 = _mm_xor_si128(x1, x2);
    return (uint32_t)_mm_extract_epi32(x1, 1);
}
#endif

static bool crc32c_hw_allowed = true;

uint32_t graft_crc32(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;
#ifdef GRAFT_CRC32_HW
    if (n >= 64 && crc32c_hw_allowed && __builtin_cpu_supports("pclmul") &&
        __builtin_cpu_supports("sse4.1")) {
        size_t k = n & ~(size_t)15;
        crc = ~crc32_fold(~crc, p, k);
        p += k, n -= k;
    }
#endif
    while (n) { /* zlib takes uInt lengths */
        size_t k = n > (1u << 30) ? (1u << 30) : n;
        crc = (uint32_t)crc32(crc, p, (uInt)k);
        p += k, n -= k;
    }
    return crc;
}

bool graft_crc32c__use_hw(bool on)
{
    bool had = crc32c_hw_allowed;
    crc32c_hw_allowed = on;
    return had;
}

uint32_t graft_crc32c(uint32_t crc, const void *data, size_t n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    const uint8_t *p = data;
#ifdef GRAFT_CRC32C_HW
    if (n && crc32c_hw_allowed && __builtin_cpu_supports("sse4.2")) return crc32c_hw(crc, p, n);
#endif
    pthread_once(&once, crc32c_init);
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        crc = crc32c_table[7][lo & 0xff] ^ crc32c_table[6][(lo >> 8) & 0xff] ^
              crc32c_table[5][(lo >> 16) & 0xff] ^ crc32c_table[4][lo >> 24] ^
              crc32c_table[3][p[4]] ^ crc32c_table[2][p[5]] ^ crc32c_table[1][p[6]] ^
              crc32c_table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

int graft_copy_file_pending(const char *from, const char *to, graft_sink **out, graft_ctx *ctx)
{
    graft_source *src = NULL;
    graft_sink *s = NULL;
    int rc = graft_source_open(&src, from, ctx);
    *out = NULL;
    if (rc == 0) rc = graft_sink_open(&s, to, ctx);
    if (rc == 0 && src->size) {
        rc = graft_sink_copy_range(s, graft_source_fd(src), 0, src->size);
        if (rc == 1) rc = graft_sink_write(s, src->data, src->size);
    }
    if (rc == 0) rc = graft_sink_sync(s);
    if (rc == 0) {
        *out = s;
        s = NULL;
    }
    graft_sink_abort(s);
    graft_source_free(src);
    return rc;
}

int graft_copy_file(const char *from, const char *to, graft_ctx *ctx)
{
    graft_sink *s = NULL;
    GRAFT_TRY(graft_copy_file_pending(from, to, &s, ctx));
    return graft_sink_commit(s);
}
