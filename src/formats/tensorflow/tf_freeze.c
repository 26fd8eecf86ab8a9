/*
 * tf_freeze.c - freezing a TensorFlow graph's structure (see tf_freeze.h),
 * after TF 1.15 graph_util.convert_variables_to_constants:
 *  1. keep the nodes reachable from the outputs through their inputs ("^x"
 *     control inputs and "x:N" outputs name node x) and through the
 *     "loc:@x" colocation entries of their _class attr;
 *  2. each kept VariableV2 / Variable / VarHandleOp becomes
 *     {name, op "Const", attr dtype (copied), attr value = TensorProto of
 *     zeros with the variable's shape}: tensor_content when it has more than
 *     one element, no value field (= zeros) otherwise;
 *  3. each ReadVariableOp becomes {name, op "Identity", input 0, attr T = its
 *     dtype, _class}; Identity / Switch / Enter / Exit / Merge /
 *     NextIteration nodes on its first-input path to its VarHandleOp keep their inputs
 *     and attrs (but _output_shapes) and get attr T = that dtype;
 *  4. each ResourceGather (batch_dims 0) becomes a Const "<name>/axis" = 0
 *     of its Tindices and GatherV2(input 0, input 1, "<name>/axis") with
 *     Taxis = Tindices, Tparams = its dtype, _class;
 *  5. every other kept node is copied without its device field.
 * The GraphDef written has the kept nodes in their original order and the
 * library; versions are left empty, as TensorFlow does.  Nodes are copied at
 * the wire level (core/pb.h).
 */
#include "tf_freeze.h"

#include "pb.h"
#include "sink.h"
#include "source.h"
#include "strmap.h"
#include "tf_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { K_COPY, K_VAR, K_READ, K_CARRY, K_GATHER };

#define GRAPHDEF_MAX 0x7fffffffull /* protobuf refuses messages of 2 GiB and more */

typedef struct span_ref {
    const uint8_t *p;
    size_t n;
} span_ref;

typedef struct gnode {
    graft_rd body;          /* the NodeDef payload */
    span_ref name, op;
    size_t edge0, nedges;   /* inputs (normalized) then colocations, in edges[] */
    size_t ninputs;         /* of nedges */
    span_ref input0;        /* the first input string as written */
    span_ref input1;        /* the second */
    span_ref tindices;      /* AttrValue payload of attr "Tindices" */
    int64_t batch_dims;     /* attr "batch_dims" (ResourceGather) */
    span_ref dtype;         /* AttrValue payload of attr "dtype" */
    span_ref shape;         /* AttrValue payload of attr "shape" */
    span_ref class_entry;   /* the whole attr entry field of "_class" */
    int kind;
    bool keep;
    size_t carry;           /* K_CARRY: the read whose dtype it takes */
} gnode;

typedef struct graph {
    graft_source *src;
    graft_rd gdef;          /* the GraphDef payload */
    gnode *nodes;
    size_t n, cap;
    span_ref *edges;
    size_t nedges, ecap;
    graft_strmap index;     /* node name -> node */
    span_ref library;       /* the whole field 2, or empty */
} graph;

