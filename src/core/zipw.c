/*
 * zipw.c - zip archive writer (PKWARE APPNOTE 6.3), see zipw.h.
 *
 * Layout written, all little-endian:
 *  1. per member: local file header "PK\3\4" (30 bytes + name + extra), where
 *     extra is an optional zip64 field (id 0x0001: usize, csize as u64) and an
 *     optional 'FB' padding field that aligns the data; then the data.  CRC and
 *     sizes are patched into the header once the member ends;
 *  2. central directory "PK\1\2" (46 bytes + name + zip64 extra for the values
 *     saturated to 0xFFFFFFFF, in the order usize, csize, offset);
 *  3. when needed (or forced): zip64 end record "PK\6\6" (56 bytes) and its
 *     locator "PK\6\7" (20 bytes);
 *  4. end record "PK\5\6" (22 bytes, no comment).
 * Timestamps are 1980-01-01 00:00 so output is reproducible.
 */
#include "zipw.h"

#include "rd.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_END 0x06054b50u
#define SIG_END64 0x06064b50u
#define SIG_LOC64 0x07064b50u
#define DOS_DATE_1980 0x0021u /* 1980-01-01 */
#define MAX32 0xffffffffu
#define FLAG_UTF8 0x0800u

typedef struct member {
    char *name;           /* owned */
    size_t name_len;
    uint16_t method, flags;
    uint32_t crc;
    uint64_t csize, usize;
    uint64_t offset;      /* local header */
    uint64_t data_start;  /* first data byte */
    bool local_z64;       /* local header holds a zip64 extra */
} member;

struct graft_zipw {
    graft_sink *sink;     /* borrowed */
    graft_ctx *ctx;
    bool force_zip64;
    member *members;      /* count entries; owned */
    size_t count, cap;
    bool open;            /* a member is between begin and end */
    bool deflating;       /* the open member goes through zs */
    z_stream zs;
    uint32_t crc;         /* of a deflated member's input */
    uint64_t in_bytes;    /* a deflated member's input size */
};

int graft_zipw_new(graft_zipw **out, graft_sink *sink, bool force_zip64, graft_ctx *ctx)
{
    graft_zipw *w = graft_calloc(ctx, 1, sizeof *w);
    *out = NULL;
    if (!w) return graft_error_oom(ctx, "a zip writer");
    w->sink = sink;
    w->ctx = ctx;
    w->force_zip64 = force_zip64;
    *out = w;
    return GRAFT_OK;
}

void graft_zipw_free(graft_zipw *w)
{
    if (!w) return;
    if (w->deflating) deflateEnd(&w->zs);
    for (size_t i = 0; i < w->count; i++) free(w->members[i].name);
    free(w->members);
    free(w);
}

graft_sink *graft_zipw_sink(graft_zipw *w) { return w->sink; }

static bool non_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return true;
    return false;
}

/* Append a member record and write its local header with CRC and sizes
 * still zero (they are patched by finish_member). */
