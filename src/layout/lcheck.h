/*
 * lcheck.h - the layout check of a plan (internal): for every pair whose two
 * layouts are known, the element mapping the op chain performs (the chain
 * run on index tensors) against the mapping the two layouts call for.
 */
#ifndef GRAFT_LAYOUT_LCHECK_H
#define GRAFT_LAYOUT_LCHECK_H

#include "layout.h"
#include "rules.h"

/* Tensors above this many elements (all sources together) are not checked:
 * the index tensors would take too much memory. */
#define GRAFT_LAYOUT_CHECK_MAX ((uint64_t)1 << 20)

/* A finding of kind `layout` (plan diags). */
typedef struct graft_layout_finding {
    const char *target;    /* target tensor name; borrowed from the model */
    const char *source;    /* first source tensor name; borrowed */
    const char *expected;  /* the mapping the layouts call for, in words; plan arena */
    const char *actual;    /* what the op chain does, in words; plan arena */
    const char *rule;      /* "file:line" of the transform (or pair) used; plan arena */
    bool error;            /* under problems (else warnings) */
} graft_layout_finding;

typedef enum graft_lcheck_verdict {
    GRAFT_LCHECK_SKIPPED = 0,  /* a layout unknown, or the two not comparable (see why) */
    GRAFT_LCHECK_AGREES,
    GRAFT_LCHECK_DIFFERS,
} graft_lcheck_verdict;

/* The check of one plan entry, for `explain`. */
typedef struct graft_lcheck {
    graft_layout target, source;  /* as compared (a convention side re-read in the
                                   * structure side's role) */
    graft_lcheck_verdict verdict;
    char expected[256], actual[512];
    char why[160];                /* SKIPPED: why */
} graft_lcheck;

/** Check entry e of plan p.  Fails only when out of memory. */
int graft_lcheck_entry(const graft_plan *p, const graft_plan_entry *e, graft_lcheck *out,
                       graft_ctx *ctx);
/**
 * Check every OK entry of p and add a diag of kind layout for each
 * difference, under the rules' `layout:` policy (errors counted in
 * p->errors).  Fails only when out of memory.
 */
int graft_lcheck_plan(graft_plan *p, const graft_rules *rules, graft_ctx *ctx);

/**
 * The op chain the two layouts call for: from a tensor of layout s and shape
 * ss to one of layout t and shape ts (reshape to factors, chunks for gates,
 * permute or transpose, reshape), the mapping the check expects.  For one
 * source tensor (not the two halves of a Keras GRU bias).  GRAFT_ENOTFOUND
 * when the layouts are not comparable.  *out: free with graft_ops_free
 * (*nout may be 0: nothing to do).
 */
int graft_layout_ops(const graft_layout *s, const graft_shape *ss, const graft_layout *t,
                     const graft_shape *ts, graft_op **out, size_t *nout, graft_ctx *ctx);

/* Append op number *n to ops (room for it is the caller's): kind, a copy
 * of the nv values v, axis. */
int graft_layout__add_op(graft_op *ops, size_t *n, graft_op_kind kind, const int64_t *v,
                         uint32_t nv, int32_t axis, graft_ctx *ctx);

#endif
