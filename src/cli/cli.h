/* cli.h - shared pieces of the graft command-line tool. */
#ifndef GRAFT_CLI_H
#define GRAFT_CLI_H

#include "graft.h"

#include <stdio.h>

/* Exit codes (man/graft.1, EXIT STATUS). */
enum { EXIT_OK = 0, EXIT_PLAN = 1, EXIT_BAD = 2 };

/* What an option's value is: drives shell completion (completion.c) and
 * the man page test; CLI_FLAG takes none. */
typedef enum cli_value {
    CLI_FLAG,
    CLI_FILE,          /* a path */
    CLI_DIR,           /* a folder */
    CLI_FORMAT,        /* a format name (graft_format_names) */
    CLI_WRITE_FORMAT,  /* a format `convert --to` writes */
    CLI_RULES,         /* a rules file, or a shipped rules name */
    CLI_QUANT,         /* a GGUF block type */
    CLI_TEXT,          /* anything else */
} cli_value;

/* One option of a command: the table each command parses with (cli_getopt)
 * and that completion scripts and the man page test are generated from. */
typedef struct cli_option {
    const char *name;   /* long name, without "--" */
    char short_name;    /* -X, or 0 */
    int val;            /* what cli_getopt returns for it (short_name when it has one) */
    cli_value value;
} cli_option;

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);   /* argv[0] is the command name */
    const char *summary;
    const cli_option *options;           /* ends with {NULL} */
    const char *operands;                /* "SOURCE SKELETON", for completion and man */
} cli_command;

/* Every command, in `graft --help` order (commands.c). */
extern const cli_command cli_commands[];
extern const size_t cli_ncommands;

/* getopt_long over a cli_option table (-1 at the end, '?' on a bad option). */
int cli_getopt(int argc, char **argv, const cli_option *opts);

/* The option values shared by several commands (those beside 'h' and 'j'). */
enum { OPT_JSON = 'j', OPT_NO_CLOBBER = 300, OPT_BUDGET, OPT_NO_SYNC };

/* The flags of the commands that write a model (apply, convert): -q, --json,
 * --no-clobber, --memory-budget, --no-sync. */
typedef struct cli_write_flags {
    bool quiet, json, no_clobber, no_sync;
    uint64_t budget; /* --memory-budget; 0: the library's default */
} cli_write_flags;
/* Take option c into fl: 1 when it is one of them, 0 when not, -1 after
 * saying on stderr why its value is wrong. */
int cli_write_flag(int c, const char *arg, cli_write_flags *fl);

int cmd_apply(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_freeze(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_completion(int argc, char **argv);

extern const cli_option ls_options[], plan_options[], explain_options[], check_options[],
    apply_options[], freeze_options[], diff_options[], rules_options[], convert_options[],
    completion_options[], suggest_options[];

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

/* "graft ARGV..." as typed (html.c), for a report page; NULL when out of memory. */
char *cli_command_line(int argc, char **argv);

/* "5GB" -> 5e9, "1GiB" -> 2^30, "64MB"; -1 for anything else. */
int cli_parse_size(const char *s, uint64_t *out);
/* The size argument of option --NAME, or -1 after saying on stderr why not. */
int cli_size_option(const char *name, const char *arg, uint64_t *out);
/* "graft: <message>" on stderr. */
void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warnf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the text a library call returned in *text (graft_plan_json...) on
 * stdout and free it; -1 (nothing printed) when rc, the call's status, is a
 * failure.  *text is read after the call: print_owned(f(&text), &text). */
int print_owned(int rc, char **text);
/* --no-clobber: true, with the error printed, when one of the NULL-terminated
 * paths or extra (may be NULL) exists (outfile.c).  Checked before writing,
 * so a file created meanwhile is still replaced. */
bool refuse_existing(char *const *paths, const char *extra);
/* A warning when out's extension belongs to formats other than `format`. */
void warn_extension(const char *out, const char *format);
/* "[2, 3]" / "[2,3]" */
void print_shape(FILE *f, const graft_tensor *t, const char *sep);

#endif
