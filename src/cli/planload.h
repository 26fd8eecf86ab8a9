/* planload.h - what plan, explain, check, apply and diff share: their common
 * options, reading the rules and both models into a plan (graft_plan_open),
 * and printing its findings. */
#ifndef GRAFT_CLI_PLANLOAD_H
#define GRAFT_CLI_PLANLOAD_H

#include "cli.h"

typedef struct plan_inputs {
    const char *rules_path;          /* -r, NULL = identity by name */
    const char *source, *skeleton;   /* positional */
    graft_plan_options opts;         /* --reverse, --strict, the format overrides */
    graft_ctx *ctx;                  /* owned */
    graft_rules *rules;              /* owned */
    graft_plan *plan;                /* owned; owns both models */
} plan_inputs;

#define PLAN_INPUTS_INIT {.opts = GRAFT_PLAN_OPTIONS_INIT}

/* getopt codes of the options handled by plan_inputs_option(). */
enum { OPT_RULES = 'r', OPT_REVERSE = 'R', OPT_SOURCE_FORMAT = 's', OPT_SKELETON_FORMAT = 'k',
       OPT_STRICT = 'S', OPT_HTML = 'H' };

/* -r, --reverse, --strict and the two format overrides; false when c is none of them. */
bool plan_inputs_option(plan_inputs *in, int c, const char *arg);
/* Exactly n operands from optind on, SOURCE and SKELETON first; otherwise
 * prints usage on stderr and returns false. */
bool plan_inputs_operands(plan_inputs *in, int argc, char **argv, int n, const char *usage);
/* Load everything; on failure prints the error and returns EXIT_BAD. */
int plan_inputs_load(plan_inputs *in);
void plan_inputs_free(plan_inputs *in);
/* `-r auto`: set rules_path to the one shipped rules file that fills the
 * skeleton completely, or among several the one that fills strictly more
 * tensors than every other (cmd_rules.c); otherwise print the candidates and
 * return EXIT_PLAN. */
int rules_auto(plan_inputs *in);
/* The plan's own warnings and errors on stderr, one line each. */
void plan_report_diags(const graft_plan *p);
/* An op as in a rules file: {"permute": [2, 3, 1, 0]}, "transpose"... */
void plan_op_print(FILE *f, const graft_op *op, graft_ctx *ctx);
/* --html PATH (html.c): the report page of the loaded plan (a diff page
 * when diff), its command line from argv; EXIT_OK or EXIT_BAD (printed). */
int plan_write_html(const plan_inputs *in, const char *path, bool diff, int argc, char **argv);
/* "[2,3] float32" */
void plan_shape_text(FILE *f, const graft_tensor *t);

#endif
