/*
 * layout.c - role and certainty names, a layout in words, and the per-tensor
 * record the format hooks attach (graft_layout__set) and everyone reads
 * (graft_layout_of), falling back to naming conventions (convention.c).
 */
#include "layout_int.h"
#include "format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *graft_role_name(graft_role r, uint32_t rank)
{
    static const char *const names[GRAFT_ROLE_COUNT] = {
        "unknown", "other", "conv2d", "conv_transpose", "depthwise", "dense", "embedding",
        "norm_scale", "norm_shift", "norm_mean", "norm_var", "recurrent_input_kernel",
        "recurrent_hidden_kernel", "recurrent_input_bias", "recurrent_hidden_bias",
        "recurrent_bias", "bias"};
    if (r == GRAFT_ROLE_CONV) return rank == 3 ? "conv1d" : rank == 5 ? "conv3d" : "conv2d";
    return (unsigned)r < GRAFT_ROLE_COUNT ? names[r] : "unknown";
}

const char *graft_certainty_name(graft_certainty c)
{
    return c == GRAFT_CERT_STRUCTURE ? "structure" : c == GRAFT_CERT_CONVENTION ? "convention"
                                                                                : "unknown";
}

/* The word for one axis letter when a layout is written as a tuple. */
static const char *axis_word(char a)
{
    switch (a) {
    case 'O': return "out";
    case 'I': return "in";
    case 'V': return "vocab";
    case 'E': return "dim";
    case 'G': return "gates*units";
    case 'J': return "units";
    case 'B': return "input|recurrent";
    default: return NULL;
    }
}

void graft_layout_str(const graft_layout *l, char *buf, size_t n)
{
    size_t len = strlen(l->axes);
    bool letters = len >= 3;
    if (!n) return;
    buf[0] = '\0';
    if (!len) {
        snprintf(buf, n, "unknown");
        return;
    }
    for (size_t i = 0; i < len && letters; i++)
        letters = strchr("OIHWDCM1", l->axes[i]) != NULL;
    if (letters) { /* a depthwise O after a unit axis is TFLite's C*M */
        bool cm = l->role == GRAFT_ROLE_DEPTHWISE && strchr(l->axes, '1');
        size_t k = 0;
        for (size_t i = 0; i < len && k < n; i++) {
            char one[2] = {l->axes[i], 0};
            k += (size_t)snprintf(buf + k, n - k, "%s", cm && one[0] == 'O' ? "(C*M)" : one);
        }
        return;
    }
    size_t k = (size_t)snprintf(buf, n, "(");
    for (size_t i = 0; i < len && k < n; i++) {
        const char *w = axis_word(l->axes[i]);
        char one[2] = {l->axes[i], 0};
        k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? "," : "", w ? w : one);
    }
    if (k < n) snprintf(buf + k, n - k, ")");
}

/* ---- a name index over m's tensors (validation builds m's own later) ---- */

static const char *tensor_key(const void *owner, size_t i, size_t *len)
{
    const graft_model *m = owner;
    *len = strlen(m->tensors[i].name);
    return m->tensors[i].name;
}

int graft_lindex_init(graft_lindex *x, graft_model *m, graft_ctx *ctx)
{
    x->m = m;
    graft_strmap_init(&x->map, tensor_key, m);
    if (graft_strmap_reserve(&x->map, m->count, ctx) < 0) return -1;
    for (size_t i = 0; i < m->count; i++) graft_strmap_put(&x->map, i);
    return 0;
}

graft_tensor *graft_lindex_get(const graft_lindex *x, const char *name, size_t n)
{
    size_t i = graft_strmap_find(&x->map, name, n);
    return i == GRAFT_STRMAP_NONE ? NULL : &x->m->tensors[i];
}

void graft_lindex_free(graft_lindex *x) { graft_strmap_free(&x->map); }

bool graft_layout__attach(graft_model *m, graft_tensor *t, const graft_layout *l)
{
    graft_layout *copy;
    if (!t) return false;
    if (!(copy = graft_arena_alloc(&m->arena, sizeof *copy))) return false;
    *copy = *l;
    copy->certainty = GRAFT_CERT_STRUCTURE;
    t->layout = copy;
    return true;
}

int graft_layout__settle(int rc, graft_ctx *ctx)
{
    if (rc >= 0) return 0;
    if (graft_ctx_status(ctx) == GRAFT_ENOMEM) return GRAFT_ENOMEM;
    graft_ctx_clear(ctx);
    return 0;
}

/* Formats whose tensor names do not follow the PyTorch / Keras conventions:
 * a TFLite "conv1/kernel" is OHWI, not HWIO. */
static bool names_follow_conventions(const graft_model *m)
{
    static const char *const own[] = {"tflite", "coreml", "coreml-package", "gguf", NULL};
    const char *f = m->format ? m->format->name : "";
    for (int i = 0; own[i]; i++)
        if (!strcmp(f, own[i])) return false;
    return true;
}

void graft_layout_of(const graft_model *m, const graft_tensor *t, graft_layout *out)
{
    memset(out, 0, sizeof *out);
    if (t->layout) {
        *out = *t->layout;
        return;
    }
    if (!names_follow_conventions(m)) return;
    graft_layout__convention(m, t, out);
}
