/*
 * keras_h5.c - Keras 2 / tf.keras HDF5 files (model.save and save_weights)
 * and Keras 3 legacy .h5, read and rewritten through libhdf5 (h5.c).
 *
 * Layout (HDF5 objects; see specs/keras-h5.md):
 *  1. The HDF5 signature \x89HDF\r\n\x1a\n at offset 0 or 512, 1024, ...
 *  2. model.save: root attributes keras_version, backend, model_config and
 *     training_config (JSON); group /model_weights with attribute layer_names
 *     (or layer_names0, layer_names1, ... when long); per layer a group
 *     /model_weights/<layer> with attribute weight_names; each weight is the
 *     dataset /model_weights/<layer>/<weight name> ("dense/kernel:0"; Keras 3
 *     writes "sequential/dense/kernel" without ":0"); a group
 *     top_level_model_weights in the same form; /optimizer_weights with
 *     weight_names and datasets /optimizer_weights/<name>.
 *  3. save_weights: the /model_weights layout at the root.
 * Tensors are named by the weight_names entries, optimizer slots prefixed
 * "optimizer_weights/".  A file in the Keras 3 object layout (layers/...)
 * is handed to keras3-weights.
 */
#include "format.h"
#include "h5.h"
#include "strmap.h"
#include "layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const graft_format graft_format_keras_h5;
extern const graft_format graft_format_keras3_weights;

static bool probe(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    (void)path;
    return !is_dir && graft_h5__signature(head, n);
}

static char *join(graft_model *m, const char *a, const char *b)
{
    size_t la = strlen(a);
    return graft_arena_printf(&m->arena, "%s%s%s", a, la && a[la - 1] == '/' ? "" : "/", b);
}

/* The datasets of one group listed by its weight_names, named `prefix` + name. */
static int add_weights(graft_model *m, const char *gpath, const char *what, const char *prefix,
                       bool required, graft_ctx *ctx)
{
    const graft_h5_file *h = m->state;
    char **names, *where;
    size_t n;
    hid_t g;
    int rc;

    if (!(where = graft_arena_printf(&m->arena, "%s", what))) return graft_error_oom(ctx, "a name");
    g = H5Gopen2(h->file, gpath, h->gapl);
    if (g < 0) return graft_h5__fail(ctx, GRAFT_ECORRUPT, "%s", where);
    rc = graft_h5__name_list(m, g, where, "weight_names", &names, &n, ctx);
    H5Gclose(g);
    if (rc == GRAFT_ENOTFOUND && !required) {
        graft_ctx_clear(ctx);
        return graft_h5__add_tree(m, gpath, prefix, ctx);
    }
    if (rc < 0) return rc == GRAFT_ENOTFOUND ? (ctx->status = GRAFT_ECORRUPT) : rc;
    for (size_t i = 0; i < n; i++) {
        char *dpath = join(m, gpath, names[i]);
        char *name = *prefix ? graft_arena_printf(&m->arena, "%s/%s", prefix, names[i])
                             : names[i];
        H5O_type_t ty;
        if (!dpath || !name) return graft_error_oom(ctx, "a dataset path");
        ty = graft_h5__obj_type(h, h->file, dpath);
        if (ty != H5O_TYPE_DATASET)
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "%s: weight '%s' listed in weight_names: %s%s", where, names[i],
                               graft_h5__is_external(h, h->file, dpath)
                                   ? "an external link to another file (refused)"
                               : ty == H5O_TYPE_UNKNOWN ? "no such dataset"
                                                        : "not a dataset",
                               ty == H5O_TYPE_UNKNOWN ? graft_h5__lookup_error() : "");
        GRAFT_TRY(graft_h5__add_dataset(m, dpath, name, ctx));
    }
    return GRAFT_OK;
}

static const char *tensor_name(const void *owner, size_t i, size_t *len)
{
    const char *name = ((const graft_model *)owner)->tensors[i].name;
    *len = strlen(name);
    return name;
}

/*
 * Weight names are unique per layer, not per file: quantizer layers of HGQ
 * and QKeras each list "keep_negative:0", "bits:0" and "integers:0".  Those
 * that occur in more than one layer are named "<layer>/<weight>" (as tfjs
 * names every weight); names that are unique stay as written.
 * layer_of[i - first] is the layer of tensor i.
 */
