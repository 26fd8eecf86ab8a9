/*
 * test_zip.c - the zip reader (core/zip.c) and writer (core/zipw.c): members
 * stored and deflated, CRC and truncation errors, archives read back.
 *
 * Also a helper for tests/interop/test_numpy_safetensors.py, which checks
 * the same archives with Python's zipfile:
 *   test_zip write OUT [zip64]   the demo archive below
 *   test_zip copy IN OUT         every member of IN copied unchanged
 */
#define _GNU_SOURCE
#include "testutil.h"

#include "rd.h"
#include "sink.h"
#include "zip.h"
#include "zipw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static graft_ctx *ctx;
static void setup(void) { ctx = graft_ctx_new(); }
static void teardown(void) { graft_ctx_free(ctx); }

/* ---- zip ---------------------------------------------------------------- */

/* A minimal archive: one stored entry "a/x" = "hello", one deflated "a/y". */
static size_t make_zip(uint8_t *out, bool corrupt_crc)
{
    uint8_t comp[128];
    const char *ytext = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    z_stream s = {0};
    deflateInit2(&s, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    s.next_in = (Bytef *)ytext;
    s.avail_in = (uInt)strlen(ytext);
    s.next_out = comp;
    s.avail_out = sizeof comp;
    deflate(&s, Z_FINISH);
    size_t clen = sizeof comp - s.avail_out;
    deflateEnd(&s);

    struct { const char *name; const uint8_t *data; size_t clen, ulen; uint16_t method; uint32_t crc; } e[2] = {
        {"a/x", (const uint8_t *)"hello", 5, 5, 0, (uint32_t)crc32(0, (const Bytef *)"hello", 5)},
        {"a/y", comp, clen, strlen(ytext), 8, (uint32_t)crc32(0, (const Bytef *)ytext, (uInt)strlen(ytext))},
    };
    if (corrupt_crc) e[1].crc ^= 1;
    size_t pos = 0, offs[2];
    for (int i = 0; i < 2; i++) {
        offs[i] = pos;
        uint8_t *h = out + pos;
        memset(h, 0, 30);
        graft_put_le32(h, 0x04034b50);
        graft_put_le16(h + 8, e[i].method);
        graft_put_le32(h + 14, e[i].crc);
        graft_put_le32(h + 18, (uint32_t)e[i].clen);
        graft_put_le32(h + 22, (uint32_t)e[i].ulen);
        graft_put_le16(h + 26, 3);
        memcpy(h + 30, e[i].name, 3);
        memcpy(h + 33, e[i].data, e[i].clen);
        pos += 33 + e[i].clen;
    }
    size_t cd = pos;
    for (int i = 0; i < 2; i++) {
        uint8_t *h = out + pos;
        memset(h, 0, 46);
        graft_put_le32(h, 0x02014b50);
        graft_put_le16(h + 10, e[i].method);
        graft_put_le32(h + 16, e[i].crc);
        graft_put_le32(h + 20, (uint32_t)e[i].clen);
        graft_put_le32(h + 24, (uint32_t)e[i].ulen);
        graft_put_le16(h + 28, 3);
        graft_put_le32(h + 42, (uint32_t)offs[i]);
        memcpy(h + 46, e[i].name, 3);
        pos += 49;
    }
    uint8_t *h = out + pos;
    memset(h, 0, 22);
    graft_put_le32(h, 0x06054b50);
    graft_put_le16(h + 8, 2);
    graft_put_le16(h + 10, 2);
    graft_put_le32(h + 12, (uint32_t)(pos - cd));
    graft_put_le32(h + 16, (uint32_t)cd);
    return pos + 22;
}

START_TEST(zip_reads_stored_and_deflated_members)
{
    uint8_t buf[1024], out[64];
    size_t n = make_zip(buf, false);
    graft_zip *z;
    const uint8_t *p;
    ck_assert_int_eq(graft_zip_open(&z, buf, n, ctx), 0);
    ck_assert_uint_eq(z->count, 2);
    const graft_zip_entry *x = graft_zip_find(z, "a/x"), *y = graft_zip_find(z, "a/y");
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(graft_zip_borrow(z, x, NULL, &p, ctx), 0);
    ck_assert_int_eq(memcmp(p, "hello", 5), 0);
    ck_assert_int_eq(graft_zip_borrow(z, y, NULL, &p, ctx), GRAFT_EFORMAT);
    ck_assert_int_eq(graft_zip_extract(z, y, out, y->usize, ctx), 0);
    ck_assert_int_eq(out[0], 'a');
    ck_assert_int_eq(out[63], 'a');
    graft_zip_free(z);
}
END_TEST

START_TEST(zip_detects_crc_mismatch_and_truncation)
{
    uint8_t buf[1024], out[64];
    size_t n = make_zip(buf, true);
    graft_zip *z;
    ck_assert_int_eq(graft_zip_open(&z, buf, n, ctx), 0);
    const graft_zip_entry *y = graft_zip_find(z, "a/y");
    ck_assert_int_eq(graft_zip_extract(z, y, out, y->usize, ctx), GRAFT_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "CRC-32"));
    graft_zip_free(z);
    /* Every truncation fails cleanly (no end record, or data past the end). */
    n = make_zip(buf, false);
    for (size_t cut = 0; cut < n; cut++) {
        ck_assert_int_lt(graft_zip_open(&z, buf, cut, ctx), 0);
        ck_assert_ptr_null(z);
    }
    /* A central directory offset past the end. */
    graft_put_le32(buf + n - 6, 0x7fffffff);
    ck_assert_int_eq(graft_zip_open(&z, buf, n, ctx), GRAFT_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "central directory"));
}
END_TEST

