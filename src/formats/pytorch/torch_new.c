/*
 * torch_new.c - PyTorch pieces for `graft convert`: the non-tensor values a
 * checkpoint holds (what convert drops), and a fresh state dict to write.
 *
 * A fresh state dict is the value tree torch.save(model.state_dict())
 * pickles, without its `_metadata` attribute: an OrderedDict of name ->
 * _rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict()), which
 * torch_write.c then writes as it writes any skeleton.
 */
#include "torch_walk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { X_INT, X_BOOL, X_FLOAT, X_STR, X_BYTES, X_NONE, X_KINDS };
static const char *const kind_names[X_KINDS] = {"int", "bool", "float", "string", "bytes", "None"};

typedef struct walk {
    const char *select;      /* sub-tree counted, NULL = all */
    uint64_t n[X_KINDS];
    uint64_t visits;
    char path[1024];
} walk;

static bool under_select(const walk *w, size_t len)
{
    size_t k;
    if (!w->select) return true;
    k = strlen(w->select);
    return len > k && strncmp(w->path, w->select, k) == 0 && w->path[k] == '.';
}

static void visit(walk *w, const graft_pk *v, size_t len, int depth);

/* Dict-like pairs: each value under path.key. */
static void pairs(walk *w, graft_pk *const *kv, size_t n, size_t len, int depth)
{
    for (size_t i = 0; i + 1 < n; i += 2) {
        const graft_pk *k = kv[i];
        int add = -1;
        if (k->kind == PK_STR)
            add = snprintf(w->path + len, sizeof w->path - len, "%s%s", len ? "." : "", k->s);
        else if (k->kind == PK_INT)
            add = snprintf(w->path + len, sizeof w->path - len, "%s%lld", len ? "." : "",
                           (long long)k->i);
        if (add < 0 || (size_t)add >= sizeof w->path - len) add = 0;
        visit(w, kv[i + 1], len + (size_t)add, depth + 1);
        w->path[len] = '\0';
    }
}

static void visit(walk *w, const graft_pk *v, size_t len, int depth)
{
    int kind = -1;
    if (!v || depth > GRAFT_TORCH_MAX_DEPTH || ++w->visits > GRAFT_TORCH_MAX_VISITS) return;
    switch (v->kind) {
    case PK_NONE: kind = X_NONE; break;
    case PK_BOOL: kind = X_BOOL; break;
    case PK_INT: case PK_BIGINT: kind = X_INT; break;
    case PK_FLOAT: kind = X_FLOAT; break;
    case PK_STR: kind = X_STR; break;
    case PK_BYTES: kind = X_BYTES; break;
    case PK_TUPLE: case PK_LIST: case PK_SET:
        for (size_t i = 0; i < v->len; i++) {
            int add = snprintf(w->path + len, sizeof w->path - len, "%s%zu", len ? "." : "", i);
            if (add < 0 || (size_t)add >= sizeof w->path - len) add = 0;
            visit(w, v->v[i], len + (size_t)add, depth + 1);
            w->path[len] = '\0';
        }
        return;
    case PK_DICT: pairs(w, v->v, v->len, len, depth); return;
    case PK_OBJ:
        if (v->tid) return; /* a tensor */
        if (v->args && v->callable && v->callable->gid != PKG_ORDERED_DICT)
            visit(w, v->args, len, depth + 1);
        pairs(w, v->v, v->len, len, depth);
        /* an OrderedDict's BUILD state is the module's _metadata: bookkeeping */
        if (v->state && !(v->callable && v->callable->gid == PKG_ORDERED_DICT))
            visit(w, v->state, len, depth + 1);
        return;
    default: return; /* globals, persistent ids: structure, not values */
    }
    if (under_select(w, len)) w->n[kind]++;
}

void graft_torch__extras(const graft_model *m, const char *select, graft_extras *out)
{
    const graft_torch_state *st = m->state;
    walk *w;
    size_t at = 0;
    if (!st || !st->root || !(w = calloc(1, sizeof *w))) return;
    w->select = select;
    visit(w, st->root, 0, 0);
    for (int k = 0; k < X_KINDS; k++) {
        int n;
        if (!w->n[k]) continue;
        out->count += w->n[k];
        n = snprintf(out->summary + at, sizeof out->summary - at, "%s%llu %s%s", at ? ", " : "",
                     (unsigned long long)w->n[k], kind_names[k],
                     w->n[k] > 1 && k != X_NONE && k != X_BYTES ? "s" : "");
        if (n > 0 && (size_t)n < sizeof out->summary - at) at += (size_t)n;
    }
    free(w);
}

static graft_pk *node(graft_arena *a, graft_pk_kind kind)
{
    graft_pk *p = graft_arena_alloc(a, sizeof *p);
    if (p) {
        memset(p, 0, sizeof *p);
        p->kind = kind;
    }
    return p;
}

static graft_pk *global(graft_arena *a, const char *module, const char *name, graft_pk_gid gid)
{
    graft_pk *g = node(a, PK_GLOBAL);
    if (g) {
        g->s = module;
        g->n = strlen(module);
        g->name = name;
        g->gid = (uint8_t)gid;
    }
    return g;
}

int graft_torch__new_state_dict(graft_model *m, graft_ctx *ctx)
{
    graft_torch_state *st = NULL;
    graft_pk *odict, *rebuild, *root;
    size_t n = m->count;

    GRAFT_TRY(graft_torch__state_new(&st, ctx));
    m->state = st;
    m->state_free = graft_torch__state_free;
    odict = global(&st->arena, "collections", "OrderedDict", PKG_ORDERED_DICT);
    rebuild = global(&st->arena, "torch._utils", "_rebuild_tensor_v2", PKG_REBUILD_TENSOR_V2);
    root = node(&st->arena, PK_OBJ);
    if (!odict || !rebuild || !root || !(root->args = node(&st->arena, PK_TUPLE)) ||
        !(root->v = graft_arena_alloc(&st->arena, (2 * n + 1) * sizeof *root->v)))
        return graft_error_oom(ctx, "the state dict");
    root->callable = odict;
    root->op = 'R';
    root->len = root->cap = 2 * n;
    st->root = root;
    st->refs.v = graft_calloc(ctx, n + 1, sizeof *st->refs.v);
    if (!st->refs.v) return graft_error_oom(ctx, "the state dict");
    st->refs.n = st->refs.cap = n;
    for (size_t i = 0; i < n; i++) {
        graft_tensor *t = &m->tensors[i];
        graft_pk *key = node(&st->arena, PK_STR), *val = node(&st->arena, PK_OBJ);
        if (!key || !val) return graft_error_oom(ctx, "the state dict");
        key->s = t->name;
        key->n = strlen(t->name);
        val->callable = rebuild;
        val->op = 'R';
        val->tid = (uint32_t)i + 1;
        root->v[2 * i] = key;
        root->v[2 * i + 1] = val;
        st->refs.v[i] = (graft_torch_ref){.name = t->name, .node = val, .rebuild = val,
                                          .dtype = t->dtype, .ndim = t->ndim, .shape = t->shape,
                                          .first = i};
        t->aux = i;
    }
    GRAFT_TRY(graft_torch__snapshot(m, st, ctx));
    m->format = &graft_format_pytorch_zip;
    return GRAFT_OK;
}
