/*
 * zip.h - a read-only view of a zip archive held in memory (PyTorch
 * archives, .npz, .keras).  The central directory is parsed and checked once;
 * stored members are then borrowed in place, deflated ones are inflated.
 */
#ifndef GRAFT_CORE_ZIP_H
#define GRAFT_CORE_ZIP_H

#include "error.h"

#define GRAFT_ZIP_MAX_ENTRIES (1u << 20)
#define GRAFT_ZIP_MAX_RATIO 1032u              /* deflate's largest expansion */
#define GRAFT_ZIP_MAX_MEMBER (256ull << 30)    /* bytes of one extracted member */

typedef struct graft_zip_entry {
    const char *name;      /* NUL-terminated; owned by the archive */
    size_t name_len;
    uint16_t method;       /* 0 stored, 8 deflated */
    uint16_t flags;
    uint32_t crc32;
    uint64_t csize;        /* bytes in the archive */
    uint64_t usize;        /* bytes once extracted */
    uint64_t header_offset;/* local file header */
    uint64_t data_offset;  /* first byte of the member's data */
} graft_zip_entry;

typedef struct graft_zip {
    graft_zip_entry *entries; /* count entries, central-directory order; owned */
    size_t count;
    const uint8_t *data;      /* the archive; borrowed */
    size_t size;
    char *names;              /* storage for entry names; owned */
} graft_zip;

/* Parse and check the central directory and every local header: names in
 * both agree, no name twice, no two members share bytes, and no deflated
 * member claims more than GRAFT_ZIP_MAX_RATIO times its compressed size or
 * any member more than GRAFT_ZIP_MAX_MEMBER bytes. */
int graft_zip_open(graft_zip **out, const uint8_t *data, size_t size, graft_ctx *ctx);
void graft_zip_free(graft_zip *z);
/* For an archive whose members are copied into an output: every name is a
 * relative forward-slash path without '..' components (no "../../evil.txt",
 * "/etc/x", "C:x" or backslashes). */
int graft_zip_check_copyable(const graft_zip *z, graft_ctx *ctx);
/* The same for one name (graft_zipw refuses to write any other). */
int graft_zip_check_name(const char *name, graft_ctx *ctx);
/* The entry with this exact name, or NULL. */
const graft_zip_entry *graft_zip_find(const graft_zip *z, const char *name);
/* A stored member's bytes in place, once its CRC-32 matches the directory's
 * (checked in 8 MiB steps; with src, the archive's source, each checked step's
 * pages are released); GRAFT_EFORMAT for a compressed one. */
struct graft_source;
int graft_zip_borrow(const graft_zip *z, const graft_zip_entry *e,
                     const struct graft_source *src, const uint8_t **out, graft_ctx *ctx);
/* The first n <= usize extracted bytes of a member into dst; when n == usize
 * the CRC-32 is checked too. */
int graft_zip_extract(const graft_zip *z, const graft_zip_entry *e, uint8_t *dst,
                      uint64_t n, graft_ctx *ctx);
/* Bytes [skip, skip+n) of a member handed to fn in pieces of at most 1 MiB,
 * inflating with flat memory (the whole member is inflated, and its CRC-32
 * checked, whatever the range); fn's error stops it. */
typedef int (*graft_zip_piece_fn)(void *arg, const uint8_t *p, size_t n);
int graft_zip_stream(const graft_zip *z, const graft_zip_entry *e, uint64_t skip, uint64_t n,
                     graft_zip_piece_fn fn, void *arg, graft_ctx *ctx);

#endif