static bool span_is(span_ref s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static const char *node_key(const void *owner, size_t i, size_t *len)
{
    const gnode *x = &((const graph *)owner)->nodes[i];
    *len = x->name.n;
    return (const char *)x->name.p;
}

static int64_t find(const graph *g, const uint8_t *p, size_t n)
{
    size_t i = graft_strmap_find(&g->index, (const char *)p, n);
    return i == GRAFT_STRMAP_NONE ? -1 : (int64_t)i;
}

static int push_edge(graph *g, const uint8_t *p, size_t n, graft_ctx *ctx)
{
    if (g->nedges == g->ecap) {
        size_t cap = g->ecap ? g->ecap * 2 : 256;
        span_ref *ne = graft_realloc(ctx, g->edges, cap * sizeof *ne);
        if (!ne) return graft_error_oom(ctx, "graph edges");
        g->edges = ne;
        g->ecap = cap;
    }
    g->edges[g->nedges++] = (span_ref){p, n};
    return GRAFT_OK;
}

/* "^x", "x:3" -> "x" */
static int push_input(graph *g, const uint8_t *p, size_t n, graft_ctx *ctx)
{
    size_t k;
    if (n && p[0] == '^') p++, n--;
    for (k = n; k > 0 && p[k - 1] >= '0' && p[k - 1] <= '9'; k--) {}
    if (k > 0 && k < n && p[k - 1] == ':') n = k - 1;
    return push_edge(g, p, n, ctx);
}

/* The "loc:@x" strings of a _class AttrValue (list {2 s}). */
static int push_colocations(graph *g, graft_rd av, graft_ctx *ctx)
{
    graft_pbf f, l;
    while (graft_rd_left(&av)) {
        GRAFT_TRY(graft_pb_next(&av, &f));
        if (f.num != 1 || f.wt != 2) continue;
        while (graft_rd_left(&f.sub)) {
            GRAFT_TRY(graft_pb_next(&f.sub, &l));
            if (l.num == 2 && l.wt == 2 && l.sub.len > 5 && memcmp(l.sub.p, "loc:@", 5) == 0)
                GRAFT_TRY(push_edge(g, l.sub.p + 5, l.sub.len - 5, ctx));
        }
    }
    return GRAFT_OK;
}

static int parse_node(graph *g, gnode *x, graft_ctx *ctx)
{
    graft_rd r = x->body, colocations = {0};
    graft_pbf f, e;
    x->edge0 = g->nedges;
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.wt != 2) continue;
        if (f.num == 1) x->name = (span_ref){f.sub.p, f.sub.len};
        if (f.num == 2) x->op = (span_ref){f.sub.p, f.sub.len};
        if (f.num == 3) {
            if (x->input0.p && !x->input1.p) x->input1 = (span_ref){f.sub.p, f.sub.len};
            if (!x->input0.p) x->input0 = (span_ref){f.sub.p, f.sub.len};
            GRAFT_TRY(push_input(g, f.sub.p, f.sub.len, ctx));
        }
        if (f.num == 5) {
            graft_rd er = f.sub;
            span_ref key = {NULL, 0};
            graft_rd val = {0};
            bool have = false;
            while (graft_rd_left(&er)) {
                GRAFT_TRY(graft_pb_next(&er, &e));
                if (e.num == 1 && e.wt == 2) key = (span_ref){e.sub.p, e.sub.len};
                if (e.num == 2 && e.wt == 2) val = e.sub, have = true;
            }
            if (!have) continue;
            if (span_is(key, "dtype")) x->dtype = (span_ref){val.p, val.len};
            if (span_is(key, "shape")) x->shape = (span_ref){val.p, val.len};
            if (span_is(key, "Tindices")) x->tindices = (span_ref){val.p, val.len};
            if (span_is(key, "batch_dims")) {
                graft_rd br = val;
                graft_pbf bf;
                while (graft_rd_left(&br)) {
                    GRAFT_TRY(graft_pb_next(&br, &bf));
                    if (bf.num == 3 && bf.wt == 0) x->batch_dims = (int64_t)bf.v;
                }
            }
            if (span_is(key, "_class")) {
                x->class_entry = (span_ref){g->src->data + f.start, (size_t)(f.end - f.start)};
                colocations = val;
            }
        }
    }
    /* colocations after every input, so inputs are edges[edge0, edge0 + ninputs) */
    x->ninputs = g->nedges - x->edge0;
    if (x->class_entry.p) GRAFT_TRY(push_colocations(g, colocations, ctx));
    x->nedges = g->nedges - x->edge0;
    if (!x->name.p)
        return graft_error(ctx, GRAFT_ECORRUPT, "offset 0x%llx: a node without a name",
                           (unsigned long long)x->body.origin);
    return GRAFT_OK;
}