/* A member whose data runs into the next local header (issue 18, item 10). */
START_TEST(zip_refuses_overlapping_members)
{
    uint8_t buf[1024];
    size_t n = make_zip(buf, false);
    graft_zip *z;
    /* the first central entry ("a/x", 5 stored bytes) follows the 2 local records */
    size_t cd = graft_le32(buf + n - 6);
    ck_assert_uint_eq(graft_le32(buf + cd), 0x02014b50);
    graft_put_le32(buf + cd + 20, 6);
    graft_put_le32(buf + cd + 24, 6);
    ck_assert_int_eq(graft_zip_open(&z, buf, n, ctx), GRAFT_ECORRUPT);
    ck_assert_msg(strstr(graft_ctx_message(ctx), "entry 'a/x' (data up to offset 0x27) overlaps "
                                                 "entry 'a/y' at offset 0x26"),
                  "%s", graft_ctx_message(ctx));
    ck_assert_ptr_null(z);
}
END_TEST

/* ---- zip writer --------------------------------------------------------- */

static uint8_t big[100000];

static void fill_big(void)
{
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i % 251 ^ i / 1000);
}

/* The demo archive: stored, deflated, aligned, UTF-8 named and empty members. */
static int write_demo(const char *path, bool zip64, graft_ctx *c)
{
    graft_sink *s = NULL;
    graft_zipw *w = NULL;
    int rc;
    fill_big();
    if ((rc = graft_sink_open(&s, path, c)) < 0) return rc;
    if ((rc = graft_zipw_new(&w, s, zip64, c)) < 0) goto out;
    if ((rc = graft_zipw_add(w, "a.txt", "hello", 5, 0, GRAFT_ZIPW_STORED)) < 0) goto out;
    if ((rc = graft_zipw_add(w, "dir/b.bin", big, sizeof big, 0, GRAFT_ZIPW_DEFLATED)) < 0)
        goto out;
    /* written straight to the sink, as a format's fill->emit does */
    if ((rc = graft_zipw_begin(w, "c.dat", 64, GRAFT_ZIPW_STORED, 1000)) < 0) goto out;
    if ((rc = graft_sink_write(graft_zipw_sink(w), big, 1000)) < 0) goto out;
    if ((rc = graft_zipw_end(w)) < 0) goto out;
    if ((rc = graft_zipw_add(w, "\xc3\xa9t\xc3\xa9.txt", "x", 1, 4096, GRAFT_ZIPW_STORED)) < 0)
        goto out;
    if ((rc = graft_zipw_add(w, "empty", "", 0, 0, GRAFT_ZIPW_DEFLATED)) < 0) goto out;
    rc = graft_zipw_finish(w);
out:
    graft_zipw_free(w);
    if (rc == 0) return graft_sink_commit(s);
    graft_sink_abort(s);
    return rc;
}