static int start_member(graft_zipw *w, const char *name, uint32_t align, uint16_t method,
                        bool z64)
{
    uint8_t hdr[30], extra[20 + 4];
    size_t nlen = strlen(name), xlen = 0, pad = 0;
    uint64_t off = graft_sink_tell(w->sink), start;
    bool fb;
    member *m;

    if (w->open)
        return graft_error(w->ctx, GRAFT_ERROR, "zip writer: member '%s' begun while another is open",
                           name);
    /* a tensor named "../../x" must not become a member that unpacks there */
    if (graft_zip_check_name(name, w->ctx) < 0)
        return graft_error_prefix(w->ctx, "%s", graft_sink_path(w->sink));
    if (nlen == 0 || nlen > 0xffff)
        return graft_error(w->ctx, GRAFT_ELIMIT, "zip writer: member name of %zu bytes", nlen);
    if (align > 4096 || (align & (align - 1)))
        return graft_error(w->ctx, GRAFT_ERROR, "zip writer: member '%s': bad alignment %u",
                           name, align);
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        member *nm = graft_realloc(w->ctx, w->members, cap * sizeof *nm);
        if (!nm) return graft_error_oom(w->ctx, "the zip member list");
        w->members = nm;
        w->cap = cap;
    }
    m = &w->members[w->count];
    memset(m, 0, sizeof *m);
    m->name = graft_strdup(w->ctx, name);
    if (!m->name) return graft_error_oom(w->ctx, "a zip member name");
    w->count++;
    m->name_len = nlen;
    m->method = method;
    m->flags = non_ascii(name, nlen) ? FLAG_UTF8 : 0;
    m->offset = off;
    m->local_z64 = z64;

    if (z64) {
        graft_put_le16(extra, 0x0001);
        graft_put_le16(extra + 2, 16);
        memset(extra + 4, 0, 16);
        xlen = 20;
    }
    start = off + 30 + nlen + xlen;
    fb = align > 1 && start % align != 0;
    if (fb) pad = (align - (start + 4) % align) % align;
    graft_put_le32(hdr, SIG_LOCAL);
    graft_put_le16(hdr + 4, z64 ? 45 : method == 8 ? 20 : 10);
    graft_put_le16(hdr + 6, m->flags);
    graft_put_le16(hdr + 8, method);
    graft_put_le16(hdr + 10, 0);
    graft_put_le16(hdr + 12, DOS_DATE_1980);
    memset(hdr + 14, 0, 12);
    graft_put_le16(hdr + 26, (uint16_t)nlen);
    graft_put_le16(hdr + 28, (uint16_t)(xlen + (fb ? 4 + pad : 0)));
    GRAFT_TRY(graft_sink_write(w->sink, hdr, sizeof hdr));
    GRAFT_TRY(graft_sink_write(w->sink, name, nlen));
    GRAFT_TRY(graft_sink_write(w->sink, extra, xlen));
    if (fb) {
        uint8_t field[4] = {'F', 'B', 0, 0};
        graft_put_le16(field + 2, (uint16_t)pad);
        GRAFT_TRY(graft_sink_write(w->sink, field, 4));
        GRAFT_TRY(graft_sink_fill(w->sink, 'Z', pad));
    }
    m->data_start = graft_sink_tell(w->sink);
    w->open = true;
    return GRAFT_OK;
}

/* Record CRC and sizes and patch them into the local header. */
static int finish_member(graft_zipw *w, uint32_t crc, uint64_t csize, uint64_t usize)
{
    member *m = &w->members[w->count - 1];
    uint8_t b[16];
    w->open = false;
    m->crc = crc;
    m->csize = csize;
    m->usize = usize;
    if ((csize >= MAX32 || usize >= MAX32) && !m->local_z64)
        return graft_error(w->ctx, GRAFT_ELIMIT,
                           "zip writer: member '%s' of %llu bytes needs zip64 but was begun "
                           "without a size hint",
                           m->name, (unsigned long long)usize);
    graft_put_le32(b, crc);
    graft_put_le32(b + 4, csize >= MAX32 ? MAX32 : (uint32_t)csize);
    graft_put_le32(b + 8, usize >= MAX32 ? MAX32 : (uint32_t)usize);
    GRAFT_TRY(graft_sink_pwrite(w->sink, m->offset + 14, b, 12));
    if (m->local_z64) {
        graft_put_le64(b, usize);
        graft_put_le64(b + 8, csize);
        GRAFT_TRY(graft_sink_pwrite(w->sink, m->offset + 30 + m->name_len + 4, b, 16));
    }
    return GRAFT_OK;
}

