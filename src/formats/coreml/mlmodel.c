/*
 * mlmodel.c - format "coreml": Core ML .mlmodel files with a neural network.
 *
 * Layout (protobuf, proto3 wire format; apple/coremltools mlmodel/format,
 * vendored in schemas/coreml/):
 *  1. Model (Model.proto): 1 specificationVersion, 2 description, and one of
 *     303 neuralNetworkRegressor, 403 neuralNetworkClassifier,
 *     500 neuralNetwork (502 mlProgram lives in an .mlpackage instead);
 *  2. NeuralNetwork / NeuralNetworkClassifier / NeuralNetworkRegressor
 *     (NeuralNetwork.proto): 1 layers repeated NeuralNetworkLayer;
 *  3. NeuralNetworkLayer: 1 name, then one layer-params message (convolution
 *     100, innerProduct 140, batchnorm 160, ...), each holding WeightParams;
 *  4. WeightParams: 1 floatValue (packed float32), 2 float16Value (bytes),
 *     30 rawValue (bytes), 31 int8RawValue (bytes), 40 quantization.
 * Field numbers below Model come from the protobuf-c descriptors compiled from
 * those .proto files, looked up by name: the walk descends into every message
 * field of a layer and lists each WeightParams with values as a tensor named
 * "<layer>/<field>" ("conv1/weights", "bn/gamma"; "/<i>" added for a repeated
 * field), a zero-copy view of the stored values: float32, float16, or
 * uint8/int8 bytes.  Shapes are Core ML's: convolution weights
 * [outputChannels, kernelChannels, kernelHeight, kernelWidth] (deconvolution
 * [kernelChannels, outputChannels / nGroups, kH, kW]), inner product and
 * embedding [outputChannels, inputChannels or inputDim], biases
 * [outputChannels], batchnorm [channels]; other weights are 1-D.
 *
 * Writing keeps every byte and replaces the values in place (their sizes do
 * not change), so identity apply gives the same file.
 */
#include "format.h"
#include "layout.h"
#include "pb.h"

#include "NeuralNetwork.pb-c.h"

#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 24 /* nested messages (loop bodies hold networks of layers) */

static const ProtobufCMessageDescriptor *const WP = &core_ml__specification__weight_params__descriptor;
static const ProtobufCMessageDescriptor *const LAYER =
    &core_ml__specification__neural_network_layer__descriptor;

enum { MODEL_REGRESSOR = 303, MODEL_CLASSIFIER = 403, MODEL_NETWORK = 500, MODEL_PROGRAM = 502 };

static bool ml_probe(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    size_t len = strlen(path);
    (void)head;
    (void)n;
    return !is_dir && len > 8 && strcmp(path + len - 8, ".mlmodel") == 0;
}

/* Field number of `name` in d (0 when the schema has none). */
static uint32_t num_of(const ProtobufCMessageDescriptor *d, const char *name)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
    return f ? f->id : 0;
}

/* Up to `max` unsigned values of field `name` of message r (packed or not). */
static int uints(graft_rd r, const ProtobufCMessageDescriptor *d, const char *name,
                 uint64_t *out, size_t max, size_t *n)
{
    uint32_t num = num_of(d, name);
    graft_pbf f;
    *n = 0;
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num != num) continue;
        if (f.wt == GRAFT_PB_VARINT && *n < max) out[(*n)++] = f.v;
        while (f.wt == GRAFT_PB_LEN && graft_rd_left(&f.sub)) {
            uint64_t v;
            GRAFT_TRY(graft_rd_varint(&f.sub, &v));
            if (*n < max) out[(*n)++] = v;
        }
    }
    return GRAFT_OK;
}

static uint64_t uint_or(graft_rd r, const ProtobufCMessageDescriptor *d, const char *name,
                        uint64_t def, int *rc)
{
    uint64_t v[1];
    size_t n;
    *rc = uints(r, d, name, v, 1, &n);
    return n ? v[0] : def;
}

/* Core ML's shape for WeightParams `field` of the params message `parent`
 * (see the top of the file); ndim 1 (all values) when no rule applies. */
