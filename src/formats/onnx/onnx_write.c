/*
 * onnx_write.c - ONNX as a skeleton: a copy of the model with new tensor
 * values (see onnx.c for the layout).
 *
 * The model is walked twice at the protobuf wire level (onnx_wire.c): once to
 * measure the new size of every message on the way to a tensor, once to write
 * it.  Everything but the tensors' element fields and the length prefixes of
 * their enclosing messages is copied byte for byte.  External tensors go to
 * new data files beside the output in the skeleton's layout (same relative
 * locations, offsets and lengths), written and renamed into place before the
 * model that points at them.
 */
#include "format.h"
#include "onnx_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NO_TENSOR SIZE_MAX
#define PROTOBUF_MAX 0x7fffffffu   /* protobuf refuses messages of 2 GiB and more */

/* A sparse tensor's new SparseTensorProto body, made once for the walks. */
typedef struct sparse_enc {
    bool done;
    graft_sink *body;           /* in memory; NULL: unchanged, copied as it is */
} sparse_enc;

typedef struct onnx_writer {
    const graft_model *m;
    const graft_onnx_state *st;
    graft_fill *fill;
    size_t *tensor_of;          /* entry -> model tensor, NO_TENSOR if not listed; owned */
    char **newloc;              /* per side file: its new location if renamed, else NULL */
    sparse_enc *sparse;         /* per entry; owned */
} onnx_writer;

static bool is_data_field(uint32_t num)
{
    return num == ONNX_T_FLOAT || num == ONNX_T_INT32 || num == ONNX_T_STRING ||
           num == ONNX_T_INT64 || num == ONNX_T_RAW || num == ONNX_T_DOUBLE ||
           num == ONNX_T_UINT64;
}

static int emit_tensor(onnx_writer *wr, size_t ti, graft_sink *out, graft_ctx *ctx)
{
    return graft_fill_emit(wr->fill, wr->m, ti, out, ctx);
}

static const graft_onnx_entry *find_entry(const graft_onnx_state *st, uint64_t off)
{
    size_t lo = 0, hi = st->count;
    while (lo < hi) { /* entries are in file order */
        size_t mid = lo + (hi - lo) / 2;
        if (st->entries[mid].msg_off < off) lo = mid + 1;
        else hi = mid;
    }
    return lo < st->count && st->entries[lo].msg_off == off ? &st->entries[lo] : NULL;
}

/* An external_data entry whose key is "location". */
static bool is_location_entry(const graft_pbf *f)
{
    graft_rd b = f->sub;
    graft_pbf g;
    while (graft_rd_left(&b)) {
        if (graft_pb_next(&b, &g) < 0) return false;
        if (g.num == 1 && g.wt == GRAFT_PB_LEN && g.sub.len == 8 &&
            !memcmp(g.sub.p, "location", 8))
            return true;
    }
    return false;
}

static int put_location(graft_sink *out, const char *loc, uint64_t *size)
{
    size_t n = strlen(loc);
    uint64_t body = 1 + 1 + 8 + 1 + graft_pb_varint_len(n) + n;
    *size = 1 + graft_pb_varint_len(body) + body;
    if (!out) return GRAFT_OK;
    GRAFT_TRY(graft_sink_write(out, "\x6a", 1));  /* field 13, LEN */
    GRAFT_TRY(graft_pb_sink_varint(out, body));
    GRAFT_TRY(graft_sink_write(out, "\x0a\x08location\x12", 11));
    GRAFT_TRY(graft_pb_sink_varint(out, n));
    return graft_sink_write(out, loc, n);
}

/*
 * A weight TensorProto with new values: every field is copied except the
 * element fields, replaced by one field at the place of the first: float_data
 * and double_data stay (their packed bytes are the little-endian elements),
 * raw_data stays, and varint fields (int32_data, int64_data, uint64_data)
 * become raw_data, which every ONNX reader accepts for those types.
 */
