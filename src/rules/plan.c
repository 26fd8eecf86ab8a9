/*
 * plan.c - pair the tensors of a skeleton with those of a source model and
 * check each pair's op chain: the plan `graft plan` prints and `graft apply`
 * runs.
 *
 * Forward, for every target tensor: an explicit `pairs` entry (by original
 * names) wins; otherwise the source whose renamed name equals the target's
 * renamed name.  The first transform whose selectors all match gives the op
 * chain, whose output must agree with the target in shape and dtype.
 *
 * Reverse: the rules describe the opposite direction, so the forward plan is
 * built with the two models swapped and then turned around, pair by pair,
 * with graft_ops_invert (which needs the forward input shapes).
 */
#include "rules_int.h"
#include "lcheck.h"
#include "strmap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE GRAFT_STRMAP_NONE

/* ---- plan helpers ------------------------------------------------------- */

const char *graft_plan_status_name(graft_plan_status s)
{
    static const char *const names[] = {"ok", "missing", "kept", "mismatch", "error"};
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "invalid";
}

static int diag(graft_plan *p, graft_diag_level level, graft_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int diag(graft_plan *p, graft_diag_level level, graft_ctx *ctx, const char *fmt, ...)
{
    char msg[GRAFT_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->strict) level = GRAFT_DIAG_ERROR;
    if (p->ndiags % 16 == 0) {
        graft_plan_diag *nd = graft_realloc(ctx, p->diags, (p->ndiags + 16) * sizeof *nd);
        if (!nd) return graft_error_oom(ctx, "plan messages");
        p->diags = nd;
    }
    p->diags[p->ndiags].level = level;
    p->diags[p->ndiags].layout = NULL;
    p->diags[p->ndiags].message = graft_arena_strdup(&p->arena, msg);
    if (!p->diags[p->ndiags].message) return graft_error_oom(ctx, "plan messages");
    p->ndiags++;
    if (level == GRAFT_DIAG_ERROR) p->errors++;
    return 0;
}

static void shape_of(const graft_tensor *t, graft_shape *s)
{
    memset(s, 0, sizeof *s);
    s->dtype = t->dtype;
    s->ndim = t->ndim <= GRAFT_MAX_NDIM ? t->ndim : GRAFT_MAX_NDIM;
    for (uint32_t i = 0; i < s->ndim; i++) s->dim[i] = t->shape[i];
}

static bool shape_eq(const graft_shape *a, const graft_shape *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim) return false;
    for (uint32_t i = 0; i < a->ndim; i++)
        if (a->dim[i] != b->dim[i]) return false;
    return true;
}

static void shape_str(const graft_shape *s, char *buf, size_t n)
{
    size_t len = 0;
    len += (size_t)snprintf(buf + len, n - len, "[");
    for (uint32_t i = 0; i < s->ndim && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? "," : "", (long long)s->dim[i]);
    if (len < n) snprintf(buf + len, n - len, "] %s", graft_dtype_name(s->dtype));
}

