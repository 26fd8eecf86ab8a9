/*
 * convention.c - a role and layout from a tensor's name and rank alone, for
 * files that carry no graph (PyTorch state dicts, safetensors, npz, bare TF
 * checkpoints, Keras weights without a config).  Certainty `convention`.
 *
 * PyTorch (nn.Module state_dict keys):
 *   <m>.weight  rank 3/4/5 conv (out, in/groups, *kernel) = OIW/OIHW/OIDHW;
 *               rank 2 Linear (out, in), or Embedding (num, dim) when the
 *               module name says embed; rank 1 a norm scale;
 *   <m>.bias, running_mean, running_var;
 *   weight_ih_lK / weight_hh_lK / bias_ih_lK / bias_hh_lK (and _reverse):
 *               nn.LSTM (gates i,f,g,o) or nn.GRU (r,z,n), (gates*hidden, in)
 *               (torch/nn/modules/rnn.py docstrings).
 * Keras / tf.keras (layer/weight[:0]) and TF-slim:
 *   kernel rank 2 (in, out), rank 3/4/5 (*kernel, in, out) = WIO/HWIO/DHWIO;
 *   depthwise_kernel (kH, kW, C, M); pointwise_kernel HWIO;
 *   recurrent_kernel (units, gates*units), with kernel (in, gates*units) and
 *   bias (gates*units) or (2, gates*units) in the same layer: LSTM i,f,c,o,
 *   GRU z,r,h (keras/src/layers/rnn/lstm.py, gru.py);
 *   gamma, beta, moving_mean, moving_variance; embeddings (vocab, dim);
 *   TF-slim weights (rank 4 HWIO, rank 2 (in, out)), biases,
 *   depthwise_weights (kH, kW, C, M).
 * Optimizer slots are left unknown.
 */
#include "layout_int.h"

#include <stdio.h>
#include <string.h>

const char *graft_layout__axes_for(graft_family fam, graft_role role, uint32_t rank)
{
    bool torch = fam == GRAFT_FAM_TORCH;
    switch (role) {
    case GRAFT_ROLE_CONV:
        if (rank == 3) return torch ? "OIW" : "WIO";
        if (rank == 4) return torch ? "OIHW" : "HWIO";
        if (rank == 5) return torch ? "OIDHW" : "DHWIO";
        return "";
    case GRAFT_ROLE_CONV_TRANSPOSE:
        if (rank == 3) return torch ? "IOW" : "WOI";
        if (rank == 4) return torch ? "IOHW" : "HWOI";
        if (rank == 5) return torch ? "IODHW" : "DHWOI";
        return "";
    case GRAFT_ROLE_DEPTHWISE: return rank == 4 ? (torch ? "OIHW" : "HWCM") : "";
    case GRAFT_ROLE_DENSE: return rank == 2 ? (torch ? "OI" : "IO") : "";
    case GRAFT_ROLE_EMBEDDING: return rank == 2 ? "VE" : "";
    case GRAFT_ROLE_RNN_INPUT_KERNEL: return rank == 2 ? (torch ? "GI" : "IG") : "";
    case GRAFT_ROLE_RNN_HIDDEN_KERNEL: return rank == 2 ? (torch ? "GJ" : "JG") : "";
    case GRAFT_ROLE_RNN_INPUT_BIAS:
    case GRAFT_ROLE_RNN_HIDDEN_BIAS: return rank == 1 ? "G" : "";
    case GRAFT_ROLE_RNN_BIAS: return rank == 1 ? "G" : rank == 2 ? "BG" : "";
    case GRAFT_ROLE_NORM_SCALE:
    case GRAFT_ROLE_NORM_SHIFT:
    case GRAFT_ROLE_NORM_MEAN:
    case GRAFT_ROLE_NORM_VAR:
    case GRAFT_ROLE_BIAS: return rank == 1 ? "O" : "";
    default: return "";
    }
}

const char *graft_layout__gates_for(graft_family fam, int ngates)
{
    if (ngates == 4) return fam == GRAFT_FAM_TORCH ? "ifgo" : "ifco";
    if (ngates == 3) return fam == GRAFT_FAM_TORCH ? "rzn" : "zrh";
    return "";
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && !memcmp(s + n - k, suffix, k);
}

