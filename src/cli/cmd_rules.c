/* cmd_rules.c - `graft rules`: list the shipped rules files, rank them against
 * two models, and resolve `-r auto` for the other commands. */
#include "planload.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../rules/library.h"

#ifndef GRAFT_RULES_SOURCE_DIR
#define GRAFT_RULES_SOURCE_DIR NULL
#endif
#ifndef GRAFT_RULES_INSTALL_DIR
#define GRAFT_RULES_INSTALL_DIR NULL
#endif

static const char usage[] =
    "usage: graft rules [--dir DIR]... [--match SOURCE SKELETON [--reverse]]\n"
    "List the shipped rules files (name, direction, title, description), found\n"
    "under DIR, the folders of $GRAFT_RULES_PATH (separated by colons), the source\n"
    "tree's rules/ and the installed share/graft/rules/, first found first.\n"
    "  --match             plan every file from SOURCE onto SKELETON and print the\n"
    "                      ones that fill it completely, best first (most tensors\n"
    "                      filled, fewest unused sources, fewest warnings); exit 1\n"
    "                      when none does\n"
    "  --reverse           plan the files in their opposite direction\n"
    "  --dir DIR           also search DIR (before the others)\n"
    "  --source-format NAME, --skeleton-format NAME   read as this format\n"
    "'-r auto' in plan, apply, diff and explain uses the one complete match, or\n"
    "among several the one that fills strictly more tensors than every other.\n";

#define MAX_DIRS 64

typedef struct search_path {
    const char *dirs[MAX_DIRS];
    size_t n;
    char *env; /* owned copy of $GRAFT_RULES_PATH */
} search_path;

static void path_add(search_path *s, const char *dir)
{
    if (dir && *dir && s->n < MAX_DIRS) s->dirs[s->n++] = dir;
}

/* The folders after the --dir ones: the environment, source tree, install. */
static bool path_finish(search_path *s)
{
    const char *env = getenv("GRAFT_RULES_PATH");
    if (env && *env) {
        if (!(s->env = strdup(env))) return false;
        for (char *save = NULL, *d = strtok_r(s->env, ":", &save); d; d = strtok_r(NULL, ":", &save))
            path_add(s, d);
    }
    path_add(s, GRAFT_RULES_SOURCE_DIR);
    path_add(s, GRAFT_RULES_INSTALL_DIR);
    return true;
}

static int scan(graft_rules_library **lib, search_path *s, graft_ctx *ctx)
{
    if (!path_finish(s)) {
        errorf("out of memory");
        return EXIT_BAD;
    }
    if (graft_rules_library_scan(lib, s->dirs, s->n, ctx) < 0) {
        errorf("%s", graft_ctx_message(ctx));
        return EXIT_BAD;
    }
    return EXIT_OK;
}

static void list(const graft_rules_library *lib)
{
    for (size_t i = 0; i < lib->count; i++) {
        const graft_rules_entry *e = &lib->entries[i];
        printf("%-34s %-16s %s\n", e->name, e->direction, e->title);
        if (*e->description) printf("    %s\n", e->description);
    }
}

static void print_match(FILE *f, const graft_rules_library *lib, const graft_rules_match *m)
{
    fprintf(f, "%-34s %zu/%zu filled, %zu unused, %zu warning%s  %s\n", m->name, m->filled,
           m->targets, m->unused, m->warnings, m->warnings == 1 ? "" : "s",
           lib->entries[m->entry].path);
}

/* What rules_auto and cmd_rules hold. */
typedef struct held {
    search_path s;
    graft_rules_library *lib;
    graft_rules_match *m;
    graft_ctx *ctx;
} held;

static void release(held *h)
{
    free(h->m);
    graft_rules_library_free(h->lib);
    free(h->s.env);
    graft_ctx_free(h->ctx);
}