static int copy_all(const char *in, const char *out, graft_ctx *c)
{
    size_t n;
    uint8_t *data = tu_read_file(in, &n);
    graft_zip *z = NULL;
    graft_sink *s = NULL;
    graft_zipw *w = NULL;
    int rc;
    if (!data) return -1;
    if ((rc = graft_zip_open(&z, data, n, c)) < 0) goto out;
    if ((rc = graft_sink_open(&s, out, c)) < 0) goto out;
    if ((rc = graft_zipw_new(&w, s, false, c)) < 0) goto out;
    for (size_t i = 0; i < z->count && rc == 0; i++)
        rc = graft_zipw_copy(w, z, &z->entries[i], NULL, 0);
    if (rc == 0) rc = graft_zipw_finish(w);
    if (rc == 0) {
        rc = graft_sink_commit(s);
        s = NULL;
    }
out:
    graft_zipw_free(w);
    graft_sink_abort(s);
    graft_zip_free(z);
    free(data);
    return rc;
}

static void check_demo(const uint8_t *data, size_t n, bool aligned)
{
    graft_zip *z = NULL;
    uint8_t *buf = malloc(sizeof big);
    const graft_zip_entry *e;
    ck_assert_msg(graft_zip_open(&z, data, n, ctx) == 0, "%s", graft_ctx_message(ctx));
    ck_assert_uint_eq(z->count, 5);
    ck_assert_str_eq(z->entries[0].name, "a.txt");
    ck_assert_str_eq(z->entries[3].name, "\xc3\xa9t\xc3\xa9.txt");
    e = graft_zip_find(z, "dir/b.bin");
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->method, 8);
    ck_assert_uint_eq(e->usize, sizeof big);
    ck_assert_uint_lt(e->csize, sizeof big);
    ck_assert_int_eq(graft_zip_extract(z, e, buf, sizeof big, ctx), 0); /* CRC checked */
    ck_assert(memcmp(buf, big, sizeof big) == 0);
    e = graft_zip_find(z, "c.dat");
    if (aligned) ck_assert_uint_eq(e->data_offset % 64, 0);
    ck_assert_int_eq(graft_zip_extract(z, e, buf, 1000, ctx), 0);
    ck_assert(memcmp(buf, big, 1000) == 0);
    if (aligned) ck_assert_uint_eq(z->entries[3].data_offset % 4096, 0);
    e = graft_zip_find(z, "empty");
    ck_assert_uint_eq(e->usize, 0);
    ck_assert_int_eq(graft_zip_extract(z, e, buf, 0, ctx), 0);
    e = graft_zip_find(z, "a.txt");
    ck_assert_int_eq(graft_zip_extract(z, e, buf, 5, ctx), 0);
    ck_assert(memcmp(buf, "hello", 5) == 0);
    graft_zip_free(z);
    free(buf);
}

START_TEST(zipw_archive_reads_back)
{
    const char *path = tu_write_temp("demo.zip", "", 0);
    size_t n;
    uint8_t *data;
    ck_assert_msg(write_demo(path, _i == 1, ctx) == 0, "%s", graft_ctx_message(ctx));
    data = tu_read_file(path, &n);
    check_demo(data, n, true);
    /* the zip64 end record is there exactly when asked for */
    ck_assert_int_eq(memmem(data, n, "PK\6\6", 4) != NULL, _i == 1);
    free(data);
}
END_TEST

