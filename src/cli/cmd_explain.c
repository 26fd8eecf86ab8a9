/* cmd_explain.c - `graft explain`: the trace behind one planned tensor. */
#include "planload.h"

#include <getopt.h>
#include <stdlib.h>

static const char usage[] =
    "usage: graft explain [-r RULES] [--reverse] [--json] SOURCE SKELETON NAME\n"
    "Explain how skeleton tensor NAME is filled: each rename step that changed its\n"
    "name and its source's (rule file:line, before, after), the pair found, the\n"
    "transform chosen and the shape after each op.\n"
    "  -r, --rules RULES   the mapping file\n"
    "  --reverse           RULES were written for the opposite direction (with\n"
    "                      `select:`, NAME is in SKELETON's selected sub-tree)\n"
    "  --strict            every warning is an error\n"
    "  --json              the same trace as one object: {\"target\", \"sources\",\n"
    "                      \"pair\", \"transform\", \"input\", \"ops\": [{\"op\", \"rule\",\n"
    "                      \"result\"}], \"status\", \"message\", \"layout\"}\n"
    "                      (schemas/cli/explain.schema.json)\n"
    "  --source-format NAME, --skeleton-format NAME   read as this format\n";

const cli_option explain_options[] = {
    PLAN_INPUT_OPTIONS,
    {"json", 0, OPT_JSON, CLI_FLAG},
    {"help", 'h', 'h', CLI_FLAG},
    {NULL, 0, 0, 0},
};

int cmd_explain(int argc, char **argv)
{
    plan_inputs in = PLAN_INPUTS_INIT;
    char *text = NULL;
    bool json = false;
    int c, rc;

    optind = 1;
    while ((c = cli_getopt(argc, argv, explain_options)) != -1) {
        if (plan_inputs_option(&in, c, optarg)) continue;
        switch (c) {
        case OPT_JSON: json = true; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: fputs(usage, stderr); return EXIT_BAD;
        }
    }
    if (!plan_inputs_operands(&in, argc, argv, 3, usage)) return EXIT_BAD;
    rc = plan_inputs_load(&in);
    if (rc == EXIT_OK) {
        const char *name = argv[optind + 2];
        int made = json ? graft_plan_explain_json(&text, in.plan, name, in.ctx)
                        : graft_plan_explain(&text, in.plan, name, in.ctx);
        if (print_owned(made, &text) < 0) {
            errorf("%s", graft_ctx_message(in.ctx));
            rc = EXIT_BAD;
        } else {
            graft_plan_status st = graft_plan_entry_status(in.plan, graft_plan_index(in.plan, name));
            rc = st == GRAFT_PLAN_OK || st == GRAFT_PLAN_KEPT ? EXIT_OK : EXIT_PLAN;
            if (fflush(stdout) != 0) rc = EXIT_BAD;
        }
    }
    plan_inputs_free(&in);
    return rc;
}
