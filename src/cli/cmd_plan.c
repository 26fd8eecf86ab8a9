/* cmd_plan.c - `graft plan`: how every skeleton tensor would be filled. */
#include "planload.h"
#include "lcheck.h"

#include <getopt.h>
#include <inttypes.h>
#include <string.h>

static const char usage[] =
    "usage: graft plan [-r RULES] [--json] [--reverse] [--strict] SOURCE SKELETON\n"
    "Show how every tensor of SKELETON is filled from SOURCE through RULES (by\n"
    "identical names without -r): its source(s), op chain, shapes and status; then\n"
    "missing targets, unused sources and warnings.  Exit 0 when the plan is\n"
    "complete, 1 when it is not, 2 on bad input.\n"
    "  -r, --rules RULES   the mapping file\n"
    "  --json              {\"pairs\": [...], \"missing\", \"unused\", \"errors\", ...}\n"
    "  --reverse           RULES were written for the opposite direction (with\n"
    "                      `select:`, SKELETON's selected sub-tree is planned)\n"
    "  --source-format NAME, --skeleton-format NAME   read as this format\n";

static void shape_json(FILE *f, const graft_shape *s)
{
    fputc('[', f);
    for (uint32_t i = 0; i < s->ndim; i++) fprintf(f, "%s%" PRId64, i ? ", " : "", s->dim[i]);
    fputc(']', f);
}

/* A plan message: a string, or an object for a finding of kind layout. */
static void diag_json(FILE *f, const graft_plan_diag *d)
{
    const graft_layout_finding *l = d->layout;
    if (!l) {
        json_string(f, d->message);
        return;
    }
    const char *const kv[][2] = {{"target", l->target},     {"source", l->source},
                                 {"expected", l->expected}, {"actual", l->actual},
                                 {"rule", l->rule},         {"message", d->message}};
    fputs("{\"kind\": \"layout\"", f);
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++) {
        fprintf(f, ", \"%s\": ", kv[i][0]);
        json_string(f, kv[i][1]);
    }
    fputc('}', f);
}

static void print_json(const graft_plan *p)
{
    FILE *f = stdout;
    fputs("{\"pairs\": [", f);
    for (size_t i = 0; i < p->nentries; i++) {
        const graft_plan_entry *e = &p->entries[i];
        fputs(i ? ",\n  " : "\n  ", f);
        fputs("{\"target\": ", f);
        json_string(f, p->target->tensors[i].name);
        fputs(", \"sources\": [", f);
        for (size_t k = 0; k < e->nsources; k++) {
            if (k) fputs(", ", f);
            json_string(f, p->source->tensors[e->sources[k]].name);
        }
        fputs("], \"ops\": [", f);
        for (size_t k = 0; k < e->nops; k++) {
            if (k) fputs(", ", f);
            plan_op_json(f, &e->ops[k]);
        }
        fputs("], \"source_shape\": ", f);
        if (e->nsources)
            shape_json(f, &e->in[0]);
        else
            fputs("null", f);
        fputs(", \"target_shape\": ", f);
        shape_json(f, &e->target_shape);
        fprintf(f, ", \"dtype\": \"%s\"", graft_dtype_name(e->target_shape.dtype));
        if (e->nsources) fprintf(f, ", \"source_dtype\": \"%s\"", graft_dtype_name(e->in[0].dtype));
        fprintf(f, ", \"status\": \"%s\"", graft_plan_status_name(e->status));
        if (e->transform)
            fprintf(f, ", \"transform\": \"%s:%u\"", e->transform->pos.file, e->transform->pos.line);
        if (e->pair) fprintf(f, ", \"pair\": \"%s:%u\"", e->pair->pos.file, e->pair->pos.line);
        if (e->message) {
            fputs(", \"message\": ", f);
            json_string(f, e->message);
        }
        fputc('}', f);
    }
    fputs(p->nentries ? "\n ],\n \"missing\": [" : "],\n \"missing\": [", f);
    for (size_t i = 0; i < p->nmissing; i++) {
        if (i) fputs(", ", f);
        json_string(f, p->target->tensors[p->missing[i]].name);
    }
    fputs("],\n \"unused\": [", f);
    for (size_t i = 0; i < p->nunused; i++) {
        if (i) fputs(", ", f);
        json_string(f, p->source->tensors[p->unused[i]].name);
    }
    fputs("],\n \"warnings\": [", f);
    for (size_t i = 0, n = 0; i < p->ndiags; i++) {
        if (p->diags[i].level != GRAFT_DIAG_WARNING) continue;
        if (n++) fputs(", ", f);
        diag_json(f, &p->diags[i]);
    }
    fputs("],\n \"problems\": [", f);
    for (size_t i = 0, n = 0; i < p->ndiags; i++) {
        if (p->diags[i].level != GRAFT_DIAG_ERROR) continue;
        if (n++) fputs(", ", f);
        diag_json(f, &p->diags[i]);
    }
    fprintf(f, "],\n \"errors\": %zu}\n", p->errors);
}

