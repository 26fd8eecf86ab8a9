/*
 * collect.c - what the suggester knows of each tensor: its kind, its dims
 * in sorted order (equal under any layout change), its layout (layout/),
 * its name as tokens in one vocabulary, and whether it stays out.
 *
 * Tokens: runs of letters (lower case) and runs of digits; the frameworks'
 * words are mapped to one vocabulary (kernel, gamma, embeddings -> weight;
 * beta -> bias; moving -> running; variance -> var) and the parameter words
 * themselves left out, so bert/encoder/layer_0/attention/self/query/kernel
 * and bert.encoder.layer.0.attention.self.query.weight give the same tokens.
 * A trailing ":0" (TF output index) is dropped.
 */
#include "suggest_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Optimizer state (never model weights), on either side: the ignore pattern
 * written for it. */
static bool slot_match(const char *name, const char **pattern)
{
    static const struct { const char *pat, *needle; int where; } tests[] = {
        {"^optimizer_weights/", "optimizer_weights/", 0},
        {"^optimizer/", "optimizer/", 0},
        {"OPTIMIZER_SLOT", "OPTIMIZER_SLOT", 1},
        {"/Adam(?:_\\d+)?/", "/Adam", 2},
        {"_slot_", "_slot_", 1},
        {"/Momentum(?::0)?$", "/Momentum", 3},
        {"/RMSProp(?:_\\d+)?(?::0)?$", "/RMSProp", 3},
        {"/adam_[mv](?::0)?$", "/adam_", 3},
        {"^training/", "training/", 0},
    };
    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
        const char *hit = strstr(name, tests[i].needle);
        if (!hit) continue;
        if (tests[i].where == 0 && hit != name) continue;
        if (tests[i].where == 2) {
            const char *q = hit + strlen(tests[i].needle);
            if (*q == '_')
                for (q++; isdigit((unsigned char)*q); q++) {}
            if (*q != '/' && *q != ':' && *q) continue;
            *pattern = *q == '/' ? "/Adam(?:_\\d+)?/" : "/Adam(?:_\\d+)?(?::0)?$";
            return true;
        }
        *pattern = tests[i].pat;
        return true;
    }
    return false;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Known to stay out: the ignore pattern and why, or NULL. */
static const char *known_out(const char *name, bool is_source, const char **why)
{
    const char *pat = NULL;
    if (slot_match(name, &pat)) {
        *why = "optimizer slot";
        return pat;
    }
    if (ends_with(name, "num_batches_tracked")) {
        *why = "BatchNorm step counter";
        return "num_batches_tracked$";
    }
    if (ends_with(name, "position_ids")) {
        *why = "position index buffer";
        return "(?:^|\\.)position_ids$";
    }
    if (!is_source) {
        static const char *const counters[] = {"global_step", "iter", "iterations", "step",
                                               "save_counter/.ATTRIBUTES/VARIABLE_VALUE", NULL};
        for (int i = 0; counters[i]; i++) {
            size_t k = strlen(counters[i]);
            if (!strncmp(name, counters[i], k) && (!name[k] || !strcmp(name + k, ":0"))) {
                *why = "training step counter";
                return i == 0 ? "^global_step(?::0)?$" : NULL;
            }
        }
    }
    return NULL;
}

/* ---- tokens ---------------------------------------------------------------- */

static const char *vocab(const char *w)
{
    static const char *const map[][2] = {
        {"kernel", "weight"}, {"weights", "weight"}, {"gamma", "weight"}, {"scale", "weight"},
        {"embeddings", "weight"}, {"embedding", "weight"}, {"beta", "bias"},
        {"biases", "bias"}, {"moving", "running"}, {"variance", "var"}, {NULL, NULL}};
    for (int i = 0; map[i][0]; i++)
        if (!strcmp(w, map[i][0])) return map[i][1];
    return w;
}

static bool stop_word(const char *w)
{
    return !strcmp(w, "weight") || !strcmp(w, "bias") || !strcmp(w, "running") ||
           !strcmp(w, "depthwise") || !strcmp(w, "onnx");
}

static int tokenize(sg_t *x, const char *s, graft_ctx *ctx)
{
    size_t n = strlen(s), cap = 8;
    if (ends_with(s, ":0")) n -= 2;
    if (!(x->tok = graft_calloc(ctx, cap, sizeof *x->tok))) return graft_error_oom(ctx, "tokens");
    for (size_t i = 0; i < n;) {
        if (!isalnum((unsigned char)s[i])) {
            i++;
            continue;
        }
        bool digit = isdigit((unsigned char)s[i]);
        size_t j = i;
        char w[64];
        while (j < n && isalnum((unsigned char)s[j]) && !!isdigit((unsigned char)s[j]) == digit)
            j++;
        size_t k = j - i < sizeof w - 1 ? j - i : sizeof w - 1;
        for (size_t q = 0; q < k; q++) w[q] = (char)tolower((unsigned char)s[i + q]);
        w[k] = '\0';
        i = j;
        const char *v = vocab(w);
        if (stop_word(v)) continue;
        if (x->ntok == cap) {
            char **nt = graft_realloc(ctx, x->tok, 2 * cap * sizeof *nt);
            if (!nt) return graft_error_oom(ctx, "tokens");
            x->tok = nt, cap *= 2;
        }
        if (!(x->tok[x->ntok++] = graft_strdup(ctx, v))) return graft_error_oom(ctx, "tokens");
    }
    return 0;
}

