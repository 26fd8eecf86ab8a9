/*
 * tf_ckpt_v1.c - format "tf-checkpoint-v1": TensorFlow's old V1 checkpoint,
 * one file of tensor slices (tf.train.Saver(write_version=V1), "model.ckpt",
 * "export-00000-of-00001").  Read only: a source.
 *
 * Layout (tensorflow/core/util/saved_tensor_slice.proto,
 * framework/tensor_slice.proto; proto3 wire format):
 *  1. the file is an immutable sorted table (tf_table.c: LevelDB blocks,
 *     footer magic 0xdb4775248b80fb57); every value is a SavedTensorSlices:
 *     1 meta SavedTensorSliceMeta, 2 data SavedSlice;
 *  2. the record with the empty key (always first) holds meta: 1 tensor
 *     repeated SavedSliceMeta {1 name, 2 shape TensorShapeProto {2 dim
 *     {1 size}, 3 unknown_rank}, 3 type DataType, 4 slice repeated
 *     TensorSliceProto {1 extent repeated {1 start, 2 length}}}, 2 versions;
 *  3. every other record (key: an ordered code of name and slice) holds data:
 *     1 name, 2 slice, 3 data TensorProto without dtype or shape, its values
 *     in the typed field of the meta's type (or tensor_content).
 * A tensor is listed under its name with the meta's dtype and shape when it
 * was saved as one slice covering it (an extent with no length is the whole
 * dimension); tensors split into several slices are refused.
 */
#include "format.h"
#include "pb.h"
#include "strmap.h"
#include "tf_common.h"
#include "tf_table.h"
#include "tf_tensorproto.h"

#include <stdlib.h>
#include <string.h>

typedef struct v1_data {
    const uint8_t *p;     /* the TensorProto bytes (in the file or a decompressed block) */
    size_t len;
    uint64_t origin;      /* its file offset, for messages */
    int tftype;           /* DataType from the meta */
} v1_data;

typedef struct v1_state {
    graft_tf_table *table; /* owned; keeps decompressed blocks alive */
    v1_data *data;         /* owned; one per tensor, by t->aux */
} v1_state;

static void state_free(void *p)
{
    v1_state *s = p;
    if (!s) return;
    graft_tf_table_free(s->table);
    free(s->data);
    free(s);
}

/* The first record of the table: shared 0, unshared 0 (key ""), a varint
 * value length, then SavedTensorSlices field 1 (meta), tag 0x0a. */
static bool v1_probe(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    size_t i = 2;
    (void)path;
    if (is_dir || n < 4 || head[0] != 0 || head[1] != 0) return false;
    while (i < n && i < 7 && (head[i] & 0x80)) i++;
    return i + 1 < n && head[i + 1] == 0x0a;
}

/* Whether a TensorSliceProto covers the whole of shape. */
static int whole_slice(graft_rd r, const int64_t *shape, uint32_t ndim, bool *whole)
{
    graft_pbf f, e;
    uint32_t d = 0;
    *whole = true;
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num != 1 || f.wt != GRAFT_PB_LEN) continue;
        int64_t start = 0, length = -1;
        while (graft_rd_left(&f.sub)) {
            GRAFT_TRY(graft_pb_next(&f.sub, &e));
            if (e.num == 1 && e.wt == GRAFT_PB_VARINT) start = (int64_t)e.v;
            if (e.num == 2 && e.wt == GRAFT_PB_VARINT) length = (int64_t)e.v;
        }
        if (d >= ndim || start != 0 || (length != -1 && length != shape[d])) *whole = false;
        d++;
    }
    if (d != 0 && d != ndim) *whole = false;
    return GRAFT_OK;
}

