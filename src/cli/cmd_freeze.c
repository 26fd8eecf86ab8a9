/* cmd_freeze.c - `graft freeze`: a graph plus a checkpoint -> one deployable .pb. */
#include "planload.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: graft freeze --graph GRAPH --checkpoint CKPT --outputs NAME[,NAME] -o OUT.pb\n"
    "                    [--rules RULES] [--no-clobber] [--json]\n"
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
    "  -r, --rules RULES    map checkpoint names (source) to variable names (target)\n"
    "  --no-clobber         refuse to replace an existing OUT.pb\n"
    "  --json               {\"output\", \"format\", \"graph\", \"checkpoint\", \"outputs\",\n"
    "                       \"frozen\"} (schemas/cli/freeze.schema.json)\n";

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

static void problem(const char *message, void *payload)
{
    (void)payload;
    errorf("%s", message);
}

const cli_option freeze_options[] = {
    {"graph", 0, 'g', CLI_FILE},      {"checkpoint", 0, 'c', CLI_FILE},
    {"outputs", 0, 'O', CLI_TEXT},    {"output", 'o', 'o', CLI_FILE},
    {"rules", 'r', 'r', CLI_RULES},   {"no-clobber", 0, OPT_NO_CLOBBER, CLI_FLAG},
    {"json", 0, OPT_JSON, CLI_FLAG},  {"help", 'h', 'h', CLI_FLAG},
    {NULL, 0, 0, 0},
};

int cmd_freeze(int argc, char **argv)
{
    graft_freeze_options fo = GRAFT_FREEZE_OPTIONS_INIT;
    const char *graph = NULL, *ckpt = NULL, *outputs = NULL, *out = NULL, *rules_path = NULL;
    graft_rules *rules = NULL;
    char **outs = NULL;
    size_t nouts = 0, nvars = 0;
    graft_ctx *ctx = NULL;
    bool json = false, no_clobber = false;
    char *text = NULL;
    int c, rc = EXIT_BAD;

    optind = 1;
    while ((c = cli_getopt(argc, argv, freeze_options)) != -1) {
        switch (c) {
        case 'g': graph = optarg; break;
        case 'c': ckpt = optarg; break;
        case 'O': outputs = optarg; break;
        case 'o': out = optarg; break;
        case 'r': rules_path = rules_named(optarg); break;
        case OPT_JSON: json = true; break;
        case OPT_NO_CLOBBER: no_clobber = true; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: fputs(usage, stderr); return EXIT_BAD;
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        return EXIT_BAD;
    }
    /* Name what is missing rather than repeat the usage. */
    if (!graph || !ckpt || !outputs || !out || !*out) {
        errorf("freeze: %s is required (%s); see 'graft freeze --help'",
               !graph ? "--graph GRAPH" : !ckpt ? "--checkpoint CKPT"
               : !outputs ? "--outputs NAME[,NAME]" : "-o OUT.pb",
               !graph ? "the GraphDef, .meta or SavedModel to freeze"
               : !ckpt ? "where the variables' values come from"
               : !outputs ? "the output nodes to keep: freeze_graph's output_node_names"
               : "the frozen GraphDef to write");
        return EXIT_BAD;
    }
    if (no_clobber && refuse_existing(NULL, out)) return EXIT_BAD;
    warn_extension(out, "tf-graphdef");
    if (split(outputs, &outs, &nouts) < 0 || nouts == 0) {
        errorf("--outputs: no node names");
        goto cleanup;
    }
    if (!(ctx = graft_ctx_new())) {
        errorf("out of memory");
        goto cleanup;
    }
    if (rules_path && graft_rules_load(&rules, rules_path, ctx) < 0) goto fail;
    fo.rules = rules;
    fo.problem = problem;
    if (graft_freeze(graph, ckpt, (const char *const *)outs, nouts, out, &fo, &nvars, ctx) < 0) {
        if (graft_ctx_status(ctx) == GRAFT_EPLAN) rc = EXIT_PLAN;
        goto fail;
    }
    if (json) {
        if (print_owned(graft_freeze_json(&text, graph, ckpt, (const char *const *)outs, nouts, out,
                                          nvars, ctx), &text) < 0)
            goto fail;
    } else {
        printf("%s: %zu variables frozen\n", out, nvars);
    }
    rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_BAD;
    goto cleanup;
fail:
    errorf("%s", graft_ctx_message(ctx));
cleanup:
    graft_rules_free(rules);
    free_outputs(outs, nouts);
    graft_ctx_free(ctx);
    return rc;
}
