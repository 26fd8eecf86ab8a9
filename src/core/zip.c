/*
 * zip.c - zip archive reader (PKWARE APPNOTE 6.3).
 *
 * Layout read, all little-endian:
 *  1. local file header  "PK\3\4", 30 bytes + name + extra, then the data
 *     (optionally followed by a data descriptor "PK\7\8" we do not need);
 *  2. central directory   "PK\1\2", 46 bytes + name + extra + comment per entry;
 *  3. zip64 end record    "PK\6\6" and locator "PK\6\7" (when counts, sizes or
 *     offsets do not fit 16/32 bits);
 *  4. end record          "PK\5\6", 22 bytes + comment, at most 64 KiB from the end.
 * Sizes and offsets of 0xFFFFFFFF are taken from the zip64 extra field (0x0001).
 */
#include "zip.h"

#include "rd.h"
#include "sink.h"
#include "source.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_END 0x06054b50u
#define SIG_END64 0x06064b50u
#define SIG_LOC64 0x07064b50u

void graft_zip_free(graft_zip *z)
{
    if (!z) return;
    free(z->entries);
    free(z->names);
    free(z);
}

static int find_end(const uint8_t *data, size_t size, size_t *out, graft_ctx *ctx)
{
    size_t lowest = size > 22 + 65535 ? size - 22 - 65535 : 0;
    if (size < 22)
        return graft_error(ctx, GRAFT_ECORRUPT, "zip: %zu bytes is too short for an archive", size);
    for (size_t i = size - 22 + 1; i-- > lowest;) {
        if (graft_le32(data + i) == SIG_END && i + 22 + graft_le16(data + i + 20) <= size) {
            *out = i;
            return GRAFT_OK;
        }
    }
    return graft_error(ctx, GRAFT_ECORRUPT, "zip: no end-of-central-directory record");
}

/* Read the zip64 end record located by the locator just before `end`. */
static int read_end64(const uint8_t *data, size_t size, size_t end, uint64_t *count,
                      uint64_t *cd_size, uint64_t *cd_off, graft_ctx *ctx)
{
    graft_rd r;
    uint32_t sig;
    uint64_t off, rec_size;
    if (end < 20 || graft_le32(data + end - 20) != SIG_LOC64)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "zip: offset 0x%zx: end record needs zip64 but there is no locator", end);
    off = graft_le64(data + end - 20 + 8);
    if (off > size || size - off < 56)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "zip: zip64 end record offset 0x%llx is past the end",
                           (unsigned long long)off);
    graft_rd_init(&r, data + off, size - off, off, ctx);
    GRAFT_TRY(graft_rd_u32le(&r, &sig));
    if (sig != SIG_END64) return graft_rd_fail(&r, "zip: bad zip64 end record signature");
    GRAFT_TRY(graft_rd_u64le(&r, &rec_size));
    GRAFT_TRY(graft_rd_skip(&r, 2 + 2 + 4 + 4 + 8)); /* versions, disks, entries on disk */
    GRAFT_TRY(graft_rd_u64le(&r, count));
    GRAFT_TRY(graft_rd_u64le(&r, cd_size));
    GRAFT_TRY(graft_rd_u64le(&r, cd_off));
    return GRAFT_OK;
}

/* Apply a zip64 extra field: each value is present only if its 32-bit field
 * was saturated, in the order usize, csize, offset. */
static int apply_zip64(graft_rd *extra, graft_zip_entry *e, bool need_u, bool need_c,
                       bool need_o)
{
    while (graft_rd_left(extra) >= 4) {
        uint16_t id, len;
        graft_rd body;
        GRAFT_TRY(graft_rd_u16le(extra, &id));
        GRAFT_TRY(graft_rd_u16le(extra, &len));
        GRAFT_TRY(graft_rd_sub(extra, len, &body));
        if (id != 0x0001) continue;
        if (need_u) GRAFT_TRY(graft_rd_u64le(&body, &e->usize));
        if (need_c) GRAFT_TRY(graft_rd_u64le(&body, &e->csize));
        if (need_o) GRAFT_TRY(graft_rd_u64le(&body, &e->header_offset));
        return GRAFT_OK;
    }
    if (need_u || need_c || need_o)
        return graft_rd_fail(extra, "zip: entry '%s' needs a zip64 extra field", e->name);
    return GRAFT_OK;
}

