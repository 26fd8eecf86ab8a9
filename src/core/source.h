/*
 * source.h - a file opened read-only and mapped into memory.
 *
 * Files are opened and mapped here only; parsers get (ptr, len) views.
 * An empty file maps to data == NULL, size == 0.
 */
#ifndef GRAFT_CORE_SOURCE_H
#define GRAFT_CORE_SOURCE_H

#include "error.h"

typedef struct graft_source {
    char *path;          /* as given; owned */
    const uint8_t *data; /* the whole file, read-only; NULL when size == 0 */
    size_t size;         /* bytes */
} graft_source;

/* Map `path` read-only.  A folder is GRAFT_EFORMAT with a message saying so. */
int graft_source_open(graft_source **out, const char *path, graft_ctx *ctx);
/* A source over memory the caller keeps alive (fuzzers, tests); not unmapped. */
int graft_source_from_buffer(graft_source **out, const char *name,
                             const uint8_t *data, size_t size, graft_ctx *ctx);
void graft_source_free(graft_source *s);
/* Tell the kernel the bytes [off, off+len) of a mapped source were consumed:
 * their pages leave this process's resident set (they stay in the page cache
 * and are read back if touched again), so streaming a model keeps memory flat.
 * Ranges are shrunk to whole pages; a buffer source is left alone. */
void graft_source_release(const graft_source *s, uint64_t off, uint64_t len);
/* A running checksum fn (graft_crc32, graft_crc32c) over the n mapped bytes
 * at offset off of s, 2 MiB at a time, each step's pages dropped after it:
 * a pass over a whole file keeps almost nothing resident, which matters
 * now that it runs beside a transplant (core/verify.h). */
uint32_t graft_source_checksum(const graft_source *s, uint64_t off, uint64_t n,
                               uint32_t (*fn)(uint32_t, const void *, size_t));
/* n bytes at off into dst with pread from the file behind the mapping (a
 * buffer source: memcpy): a scattered read of a large file that must not
 * fault its pages into the resident set, nor pay a fault for each. */
int graft_source_read(const graft_source *s, uint64_t off, void *dst, size_t n, graft_ctx *ctx);
/* The file descriptor behind a mapped source (for copy_file_range), or -1
 * for a buffer source. */
int graft_source_fd(const graft_source *s);
struct stat;
/* Open `path` read-only as a regular file: O_NONBLOCK, then fstat, so a FIFO,
 * device or socket is refused (GRAFT_EFORMAT, naming its kind) instead of
 * hanging the reader; a folder reads "is a folder".  Returns the fd (with
 * *st filled) or a negative status. */
int graft_open_regular(const char *path, struct stat *st, graft_ctx *ctx);
/* "a FIFO", "a socket", ... for an st_mode. */
const char *graft_file_kind(unsigned mode);
/* True when path names a directory. */
bool graft_path_is_dir(const char *path);

#endif
