/*
 * torch_walk.c - find the tensors of a torch.save value tree (see
 * torch_walk.h).
 *
 * Tensor calls interpreted (torch/_utils.py, torch/_tensor.py):
 *  1. _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])
 *  2. _rebuild_tensor_v3(..., hooks, dtype[, metadata]) over an untyped storage
 *  3. _rebuild_tensor(storage, offset, size, stride)
 *  4. _rebuild_parameter[_with_state](tensor, requires_grad, hooks[, state])
 *  5. _rebuild_from_type_v2(func, type, args, state): func(*args)
 * storage is a persistent id ('storage', StorageClass, key, location, numel
 * [, view_metadata]); offset, size and stride count elements.
 */
#include "torch_walk.h"

#include "zip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct seg {
    const char *s;            /* key bytes (borrowed, or buf) */
    size_t n;
    char buf[24];             /* decimal index or int key */
};

typedef struct walk {
    struct seg seg[GRAFT_TORCH_MAX_DEPTH + 2]; /* key path of the current value */
    graft_torch_refs *r;
    graft_arena *arena;
    graft_ctx *ctx;
    size_t visits;
    int level;                /* recursion depth */
    int hide;                 /* > 0: refs found are hidden (module attributes) */
    size_t modules;           /* torch.nn.Module objects walked */
} walk;

void graft_torch__refs_free(graft_torch_refs *r)
{
    if (!r) return;
    free(r->v);
    free(r->storages);
    free(r->by_key);
    memset(r, 0, sizeof *r);
}

static const char *show(const char *name) { return *name ? name : "(root)"; }

static int tensor_fail(walk *w, const char *name, const graft_pk *at, int code,
                       const char *what)
{
    return graft_error(w->ctx, code, "pickle offset 0x%llx: tensor '%s': %s",
                       (unsigned long long)at->off, show(name), what);
}

static bool get_int(const graft_pk *v, int64_t *out)
{
    if (!v || (v->kind != PK_INT && v->kind != PK_BOOL)) return false;
    *out = v->i;
    return true;
}

static int int_tuple(walk *w, const char *name, const graft_pk *t, const char *what,
                     uint32_t *n, const int64_t **out)
{
    int64_t *v;
    char msg[96];
    if (t->kind != PK_TUPLE) {
        snprintf(msg, sizeof msg, "%s is not a tuple", what);
        return tensor_fail(w, name, t, GRAFT_ECORRUPT, msg);
    }
    if (t->len > GRAFT_MAX_NDIM)
        return graft_error(w->ctx, GRAFT_ELIMIT, "tensor '%s': rank %zu exceeds the cap of %d",
                           show(name), t->len, GRAFT_MAX_NDIM);
    v = graft_arena_alloc(w->arena, (t->len ? t->len : 1) * sizeof *v);
    if (!v) return graft_error_oom(w->ctx, "a shape");
    for (size_t i = 0; i < t->len; i++)
        if (!get_int(t->v[i], &v[i])) {
            snprintf(msg, sizeof msg, "%s item %zu is not an int", what, i);
            return tensor_fail(w, name, t, GRAFT_ECORRUPT, msg);
        }
    *n = (uint32_t)t->len;
    *out = v;
    return GRAFT_OK;
}

/* `raw`: a storage of an unsupported tensor, only to be found and copied:
 * quantized storages are allowed, an untyped one without a dtype is bytes. */
