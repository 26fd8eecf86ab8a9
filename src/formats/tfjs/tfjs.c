/*
 * tfjs.c - TensorFlow.js models: model.json plus binary weight shards
 * (tfjs-core src/io/types.ts ModelJSON, io_utils.ts decodeWeights,
 * weights_loader.ts), read and written as a skeleton.
 *
 * Layout:
 *  1. model.json: a JSON object; "format" is "layers-model" (modelTopology
 *     is the Keras model config) or "graph-model" (a GraphDef as JSON);
 *     "weightsManifest" is an array of groups {"paths": [file, ...],
 *     "weights": [{"name", "shape", "dtype", "quantization"?}, ...]};
 *  2. each group's files (beside model.json), concatenated, hold the
 *     group's weights back to back in manifest order, little-endian
 *     row-major, cut into shards at any byte (a weight may straddle two);
 *  3. dtype float32 / int32 (4 bytes), bool (1), complex64 (8); with
 *     "quantization": {"dtype": "uint8"|"uint16", "scale", "min"} a weight
 *     is stored as 1- or 2-byte q and read as q * scale + min (rounded for
 *     int32); with {"dtype": "float16"} as IEEE half floats (float32 only).
 * Weights are named as TF.js names them ("conv2d_1/kernel").  Unquantized
 * weights inside one shard are views into it; others are loaded.
 *
 * The writer keeps model.json byte for byte and writes every shard under
 * its own name and size, beside the output model.json (or in the output
 * folder): quantized weights are quantized again with their manifest's
 * scale and min (or cast to float16), as the manifest cannot change.
 */
#include "format.h"
#include "layout.h"
#include "json.h"
#include "kernels.h"
#include "rd.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODEL_JSON_MAX (256u << 20) /* bytes of model.json */

enum { Q_NONE, Q_U8, Q_U16, Q_F16 };

typedef struct tj_group {
    size_t nshards;
    const graft_source **shards;   /* model arena; sources owned by the model */
    const char **names;            /* as in "paths"; arena */
    uint64_t *start;               /* group offset of each shard's byte 0; arena */
    uint64_t total;                /* bytes of all shards */
} tj_group;

typedef struct tj_weight {
    size_t group;
    uint64_t off, size;            /* stored bytes within the group */
    int quant;                     /* Q_* */
    double scale, min;
} tj_weight;

typedef struct tj_state {
    size_t ngroups;
    tj_group *groups;              /* arena */
    tj_weight *w;                  /* arena; one per tensor as opened (t->aux) */
    size_t nw;
} tj_state;

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool tj_probe(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    size_t i = 0, lim = n < 65536 ? n : 65536;
    if (is_dir || !ends_with(path, ".json") || ends_with(path, ".index.json")) return false;
    while (i < lim && (head[i] == ' ' || head[i] == '\n' || head[i] == '\r' || head[i] == '\t')) i++;
    if (i == lim || head[i] != '{') return false;
    for (; i + 17 <= lim; i++)
        if (memcmp(head + i, "\"weightsManifest\"", 17) == 0 ||
            memcmp(head + i, "\"modelTopology\"", 15) == 0)
            return true;
    return false;
}

/* Copy group bytes [off, off+n) into dst, across shard boundaries. */
static void group_read(const tj_group *g, uint64_t off, uint64_t n, uint8_t *dst)
{
    for (size_t s = 0; s < g->nshards && n; s++) {
        uint64_t lo = g->start[s], hi = lo + g->shards[s]->size, take;
        if (off >= hi) continue;
        take = hi - off < n ? hi - off : n;
        memcpy(dst, g->shards[s]->data + (off - lo), (size_t)take);
        dst += take;
        off += take;
        n -= take;
    }
}

/* Let go of the shard pages behind group bytes [off, off+n). */
static void group_release(const tj_group *g, uint64_t off, uint64_t n)
{
    for (size_t s = 0; s < g->nshards && n; s++) {
        uint64_t lo = g->start[s], hi = lo + g->shards[s]->size, take;
        if (off >= hi) continue;
        take = hi - off < n ? hi - off : n;
        graft_source_release(g->shards[s], off - lo, take);
        off += take;
        n -= take;
    }
}

