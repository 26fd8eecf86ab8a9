/* source.c - read-only memory-mapped input files. */
#define _GNU_SOURCE
#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct source_impl {
    graft_source pub;
    bool mapped;
    int fd; /* mapped: kept open for graft_source_read; else -1 */
};

bool graft_path_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *graft_file_kind(unsigned mode)
{
    switch (mode & S_IFMT) {
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    case S_IFDIR: return "a folder";
    default: return "not a plain file";
    }
}

int graft_open_regular(const char *path, struct stat *st, graft_ctx *ctx)
{
    /* O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever
     * before fstat could refuse it (a hostile external-data location or
     * shard name); reads from a regular file never block anyway. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return graft_error(ctx, errno == ENOENT ? GRAFT_ENOTFOUND : GRAFT_EIO,
                           "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, st) < 0) {
        int e = errno;
        close(fd);
        return graft_error(ctx, GRAFT_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        if (S_ISDIR(st->st_mode)) return graft_error(ctx, GRAFT_EFORMAT, "%s: is a folder", path);
        return graft_error(ctx, GRAFT_EFORMAT, "%s: not a regular file (%s)", path,
                           graft_file_kind(st->st_mode));
    }
    return fd;
}

static int make(graft_source **out, const char *path, graft_ctx *ctx,
                struct source_impl **impl)
{
    *impl = graft_calloc(ctx, 1, sizeof **impl);
    if (!*impl) return graft_error_oom(ctx, "a source");
    (*impl)->fd = -1;
    (*impl)->pub.path = graft_strdup(ctx, path);
    if (!(*impl)->pub.path) {
        free(*impl);
        return graft_error_oom(ctx, "a path");
    }
    *out = &(*impl)->pub;
    return GRAFT_OK;
}

int graft_source_open(graft_source **out, const char *path, graft_ctx *ctx)
{
    struct source_impl *impl = NULL;
    struct stat st;
    void *map;
    int fd;

    *out = NULL;
    fd = graft_open_regular(path, &st, ctx);
    if (fd < 0) return fd;
    if (make(out, path, ctx, &impl) < 0) {
        close(fd);
        return ctx->status;
    }
    if (st.st_size > 0) {
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            graft_source_free(*out);
            *out = NULL;
            return graft_error(ctx, GRAFT_EIO, "%s: cannot map: %s", path, strerror(e));
        }
        impl->pub.data = map;
        impl->pub.size = (size_t)st.st_size;
        impl->mapped = true;
        impl->fd = fd;
        return GRAFT_OK;
    }
    close(fd);
    return GRAFT_OK;
}

int graft_source_from_buffer(graft_source **out, const char *name,
                             const uint8_t *data, size_t size, graft_ctx *ctx)
{
    struct source_impl *impl;
    *out = NULL;
    GRAFT_TRY(make(out, name, ctx, &impl));
    impl->pub.data = size ? data : NULL;
    impl->pub.size = size;
    return GRAFT_OK;
}

void graft_source_release(const graft_source *s, uint64_t off, uint64_t len)
{
    const struct source_impl *impl = (const struct source_impl *)s;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), lo, hi;
    if (!s || !impl->mapped || off >= s->size) return;
    if (len > s->size - off) len = s->size - off;
    lo = (off + page - 1) / page * page;
    hi = (off + len) / page * page;
    if (off + len == s->size) hi = (s->size + page - 1) / page * page; /* the tail page */
    if (hi > lo) madvise((void *)(s->data + lo), (size_t)(hi - lo), MADV_DONTNEED);
}

uint32_t graft_source_checksum(const graft_source *s, uint64_t off, uint64_t n,
                               uint32_t (*fn)(uint32_t, const void *, size_t))
{
    const uint64_t step = (uint64_t)2 << 20;
    uint32_t sum = 0;
    for (uint64_t at = 0; at < n; at += step) {
        size_t k = (size_t)(n - at < step ? n - at : step);
        sum = fn(sum, s->data + off + at, k);
        graft_source_release(s, off + at, k);
    }
    return sum;
}

int graft_source_fd(const graft_source *s)
{
    return ((const struct source_impl *)s)->fd;
}

int graft_source_read(const graft_source *s, uint64_t off, void *dst, size_t n, graft_ctx *ctx)
{
    const struct source_impl *impl = (const struct source_impl *)s;
    uint8_t *d = dst;
    if (off > s->size || n > s->size - off)
        return graft_error(ctx, GRAFT_ERROR, "%s: read of %zu bytes at %llu past the end", s->path,
                           n, (unsigned long long)off);
    if (impl->fd < 0) {
        memcpy(dst, s->data + off, n);
        return GRAFT_OK;
    }
    while (n) {
        ssize_t k = pread(impl->fd, d, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return graft_error(ctx, GRAFT_EIO, "%s: read at %llu failed: %s", s->path,
                               (unsigned long long)off, k < 0 ? strerror(errno) : "file shrank");
        d += k, n -= (size_t)k, off += (uint64_t)k;
    }
    return GRAFT_OK;
}

void graft_source_free(graft_source *s)
{
    struct source_impl *impl = (struct source_impl *)s;
    if (!s) return;
    if (impl->fd >= 0) close(impl->fd);
    if (impl->mapped) munmap((void *)s->data, s->size);
    free(s->path);
    free(impl);
}
