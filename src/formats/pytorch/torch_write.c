/*
 * torch_write.c - write a torch.save zip archive from a PyTorch skeleton
 * (the write slot of "pytorch-zip" and "pytorch-legacy").
 *
 * Output layout, as torch.save of PyTorch 1.13 (pytorch-zip.md sections 2, 6):
 *  1. <stem>/data.pkl     the skeleton's value tree pickled again (protocol 2):
 *                         key order, nesting, ints, floats, strings, _metadata
 *                         and other objects as read; every tensor becomes
 *                         _rebuild_tensor_v2 over its own contiguous storage
 *                         (offset 0, row-major strides), Parameters and
 *                         tensor subclasses keep their wrapper
 *  2. <stem>/byteorder    "little"
 *  3. <stem>/data/<k>     k = 0, 1, ... in pickling order: the tensor's bytes
 *                         from fill->emit(), stored, 64-byte aligned
 *  4. <stem>/version      "3\n"
 *  5. central directory, zip64 end record and locator, end record (PyTorch's
 *     writer always adds the zip64 ones); local headers carry the final
 *     sizes and CRC-32 (core/zipw.c), so no data descriptors
 * A tensor reached twice (tied weights) is memoized and written once, from
 * the fill of its first name.  Objects, dicts, lists and sets are memoized
 * too, as pickle does, right after they are made and before what they hold:
 * a whole model's bound-method hook (getattr(<the module>, 'hook')) refers
 * back to its module.  Tuples are written once per use.
 */
#include "format.h"
#include "pickle.h"
#include "rd.h"
#include "strmap.h"
#include "torch_walk.h"
#include "zipw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 200
#define MAX_VALUES (1u << 22)      /* values pickled: shared sub-trees count again */
#define MAX_PICKLE (1ull << 30)    /* bytes of the new data.pkl */

typedef struct pw {
    graft_ctx *ctx;
    const graft_torch_state *st;
    uint8_t *buf;           /* the pickle; malloc */
    size_t len, cap;
    uint32_t next_memo;
    uint32_t *memo;         /* per ref: memo index + 1 once pickled */
    size_t *order;          /* refs in storage-key order */
    size_t *raw;            /* per key: the storage copied as it is, or SIZE_MAX */
    size_t *raw_key;        /* per storage: its new key once written, or SIZE_MAX */
    size_t nkeys;
    size_t values;          /* values pickled so far */
    const graft_pk **shared; /* objects and containers pickled, by memo index; malloc */
    uint32_t *shared_memo;  /* their memo indices */
    size_t nshared, shared_cap;
    graft_strmap shared_map; /* node address -> index into shared */
} pw;