/* JavaScript's ToInt32, what storing a number into an Int32Array does:
 * NaN and infinities give 0, others wrap modulo 2^32 (a C cast of an
 * out-of-range double is undefined). */
static int32_t js_to_int32(double x)
{
    uint32_t u;
    int32_t r;
    if (!isfinite(x)) return 0;
    x = fmod(trunc(x), 4294967296.0);
    if (x < 0) x += 4294967296.0;
    u = (uint32_t)x;
    memcpy(&r, &u, sizeof r);
    return r;
}

/* n stored elements q (uint8, uint16 or float16) of weight w into dst as
 * t's dtype. */
static int dequantize(const tj_weight *w, const graft_tensor *t, const uint8_t *q, uint64_t n,
                      uint8_t *dst, graft_ctx *ctx)
{
    if (w->quant == Q_F16) {
        graft_xout o = {.mem = dst, .ctx = ctx};
        return graft_xform__cast(&o, q, GRAFT_FLOAT16, GRAFT_FLOAT32, n, ctx);
    }
    for (uint64_t i = 0; i < n; i++) {
        /* tfjs decodeWeight: v * scale + min in doubles, then Float32Array
         * (or Math.round into Int32Array) */
        double v = (w->quant == Q_U8 ? q[i] : graft_le16(q + 2 * i)) * w->scale + w->min;
        if (t->dtype == GRAFT_INT32) {
            int32_t r = js_to_int32(floor(v + 0.5)); /* Math.round */
            memcpy(dst + 4 * i, &r, 4);
        } else {
            float f = (float)v;
            memcpy(dst + 4 * i, &f, 4);
        }
    }
    return GRAFT_OK;
}

static int tj_load(const graft_model *m, const graft_tensor *t, uint8_t *dst, graft_ctx *ctx)
{
    const tj_state *st = m->state;
    const tj_weight *w = &st->w[t->aux];
    const tj_group *g = &st->groups[w->group];
    uint8_t *q;
    int rc;
    if (w->quant == Q_NONE) {
        group_read(g, w->off, w->size, dst);
        return GRAFT_OK;
    }
    q = graft_malloc(ctx, (size_t)w->size + 1);
    if (!q) return graft_error_oom(ctx, "a quantized weight");
    group_read(g, w->off, w->size, q);
    rc = dequantize(w, t, q, t->numel, dst, ctx);
    free(q);
    return rc;
}

/* The same 256 Ki elements at a time, shard pages released behind:
 * hashing a weight split across shards or quantized keeps memory flat. */
static int tj_stream(const graft_model *m, const graft_tensor *t, graft_piece_fn fn, void *arg,
                     graft_ctx *ctx)
{
    const tj_state *st = m->state;
    const tj_weight *w = &st->w[t->aux];
    const tj_group *g = &st->groups[w->group];
    const uint64_t per = 1u << 18, unit = t->numel ? w->size / t->numel : 0;
    size_t es = graft_dtype_size(t->dtype);
    uint8_t *q = graft_malloc(ctx, (size_t)(per * unit) + 1), *out = graft_malloc(ctx, per * es);
    int rc = GRAFT_OK;

    if (!q || !out) rc = graft_error_oom(ctx, "a weight piece");
    for (uint64_t e = 0; e < t->numel && rc == GRAFT_OK; e += per) {
        uint64_t n = t->numel - e < per ? t->numel - e : per;
        group_read(g, w->off + e * unit, n * unit, q);
        if (w->quant == Q_NONE) {
            rc = fn(arg, q, (size_t)(n * unit));
        } else if ((rc = dequantize(w, t, q, n, out, ctx)) == GRAFT_OK) {
            rc = fn(arg, out, (size_t)n * es);
        }
        group_release(g, w->off + e * unit, n * unit);
    }
    free(q);
    free(out);
    return rc;
}

