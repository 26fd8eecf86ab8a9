/* msg.c - user-facing messages and small output helpers of the CLI. */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>

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
