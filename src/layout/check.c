/*
 * check.c - the layout check of a plan.
 *
 * For one pair (target, sources, op chain):
 *   1. Both layouts must be known and of related roles.  A side known only by
 *      convention is re-read in the role the other side's structure gives
 *      (a PyTorch rank-4 `weight` feeding a Keras Conv2DTranspose is IOHW).
 *   2. Each layout, applied to its tensor's shape, becomes a row-major list
 *      of factors: one letter and size per axis, an axis of gates x units as
 *      (G, U) with the side's gate order, the in-axis of a Dense after a
 *      Flatten as (c, s) or (s, c), a depthwise O (PyTorch / ONNX / Core ML
 *      OIHW, TFLite 1HW(C*M)) as (C, M).
 *   3. Expected: target element p holds the source element with the same
 *      letter coordinates (gates matched by name: Keras c = PyTorch g,
 *      Keras h = PyTorch n).
 *   4. Actual: the op chain run on index tensors (value-only ops skipped,
 *      sum/fold_bn followed through their first source).
 * A difference anywhere is a finding.
 */
#include "lcheck.h"
#include "layout_int.h"
#include "error.h"
#include "optab.h"
#include "gather.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- step 1: reconcile the two layouts ---------------------------------- */

static int role_group(graft_role r)
{
    switch (r) {
    case GRAFT_ROLE_CONV:
    case GRAFT_ROLE_CONV_TRANSPOSE:
    case GRAFT_ROLE_DEPTHWISE: return 1;
    case GRAFT_ROLE_DENSE:
    case GRAFT_ROLE_EMBEDDING: return 2;
    case GRAFT_ROLE_RNN_INPUT_KERNEL: return 3;
    case GRAFT_ROLE_RNN_HIDDEN_KERNEL: return 4;
    case GRAFT_ROLE_RNN_INPUT_BIAS:
    case GRAFT_ROLE_RNN_HIDDEN_BIAS:
    case GRAFT_ROLE_RNN_BIAS: return 5;
    case GRAFT_ROLE_NORM_SCALE:
    case GRAFT_ROLE_NORM_SHIFT:
    case GRAFT_ROLE_NORM_MEAN:
    case GRAFT_ROLE_NORM_VAR:
    case GRAFT_ROLE_BIAS: return 6;
    default: return 0;
    }
}

char graft_lview__gate(char g) { return g == 'c' ? 'g' : g == 'h' ? 'n' : g; }

static bool same_gates(const char *a, const char *b)
{
    if (strlen(a) != strlen(b) || !a[0]) return false;
    for (const char *p = a; *p; p++) {
        bool found = false;
        for (const char *q = b; *q; q++) found |= graft_lview__gate(*p) == graft_lview__gate(*q);
        if (!found) return false;
    }
    return true;
}

/* Re-read convention layout c (of a tensor of `rank`) in structure s's role. */
static bool adopt(graft_layout *c, const graft_layout *s, uint32_t rank)
{
    const char *axes = graft_layout__axes_for(c->family, s->role, rank);
    if (c->family == GRAFT_FAM_NONE || !axes[0]) return false;
    c->role = s->role;
    snprintf(c->axes, sizeof c->axes, "%s", axes);
    if (s->gates[0])
        snprintf(c->gates, sizeof c->gates, "%s",
                 graft_layout__gates_for(c->family, (int)strlen(s->gates)));
    return true;
}

/* Make t (target) and s (source) comparable; false (with why) if they are not. */
bool graft_lview__reconcile(graft_layout *t, graft_layout *s, uint32_t trank, uint32_t srank,
                      char *why, size_t nwhy)
{
    if (!t->axes[0] || !s->axes[0]) {
        snprintf(why, nwhy, "the %s layout is unknown", !t->axes[0] ? "target" : "source");
        return false;
    }
    int gt = role_group(t->role), gs = role_group(s->role);
    if (!gt || gt != gs) {
        snprintf(why, nwhy, "roles %s and %s are not comparable",
                 graft_role_name(t->role, trank), graft_role_name(s->role, srank));
        return false;
    }
    if (t->role != s->role && gt != 6 && gt != 5) {
        bool ok = false;
        if (t->certainty == GRAFT_CERT_STRUCTURE && s->certainty != GRAFT_CERT_STRUCTURE)
            ok = adopt(s, t, srank);
        else if (s->certainty == GRAFT_CERT_STRUCTURE && t->certainty != GRAFT_CERT_STRUCTURE)
            ok = adopt(t, s, trank);
        if (!ok) {
            snprintf(why, nwhy, "roles %s and %s disagree", graft_role_name(t->role, trank),
                     graft_role_name(s->role, srank));
            return false;
        }
    }
    /* Gates: both sides need an order over the same gates. */
    if (strchr(t->axes, 'G') || strchr(s->axes, 'G')) {
        if (!same_gates(t->gates, s->gates)) {
            snprintf(why, nwhy, "gate orders '%s' and '%s' are not comparable", t->gates, s->gates);
            return false;
        }
    }
    /* Flatten: a convention side follows its framework (PyTorch NCHW, Keras NHWC). */
    if (!!t->flatten[0] != !!s->flatten[0]) {
        graft_layout *k = t->flatten[0] ? t : s, *u = t->flatten[0] ? s : t;
        if (u->certainty == GRAFT_CERT_STRUCTURE || u->family == GRAFT_FAM_NONE) {
            snprintf(why, nwhy, "only one side shows the Flatten before this Dense");
            return false;
        }
        snprintf(u->flatten, sizeof u->flatten, "%s", u->family == GRAFT_FAM_TORCH ? "CHW" : "HWC");
        u->flat_c = k->flat_c, u->flat_h = k->flat_h, u->flat_w = k->flat_w, u->flat_s = k->flat_s;
    }
    return true;
}