static int put(pw *w, const void *p, size_t n)
{
    if (n > MAX_PICKLE - w->len)
        return graft_error(w->ctx, GRAFT_ELIMIT, "the new data.pkl would exceed %llu bytes",
                           (unsigned long long)MAX_PICKLE);
    if (n > w->cap - w->len) {
        size_t cap = w->cap ? w->cap : 4096;
        uint8_t *b;
        while (cap - w->len < n) {
            if (cap > SIZE_MAX / 2) return graft_error_oom(w->ctx, "the pickle");
            cap *= 2;
        }
        b = graft_realloc(w->ctx, w->buf, cap);
        if (!b) return graft_error_oom(w->ctx, "the pickle");
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return GRAFT_OK;
}

static int op(pw *w, uint8_t o) { return put(w, &o, 1); }

static int put_int(pw *w, int64_t v)
{
    uint8_t b[10];
    if (v >= 0 && v < 256) {
        b[0] = 'K', b[1] = (uint8_t)v;
        return put(w, b, 2);
    }
    if (v >= 0 && v < 65536) {
        b[0] = 'M';
        graft_put_le16(b + 1, (uint16_t)v);
        return put(w, b, 3);
    }
    if (v >= INT32_MIN && v <= INT32_MAX) {
        b[0] = 'J';
        graft_put_le32(b + 1, (uint32_t)(int32_t)v);
        return put(w, b, 5);
    }
    b[0] = 0x8a, b[1] = 8;
    graft_put_le64(b + 2, (uint64_t)v);
    return put(w, b, 10);
}

static int put_str(pw *w, const char *s, size_t n)
{
    uint8_t b[5] = {'X'};
    if (n > UINT32_MAX) return graft_error(w->ctx, GRAFT_ELIMIT, "string too long to pickle");
    graft_put_le32(b + 1, (uint32_t)n);
    GRAFT_TRY(put(w, b, 5));
    return put(w, s, n);
}

static int put_global(pw *w, const char *module, const char *name)
{
    GRAFT_TRY(op(w, 'c'));
    GRAFT_TRY(put(w, module, strlen(module)));
    GRAFT_TRY(op(w, '\n'));
    GRAFT_TRY(put(w, name, strlen(name)));
    return op(w, '\n');
}

static int put_tuple_ints(pw *w, const int64_t *v, uint32_t n)
{
    if (n == 0) return op(w, ')');
    if (n > 3) GRAFT_TRY(op(w, '('));
    for (uint32_t i = 0; i < n; i++) GRAFT_TRY(put_int(w, v[i]));
    return op(w, n > 3 ? 't' : (uint8_t)(0x84 + n));
}

static int put_memo(pw *w)
{
    uint8_t b[5] = {'r'};
    graft_put_le32(b + 1, w->next_memo++);
    return put(w, b, 5);
}

static const char *shared_key(const void *owner, size_t i, size_t *len)
{
    *len = sizeof(const graft_pk *);
    return (const char *)&((const graft_pk *const *)owner)[i];
}

/* GET of v when it was pickled before; 1 if so, 0 if not, < 0 on error. */
static int get_shared(pw *w, const graft_pk *v)
{
    uint8_t b[5] = {'j'};
    size_t at = graft_strmap_find(&w->shared_map, (const char *)&v, sizeof v);
    if (at == GRAFT_STRMAP_NONE) return 0;
    graft_put_le32(b + 1, w->shared_memo[at]);
    GRAFT_TRY(put(w, b, 5));
    return 1;
}

/* PUT of v, just made on the stack, so later uses (and cycles) GET it. */
static int put_shared(pw *w, const graft_pk *v)
{
    if (w->nshared == w->shared_cap) {
        size_t cap = w->shared_cap ? w->shared_cap * 2 : 64;
        const graft_pk **ns = graft_realloc(w->ctx, w->shared, cap * sizeof *ns);
        uint32_t *nm;
        if (!ns) return graft_error_oom(w->ctx, "the writer's memo");
        w->shared = ns;
        w->shared_map.owner = ns;  /* keys are read from the moved array */
        nm = graft_realloc(w->ctx, w->shared_memo, cap * sizeof *nm);
        if (!nm) return graft_error_oom(w->ctx, "the writer's memo");
        w->shared_memo = nm;
        w->shared_cap = cap;
    }
    GRAFT_TRY(graft_strmap_reserve(&w->shared_map, w->nshared + 1, w->ctx));
    w->shared[w->nshared] = v;
    w->shared_memo[w->nshared] = w->next_memo;
    (void)graft_strmap_put(&w->shared_map, w->nshared++);
    return put_memo(w);
}

/* bytes under protocol 2: _codecs.encode(<latin-1 text>, 'latin1'). */
static int put_bytes(pw *w, const uint8_t *s, size_t n)
{
    uint8_t *u;
    size_t k = 0;
    int rc;
    if (n > SIZE_MAX / 2) return graft_error_oom(w->ctx, "bytes");
    u = graft_malloc(w->ctx, 2 * n + 1);
    if (!u) return graft_error_oom(w->ctx, "bytes");
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x80) {
            u[k++] = s[i];
        } else {
            u[k++] = (uint8_t)(0xc0 | s[i] >> 6);
            u[k++] = (uint8_t)(0x80 | (s[i] & 0x3f));
        }
    }
    rc = put_global(w, "_codecs", "encode");
    if (rc == 0) rc = put_str(w, (const char *)u, k);
    if (rc == 0) rc = put_str(w, "latin1", 6);
    if (rc == 0) rc = op(w, 0x86);
    if (rc == 0) rc = op(w, 'R');
    free(u);
    return rc;
}

static int value(pw *w, const graft_pk *v, int depth);