static int load_graph(graph *g, graft_ctx *ctx)
{
    graft_rd r = g->gdef;
    graft_pbf f;
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num == 2 && f.wt == 2)
            g->library = (span_ref){g->src->data + f.start, (size_t)(f.end - f.start)};
        if (f.num != 1 || f.wt != 2) continue;
        if (g->n == g->cap) {
            size_t cap = g->cap ? g->cap * 2 : 256;
            gnode *nn;
            if (cap > (1u << 24)) return graft_error(ctx, GRAFT_ELIMIT, "more than 2^24 nodes");
            nn = graft_realloc(ctx, g->nodes, cap * sizeof *nn);
            if (!nn) return graft_error_oom(ctx, "graph nodes");
            g->nodes = nn;
            g->cap = cap;
        }
        memset(&g->nodes[g->n], 0, sizeof *g->nodes);
        g->nodes[g->n].body = f.sub;
        GRAFT_TRY(parse_node(g, &g->nodes[g->n], ctx));
        g->n++;
    }
    graft_strmap_init(&g->index, node_key, g);
    GRAFT_TRY(graft_strmap_reserve(&g->index, g->n, ctx));
    for (size_t i = 0; i < g->n; i++) {
        const gnode *x = &g->nodes[i];
        if (graft_strmap_put(&g->index, i) != GRAFT_STRMAP_NONE)
            return graft_error(ctx, GRAFT_ECORRUPT, "node '%.*s' appears twice", (int)x->name.n,
                               (const char *)x->name.p);
    }
    return GRAFT_OK;
}

/* The GraphDef payload inside the file (see tf_graphdef.c for the kinds). */
static int locate(graph *g, const char *path, bool folder, graft_ctx *ctx)
{
    size_t n = strlen(path);
    int kind = folder ? 2 : n >= 5 && !strcmp(path + n - 5, ".meta") ? 1
             : (n >= 14 && !strcmp(path + n - 14, "saved_model.pb")) ||
                       (g->src->size && g->src->data[0] == 0x08) ? 2 : 0;
    graft_rd r;
    graft_pbf f;
    graft_rd_init(&r, g->src->data, g->src->size, 0, ctx);
    for (int depth = kind; depth > 0; depth--) {
        bool found = false;
        while (graft_rd_left(&r)) {
            GRAFT_TRY(graft_pb_next(&r, &f));
            if (f.num == 2 && f.wt == 2) {
                found = true;
                break;
            }
        }
        if (!found) return graft_error(ctx, GRAFT_EFORMAT, "no graph in the file");
        r = f.sub;
    }
    g->gdef = r;
    return GRAFT_OK;
}

static int mark(graph *g, const char *const *outputs, size_t nout, graft_ctx *ctx)
{
    size_t *stack = graft_malloc(ctx, (g->n + 1) * sizeof *stack), top = 0;
    if (!stack) return graft_error_oom(ctx, "the node stack");
    for (size_t i = 0; i < nout; i++) {
        size_t len = strlen(outputs[i]);
        const char *colon = strrchr(outputs[i], ':');
        int64_t k;
        if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1))
            len = (size_t)(colon - outputs[i]);
        k = find(g, (const uint8_t *)outputs[i], len);
        if (k < 0) {
            free(stack);
            return graft_error(ctx, GRAFT_ENOTFOUND, "output '%s' is not a node of the graph",
                               outputs[i]);
        }
        if (!g->nodes[k].keep) g->nodes[k].keep = true, stack[top++] = (size_t)k;
    }
    while (top) {
        const gnode *x = &g->nodes[stack[--top]];
        for (size_t e = x->edge0; e < x->edge0 + x->nedges; e++) {
            int64_t k = find(g, g->edges[e].p, g->edges[e].n);
            if (k >= 0 && !g->nodes[k].keep) g->nodes[k].keep = true, stack[top++] = (size_t)k;
        }
    }
    free(stack);
    return GRAFT_OK;
}

static bool is_forwarding(span_ref op)
{
    static const char *const ops[] = {"Identity", "Switch", "Enter", "Exit", "Merge",
                                      "NextIteration"};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (span_is(op, ops[i])) return true;
    return false;
}

/* Mark the resource carriers between ReadVariableOp `ri` and its VarHandleOp:
 * input 0 through forwarding ops, and input 1 too for a Merge. */
