/* plan_json.c - the JSON the library gives (graft.h): a plan (`plan
 * --json`), a model's tensors (`ls --json`) and one op, all through the one
 * writer and escaper of core/json.c. */
#include "graft.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "json.h"
#include "layout_json.h"
#include "op_json.h"
#include "rules.h"
#include "sha256.h"

/* Hand the text over, or free it after a failure. */
static int finish(graft_jsonw *w, char **out)
{
    if (w->rc < 0) {
        graft_jsonw_free(w);
        return w->rc;
    }
    if (!w->p) graft_jsonw_raw(w, "", 0);
    if (w->rc < 0) return w->rc;
    *out = w->p;
    return GRAFT_OK;
}

static void str(graft_jsonw *w, const char *s)
{
    graft_jsonw_string(w, s, strlen(s));
}

static void shape(graft_jsonw *w, const graft_shape *s)
{
    graft_jsonw_raw(w, "[", 1);
    for (uint32_t i = 0; i < s->ndim; i++) graft_jsonw_printf(w, "%s%" PRId64, i ? ", " : "", s->dim[i]);
    graft_jsonw_raw(w, "]", 1);
}

static void entry(graft_jsonw *w, const graft_plan *p, const graft_plan_entry *e)
{
    graft_jsonw_printf(w, "{\"target\": ");
    str(w, p->target->tensors[e->target].name);
    graft_jsonw_printf(w, ", \"sources\": [");
    for (size_t k = 0; k < e->nsources; k++) {
        if (k) graft_jsonw_printf(w, ", ");
        str(w, p->source->tensors[e->sources[k]].name);
    }
    graft_jsonw_printf(w, "], \"ops\": [");
    graft_op__json_chain(w, e->ops, e->nops);
    graft_jsonw_printf(w, "], \"source_shape\": ");
    if (e->nsources)
        shape(w, &e->in[0]);
    else
        graft_jsonw_printf(w, "null");
    graft_jsonw_printf(w, ", \"target_shape\": ");
    shape(w, &e->target_shape);
    graft_jsonw_printf(w, ", \"dtype\": \"%s\"", p->target->tensors[e->target].unsupported
                                                    ? "unsupported"
                                                    : graft_dtype_name(e->target_shape.dtype));
    if (e->nsources)
        graft_jsonw_printf(w, ", \"source_dtype\": \"%s\"", graft_dtype_name(e->in[0].dtype));
    graft_jsonw_printf(w, ", \"status\": \"%s\"", graft_plan_status_name(e->status));
    if (e->transform) {
        graft_jsonw_printf(w, ", \"transform\": ");
        graft_jsonw_printf(w, "\"%s:%u\"", e->transform->pos.file, e->transform->pos.line);
    }
    if (e->pair) graft_jsonw_printf(w, ", \"pair\": \"%s:%u\"", e->pair->pos.file, e->pair->pos.line);
    if (e->message) {
        graft_jsonw_printf(w, ", \"message\": ");
        str(w, e->message);
    }
    graft_jsonw_raw(w, "}", 1);
}

static void diags(graft_jsonw *w, const graft_plan *p, graft_diag_level level)
{
    for (size_t i = 0, n = 0; i < p->ndiags; i++) {
        if (p->diags[i].level != level) continue;
        if (n++) graft_jsonw_printf(w, ", ");
        if (p->diags[i].layout) /* a finding of kind layout is an object */
            graft_layout__finding_json(w, p->diags[i].layout, p->diags[i].message);
        else
            str(w, p->diags[i].message);
    }
}

