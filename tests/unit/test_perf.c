/* test_perf.c - the fast paths added for speed and memory: the SSE4.2
 * CRC-32C against a bitwise reference, and op chains run with source pages
 * released from a mapped file mid-way (graft_ops_run_released), for every
 * element size, against a naive permute, including the out-of-core
 * permute with its threshold lowered. */
#define _GNU_SOURCE
#include "testutil.h"

#include "../../src/transform/kernels.h"
#include "error.h"
#include "sink.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint32_t crc32c_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
    }
    return ~crc;
}

START_TEST(crc32c_matches_bitwise_reference_at_every_length_and_alignment)
{
    uint8_t buf[4096 + 16];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)rnd();
    for (size_t align = 0; align < 8; align++)
        for (size_t n = 0; n <= 300; n++)
            ck_assert_uint_eq(graft_crc32c(0, buf + align, n),
                              crc32c_bitwise(0, buf + align, n));
    /* Long runs, and a CRC continued across calls split at odd places. */
    uint32_t whole = crc32c_bitwise(0, buf + 3, 4096);
    ck_assert_uint_eq(graft_crc32c(0, buf + 3, 4096), whole);
    uint32_t c = graft_crc32c(0, buf + 3, 1001);
    c = graft_crc32c(c, buf + 1004, 7);
    c = graft_crc32c(c, buf + 1011, 4096 - 1008);
    ck_assert_uint_eq(c, whole);
    ck_assert_uint_eq(graft_crc32c(0, "123456789", 9), 0xe3069283u);
}
END_TEST

/* out[j] = in[i] where out index (i over out dims) maps back through axes. */
static void ref_permute(uint8_t *dst, const uint8_t *src, size_t w, uint32_t n,
                        const int64_t *d, const int64_t *axes)
{
    int64_t st[8], od[8], idx[8] = {0};
    uint64_t total = 1;
    st[n - 1] = 1;
    for (uint32_t i = n - 1; i > 0; i--) st[i - 1] = st[i] * d[i];
    for (uint32_t i = 0; i < n; i++) {
        od[i] = d[axes[i]];
        total *= (uint64_t)d[i];
    }
    for (uint64_t k = 0; k < total; k++) {
        int64_t off = 0;
        for (uint32_t i = 0; i < n; i++) off += idx[i] * st[axes[i]];
        memcpy(dst + k * w, src + (uint64_t)off * w, w);
        for (uint32_t i = n; i-- > 0;) {
            if (++idx[i] < od[i]) break;
            idx[i] = 0;
        }
    }
}

typedef struct mapped {
    uint8_t *p;
    size_t n;
    int releases;
    int reads;      /* by read_mapped, from two threads */
    bool use_read;  /* run with read_mapped, as apply does (graft_ops_run_io) */
    size_t fail_at; /* read_mapped fails on the piece holding this byte; 0: never */
} mapped;

static int read_mapped(void *payload, const uint8_t *at, void *dst, size_t n, graft_ctx *ctx)
{
    mapped *m = payload;
    size_t off = (size_t)(at - m->p);
    __atomic_fetch_add(&m->reads, 1, __ATOMIC_RELAXED);
    if (m->fail_at && off <= m->fail_at && m->fail_at < off + n)
        return graft_error(ctx, GRAFT_EIO, "src.bin: read at %zu failed: Input/output error", off);
    memcpy(dst, at, n);
    return GRAFT_OK;
}

static void drop_pages(void *payload)
{
    mapped *m = payload;
    ck_assert_int_eq(madvise(m->p, m->n, MADV_DONTNEED), 0);
    m->releases++;
}

static const size_t esizes[] = {1, 2, 4, 8, 16};
static const graft_dtype dtypes[] = {GRAFT_UINT8, GRAFT_INT16, GRAFT_FLOAT32, GRAFT_INT64,
                                     GRAFT_COMPLEX128};

/* Permute an n-d tensor of random bytes mapped from a file through
 * graft_ops_run_released, dropping the mapped pages at every release, and
 * compare with the naive permute. */
static bool use_read; /* the next run_released reads through read_mapped */

