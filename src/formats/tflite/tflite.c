/*
 * tflite.c - TensorFlow Lite models (.tflite): a FlatBuffer, schema v3
 * (tensorflow/compiler/mlir/lite/schema/schema.fbs, file_identifier "TFL3").
 *
 * Layout (FlatBuffer wire format in fb.h; field ids in tflite.h):
 *  1. bytes 0-3: uoffset of the root Model table; bytes 4-7: "TFL3".
 *  2. Model: version (u32, 3), subgraphs [SubGraph], buffers [Buffer];
 *     buffers[0] is an empty sentinel.
 *  3. SubGraph: tensors [Tensor], name (string, may be absent).
 *  4. Tensor: shape [int32], type (TensorType, byte), buffer (u32 index into
 *     Model.buffers; 0 = none), name, quantization (QuantizationParameters:
 *     scale [float], zero_point [int64], quantized_dimension int32), sparsity.
 *  5. Buffer: data [ubyte] (force_align 16), or for models over 2 GB offset
 *     (u64, from the file start, valid when > 1) and size (u64), the bytes
 *     then following the FlatBuffer.
 *
 * Every tensor whose buffer holds bytes is listed, as stored (int8 stays
 * int8, row-major little-endian), with its quantization parameters.  Names:
 * the tensor's name when no tensor listed before has it, else
 * "<subgraph name>/<name>" ("subgraph<i>" for an unnamed subgraph), else
 * "<subgraph name>/<name>#<tensor index>".  An unnamed tensor is "tensor<i>".
 */
#include "tflite.h"

#include "fb.h"
#include "layout.h"
#include "rd.h"
#include "strmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* TensorType values in schema order; INVALID for RESOURCE, VARIANT, INT4. */
static const graft_dtype tfl_types[] = {
    GRAFT_FLOAT32, GRAFT_FLOAT16, GRAFT_INT32,  GRAFT_UINT8,   GRAFT_INT64,
    GRAFT_STRING,  GRAFT_BOOL,    GRAFT_INT16,  GRAFT_COMPLEX64, GRAFT_INT8,
    GRAFT_FLOAT64, GRAFT_COMPLEX128, GRAFT_UINT64, GRAFT_DTYPE_INVALID, GRAFT_DTYPE_INVALID,
    GRAFT_UINT32,  GRAFT_UINT16,  GRAFT_DTYPE_INVALID, GRAFT_BFLOAT16,
};

static void state_free(void *p)
{
    tfl_state *s = p;
    if (!s) return;
    free(s->buffers);
    free(s);
}

static bool tfl_probe(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    (void)path;
    return !is_dir && n >= 8 && memcmp(head + 4, "TFL3", 4) == 0;
}

/* Key function of the names map: the names of the tensors listed so far. */
static const char *tensor_key(const void *owner, size_t i, size_t *len)
{
    const char *name = ((const graft_model *)owner)->tensors[i].name;
    *len = strlen(name);
    return name;
}

static bool taken(const graft_strmap *ns, const char *s)
{
    return graft_strmap_get(ns, s) != GRAFT_STRMAP_NONE;
}

/* The listed name of tensor ti of subgraph sg (see the top of the file). */
static const char *unique_name(graft_model *m, const graft_strmap *ns, const char *sgname,
                               uint32_t sglen, uint32_t sg, const char *name, uint32_t len,
                               uint32_t ti)
{
    char *cand;
    if (memchr(name, '\0', len)) len = (uint32_t)strlen(name);
    if (len == 0) cand = graft_arena_printf(&m->arena, "tensor%u", ti);
    else cand = graft_arena_strndup(&m->arena, name, len);
    if (!cand || !taken(ns, cand)) return cand;
    if (memchr(sgname, '\0', sglen)) sglen = (uint32_t)strlen(sgname);
    if (sglen) cand = graft_arena_printf(&m->arena, "%.*s/%s", (int)sglen, sgname, cand);
    else cand = graft_arena_printf(&m->arena, "subgraph%u/%s", sg, cand);
    if (!cand || !taken(ns, cand)) return cand;
    return graft_arena_printf(&m->arena, "%s#%u", cand, ti);
}

