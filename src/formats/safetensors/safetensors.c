/*
 * safetensors.c - Hugging Face safetensors files, single and sharded.
 *
 * Layout (huggingface/safetensors README and safetensors/src/tensor.rs):
 *  1. u64 LE  N: header length, at most 100,000,000;
 *  2. N bytes: UTF-8 JSON object, padded with spaces.  Keys are tensor names
 *     mapping to {"dtype": "F32", "shape": [2, 3], "data_offsets": [B, E]};
 *     the optional key "__metadata__" maps to an object of string -> string;
 *  3. the byte buffer: tensors little-endian row-major, [B, E) relative to
 *     8 + N.  Sorted by B the tensors tile the buffer from 0 to its very end
 *     with no gap or overlap, and E - B = numel * dtype size.
 *
 * A sharded set is opened through its index, "<x>.safetensors.index.json":
 * {"metadata": {...}, "weight_map": {"tensor": "shard file name", ...}}, each
 * shard a file in the index's folder.  Every tensor named in the weight map
 * must be in its shard and every shard tensor must be in the weight map.
 * Opening one shard file directly reads just that shard.
 *
 * The writer copies the skeleton: same tensor order, names, dtypes,
 * shapes and __metadata__, offsets tiling the buffer in the skeleton's
 * layout order, header written compact as the reference writer does and
 * padded with spaces to a multiple of 8.  For a sharded skeleton the output
 * path names the index; each shard is written beside it under its skeleton
 * file name, then the index.
 */
#include "format.h"
#include "json.h"
#include "rd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_MAX 100000000u  /* reference reader's cap */

typedef struct st_state {
    const graft_json *metadata;     /* "__metadata__" (single file) or the index's
                                       "metadata" (sharded), or NULL; model arena */
    bool sharded;
    size_t nshards;                 /* sharded: shards in order of first mention */
    const graft_source **shards;    /* model arena; sources owned by the model */
    const graft_json **shard_md;    /* each shard's "__metadata__" or NULL; arena */
} st_state;

static const struct {
    const char *name;
    graft_dtype dtype;
} dtypes[] = {
    {"BOOL", GRAFT_BOOL},     {"U8", GRAFT_UINT8},     {"I8", GRAFT_INT8},
    {"I16", GRAFT_INT16},     {"U16", GRAFT_UINT16},   {"F16", GRAFT_FLOAT16},
    {"BF16", GRAFT_BFLOAT16}, {"I32", GRAFT_INT32},    {"U32", GRAFT_UINT32},
    {"F32", GRAFT_FLOAT32},   {"F64", GRAFT_FLOAT64},  {"I64", GRAFT_INT64},
    {"U64", GRAFT_UINT64},    {"C64", GRAFT_COMPLEX64},
    /* safetensors' F8_E4M3 is the "fn" variant (no Inf), as torch.float8_e4m3fn */
    {"F8_E4M3", GRAFT_FLOAT8_E4M3FN}, {"F8_E5M2", GRAFT_FLOAT8_E5M2},
};

/* Known to the reference implementation but without a graft dtype. */
static const char *const refused[] = {
    "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F4", "F6_E2M3", "F6_E3M2",
};

static const char *dtype_string(graft_dtype dt)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (dtypes[i].dtype == dt) return dtypes[i].name;
    return NULL;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool st_probe(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    if (is_dir) return false;
    if (has_suffix(path, ".safetensors") || has_suffix(path, ".safetensors.index.json"))
        return true;
    /* u64 header length, then '{' and a key or '}' */
    return n >= 10 && graft_le64(head) >= 2 && graft_le64(head) <= HEADER_MAX &&
           head[8] == '{' && (head[9] == '"' || head[9] == '}' || head[9] == ' ');
}

typedef struct span {
    uint64_t begin, end;
    size_t tensor;        /* index in the model */
} span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int get_u64(const graft_json *v, uint64_t *out)
{
    if (!v || v->type != GRAFT_JSON_INT || v->i < 0) return -1;
    *out = (uint64_t)v->i;
    return 0;
}

