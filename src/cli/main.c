/* main.c - the graft command: dispatch to cmd_<name>. */
#include "cli.h"

#include <malloc.h>
#include <signal.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: graft COMMAND [OPTIONS] ...\n       graft --version | --help\n\ncommands:\n", f);
    for (size_t i = 0; i < cli_ncommands; i++)
        fprintf(f, "  %-10s %s\n", cli_commands[i].name, cli_commands[i].summary);
    fputs("\noptions:\n"
          "  --version  print graft's version and exit\n"
          "  --help     print this list and exit\n"
          "\nEvery command takes --help; all but completion take --json (JSON on stdout).\n"
          "'graft COMMAND --help' describes a command; man graft(1) has the rest.\n", f);
}

/* Outputs are unnamed files where the system has O_TMPFILE, and a kill
 * leaves nothing; named temporary files (elsewhere, or for libhdf5) are
 * removed here on SIGTERM, SIGINT and SIGHUP, then the signal does what it
 * would have done. */
static void on_signal(int sig)
{
    graft_unlink_temporaries();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_signals(void)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        struct sigaction old;
        /* a signal ignored by whoever started us stays ignored */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(sigs[i], &sa, NULL);
    }
}

int main(int argc, char **argv)
{
    catch_signals();
#ifdef M_MMAP_THRESHOLD
    /* Block buffers (1-16 MiB) come and go per tensor: a fixed threshold keeps
     * them mmapped, so freeing one returns it.  glibc's dynamic threshold
     * would move them onto the heap after the first free, where small
     * allocations made in between pin the freed space: peak RSS crept up
     * with the tensor count (bench L1 into Keras 3). */
    mallopt(M_MMAP_THRESHOLD, 256 << 10);
#endif
    if (argc < 2) {
        usage(stderr);
        return EXIT_BAD;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        puts("graft " GRAFT_VERSION);
        return EXIT_OK;
    }
    for (size_t i = 0; i < cli_ncommands; i++)
        if (!strcmp(argv[1], cli_commands[i].name)) return cli_commands[i].run(argc - 1, argv + 1);
    errorf("unknown command '%s' (see 'graft --help')", argv[1]);
    return EXIT_BAD;
}