static int put_tensor(graft_onnx_walker *w, graft_onnx_mode mode, graft_rd *msg,
                      const graft_onnx_str *cname, uint64_t *size)
{
    onnx_writer *wr = w->payload;
    graft_sink *out = mode == GRAFT_ONNX_EMIT ? w->out : NULL;
    const graft_onnx_entry *e = find_entry(wr->st, graft_rd_offset(msg));
    const char *newloc = NULL;
    const graft_tensor *t;
    uint64_t total = 0, n;
    bool placed = false;
    uint32_t field = 0;
    size_t ti;

    (void)cname;
    if (!e)
        return graft_error(w->ctx, GRAFT_ERROR, "offset 0x%llx: tensor not seen when reading",
                           (unsigned long long)graft_rd_offset(msg));
    ti = wr->tensor_of[e - wr->st->entries];
    if (ti == NO_TENSOR) { /* not in the table (--select): keep it as it is */
        *size = msg->len;
        return out ? graft_sink_write(out, msg->p, msg->len) : GRAFT_OK;
    }
    t = &wr->m->tensors[ti];
    if (e->store == STORE_EXTERNAL)
        newloc = wr->newloc[e->ext];
    else if (e->store == ONNX_T_FLOAT || e->store == ONNX_T_DOUBLE)
        field = (uint32_t)e->store;
    else if (t->nbytes || e->store == ONNX_T_RAW)
        field = ONNX_T_RAW;
    n = 1 + graft_pb_varint_len(t->nbytes) + t->nbytes;
    while (graft_rd_left(msg) || (field && !placed)) {
        graft_pbf f;
        bool at_end = !graft_rd_left(msg);
        if (!at_end) GRAFT_TRY(graft_pb_next(msg, &f));
        if (at_end || is_data_field(f.num)) {
            if (field && !placed) {
                uint8_t tag = (uint8_t)(field << 3 | GRAFT_PB_LEN);
                placed = true;
                total += n;
                if (out) {
                    GRAFT_TRY(graft_sink_write(out, &tag, 1));
                    GRAFT_TRY(graft_pb_sink_varint(out, t->nbytes));
                    GRAFT_TRY(emit_tensor(wr, ti, out, w->ctx));
                }
            }
            continue;
        }
        if (newloc && f.num == ONNX_T_EXTERNAL && f.wt == GRAFT_PB_LEN && is_location_entry(&f)) {
            uint64_t s;
            GRAFT_TRY(put_location(out, newloc, &s));
            total += s;
            continue;
        }
        total += f.span;
        if (out) GRAFT_TRY(graft_sink_write(out, f.at, f.span));
    }
    *size = total;
    return GRAFT_OK;
}

/* Fields of a new `value` attribute around the emitted elements: name,
 * type TENSOR and t = TensorProto {dims (1-d only), data_type, raw_data}. */
static uint64_t value_attr_size(const graft_tensor *t, uint64_t *tensor_body)
{
    uint64_t body = (t->ndim ? 1 + graft_pb_varint_len((uint64_t)t->shape[0]) : 0) + 2 +
                    1 + graft_pb_varint_len(t->nbytes) + t->nbytes;
    *tensor_body = body;
    return 7 + 3 + 1 + graft_pb_varint_len(body) + body;
}

static int put_value_attr(onnx_writer *wr, size_t ti, graft_sink *out, uint64_t tensor_body,
                          graft_ctx *ctx)
{
    const graft_tensor *t = &wr->m->tensors[ti];
    uint8_t head[32], *p = head;
    GRAFT_TRY(graft_sink_write(out, "\x0a\x05value\xa0\x01\x04\x2a", 11));
    p = graft_pb_put_varint(p, tensor_body);
    if (t->ndim) {
        *p++ = 0x08; /* dims */
        p = graft_pb_put_varint(p, (uint64_t)t->shape[0]);
    }
    *p++ = 0x10; /* data_type: FLOAT 1, INT64 7 */
    *p++ = t->dtype == GRAFT_FLOAT32 ? 1 : 7;
    *p++ = 0x4a; /* raw_data */
    p = graft_pb_put_varint(p, t->nbytes);
    GRAFT_TRY(graft_sink_write(out, head, (size_t)(p - head)));
    return emit_tensor(wr, ti, out, ctx);
}

/*
 * A Constant's value_* attribute with new values.  Numbers become the same
 * Constant written as `value` (a 0-d or 1-d TensorProto with raw_data, as
 * value_float = x means in onnx.proto), the attribute's other fields
 * (doc_string) kept; strings, whose bytes are the fields themselves, are
 * written in place of the old ones.
 */