static int read_central(graft_rd *r, graft_zip_entry *e, char **names, graft_ctx *ctx)
{
    uint32_t sig, csize, usize, off;
    uint16_t nlen, xlen, clen;
    const uint8_t *name;
    graft_rd extra;

    GRAFT_TRY(graft_rd_u32le(r, &sig));
    if (sig != SIG_CENTRAL) {
        r->pos -= 4;
        return graft_rd_fail(r, "zip: bad central directory entry signature");
    }
    GRAFT_TRY(graft_rd_skip(r, 4));  /* versions made by / needed */
    GRAFT_TRY(graft_rd_u16le(r, &e->flags));
    GRAFT_TRY(graft_rd_u16le(r, &e->method));
    GRAFT_TRY(graft_rd_skip(r, 4));  /* time, date */
    GRAFT_TRY(graft_rd_u32le(r, &e->crc32));
    GRAFT_TRY(graft_rd_u32le(r, &csize));
    GRAFT_TRY(graft_rd_u32le(r, &usize));
    GRAFT_TRY(graft_rd_u16le(r, &nlen));
    GRAFT_TRY(graft_rd_u16le(r, &xlen));
    GRAFT_TRY(graft_rd_u16le(r, &clen));
    GRAFT_TRY(graft_rd_skip(r, 8));  /* disk, internal and external attributes */
    GRAFT_TRY(graft_rd_u32le(r, &off));
    GRAFT_TRY(graft_rd_take(r, nlen, &name));
    GRAFT_TRY(graft_rd_sub(r, xlen, &extra));
    GRAFT_TRY(graft_rd_skip(r, clen));
    if (memchr(name, 0, nlen)) return graft_rd_fail(r, "zip: entry name holds a NUL byte");
    memcpy(*names, name, nlen);
    (*names)[nlen] = '\0';
    e->name = *names;
    e->name_len = nlen;
    *names += nlen + 1;
    e->csize = csize;
    e->usize = usize;
    e->header_offset = off;
    GRAFT_TRY(apply_zip64(&extra, e, usize == 0xffffffffu, csize == 0xffffffffu,
                          off == 0xffffffffu));
    (void)ctx;
    return GRAFT_OK;
}

/* Find the data of an entry through its local header and check it fits. */
static int locate_data(const uint8_t *data, size_t size, graft_zip_entry *e, graft_ctx *ctx)
{
    graft_rd r;
    uint32_t sig;
    uint16_t nlen, xlen;
    const uint8_t *lname;
    if (e->header_offset > size)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "zip: entry '%s': local header offset 0x%llx is past the end",
                           e->name, (unsigned long long)e->header_offset);
    graft_rd_init(&r, data + e->header_offset, size - (size_t)e->header_offset,
                  e->header_offset, ctx);
    GRAFT_TRY(graft_rd_u32le(&r, &sig));
    if (sig != SIG_LOCAL)
        return graft_error(ctx, GRAFT_ECORRUPT, "zip: entry '%s': offset 0x%llx: bad local header",
                           e->name, (unsigned long long)e->header_offset);
    GRAFT_TRY(graft_rd_skip(&r, 22));
    GRAFT_TRY(graft_rd_u16le(&r, &nlen));
    GRAFT_TRY(graft_rd_u16le(&r, &xlen));
    GRAFT_TRY(graft_rd_take(&r, nlen, &lname));
    GRAFT_TRY(graft_rd_skip(&r, xlen));
    /* Python's zipfile (so numpy) refuses a member whose names differ */
    if (nlen != e->name_len || memcmp(lname, e->name, nlen) != 0)
        return graft_error(ctx, GRAFT_ECORRUPT, "zip: entry '%s': its local header at offset "
                           "0x%llx names '%.*s'", e->name, (unsigned long long)e->header_offset,
                           (int)(nlen > 200 ? 200 : nlen), (const char *)lname);
    e->data_offset = graft_rd_offset(&r);
    if (e->csize > size - e->data_offset)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "zip: entry '%s': %llu bytes at offset 0x%llx run past the end (%zu bytes)",
                           e->name, (unsigned long long)e->csize,
                           (unsigned long long)e->data_offset, size);
    if (e->flags & 1)
        return graft_error(ctx, GRAFT_EFORMAT, "zip: entry '%s' is encrypted", e->name);
    if (e->method != 0 && e->method != 8)
        return graft_error(ctx, GRAFT_EFORMAT, "zip: entry '%s': compression method %u not supported",
                           e->name, e->method);
    if (e->method == 0 && e->csize != e->usize)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "zip: entry '%s': stored with size %llu but extracted size %llu",
                           e->name, (unsigned long long)e->csize, (unsigned long long)e->usize);
    /* Zip-bomb defences: deflate cannot expand past ~1032:1, so a larger
     * claim is a lie; and no member of a model file is a quarter terabyte. */
    if (e->method == 8 && e->usize / GRAFT_ZIP_MAX_RATIO > e->csize + 1)
        return graft_error(ctx, GRAFT_ECORRUPT, "zip: entry '%s': %llu deflated bytes cannot "
                           "expand to the claimed %llu", e->name, (unsigned long long)e->csize,
                           (unsigned long long)e->usize);
    if (e->usize > GRAFT_ZIP_MAX_MEMBER)
        return graft_error(ctx, GRAFT_ELIMIT, "zip: entry '%s': %llu bytes exceed the cap of %llu",
                           e->name, (unsigned long long)e->usize,
                           (unsigned long long)GRAFT_ZIP_MAX_MEMBER);
    return GRAFT_OK;
}

