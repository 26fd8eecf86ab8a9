/* outputs.c - what an output path will hold (graft.h): the files an apply
 * writes (graft_plan_output_files) and whether a path's extension fits the
 * format written (graft_format_fits_path). */
#include "graft.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "format.h"
#include "model.h"

int graft_plan_output_files(char ***out, const graft_plan *p, const char *out_path,
                            graft_ctx *ctx)
{
    const graft_model *m = graft_plan_skeleton(p);
    size_t n = strlen(out_path) + 1;
    char **v;
    *out = NULL;
    if (m->format && m->format->outputs) return m->format->outputs(m, out_path, out, ctx);
    if (!(v = graft_calloc(ctx, 1, 2 * sizeof *v + n))) return graft_error_oom(ctx, "output names");
    v[0] = memcpy((char *)(v + 2), out_path, n);
    *out = v;
    return GRAFT_OK;
}

/* Extensions that say which formats a file holds (README's format table). */
static const struct {
    const char *suffix;
    const char *formats; /* space-separated */
} by_ext[] = {
    {".safetensors.index.json", "safetensors"},
    {".safetensors", "safetensors"},
    {".npz", "npz"},
    {".npy", "npy"},
    {".gguf", "gguf"},
    {".pt", "pytorch-zip pytorch-legacy"},
    {".pth", "pytorch-zip pytorch-legacy"},
    {".bin", "pytorch-zip pytorch-legacy"},
    {".index", "tf-checkpoint"},
    {".keras", "keras keras-named"},
    {".weights.h5", "keras3-weights keras-h5"},
    {".h5", "keras-h5 keras3-weights"},
    {".hdf5", "keras-h5 keras3-weights"},
    {".onnx", "onnx"},
    {".pb", "tf-graphdef tf-savedmodel"},
    {".meta", "tf-graphdef"},
    {".tflite", "tflite"},
    {".mlmodel", "coreml"},
    {".mlpackage", "coreml-package"},
    {"model.json", "tfjs"},
};

static bool in_list(const char *list, const char *name)
{
    size_t k = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += k)
        if ((p == list || p[-1] == ' ') && (p[k] == ' ' || p[k] == '\0')) return true;
    return false;
}

bool graft_format_fits_path(const char *format, const char *path, const char **expected)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--; /* "out.mlpackage/" */
    for (size_t i = 0; i < sizeof by_ext / sizeof *by_ext; i++) {
        size_t k = strlen(by_ext[i].suffix);
        if (n < k || strncmp(path + n - k, by_ext[i].suffix, k)) continue;
        if (in_list(by_ext[i].formats, format)) return true;
        if (expected) { /* the first of the list, as a name of the registry */
            const char *const *names = graft_format_names();
            size_t w = strcspn(by_ext[i].formats, " ");
            *expected = NULL;
            for (size_t f = 0; names[f] && !*expected; f++)
                if (strlen(names[f]) == w && !strncmp(names[f], by_ext[i].formats, w))
                    *expected = names[f];
            if (!*expected) return true; /* that format is not compiled in */
        }
        return false;
    }
    return true;
}
