/* diff_report.c - graft_plan_diff_all and its JSON (graft.h): every tensor
 * of B compared with what A's paired tensors become, within atol + rtol *
 * |b|, with the tally `graft diff` prints and the swap hint. */
#include "graft.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "error.h"
#include "json.h"
#include "rules.h"

void graft_diff_report_free(graft_diff_report *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->count; i++) free(r->entries[i].message);
    free(r->entries);
    free(r);
}

/* Entries of the plan whose target has at least one source. */
static size_t paired(const graft_plan *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nentries; i++) n += p->entries[i].nsources > 0;
    return n;
}

/* Nothing compared but tensors unpaired: would B as the source pair them? */
static int swap_hint(graft_diff_report *r, const graft_plan *p, graft_ctx *ctx)
{
    graft_plan_options o = GRAFT_PLAN_OPTIONS_INIT;
    graft_plan *q = NULL;
    o.reverse = p->reverse;
    if (graft_plan_build(&q, p->rules, p->target, p->source, &o, ctx) < 0) {
        if (graft_ctx_status(ctx) == GRAFT_ENOMEM) return GRAFT_ENOMEM;
        graft_ctx_clear(ctx); /* a rule that breaks on the other side: no hint */
        return GRAFT_OK;
    }
    r->swapped_pairs = paired(q);
    graft_plan_free(q);
    return GRAFT_OK;
}

static int add(graft_diff_report *r, size_t *cap, graft_diff_entry **out, graft_ctx *ctx)
{
    if (r->count == *cap) {
        size_t nc = *cap ? 2 * *cap : 16;
        graft_diff_entry *v = graft_realloc(ctx, r->entries, nc * sizeof *v);
        if (!v) return graft_error_oom(ctx, "diff report");
        r->entries = v;
        *cap = nc;
    }
    *out = &r->entries[r->count++];
    memset(*out, 0, sizeof **out);
    return GRAFT_OK;
}

static int message(graft_diff_entry *d, const char *msg, graft_ctx *ctx)
{
    if (!msg) return GRAFT_OK;
    if (!(d->message = graft_malloc(ctx, strlen(msg) + 1))) return graft_error_oom(ctx, "diff");
    strcpy(d->message, msg);
    return GRAFT_OK;
}

/* Entry i of p into d; the tally in r. */
static int one(graft_diff_report *r, const graft_plan *p, size_t i, graft_diff_entry *d,
               graft_ctx *ctx)
{
    const graft_plan_entry *e = &p->entries[i];
    graft_diff_tol tol = {.atol = r->atol, .rtol = r->rtol};
    graft_diff_result res;
    int rc;
    d->name = p->target->tensors[e->target].name;
    d->nsources = e->nsources;
    if (e->nsources) d->source = p->source->tensors[e->sources[0]].name;
    if (e->status == GRAFT_PLAN_ERROR) {
        d->status = GRAFT_DIFF_MISMATCH;
        r->mismatched++;
        return message(d, e->message, ctx);
    }
    rc = graft_diff_pair_tol(p->source, e->sources, e->nsources, e->ops, e->nops, p->target,
                             e->target, &res, &tol, ctx);
    if (rc == GRAFT_ESHAPE) {
        d->status = GRAFT_DIFF_MISMATCH;
        r->mismatched++;
        rc = message(d, graft_ctx_message(ctx), ctx);
        if (rc == GRAFT_OK) graft_ctx_clear(ctx);
        return rc;
    }
    if (rc < 0) return graft_error_prefix(ctx, "tensor '%s'", d->name);
    r->compared++;
    d->numeric = res.numeric;
    d->max_abs = res.max_abs;
    d->equal = res.equal;
    d->numel = res.numel;
    d->max_rel = res.max_rel;
    d->nover = tol.nover;
    d->status = tol.nover ? GRAFT_DIFF_OVER : GRAFT_DIFF_OK;
    r->over += tol.nover > 0;
    return GRAFT_OK;
}

