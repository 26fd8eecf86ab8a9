/*
 * tf_table.c - TensorFlow's table format (tensorflow/core/lib/io/table*.cc,
 * LevelDB's doc/table_format.md without filter blocks), reader and writer.
 *
 * Layout of a table file (all integers little-endian):
 *  1. data blocks, each followed by a 5-byte trailer;
 *  2. the metaindex block (always empty in TensorFlow) and its trailer;
 *  3. the index block and its trailer: one entry per data block, key = a
 *     separator >= every key of that block, value = BlockHandle of the block;
 *  4. the 48-byte footer: metaindex BlockHandle, index BlockHandle (varint64
 *     offset, varint64 size each), zero padding to 40 bytes, then the magic
 *     0xdb4775248b80fb57 as fixed64.
 * A block is a run of entries - varint32 shared, varint32 unshared, varint32
 * value length, the unshared key bytes, the value - then fixed32 restart
 * offsets and a fixed32 restart count.  The trailer is a type byte (0 raw,
 * 1 Snappy) and the masked CRC-32C of the stored block bytes and type byte.
 * The writer follows TableBuilder (block_size, restart interval, separators,
 * index restart interval 1, blocks over 2 * block_size flushed early) so that
 * the same entries give the same bytes as TensorFlow.
 */
#include "tf_table.h"

#include "pb.h"
#include "rd.h"

#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BLOCK (1ull << 31)      /* cap on one (decompressed) block */
#define MAX_ENTRIES (1u << 24)      /* cap on entries in one table */

void graft_tf_table_free(graft_tf_table *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nblocks; i++) free(t->blocks[i]);
    free(t->blocks);
    free(t->keys);
    free(t->kv);
    free(t);
}

/* ---- reading ------------------------------------------------------------ */

typedef struct handle {
    uint64_t off, size;
} handle;

static int read_handle(graft_rd *r, handle *h)
{
    GRAFT_TRY(graft_rd_varint(r, &h->off));
    return graft_rd_varint(r, &h->size);
}

/* The contents of the block at h, checked and decompressed; *origin is the
 * file offset to report positions against (0 for decompressed blocks' own). */
static int load_block(graft_tf_table *t, const uint8_t *data, size_t size, handle h,
                      const uint8_t **out, size_t *out_len, graft_ctx *ctx)
{
    uint64_t end;
    const uint8_t *p;
    uint32_t stored, crc;
    size_t ulen;
    uint8_t *buf;

    if (graft_add_overflow(h.off, h.size, &end) || graft_add_overflow(end, 5, &end) ||
        end > size)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "block at 0x%llx of %llu bytes lies outside the %zu-byte file",
                           (unsigned long long)h.off, (unsigned long long)h.size, size);
    p = data + h.off;
    stored = graft_le32(p + h.size + 1);
    /* in steps, each step's pages let go when the table knows its source */
    crc = 0;
    for (uint64_t at = 0; at < h.size; at += 1u << 20) {
        size_t n = h.size - at < (1u << 20) ? (size_t)(h.size - at) : 1u << 20;
        crc = graft_crc32c(crc, p + at, n);
        if (t->src) graft_source_release(t->src, h.off + at, n);
    }
    crc = graft_crc32c(crc, p + h.size, 1);
    if (graft_tf_unmask(stored) != crc)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "block at 0x%llx: checksum mismatch (stored 0x%08x, computed 0x%08x)",
                           (unsigned long long)h.off, graft_tf_unmask(stored), crc);
    if (p[h.size] == 0) {
        *out = p;
        *out_len = (size_t)h.size;
        return GRAFT_OK;
    }
    if (p[h.size] != 1)
        return graft_error(ctx, GRAFT_ECORRUPT, "block at 0x%llx: bad block type %u",
                           (unsigned long long)h.off, p[h.size]);
    if (snappy_uncompressed_length((const char *)p, (size_t)h.size, &ulen) != SNAPPY_OK ||
        snappy_validate_compressed_buffer((const char *)p, (size_t)h.size) != SNAPPY_OK)
        return graft_error(ctx, GRAFT_ECORRUPT, "block at 0x%llx: corrupt Snappy data",
                           (unsigned long long)h.off);
    if (ulen > MAX_BLOCK)
        return graft_error(ctx, GRAFT_ELIMIT,
                           "block at 0x%llx: %zu bytes once decompressed exceeds the cap",
                           (unsigned long long)h.off, ulen);
    if (t->nblocks == t->blocks_cap) {
        size_t cap = t->blocks_cap ? t->blocks_cap * 2 : 8;
        uint8_t **nb = graft_realloc(ctx, t->blocks, cap * sizeof *nb);
        if (!nb) return graft_error_oom(ctx, "the block list");
        t->blocks = nb;
        t->blocks_cap = cap;
    }
    buf = graft_malloc(ctx, ulen ? ulen : 1);
    if (!buf) return graft_error_oom(ctx, "a decompressed block");
    t->blocks[t->nblocks++] = buf;
    if (snappy_uncompress((const char *)p, (size_t)h.size, (char *)buf, &ulen) != SNAPPY_OK)
        return graft_error(ctx, GRAFT_ECORRUPT, "block at 0x%llx: corrupt Snappy data",
                           (unsigned long long)h.off);
    t->snappy = true;
    *out = buf;
    *out_len = ulen;
    return GRAFT_OK;
}

