/* graph.c - node table, output-name index and layout attachment shared by
 * the ONNX and TF graph hooks. */
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool gstr_is(gstr s, const char *lit) { return s.n == strlen(lit) && !memcmp(s.p, lit, s.n); }
bool gstr_starts(gstr s, const char *lit)
{
    size_t k = strlen(lit);
    return s.n >= k && !memcmp(s.p, lit, k);
}

bool gstr_in(gstr s, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (gstr_is(s, list[i])) return true;
    return false;
}

void graph_flatten(graft_layout *l, int64_t c, int64_t k, bool chw)
{
    if (c <= 0 || k % c || k / c < 2) return;
    snprintf(l->flatten, sizeof l->flatten, "%s", chw ? "CHW" : "HWC");
    l->flat_c = c, l->flat_s = k / c;
}

int graph_add(graft_graph *g, gnode **out, graft_ctx *ctx)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 64;
        if (cap > GRAPH_MAX_NODES)
            return graft_error(ctx, GRAFT_ELIMIT, "more than %u graph nodes", GRAPH_MAX_NODES);
        gnode *nv = graft_realloc(ctx, g->v, cap * sizeof *nv);
        if (!nv) return graft_error_oom(ctx, "graph nodes");
        g->v = nv, g->cap = cap;
    }
    *out = &g->v[g->n++];
    memset(*out, 0, sizeof **out);
    (*out)->group = 1;
    return 0;
}

static const char *node_key(const void *owner, size_t i, size_t *len)
{
    const graft_graph *g = owner;
    *len = g->v[i].out.n;
    return g->v[i].out.p;
}

int graph_index(graft_graph *g, graft_model *m, graft_ctx *ctx)
{
    g->m = m;
    graft_strmap_init(&g->outs, node_key, g);
    if (graft_strmap_reserve(&g->outs, g->n, ctx) < 0) return -1;
    for (size_t i = 0; i < g->n; i++) graft_strmap_put(&g->outs, i); /* first producer kept */
    return graft_lindex_init(&g->tensors, m, ctx);
}

void graph_free(graft_graph *g)
{
    free(g->v);
    graft_strmap_free(&g->outs);
    graft_lindex_free(&g->tensors);
    memset(g, 0, sizeof *g);
}

const gnode *graph_producer(const graft_graph *g, gstr name)
{
    size_t i = name.n ? graft_strmap_find(&g->outs, name.p, name.n) : GRAFT_STRMAP_NONE;
    return i == GRAFT_STRMAP_NONE ? NULL : &g->v[i];
}

graft_tensor *graph_tensor(const graft_graph *g, gstr name)
{
    return graft_lindex_get(&g->tensors, name.p, name.n);
}

void graph_attach(graft_graph *g, gstr name, graft_role role, graft_family fam,
                  const char *axes, const gnode *n, const graft_layout *extra)
{
    graft_tensor *t = graph_tensor(g, name);
    graft_layout l;
    if (!t || t->layout) return; /* the first consumer found decides */
    memset(&l, 0, sizeof l);
    l.role = role;
    l.family = fam;
    snprintf(l.axes, sizeof l.axes, "%s", axes ? axes : graft_layout__axes_for(fam, role, t->ndim));
    if (strlen(l.axes) != t->ndim) return;
    if (extra) {
        memcpy(l.flatten, extra->flatten, sizeof l.flatten);
        l.flat_c = extra->flat_c, l.flat_h = extra->flat_h, l.flat_w = extra->flat_w;
        l.flat_s = extra->flat_s, l.groups = extra->groups;
    }
    if (n) {
        l.layer = graft_arena_strndup(&g->m->arena, n->name.p, n->name.n);
        l.op = graft_arena_strndup(&g->m->arena, n->op.p, n->op.n);
    }
    if (!graft_layout__attach(g->m, t, &l)) g->oom = true;
}
