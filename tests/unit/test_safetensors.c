/* test_safetensors.c - the safetensors format (formats/safetensors/): the
 * writer reproduces a file byte for byte, --select retiles offsets, sharded
 * sets open through their index, and every allocation failure is clean. */
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

/* A safetensors file: header text padded to 8, then `data`. */
static const char *st_file(const char *name, const char *header, const void *data, size_t n)
{
    size_t h = strlen(header), padded = (h + 7) / 8 * 8;
    uint8_t *buf = calloc(1, 8 + padded + n + 1);
    graft_put_le64(buf, padded);
    memcpy(buf + 8, header, h);
    memset(buf + 8 + h, ' ', padded - h);
    memcpy(buf + 8 + padded, data, n);
    const char *path = tu_write_temp(name, buf, 8 + padded + n);
    free(buf);
    return path;
}

static const char st_header[] =
    "{\"__metadata__\":{\"format\":\"pt\",\"k\\\"q\":\"v\\n\"},"
    "\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,24]},"
    "\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
    "\"e\":{\"dtype\":\"BF16\",\"shape\":[0,3],\"data_offsets\":[24,24]},"
    "\"b\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[24,27]}}";

START_TEST(safetensors_rewrite_is_byte_identical)
{
    uint8_t data[27];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7);
    data[24] = 1, data[25] = 0, data[26] = 1;
    const char *in = st_file("in.safetensors", st_header, data, sizeof data);
    const char *out = tu_write_temp("out.safetensors", "", 0);
    size_t na, nb;
    ck_assert_msg(tu_rewrite(in, out, false, ctx) == 0, "%s", graft_ctx_message(ctx));
    uint8_t *a = tu_read_file(in, &na), *b = tu_read_file(out, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(memcmp(a, b, na) == 0, "%.*s", (int)nb, (const char *)b + 8);
    free(a);
    free(b);
    tu_same_tensors(in, out, ctx);
}
END_TEST

START_TEST(safetensors_select_retiles_offsets)
{
    uint8_t data[27] = {0};
    const char *in = st_file("sel.safetensors", st_header, data, sizeof data);
    const char *out = tu_write_temp("sel-out.safetensors", "", 0);
    graft_open_options o = GRAFT_OPEN_OPTIONS_INIT;
    graft_model *m = NULL;
    tu_self_fill f = {{tu_emit_self, NULL}, NULL, false};
    o.select = "w";
    ck_assert_int_eq(graft_model_open(&m, in, &o, ctx), 0);
    ck_assert_uint_eq(graft_model_count(m), 1);
    f.m = m;
    ck_assert_msg(m->format->write(m, out, &f.base, ctx) == 0, "%s", graft_ctx_message(ctx));
    graft_model_free(m);
    ck_assert_msg(graft_model_open(&m, out, NULL, ctx) == 0, "%s", graft_ctx_message(ctx));
    ck_assert_str_eq(graft_model_tensor(m, 0)->name, "w");
    ck_assert_uint_eq(m->tensors[0].aux, 0);
    graft_model_free(m);
}
END_TEST

START_TEST(open_allocation_failures_are_clean)
{
    uint8_t data[27] = {0};
    const char *one = st_file("oom-00001.safetensors", st_header, data, sizeof data);
    const char *index =
        tu_write_temp("oom.safetensors.index.json",
                      "{\"metadata\":{},\"weight_map\":{\"w\":\"oom-00001.safetensors\","
                      "\"s\":\"oom-00001.safetensors\",\"e\":\"oom-00001.safetensors\","
                      "\"b\":\"oom-00001.safetensors\"}}", 142);
    ck_assert_int_gt(tu_each_alloc_failure(ctx, tu_open_and_hash, (void *)one), 0);
    ck_assert_int_gt(tu_each_alloc_failure(ctx, tu_open_and_hash, (void *)index), 0);
}
END_TEST

static Suite *safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("safetensors");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, safetensors_rewrite_is_byte_identical);
    tcase_add_test(tc, safetensors_select_retiles_offsets);
    tcase_add_test(tc, open_allocation_failures_are_clean);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(safetensors_suite()); }
