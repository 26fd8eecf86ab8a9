/* explain_text.c - graft_plan_explain (graft.h): the trace behind one target
 * tensor as text, what `graft explain` prints. */
#include "graft.h"

#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "json.h"
#include "layout_json.h"
#include "op_json.h"
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

int graft_plan_explain(char **out, const graft_plan *plan, const char *name, graft_ctx *ctx)
{
    const graft_plan *p = plan->sub ? plan->sub : plan;
    graft_explain *x = NULL;
    graft_jsonw w;
    int rc;

    *out = NULL;
    if (plan->sub) { /* a whole-skeleton name: strip the selected sub-tree's prefix */
        size_t n = strlen(p->rules->select);
        if (!strncmp(name, p->rules->select, n) && name[n] == '.') name += n + 1;
    }
    if ((rc = graft_explain_build(&x, p, name, ctx)) < 0) return rc;
    graft_jsonw_init(&w, ctx);
    rc = trace(&w, p, x, ctx);
    graft_explain_free(x);
    if (rc < 0 || (rc = w.rc) < 0) {
        graft_jsonw_free(&w);
        return rc;
    }
    *out = w.p;
    return GRAFT_OK;
}