static int push_key(graft_tf_table *t, const char *prev, size_t shared, const uint8_t *delta,
                    size_t unshared, size_t *key_at, graft_ctx *ctx)
{
    size_t need = shared + unshared + 1;
    if (need > t->keys_cap - t->keys_len) {
        size_t cap = t->keys_cap ? t->keys_cap : 4096;
        while (cap - t->keys_len < need) {
            if (cap > SIZE_MAX / 2) return graft_error_oom(ctx, "table keys");
            cap *= 2;
        }
        char *nk = graft_realloc(ctx, t->keys, cap);
        if (!nk) return graft_error_oom(ctx, "table keys");
        if (prev) prev = nk + (prev - t->keys);
        t->keys = nk;
        t->keys_cap = cap;
    }
    *key_at = t->keys_len;
    if (shared) memmove(t->keys + t->keys_len, prev, shared);
    if (unshared) memcpy(t->keys + t->keys_len + shared, delta, unshared);
    t->keys[t->keys_len + shared + unshared] = '\0';
    t->keys_len += need;
    return GRAFT_OK;
}

typedef struct raw_entry {
    size_t key_at, key_len;   /* in t->keys */
    const uint8_t *val;
    size_t val_len;
    uint64_t val_off;
} raw_entry;

/* Decode every entry of one block; calls back per entry via the arrays. */
static int parse_block(graft_tf_table *t, const uint8_t *b, size_t n, uint64_t origin,
                       bool compressed, raw_entry **ents, size_t *count, size_t *cap,
                       graft_ctx *ctx)
{
    uint32_t nrest;
    size_t limit, prev_at = 0, prev_len = 0;
    graft_rd r;

    if (n < 4)
        return graft_error(ctx, GRAFT_ECORRUPT, "block at 0x%llx: %zu bytes is too short",
                           (unsigned long long)origin, n);
    nrest = graft_le32(b + n - 4);
    if (nrest > (n - 4) / 4)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "block at 0x%llx: %u restart points do not fit in %zu bytes",
                           (unsigned long long)origin, nrest, n);
    if (nrest == 0) return GRAFT_OK;
    limit = n - 4 - 4 * (size_t)nrest;
    graft_rd_init(&r, b, limit, compressed ? 0 : origin, ctx);
    while (graft_rd_left(&r) > 0) {
        uint64_t shared, unshared, vlen;
        const uint8_t *delta, *val;
        size_t at = r.pos;
        raw_entry *e;
        GRAFT_TRY(graft_rd_varint(&r, &shared));
        GRAFT_TRY(graft_rd_varint(&r, &unshared));
        GRAFT_TRY(graft_rd_varint(&r, &vlen));
        if (shared > prev_len || (*count > 0 && shared > 0 && at == 0))
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "block at 0x%llx, entry at +0x%zx: shares %llu bytes with a "
                               "%zu-byte previous key", (unsigned long long)origin, at,
                               (unsigned long long)shared, prev_len);
        if (unshared > graft_rd_left(&r) || vlen > graft_rd_left(&r) - unshared)
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "block at 0x%llx, entry at +0x%zx: key of %llu and value of "
                               "%llu bytes run past the block end", (unsigned long long)origin,
                               at, (unsigned long long)unshared, (unsigned long long)vlen);
        if (*count >= MAX_ENTRIES)
            return graft_error(ctx, GRAFT_ELIMIT, "more than %u table entries", MAX_ENTRIES);
        GRAFT_TRY(graft_rd_take(&r, (size_t)unshared, &delta));
        GRAFT_TRY(graft_rd_take(&r, (size_t)vlen, &val));
        if (*count == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            raw_entry *ne = graft_realloc(ctx, *ents, nc * sizeof *ne);
            if (!ne) return graft_error_oom(ctx, "table entries");
            *ents = ne;
            *cap = nc;
        }
        e = &(*ents)[*count];
        GRAFT_TRY(push_key(t, t->keys ? t->keys + prev_at : NULL, (size_t)shared, delta,
                           (size_t)unshared, &e->key_at, ctx));
        e->key_len = (size_t)(shared + unshared);
        e->val = val;
        e->val_len = (size_t)vlen;
        e->val_off = compressed ? origin : origin + (uint64_t)(val - b);
        prev_at = e->key_at;
        prev_len = e->key_len;
        (*count)++;
    }
    return GRAFT_OK;
}