static int set_message(graft_plan *p, graft_plan_entry *e, graft_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int set_message(graft_plan *p, graft_plan_entry *e, graft_ctx *ctx, const char *fmt, ...)
{
    char msg[GRAFT_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    e->message = graft_arena_strdup(&p->arena, msg);
    return e->message ? 0 : graft_error_oom(ctx, "plan message");
}

static int new_plan(graft_plan **out, const graft_rules *rules, const graft_model *source,
                    const graft_model *target, graft_ctx *ctx)
{
    graft_plan *p = graft_calloc(ctx, 1, sizeof *p);
    if (!p) return graft_error_oom(ctx, "plan");
    graft_arena_init(&p->arena, ctx);
    p->rules = rules;
    p->source = source;
    p->target = target;
    p->nentries = target->count;
    p->entries = graft_arena_alloc(&p->arena, (target->count + 1) * sizeof *p->entries);
    p->source_keys = graft_arena_alloc(&p->arena, (source->count + 1) * sizeof *p->source_keys);
    *out = p;
    if (!p->entries || !p->source_keys) return graft_error_oom(ctx, "plan");
    for (size_t i = 0; i < target->count; i++) {
        p->entries[i].target = i;
        shape_of(&target->tensors[i], &p->entries[i].target_shape);
    }
    return 0;
}

void graft_plan_free(graft_plan *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->nowned; i++) graft_ops_free(p->owned_ops[i], p->owned_nops[i]);
    free(p->owned_ops);
    free(p->owned_nops);
    free(p->diags);
    graft_arena_free(&p->arena);
    graft_plan_free(p->sub);
    graft_model_free(p->own_sel);
    graft_model_free(p->own_skeleton);
    graft_model_free(p->own_source);
    free(p);
}

const graft_plan_entry *graft_plan_find(const graft_plan *p, const char *target_name)
{
    for (size_t i = 0; i < p->nentries; i++)
        if (!strcmp(p->target->tensors[i].name, target_name)) return &p->entries[i];
    return NULL;
}

/* Renamed names of one side, in the plan arena; counts per rename rule. */
static int rename_all(graft_plan *p, const graft_rules *r, graft_side side, const graft_model *m,
                      const char **keys, size_t *counts, graft_ctx *ctx)
{
    for (size_t i = 0; i < m->count; i++) {
        char *k;
        GRAFT_TRY(graft_rules__rename_count(r, side, m->tensors[i].name, &k, counts, ctx));
        keys[i] = graft_arena_strdup(&p->arena, k);
        free(k);
        if (!keys[i]) return graft_error_oom(ctx, "renamed names");
    }
    return 0;
}

/* The first transform whose selectors match, in *out (NULL when none). */
static int choose_transform(const graft_rules *r, const char *tname, const graft_tensor *src,
                            const graft_transform **out, size_t *which, graft_ctx *ctx)
{
    *out = NULL;
    for (size_t i = 0; r && i < r->ntransforms; i++) {
        const graft_transform *t = &r->transforms[i];
        int rc;
        if (t->rank >= 0 && (uint32_t)t->rank != src->ndim) continue;
        if (t->dtype != GRAFT_DTYPE_INVALID && t->dtype != src->dtype) continue;
        if ((rc = graft_regex_search(&t->target, tname, ctx)) <= 0) {
            if (rc < 0) return rc;
            continue;
        }
        if ((rc = graft_regex_search(&t->source, src->name, ctx)) <= 0) {
            if (rc < 0) return rc;
            continue;
        }
        *which = i;
        *out = t;
        return 0;
    }
    return 0;
}

/* The mismatch policy for an entry: its transform's, else the file's. */
static graft_policy_mismatch mismatch_of(const graft_rules *r, const graft_plan_entry *e)
{
    if (e->transform && e->transform->mismatch >= 0)
        return (graft_policy_mismatch)e->transform->mismatch;
    return r ? r->mismatch : GRAFT_MISMATCH_ERROR;
}

/*
 * Tensors graft cannot read (graft_tensor.unsupported): a skeleton's is kept
 * as it is; a source's is an error only for the entry that needs it.
 * Returns 1 when it decided e.
 */
static int unsupported_entry(graft_plan *p, graft_plan_entry *e, graft_ctx *ctx)
{
    const graft_tensor *tt = &p->target->tensors[e->target];
    if (tt->unsupported) {
        e->status = GRAFT_PLAN_KEPT;
        e->nsources = 0;
        GRAFT_TRY(set_message(p, e, ctx, "'%s' is stored as %s, which graft cannot read: "
                                         "copied unchanged", tt->name, tt->unsupported));
        return 1;
    }
    for (size_t k = 0; k < e->nsources; k++) {
        const graft_tensor *st = &p->source->tensors[e->sources[k]];
        if (!st->unsupported) continue;
        e->status = GRAFT_PLAN_ERROR;
        GRAFT_TRY(set_message(p, e, ctx, "'%s' needs source '%s', stored as %s, which graft "
                                         "cannot read", tt->name, st->name, st->unsupported));
        return 1;
    }
    return 0;
}

/* Shapes after the chain, and the status that follows from the policies. */
static int check_chain(graft_plan *p, graft_plan_entry *e, graft_policy_mismatch mismatch,
                       graft_ctx *ctx)
{
    const char *tname = p->target->tensors[e->target].name;
    int rc = unsupported_entry(p, e, ctx);
    if (rc != 0) return rc < 0 ? rc : 0;
    if (e->nsources > 1 && (e->nops == 0 || !graft_ops_joins(&e->ops[0]))) {
        e->status = GRAFT_PLAN_ERROR;
        return set_message(p, e, ctx, "'%s' has %zu sources but its op chain does not start "
                                      "with concat (or stack, sum, fold_bn)", tname, e->nsources);
    }
    if (graft_ops_infer(e->ops, e->nops, e->in, e->nsources, &e->out, ctx) < 0) {
        if (graft_ctx_status(ctx) == GRAFT_ENOMEM) return GRAFT_ENOMEM;
        e->status = GRAFT_PLAN_ERROR;
        memset(&e->out, 0, sizeof e->out);
        int rc = set_message(p, e, ctx, "'%s': %s", tname, graft_ctx_message(ctx));
        graft_ctx_clear(ctx);
        return rc;
    }
    if (shape_eq(&e->out, &e->target_shape)) {
        e->status = GRAFT_PLAN_OK;
        return 0;
    }
    char a[256], b[256], where[256] = "";
    shape_str(&e->out, a, sizeof a);
    shape_str(&e->target_shape, b, sizeof b);
    if (e->transform)
        snprintf(where, sizeof where, " (transform %s:%u)", e->transform->pos.file,
                 e->transform->pos.line);
    else if (e->pair)
        snprintf(where, sizeof where, " (pairs %s:%u)", e->pair->pos.file, e->pair->pos.line);
    e->status = mismatch == GRAFT_MISMATCH_KEEP ? GRAFT_PLAN_KEPT : GRAFT_PLAN_MISMATCH;
    return set_message(p, e, ctx, "'%s' %s after ops vs '%s' %s in the skeleton%s",
                       p->source->tensors[e->sources[0]].name, a, tname, b, where);
}

/* Pair one target tensor i (forward). */
static int pair_one(graft_plan *p, const graft_rules *r, size_t i, const graft_strmap *bykey,
                    const size_t *ambiguous, const graft_strmap *byname, const graft_strmap *pairmap,
                    size_t *tcounts, bool *pair_used, graft_ctx *ctx)
{
    graft_plan_entry *e = &p->entries[i];
    const graft_tensor *tt = &p->target->tensors[i];
    size_t pi = graft_strmap_get(pairmap, tt->name);
    size_t nsrc = 1, first = NONE;

    if (pi != NONE) {
        e->pair = &r->pairs[pi];
        pair_used[pi] = true;
        nsrc = e->pair->nsources;
    } else {
        first = graft_strmap_get(bykey, e->key);
        if (first == NONE) return 0; /* missing: decided by the caller */
        if (ambiguous[first] != NONE) {
            e->status = GRAFT_PLAN_ERROR;
            return set_message(p, e, ctx, "'%s': sources '%s' and '%s' both rename to '%s'",
                               tt->name, p->source->tensors[first].name,
                               p->source->tensors[ambiguous[first]].name, e->key);
        }
    }
    e->sources = graft_arena_alloc(&p->arena, nsrc * sizeof *e->sources);
    e->in = graft_arena_alloc(&p->arena, nsrc * sizeof *e->in);
    if (!e->sources || !e->in) return graft_error_oom(ctx, "plan");
    e->nsources = nsrc;
    for (size_t k = 0; k < nsrc; k++) {
        size_t j = e->pair ? graft_strmap_get(byname, e->pair->sources[k]) : first;
        if (j == NONE) {
            e->status = GRAFT_PLAN_ERROR;
            e->nsources = 0;
            return set_message(p, e, ctx, "%s:%u: pairs: source '%s' of '%s' is not in the "
                                          "source model", e->pair->pos.file, e->pair->pos.line,
                               e->pair->sources[k], tt->name);
        }
        e->sources[k] = j;
        shape_of(&p->source->tensors[j], &e->in[k]);
    }
    size_t ti = 0;
    GRAFT_TRY(choose_transform(r, tt->name, &p->source->tensors[e->sources[0]], &e->transform,
                               &ti, ctx));
    if (e->transform) {
        tcounts[ti]++;
        e->ops = e->transform->ops;
        e->nops = e->transform->nops;
    }
    return 0;
}

/* Warnings and expect errors for rules that matched a different count. */
static int rule_counts(graft_plan *p, const graft_rules *r, size_t *const counts[2],
                       const size_t *tcounts, const bool *pair_used, graft_ctx *ctx)
{
    for (int side = 0; r && side < 2; side++) {
        for (size_t i = 0; i < r->nrename[side]; i++) {
            const graft_rename *rn = &r->rename[side][i];
            const char *sname = side == GRAFT_SIDE_SOURCE ? "source" : "target";
            if (rn->expect >= 0 && (size_t)rn->expect != counts[side][i])
                GRAFT_TRY(diag(p, GRAFT_DIAG_ERROR, ctx,
                               "%s:%u: rename '%s' matched %zu %s names, expected %lld",
                               rn->pos.file, rn->pos.line, rn->match.pattern, counts[side][i],
                               sname, (long long)rn->expect));
            else if (rn->expect < 0 && counts[side][i] == 0)
                GRAFT_TRY(diag(p, GRAFT_DIAG_WARNING, ctx, "%s:%u: rename '%s' matched no %s name",
                               rn->pos.file, rn->pos.line, rn->match.pattern, sname));
        }
    }
    for (size_t i = 0; r && i < r->ntransforms; i++) {
        const graft_transform *t = &r->transforms[i];
        if (t->expect >= 0 && (size_t)t->expect != tcounts[i])
            GRAFT_TRY(diag(p, GRAFT_DIAG_ERROR, ctx, "%s:%u: transform applied to %zu pairs, "
                                                     "expected %lld",
                           t->pos.file, t->pos.line, tcounts[i], (long long)t->expect));
        else if (t->expect < 0 && tcounts[i] == 0)
            GRAFT_TRY(diag(p, GRAFT_DIAG_WARNING, ctx, "%s:%u: transform matched no pair",
                           t->pos.file, t->pos.line));
    }
    for (size_t i = 0; r && i < r->npairs; i++)
        if (!pair_used[i])
            GRAFT_TRY(diag(p, GRAFT_DIAG_WARNING, ctx,
                           "%s:%u: pairs: target '%s' is not in the skeleton",
                           r->pairs[i].pos.file, r->pairs[i].pos.line, r->pairs[i].target));
    return 0;
}

/* A source feeding several targets without take or explicit pairs. */
static int tied_sources(graft_plan *p, graft_ctx *ctx)
{
    size_t n = p->source->count;
    size_t *uses = graft_calloc(ctx, n + 1, sizeof *uses);
    size_t *firstuse = graft_calloc(ctx, n + 1, sizeof *firstuse);
    bool *loose = graft_calloc(ctx, n + 1, sizeof *loose);
    int rc = 0;
    if (!uses || !firstuse || !loose) {
        rc = graft_error_oom(ctx, "plan");
        goto cleanup;
    }
    for (size_t i = 0; i < p->nentries; i++) {
        const graft_plan_entry *e = &p->entries[i];
        bool excused = e->pair || graft_ops_take_part(e->ops, e->nops);
        for (size_t k = 0; k < e->nsources; k++) {
            size_t j = e->sources[k];
            if (uses[j]++ == 0) firstuse[j] = i;
            if (!excused) loose[j] = true;
        }
    }
    for (size_t j = 0; j < n && rc == 0; j++) {
        if (uses[j] < 2 || !loose[j]) continue;
        rc = diag(p, GRAFT_DIAG_WARNING, ctx,
                  "source '%s' feeds %zu targets (first '%s') without take or an explicit "
                  "pairs entry", p->source->tensors[j].name, uses[j],
                  p->target->tensors[firstuse[j]].name);
    }
cleanup:
    free(uses);
    free(firstuse);
    free(loose);
    return rc;
}

/* Missing targets, unused sources and the error count, under the policies. */
static int finish(graft_plan *p, const graft_rules *r, bool source_ignored_by_rules,
                  graft_policy_missing missing, graft_policy_unused unused, graft_ctx *ctx)
{
    size_t n = p->source->count;
    bool *used = graft_calloc(ctx, n + 1, sizeof *used);
    int rc = 0;
    if (!used) return graft_error_oom(ctx, "plan");
    p->missing = graft_arena_alloc(&p->arena, (p->nentries + 1) * sizeof *p->missing);
    p->unused = graft_arena_alloc(&p->arena, (n + 1) * sizeof *p->unused);
    if (!p->missing || !p->unused) {
        rc = graft_error_oom(ctx, "plan");
        goto cleanup;
    }
    for (size_t i = 0; i < p->nentries; i++) {
        graft_plan_entry *e = &p->entries[i];
        if (e->status == GRAFT_PLAN_OK && (rc = unsupported_entry(p, e, ctx)) < 0) goto cleanup;
        rc = 0;
        for (size_t k = 0; k < e->nsources; k++) used[e->sources[k]] = true;
        if (e->nsources == 0 && e->status == GRAFT_PLAN_OK) {
            /* no source found */
            if (e->ignored || missing == GRAFT_MISSING_KEEP) {
                e->status = GRAFT_PLAN_KEPT;
            } else {
                e->status = GRAFT_PLAN_MISSING;
                rc = set_message(p, e, ctx, "'%s' (renamed '%s'): no source tensor",
                                 p->target->tensors[i].name, e->key);
                if (rc < 0) goto cleanup;
            }
            if (!e->ignored) p->missing[p->nmissing++] = i;
        }
        if (e->status == GRAFT_PLAN_MISSING || e->status == GRAFT_PLAN_MISMATCH ||
            e->status == GRAFT_PLAN_ERROR)
            p->errors++;
    }
    for (size_t j = 0; j < n; j++) {
        if (used[j] || p->source->tensors[j].unsupported) continue; /* needed by no one: fine */
        rc = graft_rules_ignored(r, source_ignored_by_rules ? GRAFT_SIDE_SOURCE : GRAFT_SIDE_TARGET,
                                 p->source->tensors[j].name, ctx);
        if (rc < 0) goto cleanup;
        if (rc == 0) p->unused[p->nunused++] = j;
        rc = 0;
    }
    if (p->nunused && unused != GRAFT_UNUSED_IGNORE)
        rc = diag(p, unused == GRAFT_UNUSED_ERROR ? GRAFT_DIAG_ERROR : GRAFT_DIAG_WARNING, ctx,
                  "%zu source tensor%s not used (first '%s'; policy unused: %s)", p->nunused,
                  p->nunused == 1 ? " is" : "s are", p->source->tensors[p->unused[0]].name,
                  unused == GRAFT_UNUSED_ERROR ? "error" : "warn");
cleanup:
    free(used);
    return rc;
}

/* The forward plan of target tensors from source tensors; no policies applied. */
static int build_forward(graft_plan *p, const graft_rules *r, graft_ctx *ctx)
{
    const graft_model *src = p->source, *tgt = p->target;
    graft_strmap bykey = {0}, byname = {0}, pairmap = {0};
    size_t *ambiguous = NULL, *tcounts = NULL;
    size_t *counts[2] = {NULL, NULL};
    bool *pair_used = NULL;
    const char **snames = NULL, **pnames = NULL;
    int rc = GRAFT_ENOMEM;

    counts[0] = graft_calloc(ctx, (r ? r->nrename[0] : 0) + 1, sizeof(size_t));
    counts[1] = graft_calloc(ctx, (r ? r->nrename[1] : 0) + 1, sizeof(size_t));
    tcounts = graft_calloc(ctx, (r ? r->ntransforms : 0) + 1, sizeof *tcounts);
    pair_used = graft_calloc(ctx, (r ? r->npairs : 0) + 1, sizeof *pair_used);
    ambiguous = graft_malloc(ctx, (src->count + 1) * sizeof *ambiguous);
    snames = graft_malloc(ctx, (src->count + 1) * sizeof *snames);
    pnames = graft_malloc(ctx, ((r ? r->npairs : 0) + 1) * sizeof *pnames);
    if (!counts[0] || !counts[1] || !tcounts || !pair_used || !ambiguous || !snames || !pnames) {
        graft_error_oom(ctx, "plan");
        goto cleanup;
    }
    for (size_t i = 0; i < tgt->count; i++) {
        char *k;
        if ((rc = graft_rules__rename_count(r, GRAFT_SIDE_TARGET, tgt->tensors[i].name, &k,
                                            counts[1], ctx)) < 0)
            goto cleanup;
        p->entries[i].key = graft_arena_strdup(&p->arena, k);
        free(k);
        if (!p->entries[i].key) {
            rc = graft_error_oom(ctx, "renamed names");
            goto cleanup;
        }
        if ((rc = graft_rules_ignored(r, GRAFT_SIDE_TARGET, tgt->tensors[i].name, ctx)) < 0)
            goto cleanup;
        p->entries[i].ignored = rc > 0;
    }
    if ((rc = rename_all(p, r, GRAFT_SIDE_SOURCE, src, p->source_keys, counts[0], ctx)) < 0)
        goto cleanup;
    for (size_t j = 0; j < src->count; j++) snames[j] = src->tensors[j].name;
    for (size_t k = 0; r && k < r->npairs; k++) pnames[k] = r->pairs[k].target;
    if ((rc = graft_strmap_init_strv(&bykey, p->source_keys, src->count, ctx)) < 0 ||
        (rc = graft_strmap_init_strv(&byname, snames, src->count, ctx)) < 0 ||
        (rc = graft_strmap_init_strv(&pairmap, pnames, r ? r->npairs : 0, ctx)) < 0)
        goto cleanup;
    for (size_t j = 0; j < src->count; j++) {
        size_t prev = graft_strmap_put(&bykey, j);
        ambiguous[j] = NONE;
        if (prev != NONE && ambiguous[prev] == NONE) ambiguous[prev] = j;
        graft_strmap_put(&byname, j);
    }
    for (size_t k = 0; r && k < r->npairs; k++) graft_strmap_put(&pairmap, k);
    for (size_t i = 0; i < tgt->count; i++)
        if ((rc = pair_one(p, r, i, &bykey, ambiguous, &byname, &pairmap, tcounts, pair_used,
                           ctx)) < 0)
            goto cleanup;
    if ((rc = rule_counts(p, r, counts, tcounts, pair_used, ctx)) < 0) goto cleanup;
    rc = tied_sources(p, ctx);
cleanup:
    graft_strmap_free(&bykey);
    graft_strmap_free(&byname);
    graft_strmap_free(&pairmap);
    free(counts[0]);
    free(counts[1]);
    free(tcounts);
    free(pair_used);
    free(ambiguous);
    free(snames);
    free(pnames);
    return rc;
}

static int own_ops(graft_plan *p, graft_op *ops, size_t n, graft_ctx *ctx)
{
    if (p->nowned % 16 == 0) {
        graft_op **no = graft_realloc(ctx, p->owned_ops, (p->nowned + 16) * sizeof *no);
        if (!no) goto oom;
        p->owned_ops = no;
        size_t *nn = graft_realloc(ctx, p->owned_nops, (p->nowned + 16) * sizeof *nn);
        if (!nn) goto oom;
        p->owned_nops = nn;
    }
    p->owned_ops[p->nowned] = ops;
    p->owned_nops[p->nowned++] = n;
    return 0;
oom:
    graft_ops_free(ops, n);
    return graft_error_oom(ctx, "plan");
}

/* Which piece of its one source a forward entry takes: an equal-chunk take
 * (`index` of `count` along `axis`) or an unstack (slice `index` of the
 * `count` along `axis`). */
typedef struct piece {
    graft_op_kind kind;
    int64_t axis, count, index;
} piece;

static bool piece_of(const graft_plan_entry *fe, piece *out)
{
    if (fe->nsources != 1 || fe->status != GRAFT_PLAN_OK) return false;
    for (size_t i = 0; i < fe->nops; i++) {
        const graft_op *op = &fe->ops[i];
        if (op->kind == GRAFT_OP_TAKE && op->n == 0) {
            *out = (piece){op->kind, op->axis, op->count, op->index};
            return true;
        }
        if (op->kind == GRAFT_OP_UNSTACK) {
            graft_shape s;
            graft_ctx *quiet = graft_ctx_new();
            bool ok = quiet && graft_ops_infer_prefix(fe->ops, fe->nops, i, fe->in, 1, &s, quiet) == 0;
            graft_ctx_free(quiet);
            if (!ok) return false;
            int64_t axis = op->axis < 0 ? (int64_t)op->axis + (int64_t)s.ndim : (int64_t)op->axis;
            *out = (piece){op->kind, axis, s.dim[axis], op->index};
            return true;
        }
    }
    return false;
}

/* A fused tensor split with take forward is joined back: the forward entries
 * holding its pieces become the sources, in piece order, of one entry whose
 * chain is the inverse of piece 0's (it starts with concat when the take was
 * the last forward op). */
static int gather_takes(graft_plan *p, const graft_plan *f, const graft_rules *r, graft_ctx *ctx)
{
    for (size_t fi = 0; fi < f->nentries; fi++) {
        const graft_plan_entry *fe = &f->entries[fi];
        piece take, gt;
        if (!piece_of(fe, &take)) continue;
        graft_plan_entry *e = &p->entries[fe->sources[0]];
        if (e->nsources || e->status != GRAFT_PLAN_OK) continue; /* done already */
        size_t count = (size_t)take.count, found = 0;
        if (count > f->nentries) { /* cannot be complete; and count comes from the rules */
            e->status = GRAFT_PLAN_ERROR;
            GRAFT_TRY(set_message(p, e, ctx, "'%s' was split with %s into %zu pieces, more "
                                             "than the source holds: it cannot be joined back",
                                  p->target->tensors[e->target].name, graft_op_name(take.kind),
                                  count));
            continue;
        }
        size_t *pieces = graft_arena_alloc(&p->arena, count * sizeof *pieces);
        graft_shape *in = graft_arena_alloc(&p->arena, count * sizeof *in);
        if (!pieces || !in) return graft_error_oom(ctx, "plan");
        for (size_t k = 0; k < count; k++) pieces[k] = NONE;
        for (size_t gi = fi; gi < f->nentries; gi++) {
            if (!piece_of(&f->entries[gi], &gt) || f->entries[gi].sources[0] != fe->sources[0] ||
                gt.kind != take.kind || gt.count != take.count || gt.axis != take.axis ||
                pieces[gt.index] != NONE)
                continue;
            pieces[gt.index] = gi;
            found++;
        }
        if (found != count) {
            e->status = GRAFT_PLAN_ERROR;
            GRAFT_TRY(set_message(p, e, ctx, "'%s' was split with %s into %zu pieces but only "
                                             "%zu are in the source: it cannot be joined back",
                                  p->target->tensors[e->target].name, graft_op_name(take.kind),
                                  count, found));
            continue;
        }
        const graft_plan_entry *first = &f->entries[pieces[0]];
        graft_op *inv = NULL;
        size_t ninv = 0;
        if (graft_ops_invert(first->ops, first->nops, first->in, 1, 0, &inv, &ninv, ctx) < 0) {
            if (graft_ctx_status(ctx) == GRAFT_ENOMEM) return GRAFT_ENOMEM;
            e->status = GRAFT_PLAN_ERROR;
            GRAFT_TRY(set_message(p, e, ctx, "'%s': cannot invert: %s",
                                  p->target->tensors[e->target].name, graft_ctx_message(ctx)));
            graft_ctx_clear(ctx);
            continue;
        }
        GRAFT_TRY(own_ops(p, inv, ninv, ctx));
        for (size_t k = 0; k < count; k++) shape_of(&p->source->tensors[pieces[k]], &in[k]);
        e->sources = pieces;
        e->in = in;
        e->nsources = count;
        e->ops = inv;
        e->nops = ninv;
        e->pair = first->pair;
        e->transform = first->transform;
        GRAFT_TRY(check_chain(p, e, mismatch_of(r, e), ctx));
    }
    return 0;
}

/* Turn forward plan f (f->target is our source) around into p. */
static int reverse_of(graft_plan *p, const graft_plan *f, const graft_rules *r, graft_ctx *ctx)
{
    for (size_t d = 0; d < f->ndiags; d++)
        GRAFT_TRY(diag(p, f->diags[d].level, ctx, "%s", f->diags[d].message));
    /* f is freed after this: strings are copied into p's arena */
    for (size_t j = 0; j < p->source->count; j++)
        if (!(p->source_keys[j] = graft_arena_strdup(&p->arena, f->entries[j].key)))
            return graft_error_oom(ctx, "plan");
    for (size_t i = 0; i < p->nentries; i++) {
        graft_plan_entry *e = &p->entries[i];
        if (!(e->key = graft_arena_strdup(&p->arena, f->source_keys[i])))
            return graft_error_oom(ctx, "plan");
        int ig = graft_rules_ignored(r, GRAFT_SIDE_SOURCE, p->target->tensors[i].name, ctx);
        if (ig < 0) return ig;
        e->ignored = ig > 0;
    }
    GRAFT_TRY(gather_takes(p, f, r, ctx));
    /* For each forward entry, give each of its sources (our targets) the inverse chain. */
    for (size_t fi = 0; fi < f->nentries; fi++) {
        const graft_plan_entry *fe = &f->entries[fi];
        for (size_t k = 0; k < fe->nsources; k++) {
            graft_plan_entry *e = &p->entries[fe->sources[k]];
            /* tied: the first forward entry wins (warned); gathered takes are done */
            if (e->nsources || e->status != GRAFT_PLAN_OK) continue;
            e->sources = graft_arena_alloc(&p->arena, sizeof *e->sources);
            e->in = graft_arena_alloc(&p->arena, sizeof *e->in);
            if (!e->sources || !e->in) return graft_error_oom(ctx, "plan");
            e->sources[0] = fi;
            e->nsources = 1;
            shape_of(&p->source->tensors[fi], &e->in[0]);
            e->pair = fe->pair;
            e->transform = fe->transform;
            if (fe->status == GRAFT_PLAN_ERROR) {
                e->status = GRAFT_PLAN_ERROR;
                if (!(e->message = graft_arena_strdup(&p->arena, fe->message)))
                    return graft_error_oom(ctx, "plan");
                continue;
            }
            if (fe->nops) {
                graft_op *inv = NULL;
                size_t ninv = 0;
                if (graft_ops_invert(fe->ops, fe->nops, fe->in, fe->nsources, k, &inv, &ninv,
                                     ctx) < 0) {
                    if (graft_ctx_status(ctx) == GRAFT_ENOMEM) return GRAFT_ENOMEM;
                    e->status = GRAFT_PLAN_ERROR;
                    GRAFT_TRY(set_message(p, e, ctx, "'%s': cannot invert: %s",
                                          p->target->tensors[e->target].name,
                                          graft_ctx_message(ctx)));
                    graft_ctx_clear(ctx);
                    continue;
                }
                GRAFT_TRY(own_ops(p, inv, ninv, ctx));
                e->ops = inv;
                e->nops = ninv;
            }
            GRAFT_TRY(check_chain(p, e, mismatch_of(r, e), ctx));
        }
    }
    return 0;
}

int graft_plan_build(graft_plan **out, const graft_rules *rules, const graft_model *source,
                     const graft_model *target, const graft_plan_options *o, graft_ctx *ctx)
{
    graft_plan *p = NULL, *f = NULL;
    bool reverse = o && o->reverse;
    int rc;

    *out = NULL;
    if ((rc = new_plan(&p, rules, source, target, ctx)) < 0) goto fail;
    p->reverse = reverse;
    p->strict = o && o->strict;
    if (!reverse) {
        if ((rc = build_forward(p, rules, ctx)) < 0) goto fail;
        for (size_t i = 0; i < p->nentries; i++) {
            graft_plan_entry *e = &p->entries[i];
            if (e->nsources && e->status == GRAFT_PLAN_OK &&
                (rc = check_chain(p, e, mismatch_of(rules, e), ctx)) < 0)
                goto fail;
        }
        rc = finish(p, rules, true, rules ? rules->missing : GRAFT_MISSING_ERROR,
                    rules ? rules->unused : GRAFT_UNUSED_WARN, ctx);
        if (rc < 0) goto fail;
    } else {
        /* forward plan: the rules' source is our target (the skeleton) */
        graft_policy_missing missing = GRAFT_MISSING_ERROR;
        graft_policy_unused unused = GRAFT_UNUSED_WARN;
        if ((rc = new_plan(&f, rules, target, source, ctx)) < 0) goto fail;
        if ((rc = build_forward(f, rules, ctx)) < 0) goto fail;
        for (size_t i = 0; i < f->nentries; i++) {
            graft_plan_entry *e = &f->entries[i];
            if (e->nsources && e->status == GRAFT_PLAN_OK &&
                (rc = check_chain(f, e, GRAFT_MISMATCH_ERROR, ctx)) < 0)
                goto fail;
        }
        if ((rc = reverse_of(p, f, rules, ctx)) < 0) goto fail;
        if (rules) {
            missing = rules->unused == GRAFT_UNUSED_ERROR ? GRAFT_MISSING_ERROR : GRAFT_MISSING_KEEP;
            unused = rules->missing == GRAFT_MISSING_ERROR ? GRAFT_UNUSED_ERROR : GRAFT_UNUSED_WARN;
        }
        if ((rc = finish(p, rules, false, missing, unused, ctx)) < 0) goto fail;
        graft_plan_free(f);
        f = NULL;
    }
    if ((rc = graft_lcheck_plan(p, rules, ctx)) < 0) goto fail;
    *out = p;
    return 0;
fail:
    graft_plan_free(f);
    graft_plan_free(p);
    return rc < 0 ? rc : graft_ctx_status(ctx);
}