static int items(pw *w, graft_pk *const *v, size_t n, int depth)
{
    for (size_t i = 0; i < n; i++) GRAFT_TRY(value(w, v[i], depth + 1));
    return GRAFT_OK;
}

static const struct { graft_dtype dt; const char *cls; } classes[] = {
    {GRAFT_FLOAT64, "DoubleStorage"}, {GRAFT_FLOAT32, "FloatStorage"},
    {GRAFT_FLOAT16, "HalfStorage"},   {GRAFT_BFLOAT16, "BFloat16Storage"},
    {GRAFT_INT64, "LongStorage"},     {GRAFT_INT32, "IntStorage"},
    {GRAFT_INT16, "ShortStorage"},    {GRAFT_INT8, "CharStorage"},
    {GRAFT_UINT8, "ByteStorage"},     {GRAFT_BOOL, "BoolStorage"},
    {GRAFT_COMPLEX64, "ComplexFloatStorage"}, {GRAFT_COMPLEX128, "ComplexDoubleStorage"},
};

/* dtypes without a legacy storage class go through _rebuild_tensor_v3. */
static const char *v3_dtype(graft_dtype dt)
{
    return dt == GRAFT_UINT16 ? "uint16" : dt == GRAFT_UINT32 ? "uint32"
         : dt == GRAFT_UINT64 ? "uint64" : dt == GRAFT_FLOAT8_E4M3FN ? "float8_e4m3fn"
         : dt == GRAFT_FLOAT8_E5M2 ? "float8_e5m2" : NULL;
}

static const char *rebuild_func(const graft_torch_ref *ref)
{
    return v3_dtype(ref->dtype) ? "_rebuild_tensor_v3" : "_rebuild_tensor_v2";
}

/* The argument tuple of a fresh contiguous rebuild call for ref r, with
 * the next storage key. */
static int rebuild_args(pw *w, size_t r)
{
    const graft_torch_ref *ref = &w->st->refs.v[r];
    const graft_tensor *t = &w->st->tensors[r];
    const char *cls = NULL, *v3 = v3_dtype(ref->dtype);
    int64_t stride[GRAFT_MAX_NDIM], acc = 1;
    char key[32];

    for (size_t i = 0; i < sizeof classes / sizeof *classes; i++)
        if (classes[i].dt == ref->dtype) cls = classes[i].cls;
    if (!cls && !v3)
        return graft_error(w->ctx, GRAFT_EFORMAT, "tensor '%s': dtype %s cannot be written",
                           ref->name, graft_dtype_name(ref->dtype));
    for (uint32_t i = t->ndim; i-- > 0;) {
        stride[i] = acc;
        acc *= t->shape[i] ? t->shape[i] : 1;
    }
    snprintf(key, sizeof key, "%zu", w->nkeys);
    w->order[w->nkeys++] = r;

    GRAFT_TRY(op(w, '('));
    GRAFT_TRY(op(w, '('));
    GRAFT_TRY(put_str(w, "storage", 7));
    GRAFT_TRY(v3 ? put_global(w, "torch", "UntypedStorage") : put_global(w, "torch", cls));
    GRAFT_TRY(put_str(w, key, strlen(key)));
    GRAFT_TRY(put_str(w, "cpu", 3));
    GRAFT_TRY(put_int(w, (int64_t)(v3 ? t->nbytes : t->numel)));
    GRAFT_TRY(op(w, 't'));
    GRAFT_TRY(op(w, 'Q'));
    GRAFT_TRY(put_int(w, 0));
    GRAFT_TRY(put_tuple_ints(w, t->shape, t->ndim));
    GRAFT_TRY(put_tuple_ints(w, stride, t->ndim));
    GRAFT_TRY(op(w, ref->requires_grad ? 0x88 : 0x89));
    GRAFT_TRY(put_global(w, "collections", "OrderedDict"));
    GRAFT_TRY(op(w, ')'));
    GRAFT_TRY(op(w, 'R'));
    if (v3) GRAFT_TRY(put_global(w, "torch", v3));
    return op(w, 't');
}

