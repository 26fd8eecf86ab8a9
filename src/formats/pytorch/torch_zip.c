/*
 * torch_zip.c - PyTorch torch.save zip archives (format "pytorch-zip", the
 * default since PyTorch 1.6; /work/shared/specs/pytorch-zip.md section 2).
 *
 * Layout (a zip archive, all records under one folder <p>/, any name):
 *  1. <p>/data.pkl         pickle (protocol 2) of the saved object; tensors
 *                          are _rebuild_tensor_v2 calls whose persistent ids
 *                          name storages ('storage', FloatStorage, key, loc, numel)
 *  2. <p>/byteorder        optional, "little" or "big" (PyTorch >= 2.1)
 *  3. <p>/data/<key>       raw elements of one storage, numel * element size bytes,
 *                          usually stored and 64-byte aligned
 *  4. <p>/version          decimal file format version + "\n" (or <p>/.data/version), 1..10
 *  5. optional .format_version, .storage_alignment, .data/serialization_id
 * Tensors are views into storages (offset, size, stride in elements), so
 * several tensors may share one record; stored records are used in place.
 *
 * TorchScript archives (torch.jit.save: constants.pkl, code/) are refused:
 * their data.pkl holds script-module objects rather than a state dict.
 */
#include "format.h"
#include "pickle.h"
#include "rd.h"
#include "torch_walk.h"
#include "zip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VERSION 10 /* kMaxSupportedFileFormatVersion of PyTorch 1.13 */

static bool has_suffix(const uint8_t *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Walk the central directory (no allocation, bounded) for "<p>/data.pkl". */
static bool directory_has_pickle(const uint8_t *d, size_t n)
{
    size_t lowest = n > 22 + 65535 ? n - 22 - 65535 : 0, end = SIZE_MAX;
    uint64_t off, size, count;
    for (size_t i = n - 22 + 1; i-- > lowest;)
        if (graft_le32(d + i) == 0x06054b50u) {
            end = i;
            break;
        }
    if (end == SIZE_MAX) return false;
    count = graft_le16(d + end + 10);
    size = graft_le32(d + end + 12);
    off = graft_le32(d + end + 16);
    if (end >= 20 && graft_le32(d + end - 20) == 0x07064b50u) { /* zip64 locator */
        uint64_t z = graft_le64(d + end - 12);
        if (z > n || n - z < 56 || graft_le32(d + z) != 0x06064b50u) return false;
        count = graft_le64(d + z + 32);
        size = graft_le64(d + z + 40);
        off = graft_le64(d + z + 48);
    }
    if (off > n || size > n - off) return false;
    for (uint64_t i = 0, pos = off; i < count && i < (1u << 16); i++) {
        size_t nlen, xlen, clen;
        if (pos + 46 > off + size || graft_le32(d + pos) != 0x02014b50u) return false;
        nlen = graft_le16(d + pos + 28);
        xlen = graft_le16(d + pos + 30);
        clen = graft_le16(d + pos + 32);
        if (pos + 46 + nlen > off + size) return false;
        if (has_suffix(d + pos + 46, nlen, "/data.pkl")) return true;
        pos += 46 + nlen + xlen + clen;
    }
    return false;
}

static bool probe(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    (void)path;
    if (is_dir || n < 30 || memcmp(head, "PK\3\4", 4) != 0) return false;
    /* torch.save writes data.pkl first; other writers may not. */
    size_t nlen = graft_le16(head + 26);
    if (30 + nlen <= n && has_suffix(head + 30, nlen, "/data.pkl")) return true;
    return directory_has_pickle(head, n);
}

/* The text of a small record, NUL-terminated into buf. */
static int small_record(const graft_zip *z, const graft_zip_entry *e, char *buf, size_t cap,
                        graft_ctx *ctx)
{
    if (e->usize >= cap)
        return graft_error(ctx, GRAFT_ECORRUPT, "record '%s' of %llu bytes is too long", e->name,
                           (unsigned long long)e->usize);
    GRAFT_TRY(graft_zip_extract(z, e, (uint8_t *)buf, e->usize, ctx));
    buf[e->usize] = '\0';
    return GRAFT_OK;
}

static const graft_zip_entry *find(const graft_zip *z, const char *prefix, const char *rec,
                                   char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", prefix, rec);
    return graft_zip_find(z, buf);
}

static int check_records(const graft_zip *z, const char *prefix, bool *big, graft_ctx *ctx)
{
    char name[1100], text[64];
    const graft_zip_entry *e;
    size_t plen = strlen(prefix);

    for (size_t i = 0; i < z->count; i++) {
        const char *rec = z->entries[i].name + plen + 1;
        if (strncmp(z->entries[i].name, prefix, plen) != 0 || z->entries[i].name[plen] != '/')
            return graft_error(ctx, GRAFT_ECORRUPT, "zip entry '%s' lies outside the archive "
                               "folder '%s/'", z->entries[i].name, prefix);
        if (!strcmp(rec, "constants.pkl") || !strcmp(rec, "bytecode.pkl") ||
            !strncmp(rec, "code/", 5))
            return graft_error(ctx, GRAFT_EFORMAT, "a TorchScript archive (torch.jit.save) is "
                               "not supported; save the model's state_dict() with torch.save");
    }
    e = find(z, prefix, ".data/version", name, sizeof name);
    if (!e) e = find(z, prefix, "version", name, sizeof name);
    if (!e)
        return graft_error(ctx, GRAFT_ECORRUPT, "no '%s/version' record", prefix);
    GRAFT_TRY(small_record(z, e, text, sizeof text, ctx));
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || (*end && strcmp(end, "\n") != 0) || v < 1)
        return graft_error(ctx, GRAFT_ECORRUPT, "record '%s': '%s' is not a version number",
                           e->name, text);
    if (v > MAX_VERSION)
        return graft_error(ctx, GRAFT_EFORMAT, "record '%s': file format version %ld is newer "
                           "than the %d graft reads", e->name, v, MAX_VERSION);
    *big = false;
    e = find(z, prefix, "byteorder", name, sizeof name);
    if (e) {
        GRAFT_TRY(small_record(z, e, text, sizeof text, ctx));
        if (strcmp(text, "big") == 0)
            *big = true;
        else if (strcmp(text, "little") != 0)
            return graft_error(ctx, GRAFT_ECORRUPT, "record '%s': byte order '%.20s' is neither "
                               "'little' nor 'big'", e->name, text);
    }
    return GRAFT_OK;
}

