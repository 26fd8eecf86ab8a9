/* planload.c - the options, inputs and plan printing that plan, explain,
 * check, apply and diff share. */
#include "planload.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

bool plan_inputs_option(plan_inputs *in, int c, const char *arg)
{
    switch (c) {
    case OPT_RULES: in->rules_path = arg; return true;
    case OPT_REVERSE: in->opts.reverse = true; return true;
    case OPT_STRICT: in->opts.strict = true; return true;
    case OPT_SOURCE_FORMAT: in->opts.source_format = arg; return true;
    case OPT_SKELETON_FORMAT: in->opts.skeleton_format = arg; return true;
    default: return false;
    }
}

bool plan_inputs_operands(plan_inputs *in, int argc, char **argv, int n, const char *usage)
{
    if (optind + n != argc) {
        fputs(usage, stderr);
        return false;
    }
    in->source = argv[optind];
    in->skeleton = argv[optind + 1];
    return true;
}

int plan_inputs_load(plan_inputs *in)
{
    if (!(in->ctx = graft_ctx_new())) {
        errorf("out of memory");
        return EXIT_BAD;
    }
    if (in->rules_path && !strcmp(in->rules_path, "auto")) {
        int rc = rules_auto(in);
        if (rc != EXIT_OK) return rc;
    }
    if (in->rules_path && graft_rules_load(&in->rules, in->rules_path, in->ctx) < 0) goto fail;
    if (graft_plan_open(&in->plan, in->rules, in->source, in->skeleton, &in->opts, in->ctx) < 0)
        goto fail;
    return EXIT_OK;
fail:
    errorf("%s", graft_ctx_message(in->ctx));
    return EXIT_BAD;
}

void plan_inputs_free(plan_inputs *in)
{
    graft_plan_free(in->plan);
    graft_rules_free(in->rules);
    graft_ctx_free(in->ctx);
}

void plan_report_diags(const graft_plan *p)
{
    for (size_t i = 0; i < graft_plan_problem_count(p); i++) {
        bool is_error;
        const char *msg = graft_plan_problem(p, i, &is_error);
        if (is_error)
            errorf("%s", msg);
        else
            warnf("%s", msg);
    }
}

void plan_op_print(FILE *f, const graft_op *op, graft_ctx *ctx)
{
    char *s = NULL;
    if (graft_op_json(&s, op, ctx) < 0) {
        fputs("null", f);
        return;
    }
    fputs(s, f);
    free(s);
}

void plan_shape_text(FILE *f, const graft_tensor *t)
{
    print_shape(f, t, ",");
    if (graft_tensor_unsupported(t))
        fprintf(f, " unsupported (stored as %s)", graft_tensor_unsupported(t));
    else
        fprintf(f, " %s", graft_dtype_name(graft_tensor_dtype(t)));
}