static int check_metadata(const graft_json *md, graft_ctx *ctx)
{
    if (md->type != GRAFT_JSON_OBJECT)
        return graft_error(ctx, GRAFT_ECORRUPT, "offset 0x%llx: __metadata__ is %s, not an object",
                           (unsigned long long)md->offset, graft_json_type_name(md->type));
    for (size_t i = 0; i < md->count; i++)
        if (md->items[i].type != GRAFT_JSON_STRING)
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "offset 0x%llx: __metadata__ '%s' is %s, not a string",
                               (unsigned long long)md->items[i].offset, md->keys[i],
                               graft_json_type_name(md->items[i].type));
    return GRAFT_OK;
}

/* A tensor of a dtype the reference knows and graft cannot read (sub-byte
 * and scaled 8-bit floats): listed, and copied raw by the writer, which
 * takes its dtype string from t->aux_ptr. */
static int add_unsupported(graft_model *m, const graft_source *src, uint64_t data_start,
                           const char *name, size_t name_len, const char *dtype,
                           const graft_json *shape, span *sp, graft_ctx *ctx)
{
    int64_t dims[GRAFT_MAX_NDIM];
    char stored[64];
    graft_tensor *t;
    if (shape->count > GRAFT_MAX_NDIM)
        return graft_error(ctx, GRAFT_ELIMIT, "tensor '%s': rank %zu exceeds the cap of %d", name,
                           shape->count, GRAFT_MAX_NDIM);
    for (size_t i = 0; i < shape->count; i++) {
        uint64_t d;
        if (get_u64(&shape->items[i], &d) < 0 || d > INT64_MAX)
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "tensor '%s': shape entry %zu is not a non-negative integer", name, i);
        dims[i] = (int64_t)d;
    }
    if (sp->end < sp->begin)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': data_offsets [%llu, %llu]: end before start", name,
                           (unsigned long long)sp->begin, (unsigned long long)sp->end);
    snprintf(stored, sizeof stored, "safetensors dtype '%s'", dtype);
    t = graft_model__add_unsupported(m, name, name_len, stored, (uint32_t)shape->count, dims,
                                     sp->end - sp->begin, ctx);
    if (!t) return ctx->status;
    if (!(t->aux_ptr = graft_arena_strdup(&m->arena, dtype))) return graft_error_oom(ctx, "a dtype");
    t->src = src;
    t->offset = data_start + sp->begin;
    t->aux = sp->begin;
    sp->tensor = m->count - 1;
    return GRAFT_OK;
}

/* One tensor entry of the header: dtype, shape, offsets; adds it to m. */
static int add_entry(graft_model *m, const graft_source *src, uint64_t data_start,
                     const char *name, size_t name_len, const graft_json *v, span *sp,
                     graft_ctx *ctx)
{
    const graft_json *dt = graft_json_get(v, "dtype"), *shape = graft_json_get(v, "shape"),
                     *offs = graft_json_get(v, "data_offsets");
    int64_t dims[GRAFT_MAX_NDIM];
    graft_dtype dtype = GRAFT_DTYPE_INVALID;
    uint64_t numel = 1, nbytes;
    graft_tensor *t;

    if (v->type != GRAFT_JSON_OBJECT)
        return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': entry is %s, not an object", name,
                           graft_json_type_name(v->type));
    if (!dt || dt->type != GRAFT_JSON_STRING)
        return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': \"dtype\" missing or not a string",
                           name);
    if (!shape || shape->type != GRAFT_JSON_ARRAY)
        return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': \"shape\" missing or not an array",
                           name);
    if (!offs || offs->type != GRAFT_JSON_ARRAY || offs->count != 2 ||
        get_u64(&offs->items[0], &sp->begin) < 0 || get_u64(&offs->items[1], &sp->end) < 0)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': \"data_offsets\" is not a pair of non-negative integers",
                           name);
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (strcmp(dt->str, dtypes[i].name) == 0) dtype = dtypes[i].dtype;
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        if (strcmp(dt->str, refused[i]) == 0)
            return add_unsupported(m, src, data_start, name, name_len, dt->str, shape, sp, ctx);
    if (dtype == GRAFT_DTYPE_INVALID)
        return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': unknown dtype '%s'", name, dt->str);
    if (shape->count > GRAFT_MAX_NDIM)
        return graft_error(ctx, GRAFT_ELIMIT, "tensor '%s': rank %zu exceeds the cap of %d", name,
                           shape->count, GRAFT_MAX_NDIM);
    for (size_t i = 0; i < shape->count; i++) {
        uint64_t d;
        if (get_u64(&shape->items[i], &d) < 0)
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "tensor '%s': shape entry %zu is not a non-negative integer", name, i);
        dims[i] = (int64_t)d;
        if (graft_mul_overflow(numel, d, &numel))
            return graft_error(ctx, GRAFT_ELIMIT, "tensor '%s': element count overflows", name);
    }
    if (graft_mul_overflow(numel, graft_dtype_size(dtype), &nbytes))
        return graft_error(ctx, GRAFT_ELIMIT, "tensor '%s': byte size overflows", name);
    if (sp->end < sp->begin)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': data_offsets [%llu, %llu]: end before start", name,
                           (unsigned long long)sp->begin, (unsigned long long)sp->end);
    if (sp->end - sp->begin != nbytes)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but %s with "
                           "%llu elements needs %llu",
                           name, (unsigned long long)sp->begin, (unsigned long long)sp->end,
                           (unsigned long long)(sp->end - sp->begin), dt->str,
                           (unsigned long long)numel, (unsigned long long)nbytes);
    t = graft_model__add(m, name, name_len, dtype, (uint32_t)shape->count, dims, ctx);
    if (!t) return ctx->status;
    t->src = src;
    t->offset = data_start + sp->begin; /* begin <= end <= buffer size, checked later */
    t->aux = sp->begin;
    sp->tensor = m->count - 1;
    return GRAFT_OK;
}

