/* test_cli_reports.c - what the commands report through the public API (graft.h):
 * the whole-model diff with atol/rtol, the files an output consists of, the
 * extension check and the --json texts, each under every allocation failure.
 * Only graft.h is included: what is tested here is what is installed. */
#include "graft.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

static char tiny[512], ckpt[512];
static graft_ctx *ctx;

static void setup(void)
{
    const char *root = getenv("GRAFT_SOURCE_ROOT"), *fx = getenv("GRAFT_FIXTURES");
    ck_assert_ptr_nonnull(root);
    ck_assert_ptr_nonnull(fx);
    snprintf(tiny, sizeof tiny, "%s/samples/resnet_tiny.pth", root);
    snprintf(ckpt, sizeof ckpt, "%s/tf_ckpt_v2/tf2onnx_regression_ckpt/model.index", fx);
    ctx = graft_ctx_new();
    ck_assert_ptr_nonnull(ctx);
}

static void teardown(void)
{
    graft_ctx_free(ctx);
}

/* A little-endian float32 .npy of n values (NumPy format 1.0). */
static const char *npy(const char *name, const float *v, size_t n)
{
    char head[128];
    uint8_t buf[512];
    int len = snprintf(head, sizeof head, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu,), }",
                       n);
    size_t total = 128, at; /* the header padded to 128 bytes, as NumPy aligns it */
    ck_assert_int_lt(len, 128 - 10 - 1);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)(total - 10);
    buf[9] = 0;
    memset(buf + 10, ' ', total - 10);
    memcpy(buf + 10, head, (size_t)len);
    buf[total - 1] = '\n';
    at = total;
    memcpy(buf + at, v, n * sizeof *v); /* the test machines are little-endian */
    return tu_write_temp(name, buf, at + n * sizeof *v);
}

START_TEST(diff_all_applies_atol_and_rtol_per_element)
{
    static const float a[4] = {1.0f, 100.0f, -50.0f, 0.0f};
    static const float b[4] = {1.001f, 100.05f, -50.0f, 0.0f};
    char pa[600], pb[600];
    graft_plan *p = NULL;
    graft_diff_report *r = NULL;
    graft_diff_options o = GRAFT_DIFF_OPTIONS_INIT;
    /* npy names its one tensor after the file: x against itself pairs, x
     * against x2 does not */
    strcpy(pa, npy("x.npy", a, 4));
    strcpy(pb, npy("x2.npy", b, 4));
    ck_assert_int_eq(graft_plan_open(&p, NULL, pa, pa, NULL, ctx), GRAFT_OK);
    ck_assert_int_eq(graft_plan_diff_all(&r, p, &o, ctx), GRAFT_OK);
    ck_assert_uint_eq(r->compared, 1);
    ck_assert(graft_diff_report_ok(r));
    graft_diff_report_free(r);
    graft_plan_free(p);

    ck_assert_int_eq(graft_plan_open(&p, NULL, pb, pa, NULL, ctx), GRAFT_OK);
    ck_assert_int_eq(graft_plan_diff_all(&r, p, &o, ctx), GRAFT_OK);
    /* different file names: x2 and x are unpaired both ways, and B as the
     * source pairs nothing either */
    ck_assert_uint_eq(r->compared, 0);
    ck_assert_uint_eq(r->unpaired, 2);
    ck_assert_uint_eq(r->swapped_pairs, 0);
    ck_assert(!graft_diff_report_ok(r));
    ck_assert_int_eq(r->entries[0].status, GRAFT_DIFF_ONLY_B);
    ck_assert_int_eq(r->entries[1].status, GRAFT_DIFF_ONLY_A);
    ck_assert_str_eq(graft_diff_status_name(r->entries[1].status), "only_a");
    graft_diff_report_free(r);
    graft_plan_free(p);

    /* negative or infinite tolerances are refused */
    o.rtol = -1;
    ck_assert_int_eq(graft_plan_open(&p, NULL, pa, pa, NULL, ctx), GRAFT_OK);
    ck_assert_int_eq(graft_plan_diff_all(&r, p, &o, ctx), GRAFT_ERROR);
    ck_assert_ptr_null(r);
    o.rtol = INFINITY;
    ck_assert_int_eq(graft_plan_diff_all(&r, p, &o, ctx), GRAFT_ERROR);
    graft_plan_free(p);
}
END_TEST