static int add_storage(walk *w, const char *name, const graft_pk *pid, graft_dtype dtype,
                       bool raw, size_t *out)
{
    graft_torch_refs *r = w->r;
    const graft_pk *args = pid->args, *cls, *key, *numel;
    char keybuf[32];
    const char *k;
    int64_t ne;
    uint64_t es = graft_dtype_size(dtype);

    if (!args || args->kind != PK_TUPLE || (args->len != 5 && args->len != 6) ||
        args->v[0]->kind != PK_STR || strcmp(args->v[0]->s, "storage") != 0)
        return tensor_fail(w, name, pid, GRAFT_ECORRUPT,
                           "persistent id is not ('storage', class, key, location, numel)");
    cls = args->v[1];
    key = args->v[2];
    numel = args->v[4];
    if (cls->kind != PK_GLOBAL ||
        (cls->gid != PKG_STORAGE && cls->gid != PKG_UNTYPED_STORAGE &&
         cls->gid != PKG_STORAGE_QUANTIZED))
        return tensor_fail(w, name, pid, GRAFT_ECORRUPT, "storage class is not a torch storage");
    bool typed = cls->gid == PKG_STORAGE || (raw && cls->gid == PKG_STORAGE_QUANTIZED);
    if (cls->gid == PKG_STORAGE_QUANTIZED && !raw)
        return tensor_fail(w, name, pid, GRAFT_ECORRUPT,
                           "a quantized storage outside a quantized tensor");
    if (args->len == 6 && args->v[5]->kind != PK_NONE)
        return tensor_fail(w, name, pid, GRAFT_EFORMAT, "storage views are not supported");
    if (key->kind == PK_STR) {
        k = key->s;
    } else if (key->kind == PK_INT) {
        snprintf(keybuf, sizeof keybuf, "%lld", (long long)key->i);
        k = graft_arena_strdup(w->arena, keybuf);
        if (!k) return graft_error_oom(w->ctx, "a storage key");
    } else {
        return tensor_fail(w, name, pid, GRAFT_ECORRUPT, "storage key is not a string");
    }
    if (!get_int(numel, &ne) || ne < 0)
        return tensor_fail(w, name, pid, GRAFT_ECORRUPT, "storage size is not a count");
    if (typed) {
        if (dtype != GRAFT_DTYPE_INVALID && dtype != cls->dtype)
            return tensor_fail(w, name, pid, GRAFT_ECORRUPT,
                               "dtype argument differs from the storage class");
        dtype = cls->dtype;
    } else if (dtype == GRAFT_DTYPE_INVALID) {
        if (!raw)
            return tensor_fail(w, name, pid, GRAFT_EFORMAT, "untyped storage without a dtype");
        dtype = GRAFT_UINT8;
    }
    es = typed ? graft_dtype_size(dtype) : 1;

    graft_torch_storage *s = graft_torch__find_storage(r, k);
    if (s) {
        if (s->numel != (uint64_t)ne || graft_dtype_size(s->dtype) != es)
            return tensor_fail(w, name, pid, GRAFT_ECORRUPT,
                               "storage is used with two different sizes or types");
        *out = (size_t)(s - r->storages);
        return GRAFT_OK;
    }
    if (r->nstorages == r->scap) {
        size_t cap = r->scap ? r->scap * 2 : 16;
        graft_torch_storage *ns = graft_realloc(w->ctx, r->storages, cap * sizeof *ns);
        size_t *nk;
        if (!ns) return graft_error_oom(w->ctx, "the storage table");
        r->storages = ns;
        nk = graft_realloc(w->ctx, r->by_key, cap * sizeof *nk);
        if (!nk) return graft_error_oom(w->ctx, "the storage table");
        r->by_key = nk;
        r->scap = cap;
    }
    s = &r->storages[r->nstorages];
    memset(s, 0, sizeof *s);
    s->key = k;
    s->dtype = typed ? dtype : GRAFT_UINT8;
    s->numel = (uint64_t)ne;
    if (graft_mul_overflow(s->numel, es, &s->nbytes) || s->nbytes > INT64_MAX)
        return tensor_fail(w, name, pid, GRAFT_ELIMIT, "storage size overflows");
    /* Keep by_key sorted: insertion into a sorted index. */
    size_t lo = 0, hi = r->nstorages;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(r->storages[r->by_key[mid]].key, k) < 0) lo = mid + 1; else hi = mid;
    }
    memmove(r->by_key + lo + 1, r->by_key + lo, (r->nstorages - lo) * sizeof *r->by_key);
    r->by_key[lo] = r->nstorages;
    *out = r->nstorages++;
    return GRAFT_OK;
}

