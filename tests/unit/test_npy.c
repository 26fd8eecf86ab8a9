/* test_npy.c - the .npy format (formats/numpy/npy.c, npyhdr.c): the writer
 * reproduces the header numpy writes, and malformed headers name the offset. */
#include "testutil.h"

#include "format.h"
#include "npyhdr.h"
#include "rd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static graft_ctx *ctx;
static void setup(void) { ctx = graft_ctx_new(); }
static void teardown(void) { graft_ctx_free(ctx); }

START_TEST(npy_rewrite_reproduces_numpys_header)
{
    /* numpy 1.24's header for '<f4' (2, 3): 118 bytes of text, data at 128 */
    static const char npy_hdr[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    uint8_t file[128 + 24];
    memcpy(file, "\x93NUMPY\x01\x00\x76\x00", 10);
    memset(file + 10, ' ', 118);
    memcpy(file + 10, npy_hdr, strlen(npy_hdr));
    file[127] = '\n';
    for (int i = 0; i < 24; i++) file[128 + i] = (uint8_t)i;
    const char *in = tu_write_temp("arr.npy", file, sizeof file);
    const char *out = tu_write_temp("out.npy", "", 0);
    size_t n;
    ck_assert_msg(tu_rewrite(in, out, false, ctx) == 0, "%s", graft_ctx_message(ctx));
    uint8_t *b = tu_read_file(out, &n);
    ck_assert_uint_eq(n, sizeof file);
    ck_assert(memcmp(b, file, n) == 0); /* the header numpy writes, byte for byte */
    free(b);
}
END_TEST

/* A version 1.0 header holding `dict`; returns its length. */
static size_t npy_v1(uint8_t *buf, const char *dict)
{
    size_t n = strlen(dict);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    graft_put_le16(buf + 8, (uint16_t)n);
    memcpy(buf + 10, dict, n);
    return 10 + n;
}

START_TEST(malformed_header_dicts_name_the_offset)
{
    static const struct {
        const char *dict, *at;  /* the offset named is that of `at` in dict */
        int code;
        const char *msg;
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", "-3", GRAFT_ECORRUPT,
         "header dict: negative dimension"},
        {"{'descr': '<f\\4', 'fortran_order': False, 'shape': (), }", "\\", GRAFT_ECORRUPT,
         "header dict: escapes in strings are not supported"},
        {"{'descr': '<f4", NULL, GRAFT_ECORRUPT, "header dict: unterminated string"},
        {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (), }", "Maybe", GRAFT_ECORRUPT,
         "header dict: 'fortran_order' must be True or False"},
        {"{'descr': '<f4', 'x': 1}", ": 1", GRAFT_ECORRUPT, "header dict: unexpected key 'x'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3) } junk", "junk",
         GRAFT_ECORRUPT, "header dict: unexpected text after the dict"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
         "99,)", GRAFT_ELIMIT, "header dict: dimension overflows"},
        {"{'descr': [('a', '<f4'), 'fortran_order': False, 'shape': (), }", NULL,
         GRAFT_ECORRUPT, "unterminated structured descr"},
    };
    uint8_t buf[256];
    graft_npy_header h;
    size_t n = npy_v1(buf, cases[_i].dict);
    ck_assert_int_eq(graft_npy__parse(&h, buf, n, 0x100, ctx), cases[_i].code);
    const char *msg = graft_ctx_message(ctx);
    ck_assert_msg(strstr(msg, cases[_i].msg), "case %d: %s", _i, msg);
    if (cases[_i].at || strstr(cases[_i].msg, "unterminated")) {
        const char *d = cases[_i].dict;
        size_t at = cases[_i].at ? (size_t)(strstr(d, cases[_i].at) - d) : strlen(d);
        char want[64];
        snprintf(want, sizeof want, "offset 0x%zx: ", 0x100 + 10 + at);
        ck_assert_msg(strncmp(msg, want, strlen(want)) == 0, "case %d: want %s, got %s", _i,
                      want, msg);
    }
}
END_TEST

START_TEST(header_forms_numpy_writes_are_read)
{
    uint8_t buf[256];
    graft_npy_header h;
    size_t n = npy_v1(buf, " { \"descr\" :'>i2','fortran_order':True,'shape':(2L, 3,)}\n");
    ck_assert_msg(graft_npy__parse(&h, buf, n, 0, ctx) == 0, "%s", graft_ctx_message(ctx));
    ck_assert_int_eq(h.dtype, GRAFT_INT16);
    ck_assert(h.big_endian);
    ck_assert(h.fortran);
    ck_assert_uint_eq(h.ndim, 2);
    ck_assert_int_eq(h.shape[0], 2);
    ck_assert_int_eq(h.shape[1], 3);
    ck_assert_uint_eq(h.numel, 6);
    ck_assert_uint_eq(h.data_offset, n);
}
END_TEST

START_TEST(unreadable_descrs_are_named_not_refused)
{
    static const struct {
        const char *dict, *stored;
    } cases[] = {
        {"{'descr': '|S3', 'fortran_order': False, 'shape': (), }", "numpy dtype '|S3'"},
        {"{'descr': '<U5', 'fortran_order': False, 'shape': (2,), }", "numpy dtype '<U5'"},
        {"{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
         "numpy dtype '|O' (an object array: a pickle)"},
        {"{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (2,), }", "numpy dtype '<M8[ns]'"},
        {"{'descr': [('x', '<f4'), ('y', '<i2', (2,))], 'fortran_order': False, 'shape': (2,), }",
         "numpy structured dtype [('x', '<f4'), ('y', '<i2', (2,))]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint8_t buf[256];
        graft_npy_header h;
        size_t n = npy_v1(buf, cases[i].dict);
        ck_assert_msg(graft_npy__parse(&h, buf, n, 0, ctx) == 0, "%s", graft_ctx_message(ctx));
        ck_assert_int_eq(h.dtype, GRAFT_DTYPE_INVALID);
        ck_assert_str_eq(h.unsupported, cases[i].stored);
        ck_assert_uint_eq(h.nbytes, 0);
        ck_assert_uint_eq(h.data_offset, n);
    }
}
END_TEST

static Suite *npy_suite(void)
{
    Suite *s = suite_create("npy");
    TCase *tc = tcase_create("npy");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, npy_rewrite_reproduces_numpys_header);
    tcase_add_loop_test(tc, malformed_header_dicts_name_the_offset, 0, 8);
    tcase_add_test(tc, header_forms_numpy_writes_are_read);
    tcase_add_test(tc, unreadable_descrs_are_named_not_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(npy_suite()); }
