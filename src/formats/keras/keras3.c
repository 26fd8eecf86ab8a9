/*
 * keras3.c - Keras 3 native formats, read and rewritten through libhdf5
 * (h5.c).
 *
 * "keras3-weights": x.weights.h5 (model.save_weights), the object tree of
 * keras saving_lib: one group <path>/vars per object, its variables as
 * datasets "0", "1", ... in creation order:
 *     /layers/<layer>/vars/<i>     (nested sub-layers: /layers/<layer>/<attr>/.../vars/<i>)
 *     /optimizer/vars/<i>          /vars (the model's own, usually empty)
 * "keras": x.keras (model.save), a zip archive, members stored:
 *  1. metadata.json     {"keras_version": "3.x", "date_saved": ...}
 *  2. config.json       the model's serialized config
 *  3. model.weights.h5  the .weights.h5 layout above
 *  4. assets/...        optional
 * Tensors are named by their dataset path ("layers/dense/vars/0").  As a
 * skeleton, a .keras archive is rewritten member by member with only
 * model.weights.h5 changed (the others are copied raw).
 * "keras-named" (only when asked for with --format) reads a .keras archive
 * the same way but names the variables of config.json's top-level layers as
 * Keras does, "<layer name>/<variable>" ("dense_6/kernel"): the group key of
 * a layer is its snake_case class name made unique within `layers`
 * (dense, dense_1, ...), and each known layer class fixes its variables'
 * order (Dense: kernel, bias).  Other tensors keep their path.
 */
#define _GNU_SOURCE
#include "format.h"
#include "h5.h"
#include "json.h"
#include "layout.h"
#include "zip.h"
#include "zipw.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define WEIGHTS_MEMBER "model.weights.h5"
#define CONFIG_MAX (64u << 20)  /* bytes of config.json */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Keras requires the suffix; the layout itself is checked in open(). */
static bool probe_weights(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    return !is_dir && path && ends_with(path, ".weights.h5") && graft_h5__signature(head, n);
}

/* A zip whose first member is one Keras writes first (or named *.keras). */
static bool probe_archive(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    static const char *const first[] = {"metadata.json", "config.json", WEIGHTS_MEMBER};
    size_t len;
    if (is_dir || !head || n < 30 || memcmp(head, "PK\3\4", 4) != 0) return false;
    if (path && ends_with(path, ".keras")) return true;
    len = (size_t)(head[26] | head[27] << 8);
    for (size_t i = 0; i < sizeof first / sizeof *first; i++)
        if (len == strlen(first[i]) && n >= 30 + len && memcmp(head + 30, first[i], len) == 0)
            return true;
    return false;
}

/* In the child: every dataset, by path. */
static int walk_tree(graft_model *m, void *arg, int fd, graft_ctx *ctx)
{
    (void)arg, (void)fd;
    return graft_h5__add_tree(m, "/", "", ctx);
}

static int open_weights(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    const graft_source *src = m->sources[0];

    (void)opts;
    /* Keras 2 save_weights files, often named x.weights.h5 too, went to
     * keras-h5 by graft_keras__h5_layout. */
    GRAFT_TRY(graft_h5__attach(m, src, 0, src->size, ctx));
    return graft_h5__walk(m, walk_tree, NULL, NULL, NULL, ctx);
}

static int layouts_from_config(graft_model *m, const graft_zip *z, graft_ctx *ctx);

/* A skeleton's weights member (graft_model.defer_checks): one CRC-32 covers
 * every dataset, so the first tensor read (one the plan keeps) checks it
 * whole, once; a skeleton whose tensors are all replaced never reads it. */
static int check_member(const graft_model *m, const graft_tensor *t, graft_ctx *ctx)
{
    graft_h5_file *h = m->state;
    if (!h->crc_due) return GRAFT_OK;
    uint32_t crc = graft_source_checksum(h->src, h->base, h->size, graft_crc32);
    if (crc != h->crc)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': member " WEIGHTS_MEMBER ": CRC-32 %08x does not match "
                           "the directory's %08x", t->name, crc, h->crc);
    h->crc_due = false;
    return GRAFT_OK;
}

