/* test_strmap.c - the one string-keyed hash map (core/strmap.c), used by the
 * model's name index, the rules loader and planner, and tf_freeze's nodes. */
#include "strmap.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys that are byte spans (not NUL-terminated), in an array that moves. */
typedef struct span {
    const char *p;
    size_t n;
} span;

typedef struct table {
    span *v;
    size_t n;
} table;

static const char *span_key(const void *owner, size_t i, size_t *len)
{
    const table *t = owner;
    *len = t->v[i].n;
    return t->v[i].p;
}

START_TEST(strv_put_get_and_duplicates)
{
    static const char *const keys[] = {"a", "b", "", "conv.weight", "b", "a.b"};
    graft_strmap m;
    ck_assert_int_eq(graft_strmap_init_strv(&m, keys, 6, tu_ctx), GRAFT_OK);
    ck_assert_uint_eq(graft_strmap_get(&m, "a"), GRAFT_STRMAP_NONE);
    for (size_t i = 0; i < 6; i++) {
        size_t prev = graft_strmap_put(&m, i);
        ck_assert_uint_eq(prev, i == 4 ? 1 : GRAFT_STRMAP_NONE);
    }
    ck_assert_uint_eq(m.count, 5);
    ck_assert_uint_eq(graft_strmap_get(&m, "a"), 0);
    ck_assert_uint_eq(graft_strmap_get(&m, "b"), 1);  /* the first holder stays */
    ck_assert_uint_eq(graft_strmap_get(&m, ""), 2);
    ck_assert_uint_eq(graft_strmap_get(&m, "conv.weight"), 3);
    ck_assert_uint_eq(graft_strmap_get(&m, "a.b"), 5);
    ck_assert_uint_eq(graft_strmap_get(&m, "conv"), GRAFT_STRMAP_NONE);
    ck_assert_uint_eq(graft_strmap_find(&m, "conv.weight", 4), GRAFT_STRMAP_NONE);
    ck_assert_uint_eq(graft_strmap_find(&m, "a.bX", 3), 5);
    graft_strmap_free(&m);
    ck_assert_uint_eq(graft_strmap_get(&m, "a"), GRAFT_STRMAP_NONE);  /* empty, not freed memory */
}
END_TEST

START_TEST(grows_while_the_owner_array_moves)
{
    enum { N = 5000 };
    static char names[N][12];
    table t = {NULL, 0};
    graft_strmap m;
    graft_strmap_init(&m, span_key, &t);
    for (size_t i = 0; i < N; i++) {
        int len = snprintf(names[i], sizeof names[i], "n%zu", i);
        t.v = realloc(t.v, (t.n + 1) * sizeof *t.v);  /* the array moves under the map */
        ck_assert_ptr_nonnull(t.v);
        t.v[t.n++] = (span){names[i], (size_t)len};
        ck_assert_int_eq(graft_strmap_reserve(&m, t.n, tu_ctx), GRAFT_OK);
        ck_assert_uint_eq(graft_strmap_put(&m, i), GRAFT_STRMAP_NONE);
        ck_assert_uint_le(2 * m.count, m.cap);  /* at most half full */
    }
    for (size_t i = 0; i < N; i++)
        ck_assert_uint_eq(graft_strmap_find(&m, names[i], strlen(names[i])), i);
    /* spans with embedded NULs and prefixes of each other are distinct keys */
    ck_assert_uint_eq(graft_strmap_find(&m, "n1\0", 3), GRAFT_STRMAP_NONE);
    ck_assert_uint_eq(graft_strmap_find(&m, "n10", 2), 1);
    graft_strmap_free(&m);
    free(t.v);
}
END_TEST

static int reserve_then_put(graft_ctx *ctx, void *payload)
{
    static const char *const keys[] = {"x", "y", "z"};
    graft_strmap *m = payload;
    int rc;
    graft_strmap_init(m, graft_strmap_key_strv, keys);
    rc = graft_strmap_reserve(m, 2, ctx);
    if (rc == 0) {
        graft_strmap_put(m, 0);
        graft_strmap_put(m, 1);
        rc = graft_strmap_reserve(m, 40, ctx);  /* a rehash */
        if (rc < 0) {
            /* a failed reserve keeps what the map held */
            ck_assert_uint_eq(graft_strmap_get(m, "y"), 1);
            ck_assert_uint_eq(m->count, 2);
        }
    }
    graft_strmap_free(m);
    return rc;
}

START_TEST(failed_reserve_keeps_the_map)
{
    graft_strmap m;
    ck_assert_int_eq(tu_each_alloc_failure(tu_ctx, reserve_then_put, &m), 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("strmap");
    TCase *tc = tcase_create("strmap");
    tcase_add_checked_fixture(tc, tu_arena_setup, tu_arena_teardown);
    tcase_add_test(tc, strv_put_get_and_duplicates);
    tcase_add_test(tc, grows_while_the_owner_array_moves);
    tcase_add_test(tc, failed_reserve_keeps_the_map);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