static int read_buffers(graft_model *m, const graft_fb *b, const graft_fb_table *root,
                        tfl_state *st, graft_ctx *ctx)
{
    graft_fb_vec v;
    GRAFT_TRY(graft_fb__field(b, root, TFL_MODEL_BUFFERS, 4, "Model.buffers", &st->buffers_field));
    GRAFT_TRY(graft_fb__vector(b, root, TFL_MODEL_BUFFERS, 4, "Model.buffers", &v));
    st->nbuffers = v.len;
    st->buffers = graft_calloc(ctx, v.len ? v.len : 1, sizeof *st->buffers);
    if (!st->buffers) return graft_error_oom(ctx, "the buffer table");
    for (uint32_t i = 0; i < v.len; i++) {
        char what[48];
        graft_fb_table bt;
        graft_fb_vec data;
        uint64_t off, size;
        tfl_buffer *buf = &st->buffers[i];
        snprintf(what, sizeof what, "buffer %u", i);
        GRAFT_TRY(graft_fb__vec_table(b, &v, i, what, &bt));
        GRAFT_TRY(graft_fb__vector(b, &bt, TFL_BUFFER_DATA, 1, what, &data));
        GRAFT_TRY(graft_fb__u64(b, &bt, TFL_BUFFER_OFFSET, 0, what, &off));
        GRAFT_TRY(graft_fb__u64(b, &bt, TFL_BUFFER_SIZE, 0, what, &size));
        if (data.len) {
            buf->data = data.pos;
            buf->size = data.len;
        } else if (off > 1) { /* the schema: "only valid if > 1" */
            if (off > b->n || size > b->n - off)
                return graft_error(ctx, GRAFT_ECORRUPT,
                                   "%s: offset %llu + size %llu past the end of the %zu-byte file",
                                   what, (unsigned long long)off, (unsigned long long)size, b->n);
            buf->data = off;
            buf->size = size;
            buf->external = true;
        }
    }
    (void)m;
    return GRAFT_OK;
}

static int read_quant(graft_model *m, const graft_fb *b, const graft_fb_table *tt,
                      graft_tensor *t, graft_ctx *ctx)
{
    graft_fb_table q;
    graft_fb_vec sv, zv;
    bool present;
    uint8_t details;
    uint32_t axis;
    graft_quant *gq;
    float *scale;
    int64_t *zero;

    GRAFT_TRY(graft_fb__table(b, tt, TFL_TENSOR_QUANTIZATION, "quantization", &q, &present));
    if (!present) return GRAFT_OK;
    GRAFT_TRY(graft_fb__vector(b, &q, TFL_QUANT_SCALE, 4, "quantization scale", &sv));
    GRAFT_TRY(graft_fb__vector(b, &q, TFL_QUANT_ZERO_POINT, 8, "quantization zero_point", &zv));
    GRAFT_TRY(graft_fb__u8(b, &q, TFL_QUANT_DETAILS_TYPE, 0, "quantization details", &details));
    GRAFT_TRY(graft_fb__u32(b, &q, TFL_QUANT_DIMENSION, 0, "quantized_dimension", &axis));
    if (sv.len == 0) return GRAFT_OK; /* min/max only, or custom details: nothing to apply */
    if (zv.len && zv.len != sv.len)
        return graft_error(ctx, GRAFT_ECORRUPT, "%u scales but %u zero points", sv.len, zv.len);
    if (sv.len > 1 && ((int32_t)axis < 0 || axis >= t->ndim || (uint64_t)t->shape[axis] != sv.len))
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "%u scales along quantized_dimension %d of a %u-d tensor", sv.len,
                           (int32_t)axis, t->ndim);
    gq = graft_arena_alloc(&m->arena, sizeof *gq);
    scale = graft_arena_alloc(&m->arena, (size_t)sv.len * sizeof *scale);
    zero = graft_arena_alloc(&m->arena, (size_t)(zv.len ? zv.len : 1) * sizeof *zero);
    if (!gq || !scale || !zero) return graft_error_oom(ctx, "quantization parameters");
    for (uint32_t i = 0; i < sv.len; i++) {
        uint32_t bits = graft_le32(b->p + sv.pos + 4 * (size_t)i);
        memcpy(&scale[i], &bits, 4);
    }
    for (uint32_t i = 0; i < zv.len; i++) zero[i] = (int64_t)graft_le64(b->p + zv.pos + 8 * (size_t)i);
    *gq = (graft_quant){.nscale = sv.len, .scale = scale, .nzero = zv.len, .zero_point = zero,
                        .axis = (int32_t)axis};
    t->quant = gq;
    return GRAFT_OK;
}

