/* html.c - `--html FILE` of plan and diff: the page graft_plan_html writes,
 * headed by the command line that made it. */
#include "planload.h"

#include <stdlib.h>
#include <string.h>

int plan_write_html(const plan_inputs *in, const char *path, bool diff, int argc, char **argv)
{
    graft_report_options o = GRAFT_REPORT_OPTIONS_INIT;
    size_t n = sizeof "graft";
    char *cmd;
    int rc;

    for (int i = 0; i < argc; i++) n += strlen(argv[i]) + 1;
    if (!(cmd = malloc(n))) {
        errorf("%s: out of memory", path);
        return EXIT_BAD;
    }
    strcpy(cmd, "graft");
    for (int i = 0; i < argc; i++) strcat(strcat(cmd, " "), argv[i]);
    o.command = cmd;
    o.stats = true;
    o.diff = diff;
    rc = graft_plan_html(in->plan, path, &o, in->ctx);
    free(cmd);
    if (rc < 0) {
        errorf("%s", graft_ctx_message(in->ctx));
        return EXIT_BAD;
    }
    return EXIT_OK;
}
