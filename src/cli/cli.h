/* cli.h - shared pieces of the graft command-line tool. */
#ifndef GRAFT_CLI_H
#define GRAFT_CLI_H

#include "graft.h"

#include <stdio.h>

/* Exit codes (man/graft.1, EXIT STATUS). */
enum { EXIT_OK = 0, EXIT_PLAN = 1, EXIT_BAD = 2 };

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);   /* argv[0] is the command name */
    const char *summary;
} cli_command;

int cmd_apply(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_freeze(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_convert(int argc, char **argv);

/* The progress line (progress.c): redrawn in place at most 10 times a second. */
typedef struct cli_progress {
    const char *command;     /* "apply", "convert" */
    uint64_t total_bytes;
    double start, last;
    bool open;               /* a line without its newline is on the terminal */
} cli_progress;
double cli_now(void);
/* A graft_apply_progress_fn; payload is a cli_progress. */
void cli_show_progress(size_t done, size_t total, uint64_t bytes, void *payload);
int cmd_rules(int argc, char **argv);
int cmd_suggest(int argc, char **argv);

/* "graft: <message>" on stderr. */
/* "5GB" -> 5e9, "1GiB" -> 2^30, "64MB"; -1 for anything else. */
int cli_parse_size(const char *s, uint64_t *out);
void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warnf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the text a library call returned in *text (graft_plan_json...) on
 * stdout and free it; -1 (nothing printed) when rc, the call's status, is a
 * failure.  *text is read after the call: print_owned(f(&text), &text). */
int print_owned(int rc, char **text);
/* "[2, 3]" / "[2,3]" */
void print_shape(FILE *f, const graft_tensor *t, const char *sep);

#endif
