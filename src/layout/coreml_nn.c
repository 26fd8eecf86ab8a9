/*
 * coreml_nn.c - roles and layouts of Core ML NeuralNetwork weights from the
 * layer params message that holds them (apple/coremltools
 * mlmodel/format/NeuralNetwork.proto, vendored in schemas/coreml/):
 *   ConvolutionLayerParams weights: [outputChannels, kernelChannels, kH, kW]
 *     = OIHW, kernelChannels == inputChannels / nGroups (depthwise when
 *     kernelChannels is 1 and nGroups > 1: O = C * M, C = nGroups); with
 *     isDeconvolution [kernelChannels, outputChannels / nGroups, kH, kW] =
 *     IOHW; bias [outputChannels];
 *   InnerProductLayerParams weights [C_out, C_in] = (out, in), bias;
 *   EmbeddingLayerParams weights [outputChannels, inputDim] = (dim, vocab),
 *     bias;
 *   BatchnormLayerParams gamma, beta, mean, variance [channels].
 * mlmodel.c calls this for each weight it lists, with the params message's
 * fields it has read (bounded, through core/pb.c).
 */
#include "layout_int.h"

#include <stdio.h>
#include <string.h>

int graft_layout__coreml(graft_model *m, graft_tensor *t, const char *layer, const char *params,
                         const char *field, int64_t groups, int64_t kernel_channels, bool deconv,
                         graft_ctx *ctx)
{
    graft_layout l;
    const char *axes = NULL;
    bool bias = !strcmp(field, "bias"), weights = !strcmp(field, "weights");
    memset(&l, 0, sizeof l);
    if (!strcmp(params, "convolution") && weights && t->ndim == 4) {
        bool dw = !deconv && groups > 1 && kernel_channels == 1;
        l.role = deconv ? GRAFT_ROLE_CONV_TRANSPOSE : dw ? GRAFT_ROLE_DEPTHWISE : GRAFT_ROLE_CONV;
        l.groups = dw ? groups : 0;
        axes = deconv ? "IOHW" : "OIHW";
        l.op = deconv ? "deconvolution" : "convolution";
    } else if (!strcmp(params, "innerProduct") && weights && t->ndim == 2) {
        l.role = GRAFT_ROLE_DENSE, axes = "OI", l.op = params;
    } else if (!strcmp(params, "embedding") && weights && t->ndim == 2) {
        l.role = GRAFT_ROLE_EMBEDDING, axes = "EV", l.op = params;
    } else if ((!strcmp(params, "convolution") || !strcmp(params, "innerProduct") ||
                !strcmp(params, "embedding")) &&
               bias && t->ndim == 1) {
        l.role = GRAFT_ROLE_BIAS, axes = "O", l.op = params;
    } else if (!strcmp(params, "batchnorm") && t->ndim == 1) {
        static const struct {
            const char *f;
            graft_role r;
        } bn[] = {{"gamma", GRAFT_ROLE_NORM_SCALE},
                  {"beta", GRAFT_ROLE_NORM_SHIFT},
                  {"mean", GRAFT_ROLE_NORM_MEAN},
                  {"variance", GRAFT_ROLE_NORM_VAR}};
        for (size_t i = 0; i < sizeof bn / sizeof *bn; i++)
            if (!strcmp(field, bn[i].f)) l.role = bn[i].r, axes = "O", l.op = params;
    }
    if (!axes) return 0;
    snprintf(l.axes, sizeof l.axes, "%s", axes);
    l.family = GRAFT_FAM_NONE;
    if (layer && layer[0] && !(l.layer = graft_arena_strdup(&m->arena, layer)))
        return graft_error_oom(ctx, "a tensor layout");
    if (!graft_layout__attach(m, t, &l)) return graft_error_oom(ctx, "a tensor layout");
    return 0;
}
