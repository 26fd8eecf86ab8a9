/* cmd_apply.c - `graft apply`: write the skeleton's format with the source's weights. */
#include "planload.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: graft apply [-r RULES] [-o OUT] [--no-clobber] [--reverse] [--strict] [--manifest FILE]\n"
    "                   [-q] [--json] SOURCE SKELETON\n"
    "Write OUT in SKELETON's format: every skeleton tensor filled from SOURCE through\n"
    "RULES (by identical names without -r), or kept where the rules' policy allows;\n"
    "everything else SKELETON holds is preserved.  Nothing is written when the plan\n"
    "is incomplete (see 'graft plan').  A TensorFlow checkpoint OUT is OUT.index and\n"
    "OUT.data-*, and the `checkpoint` state file beside them (TensorFlow's pointer\n"
    "to a folder's latest checkpoint) is written too, naming OUT.\n"
    "  -r, --rules RULES   the mapping file\n"
    "  -o, --output OUT    output path (default: SKELETON with '.grafted' before its\n"
    "                      extension); never SOURCE or SKELETON; a warning when its\n"
    "                      extension belongs to another format than SKELETON's\n"
    "  --no-clobber        refuse to replace an existing OUT (or any file it is made of)\n"
    "  --reverse           RULES were written for the opposite direction\n"
    "  --strict            every warning is an error (rules that matched nothing, a\n"
    "                      source feeding several targets without take, unused\n"
    "                      sources under `unused: warn`)\n"
    "  --manifest FILE     also write a JSON provenance record to FILE\n"
    "  -q, --quiet         no progress line (shown only when stderr is a terminal)\n"
    "  --json              {\"output\", \"format\", \"files\", \"source\", \"skeleton\",\n"
    "                      \"rules\", \"transplanted\", \"kept\", \"entries\": [{\"target\",\n"
    "                      \"status\", \"from\"}], ...} (schemas/cli/apply.schema.json)\n"
    "  --source-format NAME, --skeleton-format NAME   read as this format\n"
    "  --memory-budget SIZE  a tensor larger than SIZE that an op chain reads out of\n"
    "                      order goes through a temporary file (default 64MiB)\n"
    "  --no-sync           do not wait for OUT to reach the disk (fsync) before\n"
    "                      renaming it into place: faster, and still whole or absent\n"
    "                      to other programs, but a crash soon after may lose it\n";

/* Print the plan's warnings and errors. */
static void report_plan(const graft_plan *p)
{
    plan_report_diags(p);
    for (size_t i = 0; i < graft_plan_count(p); i++) {
        graft_plan_status st = graft_plan_entry_status(p, i);
        const char *msg = graft_plan_entry_message(p, i);
        if (st == GRAFT_PLAN_OK) continue;
        if (st == GRAFT_PLAN_KEPT) {
            /* a tensor graft cannot read is copied as the skeleton holds it: no warning */
            if (msg && !graft_tensor_unsupported(graft_plan_entry_target(p, i)))
                warnf("%s (kept: policy mismatch: keep)", msg);
        } else if (msg) {
            errorf("%s", msg);
        } else {
            errorf("target '%s': %s", graft_tensor_name(graft_plan_entry_target(p, i)),
                   graft_plan_status_name(st));
        }
    }
}

const cli_option apply_options[] = {
    PLAN_INPUT_OPTIONS,
    {"output", 'o', 'o', CLI_FILE},
    {"manifest", 0, 'm', CLI_FILE},
    {"no-clobber", 0, OPT_NO_CLOBBER, CLI_FLAG},
    {"memory-budget", 0, OPT_BUDGET, CLI_TEXT},
    {"no-sync", 0, OPT_NO_SYNC, CLI_FLAG},
    {"quiet", 'q', 'q', CLI_FLAG},
    {"json", 0, OPT_JSON, CLI_FLAG},
    {"help", 'h', 'h', CLI_FLAG},
    {NULL, 0, 0, 0},
};