START_TEST(diff_all_counts_elements_outside_the_tolerance)
{
    static const float a[4] = {1.0f, 100.0f, -50.0f, 0.0f};
    static const float b[4] = {1.001f, 100.05f, -50.0f, 0.0f};
    char da[600], db[600], pa[700], pb[700];
    graft_plan *p = NULL;
    graft_diff_report *r = NULL;
    graft_diff_options o = GRAFT_DIFF_OPTIONS_INIT;
    static const struct { double atol, rtol; uint64_t nover; } cases[] = {
        {0, 0, 2}, {0.01, 0, 1}, {0.1, 0, 0}, {0, 1e-3, 0}, {0, 1e-4, 2}, {1e-3, 1e-4, 1},
    };
    snprintf(da, sizeof da, "%s/da", tu_temp_dir());
    snprintf(db, sizeof db, "%s/db", tu_temp_dir());
    /* the same file name in two folders: tensor 'w' on both sides; the
     * element differences are 0.001, 0.05, 0 and 0 (as float32) */
    mkdir(da, 0700);
    mkdir(db, 0700);
    strcpy(pa, npy("da/w.npy", a, 4));
    strcpy(pb, npy("db/w.npy", b, 4));
    ck_assert_int_eq(graft_plan_open(&p, NULL, pa, pb, NULL, ctx), GRAFT_OK);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        o.atol = cases[i].atol;
        o.rtol = cases[i].rtol;
        ck_assert_int_eq(graft_plan_diff_all(&r, p, &o, ctx), GRAFT_OK);
        ck_assert_uint_eq(r->count, 1);
        ck_assert_uint_eq(r->entries[0].nover, cases[i].nover);
        ck_assert_int_eq(r->entries[0].status, cases[i].nover ? GRAFT_DIFF_OVER : GRAFT_DIFF_OK);
        ck_assert_double_eq(r->entries[0].max_abs, (double)100.05f - 100.0);
        /* the largest relative difference is the first element's */
        ck_assert_double_eq_tol(r->entries[0].max_rel, ((double)1.001f - 1.0) / (double)1.001f,
                                1e-15);
        graft_diff_report_free(r);
    }
    graft_plan_free(p);
}
END_TEST

START_TEST(extensions_fit_or_name_the_format)
{
    const char *want = NULL;
    ck_assert(graft_format_fits_path("safetensors", "a/b.safetensors", &want));
    ck_assert(graft_format_fits_path("pytorch-zip", "x.pth", &want));
    ck_assert(graft_format_fits_path("keras3-weights", "m.weights.h5", NULL));
    ck_assert(graft_format_fits_path("keras-h5", "m.h5", NULL));
    ck_assert(graft_format_fits_path("npz", "no_extension", NULL));
    ck_assert(graft_format_fits_path("coreml-package", "out.mlpackage/", NULL));
    ck_assert(!graft_format_fits_path("npz", "out.safetensors", &want));
    ck_assert_str_eq(want, "safetensors");
    ck_assert(!graft_format_fits_path("onnx", "m.pt", &want));
    ck_assert_str_eq(want, "pytorch-zip");
    ck_assert(!graft_format_fits_path("safetensors", "weights.safetensors.index.json.npz", &want));
    ck_assert_str_eq(want, "npz");
}
END_TEST