/* ---- step 2: factors ------------------------------------------------------ */

static bool push(lview *v, char letter, int64_t size)
{
    if (v->nf >= MAXF) return false;
    if (size == 1) return true; /* a unit axis carries no order */
    v->f[v->nf].letter = letter;
    v->f[v->nf].size = size;
    v->nf++;
    return true;
}

/* `other` and oshape: the other side, for a PyTorch depthwise kernel's C. */
bool graft_lview__build(const graft_layout *l, const graft_shape *s, const graft_layout *other,
                       const graft_shape *oshape, lview *v)
{
    memset(v, 0, sizeof *v);
    memcpy(v->gates, l->gates, sizeof v->gates);
    v->fixed_b = l->role == GRAFT_ROLE_RNN_INPUT_BIAS ? 0 : l->role == GRAFT_ROLE_RNN_HIDDEN_BIAS ? 1 : -1;
    if (strlen(l->axes) != s->ndim) return false;
    for (uint32_t i = 0; i < s->ndim; i++) {
        char a = l->axes[i];
        int64_t d = s->dim[i];
        if (a == 'G') {
            int64_t ng = (int64_t)strlen(l->gates);
            if (!ng || d % ng) return false;
            if (!push(v, 'G', ng) || !push(v, 'U', d / ng)) return false;
            if (ng == 1) return false;
        } else if (a == 'I' && l->flatten[0]) {
            int64_t c = l->flat_c, sp = l->flat_s;
            if (c <= 0 || sp <= 0 || c * sp != d) return false;
            bool chw = !strcmp(l->flatten, "CHW");
            if (!push(v, chw ? 'c' : 's', chw ? c : sp) || !push(v, chw ? 's' : 'c', chw ? sp : c))
                return false;
        } else if (a == '1') { /* an axis that is always 1 (TFLite depthwise 1HW(C*M)) */
            if (d != 1) return false;
        } else if (a == 'O' && l->role == GRAFT_ROLE_DEPTHWISE) { /* O = C * M, C-major */
            int64_t c = l->groups;
            const char *ca = strchr(other->axes, 'C');
            if (!c && other->role == GRAFT_ROLE_DEPTHWISE) c = other->groups;
            if (!c && other->role == GRAFT_ROLE_DEPTHWISE && ca && oshape)
                c = oshape->dim[ca - other->axes];
            if (c <= 0 || d % c) return false;
            if (!push(v, 'C', c) || !push(v, 'M', d / c)) return false;
        } else if (a == 'I' && l->role == GRAFT_ROLE_DEPTHWISE && !strcmp(l->axes, "OIHW")) {
            if (d != 1) return false;
        } else if (!push(v, a, d)) {
            return false;
        }
    }
    for (int i = 0; i < v->nf; i++)
        for (int j = i + 1; j < v->nf; j++)
            if (v->f[i].letter == v->f[j].letter) return false;
    return true;
}

int graft_lview__find(const lview *v, char a)
{
    for (int i = 0; i < v->nf; i++)
        if (v->f[i].letter == a) return i;
    return -1;
}

/* Row-major strides of v's factors. */
static void strides(const lview *v, int64_t *st)
{
    int64_t s = 1;
    for (int i = v->nf - 1; i >= 0; i--) {
        st[i] = s;
        s *= v->f[i].size;
    }
}

/* t and every source s[k] must carry the same letters with the same sizes
 * (B aside: it picks the source). */
static bool comparable(const lview *t, const lview *s, size_t ns, char *why, size_t nwhy)
{
    for (size_t k = 0; k < ns; k++) {
        for (int i = 0; i < t->nf; i++) {
            if (t->f[i].letter == 'B') continue;
            int j = graft_lview__find(&s[k], t->f[i].letter);
            if (j < 0 || s[k].f[j].size != t->f[i].size) {
                snprintf(why, nwhy, "axis %c (%lld) has no counterpart in the source layout",
                         t->f[i].letter, (long long)t->f[i].size);
                return false;
            }
        }
        for (int j = 0; j < s[k].nf; j++)
            if (graft_lview__find(t, s[k].f[j].letter) < 0) {
                snprintf(why, nwhy, "source axis %c (%lld) has no counterpart in the target layout",
                         s[k].f[j].letter, (long long)s[k].f[j].size);
                return false;
            }
    }
    return true;
}

/* Per source k: the row-major strides of its factors, and for each target
 * factor the source factor with its letter (-1: none, B).  Returns the
 * target's B factor, or -1. */
static int source_maps(const lview *tv, const lview *sv, size_t ns, int64_t sst[][MAXF],
                       int map[][MAXF])
{
    for (size_t k = 0; k < ns; k++) {
        strides(&sv[k], sst[k]);
        for (int i = 0; i < tv->nf; i++) map[k][i] = graft_lview__find(&sv[k], tv->f[i].letter);
    }
    return graft_lview__find(tv, 'B');
}

/* The source (*k) and its element (*sp) the layouts give the target
 * factor coordinates coord[0..nf) (tb: source_maps's B factor); false
 * (with why) when no source holds that half of the B axis. */
