/* test_json.c - the JSON parser and the JSON text writer. */
#include "testutil.h"

#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const graft_json *parse_ok(const char *s)
{
    const graft_json *v = NULL;
    int rc = graft_json_parse(&v, (const uint8_t *)s, strlen(s), 0, &tu_arena, tu_ctx);
    ck_assert_msg(rc == 0, "%s: %s", s, graft_ctx_message(tu_ctx));
    return v;
}

static int parse_err(const char *s, size_t n)
{
    const graft_json *v = NULL;
    int rc = graft_json_parse(&v, (const uint8_t *)s, n, 0, &tu_arena, tu_ctx);
    ck_assert_msg(rc < 0, "accepted: %.*s", (int)n, s);
    ck_assert_ptr_null(v);
    return rc;
}

START_TEST(json_values_and_member_order)
{
    const graft_json *v = parse_ok(
        " {\"b\": [1, -2, 3.5, 1e3, -0, true, false, null], \"a\": {}, \"c\": [], \"b\": \"x\"} ");
    ck_assert_int_eq(v->type, GRAFT_JSON_OBJECT);
    ck_assert_uint_eq(v->count, 4);
    ck_assert_str_eq(v->keys[0], "b");
    ck_assert_str_eq(v->keys[1], "a");
    ck_assert_str_eq(v->keys[3], "b"); /* duplicates kept, in order */
    const graft_json *arr = graft_json_get(v, "b");
    ck_assert_int_eq(arr->type, GRAFT_JSON_ARRAY);
    ck_assert_uint_eq(arr->count, 8);
    ck_assert_int_eq(arr->items[0].type, GRAFT_JSON_INT);
    ck_assert_int_eq(arr->items[1].i, -2);
    ck_assert_int_eq(arr->items[2].type, GRAFT_JSON_DOUBLE);
    ck_assert(arr->items[2].d == 3.5);
    ck_assert_int_eq(arr->items[3].type, GRAFT_JSON_DOUBLE);
    ck_assert(arr->items[3].d == 1000.0);
    ck_assert_int_eq(arr->items[4].type, GRAFT_JSON_INT);
    ck_assert_int_eq(arr->items[5].type, GRAFT_JSON_BOOL);
    ck_assert(arr->items[5].b);
    ck_assert(!arr->items[6].b);
    ck_assert_int_eq(arr->items[7].type, GRAFT_JSON_NULL);
    ck_assert_uint_eq(arr->offset, 7);
    ck_assert_int_eq(graft_json_get(v, "a")->count, 0);
    ck_assert_ptr_null(graft_json_get(v, "zz"));
    ck_assert_ptr_null(graft_json_get(arr, "b"));
}
END_TEST

START_TEST(json_int64_limits)
{
    const graft_json *v = parse_ok("[9223372036854775807, -9223372036854775808, "
                                   "9223372036854775808, 123456789012345678901234567890]");
    ck_assert_int_eq(v->items[0].type, GRAFT_JSON_INT);
    ck_assert(v->items[0].i == INT64_MAX);
    ck_assert_int_eq(v->items[1].type, GRAFT_JSON_INT);
    ck_assert(v->items[1].i == INT64_MIN);
    ck_assert_int_eq(v->items[2].type, GRAFT_JSON_DOUBLE); /* does not fit: a double */
    ck_assert(v->items[2].d == 9223372036854775808.0);
    ck_assert_int_eq(v->items[3].type, GRAFT_JSON_DOUBLE);
}
END_TEST

START_TEST(json_string_escapes_to_utf8)
{
    const graft_json *v =
        parse_ok("\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\ude00\\u0000z\xc3\xa9\"");
    const char want[] = "a\"\\/\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\0z\xc3\xa9";
    ck_assert_int_eq(v->type, GRAFT_JSON_STRING);
    ck_assert_uint_eq(v->len, sizeof want - 1);
    ck_assert(memcmp(v->str, want, sizeof want) == 0);
}
END_TEST

static const struct {
    const char *text;
    const char *msg;  /* expected message */
} bad[] = {
    {"", "offset 0x0: JSON ends early: expected a JSON value"},
    {"{", "offset 0x1: JSON ends early: expected a string key"},
    {"{\"a\" 1}", "offset 0x5: expected ':' after an object key, found '1'"},
    {"{\"a\":1,}", "offset 0x7: expected a string key, found '}'"},
    {"[1,]", "offset 0x3: expected a JSON value, found ']'"},
    {"[1 2]", "offset 0x3: expected ',' or ']', found '2'"},
    {"01", "offset 0x1: expected the end of the JSON text, found '1'"},
    {"-", "offset 0x1: JSON ends early: expected a digit"},
    {"1.", "offset 0x2: JSON ends early: expected a digit after '.'"},
    {"1e+", "offset 0x3: JSON ends early: expected a digit in the exponent"},
    {"tru", "offset 0x0: expected a JSON value, found 't'"},
    {"\"abc", "offset 0x0: unterminated string"},
    {"\"a\tb\"", "offset 0x2: control character 0x09 in a string"},
    {"\"\\x\"", "offset 0x1: bad escape in a string"},
    {"\"\\u12g4\"", "offset 0x5: bad hex digit in a \\u escape"},
    {"\"\\ud800\"", "offset 0x1: high surrogate \\ud800 without a low one"},
    {"\"\\ud800\\u0041\"", "offset 0x7: high surrogate \\ud800 followed by \\u0041"},
    {"\"\\udc00\"", "offset 0x1: lone low surrogate \\udc00"},
    {"\"\xc3\"", "offset 0x1: invalid UTF-8 in a string"},
    {"\"\xc0\xaf\"", "offset 0x1: invalid UTF-8 in a string"},        /* overlong */
    {"\"\xed\xa0\x80\"", "offset 0x1: invalid UTF-8 in a string"},    /* surrogate */
    {"\"\xf4\x90\x80\x80\"", "offset 0x1: invalid UTF-8 in a string"}, /* > U+10FFFF */
    {"[1] x", "offset 0x4: expected the end of the JSON text, found 'x'"},
    {"\xef\xbb\xbf{}", "offset 0x0: expected a JSON value, found byte 0xef"},
};

