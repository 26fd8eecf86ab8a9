/* layout_json.c - a tensor's role, layout and certainty as JSON members
 * (graft ls --json, explain). */
#include "layout_json.h"

#include <inttypes.h>

void layout_json_members(FILE *f, const graft_model *m, const graft_tensor *t)
{
    graft_layout l;
    char s[96];
    graft_layout_of(m, t, &l);
    graft_layout_str(&l, s, sizeof s);
    fprintf(f, ", \"role\": \"%s\", \"layout\": ", graft_role_name(l.role, t->ndim));
    if (l.axes[0])
        json_string(f, s);
    else
        fputs("null", f);
    fprintf(f, ", \"certainty\": \"%s\"", graft_certainty_name(l.certainty));
    if (l.gates[0]) fprintf(f, ", \"gates\": \"%s\"", l.gates);
    if (l.flatten[0]) {
        fprintf(f, ", \"flatten\": {\"order\": \"%s\", \"channels\": %" PRId64 ", \"spatial\": ",
                l.flatten, l.flat_c);
        if (l.flat_h)
            fprintf(f, "[%" PRId64 ", %" PRId64 "]}", l.flat_h, l.flat_w);
        else
            fprintf(f, "[%" PRId64 "]}", l.flat_s);
    }
    if (l.layer) {
        fputs(", \"layer\": ", f);
        json_string(f, l.layer);
    }
    if (l.op) {
        fputs(", \"op\": ", f);
        json_string(f, l.op);
    }
}

static void side_text(FILE *f, const char *what, const graft_layout *l, uint32_t rank)
{
    char s[96];
    graft_layout_str(l, s, sizeof s);
    fprintf(f, "  %s %s: %s, %s", what, graft_role_name(l->role, rank), l->axes[0] ? s : "layout unknown",
            graft_certainty_name(l->certainty));
    if (l->gates[0]) fprintf(f, ", gates %s", l->gates);
    if (l->flatten[0])
        fprintf(f, ", after a Flatten of %s (C=%" PRId64 ", S=%" PRId64 ")", l->flatten, l->flat_c,
                l->flat_s);
    if (l->op) fprintf(f, " (%s '%s')", l->op, l->layer ? l->layer : "");
    fputc('\n', f);
}

int layout_explain(FILE *f, const graft_plan *p, const graft_plan_entry *e, graft_ctx *ctx)
{
    graft_lcheck c;
    if (graft_lcheck_entry(p, e, &c, ctx) < 0) return -1;
    fputs("layout:\n", f);
    side_text(f, "target", &c.target, e->target_shape.ndim);
    if (e->nsources) side_text(f, "source", &c.source, e->in[0].ndim);
    if (c.verdict == GRAFT_LCHECK_SKIPPED)
        fprintf(f, "  check: not made (%s)\n", c.why[0] ? c.why : "no source");
    else
        fprintf(f, "  check: the layouts call for %s; the ops give %s: %s%s%s\n", c.expected,
                c.actual, c.verdict == GRAFT_LCHECK_AGREES ? "agrees" : "DIFFERS",
                c.why[0] ? "; " : "", c.why);
    if (c.verdict == GRAFT_LCHECK_DIFFERS) { /* what would agree */
        graft_op *ops;
        size_t n;
        if (graft_layout_ops(&c.source, &e->in[0], &c.target, &e->target_shape, &ops, &n, ctx) < 0) {
            if (graft_ctx_status(ctx) == GRAFT_ENOMEM) return -1;
            graft_ctx_clear(ctx);
            return 0;
        }
        fputs("  the layouts call for the ops: [", f);
        for (size_t k = 0; k < n; k++) {
            if (k) fputs(", ", f);
            plan_op_json(f, &ops[k]);
        }
        fputs("]\n", f);
        graft_ops_free(ops, n);
    }
    return 0;
}
