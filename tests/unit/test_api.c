/* test_api.c - the public API (graft.h) as a C user calls it: plans built
 * from paths, their getters, apply with progress, cancel, manifest and the
 * output checks, strict, diff, freeze's failure path, the JSON it gives.
 * Only graft.h is included: what is tested here is what is installed. */
#include "graft.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static char pth[512], h5[512], rules18[512], tiny[512];
static graft_ctx *ctx;

static void setup(void)
{
    const char *root = getenv("GRAFT_SOURCE_ROOT");
    ck_assert_ptr_nonnull(root);
    snprintf(pth, sizeof pth, "%s/samples/resnet18_narrow.pth", root);
    snprintf(h5, sizeof h5, "%s/samples/resnet18_narrow_keras2.h5", root);
    snprintf(rules18, sizeof rules18, "%s/rules/torch-to-keras/resnet18.yaml", root);
    snprintf(tiny, sizeof tiny, "%s/samples/resnet_tiny.pth", root);
    ctx = graft_ctx_new();
    ck_assert_ptr_nonnull(ctx);
}

static void teardown(void)
{
    graft_ctx_free(ctx);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

START_TEST(version_matches_header)
{
    ck_assert_str_eq(graft_version(), GRAFT_VERSION);
    ck_assert_uint_eq(graft_version_number(), GRAFT_VERSION_NUMBER);
    ck_assert_uint_eq(GRAFT_VERSION_NUMBER, 100);
}
END_TEST

START_TEST(plan_getters_describe_the_resnet18_port)
{
    graft_rules *r = NULL;
    graft_plan *p = NULL;
    const char *file = NULL;
    unsigned line = 0;
    size_t conv;

    ck_assert_int_eq(graft_rules_load(&r, rules18, ctx), GRAFT_OK);
    ck_assert_uint_gt(graft_rules_count(r, GRAFT_RULES_TARGET_RENAMES), 10);
    ck_assert_int_eq(graft_plan_open(&p, r, pth, h5, NULL, ctx), GRAFT_OK);
    ck_assert_uint_eq(graft_plan_errors(p), 0);
    ck_assert_uint_eq(graft_plan_count(p), graft_model_count(graft_plan_target(p)));
    ck_assert_ptr_eq(graft_plan_target(p), graft_plan_skeleton(p));
    ck_assert_str_eq(graft_model_format(graft_plan_source(p)), "pytorch-zip");
    ck_assert_str_eq(graft_model_format(graft_plan_target(p)), "keras-h5");
    conv = graft_plan_index(p, "conv1_conv/kernel:0");
    ck_assert_uint_ne(conv, SIZE_MAX);
    ck_assert_int_eq(graft_plan_entry_status(p, conv), GRAFT_PLAN_OK);
    ck_assert_uint_eq(graft_plan_entry_nsources(p, conv), 1);
    ck_assert_str_eq(graft_tensor_name(graft_plan_entry_source(p, conv, 0)), "conv1.weight");
    ck_assert_str_eq(graft_plan_entry_key(p, conv), "conv1.weight");
    /* OIHW -> HWIO: one permute, written in the rules file */
    ck_assert_uint_eq(graft_plan_entry_nops(p, conv), 1);
    {
        char *json = NULL;
        ck_assert_int_eq(graft_op_json(&json, graft_plan_entry_op(p, conv, 0), ctx), GRAFT_OK);
        ck_assert_str_eq(json, "{\"permute\": [2, 3, 1, 0]}");
        free(json);
        graft_op_where(graft_plan_entry_op(p, conv, 0), &file, &line);
        ck_assert_str_eq(file, rules18);
        ck_assert_uint_gt(line, 0);
    }
    ck_assert(graft_plan_entry_rule(p, conv, GRAFT_RULE_TRANSFORM, &file, &line));
    ck_assert_str_eq(file, rules18);
    ck_assert(!graft_plan_entry_rule(p, conv, GRAFT_RULE_PAIR, &file, &line));
    ck_assert_uint_eq(graft_plan_index(p, "no/such:0"), SIZE_MAX);
    graft_plan_free(p);
    graft_rules_free(r);
}
END_TEST

static size_t calls, last_done, last_total;
static void count_progress(size_t done, size_t total, uint64_t bytes, void *payload)
{
    (void)bytes;
    ck_assert_ptr_eq(payload, &calls);
    calls++;
    last_done = done;
    last_total = total;
}

START_TEST(apply_reports_progress_and_writes_a_manifest)
{
    graft_rules *r = NULL;
    graft_plan *p = NULL;
    graft_apply_options o = GRAFT_APPLY_OPTIONS_INIT;
    graft_apply_stats st;
    char out[600], man[600], *text = NULL;
    size_t n;

    snprintf(out, sizeof out, "%s/out.h5", tu_temp_dir());
    snprintf(man, sizeof man, "%s/out.json", tu_temp_dir());
    ck_assert_int_eq(graft_rules_load(&r, rules18, ctx), GRAFT_OK);
    ck_assert_int_eq(graft_plan_open(&p, r, pth, h5, NULL, ctx), GRAFT_OK);
    o.progress = count_progress;
    o.payload = &calls;
    o.manifest = man;
    calls = 0;
    ck_assert_int_eq(graft_plan_apply(p, out, &o, &st, ctx), GRAFT_OK);
    ck_assert_uint_eq(st.tensors, graft_model_count(graft_plan_skeleton(p)));
    ck_assert_uint_eq(st.transplanted + st.kept, st.tensors);
    ck_assert_uint_gt(st.transplanted, 0);
    ck_assert_uint_eq(calls, st.tensors);
    ck_assert_uint_eq(last_done, last_total);
    text = (char *)tu_read_file(man, &n);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "\"action\": \"transplanted\""));
    free(text);
    /* the output is an input now: refused before anything is written */
    ck_assert_int_eq(graft_check_outputs(p, h5, NULL, NULL, ctx), GRAFT_EIO);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "would overwrite the input"));
    ck_assert_int_eq(graft_check_outputs(p, out, out, NULL, ctx), GRAFT_EIO);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "--manifest and the output"));
    ck_assert_int_eq(graft_check_outputs(p, rules18, NULL, NULL, ctx), GRAFT_EIO);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "overwrite the rules file"));
    graft_plan_free(p);
    graft_rules_free(r);
}
END_TEST

