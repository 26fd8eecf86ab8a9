/*
 * tflite_graph.c - roles and layouts of TFLite constant tensors from the
 * operators that consume them.
 *
 * Builtin codes (tensorflow/compiler/mlir/lite/schema/schema.fbs,
 * BuiltinOperator) and input slots (tensorflow/lite/kernels/<op>.cc), with the
 * weight layouts of the reference kernels
 * (tensorflow/lite/kernels/internal/reference/):
 *   CONV_2D 3: input 1 filter [out, kH, kW, in/groups] = OHWI
 *     (conv.h: filter_data[Offset(filter_shape, out_channel, filter_y,
 *     filter_x, in_channel)]), input 2 bias [out];
 *   DEPTHWISE_CONV_2D 4: input 1 filter [1, kH, kW, C*M] = 1HW(C*M), output
 *     channel oc = ic * M + m (depthwiseconv_float.h), input 2 bias; C is
 *     the input tensor's last dimension;
 *   FULLY_CONNECTED 9: input 1 weights [out, in] (weights_format DEFAULT),
 *     input 2 bias; fed by an NHWC feature map [1, H, W, C], itself or
 *     through a RESHAPE (22), its in-features are that map flattened
 *     (fully_connected.h reads the input as [batch, accum_depth]): flatten
 *     HWC;
 *   TRANSPOSE_CONV 67: input 1 weights [out, kH, kW, in] = OHWI
 *     (transpose_conv.h), input 3 bias (kBiasTensor, optional).
 * OperatorCode: deprecated_builtin_code (byte, id 0), builtin_code (int, id 3):
 * the larger of the two.  Operator: opcode_index 0, inputs 1 (-1 = absent),
 * outputs 2.  SubGraph: tensors 0, operators 3.  Model: operator_codes 1,
 * subgraphs 2.  A listed tensor is found by the position of its Tensor.buffer
 * field, which tflite.c keeps in its aux (TFL_AUX_FIELD).
 */
#include "layout_int.h"

#include "fb.h"
#include "rd.h"
#include "tflite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OP_CONV_2D = 3,
    OP_DEPTHWISE_CONV_2D = 4,
    OP_FULLY_CONNECTED = 9,
    OP_RESHAPE = 22,
    OP_TRANSPOSE_CONV = 67,
};

#define MAX_IN 4

typedef struct tnode {
    int32_t code;       /* builtin code, -1 unknown */
    int32_t in[MAX_IN]; /* tensor indices, -1 absent */
    uint32_t nin;
    int32_t out; /* output 0, -1 none */
} tnode;

typedef struct fieldpos {
    size_t field;  /* position of Tensor.buffer */
    size_t tensor; /* index in m->tensors */
} fieldpos;

typedef struct tgraph {
    graft_model *m;
    const graft_fb *b;
    fieldpos *fp; /* sorted by field */
    size_t nfp;
    int32_t *codes; /* per operator code */
    uint32_t ncodes;
    graft_fb_vec tensors; /* of the subgraph being read */
    tnode *ops;
    uint32_t nops;
    int32_t *producer; /* tensor index -> operator, -1 none */
    bool oom;
} tgraph;

static int cmp_field(const void *a, const void *b)
{
    size_t x = ((const fieldpos *)a)->field, y = ((const fieldpos *)b)->field;
    return x < y ? -1 : x > y;
}

/* Tensor i's table in the current subgraph; false when out of range.  The
 * reader has walked every tensor table already, so a failure is not reached. */
static bool table_of(const tgraph *g, int32_t i, graft_fb_table *tt)
{
    if (i < 0 || (uint32_t)i >= g->tensors.len) return false;
    if (graft_fb__vec_table(g->b, &g->tensors, (uint32_t)i, "tensor", tt) >= 0) return true;
    graft_ctx_clear(g->b->ctx);
    return false;
}

/* Tensor i's shape vector; false when unknown. */
static bool shape_of(const tgraph *g, int32_t i, graft_fb_vec *shape)
{
    graft_fb_table tt;
    if (!table_of(g, i, &tt)) return false;
    if (graft_fb__vector(g->b, &tt, TFL_TENSOR_SHAPE, 4, "shape", shape) >= 0) return true;
    graft_ctx_clear(g->b->ctx);
    return false;
}

/* The listed tensor (one with a buffer) that is tensor i, or NULL. */
static graft_tensor *listed(const tgraph *g, int32_t i)
{
    graft_fb_table tt;
    size_t field;
    fieldpos key, *hit;
    if (!table_of(g, i, &tt)) return NULL;
    if (graft_fb__field(g->b, &tt, TFL_TENSOR_BUFFER, 4, "buffer", &field) < 0) {
        graft_ctx_clear(g->b->ctx);
        return NULL;
    }
    if (!field) return NULL;
    key.field = field;
    hit = bsearch(&key, g->fp, g->nfp, sizeof *g->fp, cmp_field);
    return hit ? &g->m->tensors[hit->tensor] : NULL;
}