static bool plain_file_name(const char *s, size_t n)
{
    return n && strlen(s) == n && !strchr(s, '/') && !strchr(s, '\\') && strcmp(s, ".") &&
           strcmp(s, "..");
}

static int open_group(graft_model *m, tj_group *g, const graft_json *paths, graft_ctx *ctx)
{
    const char *slash = strrchr(m->path, '/');
    int dirlen = slash ? (int)(slash - m->path + 1) : 0;
    if (!paths || paths->type != GRAFT_JSON_ARRAY || paths->count == 0)
        return graft_error(ctx, GRAFT_ECORRUPT, "\"paths\" is not a non-empty array");
    g->nshards = paths->count;
    g->shards = graft_arena_alloc(&m->arena, paths->count * sizeof *g->shards);
    g->names = graft_arena_alloc(&m->arena, paths->count * sizeof *g->names);
    g->start = graft_arena_alloc(&m->arena, paths->count * sizeof *g->start);
    if (!g->shards || !g->names || !g->start) return graft_error_oom(ctx, "a weight group");
    for (size_t s = 0; s < paths->count; s++) {
        const graft_json *p = &paths->items[s];
        const char *full;
        if (p->type != GRAFT_JSON_STRING || !plain_file_name(p->str, p->len))
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "path %zu must be a file name beside model.json", s);
        full = graft_arena_printf(&m->arena, "%.*s%s", dirlen, m->path, p->str);
        if (!full) return graft_error_oom(ctx, "a shard path");
        if (graft_model__add_source(m, full, &g->shards[s], ctx) < 0)
            return graft_error_prefix(ctx, "shard '%s'", p->str);
        g->names[s] = p->str;
        g->start[s] = g->total;
        g->total += g->shards[s]->size;
    }
    return GRAFT_OK;
}

static const struct {
    const char *name;
    graft_dtype dtype;
} dtypes[] = {{"float32", GRAFT_FLOAT32}, {"int32", GRAFT_INT32}, {"bool", GRAFT_BOOL},
              {"complex64", GRAFT_COMPLEX64}};

static int read_quant(const graft_json *q, const graft_tensor *t, tj_weight *w, graft_ctx *ctx)
{
    const graft_json *dt = graft_json_get(q, "dtype"), *sc = graft_json_get(q, "scale"),
                     *mn = graft_json_get(q, "min");
    if (q->type != GRAFT_JSON_OBJECT || !dt || dt->type != GRAFT_JSON_STRING)
        return graft_error(ctx, GRAFT_ECORRUPT, "\"quantization\" has no \"dtype\"");
    if (strcmp(dt->str, "float16") == 0) {
        if (t->dtype != GRAFT_FLOAT32)
            return graft_error(ctx, GRAFT_ECORRUPT, "float16 quantization of a %s weight",
                               graft_dtype_name(t->dtype));
        w->quant = Q_F16;
        return GRAFT_OK;
    }
    if (strcmp(dt->str, "uint8") && strcmp(dt->str, "uint16"))
        return graft_error(ctx, GRAFT_ECORRUPT, "quantization dtype '%s' (tfjs has uint8, uint16, "
                           "float16)", dt->str);
    if (!sc || !mn || (sc->type != GRAFT_JSON_INT && sc->type != GRAFT_JSON_DOUBLE) ||
        (mn->type != GRAFT_JSON_INT && mn->type != GRAFT_JSON_DOUBLE))
        return graft_error(ctx, GRAFT_ECORRUPT, "%s quantization without numeric scale and min",
                           dt->str);
    if (t->dtype != GRAFT_FLOAT32 && t->dtype != GRAFT_INT32)
        return graft_error(ctx, GRAFT_ECORRUPT, "%s quantization of a %s weight", dt->str,
                           graft_dtype_name(t->dtype));
    w->quant = dt->str[4] == '8' ? Q_U8 : Q_U16;
    w->scale = sc->d;
    w->min = mn->d;
    return GRAFT_OK;
}