int graft_plan_diff_all(graft_diff_report **out, const graft_plan *plan,
                        const graft_diff_options *opts, graft_ctx *ctx)
{
    static const graft_diff_options defaults = GRAFT_DIFF_OPTIONS_INIT;
    const graft_diff_options *o = opts ? opts : &defaults;
    const graft_plan *p = plan->sub ? plan->sub : plan;
    graft_diff_report *r;
    graft_diff_entry *d = NULL; /* set by add() before use; -O2 cannot tell */
    size_t cap = 0;
    int rc = GRAFT_OK;

    *out = NULL;
    if (!(o->atol >= 0) || !(o->rtol >= 0) || isinf(o->atol) || isinf(o->rtol))
        return graft_error(ctx, GRAFT_ERROR, "diff: atol %g, rtol %g: need finite values >= 0",
                           o->atol, o->rtol);
    if (!(r = graft_calloc(ctx, 1, sizeof *r))) return graft_error_oom(ctx, "diff report");
    r->atol = o->atol;
    r->rtol = o->rtol;
    for (size_t i = 0; i < p->ndiags; i++) r->rule_errors += p->diags[i].level == GRAFT_DIAG_ERROR;
    for (size_t i = 0; i < p->nentries && rc == GRAFT_OK; i++) {
        const graft_plan_entry *e = &p->entries[i];
        if (!e->nsources && e->ignored) continue;
        if ((rc = add(r, &cap, &d, ctx)) < 0) break;
        if (e->nsources) {
            rc = one(r, p, i, d, ctx);
        } else if (graft_tensor_unsupported(&p->target->tensors[e->target])) {
            const char *stored = graft_tensor_unsupported(&p->target->tensors[e->target]);
            d->name = p->target->tensors[e->target].name;
            d->status = GRAFT_DIFF_SKIPPED; /* no values to compare, nothing to fill it from */
            if (!(d->message = graft_malloc(ctx, strlen(stored) + 32))) {
                rc = graft_error_oom(ctx, "diff report");
                break;
            }
            snprintf(d->message, strlen(stored) + 32, "stored as %s: not compared", stored);
        } else {
            d->name = p->target->tensors[e->target].name;
            d->status = GRAFT_DIFF_ONLY_B;
            r->unpaired++;
        }
    }
    for (size_t k = 0; k < p->nunused && rc == GRAFT_OK; k++) {
        if ((rc = add(r, &cap, &d, ctx)) < 0) break;
        d->name = p->source->tensors[p->unused[k]].name;
        d->status = GRAFT_DIFF_ONLY_A;
        r->unpaired++;
    }
    if (rc == GRAFT_OK && r->compared == 0 && r->unpaired > 0) rc = swap_hint(r, p, ctx);
    if (rc < 0) {
        graft_diff_report_free(r);
        return rc;
    }
    *out = r;
    return GRAFT_OK;
}

const char *graft_diff_status_name(graft_diff_status s)
{
    static const char *const names[] = {"ok", "over", "mismatch", "only_b", "only_a", "skipped"};
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "invalid";
}

/* A double as JSON: 17 significant digits, non-finite ones as null. */
static void number(graft_jsonw *w, double v)
{
    if (isfinite(v))
        graft_jsonw_printf(w, "%.17g", v);
    else
        graft_jsonw_raw(w, "null", 4);
}

static void str_or_null(graft_jsonw *w, const char *s)
{
    if (s)
        graft_jsonw_string(w, s, strlen(s));
    else
        graft_jsonw_raw(w, "null", 4);
}

int graft_diff_report_json(char **out, const graft_diff_report *r, graft_ctx *ctx)
{
    graft_jsonw w;
    graft_jsonw_init(&w, ctx);
    *out = NULL;
    graft_jsonw_printf(&w, "{\"tensors\": [");
    for (size_t i = 0; i < r->count; i++) {
        const graft_diff_entry *d = &r->entries[i];
        bool compared = d->status == GRAFT_DIFF_OK || d->status == GRAFT_DIFF_OVER;
        graft_jsonw_printf(&w, "%s{\"name\": ", i ? ",\n  " : "\n  ");
        str_or_null(&w, d->name);
        graft_jsonw_printf(&w, ", \"status\": \"%s\", \"source\": ",
                           graft_diff_status_name(d->status));
        str_or_null(&w, d->source);
        graft_jsonw_printf(&w, ", \"nsources\": %zu", d->nsources);
        if (compared) {
            graft_jsonw_printf(&w, ", \"numeric\": %s, \"equal\": %s, \"numel\": %llu, "
                                   "\"over\": %llu, \"max_abs\": ",
                               d->numeric ? "true" : "false", d->equal ? "true" : "false",
                               (unsigned long long)d->numel, (unsigned long long)d->nover);
            if (d->numeric) number(&w, d->max_abs); else graft_jsonw_raw(&w, "null", 4);
            graft_jsonw_printf(&w, ", \"max_rel\": ");
            if (d->numeric) number(&w, d->max_rel); else graft_jsonw_raw(&w, "null", 4);
        }
        if (d->message) {
            graft_jsonw_printf(&w, ", \"message\": ");
            str_or_null(&w, d->message);
        }
        graft_jsonw_raw(&w, "}", 1);
    }
    graft_jsonw_printf(&w, "%s],\n \"summary\": {\"compared\": %zu, \"over\": %zu, "
                           "\"mismatched\": %zu, \"unpaired\": %zu, \"rule_errors\": %zu, "
                           "\"atol\": ", r->count ? "\n " : "", r->compared, r->over,
                       r->mismatched, r->unpaired, r->rule_errors);
    number(&w, r->atol);
    graft_jsonw_printf(&w, ", \"rtol\": ");
    number(&w, r->rtol);
    graft_jsonw_printf(&w, ", \"swapped_pairs\": %zu, \"ok\": %s}}\n", r->swapped_pairs,
                       graft_diff_report_ok(r) ? "true" : "false");
    if (w.rc < 0) {
        graft_jsonw_free(&w);
        return w.rc;
    }
    *out = w.p;
    return GRAFT_OK;
}

bool graft_diff_report_ok(const graft_diff_report *r)
{
    return !r->over && !r->mismatched && !r->unpaired && !r->rule_errors;
}