/* Does m hold a tensor named prefix[0..plen) + rest?  Returns it or NULL. */
static const graft_tensor *sibling(const graft_model *m, const char *prefix, size_t plen,
                                   const char *rest)
{
    char name[1024];
    if (plen + strlen(rest) >= sizeof name) return NULL;
    memcpy(name, prefix, plen);
    strcpy(name + plen, rest);
    if (m->index.cap) return graft_model_find(m, name);
    for (size_t i = 0; i < m->count; i++) /* not validated yet */
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

static bool is_slot(const char *name)
{
    return !strncmp(name, "optimizer_weights/", 18) || strstr(name, "OPTIMIZER_SLOT") ||
           strstr(name, "/Adam") || strstr(name, "_slot_") || strstr(name, "/Momentum") ||
           strstr(name, "/RMSProp");
}

static void set(graft_layout *l, graft_family fam, graft_role role, uint32_t rank)
{
    l->family = fam;
    l->role = role;
    snprintf(l->axes, sizeof l->axes, "%s", graft_layout__axes_for(fam, role, rank));
    l->certainty = l->axes[0] ? GRAFT_CERT_CONVENTION : GRAFT_CERT_UNKNOWN;
}

/* PyTorch recurrent parameters: weight_ih_l0, bias_hh_l1_reverse, ... */
static bool torch_rnn(const graft_model *m, const graft_tensor *t, const char *last,
                      graft_layout *l)
{
    static const struct { const char *key; graft_role role; } kinds[] = {
        {"weight_ih_l", GRAFT_ROLE_RNN_INPUT_KERNEL}, {"weight_hh_l", GRAFT_ROLE_RNN_HIDDEN_KERNEL},
        {"bias_ih_l", GRAFT_ROLE_RNN_INPUT_BIAS},     {"bias_hh_l", GRAFT_ROLE_RNN_HIDDEN_BIAS}};
    for (size_t k = 0; k < 4; k++) {
        size_t kl = strlen(kinds[k].key);
        if (strncmp(last, kinds[k].key, kl)) continue;
        /* weight_hh_lK of the same layer: (gates*hidden, hidden) */
        size_t plen = (size_t)(last - t->name);
        char rest[64];
        snprintf(rest, sizeof rest, "weight_hh_l%s", last + kl);
        const graft_tensor *hh = sibling(m, t->name, plen, rest);
        set(l, GRAFT_FAM_TORCH, kinds[k].role, t->ndim);
        if (hh && hh->ndim == 2 && hh->shape[1] > 0 && hh->shape[0] % hh->shape[1] == 0)
            snprintf(l->gates, sizeof l->gates, "%s",
                     graft_layout__gates_for(GRAFT_FAM_TORCH, (int)(hh->shape[0] / hh->shape[1])));
        if (!l->gates[0]) l->axes[0] = '\0', l->certainty = GRAFT_CERT_UNKNOWN, l->role = GRAFT_ROLE_OTHER;
        return true;
    }
    return false;
}

static void torch_names(const graft_model *m, const graft_tensor *t, const char *last,
                        graft_layout *l)
{
    size_t plen = (size_t)(last - t->name);
    if (torch_rnn(m, t, last, l)) return;
    if (!strcmp(last, "weight")) {
        bool embed = false;
        for (size_t i = 0; i + 5 <= plen; i++)
            embed |= !strncmp(t->name + i, "embed", 5) || !strncmp(t->name + i, "wte", 3) ||
                     !strncmp(t->name + i, "wpe", 3);
        if (t->ndim >= 3) set(l, GRAFT_FAM_TORCH, GRAFT_ROLE_CONV, t->ndim);
        else if (t->ndim == 2)
            set(l, GRAFT_FAM_TORCH, embed ? GRAFT_ROLE_EMBEDDING : GRAFT_ROLE_DENSE, 2);
        else if (t->ndim == 1) set(l, GRAFT_FAM_TORCH, GRAFT_ROLE_NORM_SCALE, 1);
    } else if (!strcmp(last, "bias") && t->ndim == 1) {
        const graft_tensor *w = sibling(m, t->name, plen, "running_mean");
        set(l, GRAFT_FAM_TORCH, w ? GRAFT_ROLE_NORM_SHIFT : GRAFT_ROLE_BIAS, 1);
    } else if (!strcmp(last, "running_mean")) {
        set(l, GRAFT_FAM_TORCH, GRAFT_ROLE_NORM_MEAN, t->ndim);
    } else if (!strcmp(last, "running_var")) {
        set(l, GRAFT_FAM_TORCH, GRAFT_ROLE_NORM_VAR, t->ndim);
    }
}

/* Keras: which gate count does the layer of `kernel`-like tensor t have? */
static int keras_gates(const graft_model *m, const char *name, size_t plen, const char *suffix)
{
    char rest[64];
    snprintf(rest, sizeof rest, "recurrent_kernel%s", suffix);
    const graft_tensor *rk = sibling(m, name, plen, rest);
    if (!rk || rk->ndim != 2 || rk->shape[0] <= 0 || rk->shape[1] % rk->shape[0]) return 0;
    return (int)(rk->shape[1] / rk->shape[0]);
}

static void keras_names(const graft_model *m, const graft_tensor *t, const char *last,
                        size_t llen, const char *suffix, graft_layout *l)
{
    size_t plen = (size_t)(last - t->name);
#define IS(s) (llen == strlen(s) && !strncmp(last, s, llen))
    int ng = keras_gates(m, t->name, plen, suffix);
    graft_role rnn = GRAFT_ROLE_UNKNOWN;
    if (ng && IS("kernel")) rnn = GRAFT_ROLE_RNN_INPUT_KERNEL;
    else if (ng && IS("recurrent_kernel")) rnn = GRAFT_ROLE_RNN_HIDDEN_KERNEL;
    else if (ng && IS("bias")) rnn = GRAFT_ROLE_RNN_BIAS;
    if (rnn) {
        set(l, GRAFT_FAM_KERAS, rnn, t->ndim);
        snprintf(l->gates, sizeof l->gates, "%s", graft_layout__gates_for(GRAFT_FAM_KERAS, ng));
        if (!l->gates[0]) l->axes[0] = '\0', l->certainty = GRAFT_CERT_UNKNOWN, l->role = GRAFT_ROLE_OTHER;
        return;
    }
    if (IS("kernel") || IS("weights") || IS("pointwise_kernel"))
        set(l, GRAFT_FAM_KERAS, t->ndim == 2 ? GRAFT_ROLE_DENSE : GRAFT_ROLE_CONV, t->ndim);
    else if (IS("depthwise_kernel") || IS("depthwise_weights"))
        set(l, GRAFT_FAM_KERAS, GRAFT_ROLE_DEPTHWISE, t->ndim);
    else if (IS("bias") || IS("biases")) set(l, GRAFT_FAM_KERAS, GRAFT_ROLE_BIAS, t->ndim);
    else if (IS("gamma")) set(l, GRAFT_FAM_KERAS, GRAFT_ROLE_NORM_SCALE, t->ndim);
    else if (IS("beta")) set(l, GRAFT_FAM_KERAS, GRAFT_ROLE_NORM_SHIFT, t->ndim);
    else if (IS("moving_mean")) set(l, GRAFT_FAM_KERAS, GRAFT_ROLE_NORM_MEAN, t->ndim);
    else if (IS("moving_variance")) set(l, GRAFT_FAM_KERAS, GRAFT_ROLE_NORM_VAR, t->ndim);
    else if (IS("embeddings")) set(l, GRAFT_FAM_KERAS, GRAFT_ROLE_EMBEDDING, t->ndim);
#undef IS
}

void graft_layout__convention(const graft_model *m, const graft_tensor *t, graft_layout *l)
{
    const char *name = t->name, *dot = strrchr(name, '.'), *slash = strrchr(name, '/');
    size_t n = strlen(name);
    memset(l, 0, sizeof *l);
    if (is_slot(name)) return;
    if (dot && (!slash || dot > slash)) {
        torch_names(m, t, dot + 1, l);
        return;
    }
    /* Keras / TF: the last path component, without ":0" */
    const char *suffix = ends_with(name, n, ":0") ? ":0" : "";
    const char *last = slash ? slash + 1 : name;
    size_t llen = (size_t)(name + n - strlen(suffix) - last);
    if (!slash && !strncmp(name, "weight_", 7)) {
        torch_names(m, t, name, l); /* a bare nn.LSTM state dict */
        return;
    }
    keras_names(m, t, last, llen, suffix, l);
}