graft_torch_storage *graft_torch__find_storage(graft_torch_refs *r, const char *key)
{
    size_t lo = 0, hi = r->nstorages;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(r->storages[r->by_key[mid]].key, key);
        if (c == 0) return &r->storages[r->by_key[mid]];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

/* Interpret a rebuild call `o` (with its arguments `args`) into ref. */
static int rebuild(walk *w, const char *name, graft_pk *o, int gid, const graft_pk *args,
                   graft_torch_ref *ref)
{
    const graft_pk *pid, *md;
    graft_dtype dtype = GRAFT_DTYPE_INVALID;
    size_t need = gid == PKG_REBUILD_TENSOR ? 4 : gid == PKG_REBUILD_TENSOR_V2 ? 6 : 7;
    int64_t rg = 0;

    if (!args || args->kind != PK_TUPLE || args->len < need || args->len > need + 1)
        return tensor_fail(w, name, o, GRAFT_ECORRUPT, "wrong number of rebuild arguments");
    pid = args->v[0];
    if (pid->kind != PK_PERSID)
        return tensor_fail(w, name, o, GRAFT_ECORRUPT, "storage is not a persistent id");
    if (gid == PKG_REBUILD_TENSOR_V3) {
        const graft_pk *d = args->v[6];
        if (d->kind != PK_GLOBAL || (d->gid != PKG_DTYPE && d->gid != PKG_DTYPE_OTHER))
            return tensor_fail(w, name, o, GRAFT_ECORRUPT, "dtype argument is not a torch dtype");
        if (d->gid == PKG_DTYPE_OTHER) {
            char msg[128];
            snprintf(msg, sizeof msg, "dtype torch.%s is not supported", d->name);
            return tensor_fail(w, name, o, GRAFT_EFORMAT, msg);
        }
        dtype = d->dtype;
    }
    md = gid != PKG_REBUILD_TENSOR && args->len == need + 1 ? args->v[need] : NULL;
    if (md && !(md->kind == PK_NONE || (md->kind == PK_DICT && md->len == 0)))
        return tensor_fail(w, name, o, GRAFT_EFORMAT,
                           "conjugate/negative view metadata is not supported");
    if (!get_int(args->v[1], &ref->offset) || ref->offset < 0)
        return tensor_fail(w, name, o, GRAFT_ECORRUPT, "storage offset is not a count");
    GRAFT_TRY(int_tuple(w, name, args->v[2], "size", &ref->ndim, &ref->shape));
    uint32_t nst;
    GRAFT_TRY(int_tuple(w, name, args->v[3], "stride", &nst, &ref->stride));
    if (nst != ref->ndim)
        return tensor_fail(w, name, o, GRAFT_ECORRUPT, "size and stride differ in length");
    if (gid != PKG_REBUILD_TENSOR && get_int(args->v[4], &rg)) ref->requires_grad = rg != 0;
    GRAFT_TRY(add_storage(w, name, pid, dtype, false, &ref->storage));
    ref->dtype = dtype != GRAFT_DTYPE_INVALID ? dtype : w->r->storages[ref->storage].dtype;
    ref->rebuild = o;
    return GRAFT_OK;
}

/* A tensor-valued call: Parameter and subclass wrappers around a rebuild. */
static int tensor(walk *w, const char *name, graft_pk *o, graft_torch_ref *ref, int depth)
{
    const graft_pk *args = o->args;
    int gid = o->callable->gid;
    if (depth > 4) return tensor_fail(w, name, o, GRAFT_ELIMIT, "wrappers nest too deep");
    switch (gid) {
    case PKG_REBUILD_TENSOR: case PKG_REBUILD_TENSOR_V2: case PKG_REBUILD_TENSOR_V3:
        return rebuild(w, name, o, gid, args, ref);
    case PKG_REBUILD_PARAMETER: case PKG_REBUILD_PARAMETER_STATE: {
        graft_pk *data = graft_pk_item(args, 0);
        int64_t rg;
        if (!data || data->kind != PK_OBJ || data->callable->gid == PKG_OPAQUE)
            return tensor_fail(w, name, o, GRAFT_ECORRUPT, "Parameter data is not a tensor");
        GRAFT_TRY(tensor(w, name, data, ref, depth + 1));
        if (get_int(graft_pk_item(args, 1), &rg)) ref->requires_grad = rg != 0;
        return GRAFT_OK;
    }
    case PKG_REBUILD_FROM_TYPE_V2: {
        graft_pk *func = graft_pk_item(args, 0);
        if (!func || func->kind != PK_GLOBAL ||
            (func->gid != PKG_REBUILD_TENSOR && func->gid != PKG_REBUILD_TENSOR_V2 &&
             func->gid != PKG_REBUILD_TENSOR_V3))
            return tensor_fail(w, name, o, GRAFT_EFORMAT,
                               "tensor subclass rebuilt by an unsupported function");
        return rebuild(w, name, o, func->gid, graft_pk_item(args, 2), ref);
    }
    default: {
        char msg[160];
        snprintf(msg, sizeof msg, "'%s.%s' (quantized, sparse or nested tensor) is not supported",
                 o->callable->s, o->callable->name);
        return tensor_fail(w, name, o, GRAFT_EFORMAT, msg);
    }
    }
}

/* The dotted key path of the current position, built only for tensors;
 * NULL with the error in w->ctx (too long, out of memory). */
static const char *path_name(walk *w, int depth)
{
    size_t len = 0;
    char *name, *p;
    for (int i = 0; i < depth; i++) len += w->seg[i].n + 1;
    if (len == 0) return "";
    if (len - 1 > GRAFT_MAX_NAME) {
        graft_error(w->ctx, GRAFT_ELIMIT, "a tensor's key path is too long");
        return NULL;
    }
    name = p = graft_arena_alloc(w->arena, len);
    if (!name) {
        graft_error_oom(w->ctx, "a tensor name");
        return NULL;
    }
    for (int i = 0; i < depth; i++) {
        if (i) *p++ = '.';
        memcpy(p, w->seg[i].s, w->seg[i].n);
        p += w->seg[i].n;
    }
    *p = '\0';
    return name;
}

/* Into buf, the stored type of a tensor graft cannot read; false if it can
 * (or is malformed: then tensor() says why). */
static bool unsupported_type(const graft_pk *o, char *buf, size_t cap, int depth)
{
    const graft_pk *a = o->args, *x;
    switch (o->callable->gid) {
    case PKG_REBUILD_OTHER:
        x = graft_pk_item(a, 0);  /* a qtensor's storage names its element type */
        x = x && x->kind == PK_PERSID ? graft_pk_item(x->args, 1) : NULL;
        if (strcmp(o->callable->name, "_rebuild_qtensor") == 0 && x && x->kind == PK_GLOBAL)
            snprintf(buf, cap, "torch quantized tensor over %s.%s", x->s, x->name);
        else
            snprintf(buf, cap, "torch tensor rebuilt by %s.%s", o->callable->s, o->callable->name);
        return true;
    case PKG_REBUILD_PARAMETER: case PKG_REBUILD_PARAMETER_STATE:
        x = graft_pk_item(a, 0);
        return x && x->kind == PK_OBJ && depth < 4 && unsupported_type(x, buf, cap, depth + 1);
    case PKG_REBUILD_TENSOR_V3:
        x = graft_pk_item(a, 6);
        if (!x || x->kind != PK_GLOBAL || x->gid != PKG_DTYPE_OTHER) return false;
        snprintf(buf, cap, "torch dtype torch.%s", x->name);
        return true;
    case PKG_REBUILD_FROM_TYPE_V2:
        x = graft_pk_item(a, 0);
        if (!x || x->kind != PK_GLOBAL || x->gid == PKG_REBUILD_TENSOR ||
            x->gid == PKG_REBUILD_TENSOR_V2 || x->gid == PKG_REBUILD_TENSOR_V3)
            return false;
        snprintf(buf, cap, "torch tensor subclass of %s.%s", x->s, x->name);
        return true;
    default:
        return false;
    }
}

/* The size tuple of an unsupported tensor where its call keeps one:
 * args[2] of a rebuild (qtensor too), the torch.Size of a sparse one. */
static const graft_pk *unsupported_size(const graft_pk *o, int depth)
{
    const graft_pk *a = o->args, *x = graft_pk_item(a, 2);
    int gid = o->callable->gid;
    if (depth > 4) return NULL;
    if (gid == PKG_REBUILD_PARAMETER || gid == PKG_REBUILD_PARAMETER_STATE) {
        x = graft_pk_item(a, 0);
        return x && x->kind == PK_OBJ ? unsupported_size(x, depth + 1) : NULL;
    }
    if (x && x->kind == PK_TUPLE) return x;
    x = graft_pk_item(graft_pk_item(a, 1), 2);  /* sparse: (layout, (indices, values, size)) */
    if (x && x->kind == PK_OBJ) x = graft_pk_item(x->args, 0);
    return x && x->kind == PK_TUPLE ? x : NULL;
}

/* Register every storage an unsupported tensor's call refers to. */
static int raw_storages(walk *w, const char *name, const graft_pk *v, graft_torch_ref *ref,
                        int depth)
{
    size_t si;
    if (depth > 8) return tensor_fail(w, name, v, GRAFT_ELIMIT, "nests too deep");
    if (++w->visits > GRAFT_TORCH_MAX_VISITS)
        return graft_error(w->ctx, GRAFT_ELIMIT, "pickle: more than %u values to visit "
                           "(shared or cyclic containers)", GRAFT_TORCH_MAX_VISITS);
    switch (v->kind) {
    case PK_PERSID:
        GRAFT_TRY(add_storage(w, name, v, GRAFT_DTYPE_INVALID, true, &si));
        if (graft_add_overflow(ref->stored_bytes, w->r->storages[si].nbytes, &ref->stored_bytes))
            return tensor_fail(w, name, v, GRAFT_ELIMIT, "storage sizes overflow");
        return GRAFT_OK;
    case PK_TUPLE: case PK_LIST:
        for (size_t i = 0; i < v->len; i++) GRAFT_TRY(raw_storages(w, name, v->v[i], ref, depth + 1));
        return GRAFT_OK;
    case PK_OBJ:
        GRAFT_TRY(raw_storages(w, name, v->args, ref, depth + 1));
        return v->state ? raw_storages(w, name, v->state, ref, depth + 1) : GRAFT_OK;
    default:
        return GRAFT_OK;
    }
}

static int unsupported_ref(walk *w, graft_pk *o, graft_torch_ref *ref, const char *type)
{
    const graft_pk *size = unsupported_size(o, 0);
    int64_t *shape;
    ref->unsupported = graft_arena_strdup(w->arena, type);
    if (!ref->unsupported) return graft_error_oom(w->ctx, "a stored type");
    ref->dtype = GRAFT_DTYPE_INVALID;
    if (size && size->len <= GRAFT_MAX_NDIM) {
        shape = graft_arena_alloc(w->arena, (size->len ? size->len : 1) * sizeof *shape);
        if (!shape) return graft_error_oom(w->ctx, "a shape");
        ref->ndim = (uint32_t)size->len;
        for (size_t i = 0; i < size->len; i++)
            if (!get_int(size->v[i], &shape[i]) || shape[i] < 0) ref->ndim = 0;
        ref->shape = shape;
    }
    return raw_storages(w, ref->name, o, ref, 0);
}

static int add_ref(walk *w, int depth, graft_pk *o)
{
    char type[160];
    graft_torch_refs *r = w->r;
    graft_torch_ref *ref;
    const char *name = path_name(w, depth);
    if (!name) return graft_ctx_status(w->ctx);
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        graft_torch_ref *nv;
        if (r->n >= GRAFT_MAX_TENSORS)
            return graft_error(w->ctx, GRAFT_ELIMIT, "more than %u tensors", GRAFT_MAX_TENSORS);
        nv = graft_realloc(w->ctx, r->v, cap * sizeof *nv);
        if (!nv) return graft_error_oom(w->ctx, "the tensor list");
        r->v = nv;
        r->cap = cap;
    }
    ref = &r->v[r->n];
    memset(ref, 0, sizeof *ref);
    ref->name = *name ? name : "tensor";
    ref->node = o;
    ref->hidden = w->hide > 0;
    if (unsupported_type(o, type, sizeof type, 0))
        GRAFT_TRY(unsupported_ref(w, o, ref, type));
    else
        GRAFT_TRY(tensor(w, ref->name, o, ref, 0));
    if (o->tid) {
        ref->first = o->tid - 1;
    } else {
        ref->first = r->n;
        o->tid = (uint32_t)r->n + 1;
    }
    r->n++;
    return GRAFT_OK;
}

