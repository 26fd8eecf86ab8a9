/* cmd_explain.c - `graft explain`: the trace behind one planned tensor. */
#include "planload.h"

#include <getopt.h>
#include <stdlib.h>

static const char usage[] =
    "usage: graft explain [-r RULES] [--reverse] SOURCE SKELETON NAME\n"
    "Explain how skeleton tensor NAME is filled: each rename step that changed its\n"
    "name and its source's (rule file:line, before, after), the pair found, the\n"
    "transform chosen and the shape after each op.\n"
    "  -r, --rules RULES   the mapping file\n"
    "  --reverse           RULES were written for the opposite direction (with\n"
    "                      `select:`, NAME is in SKELETON's selected sub-tree)\n"
    "  --source-format NAME, --skeleton-format NAME   read as this format\n";

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
    char *text = NULL;
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
        const char *name = argv[optind + 2];
        if (print_owned(graft_plan_explain(&text, in.plan, name, in.ctx), &text) < 0) {
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