/* Sorted by offset the tensors must tile [0, buffer) exactly. */
static int check_tiling(const graft_model *m, span *sp, size_t n, uint64_t buffer,
                        graft_ctx *ctx)
{
    uint64_t at = 0;
    qsort(sp, n, sizeof *sp, cmp_span);
    for (size_t i = 0; i < n; i++) {
        if (sp[i].begin != at)
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "tensor '%s': data_offsets [%llu, %llu] %s: the previous tensor "
                               "ends at %llu",
                               m->tensors[sp[i].tensor].name, (unsigned long long)sp[i].begin,
                               (unsigned long long)sp[i].end,
                               sp[i].begin > at ? "leave a gap" : "overlap", (unsigned long long)at);
        at = sp[i].end;
    }
    if (at != buffer)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensors cover %llu bytes but the data buffer after the header holds %llu",
                           (unsigned long long)at, (unsigned long long)buffer);
    return GRAFT_OK;
}

/* Parse the header of one safetensors file and add its tensors. */
static int read_file(graft_model *m, const graft_source *src, const graft_json **metadata,
                     graft_ctx *ctx)
{
    const uint8_t *p = src->data;
    size_t size = src->size, n = 0;
    const graft_json *root = NULL;
    span *spans = NULL;
    uint64_t hlen;
    int rc;

    *metadata = NULL;
    if (size < 8)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "%zu bytes is too short for the 8-byte header length", size);
    hlen = graft_le64(p);
    if (hlen > HEADER_MAX)
        return graft_error(ctx, GRAFT_ELIMIT, "header length %llu exceeds the cap of %u bytes",
                           (unsigned long long)hlen, HEADER_MAX);
    if (hlen > size - 8)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "header length %llu runs past the end of the %zu-byte file",
                           (unsigned long long)hlen, size);
    GRAFT_TRY(graft_json_parse(&root, p + 8, (size_t)hlen, 8, &m->arena, ctx));
    if (root->type != GRAFT_JSON_OBJECT)
        return graft_error(ctx, GRAFT_ECORRUPT, "offset 0x8: header is a JSON %s, not an object",
                           graft_json_type_name(root->type));
    spans = graft_calloc(ctx, root->count ? root->count : 1, sizeof *spans);
    if (!spans) return graft_error_oom(ctx, "the tensor offsets");
    for (size_t i = 0; i < root->count; i++) {
        if (strlen(root->keys[i]) != root->key_lens[i]) {
            rc = graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': name holds a NUL character",
                             root->keys[i]);
            goto cleanup;
        }
        if (strcmp(root->keys[i], "__metadata__") == 0) {
            rc = *metadata ? graft_error(ctx, GRAFT_ECORRUPT, "__metadata__ appears twice")
                           : check_metadata(&root->items[i], ctx);
            if (rc < 0) goto cleanup;
            *metadata = &root->items[i];
            continue;
        }
        rc = add_entry(m, src, 8 + hlen, root->keys[i], root->key_lens[i], &root->items[i],
                       &spans[n], ctx);
        if (rc < 0) goto cleanup;
        n++;
    }
    rc = check_tiling(m, spans, n, size - 8 - hlen, ctx);
