/* progress.c - the progress line of apply and convert (stderr, a terminal only). */
#include "cli.h"

#include <time.h>

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void cli_show_progress(size_t done, size_t total, uint64_t bytes, void *payload)
{
    cli_progress *p = payload;
    double t = cli_now(), mb = 1024.0 * 1024.0;
    if (done < total && t - p->last < 0.1) return;
    p->last = t;
    p->open = done < total;
    fprintf(stderr, "\rgraft %s: %zu/%zu tensors, %.1f/%.1f MiB, %.0f MiB/s\033[K%s", p->command,
            done, total, bytes / mb, p->total_bytes / mb,
            t > p->start ? bytes / mb / (t - p->start) : 0.0, done == total ? "\n" : "");
}