static volatile int stop;
static void stop_after_three(size_t done, size_t total, uint64_t bytes, void *payload)
{
    (void)total, (void)bytes, (void)payload;
    if (done == 3) stop = 1;
}

START_TEST(cancel_stops_the_apply_and_writes_nothing)
{
    graft_plan *p = NULL;
    graft_apply_options o = GRAFT_APPLY_OPTIONS_INIT;
    char out[600];
    snprintf(out, sizeof out, "%s/canceled.pth", tu_temp_dir());
    ck_assert_int_eq(graft_plan_open(&p, NULL, tiny, tiny, NULL, ctx), GRAFT_OK);
    stop = 0;
    o.progress = stop_after_three;
    o.cancel = &stop;
    ck_assert_int_eq(graft_plan_apply(p, out, &o, NULL, ctx), GRAFT_ECANCELED);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "canceled after 3 of 38 tensors"));
    ck_assert(!exists(out));
    graft_plan_free(p);
}
END_TEST

START_TEST(strict_counts_warnings_and_an_incomplete_plan_writes_nothing)
{
    static const char text[] = "graft: 1\npolicy: {unused: warn, missing: keep}\n"
                               "rename:\n  source:\n    - {match: '^fc\\.', to: 'head.'}\n";
    graft_plan_options po = GRAFT_PLAN_OPTIONS_INIT;
    graft_rules *r = NULL;
    graft_plan *lax = NULL, *strict = NULL;
    size_t warnings = 0;
    char out[600];
    bool is_error;

    snprintf(out, sizeof out, "%s/strict.pth", tu_temp_dir());
    ck_assert_int_eq(graft_rules_load_buffer(&r, "inline.yaml", text, sizeof text - 1, ctx),
                     GRAFT_OK);
    ck_assert_int_eq(graft_plan_open(&lax, r, tiny, tiny, &po, ctx), GRAFT_OK);
    ck_assert_uint_eq(graft_plan_errors(lax), 0);
    ck_assert_uint_eq(graft_plan_unused_count(lax), 2); /* fc.weight, fc.bias as head.* */
    ck_assert_uint_eq(graft_plan_missing_count(lax), 2);
    for (size_t i = 0; i < graft_plan_problem_count(lax); i++) {
        graft_plan_problem(lax, i, &is_error);
        warnings += !is_error;
    }
    ck_assert_uint_gt(warnings, 0);
    po.strict = true;
    ck_assert_int_eq(graft_plan_open(&strict, r, tiny, tiny, &po, ctx), GRAFT_OK);
    ck_assert_uint_eq(graft_plan_errors(strict), warnings);
    ck_assert_int_eq(graft_plan_apply(strict, out, NULL, NULL, ctx), GRAFT_EPLAN);
    ck_assert(!exists(out));
    graft_plan_free(strict);
    graft_plan_free(lax);
    graft_rules_free(r);
}
END_TEST

