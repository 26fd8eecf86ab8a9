/*
 * layout.h - what each tensor of a model is (its role in the network) and how
 * its axes are laid out, and the check that a rules file's op chain moves the
 * elements the way the two layouts call for (internal).
 *
 * Every format says what it knows through one hook at the end of open():
 *   - Keras model_config / config.json: the layer class and which weight
 *     (graft_layout__keras);
 *   - ONNX graphs: the consuming node and input slot (graft_layout__onnx);
 *   - TF GraphDef / MetaGraph / SavedModel: the consuming op
 *     (graft_layout__tf);
 *   - TFLite: the consuming operator and input slot (graft_layout__tflite);
 *   - Core ML NeuralNetwork: the layer's params message and weight
 *     (graft_layout__coreml, per weight as the reader finds it).
 * Such a layout has certainty `structure`.  Every other tensor gets one from
 * naming conventions (`*.weight` of rank 4 is OIHW, Keras `kernel` of rank 2
 * is (in, out), ...), certainty `convention`, or none (`unknown`).
 *
 * Axis letters: O out channels/units, I in channels/features, H W D spatial
 * (kernel height, width, depth), C channels and M multiplier of a depthwise
 * kernel, V vocabulary and E embedding width, G gates x units of a recurrent
 * layer (gate order in `gates`), J units feeding a recurrent kernel, B the
 * input/recurrent half of a Keras GRU bias (reset_after).  A Dense fed by a
 * Flatten of a feature map has its I axis made of C channels and S = H*W
 * positions, in `flatten` order (CHW or HWC).
 */
#ifndef GRAFT_LAYOUT_LAYOUT_H
#define GRAFT_LAYOUT_LAYOUT_H

#include "model.h"

typedef enum graft_role {
    GRAFT_ROLE_UNKNOWN = 0,
    GRAFT_ROLE_OTHER,
    GRAFT_ROLE_CONV,            /* conv1d / conv2d / conv3d by rank */
    GRAFT_ROLE_CONV_TRANSPOSE,
    GRAFT_ROLE_DEPTHWISE,
    GRAFT_ROLE_DENSE,
    GRAFT_ROLE_EMBEDDING,
    GRAFT_ROLE_NORM_SCALE,
    GRAFT_ROLE_NORM_SHIFT,
    GRAFT_ROLE_NORM_MEAN,
    GRAFT_ROLE_NORM_VAR,
    GRAFT_ROLE_RNN_INPUT_KERNEL,
    GRAFT_ROLE_RNN_HIDDEN_KERNEL,
    GRAFT_ROLE_RNN_INPUT_BIAS,
    GRAFT_ROLE_RNN_HIDDEN_BIAS,
    GRAFT_ROLE_RNN_BIAS,        /* Keras: one bias for both sides (or B x G) */
    GRAFT_ROLE_BIAS,
    GRAFT_ROLE_COUNT
} graft_role;

typedef enum graft_certainty {
    GRAFT_CERT_UNKNOWN = 0,
    GRAFT_CERT_CONVENTION,      /* from names and ranks */
    GRAFT_CERT_STRUCTURE,       /* from a graph or a model config */
} graft_certainty;

/* Which framework's conventions a layout follows (to re-read a convention
 * layout in the role a structure layout on the other side gives). */
typedef enum graft_family {
    GRAFT_FAM_NONE = 0,
    GRAFT_FAM_TORCH,            /* PyTorch and ONNX: OIHW, (out, in), gates ifgo / rzn */
    GRAFT_FAM_KERAS,            /* Keras and TF: HWIO, (in, out), gates ifco / zrh */
} graft_family;

#define GRAFT_LAYOUT_MAX_AXES 8

typedef struct graft_layout {
    graft_role role;
    graft_certainty certainty;
    graft_family family;
    char axes[GRAFT_LAYOUT_MAX_AXES + 1]; /* one letter per axis ("OIHW"); "" = unknown */
    char gates[5];              /* recurrent: gate order ("ifgo", "zrh"); "" = none */
    char flatten[4];            /* dense after Flatten: "CHW" or "HWC"; "" = none */
    int64_t flat_c;             /* channels of the flattened feature map */
    int64_t flat_h, flat_w;     /* its spatial shape; 0 when only flat_s is known */
    int64_t flat_s;             /* flat_h * flat_w */
    int64_t groups;             /* depthwise: channels C (O = C * M); 0 = unknown */
    const char *layer;          /* layer / node that uses it; model arena, may be NULL */
    const char *op;             /* layer class or op type ("Conv2D", "Gemm"); may be NULL */
} graft_layout;

/* "conv2d", "dense", "recurrent_input_kernel", ...  (conv by rank) */
const char *graft_role_name(graft_role r, uint32_t rank);
const char *graft_certainty_name(graft_certainty c);
/* The layout in words: "OIHW", "(out,in)", "(gates*units,in)", ... */
void graft_layout_str(const graft_layout *l, char *buf, size_t n);

/**
 * What is known about tensor t of m: the structure layout its format gave,
 * else one from naming conventions, else role unknown.  Never fails.
 */
void graft_layout_of(const graft_model *m, const graft_tensor *t, graft_layout *out);

/* ---- for format hooks --------------------------------------------------- */

/*
 * Hooks: read what the model's own structure says and attach layouts.  A
 * config or graph they cannot follow leaves the tensors to naming
 * conventions and is no error: they fail only when out of memory
 * (GRAFT_ENOMEM, message in ctx).
 */
/* Keras model_config (HDF5 attribute) or config.json (.keras): its JSON text,
 * or the parsed config.  Tensors must carry Keras names (layer/.../var[:0]). */
int graft_layout__keras(graft_model *m, const uint8_t *json, size_t n, graft_ctx *ctx);
struct graft_json;
int graft_layout__keras_config(graft_model *m, const struct graft_json *root, graft_ctx *ctx);
/* A serialized onnx ModelProto. */
int graft_layout__onnx(graft_model *m, const uint8_t *p, size_t n, graft_ctx *ctx);
/* A serialized GraphDef (kind 0), MetaGraphDef (1) or SavedModel (2). */
int graft_layout__tf(graft_model *m, const uint8_t *p, size_t n, int kind, graft_ctx *ctx);
/* A TFLite FlatBuffer whose listed tensors carry tflite.c's aux. */
int graft_layout__tflite(graft_model *m, const uint8_t *p, size_t n, graft_ctx *ctx);
/* A Core ML NeuralNetwork weight: WeightParams `field` of the layer params
 * message `params` ("convolution", "innerProduct", "batchnorm", "embedding")
 * of layer `layer`; conv: nGroups, kernelChannels, isDeconvolution. */
int graft_layout__coreml(graft_model *m, graft_tensor *t, const char *layer, const char *params,
                         const char *field, int64_t groups, int64_t kernel_channels, bool deconv,
                         graft_ctx *ctx);
/* What a hook returns after a parse failure rc: GRAFT_ENOMEM is kept, any
 * other failure cleared (0). */
int graft_layout__settle(int rc, graft_ctx *ctx);

#endif
