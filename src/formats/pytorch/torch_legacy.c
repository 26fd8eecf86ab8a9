/*
 * torch_legacy.c - PyTorch's legacy torch.save stream (format
 * "pytorch-legacy": _use_new_zipfile_serialization=False, and every file
 * before PyTorch 1.6; /work/shared/specs/pytorch-zip.md section 3).
 *
 * Layout: five pickles (protocol 2) back to back, then raw storages:
 *  1. the magic number 0x1950a86a20f9469cfc6c (LONG1 of 10 bytes)
 *  2. the protocol version 1001
 *  3. sys_info {'protocol_version', 'little_endian': bool, 'type_sizes': {...}}
 *  4. the saved object; persistent ids are ('storage', StorageClass, key,
 *     location, numel, view_metadata=None)
 *  5. the list of storage keys, sorted as strings
 *  6. per key in that order: int64 numel (writer's byte order), then
 *     numel * element size bytes of elements
 * Tensors are views (offset, size, stride in elements) into these storages.
 */
#include "format.h"
#include "pickle.h"
#include "rd.h"
#include "torch_walk.h"

#include <string.h>

static const uint8_t magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

static bool probe(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    (void)path;
    return !is_dir && n >= sizeof magic && memcmp(head, magic, sizeof magic) == 0;
}

/* The next pickle of the stream, at *pos. */
static int next_pickle(graft_torch_state *st, const graft_source *src, size_t *pos,
                       graft_pk **out, graft_pk **foreign, const char *what, graft_ctx *ctx)
{
    size_t used;
    int rc = foreign ? graft_pickle__load_lenient(out, foreign, &used, &st->arena,
                                                  src->data + *pos, src->size - *pos, *pos, ctx)
                     : graft_pickle__load(out, &used, &st->arena, src->data + *pos,
                                          src->size - *pos, *pos, ctx);
    if (rc < 0) return graft_error_prefix(ctx, "%s", what);
    *pos += used;
    return GRAFT_OK;
}

static const graft_pk *dict_get(const graft_pk *d, const char *key)
{
    if (d->kind != PK_DICT) return NULL;
    for (size_t i = 0; i + 1 < d->len; i += 2)
        if (d->v[i]->kind == PK_STR && strcmp(d->v[i]->s, key) == 0) return d->v[i + 1];
    return NULL;
}

static int read_header(graft_torch_state *st, const graft_source *src, size_t *pos, bool *big,
                       graft_ctx *ctx)
{
    graft_pk *v;
    const graft_pk *le;
    GRAFT_TRY(next_pickle(st, src, pos, &v, NULL, "magic number", ctx));
    if (v->kind != PK_BIGINT || v->n != 10 || memcmp(v->s, magic + 4, 10) != 0)
        return graft_error(ctx, GRAFT_ECORRUPT, "offset 0x0: bad magic number");
    GRAFT_TRY(next_pickle(st, src, pos, &v, NULL, "protocol version", ctx));
    if (v->kind != PK_INT || v->i != 1001)
        return graft_error(ctx, GRAFT_EFORMAT, "protocol version %lld is not 1001",
                           v->kind == PK_INT ? (long long)v->i : -1LL);
    GRAFT_TRY(next_pickle(st, src, pos, &v, NULL, "sys_info", ctx));
    le = dict_get(v, "little_endian");
    if (!le || le->kind != PK_BOOL)
        return graft_error(ctx, GRAFT_ECORRUPT, "sys_info has no 'little_endian' flag");
    *big = !le->i;
    return GRAFT_OK;
}

static int read_storages(graft_torch_state *st, const graft_source *src, size_t pos, bool big,
                         const graft_pk *keys, graft_ctx *ctx)
{
    graft_rd r;
    if (keys->kind != PK_LIST)
        return graft_error(ctx, GRAFT_ECORRUPT, "storage key list is a %s, not a list",
                           graft_pickle__kind_name(keys->kind));
    graft_rd_init(&r, src->data + pos, src->size - pos, pos, ctx);
    for (size_t i = 0; i < keys->len; i++) {
        const graft_pk *k = keys->v[i];
        graft_torch_storage *s;
        uint64_t numel, nbytes;
        if (k->kind != PK_STR)
            return graft_error(ctx, GRAFT_ECORRUPT, "storage key %zu is not a string", i);
        s = graft_torch__find_storage(&st->refs, k->s);
        if (!s)
            return graft_error(ctx, GRAFT_ECORRUPT, "storage '%s' is listed but no tensor uses it",
                               k->s);
        if (s->size)
            return graft_error(ctx, GRAFT_ECORRUPT, "storage '%s' is listed twice", k->s);
        GRAFT_TRY(big ? graft_rd_u64be(&r, &numel) : graft_rd_u64le(&r, &numel));
        if (numel != s->numel ||
            graft_mul_overflow(numel, graft_dtype_size(s->dtype), &nbytes))
            return graft_rd_fail(&r, "storage '%s' holds %llu elements but its persistent id "
                                 "says %llu", k->s, (unsigned long long)numel,
                                 (unsigned long long)s->numel);
        s->data_off = graft_rd_offset(&r);
        if (nbytes > graft_rd_left(&r))
            return graft_rd_fail(&r, "storage '%s' of %llu bytes runs past the end of the file "
                                 "(%zu bytes left)", k->s, (unsigned long long)nbytes,
                                 graft_rd_left(&r));
        GRAFT_TRY(graft_rd_skip(&r, (size_t)nbytes));
        s->size = nbytes;
    }
    for (size_t i = 0; i < st->refs.nstorages; i++)
        if (st->refs.storages[i].size != st->refs.storages[i].nbytes)
            return graft_error(ctx, GRAFT_ECORRUPT, "storage '%s' is not in the key list",
                               st->refs.storages[i].key);
    return GRAFT_OK;
}

static int open_legacy(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    const graft_source *src = m->sources[0];
    graft_torch_state *st = NULL;
    graft_pk *keys, *foreign;
    size_t pos = 0;
    bool big = false;

    (void)opts;
    GRAFT_TRY(graft_torch__state_new(&st, ctx));
    m->state = st;
    m->state_free = graft_torch__state_free;
    GRAFT_TRY(read_header(st, src, &pos, &big, ctx));
    GRAFT_TRY(next_pickle(st, src, &pos, &st->root, &foreign, "object pickle", ctx));
    GRAFT_TRY(graft_torch__collect(&st->refs, st->root, foreign, &st->arena, ctx));
    GRAFT_TRY(next_pickle(st, src, &pos, &keys, NULL, "storage key list", ctx));
    GRAFT_TRY(read_storages(st, src, pos, big, keys, ctx));
    st->big_endian = big;
    GRAFT_TRY(graft_torch__add_all(m, &st->refs, big, NULL, NULL, ctx));
    return graft_torch__snapshot(m, st, ctx);
}

const graft_format graft_format_pytorch_legacy = {
    .name = "pytorch-legacy",
    .probe = probe,
    .open = open_legacy,
    .write = graft_torch__write,
    .extras = graft_torch__extras,
};
