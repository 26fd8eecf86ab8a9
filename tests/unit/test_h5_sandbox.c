/* test_h5_sandbox.c - the child libhdf5 runs in (h5_sandbox.c): records come
 * back, its errors come back as written, and a crash, the CPU limit, the
 * wall-clock limit, the address-space limit and the seccomp filter each
 * hold, also on a file that really makes libhdf5 spin. */
#include "testutil.h"

#include "error.h"
#include "h5.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static graft_ctx *ctx;
static void setup(void) { ctx = graft_ctx_new(); }
static void teardown(void) { graft_ctx_free(ctx); }

typedef struct got {
    char text[256];
    size_t n;
} got;

static int collect(void *arg, uint8_t kind, const uint8_t *p, size_t n)
{
    got *g = arg;
    if (g->n + n + 2 >= sizeof g->text) return GRAFT_ELIMIT;
    g->text[g->n++] = (char)kind;
    memcpy(g->text + g->n, p, n);
    g->n += n;
    g->text[g->n] = '\0';
    return GRAFT_OK;
}

static int say_hello(void *arg, int fd, graft_ctx *c)
{
    (void)arg, (void)c;
    graft_h5__put(fd, 'A', "hello", 5);
    graft_h5__put(fd, 'B', "", 0);
    return GRAFT_OK;
}

START_TEST(records_come_back_in_order)
{
    got g = {0};
    ck_assert_int_eq(graft_h5__sandbox(say_hello, NULL, NULL, collect, &g, ctx), 0);
    ck_assert_str_eq(g.text, "AhelloB");
}
END_TEST

static int fail_cleanly(void *arg, int fd, graft_ctx *c)
{
    (void)arg, (void)fd;
    return graft_error(c, GRAFT_ECORRUPT, "layer 'x': attribute 'weight_names': bad heap");
}

START_TEST(a_child_error_comes_back_as_written)
{
    got g = {0};
    ck_assert_int_eq(graft_h5__sandbox(fail_cleanly, NULL, NULL, collect, &g, ctx), GRAFT_ECORRUPT);
    ck_assert_str_eq(graft_ctx_message(ctx), "layer 'x': attribute 'weight_names': bad heap");
}
END_TEST

static int crash(void *arg, int fd, graft_ctx *c)
{
    (void)fd, (void)c;
    graft_h5__doing("reading attribute '%s'", "weight_names");
    raise(*(int *)arg);
    return GRAFT_OK;
}

START_TEST(a_crash_is_one_line_naming_what_the_child_did)
{
    got g = {0};
    int sig = SIGSEGV;
    const char *msg;
    ck_assert_int_eq(graft_h5__sandbox(crash, &sig, NULL, collect, &g, ctx), GRAFT_ECORRUPT);
    msg = graft_ctx_message(ctx);
    ck_assert_msg(strstr(msg, "libhdf5 failed on this file (") == msg, "%s", msg);
    /* ASan turns the signal into its report, then exit status 1 (or SIGABRT
     * with abort_on_error, as the test suite runs it) */
    ck_assert_msg(strstr(msg, "SIGSEGV while reading attribute 'weight_names')") ||
                      strstr(msg, "exit status 1 while reading attribute 'weight_names')") ||
                      strstr(msg, "SIGABRT while reading attribute 'weight_names')"),
                  "%s", msg);
    ck_assert_msg(strstr(msg, "; the file is malformed or hostile"), "%s", msg);
    sig = SIGABRT;
    graft_ctx_clear(ctx);
    ck_assert_int_eq(graft_h5__sandbox(crash, &sig, NULL, collect, &g, ctx), GRAFT_ECORRUPT);
    ck_assert_msg(strstr(graft_ctx_message(ctx), "(SIGABRT while reading attribute"), "%s",
                  graft_ctx_message(ctx));
}
END_TEST

static int spin(void *arg, int fd, graft_ctx *c)
{
    volatile uint64_t x = 0;
    (void)arg, (void)fd, (void)c;
    graft_h5__doing("protecting a cache entry");
    for (;;) x++;
    return GRAFT_OK;
}

START_TEST(a_spinning_child_meets_the_cpu_limit)
{
    got g = {0};
    unsigned old = graft_h5__base_cpu;
    graft_h5__base_cpu = 1;
    ck_assert_int_eq(graft_h5__sandbox(spin, NULL, NULL, collect, &g, ctx), GRAFT_ECORRUPT);
    graft_h5__base_cpu = old;
    ck_assert_msg(strstr(graft_ctx_message(ctx),
                         "(timed out after 1 s of CPU time while protecting a cache entry)") ||
                      strstr(graft_ctx_message(ctx), "(SIGKILL while protecting a cache entry)"),
                  "%s", graft_ctx_message(ctx));
}
END_TEST

/* Blocked in read() on a pipe nobody writes: no CPU, only the wall clock. */
static int block(void *arg, int fd, graft_ctx *c)
{
    char b;
    (void)fd, (void)c;
    graft_h5__doing("checking attribute 'weight_names' of layer 'dense'");
    while (read(*(int *)arg, &b, 1) != 0) {}
    return GRAFT_OK;
}