static int parse(plan_inputs *a, const char **out, const char **manifest, cli_write_flags *fl,
                 int argc, char **argv)
{
    int c, k;
    optind = 1;
    while ((c = cli_getopt(argc, argv, apply_options)) != -1) {
        if (plan_inputs_option(a, c, optarg)) continue;
        if ((k = cli_write_flag(c, optarg, fl)) != 0) {
            if (k < 0) return -1;
            continue;
        }
        switch (c) {
        case 'o': *out = optarg; break;
        case 'm': *manifest = optarg; break;
        case 'h': fputs(usage, stdout); return 1;
        default: fputs(usage, stderr); return -1;
        }
    }
    if ((*out && !**out) || (*manifest && !**manifest)) {
        fputs(usage, stderr);
        return -1;
    }
    return plan_inputs_operands(a, argc, argv, 2, usage) ? 0 : -1;
}

/* The `checkpoint` file graft_plan_output_files lists after a TF checkpoint's own. */
static bool is_state_file(const char *path)
{
    const char *base = strrchr(path, '/');
    return !strcmp(base ? base + 1 : path, "checkpoint");
}

int cmd_apply(int argc, char **argv)
{
    plan_inputs in = PLAN_INPUTS_INIT;
    graft_apply_options ao = GRAFT_APPLY_OPTIONS_INIT;
    graft_apply_stats stats = {0};
    const char *out_opt = NULL;
    char *out = NULL;
    cli_progress prog = {.command = "apply"};
    cli_write_flags fl = {0};
    char **files = NULL, *text = NULL;
    int rc, k;

    if ((k = parse(&in, &out_opt, &ao.manifest, &fl, argc, argv)) != 0)
        return k > 0 ? EXIT_OK : EXIT_BAD;
    if ((rc = plan_inputs_load(&in)) != EXIT_OK) goto cleanup;
    graft_ctx_set_memory_budget(in.ctx, fl.budget);
    graft_ctx_set_sync(in.ctx, !fl.no_sync);
    rc = EXIT_BAD;
    if (out_opt ? !(out = strdup(out_opt)) : graft_default_output(&out, in.skeleton, in.ctx) < 0) {
        if (out_opt) errorf("out of memory allocating the output path");
        else errorf("%s", graft_ctx_message(in.ctx));
        goto cleanup;
    }
    if (graft_check_outputs(in.plan, out, ao.manifest, in.rules_path, in.ctx) < 0 ||
        graft_plan_output_files(&files, in.plan, out, in.ctx) < 0)
        goto fail;
    if (fl.no_clobber && refuse_existing(files, ao.manifest)) goto cleanup;
    warn_extension(out, graft_model_format(graft_plan_skeleton(in.plan)));
    report_plan(in.plan);
    if (!fl.quiet && isatty(STDERR_FILENO)) {
        const graft_model *skel = graft_plan_skeleton(in.plan);
        for (size_t i = 0; i < graft_model_count(skel); i++)
            prog.total_bytes += graft_tensor_nbytes(graft_model_tensor(skel, i));
        prog.start = cli_now();
        ao.progress = cli_show_progress;
        ao.payload = &prog;
    }
    ao.rules_path = in.rules_path;
    if (graft_plan_apply(in.plan, out, &ao, &stats, in.ctx) < 0) {
        if (graft_ctx_status(in.ctx) == GRAFT_EPLAN) rc = EXIT_PLAN;
        goto fail;
    }
    if (fl.json) {
        if (print_owned(graft_apply_json(&text, in.plan, out, &ao, &stats, in.ctx), &text) < 0)
            goto fail;
    } else {
        printf("%s: %zu tensors transplanted, %zu kept from the skeleton\n", out,
               stats.transplanted, stats.kept);
        for (size_t i = 1; files[i]; i++)
            if (is_state_file(files[i]))
                printf("%s: TensorFlow's checkpoint state file, written to name %s as the "
                       "folder's latest checkpoint\n", files[i], files[0]);
    }
    rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_BAD;
    goto cleanup;
fail:
    if (prog.open) fputc('\n', stderr);
    errorf("%s", graft_ctx_message(in.ctx));
cleanup:
    free(files);
    free(out);
    plan_inputs_free(&in);
    return rc;
}
