/*
 * rules.h - the rule engine (internal): load a YAML rules file, pair the
 * tensors of a skeleton (target) with those of a source model, and plan the
 * op chain of every pair.  Format version 1 of the file is described in
 * man/graft-rules.5 and schemas/graft-rules.schema.json.
 *
 * Typical use (graft plan / apply):
 *
 *     graft_rules *r = NULL;
 *     graft_plan *p = NULL;
 *     graft_plan_options o = GRAFT_PLAN_OPTIONS_INIT;
 *     if (graft_rules_load(&r, "map.yaml", ctx) < 0) ...            exit 2
 *     open source (with r->select) and skeleton ...
 *     if (graft_plan_build(&p, r, source, skeleton, &o, ctx) < 0) ... exit 2
 *     if (p->errors) ...                                             exit 1
 *     for each p->entries[i] with status OK: run p->entries[i].ops
 *
 * Everything a rules file holds lives in the rules' arena; a plan borrows
 * the rules and both models, which must outlive it.
 */
#ifndef GRAFT_RULES_RULES_H
#define GRAFT_RULES_RULES_H

#include "../transform/ops.h"

#define GRAFT_RULES_VERSION 1            /* the `graft:` major version this build reads */
#define GRAFT_RULES_MINOR 1              /* and the highest minor: 1.0 and 1.1 */
#define GRAFT_RULES_MAX_BYTES (16u << 20) /* cap on one rules file */
#define GRAFT_RULES_MAX_INCLUDE_DEPTH 16  /* include nesting cap */

/* Where something was written: 1-based line and column in `file`. */
typedef struct graft_rules_pos {
    const char *file;  /* path as opened (relative includes joined); rules arena */
    uint32_t line, col;
} graft_rules_pos;

typedef enum graft_side {
    GRAFT_SIDE_SOURCE = 0,
    GRAFT_SIDE_TARGET = 1,
} graft_side;

/* A compiled PCRE2 pattern with where it was written. */
typedef struct graft_regex {
    const char *pattern;  /* rules arena */
    void *code;           /* pcre2_code_8 *; owned by the rules */
    graft_rules_pos pos;  /* of the pattern scalar */
} graft_regex;

/* Index arithmetic in a `to:` (format 1.1): ${N+K}, ${N-K}, ${name+K},
 * ${name-K}: capture group N (or the named group), read as a decimal
 * integer, plus or minus K. */
typedef struct graft_rename_arith {
    uint32_t at, len;     /* the token's bytes in `to` */
    uint32_t group;       /* capture group number (named groups resolved at load) */
    int64_t delta;        /* +K or -K */
} graft_rename_arith;

/* One `rename:` entry: every match in the name is replaced by `to`. */
typedef struct graft_rename {
    graft_regex match;
    const char *to;       /* replacement, $1 / ${name} expanded; rules arena */
    const graft_rename_arith *arith; /* narith tokens of `to`, in order; rules arena */
    size_t narith;
    int64_t expect;       /* `expect: N` (names changed), -1 when absent */
    graft_rules_pos pos;  /* of the entry */
} graft_rename;

/* One `pairs:` entry, by original names. */
typedef struct graft_pair_rule {
    const char *target;     /* rules arena */
    const char **sources;   /* nsources names; rules arena */
    size_t nsources;        /* >= 1; > 1 needs a chain starting with concat */
    graft_rules_pos pos;    /* of the key */
} graft_pair_rule;

/* One `transforms:` entry; a selector that is absent matches everything. */
typedef struct graft_transform {
    graft_regex target;   /* on the original target name; code NULL = any */
    graft_regex source;   /* on the original (first) source name; code NULL = any */
    int32_t rank;         /* of the (first) source tensor; -1 = any */
    graft_dtype dtype;    /* of the (first) source tensor; INVALID = any */
    graft_op *ops;        /* nops ops; rules arena (v arrays too) */
    size_t nops;
    int64_t expect;       /* `expect: N` (pairs it applied to), -1 when absent */
    int mismatch;         /* `mismatch:` (1.1): a graft_policy_mismatch, -1 = the file's */
    graft_rules_pos pos;  /* of the entry */
} graft_transform;

typedef enum graft_policy_missing { GRAFT_MISSING_ERROR = 0, GRAFT_MISSING_KEEP } graft_policy_missing;
typedef enum graft_policy_unused {
    GRAFT_UNUSED_WARN = 0,
    GRAFT_UNUSED_ERROR,
    GRAFT_UNUSED_IGNORE,
} graft_policy_unused;
typedef enum graft_policy_mismatch { GRAFT_MISMATCH_ERROR = 0, GRAFT_MISMATCH_KEEP } graft_policy_mismatch;
/* `layout:` (1.1): a layout finding is an error when both layouts come from
 * structure and a warning otherwise (auto), or always one of the others. */
