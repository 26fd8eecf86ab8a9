/* test_format.c - the format registry (core/format.c) and its hooks:
 * resolve() (a TensorFlow checkpoint named by its prefix) and layout() (the
 * Keras HDF5 formats handing a file to the sibling whose layout it holds,
 * with only the core setting the model's format). */
#include "testutil.h"

#include "error.h"
#include "format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *under(const char *env, const char *dflt, const char *rel)
{
    static char paths[8][2048];
    static int slot;
    const char *root = getenv(env);
    char *p = paths[slot++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", root ? root : dflt, rel);
    return p;
}
#define FX(rel) under("GRAFT_FIXTURES", "../../shared/fixtures", rel)
#define SEED(rel) under("GRAFT_SOURCE_ROOT", ".", "tests/fuzz/corpora/keras/" rel)

/* A copy of `from` at a temporary path ending in `name`. */
static const char *copy_as(const char *from, const char *name)
{
    size_t n;
    uint8_t *b = tu_read_file(from, &n);
    ck_assert_msg(b != NULL, "%s missing", from);
    const char *p = tu_write_temp(name, b, n);
    free(b);
    return p;
}

static const char *format_of(const char *path, const char *forced)
{
    static char name[64];
    graft_open_options o = GRAFT_OPEN_OPTIONS_INIT;
    graft_model *m = NULL;
    o.format = forced;
    ck_assert_msg(graft_model_open(&m, path, &o, tu_ctx) == 0, "%s: %s", path,
                  graft_ctx_message(tu_ctx));
    snprintf(name, sizeof name, "%s", graft_model_format(m));
    graft_model_free(m);
    return name;
}

START_TEST(only_the_tf_checkpoint_resolves_paths)
{
    for (size_t i = 0; graft_formats[i]; i++)
        ck_assert_msg(!graft_formats[i]->resolve ==
                          !!strcmp(graft_formats[i]->name, "tf-checkpoint"),
                      "%s", graft_formats[i]->name);
}
END_TEST

START_TEST(a_checkpoint_prefix_opens_its_index)
{
    const char *prefix = FX("tf_ckpt_v2/tf1_estimator_linear_sharded_partitioned/model.ckpt-5000");
    graft_model *m = NULL;
    char index[2100];
    ck_assert_int_eq(graft_model_open(&m, prefix, NULL, tu_ctx), 0);
    ck_assert_str_eq(graft_model_format(m), "tf-checkpoint");
    snprintf(index, sizeof index, "%s.index", prefix);
    ck_assert_str_eq(graft_model_path(m), index);  /* named by what was opened */
    ck_assert_uint_gt(graft_model_count(m), 0);
    graft_model_free(m);

    /* neither a file nor a prefix: one line naming both */
    const char *none = FX("tf_ckpt_v2/tf1_estimator_linear_sharded_partitioned/model.ckpt-9");
    ck_assert_int_eq(graft_model_open(&m, none, NULL, tu_ctx), GRAFT_ENOTFOUND);
    ck_assert_ptr_null(m);
    char want[4300];
    snprintf(want, sizeof want, "%s: no such file (nor a checkpoint %s.index)", none, none);
    ck_assert_str_eq(graft_ctx_message(tu_ctx), want);
}
END_TEST

START_TEST(keras_hdf5_layouts_pick_the_format)
{
    const graft_format *k2 = graft_format_find("keras-h5"), *k3 = graft_format_find("keras3-weights");
    ck_assert_ptr_nonnull(k2);
    ck_assert_ptr_nonnull(k3);
    ck_assert_ptr_nonnull(k2->layout);
    ck_assert_ptr_eq(k2->layout, k3->layout);  /* one decision for both */

    /* Keras 2 save_weights named the Keras 3 way: keras-h5 */
    const char *k2w = copy_as(SEED("keras2_full.h5"), "k2.weights.h5");
    ck_assert_str_eq(format_of(k2w, NULL), "keras-h5");
    ck_assert_str_eq(format_of(k2w, "keras3-weights"), "keras-h5");
    /* a Keras 3 object tree under a plain .h5 name: keras3-weights */
    const char *k3h = copy_as(SEED("keras3.weights.h5"), "k3.h5");
    ck_assert_str_eq(format_of(k3h, NULL), "keras3-weights");
    ck_assert_str_eq(format_of(k3h, "keras-h5"), "keras3-weights");
    ck_assert_str_eq(format_of(SEED("keras3.weights.h5"), NULL), "keras3-weights");
    ck_assert_str_eq(format_of(SEED("keras2_full.h5"), NULL), "keras-h5");

    /* the format table itself is never written to */
    ck_assert_str_eq(k2->name, "keras-h5");
    ck_assert_str_eq(k3->name, "keras3-weights");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("format");
    TCase *tc = tcase_create("hooks");
    tcase_add_checked_fixture(tc, tu_arena_setup, tu_arena_teardown);
    tcase_add_test(tc, only_the_tf_checkpoint_resolves_paths);
    tcase_add_test(tc, a_checkpoint_prefix_opens_its_index);
    tcase_add_test(tc, keras_hdf5_layouts_pick_the_format);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
