/*
 * keras_cfg.c - roles and layouts from a Keras model config: the
 * `model_config` attribute of a model.save HDF5 file, or config.json of a
 * .keras archive (the JSON of model.get_config() with class names).
 *
 * Config shape (keras/src/models/functional.py, sequential.py; Keras 2
 * engine/functional.py):
 *   {"class_name": "Sequential" | "Functional" | "Model",
 *    "config": {"name", "layers": [{"class_name", "config": {"name", ...},
 *               "inbound_nodes": ...}, ...]}}
 *   Keras 2.0-2.2 Sequential: "config" is the list of layers itself.
 *   Nested models appear as layers with their own "layers".
 *   Functional inbound_nodes: Keras 2 [[["pred", 0, 0, {}]]]; Keras 3
 *   [{"args": [{"class_name": "__keras_tensor__", "config":
 *   {"keras_history": ["pred", 0, 0]}}]}].
 * A weight named ".../<layer>/.../<var>[:0]" belongs to the first path
 * component that names a layer; its role follows the layer class and var.
 * A Dense whose input comes through a Flatten of a feature map gets the
 * flatten order (HWC, CHW for data_format channels_first), the channels
 * (Flatten's build_config input_shape, or the filters of the convolution
 * before it, through layers that keep channels) and the spatial size.
 */
#include "layout_int.h"
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAYERS 100000

typedef struct klayer {
    const char *name, *cls;
    const graft_json *cfg, *item;
    const char *pred;   /* input layer's name, NULL = none known */
} klayer;

typedef struct klist {
    klayer *v;
    size_t n, cap;
} klist;

static const char *jstr(const graft_json *obj, const char *key)
{
    const graft_json *v = obj && obj->type == GRAFT_JSON_OBJECT ? graft_json_get(obj, key) : NULL;
    return v && v->type == GRAFT_JSON_STRING && strlen(v->str) == v->len ? v->str : NULL;
}

static const graft_json *jidx(const graft_json *a, size_t i)
{
    return a && a->type == GRAFT_JSON_ARRAY && i < a->count ? &a->items[i] : NULL;
}

/* The name of the layer feeding `item` in a functional model. */
static const char *inbound(const graft_json *item)
{
    const graft_json *nodes = graft_json_get(item, "inbound_nodes"), *n0 = jidx(nodes, 0);
    if (!n0) return NULL;
    if (n0->type == GRAFT_JSON_ARRAY) { /* Keras 2 */
        const graft_json *t = jidx(n0, 0), *s = jidx(t, 0);
        return s && s->type == GRAFT_JSON_STRING ? s->str : NULL;
    }
    if (n0->type == GRAFT_JSON_OBJECT) { /* Keras 3 */
        const graft_json *a = jidx(graft_json_get(n0, "args"), 0);
        const graft_json *c = a && a->type == GRAFT_JSON_OBJECT ? graft_json_get(a, "config") : NULL;
        const graft_json *h = c && c->type == GRAFT_JSON_OBJECT ? graft_json_get(c, "keras_history") : NULL;
        const graft_json *s = jidx(h, 0);
        return s && s->type == GRAFT_JSON_STRING ? s->str : NULL;
    }
    return NULL;
}

static int collect(klist *L, const graft_json *model, int depth)
{
    const graft_json *cfg = graft_json_get(model, "config"), *layers = NULL;
    bool sequential = false;
    const char *cls = jstr(model, "class_name");
    if (depth > 16 || !cfg) return 0;
    sequential = cls && !strcmp(cls, "Sequential");
    if (cfg->type == GRAFT_JSON_ARRAY) layers = cfg;
    else if (cfg->type == GRAFT_JSON_OBJECT) layers = graft_json_get(cfg, "layers");
    if (!layers || layers->type != GRAFT_JSON_ARRAY) return 0;
    const char *prev = NULL;
    for (size_t i = 0; i < layers->count; i++) {
        const graft_json *it = &layers->items[i];
        if (it->type != GRAFT_JSON_OBJECT) continue;
        const graft_json *lc = graft_json_get(it, "config");
        const char *lcls = jstr(it, "class_name"), *name = jstr(lc, "name");
        if (!name) name = jstr(it, "name");
        if (!lcls || !name) continue;
        if (L->n == L->cap) {
            size_t cap = L->cap ? 2 * L->cap : 32;
            klayer *nv = cap > MAX_LAYERS ? NULL : realloc(L->v, cap * sizeof *nv);
            if (!nv) return -1;
            L->v = nv, L->cap = cap;
        }
        klayer *k = &L->v[L->n++];
        k->name = name, k->cls = lcls, k->cfg = lc, k->item = it;
        k->pred = sequential ? prev : inbound(it);
        prev = name;
        if (lc && lc->type == GRAFT_JSON_OBJECT && graft_json_get(lc, "layers") &&
            collect(L, it, depth + 1) < 0)
            return -1;
    }
    return 0;
}