static int key_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (an > bn) - (an < bn);
}

static int read_all(graft_tf_table *t, const uint8_t *data, size_t size, graft_ctx *ctx)
{
    raw_entry *idx = NULL, *ents = NULL;
    size_t nidx = 0, idx_cap = 0, nents = 0, ents_cap = 0;
    const uint8_t *blk;
    size_t blen;
    handle meta, index;
    graft_rd r;
    int rc;

    if (size < GRAFT_TF_FOOTER_SIZE)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "%zu bytes is too short for a table (footer is 48 bytes)", size);
    if (graft_le64(data + size - 8) != GRAFT_TF_TABLE_MAGIC)
        return graft_error(ctx, GRAFT_EFORMAT, "offset 0x%zx: not a table (bad magic number)",
                           size - 8);
    graft_rd_init(&r, data + size - GRAFT_TF_FOOTER_SIZE, 40, size - GRAFT_TF_FOOTER_SIZE, ctx);
    GRAFT_TRY(read_handle(&r, &meta));
    GRAFT_TRY(read_handle(&r, &index));
    GRAFT_TRY(load_block(t, data, size, index, &blk, &blen, ctx));
    rc = parse_block(t, blk, blen, index.off, blk != data + index.off, &idx, &nidx, &idx_cap,
                     ctx);
    for (size_t i = 0; rc == 0 && i < nidx; i++) {
        handle h;
        size_t before = nents;
        graft_rd hr;
        graft_rd_init(&hr, idx[i].val, idx[i].val_len, idx[i].val_off, ctx);
        rc = read_handle(&hr, &h);
        if (rc == 0) rc = load_block(t, data, size, h, &blk, &blen, ctx);
        if (rc == 0)
            rc = parse_block(t, blk, blen, h.off, blk != data + h.off, &ents, &nents,
                             &ents_cap, ctx);
        /* Every key of block i sorts at or before its index key. */
        for (size_t j = before; rc == 0 && j < nents; j++)
            if (key_cmp(t->keys + ents[j].key_at, ents[j].key_len, t->keys + idx[i].key_at,
                        idx[i].key_len) > 0)
                rc = graft_error(ctx, GRAFT_ECORRUPT,
                                 "block at 0x%llx: key sorts after its index entry",
                                 (unsigned long long)h.off);
    }
    if (rc == 0 && nents > 0) {
        t->kv = graft_calloc(ctx, nents, sizeof *t->kv);
        if (!t->kv) rc = graft_error_oom(ctx, "table entries");
    }
    for (size_t i = 0; rc == 0 && i < nents; i++) {
        graft_tf_kv *kv = &t->kv[i];
        kv->key = t->keys + ents[i].key_at;
        kv->key_len = ents[i].key_len;
        kv->val = ents[i].val;
        kv->val_len = ents[i].val_len;
        kv->val_off = ents[i].val_off;
        if (i > 0 && key_cmp(kv[-1].key, kv[-1].key_len, kv->key, kv->key_len) >= 0)
            rc = graft_error(ctx, GRAFT_ECORRUPT,
                             "entry %zu ('%.*s'): keys out of order or repeated", i,
                             (int)(kv->key_len > 200 ? 200 : kv->key_len), kv->key);
        t->count = i + 1;
    }
    free(idx);
    free(ents);
    return rc;
}