int graft_plan_json(char **out, const graft_plan *plan, graft_ctx *ctx)
{
    const graft_plan *p = plan->sub ? plan->sub : plan;
    graft_jsonw w;
    graft_jsonw_init(&w, ctx);
    *out = NULL;
    graft_jsonw_printf(&w, "{\"pairs\": [");
    for (size_t i = 0; i < p->nentries; i++) {
        graft_jsonw_printf(&w, i ? ",\n  " : "\n  ");
        entry(&w, p, &p->entries[i]);
    }
    graft_jsonw_printf(&w, p->nentries ? "\n ],\n \"missing\": [" : "],\n \"missing\": [");
    for (size_t i = 0; i < p->nmissing; i++) {
        if (i) graft_jsonw_printf(&w, ", ");
        str(&w, p->target->tensors[p->missing[i]].name);
    }
    graft_jsonw_printf(&w, "],\n \"unused\": [");
    for (size_t i = 0; i < p->nunused; i++) {
        if (i) graft_jsonw_printf(&w, ", ");
        str(&w, p->source->tensors[p->unused[i]].name);
    }
    graft_jsonw_printf(&w, "],\n \"warnings\": [");
    diags(&w, p, GRAFT_DIAG_WARNING);
    graft_jsonw_printf(&w, "],\n \"problems\": [");
    diags(&w, p, GRAFT_DIAG_ERROR);
    graft_jsonw_printf(&w, "],\n \"errors\": %zu}\n", p->errors);
    return finish(&w, out);
}

/* ", \"quant\": {...}" for a tensor with quantization parameters: scales with
 * 9 significant digits (a float32 round-trips), null for a non-finite one. */
static void quant(graft_jsonw *w, const graft_quant *q)
{
    if (!q) return;
    graft_jsonw_printf(w, ", \"quant\": {\"scale\": [");
    for (size_t i = 0; i < q->nscale; i++) {
        if (i) graft_jsonw_printf(w, ", ");
        if (isfinite(q->scale[i]))
            graft_jsonw_printf(w, "%.9g", (double)q->scale[i]);
        else
            graft_jsonw_printf(w, "null");
    }
    graft_jsonw_printf(w, "], \"zero_point\": [");
    for (size_t i = 0; i < q->nzero; i++)
        graft_jsonw_printf(w, "%s%lld", i ? ", " : "", (long long)q->zero_point[i]);
    graft_jsonw_printf(w, "], \"axis\": %d}", (int)q->axis);
}

int graft_model_json(char **out, const graft_model *m, graft_ctx *ctx)
{
    graft_jsonw w;
    uint8_t digest[32];
    char hex[65];
    int rc;
    graft_jsonw_init(&w, ctx);
    *out = NULL;
    graft_jsonw_raw(&w, "[", 1);
    for (size_t i = 0; i < m->count && w.rc == GRAFT_OK; i++) {
        const graft_tensor *t = &m->tensors[i];
        if (!t->unsupported && (rc = graft_tensor_sha256(m, t, digest, ctx)) < 0) {
            graft_jsonw_free(&w);
            return rc;
        }
        graft_sha256_hex(digest, hex);
        graft_jsonw_printf(&w, i ? ",\n " : "\n ");
        graft_jsonw_printf(&w, "{\"name\": ");
        str(&w, t->name);
        graft_jsonw_printf(&w, ", \"dtype\": \"%s\", \"shape\": [",
                           t->unsupported ? "unsupported" : graft_dtype_name(t->dtype));
        for (uint32_t d = 0; d < t->ndim; d++)
            graft_jsonw_printf(&w, "%s%" PRId64, d ? ", " : "", t->shape[d]);
        if (t->unsupported) { /* its stored type, and no data */
            graft_jsonw_printf(&w, "], \"sha256\": null, \"stored_type\": ");
            str(&w, t->unsupported);
        } else {
            graft_jsonw_printf(&w, "], \"sha256\": \"%s\"", hex);
        }
        if (graft_tensor_encoding(m, t)) {
            graft_jsonw_printf(&w, ", \"encoding\": ");
            str(&w, graft_tensor_encoding(m, t));
        }
        quant(&w, graft_tensor_quant(t));
        graft_layout__json_members(&w, m, t);
        graft_jsonw_raw(&w, "}", 1);
    }
    graft_jsonw_printf(&w, m->count ? "\n]\n" : "]\n");
    return finish(&w, out);
}

int graft_op_json(char **out, const graft_op *op, graft_ctx *ctx)
{
    graft_jsonw w;
    graft_jsonw_init(&w, ctx);
    *out = NULL;
    graft_op__json(&w, op);
    return finish(&w, out);
}
