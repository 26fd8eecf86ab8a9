/*
 * zipw.h - a zip archive writer over graft_sink (PyTorch archives, .npz,
 * .keras).
 *
 * Usage: graft_zipw_new(), then per member graft_zipw_begin(), the bytes
 * (graft_zipw_write(), or for stored members straight to graft_zipw_sink(),
 * e.g. from graft_fill->emit), graft_zipw_end(); or graft_zipw_copy() to copy
 * a member of an existing archive unchanged.  graft_zipw_finish() writes the
 * central directory; the caller then commits or aborts the sink.
 *
 * Local headers are written first and patched in place once the sizes and
 * CRC-32 are known (no data descriptors), so every reader finds them there.
 */
#ifndef GRAFT_CORE_ZIPW_H
#define GRAFT_CORE_ZIPW_H

#include "sink.h"
#include "zip.h"

typedef struct graft_zipw graft_zipw;

#define GRAFT_ZIPW_STORED 0
#define GRAFT_ZIPW_DEFLATED 8
/* size_hint when the member's size is not known in advance. */
#define GRAFT_ZIPW_SIZE_UNKNOWN UINT64_MAX

/**
 * A writer appending to `sink` (borrowed; it must outlive the writer).
 * @param force_zip64  write zip64 records for every member and the end
 *                     record even when sizes fit 32 bits (as PyTorch does)
 * @return GRAFT_OK or GRAFT_ENOMEM
 */
int graft_zipw_new(graft_zipw **out, graft_sink *sink, bool force_zip64, graft_ctx *ctx);
/** Free the writer (not the sink); accepts NULL. */
void graft_zipw_free(graft_zipw *w);
/** The sink, for writing a stored member's bytes directly. */
graft_sink *graft_zipw_sink(graft_zipw *w);

/**
 * Start a member.  `align` (0 or a power of two up to 4096) puts the first
 * data byte at a multiple of it, padding the local header with an 'FB' extra
 * field as PyTorch does.  `size_hint` is the expected uncompressed size or
 * GRAFT_ZIPW_SIZE_UNKNOWN; a zip64 extra field is reserved in the local header
 * when the hint (or force_zip64) says sizes may not fit 32 bits.
 */
int graft_zipw_begin(graft_zipw *w, const char *name, uint32_t align, int method,
                     uint64_t size_hint);
/** Member bytes; deflated members are compressed here. */
int graft_zipw_write(graft_zipw *w, const void *p, size_t n);
/** Close the member: patch its local header with the CRC-32 and sizes. */
int graft_zipw_end(graft_zipw *w);
/** Add a whole member from memory. */
int graft_zipw_add(graft_zipw *w, const char *name, const void *p, size_t n, uint32_t align,
                   int method);
/**
 * Copy member `e` of archive `z` unchanged: same method, CRC-32 and
 * compressed bytes, once its bytes match that CRC-32.  `name` NULL keeps the
 * member's name.
 */
int graft_zipw_copy(graft_zipw *w, const graft_zip *z, const graft_zip_entry *e,
                    const char *name, uint32_t align);
/** Write the central directory and end records.  No member may be open. */
int graft_zipw_finish(graft_zipw *w);

#endif