static int table_open(graft_tf_table **out, const graft_source *src, const uint8_t *data,
                      size_t size, graft_ctx *ctx)
{
    graft_tf_table *t;
    int rc;
    *out = NULL;
    t = graft_calloc(ctx, 1, sizeof *t);
    if (!t) return graft_error_oom(ctx, "a table");
    t->src = src;
    rc = read_all(t, data, size, ctx);
    if (rc < 0) {
        graft_tf_table_free(t);
        return rc;
    }
    *out = t;
    return GRAFT_OK;
}

int graft_tf_table_open(graft_tf_table **out, const uint8_t *data, size_t size,
                        graft_ctx *ctx)
{
    return table_open(out, NULL, data, size, ctx);
}

int graft_tf_table_open_source(graft_tf_table **out, const graft_source *src, graft_ctx *ctx)
{
    return table_open(out, src, src->data, src->size, ctx);
}

/* ---- writing ------------------------------------------------------------ */

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static int buf_put(buf *b, const void *p, size_t n, graft_ctx *ctx)
{
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) return graft_error_oom(ctx, "a table block");
            cap *= 2;
        }
        uint8_t *np = graft_realloc(ctx, b->p, cap);
        if (!np) return graft_error_oom(ctx, "a table block");
        b->p = np;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    return GRAFT_OK;
}

static int buf_varint(buf *b, uint64_t v, graft_ctx *ctx)
{
    uint8_t tmp[10]; /* LevelDB varints are protobuf's base-128 encoding */
    return buf_put(b, tmp, (size_t)(graft_pb_put_varint(tmp, v) - tmp), ctx);
}

static int buf_le32(buf *b, uint32_t v, graft_ctx *ctx)
{
    uint8_t tmp[4];
    graft_put_le32(tmp, v);
    return buf_put(b, tmp, 4, ctx);
}

/* BlockBuilder: entries with shared key prefixes and restart points. */
typedef struct block {
    buf data;
    buf restarts;   /* fixed32 offsets */
    buf last_key;
    int counter, interval;
    size_t entries;
} block;

static int block_reset(block *b, graft_ctx *ctx)
{
    b->data.len = b->restarts.len = b->last_key.len = 0;
    b->counter = 0;
    b->entries = 0;
    return buf_le32(&b->restarts, 0, ctx);
}

static void block_free(block *b)
{
    free(b->data.p);
    free(b->restarts.p);
    free(b->last_key.p);
}

static size_t block_estimate(const block *b)
{
    return b->data.len + b->restarts.len + 4;
}