static bool is_tensor_call(const graft_pk *v)
{
    if (v->kind != PK_OBJ) return false;
    switch (v->callable->gid) {
    case PKG_REBUILD_TENSOR: case PKG_REBUILD_TENSOR_V2: case PKG_REBUILD_TENSOR_V3:
    case PKG_REBUILD_PARAMETER: case PKG_REBUILD_PARAMETER_STATE:
    case PKG_REBUILD_FROM_TYPE_V2: case PKG_REBUILD_OTHER:
        return true;
    default:
        return false;
    }
}

static int visit(walk *w, graft_pk *v, int depth);

/* Key/value pairs: a dict, an OrderedDict's items, an object's attributes. */
static int visit_pairs(walk *w, graft_pk *const *kv, size_t npairs, int depth)
{
    for (size_t i = 0; i < npairs; i++) {
        const graft_pk *k = kv[2 * i];
        struct seg *sg = &w->seg[depth];
        if (k->kind == PK_STR) {
            sg->s = k->s;
            sg->n = k->n;
        } else if (k->kind == PK_INT) {
            sg->n = (size_t)snprintf(sg->buf, sizeof sg->buf, "%lld", (long long)k->i);
            sg->s = sg->buf;
        } else {
            continue; /* tuple or float keys: no name to give */
        }
        GRAFT_TRY(visit(w, kv[2 * i + 1], depth + 1));
    }
    return GRAFT_OK;
}

