/*
 * tf_graph.c - roles and layouts of TF graph tensors from the ops that
 * consume them (tensorflow/core/ops/nn_ops.cc, math_ops.cc):
 *   Conv2D filter (input 1) HWIO; DepthwiseConv2dNative filter HWCM;
 *   Conv2DBackpropInput filter (input 1) HWOI; MatMul b (input 1) (in, out),
 *   or (out, in) with transpose_b; BiasAdd bias; FusedBatchNorm{,V2,V3}
 *   scale, offset, mean, variance (inputs 1-4); GatherV2 / ResourceGather
 *   params (input 0) embedding.
 * A weight reaches its op through Identity / ReadVariableOp / Enter nodes;
 * the tensor is the Const, VariableV2 or VarHandleOp node at the start.
 * A MatMul fed by a Reshape of a feature map from a Conv2D (through ops that
 * keep channels) gets flatten order HWC (CHW with data_format NCHW) and
 * C = the filter's O.
 *
 * Wire (graph.proto, node_def.proto, attr_value.proto, meta_graph.proto,
 * saved_model.proto): SavedModel.meta_graphs 2 -> MetaGraphDef.graph_def 2
 * -> GraphDef.node 1 -> NodeDef name 1, op 2, input 3 ("^ctl", "x:1"),
 * attr 5 (map entry key 1, value 2: AttrValue s 2, b 5).
 */
#include "graph.h"
#include "pb.h"

#include <stdio.h>
#include <string.h>

static gstr str_of(const graft_pbf *f) { return (gstr){(const char *)f->sub.p, f->sub.len}; }

static int parse_attr(graft_rd r, gnode *n)
{
    graft_pbf f, v;
    gstr key = {0};
    graft_rd val = {0};
    bool have = false;
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num == 1 && f.wt == 2) key = str_of(&f);
        else if (f.num == 2 && f.wt == 2) val = f.sub, have = true;
    }
    if (!have) return 0;
    while (graft_rd_left(&val)) {
        GRAFT_TRY(graft_pb_next(&val, &v));
        if (v.num == 5 && v.wt == 0 && gstr_is(key, "transpose_b")) n->trans_b = v.v != 0;
        if (v.num == 5 && v.wt == 0 && gstr_is(key, "transpose_a")) n->trans_a = v.v != 0;
        if (v.num == 2 && v.wt == 2 && gstr_is(key, "data_format")) n->nchw = graft_pb_is(&v, "NCHW");
    }
    return 0;
}

static int parse_node(graft_graph *g, graft_rd r)
{
    gnode *n;
    graft_pbf f;
    GRAFT_TRY(graph_add(g, &n, r.ctx));
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.wt != 2) continue;
        if (f.num == 1) n->name = n->out = str_of(&f);
        else if (f.num == 2) n->op = str_of(&f);
        else if (f.num == 3) {
            gstr s = str_of(&f);
            if (s.n && s.p[0] == '^') continue; /* control input */
            for (size_t i = s.n; i > 0; i--)
                if (s.p[i - 1] == ':') {
                    s.n = i - 1;
                    break;
                }
            if (n->nin < GRAPH_MAX_IN) n->in[n->nin] = s;
            n->nin++;
        } else if (f.num == 5) GRAFT_TRY(parse_attr(f.sub, n));
    }
    return 0;
}

static int parse_graph(graft_graph *g, graft_rd r)
{
    graft_pbf f;
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num == 1 && f.wt == 2) GRAFT_TRY(parse_node(g, f.sub));
    }
    return 0;
}

/* The weight node behind input `s`: through Identity, ReadVariableOp, Enter. */
static gstr weight_of(const graft_graph *g, gstr s)
{
    for (int hops = 0; hops < 16; hops++) {
        const gnode *p = graph_producer(g, s);
        if (!p || !(gstr_is(p->op, "Identity") || gstr_is(p->op, "ReadVariableOp") ||
                    gstr_is(p->op, "Enter")) || !p->nin)
            break;
        s = p->in[0];
    }
    return s;
}

static bool keeps_channels(gstr op)
{
    static const char *const keep[] = {"Relu", "Relu6", "LeakyRelu", "Elu", "Selu", "Sigmoid",
                                       "Tanh", "MaxPool", "AvgPool", "BiasAdd", "Identity",
                                       "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3",
                                       "Add", "AddV2", "Pad", NULL};
    return gstr_in(op, keep);
}