static int block_add(block *b, const uint8_t *key, size_t klen, const uint8_t *val,
                     size_t vlen, graft_ctx *ctx)
{
    size_t shared = 0;
    if (b->counter < b->interval) {
        size_t m = b->last_key.len < klen ? b->last_key.len : klen;
        while (shared < m && b->last_key.p[shared] == key[shared]) shared++;
    } else {
        GRAFT_TRY(buf_le32(&b->restarts, (uint32_t)b->data.len, ctx));
        b->counter = 0;
    }
    GRAFT_TRY(buf_varint(&b->data, shared, ctx));
    GRAFT_TRY(buf_varint(&b->data, klen - shared, ctx));
    GRAFT_TRY(buf_varint(&b->data, vlen, ctx));
    GRAFT_TRY(buf_put(&b->data, key + shared, klen - shared, ctx));
    GRAFT_TRY(buf_put(&b->data, val, vlen, ctx));
    b->last_key.len = 0;
    GRAFT_TRY(buf_put(&b->last_key, key, klen, ctx));
    b->counter++;
    b->entries++;
    return GRAFT_OK;
}

static int block_finish(block *b, graft_ctx *ctx)
{
    GRAFT_TRY(buf_put(&b->data, b->restarts.p, b->restarts.len, ctx));
    return buf_le32(&b->data, (uint32_t)(b->restarts.len / 4), ctx);
}

struct graft_tf_table_writer {
    graft_sink *sink;
    graft_ctx *ctx;
    graft_tf_table_options opts;
    block data, index;
    buf last_key, scratch;
    uint64_t offset;           /* bytes written so far */
    handle pending;            /* last flushed data block */
    bool pending_index;
    size_t entries;
};

int graft_tf_table_writer_new(graft_tf_table_writer **out, graft_sink *sink,
                              const graft_tf_table_options *opts, graft_ctx *ctx)
{
    graft_tf_table_writer *w;
    *out = NULL;
    w = graft_calloc(ctx, 1, sizeof *w);
    if (!w) return graft_error_oom(ctx, "a table writer");
    w->sink = sink;
    w->ctx = ctx;
    w->opts = *opts;
    if (w->opts.restart_interval < 1) w->opts.restart_interval = 1;
    w->data.interval = w->opts.restart_interval;
    w->index.interval = 1;
    w->offset = graft_sink_tell(sink);
    if (block_reset(&w->data, ctx) < 0 || block_reset(&w->index, ctx) < 0) {
        graft_tf_table_writer_free(w);
        return ctx->status;
    }
    *out = w;
    return GRAFT_OK;
}

void graft_tf_table_writer_free(graft_tf_table_writer *w)
{
    if (!w) return;
    block_free(&w->data);
    block_free(&w->index);
    free(w->last_key.p);
    free(w->scratch.p);
    free(w);
}

/* Store finished block contents with their trailer; *h receives the handle. */
static int write_raw_block(graft_tf_table_writer *w, const uint8_t *p, size_t n, uint8_t type,
                           handle *h)
{
    uint8_t trailer[5];
    uint32_t crc = graft_crc32c(graft_crc32c(0, p, n), &type, 1);
    trailer[0] = type;
    graft_put_le32(trailer + 1, graft_tf_mask(crc));
    h->off = w->offset;
    h->size = n;
    GRAFT_TRY(graft_sink_write(w->sink, p, n));
    GRAFT_TRY(graft_sink_write(w->sink, trailer, 5));
    w->offset += n + 5;
    return GRAFT_OK;
}

static int write_block(graft_tf_table_writer *w, block *b, handle *h)
{
    graft_ctx *ctx = w->ctx;
    GRAFT_TRY(block_finish(b, ctx));
    if (w->opts.snappy) {
        size_t clen = snappy_max_compressed_length(b->data.len);
        w->scratch.len = 0;
        if (clen > w->scratch.cap) {
            uint8_t *np = graft_realloc(ctx, w->scratch.p, clen);
            if (!np) return graft_error_oom(ctx, "a compressed block");
            w->scratch.p = np;
            w->scratch.cap = clen;
        }
        if (snappy_compress((const char *)b->data.p, b->data.len, (char *)w->scratch.p,
                            &clen) == SNAPPY_OK &&
            clen < b->data.len - b->data.len / 8) {
            GRAFT_TRY(write_raw_block(w, w->scratch.p, clen, 1, h));
            return block_reset(b, ctx);
        }
    }
    GRAFT_TRY(write_raw_block(w, b->data.p, b->data.len, 0, h));
    return block_reset(b, ctx);
}

