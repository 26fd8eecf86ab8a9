/*
 * tf_bundle.c - TensorFlow checkpoint V2 (tensor_bundle.cc), read and written.
 *
 * Files of a bundle at PREFIX:
 *  1. PREFIX.index: a table (tf_table.c) whose first key "" maps to a
 *     BundleHeaderProto {num_shards, endianness, version}, and every other key,
 *     a tensor name in bytewise order, to a BundleEntryProto {dtype, shape,
 *     shard_id, offset, size, crc32c (masked CRC-32C of the stored bytes)}.
 *  2. PREFIX.data-SSSSS-of-NNNNN (%05d): the tensors' bytes, packed with no
 *     framing in the order the saver wrote them, little-endian row-major.
 *     A DT_STRING tensor is stored as varint64 lengths, a fixed32 masked
 *     CRC-32C of the lengths (each as uint32 LE, uint64 if it does not fit),
 *     then the string bytes; its entry CRC runs over the lengths as uint32,
 *     the 4 stored checksum bytes and the strings.
 * Every tensor's CRC is verified once in open (so `graft ls` finds a corrupt
 * data file), except in a skeleton's (graft_model.defer_checks), where a
 * tensor is verified when it is read: the ones a plan replaces never are;
 * the tensors are zero-copy views into the mapped shards.
 * String tensors (e.g. _CHECKPOINTABLE_OBJECT_GRAPH) are tensors of dtype
 * "string" whose bytes are the stored form above.
 */
#include "tf_bundle.h"

#include "tf_common.h"
#include "pb.h"
#include "tf_table.h"
#include "tf_tensor_bundle.pb-c.h"

#include "rd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct bundle {
    graft_tf_table *table;                /* owned */
    const uint8_t *header;                /* BundleHeaderProto bytes; borrowed */
    size_t header_len;
    uint32_t nshards;
    Tensorflow__BundleEntryProto **ents;  /* one per tensor, model order; owned */
    size_t n;
    const graft_source **shards;          /* nshards; borrowed from the model */
    char *prefix;                         /* as opened; owned */
} bundle;

static void bundle_free(void *p)
{
    bundle *b = p;
    if (!b) return;
    for (size_t i = 0; i < b->n; i++) tensorflow__bundle_entry_proto__free_unpacked(b->ents[i], NULL);
    free(b->ents);
    free(b->shards);
    free(b->prefix);
    graft_tf_table_free(b->table);
    free(b);
}

char *graft_tf__data_path(const char *prefix, uint32_t shard, uint32_t nshards, graft_ctx *ctx)
{
    size_t n = strlen(prefix) + 40;
    char *s = graft_malloc(ctx, n);
    if (s) snprintf(s, n, "%s.data-%05u-of-%05u", prefix, shard, nshards);
    return s;
}

/*
 * The last value of varint field `num` of a flat message, as the file wrote
 * it: protobuf-c (like every protobuf parser) keeps only the low 32 bits of
 * an int32 field, so 2^40 would read as 0.  Messages and range checks use
 * this; `dflt` when the field is absent.  Called only on messages protobuf-c
 * has unpacked, so the walk cannot fail.
 */
static int64_t written_varint(const uint8_t *p, size_t n, uint32_t num, int64_t dflt,
                              graft_ctx *ctx)
{
    graft_rd r;
    graft_pbf f;
    int64_t v = dflt;
    graft_rd_init(&r, p, n, 0, ctx);
    while (graft_rd_left(&r) && graft_pb_next(&r, &f) == 0)
        if (f.num == num && f.wt == 0) v = (int64_t)f.v;
    return v;
}

static int check_header(bundle *b, graft_ctx *ctx)
{
    Tensorflow__BundleHeaderProto *h;
    int rc = GRAFT_OK;
    h = tensorflow__bundle_header_proto__unpack(NULL, b->header_len, b->header);
    if (!h)
        return graft_error(ctx, GRAFT_ECORRUPT, "header entry: not a BundleHeaderProto");
    int64_t shards = written_varint(b->header, b->header_len, 1, h->num_shards, ctx);
    if (shards < 1 || shards > GRAFT_TF_MAX_SHARDS)
        rc = graft_error(ctx, GRAFT_ECORRUPT, "header entry: %lld shards (1 to %d allowed)",
                         (long long)shards, GRAFT_TF_MAX_SHARDS);
    else if (h->endianness != TENSORFLOW__BUNDLE_HEADER_PROTO__ENDIANNESS__LITTLE)
        rc = graft_error(ctx, GRAFT_EFORMAT, "header entry: big-endian bundles are not supported");
    else if (h->version && h->version->min_consumer > 1)
        rc = graft_error(ctx, GRAFT_EFORMAT,
                         "header entry: needs a reader of version %d or newer (we are 1)",
                         h->version->min_consumer);
    if (rc == 0 && h->version)
        for (size_t i = 0; i < h->version->n_bad_consumers; i++)
            if (h->version->bad_consumers[i] == 1)
                rc = graft_error(ctx, GRAFT_EFORMAT, "header entry: version 1 readers excluded");
    b->nshards = (uint32_t)h->num_shards;
    tensorflow__bundle_header_proto__free_unpacked(h, NULL);
    return rc;
}