int graft_zipw_begin(graft_zipw *w, const char *name, uint32_t align, int method,
                     uint64_t size_hint)
{
    /* deflate can grow incompressible data slightly: leave room for that */
    bool z64 = w->force_zip64 || size_hint >= MAX32 - (MAX32 >> 10);
    if (method != GRAFT_ZIPW_STORED && method != GRAFT_ZIPW_DEFLATED)
        return graft_error(w->ctx, GRAFT_ERROR, "zip writer: member '%s': method %d", name,
                           method);
    GRAFT_TRY(start_member(w, name, align, (uint16_t)method, z64));
    if (method == GRAFT_ZIPW_DEFLATED) {
        memset(&w->zs, 0, sizeof w->zs);
        if (deflateInit2(&w->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            return graft_error_oom(w->ctx, "a deflater");
        w->deflating = true;
        w->crc = 0;
        w->in_bytes = 0;
    } else {
        graft_sink_crc32_begin(w->sink);
    }
    return GRAFT_OK;
}

/* Run the deflater over its pending input (flush = Z_NO_FLUSH or Z_FINISH). */
static int pump(graft_zipw *w, int flush)
{
    uint8_t out[16384];
    int zr;
    do {
        w->zs.next_out = out;
        w->zs.avail_out = sizeof out;
        zr = deflate(&w->zs, flush);
        if (zr == Z_STREAM_ERROR)
            return graft_error(w->ctx, GRAFT_ERROR, "zip writer: deflate failed");
        GRAFT_TRY(graft_sink_write(w->sink, out, sizeof out - w->zs.avail_out));
    } while (w->zs.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
    return GRAFT_OK;
}

int graft_zipw_write(graft_zipw *w, const void *p, size_t n)
{
    const uint8_t *b = p;
    if (!w->open) return graft_error(w->ctx, GRAFT_ERROR, "zip writer: no member is open");
    if (!w->deflating) return graft_sink_write(w->sink, p, n);
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        w->crc = graft_crc32(w->crc, b, k);
        w->in_bytes += k;
        w->zs.next_in = (Bytef *)(uintptr_t)b;
        w->zs.avail_in = k;
        GRAFT_TRY(pump(w, Z_NO_FLUSH));
        b += k;
        n -= k;
    }
    return GRAFT_OK;
}

int graft_zipw_end(graft_zipw *w)
{
    member *m;
    uint64_t csize;
    if (!w->open) return graft_error(w->ctx, GRAFT_ERROR, "zip writer: no member is open");
    m = &w->members[w->count - 1];
    if (w->deflating) {
        w->zs.next_in = NULL;
        w->zs.avail_in = 0;
        int rc = pump(w, Z_FINISH);
        deflateEnd(&w->zs);
        w->deflating = false;
        if (rc < 0) return rc;
        csize = graft_sink_tell(w->sink) - m->data_start;
        return finish_member(w, w->crc, csize, w->in_bytes);
    }
    csize = graft_sink_tell(w->sink) - m->data_start;
    return finish_member(w, graft_sink_crc32_end(w->sink), csize, csize);
}

int graft_zipw_add(graft_zipw *w, const char *name, const void *p, size_t n, uint32_t align,
                   int method)
{
    GRAFT_TRY(graft_zipw_begin(w, name, align, method, n));
    GRAFT_TRY(graft_zipw_write(w, p, n));
    return graft_zipw_end(w);
}

static int no_piece(void *arg, const uint8_t *p, size_t n)
{
    (void)arg, (void)p, (void)n;
    return GRAFT_OK;
}

int graft_zipw_copy(graft_zipw *w, const graft_zip *z, const graft_zip_entry *e,
                    const char *name, uint32_t align)
{
    /* Copied with its CRC-32: a member that does not match it would make an
     * output every zip reader refuses (checked in steps, inflating with flat
     * memory). */
    GRAFT_TRY(graft_zip_stream(z, e, 0, 0, no_piece, NULL, w->ctx));
    bool z64 = w->force_zip64 || e->csize >= MAX32 || e->usize >= MAX32;
    GRAFT_TRY(start_member(w, name ? name : e->name, align, e->method, z64));
    GRAFT_TRY(graft_sink_write(w->sink, z->data + e->data_offset, (size_t)e->csize));
    return finish_member(w, e->crc32, e->csize, e->usize);
}

/* One central directory record. */
static int write_central(graft_zipw *w, const member *m)
{
    uint8_t hdr[46], extra[4 + 24];
    bool fu = w->force_zip64 || m->usize >= MAX32, fc = w->force_zip64 || m->csize >= MAX32,
         fo = w->force_zip64 || m->offset >= MAX32;
    size_t xlen = 0;
    uint16_t version = fu || fc || fo || m->local_z64 ? 45 : m->method == 8 ? 20 : 10;

    if (fu || fc || fo) {
        xlen = 4;
        uint64_t vals[3] = {m->usize, m->csize, m->offset};
        bool on[3] = {fu, fc, fo};
        for (int i = 0; i < 3; i++) {
            if (!on[i]) continue;
            graft_put_le64(extra + xlen, vals[i]);
            xlen += 8;
        }
        graft_put_le16(extra, 0x0001);
        graft_put_le16(extra + 2, (uint16_t)(xlen - 4));
    }
    graft_put_le32(hdr, SIG_CENTRAL);
    graft_put_le16(hdr + 4, (uint16_t)(0x0300 | version)); /* made by Unix */
    graft_put_le16(hdr + 6, version);
    graft_put_le16(hdr + 8, m->flags);
    graft_put_le16(hdr + 10, m->method);
    graft_put_le16(hdr + 12, 0);
    graft_put_le16(hdr + 14, DOS_DATE_1980);
    graft_put_le32(hdr + 16, m->crc);
    graft_put_le32(hdr + 20, fc ? MAX32 : (uint32_t)m->csize);
    graft_put_le32(hdr + 24, fu ? MAX32 : (uint32_t)m->usize);
    graft_put_le16(hdr + 28, (uint16_t)m->name_len);
    graft_put_le16(hdr + 30, (uint16_t)xlen);
    graft_put_le16(hdr + 32, 0);
    graft_put_le16(hdr + 34, 0);
    graft_put_le16(hdr + 36, 0);
    graft_put_le32(hdr + 38, 0644u << 16); /* -rw-r--r-- */
    graft_put_le32(hdr + 42, fo ? MAX32 : (uint32_t)m->offset);
    GRAFT_TRY(graft_sink_write(w->sink, hdr, sizeof hdr));
    GRAFT_TRY(graft_sink_write(w->sink, m->name, m->name_len));
    return graft_sink_write(w->sink, extra, xlen);
}

int graft_zipw_finish(graft_zipw *w)
{
    uint64_t cd_off = graft_sink_tell(w->sink), cd_size, count = w->count;
    uint8_t end[22];
    bool z64;

    if (w->open)
        return graft_error(w->ctx, GRAFT_ERROR, "zip writer: member '%s' was not ended",
                           w->members[w->count - 1].name);
    for (size_t i = 0; i < w->count; i++) GRAFT_TRY(write_central(w, &w->members[i]));
    cd_size = graft_sink_tell(w->sink) - cd_off;
    z64 = w->force_zip64 || count >= 0xffff || cd_size >= MAX32 || cd_off >= MAX32;
    if (z64) {
        uint8_t rec[56 + 20];
        uint64_t rec_off = graft_sink_tell(w->sink);
        graft_put_le32(rec, SIG_END64);
        graft_put_le64(rec + 4, 56 - 12); /* size of the rest of the record */
        graft_put_le16(rec + 12, 0x0300 | 45);
        graft_put_le16(rec + 14, 45);
        graft_put_le32(rec + 16, 0);      /* this disk */
        graft_put_le32(rec + 20, 0);      /* disk with the directory */
        graft_put_le64(rec + 24, count);
        graft_put_le64(rec + 32, count);
        graft_put_le64(rec + 40, cd_size);
        graft_put_le64(rec + 48, cd_off);
        graft_put_le32(rec + 56, SIG_LOC64);
        graft_put_le32(rec + 60, 0);
        graft_put_le64(rec + 64, rec_off);
        graft_put_le32(rec + 72, 1);      /* total disks */
        GRAFT_TRY(graft_sink_write(w->sink, rec, sizeof rec));
    }
    graft_put_le32(end, SIG_END);
    graft_put_le16(end + 4, 0);
    graft_put_le16(end + 6, 0);
    graft_put_le16(end + 8, z64 && (w->force_zip64 || count >= 0xffff) ? 0xffff : (uint16_t)count);
    graft_put_le16(end + 10, z64 && (w->force_zip64 || count >= 0xffff) ? 0xffff : (uint16_t)count);
    graft_put_le32(end + 12, z64 && (w->force_zip64 || cd_size >= MAX32) ? MAX32 : (uint32_t)cd_size);
    graft_put_le32(end + 16, z64 && (w->force_zip64 || cd_off >= MAX32) ? MAX32 : (uint32_t)cd_off);
    graft_put_le16(end + 20, 0);
    return graft_sink_write(w->sink, end, sizeof end);
}