static int visit_value(walk *w, graft_pk *v, int depth);

/* The key/value pairs of a dict or an OrderedDict object; false otherwise. */
static bool pairs_of(const graft_pk *d, graft_pk *const **kv, size_t *n)
{
    if (!d || !(d->kind == PK_DICT || (d->kind == PK_OBJ && d->callable->gid == PKG_ORDERED_DICT)))
        return false;
    *kv = d->v;
    *n = d->len / 2;
    return true;
}

static graft_pk *lookup(const graft_pk *d, const char *key)
{
    graft_pk *const *kv;
    size_t n;
    if (!pairs_of(d, &kv, &n)) return NULL;
    for (size_t i = 0; i < n; i++)
        if (kv[2 * i]->kind == PK_STR && strcmp(kv[2 * i]->s, key) == 0) return kv[2 * i + 1];
    return NULL;
}

/* A torch.nn.Module as pickled: an object whose state is its __dict__. */
static bool is_module(const graft_pk *v)
{
    return v->kind == PK_OBJ && v->state && lookup(v->state, "_modules") &&
           lookup(v->state, "_parameters") && lookup(v->state, "_buffers");
}

/* Is the string `name` in set s (a pickled set: EMPTY_SET/ADDITEMS, or
 * set/frozenset called on a list)? */