/* One index entry into a tensor; the bytes are attached later. */
static int add_entry(graft_model *m, bundle *b, const graft_tf_kv *kv, graft_ctx *ctx)
{
    Tensorflow__BundleEntryProto *e;
    int64_t shape[GRAFT_MAX_NDIM];
    uint32_t ndim = 0;
    graft_dtype dt;
    graft_tensor *t;
    int nlen = kv->key_len > 200 ? 200 : (int)kv->key_len;

    if (memchr(kv->key, 0, kv->key_len))
        return graft_error(ctx, GRAFT_EFORMAT,
                           "index entry at 0x%llx: partitioned-variable slice keys are not "
                           "supported", (unsigned long long)kv->val_off);
    e = tensorflow__bundle_entry_proto__unpack(NULL, kv->val_len, kv->val);
    if (!e)
        return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%.*s': entry at 0x%llx is not a "
                           "BundleEntryProto", nlen, kv->key, (unsigned long long)kv->val_off);
    b->ents[b->n++] = e;
    if (e->n_slices)
        return graft_error(ctx, GRAFT_EFORMAT,
                           "tensor '%.*s': partitioned variables are not supported", nlen, kv->key);
    dt = graft_tf__dtype((uint64_t)e->dtype);
    if (dt == GRAFT_DTYPE_INVALID)
        return graft_error(ctx, GRAFT_EFORMAT, "tensor '%.*s': DataType %d is not supported",
                           nlen, kv->key, (int)e->dtype);
    if (e->shape) {
        if (e->shape->unknown_rank)
            return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%.*s': unknown rank", nlen, kv->key);
        if (e->shape->n_dim > GRAFT_MAX_NDIM)
            return graft_error(ctx, GRAFT_ELIMIT, "tensor '%.*s': rank %zu exceeds the cap of %d",
                               nlen, kv->key, e->shape->n_dim, GRAFT_MAX_NDIM);
        ndim = (uint32_t)e->shape->n_dim;
        for (uint32_t i = 0; i < ndim; i++) shape[i] = e->shape->dim[i]->size;
    }
    int64_t shard = written_varint(kv->val, kv->val_len, 3, e->shard_id, ctx);
    if (shard < 0 || shard >= b->nshards || e->offset < 0 || e->size < 0)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%.*s': shard %lld, offset %lld, size %lld (bundle has %u "
                           "shards)", nlen, kv->key, (long long)shard, (long long)e->offset,
                           (long long)e->size, b->nshards);
    t = graft_model__add(m, kv->key, kv->key_len, dt, ndim, shape, ctx);
    if (!t) return ctx->status;
    if (dt == GRAFT_STRING) {
        /* each element needs at least one length byte */
        if (t->numel > (uint64_t)e->size)
            return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': %llu strings cannot fit in "
                               "%lld bytes", t->name, (unsigned long long)t->numel,
                               (long long)e->size);
        t->nbytes = (uint64_t)e->size;
    } else if (t->nbytes != (uint64_t)e->size) {
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': stored size %lld bytes, but %s of that shape takes %llu",
                           t->name, (long long)e->size, graft_dtype_name(dt),
                           (unsigned long long)t->nbytes);
    }
    t->offset = (uint64_t)e->offset;
    t->aux = b->n - 1;
    return GRAFT_OK;
}