/* One SavedSliceMeta: name, dtype, shape; the tensor if it is one whole slice. */
static int add_meta(graft_model *m, v1_state *st, graft_rd r, graft_ctx *ctx)
{
    graft_pbf f, d, s;
    graft_rd name = {0}, slice = {0};
    int64_t shape[GRAFT_MAX_NDIM];
    uint32_t ndim = 0, nslices = 0;
    uint64_t type = 0;
    bool whole;
    graft_tensor *t;
    graft_dtype dt;

    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num == 1 && f.wt == GRAFT_PB_LEN) name = f.sub;
        if (f.num == 3 && f.wt == GRAFT_PB_VARINT) type = f.v;
        if (f.num == 4 && f.wt == GRAFT_PB_LEN) slice = f.sub, nslices++;
        if (f.num != 2 || f.wt != GRAFT_PB_LEN) continue;
        ndim = 0;
        while (graft_rd_left(&f.sub)) {
            GRAFT_TRY(graft_pb_next(&f.sub, &d));
            if (d.num == 3 && d.wt == GRAFT_PB_VARINT && d.v)
                return graft_rd_fail(&f.sub, "a tensor of unknown rank");
            if (d.num != 2 || d.wt != GRAFT_PB_LEN) continue;
            if (ndim == GRAFT_MAX_NDIM)
                return graft_error(ctx, GRAFT_ELIMIT, "rank exceeds the cap of %d", GRAFT_MAX_NDIM);
            shape[ndim] = 0;
            while (graft_rd_left(&d.sub)) {
                GRAFT_TRY(graft_pb_next(&d.sub, &s));
                if (s.num == 1 && s.wt == GRAFT_PB_VARINT) shape[ndim] = (int64_t)s.v;
            }
            ndim++;
        }
    }
    int nlen = name.len > 200 ? 200 : (int)name.len;
    dt = graft_tf__dtype(type);
    if (dt == GRAFT_DTYPE_INVALID || dt == GRAFT_STRING)
        return graft_error(ctx, GRAFT_EFORMAT, "tensor '%.*s': DataType %llu is not supported",
                           nlen, (const char *)name.p, (unsigned long long)type);
    if (nslices > 1)
        return graft_error(ctx, GRAFT_EFORMAT, "tensor '%.*s': saved as %u slices; graft reads "
                           "tensors saved whole", nlen, (const char *)name.p, nslices);
    GRAFT_TRY(whole_slice(slice, shape, ndim, &whole));
    if (!whole)
        return graft_error(ctx, GRAFT_EFORMAT, "tensor '%.*s': saved as a partial slice; graft "
                           "reads tensors saved whole", nlen, (const char *)name.p);
    t = graft_model__add(m, name.len ? (const char *)name.p : "", name.len, dt, ndim, shape, ctx);
    if (!t) return ctx->status;
    t->aux = m->count - 1;
    st->data[t->aux].tftype = (int)type;
    return GRAFT_OK;
}

static const char *tensor_key(const void *owner, size_t i, size_t *len)
{
    const char *name = ((const graft_model *)owner)->tensors[i].name;
    *len = strlen(name);
    return name;
}

/* A data record: find its tensor by SavedSlice.name and keep its TensorProto. */
static int add_data(graft_model *m, v1_state *st, const graft_strmap *names,
                    const graft_tf_kv *kv, graft_ctx *ctx)
{
    graft_rd r, sl = {0};
    graft_pbf f, g;
    graft_rd name = {0}, data = {0};
    bool have_data = false;

    graft_rd_init(&r, kv->val, kv->val_len, kv->val_off, ctx);
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num != 2 || f.wt != GRAFT_PB_LEN) continue;
        while (graft_rd_left(&f.sub)) {
            GRAFT_TRY(graft_pb_next(&f.sub, &g));
            if (g.num == 1 && g.wt == GRAFT_PB_LEN) name = g.sub;
            if (g.num == 2 && g.wt == GRAFT_PB_LEN) sl = g.sub;
            if (g.num == 3 && g.wt == GRAFT_PB_LEN) data = g.sub, have_data = true;
        }
    }
    (void)sl;
    size_t i = graft_strmap_find(names, (const char *)name.p, name.len);
    int nlen = name.len > 200 ? 200 : (int)name.len;
    if (i == GRAFT_STRMAP_NONE)
        return graft_error(ctx, GRAFT_ECORRUPT, "data record for '%.*s', which the meta record "
                           "does not list", nlen, (const char *)name.p);
    if (!have_data)
        return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': record without data",
                           m->tensors[i].name);
    if (st->data[i].p)
        return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': two data records",
                           m->tensors[i].name);
    st->data[i].p = data.p;
    st->data[i].len = data.len;
    st->data[i].origin = data.origin;
    return GRAFT_OK;
}

/* The values: tensor_content of exactly nbytes, or typed values (at most numel). */
static int check_values(const graft_tensor *t, const v1_data *d, graft_tf_tproto *tp,
                        graft_ctx *ctx)
{
    graft_rd r;
    graft_rd_init(&r, d->p, d->len, d->origin, ctx);
    GRAFT_TRY(graft_tf__parse_tensor(r, d->tftype, tp));
    if (tp->has_content && tp->content.len != t->nbytes)
        return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': tensor_content of %zu bytes, %s "
                           "of that shape takes %llu", t->name, tp->content.len,
                           graft_dtype_name(t->dtype), (unsigned long long)t->nbytes);
    if (!tp->has_content && tp->k != t->numel)
        return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': %llu values for %llu elements",
                           t->name, (unsigned long long)tp->k, (unsigned long long)t->numel);
    return GRAFT_OK;
}

