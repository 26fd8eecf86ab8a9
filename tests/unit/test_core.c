/* test_core.c - SHA-256, CRC-32C, tensor table, sink, model opening (the
 * bounded reader is in test_rd.c, the zip reader and writer in test_zip.c). */
#include "testutil.h"

#include "error.h"
#include "format.h"
#include "rd.h"
#include "sha256.h"
#include "sink.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static graft_ctx *ctx;
static void setup(void) { ctx = graft_ctx_new(); }
static void teardown(void) { graft_ctx_free(ctx); }

/* ---- sha256 / crc32c ---------------------------------------------------- */

static void hex_of(const void *p, size_t n, char out[65])
{
    uint8_t d[32];
    graft_sha256(p, n, d);
    graft_sha256_hex(d, out);
}

static void sha256_vectors(void)
{
    char hex[65];
    hex_of("", 0, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(two, strlen(two), hex);
    ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *mil = malloc(1000000);
    memset(mil, 'a', 1000000);
    hex_of(mil, 1000000, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* The same million bytes fed in odd pieces give the same digest. */
    graft_sha256_ctx c;
    uint8_t d[32];
    graft_sha256_init(&c);
    for (size_t off = 0, step = 1; off < 1000000; off += step, step = step * 3 % 997 + 1)
        graft_sha256_update(&c, mil + off, off + step > 1000000 ? 1000000 - off : step);
    graft_sha256_final(&c, d);
    graft_sha256_hex(d, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(mil);
}

START_TEST(sha256_matches_fips_vectors)
{
    sha256_vectors();          /* CPU extensions when present */
    graft_sha256__use_hw(false);
    sha256_vectors();          /* portable rounds */
    graft_sha256__use_hw(true);
}
END_TEST

static void crc32c_vectors(void)
{
    ck_assert_uint_eq(graft_crc32c(0, "123456789", 9), 0xe3069283u);
    uint8_t zeros[32] = {0};
    ck_assert_uint_eq(graft_crc32c(0, zeros, 32), 0x8a9136aau);
    /* incremental == one shot */
    ck_assert_uint_eq(graft_crc32c(graft_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
}

START_TEST(crc32c_matches_known_values)
{
    crc32c_vectors();            /* the crc32 instruction when present */
    graft_crc32c__use_hw(false);
    crc32c_vectors();            /* the portable tables */
    graft_crc32c__use_hw(true);
}
END_TEST

/* The crc32 instruction's three lanes (past 24 KiB) against the portable
 * tables: lengths around every lane boundary, from odd alignments, with a
 * running value carried in. */
START_TEST(crc32c_lanes_match_portable)
{
    const size_t n = 5 * 24576 + 77;
    uint8_t *buf = malloc(n + 8);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < n + 8; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    const size_t lens[] = {24575, 24576, 24577, 24583, 49151, 49152, 49160, 3 * 24576 + 5, n};
    for (size_t off = 0; off < 8; off += 3)
        for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
            uint32_t seed = (uint32_t)(k * 0x01000193u), hw, sw;
            hw = graft_crc32c(seed, buf + off, lens[k]);
            graft_crc32c__use_hw(false);
            sw = graft_crc32c(seed, buf + off, lens[k]);
            graft_crc32c__use_hw(true);
            ck_assert_msg(hw == sw, "length %zu at +%zu: %08x != %08x", lens[k], off, hw, sw);
        }
    free(buf);
}
END_TEST

/* graft_crc32 (folded by carry-less multiplication) against zlib's tables:
 * every length to 300 from every alignment of 16, a running value carried
 * over, large blocks; then again with the portable path. */
static void crc32_against_zlib(void)
{
    static uint8_t buf[1 << 16];
    uint64_t x = 0x243f6a8885a308d3ull;
    for (size_t i = 0; i < sizeof buf; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    ck_assert_uint_eq(graft_crc32(0, "123456789", 9), 0xcbf43926u);
    for (size_t off = 0; off < 16; off++)
        for (size_t n = 0; n <= 300; n++) {
            uint32_t seed = (uint32_t)(n * 2654435761u);
            ck_assert_uint_eq(graft_crc32(seed, buf + off, n),
                              (uint32_t)crc32(seed, buf + off, (uInt)n));
        }
    ck_assert_uint_eq(graft_crc32(0, buf, sizeof buf), (uint32_t)crc32(0, buf, sizeof buf));
    ck_assert_uint_eq(graft_crc32(graft_crc32(0, buf, 1000), buf + 1000, sizeof buf - 1000),
                      (uint32_t)crc32(0, buf, sizeof buf));
}

START_TEST(crc32_matches_zlib)
{
    crc32_against_zlib();        /* pclmul when present */
    graft_crc32c__use_hw(false);
    crc32_against_zlib();        /* zlib all the way */
    graft_crc32c__use_hw(true);
}
END_TEST

/* ---- model ------------------------------------------------------------- */

START_TEST(model_add_checks_overflow_and_duplicates)
{
    graft_model *m;
    int64_t huge[2] = {INT64_MAX / 2, 4};
    int64_t neg[1] = {-1};
    int64_t ok[2] = {2, 3};
    ck_assert_int_eq(graft_model__new(&m, "x", ctx), 0);
    ck_assert_ptr_null(graft_model__add(m, "h", 1, GRAFT_FLOAT32, 2, huge, ctx));
    ck_assert_int_eq(graft_ctx_status(ctx), GRAFT_ELIMIT);
    ck_assert_ptr_null(graft_model__add(m, "n", 1, GRAFT_FLOAT32, 1, neg, ctx));
    ck_assert_int_eq(graft_ctx_status(ctx), GRAFT_ECORRUPT);
    graft_tensor *t = graft_model__add(m, "a", 1, GRAFT_FLOAT32, 2, ok, ctx);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->numel, 6);
    ck_assert_uint_eq(t->nbytes, 24);
    ck_assert_int_eq(graft_model_validate(m, ctx), GRAFT_ECORRUPT); /* no data */
    graft_model_free(m);

    static const uint8_t bytes[64];
    graft_source *src;
    ck_assert_int_eq(graft_model__new(&m, "x", ctx), 0);
    ck_assert_int_eq(graft_source_from_buffer(&src, "buf", bytes, sizeof bytes, ctx), 0);
    ck_assert_int_eq(graft_model__own_source(m, src, ctx), 0);
    t = graft_model__add(m, "a", 1, GRAFT_FLOAT32, 2, ok, ctx);
    t->src = src;
    t->offset = 40; /* 40 + 24 = 64: fits exactly */
    ck_assert_int_eq(graft_model_validate(m, ctx), 0);
    t->offset = 41;
    ck_assert_int_eq(graft_model_validate(m, ctx), GRAFT_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "outside"));
    t->offset = 0;
    t = graft_model__add(m, "a", 1, GRAFT_FLOAT32, 2, ok, ctx);
    t->src = src;
    ck_assert_int_eq(graft_model_validate(m, ctx), GRAFT_ECORRUPT);
    ck_assert_str_eq(graft_ctx_message(ctx), "tensor 'a': name appears twice");
    graft_model_free(m);
}
END_TEST

START_TEST(model_gathers_strided_and_big_endian_views)
{
    /* storage 0..11 as int16; a (3,2) transposed view of a (2,3) matrix at offset 0 */
    uint8_t storage[24];
    for (int i = 0; i < 12; i++) graft_put_le16(storage + 2 * i, (uint16_t)i);
    graft_model *m;
    graft_source *src;
    const uint8_t *p;
    void *owned;
    int64_t shape[2] = {3, 2}, strides[2] = {1, 3};
    ck_assert_int_eq(graft_model__new(&m, "x", ctx), 0);
    ck_assert_int_eq(graft_source_from_buffer(&src, "buf", storage, sizeof storage, ctx), 0);
    ck_assert_int_eq(graft_model__own_source(m, src, ctx), 0);
    graft_tensor *t = graft_model__add(m, "t", 1, GRAFT_INT16, 2, shape, ctx);
    t->src = src;
    t->offset = 2; /* start at element 1 */
    ck_assert_int_eq(graft_model__set_strides(m, t, strides, ctx), 0);
    ck_assert_ptr_nonnull(t->strides);
    ck_assert_int_eq(graft_model_validate(m, ctx), 0);
    ck_assert_int_eq(graft_tensor_bytes(m, t, &p, &owned, ctx), 0);
    ck_assert_ptr_nonnull(owned);
    const int expect[6] = {1, 4, 2, 5, 3, 6};
    for (int i = 0; i < 6; i++) ck_assert_int_eq(graft_le16(p + 2 * i), expect[i]);
    free(owned);
    t->strides = NULL;
    t->big_endian = true;
    ck_assert_int_eq(graft_tensor_bytes(m, t, &p, &owned, ctx), 0);
    ck_assert_int_eq(p[0], 0); /* element 1 stored LE reads back swapped */
    ck_assert_int_eq(p[1], 1);
    free(owned);
    graft_model_free(m);
}
END_TEST

/* ---- sink -------------------------------------------------------------- */

START_TEST(sink_commit_renames_and_abort_leaves_nothing)
{
    char path[600];
    snprintf(path, sizeof path, "%s/out.bin", tu_temp_dir());
    graft_sink *s;
    struct stat st;
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    ck_assert_int_eq(graft_sink_write(s, "abc", 3), 0);
    ck_assert_int_ne(stat(path, &st), 0); /* nothing at the final path yet */
    ck_assert_int_eq(graft_sink_fill(s, 'z', 5000), 0);
    ck_assert_int_eq(graft_sink_pwrite(s, 1, "B", 1), 0);
    ck_assert_uint_eq(graft_sink_tell(s), 5003);
    ck_assert_int_eq(graft_sink_commit(s), 0);
    size_t n;
    uint8_t *b = tu_read_file(path, &n);
    ck_assert_uint_eq(n, 5003);
    ck_assert_int_eq(memcmp(b, "aBcz", 4), 0);
    free(b);

    char other[600];
    snprintf(other, sizeof other, "%s/aborted.bin", tu_temp_dir());
    ck_assert_int_eq(graft_sink_open(&s, other, ctx), 0);
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s", graft_sink_tmp_path(s));
    ck_assert_int_eq(stat(tmp, &st), 0);
    graft_sink_abort(s);
    ck_assert_int_ne(stat(tmp, &st), 0);
    ck_assert_int_ne(stat(other, &st), 0);
}
END_TEST

/* copy_range: kernel-copied file bytes land between buffered writes, in
 * order; a running checksum or an in-memory sink declines (1). */
START_TEST(sink_copy_range_between_writes)
{
    char path[600];
    const char *src;
    const size_t n = 3u << 20;
    uint8_t *data = malloc(n);
    int fd;
    graft_sink *s;
    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < n; i++) data[i] = (uint8_t)(i * 7 + (i >> 11));
    src = tu_write_temp("copy_src.bin", data, n);
    snprintf(path, sizeof path, "%s/copy_out.bin", tu_temp_dir());
    fd = open(src, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    ck_assert_int_eq(graft_sink_write(s, "head", 4), 0);
    ck_assert_int_eq(graft_sink_copy_range(s, fd, 5, n - 10), 0);
    ck_assert_uint_eq(graft_sink_tell(s), 4 + n - 10);
    ck_assert_int_eq(graft_sink_write(s, "tail", 4), 0);
    ck_assert_int_eq(graft_sink_pwrite(s, 0, "H", 1), 0);
    ck_assert_int_eq(graft_sink_commit(s), 0);
    size_t got;
    uint8_t *b = tu_read_file(path, &got);
    ck_assert_uint_eq(got, n - 2);
    ck_assert_int_eq(memcmp(b, "Head", 4), 0);
    ck_assert_int_eq(memcmp(b + 4, data + 5, n - 10), 0);
    ck_assert_int_eq(memcmp(b + got - 4, "tail", 4), 0);
    free(b);
    /* a zip member's running CRC must see the bytes: the caller writes them */
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    graft_sink_crc32_begin(s);
    ck_assert_int_eq(graft_sink_copy_range(s, fd, 0, 10), 1);
    graft_sink_abort(s);
    ck_assert_int_eq(graft_sink_open_mem(&s, ctx), 0);
    ck_assert_int_eq(graft_sink_copy_range(s, fd, 0, 10), 1);
    graft_sink_abort(s);
    /* past the source's end: an error, not a short file */
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    ck_assert_int_lt(graft_sink_copy_range(s, fd, n - 4, 8), 0);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "source ended"));
    graft_sink_abort(s);
    close(fd);
    free(data);
}
END_TEST

/* n pseudo-random bytes (an LCG from seed); the caller frees them. */
static uint8_t *noise(size_t n, uint64_t seed)
{
    uint8_t *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (uint8_t)(seed >> 56);
    }
    return p;
}

