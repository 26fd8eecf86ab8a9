/*
 * test_gguf.c - GGUF metadata encoding and the Q8_0/Q4_0 kernels.
 * (tests/interop/test_gguf.py checks the quantize / dequantize ops bit for
 * bit against a NumPy port of ggml's reference code.)
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "format.h"
#include "gguf.h"
#include "ggml_quant.h"

START_TEST(kv_build_types_and_last_wins)
{
    const char *meta[] = {"general.architecture=llama", "a.n:u32=7", "a.f:f32=0.5",
                          "a.b:bool=true", "a.n:i64=-3", "general.alignment=64"};
    graft_gguf_kv kv;
    graft_rd r;
    graft_gguf_kv back;
    ck_assert_int_eq(graft_gguf__kv_build(meta, 6, &kv, tu_ctx), 0);
    ck_assert_uint_eq(kv.n, 5); /* a.n once, the i64 one */
    ck_assert_uint_eq(kv.alignment, 64);
    graft_rd_init(&r, kv.bytes, kv.len, 0, tu_ctx);
    ck_assert_int_eq(graft_gguf__kv_parse(&r, kv.n, &back, tu_ctx), 0);
    ck_assert_uint_eq(back.alignment, 64);
    ck_assert_uint_eq(graft_rd_left(&r), 0);
    graft_gguf__kv_free(&kv);
}
END_TEST

START_TEST(kv_build_refuses_bad_values)
{
    static const char *bad[] = {"x:u8=256", "x:i8=-129", "x:f32=abc", "x:bool=yes", "x:u7=1",
                                "=1", "novalue", "general.alignment=48", "x:u32=-1"};
    graft_gguf_kv kv;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_lt(graft_gguf__kv_build(&bad[i], 1, &kv, tu_ctx), 0);
        ck_assert_ptr_nonnull(strstr(graft_ctx_message(tu_ctx), "--meta"));
    }
}
END_TEST

START_TEST(q8_0_round_trip_error_is_half_a_step)
{
    float x[64], y[64];
    uint8_t b[68];
    for (int i = 0; i < 64; i++) x[i] = sinf((float)i) * (i < 32 ? 3.0f : 0.01f);
    ck_assert_int_eq(graft_ggml_quantize(GRAFT_GGML_Q8_0, x, 64, b, tu_ctx), 0);
    ck_assert_int_eq(graft_ggml_dequantize(GRAFT_GGML_Q8_0, b, 2, y, tu_ctx), 0);
    for (int i = 0; i < 64; i++) ck_assert_float_le(fabsf(x[i] - y[i]), (i < 32 ? 3.0f : 0.01f) / 127 * 0.51f);
    ck_assert_int_lt(graft_ggml_quantize(GRAFT_GGML_Q8_0, x, 33, b, tu_ctx), 0);
    x[3] = NAN;
    ck_assert_int_lt(graft_ggml_quantize(GRAFT_GGML_Q4_0, x, 32, b, tu_ctx), 0);
}
END_TEST

START_TEST(q4_0_zero_block_is_all_eights)
{
    float x[32] = {0}, y[32];
    uint8_t b[18];
    ck_assert_int_eq(graft_ggml_quantize(GRAFT_GGML_Q4_0, x, 32, b, tu_ctx), 0);
    ck_assert_uint_eq(b[0], 0); /* d = 0 / -8 is -0.0 in ggml too */
    ck_assert_uint_eq(b[1], 0x80);
    for (int j = 2; j < 18; j++) ck_assert_uint_eq(b[j], 0x88);
    ck_assert_int_eq(graft_ggml_dequantize(GRAFT_GGML_Q4_0, b, 1, y, tu_ctx), 0);
    for (int j = 0; j < 32; j++) ck_assert_float_eq(y[j], 0.0f);
}
END_TEST

/* A GGUF with metadata, an f32 and a q8_0 tensor, built here by hand. */
static size_t tiny_gguf(uint8_t *b)
{
    static const char key[] = "general.architecture", val[] = "llama";
    size_t n = 0;
#define U32(v) (graft_put_le32(b + n, (uint32_t)(v)), n += 4)
#define U64(v) (graft_put_le64(b + n, (uint64_t)(v)), n += 8)
#define STR(s) (U64(strlen(s)), memcpy(b + n, s, strlen(s)), n += strlen(s))
    memcpy(b, "GGUF", 4), n = 4;
    U32(3), U64(2), U64(1);
    STR(key), U32(8), STR(val);
    STR("w"), U32(2), U64(3), U64(2), U32(0), U64(0);
    STR("q"), U32(1), U64(32), U32(8), U64(32);
    while (n % 32) b[n++] = 0;
    memset(b + n, 0x11, 24), n += 24; /* w: 6 floats */
    memset(b + n, 0, 8), n += 8;     /* padding to 32 */
    memset(b + n, 0x22, 34), n += 34; /* q: one block */
#undef U32
#undef U64
#undef STR
    return n;
}

static int open_tiny(graft_ctx *c, void *payload)
{
    uint8_t buf[512];
    size_t n = tiny_gguf(buf);
    graft_model *m = NULL;
    (void)payload;
    int rc = graft_model_open_buffer(&m, "t.gguf", buf, n, NULL, c);
    graft_model_free(m);
    return rc;
}

START_TEST(open_tiny_and_allocation_failures)
{
    uint8_t buf[512];
    size_t n = tiny_gguf(buf);
    graft_model *m = NULL;
    ck_assert_int_eq(graft_model_open_buffer(&m, "t.gguf", buf, n, NULL, tu_ctx), 0);
    ck_assert_uint_eq(graft_model_count(m), 2);
    ck_assert_int_eq(graft_tensor_shape(graft_model_tensor(m, 0))[0], 2); /* ne reversed */
    ck_assert_int_eq(graft_tensor_shape(graft_model_tensor(m, 1))[1], 34);
    ck_assert_str_eq(graft_tensor_encoding(m, graft_model_tensor(m, 1)),
                     "ggml q8_0: blocks of 32 elements, 34 bytes each");
    ck_assert_ptr_null(graft_tensor_encoding(m, graft_model_tensor(m, 0)));
    graft_model_free(m);
    /* fail each allocation of opening it in turn: a clean error, no leak */
    ck_assert_int_gt(tu_each_alloc_failure(tu_ctx, open_tiny, NULL), 3);
}
END_TEST

static Suite *gguf_suite(void)
{
    Suite *s = suite_create("gguf");
    TCase *tc = tcase_create("kv_and_quant");
    tcase_add_checked_fixture(tc, tu_arena_setup, tu_arena_teardown);
    tcase_add_test(tc, kv_build_types_and_last_wins);
    tcase_add_test(tc, kv_build_refuses_bad_values);
    tcase_add_test(tc, q8_0_round_trip_error_is_half_a_step);
    tcase_add_test(tc, q4_0_zero_block_is_all_eights);
    tcase_add_test(tc, open_tiny_and_allocation_failures);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(gguf_suite()); }
