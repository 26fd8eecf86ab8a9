/* cmd_diff.c - `graft diff`: prove a transplant, tensor by tensor. */
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "planload.h"

static const char usage[] =
    "usage: graft diff [-r RULES] [--reverse] [--strict] [--atol X] [--rtol Y] [--json]\n"
    "                  [--html FILE] A B\n"
    "Pair A's tensors with B's through RULES (A is the source side; identical names\n"
    "without -r), run the op chains on A, and print per B tensor the largest\n"
    "|a - b| (float64; integers exactly; other dtypes equal or not).  Exit status 1\n"
    "when an element is outside X + Y * |b|, shapes disagree, a tensor is unpaired\n"
    "or the rules report an error.\n"
    "What `diff -r` proves: that B holds what RULES make of A, so an apply followed\n"
    "the rules.  It does not prove the rules right: the layout check ('graft plan')\n"
    "and forward passes in the real frameworks do that.\n"
    "  -r, --rules RULES   the mapping file\n"
    "  --reverse           RULES were written for the opposite direction\n"
    "  --strict            every warning is an error (rules that matched nothing, a\n"
    "                      source feeding several targets without take, unused\n"
    "                      sources under `unused: warn`)\n"
    "  --atol X            absolute difference accepted (default 0)\n"
    "  --rtol Y            difference accepted relative to |b| (default 0), as\n"
    "                      numpy.isclose: |a - b| <= X + Y * |b|\n"
    "  --json              {\"tensors\": [{\"name\", \"status\", \"source\", \"max_abs\",\n"
    "                      \"max_rel\", \"over\", ...}], \"summary\": {...}}\n"
    "                      (schemas/cli/diff.schema.json)\n"
    "  --html FILE         also write FILE: one self-contained page with every B\n"
    "                      tensor's max abs and max relative error, worst first,\n"
    "                      both models as trees, traces and per-tensor statistics\n"
    "  --a-format NAME, --b-format NAME   read as this format\n";

static void line(const char *status, const char *value, const char *name, const char *note)
{
    printf("%-9s %-12s ", status, value);
    fputs(name, stdout);
    if (note) printf("  (%s)", note);
    putchar('\n');
}

static void print_entry(const graft_diff_entry *d)
{
    char val[64], from[256];
    const char *note = NULL;
    switch (d->status) {
    case GRAFT_DIFF_ONLY_B: line("unpaired", "-", d->name, "only in B"); return;
    case GRAFT_DIFF_ONLY_A: line("unpaired", "-", d->name, "only in A"); return;
    case GRAFT_DIFF_MISMATCH: line("mismatch", "-", d->name, d->message); return;
    case GRAFT_DIFF_SKIPPED: line("skipped", "-", d->name, d->message); return;
    default: break;
    }
    /* Name A's side when the pairing renamed it. */
    snprintf(from, sizeof from, "from %.200s%s", d->source, d->nsources > 1 ? " and others" : "");
    if (d->nsources > 1 || strcmp(d->source, d->name)) note = from;
    if (d->numeric)
        snprintf(val, sizeof val, "%.6g", d->max_abs);
    else
        snprintf(val, sizeof val, "%s", d->equal ? "equal" : "differs");
    line(d->status == GRAFT_DIFF_OK ? "ok" : "over", val, d->name, note);
}

static void print_text(const graft_diff_report *r, const plan_inputs *in)
{
    for (size_t i = 0; i < r->count; i++) print_entry(&r->entries[i]);
    printf("%zu compared, %zu over --atol %g", r->compared, r->over, r->atol);
    if (r->rtol > 0) printf(" --rtol %g", r->rtol);
    printf(", %zu mismatched, %zu unpaired\n", r->mismatched, r->unpaired);
    if (r->compared == 0 && r->unpaired > 0 && r->swapped_pairs > 0)
        printf("hint: nothing was compared, but %zu of B's tensors pair when B is the source: "
               "A and B look swapped (A is the side RULES rename from); try 'graft diff%s%s %s %s'\n",
               r->swapped_pairs, in->rules_path ? " -r " : "", in->rules_path ? in->rules_path : "",
               in->skeleton, in->source);
    else if (r->compared == 0 && r->unpaired > 0 && in->rules_path)
        printf("hint: nothing was compared: are A and B in the direction RULES were written "
               "for (A the source)?  Otherwise add --reverse\n");
}

static int parse_tol(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < 0) return -1;
    *out = v;
    return 0;
}

const cli_option diff_options[] = {
    {"rules", 'r', OPT_RULES, CLI_RULES},
    {"reverse", 0, OPT_REVERSE, CLI_FLAG},
    {"strict", 0, OPT_STRICT, CLI_FLAG},
    {"atol", 0, 't', CLI_TEXT},
    {"rtol", 0, 'T', CLI_TEXT},
    {"a-format", 0, OPT_SOURCE_FORMAT, CLI_FORMAT},
    {"b-format", 0, OPT_SKELETON_FORMAT, CLI_FORMAT},
    {"json", 0, OPT_JSON, CLI_FLAG},
    {"html", 0, OPT_HTML, CLI_FILE},
    {"help", 'h', 'h', CLI_FLAG},
    {NULL, 0, 0, 0},
};

int cmd_diff(int argc, char **argv)
{
    /* A is the source side of the plan, B its target. */
    plan_inputs in = PLAN_INPUTS_INIT;
    graft_diff_options o = GRAFT_DIFF_OPTIONS_INIT;
    graft_diff_report *r = NULL;
    bool json = false;
    const char *html = NULL;
    char *text = NULL;
    int c, rc;

    optind = 1;
    while ((c = cli_getopt(argc, argv, diff_options)) != -1) {
        if (plan_inputs_option(&in, c, optarg)) continue;
        switch (c) {
        case 't':
        case 'T':
            if (parse_tol(optarg, c == 't' ? &o.atol : &o.rtol) < 0) {
                errorf("--%s: '%s' is not a finite number >= 0", c == 't' ? "atol" : "rtol", optarg);
                return EXIT_BAD;
            }
            break;
        case OPT_JSON: json = true; break;
        case OPT_HTML: html = optarg; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: fputs(usage, stderr); return EXIT_BAD;
        }
    }
    if (!plan_inputs_operands(&in, argc, argv, 2, usage)) return EXIT_BAD;
    if ((rc = plan_inputs_load(&in)) != EXIT_OK) goto cleanup;
    rc = EXIT_BAD;
    /* Plan-level errors (an `expect: N` not met...) make the pairing suspect. */
    for (size_t i = 0; i < graft_plan_problem_count(in.plan); i++) {
        bool is_error;
        const char *msg = graft_plan_problem(in.plan, i, &is_error);
        if (is_error) errorf("%s", msg);
    }
    if (graft_plan_diff_all(&r, in.plan, &o, in.ctx) < 0) {
        errorf("%s", graft_ctx_message(in.ctx));
        goto cleanup;
    }
    if (json) {
        if (print_owned(graft_diff_report_json(&text, r, in.ctx), &text) < 0) {
            errorf("%s", graft_ctx_message(in.ctx));
            goto cleanup;
        }
    } else {
        print_text(r, &in);
    }
    if (fflush(stdout) != 0) goto cleanup;
    if (html && plan_write_html(&in, html, true, argc, argv) != EXIT_OK) goto cleanup;
    rc = graft_diff_report_ok(r) ? EXIT_OK : EXIT_PLAN;
cleanup:
    graft_diff_report_free(r);
    plan_inputs_free(&in);
    return rc;
}
