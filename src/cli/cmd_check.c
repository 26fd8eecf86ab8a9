/* cmd_check.c - `graft check`: validate a rules file, and optionally that it
 * pairs two actual models one to one. */
#include "planload.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: graft check [--reverse] [--strict] RULES [SOURCE SKELETON]\n"
    "Validate RULES alone: YAML, known keys and types, regexes compile, ops\n"
    "well-formed, includes resolve; errors name file:line:column.  With SOURCE and\n"
    "SKELETON, also build the plan and check that the renames are one to one on\n"
    "the actual names (each renamed name unique on its side, no source used\n"
    "twice), as `apply --reverse` needs.\n"
    "  --reverse           RULES were written for the opposite direction (with\n"
    "                      `select:`, SKELETON's selected sub-tree is checked)\n";

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Report renamed names that two tensors of one side share; returns how many. */
static size_t duplicates(const char **keys, size_t n, const char *side)
{
    size_t found = 0;
    const char **sorted = malloc((n + 1) * sizeof *sorted);
    if (!sorted) {
        errorf("out of memory");
        return 1;
    }
    memcpy(sorted, keys, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_str);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(sorted[i - 1], sorted[i]) || (i > 1 && !strcmp(sorted[i - 2], sorted[i])))
            continue;
        errorf("renames are not one to one: several %s names become '%s'", side, sorted[i]);
        found++;
    }
    free(sorted);
    return found;
}

/* A chain that takes one piece of its source: several such uses are a split. */
static bool has_take(const graft_plan_entry *e)
{
    return graft_ops_take_part(e->ops, e->nops);
}

static size_t one_to_one(const graft_plan *p)
{
    size_t bad = 0, n = p->nentries;
    const char **tkeys = malloc((n + 1) * sizeof *tkeys);
    size_t *uses = calloc(p->source->count + 1, sizeof *uses);
    if (!tkeys || !uses) {
        free(tkeys);
        free(uses);
        errorf("out of memory");
        return 1;
    }
    for (size_t i = 0; i < n; i++) tkeys[i] = p->entries[i].key;
    bad += duplicates(tkeys, n, "target");
    bad += duplicates(p->source_keys, p->source->count, "source");
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < p->entries[i].nsources; k++)
            if (!has_take(&p->entries[i]) && uses[p->entries[i].sources[k]]++ == 1) {
                errorf("source '%s' feeds more than one target (first '%s'): not reversible",
                       p->source->tensors[p->entries[i].sources[k]].name,
                       p->target->tensors[i].name);
                bad++;
            }
    free(tkeys);
    free(uses);
    return bad;
}

static void summary(const char *path, const graft_rules *r)
{
    printf("%s: ok: %zu source renames, %zu target renames, %zu pairs, %zu transforms, "
           "%zu+%zu ignore patterns\n",
           path, r->nrename[GRAFT_SIDE_SOURCE], r->nrename[GRAFT_SIDE_TARGET], r->npairs,
           r->ntransforms, r->nignore[GRAFT_SIDE_SOURCE], r->nignore[GRAFT_SIDE_TARGET]);
}

int cmd_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"reverse", no_argument, NULL, OPT_REVERSE},
        {"strict", no_argument, NULL, OPT_STRICT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    plan_inputs in = PLAN_INPUTS_INIT;
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_REVERSE: in.reverse = true; break;
        case OPT_STRICT: in.strict = true; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: fputs(usage, stderr); return EXIT_BAD;
        }
    }
    if (optind + 1 != argc && optind + 3 != argc) {
        fputs(usage, stderr);
        return EXIT_BAD;
    }
    in.rules_path = argv[optind];
    if (optind + 1 == argc) {
        graft_rules *r = NULL;
        graft_ctx *ctx = graft_ctx_new();
        if (!ctx) {
            errorf("out of memory");
            return EXIT_BAD;
        }
        rc = EXIT_OK;
        if (graft_rules_load(&r, in.rules_path, ctx) < 0) {
            errorf("%s", graft_ctx_message(ctx));
            rc = EXIT_BAD;
        } else {
            summary(in.rules_path, r);
        }
        graft_rules_free(r);
        graft_ctx_free(ctx);
        return rc;
    }
    in.source = argv[optind + 1];
    in.skeleton = argv[optind + 2];
    rc = plan_inputs_load(&in);
    if (rc == EXIT_OK) {
        const graft_plan *p = plan_inputs_plan(&in);
        size_t bad = one_to_one(p);
        for (size_t i = 0; i < p->ndiags; i++)
            if (p->diags[i].level == GRAFT_DIAG_ERROR) errorf("%s", p->diags[i].message);
        for (size_t i = 0; i < p->nentries; i++)
            if (p->entries[i].message && p->entries[i].status != GRAFT_PLAN_KEPT)
                errorf("%s", p->entries[i].message);
        if (bad || p->errors) {
            errorf("%zu problem%s (see 'graft plan')", bad + p->errors,
                   bad + p->errors == 1 ? "" : "s");
            rc = EXIT_PLAN;
        } else {
            summary(in.rules_path, in.rules);
            printf("%s: one to one on %zu targets and %zu sources\n", in.rules_path,
                   p->nentries, p->source->count);
        }
        if (fflush(stdout) != 0) rc = EXIT_BAD;
    }
    plan_inputs_free(&in);
    return rc;
}
