/*
 * opchain.c - the op chain of each pair: the one the two layouts call for
 * (graft_layout_ops, the layout check's own mapping: conv OIHW <-> HWIO,
 * depthwise, transposed convs, dense transposes, a Flatten's CHW <-> HWC
 * order, gate orders), and where a layout is unknown, the permutation of
 * the axes the shapes allow.  A chain the shapes alone chose among several,
 * and a square matrix transposed on naming conventions alone, make the
 * target a guess.
 */
#include "layout_int.h"
#include "lcheck.h"
#include "op_json.h"
#include "suggest_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void shape_of(const graft_tensor *t, graft_shape *s)
{
    memset(s, 0, sizeof *s);
    s->dtype = t->dtype;
    s->ndim = t->ndim;
    for (uint32_t k = 0; k < t->ndim && k < GRAFT_MAX_NDIM; k++) s->dim[k] = t->shape[k];
}

static int push(graft_op *ops, size_t *n, graft_op_kind kind, const int64_t *v, uint32_t nv,
                graft_ctx *ctx)
{
    return graft_layout__add_op(ops, n, kind, v, nv, 0, ctx);
}

/* The next permutation of p[0..n) in lexicographic order; false after the last. */
static bool next_perm(int64_t *p, uint32_t n)
{
    int i = (int)n - 2;
    while (i >= 0 && p[i] > p[i + 1]) i--;
    if (i < 0) return false;
    int j = (int)n - 1;
    while (p[j] < p[i]) j--;
    int64_t x = p[i];
    p[i] = p[j], p[j] = x;
    for (int l = i + 1, r = (int)n - 1; l < r; l++, r--) x = p[l], p[l] = p[r], p[r] = x;
    return true;
}

/* Permutations of the n axes of a that give b (n <= 6), in a preferred
 * order: identity first, then the PyTorch <-> TF kernel layouts. */
static size_t perms_between(const int64_t *a, const int64_t *b, uint32_t n, int64_t first[6])
{
    static const int64_t pref4[][4] = {{0, 1, 2, 3}, {2, 3, 1, 0}, {3, 2, 0, 1}, {2, 3, 0, 1},
                                       {3, 2, 1, 0}, {1, 0, 2, 3}};
    int64_t p[6];
    size_t found = 0;
    bool have = false;
    if (n == 4)
        for (size_t k = 0; k < sizeof pref4 / sizeof *pref4; k++) {
            bool ok = true;
            for (uint32_t i = 0; i < 4; i++) ok &= a[pref4[k][i]] == b[i];
            if (ok && !have) memcpy(first, pref4[k], sizeof pref4[k]), have = true;
        }
    /* count every permutation (Heap's algorithm order does not matter here) */
    for (uint32_t i = 0; i < n; i++) p[i] = i;
    for (;;) {
        bool ok = true;
        for (uint32_t i = 0; i < n; i++) ok &= a[p[i]] == b[i];
        if (ok) {
            if (!have) memcpy(first, p, n * sizeof *p), have = true;
            found++;
        }
        if (!next_perm(p, n)) break;
    }
    return found;
}

/* From the shapes alone: a permutation of the axes when the ranks agree
 * (*choices: how many orders of the axes longer than 1 fit), else axes of
 * 1 dropped, permuted, and the target's shape restored. */
static int by_shapes(const graft_shape *ss, const graft_shape *ts, graft_op *ops, size_t *n,
                     size_t *choices, graft_ctx *ctx)
{
    int64_t a[GRAFT_MAX_NDIM] = {0}, b[GRAFT_MAX_NDIM] = {0}, perm[6], full[6];
    uint32_t na = 0, nb = 0;
    for (uint32_t k = 0; k < ss->ndim; k++)
        if (ss->dim[k] != 1) a[na++] = ss->dim[k];
    for (uint32_t k = 0; k < ts->ndim; k++)
        if (ts->dim[k] != 1) b[nb++] = ts->dim[k];
    *choices = 0;
    if (na != nb || na > 6) return 0;
    if (!(*choices = perms_between(a, b, na, perm))) return 0;
    if (ss->ndim == ts->ndim && ss->ndim <= 6 && perms_between(ss->dim, ts->dim, ss->ndim, full)) {
        bool identity = true;
        for (uint32_t i = 0; i < ss->ndim; i++) identity &= full[i] == i;
        if (identity) return 0;
        bool swap2 = ss->ndim == 2;
        return push(ops, n, swap2 ? GRAFT_OP_TRANSPOSE : GRAFT_OP_PERMUTE, full, swap2 ? 0 : ss->ndim,
                    ctx);
    }
    bool identity = true;
    for (uint32_t i = 0; i < na; i++) identity &= perm[i] == i;
    if (na != ss->ndim && push(ops, n, GRAFT_OP_RESHAPE, a, na, ctx) < 0) return -1;
    if (!identity) {
        bool swap2 = na == 2;
        if (push(ops, n, swap2 ? GRAFT_OP_TRANSPOSE : GRAFT_OP_PERMUTE, perm, swap2 ? 0 : na, ctx) < 0)
            return -1;
    }
    if ((na != ts->ndim || *n == 0) && push(ops, n, GRAFT_OP_RESHAPE, ts->dim, ts->ndim, ctx) < 0)
        return -1;
    return 0;
}

