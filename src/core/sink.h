/*
 * sink.h - an output file written atomically.
 *
 * On Linux bytes go to an unnamed file (O_TMPFILE) in the output's folder,
 * which graft_sink_commit() fsyncs and links into place: a process killed
 * even by SIGKILL leaves nothing.  Elsewhere (or where the filesystem lacks
 * O_TMPFILE, or a library needs the file by name) it is a named temporary
 * beside the final path (".<name>.graft-XXXXXX"), renamed into place; the
 * CLI's signal handler removes those with graft_unlink_temporaries().  Either
 * way a crash never leaves a partial file at the final path, and
 * graft_sink_abort() removes the temporary file.  Writes are buffered; an optional running
 * CRC-32 (zip) or CRC-32C (TensorFlow) covers the bytes written while on.
 */
#ifndef GRAFT_CORE_SINK_H
#define GRAFT_CORE_SINK_H

#include "error.h"

typedef struct graft_sink graft_sink;

/* Create the temporary file for final_path (mode 0644 before umask). */
int graft_sink_open(graft_sink **out, const char *final_path, graft_ctx *ctx);
/* A writer of a folder output (a SavedModel, an .mlpackage, a TF.js
 * folder) names it here while it writes, NULL after: graft_sink_open then
 * accepts files below `dir` whose folders do not exist yet, keeps them
 * unnamed beside the nearest existing one, and commit makes the folders
 * (so a killed writer leaves no folder).  Per thread. */
void graft_sink_folder_output(const char *dir);
int graft_sink_write(graft_sink *s, const void *p, size_t n);
/* Write in place instead of copying in: the free part of the sink's buffer
 * (*room >= 1 bytes), then graft_sink_filled with how many of them were
 * written, before any other call on s.  Saves a producer's pass over the
 * bytes (a cast's output went through a buffer of its own, then here). */
uint8_t *graft_sink_room(graft_sink *s, size_t *room);
int graft_sink_filled(graft_sink *s, size_t n);
/* Append n bytes of the file fd at off, copied by the kernel
 * (copy_file_range: no pass through user memory, as cp does).  0 when
 * done; 1 when this sink cannot (in memory, a running checksum, or a file
 * system or kernel that refuses at once) and the caller must write them;
 * < 0 on an error, with the message set. */
int graft_sink_copy_range(graft_sink *s, int fd, uint64_t off, uint64_t n);
/* n copies of byte b. */
int graft_sink_fill(graft_sink *s, uint8_t b, uint64_t n);
/* Overwrite bytes already written (header fix-ups); does not move the end. */
int graft_sink_pwrite(graft_sink *s, uint64_t off, const void *p, size_t n);
/* Set aside the next n bytes of the file, for graft_sink_pwrite in any order
 * (what is never written reads as zeros); *off is where they start.  1 when
 * this sink cannot: in memory, or a running checksum would miss them. */
int graft_sink_reserve(graft_sink *s, uint64_t n, uint64_t *off);
/* A pwrite into reserved space that touches nothing else of the sink, so
 * threads may write disjoint ranges at once: 0, or an errno (no message). */
int graft_sink_pwrite_reserved(const graft_sink *s, uint64_t off, const void *p, size_t n);
/* The same, from the thread that writes the sink, possibly behind it (so
 * the bytes are copied); 0, or < 0 with the error set. */
int graft_sink_write_at(graft_sink *s, uint64_t off, const void *p, size_t n);
/* graft_sink_write_at and graft_sink_write without the copy: the writer
 * thread writes from p itself, so p must stay as it is until
 * graft_sink_wait on *ticket (or graft_sink_settle) returns.  A sink with no
 * writer thread writes at once (*ticket 0).  0, or < 0 with the error set. */
