/* cmd_plan.c - `graft plan`: how every skeleton tensor would be filled. */
#include "planload.h"

#include <getopt.h>
#include <stdlib.h>
#include <unistd.h>

static const char usage[] =
    "usage: graft plan [-r RULES] [--json] [--html FILE] [--reverse] [--strict] SOURCE SKELETON\n"
    "Show how every tensor of SKELETON is filled from SOURCE through RULES (by\n"
    "identical names without -r): its source(s), op chain, shapes and status; then\n"
    "missing targets, unused sources and warnings, each finding once (the reason\n"
    "for an entry's status on the line under it), and a summary line: last, or\n"
    "first when stdout is a terminal.  Exit 0 when the plan is complete, 1 when it\n"
    "is not, 2 on bad input.\n"
    "  -r, --rules RULES   the mapping file\n"
    "  --json              {\"pairs\": [...], \"missing\", \"unused\", \"errors\", ...}\n"
    "                      (schemas/cli/plan.schema.json)\n"
    "  --strict            every warning is an error\n"
    "  --html FILE         also write FILE: one self-contained page with both models\n"
    "                      as trees, statuses, traces and per-tensor statistics\n"
    "  --reverse           RULES were written for the opposite direction (with\n"
    "                      `select:`, SKELETON's selected sub-tree is planned)\n"
    "  --source-format NAME, --skeleton-format NAME   read as this format\n";

static void summary(const graft_plan *p)
{
    size_t count[GRAFT_PLAN_ERROR + 1] = {0};
    for (size_t i = 0; i < graft_plan_count(p); i++) count[graft_plan_entry_status(p, i)]++;
    printf("%zu targets: %zu ok, %zu kept, %zu missing, %zu mismatch, %zu error; "
           "%zu unused sources; %zu errors\n",
           graft_plan_count(p), count[GRAFT_PLAN_OK], count[GRAFT_PLAN_KEPT],
           count[GRAFT_PLAN_MISSING], count[GRAFT_PLAN_MISMATCH], count[GRAFT_PLAN_ERROR],
           graft_plan_unused_count(p), graft_plan_errors(p));
}

static void entry_line(const graft_plan *p, size_t i, graft_ctx *ctx)
{
    graft_plan_status st = graft_plan_entry_status(p, i);
    size_t nsrc = graft_plan_entry_nsources(p, i), nops = graft_plan_entry_nops(p, i);
    const char *msg = graft_plan_entry_message(p, i);
    printf("%-8s %s ", graft_plan_status_name(st), graft_tensor_name(graft_plan_entry_target(p, i)));
    plan_shape_text(stdout, graft_plan_entry_target(p, i));
    if (nsrc) {
        fputs(" <- ", stdout);
        for (size_t k = 0; k < nsrc; k++)
            printf("%s%s", k ? ", " : "", graft_tensor_name(graft_plan_entry_source(p, i, k)));
        putchar(' ');
        plan_shape_text(stdout, graft_plan_entry_source(p, i, 0));
    }
    if (nops) {
        fputs(" ops: ", stdout);
        for (size_t k = 0; k < nops; k++) {
            if (k) fputs(", ", stdout);
            plan_op_print(stdout, graft_plan_entry_op(p, i, k), ctx);
        }
    }
    putchar('\n');
    /* why, once, under its entry */
    if (msg) printf("         %s%s\n", msg, st == GRAFT_PLAN_KEPT ? " (kept: policy mismatch: keep)" : "");
}

/* Every finding once, on stdout: each entry with its reason under it, the
 * unused sources, the plan's warnings and errors; the summary last, or
 * first on a terminal, where the top of the output is what stays in sight. */
static void print_text(const graft_plan *p, bool summary_first, graft_ctx *ctx)
{
    if (summary_first) summary(p);
    for (size_t i = 0; i < graft_plan_count(p); i++) entry_line(p, i, ctx);
    for (size_t i = 0; i < graft_plan_unused_count(p); i++) {
        const graft_tensor *t = graft_plan_unused(p, i);
        printf("unused   %s ", graft_tensor_name(t));
        print_shape(stdout, t, ",");
        printf(" %s\n", graft_dtype_name(graft_tensor_dtype(t)));
    }
    for (size_t i = 0; i < graft_plan_problem_count(p); i++) {
        bool is_error;
        const char *msg = graft_plan_problem(p, i, &is_error);
        printf("%s: %s\n", is_error ? "error" : "warning", msg);
    }
    if (!summary_first) summary(p);
}

const cli_option plan_options[] = {
    PLAN_INPUT_OPTIONS,
    {"json", 0, OPT_JSON, CLI_FLAG},
    {"html", 0, OPT_HTML, CLI_FILE},
    {"help", 'h', 'h', CLI_FLAG},
    {NULL, 0, 0, 0},
};

int cmd_plan(int argc, char **argv)
{
    plan_inputs in = PLAN_INPUTS_INIT;
    bool json = false;
    const char *html = NULL;
    int c, rc;

    optind = 1;
    while ((c = cli_getopt(argc, argv, plan_options)) != -1) {
        if (plan_inputs_option(&in, c, optarg)) continue;
        switch (c) {
        case OPT_JSON: json = true; break;
        case OPT_HTML: html = optarg; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: fputs(usage, stderr); return EXIT_BAD;
        }
    }
    if (!plan_inputs_operands(&in, argc, argv, 2, usage)) return EXIT_BAD;
    rc = plan_inputs_load(&in);
    if (rc == EXIT_OK) {
        const graft_plan *p = in.plan;
        rc = graft_plan_errors(p) ? EXIT_PLAN : EXIT_OK;
        char *text = NULL;
        if (json && print_owned(graft_plan_json(&text, p, in.ctx), &text) < 0) {
            errorf("%s", graft_ctx_message(in.ctx));
            rc = EXIT_BAD;
        } else if (!json) {
            print_text(p, isatty(STDOUT_FILENO), in.ctx);
        }
        if (fflush(stdout) != 0) rc = EXIT_BAD;
        if (html && plan_write_html(&in, html, false, argc, argv) != EXIT_OK) rc = EXIT_BAD;
    }
    plan_inputs_free(&in);
    return rc;
}