static int plain_tensor(pw *w, size_t r)
{
    GRAFT_TRY(put_global(w, "torch._utils", rebuild_func(&w->st->refs.v[r])));
    GRAFT_TRY(rebuild_args(w, r));
    return op(w, 'R');
}

/* A tensor-valued node: its wrapper (Parameter, subclass) around a new rebuild. */
static int tensor(pw *w, const graft_pk *v, int depth)
{
    size_t r = v->tid - 1;
    int gid = v->callable->gid;
    if (w->memo[r]) {
        uint8_t b[5] = {'j'};
        graft_put_le32(b + 1, w->memo[r] - 1);
        return put(w, b, 5);
    }
    if (gid == PKG_REBUILD_PARAMETER || gid == PKG_REBUILD_PARAMETER_STATE) {
        /* _rebuild_parameter[_with_state](data, requires_grad, hooks[, state]) */
        GRAFT_TRY(put_global(w, v->callable->s, v->callable->name));
        GRAFT_TRY(op(w, '('));
        GRAFT_TRY(plain_tensor(w, r));
        GRAFT_TRY(op(w, w->st->refs.v[r].requires_grad ? 0x88 : 0x89));
        GRAFT_TRY(put_global(w, "collections", "OrderedDict"));
        GRAFT_TRY(op(w, ')'));
        GRAFT_TRY(op(w, 'R'));
        if (gid == PKG_REBUILD_PARAMETER_STATE && v->args->len >= 4)
            GRAFT_TRY(value(w, v->args->v[3], depth + 1));
        GRAFT_TRY(op(w, 't'));
        GRAFT_TRY(op(w, 'R'));
    } else if (gid == PKG_REBUILD_FROM_TYPE_V2 && v->args->len == 4) {
        /* _rebuild_from_type_v2(func, type, args, state): keep type and state. */
        GRAFT_TRY(put_global(w, v->callable->s, v->callable->name));
        GRAFT_TRY(op(w, '('));
        GRAFT_TRY(put_global(w, "torch._utils", rebuild_func(&w->st->refs.v[r])));
        GRAFT_TRY(value(w, v->args->v[1], depth + 1));
        GRAFT_TRY(rebuild_args(w, r));
        GRAFT_TRY(value(w, v->args->v[3], depth + 1));
        GRAFT_TRY(op(w, 't'));
        GRAFT_TRY(op(w, 'R'));
    } else {
        GRAFT_TRY(plain_tensor(w, r));
    }
    w->memo[r] = w->next_memo + 1;
    return put_memo(w);
}

/* A storage of an unsupported tensor (quantized, sparse...): its persistent
 * id as it was, under the storage's new key; the bytes are copied as they
 * are (write_raw_storage). */
static int raw_persid(pw *w, const graft_pk *v, int depth)
{
    const graft_pk *a = v->args, *key = graft_pk_item(a, 2);
    graft_torch_refs *refs = (graft_torch_refs *)&w->st->refs;
    graft_torch_storage *s = NULL;
    char k[32];
    if (a && a->kind == PK_TUPLE && (a->len == 5 || a->len == 6) && key) {
        if (key->kind == PK_STR) s = graft_torch__find_storage(refs, key->s);
        if (key->kind == PK_INT) {
            snprintf(k, sizeof k, "%lld", (long long)key->i);
            s = graft_torch__find_storage(refs, k);
        }
    }
    if (!s)
        return graft_error(w->ctx, GRAFT_EFORMAT, "pickle offset 0x%llx: a storage outside a "
                           "tensor cannot be written", (unsigned long long)v->off);
    size_t si = (size_t)(s - refs->storages);
    if (w->raw_key[si] == SIZE_MAX) {
        w->raw_key[si] = w->nkeys;
        w->raw[w->nkeys] = si;
        w->order[w->nkeys++] = SIZE_MAX;
    }
    snprintf(k, sizeof k, "%zu", w->raw_key[si]);
    GRAFT_TRY(op(w, '('));
    GRAFT_TRY(value(w, a->v[0], depth + 1));
    GRAFT_TRY(value(w, a->v[1], depth + 1));
    GRAFT_TRY(put_str(w, k, strlen(k)));
    for (size_t i = 3; i < 5; i++) GRAFT_TRY(value(w, a->v[i], depth + 1)); /* legacy's 6th: None */
    GRAFT_TRY(op(w, 't'));
    return op(w, 'Q');
}