static int open_archive(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    const graft_source *src = m->sources[0];
    const graft_zip_entry *e;
    graft_zip *z = NULL;
    uint8_t *image = NULL;
    const uint8_t *p;
    int rc;

    (void)opts;
    GRAFT_TRY(graft_zip_open(&z, src->data, src->size, ctx));
    /* as a skeleton its members are copied into the output unchanged */
    if ((rc = graft_zip_check_copyable(z, ctx)) < 0) goto cleanup;
    e = graft_zip_find(z, WEIGHTS_MEMBER);
    if (!e) {
        rc = graft_zip_find(z, "model.weights.npz")
                 ? graft_error(ctx, GRAFT_EFORMAT,
                               "member model.weights.npz: .keras with npz weights not supported")
                 : graft_error(ctx, GRAFT_ECORRUPT, "no member " WEIGHTS_MEMBER);
        goto cleanup;
    }
    if (e->method == 0) {
        /* a skeleton's member is checked when a tensor is read (check_member) */
        p = src->data + e->data_offset;
        if (!m->defer_checks && (rc = graft_zip_borrow(z, e, src, &p, ctx)) < 0) goto cleanup;
        rc = graft_h5__attach(m, src, (uint64_t)(p - src->data), e->usize, ctx);
        if (rc == GRAFT_OK && m->defer_checks) {
            graft_h5_file *h = m->state;
            h->crc_due = true;
            h->crc = e->crc32;
        }
    } else {
        if (e->usize > SIZE_MAX || e->usize == 0) { /* the ratio: graft_zip_open */
            rc = graft_error(ctx, GRAFT_ECORRUPT, "member " WEIGHTS_MEMBER
                             ": %llu bytes claimed from %llu compressed",
                             (unsigned long long)e->usize, (unsigned long long)e->csize);
            goto cleanup;
        }
        if (!(image = graft_malloc(ctx, (size_t)e->usize))) {
            rc = graft_error_oom(ctx, "member " WEIGHTS_MEMBER);
            goto cleanup;
        }
        if ((rc = graft_zip_extract(z, e, image, e->usize, ctx)) < 0) goto cleanup;
        rc = graft_h5__attach_owned(m, image, e->usize, ctx);
        image = NULL; /* the state owns it now, even on failure */
    }
    if (rc < 0) {
        graft_error_prefix(ctx, "member " WEIGHTS_MEMBER);
        goto cleanup;
    }
    rc = graft_h5__walk(m, walk_tree, NULL, NULL, NULL, ctx);
    if (rc < 0) graft_error_prefix(ctx, "member " WEIGHTS_MEMBER);
    else rc = layouts_from_config(m, z, ctx);
    if (rc == GRAFT_OK && ((graft_h5_file *)m->state)->crc_due)
        for (size_t i = 0; i < m->count; i++) m->tensors[i].check = check_member;
cleanup:
    free(image);
    graft_zip_free(z);
    return rc;
}

/* ---- Keras-style names from config.json ---------------------------------- */

/* keras.src.utils.naming.to_snake_case for ASCII class names. */
static void snake_case(const char *s, char *out, size_t cap)
{
    size_t n = 0, len = strlen(s);
    for (size_t i = 0; i < len && n + 2 < cap; i++) {
        unsigned char c = (unsigned char)s[i], prev = i ? (unsigned char)s[i - 1] : 0;
        unsigned char next = i + 1 < len ? (unsigned char)s[i + 1] : 0;
        if (!isalnum(c) && c != '_') continue;
        /* "_" before an upper-case letter that starts a word (Xx) or follows a lower-case one */
        if (i && isupper(c) && (islower(prev) || (islower(next) && isalnum(prev))) && n)
            out[n++] = '_';
        out[n++] = (char)tolower(c);
    }
    out[n] = '\0';
}

static bool flag(const graft_json *cfg, const char *key, bool dflt)
{
    const graft_json *v = graft_json_get(cfg, key);
    return v && v->type == GRAFT_JSON_BOOL ? v->b : dflt;
}

/* The variables of a layer of class `cls`, in Keras' order; NULL when unknown. */
static size_t layer_vars(const char *cls, const graft_json *cfg, const char *out[4])
{
    size_t n = 0;
    bool bias = flag(cfg, "use_bias", true);
    if (!strcmp(cls, "Dense") || !strcmp(cls, "EinsumDense") || !strncmp(cls, "Conv", 4)) {
        out[n++] = "kernel";
        if (bias) out[n++] = "bias";
    } else if (!strncmp(cls, "DepthwiseConv", 13)) {
        out[n++] = "depthwise_kernel";
        if (bias) out[n++] = "bias";
    } else if (!strncmp(cls, "SeparableConv", 13)) {
        out[n++] = "depthwise_kernel";
        out[n++] = "pointwise_kernel";
        if (bias) out[n++] = "bias";
    } else if (!strcmp(cls, "BatchNormalization") || !strcmp(cls, "LayerNormalization")) {
        if (flag(cfg, "scale", true)) out[n++] = "gamma";
        if (flag(cfg, "center", true)) out[n++] = "beta";
        if (cls[0] == 'B') {
            out[n++] = "moving_mean";
            out[n++] = "moving_variance";
        }
    } else if (!strcmp(cls, "Embedding")) {
        out[n++] = "embeddings";
    }
    return n;
}

