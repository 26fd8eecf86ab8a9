/*
 * onnx_graph.c - roles and layouts of ONNX initializers from the nodes that
 * consume them (onnx/Operators.md):
 *   Conv W (M, C/group, kH, kW) = OIHW (depthwise when group > 1 and
 *   C/group == 1), B the bias; ConvTranspose W (C, M/group, kH, kW) = IOHW;
 *   Gemm B (N, K) = (out, in) with transB = 1, else (K, N) = (in, out), C the
 *   bias; MatMul B (K, N) = (in, out); Gather data = embedding (vocab, dim);
 *   BatchNormalization scale, B, input_mean, input_var.
 * A Gemm/MatMul whose input comes from Flatten or Reshape of a feature map
 * produced by a Conv (through ops that keep channels) gets flatten order CHW
 * (HWC when a Transpose perm [0, 2, 3, 1] comes between, as keras2onnx
 * writes it) with C = the Conv's M.
 *
 * Wire (onnx.proto): ModelProto.graph 7; GraphProto.node 1; NodeProto input
 * 1, output 2, name 3, op_type 4, attribute 5; AttributeProto name 1, i 3,
 * ints 8 (packed or not).  Subgraphs are not followed.
 */
#include "graph.h"
#include "pb.h"

#include <stdio.h>
#include <string.h>

static gstr str_of(const graft_pbf *f) { return (gstr){(const char *)f->sub.p, f->sub.len}; }

static int parse_attr(graft_rd r, gnode *n)
{
    graft_pbf f;
    gstr name = {0};
    int64_t i = 0;
    int64_t ints[4];
    int nints = 0;
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num == 1 && f.wt == 2) name = str_of(&f);
        else if (f.num == 3 && f.wt == 0) i = (int64_t)f.v;
        else if (f.num == 8 && f.wt == 0 && nints < 4) ints[nints++] = (int64_t)f.v;
        else if (f.num == 8 && f.wt == 2) {
            graft_rd p = f.sub;
            uint64_t v;
            while (graft_rd_left(&p) && nints < 4) {
                GRAFT_TRY(graft_rd_varint(&p, &v));
                ints[nints++] = (int64_t)v;
            }
        }
    }
    if (gstr_is(name, "group")) n->group = i;
    else if (gstr_is(name, "transB")) n->trans_b = i != 0;
    else if (gstr_is(name, "transA")) n->trans_a = i != 0;
    else if (gstr_is(name, "perm") && nints == 4) {
        memcpy(n->perm, ints, sizeof ints);
        n->has_perm = true;
    }
    return 0;
}

static int parse_node(graft_graph *g, graft_rd r, graft_ctx *ctx)
{
    gnode *n;
    graft_pbf f;
    GRAFT_TRY(graph_add(g, &n, ctx));
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.wt != 2) continue;
        if (f.num == 1 && n->nin < GRAPH_MAX_IN) n->in[n->nin++] = str_of(&f);
        else if (f.num == 1) n->nin++;
        else if (f.num == 2 && !n->out.p) n->out = str_of(&f);
        else if (f.num == 3) n->name = str_of(&f);
        else if (f.num == 4) n->op = str_of(&f);
        else if (f.num == 5) GRAFT_TRY(parse_attr(f.sub, n));
    }
    if (!n->name.n) n->name = n->out;
    return 0;
}

static bool keeps_channels(gstr op)
{
    static const char *const keep[] = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "Elu",
                                       "PRelu", "Selu", "HardSigmoid", "MaxPool", "AveragePool",
                                       "BatchNormalization", "Dropout", "Identity", "Pad", NULL};
    return gstr_in(op, keep);
}

/* Flatten info for the data input `x` of a Gemm/MatMul with K in-features. */
static void flatten_of(const graft_graph *g, gstr x, int64_t k, graft_layout *l)
{
    const gnode *n = graph_producer(g, x);
    bool hwc = false;
    size_t steps = 0;
    if (!n || !(gstr_is(n->op, "Flatten") || gstr_is(n->op, "Reshape")) || !n->nin) return;
    /* a hostile graph may be cyclic (a node feeding itself): never walk
     * more steps than there are nodes */
    for (n = graph_producer(g, n->in[0]); n && steps++ < g->n;
         n = n->nin ? graph_producer(g, n->in[0]) : NULL) {
        if (gstr_is(n->op, "Transpose") && n->has_perm && n->perm[0] == 0 && n->perm[1] == 2 &&
            n->perm[2] == 3 && n->perm[3] == 1 && !hwc) {
            hwc = true;
            continue;
        }
        if ((gstr_is(n->op, "Conv") || gstr_is(n->op, "ConvTranspose")) && n->nin >= 2) {
            graft_tensor *w = graph_tensor(g, n->in[1]);
            bool tr = gstr_is(n->op, "ConvTranspose");
            if (!w || w->ndim != 4 || w->shape[tr] <= 0) return;
            /* ConvTranspose W is (C, M/group, kH, kW) */
            graph_flatten(l, tr ? w->shape[1] * n->group : w->shape[0], k, !hwc);
            return;
        }
        if (!keeps_channels(n->op)) return;
    }
}