static int trace_read(graph *g, size_t ri, bool *seen, size_t *stack, graft_ctx *ctx)
{
    gnode *read = &g->nodes[ri];
    size_t top = 0;
    bool found = false;
    memset(seen, 0, g->n * sizeof *seen);
    for (size_t e = 0; e < (read->ninputs ? 1u : 0u); e++) {
        int64_t k = find(g, g->edges[read->edge0].p, g->edges[read->edge0].n);
        if (k >= 0) stack[top++] = (size_t)k, seen[k] = true;
    }
    while (top) {
        gnode *x = &g->nodes[stack[--top]];
        if (span_is(x->op, "VarHandleOp")) {
            found = true;
            continue;
        }
        if (!is_forwarding(x->op)) break;
        x->kind = K_CARRY;
        x->carry = ri;
        for (size_t e = 0; e < x->ninputs && e < (span_is(x->op, "Merge") ? 2u : 1u); e++) {
            int64_t k = find(g, g->edges[x->edge0 + e].p, g->edges[x->edge0 + e].n);
            if (k >= 0 && !seen[k]) stack[top++] = (size_t)k, seen[k] = true;
        }
    }
    if (!found || top)
        return graft_error(ctx, GRAFT_EFORMAT, "node '%.*s': cannot find the variable that is an "
                           "input to the %.*s", (int)read->name.n, (const char *)read->name.p,
                           (int)read->op.n, (const char *)read->op.p);
    read->kind = span_is(read->op, "ResourceGather") ? K_GATHER : K_READ;
    return GRAFT_OK;
}

static int classify(graph *g, graft_ctx *ctx)
{
    for (size_t i = 0; i < g->n; i++) {
        gnode *x = &g->nodes[i];
        if (!x->keep) continue;
        if (span_is(x->op, "VariableV2") || span_is(x->op, "Variable") ||
            span_is(x->op, "VarHandleOp"))
            x->kind = K_VAR;
        else if (span_is(x->op, "ResourceGather") && x->batch_dims != 0)
            return graft_error(ctx, GRAFT_EFORMAT,
                               "node '%.*s': ResourceGather with batch_dims %lld is not supported",
                               (int)x->name.n, (const char *)x->name.p, (long long)x->batch_dims);
    }
    bool *seen = graft_calloc(ctx, g->n + 1, sizeof *seen);
    size_t *stack = graft_calloc(ctx, g->n + 1, sizeof *stack);
    int rc = seen && stack ? GRAFT_OK : graft_error_oom(ctx, "the node stack");
    for (size_t i = 0; rc == 0 && i < g->n; i++)
        if (g->nodes[i].keep && (span_is(g->nodes[i].op, "ReadVariableOp") ||
                                 span_is(g->nodes[i].op, "ResourceGather")))
            rc = trace_read(g, i, seen, stack, ctx);
    free(seen);
    free(stack);
    return rc;
}

/* ---- writing ------------------------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
    graft_ctx *ctx;
    int rc;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (b->rc < 0 || n == 0) return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) cap *= 2;
        uint8_t *np = graft_realloc(b->ctx, b->p, cap);
        if (!np) {
            b->rc = graft_error_oom(b->ctx, "a node");
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_varint(buf *b, uint64_t v)
{
    uint8_t t[10];
    put(b, t, (size_t)(graft_pb_put_varint(t, v) - t));
}

static void put_len(buf *b, uint32_t field, const void *p, size_t n)
{
    put_varint(b, (uint64_t)field << 3 | 2);
    put_varint(b, n);
    put(b, p, n);
}

/* attr entry {1 key, 2 value = AttrValue payload} */
static void put_attr(buf *b, const char *key, span_ref value)
{
    size_t k = strlen(key);
    size_t inner = 1 + graft_pb_varint_len(k) + k + 1 + graft_pb_varint_len(value.n) + value.n;
    put_varint(b, 5 << 3 | 2);
    put_varint(b, inner);
    put_len(b, 1, key, k);
    put_len(b, 2, value.p, value.n);
}

static bool content_type(int tf)
{
    return tf == 1 || tf == 2 || tf == 3 || tf == 4 || tf == 5 || tf == 6 || tf == 9 ||
           tf == 14 || tf == 17 || tf == 19 || tf == 22 || tf == 23;
}