static int value(pw *w, const graft_pk *v, int depth)
{
    uint8_t b[9];
    if (++w->values > MAX_VALUES)
        return graft_error(w->ctx, GRAFT_ELIMIT, "more than %u values to pickle (shared "
                           "sub-trees are written once per use)", MAX_VALUES);
    if (depth > MAX_DEPTH)
        return graft_error(w->ctx, GRAFT_ELIMIT, "pickle offset 0x%llx: values nest deeper "
                           "than %d (or contain themselves)", (unsigned long long)v->off,
                           MAX_DEPTH);
    bool raw_tensor = v->kind == PK_OBJ && v->tid && w->st->refs.v[v->tid - 1].unsupported;
    if (v->kind == PK_DICT || v->kind == PK_LIST || v->kind == PK_SET ||
        (v->kind == PK_OBJ && (!v->tid || raw_tensor))) {
        int seen = get_shared(w, v);
        if (seen) return seen < 0 ? seen : GRAFT_OK;
    }
    switch (v->kind) {
    case PK_NONE: return op(w, 'N');
    case PK_BOOL: return op(w, v->i ? 0x88 : 0x89);
    case PK_INT: return put_int(w, v->i);
    case PK_BIGINT:
        if (v->n > 255) {
            b[0] = 0x8b;
            graft_put_le32(b + 1, (uint32_t)v->n);
            GRAFT_TRY(put(w, b, 5));
        } else {
            b[0] = 0x8a, b[1] = (uint8_t)v->n;
            GRAFT_TRY(put(w, b, 2));
        }
        return put(w, v->s, v->n);
    case PK_FLOAT: {
        uint64_t u;
        memcpy(&u, &v->f, 8);
        b[0] = 'G';
        for (int k = 0; k < 8; k++) b[1 + k] = (uint8_t)(u >> (56 - 8 * k));
        return put(w, b, 9);
    }
    case PK_STR: return put_str(w, v->s, v->n);
    case PK_BYTES: return put_bytes(w, (const uint8_t *)v->s, v->n);
    case PK_TUPLE:
        if (v->len == 0) return op(w, ')');
        if (v->len > 3) GRAFT_TRY(op(w, '('));
        GRAFT_TRY(items(w, v->v, v->len, depth));
        return op(w, v->len > 3 ? 't' : (uint8_t)(0x84 + v->len));
    case PK_LIST: case PK_SET:
        if (v->kind == PK_SET) GRAFT_TRY(put_global(w, "builtins", "set"));
        GRAFT_TRY(op(w, ']'));
        if (v->kind == PK_LIST) GRAFT_TRY(put_shared(w, v));
        if (v->len) {
            GRAFT_TRY(op(w, '('));
            GRAFT_TRY(items(w, v->v, v->len, depth));
            GRAFT_TRY(op(w, 'e'));
        }
        if (v->kind == PK_SET) {
            GRAFT_TRY(op(w, 0x85));
            GRAFT_TRY(op(w, 'R'));
            return put_shared(w, v);  /* a set cannot hold itself */
        }
        return GRAFT_OK;
    case PK_DICT:
        GRAFT_TRY(op(w, '}'));
        GRAFT_TRY(put_shared(w, v));
        if (v->len) {
            GRAFT_TRY(op(w, '('));
            GRAFT_TRY(items(w, v->v, v->len, depth));
            GRAFT_TRY(op(w, 'u'));
        }
        return GRAFT_OK;
    case PK_GLOBAL: return put_global(w, v->s, v->name);
    case PK_OBJ:
        if (v->tid && !raw_tensor) return tensor(w, v, depth);
        GRAFT_TRY(value(w, v->callable, depth + 1));
        GRAFT_TRY(value(w, v->args, depth + 1));
        GRAFT_TRY(op(w, v->op == 0x81 ? 0x81 : 'R'));
        GRAFT_TRY(put_shared(w, v));
        if (v->len) {
            GRAFT_TRY(op(w, '('));
            GRAFT_TRY(items(w, v->v, v->len, depth));
            GRAFT_TRY(op(w, 'u'));
        }
        if (v->state) {
            GRAFT_TRY(value(w, v->state, depth + 1));
            GRAFT_TRY(op(w, 'b'));
        }
        return GRAFT_OK;
    case PK_PERSID:
        return raw_persid(w, v, depth);
    default:
        return graft_error(w->ctx, GRAFT_EFORMAT, "pickle offset 0x%llx: a storage outside a "
                           "tensor cannot be written", (unsigned long long)v->off);
    }
}

