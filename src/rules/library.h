/*
 * library.h - the shipped rules library: find the rules files under one or
 * more folders (<dir>/<from>-to-<to>/<family>.yaml), and rank them against a
 * source model and a skeleton by planning each one.
 *
 *     graft_rules_library *lib = NULL;
 *     const char *dirs[] = {"/usr/share/graft/rules", "rules"};
 *     graft_rules_library_scan(&lib, dirs, 2, ctx);
 *     graft_rules_match *m = NULL; size_t n;
 *     graft_rules_library_match(lib, "model.pth", NULL, "skel.h5", NULL, false, &m, &n, ctx);
 *     for i < n: lib->entries[m[i].entry] fills the skeleton, best first
 *
 * A relative name found in several folders is taken from the first.
 */
#ifndef GRAFT_RULES_LIBRARY_H
#define GRAFT_RULES_LIBRARY_H

#include "rules.h"

typedef struct graft_rules_entry {
    char *path;         /* the file */
    char *name;         /* relative to its folder, without .yaml: "torch-to-keras/resnet" */
    char *direction;    /* the folder: "torch-to-keras" */
    char *title;        /* the file's name: key, or "" */
    char *description;  /* its description:, whitespace collapsed, or "" */
} graft_rules_entry;

typedef struct graft_rules_library {
    graft_rules_entry *entries;  /* sorted by name */
    size_t count;
} graft_rules_library;

/* One rules file planned against two models. */
typedef struct graft_rules_match {
    size_t entry;       /* index in the library */
    const char *name;   /* its name (borrowed from the library) */
    size_t filled;      /* skeleton tensors filled from the source */
    size_t targets;     /* skeleton tensors */
    size_t unused;      /* source tensors no target uses (ignored ones left out) */
    size_t warnings;    /* plan warnings */
    size_t errors;      /* plan errors: 0 = the file fills the skeleton completely */
} graft_rules_match;

/**
 * Read every <dir>/<direction>/<family>.yaml of the folders (missing folders
 * are skipped).  A file that does not load fails the scan with its error.
 */
int graft_rules_library_scan(graft_rules_library **out, const char *const *dirs, size_t ndirs,
                             graft_ctx *ctx);
void graft_rules_library_free(graft_rules_library *lib);

/**
 * Plan every file of the library from `source` onto `skeleton` (reverse:
 * the files' opposite direction).  *out receives the complete fills (errors
 * 0), best first: most tensors filled, then fewest unused sources, then
 * fewest warnings, then by name.  The options (NULL: detect) open the two
 * models; a file's `select:` narrows the source as in graft plan.
 */
int graft_rules_library_match(const graft_rules_library *lib, const char *source,
                              const graft_open_options *src_opts, const char *skeleton,
                              const graft_open_options *skel_opts, bool reverse,
                              graft_rules_match **out, size_t *n, graft_ctx *ctx);

#endif
