/* test_rd.c - the bounded cursor (core/rd.c) every parser of untrusted bytes
 * reads through: fixed-width and varint reads, sub-cursors with file offsets,
 * and the text operations of the JSON, .npy-header and pickle parsers. */
#include "testutil.h"

#include "error.h"
#include "rd.h"

#include <string.h>

static graft_ctx *ctx;
static void setup(void) { ctx = graft_ctx_new(); }
static void teardown(void) { graft_ctx_free(ctx); }

/* ---- rd ---------------------------------------------------------------- */

START_TEST(rd_reads_little_endian_and_stops_at_the_end)
{
    const uint8_t b[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    graft_rd r;
    uint32_t v32;
    uint64_t v64;
    graft_rd_init(&r, b, sizeof b, 0x100, ctx);
    ck_assert_int_eq(graft_rd_u32le(&r, &v32), 0);
    ck_assert_uint_eq(v32, 0x04030201u);
    ck_assert_int_eq(graft_rd_u64le(&r, &v64), GRAFT_ECORRUPT);
    ck_assert_uint_eq(r.pos, 4); /* failure does not move the cursor */
    ck_assert_str_eq(graft_ctx_message(ctx), "offset 0x104: need 8 bytes, 5 left");
    ck_assert_int_eq(graft_rd_u32be(&r, &v32), 0);
    ck_assert_uint_eq(v32, 0x05060708u);
}
END_TEST

START_TEST(rd_varint_rejects_overlong_and_truncated)
{
    const uint8_t ok[] = {0xac, 0x02};
    const uint8_t trunc[] = {0x80, 0x80};
    const uint8_t longv[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    graft_rd r;
    uint64_t v;
    graft_rd_init(&r, ok, sizeof ok, 0, ctx);
    ck_assert_int_eq(graft_rd_varint(&r, &v), 0);
    ck_assert_uint_eq(v, 300);
    graft_rd_init(&r, trunc, sizeof trunc, 0, ctx);
    ck_assert_int_eq(graft_rd_varint(&r, &v), GRAFT_ECORRUPT);
    graft_rd_init(&r, longv, sizeof longv, 0, ctx);
    ck_assert_int_eq(graft_rd_varint(&r, &v), GRAFT_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "overflows"));
}
END_TEST

START_TEST(rd_sub_reports_file_offsets)
{
    uint8_t b[16] = {0};
    graft_rd r, s;
    uint64_t v;
    graft_rd_init(&r, b, sizeof b, 1000, ctx);
    ck_assert_int_eq(graft_rd_skip(&r, 10), 0);
    ck_assert_int_eq(graft_rd_sub(&r, 4, &s), 0);
    ck_assert_int_eq(graft_rd_u64le(&s, &v), GRAFT_ECORRUPT);
    ck_assert_str_eq(graft_ctx_message(ctx), "offset 0x3f2: need 8 bytes, 4 left");
    ck_assert_int_eq(graft_rd_sub(&r, 3, &s), GRAFT_ECORRUPT);
}
END_TEST

START_TEST(rd_text_operations_stay_in_the_window)
{
    static const char text[] = " \t\r\n{\"k\": tru|rest\nnext";
    graft_rd r, w;
    size_t n;
    /* a window that ends inside "tru": the text past it is never seen */
    graft_rd_init(&r, (const uint8_t *)text, 13, 0, ctx);
    graft_rd_skip_ws(&r);
    ck_assert_uint_eq(r.pos, 4);
    ck_assert_int_eq(graft_rd_peek(&r), '{');
    ck_assert(!graft_rd_eat(&r, "{\"x"));
    ck_assert_uint_eq(r.pos, 4);  /* a failed eat consumes nothing */
    ck_assert(graft_rd_eat(&r, "{\"k\":"));
    graft_rd_skip_ws(&r);
    ck_assert(!graft_rd_eat(&r, "true"));  /* "tru" then the window's end */
    ck_assert(graft_rd_eat(&r, "tru"));
    ck_assert_int_eq(graft_rd_peek(&r), -1);
    ck_assert(!graft_rd_find(&r, '|', &n));
    graft_rd_skip_ws(&r);
    ck_assert_uint_eq(graft_rd_left(&r), 0);
    /* find counts the bytes before the byte and consumes nothing */
    graft_rd_init(&w, (const uint8_t *)text, sizeof text - 1, 0, ctx);
    ck_assert(graft_rd_find(&w, '\n', &n));
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(w.pos, 0);
    ck_assert_int_eq(graft_rd_skip(&w, 13), 0);
    ck_assert(graft_rd_find(&w, '\n', &n));
    ck_assert_uint_eq(n, 5);  /* "|rest" */
    ck_assert(!graft_rd_find(&w, 'z', &n));
    /* an empty window */
    graft_rd_init(&w, NULL, 5, 0, ctx);
    ck_assert_int_eq(graft_rd_peek(&w), -1);
    ck_assert(!graft_rd_eat(&w, "a"));
    ck_assert(graft_rd_eat(&w, ""));
    ck_assert(!graft_rd_find(&w, 'a', &n));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rd");
    TCase *tc = tcase_create("rd");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, rd_reads_little_endian_and_stops_at_the_end);
    tcase_add_test(tc, rd_varint_rejects_overlong_and_truncated);
    tcase_add_test(tc, rd_sub_reports_file_offsets);
    tcase_add_test(tc, rd_text_operations_stay_in_the_window);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