/* One manifest entry at group offset *off. */
static int add_weight(graft_model *m, tj_state *st, size_t gi, const graft_json *spec,
                      uint64_t *off, graft_ctx *ctx)
{
    const graft_json *name = graft_json_get(spec, "name"), *shape = graft_json_get(spec, "shape"),
                     *dt = graft_json_get(spec, "dtype"), *q = graft_json_get(spec, "quantization");
    const tj_group *g = &st->groups[gi];
    int64_t dims[GRAFT_MAX_NDIM];
    graft_dtype dtype = GRAFT_DTYPE_INVALID;
    tj_weight *w = &st->w[st->nw];
    graft_tensor *t;
    uint64_t unit;

    if (spec->type != GRAFT_JSON_OBJECT || !name || name->type != GRAFT_JSON_STRING)
        return graft_error(ctx, GRAFT_ECORRUPT, "a weight without a \"name\"");
    if (!dt || dt->type != GRAFT_JSON_STRING || !shape || shape->type != GRAFT_JSON_ARRAY)
        return graft_error(ctx, GRAFT_ECORRUPT, "weight '%s': \"dtype\" or \"shape\" missing",
                           name->str);
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (strcmp(dt->str, dtypes[i].name) == 0) dtype = dtypes[i].dtype;
    if (dtype == GRAFT_DTYPE_INVALID)
        return graft_error(ctx, GRAFT_EFORMAT, "weight '%s': dtype '%s' is not supported",
                           name->str, dt->str);
    if (shape->count > GRAFT_MAX_NDIM)
        return graft_error(ctx, GRAFT_ELIMIT, "weight '%s': rank %zu", name->str, shape->count);
    for (size_t i = 0; i < shape->count; i++) {
        if (shape->items[i].type != GRAFT_JSON_INT || shape->items[i].i < 0)
            return graft_error(ctx, GRAFT_ECORRUPT, "weight '%s': shape entry %zu is not a "
                               "non-negative integer", name->str, i);
        dims[i] = shape->items[i].i;
    }
    t = graft_model__add(m, name->str, name->len, dtype, (uint32_t)shape->count, dims, ctx);
    if (!t) return ctx->status;
    memset(w, 0, sizeof *w);
    if (q) GRAFT_TRY(read_quant(q, t, w, ctx));
    unit = w->quant == Q_U8 ? 1 : w->quant ? 2 : graft_dtype_size(dtype);
    w->group = gi;
    w->off = *off;
    if (graft_mul_overflow(t->numel, unit, &w->size) || w->size > g->total - *off)
        return graft_error(ctx, GRAFT_ECORRUPT, "weight '%s': needs %llu bytes at group offset "
                           "%llu but the group's shards hold %llu",
                           name->str, (unsigned long long)(t->numel * unit),
                           (unsigned long long)*off, (unsigned long long)g->total);
    *off += w->size;
    t->aux = st->nw++;
    for (size_t s = 0; s < g->nshards && w->quant == Q_NONE; s++)
        if (w->off >= g->start[s] && w->off + w->size <= g->start[s] + g->shards[s]->size) {
            t->src = g->shards[s];
            t->offset = w->off - g->start[s];
            return GRAFT_OK;
        }
    t->load = tj_load;
    t->stream = tj_stream;
    return GRAFT_OK;
}