cleanup:
    free(spans);
    return rc;
}

static void state_free(void *p) { free(p); }

static int attach_state(graft_model *m, const graft_json *metadata, bool sharded,
                        graft_ctx *ctx)
{
    st_state *st = graft_calloc(ctx, 1, sizeof *st);
    if (!st) return graft_error_oom(ctx, "the safetensors state");
    st->metadata = metadata;
    st->sharded = sharded;
    m->state = st;
    m->state_free = state_free;
    return GRAFT_OK;
}

/* ---- sharded sets ------------------------------------------------------- */

typedef struct wm_entry {
    const char *name, *shard;
} wm_entry;

static int cmp_wm(const void *a, const void *b)
{
    return strcmp(((const wm_entry *)a)->name, ((const wm_entry *)b)->name);
}

/* Every weight-map entry is in its shard and every shard tensor is listed. */
static int check_weight_map(const graft_model *m, const graft_json *wm,
                            const char *const *shard_of, graft_ctx *ctx)
{
    wm_entry *want = graft_calloc(ctx, wm->count + 1, sizeof *want);
    wm_entry *have = graft_calloc(ctx, m->count + 1, sizeof *have);
    int rc = GRAFT_OK;
    if (!want || !have) {
        rc = graft_error_oom(ctx, "the weight map");
        goto cleanup;
    }
    for (size_t i = 0; i < wm->count; i++)
        want[i] = (wm_entry){wm->keys[i], wm->items[i].str};
    for (size_t i = 0; i < m->count; i++) have[i] = (wm_entry){m->tensors[i].name, shard_of[i]};
    qsort(want, wm->count, sizeof *want, cmp_wm);
    qsort(have, m->count, sizeof *have, cmp_wm);
    for (size_t i = 0, j = 0; i < wm->count || j < m->count;) {
        int c = i == wm->count ? 1 : j == m->count ? -1 : strcmp(want[i].name, have[j].name);
        if (c < 0) {
            rc = graft_error(ctx, GRAFT_ECORRUPT,
                             "weight_map lists '%s' in '%s' but that shard does not hold it",
                             want[i].name, want[i].shard);
            goto cleanup;
        }
        if (c > 0) {
            rc = graft_error(ctx, GRAFT_ECORRUPT,
                             "shard '%s' holds '%s', which the weight_map does not list",
                             have[j].shard, have[j].name);
            goto cleanup;
        }
        if (strcmp(want[i].shard, have[j].shard) != 0) {
            rc = graft_error(ctx, GRAFT_ECORRUPT, "weight_map puts '%s' in '%s' but it is in '%s'",
                             want[i].name, want[i].shard, have[j].shard);
            goto cleanup;
        }
        i++;
        j++;
    }
cleanup:
    free(want);
    free(have);
    return rc;
}