/* The entry CRC of a stored DT_STRING tensor (see the top of the file). */
static int string_crc(const graft_tensor *t, const uint8_t *p, uint32_t *out, graft_ctx *ctx)
{
    graft_rd r;
    uint32_t crc = 0, lcrc;
    uint64_t total = 0;
    const uint8_t *cs;
    graft_rd_init(&r, p, (size_t)t->nbytes, t->offset, ctx);
    for (uint64_t i = 0; i < t->numel; i++) {
        uint64_t len;
        uint8_t le[8];
        GRAFT_TRY(graft_rd_varint(&r, &len));
        graft_put_le64(le, len);
        crc = graft_crc32c(crc, le, len > 0xffffffffu ? 8 : 4);
        if (graft_add_overflow(total, len, &total))
            return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': string lengths overflow", t->name);
    }
    GRAFT_TRY(graft_rd_take(&r, 4, &cs));
    lcrc = graft_le32(cs);
    if (graft_tf_unmask(lcrc) != crc)
        return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': string length checksum mismatch "
                           "(stored 0x%08x, computed 0x%08x)", t->name, graft_tf_unmask(lcrc), crc);
    crc = graft_crc32c(crc, cs, 4);
    if (total != graft_rd_left(&r))
        return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': strings of %llu bytes in %zu "
                           "stored bytes", t->name, (unsigned long long)total, graft_rd_left(&r));
    *out = graft_crc32c(crc, p + r.pos, (size_t)total);
    return GRAFT_OK;
}

/* The CRC-32C of t's stored bytes against its entry's, in steps that drop
 * the checked pages (they are read again only if used). */
static int data_crc(const graft_tensor *t, const Tensorflow__BundleEntryProto *e, graft_ctx *ctx)
{
    uint32_t crc = graft_source_checksum(t->src, t->offset, t->nbytes, graft_crc32c);
    if (crc != graft_tf_unmask(e->crc32c))
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': CRC-32C mismatch in %s at offset %llu (stored "
                           "0x%08x, computed 0x%08x)", t->name, t->src->path,
                           (unsigned long long)t->offset, graft_tf_unmask(e->crc32c), crc);
    return GRAFT_OK;
}

/* A skeleton's tensor, checked when it is read (kept, not replaced). */
static int check_deferred(const graft_model *m, const graft_tensor *t, graft_ctx *ctx)
{
    (void)m;
    return data_crc(t, t->aux_ptr, ctx);
}

static int attach_data(graft_model *m, bundle *b, const char *prefix, graft_ctx *ctx)
{
    for (size_t i = 0; i < m->count; i++) {
        graft_tensor *t = &m->tensors[i];
        const Tensorflow__BundleEntryProto *e = b->ents[t->aux];
        uint32_t s = (uint32_t)e->shard_id, crc = 0;
        const graft_source *src;
        if (!b->shards[s]) {
            char *path = graft_tf__data_path(prefix, s, b->nshards, ctx);
            int rc;
            if (!path) return graft_error_oom(ctx, "a path");
            rc = graft_model__add_source(m, path, &b->shards[s], ctx);
            free(path);
            GRAFT_TRY(rc);
        }
        src = b->shards[s];
        t->src = src;
        if (t->offset > src->size || t->nbytes > src->size - t->offset)
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "tensor '%s': data [%llu, %llu) lies past the end of the "
                               "%zu-byte file %s", t->name, (unsigned long long)t->offset,
                               (unsigned long long)(t->offset + t->nbytes), src->size, src->path);
        if (t->dtype == GRAFT_STRING) { /* framing and CRC together; small */
            GRAFT_TRY(string_crc(t, src->data + t->offset, &crc, ctx));
            if (crc != graft_tf_unmask(e->crc32c))
                return graft_error(ctx, GRAFT_ECORRUPT,
                                   "tensor '%s': CRC-32C mismatch in %s at offset %llu (stored "
                                   "0x%08x, computed 0x%08x)", t->name, src->path,
                                   (unsigned long long)t->offset, graft_tf_unmask(e->crc32c), crc);
        } else if (m->defer_checks) {
            t->aux_ptr = (void *)e;
            t->check = check_deferred;
        } else {
            GRAFT_TRY(data_crc(t, e, ctx));
        }
    }
    return GRAFT_OK;
}

