/*
 * explain.c - the trace behind one planned tensor: the rename steps of the
 * target name and of each source name, and the shape after each op.
 */
#include "rules_int.h"

#include <stdlib.h>
#include <string.h>

#define MAX_STEPS 256 /* rename steps kept per name */

void graft_explain_free(graft_explain *e)
{
    if (!e) return;
    graft_rename_steps_free(e->target_steps, e->ntarget_steps);
    free(e->target_steps);
    for (size_t k = 0; e->source_steps && e->nsource_steps && e->entry && k < e->entry->nsources;
         k++) {
        graft_rename_steps_free(e->source_steps[k], e->nsource_steps[k]);
        free(e->source_steps[k]);
    }
    free(e->source_steps);
    free(e->nsource_steps);
    free(e->shapes);
    free(e);
}

/* Rename steps of `name` on `side`, kept up to MAX_STEPS. */
static int trace(const graft_rules *r, graft_side side, const char *name, graft_rename_step **out,
                 size_t *n, graft_ctx *ctx)
{
    char *renamed = NULL;
    size_t total = 0;
    *out = graft_calloc(ctx, MAX_STEPS, sizeof **out);
    if (!*out) return graft_error_oom(ctx, "explain");
    GRAFT_TRY(graft_rules_rename(r, side, name, &renamed, *out, MAX_STEPS, &total, ctx));
    free(renamed);
    *n = total < MAX_STEPS ? total : MAX_STEPS;
    return 0;
}

/* Which targets a source tensor feeds, for the message when `name` is one. */
static int source_only(const graft_plan *p, const char *name, graft_ctx *ctx)
{
    size_t j;
    for (j = 0; j < p->source->count; j++)
        if (!strcmp(p->source->tensors[j].name, name)) break;
    if (j == p->source->count)
        return graft_error(ctx, GRAFT_ENOTFOUND, "'%s' is in neither the skeleton nor the source",
                           name);
    for (size_t i = 0; i < p->nentries; i++)
        for (size_t k = 0; k < p->entries[i].nsources; k++)
            if (p->entries[i].sources[k] == j)
                return graft_error(ctx, GRAFT_ENOTFOUND,
                                   "'%s' is a source tensor (renamed '%s'); it feeds target '%s'",
                                   name, p->source_keys[j], p->target->tensors[i].name);
    return graft_error(ctx, GRAFT_ENOTFOUND,
                       "'%s' is a source tensor (renamed '%s') that feeds no target", name,
                       p->source_keys[j]);
}

/* Levenshtein distance, capped: names longer than this are not compared. */
#define MAX_HINT_LEN 512

size_t graft_rules__distance(const char *a, const char *b, size_t *row)
{
    size_t la = strlen(a), lb = strlen(b);
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The source whose renamed name is nearest `key`: a hint for a rename mistake. */
static size_t nearest(const graft_plan *p, const char *key)
{
    size_t row[MAX_HINT_LEN + 1]; /* 4 KiB on the stack; no shared state */
    size_t best = SIZE_MAX, best_d = SIZE_MAX;
    if (strlen(key) > MAX_HINT_LEN) return SIZE_MAX;
    for (size_t j = 0; j < p->source->count; j++) {
        if (strlen(p->source_keys[j]) > MAX_HINT_LEN) continue;
        size_t d = graft_rules__distance(key, p->source_keys[j], row);
        if (d < best_d) {
            best_d = d;
            best = j;
        }
    }
    return best;
}

int graft_explain_build(graft_explain **out, const graft_plan *p, const char *name,
                        graft_ctx *ctx)
{
    const graft_plan_entry *pe = graft_plan_find(p, name);
    graft_side tside = p->reverse ? GRAFT_SIDE_SOURCE : GRAFT_SIDE_TARGET;
    graft_side sside = p->reverse ? GRAFT_SIDE_TARGET : GRAFT_SIDE_SOURCE;
    graft_explain *e;
    int rc;

    *out = NULL;
    if (!pe) return source_only(p, name, ctx);
    e = graft_calloc(ctx, 1, sizeof *e);
    if (!e) return graft_error_oom(ctx, "explain");
    e->entry = pe;
    e->closest = pe->nsources || !pe->key ? SIZE_MAX : nearest(p, pe->key);
    if ((rc = trace(p->rules, tside, name, &e->target_steps, &e->ntarget_steps, ctx)) < 0)
        goto fail;
    e->source_steps = graft_calloc(ctx, pe->nsources + 1, sizeof *e->source_steps);
    e->nsource_steps = graft_calloc(ctx, pe->nsources + 1, sizeof *e->nsource_steps);
    e->shapes = graft_calloc(ctx, pe->nops + 1, sizeof *e->shapes);
    if (!e->source_steps || !e->nsource_steps || !e->shapes) {
        rc = graft_error_oom(ctx, "explain");
        goto fail;
    }
    for (size_t k = 0; k < pe->nsources; k++)
        if ((rc = trace(p->rules, sside, p->source->tensors[pe->sources[k]].name,
                        &e->source_steps[k], &e->nsource_steps[k], ctx)) < 0)
            goto fail;
    if (pe->nsources) {
        /* shapes[0] is the (first) input; then after each op until one fails */
        e->shapes[0] = pe->in[0];
        e->nshapes = 1;
        for (size_t k = 1; k <= pe->nops; k++) {
            if (graft_ops_infer_prefix(pe->ops, pe->nops, k, pe->in, pe->nsources,
                                       &e->shapes[k], ctx) < 0) {
                if (graft_ctx_status(ctx) == GRAFT_ENOMEM) {
                    rc = GRAFT_ENOMEM;
                    goto fail;
                }
                graft_ctx_clear(ctx);
                break;
            }
            e->nshapes = k + 1;
        }
    }
    *out = e;
    return 0;
fail:
    graft_explain_free(e);
    return rc;
}