static const klayer *find_layer(const klist *L, const char *name, size_t n)
{
    for (size_t i = 0; i < L->n; i++)
        if (strlen(L->v[i].name) == n && !memcmp(L->v[i].name, name, n)) return &L->v[i];
    return NULL;
}

static bool starts(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

static int64_t jint(const graft_json *obj, const char *key)
{
    const graft_json *v = obj && obj->type == GRAFT_JSON_OBJECT ? graft_json_get(obj, key) : NULL;
    return v && v->type == GRAFT_JSON_INT ? v->i : 0;
}

/* A layer that keeps the channel count of a feature map. */
static bool keeps_channels(const char *cls)
{
    static const char *const keep[] = {"MaxPool", "AveragePool", "Activation", "ReLU",
                                       "LeakyReLU", "PReLU", "ELU", "Dropout", "SpatialDropout",
                                       "BatchNormalization", "ZeroPadding", "Cropping",
                                       "UpSampling", "GaussianNoise", "LayerNormalization", NULL};
    for (int i = 0; keep[i]; i++)
        if (starts(cls, keep[i])) return true;
    return false;
}

/* The tensor of m holding weight `var` of layer `layer` (a path component). */
static const graft_tensor *layer_weight(const graft_model *m, const char *layer, const char *var)
{
    size_t ln = strlen(layer), vn = strlen(var);
    for (size_t i = 0; i < m->count; i++) {
        const char *n = m->tensors[i].name, *last = strrchr(n, '/');
        if (!last || strncmp(last + 1, var, vn) || (last[1 + vn] && strcmp(last + 1 + vn, ":0")))
            continue;
        for (const char *p = n; p < last; p = strchr(p, '/') + 1)
            if (!strncmp(p, layer, ln) && p[ln] == '/') return &m->tensors[i];
    }
    return NULL;
}

/* Flatten before Dense `d` with in-features `in`: fill l's flatten fields. */
static void flatten_of(const graft_model *m, const klist *L, const klayer *d, int64_t in,
                       graft_layout *l)
{
    const klayer *f = d->pred ? find_layer(L, d->pred, strlen(d->pred)) : NULL;
    while (f && (starts(f->cls, "Dropout") || starts(f->cls, "Activation")))
        f = f->pred ? find_layer(L, f->pred, strlen(f->pred)) : NULL;
    if (!f || strcmp(f->cls, "Flatten")) return;
    const char *df = jstr(f->cfg, "data_format");
    bool chw = df && !strcmp(df, "channels_first");
    int64_t c = 0, h = 0, w = 0;
    /* Keras 3: build_config.input_shape [null, H, W, C] */
    const graft_json *bc = graft_json_get(f->item, "build_config");
    const graft_json *shp = bc && bc->type == GRAFT_JSON_OBJECT ? graft_json_get(bc, "input_shape") : NULL;
    if (shp && shp->type == GRAFT_JSON_ARRAY && shp->count == 4) {
        const graft_json *a = jidx(shp, 1), *b = jidx(shp, 2), *cc = jidx(shp, 3);
        if (a->type == GRAFT_JSON_INT && b->type == GRAFT_JSON_INT && cc->type == GRAFT_JSON_INT) {
            h = chw ? b->i : a->i, w = chw ? cc->i : b->i, c = chw ? a->i : cc->i;
        }
    }
    for (const klayer *p = f->pred ? find_layer(L, f->pred, strlen(f->pred)) : NULL; p && !c;
         p = p->pred ? find_layer(L, p->pred, strlen(p->pred)) : NULL) {
        if (starts(p->cls, "Conv") || starts(p->cls, "SeparableConv")) {
            c = jint(p->cfg, "filters");
            break;
        }
        if (starts(p->cls, "DepthwiseConv")) { /* C * M, from its kernel */
            const graft_tensor *k = layer_weight(m, p->name, "depthwise_kernel");
            c = k && k->ndim == 4 ? k->shape[2] * k->shape[3] : 0;
            break;
        }
        if (!keeps_channels(p->cls)) break;
    }
    if (c <= 0 || in % c || in / c < 2) return;
    if (h && w && h * w * c != in) return;
    snprintf(l->flatten, sizeof l->flatten, "%s", chw ? "CHW" : "HWC");
    l->flat_c = c, l->flat_s = in / c, l->flat_h = h, l->flat_w = w;
}

/* The role of weight `var` of a layer of class cls; gates set for RNNs. */
static graft_role role_of(const char *cls, const char *var, size_t vn, graft_layout *l)
{
#define V(s) (vn == strlen(s) && !strncmp(var, s, vn))
    bool lstm = strstr(cls, "LSTM") != NULL, gru = strstr(cls, "GRU") != NULL;
    if (lstm || gru) {
        snprintf(l->gates, sizeof l->gates, "%s", graft_layout__gates_for(GRAFT_FAM_KERAS, lstm ? 4 : 3));
        if (V("kernel")) return GRAFT_ROLE_RNN_INPUT_KERNEL;
        if (V("recurrent_kernel")) return GRAFT_ROLE_RNN_HIDDEN_KERNEL;
        if (V("bias")) return GRAFT_ROLE_RNN_BIAS;
        l->gates[0] = '\0';
        return GRAFT_ROLE_OTHER;
    }
    if (V("bias")) return GRAFT_ROLE_BIAS;
    if (starts(cls, "Conv") && strstr(cls, "Transpose") && V("kernel")) return GRAFT_ROLE_CONV_TRANSPOSE;
    if (starts(cls, "Conv") && V("kernel")) return GRAFT_ROLE_CONV;
    if (V("depthwise_kernel")) return GRAFT_ROLE_DEPTHWISE;
    if (V("pointwise_kernel")) return GRAFT_ROLE_CONV;
    if (!strcmp(cls, "Dense") && V("kernel")) return GRAFT_ROLE_DENSE;
    if (!strcmp(cls, "Embedding") && V("embeddings")) return GRAFT_ROLE_EMBEDDING;
    if (strstr(cls, "Normalization")) {
        if (V("gamma")) return GRAFT_ROLE_NORM_SCALE;
        if (V("beta")) return GRAFT_ROLE_NORM_SHIFT;
        if (V("moving_mean")) return GRAFT_ROLE_NORM_MEAN;
        if (V("moving_variance")) return GRAFT_ROLE_NORM_VAR;
    }
    return GRAFT_ROLE_OTHER;
#undef V
}

int graft_layout__keras_config(graft_model *m, const graft_json *root, graft_ctx *ctx)
{
    klist L = {0};
    int rc = 0;
    if (!root || root->type != GRAFT_JSON_OBJECT) goto cleanup;
    if (collect(&L, root, 0) < 0) {
        rc = graft_error_oom(ctx, "a Keras layer list");
        goto cleanup;
    }
    for (size_t i = 0; i < m->count; i++) {
        graft_tensor *t = &m->tensors[i];
        const char *name = t->name, *last = strrchr(name, '/');
        const klayer *k = NULL;
        if (!last || starts(name, "optimizer_weights/")) continue;
        /* the first path component naming a layer */
        for (const char *p = name; p < last && !k;) {
            const char *e = strchr(p, '/');
            k = find_layer(&L, p, (size_t)(e - p));
            p = e + 1;
        }
        if (!k) { /* tf.keras 2.3 may name weights conv2d_2_1/kernel:0 in layer conv2d_2 */
            const char *e = strchr(name, '/'), *u = e;
            while (u > name && u[-1] >= '0' && u[-1] <= '9') u--;
            if (u < e && u > name + 1 && u[-1] == '_') k = find_layer(&L, name, (size_t)(u - 1 - name));
        }
        if (!k) continue;
        const char *var = last + 1;
        size_t vn = strlen(var);
        if (vn > 2 && !strcmp(var + vn - 2, ":0")) vn -= 2;
        graft_layout l;
        memset(&l, 0, sizeof l);
        l.family = GRAFT_FAM_KERAS;
        l.layer = k->name;
        l.op = k->cls;
        l.role = role_of(k->cls, var, vn, &l);
        snprintf(l.axes, sizeof l.axes, "%s", graft_layout__axes_for(GRAFT_FAM_KERAS, l.role, t->ndim));
        if (l.role == GRAFT_ROLE_DENSE && t->ndim == 2) flatten_of(m, &L, k, t->shape[0], &l);
        if (l.role == GRAFT_ROLE_OTHER) continue; /* leave it to naming conventions */
        if (!graft_layout__attach(m, t, &l)) {
            rc = graft_error_oom(ctx, "a tensor layout");
            goto cleanup;
        }
    }
cleanup:
    free(L.v);
    return rc;
}

int graft_layout__keras(graft_model *m, const uint8_t *json, size_t n, graft_ctx *ctx)
{
    const graft_json *root = NULL;
    int rc = graft_json_parse(&root, json, n, 0, &m->arena, ctx);
    if (rc < 0) return graft_layout__settle(rc, ctx);
    return graft_layout__keras_config(m, root, ctx);
}