static int by_name(const void *a, const void *b)
{
    const graft_zip_entry *x = *(const graft_zip_entry *const *)a;
    const graft_zip_entry *y = *(const graft_zip_entry *const *)b;
    return strcmp(x->name, y->name);
}

static int by_header(const void *a, const void *b)
{
    const graft_zip_entry *x = *(const graft_zip_entry *const *)a;
    const graft_zip_entry *y = *(const graft_zip_entry *const *)b;
    return x->header_offset < y->header_offset ? -1 : x->header_offset > y->header_offset;
}

/* No name twice, and members may not share bytes: two entries over one local header
 * (under two names, the name check refuses it first), or one member's data
 * running into the next header, would give one file two views of the same
 * bytes; Python's zipfile refuses it too ("Overlapped entries"). */
static int check_members(const graft_zip *z, graft_ctx *ctx)
{
    const graft_zip_entry **v;
    int rc = GRAFT_OK;
    if (z->count < 2) return GRAFT_OK;
    v = graft_malloc(ctx, z->count * sizeof *v);
    if (!v) return graft_error_oom(ctx, "a zip directory");
    for (size_t i = 0; i < z->count; i++) v[i] = &z->entries[i];
    /* one name twice: graft_zip_find takes the first, Python's zipfile the last */
    qsort(v, z->count, sizeof *v, by_name);
    for (size_t i = 1; i < z->count && rc == 0; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0)
            rc = graft_error(ctx, GRAFT_ECORRUPT, "zip: two entries are named '%s'", v[i]->name);
    qsort(v, z->count, sizeof *v, by_header);
    for (size_t i = 1; i < z->count && rc == 0; i++) {
        const graft_zip_entry *a = v[i - 1], *b = v[i];
        if (a->data_offset + a->csize > b->header_offset)
            rc = graft_error(ctx, GRAFT_ECORRUPT, "zip: entry '%s' (data up to offset 0x%llx) "
                             "overlaps entry '%s' at offset 0x%llx", a->name,
                             (unsigned long long)(a->data_offset + a->csize), b->name,
                             (unsigned long long)b->header_offset);
    }
    free(v);
    return rc;
}

