/* cliopt.c - getopt_long over the commands' option tables (cli.h). */
#include "cli.h"

#include <getopt.h>

#define MAX_OPTIONS 40

int cli_getopt(int argc, char **argv, const cli_option *opts)
{
    /* Rebuilt on each call (getopt keeps its state in globals, not here). */
    struct option longopts[MAX_OPTIONS + 1] = {{0}};
    char shorts[2 * MAX_OPTIONS + 1];
    size_t n = 0, k = 0;
    for (; opts[n].name && n < MAX_OPTIONS; n++) {
        int has = opts[n].value == CLI_FLAG ? no_argument : required_argument;
        longopts[n] = (struct option){opts[n].name, has, NULL, opts[n].val};
        if (opts[n].short_name) {
            shorts[k++] = opts[n].short_name;
            if (has == required_argument) shorts[k++] = ':';
        }
    }
    shorts[k] = '\0';
    return getopt_long(argc, argv, shorts, longopts, NULL);
}