/* An exporter's counter name (onnx::Conv_193) says nothing; the node that
 * consumes it does: torch.onnx.export names it by the module's scopes,
 * /layer1/layer1.0/conv1/Conv or /features/features.1/conv/conv.0/Conv,
 * a child of a Sequential written after its parent's scope.  The module
 * path (layer1.0.conv1) into buf, or NULL. */
static const char *node_module(const sg_t *x, char *buf, size_t cap)
{
    const char *node = x->lay.layer, *prev = NULL;
    size_t len = 0, prev_n = 0;
    if (x->lay.certainty != GRAFT_CERT_STRUCTURE || !node || node[0] != '/' || !strstr(x->name, "::"))
        return NULL;
    buf[0] = '\0';
    for (const char *p = node + 1; *p;) {
        const char *e = strchr(p, '/');
        if (!e) break;  /* the last component is the op */
        size_t n = (size_t)(e - p);
        const char *dot = NULL;
        for (const char *q = p; q < e; q++)
            if (*q == '.') dot = q;
        const char *part = p;
        if (dot && prev && (size_t)(dot - p) == prev_n && !strncmp(p, prev, prev_n)) part = dot + 1;
        size_t k = n - (size_t)(part - p);
        if (len + k + 2 >= cap) return NULL;
        if (len) buf[len++] = '.';
        memcpy(buf + len, part, k);
        buf[len += k] = '\0';
        prev = p, prev_n = n;
        p = e + 1;
    }
    return len ? buf : NULL;
}

