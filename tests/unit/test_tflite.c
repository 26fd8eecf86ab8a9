/*
 * test_tflite.c - the mobile formats' readers under allocation failure
 * (TFLite, TF V1 checkpoints, Core ML .mlmodel), TFLite's FlatBuffer reader
 * on hand-made buffers, and the in-memory sink the TFLite writer compares
 * shared buffers with.
 */
#include "testutil.h"

#include "fb.h"
#include "format.h"
#include "rd.h"
#include "sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static graft_ctx *ctx;
static void setup(void) { ctx = graft_ctx_new(); }
static void teardown(void) { graft_ctx_free(ctx); }

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

/* Open a model and hash every tensor (reading each one). */
static int open_and_hash(graft_ctx *c, void *payload)
{
    graft_model *m = NULL;
    uint8_t digest[32];
    int rc = graft_model_open(&m, payload, NULL, c);
    for (size_t i = 0; rc == 0 && i < graft_model_count(m); i++)
        rc = graft_tensor_sha256(m, graft_model_tensor(m, i), digest, c);
    graft_model_free(m);
    return rc;
}

static int open_coreml(graft_ctx *c, void *payload)
{
    graft_open_options o = GRAFT_OPEN_OPTIONS_INIT;
    graft_model *m = NULL;
    o.format = "coreml";
    int rc = graft_model_open(&m, payload, &o, c);
    graft_model_free(m);
    return rc;
}

START_TEST(open_allocation_failures_are_clean)
{
    static char paths[4][4096];
    const char *fx = env_or("GRAFT_FIXTURES", "../shared/fixtures");
    const char *root = env_or("GRAFT_SOURCE_ROOT", ".");
    snprintf(paths[0], sizeof paths[0], "%s/tflite/tflm_micro_speech_int8_conv/micro_speech_quantized.tflite", fx);
    snprintf(paths[1], sizeof paths[1], "%s/tflite/tflm_mnist_lstm_float/trained_lstm.tflite", fx);
    snprintf(paths[2], sizeof paths[2], "%s/tf_ckpt_v1/serving_session_bundle_half_plus_two/export-00000-of-00001", fx);
    snprintf(paths[3], sizeof paths[3], "%s/tests/fuzz/corpora/coreml/neuralNetworkClassifier", root);
    for (int i = 0; i < 3; i++)
        ck_assert_int_gt(tu_each_alloc_failure(ctx, open_and_hash, paths[i]), 0);
    /* the Core ML corpus file has no .mlmodel name: open it by format */
    graft_open_options o = GRAFT_OPEN_OPTIONS_INIT;
    graft_model *m = NULL;
    o.format = "coreml";
    ck_assert_int_eq(graft_model_open(&m, paths[3], &o, ctx), 0);
    ck_assert_uint_eq(graft_model_count(m), 10);
    ck_assert_str_eq(graft_tensor_name(graft_model_tensor(m, 0)), "conv1/weights");
    graft_model_free(m);
    ck_assert_int_gt(tu_each_alloc_failure(ctx, open_coreml, paths[3]), 0);
}
END_TEST

/* A table whose vtable says field 0 (u32) is at +4 and field 1 is absent. */
START_TEST(flatbuffer_fields_and_defaults)
{
    uint8_t b[32] = {0};
    graft_fb fb = {.p = b, .n = sizeof b, .ctx = ctx};
    graft_fb_table t;
    uint32_t v;
    graft_put_le32(b, 12);                  /* root at 12 */
    graft_put_le16(b + 4, 6);               /* vtable at 4: 6 bytes, */
    graft_put_le16(b + 6, 8);               /* table 8 bytes, */
    graft_put_le16(b + 8, 4);               /* field 0 at +4 */
    graft_put_le32(b + 12, 8);              /* soffset: vtable = 12 - 8 */
    graft_put_le32(b + 16, 77);
    ck_assert_int_eq(graft_fb__root(&fb, &t), 0);
    ck_assert_int_eq(graft_fb__u32(&fb, &t, 0, 5, "f0", &v), 0);
    ck_assert_uint_eq(v, 77);
    ck_assert_int_eq(graft_fb__u32(&fb, &t, 1, 5, "f1", &v), 0);
    ck_assert_uint_eq(v, 5);
    /* a field past its table */
    graft_put_le16(b + 8, 6);
    ck_assert_int_eq(graft_fb__u32(&fb, &t, 0, 5, "f0", &v), GRAFT_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "outside its 8-byte table"));
    /* a vtable before the file */
    graft_put_le32(b + 12, 100);
    ck_assert_int_eq(graft_fb__root(&fb, &t), GRAFT_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "vtable at -88"));
}
END_TEST

START_TEST(memory_sink_collects_and_patches)
{
    graft_sink *s = NULL;
    const uint8_t *p;
    size_t n;
    ck_assert_int_eq(graft_sink_open_mem(&s, ctx), 0);
    ck_assert_int_eq(graft_sink_write(s, "hello", 5), 0);
    ck_assert_int_eq(graft_sink_fill(s, 'x', 10000), 0);
    ck_assert_int_eq(graft_sink_pwrite(s, 1, "E", 1), 0);
    ck_assert_int_eq(graft_sink_mem(s, &p, &n), 0);
    ck_assert_uint_eq(n, 10005);
    ck_assert(memcmp(p, "hEllox", 6) == 0 && p[10004] == 'x');
    graft_sink_abort(s);
}
END_TEST

static Suite *tflite_suite(void)
{
    Suite *s = suite_create("tflite");
    TCase *tc = tcase_create("tflite");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, open_allocation_failures_are_clean);
    tcase_add_test(tc, flatbuffer_fields_and_defaults);
    tcase_add_test(tc, memory_sink_collects_and_patches);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(tflite_suite()); }