/* Commit s and check that the file at path holds exactly want[0..total). */
static void commit_holds(graft_sink *s, const char *path, const uint8_t *want, size_t total)
{
    size_t n;
    ck_assert_int_eq(graft_sink_commit(s), 0);
    uint8_t *got = tu_read_file(path, &n);
    ck_assert_uint_eq(n, total);
    ck_assert_int_eq(memcmp(got, want, total), 0);
    free(got);
}

/* Writes past `bytes` fail with EFBIG (not SIGXFSZ) until *old is restored. */
static void limit_file_size(struct rlimit *old, rlim_t bytes)
{
    struct rlimit lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, old), 0);
    lim = *old;
    lim.rlim_cur = bytes;
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
}

/* Past 4 MB a sink writes on a second thread: appends, reserved writes in
 * any order, patches into bytes still queued, a read back half way and
 * the running CRC must give the same file as one buffer written in order;
 * a failed write there is reported by a later call. */
START_TEST(sink_write_behind_keeps_order_and_reports_failures)
{
    const size_t total = 14u << 20, res = 3u << 20;
    uint8_t *want = noise(total, 12345);
    char path[600];
    snprintf(path, sizeof path, "%s/behind.bin", tu_temp_dir());
    graft_sink *s;
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    size_t at = 0;
    for (size_t step = 1; at < 6u << 20; step = step * 7 % 1500007 + 3) { /* odd pieces */
        size_t k = step < (6u << 20) - at ? step : (6u << 20) - at;
        ck_assert_int_eq(graft_sink_write(s, want + at, k), 0);
        at += k;
    }
    uint64_t off = 0;
    ck_assert_int_eq(graft_sink_reserve(s, res, &off), 0);
    ck_assert_uint_eq(off, at);
    for (size_t k = res; k > 0;) { /* reserved space, back to front, in 700 KB runs */
        size_t n = k < 700000 ? k : 700000;
        k -= n;
        ck_assert_int_eq(graft_sink_write_at(s, off + k, want + off + k, n), 0);
    }
    at += res;
    ck_assert_int_eq(graft_sink_write(s, want + at, 2u << 20), 0); /* one large write */
    at += 2u << 20;
    /* a patch into bytes that may still be queued */
    uint8_t patch[5000];
    memset(patch, 0xa5, sizeof patch);
    memcpy(want + at - 3000, patch, sizeof patch - 2000);
    ck_assert_int_eq(graft_sink_pwrite(s, at - 3000, patch, 3000), 0);
    int fd;
    ck_assert_int_eq(graft_sink_reopen(s, &fd, ctx), 0); /* everything so far is there */
    uint8_t *back = malloc(at);
    ck_assert_int_eq(pread(fd, back, at, 0), (ssize_t)at);
    ck_assert_int_eq(memcmp(back, want, at), 0);
    close(fd);
    free(back);
    graft_sink_crc32_begin(s);
    ck_assert_int_eq(graft_sink_write(s, want + at, total - at), 0);
    ck_assert_uint_eq(graft_sink_crc32_end(s), (uint32_t)crc32(0, want + at, (uInt)(total - at)));
    ck_assert_uint_eq(graft_sink_tell(s), total);
    commit_holds(s, path, want, total);

    /* a file size limit: the writer thread's pwrite fails with EFBIG */
    struct rlimit old;
    limit_file_size(&old, 5u << 20);
    snprintf(path, sizeof path, "%s/behind_full.bin", tu_temp_dir());
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < 12; i++) rc = graft_sink_write(s, want + (i << 20), 1u << 20);
    if (rc == 0) rc = graft_sink_commit(s);
    else graft_sink_abort(s);
    setrlimit(RLIMIT_FSIZE, &old);
    ck_assert_int_lt(rc, 0);
    ck_assert_msg(strstr(graft_ctx_message(ctx), "write failed"), "%s", graft_ctx_message(ctx));
    struct stat st;
    ck_assert_int_ne(stat(path, &st), 0);
    free(want);
}
END_TEST