/* Tensor ti of subgraph sg: listed when its buffer holds bytes. */
static int read_tensor(graft_model *m, const graft_fb *b, tfl_state *st, graft_strmap *ns,
                       const graft_fb_table *tt, uint32_t sg, const char *sgname,
                       uint32_t sglen, uint32_t ti, graft_ctx *ctx)
{
    uint32_t bi, nlen;
    uint8_t type;
    const char *name, *listed;
    graft_fb_vec shape;
    graft_fb_table sp;
    bool sparse;
    int64_t dims[GRAFT_MAX_NDIM];
    graft_tensor *t;
    const tfl_buffer *buf;
    size_t bfield;

    GRAFT_TRY(graft_fb__u32(b, tt, TFL_TENSOR_BUFFER, 0, "buffer", &bi));
    if (bi >= st->nbuffers)
        return graft_error(ctx, GRAFT_ECORRUPT, "buffer index %u out of range (%u buffers)", bi,
                           st->nbuffers);
    buf = &st->buffers[bi];
    if (bi == 0 || buf->size == 0) return GRAFT_OK; /* not a constant */
    GRAFT_TRY(graft_fb__field(b, tt, TFL_TENSOR_BUFFER, 4, "buffer", &bfield));
    if (bfield > UINT32_MAX)
        return graft_error(ctx, GRAFT_ECORRUPT, "tensor table at %zu, past 4 GB", bfield);
    GRAFT_TRY(graft_fb__string(b, tt, TFL_TENSOR_NAME, "name", &name, &nlen));
    GRAFT_TRY(graft_fb__u8(b, tt, TFL_TENSOR_TYPE, 0, "type", &type));
    GRAFT_TRY(graft_fb__vector(b, tt, TFL_TENSOR_SHAPE, 4, "shape", &shape));
    GRAFT_TRY(graft_fb__table(b, tt, TFL_TENSOR_SPARSITY, "sparsity", &sp, &sparse));
    listed = unique_name(m, ns, sgname, sglen, sg, name, nlen, ti);
    if (!listed) return graft_error_oom(ctx, "a tensor name");
    if (sparse)
        return graft_error(ctx, GRAFT_EFORMAT, "tensor '%s': sparse tensors are not supported",
                           listed);
    if (type >= sizeof tfl_types / sizeof *tfl_types || tfl_types[type] == GRAFT_DTYPE_INVALID)
        return graft_error(ctx, GRAFT_EFORMAT, "tensor '%s': TensorType %u is not supported",
                           listed, type);
    if (shape.len > GRAFT_MAX_NDIM)
        return graft_error(ctx, GRAFT_ELIMIT, "tensor '%s': %u dimensions (at most %u)", listed,
                           shape.len, GRAFT_MAX_NDIM);
    for (uint32_t i = 0; i < shape.len; i++)
        dims[i] = (int32_t)graft_le32(b->p + shape.pos + 4 * (size_t)i);
    GRAFT_TRY(graft_strmap_reserve(ns, m->count + 1, ctx));
    t = graft_model__add(m, listed, strlen(listed), tfl_types[type], shape.len, dims, ctx);
    if (!t) return ctx->status;
    graft_strmap_put(ns, m->count - 1);
    if (t->dtype == GRAFT_STRING) {
        t->nbytes = buf->size;
    } else if (t->nbytes != buf->size) {
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': buffer %u holds %llu bytes, %s of that shape takes %llu",
                           listed, bi, (unsigned long long)buf->size,
                           graft_dtype_name(t->dtype), (unsigned long long)t->nbytes);
    }
    t->src = m->sources[0];
    t->offset = buf->data;
    /* a FlatBuffer is under 2 GB, so the field's position fits in 32 bits */
    t->aux = (uint64_t)bfield << 32 | bi;
    if (read_quant(m, b, tt, t, ctx) < 0) return graft_error_prefix(ctx, "tensor '%s'", listed);
    return GRAFT_OK;
}