/* Elements of a tensor over a compressed record: inflate the record, gather. */
static int load_compressed(const graft_model *m, const graft_tensor *t, uint8_t *dst,
                           graft_ctx *ctx)
{
    const graft_torch_state *st = t->aux_ptr;
    const graft_torch_storage *s = &st->refs.storages[st->refs.v[t->aux].storage];
    graft_source tmp = {.path = "(record)"};
    graft_tensor view = *t;
    const uint8_t *p;
    void *owned = NULL;
    uint8_t *buf = graft_malloc(ctx, s->size ? (size_t)s->size : 1);
    int rc;

    if (!buf) return graft_error_oom(ctx, "a storage record");
    rc = graft_zip_extract(st->zip, s->entry, buf, s->size, ctx);
    if (rc < 0) goto cleanup;
    tmp.data = buf;
    tmp.size = (size_t)s->size;
    view.load = NULL;
    view.src = &tmp;
    rc = graft_tensor_bytes(m, &view, &p, &owned, ctx);
    if (rc < 0) goto cleanup;
    memcpy(dst, p, (size_t)t->nbytes);
cleanup:
    free(owned);
    free(buf);
    return rc;
}

/* A contiguous little-endian tensor over a compressed record, inflated
 * piece by piece (hashing keeps memory flat); others through load. */
static int stream_compressed(const graft_model *m, const graft_tensor *t, graft_piece_fn fn,
                             void *arg, graft_ctx *ctx)
{
    const graft_torch_state *st = t->aux_ptr;
    const graft_torch_storage *s = &st->refs.storages[st->refs.v[t->aux].storage];
    uint8_t *buf;
    int rc;
    if (!t->strides && !t->big_endian)
        return graft_zip_stream(st->zip, s->entry, t->offset, t->nbytes, fn, arg, ctx);
    if (!(buf = graft_malloc(ctx, t->nbytes ? (size_t)t->nbytes : 1)))
        return graft_error_oom(ctx, "a tensor");
    rc = load_compressed(m, t, buf, ctx);
    if (rc == 0) rc = fn(arg, buf, (size_t)t->nbytes);
    free(buf);
    return rc;
}

/* A stored record, its CRC-32 checked when a tensor over it is first read
 * (graft_model.defer_checks): a record only replaced or ignored is never
 * read.  Tensors sharing a storage check it once. */
static int check_stored(const graft_model *m, const graft_tensor *t, graft_ctx *ctx)
{
    graft_torch_state *st = m->state;
    graft_torch_storage *s = &st->refs.storages[st->refs.v[t->aux].storage];
    const uint8_t *p;
    if (s->checked) return GRAFT_OK;
    if (graft_zip_borrow(st->zip, s->entry, m->sources[0], &p, ctx) < 0)
        return graft_error_prefix(ctx, "tensor '%s'", t->name);
    s->checked = true;
    return GRAFT_OK;
}