static int tj_open(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    const graft_source *src;
    const graft_json *root = NULL, *man, *fmt;
    tj_state *st;
    size_t nweights = 0;

    (void)opts;
    if (m->nsources == 0) return graft_error(ctx, GRAFT_EFORMAT, "a folder is not a model.json");
    src = m->sources[0];
    if (src->size > MODEL_JSON_MAX)
        return graft_error(ctx, GRAFT_ELIMIT, "model.json of %zu bytes exceeds the cap of %u",
                           src->size, MODEL_JSON_MAX);
    GRAFT_TRY(graft_json_parse(&root, src->data, src->size, 0, &m->arena, ctx));
    fmt = graft_json_get(root, "format");
    if (fmt && (fmt->type != GRAFT_JSON_STRING ||
                (strcmp(fmt->str, "layers-model") && strcmp(fmt->str, "graph-model"))))
        return graft_error(ctx, GRAFT_EFORMAT, "\"format\" is not layers-model or graph-model");
    man = graft_json_get(root, "weightsManifest");
    if (!man || man->type != GRAFT_JSON_ARRAY)
        return graft_error(ctx, GRAFT_ECORRUPT, "no \"weightsManifest\" array");
    st = graft_arena_alloc(&m->arena, sizeof *st);
    if (!st) return graft_error_oom(ctx, "the TF.js state");
    memset(st, 0, sizeof *st);
    m->state = st; /* in the arena: freed with the model */
    for (size_t i = 0; i < man->count; i++) {
        const graft_json *w = graft_json_get(&man->items[i], "weights");
        if (!w || w->type != GRAFT_JSON_ARRAY)
            return graft_error(ctx, GRAFT_ECORRUPT, "weightsManifest group %zu: no \"weights\" "
                               "array", i);
        nweights += w->count;
    }
    st->groups = graft_arena_alloc(&m->arena, (man->count + 1) * sizeof *st->groups);
    st->w = graft_arena_alloc(&m->arena, (nweights + 1) * sizeof *st->w);
    if (!st->groups || !st->w) return graft_error_oom(ctx, "the weights manifest");
    memset(st->groups, 0, (man->count + 1) * sizeof *st->groups);
    for (size_t i = 0; i < man->count; i++) {
        const graft_json *w = graft_json_get(&man->items[i], "weights");
        uint64_t off = 0;
        st->ngroups = i + 1;
        if (open_group(m, &st->groups[i], graft_json_get(&man->items[i], "paths"), ctx) < 0)
            return graft_error_prefix(ctx, "weightsManifest group %zu", i);
        for (size_t k = 0; k < w->count; k++)
            if (add_weight(m, st, i, &w->items[k], &off, ctx) < 0)
                return graft_error_prefix(ctx, "weightsManifest group %zu", i);
    }
    /* A layers model's topology is a Keras model config, bare or under
     * "model_config" (as tfjs-layers' loadLayersModel accepts it): roles and
     * layouts from it.  A topology it cannot follow is no error. */
    const graft_json *topo = graft_json_get(root, "modelTopology");
    if (topo && topo->type == GRAFT_JSON_OBJECT && graft_json_get(topo, "model_config"))
        topo = graft_json_get(topo, "model_config");
    if (topo && topo->type == GRAFT_JSON_OBJECT) return graft_layout__keras_config(m, topo, ctx);
    return GRAFT_OK;
}

/* ---- writer ------------------------------------------------------------- */

/* Where the shards go: out_path's folder (out_path ends in .json) or
 * out_path itself (a folder, created if need be, receiving model.json). */
static int out_paths(const graft_model *m, const char *out_path, char **json, char **dir,
                     graft_ctx *ctx)
{
    const char *base = strrchr(m->path, '/');
    base = base ? base + 1 : m->path;
    if (ends_with(out_path, ".json")) {
        const char *slash = strrchr(out_path, '/');
        *json = graft_strdup(ctx, out_path);
        *dir = graft_malloc(ctx, strlen(out_path) + 2);
        if (*dir) snprintf(*dir, strlen(out_path) + 2, "%.*s", slash ? (int)(slash - out_path + 1) : 0, out_path);
    } else {
        size_t n = strlen(out_path); /* the folder is made when the files are linked in */
        *dir = graft_malloc(ctx, n + 2);
        *json = graft_malloc(ctx, n + strlen(base) + 2);
        if (*dir) sprintf(*dir, "%s/", out_path);
        if (*json) sprintf(*json, "%s/%s", out_path, base);
    }
    return *json && *dir ? GRAFT_OK : graft_error_oom(ctx, "a path");
}