/* Lent writes (graft_sink_lend / lend_at): the writer thread writes from the
 * caller's memory, in order with copied writes, under the running CRC; a
 * ticket's wait returns once its bytes are in the file, so the memory can be
 * reused; a failed lent write is reported by the wait. */
START_TEST(sink_lent_writes_keep_order_and_report_failures)
{
    const size_t total = 24u << 20;
    uint8_t *want = noise(total, 777), *lent = malloc(total);
    char path[600];
    snprintf(path, sizeof path, "%s/lent.bin", tu_temp_dir());
    graft_sink *s;
    uint64_t t1 = 0, t2 = 0, off = 0;
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    ck_assert_int_eq(graft_sink_write(s, want, (5u << 20) + 17), 0); /* past the threshold */
    graft_sink_crc32_begin(s);
    size_t at = (5u << 20) + 17;
    /* one buffer lent twice: the second fill waits for the first write */
    memcpy(lent, want + at, 3u << 20);
    ck_assert_int_eq(graft_sink_lend(s, lent, 3u << 20, &t1), 0);
    ck_assert_uint_gt(t1, 0);
    ck_assert_int_eq(graft_sink_write(s, want + at + (3u << 20), 1000), 0); /* copied, between */
    ck_assert_int_eq(graft_sink_wait(s, t1), 0);
    memcpy(lent, want + at + (3u << 20) + 1000, 3u << 20);
    ck_assert_int_eq(graft_sink_lend(s, lent, 3u << 20, &t2), 0);
    ck_assert_uint_gt(t2, t1);
    at += (6u << 20) + 1000;
    ck_assert_uint_eq(graft_sink_crc32_end(s), (uint32_t)crc32(0, want + (5u << 20) + 17,
                                                                (uInt)(at - (5u << 20) - 17)));
    ck_assert_int_eq(graft_sink_wait(s, t2), 0);
    /* reserved space filled by lent runs, back to front, from one buffer */
    ck_assert_int_eq(graft_sink_reserve(s, total - at, &off), 0);
    ck_assert_uint_eq(off, at);
    memcpy(lent, want + at, total - at);
    for (size_t k = total - at; k > 0;) {
        size_t n = k < 1500000 ? k : 1500000;
        k -= n;
        ck_assert_int_eq(graft_sink_lend_at(s, off + k, lent + k, n, &t1), 0);
    }
    ck_assert_int_eq(graft_sink_settle(s), 0);
    memset(lent, 0, total); /* all written: the file keeps the bytes */
    commit_holds(s, path, want, total);

    struct rlimit old; /* EFBIG on the writer thread: the wait says so */
    limit_file_size(&old, 6u << 20);
    snprintf(path, sizeof path, "%s/lent_full.bin", tu_temp_dir());
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    int rc = graft_sink_write(s, want, 5u << 20);
    if (rc == 0) rc = graft_sink_lend(s, want, 4u << 20, &t1);
    if (rc == 0) rc = graft_sink_wait(s, t1);
    setrlimit(RLIMIT_FSIZE, &old);
    ck_assert_int_lt(rc, 0);
    ck_assert_msg(strstr(graft_ctx_message(ctx), "write failed"), "%s", graft_ctx_message(ctx));
    graft_sink_abort(s);
    struct stat st;
    ck_assert_int_ne(stat(path, &st), 0);
    free(lent);
    free(want);
}
END_TEST