START_TEST(diff_and_json_of_an_identity_plan)
{
    graft_plan *p = NULL;
    graft_diff_result d;
    graft_model *m = NULL;
    char *json = NULL;
    ck_assert_int_eq(graft_plan_open(&p, NULL, tiny, tiny, NULL, ctx), GRAFT_OK);
    for (size_t i = 0; i < graft_plan_count(p); i++) {
        ck_assert_int_eq(graft_plan_diff(p, i, &d, ctx), GRAFT_OK);
        ck_assert(d.equal);
    }
    ck_assert_int_eq(graft_plan_json(&json, p, ctx), GRAFT_OK);
    ck_assert_ptr_nonnull(strstr(json, "\"errors\": 0}"));
    ck_assert_ptr_nonnull(strstr(json, "{\"target\": \"fc.bias\", \"sources\": [\"fc.bias\"]"));
    graft_free(json);
    ck_assert_int_eq(graft_model_open(&m, tiny, NULL, ctx), GRAFT_OK);
    ck_assert_int_eq(graft_model_json(&json, m, ctx), GRAFT_OK);
    ck_assert_ptr_nonnull(strstr(json, "\"name\": \"fc.bias\", \"dtype\": \"float32\", \"shape\": [10]"));
    free(json);
    graft_model_free(m);
    graft_plan_free(p);
}
END_TEST

/* A .npy file of 2x3 float32 0..5 stored as `descr` in `order`. */
static const char *write_npy(const char *name, const char *descr, bool fortran)
{
    static const float le[6] = {0, 1, 2, 3, 4, 5};
    uint8_t buf[128 + 24], *d;
    char dict[118];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': (2, 3), }",
                     descr, fortran ? "True" : "False");
    memset(dict + n, ' ', sizeof dict - 1 - (size_t)n);
    dict[sizeof dict - 1] = '\n';
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = sizeof dict;
    buf[9] = 0;
    memcpy(buf + 10, dict, sizeof dict);
    d = buf + 128;
    for (int i = 0; i < 6; i++) {
        /* element (r, c) at r*3+c (C order) or c*2+r (Fortran order) */
        int r = i / 3, c = i % 3, at = fortran ? c * 2 + r : i;
        uint8_t b[4];
        memcpy(b, &le[i], 4);
        for (int k = 0; k < 4; k++) d[at * 4 + k] = descr[0] == '>' ? b[3 - k] : b[k];
    }
    return tu_write_temp(name, buf, sizeof buf);
}

