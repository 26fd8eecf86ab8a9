/* cmd_freeze.c - `graft freeze`: a graph plus a checkpoint -> one deployable .pb. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../apply/apply.h"
#include "../core/error.h"
#include "tf_freeze.h"
#include "planload.h"

static const char usage[] =
    "usage: graft freeze --graph GRAPH --checkpoint CKPT --outputs NAME[,NAME] -o OUT.pb\n"
    "                    [--rules RULES]\n"
    "What TensorFlow's freeze_graph does: the nodes the outputs need, with every\n"
    "variable (VariableV2, VarHandleOp and its ReadVariableOps) turned into a Const\n"
    "holding the checkpoint's value, devices cleared.  Exit 0 when OUT.pb is\n"
    "written, 1 when a variable has no value in CKPT (nothing written), 2 on bad\n"
    "input.\n"
    "  --graph GRAPH        a binary GraphDef (.pb), a MetaGraphDef (.meta) or a\n"
    "                       SavedModel folder\n"
    "  --checkpoint CKPT    where the values come from (any format graft reads)\n"
    "  --outputs NAMES      comma-separated output node names\n"
    "  -o, --output OUT     the frozen GraphDef\n"
    "  -r, --rules RULES    map checkpoint names (source) to variable names (target)\n";

static void free_outputs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

static int split(const char *s, char ***out, size_t *n)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    *out = calloc(cap, sizeof **out);
    *n = 0;
    if (!*out) return -1;
    while (*s) {
        size_t len = strcspn(s, ",");
        if (len) {
            (*out)[*n] = strndup(s, len);
            if (!(*out)[(*n)++]) return -1;
        }
        s += len + (s[len] == ',');
    }
    return 0;
}

/* Items for the frozen skeleton: variables from the plan, other Consts kept. */
static int items_for(const plan_inputs *in, char **vars, size_t nvars,
                     graft_apply_item **out)
{
    const graft_plan *p = in->plan;
    graft_apply_item *items = calloc(p->nentries ? p->nentries : 1, sizeof *items);
    int bad = 0;
    if (!items) return -1;
    for (size_t v = 0; v < nvars; v++) {
        const graft_plan_entry *e = graft_plan_find(p, vars[v]);
        if (!e) {
            errorf("variable '%s': not in the frozen graph", vars[v]);
            bad++;
            continue;
        }
        if (e->status != GRAFT_PLAN_OK) {
            errorf("variable '%s': no value in the checkpoint%s%s", vars[v],
                   e->message ? ": " : "", e->message ? e->message : "");
            bad++;
            continue;
        }
        items[e->target].nsrc = e->nsources;
        items[e->target].src = e->sources;
        items[e->target].ops = e->ops;
        items[e->target].nops = e->nops;
    }
    if (bad) {
        free(items);
        return 1;
    }
    *out = items;
    return 0;
}

int cmd_freeze(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"graph", required_argument, NULL, 'g'},   {"checkpoint", required_argument, NULL, 'c'},
        {"outputs", required_argument, NULL, 'O'}, {"output", required_argument, NULL, 'o'},
        {"rules", required_argument, NULL, 'r'},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    plan_inputs in = PLAN_INPUTS_INIT;
    const char *graph = NULL, *ckpt = NULL, *outputs = NULL, *out = NULL;
    char **outs = NULL, **vars = NULL, *tmp = NULL;
    size_t nouts = 0, nvars = 0;
    graft_apply_item *items = NULL;
    graft_apply_plan ap = {0};
    graft_ctx *ctx = NULL;
    int c, rc = EXIT_BAD, k;

    optind = 1;
    while ((c = getopt_long(argc, argv, "o:r:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'g': graph = optarg; break;
        case 'c': ckpt = optarg; break;
        case 'O': outputs = optarg; break;
        case 'o': out = optarg; break;
        case 'r': in.rules_path = optarg; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: fputs(usage, stderr); return EXIT_BAD;
        }
    }
    if (optind != argc || !graph || !ckpt || !outputs || !out || !*out) {
        fputs(usage, stderr);
        return EXIT_BAD;
    }
    if (split(outputs, &outs, &nouts) < 0 || nouts == 0) {
        errorf("--outputs: no node names");
        goto cleanup;
    }
    if (!(ctx = graft_ctx_new()) || !(tmp = malloc(strlen(out) + 32))) {
        errorf("out of memory");
        goto cleanup;
    }
    /* the zero-filled frozen graph, beside OUT, removed at the end */
    sprintf(tmp, "%s.graft-freeze-%ld.pb", out, (long)getpid());
    if (graft_tf__freeze_skeleton(graph, (const char *const *)outs, nouts, tmp, &vars, &nvars,
                                  ctx) < 0) {
        errorf("%s", graft_ctx_message(ctx));
        goto cleanup;
    }
    in.source = ckpt;
    in.skeleton = tmp;
    in.skel_opts.format = "tf-graphdef";
    if ((rc = plan_inputs_load(&in)) != EXIT_OK) goto cleanup;
    rc = EXIT_BAD;
    {
        const graft_model *inputs[2] = {in.src, in.skel};
        if (graft_apply_check_output(out, inputs, 2, in.ctx) < 0) {
            errorf("%s", graft_ctx_message(in.ctx));
            goto cleanup;
        }
    }
    if ((k = items_for(&in, vars, nvars, &items)) != 0) {
        if (k > 0) {
            errorf("nothing written");
            rc = EXIT_PLAN;
        }
        goto cleanup;
    }
    ap.items = items;
    ap.count = in.plan->nentries;
    if (graft_apply_write(in.src, in.skel, &ap, out, in.ctx) < 0) {
        errorf("%s", graft_ctx_message(in.ctx));
        goto cleanup;
    }
    printf("%s: %zu variables frozen\n", out, nvars);
    rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_BAD;
cleanup:
    if (tmp) unlink(tmp);
    free(items);
    plan_inputs_free(&in);
    graft_tf__names_free(vars, nvars);
    free_outputs(outs, nouts);
    free(tmp);
    graft_ctx_free(ctx);
    return rc;
}