static bool layout_source(const lview *tv, const lview *sv, size_t ns, const int64_t sst[][MAXF],
                          const int map[][MAXF], int tb, int nf, const int64_t *coord, size_t *k,
                          int64_t *sp, char *why, size_t nwhy)
{
    *k = 0;
    if (tb >= 0) {
        while (*k < ns && sv[*k].fixed_b != coord[tb]) (*k)++;
        if (*k == ns) {
            snprintf(why, nwhy, "no source for half %lld of the B axis", (long long)coord[tb]);
            return false;
        }
    }
    *sp = 0;
    for (int i = 0; i < nf; i++) {
        int j = map[*k][i];
        if (j < 0) continue; /* B */
        int64_t c = coord[i];
        if (tv->f[i].letter == 'G') { /* the same gate, by name */
            const char *q = sv[*k].gates;
            while (*q && graft_lview__gate(*q) != graft_lview__gate(tv->gates[c])) q++;
            c = q - sv[*k].gates;
        }
        *sp += c * sst[*k][j];
    }
    return true;
}

/* exp[p] = the global source index the layouts put at target position p.
 * The innermost factor is walked as one strided run (unless it is B or a
 * gate axis): this runs over every element of every checked tensor at plan
 * time, 5% of an apply of vgg11 when done factor by factor per element. */
static bool expect_map(const lview *tv, const lview *sv, size_t ns, const uint64_t *base,
                       uint64_t tnumel, uint32_t *exp, char *why, size_t nwhy)
{
    int64_t sst[16][MAXF], coord[MAXF] = {0};
    int map[16][MAXF];
    int tb = source_maps(tv, sv, ns, sst, map);
    int in = tv->nf - 1; /* the run's factor, or -1: one element at a time */
    if (in < 0 || tv->f[in].letter == 'B' || tv->f[in].letter == 'G' || tv->f[in].size < 1) in = -1;
    int outer = in < 0 ? tv->nf : in; /* factors summed per run */
    int64_t run = in < 0 ? 1 : tv->f[in].size;
    for (uint64_t pos = 0; pos < tnumel; pos += (uint64_t)run) {
        size_t k;
        int64_t sp;
        if (!layout_source(tv, sv, ns, sst, map, tb, outer, coord, &k, &sp, why, nwhy))
            return false;
        uint64_t at = base[k] + (uint64_t)sp;
        if (in < 0) {
            exp[pos] = (uint32_t)at;
        } else {
            uint64_t step = map[k][in] < 0 ? 0 : (uint64_t)sst[k][map[k][in]];
            for (int64_t c = 0; c < run && pos + (uint64_t)c < tnumel; c++)
                exp[pos + (uint64_t)c] = (uint32_t)(at + (uint64_t)c * step);
        }
        for (int i = outer - 1; i >= 0; i--) {
            if (++coord[i] < tv->f[i].size) break;
            coord[i] = 0;
        }
    }
    return true;
}

/* The same at the sampled positions pos[0..n) only (a large tensor). */
static bool expect_at(const lview *tv, const lview *sv, size_t ns, const uint64_t *base,
                      const uint64_t *pos, size_t n, uint64_t *exp, char *why, size_t nwhy)
{
    int64_t sst[16][MAXF], tst[MAXF], coord[MAXF];
    int map[16][MAXF];
    int tb = source_maps(tv, sv, ns, sst, map);
    strides(tv, tst);
    for (size_t i = 0; i < n; i++) {
        size_t k;
        int64_t sp;
        for (int f = 0; f < tv->nf; f++) coord[f] = (int64_t)(pos[i] / (uint64_t)tst[f]) % tv->f[f].size;
        if (!layout_source(tv, sv, ns, sst, map, tb, tv->nf, coord, &k, &sp, why, nwhy))
            return false;
        exp[i] = base[k] + (uint64_t)sp;
    }
    return true;
}

/* ---- step 4: the chain on index tensors ---------------------------------- */

/* The chain without value-only ops; joins that are not layout ops followed
 * through their first source (*nin = 1).  false when it cannot be followed. */
static bool index_chain(const graft_op *ops, size_t nops, graft_op *out, size_t *nout,
                        size_t *nin)
{
    *nout = 0;
    for (size_t i = 0; i < nops; i++) {
        const graft_op_def *d = graft_op_def_of(ops[i].kind);
        if (!d) return false;
        if (ops[i].kind == GRAFT_OP_CAST || ops[i].kind == GRAFT_OP_SCALE ||
            ops[i].kind == GRAFT_OP_QUANTIZE || ops[i].kind == GRAFT_OP_DEQUANTIZE)
            continue; /* values only, element for element */
        if ((d->flags & GRAFT_OPF_JOIN) && !(d->flags & GRAFT_OPF_LAYOUT)) {
            if (i) return false;
            *nin = 1;
            continue;
        }
        if (!(d->flags & (GRAFT_OPF_LAYOUT | GRAFT_OPF_PART))) return false;
        out[(*nout)++] = ops[i];
    }
    return true;
}

/* dst[p] = global index (base of its source + position) of what the chain
 * puts at target position p.  1 = cannot be followed, 0 = done, <0 = OOM. */
/* The chain for index tensors (index_chain, into ops[64]) and the shapes
 * of its *nin inputs as uint32 indices (in[16]); false when it cannot be
 * followed. */
