/* layout_json.c - what src/layout knows, in the library's JSON and text
 * (graft_model_json's role/layout members, a plan's layout findings,
 * graft_plan_explain's layout section), through core/json.c's one writer. */
#include "layout_json.h"

#include <inttypes.h>
#include <string.h>

#include "op_json.h"

static void str(graft_jsonw *w, const char *s)
{
    graft_jsonw_string(w, s, strlen(s));
}

void graft_layout__json_members(graft_jsonw *w, const graft_model *m, const graft_tensor *t)
{
    graft_layout l;
    char s[96];
    graft_layout_of(m, t, &l);
    graft_layout_str(&l, s, sizeof s);
    graft_jsonw_printf(w, ", \"role\": \"%s\", \"layout\": ", graft_role_name(l.role, t->ndim));
    if (l.axes[0])
        str(w, s);
    else
        graft_jsonw_printf(w, "null");
    graft_jsonw_printf(w, ", \"certainty\": \"%s\"", graft_certainty_name(l.certainty));
    if (l.gates[0]) graft_jsonw_printf(w, ", \"gates\": \"%s\"", l.gates);
    if (l.flatten[0]) {
        graft_jsonw_printf(w, ", \"flatten\": {\"order\": \"%s\", \"channels\": %" PRId64
                              ", \"spatial\": ", l.flatten, l.flat_c);
        if (l.flat_h)
            graft_jsonw_printf(w, "[%" PRId64 ", %" PRId64 "]}", l.flat_h, l.flat_w);
        else
            graft_jsonw_printf(w, "[%" PRId64 "]}", l.flat_s);
    }
    if (l.layer) {
        graft_jsonw_printf(w, ", \"layer\": ");
        str(w, l.layer);
    }
    if (l.op) {
        graft_jsonw_printf(w, ", \"op\": ");
        str(w, l.op);
    }
}

void graft_layout__finding_json(graft_jsonw *w, const graft_layout_finding *l, const char *message)
{
    const char *const kv[][2] = {{"target", l->target},     {"source", l->source},
                                 {"expected", l->expected}, {"actual", l->actual},
                                 {"rule", l->rule},         {"message", message}};
    graft_jsonw_printf(w, "{\"kind\": \"layout\"");
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++) {
        graft_jsonw_printf(w, ", \"%s\": ", kv[i][0]);
        str(w, kv[i][1] ? kv[i][1] : "");
    }
    graft_jsonw_raw(w, "}", 1);
}

static void side_text(graft_jsonw *w, const char *what, const graft_layout *l, uint32_t rank)
{
    char s[96];
    graft_layout_str(l, s, sizeof s);
    graft_jsonw_printf(w, "  %s %s: %s, %s", what, graft_role_name(l->role, rank),
                       l->axes[0] ? s : "layout unknown", graft_certainty_name(l->certainty));
    if (l->gates[0]) graft_jsonw_printf(w, ", gates %s", l->gates);
    if (l->flatten[0])
        graft_jsonw_printf(w, ", after a Flatten of %s (C=%" PRId64 ", S=%" PRId64 ")", l->flatten,
                           l->flat_c, l->flat_s);
    if (l->op) graft_jsonw_printf(w, " (%s '%s')", l->op, l->layer ? l->layer : "");
    graft_jsonw_raw(w, "\n", 1);
}

/* The op chain the two layouts of a differing check call for, between
 * before and after; nothing when none can be derived.  Fails only when out
 * of memory. */
static int suggested(graft_jsonw *w, const graft_lcheck *c, const graft_plan_entry *e,
                     const char *before, const char *after, graft_ctx *ctx)
{
    graft_op *ops;
    size_t n;
    int rc = graft_layout_ops(&c->source, &e->in[0], &c->target, &e->target_shape, &ops, &n, ctx);
    if (rc < 0) {
        if (rc == GRAFT_ENOMEM) return rc;
        graft_ctx_clear(ctx);
        return 0;
    }
    graft_jsonw_printf(w, "%s", before);
    graft_op__json_chain(w, ops, n);
    graft_jsonw_printf(w, "%s", after);
    graft_ops_free(ops, n);
    return 0;
}

int graft_layout__explain(graft_jsonw *w, const graft_plan *p, const graft_plan_entry *e,
                          graft_ctx *ctx)
{
    graft_lcheck c;
    int rc;
    if ((rc = graft_lcheck_entry(p, e, &c, ctx)) < 0) return rc;
    graft_jsonw_printf(w, "layout:\n");
    side_text(w, "target", &c.target, e->target_shape.ndim);
    if (e->nsources) side_text(w, "source", &c.source, e->in[0].ndim);
    if (c.verdict == GRAFT_LCHECK_SKIPPED)
        graft_jsonw_printf(w, "  check: not made (%s)\n", c.why[0] ? c.why : "no source");
    else
        graft_jsonw_printf(w, "  check: the layouts call for %s; the ops give %s: %s%s%s\n",
                           c.expected, c.actual,
                           c.verdict == GRAFT_LCHECK_AGREES ? "agrees" : "DIFFERS",
                           c.why[0] ? "; " : "", c.why);
    if (c.verdict == GRAFT_LCHECK_DIFFERS) /* what would agree */
        return suggested(w, &c, e, "  the layouts call for the ops: [", "]\n", ctx);
    return 0;
}

/* {"role", "layout", "certainty"[, "gates"]} of one side. */
static void side_json(graft_jsonw *w, const graft_layout *l, uint32_t rank)
{
    char s[96];
    graft_layout_str(l, s, sizeof s);
    graft_jsonw_printf(w, "{\"role\": \"%s\", \"layout\": ", graft_role_name(l->role, rank));
    if (l->axes[0])
        str(w, s);
    else
        graft_jsonw_printf(w, "null");
    graft_jsonw_printf(w, ", \"certainty\": \"%s\"", graft_certainty_name(l->certainty));
    if (l->gates[0]) graft_jsonw_printf(w, ", \"gates\": \"%s\"", l->gates);
    graft_jsonw_raw(w, "}", 1);
}

int graft_layout__explain_json(graft_jsonw *w, const graft_plan *p, const graft_plan_entry *e,
                               graft_ctx *ctx)
{
    static const char *const verdicts[] = {[GRAFT_LCHECK_SKIPPED] = "skipped",
                                           [GRAFT_LCHECK_AGREES] = "agrees",
                                           [GRAFT_LCHECK_DIFFERS] = "differs"};
    graft_lcheck c;
    int rc;
    if ((rc = graft_lcheck_entry(p, e, &c, ctx)) < 0) return rc;
    graft_jsonw_printf(w, "{\"target\": ");
    side_json(w, &c.target, e->target_shape.ndim);
    graft_jsonw_printf(w, ", \"source\": ");
    if (e->nsources)
        side_json(w, &c.source, e->in[0].ndim);
    else
        graft_jsonw_printf(w, "null");
    graft_jsonw_printf(w, ", \"check\": \"%s\", \"expected\": ", verdicts[c.verdict]);
    if (c.verdict == GRAFT_LCHECK_SKIPPED) {
        graft_jsonw_printf(w, "null, \"actual\": null");
    } else {
        str(w, c.expected);
        graft_jsonw_printf(w, ", \"actual\": ");
        str(w, c.actual);
    }
    graft_jsonw_printf(w, ", \"why\": ");
    str(w, c.why);
    if (c.verdict == GRAFT_LCHECK_DIFFERS && /* what would agree */
        (rc = suggested(w, &c, e, ", \"suggested_ops\": [", "]", ctx)) < 0)
        return rc;
    graft_jsonw_raw(w, "}", 1);
    return 0;
}
