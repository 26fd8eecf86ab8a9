/*
 * test_npz.c - the .npz format (formats/numpy/npz.c): the writer reads back,
 * deflated members are inflated and reordered, allocation failures are clean.
 *
 * Also a helper for tests/interop/test_numpy_safetensors.py, which checks
 * what the writers produce with numpy:
 *   test_npz rewrite IN OUT [reverse]   open IN, write a copy of it to OUT in
 *                                       its own format with every tensor's
 *                                       elements as is or in reverse order
 */
#include "testutil.h"

#include "format.h"
#include "rd.h"
#include "zipw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static graft_ctx *ctx;
static void setup(void) { ctx = graft_ctx_new(); }
static void teardown(void) { graft_ctx_free(ctx); }

START_TEST(npz_writer_reads_back)
{
    /* write an npz from an npy skeleton's tensor through the npz writer */
    static const char npy_hdr[] = "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }";
    uint8_t file[128 + 12];
    graft_model *m = NULL;
    memcpy(file, "\x93NUMPY\x01\x00\x76\x00", 10);
    memset(file + 10, ' ', 118);
    memcpy(file + 10, npy_hdr, strlen(npy_hdr));
    file[127] = '\n';
    for (int i = 0; i < 6; i++) file[128 + 2 * i] = 0, file[129 + 2 * i] = (uint8_t)i;
    const char *in = tu_write_temp("f.npy", file, sizeof file);
    const char *out = tu_write_temp("f.npz", "", 0);
    tu_self_fill f = {{tu_emit_self, NULL}, NULL, false};
    ck_assert_int_eq(graft_model_open(&m, in, NULL, ctx), 0);
    f.m = m;
    ck_assert_msg(graft_format_find("npz")->write(m, out, &f.base, ctx) == 0, "%s",
                  graft_ctx_message(ctx));
    graft_model_free(m);
    tu_same_tensors(in, out, ctx);
    ck_assert_int_eq(graft_model_open(&m, out, NULL, ctx), 0);
    ck_assert_str_eq(graft_model_format(m), "npz");
    ck_assert_str_eq(m->tensors[0].name, "f");
    const uint8_t *p;
    void *owned;
    ck_assert_int_eq(graft_tensor_bytes(m, &m->tensors[0], &p, &owned, ctx), 0);
    ck_assert_ptr_null(owned); /* stored, little-endian, C order: a plain view */
    const uint8_t want[12] = {0, 0, 2, 0, 4, 0, 1, 0, 3, 0, 5, 0};
    ck_assert(memcmp(p, want, 12) == 0);
    graft_model_free(m);
}
END_TEST

/* An .npz with one deflated member holding a big-endian Fortran-order array. */
static const char *deflated_npz(void)
{
    static const char hdr[] = "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }";
    uint8_t npy[128 + 12];
    const char *path = tu_write_temp("d.npz", "", 0);
    graft_sink *s;
    graft_zipw *w;
    memcpy(npy, "\x93NUMPY\x01\x00\x76\x00", 10);
    memset(npy + 10, ' ', 118);
    memcpy(npy + 10, hdr, strlen(hdr));
    npy[127] = '\n';
    for (int i = 0; i < 6; i++) npy[128 + 2 * i] = 0, npy[129 + 2 * i] = (uint8_t)i;
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    ck_assert_int_eq(graft_zipw_new(&w, s, false, ctx), 0);
    ck_assert_int_eq(graft_zipw_add(w, "a.npy", npy, sizeof npy, 0, GRAFT_ZIPW_DEFLATED), 0);
    ck_assert_int_eq(graft_zipw_finish(w), 0);
    graft_zipw_free(w);
    ck_assert_int_eq(graft_sink_commit(s), 0);
    return path;
}

START_TEST(npz_deflated_member_is_reordered)
{
    graft_model *m = NULL;
    const uint8_t *p;
    void *owned;
    const uint8_t want[12] = {0, 0, 2, 0, 4, 0, 1, 0, 3, 0, 5, 0};
    ck_assert_msg(graft_model_open(&m, deflated_npz(), NULL, ctx) == 0, "%s", graft_ctx_message(ctx));
    ck_assert_str_eq(m->tensors[0].name, "a");
    ck_assert_int_eq(graft_tensor_bytes(m, &m->tensors[0], &p, &owned, ctx), 0);
    ck_assert_ptr_nonnull(owned);
    ck_assert(memcmp(p, want, 12) == 0);
    free(owned);
    graft_model_free(m);
}
END_TEST

START_TEST(open_allocation_failures_are_clean)
{
    ck_assert_int_gt(tu_each_alloc_failure(ctx, tu_open_and_hash, (void *)deflated_npz()), 0);
}
END_TEST

static Suite *npz_suite(void)
{
    Suite *s = suite_create("npz");
    TCase *tc = tcase_create("npz");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, npz_writer_reads_back);
    tcase_add_test(tc, npz_deflated_member_is_reordered);
    tcase_add_test(tc, open_allocation_failures_are_clean);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "rewrite")) { /* helper mode for the interop test */
        graft_ctx *c = graft_ctx_new();
        int rc = tu_rewrite(argv[2], argv[3], argc > 4 && !strcmp(argv[4], "reverse"), c);
        if (rc < 0) fprintf(stderr, "test_npz: %s\n", graft_ctx_message(c));
        graft_ctx_free(c);
        return rc < 0;
    }
    return tu_run(npz_suite());
}
