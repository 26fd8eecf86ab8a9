/* commands.c - the table of graft's commands: what main.c dispatches on,
 * what `graft --help` lists and what the completion scripts are generated
 * from (completion.c). */
#include "cli.h"

const cli_command cli_commands[] = {
    {"ls", cmd_ls, "list the tensors of a model file", ls_options, "FILE"},
    {"plan", cmd_plan, "show how each skeleton tensor would be filled, and what is missing",
     plan_options, "SOURCE SKELETON"},
    {"explain", cmd_explain, "trace the renames, pair and ops behind one skeleton tensor",
     explain_options, "SOURCE SKELETON NAME"},
    {"check", cmd_check, "validate a rules file (and that it is one to one on two models)",
     check_options, "RULES [SOURCE SKELETON]"},
    {"apply", cmd_apply, "write a skeleton model filled with a source model's weights",
     apply_options, "SOURCE SKELETON"},
    {"freeze", cmd_freeze, "turn a graph's variables into constants from a checkpoint",
     freeze_options, ""},
    {"diff", cmd_diff, "compare two models tensor by tensor, through rules", diff_options, "A B"},
    {"rules", cmd_rules, "list the shipped rules files, or those that fill a skeleton",
     rules_options, "[SOURCE SKELETON]"},
    {"convert", cmd_convert, "write a model's tensors into a new file of another format",
     convert_options, "SOURCE"},
    {"suggest", cmd_suggest, "draft a rules file from a source and a skeleton", suggest_options,
     "SOURCE SKELETON"},
    {"completion", cmd_completion, "print the bash, zsh or fish completion script",
     completion_options, "SHELL"},
};

const size_t cli_ncommands = sizeof cli_commands / sizeof *cli_commands;