static int put_attr(graft_onnx_walker *w, graft_onnx_mode mode, graft_rd *msg,
                    const graft_onnx_str *cname, uint32_t field, uint64_t *size)
{
    onnx_writer *wr = w->payload;
    graft_sink *out = mode == GRAFT_ONNX_EMIT ? w->out : NULL;
    const graft_onnx_entry *e = find_entry(wr->st, graft_rd_offset(msg));
    const graft_tensor *t;
    uint64_t total = 0, tbody = 0;
    bool placed = false, strings;
    size_t ti;

    (void)cname;
    if (!e)
        return graft_error(w->ctx, GRAFT_ERROR, "offset 0x%llx: Constant not seen when reading",
                           (unsigned long long)graft_rd_offset(msg));
    ti = wr->tensor_of[e - wr->st->entries];
    if (ti == NO_TENSOR) {
        *size = msg->len;
        return out ? graft_sink_write(out, msg->p, msg->len) : GRAFT_OK;
    }
    t = &wr->m->tensors[ti];
    strings = t->dtype == GRAFT_STRING;
    if (!strings) {
        total = value_attr_size(t, &tbody);
        if (out) GRAFT_TRY(put_value_attr(wr, ti, out, tbody, w->ctx));
        placed = true;
    }
    while (graft_rd_left(msg) || !placed) {
        graft_pbf f;
        bool at_end = !graft_rd_left(msg);
        if (!at_end) GRAFT_TRY(graft_pb_next(msg, &f));
        if (at_end || f.num == field) {
            if (!placed) { /* strings: at the place of the first */
                placed = true;
                total += t->nbytes;
                if (out) GRAFT_TRY(emit_tensor(wr, ti, out, w->ctx));
            }
            continue;
        }
        /* numbers: the old name, type and value go; the rest stays */
        if (!strings && (f.num == 1 || f.num == 20)) continue;
        total += f.span;
        if (out) GRAFT_TRY(graft_sink_write(out, f.at, f.span));
    }
    *size = total;
    return GRAFT_OK;
}

static int sparse_tensor_field(graft_sink *s, uint8_t tag, uint64_t nnz, int64_t data_type,
                               const graft_onnx_str *name, const uint8_t *raw, uint64_t rawlen)
{
    uint64_t body = 1 + graft_pb_varint_len(nnz) + 1 + graft_pb_varint_len((uint64_t)data_type) +
                    (name->n ? 1 + graft_pb_varint_len(name->n) + name->n : 0) +
                    1 + graft_pb_varint_len(rawlen) + rawlen;
    GRAFT_TRY(graft_sink_write(s, &tag, 1));
    GRAFT_TRY(graft_pb_sink_varint(s, body));
    GRAFT_TRY(graft_sink_write(s, "\x08", 1)); /* dims [NNZ] */
    GRAFT_TRY(graft_pb_sink_varint(s, nnz));
    GRAFT_TRY(graft_sink_write(s, "\x10", 1)); /* data_type */
    GRAFT_TRY(graft_pb_sink_varint(s, (uint64_t)data_type));
    if (name->n) {
        GRAFT_TRY(graft_sink_write(s, "\x42", 1)); /* name */
        GRAFT_TRY(graft_pb_sink_varint(s, name->n));
        GRAFT_TRY(graft_sink_write(s, name->p, name->n));
    }
    GRAFT_TRY(graft_sink_write(s, "\x4a", 1)); /* raw_data */
    GRAFT_TRY(graft_pb_sink_varint(s, rawlen));
    return raw ? graft_sink_write(s, raw, (size_t)rawlen) : GRAFT_OK;
}

static bool nonzero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return true;
    return false;
}

/*
 * The new body of sparse tensor ti, whose SparseTensorProto is msg: none
 * when its dense bytes are unchanged (the message is copied as it is), else
 * values = the non-zero elements as raw_data (the old values' name and
 * data_type kept), indices = their linearized positions ([NNZ] INT64
 * raw_data, ascending), and every other field (dims...) copied.
 */
