/* explain_text.c - graft_plan_explain (graft.h): the trace behind one target
 * tensor as text, what `graft explain` prints. */
#include "graft.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "layout_json.h"
#include "op_json.h"
#include "error.h"
#include "rules.h"

/* "[2,3] float32" */
static void shape_text(graft_jsonw *w, const graft_shape *s)
{
    graft_jsonw_raw(w, "[", 1);
    for (uint32_t i = 0; i < s->ndim; i++) graft_jsonw_printf(w, "%s%" PRId64, i ? "," : "", s->dim[i]);
    graft_jsonw_printf(w, "] %s", graft_dtype_name(s->dtype));
}

static void steps(graft_jsonw *w, const graft_rename_step *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        graft_jsonw_printf(w, "  rename %s:%u: '%s' -> '%s'\n", s[i].rule->pos.file,
                           s[i].rule->pos.line, s[i].before, s[i].after);
}

static void pairing(graft_jsonw *w, const graft_plan *p, const graft_explain *x)
{
    const graft_plan_entry *e = x->entry;
    if (e->pair)
        graft_jsonw_printf(w, "pair: explicit, pairs %s:%u\n", e->pair->pos.file, e->pair->pos.line);
    else if (e->nsources)
        graft_jsonw_printf(w, "pair: by renamed name '%s'\n", e->key);
    else if (x->closest != SIZE_MAX)
        graft_jsonw_printf(w, "pair: none (no source renames to '%s'; nearest is '%s' from '%s')\n",
                           e->key, p->source_keys[x->closest], p->source->tensors[x->closest].name);
    else
        graft_jsonw_printf(w, "pair: none (no source renames to '%s')\n", e->key);
    if (e->transform)
        graft_jsonw_printf(w, "transform: %s:%u\n", e->transform->pos.file, e->transform->pos.line);
    else if (e->nsources)
        graft_jsonw_printf(w, "transform: none matched (no ops)\n");
}

static int trace(graft_jsonw *w, const graft_plan *p, const graft_explain *x, graft_ctx *ctx)
{
    const graft_plan_entry *e = x->entry;
    graft_jsonw_printf(w, "target '%s' ", p->target->tensors[e->target].name);
    shape_text(w, &e->target_shape);
    graft_jsonw_raw(w, "\n", 1);
    steps(w, x->target_steps, x->ntarget_steps);
    graft_jsonw_printf(w, "  key '%s'%s\n", e->key, e->ignored ? " (ignored)" : "");
    for (size_t k = 0; k < e->nsources; k++) {
        size_t j = e->sources[k];
        graft_jsonw_printf(w, "source '%s' ", p->source->tensors[j].name);
        shape_text(w, &e->in[k]);
        graft_jsonw_raw(w, "\n", 1);
        steps(w, x->source_steps[k], x->nsource_steps[k]);
        graft_jsonw_printf(w, "  key '%s'\n", p->source_keys[j]);
    }
    pairing(w, p, x);
    if (x->nshapes) {
        graft_jsonw_printf(w, "  input ");
        shape_text(w, &x->shapes[0]);
        graft_jsonw_raw(w, "\n", 1);
    }
    for (size_t k = 0; k < e->nops; k++) {
        graft_jsonw_printf(w, "  %zu. ", k + 1);
        graft_op__json(w, &e->ops[k]);
        if (e->ops[k].file) graft_jsonw_printf(w, " (%s:%u)", e->ops[k].file, e->ops[k].line);
        if (k + 1 < x->nshapes) {
            graft_jsonw_printf(w, " -> ");
            shape_text(w, &x->shapes[k + 1]);
        } else {
            graft_jsonw_printf(w, " -> fails");
        }
        graft_jsonw_raw(w, "\n", 1);
        if (k + 1 >= x->nshapes) break;
    }
    graft_jsonw_printf(w, "status: %s\n", graft_plan_status_name(e->status));
    if (e->message) graft_jsonw_printf(w, "  %s\n", e->message);
    return graft_layout__explain(w, p, e, ctx);
}

/* The plan the entries live in and the trace of `name` (a whole-skeleton
 * name loses the selected sub-tree's prefix). */
static int build(const graft_plan *plan, const char *name, const graft_plan **p,
                 graft_explain **x, graft_ctx *ctx)
{
    *p = plan->sub ? plan->sub : plan;
    if (plan->sub) {
        size_t n = strlen((*p)->rules->select);
        if (!strncmp(name, (*p)->rules->select, n) && name[n] == '.') name += n + 1;
    }
    return graft_explain_build(x, *p, name, ctx);
}

/* Run fn on the trace of name into a new text. */
static int explain(char **out, const graft_plan *plan, const char *name, graft_ctx *ctx,
                   int (*fn)(graft_jsonw *, const graft_plan *, const graft_explain *, graft_ctx *))
{
    const graft_plan *p;
    graft_explain *x = NULL;
    graft_jsonw w;
    int rc;

    *out = NULL;
    if ((rc = build(plan, name, &p, &x, ctx)) < 0) return rc;
    graft_jsonw_init(&w, ctx);
    rc = fn(&w, p, x, ctx);
    graft_explain_free(x);
    if (rc < 0 || (rc = w.rc) < 0) {
        graft_jsonw_free(&w);
        return rc;
    }
    *out = w.p;
    return GRAFT_OK;
}

int graft_plan_explain(char **out, const graft_plan *plan, const char *name, graft_ctx *ctx)
{
    return explain(out, plan, name, ctx, trace);
}

/* ---- the same trace as JSON (schemas/cli/explain.schema.json) ---------- */

