/* cmd_rules.c - `graft rules`: list the shipped rules files, rank them against
 * two models, and resolve `-r auto` for the other commands. */
#include "planload.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

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
    "among several the first when it is strictly ahead of the second (more tensors\n"
    "filled, else fewer unused sources, else fewer warnings); a tie is an error.\n";

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
    for (size_t i = 0; i < graft_rules_library_count(lib); i++) {
        const char *desc = graft_rules_library_get(lib, i, GRAFT_RULES_FIELD_DESCRIPTION);
        printf("%-34s %-16s %s\n", graft_rules_library_get(lib, i, GRAFT_RULES_FIELD_NAME),
               graft_rules_library_get(lib, i, GRAFT_RULES_FIELD_DIRECTION),
               graft_rules_library_get(lib, i, GRAFT_RULES_FIELD_TITLE));
        if (*desc) printf("    %s\n", desc);
    }
}

static const char *path_of(const graft_rules_library *lib, const graft_rules_match *m)
{
    return graft_rules_library_get(lib, m->entry, GRAFT_RULES_FIELD_PATH);
}

static void print_match(FILE *f, const graft_rules_library *lib, const graft_rules_match *m)
{
    fprintf(f, "%-34s %zu/%zu filled, %zu unused, %zu warning%s  %s\n", m->name, m->filled,
           m->targets, m->unused, m->warnings, m->warnings == 1 ? "" : "s", path_of(lib, m));
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
    graft_open_options so = GRAFT_OPEN_OPTIONS_INIT, ko = GRAFT_OPEN_OPTIONS_INIT;
    so.format = in->opts.source_format;
    ko.format = in->opts.skeleton_format;
    if (graft_rules_library_match(lib, in->source, &so, in->skeleton, &ko, in->opts.reverse, m, n,
                                  ctx) < 0) {
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

/* a ranks strictly before b, the name aside (graft_rules_library_match's order). */
static bool ahead(const graft_rules_match *a, const graft_rules_match *b)
{
    if (a->filled != b->filled) return a->filled > b->filled;
    if (a->unused != b->unused) return a->unused < b->unused;
    return a->warnings < b->warnings;
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
    /* Several complete fills: the best wins only when it is strictly ahead of
     * the next in the ranking (more filled: the others keep skeleton values
     * there; fewer unused sources; fewer warnings: rules that matched nothing). */
    if (n > 1 && ahead(&h.m[0], &h.m[1])) n = 1;
    if (n != 1) {
        errorf("-r auto: %s of the %zu shipped rules files fill%s %s completely from %s%s",
               n ? "several" : "none", graft_rules_library_count(h.lib), n ? "" : "s", in->skeleton,
               in->source,
               n ? ":" : " (see 'graft rules')");
        for (size_t i = 0; i < n; i++) print_match(stderr, h.lib, &h.m[i]);
        goto cleanup;
    }
    if (strlen(path_of(h.lib, &h.m[0])) >= sizeof chosen) {
        errorf("-r auto: path too long: %s", path_of(h.lib, &h.m[0]));
        rc = EXIT_BAD;
        goto cleanup;
    }
    strcpy(chosen, path_of(h.lib, &h.m[0]));
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
                   graft_rules_library_count(h.lib), in.skeleton, in.source);
            rc = EXIT_PLAN;
        }
    }
    if (fflush(stdout) != 0) rc = EXIT_BAD;
cleanup:
    release(&h);
    return rc;
}