static bool index_inputs(const graft_plan_entry *e, graft_op *ops, size_t *nops, size_t *nin,
                         graft_shape *in)
{
    *nops = 0;
    *nin = e->nsources;
    if (e->nops > 64 || *nin > 16 || !index_chain(e->ops, e->nops, ops, nops, nin)) return false;
    for (size_t k = 0; k < *nin; k++) {
        in[k] = e->in[k];
        in[k].dtype = GRAFT_UINT32;
    }
    return true;
}

static int run_index(const graft_plan_entry *e, uint32_t *dst, uint64_t tnumel, graft_ctx *ctx)
{
    graft_op ops[64];
    size_t nops, nin;
    graft_shape out, shapes[16];
    graft_tview in[16];
    uint32_t *buf[16] = {0};
    uint64_t base = 0;
    int rc = 1;

    if (!index_inputs(e, ops, &nops, &nin, shapes)) return 1;
    for (size_t k = 0; k < nin; k++) {
        uint64_t n = 1;
        in[k].shape = shapes[k];
        for (uint32_t i = 0; i < in[k].shape.ndim; i++) n *= (uint64_t)in[k].shape.dim[i];
        if (!(buf[k] = malloc((n ? n : 1) * sizeof *buf[k]))) {
            rc = graft_error_oom(ctx, "layout check");
            goto cleanup;
        }
        for (uint64_t j = 0; j < n; j++) buf[k][j] = (uint32_t)(base + j);
        base += n;
        in[k].data = (const uint8_t *)buf[k];
    }
    if (graft_ops_infer(ops, nops, shapes, nin, &out, ctx) < 0) {
        if (graft_ctx_status(ctx) == GRAFT_ENOMEM) {
            rc = GRAFT_ENOMEM;
            goto cleanup;
        }
        graft_ctx_clear(ctx);
        goto cleanup;
    }
    if (out.dtype != GRAFT_UINT32) goto cleanup;
    uint64_t on = 1;
    for (uint32_t i = 0; i < out.ndim; i++) on *= (uint64_t)out.dim[i];
    if (on != tnumel) goto cleanup;
    if (graft_ops_run_mem(ops, nops, in, nin, (uint8_t *)dst, ctx) < 0) {
        if (graft_ctx_status(ctx) == GRAFT_ENOMEM) {
            rc = GRAFT_ENOMEM;
            goto cleanup;
        }
        graft_ctx_clear(ctx);
        goto cleanup;
    }
    rc = 0;
cleanup:
    for (size_t k = 0; k < nin; k++) free(buf[k]);
    return rc;
}

/*
 * act and exp: the global source index the chain, and the layouts, put at
 * target positions.  Every position of a tensor up to
 * GRAFT_LAYOUT_CHECK_MAX elements (32-bit: index tensors through the ops);
 * a sorted sample of a larger one (the chain composed into a gather plan
 * and asked position by position), so that memory does not grow with it.
 */
typedef struct lmaps {
    uint64_t n;              /* positions held */
    uint64_t *pos;           /* the sample, sorted and distinct; NULL: every position */
    uint32_t *act32, *exp32; /* every position */
    uint64_t *act64, *exp64; /* the sample */
} lmaps;

#define NO_INDEX UINT64_MAX /* map_at: a position the sample lacks */

static uint64_t map_at(const lmaps *m, bool act, uint64_t p)
{
    if (!m->pos) return p < m->n ? (act ? m->act32 : m->exp32)[p] : NO_INDEX;
    uint64_t lo = 0, hi = m->n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (m->pos[mid] < p) lo = mid + 1;
        else hi = mid;
    }
    return lo < m->n && m->pos[lo] == p ? (act ? m->act64 : m->exp64)[lo] : NO_INDEX;
}

/* The first target position where act and exp differ; NO_INDEX if none. */
static uint64_t maps_diff(const lmaps *m)
{
    for (uint64_t i = 0; i < m->n; i++) {
        if (!m->pos && m->act32[i] != m->exp32[i]) return i;
        if (m->pos && m->act64[i] != m->exp64[i]) return m->pos[i];
    }
    return NO_INDEX;
}

static bool maps_expect(lmaps *m, const lview *tv, const lview *sv, size_t ns,
                        const uint64_t *base, char *why, size_t nwhy)
{
    return m->pos ? expect_at(tv, sv, ns, base, m->pos, (size_t)m->n, m->exp64, why, nwhy)
                  : expect_map(tv, sv, ns, base, m->n, m->exp32, why, nwhy);
}

static void maps_free(lmaps *m)
{
    free(m->pos);
    free(m->act32);
    free(m->exp32);
    free(m->act64);
    free(m->exp64);
}

/* act at every position, by the chain run on index tensors: 1 ready, 0 not
 * checked (why), < 0 an error. */
static int dense_maps(const graft_plan_entry *e, uint64_t tnumel, lmaps *m, char *why,
                      size_t nwhy, graft_ctx *ctx)
{
    size_t n = tnumel ? (size_t)tnumel : 1;
    m->n = tnumel;
    if (!(m->exp32 = graft_calloc(ctx, n, sizeof *m->exp32)) ||
        !(m->act32 = graft_calloc(ctx, n, sizeof *m->act32)))
        return graft_error_oom(ctx, "layout check");
    int rc = run_index(e, m->act32, tnumel, ctx);
    if (rc > 0) snprintf(why, nwhy, "the op chain cannot be followed on indices");
    return rc < 0 ? rc : !rc;
}