static int encode_sparse(onnx_writer *wr, size_t ti, graft_rd msg, sparse_enc *enc,
                         graft_ctx *ctx)
{
    const graft_tensor *t = &wr->m->tensors[ti];
    size_t esize = graft_dtype_size(t->dtype);
    graft_sink *dense = NULL, *body = NULL;
    const uint8_t *p;
    uint8_t *old = NULL, idx[8];
    uint64_t nnz = 0;
    graft_onnx_sparse sp;
    graft_rd r = msg;
    size_t n;
    int rc;

    enc->done = true;
    if ((rc = graft_sink_open_mem(&dense, ctx)) < 0) goto cleanup;
    if ((rc = graft_fill_emit(wr->fill, wr->m, ti, dense, ctx)) < 0) goto cleanup;
    if ((rc = graft_sink_mem(dense, &p, &n)) < 0) goto cleanup;
    if (!(old = graft_malloc(ctx, (size_t)t->nbytes + 1))) {
        rc = graft_error_oom(ctx, "a sparse tensor");
        goto cleanup;
    }
    if ((rc = t->load(wr->m, t, old, ctx)) < 0) goto cleanup;
    if (!memcmp(old, p, n)) goto cleanup;
    if ((rc = graft_onnx__parse_sparse(&r, &sp)) < 0) goto cleanup;
    for (uint64_t i = 0; i < t->numel; i++) nnz += nonzero(p + i * esize, esize);
    if ((rc = graft_sink_open_mem(&body, ctx)) < 0) goto cleanup;
    rc = sparse_tensor_field(body, 0x0a, nnz, sp.values.data_type, &sp.values.name, NULL,
                             nnz * esize);
    for (uint64_t i = 0; rc >= 0 && i < t->numel; i++)
        if (nonzero(p + i * esize, esize)) rc = graft_sink_write(body, p + i * esize, esize);
    if (rc >= 0)
        rc = sparse_tensor_field(body, 0x12, nnz, 7, &(graft_onnx_str){NULL, 0}, NULL, nnz * 8);
    for (uint64_t i = 0; rc >= 0 && i < t->numel; i++)
        if (nonzero(p + i * esize, esize)) {
            graft_put_le64(idx, i);
            rc = graft_sink_write(body, idx, 8);
        }
    r = msg;
    while (rc >= 0 && graft_rd_left(&r)) {
        graft_pbf f;
        if ((rc = graft_pb_next(&r, &f)) < 0) break;
        if (f.num != 1 && f.num != 2) rc = graft_sink_write(body, f.at, f.span);
    }
    if (rc < 0) goto cleanup;
    enc->body = body;
    body = NULL;
cleanup:
    graft_sink_abort(body);
    graft_sink_abort(dense);
    free(old);
    if (rc < 0) graft_error_prefix(ctx, "tensor '%s'", t->name);
    return rc;
}

static int put_sparse(graft_onnx_walker *w, graft_onnx_mode mode, graft_rd *msg,
                      const graft_onnx_str *cname, uint64_t *size)
{
    onnx_writer *wr = w->payload;
    graft_sink *out = mode == GRAFT_ONNX_EMIT ? w->out : NULL;
    const graft_onnx_entry *e = find_entry(wr->st, graft_rd_offset(msg));
    sparse_enc *enc;
    const uint8_t *p;
    size_t ti, n;

    (void)cname;
    if (!e)
        return graft_error(w->ctx, GRAFT_ERROR, "offset 0x%llx: sparse tensor not seen when reading",
                           (unsigned long long)graft_rd_offset(msg));
    ti = wr->tensor_of[e - wr->st->entries];
    enc = &wr->sparse[e - wr->st->entries];
    if (ti != NO_TENSOR && !wr->m->tensors[ti].unsupported && !enc->done)
        GRAFT_TRY(encode_sparse(wr, ti, *msg, enc, w->ctx));
    if (!enc->body) { /* not listed, unsupported or unchanged: as it is */
        *size = msg->len;
        return out ? graft_sink_write(out, msg->p, msg->len) : GRAFT_OK;
    }
    GRAFT_TRY(graft_sink_mem(enc->body, &p, &n));
    *size = n;
    return out ? graft_sink_write(out, p, n) : GRAFT_OK;
}

static int cmp_by_ext_off(const void *a, const void *b)
{
    const graft_onnx_entry *ea = *(const graft_onnx_entry *const *)a;
    const graft_onnx_entry *eb = *(const graft_onnx_entry *const *)b;
    return ea->ext_off < eb->ext_off ? -1 : ea->ext_off > eb->ext_off;
}