static int read_subgraph(graft_model *m, const graft_fb *b, tfl_state *st, graft_strmap *ns,
                         const graft_fb_vec *sgs, uint32_t sg, graft_ctx *ctx)
{
    char what[64];
    graft_fb_table sgt, tt;
    graft_fb_vec tensors;
    const char *sgname;
    uint32_t sglen;

    snprintf(what, sizeof what, "subgraph %u", sg);
    GRAFT_TRY(graft_fb__vec_table(b, sgs, sg, what, &sgt));
    GRAFT_TRY(graft_fb__string(b, &sgt, TFL_SUBGRAPH_NAME, what, &sgname, &sglen));
    GRAFT_TRY(graft_fb__vector(b, &sgt, TFL_SUBGRAPH_TENSORS, 4, what, &tensors));
    for (uint32_t i = 0; i < tensors.len; i++) {
        snprintf(what, sizeof what, "subgraph %u tensor %u", sg, i);
        if (graft_fb__vec_table(b, &tensors, i, what, &tt) < 0 ||
            read_tensor(m, b, st, ns, &tt, sg, sgname, sglen, i, ctx) < 0)
            return graft_error_prefix(ctx, "%s", what);
    }
    return GRAFT_OK;
}

static int tfl_open(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    const graft_source *src;
    graft_fb b;
    graft_fb_table root;
    graft_fb_vec sgs;
    tfl_state *st;
    graft_strmap ns;
    uint32_t version;
    int rc;

    (void)opts;
    if (m->nsources == 0) return graft_error(ctx, GRAFT_EFORMAT, "a folder is not a .tflite file");
    src = m->sources[0];
    if (src->size < 8 || memcmp(src->data + 4, "TFL3", 4) != 0)
        return graft_error(ctx, GRAFT_EFORMAT, "no TFL3 file identifier at offset 4");
    b = (graft_fb){.p = src->data, .n = src->size, .ctx = ctx};
    st = graft_calloc(ctx, 1, sizeof *st);
    if (!st) return graft_error_oom(ctx, "the TFLite state");
    m->state = st;
    m->state_free = state_free;
    st->size = src->size;
    GRAFT_TRY(graft_fb__root(&b, &root));
    GRAFT_TRY(graft_fb__u32(&b, &root, TFL_MODEL_VERSION, 0, "Model.version", &version));
    if (version != 3)
        return graft_error(ctx, GRAFT_EFORMAT, "schema version %u (graft reads version 3)",
                           version);
    GRAFT_TRY(read_buffers(m, &b, &root, st, ctx));
    GRAFT_TRY(graft_fb__vector(&b, &root, TFL_MODEL_SUBGRAPHS, 4, "Model.subgraphs", &sgs));
    graft_strmap_init(&ns, tensor_key, m);
    rc = GRAFT_OK;
    for (uint32_t i = 0; i < sgs.len && rc == GRAFT_OK; i++)
        rc = read_subgraph(m, &b, st, &ns, &sgs, i, ctx);
    graft_strmap_free(&ns);
    if (rc == GRAFT_OK) rc = graft_layout__tflite(m, src->data, src->size, ctx); /* roles from the operators */
    return rc;
}

const graft_format graft_format_tflite = {
    .name = "tflite",
    .probe = tfl_probe,
    .open = tfl_open,
    .write = graft_tflite__write,
};