static int name_shared_weights(graft_model *m, size_t first, char *const *layer_of,
                               graft_ctx *ctx)
{
    graft_strmap map;
    size_t n = m->count - first;
    bool *dup = graft_calloc(ctx, n + 1, sizeof *dup);
    int rc = GRAFT_OK;
    if (!dup) return graft_error_oom(ctx, "weight names");
    graft_strmap_init(&map, tensor_name, m);
    if ((rc = graft_strmap_reserve(&map, m->count, ctx)) < 0) goto cleanup;
    for (size_t i = 0; i < m->count; i++) {
        size_t prev = graft_strmap_put(&map, i);
        if (prev == GRAFT_STRMAP_NONE || i < first) continue;
        if (prev < first) { /* a name from before the layers: left as it is */
            rc = graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': name appears twice",
                             m->tensors[i].name);
            goto cleanup;
        }
        dup[prev - first] = dup[i - first] = true;
    }
    for (size_t k = 0; k < n; k++) {
        if (!dup[k]) continue;
        char *nn = graft_arena_printf(&m->arena, "%s/%s", layer_of[k],
                                      m->tensors[first + k].name);
        if (!nn) {
            rc = graft_error_oom(ctx, "a weight name");
            goto cleanup;
        }
        m->tensors[first + k].name = nn;
    }
cleanup:
    graft_strmap_free(&map);
    free(dup);
    return rc;
}

static int add_layers(graft_model *m, const char *base, graft_ctx *ctx)
{
    const graft_h5_file *h = m->state;
    char **layers, *where;
    size_t n;
    hid_t g;
    int rc;
    bool top_listed = false;

    where = graft_arena_printf(&m->arena, "group '%s'", base);
    if (!where) return graft_error_oom(ctx, "a name");
    g = H5Gopen2(h->file, base, h->gapl);
    if (g < 0) return graft_h5__fail(ctx, GRAFT_ECORRUPT, "%s", where);
    rc = graft_h5__name_list(m, g, where, "layer_names", &layers, &n, ctx);
    H5Gclose(g);
    if (rc < 0) return rc == GRAFT_ENOTFOUND ? (ctx->status = GRAFT_ECORRUPT) : rc;
    size_t first = m->count, cap = 0;
    char **layer_of = NULL;
    for (size_t i = 0; i < n; i++) {
        char *lpath = join(m, base, layers[i]);
        char *what = graft_arena_printf(&m->arena, "layer '%s'", layers[i]);
        if (!lpath || !what) rc = graft_error_oom(ctx, "a layer path");
        else if (graft_h5__obj_type(h, h->file, lpath) != H5O_TYPE_GROUP)
            rc = graft_error(ctx, GRAFT_ECORRUPT,
                             "layer '%s' listed in layer_names of '%s': no such group%s",
                             layers[i], base, graft_h5__lookup_error());
        if (rc < 0) break;
        top_listed |= strcmp(layers[i], "top_level_model_weights") == 0;
        size_t before = m->count;
        if ((rc = add_weights(m, lpath, what, "", true, ctx)) < 0) break;
        if (m->count - first > cap) {
            size_t nc = (m->count - first) * 2;
            char **nl = graft_realloc(ctx, layer_of, nc * sizeof *nl);
            if (!nl) {
                rc = graft_error_oom(ctx, "weight names");
                break;
            }
            layer_of = nl;
            cap = nc;
        }
        for (size_t t = before; t < m->count; t++) layer_of[t - first] = layers[i];
    }
    if (rc == 0) rc = name_shared_weights(m, first, layer_of, ctx);
    free(layer_of);
    GRAFT_TRY(rc);
    /* Weights owned by the model itself (tf.keras >= 2.9, Keras 3). */
    char *top = join(m, base, "top_level_model_weights");
    if (!top) return graft_error_oom(ctx, "a path");
    if (!top_listed && graft_h5__obj_type(h, h->file, top) == H5O_TYPE_GROUP)
        GRAFT_TRY(add_weights(m, top, "group 'top_level_model_weights'", "", false, ctx));
    return GRAFT_OK;
}

/* Keras 2 / tf.keras: a layer_names attribute at the root (save_weights) or
 * a model_weights group (model.save). */
static bool keras2_layout(const graft_h5_file *h)
{
    return graft_h5__has_attr(h->file, "layer_names", "the file") ||
           graft_h5__has_attr(h->file, "layer_names0", "the file") ||
           graft_h5__obj_type(h, h->file, "/model_weights") == H5O_TYPE_GROUP;
}

/* Keras 3 (x.weights.h5): the object tree of the saved model. */
static bool keras3_layout(const graft_h5_file *h)
{
    return graft_h5__obj_type(h, h->file, "/layers") == H5O_TYPE_GROUP ||
           graft_h5__obj_type(h, h->file, "/_layer_checkpoint_dependencies") == H5O_TYPE_GROUP ||
           graft_h5__obj_type(h, h->file, "/vars") == H5O_TYPE_GROUP;
}