static void flatten_of(const graft_graph *g, gstr x, int64_t k, graft_layout *l)
{
    const gnode *n = graph_producer(g, x);
    if (!n || !gstr_is(n->op, "Reshape") || !n->nin) return;
    size_t steps = 0;  /* a hostile graph may be cyclic: at most one step a node */
    for (n = graph_producer(g, n->in[0]); n && steps++ < g->n;
         n = n->nin ? graph_producer(g, n->in[0]) : NULL) {
        if (gstr_is(n->op, "Conv2D") && n->nin >= 2) {
            graft_tensor *w = graph_tensor(g, weight_of(g, n->in[1]));
            if (w && w->ndim == 4) graph_flatten(l, w->shape[3], k, n->nchw);
            return;
        }
        if (!keeps_channels(n->op)) return;
    }
}

static void analyse(graft_graph *g)
{
    for (size_t i = 0; i < g->n; i++) {
        const gnode *n = &g->v[i];
        gstr w1 = n->nin >= 2 ? weight_of(g, n->in[1]) : (gstr){0};
        graft_tensor *w = n->nin >= 2 ? graph_tensor(g, w1) : NULL;
        if (gstr_is(n->op, "Conv2D") && w) {
            graph_attach(g, w1, GRAFT_ROLE_CONV, GRAFT_FAM_KERAS, "HWIO", n, NULL);
        } else if (gstr_is(n->op, "DepthwiseConv2dNative") && w) {
            graph_attach(g, w1, GRAFT_ROLE_DEPTHWISE, GRAFT_FAM_KERAS, "HWCM", n, NULL);
        } else if (gstr_is(n->op, "Conv2DBackpropInput") && w) {
            graph_attach(g, w1, GRAFT_ROLE_CONV_TRANSPOSE, GRAFT_FAM_KERAS, "HWOI", n, NULL);
        } else if (gstr_is(n->op, "MatMul") && w && w->ndim == 2 && !n->trans_a) {
            graft_layout x = {0};
            flatten_of(g, n->in[0], w->shape[n->trans_b ? 1 : 0], &x);
            graph_attach(g, w1, GRAFT_ROLE_DENSE, GRAFT_FAM_KERAS, n->trans_b ? "OI" : "IO", n, &x);
        } else if (gstr_is(n->op, "BiasAdd") && w) {
            graph_attach(g, w1, GRAFT_ROLE_BIAS, GRAFT_FAM_KERAS, "O", n, NULL);
        } else if (gstr_starts(n->op, "FusedBatchNorm") && n->nin >= 5) {
            static const graft_role r[4] = {GRAFT_ROLE_NORM_SCALE, GRAFT_ROLE_NORM_SHIFT,
                                            GRAFT_ROLE_NORM_MEAN, GRAFT_ROLE_NORM_VAR};
            for (int k = 0; k < 4; k++)
                graph_attach(g, weight_of(g, n->in[k + 1]), r[k], GRAFT_FAM_KERAS, "O", n, NULL);
        } else if ((gstr_is(n->op, "GatherV2") || gstr_is(n->op, "ResourceGather")) && n->nin) {
            gstr e = weight_of(g, n->in[0]);
            graft_tensor *t = graph_tensor(g, e);
            if (t && t->ndim == 2) graph_attach(g, e, GRAFT_ROLE_EMBEDDING, GRAFT_FAM_KERAS, "VE", n, NULL);
        }
    }
}

static int parse_any(graft_graph *g, graft_rd r, int kind)
{
    graft_pbf f, mf;
    if (kind == 0) return parse_graph(g, r);
    while (graft_rd_left(&r)) { /* SavedModel.meta_graphs or MetaGraphDef fields */
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (kind == 1 && f.num == 2 && f.wt == 2) GRAFT_TRY(parse_graph(g, f.sub));
        if (kind == 2 && f.num == 2 && f.wt == 2) {
            graft_rd mr = f.sub;
            while (graft_rd_left(&mr)) {
                GRAFT_TRY(graft_pb_next(&mr, &mf));
                if (mf.num == 2 && mf.wt == 2) GRAFT_TRY(parse_graph(g, mf.sub));
            }
            break; /* the first MetaGraphDef */
        }
    }
    return 0;
}

int graft_layout__tf(graft_model *m, const uint8_t *p, size_t n, int kind, graft_ctx *ctx)
{
    graft_graph g = {0};
    graft_rd r;
    int rc;
    graft_rd_init(&r, p, n, 0, ctx);
    if ((rc = parse_any(&g, r, kind)) >= 0 && (rc = graph_index(&g, m, ctx)) >= 0) {
        analyse(&g);
        if (g.oom) rc = graft_error_oom(ctx, "a tensor layout");
    }
    graph_free(&g);
    return graft_layout__settle(rc, ctx);
}