static int run_released(size_t w, graft_dtype dt, uint32_t nd, const int64_t *d, int64_t *axes,
                        bool checksum)
{
    size_t n = w, got_n = 0;
    for (uint32_t i = 0; i < nd; i++) n *= (size_t)d[i];
    uint8_t *src = malloc(n), *want = malloc(n);
    for (size_t i = 0; i < n; i++) src[i] = (uint8_t)rnd();
    const char *path = tu_write_temp("src.bin", src, n);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    mapped m = {.n = n};
    m.p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fileno(f), 0);
    ck_assert(m.p != MAP_FAILED);
    graft_tview in = {{.dtype = dt, .ndim = nd}, m.p};
    for (uint32_t i = 0; i < nd; i++) in.shape.dim[i] = d[i];
    graft_op op = {.kind = GRAFT_OP_PERMUTE, .n = nd, .v = axes, .file = "m.yaml", .line = 1};
    char out[512];
    snprintf(out, sizeof out, "%s/out%zu.bin", tu_temp_dir(), w);
    graft_sink *s = NULL;
    ck_assert_int_eq(graft_sink_open(&s, out, tu_ctx), 0);
    if (checksum) graft_sink_crc32c_begin(s); /* no positioned writes: the two passes */
    int rc = use_read ? graft_ops_run_io(&op, 1, &in, 1, s, drop_pages, read_mapped, &m, tu_ctx)
                      : graft_ops_run_released(&op, 1, &in, 1, s, drop_pages, &m, tu_ctx);
    ck_assert_msg(rc == 0, "%s", graft_ctx_message(tu_ctx));
    if (use_read) ck_assert_int_ge(m.reads, (int)d[0]); /* a piece of every source row */
    if (checksum) graft_sink_crc32c_end(s);
    ck_assert_int_eq(graft_sink_commit(s), 0);
    ref_permute(want, src, w, nd, d, axes);
    uint8_t *got = tu_read_file(out, &got_n);
    ck_assert_uint_eq(got_n, n);
    ck_assert_int_eq(memcmp(got, want, n), 0);
    free(got);
    munmap(m.p, n);
    fclose(f);
    unlink(path);
    unlink(out);
    free(want);
    free(src);
    return m.releases;
}

/* Only the banded transpose and the out-of-core permute release mid-way;
 * other permutes may read all of their source per slab and hold it to the
 * end. */
static void check_released(size_t w, graft_dtype dt, uint32_t nd, const int64_t *d,
                           int64_t *axes, bool banded)
{
    int releases = run_released(w, dt, nd, d, axes, false);
    size_t n = w;
    for (uint32_t i = 0; i < nd; i++) n *= (size_t)d[i];
    if (use_read) /* preads map nothing: the pages go as the output is emitted */
        ck_assert_int_ge(releases, 1);
    else if (banded)
        ck_assert_int_ge(releases, (int)(n / ((size_t)4 << 20)));
    else
        ck_assert_int_eq(releases, 0);
}

START_TEST(permute_with_released_mapped_source_matches_reference)
{
    /* Odd sizes, over GRAFT_OPS_RELEASE bytes: the slab path through the
     * released variant gives the same bytes. */
    size_t w = esizes[_i];
    int64_t rows = _i < 2 ? 4099 : 1031;
    int64_t cols = ((int64_t)((GRAFT_OPS_RELEASE * 5 / 4) / w) / rows / 3) | 1;
    int64_t d[3] = {rows, 3, cols}, axes[3] = {2, 1, 0};
    check_released(w, dtypes[_i], 3, d, axes, false);
}
END_TEST

START_TEST(large_transpose_in_bands_matches_reference)
{
    /* A 2-D transpose over 64 MiB takes the banded path (staged columns,
     * pages released between row groups): odd sizes, ragged last band. */
    size_t w = esizes[_i];
    int64_t rows = _i == 0 ? 8191 : 1031;
    int64_t cols = ((int64_t)(((size_t)65 << 20) / w) / rows) | 1;
    int64_t d[2] = {rows, cols}, axes[2] = {1, 0};
    check_released(w, dtypes[_i], 2, d, axes, true);
}
END_TEST

/*
 * The out-of-core permute (ooc.c) with its threshold lowered to 1 byte and
 * blocks of `block` elements' worth of bytes: ranks 2..5, the outermost
 * source axis moved to every inner position, ragged last blocks, output
 * rows both shorter than a block (interleaved slabs) and longer (piece by
 * piece).  Pass 1 releases the source once per block.
 */
typedef struct ooc_case {
    uint32_t nd;
    int64_t d[5], axes[5];
    size_t block; /* elements */
    int blocks;   /* expected releases; 0: not taken out of core */
} ooc_case;