/* A variable as a Const of zeros; the tensor_content zeros go straight to s. */
static int write_var(const gnode *x, graft_sink *s, buf *b, graft_ctx *ctx)
{
    graft_rd r;
    graft_pbf f, d;
    int tf = 0;
    span_ref shape = {NULL, 0};
    uint64_t numel = 1, nbytes = 0;
    graft_dtype dt;
    int nlen = (int)x->name.n;

    graft_rd_init(&r, x->dtype.p, x->dtype.n, 0, ctx);
    while (x->dtype.p && graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num == 6 && f.wt == 0) tf = (int)(f.v < 1000 ? f.v : 0);
    }
    dt = graft_tf__dtype((uint64_t)tf);
    if (dt == GRAFT_DTYPE_INVALID || dt == GRAFT_STRING)
        return graft_error(ctx, GRAFT_EFORMAT, "variable '%.*s': dtype %d cannot be frozen", nlen,
                           (const char *)x->name.p, tf);
    graft_rd_init(&r, x->shape.p, x->shape.n, 0, ctx);
    while (x->shape.p && graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num == 7 && f.wt == 2) shape = (span_ref){f.sub.p, f.sub.len}, r = f.sub;
        if (f.num == 7 && f.wt == 2) break;
    }
    if (!shape.p)
        return graft_error(ctx, GRAFT_EFORMAT, "variable '%.*s': no shape attr", nlen,
                           (const char *)x->name.p);
    graft_rd_init(&r, shape.p, shape.n, 0, ctx);
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num == 3 && f.wt == 0 && f.v)
            return graft_error(ctx, GRAFT_EFORMAT, "variable '%.*s': unknown rank", nlen,
                               (const char *)x->name.p);
        if (f.num != 2 || f.wt != 2) continue;
        int64_t size = 0;
        while (graft_rd_left(&f.sub)) {
            GRAFT_TRY(graft_pb_next(&f.sub, &d));
            if (d.num == 1 && d.wt == 0) size = (int64_t)d.v;
        }
        if (size < 0)
            return graft_error(ctx, GRAFT_EFORMAT, "variable '%.*s': shape not fully defined",
                               nlen, (const char *)x->name.p);
        if (graft_mul_overflow(numel, (uint64_t)size, &numel) || numel > (1ull << 40))
            return graft_error(ctx, GRAFT_ELIMIT, "variable '%.*s': too many elements", nlen,
                               (const char *)x->name.p);
    }
    if (numel > 1 && content_type(tf)) nbytes = numel * graft_dtype_size(dt);
    /* TensorProto: 1 dtype, 2 shape, [4 tensor_content] */
    uint64_t tp = 1 + graft_pb_varint_len((uint64_t)tf) + 1 + graft_pb_varint_len(shape.n) +
                  shape.n + (nbytes ? 1 + graft_pb_varint_len(nbytes) + nbytes : 0);
    uint64_t av = 1 + graft_pb_varint_len(tp) + tp;
    uint64_t entry = 1 + 1 + 5 + 1 + graft_pb_varint_len(av) + av;
    uint64_t dtype_entry = 1 + 1 + 5 + 1 + graft_pb_varint_len(x->dtype.n) + x->dtype.n;
    uint64_t node = 1 + graft_pb_varint_len(x->name.n) + x->name.n + 1 + 1 + 5 + 1 +
                    graft_pb_varint_len(dtype_entry) + dtype_entry + 1 +
                    graft_pb_varint_len(entry) + entry;
    /* Every expansion is bounded by what TensorFlow can load: a GraphDef is
     * one protobuf message, under 2 GiB (a 105-byte graph declaring a
     * variable of 2^40 elements would otherwise write terabytes of zeros). */
    if (graft_sink_tell(s) + 1 + graft_pb_varint_len(node) + node > GRAPHDEF_MAX)
        return graft_error(ctx, GRAFT_ELIMIT, "variable '%.*s': %llu elements of %s make a "
                           "Const of %llu bytes; the frozen GraphDef would pass protobuf's "
                           "2 GiB limit", nlen, (const char *)x->name.p,
                           (unsigned long long)numel, graft_dtype_name(dt),
                           (unsigned long long)nbytes);
    b->len = 0;
    put_varint(b, 1 << 3 | 2);
    put_varint(b, node);
    put_len(b, 1, x->name.p, x->name.n);
    put_len(b, 2, "Const", 5);
    put_attr(b, "dtype", x->dtype);
    put_varint(b, 5 << 3 | 2);
    put_varint(b, entry);
    put_len(b, 1, "value", 5);
    put_varint(b, 2 << 3 | 2);
    put_varint(b, av);
    put_varint(b, 8 << 3 | 2);
    put_varint(b, tp);
    put_varint(b, 1 << 3);
    put_varint(b, (uint64_t)tf);
    put_len(b, 2, shape.p, shape.n);
    if (nbytes) {
        put_varint(b, 4 << 3 | 2);
        put_varint(b, nbytes);
    }
    GRAFT_TRY(b->rc);
    GRAFT_TRY(graft_sink_write(s, b->p, b->len));
    return nbytes ? graft_sink_fill(s, 0, nbytes) : GRAFT_OK;
}