#define SAMPLE_RANDOM 4096 /* random positions of a large tensor */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * act at a sample of a large tensor's positions, from the chain composed
 * into a gather plan: the first and last element, one step along every
 * factor and every axis (what actual_words and assume_flatten read), each
 * gate block, and SAMPLE_RANDOM positions from a fixed seed.  A layout
 * mistake moves most elements, so a few thousand find it; the steps find
 * any axis permutation.  1 ready, 0 not checked (why), < 0 an error.
 */
static int sample_maps(const graft_plan_entry *e, const lview *tv, const uint64_t *base,
                       uint64_t tnumel, lmaps *m, char *why, size_t nwhy, graft_ctx *ctx)
{
    graft_op ops[64];
    graft_shape in[16];
    graft_gplan g;
    size_t nops, nin, n = 0;
    size_t cap = SAMPLE_RANDOM + 2 + MAXF + 8 + GRAFT_MAX_NDIM;
    int64_t tst[MAXF];
    uint64_t on = 1;

    if (!index_inputs(e, ops, &nops, &nin, in)) {
        snprintf(why, nwhy, "the op chain cannot be followed on indices");
        return 0;
    }
    int rc = graft_gplan_build(&g, ops, nops, in, nin, ctx);
    if (rc < 0 && graft_ctx_status(ctx) == GRAFT_ENOMEM) return rc;
    for (uint32_t i = 0; rc == 0 && i < g.out.ndim; i++) on *= (uint64_t)g.out.dim[i];
    if (rc != 0 || g.head || on != tnumel) {
        if (rc < 0) graft_ctx_clear(ctx);
        graft_gplan_free(&g);
        snprintf(why, nwhy, "more than %llu elements, and the op chain is not one gather",
                 (unsigned long long)GRAFT_LAYOUT_CHECK_MAX);
        return 0;
    }
    m->pos = graft_malloc(ctx, cap * sizeof *m->pos);
    m->act64 = graft_malloc(ctx, cap * sizeof *m->act64);
    m->exp64 = graft_malloc(ctx, cap * sizeof *m->exp64);
    if (!m->pos || !m->act64 || !m->exp64) {
        graft_gplan_free(&g);
        return graft_error_oom(ctx, "layout check");
    }
    strides(tv, tst);
    m->pos[n++] = 0;
    m->pos[n++] = tnumel - 1;
    for (int f = 0; f < tv->nf; f++) {
        if ((uint64_t)tst[f] < tnumel) m->pos[n++] = (uint64_t)tst[f];
        for (int64_t k = 2; tv->f[f].letter == 'G' && k < tv->f[f].size && k < 10; k++)
            m->pos[n++] = (uint64_t)(k * tst[f]);
    }
    uint64_t step = 1;
    for (uint32_t i = e->target_shape.ndim; i-- > 0; step *= (uint64_t)e->target_shape.dim[i])
        if (step < tnumel) m->pos[n++] = step;
    for (uint64_t x = 0x9e3779b97f4a7c15u ^ tnumel; n < cap;) { /* xorshift64 */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        m->pos[n++] = x % tnumel;
    }
    qsort(m->pos, n, sizeof *m->pos, cmp_u64);
    m->n = 0;
    for (size_t i = 0; i < n; i++)
        if (!m->n || m->pos[m->n - 1] != m->pos[i]) m->pos[m->n++] = m->pos[i];
    for (uint64_t i = 0; i < m->n; i++) {
        int64_t off;
        const graft_gpiece *q = graft_gplan_piece_at(&g, m->pos[i], &off);
        uint32_t fill;
        if (q && q->src < 0) memcpy(&fill, q->fill, sizeof fill); /* as the index tensors do */
        m->act64[i] = !q ? NO_INDEX - 1 : q->src < 0 ? fill : base[q->src] + (uint64_t)off;
    }
    graft_gplan_free(&g);
    return 1;
}

/* Two Dense kernels of different families, neither showing a Flatten. */
static bool flatten_unknown(const graft_layout *t, const graft_layout *s)
{
    return t->role == GRAFT_ROLE_DENSE && s->role == GRAFT_ROLE_DENSE && !t->flatten[0] &&
           !s->flatten[0] && t->certainty != GRAFT_CERT_STRUCTURE &&
           s->certainty != GRAFT_CERT_STRUCTURE && t->family != s->family &&
           t->family != GRAFT_FAM_NONE && s->family != GRAFT_FAM_NONE;
}

/*
 * Does the chain do the flatten reorder between the two families' orders
 * (PyTorch CHW, Keras HWC) for some channel count?  The target's in-index 1
 * (s = 0, c = 1 in HWC) gives S in the source, when the target is the HWC
 * side; the other way round, C.  On success t and s carry the flatten.
 */
