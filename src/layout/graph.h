/*
 * graph.h - the little of a dataflow graph (ONNX NodeProto, TF NodeDef) the
 * layout hooks need: each node's name, op, inputs and a few attributes,
 * with its producer found by output name (internal to src/layout).
 */
#ifndef GRAFT_LAYOUT_GRAPH_H
#define GRAFT_LAYOUT_GRAPH_H

#include "layout_int.h"

#define GRAPH_MAX_IN 6          /* inputs kept per node */
#define GRAPH_MAX_NODES (1u << 22)

typedef struct gstr {
    const char *p;              /* into the file; not NUL-terminated */
    size_t n;
} gstr;

typedef struct gnode {
    gstr name, op, out;         /* out: the output other nodes name (ONNX output 0, TF name) */
    gstr in[GRAPH_MAX_IN];      /* TF: without ^ and :N */
    uint32_t nin;
    int64_t group;              /* ONNX Conv group (1 when absent) */
    bool trans_a, trans_b;      /* ONNX Gemm transA/transB, TF MatMul transpose_a/b */
    bool nchw;                  /* TF data_format NCHW */
    int64_t perm[4];            /* ONNX Transpose perm (rank 4 only) */
    bool has_perm;
} gnode;

typedef struct graft_graph {
    gnode *v;
    size_t n, cap;
    graft_strmap outs;          /* out -> node index */
    graft_model *m;
    graft_lindex tensors;       /* m's tensors by name */
    bool oom;                   /* an attach ran out of memory */
} graft_graph;

int graph_add(graft_graph *g, gnode **out, graft_ctx *ctx);
/* Index the nodes by output name and m's tensors by name. */
int graph_index(graft_graph *g, graft_model *m, graft_ctx *ctx);
void graph_free(graft_graph *g);
const gnode *graph_producer(const graft_graph *g, gstr name);
graft_tensor *graph_tensor(const graft_graph *g, gstr name);
bool gstr_is(gstr s, const char *lit);
bool gstr_starts(gstr s, const char *lit);
/* Is s one of the NULL-terminated list? */
bool gstr_in(gstr s, const char *const *list);
/* A Dense with k in-features fed by a flatten of c channels (in CHW or HWC
 * order): set l's flatten fields when c divides k into 2 or more positions. */
void graph_flatten(graft_layout *l, int64_t c, int64_t k, bool chw);
/* Give tensor `name` (if it is one of m's) this structure layout; the axes
 * from fam's convention for role and the tensor's rank unless given; flatten
 * and groups copied from extra (may be NULL). */
void graph_attach(graft_graph *g, gstr name, graft_role role, graft_family fam,
                  const char *axes, const gnode *n, const graft_layout *extra);

#endif