typedef enum graft_policy_layout {
    GRAFT_LAYOUT_AUTO = 0,
    GRAFT_LAYOUT_ERROR,
    GRAFT_LAYOUT_WARN,
    GRAFT_LAYOUT_IGNORE,
} graft_policy_layout;

/* A loaded rules file, includes merged (their entries first). */
typedef struct graft_rules {
    graft_arena arena;            /* every string and array below */
    const char *path;             /* the top file as given */
    uint32_t version;             /* `graft:` major (1) */
    uint32_t minor;               /* `graft:` minor: 0 for `graft: 1` or 1.0, 1 for 1.1 */
    const char *name;             /* NULL when absent */
    const char *description;      /* NULL when absent */
    const char *select;           /* source sub-tree, NULL = all */
    graft_rename *rename[2];      /* per graft_side, in application order */
    size_t nrename[2];
    graft_pair_rule *pairs;       /* a later file's entry for a target replaces an earlier one */
    size_t npairs;
    graft_transform *transforms;  /* first match wins */
    size_t ntransforms;
    graft_regex *ignore[2];       /* per graft_side */
    size_t nignore[2];
    graft_policy_missing missing;
    graft_policy_unused unused;
    graft_policy_mismatch mismatch;
    const char **meta;            /* `meta:` (rules 1.1): nmeta "KEY[:TYPE]=VALUE" for
                                   * graft convert's GGUF metadata; rules arena */
    size_t nmeta;
    graft_policy_layout layout;   /* policy: layout (1.1) */
    void *priv;                   /* reserved; NULL */
} graft_rules;

/**
 * Load and check a rules file: YAML well-formed, known keys only, types,
 * regexes compile, ops well-formed, includes resolve (relative to the file
 * that names them; cycles are errors).  Errors read
 * "<file>:<line>:<col>: <problem>" with status GRAFT_ERULE (an include that
 * cannot be read, or nests too deep, too, at its position); GRAFT_ENOTFOUND /
 * GRAFT_EIO when the top file cannot be read; GRAFT_ELIMIT past the caps
 * (file size, YAML nodes with aliases counted); a second YAML document is an
 * error.
 *
 * @param[out] out  the rules; free with graft_rules_free
 */
int graft_rules_load(graft_rules **out, const char *path, graft_ctx *ctx);
/** The same from memory; `name` is used in messages.  `include:` is refused. */
int graft_rules_load_buffer(graft_rules **out, const char *name, const char *data,
                            size_t size, graft_ctx *ctx);
void graft_rules_free(graft_rules *r);

/* A rename step that changed a name (for explain). */
typedef struct graft_rename_step {
    const graft_rename *rule;  /* borrowed from the rules */
    const char *before, *after; /* malloc'ed */
} graft_rename_step;

/**
 * Apply the renames of one side to `name`.  *out is malloc'ed (caller frees).
 * When steps is not NULL it receives up to max_steps steps (*nsteps all of
 * them, even past max_steps), each strings malloc'ed: free with
 * graft_rename_steps_free.
 */
int graft_rules_rename(const graft_rules *r, graft_side side, const char *name, char **out,
                       graft_rename_step *steps, size_t max_steps, size_t *nsteps,
                       graft_ctx *ctx);
void graft_rename_steps_free(graft_rename_step *steps, size_t n);
/** 1 when `name` matches an ignore pattern of that side, 0 when not, < 0 when
 * a pattern fails (match/depth/heap limit: "<file>:<line>: ... on tensor '<name>'"). */
int graft_rules_ignored(const graft_rules *r, graft_side side, const char *name, graft_ctx *ctx);
/** A regex search on a name (selectors): 1 match (a NULL code matches
 * everything), 0 no match, < 0 a PCRE2 error or limit, named by file:line. */
int graft_regex_search(const graft_regex *re, const char *name, graft_ctx *ctx);

/* ------------------------------------------------------------------ */
/* Plans.                                                              */

/* graft_plan_status is declared in graft.h. */

/** "ok", "missing", "kept", "mismatch", "error". */
const char *graft_plan_status_name(graft_plan_status s);

