/* cmd_apply.c - `graft apply`: write the skeleton's format with the source's weights. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../apply/apply.h"
#include "../core/error.h"
#include "planload.h"

static const char usage[] =
    "usage: graft apply [-r RULES] [-o OUT] [--reverse] [--strict] [--manifest FILE] [-q] SOURCE SKELETON\n"
    "Write OUT in SKELETON's format: every skeleton tensor filled from SOURCE through\n"
    "RULES (by identical names without -r), or kept where the rules' policy allows;\n"
    "everything else SKELETON holds is preserved.  Nothing is written when the plan\n"
    "is incomplete (see 'graft plan').\n"
    "  -r, --rules RULES   the mapping file\n"
    "  -o, --output OUT    output path (default: SKELETON with '.grafted' before its\n"
    "                      extension); never SOURCE or SKELETON\n"
    "  --reverse           RULES were written for the opposite direction\n"
    "  --strict            every warning is an error (rules that matched nothing, a\n"
    "                      source feeding several targets without take, unused\n"
    "                      sources under `unused: warn`)\n"
    "  --manifest FILE     also write a JSON provenance record to FILE\n"
    "  -q, --quiet         no progress line (shown only when stderr is a terminal)\n"
    "  --source-format NAME, --skeleton-format NAME   read as this format\n";

/* The progress line: redrawn in place at most 10 times a second. */
typedef struct progress {
    uint64_t total_bytes;
    double start, last;
    bool open; /* a line without its newline is on the terminal */
} progress;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void show_progress(size_t done, size_t total, uint64_t bytes, void *payload)
{
    progress *p = payload;
    double t = now(), mb = 1024.0 * 1024.0;
    if (done < total && t - p->last < 0.1) return;
    p->last = t;
    p->open = done < total;
    fprintf(stderr, "\rgraft apply: %zu/%zu tensors, %.1f/%.1f MiB, %.0f MiB/s\033[K%s", done,
            total, bytes / mb, p->total_bytes / mb,
            t > p->start ? bytes / mb / (t - p->start) : 0.0, done == total ? "\n" : "");
}

/* Print the plan's warnings and errors; returns the number of errors. */
static size_t report_plan(const graft_plan *p)
{
    plan_report_diags(p);
    for (size_t i = 0; i < p->nentries; i++) {
        const graft_plan_entry *e = &p->entries[i];
        if (e->status == GRAFT_PLAN_OK) continue;
        if (e->status == GRAFT_PLAN_KEPT) {
            if (e->message) warnf("%s (kept: policy mismatch: keep)", e->message);
        } else if (e->message) {
            errorf("%s", e->message);
        } else {
            errorf("target '%s': %s", graft_tensor_name(graft_model_tensor(p->target, i)),
                   graft_plan_status_name(e->status));
        }
    }
    return p->errors;
}

