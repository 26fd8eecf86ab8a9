/* cmd_plan.c - `graft plan`: how every skeleton tensor would be filled. */
#include "planload.h"

#include <getopt.h>
#include <stdlib.h>

static const char usage[] =
    "usage: graft plan [-r RULES] [--json] [--html FILE] [--reverse] [--strict] SOURCE SKELETON\n"
    "Show how every tensor of SKELETON is filled from SOURCE through RULES (by\n"
    "identical names without -r): its source(s), op chain, shapes and status; then\n"
    "missing targets, unused sources and warnings.  Exit 0 when the plan is\n"
    "complete, 1 when it is not, 2 on bad input.\n"
    "  -r, --rules RULES   the mapping file\n"
    "  --json              {\"pairs\": [...], \"missing\", \"unused\", \"errors\", ...}\n"
    "  --html FILE         also write FILE: one self-contained page with both models\n"
    "                      as trees, statuses, traces and per-tensor statistics\n"
    "  --reverse           RULES were written for the opposite direction (with\n"
    "                      `select:`, SKELETON's selected sub-tree is planned)\n"
    "  --source-format NAME, --skeleton-format NAME   read as this format\n";

static void print_text(const graft_plan *p, graft_ctx *ctx)
{
    size_t count[GRAFT_PLAN_ERROR + 1] = {0};
    for (size_t i = 0; i < graft_plan_count(p); i++) {
        graft_plan_status st = graft_plan_entry_status(p, i);
        size_t nsrc = graft_plan_entry_nsources(p, i), nops = graft_plan_entry_nops(p, i);
        count[st]++;
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
    }
    for (size_t i = 0; i < graft_plan_unused_count(p); i++) {
        const graft_tensor *t = graft_plan_unused(p, i);
        printf("unused   %s ", graft_tensor_name(t));
        print_shape(stdout, t, ",");
        printf(" %s\n", graft_dtype_name(graft_tensor_dtype(t)));
    }
    printf("%zu targets: %zu ok, %zu kept, %zu missing, %zu mismatch, %zu error; "
           "%zu unused sources; %zu errors\n",
           graft_plan_count(p), count[GRAFT_PLAN_OK], count[GRAFT_PLAN_KEPT],
           count[GRAFT_PLAN_MISSING], count[GRAFT_PLAN_MISMATCH], count[GRAFT_PLAN_ERROR],
           graft_plan_unused_count(p), graft_plan_errors(p));
}

/* Problems on stderr, one line each. */
static void report(const graft_plan *p)
{
    plan_report_diags(p);
    for (size_t i = 0; i < graft_plan_count(p); i++) {
        const char *msg = graft_plan_entry_message(p, i);
        if (!msg) continue;
        if (graft_plan_entry_status(p, i) == GRAFT_PLAN_KEPT)
            warnf("%s (kept: policy mismatch: keep)", msg);
        else
            errorf("%s", msg);
    }
}

int cmd_plan(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"rules", required_argument, NULL, OPT_RULES},
        {"json", no_argument, NULL, 'j'},
        {"html", required_argument, NULL, OPT_HTML},
        {"reverse", no_argument, NULL, OPT_REVERSE},
        {"strict", no_argument, NULL, OPT_STRICT},
        {"source-format", required_argument, NULL, OPT_SOURCE_FORMAT},
        {"skeleton-format", required_argument, NULL, OPT_SKELETON_FORMAT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    plan_inputs in = PLAN_INPUTS_INIT;
    bool json = false;
    const char *html = NULL;
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "r:h", longopts, NULL)) != -1) {
        if (plan_inputs_option(&in, c, optarg)) continue;
        switch (c) {
        case 'j': json = true; break;
        case OPT_HTML: html = optarg; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: fputs(usage, stderr); return EXIT_BAD;
        }
    }
    if (!plan_inputs_operands(&in, argc, argv, 2, usage)) return EXIT_BAD;
    rc = plan_inputs_load(&in);
    if (rc == EXIT_OK) {
        const graft_plan *p = in.plan;
        report(p);
        rc = graft_plan_errors(p) ? EXIT_PLAN : EXIT_OK;
        char *text = NULL;
        if (json && print_owned(graft_plan_json(&text, p, in.ctx), &text) < 0) {
            errorf("%s", graft_ctx_message(in.ctx));
            rc = EXIT_BAD;
        } else if (!json) {
            print_text(p, in.ctx);
        }
        if (fflush(stdout) != 0) rc = EXIT_BAD;
        if (html && plan_write_html(&in, html, false, argc, argv) != EXIT_OK) rc = EXIT_BAD;
    }
    plan_inputs_free(&in);
    return rc;
}
