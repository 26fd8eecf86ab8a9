/* test_pb.c - the shared protobuf wire reader (core/pb.c), used by the
 * TensorFlow and ONNX formats: field numbers, wire types, lengths, offsets,
 * and the cursor left on the failing field. */
#include "pb.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static graft_rd rd_of(const void *p, size_t n, uint64_t origin)
{
    graft_rd r;
    graft_rd_init(&r, p, n, origin, tu_ctx);
    return r;
}

START_TEST(reads_each_wire_type)
{
    /* 1: varint 300; 2: fixed64; 3: "abc"; 4: fixed32 */
    static const uint8_t m[] = {0x08, 0xac, 0x02,
                                0x11, 1, 2, 3, 4, 5, 6, 7, 8,
                                0x1a, 0x03, 'a', 'b', 'c',
                                0x25, 0x78, 0x56, 0x34, 0x12};
    graft_rd r = rd_of(m, sizeof m, 100);
    graft_pbf f;
    ck_assert_int_eq(graft_pb_next(&r, &f), GRAFT_OK);
    ck_assert_uint_eq(f.num, 1);
    ck_assert_uint_eq(f.wt, GRAFT_PB_VARINT);
    ck_assert_uint_eq(f.v, 300);
    ck_assert_uint_eq(f.start, 100);
    ck_assert_uint_eq(f.end, 103);
    ck_assert_uint_eq(f.span, 3);
    ck_assert_uint_eq(f.sub.len, 0);
    ck_assert_int_eq(graft_pb_next(&r, &f), GRAFT_OK);
    ck_assert_uint_eq(f.wt, GRAFT_PB_I64);
    ck_assert_uint_eq(f.v, 0x0807060504030201ull);
    ck_assert_int_eq(graft_pb_next(&r, &f), GRAFT_OK);
    ck_assert_uint_eq(f.num, 3);
    ck_assert(graft_pb_is(&f, "abc"));
    ck_assert(!graft_pb_is(&f, "ab"));
    ck_assert_uint_eq(f.taglen, 1);
    ck_assert_uint_eq(f.pstart, 114);  /* after tag and length */
    ck_assert_uint_eq(f.sub.origin, 114);
    ck_assert_ptr_eq(f.at, m + 12);
    ck_assert_uint_eq(f.span, 5);
    ck_assert_int_eq(graft_pb_next(&r, &f), GRAFT_OK);
    ck_assert_uint_eq(f.wt, GRAFT_PB_I32);
    ck_assert_uint_eq(f.v, 0x12345678);
    ck_assert_uint_eq(graft_rd_left(&r), 0);
}
END_TEST

START_TEST(field_number_limits)
{
    /* 2^29 - 1 is the largest field number: tag = (2^29-1) << 3 */
    uint8_t m[8];
    uint8_t *e = graft_pb_put_varint(m, (uint64_t)GRAFT_PB_MAX_FIELD << 3);
    *e++ = 0x05;
    graft_rd r = rd_of(m, (size_t)(e - m), 0);
    graft_pbf f;
    ck_assert_int_eq(graft_pb_next(&r, &f), GRAFT_OK);
    ck_assert_uint_eq(f.num, GRAFT_PB_MAX_FIELD);
    ck_assert_uint_eq(f.v, 5);

    e = graft_pb_put_varint(m, (uint64_t)(GRAFT_PB_MAX_FIELD + 1) << 3);
    r = rd_of(m, (size_t)(e - m), 0x40);
    ck_assert_int_eq(graft_pb_next(&r, &f), GRAFT_ECORRUPT);
    ck_assert_str_eq(graft_ctx_message(tu_ctx),
                     "offset 0x40: bad protobuf field number 536870912");
    ck_assert_uint_eq(r.pos, 0);

    static const uint8_t zero[] = {0x80, 0x00};  /* a 2-byte tag for field 0 */
    r = rd_of(zero, sizeof zero, 0);
    ck_assert_int_eq(graft_pb_next(&r, &f), GRAFT_ECORRUPT);
    ck_assert_str_eq(graft_ctx_message(tu_ctx), "offset 0x0: bad protobuf field number 0");
}
END_TEST

START_TEST(refuses_groups_and_reserved_wire_types)
{
    for (uint8_t wt = 3; wt <= 7; wt++) {
        if (wt == 5) continue;
        uint8_t m[] = {(uint8_t)(2 << 3 | wt), 0, 0, 0, 0, 0, 0, 0, 0};
        graft_rd r = rd_of(m, sizeof m, 0x10);
        graft_pbf f;
        char want[80];
        ck_assert_int_eq(graft_pb_next(&r, &f), GRAFT_ECORRUPT);
        snprintf(want, sizeof want, "offset 0x10: field 2: unsupported protobuf wire type %u", wt);
        ck_assert_str_eq(graft_ctx_message(tu_ctx), want);
        ck_assert_uint_eq(r.pos, 0);
    }
}
END_TEST

START_TEST(truncated_values_leave_the_cursor_on_the_field)
{
    static const struct {
        uint8_t b[4];
        size_t n;
        const char *msg;
    } cases[] = {
        {{0x0a, 0x05, 'x'}, 3, "offset 0x8: field 1: length 5 runs past the end (1 bytes left)"},
        {{0x08, 0x80}, 2, "varint"},
        {{0x09, 1, 2}, 3, "need 8 bytes, 2 left"},
        {{0x0d, 1}, 2, "need 4 bytes, 1 left"},
        {{0x0a}, 1, "varint"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint8_t m[] = {0x08, 0x01, 0, 0, 0, 0};  /* a good field first */
        memcpy(m + 2, cases[i].b, cases[i].n);
        graft_rd r = rd_of(m, 2 + cases[i].n, 6);
        graft_pbf f;
        ck_assert_int_eq(graft_pb_next(&r, &f), GRAFT_OK);
        ck_assert_int_eq(graft_pb_next(&r, &f), GRAFT_ECORRUPT);
        ck_assert_msg(strstr(graft_ctx_message(tu_ctx), cases[i].msg), "case %zu: %s", i,
                      graft_ctx_message(tu_ctx));
        ck_assert_uint_eq(r.pos, 2);
    }
}
END_TEST

START_TEST(varint_writers_round_trip)
{
    static const uint64_t vals[] = {0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX, UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        uint8_t b[10];
        size_t n = (size_t)(graft_pb_put_varint(b, vals[i]) - b);
        ck_assert_uint_eq(n, graft_pb_varint_len(vals[i]));
        graft_rd r = rd_of(b, n, 0);
        uint64_t v;
        ck_assert_int_eq(graft_rd_varint(&r, &v), GRAFT_OK);
        ck_assert_uint_eq(v, vals[i]);
        ck_assert_uint_eq(graft_rd_left(&r), 0);
    }
    ck_assert_uint_eq(graft_pb_varint_len(UINT64_MAX), 10);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pb");
    TCase *tc = tcase_create("wire");
    tcase_add_checked_fixture(tc, tu_arena_setup, tu_arena_teardown);
    tcase_add_test(tc, reads_each_wire_type);
    tcase_add_test(tc, field_number_limits);
    tcase_add_test(tc, refuses_groups_and_reserved_wire_types);
    tcase_add_test(tc, truncated_values_leave_the_cursor_on_the_field);
    tcase_add_test(tc, varint_writers_round_trip);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
