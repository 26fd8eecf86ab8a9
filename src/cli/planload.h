/* planload.h - what plan, explain, check, apply and diff share: their common
 * options, reading the rules and both models, building the plan, and
 * printing it. */
#ifndef GRAFT_CLI_PLANLOAD_H
#define GRAFT_CLI_PLANLOAD_H

#include "cli.h"

#include "../rules/rules.h"

typedef struct plan_inputs {
    const char *rules_path;          /* -r, NULL = identity by name */
    const char *source, *skeleton;   /* positional */
    graft_open_options src_opts, skel_opts;
    bool reverse;
    bool strict;                     /* --strict: warnings are errors */
    graft_ctx *ctx;                  /* owned */
    graft_rules *rules;              /* owned */
    graft_model *src, *skel;         /* owned */
    graft_plan *plan;                /* owned */
    graft_model *sel;                /* owned: --reverse with `select:`, that sub-tree of skel */
    graft_plan *sub;                 /* owned: the plan onto sel, NULL without one */
} plan_inputs;

#define PLAN_INPUTS_INIT {.src_opts = GRAFT_OPEN_OPTIONS_INIT, .skel_opts = GRAFT_OPEN_OPTIONS_INIT}

/* getopt codes of the options handled by plan_inputs_option(). */
enum { OPT_RULES = 'r', OPT_REVERSE = 'R', OPT_SOURCE_FORMAT = 's', OPT_SKELETON_FORMAT = 'k',
       OPT_STRICT = 'S' };

/* -r, --reverse, --strict and the two format overrides; false when c is none of them. */
bool plan_inputs_option(plan_inputs *in, int c, const char *arg);
/* Exactly n operands from optind on, SOURCE and SKELETON first; otherwise
 * prints usage on stderr and returns false. */
bool plan_inputs_operands(plan_inputs *in, int argc, char **argv, int n, const char *usage);
/* Load everything; on failure prints the error and returns EXIT_BAD.  With
 * --reverse and rules that `select:` a sub-tree, also plans that sub-tree of
 * the skeleton (sel, sub), as apply writes it. */
int plan_inputs_load(plan_inputs *in);
void plan_inputs_free(plan_inputs *in);
/* The plan a command acts on: onto the selected sub-tree when there is one. */
const graft_plan *plan_inputs_plan(const plan_inputs *in);
/* A skeleton tensor's name as the acting plan knows it: without the selected
 * sub-tree's prefix.  Borrowed from name. */
const char *plan_inputs_target_name(const plan_inputs *in, const char *name);
/* The plan's own warnings and errors on stderr, one line each. */
void plan_report_diags(const graft_plan *p);
/* Write an op as in a rules file: {"permute": [2, 3, 1, 0]}, "transpose"... */
void plan_op_json(FILE *f, const graft_op *op);
/* "[2,3] float32" */
void plan_shape_text(FILE *f, const graft_shape *s);

#endif
