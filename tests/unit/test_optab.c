/* test_optab.c - the op table: every op has a name, a parse, an infer and a
 * JSON form; the JSON of every op (both forms of take) reads back through the
 * rules loader to the same op; 1.1 ops are refused in 1.0 files. */
#include "testutil.h"

#include "error.h"
#include "../../src/rules/rules.h"
#include "../../src/transform/op_json.h"
#include "../../src/transform/optab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static graft_ctx *ctx;
static void setup(void) { ctx = graft_ctx_new(); }
static void teardown(void) { graft_ctx_free(ctx); }

/* One example per op, with the JSON it must print.  A new op without an
 * example here fails every_op_has_an_example. */
static int64_t axes[] = {2, 3, 1, 0}, dims[] = {-1, 6}, order[] = {1, 0, 2}, rows[] = {4, 2};
static const struct {
    graft_op op;
    const char *json;
} examples[] = {
    {{.kind = GRAFT_OP_PERMUTE, .n = 4, .v = axes}, "{\"permute\": [2, 3, 1, 0]}"},
    {{.kind = GRAFT_OP_TRANSPOSE}, "\"transpose\""},
    {{.kind = GRAFT_OP_RESHAPE, .n = 2, .v = dims}, "{\"reshape\": [-1, 6]}"},
    {{.kind = GRAFT_OP_CAST, .dtype = GRAFT_BFLOAT16}, "{\"cast\": \"bfloat16\"}"},
    {{.kind = GRAFT_OP_CHUNKS, .n = 3, .v = order, .axis = 0},
     "{\"chunks\": {\"axis\": 0, \"order\": [1, 0, 2]}}"},
    {{.kind = GRAFT_OP_TAKE, .axis = -1, .count = 3, .index = 2},
     "{\"take\": {\"axis\": -1, \"count\": 3, \"index\": 2}}"},
    /* the form graft_ops_invert makes for a concat of unequal sources */
    {{.kind = GRAFT_OP_TAKE, .axis = 0, .n = 2, .v = rows},
     "{\"take\": {\"axis\": 0, \"start\": 4, \"length\": 2}}"},
    {{.kind = GRAFT_OP_CONCAT, .axis = 1}, "{\"concat\": {\"axis\": 1}}"},
    {{.kind = GRAFT_OP_SUM}, "\"sum\""},
    {{.kind = GRAFT_OP_SCALE, .mul = 0.5, .add = -1e-3}, "{\"scale\": {\"mul\": 0.5, \"add\": -0.001}}"},
    {{.kind = GRAFT_OP_FOLD_BN, .part = GRAFT_BN_BIAS, .eps = 1e-5},
     "{\"fold_bn\": {\"part\": \"bias\", \"eps\": 1e-05}}"},
    {{.kind = GRAFT_OP_FOLD_BN, .part = GRAFT_BN_WEIGHT, .eps = 0.001},
     "{\"fold_bn\": {\"part\": \"weight\", \"eps\": 0.001}}"},
    {{.kind = GRAFT_OP_STACK, .axis = 0}, "{\"stack\": {\"axis\": 0}}"},
    {{.kind = GRAFT_OP_UNSTACK, .axis = 1, .index = 3}, "{\"unstack\": {\"axis\": 1, \"index\": 3}}"},
    {{.kind = GRAFT_OP_PAD, .axis = 0, .length = 32, .value = -1.5},
     "{\"pad\": {\"axis\": 0, \"to\": 32, \"value\": -1.5}}"},
    {{.kind = GRAFT_OP_SLICE, .axis = 0, .start = 0, .length = 30},
     "{\"slice\": {\"axis\": 0, \"start\": 0, \"length\": 30}}"},
    {{.kind = GRAFT_OP_QUANTIZE, .dtype = GRAFT_INT8}, "{\"quantize\": \"int8\"}"},
    {{.kind = GRAFT_OP_DEQUANTIZE}, "\"dequantize\""},
    {{.kind = GRAFT_OP_QUANTIZE, .index = 1}, "{\"quantize\": \"q8_0\"}"},
    {{.kind = GRAFT_OP_DEQUANTIZE, .index = 2}, "{\"dequantize\": \"q4_0\"}"},
};
#define NEX (sizeof examples / sizeof *examples)