/* Entries of a folder (".", ".." excluded). */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* On Linux an output being written has no name, so no kill can leave it
 * behind; one named for libhdf5 is removed by the CLI's signal handler
 * (issue 18, item 17). */
START_TEST(sink_writes_unnamed_and_signal_cleanup_removes_named)
{
    char dir[600], path[700];
    struct stat st;
    graft_sink *s;
    snprintf(dir, sizeof dir, "%s/sinkdir", tu_temp_dir());
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/out.bin", dir);
    mode_t um = umask(022);
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    ck_assert_int_eq(graft_sink_fill(s, 'x', 1 << 20), 0);
    ck_assert_int_eq(graft_sink_write(s, "end", 3), 0);
    ck_assert_int_eq(entries(dir), 0); /* written, but nothing has a name */
    ck_assert_int_eq(graft_sink_commit(s), 0);
    ck_assert_int_eq(entries(dir), 1);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, (1 << 20) + 3);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    /* over an existing file: replaced whole */
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    ck_assert_int_eq(graft_sink_write(s, "new", 3), 0);
    ck_assert_int_eq(graft_sink_commit(s), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 3);
    ck_assert_int_eq(entries(dir), 1);
    /* named on demand, and gone after what a signal handler does */
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    const char *tmp = graft_sink_tmp_path(s);
    ck_assert_msg(strstr(tmp, "/.out.bin.graft-") != NULL, "%s", tmp);
    ck_assert_int_eq(stat(tmp, &st), 0);
    ck_assert_int_eq(entries(dir), 2);
    graft_unlink_temporaries();
    ck_assert_int_eq(entries(dir), 1);
    graft_sink_abort(s);
    umask(um);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(open_reports_missing_and_unknown_files)
{
    graft_model *m;
    ck_assert_int_eq(graft_model_open(&m, "/nonexistent/file.bin", NULL, ctx), GRAFT_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "/nonexistent/file.bin"));
    const char *p = tu_write_temp("junk.bin", "not a model at all", 18);
    ck_assert_int_eq(graft_model_open(&m, p, NULL, ctx), GRAFT_EFORMAT);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "junk.bin"));
    ck_assert_ptr_null(m);
}
END_TEST