/* A weight's stored bytes from the fill's float32/int32 values. */
static void requantize(const tj_weight *w, graft_dtype dt, const uint8_t *v, uint64_t numel,
                       uint8_t *out, graft_ctx *ctx)
{
    if (w->quant == Q_F16) {
        graft_xout o = {.mem = out, .ctx = ctx};
        graft_xform__cast(&o, v, GRAFT_FLOAT32, GRAFT_FLOAT16, numel, ctx);
        return;
    }
    double top = w->quant == Q_U8 ? 255.0 : 65535.0;
    for (uint64_t i = 0; i < numel; i++) {
        double x;
        if (dt == GRAFT_INT32) {
            int32_t k;
            memcpy(&k, v + 4 * i, 4);
            x = k;
        } else {
            float f;
            memcpy(&f, v + 4 * i, 4);
            x = f;
        }
        x = w->scale != 0 ? floor((x - w->min) / w->scale + 0.5) : 0;
        x = x < 0 || x != x ? 0 : x > top ? top : x;
        if (w->quant == Q_U8) out[i] = (uint8_t)x;
        else graft_put_le16(out + 2 * i, (uint16_t)x);
    }
}

typedef struct gw {
    const graft_model *m;
    const tj_group *g;
    graft_sink **sinks;       /* one per shard */
    const char *dir;
    graft_fill *fill;
    graft_ctx *ctx;
} gw;

/* Write `n` stored bytes at group offset `off` into the shards. */
static int put_split(gw *c, uint64_t off, const uint8_t *p, uint64_t n)
{
    for (size_t s = 0; s < c->g->nshards && n; s++) {
        uint64_t lo = c->g->start[s], hi = lo + c->g->shards[s]->size, take;
        if (off >= hi) continue;
        take = hi - off < n ? hi - off : n;
        GRAFT_TRY(graft_sink_write(c->sinks[s], p, (size_t)take));
        p += take;
        off += take;
        n -= take;
    }
    return GRAFT_OK;
}

/* A weight that straddles shards or is quantized: its values through an
 * unnamed scratch file beside the output (read back through /proc/self/fd,
 * never named: a kill leaves nothing), then stored bytes into the shards. */
static int write_staged(gw *c, size_t ti, const tj_weight *w)
{
    const graft_tensor *t = &c->m->tensors[ti];
    char *path = graft_malloc(c->ctx, strlen(c->dir) + 64), proc[64];
    graft_sink *s = NULL;
    graft_source *back = NULL;
    uint8_t *q = NULL;
    int rc, fd = -1;
    if (!path) return graft_error_oom(c->ctx, "a path");
    sprintf(path, "%s.graft-tfjs-%ld-%zu.tmp", c->dir, (long)getpid(), ti);
    rc = graft_sink_open(&s, path, c->ctx);
    if (rc == 0) rc = graft_fill_emit(c->fill, c->m, ti, s, c->ctx);
    if (rc == 0) rc = graft_sink_reopen(s, &fd, c->ctx);
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (rc == 0) rc = graft_source_open(&back, proc, c->ctx);
    if (fd >= 0) close(fd);
    if (rc == 0 && w->quant != Q_NONE) {
        q = graft_malloc(c->ctx, (size_t)w->size + 1);
        if (!q) rc = graft_error_oom(c->ctx, "a quantized weight");
        else requantize(w, t->dtype, back->data, t->numel, q, c->ctx);
    }
    if (rc == 0) rc = put_split(c, w->off, q ? q : back->data, w->size);
    graft_sink_abort(s);
    graft_source_free(back);
    free(q);
    free(path);
    return rc;
}

/* Group gi's shards into sinks (c.g->nshards of them, handed back
 * unwritten-to-disk: tj_write links every file in at the end). */