START_TEST(tensor_view_points_into_the_file_or_declines)
{
    const struct { const char *descr; bool fortran, viewed; int64_t s0, s1; } cases[] = {
        {"<f4", false, true, 12, 4}, {"<f4", true, true, 4, 8}, {">f4", false, false, 0, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        graft_model *m = NULL;
        const uint8_t *data = (const uint8_t *)1, *bytes;
        void *owned;
        int64_t strides[2] = {-1, -1};
        const char *path = write_npy(cases[k].fortran ? "f.npy" : "c.npy", cases[k].descr,
                                     cases[k].fortran);
        ck_assert_int_eq(graft_model_open(&m, path, NULL, ctx), GRAFT_OK);
        const graft_tensor *t = graft_model_tensor(m, 0);
        ck_assert(graft_tensor_view(m, t, &data, strides) == cases[k].viewed);
        ck_assert_int_eq(graft_tensor_bytes(m, t, &bytes, &owned, ctx), GRAFT_OK);
        if (cases[k].viewed) {
            ck_assert_int_eq(strides[0], cases[k].s0);
            ck_assert_int_eq(strides[1], cases[k].s1);
            for (int r = 0; r < 2; r++)
                for (int c = 0; c < 3; c++) {
                    float v;
                    memcpy(&v, data + r * strides[0] + c * strides[1], 4);
                    ck_assert(v == (float)(r * 3 + c));
                }
        } else {
            ck_assert_ptr_null(data);
            ck_assert_ptr_nonnull(owned); /* swapped into a buffer instead */
            float v[6];
            memcpy(v, bytes, sizeof v);
            for (int i = 0; i < 6; i++) ck_assert(v[i] == (float)i);
        }
        graft_free(owned);
        graft_model_free(m);
    }
}
END_TEST

static size_t nproblems;
static void problem(const char *msg, void *payload)
{
    (void)payload;
    ck_assert_ptr_nonnull(strstr(msg, "variable"));
    nproblems++;
}

START_TEST(freeze_refuses_missing_outputs_and_empty_lists)
{
    graft_freeze_options fo = GRAFT_FREEZE_OPTIONS_INIT;
    const char *outs[1] = {"nope"};
    char out[600];
    snprintf(out, sizeof out, "%s/frozen.pb", tu_temp_dir());
    fo.problem = problem;
    ck_assert_int_eq(graft_freeze("g.pb", tiny, outs, 0, out, &fo, NULL, ctx), GRAFT_ERROR);
    ck_assert_str_eq(graft_ctx_message(ctx), "--outputs: no node names");
    ck_assert_int_lt(graft_freeze("/nonexistent/g.pb", tiny, outs, 1, out, &fo, NULL, ctx), 0);
    ck_assert(!exists(out));
}
END_TEST

/* The whole job through the API; what a failure leaves: no output. */
static int whole_job(graft_ctx *c, void *payload)
{
    const char *out = payload;
    char man[700], *text = NULL;
    graft_apply_options o = GRAFT_APPLY_OPTIONS_INIT;
    graft_plan *p = NULL;
    int rc;
    snprintf(man, sizeof man, "%s.json", out);
    o.manifest = man;
    if ((rc = graft_plan_open(&p, NULL, tiny, tiny, NULL, c)) < 0) goto done;
    if ((rc = graft_plan_json(&text, p, c)) < 0) goto done;
    graft_free(text);
    if ((rc = graft_plan_explain(&text, p, "fc.bias", c)) < 0) goto done;
    graft_free(text);
    rc = graft_plan_apply(p, out, &o, NULL, c);
done:
    if (rc < 0) ck_assert(!exists(man));
    unlink(man);
    unlink(out);
    graft_plan_free(p);
    return rc;
}

START_TEST(every_allocation_failure_is_reported)
{
    char out[600];
    snprintf(out, sizeof out, "%s/oom.pth", tu_temp_dir());
    ck_assert_int_gt(tu_each_alloc_failure(ctx, whole_job, out), 0);
}
END_TEST

static Suite *api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("api");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, version_matches_header);
    tcase_add_test(tc, plan_getters_describe_the_resnet18_port);
    tcase_add_test(tc, apply_reports_progress_and_writes_a_manifest);
    tcase_add_test(tc, cancel_stops_the_apply_and_writes_nothing);
    tcase_add_test(tc, strict_counts_warnings_and_an_incomplete_plan_writes_nothing);
    tcase_add_test(tc, diff_and_json_of_an_identity_plan);
    tcase_add_test(tc, freeze_refuses_missing_outputs_and_empty_lists);
    tcase_add_test(tc, every_allocation_failure_is_reported);
    tcase_add_test(tc, tensor_view_points_into_the_file_or_declines);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(api_suite());
}