static bool same_file(const char *a, const char *b)
{
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* The plan as apply's items: transplanted entries keep their sources, the rest
 * (kept by policy or ignored) keep the skeleton's bytes. */
static graft_apply_item *items_of(const graft_plan *p)
{
    graft_apply_item *items = calloc(p->nentries ? p->nentries : 1, sizeof *items);
    if (!items) return NULL;
    for (size_t i = 0; i < p->nentries; i++) {
        const graft_plan_entry *e = &p->entries[i];
        if (e->status != GRAFT_PLAN_OK) continue;
        items[i].nsrc = e->nsources;
        items[i].src = e->sources;
        items[i].ops = e->ops;
        items[i].nops = e->nops;
    }
    return items;
}

/* Items for the whole skeleton from plan p of its sub-tree `prefix`: the
 * tensors outside it (optimizer state...) keep their bytes. */
static graft_apply_item *items_of_subtree(const graft_plan *p, const graft_model *skel,
                                          const char *prefix)
{
    size_t n = strlen(prefix);
    graft_apply_item *items = calloc(graft_model_count(skel) ? graft_model_count(skel) : 1,
                                     sizeof *items);
    if (!items) return NULL;
    for (size_t i = 0; i < graft_model_count(skel); i++) {
        const char *name = graft_tensor_name(graft_model_tensor(skel, i));
        const graft_plan_entry *e;
        if (strncmp(name, prefix, n) || name[n] != '.') continue;
        e = graft_plan_find(p, name + n + 1);
        if (!e || e->status != GRAFT_PLAN_OK) continue;
        items[i].nsrc = e->nsources;
        items[i].src = e->sources;
        items[i].ops = e->ops;
        items[i].nops = e->nops;
    }
    return items;
}

static int parse(plan_inputs *a, const char **out, const char **manifest, bool *quiet, int argc,
                 char **argv)
{
    static const struct option longopts[] = {
        {"rules", required_argument, NULL, OPT_RULES},
        {"output", required_argument, NULL, 'o'},
        {"reverse", no_argument, NULL, OPT_REVERSE},
        {"strict", no_argument, NULL, OPT_STRICT},
        {"manifest", required_argument, NULL, 'm'},
        {"source-format", required_argument, NULL, OPT_SOURCE_FORMAT},
        {"skeleton-format", required_argument, NULL, OPT_SKELETON_FORMAT},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:o:qh", longopts, NULL)) != -1) {
        if (plan_inputs_option(a, c, optarg)) continue;
        switch (c) {
        case 'o': *out = optarg; break;
        case 'm': *manifest = optarg; break;
        case 'q': *quiet = true; break;
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

int cmd_apply(int argc, char **argv)
{
    plan_inputs in = PLAN_INPUTS_INIT;
    const char *out_opt = NULL, *manifest = NULL;
    graft_apply_item *items = NULL;
    graft_apply_plan ap = {0};
    const graft_plan *plan;
    char *out = NULL;
    progress prog = {0};
    bool quiet = false;
    size_t kept = 0;
    int rc, k;

    if ((k = parse(&in, &out_opt, &manifest, &quiet, argc, argv)) != 0)
        return k > 0 ? EXIT_OK : EXIT_BAD;
    if ((rc = plan_inputs_load(&in)) != EXIT_OK) goto cleanup;
    rc = EXIT_BAD;
    if (out_opt) {
        if (!(out = strdup(out_opt))) {
            graft_error_oom(in.ctx, "the output path");
            goto fail;
        }
    } else if (graft_apply_default_output(&out, in.skeleton, in.ctx) < 0) {
        goto fail;
    }
    {
        const graft_model *inputs[2] = {in.src, in.skel};
        if (graft_apply_check_output(out, inputs, 2, in.ctx) < 0) goto fail;
        if (manifest && graft_apply_check_output(manifest, inputs, 2, in.ctx) < 0) goto fail;
        if (manifest && (!strcmp(manifest, out) || same_file(manifest, out))) {
            errorf("--manifest and the output are the same file: %s", out);
            goto cleanup;
        }
        if (in.rules_path && (same_file(out, in.rules_path) ||
                              (manifest && same_file(manifest, in.rules_path)))) {
            errorf("%s: the output would overwrite the rules file", in.rules_path);
            goto cleanup;
        }
    }
    plan = plan_inputs_plan(&in);
    if (report_plan(plan)) {
        errorf("the plan has %zu error%s; nothing written (see 'graft plan')", plan->errors,
               plan->errors == 1 ? "" : "s");
        rc = EXIT_PLAN;
        goto cleanup;
    }
    items = in.sub ? items_of_subtree(in.sub, in.skel, in.rules->select) : items_of(plan);
    if (!items) {
        graft_error_oom(in.ctx, "the plan");
        goto fail;
    }
    ap.items = items;
    ap.count = graft_model_count(in.skel);
    for (size_t i = 0; i < ap.count; i++) kept += items[i].nsrc == 0;
    bool show = !quiet && isatty(STDERR_FILENO);
    if (show) {
        for (size_t i = 0; i < ap.count; i++)
            prog.total_bytes += graft_tensor_nbytes(graft_model_tensor(in.skel, i));
        prog.start = now();
    }
    if (graft_apply_write_progress(in.src, in.skel, &ap, out, show ? show_progress : NULL, &prog,
                                   in.ctx) < 0)
        goto fail;
    if (manifest) {
        graft_manifest_info info = {.source = in.src, .skeleton = in.skel,
                                    .rules_path = in.rules_path, .reverse = in.reverse,
                                    .plan = &ap, .out_path = out};
        if (graft_manifest_write(manifest, &info, in.ctx) < 0) goto fail;
    }
    printf("%s: %zu tensors transplanted, %zu kept from the skeleton\n", out, ap.count - kept,
           kept);
    rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_BAD;
    goto cleanup;
fail:
    if (prog.open) fputc('\n', stderr);
    errorf("%s", graft_ctx_message(in.ctx));
cleanup:
    free(items);
    free(out);
    plan_inputs_free(&in);
    return rc;
}