static bool gives(const graft_op *ops, size_t n, const graft_shape *ss, const graft_shape *ts,
                  graft_ctx *ctx)
{
    graft_shape out;
    if (graft_ops_infer(ops, n, ss, 1, &out, ctx) < 0) {
        graft_ctx_clear(ctx);
        return false;
    }
    return out.ndim == ts->ndim && !memcmp(out.dim, ts->dim, ts->ndim * sizeof *ts->dim);
}

/* Do two chains move the elements of a tensor of shape ss alike?  Run on
 * index tensors (only small ones). */
static bool same_mapping(const graft_op *a, size_t na, const graft_op *b, size_t nb,
                         const graft_shape *ss, graft_ctx *ctx)
{
    uint64_t numel = 1;
    for (uint32_t k = 0; k < ss->ndim; k++) numel *= (uint64_t)ss->dim[k];
    if (numel > ((uint64_t)1 << 20)) return false;
    int32_t *idx = graft_malloc(ctx, numel * 4 + 4);
    uint8_t *oa = graft_malloc(ctx, numel * 4 + 4), *ob = graft_malloc(ctx, numel * 4 + 4);
    bool same = false;
    if (idx && oa && ob) {
        graft_tview in = {.shape = *ss, .data = (const uint8_t *)idx};
        in.shape.dtype = GRAFT_INT32;
        for (uint64_t i = 0; i < numel; i++) idx[i] = (int32_t)i;
        same = graft_ops_run_mem(a, na, &in, 1, oa, ctx) == 0 &&
               graft_ops_run_mem(b, nb, &in, 1, ob, ctx) == 0 && !memcmp(oa, ob, numel * 4);
    }
    graft_ctx_clear(ctx);
    free(idx);
    free(oa);
    free(ob);
    return same;
}

static bool has_kind(const graft_op *ops, size_t n, graft_op_kind k)
{
    for (size_t i = 0; i < n; i++)
        if (ops[i].kind == k) return true;
    return false;
}

/* A PyTorch depthwise kernel is an OIHW conv by its name alone: read it in
 * the role the other side gives (depthwise), in its own family's axes. */
static bool as_depthwise(graft_layout *l, const graft_layout *other, uint32_t rank)
{
    if (other->role != GRAFT_ROLE_DEPTHWISE || l->role != GRAFT_ROLE_CONV) return false;
    l->role = GRAFT_ROLE_DEPTHWISE;
    snprintf(l->axes, sizeof l->axes, "%s", graft_layout__axes_for(l->family, l->role, rank));
    return l->axes[0] != '\0';
}

static void clear_ops(graft_op *ops, size_t *n)
{
    for (size_t k = 0; k < *n; k++) free(ops[k].v), ops[k].v = NULL;
    *n = 0;
}