static int shape_of(graft_rd parent, const ProtobufCMessageDescriptor *pd, const char *field,
                    uint64_t numel, int64_t *shape, uint32_t *ndim)
{
    int rc = GRAFT_OK;
    bool bias = strcmp(field, "bias") == 0, weights = strcmp(field, "weights") == 0;
    *ndim = 1;
    shape[0] = (int64_t)numel;
    if (pd == &core_ml__specification__convolution_layer_params__descriptor && (weights || bias)) {
        uint64_t out = uint_or(parent, pd, "outputChannels", 0, &rc);
        uint64_t kc = uint_or(parent, pd, "kernelChannels", 0, &rc);
        uint64_t groups = uint_or(parent, pd, "nGroups", 1, &rc);
        bool deconv = uint_or(parent, pd, "isDeconvolution", 0, &rc) != 0;
        uint64_t ks[2] = {3, 3};
        size_t nk;
        GRAFT_TRY(rc);
        GRAFT_TRY(uints(parent, pd, "kernelSize", ks, 2, &nk));
        if (nk == 1) ks[1] = 3;
        if (bias) {
            shape[0] = (int64_t)out;
            return GRAFT_OK;
        }
        if (groups == 0) groups = 1;
        *ndim = 4;
        shape[0] = (int64_t)(deconv ? kc : out);
        shape[1] = (int64_t)(deconv ? out / groups : kc);
        shape[2] = (int64_t)ks[0];
        shape[3] = (int64_t)ks[1];
    } else if ((pd == &core_ml__specification__inner_product_layer_params__descriptor ||
                pd == &core_ml__specification__embedding_layer_params__descriptor) &&
               (weights || bias)) {
        bool ip = pd == &core_ml__specification__inner_product_layer_params__descriptor;
        shape[0] = (int64_t)uint_or(parent, pd, "outputChannels", 0, &rc);
        if (weights) {
            *ndim = 2;
            shape[1] = (int64_t)uint_or(parent, pd, ip ? "inputChannels" : "inputDim", 0, &rc);
        }
    } else if (pd == &core_ml__specification__batchnorm_layer_params__descriptor) {
        shape[0] = (int64_t)uint_or(parent, pd, "channels", 0, &rc);
    }
    for (uint32_t i = 0; i < *ndim; i++)
        if (shape[i] < 0) shape[i] = INT64_MAX; /* a uint64 past int64: fails the count check */
    return rc;
}

/* The role and layout the layer's params message gives weight t (layout/coreml_nn.c). */
static int layout_of(graft_model *m, graft_tensor *t, graft_rd parent,
                     const ProtobufCMessageDescriptor *pd, const char *name, const char *field,
                     graft_ctx *ctx)
{
    static const struct { const ProtobufCMessageDescriptor *d; const char *params; } kinds[] = {
        {&core_ml__specification__convolution_layer_params__descriptor, "convolution"},
        {&core_ml__specification__inner_product_layer_params__descriptor, "innerProduct"},
        {&core_ml__specification__embedding_layer_params__descriptor, "embedding"},
        {&core_ml__specification__batchnorm_layer_params__descriptor, "batchnorm"},
    };
    char layer[1024];
    size_t nl = strlen(name), nf = strlen(field);
    int rc = GRAFT_OK;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        if (pd != kinds[k].d) continue;
        uint64_t groups = uint_or(parent, pd, "nGroups", 1, &rc);
        uint64_t kc = rc < 0 ? 0 : uint_or(parent, pd, "kernelChannels", 0, &rc);
        bool deconv = rc >= 0 && uint_or(parent, pd, "isDeconvolution", 0, &rc) != 0;
        GRAFT_TRY(rc);
        snprintf(layer, sizeof layer, "%.*s", (int)(nl > nf ? nl - nf - 1 : 0), name);
        return graft_layout__coreml(m, t, layer, kinds[k].params, field,
                                    groups > INT64_MAX ? 0 : (int64_t)groups,
                                    kc > INT64_MAX ? 0 : (int64_t)kc, deconv, ctx);
    }
    return GRAFT_OK;
}

/* One WeightParams: the tensor of its stored values, if any. */
static int add_weights(graft_model *m, graft_rd wp, graft_rd parent,
                       const ProtobufCMessageDescriptor *pd, const char *name, const char *field,
                       graft_ctx *ctx)
{
    static const struct { const char *field; graft_dtype dt; } kinds[] = {
        {"floatValue", GRAFT_FLOAT32}, {"float16Value", GRAFT_FLOAT16},
        {"rawValue", GRAFT_UINT8}, {"int8RawValue", GRAFT_INT8},
    };
    graft_pbf f, hit = {0};
    graft_dtype dt = GRAFT_DTYPE_INVALID;
    unsigned seen = 0;
    int64_t shape[4];
    uint32_t ndim;
    uint64_t numel, want = 1;
    graft_tensor *t;

    while (graft_rd_left(&wp)) {
        GRAFT_TRY(graft_pb_next(&wp, &f));
        for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
            if (f.num != num_of(WP, kinds[k].field)) continue;
            if (f.wt != GRAFT_PB_LEN)
                return graft_error(ctx, GRAFT_EFORMAT, "'%s': %s not packed", name, kinds[k].field);
            if (f.sub.len == 0) continue;
            if (seen++)
                return graft_error(ctx, GRAFT_EFORMAT, "'%s': values stored in %u fields", name, seen);
            hit = f;
            dt = kinds[k].dt;
        }
    }
    if (!seen) return GRAFT_OK;
    if (hit.sub.len % graft_dtype_size(dt))
        return graft_error(ctx, GRAFT_ECORRUPT, "'%s': %zu bytes of %s values", name, hit.sub.len,
                           graft_dtype_name(dt));
    numel = hit.sub.len / graft_dtype_size(dt);
    GRAFT_TRY(shape_of(parent, pd, field, numel, shape, &ndim));
    for (uint32_t i = 0; i < ndim; i++)
        if (graft_mul_overflow(want, (uint64_t)shape[i], &want)) want = UINT64_MAX;
    /* raw bytes may hold quantized values of fewer bits: keep them 1-D */
    if (dt == GRAFT_UINT8 && want != numel) ndim = 1, shape[0] = (int64_t)numel, want = numel;
    if (want != numel)
        return graft_error(ctx, GRAFT_ECORRUPT, "'%s': %llu values, its layer's shape needs %llu",
                           name, (unsigned long long)numel, (unsigned long long)want);
    t = graft_model__add(m, name, strlen(name), dt, ndim, shape, ctx);
    if (!t) return ctx->status;
    t->src = m->sources[0];
    t->offset = hit.sub.origin;
    return layout_of(m, t, parent, pd, name, field, ctx);
}

