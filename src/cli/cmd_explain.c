/* cmd_explain.c - `graft explain`: the trace behind one planned tensor. */
#include "planload.h"
#include "layout_json.h"

#include <getopt.h>
#include <string.h>

static const char usage[] =
    "usage: graft explain [-r RULES] [--reverse] SOURCE SKELETON NAME\n"
    "Explain how skeleton tensor NAME is filled: each rename step that changed its\n"
    "name and its source's (rule file:line, before, after), the pair found, the\n"
    "transform chosen and the shape after each op.\n"
    "  -r, --rules RULES   the mapping file\n"
    "  --reverse           RULES were written for the opposite direction (with\n"
    "                      `select:`, NAME is in SKELETON's selected sub-tree)\n"
    "  --source-format NAME, --skeleton-format NAME   read as this format\n";

static void steps(const graft_rename_step *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("  rename %s:%u: '%s' -> '%s'\n", s[i].rule->pos.file, s[i].rule->pos.line,
               s[i].before, s[i].after);
}

static int print_trace(const graft_plan *p, const graft_explain *x, graft_ctx *ctx)
{
    const graft_plan_entry *e = x->entry;
    printf("target '%s' ", p->target->tensors[e->target].name);
    plan_shape_text(stdout, &e->target_shape);
    putchar('\n');
    steps(x->target_steps, x->ntarget_steps);
    printf("  key '%s'%s\n", e->key, e->ignored ? " (ignored)" : "");
    for (size_t k = 0; k < e->nsources; k++) {
        size_t j = e->sources[k];
        printf("source '%s' ", p->source->tensors[j].name);
        plan_shape_text(stdout, &e->in[k]);
        putchar('\n');
        steps(x->source_steps[k], x->nsource_steps[k]);
        printf("  key '%s'\n", p->source_keys[j]);
    }
    if (e->pair)
        printf("pair: explicit, pairs %s:%u\n", e->pair->pos.file, e->pair->pos.line);
    else if (e->nsources)
        printf("pair: by renamed name '%s'\n", e->key);
    else if (x->closest != SIZE_MAX)
        printf("pair: none (no source renames to '%s'; nearest is '%s' from '%s')\n", e->key,
               p->source_keys[x->closest], p->source->tensors[x->closest].name);
    else
        printf("pair: none (no source renames to '%s')\n", e->key);
    if (e->transform)
        printf("transform: %s:%u\n", e->transform->pos.file, e->transform->pos.line);
    else if (e->nsources)
        printf("transform: none matched (no ops)\n");
    if (x->nshapes) {
        printf("  input ");
        plan_shape_text(stdout, &x->shapes[0]);
        putchar('\n');
    }
    for (size_t k = 0; k < e->nops; k++) {
        printf("  %zu. ", k + 1);
        plan_op_json(stdout, &e->ops[k]);
        if (e->ops[k].file) printf(" (%s:%u)", e->ops[k].file, e->ops[k].line);
        if (k + 1 < x->nshapes) {
            fputs(" -> ", stdout);
            plan_shape_text(stdout, &x->shapes[k + 1]);
        } else {
            fputs(" -> fails", stdout);
        }
        putchar('\n');
        if (k + 1 >= x->nshapes) break;
    }
    printf("status: %s\n", graft_plan_status_name(e->status));
    if (e->message) printf("  %s\n", e->message);
    if (layout_explain(stdout, p, e, ctx) < 0) return -1;
    return 0;
}

int cmd_explain(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"rules", required_argument, NULL, OPT_RULES},
        {"reverse", no_argument, NULL, OPT_REVERSE},
        {"source-format", required_argument, NULL, OPT_SOURCE_FORMAT},
        {"skeleton-format", required_argument, NULL, OPT_SKELETON_FORMAT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    plan_inputs in = PLAN_INPUTS_INIT;
    graft_explain *x = NULL;
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "r:h", longopts, NULL)) != -1) {
        if (plan_inputs_option(&in, c, optarg)) continue;
        switch (c) {
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: fputs(usage, stderr); return EXIT_BAD;
        }
    }
    if (!plan_inputs_operands(&in, argc, argv, 3, usage)) return EXIT_BAD;
    rc = plan_inputs_load(&in);
    if (rc == EXIT_OK) {
        const graft_plan *p = plan_inputs_plan(&in);
        const char *name = plan_inputs_target_name(&in, argv[optind + 2]);
        if (graft_explain_build(&x, p, name, in.ctx) < 0) {
            errorf("%s", graft_ctx_message(in.ctx));
            rc = EXIT_BAD;
        } else {
            if (print_trace(p, x, in.ctx) < 0) {
                errorf("%s", graft_ctx_message(in.ctx));
                rc = EXIT_BAD;
            } else {
                rc = x->entry->status == GRAFT_PLAN_OK || x->entry->status == GRAFT_PLAN_KEPT
                         ? EXIT_OK
                         : EXIT_PLAN;
            }
            if (fflush(stdout) != 0) rc = EXIT_BAD;
        }
    }
    graft_explain_free(x);
    plan_inputs_free(&in);
    return rc;
}