static int load_v1(const graft_model *m, const graft_tensor *t, uint8_t *dst, graft_ctx *ctx)
{
    const v1_data *d = &((const v1_state *)m->state)->data[t->aux];
    graft_tf_tproto tp;
    graft_rd r;
    GRAFT_TRY(check_values(t, d, &tp, ctx));
    if (tp.has_content) {
        memcpy(dst, tp.content.p, (size_t)t->nbytes);
        return GRAFT_OK;
    }
    graft_rd_init(&r, d->p, d->len, d->origin, ctx);
    return graft_tf__decode_typed(r, &tp, t, dst);
}

/* The values 1 MiB at a time (tensor_content handed on in place), the
 * file's pages released behind: hashing keeps memory flat. */
static int stream_v1(const graft_model *m, const graft_tensor *t, graft_piece_fn fn, void *arg,
                     graft_ctx *ctx)
{
    const v1_data *d = &((const v1_state *)m->state)->data[t->aux];
    size_t es = graft_dtype_size(t->dtype), cap = (1u << 20) / es * es;
    graft_releasing_pieces vp = {fn, arg, m->sources[0], d->origin, GRAFT_OK};
    graft_tf_tproto tp;
    uint8_t *buf;
    graft_rd r;
    int rc = GRAFT_OK;

    GRAFT_TRY(check_values(t, d, &tp, ctx));
    if (tp.has_content) {
        for (uint64_t off = 0; off < t->nbytes && rc == GRAFT_OK; off += cap) {
            size_t n = t->nbytes - off < cap ? (size_t)(t->nbytes - off) : cap;
            rc = graft_releasing_piece(&vp, tp.content.p + off, n, tp.content.origin + off + n);
        }
        return rc;
    }
    if (!(buf = graft_malloc(ctx, cap))) return graft_error_oom(ctx, "a decoding buffer");
    graft_rd_init(&r, d->p, d->len, d->origin, ctx);
    rc = graft_tf__decode_pieces(r, &tp, t, buf, cap, graft_releasing_piece, &vp);
    free(buf);
    if (rc < 0 && vp.fn_rc == GRAFT_OK) return graft_error_prefix(ctx, "tensor '%s'", t->name);
    return rc;
}

static int v1_open(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    const graft_source *src;
    v1_state *st;
    graft_strmap names;
    graft_rd r;
    graft_pbf f, g;
    int rc = GRAFT_OK;

    (void)opts;
    if (m->nsources == 0) return graft_error(ctx, GRAFT_EFORMAT, "a folder is not a V1 checkpoint");
    src = m->sources[0];
    st = graft_calloc(ctx, 1, sizeof *st);
    if (!st) return graft_error_oom(ctx, "the checkpoint state");
    m->state = st;
    m->state_free = state_free;
    GRAFT_TRY(graft_tf_table_open_source(&st->table, src, ctx));
    if (st->table->count == 0 || st->table->kv[0].key_len != 0)
        return graft_error(ctx, GRAFT_ECORRUPT, "no meta record (empty key) first");
    /* the meta lists at most one tensor per byte of it */
    st->data = graft_calloc(ctx, st->table->kv[0].val_len + 1, sizeof *st->data);
    if (!st->data) return graft_error_oom(ctx, "the tensor table");
    graft_rd_init(&r, st->table->kv[0].val, st->table->kv[0].val_len, st->table->kv[0].val_off, ctx);
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num != 1 || f.wt != GRAFT_PB_LEN) continue;
        while (graft_rd_left(&f.sub)) {
            GRAFT_TRY(graft_pb_next(&f.sub, &g));
            if (g.num != 1 || g.wt != GRAFT_PB_LEN) continue;
            GRAFT_TRY(add_meta(m, st, g.sub, ctx));
        }
    }
    graft_strmap_init(&names, tensor_key, m);
    if ((rc = graft_strmap_reserve(&names, m->count, ctx)) < 0) goto cleanup;
    for (size_t i = 0; i < m->count; i++) graft_strmap_put(&names, i);
    for (size_t i = 1; i < st->table->count && rc == GRAFT_OK; i++)
        rc = add_data(m, st, &names, &st->table->kv[i], ctx);
    for (size_t i = 0; i < m->count && rc == GRAFT_OK; i++) {
        graft_tf_tproto tp;
        graft_tensor *t = &m->tensors[i];
        if (!st->data[i].p)
            rc = graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': no data record", t->name);
        else if ((rc = check_values(t, &st->data[i], &tp, ctx)) == GRAFT_OK)
            t->load = load_v1, t->stream = stream_v1;
    }
cleanup:
    graft_strmap_free(&names);
    return rc;
}

const graft_format graft_format_tf_checkpoint_v1 = {
    .name = "tf-checkpoint-v1",
    .probe = v1_probe,
    .open = v1_open,
    .write = NULL,
};