START_TEST(every_op_has_a_description_and_an_example)
{
    for (unsigned k = 0; k < GRAFT_OP_COUNT; k++) {
        const graft_op_def *d = graft_op_def_of((graft_op_kind)k);
        bool seen = false;
        ck_assert_ptr_nonnull(d);
        ck_assert_ptr_nonnull(d->name);
        ck_assert_ptr_nonnull(d->parse);
        ck_assert_ptr_nonnull(d->infer);
        ck_assert(d->json || (d->flags & GRAFT_OPF_BARE));
        ck_assert_int_eq(graft_op_find(d->name, strlen(d->name)), k);
        for (size_t i = 0; i < NEX; i++) seen = seen || examples[i].op.kind == (graft_op_kind)k;
        ck_assert_msg(seen, "op '%s' has no JSON example", d->name);
    }
    ck_assert_ptr_null(graft_op_def_of(GRAFT_OP_COUNT));
    ck_assert_int_eq(graft_op_find("flip", 4), GRAFT_OP_COUNT);
}
END_TEST

/* json(op) is exact, and loading it as an op of a 1.1 rules file gives an op
 * whose json is the same text. */
/* The op's JSON as the one writer gives it; free() the text. */
static char *op_json_text(const graft_op *op)
{
    graft_jsonw w;
    graft_jsonw_init(&w, ctx);
    graft_op__json(&w, op);
    ck_assert_int_eq(w.rc, GRAFT_OK);
    return w.p;
}

START_TEST(op_json_reads_back_to_the_same_op)
{
    char yaml[512];
    graft_rules *r = NULL;
    char *buf = op_json_text(&examples[_i].op), *again;
    ck_assert_str_eq(buf, examples[_i].json);
    snprintf(yaml, sizeof yaml, "graft: 1.1\ntransforms:\n  - ops: [%s]\n", buf);
    ck_assert_msg(graft_rules_load_buffer(&r, "r.yaml", yaml, strlen(yaml), ctx) == 0, "%s: %s",
                  buf, graft_ctx_message(ctx));
    ck_assert_uint_eq(r->transforms[0].nops, 1);
    again = op_json_text(&r->transforms[0].ops[0]);
    ck_assert_str_eq(again, buf);
    free(again);
    free(buf);
    graft_rules_free(r);
}
END_TEST

/* A permute of rank 32 writes in full: no fixed-size buffer truncates it. */
START_TEST(op_json_of_a_long_op_is_whole)
{
    graft_op op = {.kind = GRAFT_OP_PERMUTE, .n = 32};
    int64_t v[32];
    for (int i = 0; i < 32; i++) v[i] = 31 - i;
    op.v = v;
    char *text = op_json_text(&op);
    ck_assert_uint_gt(strlen(text), 100);
    ck_assert_str_eq(text + strlen(text) - 8, ", 1, 0]}");
    free(text);
}
END_TEST