static bool plain_file_name(const char *s)
{
    return *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static int open_index(graft_model *m, graft_ctx *ctx)
{
    const graft_source *idx = m->sources[0];
    const graft_json *root = NULL, *wm, *md;
    const char *slash = strrchr(m->path, '/');
    int dirlen = slash ? (int)(slash - m->path + 1) : 0;
    const char **shard_of = NULL;
    st_state *st;
    int rc;

    if (idx->size > HEADER_MAX)
        return graft_error(ctx, GRAFT_ELIMIT, "index of %zu bytes exceeds the cap of %u", idx->size,
                           HEADER_MAX);
    GRAFT_TRY(graft_json_parse(&root, idx->data, idx->size, 0, &m->arena, ctx));
    wm = graft_json_get(root, "weight_map");
    if (!wm || wm->type != GRAFT_JSON_OBJECT)
        return graft_error(ctx, GRAFT_ECORRUPT, "index has no \"weight_map\" object");
    md = graft_json_get(root, "metadata");
    GRAFT_TRY(attach_state(m, md && md->type == GRAFT_JSON_OBJECT ? md : NULL, true, ctx));
    st = m->state;
    st->shards = graft_arena_alloc(&m->arena, (wm->count + 1) * sizeof *st->shards);
    st->shard_md = graft_arena_alloc(&m->arena, (wm->count + 1) * sizeof *st->shard_md);
    if (!st->shards || !st->shard_md) return graft_error_oom(ctx, "the shard list");
    for (size_t i = 0; i < wm->count; i++) {
        const graft_json *f = &wm->items[i];
        if (f->type != GRAFT_JSON_STRING || strlen(f->str) != f->len || !plain_file_name(f->str))
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "weight_map '%s': shard must be a file name in the index's folder",
                               wm->keys[i]);
    }
    for (size_t i = 0; i < wm->count; i++) {
        const char *shard = wm->items[i].str, *path;
        const graft_source *src;
        const graft_json *shard_md;
        size_t before = m->count;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) seen = strcmp(wm->items[j].str, shard) == 0;
        if (seen) continue;
        path = graft_arena_printf(&m->arena, "%.*s%s", dirlen, m->path, shard);
        rc = path ? graft_model__add_source(m, path, &src, ctx)
                  : graft_error_oom(ctx, "a shard path");
        if (rc == GRAFT_OK) rc = read_file(m, src, &shard_md, ctx);
        if (rc < 0) {
            free(shard_of);
            return graft_error_prefix(ctx, "shard '%s'", shard);
        }
        st->shards[st->nshards] = src;
        st->shard_md[st->nshards++] = shard_md;
        const char **grown = graft_realloc(ctx, shard_of, (m->count + 1) * sizeof *grown);
        if (!grown) {
            free(shard_of);
            return graft_error_oom(ctx, "the shard list");
        }
        shard_of = grown;
        for (size_t j = before; j < m->count; j++) shard_of[j] = shard;
    }
    rc = check_weight_map(m, wm, shard_of, ctx);
    free(shard_of);
    return rc;
}

static int st_open(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    const graft_json *metadata = NULL;
    (void)opts;
    if (m->nsources == 0)
        return graft_error(ctx, GRAFT_EFORMAT, "a folder is not a safetensors file");
    if (has_suffix(m->path, ".index.json")) return open_index(m, ctx);
    GRAFT_TRY(read_file(m, m->sources[0], &metadata, ctx));
    return attach_state(m, metadata, false, ctx);
}

/* ---- writer ------------------------------------------------------------- */

static int cmp_layout(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->tensor < y->tensor ? -1 : x->tensor > y->tensor;
}

/* The header the reference writer produces: compact, __metadata__ first,
 * padded with spaces to a multiple of 8.  begin[] holds each tensor's new
 * offset, UINT64_MAX for tensors not in this file. */
static void write_header(graft_jsonw *w, const graft_model *m, const graft_json *md,
                         const uint64_t *begin)
{
    bool first = true;
    graft_jsonw_raw(w, "{", 1);
    if (md) {
        graft_jsonw_raw(w, "\"__metadata__\":", 15);
        graft_jsonw_value(w, md);
        first = false;
    }
    for (size_t i = 0; i < m->count; i++) { /* the skeleton's header order */
        const graft_tensor *t = &m->tensors[i];
        if (begin[i] == UINT64_MAX) continue; /* in another shard */
        if (!first) graft_jsonw_raw(w, ",", 1);
        first = false;
        graft_jsonw_string(w, t->name, strlen(t->name));
        graft_jsonw_printf(w, ":{\"dtype\":\"%s\",\"shape\":[",
                           t->unsupported ? (const char *)t->aux_ptr : dtype_string(t->dtype));
        for (uint32_t d = 0; d < t->ndim; d++)
            graft_jsonw_printf(w, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        graft_jsonw_printf(w, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)begin[i],
                           (unsigned long long)(begin[i] + t->nbytes));
    }
    graft_jsonw_raw(w, "}", 1);
    while (w->rc == GRAFT_OK && w->len % 8) graft_jsonw_raw(w, " ", 1);
}