/* In the child: the model_config attribute of a model.save file, sent as a
 * 'C' record for the parent to read roles and layouts from. */
static int send_config(graft_model *m, const graft_h5_file *h, int fd, graft_ctx *ctx)
{
    char **v;
    size_t n;
    if (!graft_h5__has_attr(h->file, "model_config", "the file")) return 0;
    if (graft_h5__name_list(m, h->file, "file", "model_config", &v, &n, ctx) < 0 || n != 1) {
        graft_ctx_clear(ctx); /* the weights do not depend on it */
        return 0;
    }
    return graft_h5__put(fd, 'C', v[0], strlen(v[0])) < 0 ? graft_error(ctx, GRAFT_EIO, "pipe closed")
                                                           : 0;
}

typedef struct config {
    uint8_t *json;          /* malloc */
    size_t n;
    graft_ctx *ctx;
} config;

static int take_config(void *arg, uint8_t kind, const uint8_t *p, size_t n)
{
    config *c = arg;
    if (kind != 'C' || c->json) return GRAFT_OK;
    if (!(c->json = graft_malloc(c->ctx, n ? n : 1))) return graft_error_oom(c->ctx, "model_config");
    memcpy(c->json, p, n);
    c->n = n;
    return GRAFT_OK;
}

/* In the child: which layout the file has, as an 'L' record (2 Keras 2, 3
 * Keras 3, 0 neither). */
static int which_layout(graft_model *m, void *arg, int fd, graft_ctx *ctx)
{
    const graft_h5_file *h = m->state;
    uint8_t v = keras2_layout(h) ? 2 : keras3_layout(h) ? 3 : 0;
    (void)arg;
    return graft_h5__put(fd, 'L', &v, 1) < 0 ? graft_error(ctx, GRAFT_EIO, "pipe closed") : 0;
}

static int take_layout(void *arg, uint8_t kind, const uint8_t *p, size_t n)
{
    if (kind == 'L' && n == 1) *(uint8_t *)arg = p[0];
    return GRAFT_OK;
}

int graft_keras__h5_layout(graft_model *m, const graft_format **out, graft_ctx *ctx)
{
    const graft_source *src = m->sources[0];
    uint8_t v = 0;

    GRAFT_TRY(graft_h5__attach(m, src, 0, src->size, ctx));
    GRAFT_TRY(graft_h5__walk(m, which_layout, NULL, take_layout, &v, ctx));
    if (v == 2)
        *out = &graft_format_keras_h5;
    else if (v == 3)
        *out = &graft_format_keras3_weights;
    return GRAFT_OK;
}

/* In the child: every weight, by weight_names. */
static int walk_keras(graft_model *m, void *arg, int fd, graft_ctx *ctx)
{
    const graft_h5_file *h = m->state;
    (void)arg;
    if (graft_h5__has_attr(h->file, "layer_names", "the file") || graft_h5__has_attr(h->file, "layer_names0", "the file"))
        return add_layers(m, "/", ctx);
    if (graft_h5__obj_type(h, h->file, "/model_weights") == H5O_TYPE_GROUP) {
        GRAFT_TRY(add_layers(m, "/model_weights", ctx));
        if (graft_h5__obj_type(h, h->file, "/optimizer_weights") == H5O_TYPE_GROUP)
            GRAFT_TRY(add_weights(m, "/optimizer_weights", "group 'optimizer_weights'",
                                  "optimizer_weights", false, ctx));
        return send_config(m, h, fd, ctx);
    }
    return graft_error(ctx, GRAFT_EFORMAT,
                       "HDF5 file without Keras weights (no layer_names attribute, "
                       "no model_weights or layers group)");
}

static int open_keras(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    const graft_source *src = m->sources[0];
    config c = {.ctx = ctx};
    int rc;

    (void)opts;
    GRAFT_TRY(graft_h5__attach(m, src, 0, src->size, ctx));
    rc = graft_h5__walk(m, walk_keras, NULL, take_config, &c, ctx);
    /* roles and layouts from model_config (graft's own JSON reader) */
    if (rc == 0 && c.json)
        rc = graft_layout__settle(graft_layout__keras(m, c.json, c.n, ctx), ctx);
    free(c.json);
    return rc;
}

static int write_keras(const graft_model *m, const char *out_path, graft_fill *fill,
                       graft_ctx *ctx)
{
    return graft_h5__write_checked(m, out_path, fill, ctx);
}

const graft_format graft_format_keras_h5 = {
    .name = "keras-h5",
    .probe = probe,
    .open = open_keras,
    .write = write_keras,
    .layout = graft_keras__h5_layout,
};