static void jstr(graft_jsonw *w, const char *s)
{
    if (s)
        graft_jsonw_string(w, s, strlen(s));
    else
        graft_jsonw_raw(w, "null", 4);
}

/* "file:line" as a JSON string. */
static void rule_at(graft_jsonw *w, const char *file, unsigned line)
{
    char buf[4200];
    snprintf(buf, sizeof buf, "%s:%u", file ? file : "", line);
    graft_jsonw_string(w, buf, strlen(buf));
}

static void shape_json(graft_jsonw *w, const graft_shape *s)
{
    graft_jsonw_printf(w, "{\"shape\": [");
    for (uint32_t i = 0; i < s->ndim; i++) graft_jsonw_printf(w, "%s%" PRId64, i ? ", " : "", s->dim[i]);
    graft_jsonw_printf(w, "], \"dtype\": \"%s\"}", graft_dtype_name(s->dtype));
}

static void steps_json(graft_jsonw *w, const graft_rename_step *s, size_t n)
{
    graft_jsonw_printf(w, ", \"renames\": [");
    for (size_t i = 0; i < n; i++) {
        graft_jsonw_printf(w, "%s{\"rule\": ", i ? ", " : "");
        rule_at(w, s[i].rule->pos.file, s[i].rule->pos.line);
        graft_jsonw_printf(w, ", \"before\": ");
        jstr(w, s[i].before);
        graft_jsonw_printf(w, ", \"after\": ");
        jstr(w, s[i].after);
        graft_jsonw_raw(w, "}", 1);
    }
    graft_jsonw_raw(w, "]", 1);
}

static int trace_json(graft_jsonw *w, const graft_plan *p, const graft_explain *x, graft_ctx *ctx)
{
    const graft_plan_entry *e = x->entry;
    graft_jsonw_printf(w, "{\"target\": {\"name\": ");
    jstr(w, p->target->tensors[e->target].name);
    graft_jsonw_printf(w, ", \"type\": ");
    shape_json(w, &e->target_shape);
    steps_json(w, x->target_steps, x->ntarget_steps);
    graft_jsonw_printf(w, ", \"key\": ");
    jstr(w, e->key);
    graft_jsonw_printf(w, ", \"ignored\": %s},\n \"sources\": [", e->ignored ? "true" : "false");
    for (size_t k = 0; k < e->nsources; k++) {
        size_t j = e->sources[k];
        graft_jsonw_printf(w, "%s{\"name\": ", k ? ", " : "");
        jstr(w, p->source->tensors[j].name);
        graft_jsonw_printf(w, ", \"type\": ");
        shape_json(w, &e->in[k]);
        steps_json(w, x->source_steps[k], x->nsource_steps[k]);
        graft_jsonw_printf(w, ", \"key\": ");
        jstr(w, p->source_keys[j]);
        graft_jsonw_raw(w, "}", 1);
    }
    graft_jsonw_printf(w, "],\n \"pair\": {\"by\": \"%s\", \"rule\": ",
                       e->pair ? "explicit" : e->nsources ? "name" : "none");
    if (e->pair)
        rule_at(w, e->pair->pos.file, e->pair->pos.line);
    else
        graft_jsonw_raw(w, "null", 4);
    graft_jsonw_printf(w, ", \"nearest\": ");
    if (!e->nsources && x->closest != SIZE_MAX) {
        graft_jsonw_printf(w, "{\"key\": ");
        jstr(w, p->source_keys[x->closest]);
        graft_jsonw_printf(w, ", \"source\": ");
        jstr(w, p->source->tensors[x->closest].name);
        graft_jsonw_raw(w, "}", 1);
    } else {
        graft_jsonw_raw(w, "null", 4);
    }
    graft_jsonw_printf(w, "},\n \"transform\": ");
    if (e->transform)
        rule_at(w, e->transform->pos.file, e->transform->pos.line);
    else
        graft_jsonw_raw(w, "null", 4);
    graft_jsonw_printf(w, ",\n \"input\": ");
    if (x->nshapes)
        shape_json(w, &x->shapes[0]);
    else
        graft_jsonw_raw(w, "null", 4);
    graft_jsonw_printf(w, ",\n \"ops\": [");
    for (size_t k = 0; k < e->nops; k++) {
        graft_jsonw_printf(w, "%s{\"op\": ", k ? ",\n  " : "\n  ");
        graft_op__json(w, &e->ops[k]);
        graft_jsonw_printf(w, ", \"rule\": ");
        if (e->ops[k].file)
            rule_at(w, e->ops[k].file, e->ops[k].line);
        else
            graft_jsonw_raw(w, "null", 4);
        graft_jsonw_printf(w, ", \"result\": ");
        if (k + 1 < x->nshapes)
            shape_json(w, &x->shapes[k + 1]);
        else
            graft_jsonw_raw(w, "null", 4); /* this op fails */
        graft_jsonw_raw(w, "}", 1);
        if (k + 1 >= x->nshapes) break;
    }
    graft_jsonw_printf(w, "],\n \"status\": \"%s\", \"message\": ", graft_plan_status_name(e->status));
    jstr(w, e->message);
    graft_jsonw_printf(w, ",\n \"layout\": ");
    GRAFT_TRY(graft_layout__explain_json(w, p, e, ctx));
    graft_jsonw_printf(w, "}\n");
    return 0;
}

int graft_plan_explain_json(char **out, const graft_plan *plan, const char *name, graft_ctx *ctx)
{
    return explain(out, plan, name, ctx, trace_json);
}