START_TEST(a_blocked_child_meets_the_wall_clock)
{
    got g = {0};
    int p[2];
    unsigned cpu = graft_h5__base_cpu, wall = graft_h5__base_wall;
    ck_assert_int_eq(pipe(p), 0);
    graft_h5__base_cpu = 1;
    graft_h5__base_wall = 1; /* silence allowed: 2 x 1 + 1 s */
    ck_assert_int_eq(graft_h5__sandbox(block, &p[0], NULL, collect, &g, ctx), GRAFT_ECORRUPT);
    graft_h5__base_cpu = cpu;
    graft_h5__base_wall = wall;
    close(p[0]);
    close(p[1]);
    ck_assert_str_eq(graft_ctx_message(ctx),
                     "libhdf5 failed on this file (timed out after 3 s without an answer while "
                     "checking attribute 'weight_names' of layer 'dense'); the file is malformed "
                     "or hostile");
}
END_TEST

START_TEST(cpu_time_grows_with_the_work_but_not_past_the_file)
{
    unsigned cpu, wall;
    graft_h5_budget small = {0, 0, 1000}, big = {0, 64ull << 30, 10ull << 30},
                    forged = {0, 256ull << 30, 6804};
    graft_h5__limits(&small, &cpu, &wall);
    ck_assert_uint_eq(cpu, 10);
    ck_assert_uint_eq(wall, 30);
    graft_h5__limits(&big, &cpu, &wall); /* 64 GiB read from a 10 GiB file: 1024 s more */
    ck_assert_uint_eq(cpu, 10 + 1024);
    graft_h5__limits(&forged, &cpu, &wall); /* 256 GiB declared by a 7 kB file */
    ck_assert_uint_eq(cpu, 10);
}
END_TEST

/* A 7 kB file that declares 256 GiB of gzip chunks, one written, its
 * stored size forged (samples/gen/libhdf5_kinds.py): H5Dread fills chunk
 * after chunk for hours; the CPU limit ends it in one line. */
START_TEST(a_file_that_makes_libhdf5_spin_is_stopped)
{
    const char *root = getenv("GRAFT_SOURCE_ROOT");
    char path[4096];
    graft_model *m = NULL;
    uint8_t digest[32];
    unsigned cpu = graft_h5__base_cpu;
    snprintf(path, sizeof path, "%s/tests/fuzz/known-libhdf5/%s", root ? root : ".",
             "libhdf5-H5D-fill-spin-forged-chunk-size.h5");
    ck_assert_int_eq(graft_model_open(&m, path, NULL, ctx), 0);
    ck_assert_uint_eq(graft_model_count(m), 1);
    graft_h5__base_cpu = 1;
    ck_assert_int_eq(graft_tensor_sha256(m, graft_model_tensor(m, 0), digest, ctx), GRAFT_ECORRUPT);
    graft_h5__base_cpu = cpu;
    ck_assert_msg(strstr(graft_ctx_message(ctx),
                         "libhdf5 failed on this file (timed out after 1 s of CPU time while "
                         "reading dataset '/model_weights/dense/dense/kernel:0'); the file is "
                         "malformed or hostile"),
                  "%s", graft_ctx_message(ctx));
    graft_model_free(m);
}
END_TEST

/* Report what the child may do: 3 GiB of memory, opening a file, writing to
 * stdout, starting a process. */
static int probe(void *arg, int fd, graft_ctx *c)
{
    char r[4] = {'m', 'o', 'w', 'f'};
    uint8_t *big = malloc(3ull << 30);
    (void)arg, (void)c;
    if (big) {
        memset(big, 1, 3ull << 30);
        r[0] = 'M';
    }
    if (open("/proc/self/status", O_RDONLY) >= 0) r[1] = 'O';
    if (write(1, "", 0) == 0) r[2] = 'W';
    if (fork() >= 0) r[3] = 'F';
    graft_h5__put(fd, 'R', r, 4);
    return GRAFT_OK;
}

START_TEST(the_child_cannot_open_write_or_spawn_and_has_capped_memory)
{
    got g = {0};
    int rc = graft_h5__sandbox(probe, NULL, NULL, collect, &g, ctx);
    if (rc < 0) {
        /* ASan dies when malloc fails: the memory cap held */
        ck_assert_msg(strstr(graft_ctx_message(ctx), "libhdf5 failed on this file"), "%s",
                      graft_ctx_message(ctx));
        return;
    }
    ck_assert_str_eq(g.text, "Rmowf");
}
END_TEST

static Suite *sandbox_suite(void)
{
    Suite *s = suite_create("h5_sandbox");
    TCase *tc = tcase_create("sandbox");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, records_come_back_in_order);
    tcase_add_test(tc, a_child_error_comes_back_as_written);
    tcase_add_test(tc, a_crash_is_one_line_naming_what_the_child_did);
    tcase_add_test(tc, a_spinning_child_meets_the_cpu_limit);
    tcase_add_test(tc, a_blocked_child_meets_the_wall_clock);
    tcase_add_test(tc, cpu_time_grows_with_the_work_but_not_past_the_file);
    tcase_add_test(tc, a_file_that_makes_libhdf5_spin_is_stopped);
    tcase_add_test(tc, the_child_cannot_open_write_or_spawn_and_has_capped_memory);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(sandbox_suite()); }