static const char *json_str(const graft_json *obj, const char *key)
{
    const graft_json *v = obj ? graft_json_get(obj, key) : NULL;
    return v && v->type == GRAFT_JSON_STRING && strlen(v->str) == v->len ? v->str : NULL;
}

/* Rename "layers/<key>/vars/<i>" of m after the layers of config.json. */
static int name_from_config(graft_model *m, const graft_zip *z, graft_ctx *ctx)
{
    const graft_zip_entry *e = graft_zip_find(z, "config.json");
    const graft_json *root, *layers;
    uint8_t *text = NULL;
    char **keys = NULL;
    int rc = GRAFT_OK;

    if (!e) return graft_error(ctx, GRAFT_ENOTFOUND, "no member config.json to name layers by");
    if (e->usize > CONFIG_MAX)
        return graft_error(ctx, GRAFT_ELIMIT, "member config.json: %llu bytes (limit %u)",
                           (unsigned long long)e->usize, CONFIG_MAX);
    if (!(text = graft_malloc(ctx, (size_t)e->usize + 1))) return graft_error_oom(ctx, "config.json");
    if ((rc = graft_zip_extract(z, e, text, e->usize, ctx)) < 0 ||
        (rc = graft_json_parse(&root, text, (size_t)e->usize, 0, &m->arena, ctx)) < 0) {
        graft_error_prefix(ctx, "member config.json");
        goto cleanup;
    }
    layers = graft_json_get(root, "config");
    layers = layers && layers->type == GRAFT_JSON_OBJECT ? graft_json_get(layers, "layers") : NULL;
    if (!layers || layers->type != GRAFT_JSON_ARRAY) {
        rc = graft_error(ctx, GRAFT_EFORMAT, "member config.json: no config.layers list");
        goto cleanup;
    }
    if (!(keys = graft_calloc(ctx, layers->count + 1, sizeof *keys))) {
        rc = graft_error_oom(ctx, "layer keys");
        goto cleanup;
    }
    /* The group key: snake_case class name, "_<k>" for its k-th repeat. */
    for (size_t i = 0; i < layers->count; i++) {
        const char *cls = json_str(&layers->items[i], "class_name");
        char base[128];
        size_t repeat = 0;
        if (!cls) continue;
        snake_case(cls, base, sizeof base);
        for (size_t j = 0; j < i; j++) {
            const char *other = json_str(&layers->items[j], "class_name");
            char ob[128];
            if (!other) continue;
            snake_case(other, ob, sizeof ob);
            repeat += strcmp(ob, base) == 0;
        }
        keys[i] = repeat ? graft_arena_printf(&m->arena, "%s_%zu", base, repeat)
                         : graft_arena_strdup(&m->arena, base);
        if (!keys[i]) {
            rc = graft_error_oom(ctx, "layer keys");
            goto cleanup;
        }
    }
    for (size_t t = 0; t < m->count; t++) {
        const char *name = m->tensors[t].name, *key, *slash;
        char *end;
        unsigned long idx;
        if (strncmp(name, "layers/", 7) != 0) continue;
        key = name + 7;
        if (!(slash = strchr(key, '/')) || strncmp(slash, "/vars/", 6) != 0 ||
            !isdigit((unsigned char)slash[6]))
            continue;
        idx = strtoul(slash + 6, &end, 10);
        if (*end) continue;
        for (size_t i = 0; i < layers->count; i++) {
            const graft_json *cfg = graft_json_get(&layers->items[i], "config");
            const char *vars[4], *lname = json_str(cfg, "name");
            size_t nv;
            if (!keys[i] || strlen(keys[i]) != (size_t)(slash - key) ||
                strncmp(keys[i], key, (size_t)(slash - key)) != 0 || !lname)
                continue;
            nv = layer_vars(json_str(&layers->items[i], "class_name"), cfg, vars);
            if (idx < nv) {
                char *nn = graft_arena_printf(&m->arena, "%s/%s", lname, vars[idx]);
                if (!nn) {
                    rc = graft_error_oom(ctx, "a tensor name");
                    goto cleanup;
                }
                m->tensors[t].name = nn;
            }
            break;
        }
    }
    rc = graft_layout__keras_config(m, root, ctx); /* roles and layouts, by these names */
cleanup:
    free(keys);
    free(text);
    return rc;
}

/* A plain .keras archive keeps its object-path names: name the tensors after
 * config.json only long enough to read their roles and layouts from it. */