static bool in_set(const graft_pk *s, const graft_pk *name)
{
    if (s && s->kind == PK_OBJ && s->callable->gid == PKG_BUILTIN) s = graft_pk_item(s->args, 0);
    if (!s || (s->kind != PK_SET && s->kind != PK_LIST && s->kind != PK_TUPLE)) return false;
    for (size_t i = 0; i < s->len; i++)
        if (s->v[i]->kind == PK_STR && strcmp(s->v[i]->s, name->s) == 0) return true;
    return false;
}

static int module_fail(walk *w, int depth, const graft_pk *o, const char *what)
{
    const char *name = path_name(w, depth);
    if (!name) return graft_ctx_status(w->ctx);
    return graft_error(w->ctx, GRAFT_EFORMAT,
                       "pickle offset 0x%llx: module '%s' ('%s.%s'): %s; graft cannot walk "
                       "this class", (unsigned long long)o->off, show(name), o->callable->s,
                       o->callable->name, what);
}

/* The class a pickled object or global names (through copyreg._reconstructor). */
static const graft_pk *class_of(const graft_pk *v)
{
    if (v->kind == PK_OBJ) {
        const graft_pk *c = graft_pk_item(v->args, 0);
        if (strcmp(v->callable->name, "_reconstructor") == 0 && c && c->kind == PK_GLOBAL)
            return c;
        return v->callable;
    }
    return v->kind == PK_GLOBAL ? v : NULL;
}

/* Modules of torch whose state_dict() is not their _parameters and _buffers:
 * quantized modules write packed weights, scales and dtypes from their own
 * _save_to_state_dict (torch/ao/nn/quantized, torch 1.13); lazy modules save
 * uninitialized parameters.  The float helpers among them are plain. */
static bool own_state_dict(const graft_pk *cls)
{
    static const char *const plain[] = {"FloatFunctional", "FXFloatFunctional", "Quantize",
                                        "DeQuantize", NULL};
    const char *q = strstr(cls->s, ".quantized");
    if (q && (q[10] == '.' || q[10] == '\0') && strncmp(cls->s, "torch.", 6) == 0) {
        for (const char *const *p = plain; *p; p++)
            if (strcmp(cls->name, *p) == 0) return false;
        return true;
    }
    return strncmp(cls->s, "torch.nn.modules.", 17) == 0 && strncmp(cls->name, "Lazy", 4) == 0;
}

/* A state_dict hook may add, drop or rename entries; the one that only
 * writes a version into _metadata (spectral_norm) is known. */
static const graft_pk *unknown_state_dict_hook(const graft_pk *module_state)
{
    graft_pk *const *kv;
    size_t n;
    if (!pairs_of(lookup(module_state, "_state_dict_hooks"), &kv, &n)) return NULL;
    for (size_t i = 0; i < n; i++) {
        const graft_pk *c = class_of(kv[2 * i + 1]);
        if (!c || strcmp(c->s, "torch.nn.utils.spectral_norm") != 0 ||
            strcmp(c->name, "SpectralNormStateDictHook") != 0)
            return kv[2 * i + 1];
    }
    return NULL;
}

/*
 * A module, as Module.state_dict() walks it (torch/nn/modules/module.py,
 * _save_to_state_dict then the children): parameters that are not None,
 * then buffers that are not None (those in _non_persistent_buffers_set are
 * hidden refs), then each child module under its name.  Tensors among its
 * other attributes are hidden refs: not in state_dict(), but written back.
 */
