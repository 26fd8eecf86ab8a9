/* msg.c - user-facing messages and small output helpers of the CLI. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void errorf(const char *fmt, ...)
{
    va_list ap;
    fputs("graft: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void warnf(const char *fmt, ...)
{
    va_list ap;
    fputs("graft: warning: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void print_shape(FILE *f, const graft_tensor *t, const char *sep)
{
    const int64_t *shape = graft_tensor_shape(t);
    fputc('[', f);
    for (uint32_t i = 0; i < graft_tensor_ndim(t); i++)
        fprintf(f, "%s%lld", i ? sep : "", (long long)shape[i]);
    fputc(']', f);
}

int print_owned(int rc, char **text)
{
    if (rc < 0) return -1;
    fputs(*text, stdout);
    free(*text);
    *text = NULL;
    return 0;
}

/* "5GB" -> 5e9, "1GiB" -> 2^30, as huggingface_hub's parse_size_to_int. */
int cli_parse_size(const char *s, uint64_t *out)
{
    static const struct { const char *unit; uint64_t mul; } units[] = {
        {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40},
        {"KB", 1000ull}, {"MB", 1000000ull}, {"GB", 1000000000ull}, {"TB", 1000000000000ull},
        {"B", 1}, {"", 1},
    };
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno || v <= 0) return -1;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (strcmp(end, units[i].unit) == 0) {
            double b = v * (double)units[i].mul;
            if (b < 1 || b > 1.8e19) return -1;
            *out = (uint64_t)b;
            return 0;
        }
    return -1;
}

int cli_size_option(const char *name, const char *arg, uint64_t *out)
{
    if (cli_parse_size(arg, out) == 0) return 0;
    errorf("--%s %s: not a size such as 64MB, 5GB or 1GiB", name, arg);
    return -1;
}

int cli_write_flag(int c, const char *arg, cli_write_flags *fl)
{
    switch (c) {
    case 'q': fl->quiet = true; return 1;
    case OPT_JSON: fl->json = true; return 1;
    case OPT_NO_CLOBBER: fl->no_clobber = true; return 1;
    case OPT_NO_SYNC: fl->no_sync = true; return 1;
    case OPT_BUDGET: return cli_size_option("memory-budget", arg, &fl->budget) < 0 ? -1 : 1;
    default: return 0;
    }
}
