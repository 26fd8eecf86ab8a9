/* cmd_diff.c - `graft diff`: prove a transplant, tensor by tensor. */
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "planload.h"

static const char usage[] =
    "usage: graft diff [-r RULES] [--reverse] [--strict] [--atol X] [--html FILE] A B\n"
    "Pair A's tensors with B's through RULES (A is the source side; identical names\n"
    "without -r), run the op chains on A, and print per B tensor the largest\n"
    "|a - b| (float64; integers exactly; other dtypes equal or not).  Exit status 1\n"
    "when a difference exceeds X (default 0), shapes disagree, a tensor is unpaired\n"
    "or the rules report an error.\n"
    "  -r, --rules RULES   the mapping file\n"
    "  --reverse           RULES were written for the opposite direction\n"
    "  --strict            every warning is an error (rules that matched nothing, a\n"
    "                      source feeding several targets without take, unused\n"
    "                      sources under `unused: warn`)\n"
    "  --atol X            largest difference accepted (default 0)\n"
    "  --html FILE         also write FILE: one self-contained page with every B\n"
    "                      tensor's max abs and max relative error, worst first,\n"
    "                      both models as trees, traces and per-tensor statistics\n"
    "  --a-format NAME, --b-format NAME   read as this format\n";

typedef struct diff_tally {
    size_t compared, over, unpaired, mismatched;
} diff_tally;

static void line(const char *status, const char *value, const char *name, const char *note)
{
    printf("%-9s %-12s ", status, value);
    fputs(name, stdout);
    if (note) printf("  (%s)", note);
    putchar('\n');
}

/* One B tensor: 0 compared (tally updated), -1 a failure that is not about the data. */
static int diff_entry(const graft_plan *p, size_t i, double atol, diff_tally *t, graft_ctx *ctx)
{
    const char *name = graft_tensor_name(graft_plan_entry_target(p, i));
    size_t nsrc = graft_plan_entry_nsources(p, i);
    graft_diff_result r;
    char val[64];
    int rc;

    if (nsrc == 0) {
        if (graft_plan_entry_ignored(p, i)) return 0;
        t->unpaired++;
        line("unpaired", "-", name, "only in B");
        return 0;
    }
    if (graft_plan_entry_status(p, i) == GRAFT_PLAN_ERROR) {
        t->mismatched++;
        line("mismatch", "-", name, graft_plan_entry_message(p, i));
        return 0;
    }
    /* MISMATCH entries still compare when only the dtypes differ. */
    rc = graft_plan_diff(p, i, &r, ctx);
    if (rc == GRAFT_ESHAPE) {
        t->mismatched++;
        line("mismatch", "-", name, graft_ctx_message(ctx));
        graft_ctx_clear(ctx);
        return 0;
    }
    if (rc < 0) return -1;
    t->compared++;
    /* Name A's side when the pairing renamed it. */
    const char *a_name = graft_tensor_name(graft_plan_entry_source(p, i, 0));
    char from[256];
    snprintf(from, sizeof from, "from %.200s%s", a_name, nsrc > 1 ? " and others" : "");
    const char *note = nsrc > 1 || strcmp(a_name, name) ? from : NULL;
    if (r.numeric) {
        snprintf(val, sizeof val, "%.6g", r.max_abs);
        if (!(r.max_abs <= atol)) t->over++;
        line(r.max_abs <= atol ? "ok" : "over", val, name, note);
    } else {
        if (!r.equal) t->over++;
        line(r.equal ? "ok" : "over", r.equal ? "equal" : "differs", name, note);
    }
    return 0;
}

static int parse_atol(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < 0) return -1;
    *out = v;
    return 0;
}

int cmd_diff(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"rules", required_argument, NULL, OPT_RULES},
        {"reverse", no_argument, NULL, OPT_REVERSE},
        {"strict", no_argument, NULL, OPT_STRICT},
        {"atol", required_argument, NULL, 't'},
        {"html", required_argument, NULL, OPT_HTML},
        {"a-format", required_argument, NULL, OPT_SOURCE_FORMAT},
        {"b-format", required_argument, NULL, OPT_SKELETON_FORMAT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* A is the source side of the plan, B its target. */
    plan_inputs in = PLAN_INPUTS_INIT;
    double atol = 0;
    const char *html = NULL;
    diff_tally t = {0};
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "r:h", longopts, NULL)) != -1) {
        if (plan_inputs_option(&in, c, optarg)) continue;
        switch (c) {
        case 't':
            if (parse_atol(optarg, &atol) < 0) {
                errorf("--atol: '%s' is not a finite number >= 0", optarg);
                return EXIT_BAD;
            }
            break;
        case OPT_HTML: html = optarg; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: fputs(usage, stderr); return EXIT_BAD;
        }
    }
    if (!plan_inputs_operands(&in, argc, argv, 2, usage)) return EXIT_BAD;
    if ((rc = plan_inputs_load(&in)) != EXIT_OK) goto cleanup;
    rc = EXIT_BAD;
    const graft_plan *p = in.plan;
    /* Plan-level errors (an `expect: N` not met...) make the pairing suspect. */
    size_t rule_errors = 0;
    for (size_t i = 0; i < graft_plan_problem_count(p); i++) {
        bool is_error;
        const char *msg = graft_plan_problem(p, i, &is_error);
        if (is_error) {
            errorf("%s", msg);
            rule_errors++;
        }
    }
    for (size_t i = 0; i < graft_plan_count(p); i++) {
        if (diff_entry(p, i, atol, &t, in.ctx) < 0) {
            fflush(stdout);
            errorf("%s", graft_ctx_message(in.ctx));
            goto cleanup;
        }
    }
    for (size_t i = 0; i < graft_plan_unused_count(p); i++) {
        t.unpaired++;
        line("unpaired", "-", graft_tensor_name(graft_plan_unused(p, i)), "only in A");
    }
    printf("%zu compared, %zu over --atol %g, %zu mismatched, %zu unpaired\n", t.compared,
           t.over, atol, t.mismatched, t.unpaired);
    if (fflush(stdout) != 0) goto cleanup;
    if (html && plan_write_html(&in, html, true, argc, argv) != EXIT_OK) goto cleanup;
    rc = t.over || t.mismatched || t.unpaired || rule_errors ? EXIT_PLAN : EXIT_OK;
cleanup:
    plan_inputs_free(&in);
    return rc;
}