int graft_zip_open(graft_zip **out, const uint8_t *data, size_t size, graft_ctx *ctx)
{
    graft_zip *z = NULL;
    size_t end = 0;
    uint64_t count, cd_size, cd_off;
    graft_rd r;
    char *names;
    int rc;

    *out = NULL;
    GRAFT_TRY(find_end(data, size, &end, ctx));
    count = graft_le16(data + end + 10);
    cd_size = graft_le32(data + end + 12);
    cd_off = graft_le32(data + end + 16);
    if (count == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu ||
        (end >= 20 && graft_le32(data + end - 20) == SIG_LOC64))
        GRAFT_TRY(read_end64(data, size, end, &count, &cd_size, &cd_off, ctx));
    if (count > GRAFT_ZIP_MAX_ENTRIES)
        return graft_error(ctx, GRAFT_ELIMIT, "zip: %llu entries exceeds the cap of %u",
                           (unsigned long long)count, GRAFT_ZIP_MAX_ENTRIES);
    if (cd_off > size || cd_size > size - cd_off)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "zip: central directory [0x%llx, +%llu) lies outside the %zu-byte file",
                           (unsigned long long)cd_off, (unsigned long long)cd_size, size);
    if (count * 46 > cd_size)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "zip: %llu entries cannot fit a %llu-byte central directory",
                           (unsigned long long)count, (unsigned long long)cd_size);

    z = graft_calloc(ctx, 1, sizeof *z);
    if (!z) return graft_error_oom(ctx, "a zip directory");
    z->data = data;
    z->size = size;
    z->entries = graft_calloc(ctx, count ? count : 1, sizeof *z->entries);
    z->names = graft_malloc(ctx, (size_t)cd_size + 1); /* names are shorter than their entries */
    if (!z->entries || !z->names) {
        rc = graft_error_oom(ctx, "a zip directory");
        goto cleanup;
    }
    names = z->names;
    graft_rd_init(&r, data + cd_off, (size_t)cd_size, cd_off, ctx);
    for (uint64_t i = 0; i < count; i++) {
        rc = read_central(&r, &z->entries[i], &names, ctx);
        if (rc < 0) goto cleanup;
        rc = locate_data(data, size, &z->entries[i], ctx);
        if (rc < 0) goto cleanup;
        z->count++;
    }
    if ((rc = check_members(z, ctx)) < 0) goto cleanup;
    *out = z;
    return GRAFT_OK;
cleanup:
    graft_zip_free(z);
    return rc;
}

int graft_zip_check_name(const char *n, graft_ctx *ctx)
{
    const char *c = n;
    if (n[0] == '/' || strchr(n, '\\') || (n[0] && n[1] == ':'))
        return graft_error(ctx, GRAFT_ECORRUPT, "zip: entry '%s' is not a relative "
                           "forward-slash path", n);
    for (;;) {
        size_t k = strcspn(c, "/");
        if (k == 2 && c[0] == '.' && c[1] == '.')
            return graft_error(ctx, GRAFT_ECORRUPT, "zip: entry '%s' has a '..' "
                               "component; it would unpack outside its folder", n);
        if (!c[k]) break;
        c += k + 1;
    }
    return GRAFT_OK;
}

int graft_zip_check_copyable(const graft_zip *z, graft_ctx *ctx)
{
    for (size_t i = 0; i < z->count; i++) GRAFT_TRY(graft_zip_check_name(z->entries[i].name, ctx));
    return GRAFT_OK;
}

const graft_zip_entry *graft_zip_find(const graft_zip *z, const char *name)
{
    for (size_t i = 0; i < z->count; i++)
        if (strcmp(z->entries[i].name, name) == 0) return &z->entries[i];
    return NULL;
}

static uint32_t crc32_of(uint32_t crc, const uint8_t *p, uint64_t n)
{
    return graft_crc32(crc, p, (size_t)n);
}

static int crc_mismatch(const graft_zip_entry *e, uint32_t crc, graft_ctx *ctx)
{
    return graft_error(ctx, GRAFT_ECORRUPT,
                       "zip: entry '%s': CRC-32 %08x does not match the directory's %08x",
                       e->name, crc, e->crc32);
}

int graft_zip_borrow(const graft_zip *z, const graft_zip_entry *e, const graft_source *src,
                     const uint8_t **out, graft_ctx *ctx)
{
    const uint8_t *p = z->data + e->data_offset;
    uint32_t crc;
    if (e->method != 0)
        return graft_error(ctx, GRAFT_EFORMAT, "zip: entry '%s' is compressed", e->name);
    /* dropping checked pages: they are read again only if used */
    crc = src ? graft_source_checksum(src, e->data_offset, e->usize, graft_crc32)
              : crc32_of(0, p, e->usize);
    if (crc != e->crc32) return crc_mismatch(e, crc, ctx);
    *out = p;
    return GRAFT_OK;
}