static const ooc_case ooc_cases[] = {
    {4, {37, 5, 3, 7}, {2, 3, 1, 0}, 1000, 5}, /* OCHW -> HWCO, 9 rows a block */
    {3, {29, 11, 13}, {1, 0, 2}, 300, 15},     /* O in the middle */
    {2, {53, 41}, {1, 0}, 130, 18},            /* a 2-D transpose */
    {5, {13, 2, 3, 4, 5}, {4, 0, 3, 1, 2}, 250, 7},
    {3, {300, 3, 2}, {1, 0, 2}, 100, 19},   /* rows longer than a block */
    {4, {9, 1, 6, 5}, {3, 1, 0, 2}, 61, 5}, /* a size-1 axis dropped */
    {3, {40, 7, 9}, {0, 2, 1}, 100, 0},     /* O stays outermost */
    {3, {40, 7, 9}, {2, 1, 0}, 50, 0},      /* a row exceeds the block */
};

START_TEST(out_of_core_permute_matches_reference)
{
    const ooc_case *c = &ooc_cases[_i / 5];
    size_t w = esizes[_i % 5];
    int64_t axes[5];
    memcpy(axes, c->axes, sizeof axes);
    graft_xform__set_ooc(1, c->block * w);
    int releases = run_released(w, dtypes[_i % 5], c->nd, c->d, axes, true);
    /* into a sink that takes positioned writes: in one pass where it can */
    int in_place = run_released(w, dtypes[_i % 5], c->nd, c->d, axes, false);
    graft_xform__set_ooc(0, 0);
    ck_assert_int_eq(releases, c->blocks);
    if (c->blocks) ck_assert_int_gt(in_place, 0);
    else ck_assert_int_eq(in_place, 0);
}
END_TEST