static int visit_module(walk *w, graft_pk *o, int depth)
{
    static const char *const parts[] = {"_parameters", "_buffers", "_modules"};
    const graft_pk *np = lookup(o->state, "_non_persistent_buffers_set");
    graft_pk *const *attrs = NULL;
    size_t nattrs = 0;
    const graft_pk *hook = unknown_state_dict_hook(o->state);
    w->modules++;
    if (own_state_dict(o->callable))
        return module_fail(w, depth, o, "its state_dict() comes from its own "
                           "_save_to_state_dict, not from _parameters and _buffers");
    if (hook) {
        const graft_pk *c = class_of(hook);
        char what[GRAFT_MSG_MAX / 2];
        snprintf(what, sizeof what, "a state_dict hook (%s%s%s) may change its entries",
                 c ? c->s : graft_pickle__kind_name(hook->kind), c ? "." : "", c ? c->name : "");
        return module_fail(w, depth, o, what);
    }
    for (int p = 0; p < 3; p++) {
        graft_pk *const *kv;
        size_t n;
        char what[96];
        if (!pairs_of(lookup(o->state, parts[p]), &kv, &n)) {
            snprintf(what, sizeof what, "%s is not a dict", parts[p]);
            return module_fail(w, depth, o, what);
        }
        for (size_t i = 0; i < n; i++) {
            graft_pk *k = kv[2 * i], *v = kv[2 * i + 1];
            if (v->kind == PK_NONE) continue;
            if (k->kind != PK_STR) {
                snprintf(what, sizeof what, "a key of %s is a %s", parts[p],
                         graft_pickle__kind_name(k->kind));
                return module_fail(w, depth, o, what);
            }
            w->seg[depth] = (struct seg){.s = k->s, .n = k->n};
            if (p < 2) {
                if (!is_tensor_call(v)) {
                    snprintf(what, sizeof what, "%s '%s' is a %s, not a tensor", parts[p] + 1,
                             k->s, graft_pickle__kind_name(v->kind));
                    return module_fail(w, depth, o, what);
                }
                GRAFT_TRY(add_ref(w, depth + 1, v));
                w->r->v[w->r->n - 1].hidden |= p == 1 && in_set(np, k);
                continue;
            }
            if (!is_module(v)) {
                if (v->kind != PK_OBJ) {
                    snprintf(what, sizeof what, "child '%s' is a %s", k->s,
                             graft_pickle__kind_name(v->kind));
                    return module_fail(w, depth, o, what);
                }
                return module_fail(w, depth + 1, v,
                                   "its pickled state is not a module's attribute dict "
                                   "(_parameters, _buffers, _modules)");
            }
            GRAFT_TRY(visit(w, v, depth + 1));
        }
    }
    pairs_of(o->state, &attrs, &nattrs);
    for (size_t i = 0; i < nattrs; i++) {
        const graft_pk *k = attrs[2 * i];
        bool part = false;
        for (int p = 0; p < 3; p++)
            part |= k->kind == PK_STR && strcmp(k->s, parts[p]) == 0;
        if (part) continue;
        w->hide++;
        int rc = visit_pairs(w, attrs + 2 * i, 1, depth);
        w->hide--;
        GRAFT_TRY(rc);
    }
    return GRAFT_OK;
}

/* Recursion is bounded by `level`, which also counts objects' states. */
static int visit(walk *w, graft_pk *v, int depth)
{
    int rc;
    if (++w->level > 2 * GRAFT_TORCH_MAX_DEPTH)
        return graft_error(w->ctx, GRAFT_ELIMIT,
                           "pickle offset 0x%llx: containers nest deeper than %d "
                           "(or contain themselves)",
                           (unsigned long long)v->off, GRAFT_TORCH_MAX_DEPTH);
    rc = visit_value(w, v, depth);
    w->level--;
    return rc;
}

static int visit_value(walk *w, graft_pk *v, int depth)
{
    if (++w->visits > GRAFT_TORCH_MAX_VISITS)
        return graft_error(w->ctx, GRAFT_ELIMIT, "pickle: more than %u values to visit "
                           "(shared or cyclic containers)", GRAFT_TORCH_MAX_VISITS);
    if (depth > GRAFT_TORCH_MAX_DEPTH)
        return graft_error(w->ctx, GRAFT_ELIMIT,
                           "pickle offset 0x%llx: containers nest deeper than %d "
                           "(or contain themselves)",
                           (unsigned long long)v->off, GRAFT_TORCH_MAX_DEPTH);
    switch (v->kind) {
    case PK_DICT:
        return visit_pairs(w, v->v, v->len / 2, depth);
    case PK_LIST: case PK_TUPLE:
        for (size_t i = 0; i < v->len; i++) {
            struct seg *sg = &w->seg[depth];
            sg->n = (size_t)snprintf(sg->buf, sizeof sg->buf, "%zu", i);
            sg->s = sg->buf;
            GRAFT_TRY(visit(w, v->v[i], depth + 1));
        }
        return GRAFT_OK;
    case PK_OBJ:
        if (is_tensor_call(v)) return add_ref(w, depth, v);
        if (is_module(v)) return visit_module(w, v, depth);
        GRAFT_TRY(visit_pairs(w, v->v, v->len / 2, depth));
        /* An OrderedDict's state is _metadata; other objects keep attributes there. */
        if (v->state && (v->callable->gid == PKG_OPAQUE || v->callable->gid == PKG_FOREIGN))
            return visit(w, v->state, depth);
        return GRAFT_OK;
    default:
        return GRAFT_OK;
    }
}