static int layouts_from_config(graft_model *m, const graft_zip *z, graft_ctx *ctx)
{
    const char **names = graft_calloc(ctx, m->count ? m->count : 1, sizeof *names);
    int rc;
    if (!names) return graft_error_oom(ctx, "tensor names");
    for (size_t i = 0; i < m->count; i++) names[i] = m->tensors[i].name;
    rc = graft_layout__settle(name_from_config(m, z, ctx), ctx); /* the weights do not need it */
    for (size_t i = 0; i < m->count; i++) m->tensors[i].name = names[i];
    free(names);
    return rc;
}

static int open_named(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    const graft_source *src = m->sources[0];
    graft_zip *z = NULL;
    int rc;
    GRAFT_TRY(open_archive(m, opts, ctx));
    GRAFT_TRY(graft_zip_open(&z, src->data, src->size, ctx));
    rc = name_from_config(m, z, ctx);
    graft_zip_free(z);
    return rc;
}

static int write_weights(const graft_model *m, const char *out_path, graft_fill *fill,
                         graft_ctx *ctx)
{
    return graft_h5__write_checked(m, out_path, fill, ctx);
}

/* Rewrite model.weights.h5 beside the output, then the archive around it. */
static int write_archive(const graft_model *m, const char *out_path, graft_fill *fill,
                         graft_ctx *ctx)
{
    const graft_source *src = m->sources[0];
    graft_zip *z = NULL;
    graft_sink *inner = NULL, *out = NULL;
    graft_zipw *w = NULL;
    char *inner_path = NULL;
    uint8_t *map = MAP_FAILED;
    uint64_t size = 0;
    int fd = -1, rc;

    if ((rc = graft_zip_open(&z, src->data, src->size, ctx)) < 0) goto cleanup;
    if (!(inner_path = graft_malloc(ctx, strlen(out_path) + sizeof "." WEIGHTS_MEMBER))) {
        rc = graft_error_oom(ctx, "a path");
        goto cleanup;
    }
    sprintf(inner_path, "%s." WEIGHTS_MEMBER, out_path);
    if ((rc = graft_sink_open(&inner, inner_path, ctx)) < 0) goto cleanup;
    if ((rc = graft_h5__rewrite(m, inner, fill, ctx)) < 0 ||
        (rc = graft_h5__check_copy(m, inner, ctx)) < 0 ||
        (rc = graft_sink_reopen(inner, &fd, ctx)) < 0)
        goto cleanup;
    size = graft_sink_tell(inner);
    if (size) map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = graft_error(ctx, GRAFT_EIO, "%s: cannot map the new " WEIGHTS_MEMBER, out_path);
        goto cleanup;
    }
    if ((rc = graft_sink_open(&out, out_path, ctx)) < 0 ||
        (rc = graft_zipw_new(&w, out, false, ctx)) < 0)
        goto cleanup;
    for (size_t i = 0; i < z->count && rc == GRAFT_OK; i++) {
        const graft_zip_entry *e = &z->entries[i];
        if (strcmp(e->name, WEIGHTS_MEMBER) == 0)
            rc = graft_zipw_add(w, e->name, map, (size_t)size, 0,
                                e->method == 8 ? GRAFT_ZIPW_DEFLATED : GRAFT_ZIPW_STORED);
        else if ((rc = graft_zipw_copy(w, z, e, NULL, 0)) < 0)
            graft_error_prefix(ctx, "%s", src->path);
    }
    if (rc == GRAFT_OK) rc = graft_zipw_finish(w);
    graft_zipw_free(w);
    w = NULL;
    if (rc == GRAFT_OK) {
        rc = graft_sink_commit(out);
        out = NULL;
    }
cleanup:
    graft_zipw_free(w);
    graft_sink_abort(out);
    if (map != MAP_FAILED) munmap(map, (size_t)size);
    if (fd >= 0) close(fd);
    graft_sink_abort(inner);
    free(inner_path);
    graft_zip_free(z);
    return rc;
}

const graft_format graft_format_keras3_weights = {
    .name = "keras3-weights",
    .probe = probe_weights,
    .open = open_weights,
    .write = write_weights,
    .layout = graft_keras__h5_layout,
};

/* Never claims a file by itself: --format keras-named. */
static bool probe_never(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    (void)path, (void)is_dir, (void)head, (void)n;
    return false;
}

const graft_format graft_format_keras_named = {
    .name = "keras-named",
    .probe = probe_never,
    .open = open_named,
    .write = write_archive,
};

const graft_format graft_format_keras = {
    .name = "keras",
    .probe = probe_archive,
    .open = open_archive,
    .write = write_archive,
};