/* Model index of each ref, SIZE_MAX when --select left it out. */
static int model_index(const graft_model *m, size_t nrefs, size_t **out, graft_ctx *ctx)
{
    size_t *idx = graft_malloc(ctx, (nrefs ? nrefs : 1) * sizeof *idx);
    if (!idx) return graft_error_oom(ctx, "the tensor map");
    for (size_t i = 0; i < nrefs; i++) idx[i] = SIZE_MAX;
    for (size_t i = 0; i < m->count; i++)
        if (m->tensors[i].aux < nrefs) idx[m->tensors[i].aux] = i;
    *out = idx;
    return GRAFT_OK;
}

static int write_storage(const graft_model *m, graft_zipw *zw, const char *stem, size_t key,
                         size_t r, size_t mi, const graft_torch_state *st, graft_fill *fill,
                         graft_ctx *ctx)
{
    const graft_tensor *t = &st->tensors[r];
    char name[1100];
    uint64_t before;
    snprintf(name, sizeof name, "%s/data/%zu", stem, key);
    GRAFT_TRY(graft_zipw_begin(zw, name, 64, GRAFT_ZIPW_STORED, t->nbytes));
    before = graft_sink_tell(graft_zipw_sink(zw));
    if (mi != SIZE_MAX) {
        GRAFT_TRY(fill->emit(fill, mi, graft_zipw_sink(zw), ctx)); /* size checked below */
    } else {
        const uint8_t *p;
        void *owned;
        GRAFT_TRY(graft_tensor_bytes(m, t, &p, &owned, ctx));
        int rc = graft_zipw_write(zw, p, (size_t)t->nbytes);
        free(owned);
        GRAFT_TRY(rc);
    }
    uint64_t wrote = graft_sink_tell(graft_zipw_sink(zw)) - before;
    if (wrote != t->nbytes)
        return graft_error(ctx, GRAFT_ERROR, "tensor '%s': %llu bytes written, %llu expected",
                           t->name, (unsigned long long)wrote, (unsigned long long)t->nbytes);
    return graft_zipw_end(zw);
}

/* A storage of an unsupported tensor, its bytes as the skeleton holds them. */
static int write_raw_storage(const graft_model *m, graft_zipw *zw, const char *stem,
                             size_t key, const graft_torch_storage *s,
                             const graft_torch_state *st, graft_ctx *ctx)
{
    const graft_source *src = m->sources[0];
    const uint8_t *p = NULL;
    uint8_t *buf = NULL;
    char name[1100];
    int rc;
    snprintf(name, sizeof name, "%s/data/%zu", stem, key);
    /* the output is little-endian, and graft cannot tell these elements apart */
    if (st->big_endian && graft_dtype_size(s->dtype) > 1)
        return graft_error(ctx, GRAFT_EFORMAT, "storage '%s' of a tensor graft cannot read is "
                           "big-endian and cannot be copied", s->key);
    if (s->entry && s->compressed) {
        if (!(buf = graft_malloc(ctx, s->size ? (size_t)s->size : 1)))
            return graft_error_oom(ctx, "a storage record");
        rc = graft_zip_extract(st->zip, s->entry, buf, s->size, ctx);
        p = buf;
    } else if (s->entry) {
        rc = graft_zip_borrow(st->zip, s->entry, src, &p, ctx);  /* checks its CRC-32 */
    } else if (s->data_off <= src->size && s->size <= src->size - s->data_off) {
        p = src->data + s->data_off;
        rc = GRAFT_OK;
    } else {
        rc = graft_error(ctx, GRAFT_ECORRUPT, "storage '%s' lies outside the file", s->key);
    }
    if (rc == 0) rc = graft_zipw_add(zw, name, p, (size_t)s->size, 64, GRAFT_ZIPW_STORED);
    free(buf);
    return rc;
}