static bool assume_flatten(graft_layout *t, graft_layout *s, const graft_shape *ts,
                           const graft_shape *ss, lmaps *m, const uint64_t *base, uint64_t tnumel)
{
    int ti = (int)(strchr(t->axes, 'I') - t->axes), si = (int)(strchr(s->axes, 'I') - s->axes);
    int64_t in = ts->dim[ti], tin_stride = ti == 0 ? ts->dim[1] : 1;
    int64_t sin_stride = si == 0 ? ss->dim[1] : 1;
    if (in < 4 || in != ss->dim[si] || tnumel <= (uint64_t)tin_stride) return false;
    uint64_t a1 = map_at(m, true, (uint64_t)tin_stride), a0 = map_at(m, true, 0);
    if (a1 == NO_INDEX || a0 == NO_INDEX) return false;
    int64_t step = ((int64_t)a1 - (int64_t)a0) / sin_stride;
    {
        /* target HWC: its in-index 1 is (s 0, c 1), source CHW index S;
         * target CHW: (c 0, s 1), source HWC index C */
        int64_t c = t->family == GRAFT_FAM_KERAS ? (step > 0 ? in / step : 0) : step;
        if (c < 2 || in % c || in / c < 2) return false;
        graft_layout t2 = *t, s2 = *s;
        snprintf(t2.flatten, sizeof t2.flatten, "%s", t->family == GRAFT_FAM_TORCH ? "CHW" : "HWC");
        snprintf(s2.flatten, sizeof s2.flatten, "%s", s->family == GRAFT_FAM_TORCH ? "CHW" : "HWC");
        t2.flat_c = s2.flat_c = c;
        t2.flat_s = s2.flat_s = in / c;
        lview tv, sv;
        char why[8];
        if (!graft_lview__build(&t2, ts, &s2, ss, &tv) || !graft_lview__build(&s2, ss, &t2, ts, &sv)) return false;
        if (!maps_expect(m, &tv, &sv, 1, base, why, sizeof why)) return false;
        if (maps_diff(m) == NO_INDEX) {
            *t = t2, *s = s2;
            return true;
        }
    }
    return false;
}

/* ---- words ----------------------------------------------------------------- */