int graft_tf__bundle_open(graft_model *m, const char *prefix, const graft_source *index,
                          graft_ctx *ctx)
{
    bundle *b = graft_calloc(ctx, 1, sizeof *b);
    graft_tf_table *tab;
    if (!b) return graft_error_oom(ctx, "a bundle");
    m->state = b;
    m->state_free = bundle_free;
    b->prefix = graft_strdup(ctx, prefix);
    if (!b->prefix) return graft_error_oom(ctx, "a path");
    GRAFT_TRY(graft_tf_table_open(&b->table, index->data, index->size, ctx));
    tab = b->table;
    if (tab->count == 0 || tab->kv[0].key_len != 0)
        return graft_error(ctx, GRAFT_ECORRUPT, "no header entry (empty key) in the index");
    b->header = tab->kv[0].val;
    b->header_len = tab->kv[0].val_len;
    GRAFT_TRY(check_header(b, ctx));
    b->ents = graft_calloc(ctx, tab->count, sizeof *b->ents);
    b->shards = graft_calloc(ctx, b->nshards, sizeof *b->shards);
    if (!b->ents || !b->shards) return graft_error_oom(ctx, "bundle entries");
    /* Parse the whole index before touching data files. */
    for (size_t i = 1; i < tab->count; i++) GRAFT_TRY(add_entry(m, b, &tab->kv[i], ctx));
    return attach_data(m, b, prefix, ctx);
}

const char *graft_tf__bundle_prefix(const graft_model *m)
{
    const bundle *b = m->state;
    return b ? b->prefix : NULL;
}

uint32_t graft_tf__bundle_nshards(const graft_model *m)
{
    const bundle *b = m->state;
    return b ? b->nshards : 0;
}

/* ---- writing ------------------------------------------------------------ */

typedef struct slot {
    size_t i;           /* tensor index */
    uint32_t shard;
    uint64_t offset;    /* in the skeleton */
} slot;