/* A 1.0 file keeps the 1.0 op list and refuses the new ops by name. */
START_TEST(new_ops_need_format_1_1)
{
    graft_rules *r = NULL;
    const char *y = "graft: 1\ntransforms:\n  - ops: [sum]\n";
    ck_assert_int_eq(graft_rules_load_buffer(&r, "r.yaml", y, strlen(y), ctx), GRAFT_ERULE);
    ck_assert_str_eq(graft_ctx_message(ctx),
                     "r.yaml:3:11: op: 'sum' needs graft: 1.1 (this file says graft: 1)");
    y = "graft: 1.0\ntransforms:\n  - ops: [{scale: {mul: 2}}]\n";
    ck_assert_int_eq(graft_rules_load_buffer(&r, "r.yaml", y, strlen(y), ctx), GRAFT_ERULE);
    ck_assert_str_eq(graft_ctx_message(ctx),
                     "r.yaml:3:11: op: 'scale' needs graft: 1.1 (this file says graft: 1)");
    y = "graft: 1\ntransforms:\n  - ops: [{take: {axis: 0, start: 1, length: 2}}]\n";
    ck_assert_int_eq(graft_rules_load_buffer(&r, "r.yaml", y, strlen(y), ctx), GRAFT_ERULE);
    ck_assert_str_eq(graft_ctx_message(ctx),
                     "r.yaml:3:28: take: unknown key 'start' (expected one of: axis, count, index)");
    y = "graft: 1\ntransforms:\n  - ops: [flip]\n";
    ck_assert_int_eq(graft_rules_load_buffer(&r, "r.yaml", y, strlen(y), ctx), GRAFT_ERULE);
    ck_assert_str_eq(graft_ctx_message(ctx),
                     "r.yaml:3:11: op: unknown op 'flip' (expected one of: permute, transpose, "
                     "reshape, cast, chunks, take, concat)");
    y = "graft: 1\ntransforms:\n  - ops: [{flip: 1}]\n"; /* as before the table, at the key */
    ck_assert_int_eq(graft_rules_load_buffer(&r, "r.yaml", y, strlen(y), ctx), GRAFT_ERULE);
    ck_assert_str_eq(graft_ctx_message(ctx),
                     "r.yaml:3:12: op: unknown key 'flip' (expected one of: permute, transpose, "
                     "reshape, cast, chunks, take, concat)");
    y = "graft: 1.1\ntransforms:\n  - ops: [flip]\n";
    ck_assert_int_eq(graft_rules_load_buffer(&r, "r.yaml", y, strlen(y), ctx), GRAFT_ERULE);
    ck_assert_str_eq(graft_ctx_message(ctx),
                     "r.yaml:3:11: op: unknown op 'flip' (expected one of: permute, transpose, "
                     "reshape, cast, chunks, take, concat, sum, scale, fold_bn, stack, unstack, "
                     "pad, slice, quantize, dequantize)");
    y = "graft: 1.2\n";
    ck_assert_int_eq(graft_rules_load_buffer(&r, "r.yaml", y, strlen(y), ctx), GRAFT_ERULE);
    ck_assert_str_eq(graft_ctx_message(ctx),
                     "r.yaml:1:8: graft: format version 1.2 is not supported (this graft reads 1 "
                     "and 1.1)");
    y = "graft: '1.1'\n";
    ck_assert_int_eq(graft_rules_load_buffer(&r, "r.yaml", y, strlen(y), ctx), GRAFT_ERULE);
    y = "graft: 1.1\n";
    ck_assert_int_eq(graft_rules_load_buffer(&r, "r.yaml", y, strlen(y), ctx), 0);
    ck_assert_uint_eq(r->version, 1);
    ck_assert_uint_eq(r->minor, 1);
    graft_rules_free(r);
    y = "graft: 1.0\n";
    ck_assert_int_eq(graft_rules_load_buffer(&r, "r.yaml", y, strlen(y), ctx), 0);
    ck_assert_uint_eq(r->minor, 0);
    graft_rules_free(r);
}
END_TEST