static int walk_layer(graft_model *m, graft_rd r, int depth, graft_ctx *ctx);

/* The message fields of r (a d), below layer `layer`. */
static int walk_msg(graft_model *m, graft_rd r, const ProtobufCMessageDescriptor *d,
                    const char *layer, int depth, graft_ctx *ctx)
{
    graft_rd all = r;
    graft_pbf f;
    unsigned rep[64] = {0};
    if (depth > MAX_DEPTH)
        return graft_error(ctx, GRAFT_ELIMIT, "layer '%s': messages nested deeper than %d", layer,
                           MAX_DEPTH);
    while (graft_rd_left(&r)) {
        const ProtobufCFieldDescriptor *fd;
        GRAFT_TRY(graft_pb_next(&r, &f));
        fd = protobuf_c_message_descriptor_get_field(d, (unsigned)f.num);
        if (!fd || fd->type != PROTOBUF_C_TYPE_MESSAGE || f.wt != GRAFT_PB_LEN) continue;
        if (fd->descriptor == LAYER) {
            GRAFT_TRY(walk_layer(m, f.sub, depth + 1, ctx));
        } else if (fd->descriptor == WP) {
            char name[1024];
            unsigned i = rep[(fd - d->fields) % 64]++;
            if (fd->label == PROTOBUF_C_LABEL_REPEATED)
                snprintf(name, sizeof name, "%s/%s/%u", layer, fd->name, i);
            else
                snprintf(name, sizeof name, "%s/%s", layer, fd->name);
            GRAFT_TRY(add_weights(m, f.sub, all, d, name, fd->name, ctx));
        } else {
            GRAFT_TRY(walk_msg(m, f.sub, fd->descriptor, layer, depth + 1, ctx));
        }
    }
    return GRAFT_OK;
}

static int walk_layer(graft_model *m, graft_rd r, int depth, graft_ctx *ctx)
{
    graft_rd q = r;
    graft_pbf f;
    char layer[512] = "";
    uint32_t name_num = num_of(LAYER, "name");
    while (graft_rd_left(&q)) {
        GRAFT_TRY(graft_pb_next(&q, &f));
        if (f.num == name_num && f.wt == GRAFT_PB_LEN)
            snprintf(layer, sizeof layer, "%.*s", (int)(f.sub.len < 500 ? f.sub.len : 500),
                     (const char *)f.sub.p);
    }
    if (!layer[0])
        snprintf(layer, sizeof layer, "layer@%llu", (unsigned long long)r.origin);
    return walk_msg(m, r, LAYER, layer, depth, ctx);
}

static int ml_open(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    const graft_source *src;
    graft_rd r;
    graft_pbf f;
    bool found = false;

    (void)opts;
    if (m->nsources == 0) return graft_error(ctx, GRAFT_EFORMAT, "a folder is not an .mlmodel");
    src = m->sources[0];
    graft_rd_init(&r, src->data, src->size, 0, ctx);
    while (graft_rd_left(&r)) {
        const ProtobufCMessageDescriptor *d;
        GRAFT_TRY(graft_pb_next(&r, &f));
        switch (f.num) {
        case MODEL_NETWORK: d = &core_ml__specification__neural_network__descriptor; break;
        case MODEL_CLASSIFIER: d = &core_ml__specification__neural_network_classifier__descriptor; break;
        case MODEL_REGRESSOR: d = &core_ml__specification__neural_network_regressor__descriptor; break;
        case MODEL_PROGRAM:
            return graft_error(ctx, GRAFT_EFORMAT, "an ML Program keeps its weights in an "
                               ".mlpackage, not in the .mlmodel");
        default: continue;
        }
        if (f.wt != GRAFT_PB_LEN)
            return graft_error(ctx, GRAFT_ECORRUPT, "offset 0x%llx: field %u is not a message",
                               (unsigned long long)f.start, f.num);
        found = true;
        GRAFT_TRY(walk_msg(m, f.sub, d, "", 0, ctx));
    }
    if (!found)
        return graft_error(ctx, GRAFT_EFORMAT, "no neural network in the model (graft reads "
                           "NeuralNetwork, NeuralNetworkClassifier, NeuralNetworkRegressor)");
    return GRAFT_OK;
}

const graft_format graft_format_coreml = {
    .name = "coreml",
    .probe = ml_probe,
    .open = ml_open,
    .write = graft_write_in_place,
};