static int encode_handle(buf *b, handle h, graft_ctx *ctx)
{
    GRAFT_TRY(buf_varint(b, h.off, ctx));
    return buf_varint(b, h.size, ctx);
}

static int add_pending_index(graft_tf_table_writer *w, const uint8_t *sep, size_t slen)
{
    uint8_t tmp[20];
    buf hb = {tmp, 0, sizeof tmp};
    GRAFT_TRY(encode_handle(&hb, w->pending, w->ctx));
    w->pending_index = false;
    return block_add(&w->index, sep, slen, hb.p, hb.len, w->ctx);
}

static int flush(graft_tf_table_writer *w)
{
    if (w->data.entries == 0) return GRAFT_OK;
    GRAFT_TRY(write_block(w, &w->data, &w->pending));
    w->pending_index = true;
    return GRAFT_OK;
}

/* FindShortestSeparator(last_key, limit), written into w->scratch. */
static size_t shortest_separator(const buf *start, const uint8_t *limit, size_t llen)
{
    size_t m = start->len < llen ? start->len : llen, i = 0;
    while (i < m && start->p[i] == limit[i]) i++;
    if (i < m && start->p[i] < 0xff && start->p[i] + 1 < limit[i]) {
        start->p[i]++;
        return i + 1;
    }
    return start->len;
}

int graft_tf_table_add(graft_tf_table_writer *w, const void *key, size_t key_len,
                       const void *val, size_t val_len)
{
    graft_ctx *ctx = w->ctx;
    if (w->entries > 0 &&
        key_cmp(key, key_len, (const char *)w->last_key.p, w->last_key.len) <= 0)
        return graft_error(ctx, GRAFT_ERROR, "table writer: key '%.*s' out of order",
                           (int)(key_len > 200 ? 200 : key_len), (const char *)key);
    if (w->entries > 0 && key_len + val_len >= 2 * w->opts.block_size) GRAFT_TRY(flush(w));
    if (w->pending_index) {
        size_t n = shortest_separator(&w->last_key, key, key_len);
        GRAFT_TRY(add_pending_index(w, w->last_key.p, n));
    }
    GRAFT_TRY(block_add(&w->data, key, key_len, val, val_len, ctx));
    w->last_key.len = 0;
    GRAFT_TRY(buf_put(&w->last_key, key, key_len, ctx));
    w->entries++;
    if (block_estimate(&w->data) >= w->opts.block_size) GRAFT_TRY(flush(w));
    return GRAFT_OK;
}

int graft_tf_table_finish(graft_tf_table_writer *w)
{
    graft_ctx *ctx = w->ctx;
    block meta = {.interval = w->opts.restart_interval};
    handle hmeta, hindex;
    uint8_t footer[GRAFT_TF_FOOTER_SIZE];
    buf fb = {footer, 0, sizeof footer};
    int rc;

    GRAFT_TRY(flush(w));
    rc = block_reset(&meta, ctx);
    if (rc == 0) rc = write_block(w, &meta, &hmeta);
    block_free(&meta);
    GRAFT_TRY(rc);
    if (w->pending_index) {
        /* FindShortSuccessor(last_key) */
        size_t n = w->last_key.len;
        for (size_t i = 0; i < w->last_key.len; i++)
            if (w->last_key.p[i] != 0xff) {
                w->last_key.p[i]++;
                n = i + 1;
                break;
            }
        GRAFT_TRY(add_pending_index(w, w->last_key.p, n));
    }
    GRAFT_TRY(write_block(w, &w->index, &hindex));
    memset(footer, 0, sizeof footer);
    GRAFT_TRY(encode_handle(&fb, hmeta, ctx));
    GRAFT_TRY(encode_handle(&fb, hindex, ctx));
    graft_put_le64(footer + 40, GRAFT_TF_TABLE_MAGIC);
    return graft_sink_write(w->sink, footer, sizeof footer);
}