/* One safetensors file holding the tensors of source `only` (NULL: all). */
/* pending: NULL to commit the file, else where its written, uncommitted
 * sink goes (a shard, committed with the rest of its set). */
static int write_file(const graft_model *m, const graft_source *only, const graft_json *md,
                      const char *out_path, graft_fill *fill, graft_sink **pending,
                      graft_ctx *ctx)
{
    graft_sink *sink = NULL;
    span *order = NULL;
    uint64_t *begin = NULL, at = 0;
    size_t n = 0;
    graft_jsonw w;
    uint8_t len[8];
    int rc;

    graft_jsonw_init(&w, ctx);
    order = graft_calloc(ctx, m->count + 1, sizeof *order);
    begin = graft_calloc(ctx, m->count + 1, sizeof *begin);
    if (!order || !begin) {
        rc = graft_error_oom(ctx, "the tensor layout");
        goto cleanup;
    }
    /* keep the skeleton's layout order; offsets are re-tiled so a --select'ed
     * subset is still a valid file */
    for (size_t i = 0; i < m->count; i++) {
        if (only && m->tensors[i].src != only) continue;
        order[n++] = (span){m->tensors[i].aux, 0, i};
        if (!dtype_string(m->tensors[i].dtype) && !m->tensors[i].unsupported) {
            rc = graft_error(ctx, GRAFT_EFORMAT, "tensor '%s': %s has no safetensors dtype",
                             m->tensors[i].name, graft_dtype_name(m->tensors[i].dtype));
            goto cleanup;
        }
    }
    qsort(order, n, sizeof *order, cmp_layout);
    for (size_t i = 0; i < m->count; i++) begin[i] = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        begin[order[i].tensor] = at;
        at += m->tensors[order[i].tensor].nbytes;
    }
    write_header(&w, m, md, begin);
    if ((rc = w.rc) < 0) goto cleanup;
    if ((rc = graft_sink_open(&sink, out_path, ctx)) < 0) goto cleanup;
    graft_put_le64(len, w.len);
    if ((rc = graft_sink_write(sink, len, 8)) < 0 || (rc = graft_sink_write(sink, w.p, w.len)) < 0)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        const graft_tensor *t = &m->tensors[order[i].tensor];
        if (t->unsupported) /* the skeleton's bytes, as they are */
            rc = graft_sink_write(sink, t->src->data + t->offset, (size_t)t->nbytes);
        else
            rc = graft_fill_emit(fill, m, order[i].tensor, sink, ctx);
        if (rc < 0) goto cleanup;
    }
    if (pending) *pending = sink;
    else rc = graft_sink_commit(sink);
    sink = NULL;
cleanup:
    graft_sink_abort(sink);
    graft_jsonw_free(&w);
    free(order);
    free(begin);
    return rc;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/*
 * A sharded set: out_path is the index; each shard keeps its file name and
 * goes beside it, then the index is written last (as transformers writes it,
 * indented, weight_map in tensor order).  Every shard stays an unnamed file
 * until all are written: a process killed on the way leaves no shard behind;
 * then the shards are linked into place, the index last.
 */