/* A small model built tensor by tensor (its table grows several times). */
static int build_model(graft_ctx *c, void *payload)
{
    graft_model *m = NULL;
    int64_t shape[1] = {4};
    (void)payload;
    int rc = graft_model__new(&m, "x", c);
    for (int i = 0; rc == 0 && i < 100; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        if (!graft_model__add(m, name, strlen(name), GRAFT_FLOAT32, 1, shape, c))
            rc = graft_ctx_status(c);
    }
    graft_model_free(m);
    return rc;
}

START_TEST(allocation_failures_are_reported_not_crashed)
{
    ck_assert_int_gt(tu_each_alloc_failure(ctx, build_model, NULL), 3);
}
END_TEST

static int short_emit(graft_fill *f, size_t index, graft_sink *out, graft_ctx *c)
{
    (void)f;
    (void)index;
    (void)c;
    return graft_sink_write(out, "\0\0\0\0", 4); /* half of a float32[2] */
}

START_TEST(writers_refuse_an_emit_of_the_wrong_size)
{
    /* a safetensors file with one float32[2] tensor */
    static const char hdr[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    uint8_t file[256] = {0};
    size_t hlen = (sizeof hdr - 1 + 7) / 8 * 8;
    memset(file + 8, ' ', hlen);
    memcpy(file + 8, hdr, sizeof hdr - 1);
    graft_put_le64(file, hlen);
    graft_model *m;
    ck_assert_int_eq(graft_model_open_buffer(&m, "x.safetensors", file, 8 + hlen + 8, NULL, ctx), 0);
    char out[600];
    snprintf(out, sizeof out, "%s/short.safetensors", tu_temp_dir());
    graft_fill fill = {short_emit, NULL};
    ck_assert_int_eq(m->format->write(m, out, &fill, ctx), GRAFT_ERROR);
    ck_assert_str_eq(graft_ctx_message(ctx), "tensor 'a': 4 bytes written, expected 8");
    struct stat st;
    ck_assert_int_ne(stat(out, &st), 0); /* nothing at the output path */
    graft_model_free(m);
}
END_TEST

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, sha256_matches_fips_vectors);
    tcase_add_test(tc, crc32c_matches_known_values);
    tcase_add_test(tc, crc32c_lanes_match_portable);
    tcase_add_test(tc, crc32_matches_zlib);
    tcase_add_test(tc, model_add_checks_overflow_and_duplicates);
    tcase_add_test(tc, model_gathers_strided_and_big_endian_views);
    tcase_add_test(tc, sink_commit_renames_and_abort_leaves_nothing);
    tcase_add_test(tc, sink_copy_range_between_writes);
    tcase_add_test(tc, sink_write_behind_keeps_order_and_reports_failures);
    tcase_add_test(tc, sink_lent_writes_keep_order_and_report_failures);
    tcase_add_test(tc, open_reports_missing_and_unknown_files);
    tcase_add_test(tc, allocation_failures_are_reported_not_crashed);
    tcase_add_test(tc, writers_refuse_an_emit_of_the_wrong_size);
    tcase_add_test(tc, sink_writes_unnamed_and_signal_cleanup_removes_named);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(core_suite());
}