static int one(graft_suggestion *s, sg_t *t, graft_ctx *ctx)
{
    const sg_t *y = &s->src.v[t->pair];
    graft_shape ss, ts;
    graft_op *ops = NULL, *lops = NULL;
    size_t n = 0, nl = 0, choices = 1;
    bool from_layouts = false, simpler = false;
    graft_jsonw w;
    int rc = -1, part = sg_fold_part(s, t);
    graft_layout ylay = y->lay;
    shape_of(y->t, &ss);
    shape_of(t->t, &ts);
    if (part == SG_PART_STACK) {
        /* the chain after the stack: from (input|recurrent, gates*units) */
        ss.ndim = 2, ss.dim[0] = 2, ss.dim[1] = y->t->shape[0];
        ylay.role = GRAFT_ROLE_RNN_BIAS;
        snprintf(ylay.axes, sizeof ylay.axes, "%s", graft_layout__axes_for(ylay.family, ylay.role, 2));
    }
    graft_jsonw_init(&w, ctx);
    if (t->lay.axes[0] && ylay.axes[0]) {
        graft_layout sl = ylay, tl = t->lay;
        for (int attempt = 0; attempt < 2 && !from_layouts; attempt++) {
            if (attempt && !as_depthwise(&sl, &tl, ss.ndim) && !as_depthwise(&tl, &sl, ts.ndim)) break;
            graft_ops_free(lops, nl);
            lops = NULL, nl = 0;
            if (graft_layout_ops(&sl, &ss, &tl, &ts, &lops, &nl, ctx) == 0 && gives(lops, nl, &ss, &ts, ctx))
                from_layouts = true;
            else if (graft_ctx_status(ctx) == GRAFT_ENOMEM)
                goto cleanup;
            graft_ctx_clear(ctx);
        }
    }
    if (!(ops = graft_calloc(ctx, 6, sizeof *ops))) {
        graft_error_oom(ctx, "ops");
        goto cleanup;
    }
    if (from_layouts && nl > 1 && ss.ndim == ts.ndim && ss.ndim <= 6) {
        /* the layouts' chain, written as one permute when one does the same */
        int64_t p[6];
        for (uint32_t i = 0; i < ss.ndim; i++) p[i] = i;
        /* no op at all when the layouts' chain moves nothing (a 1x1 kernel) */
        simpler = !memcmp(ss.dim, ts.dim, ss.ndim * sizeof *ss.dim) && same_mapping(ops, 0, lops, nl, &ss, ctx);
        while (!simpler && next_perm(p, ss.ndim)) {
            bool fits = true;
            for (uint32_t i = 0; i < ss.ndim; i++) fits &= ss.dim[p[i]] == ts.dim[i];
            if (!fits) continue;
            bool swap2 = ss.ndim == 2;
            if (push(ops, &n, swap2 ? GRAFT_OP_TRANSPOSE : GRAFT_OP_PERMUTE, p, swap2 ? 0 : ss.ndim, ctx) < 0)
                goto cleanup;
            if (same_mapping(ops, n, lops, nl, &ss, ctx)) simpler = true;
            else clear_ops(ops, &n);
        }
    }
    bool gates_known = true;
    if (part >= SG_PART_SUM) {
        /* a recurrent bias joined from two: only its gate order can change
         * (the layout check's own ops refuse a joined bias) */
        const char *sg = ylay.gates, *tg = t->lay.gates;
        size_t ng = strlen(tg);
        int64_t order[5];
        bool moved = false;
        gates_known = sg[0] && ng && strlen(sg) == ng;
        if (part >= SG_PART_SPLIT0) {  /* one half of the (2, n) source first */
            if (graft_layout__add_op(ops, &n, GRAFT_OP_TAKE, NULL, 0, 0, ctx) < 0) goto cleanup;
            ops[n - 1].count = 2, ops[n - 1].index = part - SG_PART_SPLIT0;
        }
        for (size_t k = 0; gates_known && k < ng; k++) {
            const char *q = sg;
            while (*q && graft_lview__gate(*q) != graft_lview__gate(tg[k])) q++;
            gates_known = *q != '\0';
            order[k] = q - sg;
            moved |= order[k] != (int64_t)k;
        }
        /* the gates run along the (2, n) tensor's axis 1, the half's too (1, n) */
        if (gates_known && moved &&
            graft_layout__add_op(ops, &n, GRAFT_OP_CHUNKS, order, (uint32_t)ng, part != SG_PART_SUM, ctx) < 0)
            goto cleanup;
        if (part >= SG_PART_SPLIT0 && graft_layout__add_op(ops, &n, GRAFT_OP_RESHAPE, ts.dim, ts.ndim, 0, ctx) < 0)
            goto cleanup;
    } else if (from_layouts && !simpler) {
        for (size_t k = 0; k < nl; k++)
            if (push(ops, &n, lops[k].kind, lops[k].v, lops[k].n, ctx) < 0) goto cleanup;
            else ops[n - 1].axis = lops[k].axis;
    } else if (!from_layouts && by_shapes(&ss, &ts, ops, &n, &choices, ctx) < 0) {
        goto cleanup;
    }
    if (ss.dtype != ts.dtype) {
        if (push(ops, &n, GRAFT_OP_CAST, NULL, 0, ctx) < 0) goto cleanup;
        ops[n - 1].dtype = ts.dtype;
    }
    graft_jsonw_raw(&w, "[", 1);
    bool joins = part >= 0 && part <= SG_PART_STACK;
    if (joins) {
        /* the op joining the sources comes first */
        graft_op join = {.kind = GRAFT_OP_FOLD_BN, .part = part ? GRAFT_BN_BIAS : GRAFT_BN_WEIGHT,
                         .eps = strtod(SG_FOLD_EPS, NULL)};
        if (part == SG_PART_SUM) join = (graft_op){.kind = GRAFT_OP_SUM};
        if (part == SG_PART_STACK) join = (graft_op){.kind = GRAFT_OP_STACK, .axis = 0};
        graft_op__json(&w, &join);
        if (n) graft_jsonw_raw(&w, ", ", 2);
    }
    graft_op__json_chain(&w, ops, n);
    graft_jsonw_raw(&w, "]", 1);
    size_t nj = n + joins;
    if (w.rc < 0) goto cleanup;
    t->ops = nj ? w.p : NULL;
    if (!nj) graft_jsonw_free(&w);
    w.p = NULL;
    if (!t->ops && !(t->ops = graft_strdup(ctx, ""))) {
        graft_error_oom(ctx, "ops");
        goto cleanup;
    }
    t->nops = (long)nj;
    bool square = ts.ndim == 2 && ts.dim[0] == ts.dim[1] && ts.dim[0] > 1;
    bool structure = t->lay.certainty == GRAFT_CERT_STRUCTURE || y->lay.certainty == GRAFT_CERT_STRUCTURE;
    rc = 0;
    if (!gates_known)
        rc = sg_set_conf(t, GRAFT_SUGGEST_GUESS, "a joined recurrent bias whose gate orders are not both known",
                         false, ctx);
    else if (part == SG_PART_SUM && strlen(t->lay.gates) == 3)
        rc = sg_set_conf(t, GRAFT_SUGGEST_GUESS,
                         "a GRU with one bias (reset_after=False) resets before the recurrent product, "
                         "PyTorch's after: no exact mapping", false, ctx);
    else if (part < 0 && !from_layouts && t->lay.axes[0] && ylay.axes[0] && t->lay.role == ylay.role &&
             t->lay.role != GRAFT_ROLE_BIAS && t->lay.role != GRAFT_ROLE_OTHER)
        rc = sg_set_conf(t, GRAFT_SUGGEST_GUESS,
                         "its layout and its source's, of one role, call for another shape", false, ctx);
    else if (part < 0 && y->lay.role == GRAFT_ROLE_RNN_BIAS &&
             (t->lay.role == GRAFT_ROLE_RNN_INPUT_BIAS || t->lay.role == GRAFT_ROLE_RNN_HIDDEN_BIAS))
        rc = sg_set_conf(t, GRAFT_SUGGEST_GUESS,
                         "one recurrent bias (the sum of two) into one of two: a sum has no inverse, the "
                         "other half must be zero for it to hold", false, ctx);
    else if (part >= 0 && part <= SG_PART_BN_BIAS && t->conf == GRAFT_SUGGEST_CERTAIN)
        /* eps is a convention here, not evidence (efficientnet uses 1e-3):
         * a fold resting on it is a guess, as a square transpose on names is */
        rc = sg_set_conf(t, GRAFT_SUGGEST_GUESS,
                         "BatchNorm folded in with eps " SG_FOLD_EPS " (PyTorch's default; a state "
                         "dict does not keep eps: check the model's)", false, ctx);
    if (rc < 0) goto cleanup;
    if (!from_layouts && choices == 0)
        rc = sg_set_conf(t, GRAFT_SUGGEST_GUESS, "no layout change turns its source's shape into its own",
                         false, ctx);
    else if (!from_layouts && choices > 1)
        rc = sg_set_conf(t, GRAFT_SUGGEST_GUESS,
                         square ? "square matrix and no known layout: the shapes cannot tell a transpose"
                                : "layouts unknown and the shapes allow several axis orders",
                         false, ctx);
    else if (from_layouts && square && !structure && has_kind(ops, n, GRAFT_OP_TRANSPOSE) &&
             t->conf != GRAFT_SUGGEST_GUESS)
        rc = sg_set_conf(t, GRAFT_SUGGEST_GUESS,
                         "square matrix: its transpose rests on naming conventions alone", false, ctx);
cleanup:
    graft_jsonw_free(&w);
    graft_ops_free(ops, n);
    graft_ops_free(lops, nl);
    return rc;
}

int sg_opchains(graft_suggestion *s, graft_ctx *ctx)
{
    for (size_t i = 0; i < s->dst.n; i++) {
        sg_t *t = &s->dst.v[i];
        if (t->pair >= 0 && one(s, t, ctx) < 0) return -1;
    }
    return 0;
}