static sg_kind kind_of(const sg_t *x)
{
    const char *s = x->name;
    switch (x->lay.role) {
    case GRAFT_ROLE_NORM_MEAN: return SG_MEAN;
    case GRAFT_ROLE_NORM_VAR: return SG_VAR;
    case GRAFT_ROLE_BIAS:
    case GRAFT_ROLE_NORM_SHIFT:
    case GRAFT_ROLE_RNN_INPUT_BIAS:
    case GRAFT_ROLE_RNN_HIDDEN_BIAS:
    case GRAFT_ROLE_RNN_BIAS: return SG_BIAS;
    default: break;
    }
    if (strstr(s, "running_mean") || strstr(s, "moving_mean")) return SG_MEAN;
    if (strstr(s, "running_var") || strstr(s, "moving_var")) return SG_VAR;
    const char *last = s + strlen(s);
    while (last > s && last[-1] != '/' && last[-1] != '.') last--;
    if (strstr(last, "bias") || strstr(last, "beta")) return SG_BIAS;
    return SG_WEIGHT;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* A source tensor whose bytes equal an earlier one's and whose name says it
 * is a tied copy (a decoder or LM head sharing the embedding). */
static int tied_copies(sg_side *s, graft_ctx *ctx)
{
    for (size_t i = 0; i < s->n; i++) {
        sg_t *x = &s->v[i];
        if (x->ignore || !(strstr(x->name, "decoder") || strstr(x->name, "lm_head"))) continue;
        uint8_t hx[32];
        if (graft_tensor_sha256(s->m, x->t, hx, ctx) < 0) return -1;
        for (size_t j = 0; j < s->n; j++) {
            const sg_t *y = &s->v[j];
            uint8_t hy[32];
            if (j == i || y->ignore || y->t->nbytes != x->t->nbytes || y->t->dtype != x->t->dtype ||
                strstr(y->name, "decoder") || strstr(y->name, "lm_head"))
                continue;
            if (graft_tensor_sha256(s->m, y->t, hy, ctx) < 0) return -1;
            if (!memcmp(hx, hy, 32)) {
                x->ignore = "";  /* the exact name (draft.c) */
                x->ignore_why = "tied copy of another tensor";
                break;
            }
        }
    }
    return 0;
}

int sg_collect(sg_side *s, const graft_model *m, bool is_source, graft_ctx *ctx)
{
    s->m = m;
    s->n = m->count;
    if (!(s->v = graft_calloc(ctx, s->n ? s->n : 1, sizeof *s->v)))
        return graft_error_oom(ctx, "suggest tensors");
    for (size_t i = 0; i < s->n; i++) {
        sg_t *x = &s->v[i];
        x->t = &m->tensors[i];
        x->name = x->t->name;
        x->pair = -1;
        x->fold = -1;
        x->conf = -1;
        graft_layout_of(m, x->t, &x->lay);
        x->kind = kind_of(x);
        x->nd = x->t->ndim;
        x->numel = x->t->numel;
        for (uint32_t k = 0; k < x->nd && k < SG_MAXD; k++) x->sd[k] = x->t->shape[k];
        if (x->nd <= SG_MAXD) qsort(x->sd, x->nd, sizeof *x->sd, cmp_i64);
        x->ignore = known_out(x->name, is_source, &x->ignore_why);
        if (!x->ignore && x->ignore_why) x->ignore = ""; /* exact name */
        char mod[512];
        const char *words = node_module(x, mod, sizeof mod);
        if (tokenize(x, words ? words : x->name, ctx) < 0) return -1;
    }
    return is_source ? tied_copies(s, ctx) : 0;
}

void sg_side_free(sg_side *s)
{
    for (size_t i = 0; s->v && i < s->n; i++) {
        for (size_t k = 0; k < s->v[i].ntok; k++) free(s->v[i].tok[k]);
        free(s->v[i].tok);
        free(s->v[i].ops);
        free(s->v[i].reason_owned);
    }
    free(s->v);
    s->v = NULL;
}

bool sg_is_float(graft_dtype t)
{
    return t == GRAFT_FLOAT16 || t == GRAFT_BFLOAT16 || t == GRAFT_FLOAT32 || t == GRAFT_FLOAT64;
}

/* When both layouts name the same axes (OIHW and HWIO, (out,in) and
 * (in,out)): does every axis have one size on both sides?  A 1x1 kernel
 * (256, 64) is not one (64, 256) transposed.  true when they cannot tell. */
static bool axes_agree(const sg_t *a, const sg_t *b)
{
    const char *x = a->lay.axes, *y = b->lay.axes;
    size_t n = strlen(x);
    if (!n || n != strlen(y) || n != a->t->ndim || n != b->t->ndim || a->numel != a->t->numel ||
        b->numel != b->t->numel)
        return true;
    for (size_t i = 0; i < n; i++) {
        const char *j = strchr(y, x[i]);
        if (!j || strchr(x + i + 1, x[i])) return true;  /* other letters: nothing to compare */
    }
    for (size_t i = 0; i < n; i++)
        if (a->t->shape[i] != b->t->shape[strchr(y, x[i]) - y]) return false;
    return true;
}

bool sg_compatible(const sg_t *a, const sg_t *b)
{
    if (a->nd > SG_MAXD || a->kind != b->kind || a->numel != b->numel) return false;
    if (a->t->dtype != b->t->dtype && !(sg_is_float(a->t->dtype) && sg_is_float(b->t->dtype)))
        return false;
    if (!axes_agree(a, b)) return false;
    /* a rank may differ only by axes of 1 (a conv kernel against a dense one) */
    int64_t da[SG_MAXD], db[SG_MAXD];
    uint32_t na = 0, nb = 0;
    for (uint32_t k = 0; k < a->nd; k++)
        if (a->sd[k] != 1) da[na++] = a->sd[k];
    if (b->nd > SG_MAXD) return false;
    for (uint32_t k = 0; k < b->nd; k++)
        if (b->sd[k] != 1) db[nb++] = b->sd[k];
    return na == nb && !memcmp(da, db, na * sizeof *da);
}

bool sg_same_tokens(const sg_t *a, const sg_t *b)
{
    if (a->ntok != b->ntok) return false;
    for (size_t i = 0; i < a->ntok; i++)
        if (strcmp(a->tok[i], b->tok[i])) return false;
    return true;
}

/* The same word; with near, numbers one apart too (PyTorch counts from 0
 * where Keras and TF count from 1: layer3.0 is conv4_block1). */
static bool same_word(const char *a, const char *b, bool near)
{
    if (!near || !isdigit((unsigned char)a[0]) || !isdigit((unsigned char)b[0]) || strlen(a) > 9 || strlen(b) > 9)
        return !strcmp(a, b);
    long d = strtol(a, NULL, 10) - strtol(b, NULL, 10);
    return d >= -1 && d <= 1;
}

/* 2 * LCS / (len a + len b) over the tokens: 1 for the same words in order. */
double sg_similarity(const sg_t *a, const sg_t *b, bool near)
{
    size_t n = a->ntok, m = b->ntok;
    if (!n && !m) return 1.0;
    if (!n || !m || n > 64 || m > 64) return 0.0;
    unsigned short prev[65] = {0}, cur[65];
    for (size_t i = 1; i <= n; i++) {
        cur[0] = 0;
        for (size_t j = 1; j <= m; j++) {
            if (same_word(a->tok[i - 1], b->tok[j - 1], near)) cur[j] = (unsigned short)(prev[j - 1] + 1);
            else cur[j] = prev[j] > cur[j - 1] ? prev[j] : cur[j - 1];
        }
        memcpy(prev, cur, sizeof cur);
    }
    return 2.0 * prev[m] / (double)(n + m);
}