/* The scalar 0 of a gather's index type, "<name>/axis", before the gather. */
/* Write a finished NodeDef in `body` as GraphDef field 1 (node); b holds
 * the tag and length. */
static int write_node_field(graft_sink *s, buf *b, const buf *body)
{
    GRAFT_TRY(body->rc);
    b->len = 0;
    put_varint(b, 1 << 3 | 2);
    put_varint(b, body->len);
    GRAFT_TRY(b->rc);
    GRAFT_TRY(graft_sink_write(s, b->p, b->len));
    return graft_sink_write(s, body->p, body->len);
}

static int write_axis(const gnode *x, graft_sink *s, buf *b, buf *body, graft_ctx *ctx)
{
    graft_rd r;
    graft_pbf f;
    uint64_t tf = 0;
    uint8_t tp[16], av[20], *q;
    graft_rd_init(&r, x->tindices.p, x->tindices.n, 0, ctx);
    while (x->tindices.p && graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num == 6 && f.wt == 0) tf = f.v;
    }
    q = tp;
    *q++ = 1 << 3;
    q = graft_pb_put_varint(q, tf);
    *q++ = 2 << 3 | 2;
    *q++ = 0; /* a scalar; no value = 0 */
    av[0] = 8 << 3 | 2;
    av[1] = (uint8_t)(q - tp);
    memcpy(av + 2, tp, (size_t)(q - tp));
    body->len = 0;
    put_varint(body, 1 << 3 | 2);
    put_varint(body, x->name.n + 5);
    put(body, x->name.p, x->name.n);
    put(body, "/axis", 5);
    put_len(body, 2, "Const", 5);
    put_attr(body, "dtype", x->tindices);
    put_attr(body, "value", (span_ref){av, (size_t)(q - tp) + 2});
    return write_node_field(s, b, body);
}

/* Copy a node's fields, leaving out the device and (for carriers) the
 * _output_shapes and T attrs, then add what the kind needs. */
static int write_node(const graph *g, const gnode *x, graft_sink *s, buf *b, buf *body,
                      graft_ctx *ctx)
{
    graft_rd r = x->body;
    graft_pbf f, e;
    body->len = 0;
    if (x->kind == K_GATHER) {
        /* GatherV2(params, indices, "<name>/axis") */
        size_t alen = x->name.n + 5;
        char *axis = graft_malloc(ctx, alen + 1);
        if (!axis) return graft_error_oom(ctx, "a node name");
        memcpy(axis, x->name.p, x->name.n);
        memcpy(axis + x->name.n, "/axis", 6);
        put_len(body, 1, x->name.p, x->name.n);
        put_len(body, 2, "GatherV2", 8);
        if (x->input0.p) put_len(body, 3, x->input0.p, x->input0.n);
        if (x->input1.p) put_len(body, 3, x->input1.p, x->input1.n);
        put_len(body, 3, axis, alen);
        free(axis);
        put_attr(body, "Taxis", x->tindices);
        put_attr(body, "Tindices", x->tindices);
        put_attr(body, "Tparams", x->dtype);
        if (x->class_entry.p) put(body, x->class_entry.p, x->class_entry.n);
    } else if (x->kind == K_READ) {
        put_len(body, 1, x->name.p, x->name.n);
        put_len(body, 2, "Identity", 8);
        if (x->input0.p) put_len(body, 3, x->input0.p, x->input0.n);
        put_attr(body, "T", x->dtype);
        if (x->class_entry.p) put(body, x->class_entry.p, x->class_entry.n);
    } else {
        while (graft_rd_left(&r)) {
            GRAFT_TRY(graft_pb_next(&r, &f));
            if (f.num == 4) continue;
            if (x->kind == K_CARRY && f.num == 5 && f.wt == 2) {
                graft_rd er = f.sub;
                bool drop = false;
                while (graft_rd_left(&er)) {
                    GRAFT_TRY(graft_pb_next(&er, &e));
                    if (e.num == 1 && (graft_pb_is(&e, "_output_shapes") || graft_pb_is(&e, "T")))
                        drop = true;
                }
                if (drop) continue;
            }
            put(body, g->src->data + f.start, (size_t)(f.end - f.start));
        }
        if (x->kind == K_CARRY) put_attr(body, "T", g->nodes[x->carry].dtype);
    }
    return write_node_field(s, b, body);
}

