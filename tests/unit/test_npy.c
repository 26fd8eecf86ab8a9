/* test_npy.c - the .npy format (formats/numpy/npy.c, npyhdr.c): the writer
 * reproduces the header numpy writes, and malformed headers name the offset. */
#include "testutil.h"

#include "format.h"
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

static Suite *npy_suite(void)
{
    Suite *s = suite_create("npy");
    TCase *tc = tcase_create("npy");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, npy_rewrite_reproduces_numpys_header);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(npy_suite()); }