int graft_sink_lend_at(graft_sink *s, uint64_t off, const void *p, size_t n, uint64_t *ticket);
int graft_sink_lend(graft_sink *s, const void *p, size_t n, uint64_t *ticket);
int graft_sink_wait(graft_sink *s, uint64_t ticket);
/* Wait until every lent range is in the file; 0, or < 0 with the error set. */
int graft_sink_settle(graft_sink *s);
/*
 * Every write to an output goes in pieces of at most GRAFT_WRITE_PIECE
 * bytes.  The kernel backs a larger write with larger page-cache folios,
 * taken whole from free memory; on this VM, free blocks of 2 MiB are handed
 * back to the host (free page reporting, order 9), and writing into memory
 * split from them cost a host fault per page.  Alternated run for run:
 * B2 with 4 MiB writes 3.4-3.8 s, 1 MiB 0.50-0.60 s; L1 Keras (1.1 GB) with
 * 1 MiB writes 6.3-8.7 s, 512 KiB 5.7-9.1 s, 256 KiB 1.29-1.66 s; and
 * right after a 1.1 GB file was deleted, 256 KiB 3.6-7.6 s, 64 KiB
 * 1.12-1.26 s, 16 KiB 1.14-1.26 s.  More calls cost nothing measurable.
 * It does not help once free memory is nearly all in such blocks (writing
 * GBs right after GBs were freed): cp slows down as much then.
 */
#define GRAFT_WRITE_PIECE ((size_t)64 << 10)
/* pwrite all n bytes (in pieces, through EINTR): 0, or an errno. */
int graft_pwrite_all(int fd, const void *p, size_t n, uint64_t off);
/* Bytes written so far. */
uint64_t graft_sink_tell(const graft_sink *s);
/* Running checksums over bytes passed to graft_sink_write/fill from now on. */
void graft_sink_crc32_begin(graft_sink *s);
uint32_t graft_sink_crc32_end(graft_sink *s);
void graft_sink_crc32c_begin(graft_sink *s);
uint32_t graft_sink_crc32c_end(graft_sink *s);
/* The final path, and the temporary one (for libraries that write by path:
 * an unnamed file is given its name here). */
const char *graft_sink_path(const graft_sink *s);
const char *graft_sink_tmp_path(const graft_sink *s);
/* Flush, and open the bytes written so far for reading (an unnamed file
 * through /proc/self/fd, without naming it); *fd is the caller's to close. */
int graft_sink_reopen(graft_sink *s, int *fd, graft_ctx *ctx);
/* Finish: flush, fsync, rename into place, free.  On failure the temporary
 * file is removed.  Accepts NULL (no-op). */
int graft_sink_commit(graft_sink *s);
/* Flush and fsync now, so that a later commit only links the file into
 * place: a set of files then appears together (written nothing after). */
int graft_sink_sync(graft_sink *s);
/* A sink collecting its bytes in memory (to compare emitted tensors before
 * choosing a layout); free it with graft_sink_abort, never commit it. */
int graft_sink_open_mem(graft_sink **out, graft_ctx *ctx);
/* The bytes of an in-memory sink so far; borrowed until the next write. */
int graft_sink_mem(graft_sink *s, const uint8_t **p, size_t *n);
/* Give up: remove the temporary file, free.  Accepts NULL. */
void graft_sink_abort(graft_sink *s);

/* CRC-32C (Castagnoli), as TensorFlow and LevelDB use; `crc` is the running value. */
uint32_t graft_crc32c(uint32_t crc, const void *p, size_t n);
/* CRC-32 (zip, gzip), as zlib's crc32() computes it, by PCLMULQDQ where
 * the CPU has it. */
uint32_t graft_crc32(uint32_t crc, const void *p, size_t n);
/* Tests: allow (true) or forbid (false) the CPU's crc32 and pclmul
 * instructions, so the portable paths are checked on machines that have
 * them.  Returns the old value. */
bool graft_crc32c__use_hw(bool on);

/* Copy file `from` to `to` atomically through a sink (skeleton members kept as they are). */
int graft_copy_file(const char *from, const char *to, graft_ctx *ctx);
/* The same into a synced sink left to the caller to commit (or abort): a
 * file of a folder output, linked in with the others. */
int graft_copy_file_pending(const char *from, const char *to, graft_sink **out, graft_ctx *ctx);

#endif