int graft_torch__collect(graft_torch_refs *out, graft_pk *root, const graft_pk *foreign,
                         graft_arena *arena, graft_ctx *ctx)
{
    walk w = {.r = out, .arena = arena, .ctx = ctx};
    memset(out, 0, sizeof *out);
    GRAFT_TRY(visit(&w, root, 0));
    /* What a whole model holds as attributes, a state dict has no use for. */
    if (foreign && !w.modules)
        return graft_error(ctx, GRAFT_EUNSAFE, "pickle offset 0x%llx: global '%s.%s' is not "
                           "allowed", (unsigned long long)foreign->off, foreign->s,
                           foreign->name);
    return GRAFT_OK;
}

int graft_torch__add_all(graft_model *m, graft_torch_refs *r, bool big_endian,
                         graft_load_fn load, void *load_state, graft_ctx *ctx)
{
    for (size_t i = 0; i < r->n; i++) {
        const graft_torch_ref *ref = &r->v[i];
        const graft_torch_storage *s;
        uint64_t es = graft_dtype_size(ref->dtype), start;
        int64_t lo, hi;
        graft_tensor *t;

        if (ref->unsupported) { /* no data handed out; the writer copies its storages */
            t = graft_model__add_unsupported(m, ref->name, strlen(ref->name), ref->unsupported,
                                             ref->ndim, ref->shape, ref->stored_bytes, ctx);
            if (!t) return ctx->status;
            t->aux = i;
            continue;
        }
        s = &r->storages[ref->storage];

        if (s->size != s->nbytes)
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "tensor '%s': storage '%s' holds %llu bytes but its persistent "
                               "id says %llu elements (%llu bytes)",
                               ref->name, s->key, (unsigned long long)s->size,
                               (unsigned long long)s->numel, (unsigned long long)s->nbytes);
        t = graft_model__add(m, ref->name, strlen(ref->name), ref->dtype, ref->ndim,
                             ref->shape, ctx);
        if (!t) return ctx->status;
        GRAFT_TRY(graft_model__set_strides(m, t, ref->stride, ctx));
        if (graft_mul_overflow((uint64_t)ref->offset, es, &start))
            return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': storage offset overflows",
                               ref->name);
        GRAFT_TRY(graft_tensor__extent(t, &lo, &hi, ctx));
        if (t->numel && ((lo < 0 && (uint64_t)-lo > start) || start > s->size ||
                         (uint64_t)hi > s->size - start))
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "tensor '%s': view [%lld, %lld) of storage '%s' lies outside "
                               "its %llu bytes",
                               ref->name, (long long)start + lo, (long long)start + hi, s->key,
                               (unsigned long long)s->size);
        /* Only stride-0 broadcasting makes a view larger than its storage;
         * cap it so a tiny file cannot ask for a huge gather. */
        if (t->nbytes > s->size && t->nbytes > GRAFT_TORCH_MAX_BROADCAST)
            return graft_error(ctx, GRAFT_ELIMIT,
                               "tensor '%s': a broadcast view of %llu bytes over a %llu-byte "
                               "storage exceeds the cap of %u bytes", ref->name,
                               (unsigned long long)t->nbytes, (unsigned long long)s->size,
                               GRAFT_TORCH_MAX_BROADCAST);
        t->big_endian = big_endian && es > 1;
        t->aux = i; /* ref index: the loader and the writer find the storage through it */
        if (s->compressed) {
            t->load = load;
            t->aux_ptr = load_state;
            t->offset = start;
        } else {
            t->src = m->sources[0];
            t->offset = s->data_off + start;
        }
    }
    return GRAFT_OK;
}

int graft_torch__state_new(graft_torch_state **out, graft_ctx *ctx)
{
    graft_torch_state *st = graft_calloc(ctx, 1, sizeof *st);
    *out = st;
    if (!st) return graft_error_oom(ctx, "the PyTorch reader state");
    graft_arena_init(&st->arena, ctx);
    return GRAFT_OK;
}

void graft_torch__state_free(void *state)
{
    graft_torch_state *st = state;
    if (!st) return;
    graft_torch__refs_free(&st->refs);
    free(st->tensors);
    graft_zip_free(st->zip);
    free(st->pkl);
    graft_arena_free(&st->arena);
    free(st);
}

int graft_torch__snapshot(graft_model *m, graft_torch_state *st, graft_ctx *ctx)
{
    if (!m->count) return GRAFT_OK;
    st->tensors = graft_malloc(ctx, m->count * sizeof *st->tensors);
    if (!st->tensors) return graft_error_oom(ctx, "the tensor table");
    memcpy(st->tensors, m->tensors, m->count * sizeof *st->tensors);
    size_t k = 0;
    for (size_t i = 0; i < m->count; i++)
        if (!st->refs.v[m->tensors[i].aux].hidden) m->tensors[k++] = m->tensors[i];
    m->count = k;
    return GRAFT_OK;
}
