/* test_library.c - the shipped rules library (src/rules/library.c): finding
 * rules files under several folders and ranking them against two models. */
#include "testutil.h"

#include "error.h"
#include "../../src/rules/library.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static graft_ctx *ctx;
static void setup(void) { ctx = graft_ctx_new(); }
static void teardown(void) { graft_ctx_free(ctx); }

static const char *put(const char *dir, const char *rel, const char *text)
{
    static char path[8][512];
    static int slot;
    char *p = path[slot++ % 8], *s;
    snprintf(p, 512, "%s/%s", dir, rel);
    mkdir(dir, 0755);
    for (s = strchr(p + strlen(dir) + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        mkdir(p, 0755);
        *s = '/';
    }
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return p;
}

/* dir/rel: a safetensors file of float32 zeros, tensors a (2x3) and b (4). */
static char *safetensors(const char *dir, const char *rel, const char *a, const char *b)
{
    char header[256], *path = malloc(512);
    uint64_t len;
    snprintf(header, sizeof header,
             "{\"%s\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
             "\"%s\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[24,40]}}", a, b);
    len = strlen(header);
    snprintf(path, 512, "%s/%s", dir, rel);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(&len, 8, 1, f);
    fwrite(header, 1, len, f);
    for (int i = 0; i < 40; i++) fputc(0, f);
    fclose(f);
    return path;
}

typedef struct tree {
    char d1[512], d2[512];
    char *src, *skel;
} tree;

/* d1: a-to-b/{fill,partial}.yaml (+ a text file and a nested folder, both
 * skipped); d2: a-to-b/fill.yaml (shadowed by d1's) and c-to-d/more.yaml. */
static tree make_tree(void)
{
    tree t;
    const char *root = tu_temp_dir();
    snprintf(t.d1, sizeof t.d1, "%s/d1", root);
    snprintf(t.d2, sizeof t.d2, "%s/d2", root);
    put(t.d1, "a-to-b/fill.yaml",
        "graft: 1\nname: Fill it\ndescription: >\n  one\n  two\n"
        "rename:\n  target:\n    - {match: '^t\\.', to: 's.'}\n");
    put(t.d1, "a-to-b/partial.yaml", "graft: 1\n");
    put(t.d1, "a-to-b/notes.txt", "not a rules file");
    put(t.d1, "a-to-b/common/inc.yaml", "graft: 1\n");
    put(t.d2, "a-to-b/fill.yaml", "graft: 1\nname: Shadowed\n");
    put(t.d2, "c-to-d/more.yaml", "graft: 1\nname: More\n");
    t.src = safetensors(root, "src.safetensors", "s.x", "s.y");
    t.skel = safetensors(root, "skel.safetensors", "t.x", "t.y");
    return t;
}

START_TEST(scan_lists_sorted_first_folder_wins)
{
    tree t = make_tree();
    const char *dirs[] = {t.d1, "/nonexistent/graft-rules", t.d2};
    graft_rules_library *lib = NULL;
    ck_assert_int_eq(graft_rules_library_scan(&lib, dirs, 3, ctx), GRAFT_OK);
    ck_assert_uint_eq(lib->count, 3);
    ck_assert_str_eq(lib->entries[0].name, "a-to-b/fill");
    ck_assert_str_eq(lib->entries[0].direction, "a-to-b");
    ck_assert_str_eq(lib->entries[0].title, "Fill it");
    ck_assert_str_eq(lib->entries[0].description, "one two");
    ck_assert_ptr_nonnull(strstr(lib->entries[0].path, "/d1/a-to-b/fill.yaml"));
    ck_assert_str_eq(lib->entries[1].name, "a-to-b/partial");
    ck_assert_str_eq(lib->entries[1].title, "");
    ck_assert_str_eq(lib->entries[2].name, "c-to-d/more");
    graft_rules_library_free(lib);
    free(t.src);
    free(t.skel);
}
END_TEST

START_TEST(a_broken_file_is_named)
{
    char root[512];
    graft_rules_library *lib = NULL;
    snprintf(root, sizeof root, "%s/bad", tu_temp_dir());
    put(root, "x-to-y/bad.yaml", "graft: 1\nrename: {source: [{match: '(', to: x}]}\n");
    const char *dirs[] = {root};
    ck_assert_int_eq(graft_rules_library_scan(&lib, dirs, 1, ctx), GRAFT_ERULE);
    ck_assert_ptr_null(lib);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "x-to-y/bad.yaml:2:"));
}
END_TEST

START_TEST(match_keeps_complete_fills)
{
    tree t = make_tree();
    const char *dirs[] = {t.d1, t.d2};
    graft_rules_library *lib = NULL;
    graft_rules_match *m = NULL;
    size_t n = 9;
    ck_assert_int_eq(graft_rules_library_scan(&lib, dirs, 2, ctx), GRAFT_OK);
    ck_assert_int_eq(graft_rules_library_match(lib, t.src, NULL, t.skel, NULL, false, &m, &n, ctx), GRAFT_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(m[0].name, "a-to-b/fill");
    ck_assert_uint_eq(m[0].filled, 2);
    ck_assert_uint_eq(m[0].targets, 2);
    ck_assert_uint_eq(m[0].unused, 0);
    free(m);
    /* a model that cannot be opened fails the call, naming it */
    ck_assert_int_lt(graft_rules_library_match(lib, "/nonexistent.safetensors", NULL, t.skel, NULL, false,
                                               &m, &n, ctx), 0);
    ck_assert_ptr_null(m);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "nonexistent"));
    graft_rules_library_free(lib);
    free(t.src);
    free(t.skel);
}
END_TEST

static int scan_and_match(graft_ctx *c, void *payload)
{
    const tree *t = payload;
    const char *dirs[] = {t->d1, t->d2};
    graft_rules_library *lib = NULL;
    graft_rules_match *m = NULL;
    size_t n;
    int rc = graft_rules_library_scan(&lib, dirs, 2, c);
    if (rc == 0) rc = graft_rules_library_match(lib, t->src, NULL, t->skel, NULL, false, &m, &n, c);
    free(m);
    graft_rules_library_free(lib);
    return rc;
}

START_TEST(every_allocation_failure_is_clean)
{
    tree t = make_tree();
    ck_assert_int_gt(tu_each_alloc_failure(ctx, scan_and_match, &t), 20);
    free(t.src);
    free(t.skel);
}
END_TEST

static Suite *library_suite(void)
{
    Suite *s = suite_create("library");
    TCase *tc = tcase_create("library");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, scan_lists_sorted_first_folder_wins);
    tcase_add_test(tc, a_broken_file_is_named);
    tcase_add_test(tc, match_keeps_complete_fills);
    tcase_add_test(tc, every_allocation_failure_is_clean);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(library_suite());
}