static int slot_cmp(const void *a, const void *b)
{
    const slot *x = a, *y = b;
    if (x->shard != y->shard) return x->shard < y->shard ? -1 : 1;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* String tensors' entry CRCs are not over their stored bytes, so their new
 * values are seen first: emitted into a scratch file beside the output and
 * mapped; at[i] is where tensor i's bytes start in it. */
static int gather_strings(const graft_model *m, const char *out_prefix, graft_fill *fill,
                          graft_source **scratch, uint64_t *at, graft_ctx *ctx)
{
    graft_sink *s = NULL;
    char *path = graft_malloc(ctx, strlen(out_prefix) + 32);
    int rc = path ? GRAFT_OK : graft_error_oom(ctx, "a path");
    if (path) sprintf(path, "%s.graft-strings", out_prefix);
    for (size_t i = 0; rc == 0 && i < m->count; i++) {
        const graft_tensor *t = &m->tensors[i];
        if (t->dtype != GRAFT_STRING) continue;
        if (!s) rc = graft_sink_open(&s, path, ctx);
        if (rc < 0) break;
        at[i] = graft_sink_tell(s);
        rc = graft_fill_emit(fill, m, i, s, ctx);
    }
    if (rc == 0 && s) { /* read back unnamed: a kill leaves nothing */
        char proc[64];
        int fd = -1;
        rc = graft_sink_reopen(s, &fd, ctx);
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        if (rc == 0) rc = graft_source_open(scratch, proc, ctx);
        if (fd >= 0) close(fd);
    }
    graft_sink_abort(s);
    free(path);
    return rc;
}

/* Write one tensor in the skeleton's order; gaps (alignment padding) are
 * kept as zero bytes. */
static int write_tensor(const graft_model *m, const slot *sl, graft_sink *s, uint64_t *prev_end,
                        const uint8_t *strings, uint64_t *new_off, uint32_t *new_crc,
                        graft_fill *fill, graft_ctx *ctx)
{
    const graft_tensor *t = &m->tensors[sl->i];
    const bundle *b = m->state;
    uint32_t crc;
    uint64_t start;
    if (sl->offset > *prev_end) GRAFT_TRY(graft_sink_fill(s, 0, sl->offset - *prev_end));
    *prev_end = sl->offset + t->nbytes;
    start = graft_sink_tell(s);
    *new_off = start;
    if (t->dtype == GRAFT_STRING && t->nbytes == 0) {
        *new_crc = b->ents[t->aux]->crc32c;
        return GRAFT_OK;
    }
    if (t->dtype == GRAFT_STRING) {
        if (string_crc(t, strings, &crc, ctx) < 0)
            return graft_error_prefix(ctx, "new value");
        *new_crc = graft_tf_mask(crc);
        return graft_sink_write(s, strings, (size_t)t->nbytes);
    }
    graft_sink_crc32c_begin(s);
    GRAFT_TRY(graft_fill_emit(fill, m, sl->i, s, ctx));
    crc = graft_sink_crc32c_end(s);
    *new_crc = graft_tf_mask(crc);
    return GRAFT_OK;
}

static int write_index(const graft_model *m, graft_sink *s, const uint64_t *offs,
                       const uint32_t *crcs, graft_ctx *ctx)
{
    const bundle *b = m->state;
    graft_tf_table_options o = GRAFT_TF_TABLE_OPTIONS_INIT;
    graft_tf_table_writer *w = NULL;
    uint8_t *val = NULL;
    size_t cap = 0;
    int rc;

    o.snappy = b->table && b->table->snappy; /* a new bundle has no table */
    GRAFT_TRY(graft_tf_table_writer_new(&w, s, &o, ctx));
    rc = graft_tf_table_add(w, "", 0, b->header, b->header_len);
    for (size_t i = 0; rc == 0 && i < m->count; i++) {
        const graft_tensor *t = &m->tensors[i];
        Tensorflow__BundleEntryProto e = *b->ents[t->aux];
        size_t n;
        e.offset = (int64_t)offs[i];
        e.crc32c = crcs[i];
        n = tensorflow__bundle_entry_proto__get_packed_size(&e);
        if (n > cap) {
            uint8_t *nv = graft_realloc(ctx, val, n);
            if (!nv) {
                rc = graft_error_oom(ctx, "an index entry");
                break;
            }
            val = nv;
            cap = n;
        }
        tensorflow__bundle_entry_proto__pack(&e, val);
        rc = graft_tf_table_add(w, t->name, strlen(t->name), val, n);
    }
    if (rc == 0) rc = graft_tf_table_finish(w);
    graft_tf_table_writer_free(w);
    free(val);
    return rc;
}

int graft_tf__bundle_write(const graft_model *m, const char *out_prefix, graft_fill *fill,
                           graft_ctx *ctx)
{
    const bundle *b = m->state;
    graft_sink **sinks = NULL, *index = NULL;
    graft_source *strings = NULL;
    slot *order = NULL;
    uint64_t *offs = NULL, *prev_end = NULL, *at = NULL;
    uint32_t *crcs = NULL;
    char *path = NULL;
    int rc = GRAFT_OK;

    sinks = graft_calloc(ctx, b->nshards, sizeof *sinks);
    prev_end = graft_calloc(ctx, b->nshards, sizeof *prev_end);
    order = graft_calloc(ctx, m->count + 1, sizeof *order);
    offs = graft_calloc(ctx, m->count + 1, sizeof *offs);
    crcs = graft_calloc(ctx, m->count + 1, sizeof *crcs);
    at = graft_calloc(ctx, m->count + 1, sizeof *at);
    if (!sinks || !prev_end || !order || !offs || !crcs || !at) {
        rc = graft_error_oom(ctx, "the checkpoint writer");
        goto cleanup;
    }
    for (size_t i = 0; i < m->count; i++) {
        const Tensorflow__BundleEntryProto *e = b->ents[m->tensors[i].aux];
        order[i] = (slot){i, (uint32_t)e->shard_id, (uint64_t)e->offset};
    }
    qsort(order, m->count, sizeof *order, slot_cmp);
    rc = gather_strings(m, out_prefix, fill, &strings, at, ctx);
    for (uint32_t s = 0; rc == 0 && s < b->nshards; s++) {
        free(path);
        path = graft_tf__data_path(out_prefix, s, b->nshards, ctx);
        rc = path ? graft_sink_open(&sinks[s], path, ctx) : graft_error_oom(ctx, "a path");
    }
    for (size_t k = 0; rc == 0 && k < m->count; k++) {
        const slot *sl = &order[k];
        rc = write_tensor(m, sl, sinks[sl->shard], &prev_end[sl->shard],
                          strings && strings->data ? strings->data + at[sl->i] : NULL,
                          &offs[sl->i], &crcs[sl->i], fill, ctx);
    }
    if (rc < 0) goto cleanup;
    free(path);
    path = graft_malloc(ctx, strlen(out_prefix) + 7);
    if (!path) {
        rc = graft_error_oom(ctx, "a path");
        goto cleanup;
    }
    sprintf(path, "%s.index", out_prefix);
    rc = graft_sink_open(&index, path, ctx);
    if (rc == 0) rc = write_index(m, index, offs, crcs, ctx);
    /* All synced before any is linked in, so that a kill leaves none of
     * them; then data files first, the index that names them last, as
     * TensorFlow does. */
    for (uint32_t s = 0; rc == 0 && s < b->nshards; s++) rc = graft_sink_sync(sinks[s]);
    if (rc == 0) rc = graft_sink_sync(index);
    for (uint32_t s = 0; rc == 0 && s < b->nshards; s++) {
        rc = graft_sink_commit(sinks[s]);
        sinks[s] = NULL;
    }
    if (rc == 0) {
        rc = graft_sink_commit(index);
        index = NULL;
    }
cleanup:
    for (uint32_t s = 0; sinks && s < b->nshards; s++) graft_sink_abort(sinks[s]);
    graft_sink_abort(index);
    free(sinks);
    free(prev_end);
    free(order);
    free(offs);
    free(crcs);
    free(at);
    free(path);
    graft_source_free(strings);
    return rc;
}

/* ---- a new bundle (graft convert) --------------------------------------- */

/* A heap entry (freed with free_unpacked) for tensor t at `offset` of shard 0. */
static int new_entry(const graft_tensor *t, uint64_t offset, Tensorflow__BundleEntryProto **out,
                     graft_ctx *ctx)
{
    Tensorflow__BundleEntryProto e = TENSORFLOW__BUNDLE_ENTRY_PROTO__INIT;
    Tensorflow__TensorShapeProto shape = TENSORFLOW__TENSOR_SHAPE_PROTO__INIT;
    Tensorflow__TensorShapeProto__Dim dims[GRAFT_MAX_NDIM], *dimp[GRAFT_MAX_NDIM];
    uint8_t *buf;
    size_t n;
    int tf = graft_tf__dtype_to_tf(t->dtype);
    if (!tf || t->dtype == GRAFT_STRING)
        return graft_error(ctx, GRAFT_EFORMAT, "tensor '%s': a checkpoint cannot hold %s",
                           t->name, graft_dtype_name(t->dtype));
    for (uint32_t d = 0; d < t->ndim; d++) {
        dims[d] = (Tensorflow__TensorShapeProto__Dim)TENSORFLOW__TENSOR_SHAPE_PROTO__DIM__INIT;
        dims[d].size = t->shape[d];
        dimp[d] = &dims[d];
    }
    shape.n_dim = t->ndim;
    shape.dim = dimp;
    e.dtype = (Tensorflow__DataType)tf;
    e.shape = &shape;
    e.offset = (int64_t)offset;
    e.size = (int64_t)t->nbytes;
    n = tensorflow__bundle_entry_proto__get_packed_size(&e);
    buf = graft_malloc(ctx, n + 1);
    if (!buf) return graft_error_oom(ctx, "an index entry");
    tensorflow__bundle_entry_proto__pack(&e, buf);
    *out = tensorflow__bundle_entry_proto__unpack(NULL, n, buf);
    free(buf);
    return *out ? GRAFT_OK : graft_error_oom(ctx, "an index entry");
}

int graft_tf__bundle_new(graft_model *m, const char *prefix, graft_ctx *ctx)
{
    Tensorflow__BundleHeaderProto h = TENSORFLOW__BUNDLE_HEADER_PROTO__INIT;
    Tensorflow__VersionDef v = TENSORFLOW__VERSION_DEF__INIT;
    uint64_t at = 0;
    uint8_t *hdr;
    bundle *b;

    for (size_t i = 1; i < m->count; i++)
        if (strcmp(m->tensors[i - 1].name, m->tensors[i].name) >= 0)
            return graft_error(ctx, GRAFT_ERROR, "checkpoint keys must be sorted: '%s' before '%s'",
                               m->tensors[i - 1].name, m->tensors[i].name);
    b = graft_calloc(ctx, 1, sizeof *b);
    if (!b) return graft_error_oom(ctx, "the checkpoint state");
    m->state = b;
    m->state_free = bundle_free;
    v.producer = 1; /* kTensorBundleVersion, as BundleWriter writes */
    h.num_shards = 1;
    h.version = &v;
    b->header_len = tensorflow__bundle_header_proto__get_packed_size(&h);
    hdr = graft_arena_alloc(&m->arena, b->header_len + 1);
    b->ents = graft_calloc(ctx, m->count + 1, sizeof *b->ents);
    b->prefix = graft_strdup(ctx, prefix);
    if (!hdr || !b->ents || !b->prefix) return graft_error_oom(ctx, "the checkpoint state");
    tensorflow__bundle_header_proto__pack(&h, hdr);
    b->header = hdr;
    b->nshards = 1;
    for (size_t i = 0; i < m->count; i++) {
        GRAFT_TRY(new_entry(&m->tensors[i], at, &b->ents[i], ctx));
        b->n = i + 1;
        m->tensors[i].aux = i;
        at += m->tensors[i].nbytes;
    }
    return GRAFT_OK;
}