static bool same_file(const char *a, const struct stat *sb)
{
    struct stat sa;
    return stat(a, &sa) == 0 && sa.st_dev == sb->st_dev && sa.st_ino == sb->st_ino;
}

/* Would `path` overwrite a file the skeleton was read from? */
static bool is_input(const graft_model *m, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return false;
    for (size_t i = 0; i < m->nsources; i++)
        if (same_file(m->sources[i]->path, &st)) return true;
    return false;
}

/* Create the folders of a relative location below dir. */
static void make_folders(char *path, size_t from)
{
    for (char *c = path + from; (c = strchr(c, '/')); c++) {
        *c = '\0';
        (void)mkdir(path, 0777);
        *c = '/';
    }
}

/*
 * The side file for external data file k: beside the output at the same
 * relative location, or, where that is the skeleton's own file, at
 * "<dir of location>/<output name>.<name of location>".
 */
static int write_side_file(onnx_writer *wr, size_t k, const char *out_dir, const char *out_base,
                           graft_sink **sink_out, graft_ctx *ctx)
{
    const graft_onnx_state *st = wr->st;
    const char *loc = st->exts[k].location, *slash = strrchr(loc, '/');
    const graft_onnx_entry **list = NULL;
    graft_sink *sink = NULL;
    char *path = NULL;
    size_t n = 0, dl = strlen(out_dir);
    uint64_t pos = 0;
    int rc;

    path = graft_malloc(ctx, dl + 2 * strlen(loc) + strlen(out_base) + 4);
    list = graft_malloc(ctx, (st->count ? st->count : 1) * sizeof *list);
    if (!path || !list) {
        rc = graft_error_oom(ctx, "the external data plan");
        goto cleanup;
    }
    sprintf(path, "%s/%s", out_dir, loc);
    if (is_input(wr->m, path)) {
        size_t head = slash ? (size_t)(slash - loc) + 1 : 0;
        wr->newloc[k] = graft_malloc(ctx, strlen(loc) + strlen(out_base) + 2);
        if (!wr->newloc[k]) {
            rc = graft_error_oom(ctx, "a location");
            goto cleanup;
        }
        sprintf(wr->newloc[k], "%.*s%s.%s", (int)head, loc, out_base, loc + head);
        sprintf(path, "%s/%s", out_dir, wr->newloc[k]);
        if (is_input(wr->m, path)) {
            rc = graft_error(ctx, GRAFT_EIO, "external data file %s is an input; write the "
                             "output to another folder", path);
            goto cleanup;
        }
    }
    make_folders(path, dl + 1);
    for (size_t i = 0; i < st->count; i++)
        if (st->entries[i].store == STORE_EXTERNAL && st->entries[i].ext == k)
            list[n++] = &st->entries[i];
    qsort(list, n, sizeof *list, cmp_by_ext_off);
    rc = graft_sink_open(&sink, path, ctx);
    if (rc < 0) goto cleanup;
    for (size_t i = 0; i < n; i++) {
        const graft_onnx_entry *e = list[i];
        size_t ti = wr->tensor_of[e - st->entries];
        if (e->ext_off < pos) {
            rc = graft_error(ctx, GRAFT_EFORMAT, "external data in %s: tensors overlap at offset "
                             "%llu; graft keeps the skeleton's layout and cannot write them",
                             loc, (unsigned long long)e->ext_off);
            goto cleanup;
        }
        rc = graft_sink_fill(sink, 0, e->ext_off - pos);
        if (rc >= 0 && ti == NO_TENSOR) /* not listed (--select): the skeleton's bytes */
            rc = graft_sink_write(sink, st->exts[k].src->data + e->ext_off, (size_t)e->ext_len);
        else if (rc >= 0)
            rc = emit_tensor(wr, ti, sink, ctx);
        if (rc < 0) goto cleanup;
        pos = e->ext_off + e->ext_len;
    }
    *sink_out = sink;
    sink = NULL;
cleanup:
    graft_sink_abort(sink);
    free(list);
    free(path);
    return rc;
}