START_TEST(output_files_of_a_checkpoint_include_the_state_file)
{
    graft_plan *p = NULL;
    char **f = NULL, out[700], dir[512];
    snprintf(dir, sizeof dir, "%s", tu_temp_dir());
    snprintf(out, sizeof out, "%s/trained.index", dir);
    ck_assert_int_eq(graft_plan_open(&p, NULL, ckpt, ckpt, NULL, ctx), GRAFT_OK);
    ck_assert_int_eq(graft_plan_output_files(&f, p, out, ctx), GRAFT_OK);
    ck_assert_str_eq(f[0], out);
    snprintf(out, sizeof out, "%s/trained.data-00000-of-00001", dir);
    ck_assert_str_eq(f[1], out);
    snprintf(out, sizeof out, "%s/checkpoint", dir);
    ck_assert_str_eq(f[2], out);
    ck_assert_ptr_null(f[3]);
    free(f);
    graft_plan_free(p);
    ck_assert_int_eq(graft_plan_open(&p, NULL, tiny, tiny, NULL, ctx), GRAFT_OK);
    ck_assert_int_eq(graft_plan_output_files(&f, p, "x.pth", ctx), GRAFT_OK);
    ck_assert_str_eq(f[0], "x.pth");
    ck_assert_ptr_null(f[1]);
    free(f);
    graft_plan_free(p);
}
END_TEST

static void no_finding(const char *kind, bool is_error, const char *message, void *payload)
{
    (void)is_error;
    (void)payload;
    ck_abort_msg("unexpected finding %s: %s", kind, message);
}

/* Every report of an identity plan of resnet_tiny, freed; its texts checked. */
static int reports(graft_ctx *c, void *payload)
{
    graft_plan *p = NULL;
    graft_rules *r = NULL;
    graft_diff_report *d = NULL;
    graft_apply_stats st = {38, 38, 0, 1000};
    char *t = NULL, **files = NULL;
    size_t n;
    int rc;
    static const char rules[] = "graft: 1\nrename:\n  source:\n    - {match: '^fc\\.', to: 'head.'}\n"
                                "  target:\n    - {match: '^fc\\.', to: 'head.'}\n";
    (void)payload;
    if ((rc = graft_rules_load_buffer(&r, "r.yaml", rules, sizeof rules - 1, c)) < 0) goto done;
    if ((rc = graft_plan_open(&p, r, tiny, tiny, NULL, c)) < 0) goto done;
    if ((rc = graft_plan_diff_all(&d, p, NULL, c)) < 0) goto done;
    ck_assert(graft_diff_report_ok(d));
    if ((rc = graft_diff_report_json(&t, d, c)) < 0) goto done;
    ck_assert_ptr_nonnull(strstr(t, "\"compared\": 38, \"over\": 0"));
    free(t);
    if ((rc = graft_plan_explain_json(&t, p, "fc.bias", c)) < 0) goto done;
    ck_assert_ptr_nonnull(strstr(t, "\"rule\": \"r.yaml:4\", \"before\": \"fc.bias\""));
    free(t);
    if ((rc = graft_check_json(&t, "r.yaml", r, NULL, p, c)) < 0) goto done;
    ck_assert_ptr_nonnull(strstr(t, "\"one_to_one\": true"));
    free(t);
    if ((rc = graft_plan_check(p, no_finding, NULL, &n, c)) < 0) goto done;
    ck_assert_uint_eq(n, 0);
    if ((rc = graft_apply_json(&t, p, "o.pth", NULL, &st, c)) < 0) goto done;
    ck_assert_ptr_nonnull(strstr(t, "\"files\": [\"o.pth\"]"));
    free(t);
    if ((rc = graft_plan_output_files(&files, p, "o.pth", c)) < 0) goto done;
    free(files);
    rc = GRAFT_OK;
done:
    graft_diff_report_free(d);
    graft_plan_free(p);
    graft_rules_free(r);
    return rc;
}

START_TEST(every_allocation_failure_in_the_reports_is_reported)
{
    ck_assert_int_gt(tu_each_alloc_failure(ctx, reports, NULL), 0);
}
END_TEST

static Suite *reports_suite(void)
{
    Suite *s = suite_create("reports");
    TCase *tc = tcase_create("reports");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, diff_all_applies_atol_and_rtol_per_element);
    tcase_add_test(tc, diff_all_counts_elements_outside_the_tolerance);
    tcase_add_test(tc, extensions_fit_or_name_the_format);
    tcase_add_test(tc, output_files_of_a_checkpoint_include_the_state_file);
    tcase_add_test(tc, every_allocation_failure_in_the_reports_is_reported);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(reports_suite());
}