START_TEST(zipw_copy_keeps_raw_bytes)
{
    const char *in = tu_write_temp("in.zip", "", 0), *out = tu_write_temp("out.zip", "", 0);
    size_t n, m;
    uint8_t *a, *b;
    graft_zip *za = NULL, *zb = NULL;
    ck_assert_int_eq(write_demo(in, true, ctx), 0);
    ck_assert_msg(copy_all(in, out, ctx) == 0, "%s", graft_ctx_message(ctx));
    a = tu_read_file(in, &n);
    b = tu_read_file(out, &m);
    check_demo(b, m, false);
    ck_assert_int_eq(graft_zip_open(&za, a, n, ctx), 0);
    ck_assert_int_eq(graft_zip_open(&zb, b, m, ctx), 0);
    for (size_t i = 0; i < za->count; i++) {
        const graft_zip_entry *x = &za->entries[i], *y = &zb->entries[i];
        ck_assert_str_eq(x->name, y->name);
        ck_assert_uint_eq(x->method, y->method);
        ck_assert_uint_eq(x->crc32, y->crc32);
        ck_assert_uint_eq(x->csize, y->csize);
        ck_assert(memcmp(a + x->data_offset, b + y->data_offset, x->csize) == 0);
    }
    graft_zip_free(za);
    graft_zip_free(zb);
    free(a);
    free(b);
}
END_TEST

START_TEST(zipw_misuse_is_reported)
{
    const char *path = tu_write_temp("bad.zip", "", 0);
    graft_sink *s;
    graft_zipw *w;
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    ck_assert_int_eq(graft_zipw_new(&w, s, false, ctx), 0);
    ck_assert_int_eq(graft_zipw_write(w, "x", 1), GRAFT_ERROR);
    ck_assert_int_eq(graft_zipw_end(w), GRAFT_ERROR);
    ck_assert_int_eq(graft_zipw_begin(w, "a", 3, GRAFT_ZIPW_STORED, 1), GRAFT_ERROR);
    ck_assert_str_eq(graft_ctx_message(ctx), "zip writer: member 'a': bad alignment 3");
    ck_assert_int_eq(graft_zipw_begin(w, "a", 0, 5, 1), GRAFT_ERROR);
    ck_assert_int_eq(graft_zipw_begin(w, "", 0, GRAFT_ZIPW_STORED, 1), GRAFT_ELIMIT);
    ck_assert_int_eq(graft_zipw_begin(w, "a", 0, GRAFT_ZIPW_DEFLATED, 1), 0);
    ck_assert_int_eq(graft_zipw_begin(w, "b", 0, GRAFT_ZIPW_STORED, 1), GRAFT_ERROR);
    ck_assert_int_eq(graft_zipw_finish(w), GRAFT_ERROR);
    ck_assert_str_eq(graft_ctx_message(ctx), "zip writer: member 'a' was not ended");
    graft_zipw_free(w); /* frees the open deflater too */
    graft_sink_abort(s);
}
END_TEST

static int write_demo_job(graft_ctx *c, void *payload)
{
    const bool *zip64 = payload;
    return write_demo(tu_write_temp("oom.zip", "", 0), *zip64, c);
}

START_TEST(zipw_allocation_failures_are_clean)
{
    for (int zip64 = 0; zip64 < 2; zip64++) {
        bool z = zip64;
        ck_assert_int_gt(tu_each_alloc_failure(ctx, write_demo_job, &z), 0);
    }
}
END_TEST

static Suite *zip_suite(void)
{
    Suite *s = suite_create("zip");
    TCase *tc = tcase_create("reader");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, zip_reads_stored_and_deflated_members);
    tcase_add_test(tc, zip_detects_crc_mismatch_and_truncation);
    tcase_add_test(tc, zip_refuses_overlapping_members);
    suite_add_tcase(s, tc);
    tc = tcase_create("writer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, zipw_archive_reads_back, 0, 2);
    tcase_add_test(tc, zipw_copy_keeps_raw_bytes);
    tcase_add_test(tc, zipw_misuse_is_reported);
    tcase_add_test(tc, zipw_allocation_failures_are_clean);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc >= 3) { /* helper mode for the interop test */
        graft_ctx *c = graft_ctx_new();
        int rc = -1;
        if (!strcmp(argv[1], "write"))
            rc = write_demo(argv[2], argc > 3 && !strcmp(argv[3], "zip64"), c);
        else if (!strcmp(argv[1], "copy") && argc == 4)
            rc = copy_all(argv[2], argv[3], c);
        if (rc < 0) fprintf(stderr, "test_zip: %s\n", graft_ctx_message(c));
        graft_ctx_free(c);
        return rc < 0;
    }
    return tu_run(zip_suite());
}