static void print_text(const graft_plan *p)
{
    size_t count[GRAFT_PLAN_ERROR + 1] = {0};
    for (size_t i = 0; i < p->nentries; i++) {
        const graft_plan_entry *e = &p->entries[i];
        count[e->status]++;
        printf("%-8s %s ", graft_plan_status_name(e->status), p->target->tensors[i].name);
        plan_shape_text(stdout, &e->target_shape);
        if (e->nsources) {
            fputs(" <- ", stdout);
            for (size_t k = 0; k < e->nsources; k++)
                printf("%s%s", k ? ", " : "", p->source->tensors[e->sources[k]].name);
            putchar(' ');
            plan_shape_text(stdout, &e->in[0]);
        }
        if (e->nops) {
            fputs(" ops: ", stdout);
            for (size_t k = 0; k < e->nops; k++) {
                if (k) fputs(", ", stdout);
                plan_op_json(stdout, &e->ops[k]);
            }
        }
        putchar('\n');
    }
    for (size_t i = 0; i < p->nunused; i++) {
        const graft_tensor *t = &p->source->tensors[p->unused[i]];
        printf("unused   %s ", t->name);
        print_shape(stdout, t, ",");
        printf(" %s\n", graft_dtype_name(t->dtype));
    }
    printf("%zu targets: %zu ok, %zu kept, %zu missing, %zu mismatch, %zu error; "
           "%zu unused sources; %zu errors\n",
           p->nentries, count[GRAFT_PLAN_OK], count[GRAFT_PLAN_KEPT], count[GRAFT_PLAN_MISSING],
           count[GRAFT_PLAN_MISMATCH], count[GRAFT_PLAN_ERROR], p->nunused, p->errors);
}

/* Problems on stderr, one line each. */
static void report(const graft_plan *p)
{
    plan_report_diags(p);
    for (size_t i = 0; i < p->nentries; i++) {
        const graft_plan_entry *e = &p->entries[i];
        if (!e->message) continue;
        if (e->status == GRAFT_PLAN_KEPT)
            warnf("%s (kept: policy mismatch: keep)", e->message);
        else
            errorf("%s", e->message);
    }
}

int cmd_plan(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"rules", required_argument, NULL, OPT_RULES},
        {"json", no_argument, NULL, 'j'},
        {"reverse", no_argument, NULL, OPT_REVERSE},
        {"strict", no_argument, NULL, OPT_STRICT},
        {"source-format", required_argument, NULL, OPT_SOURCE_FORMAT},
        {"skeleton-format", required_argument, NULL, OPT_SKELETON_FORMAT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    plan_inputs in = PLAN_INPUTS_INIT;
    bool json = false;
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "r:h", longopts, NULL)) != -1) {
        if (plan_inputs_option(&in, c, optarg)) continue;
        switch (c) {
        case 'j': json = true; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: fputs(usage, stderr); return EXIT_BAD;
        }
    }
    if (!plan_inputs_operands(&in, argc, argv, 2, usage)) return EXIT_BAD;
    rc = plan_inputs_load(&in);
    if (rc == EXIT_OK) {
        const graft_plan *p = plan_inputs_plan(&in);
        report(p);
        if (json)
            print_json(p);
        else
            print_text(p);
        rc = p->errors ? EXIT_PLAN : EXIT_OK;
        if (fflush(stdout) != 0) rc = EXIT_BAD;
    }
    plan_inputs_free(&in);
    return rc;
}
