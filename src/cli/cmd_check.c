/* cmd_check.c - `graft check`: validate a rules file, and optionally that it
 * pairs two actual models one to one. */
#include "planload.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: graft check [--json] [--reverse] [--strict] RULES [SOURCE SKELETON]\n"
    "Validate RULES alone: YAML, known keys and types, regexes compile, ops\n"
    "well-formed, includes resolve; errors name file:line:column.  With SOURCE and\n"
    "SKELETON, also build the plan and check that the renames are one to one on\n"
    "the actual names (each renamed name unique on its side, no source used\n"
    "twice), as `apply --reverse` needs.\n"
    "RULES may name a shipped rules file ('graft rules'), e.g. torch-to-keras/resnet18.\n"
    "  --reverse           RULES were written for the opposite direction (with\n"
    "                      `select:`, SKELETON's selected sub-tree is checked)\n"
    "  --strict            every warning is an error\n"
    "  --json              {\"rules\", \"valid\", \"counts\", \"findings\": [{\"kind\",\n"
    "                      \"severity\", \"message\"}], \"problems\", ...}\n"
    "                      (schemas/cli/check.schema.json); also when RULES\n"
    "                      do not load (exit 2)\n"
    "  --source-format NAME, --skeleton-format NAME   read as this format\n";

static void finding(const char *kind, bool is_error, const char *message, void *payload)
{
    (void)kind;
    (void)payload;
    if (is_error)
        errorf("%s", message);
    else
        warnf("%s", message);
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

const cli_option check_options[] = {
    {"reverse", 0, OPT_REVERSE, CLI_FLAG},
    {"strict", 0, OPT_STRICT, CLI_FLAG},
    {"source-format", 0, OPT_SOURCE_FORMAT, CLI_FORMAT},
    {"skeleton-format", 0, OPT_SKELETON_FORMAT, CLI_FORMAT},
    {"json", 0, OPT_JSON, CLI_FLAG},
    {"help", 'h', 'h', CLI_FLAG},
    {NULL, 0, 0, 0},
};

/* --json: the report on stdout; rc unless printing fails. */
static int print_json(const plan_inputs *in, const char *load_error, int rc)
{
    char *text = NULL;
    if (print_owned(graft_check_json(&text, in->rules_path, in->rules, load_error, in->plan,
                                     in->ctx), &text) < 0) {
        errorf("%s", graft_ctx_message(in->ctx));
        return EXIT_BAD;
    }
    return rc;
}

/* --json when RULES did not load: the report holds the error (exit 2). */
static int print_load_failure(plan_inputs *in)
{
    char *msg = strdup(graft_ctx_message(in->ctx));
    graft_ctx_clear(in->ctx);
    int rc = print_json(in, msg ? msg : "out of memory", EXIT_BAD);
    free(msg);
    return rc;
}

int cmd_check(int argc, char **argv)
{
    plan_inputs in = PLAN_INPUTS_INIT;
    bool json = false;
    int c, rc;

    optind = 1;
    while ((c = cli_getopt(argc, argv, check_options)) != -1) {
        if (c != OPT_RULES && plan_inputs_option(&in, c, optarg)) continue;
        switch (c) {
        case OPT_JSON: json = true; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: fputs(usage, stderr); return EXIT_BAD;
        }
    }
    if (optind + 1 != argc && optind + 3 != argc) {
        fputs(usage, stderr);
        return EXIT_BAD;
    }
    in.rules_path = rules_named(argv[optind]);
    if (optind + 1 == argc) {
        if (!(in.ctx = graft_ctx_new())) {
            errorf("out of memory");
            return EXIT_BAD;
        }
        rc = EXIT_OK;
        if (graft_rules_load(&in.rules, in.rules_path, in.ctx) < 0) {
            errorf("%s", graft_ctx_message(in.ctx));
            rc = EXIT_BAD;
            if (json) rc = print_load_failure(&in);
        } else if (json) {
            rc = print_json(&in, NULL, rc);
        } else {
            summary(in.rules_path, in.rules);
        }
        goto done;
    }
    in.source = argv[optind + 1];
    in.skeleton = argv[optind + 2];
    rc = plan_inputs_load(&in);
    if (rc == EXIT_BAD && json && in.ctx && !in.rules && in.rules_path) {
        rc = print_load_failure(&in);
    } else if (rc == EXIT_OK) {
        const graft_plan *p = in.plan;
        size_t problems = 0;
        if (graft_plan_check(p, finding, NULL, &problems, in.ctx) < 0) {
            errorf("%s", graft_ctx_message(in.ctx));
            rc = EXIT_BAD;
            goto done;
        }
        rc = problems ? EXIT_PLAN : EXIT_OK;
        if (json) {
            rc = print_json(&in, NULL, rc);
        } else if (problems) {
            errorf("%zu problem%s (see 'graft plan')", problems, problems == 1 ? "" : "s");
        } else {
            summary(in.rules_path, in.rules);
            printf("%s: one to one on %zu targets and %zu sources\n", in.rules_path,
                   graft_plan_count(p), graft_model_count(graft_plan_source(p)));
        }
    }
done:
    if (fflush(stdout) != 0) rc = EXIT_BAD;
    plan_inputs_free(&in);
    return rc;
}
