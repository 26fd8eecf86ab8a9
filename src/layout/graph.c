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

int graph_add(graft_graph *g, gnode **out)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 64;
        gnode *nv = cap > GRAPH_MAX_NODES ? NULL : realloc(g->v, cap * sizeof *nv);
        if (!nv) return -1;
        g->v = nv, g->cap = cap;
    }
    *out = &g->v[g->n++];
    memset(*out, 0, sizeof **out);
    (*out)->group = 1;
    return 0;
}

static uint64_t hash(gstr s)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < s.n; i++) h = (h ^ (unsigned char)s.p[i]) * 1099511628211ull;
    return h;
}

int graph_index(graft_graph *g, graft_model *m)
{
    g->m = m;
    g->scap = 16;
    while (g->scap < 2 * g->n) g->scap *= 2;
    if (!(g->slot = calloc(g->scap, sizeof *g->slot))) return -1;
    for (size_t i = 0; i < g->n; i++) {
        size_t s = hash(g->v[i].out) & (g->scap - 1);
        while (g->slot[s]) s = (s + 1) & (g->scap - 1);
        g->slot[s] = (uint32_t)i + 1;
    }
    return graft_lindex_init(&g->tensors, m);
}

void graph_free(graft_graph *g)
{
    free(g->v);
    free(g->slot);
    graft_lindex_free(&g->tensors);
    memset(g, 0, sizeof *g);
}

const gnode *graph_producer(const graft_graph *g, gstr name)
{
    if (!g->slot || !name.n) return NULL;
    for (size_t s = hash(name) & (g->scap - 1); g->slot[s]; s = (s + 1) & (g->scap - 1)) {
        const gnode *n = &g->v[g->slot[s] - 1];
        if (n->out.n == name.n && !memcmp(n->out.p, name.p, name.n)) return n;
    }
    return NULL;
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
    graft_layout__attach(g->m, t, &l);
}