static void analyse(graft_graph *g)
{
    for (size_t i = 0; i < g->n; i++) {
        const gnode *n = &g->v[i];
        graft_tensor *w = n->nin >= 2 ? graph_tensor(g, n->in[1]) : NULL;
        if (gstr_is(n->op, "Conv") && w && w->ndim >= 3) {
            graft_layout x = {0};
            bool dw = n->group > 1 && w->shape[1] == 1 && w->ndim == 4;
            x.groups = dw ? n->group : 0;
            graph_attach(g, n->in[1], dw ? GRAFT_ROLE_DEPTHWISE : GRAFT_ROLE_CONV, GRAFT_FAM_TORCH,
                         NULL, n, &x);
            if (n->nin >= 3) graph_attach(g, n->in[2], GRAFT_ROLE_BIAS, GRAFT_FAM_TORCH, NULL, n, NULL);
        } else if (gstr_is(n->op, "ConvTranspose") && w && w->ndim >= 3) {
            graph_attach(g, n->in[1], GRAFT_ROLE_CONV_TRANSPOSE, GRAFT_FAM_TORCH, NULL, n, NULL);
            if (n->nin >= 3) graph_attach(g, n->in[2], GRAFT_ROLE_BIAS, GRAFT_FAM_TORCH, NULL, n, NULL);
        } else if ((gstr_is(n->op, "Gemm") || gstr_is(n->op, "MatMul")) && w && w->ndim == 2 &&
                   !n->trans_a) {
            bool gemm = gstr_is(n->op, "Gemm");
            bool oi = gemm && n->trans_b;
            graft_layout x = {0};
            flatten_of(g, n->in[0], w->shape[oi ? 1 : 0], &x);
            graph_attach(g, n->in[1], GRAFT_ROLE_DENSE, GRAFT_FAM_TORCH, oi ? "OI" : "IO", n, &x);
            if (gemm && n->nin >= 3) graph_attach(g, n->in[2], GRAFT_ROLE_BIAS, GRAFT_FAM_TORCH, "O", n, NULL);
        } else if (gstr_is(n->op, "Add") && n->nin == 2) {
            for (int k = 0; k < 2; k++) {
                const gnode *p = graph_producer(g, n->in[1 - k]);
                graft_tensor *b = graph_tensor(g, n->in[k]);
                if (p && b && b->ndim == 1 && (gstr_is(p->op, "MatMul") || gstr_is(p->op, "Gemm")))
                    graph_attach(g, n->in[k], GRAFT_ROLE_BIAS, GRAFT_FAM_TORCH, "O", n, NULL);
            }
        } else if (gstr_is(n->op, "Gather") && n->nin >= 1) {
            graft_tensor *e = graph_tensor(g, n->in[0]);
            if (e && e->ndim == 2)
                graph_attach(g, n->in[0], GRAFT_ROLE_EMBEDDING, GRAFT_FAM_TORCH, "VE", n, NULL);
        } else if (gstr_is(n->op, "BatchNormalization") && n->nin >= 5) {
            static const graft_role r[4] = {GRAFT_ROLE_NORM_SCALE, GRAFT_ROLE_NORM_SHIFT,
                                            GRAFT_ROLE_NORM_MEAN, GRAFT_ROLE_NORM_VAR};
            for (int k = 0; k < 4; k++) graph_attach(g, n->in[k + 1], r[k], GRAFT_FAM_TORCH, "O", n, NULL);
        }
    }
}

int graft_layout__onnx(graft_model *m, const uint8_t *p, size_t n, graft_ctx *ctx)
{
    graft_graph g = {0};
    graft_rd r, gr;
    graft_pbf f;
    bool have = false;
    int rc = 0;
    graft_rd_init(&r, p, n, 0, ctx);
    while (graft_rd_left(&r) && rc >= 0) {
        if ((rc = graft_pb_next(&r, &f)) >= 0 && f.num == 7 && f.wt == 2) gr = f.sub, have = true;
    }
    while (rc >= 0 && have && graft_rd_left(&gr)) {
        if ((rc = graft_pb_next(&gr, &f)) >= 0 && f.num == 1 && f.wt == 2)
            rc = parse_node(&g, f.sub, ctx);
    }
    if (rc >= 0 && have && (rc = graph_index(&g, m, ctx)) >= 0) {
        analyse(&g);
        if (g.oom) rc = graft_error_oom(ctx, "a tensor layout");
    }
    graph_free(&g);
    return graft_layout__settle(rc, ctx);
}