/* Rank the library; prints nothing. */
static int match(const graft_rules_library *lib, const plan_inputs *in, graft_rules_match **m,
                 size_t *n, graft_ctx *ctx)
{
    if (graft_rules_library_match(lib, in->source, &in->src_opts, in->skeleton, &in->skel_opts,
                                  in->reverse, m, n, ctx) < 0) {
        errorf("%s", graft_ctx_message(ctx));
        return EXIT_BAD;
    }
    return EXIT_OK;
}

/* A context and the scanned library in h; prints the error. */
static int load(held *h)
{
    if (!(h->ctx = graft_ctx_new())) {
        errorf("out of memory");
        return EXIT_BAD;
    }
    return scan(&h->lib, &h->s, h->ctx);
}

int rules_auto(plan_inputs *in)
{
    static char chosen[PATH_MAX];
    held h = {0};
    size_t n = 0;
    int rc;
    if ((rc = load(&h)) != EXIT_OK || (rc = match(h.lib, in, &h.m, &n, h.ctx)) != EXIT_OK)
        goto cleanup;
    rc = EXIT_PLAN;
    /* Several complete fills: the best wins only when it fills strictly more
     * skeleton tensors than the next (others keep skeleton values there). */
    if (n > 1 && h.m[0].filled > h.m[1].filled) n = 1;
    if (n != 1) {
        errorf("-r auto: %s of the %zu shipped rules files fill%s %s completely from %s%s",
               n ? "several" : "none", h.lib->count, n ? "" : "s", in->skeleton, in->source,
               n ? ":" : " (see 'graft rules')");
        for (size_t i = 0; i < n; i++) print_match(stderr, h.lib, &h.m[i]);
        goto cleanup;
    }
    if (strlen(h.lib->entries[h.m[0].entry].path) >= sizeof chosen) {
        errorf("-r auto: path too long: %s", h.lib->entries[h.m[0].entry].path);
        rc = EXIT_BAD;
        goto cleanup;
    }
    strcpy(chosen, h.lib->entries[h.m[0].entry].path);
    in->rules_path = chosen;
    fprintf(stderr, "graft: -r auto: %s (%s)\n", h.m[0].name, chosen);
    rc = EXIT_OK;
cleanup:
    release(&h);
    return rc;
}

int cmd_rules(int argc, char **argv)
{
    enum { OPT_MATCH = 256, OPT_DIR };
    static const struct option longopts[] = {
        {"match", no_argument, NULL, OPT_MATCH},
        {"dir", required_argument, NULL, OPT_DIR},
        {"reverse", no_argument, NULL, OPT_REVERSE},
        {"source-format", required_argument, NULL, OPT_SOURCE_FORMAT},
        {"skeleton-format", required_argument, NULL, OPT_SKELETON_FORMAT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    plan_inputs in = PLAN_INPUTS_INIT;
    held h = {0};
    bool want_match = false;
    size_t n = 0;
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == OPT_MATCH) {
            want_match = true;
        } else if (c == OPT_DIR) {
            path_add(&h.s, optarg);
        } else if (c == 'h') {
            fputs(usage, stdout);
            return EXIT_OK;
        } else if (c == '?' || c == OPT_RULES || !plan_inputs_option(&in, c, optarg)) {
            fputs(usage, stderr);
            return EXIT_BAD;
        }
    }
    if (want_match ? !plan_inputs_operands(&in, argc, argv, 2, usage) : optind != argc) {
        if (!want_match) fputs(usage, stderr);
        return EXIT_BAD;
    }
    if ((rc = load(&h)) != EXIT_OK) goto cleanup;
    if (!want_match) {
        list(h.lib);
    } else {
        if ((rc = match(h.lib, &in, &h.m, &n, h.ctx)) != EXIT_OK) goto cleanup;
        for (size_t i = 0; i < n; i++) print_match(stdout, h.lib, &h.m[i]);
        if (!n) {
            errorf("none of the %zu shipped rules files fills %s completely from %s",
                   h.lib->count, in.skeleton, in.source);
            rc = EXIT_PLAN;
        }
    }
    if (fflush(stdout) != 0) rc = EXIT_BAD;
cleanup:
    release(&h);
    return rc;
}