/* Dimension d of tensor i's shape, 0 when unknown. */
static int64_t dim_of(const tgraph *g, int32_t i, uint32_t d)
{
    graft_fb_vec shape;
    if (!shape_of(g, i, &shape) || d >= shape.len) return 0;
    return (int32_t)graft_le32(g->b->p + shape.pos + 4 * (size_t)d);
}

/* Rank of tensor i, 0 when unknown. */
static uint32_t rank_of(const tgraph *g, int32_t i)
{
    graft_fb_vec shape;
    return shape_of(g, i, &shape) ? shape.len : 0;
}

static const char *op_name(int32_t code)
{
    switch (code) {
    case OP_CONV_2D:
        return "CONV_2D";
    case OP_DEPTHWISE_CONV_2D:
        return "DEPTHWISE_CONV_2D";
    case OP_FULLY_CONNECTED:
        return "FULLY_CONNECTED";
    case OP_TRANSPOSE_CONV:
        return "TRANSPOSE_CONV";
    default:
        return NULL;
    }
}

static void attach(tgraph *g, const tnode *n, int slot, graft_role role, const char *axes,
                   const graft_layout *extra)
{
    graft_tensor *t = slot < (int)n->nin ? listed(g, n->in[slot]) : NULL;
    graft_layout l;
    graft_fb_table tt;
    const char *s;
    uint32_t len;
    if (!t || t->layout || strlen(axes) != t->ndim) return; /* the first consumer decides */
    memset(&l, 0, sizeof l);
    if (extra) l = *extra;
    l.role = role;
    l.family = GRAFT_FAM_NONE;
    snprintf(l.axes, sizeof l.axes, "%s", axes);
    l.op = op_name(n->code);
    l.layer = NULL;
    if (table_of(g, n->out, &tt)) {
        if (graft_fb__string(g->b, &tt, TFL_TENSOR_NAME, "name", &s, &len) < 0)
            graft_ctx_clear(g->b->ctx);
        else if (len)
            l.layer = graft_arena_strndup(&g->m->arena, s, len);
    }
    if (!graft_layout__attach(g->m, t, &l)) g->oom = true;
}

/* The flatten of FULLY_CONNECTED's input x with k in-features: x, or the
 * input of the RESHAPE that makes x, is an NHWC feature map of H*W*C = k. */
static void flatten_of(const tgraph *g, int32_t x, int64_t k, graft_layout *l)
{
    if (x >= 0 && (uint32_t)x < g->tensors.len && g->producer[x] >= 0) {
        const tnode *n = &g->ops[g->producer[x]];
        if (n->code == OP_RESHAPE && n->nin) x = n->in[0];
    }
    if (rank_of(g, x) != 4) return;
    int64_t h = dim_of(g, x, 1), w = dim_of(g, x, 2), c = dim_of(g, x, 3);
    /* each at most k (an int32), so h * w and then (h * w) * c stay far below 2^63 */
    if (h <= 0 || w <= 0 || c <= 0 || h > k || w > k || c > k || h * w < 2 || h * w > k ||
        h * w * c != k)
        return;
    snprintf(l->flatten, sizeof l->flatten, "HWC");
    l->flat_c = c, l->flat_s = h * w, l->flat_h = h, l->flat_w = w;
}

static void analyse(tgraph *g)
{
    for (uint32_t i = 0; i < g->nops; i++) {
        const tnode *n = &g->ops[i];
        graft_tensor *w = n->nin >= 2 ? listed(g, n->in[1]) : NULL;
        graft_layout x;
        memset(&x, 0, sizeof x);
        if (n->code == OP_CONV_2D && w) {
            attach(g, n, 1, GRAFT_ROLE_CONV, "OHWI", NULL);
            attach(g, n, 2, GRAFT_ROLE_BIAS, "O", NULL);
        } else if (n->code == OP_DEPTHWISE_CONV_2D && w && w->ndim == 4) {
            int64_t c = dim_of(g, n->in[0], 3);
            x.groups = c > 0 && w->shape[3] % c == 0 ? c : 0;
            attach(g, n, 1, GRAFT_ROLE_DEPTHWISE, "1HWO", &x);
            attach(g, n, 2, GRAFT_ROLE_BIAS, "O", NULL);
        } else if (n->code == OP_FULLY_CONNECTED && w && w->ndim == 2) {
            flatten_of(g, n->in[0], w->shape[1], &x);
            attach(g, n, 1, GRAFT_ROLE_DENSE, "OI", &x);
            attach(g, n, 2, GRAFT_ROLE_BIAS, "O", NULL);
        } else if (n->code == OP_TRANSPOSE_CONV && w) {
            attach(g, n, 1, GRAFT_ROLE_CONV_TRANSPOSE, "OHWI", NULL);
            attach(g, n, 3, GRAFT_ROLE_BIAS, "O", NULL);
        }
    }
}