/* Loader errors of the new ops, each at its line:column. */
static const struct {
    const char *ops, *msg;
} bad[] = {
    {"[{sum: 1}]", "r.yaml:3:17: sum: takes no value"},
    {"[{scale: {mul: x}}]", "r.yaml:3:25: scale: mul: expected a finite number, got 'x'"},
    {"[{scale: {mul: .inf}}]", "r.yaml:3:25: scale: mul: expected a finite number, got '.inf'"},
    {"[{scale: {div: 2}}]", "r.yaml:3:20: scale: unknown key 'div' (expected one of: mul, add)"},
    {"[{fold_bn: {part: gamma, eps: 1e-5}}]",
     "r.yaml:3:28: fold_bn: part: 'gamma' is not one of weight | bias"},
    {"[{fold_bn: {part: weight}}]", "r.yaml:3:21: fold_bn: 'eps' is required"},
    {"[{fold_bn: {part: weight, eps: -1}}]", "r.yaml:3:41: fold_bn: eps: -1 is negative"},
    {"[{stack: {}}]", "r.yaml:3:19: stack: 'axis' is required"},
    {"[{unstack: {axis: 0}}]", "r.yaml:3:21: unstack: 'index' is required"},
    {"[{pad: {axis: 0, to: -3}}]", "r.yaml:3:31: pad: to: -3 is out of range [0, 9223372036854775807]"},
    {"[{slice: {axis: 0, start: 1}}]", "r.yaml:3:19: slice: 'length' is required"},
    {"[transpose, sum]", "r.yaml:3:22: sum: must be the first op of a chain"},
    {"[scale]", "r.yaml:3:11: op: unknown op 'scale' (expected one of: permute, transpose, "
                "reshape, cast, chunks, take, concat, sum, scale, fold_bn, stack, unstack, pad, "
                "slice, quantize, dequantize)"},
};

START_TEST(new_op_errors_name_line_and_column)
{
    char y[256];
    graft_rules *r = NULL;
    snprintf(y, sizeof y, "graft: 1.1\ntransforms:\n  - ops: %s\n", bad[_i].ops);
    ck_assert_int_eq(graft_rules_load_buffer(&r, "r.yaml", y, strlen(y), ctx), GRAFT_ERULE);
    ck_assert_str_eq(graft_ctx_message(ctx), bad[_i].msg);
    ck_assert_ptr_null(r);
}
END_TEST

/* ---- running the 1.1 ops (their shape errors: test_ops.c) ---------------- */

static graft_op at(graft_op_kind kind)
{
    graft_op op = {.kind = kind, .file = "m.yaml", .line = 9};
    return op;
}

/* Every allocation of a chain of the arithmetic ops fails cleanly. */
static int run_fold(graft_ctx *c, void *payload)
{
    (void)payload;
    float wv[24], g[2] = {1, 2}, z[2] = {0, 0}, var[2] = {1, 4};
    for (int k = 0; k < 24; k++) wv[k] = (float)k;
    graft_tview in[5] = {{{GRAFT_FLOAT32, 2, {2, 12}}, (const uint8_t *)wv},
                         {{GRAFT_FLOAT32, 1, {2}}, (const uint8_t *)g},
                         {{GRAFT_FLOAT32, 1, {2}}, (const uint8_t *)z},
                         {{GRAFT_FLOAT32, 1, {2}}, (const uint8_t *)z},
                         {{GRAFT_FLOAT32, 1, {2}}, (const uint8_t *)var}};
    graft_op ops[2] = {at(GRAFT_OP_FOLD_BN), at(GRAFT_OP_SCALE)};
    float out[24];
    ops[1].mul = 2;
    int rc = graft_ops_run_mem(ops, 2, in, 5, (uint8_t *)out, c);
    if (rc == 0) { /* W * gamma / sqrt(var + 0) * 2 */
        ck_assert(out[0] == 0 && out[1] == 2 && out[12] == 12 * 2 / 2.0f * 2 && out[23] == 23 * 2);
    }
    return rc;
}

START_TEST(arithmetic_ops_fail_allocations_cleanly)
{
    ck_assert_int_gt(tu_each_alloc_failure(ctx, run_fold, NULL), 0);
}
END_TEST

static Suite *optab_suite(void)
{
    Suite *s = suite_create("optab");
    TCase *tc = tcase_create("table");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, every_op_has_a_description_and_an_example);
    tcase_add_loop_test(tc, op_json_reads_back_to_the_same_op, 0, NEX);
    tcase_add_test(tc, op_json_of_a_long_op_is_whole);
    tcase_add_test(tc, new_ops_need_format_1_1);
    tcase_add_loop_test(tc, new_op_errors_name_line_and_column, 0, sizeof bad / sizeof *bad);
    tcase_add_test(tc, arithmetic_ops_fail_allocations_cleanly);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(optab_suite());
}