static int measure(graft_onnx_walker *w, const graft_source *src, uint64_t *size,
                   graft_ctx *ctx)
{
    GRAFT_TRY(graft_onnx__walk(w, GRAFT_ONNX_SIZE, src->data, src->size, size));
    if (*size > PROTOBUF_MAX)
        return graft_error(ctx, GRAFT_ELIMIT,
                           "the model would be %llu bytes, over the 2 GiB protobuf limit; ONNX "
                           "models this big must keep their weights in external data",
                           (unsigned long long)*size);
    return GRAFT_OK;
}

int graft_onnx__write(const graft_model *m, const char *out_path, graft_fill *fill,
                      graft_ctx *ctx)
{
    const graft_onnx_state *st = m->state;
    onnx_writer wr = {.m = m, .st = st, .fill = fill};
    graft_onnx_walker w = {.tensor = put_tensor, .attr = put_attr, .sparse = put_sparse,
                           .payload = &wr, .ctx = ctx};
    const graft_source *src = m->sources[0];
    graft_sink **sides = NULL, *main_sink = NULL;
    const char *slash = strrchr(out_path, '/');
    char *out_dir = NULL;
    uint64_t size;
    int rc = GRAFT_OK;

    wr.tensor_of = graft_malloc(ctx, (st->count ? st->count : 1) * sizeof *wr.tensor_of);
    wr.newloc = graft_calloc(ctx, st->next ? st->next : 1, sizeof *wr.newloc);
    sides = graft_calloc(ctx, st->next ? st->next : 1, sizeof *sides);
    wr.sparse = graft_calloc(ctx, st->count ? st->count : 1, sizeof *wr.sparse);
    out_dir = slash ? graft_strdup(ctx, out_path) : graft_strdup(ctx, ".");
    if (!wr.tensor_of || !wr.newloc || !sides || !wr.sparse || !out_dir) {
        rc = graft_error_oom(ctx, "the ONNX writer");
        goto cleanup;
    }
    if (slash) out_dir[slash == out_path ? 1 : slash - out_path] = '\0';
    for (size_t i = 0; i < st->count; i++) wr.tensor_of[i] = NO_TENSOR;
    for (size_t i = 0; i < m->count; i++) wr.tensor_of[m->tensors[i].aux] = i;

    rc = measure(&w, src, &size, ctx);
    if (rc < 0) goto cleanup;
    for (size_t k = 0; k < st->next; k++) {
        rc = write_side_file(&wr, k, out_dir, slash ? slash + 1 : out_path, &sides[k], ctx);
        if (rc < 0) goto cleanup;
    }
    rc = measure(&w, src, &size, ctx); /* again: renamed locations change sizes */
    if (rc < 0) goto cleanup;
    rc = graft_sink_open(&main_sink, out_path, ctx);
    if (rc < 0) goto cleanup;
    w.out = main_sink;
    rc = graft_onnx__walk(&w, GRAFT_ONNX_EMIT, src->data, src->size, NULL);
    if (rc >= 0 && graft_sink_tell(main_sink) != size)
        rc = graft_error(ctx, GRAFT_ERROR, "wrote %llu bytes, measured %llu",
                         (unsigned long long)graft_sink_tell(main_sink), (unsigned long long)size);
    if (rc < 0) goto cleanup;
    /* All synced before any is linked in (a kill leaves none of them); side
     * files first, so the model never points at data that is not there. */
    for (size_t k = 0; k < st->next && rc >= 0; k++) rc = graft_sink_sync(sides[k]);
    if (rc >= 0) rc = graft_sink_sync(main_sink);
    if (rc < 0) goto cleanup;
    for (size_t k = 0; k < st->next; k++) {
        rc = graft_sink_commit(sides[k]);
        sides[k] = NULL;
        if (rc < 0) goto cleanup;
    }
    rc = graft_sink_commit(main_sink);
    main_sink = NULL;
cleanup:
    graft_sink_abort(main_sink);
    for (size_t k = 0; sides && k < st->next; k++) graft_sink_abort(sides[k]);
    for (size_t k = 0; wr.newloc && k < st->next; k++) free(wr.newloc[k]);
    free(wr.newloc);
    for (size_t i = 0; wr.sparse && i < st->count; i++) graft_sink_abort(wr.sparse[i].body);
    free(wr.sparse);
    free(sides);
    free(wr.tensor_of);
    free(out_dir);
    return rc;
}