/* The archive folder: the output's base name without its extension. */
static void stem_of(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/'), *dot;
    size_t n;
    base = base ? base + 1 : path;
    dot = strrchr(base, '.');
    n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (n == 0 || n >= cap || memchr(base, '\\', n)) {
        snprintf(out, cap, "archive");
        return;
    }
    memcpy(out, base, n);
    out[n] = '\0';
}

int graft_torch__write(const graft_model *m, const char *out_path, graft_fill *fill,
                       graft_ctx *ctx)
{
    const graft_torch_state *st = m->state;
    pw w = {.ctx = ctx, .st = st};
    graft_sink *sink = NULL;
    graft_zipw *zw = NULL;
    size_t *midx = NULL, n = st ? st->refs.n : 0;
    char stem[256], name[300];
    int rc;

    if (!st || !st->root)
        return graft_error(ctx, GRAFT_EFORMAT, "the skeleton was not read by a PyTorch reader");
    graft_strmap_init(&w.shared_map, shared_key, NULL);
    size_t ns = st->refs.nstorages, nk = n + ns;
    w.memo = graft_calloc(ctx, n ? n : 1, sizeof *w.memo);
    w.order = graft_calloc(ctx, nk ? nk : 1, sizeof *w.order);
    w.raw = graft_malloc(ctx, (nk ? nk : 1) * sizeof *w.raw);
    w.raw_key = graft_malloc(ctx, (ns ? ns : 1) * sizeof *w.raw_key);
    if (!w.memo || !w.order || !w.raw || !w.raw_key) {
        rc = graft_error_oom(ctx, "the writer");
        goto cleanup;
    }
    for (size_t i = 0; i < nk; i++) w.raw[i] = SIZE_MAX;
    for (size_t i = 0; i < ns; i++) w.raw_key[i] = SIZE_MAX;
    rc = op(&w, 0x80);
    if (rc == 0) rc = op(&w, 2);
    if (rc == 0) rc = value(&w, st->root, 0);
    if (rc == 0) rc = op(&w, '.');
    if (rc < 0) goto cleanup;
    rc = model_index(m, n, &midx, ctx);
    if (rc < 0) goto cleanup;

    stem_of(out_path, stem, sizeof stem);
    rc = graft_sink_open(&sink, out_path, ctx);
    if (rc < 0) goto cleanup;
    rc = graft_zipw_new(&zw, sink, true, ctx);
    if (rc < 0) goto cleanup;
    snprintf(name, sizeof name, "%s/data.pkl", stem);
    rc = graft_zipw_add(zw, name, w.buf, w.len, 64, GRAFT_ZIPW_STORED);
    if (rc < 0) goto cleanup;
    snprintf(name, sizeof name, "%s/byteorder", stem);
    rc = graft_zipw_add(zw, name, "little", 6, 64, GRAFT_ZIPW_STORED);
    if (rc < 0) goto cleanup;
    for (size_t k = 0; k < w.nkeys; k++) {
        rc = w.raw[k] != SIZE_MAX
                 ? write_raw_storage(m, zw, stem, k, &st->refs.storages[w.raw[k]], st, ctx)
                 : write_storage(m, zw, stem, k, w.order[k], midx[w.order[k]], st, fill, ctx);
        if (rc < 0) goto cleanup;
    }
    snprintf(name, sizeof name, "%s/version", stem);
    rc = graft_zipw_add(zw, name, "3\n", 2, 64, GRAFT_ZIPW_STORED);
    if (rc == 0) rc = graft_zipw_finish(zw);
    if (rc < 0) goto cleanup;
    graft_zipw_free(zw);
    zw = NULL;
    rc = graft_sink_commit(sink);
    sink = NULL;
cleanup:
    graft_zipw_free(zw);
    graft_sink_abort(sink);
    free(midx);
    free(w.buf);
    free(w.memo);
    free(w.order);
    free(w.raw);
    free(w.raw_key);
    free(w.shared);
    free(w.shared_memo);
    graft_strmap_free(&w.shared_map);
    return rc;
}