START_TEST(out_of_core_permute_without_temp_folder_fails_clearly)
{
    /* The temporary file goes beside the output: move the folder away
     * after the sink is open and the permute cannot create it. */
    int64_t axes[4] = {2, 3, 1, 0};
    size_t n = 16 * 4 * 3 * 3 * 4;
    uint8_t *src = calloc(1, n);
    graft_tview in = {{.dtype = GRAFT_FLOAT32, .ndim = 4, .dim = {16, 4, 3, 3}}, src};
    graft_op op = {.kind = GRAFT_OP_PERMUTE, .n = 4, .v = axes, .file = "m.yaml", .line = 3};
    char dir[512], moved[512], out[600];
    snprintf(dir, sizeof dir, "%s/ooc", tu_temp_dir());
    snprintf(moved, sizeof moved, "%s/ooc-moved", tu_temp_dir());
    snprintf(out, sizeof out, "%s/out.bin", dir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    graft_sink *s = NULL;
    ck_assert_int_eq(graft_sink_open(&s, out, tu_ctx), 0);
    ck_assert_int_eq(rename(dir, moved), 0);
    graft_sink_crc32c_begin(s); /* written in place otherwise, with no temporary file */
    mapped m = {0};
    graft_xform__set_ooc(1, 4096);
    int rc = graft_ops_run_released(&op, 1, &in, 1, s, drop_pages, &m, tu_ctx);
    graft_xform__set_ooc(0, 0);
    ck_assert_int_eq(rc, GRAFT_EIO);
    const char *msg = graft_ctx_message(tu_ctx);
    ck_assert_msg(strstr(msg, "permute of 2304 bytes: cannot create a temporary file in '") &&
                      strstr(msg, "/ooc': No such file or directory") && !strchr(msg, '\n'),
                  "%s", msg);
    ck_assert_int_eq(rename(moved, dir), 0);
    graft_sink_abort(s);
    ck_assert_int_eq(rmdir(dir), 0);
    free(src);
}
END_TEST

START_TEST(released_chains_through_memory_never_call_release)
{
    /* Two data-moving ops: the first writes an intermediate buffer (no sink,
     * no release); the last streams to the sink and releases. */
    int64_t d[2] = {2048, 2047}, t[2] = {1, 0}; /* just under GRAFT_OPS_RELEASE bytes */
    size_t n = (size_t)(d[0] * d[1]) * 4, got_n = 0;
    uint8_t *src = malloc(n);
    for (size_t i = 0; i < n; i++) src[i] = (uint8_t)rnd();
    graft_tview in = {{.dtype = GRAFT_FLOAT32, .ndim = 2, .dim = {d[0], d[1]}}, src};
    graft_op ops[2] = {{.kind = GRAFT_OP_PERMUTE, .n = 2, .v = t, .file = "m.yaml", .line = 1},
                       {.kind = GRAFT_OP_PERMUTE, .n = 2, .v = t, .file = "m.yaml", .line = 2}};
    mapped m = {0};
    char out[512];
    snprintf(out, sizeof out, "%s/twice.bin", tu_temp_dir());
    graft_sink *s = NULL;
    ck_assert_int_eq(graft_sink_open(&s, out, tu_ctx), 0);
    /* payload with n == 0: madvise of nothing is fine and counts calls */
    m.p = NULL;
    ck_assert_int_eq(graft_ops_run_released(ops, 2, &in, 1, s, drop_pages, &m, tu_ctx), 0);
    ck_assert_int_eq(graft_sink_commit(s), 0);
    ck_assert_int_eq(m.releases, 0); /* the intermediate pass did not count */
    uint8_t *got = tu_read_file(out, &got_n);
    ck_assert_uint_eq(got_n, n);
    ck_assert_int_eq(memcmp(got, src, n), 0); /* transposed twice */
    free(got);
    free(src);
}
END_TEST

START_TEST(large_permutes_read_by_pread_match_reference)
{
    /* apply's way: scattered pieces read with pread on two threads, and
     * outputs over the sink's write-behind threshold, so the writer thread
     * writes the slabs and blocks from the kernels' own buffers.  0: a band
     * transpose with 66 KB rows; 1: the flatten reorder [O,C,H,W] ->
     * [H,W,C,O] written in place in several blocks. */
    use_read = true;
    if (_i == 0) {
        int64_t d[2] = {1031, 16411}, axes[2] = {1, 0};
        check_released(4, GRAFT_FLOAT32, 2, d, axes, true);
    } else {
        int64_t d[4] = {515, 64, 7, 7}, axes[4] = {2, 3, 1, 0};
        uint64_t before = graft_xform__ooc_in_place();
        graft_xform__set_ooc(1, (size_t)2 << 20);
        run_released(4, GRAFT_FLOAT32, 4, d, axes, false);
        graft_xform__set_ooc(0, 0);
        ck_assert_uint_eq(graft_xform__ooc_in_place() - before, 1);
    }
    use_read = false;
}
END_TEST

START_TEST(failed_read_on_second_thread_is_reported_whole)
{
    /* A read that fails in the rows the second thread reads: the permute
     * fails with that read's message, and the output is not committed. */
    int64_t d[2] = {1031, 16411}, axes[2] = {1, 0};
    size_t n = (size_t)(d[0] * d[1]) * 4;
    uint8_t *src = calloc(1, n);
    const char *path = tu_write_temp("fail.bin", src, n);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    mapped m = {.n = n, .fail_at = (size_t)1000 * 16411 * 4 + 12};
    m.p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fileno(f), 0);
    ck_assert(m.p != MAP_FAILED);
    graft_tview in = {{.dtype = GRAFT_FLOAT32, .ndim = 2, .dim = {d[0], d[1]}}, m.p};
    graft_op op = {.kind = GRAFT_OP_PERMUTE, .n = 2, .v = axes, .file = "m.yaml", .line = 1};
    char out[512];
    snprintf(out, sizeof out, "%s/fail_out.bin", tu_temp_dir());
    graft_sink *s = NULL;
    ck_assert_int_eq(graft_sink_open(&s, out, tu_ctx), 0);
    int rc = graft_ops_run_io(&op, 1, &in, 1, s, drop_pages, read_mapped, &m, tu_ctx);
    ck_assert_int_eq(rc, GRAFT_EIO);
    ck_assert_str_eq(graft_ctx_message(tu_ctx),
                     "src.bin: read at 65644000 failed: Input/output error");
    graft_sink_abort(s);
    ck_assert_int_ne(access(out, F_OK), 0);
    munmap(m.p, n);
    fclose(f);
    unlink(path);
    free(src);
}
END_TEST

static Suite *perf_suite(void)
{
    Suite *s = suite_create("perf");
    TCase *tc = tcase_create("perf");
    tcase_add_checked_fixture(tc, tu_arena_setup, tu_arena_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, crc32c_matches_bitwise_reference_at_every_length_and_alignment);
    tcase_add_loop_test(tc, permute_with_released_mapped_source_matches_reference, 0, 5);
    tcase_add_loop_test(tc, large_transpose_in_bands_matches_reference, 0, 5);
    tcase_add_test(tc, released_chains_through_memory_never_call_release);
    tcase_add_loop_test(tc, out_of_core_permute_matches_reference, 0,
                        (int)(5 * (sizeof ooc_cases / sizeof ooc_cases[0])));
    tcase_add_test(tc, out_of_core_permute_without_temp_folder_fails_clearly);
    tcase_add_loop_test(tc, large_permutes_read_by_pread_match_reference, 0, 2);
    tcase_add_test(tc, failed_read_on_second_thread_is_reported_whole);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(perf_suite());
}