static size_t add(char *buf, size_t n, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t add(char *buf, size_t n, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (len >= n) return len;
    va_start(ap, fmt);
    int k = vsnprintf(buf + len, n - len, fmt, ap);
    va_end(ap);
    return k < 0 ? len : len + (size_t)k;
}

static size_t layout_words(const graft_layout *l, char *buf, size_t n, size_t len)
{
    char s[96];
    graft_layout_str(l, s, sizeof s);
    len = add(buf, n, len, "%s", s);
    if (l->gates[0]) {
        len = add(buf, n, len, " gates ");
        for (const char *g = l->gates; *g; g++) len = add(buf, n, len, "%s%c", g == l->gates ? "" : ",", *g);
    }
    if (l->flatten[0]) {
        len = add(buf, n, len, " in=%s(C=%lld", l->flatten, (long long)l->flat_c);
        if (l->flat_h) len = add(buf, n, len, ", %lldx%lld)", (long long)l->flat_h, (long long)l->flat_w);
        else len = add(buf, n, len, ", S=%lld)", (long long)l->flat_s);
    }
    return len;
}

static void expected_words(const graft_layout *s, const graft_layout *t, char *buf, size_t n)
{
    size_t len = layout_words(s, buf, n, 0);
    len = add(buf, n, len, " -> ");
    layout_words(t, buf, n, len);
}

static void index_words(const graft_shape *s, uint64_t pos, char *buf, size_t n)
{
    int64_t idx[GRAFT_MAX_NDIM];
    for (uint32_t i = s->ndim; i-- > 0;) {
        int64_t d = s->dim[i] > 0 ? s->dim[i] : 1;
        idx[i] = (int64_t)(pos % (uint64_t)d);
        pos /= (uint64_t)d;
    }
    size_t len = add(buf, n, 0, "[");
    for (uint32_t i = 0; i < s->ndim; i++) len = add(buf, n, len, "%s%lld", i ? "," : "", (long long)idx[i]);
    add(buf, n, len, "]");
}

/* Which source and position a global index is. */
static size_t which_source(const graft_plan_entry *e, const uint64_t *base, uint64_t g, uint64_t *pos)
{
    size_t k = 0;
    while (k + 1 < e->nsources && g >= base[k + 1]) k++;
    *pos = g - base[k];
    return k;
}

/*
 * What the chain does, in words: the target layout's letters as the chain
 * fills them (e.g. "OIHW -> WHIO"), or the gate order it gives, or the first
 * element that differs.
 */
static void actual_words(const graft_plan *p, const graft_plan_entry *e, const graft_layout *tl,
                         const graft_layout *sl, const lview *tv, const lview *sv,
                         const lmaps *m, uint64_t first_bad, const uint64_t *base, char *buf,
                         size_t n)
{
    int64_t tst[MAXF], sst[MAXF];
    char letters[MAXF + 1] = {0};
    bool perm = e->nsources == 1 && tv->nf == (int)strlen(tl->axes) && sv->nf == tv->nf;
    strides(tv, tst);
    strides(sv, sst);
    (void)p;
    /* 1. an axis permutation: each target axis steps along one source axis */
    for (int i = 0; i < tv->nf && perm; i++) {
        uint64_t a1 = map_at(m, true, (uint64_t)tst[i]), a0 = map_at(m, true, 0);
        int64_t step = (int64_t)a1 - (int64_t)a0;
        if (a1 == NO_INDEX || a0 == NO_INDEX) step = 0; /* no stride is 0 */
        int j = 0;
        while (j < sv->nf && sst[j] != step) j++;
        if (j == sv->nf) perm = false;
        else letters[i] = sv->f[j].letter;
    }
    if (perm && !strchr(letters, 'G') && !strchr(letters, 'U')) {
        /* letters are in view order; map back to the target's axes (unit axes kept) */
        char full[GRAFT_LAYOUT_MAX_AXES + 1];
        size_t k = 0, len;
        snprintf(full, sizeof full, "%s", tl->axes);
        for (size_t a = 0; a < strlen(full) && k < (size_t)tv->nf; a++)
            if (e->target_shape.dim[a] != 1) full[a] = letters[k++];
        char s[96], a[96];
        graft_layout given = *tl;
        snprintf(given.axes, sizeof given.axes, "%s", full);
        given.flatten[0] = '\0';
        graft_layout_str(sl, s, sizeof s);
        graft_layout_str(&given, a, sizeof a);
        len = add(buf, n, 0, "%s -> %s", s, a);
        (void)len;
        return;
    }
    /* 2. gates: which source gate each target gate block reads */
    int tg = graft_lview__find(tv, 'G'), sg = graft_lview__find(sv, 'G');
    if (tg >= 0 && sg >= 0 && e->nsources >= 1) {
        size_t len = add(buf, n, 0, "gates ");
        bool ok = true;
        for (int64_t g = 0; g < tv->f[tg].size && ok; g++) {
            uint64_t pos, a = map_at(m, true, (uint64_t)(g * tst[tg]));
            if (a == NO_INDEX) break; /* not sampled: cannot happen (see sample_maps) */
            which_source(e, base, a, &pos);
            int64_t sgi = ((int64_t)pos / sst[sg]) % sv->f[sg].size;
            len = add(buf, n, len, "%s%c", g ? "," : "", sv->gates[sgi]);
        }
        len = add(buf, n, len, " land in the target's ");
        for (const char *g = tv->gates; *g; g++) len = add(buf, n, len, "%s%c", g == tv->gates ? "" : ",", *g);
        add(buf, n, len, " slots");
        return;
    }
    /* 3. the first element that differs */
    char ti[80], ai[80], ei[80];
    uint64_t apos, epos;
    size_t ak = which_source(e, base, map_at(m, true, first_bad), &apos);
    size_t ek = which_source(e, base, map_at(m, false, first_bad), &epos);
    index_words(&e->target_shape, first_bad, ti, sizeof ti);
    index_words(&e->in[ak], apos, ai, sizeof ai);
    index_words(&e->in[ek], epos, ei, sizeof ei);
    snprintf(buf, n, "target element %s gets source%s element %s; the layouts call for %s%s", ti,
             e->nsources > 1 ? (ak ? " #1+" : " #0") : "", ai, ei,
             e->nsources > 1 && ek != ak ? " of another source" : "");
}

/* ---- one entry --------------------------------------------------------------- */

int graft_lcheck_entry(const graft_plan *p, const graft_plan_entry *e, graft_lcheck *out,
                       graft_ctx *ctx)
{
    const graft_tensor *tt = &p->target->tensors[e->target];
    graft_layout sls[16];
    lview tv, sv[16];
    uint64_t base[17] = {0}, tnumel = 1;
    lmaps maps = {0};
    int rc = 0;

    memset(out, 0, sizeof *out);
    graft_layout_of(p->target, tt, &out->target);
    if (e->status != GRAFT_PLAN_OK || !e->nsources) {
        snprintf(out->why, sizeof out->why, "no source");
        return 0;
    }
    if (e->nsources > 16) {
        snprintf(out->why, sizeof out->why, "too many sources");
        return 0;
    }
    for (size_t k = 0; k < e->nsources; k++) {
        graft_layout_of(p->source, &p->source->tensors[e->sources[k]], &sls[k]);
        base[k + 1] = base[k];
        uint64_t nk = 1;
        for (uint32_t i = 0; i < e->in[k].ndim; i++) nk *= (uint64_t)e->in[k].dim[i];
        base[k + 1] += nk;
    }
    out->source = sls[0];
    for (uint32_t i = 0; i < e->target_shape.ndim; i++) tnumel *= (uint64_t)e->target_shape.dim[i];
    /* 1. reconcile with the first source (the others must agree with it) */
    graft_layout tl = out->target;
    if (!graft_lview__reconcile(&tl, &sls[0], tt->ndim, e->in[0].ndim, out->why, sizeof out->why)) return 0;
    for (size_t k = 1; k < e->nsources; k++) {
        graft_layout t2 = out->target;
        if (!graft_lview__reconcile(&t2, &sls[k], tt->ndim, e->in[k].ndim, out->why, sizeof out->why)) {
            /* a join that reads several sources of other roles (sum, fold_bn)
             * is followed through its first source only */
            const graft_op_def *d = e->nops ? graft_op_def_of(e->ops[0].kind) : NULL;
            if (d && (d->flags & GRAFT_OPF_JOIN) && !(d->flags & GRAFT_OPF_LAYOUT)) break;
            return 0;
        }
    }
    out->target = tl;
    out->source = sls[0];
    /* 2. factors */
    if (!graft_lview__build(&tl, &e->target_shape, &sls[0], &e->in[0], &tv)) {
        snprintf(out->why, sizeof out->why, "the target layout does not fit its shape");
        return 0;
    }
    bool joined_values = false;
    if (e->nops) {
        const graft_op_def *d = graft_op_def_of(e->ops[0].kind);
        joined_values = d && (d->flags & GRAFT_OPF_JOIN) && !(d->flags & GRAFT_OPF_LAYOUT);
    }
    size_t ns = joined_values ? 1 : e->nsources;
    if (ns > 1 && graft_lview__find(&tv, 'B') < 0) {
        snprintf(out->why, sizeof out->why, "a join of several sources without a B axis");
        return 0;
    }
    for (size_t k = 0; k < ns; k++) {
        graft_layout sk = sls[k], t2 = out->target;
        if (k && !graft_lview__reconcile(&t2, &sk, tt->ndim, e->in[k].ndim, out->why, sizeof out->why)) return 0;
        if (!graft_lview__build(&sk, &e->in[k], &tl, &e->target_shape, &sv[k])) {
            snprintf(out->why, sizeof out->why, "the source layout does not fit its shape");
            return 0;
        }
        if (k == 0) out->source = sk;
    }
    if (!comparable(&tv, sv, ns, out->why, sizeof out->why)) return 0;
    /* 3-4. expected and actual, at every position or at a sample */
    if (base[e->nsources] > GRAFT_LAYOUT_CHECK_MAX || tnumel > GRAFT_LAYOUT_CHECK_MAX)
        rc = sample_maps(e, &tv, base, tnumel, &maps, out->why, sizeof out->why, ctx);
    else
        rc = dense_maps(e, tnumel, &maps, out->why, sizeof out->why, ctx);
    if (rc <= 0) goto cleanup; /* an error, or not checked (why) */
    rc = 0;
    if (!maps_expect(&maps, &tv, sv, ns, base, out->why, sizeof out->why)) goto cleanup;
    uint64_t bad = maps_diff(&maps);
    if (bad != NO_INDEX && flatten_unknown(&tl, &out->source)) {
        if (assume_flatten(&tl, &out->source, &e->target_shape, &e->in[0], &maps, base, tnumel)) {
            bad = NO_INDEX; /* a flatten reorder neither file shows: the benefit of the doubt */
            snprintf(out->why, sizeof out->why, "read as the flatten reorder %s -> %s (C=%lld)",
                     out->source.flatten, tl.flatten, (long long)tl.flat_c);
            out->target = tl;
        } else {
            maps_expect(&maps, &tv, sv, ns, base, out->why, sizeof out->why);
        }
    }
    expected_words(&out->source, &out->target, out->expected, sizeof out->expected);
    if (bad == NO_INDEX) {
        out->verdict = GRAFT_LCHECK_AGREES;
        snprintf(out->actual, sizeof out->actual, "%s", out->expected);
    } else {
        out->verdict = GRAFT_LCHECK_DIFFERS;
        actual_words(p, e, &out->target, &out->source, &tv, &sv[0], &maps, bad, base,
                     out->actual, sizeof out->actual);
    }
    if (maps.pos) { /* a sample: say so, with its size */
        size_t len = strlen(out->why);
        snprintf(out->why + len, sizeof out->why - len, "%schecked at %llu of %llu positions",
                 len ? "; " : "", (unsigned long long)maps.n, (unsigned long long)tnumel);
    }
cleanup:
    maps_free(&maps);
    return rc;
}

/* ---- the whole plan ------------------------------------------------------------ */

static int add_finding(graft_plan *p, const graft_plan_entry *e, const graft_lcheck *c,
                       bool error, graft_ctx *ctx)
{
    graft_layout_finding *f = graft_arena_alloc(&p->arena, sizeof *f);
    const graft_rules_pos *pos = e->transform ? &e->transform->pos : e->pair ? &e->pair->pos : NULL;
    char msg[GRAFT_MSG_MAX];
    if (!f) return graft_error_oom(ctx, "layout finding");
    f->target = p->target->tensors[e->target].name;
    f->source = p->source->tensors[e->sources[0]].name;
    f->expected = graft_arena_strdup(&p->arena, c->expected);
    f->actual = graft_arena_strdup(&p->arena, c->actual);
    f->rule = pos ? graft_arena_printf(&p->arena, "%s:%u", pos->file, pos->line)
                  : graft_arena_strdup(&p->arena, p->rules && p->rules->path ? p->rules->path : "(no rules)");
    f->error = error;
    if (!f->expected || !f->actual || !f->rule) return graft_error_oom(ctx, "layout finding");
    snprintf(msg, sizeof msg, "%s: layout: '%s' <- '%s': the layouts call for %s, the ops give %s",
             f->rule, f->target, f->source, f->expected, f->actual);
    if (p->ndiags % 16 == 0) {
        graft_plan_diag *nd = graft_realloc(ctx, p->diags, (p->ndiags + 16) * sizeof *nd);
        if (!nd) return graft_error_oom(ctx, "plan messages");
        p->diags = nd;
    }
    graft_plan_diag *d = &p->diags[p->ndiags];
    d->level = error ? GRAFT_DIAG_ERROR : GRAFT_DIAG_WARNING;
    d->message = graft_arena_strdup(&p->arena, msg);
    d->layout = f;
    if (!d->message) return graft_error_oom(ctx, "plan messages");
    p->ndiags++;
    if (error) p->errors++;
    return 0;
}

int graft_lcheck_plan(graft_plan *p, const graft_rules *rules, graft_ctx *ctx)
{
    graft_policy_layout pol = rules ? rules->layout : GRAFT_LAYOUT_AUTO;
    if (pol == GRAFT_LAYOUT_IGNORE) return 0;
    for (size_t i = 0; i < p->nentries; i++) {
        const graft_plan_entry *e = &p->entries[i];
        graft_lcheck c;
        if (e->status != GRAFT_PLAN_OK || !e->nsources) continue;
        GRAFT_TRY(graft_lcheck_entry(p, e, &c, ctx));
        if (c.verdict != GRAFT_LCHECK_DIFFERS) continue;
        bool error = pol == GRAFT_LAYOUT_ERROR || p->strict || /* --strict: warnings are errors */
                     (pol == GRAFT_LAYOUT_AUTO && c.target.certainty == GRAFT_CERT_STRUCTURE &&
                      c.source.certainty == GRAFT_CERT_STRUCTURE);
        GRAFT_TRY(add_finding(p, e, &c, error, ctx));
    }
    return 0;
}