static int read_codes(tgraph *g, const graft_fb_table *root, graft_ctx *ctx)
{
    graft_fb_vec v;
    GRAFT_TRY(graft_fb__vector(g->b, root, 1, 4, "Model.operator_codes", &v));
    g->ncodes = v.len;
    if (!(g->codes = graft_calloc(ctx, v.len ? v.len : 1, sizeof *g->codes)))
        return graft_error_oom(ctx, "operator codes");
    for (uint32_t i = 0; i < v.len; i++) {
        graft_fb_table ct;
        uint8_t dep;
        uint32_t code;
        GRAFT_TRY(graft_fb__vec_table(g->b, &v, i, "operator code", &ct));
        GRAFT_TRY(graft_fb__u8(g->b, &ct, 0, 0, "deprecated_builtin_code", &dep));
        GRAFT_TRY(graft_fb__u32(g->b, &ct, 3, 0, "builtin_code", &code));
        g->codes[i] = (int32_t)code > (int8_t)dep ? (int32_t)code : (int8_t)dep;
    }
    return 0;
}

static int read_op(tgraph *g, const graft_fb_table *ot, tnode *n)
{
    uint32_t oc;
    graft_fb_vec in, out;
    GRAFT_TRY(graft_fb__u32(g->b, ot, 0, 0, "opcode_index", &oc));
    GRAFT_TRY(graft_fb__vector(g->b, ot, 1, 4, "inputs", &in));
    GRAFT_TRY(graft_fb__vector(g->b, ot, 2, 4, "outputs", &out));
    n->code = oc < g->ncodes ? g->codes[oc] : -1;
    n->nin = in.len < MAX_IN ? in.len : MAX_IN;
    for (uint32_t k = 0; k < n->nin; k++)
        n->in[k] = (int32_t)graft_le32(g->b->p + in.pos + 4 * (size_t)k);
    n->out = out.len ? (int32_t)graft_le32(g->b->p + out.pos) : -1;
    return 0;
}

static int read_subgraph(tgraph *g, const graft_fb_table *sg, graft_ctx *ctx)
{
    graft_fb_vec ops;
    int rc = 0;
    GRAFT_TRY(graft_fb__vector(g->b, sg, TFL_SUBGRAPH_TENSORS, 4, "SubGraph.tensors", &g->tensors));
    GRAFT_TRY(graft_fb__vector(g->b, sg, 3, 4, "SubGraph.operators", &ops));
    g->nops = ops.len;
    g->ops = graft_calloc(ctx, ops.len ? ops.len : 1, sizeof *g->ops);
    g->producer = graft_malloc(ctx, (g->tensors.len ? g->tensors.len : 1) * sizeof *g->producer);
    if (!g->ops || !g->producer) {
        rc = graft_error_oom(ctx, "the operator table");
        goto cleanup;
    }
    for (uint32_t i = 0; i < g->tensors.len; i++)
        g->producer[i] = -1;
    for (uint32_t i = 0; i < ops.len && rc >= 0; i++) {
        graft_fb_table ot;
        if ((rc = graft_fb__vec_table(g->b, &ops, i, "operator", &ot)) < 0) break;
        if ((rc = read_op(g, &ot, &g->ops[i])) < 0) break;
        int32_t o = g->ops[i].out;
        if (o >= 0 && (uint32_t)o < g->tensors.len && g->producer[o] < 0)
            g->producer[o] = (int32_t)i;
    }
    if (rc >= 0) analyse(g);
cleanup:
    free(g->ops);
    free(g->producer);
    g->ops = NULL, g->producer = NULL;
    return rc;
}

int graft_layout__tflite(graft_model *m, const uint8_t *p, size_t n, graft_ctx *ctx)
{
    graft_fb b = {.p = p, .n = n, .ctx = ctx};
    graft_fb_table root;
    graft_fb_vec sgs;
    tgraph g = {.m = m, .b = &b};
    int rc = 0;

    if (!m->count) return 0;
    if (!(g.fp = graft_malloc(ctx, m->count * sizeof *g.fp)))
        return graft_error_oom(ctx, "a tensor index");
    for (size_t i = 0; i < m->count; i++)
        g.fp[i] = (fieldpos){TFL_AUX_FIELD(m->tensors[i].aux), i};
    g.nfp = m->count;
    qsort(g.fp, g.nfp, sizeof *g.fp, cmp_field);
    if ((rc = graft_fb__root(&b, &root)) >= 0 && (rc = read_codes(&g, &root, ctx)) >= 0 &&
        (rc = graft_fb__vector(&b, &root, TFL_MODEL_SUBGRAPHS, 4, "Model.subgraphs", &sgs)) >= 0) {
        for (uint32_t i = 0; i < sgs.len && rc >= 0 && !g.oom; i++) {
            graft_fb_table sg;
            if ((rc = graft_fb__vec_table(&b, &sgs, i, "subgraph", &sg)) >= 0)
                rc = read_subgraph(&g, &sg, ctx);
        }
    }
    if (rc >= 0 && g.oom) rc = graft_error_oom(ctx, "a tensor layout");
    free(g.fp);
    free(g.codes);
    return graft_layout__settle(rc, ctx);
}