int graft_zip_extract(const graft_zip *z, const graft_zip_entry *e, uint8_t *dst, uint64_t n,
                      graft_ctx *ctx)
{
    const uint8_t *src = z->data + e->data_offset;
    uint32_t crc;
    if (n > e->usize)
        return graft_error(ctx, GRAFT_ECORRUPT, "zip: entry '%s': asked for %llu of %llu bytes",
                           e->name, (unsigned long long)n, (unsigned long long)e->usize);
    if (e->method == 0) {
        memcpy(dst, src, (size_t)n);
    } else {
        z_stream s;
        memset(&s, 0, sizeof s);
        if (inflateInit2(&s, -15) != Z_OK) return graft_error_oom(ctx, "an inflater");
        uint64_t in_left = e->csize, out_done = 0;
        int zr = Z_OK;
        while (out_done < n && zr == Z_OK) {
            uInt chunk_in = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
            uInt chunk_out = n - out_done > (1u << 30) ? (1u << 30) : (uInt)(n - out_done);
            s.next_in = (Bytef *)(src + (e->csize - in_left));
            s.avail_in = chunk_in;
            s.next_out = dst + out_done;
            s.avail_out = chunk_out;
            zr = inflate(&s, Z_NO_FLUSH);
            in_left -= chunk_in - s.avail_in;
            out_done += chunk_out - s.avail_out;
            if (zr == Z_BUF_ERROR && s.avail_in == 0 && in_left == 0) break;
            if (zr == Z_BUF_ERROR && out_done < n) zr = Z_OK;
        }
        inflateEnd(&s);
        if (out_done < n || (zr != Z_OK && zr != Z_STREAM_END))
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "zip: entry '%s': deflate data is corrupt or short (%llu of %llu bytes)",
                               e->name, (unsigned long long)out_done, (unsigned long long)n);
    }
    if (n == e->usize && (crc = crc32_of(0, dst, n)) != e->crc32) return crc_mismatch(e, crc, ctx);
    return GRAFT_OK;
}

int graft_zip_stream(const graft_zip *z, const graft_zip_entry *e, uint64_t skip, uint64_t n,
                     graft_zip_piece_fn fn, void *arg, graft_ctx *ctx)
{
    enum { CHUNK = 1u << 20 };
    uint8_t *out = NULL;
    z_stream st;
    uint64_t in_left = e->csize, done = 0;
    uint32_t crc = 0;
    int zr = Z_OK, rc = GRAFT_OK;

    if (skip > e->usize || n > e->usize - skip)
        return graft_error(ctx, GRAFT_ECORRUPT, "zip: entry '%s': asked for bytes [%llu, +%llu) "
                           "of %llu", e->name, (unsigned long long)skip, (unsigned long long)n,
                           (unsigned long long)e->usize);
    if (e->method == 0) {
        const uint8_t *p = NULL;
        GRAFT_TRY(graft_zip_borrow(z, e, NULL, &p, ctx));
        for (uint64_t off = 0; off < n && rc == 0; off += CHUNK)
            rc = fn(arg, p + skip + off, (size_t)(n - off < CHUNK ? n - off : CHUNK));
        return rc;
    }
    memset(&st, 0, sizeof st);
    if (!(out = graft_malloc(ctx, CHUNK))) return graft_error_oom(ctx, "an inflate buffer");
    if (inflateInit2(&st, -15) != Z_OK) {
        free(out);
        return graft_error_oom(ctx, "an inflater");
    }
    /* the whole member, so the CRC-32 covers it; pieces in [skip, skip+n) go to fn */
    while (rc == 0 && done < e->usize && zr == Z_OK) {
        uInt chunk_in = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
        st.next_in = (Bytef *)(z->data + e->data_offset + (e->csize - in_left));
        st.avail_in = chunk_in;
        st.next_out = out;
        st.avail_out = (uInt)(e->usize - done < CHUNK ? e->usize - done : CHUNK);
        uInt want = st.avail_out;
        zr = inflate(&st, Z_NO_FLUSH);
        in_left -= chunk_in - st.avail_in;
        size_t got = want - st.avail_out;
        crc = graft_crc32(crc, out, got);
        uint64_t lo = done, hi = done + got; /* this piece's place in the member */
        if (hi > skip && lo < skip + n) {
            uint64_t a = lo > skip ? lo : skip, b = hi < skip + n ? hi : skip + n;
            rc = fn(arg, out + (a - lo), (size_t)(b - a));
        }
        done = hi;
        if (zr == Z_BUF_ERROR && got) zr = Z_OK;
    }
    inflateEnd(&st);
    free(out);
    GRAFT_TRY(rc);
    if (done < e->usize || (zr != Z_OK && zr != Z_STREAM_END))
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "zip: entry '%s': deflate data is corrupt or short (%llu of %llu bytes)",
                           e->name, (unsigned long long)done, (unsigned long long)e->usize);
    if (crc != e->crc32) return crc_mismatch(e, crc, ctx);
    return GRAFT_OK;
}