START_TEST(json_rejects_with_offsets)
{
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(parse_err(bad[i].text, strlen(bad[i].text)), GRAFT_ECORRUPT);
        ck_assert_msg(strcmp(graft_ctx_message(tu_ctx), bad[i].msg) == 0, "case %zu: got '%s'", i,
                      graft_ctx_message(tu_ctx));
    }
}
END_TEST

START_TEST(json_origin_shifts_offsets)
{
    const graft_json *v = NULL;
    ck_assert_int_eq(graft_json_parse(&v, (const uint8_t *)"[x]", 3, 0x100, &tu_arena, tu_ctx),
                     GRAFT_ECORRUPT);
    ck_assert_str_eq(graft_ctx_message(tu_ctx), "offset 0x101: expected a JSON value, found 'x'");
}
END_TEST

START_TEST(json_depth_is_capped)
{
    size_t n = GRAFT_JSON_MAX_DEPTH + 1;
    char *s = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        s[i] = '[';
        s[2 * n - 1 - i] = ']';
    }
    ck_assert_int_eq(parse_err(s, 2 * n), GRAFT_ELIMIT);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(tu_ctx), "nested deeper than 128"));
    /* one level less is fine */
    const graft_json *v = NULL;
    ck_assert_int_eq(graft_json_parse(&v, (const uint8_t *)s + 1, 2 * n - 2, 0, &tu_arena, tu_ctx), 0);
    free(s);
}
END_TEST

START_TEST(json_embedded_nul_is_not_the_end)
{
    ck_assert_int_eq(parse_err("{}\0", 3), GRAFT_ECORRUPT);
    ck_assert_str_eq(graft_ctx_message(tu_ctx),
                     "offset 0x2: expected the end of the JSON text, found byte 0x00");
}
END_TEST

static int parse_json(graft_ctx *c, void *payload)
{
    const char *s = payload;
    const graft_json *v = NULL;
    graft_arena a;
    graft_arena_init(&a, c);
    int rc = graft_json_parse(&v, (const uint8_t *)s, strlen(s), 0, &a, c);
    if (rc == 0) ck_assert_ptr_nonnull(v);
    graft_arena_free(&a);
    return rc;
}

START_TEST(json_allocation_failures_are_clean)
{
    static const char s[] = "{\"a\":[1,2,{\"b\":\"\\u00e9\"}],\"c\":[[[[1.5]]]]}";
    ck_assert_int_gt(tu_each_alloc_failure(tu_ctx, parse_json, (void *)s), 0);
}
END_TEST

START_TEST(jsonw_escapes_and_round_trips)
{
    graft_jsonw w;
    const char raw[] = "q\"b\\n\n\x01\x1f\xc3\xa9";
    graft_jsonw_init(&w, tu_ctx);
    graft_jsonw_raw(&w, "{", 1);
    graft_jsonw_string(&w, raw, sizeof raw - 1);
    graft_jsonw_printf(&w, ":%d}", 42);
    ck_assert_int_eq(w.rc, 0);
    ck_assert_str_eq(w.p, "{\"q\\\"b\\\\n\\n\\u0001\\u001f\xc3\xa9\":42}");
    const graft_json *v = parse_ok(w.p);
    ck_assert_uint_eq(v->key_lens[0], sizeof raw - 1);
    ck_assert(memcmp(v->keys[0], raw, sizeof raw - 1) == 0);
    ck_assert_int_eq(v->items[0].i, 42);
    graft_jsonw_free(&w);
}
END_TEST

START_TEST(jsonw_value_writes_a_tree_back)
{
    const char *s = "{\"a\":[1,-2,0.5,true,false,null,\"\\u00e9\\n\"],\"b\":{},\"c\":[]}";
    graft_jsonw w;
    graft_jsonw_init(&w, tu_ctx);
    graft_jsonw_value(&w, parse_ok(s));
    ck_assert_int_eq(w.rc, 0);
    ck_assert_str_eq(w.p, "{\"a\":[1,-2,0.5,true,false,null,\"\xc3\xa9\\n\"],\"b\":{},\"c\":[]}");
    graft_jsonw_free(&w);
}
END_TEST

static Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("json");
    tcase_add_checked_fixture(tc, tu_arena_setup, tu_arena_teardown);
    tcase_add_test(tc, json_values_and_member_order);
    tcase_add_test(tc, json_int64_limits);
    tcase_add_test(tc, json_string_escapes_to_utf8);
    tcase_add_test(tc, json_rejects_with_offsets);
    tcase_add_test(tc, json_origin_shifts_offsets);
    tcase_add_test(tc, json_depth_is_capped);
    tcase_add_test(tc, json_embedded_nul_is_not_the_end);
    tcase_add_test(tc, json_allocation_failures_are_clean);
    tcase_add_test(tc, jsonw_escapes_and_round_trips);
    tcase_add_test(tc, jsonw_value_writes_a_tree_back);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(json_suite());
}
