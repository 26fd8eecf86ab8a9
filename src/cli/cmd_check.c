/* cmd_check.c - `graft check`: validate a rules file, and optionally that it
 * pairs two actual models one to one. */
#include "planload.h"

#include <getopt.h>

static const char usage[] =
    "usage: graft check [--reverse] [--strict] RULES [SOURCE SKELETON]\n"
    "Validate RULES alone: YAML, known keys and types, regexes compile, ops\n"
    "well-formed, includes resolve; errors name file:line:column.  With SOURCE and\n"
    "SKELETON, also build the plan and check that the renames are one to one on\n"
    "the actual names (each renamed name unique on its side, no source used\n"
    "twice), as `apply --reverse` needs.\n"
    "  --reverse           RULES were written for the opposite direction (with\n"
    "                      `select:`, SKELETON's selected sub-tree is checked)\n";

static void problem(const char *message, void *payload)
{
    (void)payload;
    errorf("%s", message);
}

static void summary(const char *path, const graft_rules *r)
{
    printf("%s: ok: %zu source renames, %zu target renames, %zu pairs, %zu transforms, "
           "%zu+%zu ignore patterns\n",
           path, graft_rules_count(r, GRAFT_RULES_SOURCE_RENAMES),
           graft_rules_count(r, GRAFT_RULES_TARGET_RENAMES), graft_rules_count(r, GRAFT_RULES_PAIRS),
           graft_rules_count(r, GRAFT_RULES_TRANSFORMS),
           graft_rules_count(r, GRAFT_RULES_SOURCE_IGNORES),
           graft_rules_count(r, GRAFT_RULES_TARGET_IGNORES));
}

int cmd_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"reverse", no_argument, NULL, OPT_REVERSE},
        {"strict", no_argument, NULL, OPT_STRICT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    plan_inputs in = PLAN_INPUTS_INIT;
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_REVERSE: in.opts.reverse = true; break;
        case OPT_STRICT: in.opts.strict = true; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: fputs(usage, stderr); return EXIT_BAD;
        }
    }
    if (optind + 1 != argc && optind + 3 != argc) {
        fputs(usage, stderr);
        return EXIT_BAD;
    }
    in.rules_path = argv[optind];
    if (optind + 1 == argc) {
        graft_rules *r = NULL;
        graft_ctx *ctx = graft_ctx_new();
        if (!ctx) {
            errorf("out of memory");
            return EXIT_BAD;
        }
        rc = EXIT_OK;
        if (graft_rules_load(&r, in.rules_path, ctx) < 0) {
            errorf("%s", graft_ctx_message(ctx));
            rc = EXIT_BAD;
        } else {
            summary(in.rules_path, r);
        }
        graft_rules_free(r);
        graft_ctx_free(ctx);
        return rc;
    }
    in.source = argv[optind + 1];
    in.skeleton = argv[optind + 2];
    rc = plan_inputs_load(&in);
    if (rc == EXIT_OK) {
        const graft_plan *p = in.plan;
        size_t bad = 0, errors = graft_plan_errors(p);
        if (graft_plan_check_one_to_one(p, problem, NULL, &bad, in.ctx) < 0) {
            errorf("%s", graft_ctx_message(in.ctx));
            bad++;
        }
        for (size_t i = 0; i < graft_plan_problem_count(p); i++) {
            bool is_error;
            const char *msg = graft_plan_problem(p, i, &is_error);
            if (is_error) errorf("%s", msg);
        }
        for (size_t i = 0; i < graft_plan_count(p); i++)
            if (graft_plan_entry_message(p, i) && graft_plan_entry_status(p, i) != GRAFT_PLAN_KEPT)
                errorf("%s", graft_plan_entry_message(p, i));
        if (bad || errors) {
            errorf("%zu problem%s (see 'graft plan')", bad + errors, bad + errors == 1 ? "" : "s");
            rc = EXIT_PLAN;
        } else {
            summary(in.rules_path, in.rules);
            printf("%s: one to one on %zu targets and %zu sources\n", in.rules_path,
                   graft_plan_count(p), graft_model_count(graft_plan_source(p)));
        }
        if (fflush(stdout) != 0) rc = EXIT_BAD;
    }
    plan_inputs_free(&in);
    return rc;
}