static int write_sharded(const graft_model *m, const st_state *st, const char *out_path,
                         graft_fill *fill, graft_ctx *ctx)
{
    const char *slash = strrchr(out_path, '/');
    int dirlen = slash ? (int)(slash - out_path + 1) : 0;
    graft_sink *sink = NULL, **shards = NULL;
    graft_jsonw w;
    int rc = GRAFT_OK;

    graft_jsonw_init(&w, ctx);
    if (!(shards = graft_calloc(ctx, st->nshards ? st->nshards : 1, sizeof *shards)))
        return graft_error_oom(ctx, "the shard outputs");
    for (size_t s = 0; s < st->nshards && rc == GRAFT_OK; s++) {
        const char *name = base_name(st->shards[s]->path);
        bool used = false;
        for (size_t i = 0; i < m->count && !used; i++) used = m->tensors[i].src == st->shards[s];
        if (!used) continue; /* --select left nothing in it */
        graft_jsonw_printf(&w, "%.*s%s", dirlen, out_path, name);
        if (w.rc == GRAFT_OK && strcmp(w.p, out_path) == 0)
            rc = graft_error(ctx, GRAFT_ERROR, "the index would overwrite shard '%s'", name);
        if (w.rc == GRAFT_OK && rc == GRAFT_OK)
            rc = write_file(m, st->shards[s], st->shard_md[s], w.p, fill, &shards[s], ctx);
        if (w.rc < 0) rc = w.rc;
        w.len = 0;
    }
    if (rc < 0) goto cleanup;
    graft_jsonw_raw(&w, "{\n", 2);
    if (st->metadata) {
        graft_jsonw_raw(&w, "  \"metadata\": ", 14);
        graft_jsonw_value(&w, st->metadata);
        graft_jsonw_raw(&w, ",\n", 2);
    }
    graft_jsonw_raw(&w, "  \"weight_map\": {", 17);
    for (size_t i = 0; i < m->count; i++) {
        const char *name = m->tensors[i].name;
        graft_jsonw_raw(&w, i ? ",\n    " : "\n    ", i ? 6 : 5);
        graft_jsonw_string(&w, name, strlen(name));
        graft_jsonw_raw(&w, ": ", 2);
        name = base_name(m->tensors[i].src->path);
        graft_jsonw_string(&w, name, strlen(name));
    }
    graft_jsonw_raw(&w, m->count ? "\n  }\n}\n" : "}\n}\n", m->count ? 7 : 4);
    if ((rc = w.rc) < 0) goto cleanup;
    if ((rc = graft_sink_open(&sink, out_path, ctx)) < 0) goto cleanup;
    if ((rc = graft_sink_write(sink, w.p, w.len)) < 0) goto cleanup;
    for (size_t s = 0; s < st->nshards && rc == GRAFT_OK; s++)
        if (shards[s]) rc = graft_sink_sync(shards[s]);
    if (rc == GRAFT_OK) rc = graft_sink_sync(sink);
    for (size_t s = 0; s < st->nshards && rc == GRAFT_OK; s++) {
        rc = graft_sink_commit(shards[s]);
        shards[s] = NULL;
    }
    if (rc == GRAFT_OK) rc = graft_sink_commit(sink);
    sink = NULL;
cleanup:
    graft_sink_abort(sink);
    for (size_t s = 0; s < st->nshards; s++) graft_sink_abort(shards[s]);
    free(shards);
    graft_jsonw_free(&w);
    return rc;
}

static int st_write(const graft_model *m, const char *out_path, graft_fill *fill, graft_ctx *ctx)
{
    const st_state *st = m->state;
    if (st && st->sharded) return write_sharded(m, st, out_path, fill, ctx);
    return write_file(m, NULL, st ? st->metadata : NULL, out_path, fill, NULL, ctx);
}

static void st_extras(const graft_model *m, const char *select, graft_extras *out);

const graft_format graft_format_safetensors = {
    .name = "safetensors",
    .probe = st_probe,
    .open = st_open,
    .write = st_write,
    .extras = st_extras,
};

/* ---- convert: non-tensor parts, and a new sharded set ------------------- */

static void st_extras(const graft_model *m, const char *select, graft_extras *out)
{
    const st_state *st = m->state;
    (void)select;
    if (!st || !st->metadata || !st->metadata->count) return;
    out->count = st->metadata->count;
    snprintf(out->summary, sizeof out->summary, "%zu %s entr%s", st->metadata->count,
             st->sharded ? "index metadata" : "__metadata__", st->metadata->count > 1 ? "ies" : "y");
}

/* A one-member JSON object {key: val} in the arena. */
static graft_json *json_object1(graft_arena *a, const char *key, graft_json val)
{
    graft_json *o = graft_arena_alloc(a, sizeof *o), *item = graft_arena_alloc(a, sizeof *item);
    const char **keys = graft_arena_alloc(a, sizeof *keys);
    size_t *lens = graft_arena_alloc(a, sizeof *lens);
    if (!o || !item || !keys || !lens) return NULL;
    *item = val;
    *keys = key;
    *lens = strlen(key);
    *o = (graft_json){.type = GRAFT_JSON_OBJECT, .count = 1, .items = item, .keys = keys,
                      .key_lens = lens};
    return o;
}