void graft_tf__names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

static int write_frozen(graph *g, graft_sink *s, char ***vars, size_t *nvars, graft_ctx *ctx)
{
    buf b = {.ctx = ctx}, body = {.ctx = ctx};
    char **names = graft_calloc(ctx, g->n + 1, sizeof *names);
    size_t nn = 0;
    int rc = names ? GRAFT_OK : graft_error_oom(ctx, "names");
    for (size_t i = 0; rc == 0 && i < g->n; i++) {
        const gnode *x = &g->nodes[i];
        if (!x->keep) continue;
        if (x->kind == K_VAR) {
            rc = write_var(x, s, &b, ctx);
            names[nn] = graft_malloc(ctx, x->name.n + 1);
            if (!names[nn]) {
                rc = graft_error_oom(ctx, "names");
                break;
            }
            memcpy(names[nn], x->name.p, x->name.n);
            names[nn++][x->name.n] = '\0';
        } else {
            if (x->kind == K_GATHER) rc = write_axis(x, s, &b, &body, ctx);
            if (rc == 0) rc = write_node(g, x, s, &b, &body, ctx);
        }
    }
    if (rc == 0 && g->library.p) rc = graft_sink_write(s, g->library.p, g->library.n);
    free(b.p);
    free(body.p);
    if (rc < 0) {
        graft_tf__names_free(names, nn);
        return rc;
    }
    *vars = names;
    *nvars = nn;
    return GRAFT_OK;
}

static int freeze(graph *g, const char *path, bool folder, const char *const *outputs,
                  size_t noutputs, graft_sink *out, char ***vars, size_t *nvars,
                  graft_ctx *ctx)
{
    int rc = locate(g, path, folder, ctx);
    if (rc == 0) rc = load_graph(g, ctx);
    if (rc == 0 && noutputs) rc = mark(g, outputs, noutputs, ctx);
    for (size_t i = 0; rc == 0 && !noutputs && i < g->n; i++) g->nodes[i].keep = true;
    if (rc == 0) rc = classify(g, ctx);
    if (rc == 0) rc = write_frozen(g, out, vars, nvars, ctx);
    if (rc < 0 && strncmp(ctx->msg, path, strlen(path)) != 0) graft_error_prefix(ctx, "%s", path);
    graft_source_free(g->src);
    free(g->nodes);
    free(g->edges);
    graft_strmap_free(&g->index);
    return rc;
}

int graft_tf__freeze_skeleton(const char *graph_path, const char *const *outputs,
                              size_t noutputs, graft_sink *out, char ***vars,
                              size_t *nvars, graft_ctx *ctx)
{
    graph g = {0};
    bool folder = graft_path_is_dir(graph_path);
    char *path = graft_malloc(ctx, strlen(graph_path) + 20);
    int rc;
    *vars = NULL;
    *nvars = 0;
    if (!path) return graft_error_oom(ctx, "a path");
    sprintf(path, folder ? "%s/saved_model.pb" : "%s", graph_path);
    rc = graft_source_open(&g.src, path, ctx);
    if (rc == 0) rc = freeze(&g, path, folder, outputs, noutputs, out, vars, nvars, ctx);
    else graft_error_prefix(ctx, "--graph");
    free(path);
    return rc;
}

int graft_tf__freeze_buffer(const uint8_t *data, size_t size, const char *name,
                            const char *const *outputs, size_t noutputs, const char *out_path,
                            char ***vars, size_t *nvars, graft_ctx *ctx)
{
    graph g = {0};
    graft_sink *s = NULL;
    int rc;
    *vars = NULL;
    *nvars = 0;
    GRAFT_TRY(graft_source_from_buffer(&g.src, name, data, size, ctx));
    if ((rc = graft_sink_open(&s, out_path, ctx)) < 0) {
        graft_source_free(g.src);
        return rc;
    }
    rc = freeze(&g, name, false, outputs, noutputs, s, vars, nvars, ctx);
    if (rc == 0) rc = graft_sink_commit(s);
    else graft_sink_abort(s);
    if (rc < 0) {
        graft_tf__names_free(*vars, *nvars);
        *vars = NULL;
        *nvars = 0;
    }
    return rc;
}