typedef struct graft_plan_entry {
    size_t target;                      /* index in the target model (== entry index) */
    graft_plan_status status;
    size_t *sources;                    /* nsources indices into the source model; plan arena */
    size_t nsources;                    /* 0 when missing/kept without source */
    const graft_op *ops;                /* chain to run on the sources (inverted for reverse) */
    size_t nops;
    graft_shape *in;                    /* nsources source shapes+dtypes; plan arena */
    graft_shape out;                    /* after the ops (== in[0] when no ops; zero if error) */
    graft_shape target_shape;           /* the skeleton's tensor */
    const graft_pair_rule *pair;        /* explicit pairs entry used, NULL = by renamed name */
    const graft_transform *transform;   /* entry chosen, NULL = none matched */
    const char *key;                    /* the target's renamed name; plan arena */
    const char *message;                /* why status is not OK (one line), else NULL; plan arena */
    bool ignored;                       /* target matches an ignore pattern */
} graft_plan_entry;

typedef enum graft_diag_level { GRAFT_DIAG_WARNING = 0, GRAFT_DIAG_ERROR } graft_diag_level;

/* A warning or error about the plan as a whole. */
typedef struct graft_plan_diag {
    graft_diag_level level;
    const char *message;  /* one line, rule file:line first when a rule is concerned; plan arena */
    const struct graft_layout_finding *layout; /* kind `layout` (layout/lcheck.h), else NULL */
} graft_plan_diag;

typedef struct graft_plan {
    graft_arena arena;
    const graft_rules *rules;         /* borrowed; NULL = identity by name */
    const graft_model *source;        /* borrowed: tensors are read from it */
    const graft_model *target;        /* borrowed: the skeleton written */
    bool reverse;
    bool strict;                      /* warnings were made errors */
    graft_plan_entry *entries;        /* one per target tensor, target order */
    size_t nentries;
    size_t *missing;                  /* target indices with no source (status MISSING or KEPT) */
    size_t nmissing;
    size_t *unused;                   /* source indices used by no entry, ignored ones left out */
    size_t nunused;
    const char **source_keys;         /* renamed names of the source tensors; plan arena */
    graft_plan_diag *diags;           /* warnings and plan-level errors, in order found */
    size_t ndiags;
    size_t errors;                    /* entries not OK/KEPT + plan-level errors; 0 = complete */
    graft_op **owned_ops;             /* inverted chains (reverse); freed with the plan */
    size_t *owned_nops;
    size_t nowned;
    /* Set by graft_plan_open (api/plan_open.c), freed with the plan: */
    graft_model *own_source, *own_skeleton;  /* the models it opened */
    graft_model *own_sel;                    /* reverse + `select:`: that sub-tree of the skeleton */
    struct graft_plan *sub;                  /* the plan onto own_sel; the getters read it */
} graft_plan;

/* graft_plan_options is declared in graft.h.  Reversed (`reverse`), the
 * sides swap: renames, ignore lists, policies unused<->missing (unused error
 * <-> missing error, unused warn/ignore -> missing keep, missing keep ->
 * unused warn); pairs are inverted and op chains inverted with
 * graft_ops_invert.  `strict`: every warning is an error (level
 * GRAFT_DIAG_ERROR, counted in errors). */

/**
 * Pair every target tensor and check its op chain.  Problems with the plan
 * itself (missing targets, mismatches, bad chains) do not fail the call: they
 * are counted in (*out)->errors with messages in entries and diags.  The call
 * fails (negative status) only for out of memory or a rule that breaks while
 * being applied (e.g. a PCRE2 substitution error).
 *
 * @param rules   NULL pairs by identical names with no ops
 * @param o       NULL for defaults
 * @param[out] out  the plan; free with graft_plan_free
 */
int graft_plan_build(graft_plan **out, const graft_rules *rules, const graft_model *source,
                     const graft_model *target, const graft_plan_options *o, graft_ctx *ctx);
void graft_plan_free(graft_plan *p);
/** The entry of the target tensor with this original name, or NULL. */
const graft_plan_entry *graft_plan_find(const graft_plan *p, const char *target_name);

/* ------------------------------------------------------------------ */
/* Explain: the trace behind one entry of a plan.                      */

typedef struct graft_explain {
    const graft_plan_entry *entry;     /* borrowed from the plan */
    graft_rename_step *target_steps;   /* renames that changed the target name */
    size_t ntarget_steps;
    graft_rename_step **source_steps;  /* per source of the entry */
    size_t *nsource_steps;
    graft_shape *shapes;               /* entry->nops + 1: the input [0] and after each op */
    size_t nshapes;                    /* may stop early at the op that failed */
    size_t closest;                    /* unpaired target: the source index whose renamed name
                                        * is nearest its key (edit distance); SIZE_MAX = none */
} graft_explain;

/**
 * Trace how target `name` (original name in p->target) was planned.  For a
 * name that is only a source tensor, GRAFT_ENOTFOUND with a message naming
 * the target(s) it feeds, if any.
 */
int graft_explain_build(graft_explain **out, const graft_plan *p, const char *name,
                        graft_ctx *ctx);
void graft_explain_free(graft_explain *e);

#endif