static int open_zip(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    const graft_source *src = m->sources[0];
    graft_torch_state *st = NULL;
    const graft_zip_entry *pkl;
    const uint8_t *pdata;
    graft_pk *foreign = NULL;
    char *prefix = NULL, name[1100];
    bool big = false;
    int rc;

    (void)opts;
    GRAFT_TRY(graft_torch__state_new(&st, ctx));
    m->state = st;
    m->state_free = graft_torch__state_free;
    GRAFT_TRY(graft_zip_open(&st->zip, src->data, src->size, ctx));
    GRAFT_TRY(graft_zip_check_copyable(st->zip, ctx)); /* "base/../../x", as .keras */
    if (st->zip->count == 0) return graft_error(ctx, GRAFT_ECORRUPT, "zip archive is empty");
    const char *first = st->zip->entries[0].name, *slash = strchr(first, '/');
    if (!slash)
        return graft_error(ctx, GRAFT_ECORRUPT, "zip entry '%s' is not in a folder", first);
    if ((size_t)(slash - first) > 1000)
        return graft_error(ctx, GRAFT_ELIMIT, "archive folder name is too long");
    prefix = graft_arena_strndup(&st->arena, first, (size_t)(slash - first));
    if (!prefix) return graft_error_oom(ctx, "a folder name");
    GRAFT_TRY(check_records(st->zip, prefix, &big, ctx));
    pkl = find(st->zip, prefix, "data.pkl", name, sizeof name);
    if (!pkl) return graft_error(ctx, GRAFT_ECORRUPT, "no '%s/data.pkl' record", prefix);
    if (pkl->method == 0) {
        GRAFT_TRY(graft_zip_borrow(st->zip, pkl, src, &pdata, ctx));
    } else {
        if (pkl->usize > (256u << 20))
            return graft_error(ctx, GRAFT_ELIMIT, "record '%s' of %llu bytes exceeds the cap "
                               "of 256 MiB", pkl->name, (unsigned long long)pkl->usize);
        st->pkl = graft_malloc(ctx, pkl->usize ? (size_t)pkl->usize : 1);
        if (!st->pkl) return graft_error_oom(ctx, "data.pkl");
        GRAFT_TRY(graft_zip_extract(st->zip, pkl, st->pkl, pkl->usize, ctx));
        pdata = st->pkl;
    }
    rc = graft_pickle__load_lenient(&st->root, &foreign, NULL, &st->arena, pdata,
                                    (size_t)pkl->usize, pkl->method == 0 ? pkl->data_offset : 0,
                                    ctx);
    if (rc < 0) return graft_error_prefix(ctx, "%s", pkl->name);
    GRAFT_TRY(graft_torch__collect(&st->refs, st->root, foreign, &st->arena, ctx));
    /* One pass over the records: data/<key> names its storage. */
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < st->zip->count; i++) {
        const graft_zip_entry *e = &st->zip->entries[i];
        graft_torch_storage *s;
        if (strncmp(e->name + plen, "/data/", 6) != 0) continue;
        s = graft_torch__find_storage(&st->refs, e->name + plen + 6);
        if (!s || s->entry) continue;
        /* a skeleton's records are checked when read (check_stored) */
        if (e->method == 0 && !m->defer_checks)
            GRAFT_TRY(graft_zip_borrow(st->zip, e, src, &pdata, ctx));
        s->size = e->usize;
        s->data_off = e->data_offset;
        s->entry = e;
        s->compressed = e->method != 0;
    }
    for (size_t i = 0; i < st->refs.nstorages; i++)
        if (!st->refs.storages[i].entry)
            return graft_error(ctx, GRAFT_ECORRUPT, "storage record '%s/data/%s' is missing",
                               prefix, st->refs.storages[i].key);
    st->big_endian = big;
    GRAFT_TRY(graft_torch__add_all(m, &st->refs, big, load_compressed, st, ctx));
    for (size_t i = 0; i < m->count; i++) {
        graft_tensor *t = &m->tensors[i];
        if (t->unsupported) continue; /* no data read (its storages are copied raw) */
        if (t->load == load_compressed) t->stream = stream_compressed;
        else if (m->defer_checks) t->check = check_stored;
    }
    return graft_torch__snapshot(m, st, ctx);
}

const graft_format graft_format_pytorch_zip = {
    .name = "pytorch-zip",
    .probe = probe,
    .open = open_zip,
    .write = graft_torch__write,
    .extras = graft_torch__extras,
};
