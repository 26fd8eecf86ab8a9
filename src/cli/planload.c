/* planload.c - the options, inputs and plan printing that plan, explain,
 * check, apply and diff share. */
#include "planload.h"

#include <getopt.h>
#include <inttypes.h>
#include <string.h>

bool plan_inputs_option(plan_inputs *in, int c, const char *arg)
{
    switch (c) {
    case OPT_RULES: in->rules_path = arg; return true;
    case OPT_REVERSE: in->reverse = true; return true;
    case OPT_STRICT: in->strict = true; return true;
    case OPT_SOURCE_FORMAT: in->src_opts.format = arg; return true;
    case OPT_SKELETON_FORMAT: in->skel_opts.format = arg; return true;
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

/* Reversed, `select:` names a sub-tree of the skeleton: plan onto that
 * sub-tree alone, so that its names pair as they did forward. */
static int load_subtree(plan_inputs *in)
{
    graft_open_options o = in->skel_opts;
    graft_plan_options po = GRAFT_PLAN_OPTIONS_INIT;
    if (!in->rules || !in->reverse || !in->rules->select || !*in->rules->select) return 0;
    o.select = in->rules->select;
    po.reverse = true;
    po.strict = in->strict;
    if (graft_model_open(&in->sel, in->skeleton, &o, in->ctx) < 0) return -1;
    return graft_plan_build(&in->sub, in->rules, in->src, in->sel, &po, in->ctx);
}

int plan_inputs_load(plan_inputs *in)
{
    graft_plan_options po = GRAFT_PLAN_OPTIONS_INIT;
    if (!(in->ctx = graft_ctx_new())) {
        errorf("out of memory");
        return EXIT_BAD;
    }
    if (in->rules_path && graft_rules_load(&in->rules, in->rules_path, in->ctx) < 0) goto fail;
    /* select names the forward source's sub-tree; reversed, that is the
     * skeleton, which stays whole (as in apply). */
    if (in->rules && !in->reverse && !in->src_opts.select) in->src_opts.select = in->rules->select;
    if (graft_model_open(&in->src, in->source, &in->src_opts, in->ctx) < 0) goto fail;
    if (graft_model_open(&in->skel, in->skeleton, &in->skel_opts, in->ctx) < 0) goto fail;
    po.reverse = in->reverse;
    po.strict = in->strict;
    if (graft_plan_build(&in->plan, in->rules, in->src, in->skel, &po, in->ctx) < 0) goto fail;
    if (load_subtree(in) < 0) goto fail;
    return EXIT_OK;
fail:
    errorf("%s", graft_ctx_message(in->ctx));
    return EXIT_BAD;
}

void plan_inputs_free(plan_inputs *in)
{
    graft_plan_free(in->sub);
    graft_model_free(in->sel);
    graft_plan_free(in->plan);
    graft_model_free(in->skel);
    graft_model_free(in->src);
    graft_rules_free(in->rules);
    graft_ctx_free(in->ctx);
}

const graft_plan *plan_inputs_plan(const plan_inputs *in)
{
    return in->sub ? in->sub : in->plan;
}

const char *plan_inputs_target_name(const plan_inputs *in, const char *name)
{
    size_t n;
    if (!in->sub) return name;
    n = strlen(in->rules->select);
    return !strncmp(name, in->rules->select, n) && name[n] == '.' ? name + n + 1 : name;
}

void plan_report_diags(const graft_plan *p)
{
    for (size_t i = 0; i < p->ndiags; i++) {
        if (p->diags[i].level == GRAFT_DIAG_WARNING)
            warnf("%s", p->diags[i].message);
        else
            errorf("%s", p->diags[i].message);
    }
}

void plan_op_json(FILE *f, const graft_op *op)
{
    char buf[1024];
    graft_op_json(op, buf, sizeof buf);
    fputs(buf, f);
}

void plan_shape_text(FILE *f, const graft_shape *s)
{
    fputc('[', f);
    for (uint32_t i = 0; i < s->ndim; i++) fprintf(f, "%s%" PRId64, i ? "," : "", s->dim[i]);
    fprintf(f, "] %s", graft_dtype_name(s->dtype));
}