static int write_group(const graft_model *m, size_t gi, const char *dir, graft_fill *fill,
                       graft_sink **sinks, graft_ctx *ctx)
{
    const tj_state *st = m->state;
    gw c = {.m = m, .g = &st->groups[gi], .dir = dir, .fill = fill, .ctx = ctx};
    uint64_t at = 0;
    int rc = GRAFT_OK;
    c.sinks = sinks;
    for (size_t s = 0; s < c.g->nshards && rc == GRAFT_OK; s++) {
        char *p = graft_malloc(ctx, strlen(dir) + strlen(c.g->names[s]) + 1);
        if (!p) rc = graft_error_oom(ctx, "a path");
        else {
            sprintf(p, "%s%s", dir, c.g->names[s]);
            rc = graft_sink_open(&c.sinks[s], p, ctx);
            free(p);
        }
    }
    /* the skeleton's weights of this group, in manifest (= table) order */
    for (size_t i = 0; i < m->count && rc == GRAFT_OK; i++) {
        const tj_weight *w = &st->w[m->tensors[i].aux];
        if (w->group != gi) continue;
        if (w->off != at) { /* --select left a weight out: keep its bytes */
            uint8_t *gap = graft_malloc(ctx, (size_t)(w->off - at) + 1);
            if (!gap) rc = graft_error_oom(ctx, "a kept weight");
            else {
                group_read(c.g, at, w->off - at, gap);
                rc = put_split(&c, at, gap, w->off - at);
                free(gap);
            }
        }
        if (rc < 0) break;
        if (m->tensors[i].src && !m->tensors[i].load) {
            size_t s = 0;
            while (c.g->shards[s] != m->tensors[i].src) s++;
            rc = graft_fill_emit(fill, m, i, c.sinks[s], ctx);
        } else {
            rc = write_staged(&c, i, w);
        }
        at = w->off + w->size;
    }
    if (rc == GRAFT_OK && at < c.g->total) { /* bytes after the last weight */
        uint8_t *tail = graft_malloc(ctx, (size_t)(c.g->total - at));
        if (!tail) rc = graft_error_oom(ctx, "a shard tail");
        else {
            group_read(c.g, at, c.g->total - at, tail);
            rc = put_split(&c, at, tail, c.g->total - at);
            free(tail);
        }
    }
    return rc;
}

static int tj_write(const graft_model *m, const char *out_path, graft_fill *fill, graft_ctx *ctx)
{
    const tj_state *st = m->state;
    char *json = NULL, *dir = NULL;
    graft_sink *s = NULL, **sinks = NULL;
    size_t nsinks = 0, k = 0;
    int rc;
    if (!st) return graft_error(ctx, GRAFT_ERROR, "no TF.js manifest to write");
    for (size_t g = 0; g < st->ngroups; g++) nsinks += st->groups[g].nshards;
    if (!(sinks = graft_calloc(ctx, nsinks ? nsinks : 1, sizeof *sinks)))
        return graft_error_oom(ctx, "the shards");
    if ((rc = out_paths(m, out_path, &json, &dir, ctx)) < 0) goto cleanup;
    if (!ends_with(out_path, ".json")) graft_sink_folder_output(out_path);
    for (size_t g = 0; g < st->ngroups && rc == GRAFT_OK; k += st->groups[g++].nshards)
        rc = write_group(m, g, dir, fill, sinks + k, ctx);
    if (rc < 0) goto cleanup;
    rc = graft_sink_open(&s, json, ctx);
    if (rc == 0) rc = graft_sink_write(s, m->sources[0]->data, m->sources[0]->size);
    /* every file synced before any is linked in (a kill leaves none of
     * them); shards first, then the model.json that names them */
    for (size_t i = 0; i < nsinks && rc == 0; i++) rc = graft_sink_sync(sinks[i]);
    if (rc == 0) rc = graft_sink_sync(s);
    for (size_t i = 0; i < nsinks && rc == 0; i++) {
        rc = graft_sink_commit(sinks[i]);
        sinks[i] = NULL;
    }
    if (rc == 0) {
        rc = graft_sink_commit(s);
        s = NULL;
    }
cleanup:
    graft_sink_folder_output(NULL);
    graft_sink_abort(s);
    for (size_t i = 0; i < nsinks; i++) graft_sink_abort(sinks[i]);
    free(sinks);
    free(json);
    free(dir);
    return rc;
}

const graft_format graft_format_tfjs = {
    .name = "tfjs",
    .probe = tj_probe,
    .open = tj_open,
    .write = tj_write,
};