int graft_safetensors__prepare(graft_model *m, uint64_t max_shard, const char *out_path,
                               char **final_path, graft_ctx *ctx)
{
    static const char index_ext[] = ".safetensors.index.json", ext[] = ".safetensors";
    size_t n = strlen(out_path), stem = n, nshards = 0, *shard_of, *pend, npend = 0;
    uint64_t cur = 0, total = 0;
    st_state *st;

    *final_path = NULL;
    m->format = &graft_format_safetensors;
    if (has_suffix(out_path, index_ext)) stem = n - (sizeof index_ext - 1);
    else if (has_suffix(out_path, ext)) stem = n - (sizeof ext - 1);
    shard_of = graft_calloc(ctx, 2 * m->count + 1, sizeof *shard_of);
    if (!shard_of) return graft_error_oom(ctx, "the shard plan");
    pend = shard_of + m->count;
    /* huggingface_hub split_state_dict_into_shards_factory: in order; a tensor
     * over the limit is a shard of its own at once, one that would tip the
     * current shard over the limit closes it first; the last one closes at
     * the end.  Shards are numbered in the order they close. */
    for (size_t i = 0; i < m->count; i++) {
        uint64_t size = m->tensors[i].nbytes;
        total += size;
        if (max_shard && size > max_shard) {
            shard_of[i] = nshards++;
            continue;
        }
        if (max_shard && npend && cur + size > max_shard) {
            for (size_t k = 0; k < npend; k++) shard_of[pend[k]] = nshards;
            nshards++;
            npend = 0;
            cur = 0;
        }
        pend[npend++] = i;
        cur += size;
    }
    if (npend) {
        for (size_t k = 0; k < npend; k++) shard_of[pend[k]] = nshards;
        nshards++;
    }
    if (!max_shard || nshards <= 1) {
        free(shard_of);
        *final_path = graft_arena_printf(&m->arena, "%.*s%s", (int)stem, out_path,
                                         stem == n ? "" : ext);
        return *final_path ? GRAFT_OK : graft_error_oom(ctx, "a path");
    }
    int rc = attach_state(m, NULL, true, ctx);
    st = m->state;
    if (rc == GRAFT_OK) {
        st->metadata = json_object1(&m->arena, "total_size",
                                    (graft_json){.type = GRAFT_JSON_INT, .i = (int64_t)total,
                                                 .d = (double)total});
        st->shards = graft_arena_alloc(&m->arena, nshards * sizeof *st->shards);
        st->shard_md = graft_arena_alloc(&m->arena, nshards * sizeof *st->shard_md);
        *final_path = graft_arena_printf(&m->arena, "%.*s%s", (int)stem, out_path, index_ext);
        if (!st->metadata || !st->shards || !st->shard_md || !*final_path)
            rc = graft_error_oom(ctx, "the shard plan");
    }
    for (size_t s = 0; rc == GRAFT_OK && s < nshards; s++) {
        graft_source *src = NULL;
        const graft_json *fmt = json_object1(&m->arena, "format",
                                             (graft_json){.type = GRAFT_JSON_STRING, .str = "pt",
                                                          .len = 2});
        char *path = graft_arena_printf(&m->arena, "%.*s-%05zu-of-%05zu%s", (int)stem, out_path,
                                        s + 1, nshards, ext);
        if (!fmt || !path) rc = graft_error_oom(ctx, "the shard plan");
        if (rc == GRAFT_OK) rc = graft_source_from_buffer(&src, path, NULL, 0, ctx);
        if (rc == GRAFT_OK && (rc = graft_model__own_source(m, src, ctx)) < 0) graft_source_free(src);
        if (rc == GRAFT_OK) {
            st->shards[s] = src;
            st->shard_md[s] = fmt;
        }
    }
    st->nshards = rc == GRAFT_OK ? nshards : 0;
    for (size_t i = 0; rc == GRAFT_OK && i < m->count; i++) m->tensors[i].src = st->shards[shard_of[i]];
    free(shard_of);
    return rc;
}
