/* test_apply.c - apply (fill, keep, refusals, output names) and diff, over
 * in-memory models and a raw test writer, independent of any real format. */
#include "testutil.h"

#include "../../src/apply/apply.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static graft_ctx *ctx;
static void setup(void) { ctx = graft_ctx_new(); }
static void teardown(void) { graft_ctx_free(ctx); }

/* The test writer: the tensors' bytes back to back, checked to be exactly
 * each tensor's nbytes (what a real writer relies on). */
static int raw_write(const graft_model *m, const char *out_path, graft_fill *fill,
                     graft_ctx *c)
{
    graft_sink *s;
    GRAFT_TRY(graft_sink_open(&s, out_path, c));
    for (size_t i = 0; i < m->count; i++) {
        uint64_t before = graft_sink_tell(s);
        int rc = fill->emit(fill, i, s, c);
        if (rc == 0 && graft_sink_tell(s) - before != m->tensors[i].nbytes)
            rc = graft_error(c, GRAFT_ERROR, "emit wrote the wrong size");
        if (rc < 0) {
            graft_sink_abort(s);
            return rc;
        }
    }
    return graft_sink_commit(s);
}

static const graft_format raw_format = {.name = "raw-test", .write = raw_write};

typedef struct spec {
    const char *name;
    graft_dtype dtype;
    uint32_t ndim;
    int64_t shape[4];
    uint64_t offset;
} spec;

/* A model over `data` (kept alive by the caller) named `path`. */
static graft_model *model(const char *path, const void *data, size_t size, const spec *sp,
                          size_t n)
{
    graft_model *m;
    graft_source *src;
    ck_assert_int_eq(graft_model__new(&m, path, ctx), 0);
    ck_assert_int_eq(graft_source_from_buffer(&src, path, data, size, ctx), 0);
    ck_assert_int_eq(graft_model__own_source(m, src, ctx), 0);
    for (size_t i = 0; i < n; i++) {
        graft_tensor *t = graft_model__add(m, sp[i].name, strlen(sp[i].name), sp[i].dtype,
                                           sp[i].ndim, sp[i].shape, ctx);
        ck_assert_ptr_nonnull(t);
        t->src = src;
        t->offset = sp[i].offset;
    }
    ck_assert_int_eq(graft_model_validate(m, ctx), 0);
    m->format = &raw_format;
    return m;
}

static const char *out_path(const char *name)
{
    static char path[2][600];
    static int slot;
    char *p = path[slot++ % 2];
    snprintf(p, 600, "%s/%s", tu_temp_dir(), name);
    unlink(p);
    return p;
}

/* Source: a float32 [2,3] = 0..5 and a float32 [3] = 10,11,12.
 * Skeleton: t0 float32 [3,2], t1 float32 [3], t2 int32 [2] = 7,8. */
static float src_data[9] = {0, 1, 2, 3, 4, 5, 10, 11, 12};
static int32_t skel_data[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
static const spec src_spec[] = {
    {"a", GRAFT_FLOAT32, 2, {2, 3}, 0},
    {"b", GRAFT_FLOAT32, 1, {3}, 24},
};
static const spec skel_spec[] = {
    {"t0", GRAFT_FLOAT32, 2, {3, 2}, 0},
    {"t1", GRAFT_FLOAT32, 1, {3}, 0},
    {"t2", GRAFT_INT32, 1, {2}, 24},
};

static graft_model *src_model(void) { return model("src", src_data, sizeof src_data, src_spec, 2); }
static graft_model *skel_model(void)
{
    skel_data[6] = 7;
    skel_data[7] = 8;
    return model("skel", skel_data, sizeof skel_data, skel_spec, 3);
}

static const graft_op transpose_op = {.kind = GRAFT_OP_TRANSPOSE, .file = "r.yaml", .line = 3};
static const size_t idx_a = 0, idx_b = 1;

START_TEST(default_output_names)
{
    static const char *const cases[][2] = {
        {"x.safetensors", "x.grafted.safetensors"},
        {"dir/model.pth", "dir/model.grafted.pth"},
        {"dir.v1/model", "dir.v1/model.grafted"},
        {"saved_model/", "saved_model.grafted"},
        {".hidden", ".hidden.grafted"},
        {"a/b.tar.gz", "a/b.tar.grafted.gz"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *out;
        ck_assert_int_eq(graft_apply_default_output(&out, cases[i][0], ctx), 0);
        ck_assert_str_eq(out, cases[i][1]);
        free(out);
    }
}
END_TEST

START_TEST(write_transplants_runs_ops_and_keeps)
{
    graft_model *src = src_model(), *skel = skel_model();
    graft_apply_item items[3] = {
        {.nsrc = 1, .src = &idx_a, .ops = &transpose_op, .nops = 1},
        {.nsrc = 1, .src = &idx_b},
        {.nsrc = 0},
    };
    graft_apply_plan plan = {items, 3};
    const char *out = out_path("ok.raw");
    ck_assert_int_eq(graft_apply_write(src, skel, &plan, out, ctx), 0);
    size_t n;
    uint8_t *b = tu_read_file(out, &n);
    ck_assert_uint_eq(n, 24 + 12 + 8);
    float f[9];
    int32_t k[2];
    memcpy(f, b, 36);
    memcpy(k, b + 36, 8);
    const float expect[9] = {0, 3, 1, 4, 2, 5, 10, 11, 12};
    for (int i = 0; i < 9; i++) ck_assert_float_eq(f[i], expect[i]);
    ck_assert_int_eq(k[0], 7);
    ck_assert_int_eq(k[1], 8);
    free(b);
    graft_model_free(src);
    graft_model_free(skel);
}
END_TEST

static size_t files_in_temp_dir(void)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", tu_temp_dir());
    FILE *p = popen(cmd, "r");
    unsigned long n = 0;
    ck_assert_int_eq(fscanf(p, "%lu", &n), 1);
    pclose(p);
    return n;
}

START_TEST(write_refuses_a_wrong_shape_and_leaves_nothing)
{
    graft_model *src = src_model(), *skel = skel_model();
    /* No transpose: [2,3] into [3,2]. */
    graft_apply_item items[3] = {{.nsrc = 1, .src = &idx_a}, {.nsrc = 1, .src = &idx_b}, {0}};
    graft_apply_plan plan = {items, 3};
    const char *out = out_path("bad.raw");
    size_t before = files_in_temp_dir();
    struct stat st;
    ck_assert_int_eq(graft_apply_write(src, skel, &plan, out, ctx), GRAFT_ESHAPE);
    ck_assert_str_eq(graft_ctx_message(ctx),
                     "target 't0': the sources give float32 [2,3], the skeleton holds float32 [3,2]");
    ck_assert_int_ne(stat(out, &st), 0);
    ck_assert_uint_eq(files_in_temp_dir(), before); /* no temporary file either */
    /* A dtype difference is refused the same way. */
    items[0] = (graft_apply_item){.nsrc = 1, .src = &idx_b};
    items[1] = (graft_apply_item){.nsrc = 1, .src = &idx_b};
    items[2] = (graft_apply_item){.nsrc = 1, .src = &idx_b};
    ck_assert_int_eq(graft_apply_write(src, skel, &plan, out, ctx), GRAFT_ESHAPE);
    /* A skeleton whose format cannot write. */
    static const graft_format readonly = {.name = "readonly"};
    skel->format = &readonly;
    ck_assert_int_eq(graft_apply_write(src, skel, &plan, out, ctx), GRAFT_EFORMAT);
    ck_assert_int_ne(stat(out, &st), 0);
    graft_model_free(src);
    graft_model_free(skel);
}
END_TEST

START_TEST(output_may_not_be_an_input)
{
    const char *real = tu_write_temp("input.bin", "12345678", 8);
    graft_model *m;
    graft_source *src;
    char link_path[600], hard_path[600];
    ck_assert_int_eq(graft_model__new(&m, real, ctx), 0);
    ck_assert_int_eq(graft_source_open(&src, real, ctx), 0);
    ck_assert_int_eq(graft_model__own_source(m, src, ctx), 0);
    const graft_model *models[1] = {m};

    ck_assert_int_eq(graft_apply_check_output(real, models, 1, ctx), GRAFT_EIO);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "would overwrite the input"));
    snprintf(link_path, sizeof link_path, "%s/link.bin", tu_temp_dir());
    ck_assert_int_eq(symlink(real, link_path), 0);
    ck_assert_int_eq(graft_apply_check_output(link_path, models, 1, ctx), GRAFT_EIO);
    snprintf(hard_path, sizeof hard_path, "%s/hard.bin", tu_temp_dir());
    ck_assert_int_eq(link(real, hard_path), 0);
    ck_assert_int_eq(graft_apply_check_output(hard_path, models, 1, ctx), GRAFT_EIO);
    char dotted[700];
    snprintf(dotted, sizeof dotted, "%s/./input.bin", tu_temp_dir());
    ck_assert_int_eq(graft_apply_check_output(dotted, models, 1, ctx), GRAFT_EIO);
    /* A folder model: its folder may not be the output either. */
    graft_model *dir_model;
    ck_assert_int_eq(graft_model__new(&dir_model, tu_temp_dir(), ctx), 0);
    const graft_model *dirs[2] = {m, dir_model};
    ck_assert_int_eq(graft_apply_check_output(tu_temp_dir(), dirs, 2, ctx), GRAFT_EIO);
    ck_assert_int_eq(graft_apply_check_output(tu_temp_dir(), models, 1, ctx), 0);
    graft_model_free(dir_model);
    ck_assert_int_eq(graft_apply_check_output(out_path("new.bin"), models, 1, ctx), 0);
    const char *other = tu_write_temp("other.bin", "x", 1);
    ck_assert_int_eq(graft_apply_check_output(other, models, 1, ctx), 0);
    graft_model_free(m);
}
END_TEST

typedef struct write_job {
    graft_model *src, *skel;
    graft_apply_plan *plan;
    const char *out;
} write_job;

/* One transplant; a failed one leaves no output file. */
static int write_once(graft_ctx *c, void *payload)
{
    write_job *j = payload;
    struct stat st;
    int rc = graft_apply_write(j->src, j->skel, j->plan, j->out, c);
    if (rc < 0)
        ck_assert_int_ne(stat(j->out, &st), 0);
    else
        unlink(j->out);
    return rc;
}

START_TEST(write_survives_allocation_failures)
{
    graft_model *src = src_model(), *skel = skel_model();
    graft_apply_item items[3] = {
        {.nsrc = 1, .src = &idx_a, .ops = &transpose_op, .nops = 1},
        {.nsrc = 1, .src = &idx_b},
        {.nsrc = 0},
    };
    graft_apply_plan plan = {items, 3};
    write_job job = {src, skel, &plan, out_path("oom.raw")};
    ck_assert_int_gt(tu_each_alloc_failure(ctx, write_once, &job), 0);
    graft_model_free(src);
    graft_model_free(skel);
}
END_TEST

/* ---- diff --------------------------------------------------------------- */

START_TEST(diff_measures_float_differences_across_dtypes)
{
    /* A: float32 [4]; B: float16 [4] holding 1, 2.5, -0, 65504 */
    float a[4] = {1.0f, 2.5f, 0.0f, 65504.0f};
    uint16_t b[4] = {0x3c00, 0x4100, 0x8000, 0x7bff};
    static const spec as[] = {{"x", GRAFT_FLOAT32, 1, {4}, 0}};
    static const spec bs[] = {{"x", GRAFT_FLOAT16, 1, {4}, 0}};
    graft_model *ma = model("a", a, sizeof a, as, 1), *mb = model("b", b, sizeof b, bs, 1);
    const size_t zero = 0;
    graft_diff_result r;
    ck_assert_int_eq(graft_diff_pair(ma, &zero, 1, NULL, 0, mb, 0, &r, ctx), 0);
    ck_assert(r.numeric);
    ck_assert(r.equal);
    ck_assert_double_eq(r.max_abs, 0);
    a[1] = 2.5f + 0.125f;
    ck_assert_int_eq(graft_diff_pair(ma, &zero, 1, NULL, 0, mb, 0, &r, ctx), 0);
    ck_assert(!r.equal);
    ck_assert_double_eq(r.max_abs, 0.125);
    a[2] = NAN;
    ck_assert_int_eq(graft_diff_pair(ma, &zero, 1, NULL, 0, mb, 0, &r, ctx), 0);
    ck_assert(isinf(r.max_abs));
    b[2] = 0x7e00; /* NaN meets NaN: equal */
    ck_assert_int_eq(graft_diff_pair(ma, &zero, 1, NULL, 0, mb, 0, &r, ctx), 0);
    ck_assert_double_eq(r.max_abs, 0.125);
    graft_model_free(ma);
    graft_model_free(mb);
}
END_TEST

START_TEST(diff_compares_integers_exactly_and_checks_shapes)
{
    int64_t a[2] = {(int64_t)1 << 62, -5};
    int64_t b[2] = {((int64_t)1 << 62) + 1, -5};
    static const spec as[] = {{"x", GRAFT_INT64, 1, {2}, 0}, {"m", GRAFT_INT64, 2, {1, 2}, 0}};
    static const spec bs[] = {{"x", GRAFT_INT64, 1, {2}, 0}};
    graft_model *ma = model("a", a, sizeof a, as, 2), *mb = model("b", b, sizeof b, bs, 1);
    const size_t zero = 0, one = 1;
    graft_diff_result r;
    ck_assert_int_eq(graft_diff_pair(ma, &zero, 1, NULL, 0, mb, 0, &r, ctx), 0);
    ck_assert(!r.equal); /* in float64 both would be 2^62 */
    ck_assert_double_eq(r.max_abs, 1);
    ck_assert_int_eq(graft_diff_pair(ma, &one, 1, NULL, 0, mb, 0, &r, ctx), GRAFT_ESHAPE);
    ck_assert_str_eq(graft_ctx_message(ctx), "A gives int64 [1,2], B holds int64 [2]");
    graft_model_free(ma);
    graft_model_free(mb);
}
END_TEST

typedef struct diff_job {
    graft_model *a, *b;
} diff_job;

static int diff_once(graft_ctx *c, void *payload)
{
    diff_job *j = payload;
    graft_diff_result r;
    int rc = graft_diff_pair(j->a, &idx_a, 1, &transpose_op, 1, j->b, 0, &r, c);
    if (rc == 0) ck_assert(r.equal);
    return rc;
}

START_TEST(diff_runs_the_op_chain)
{
    static const spec bs[] = {{"t", GRAFT_FLOAT32, 2, {3, 2}, 0}};
    float b[6] = {0, 3, 1, 4, 2, 5};
    graft_model *ma = src_model(), *mb = model("b", b, sizeof b, bs, 1);
    graft_diff_result r;
    ck_assert_int_eq(graft_diff_pair(ma, &idx_a, 1, &transpose_op, 1, mb, 0, &r, ctx), 0);
    ck_assert(r.equal);
    ck_assert_int_eq(graft_diff_pair(ma, &idx_a, 1, NULL, 0, mb, 0, &r, ctx), GRAFT_ESHAPE);
    /* Every allocation failing in turn: a clean ENOMEM, never a crash or leak. */
    diff_job job = {ma, mb};
    ck_assert_int_gt(tu_each_alloc_failure(ctx, diff_once, &job), 0);
    graft_model_free(ma);
    graft_model_free(mb);
}
END_TEST

static Suite *apply_suite(void)
{
    Suite *s = suite_create("apply");
    TCase *tc = tcase_create("apply");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, default_output_names);
    tcase_add_test(tc, write_transplants_runs_ops_and_keeps);
    tcase_add_test(tc, write_refuses_a_wrong_shape_and_leaves_nothing);
    tcase_add_test(tc, output_may_not_be_an_input);
    tcase_add_test(tc, write_survives_allocation_failures);
    tcase_add_test(tc, diff_measures_float_differences_across_dtypes);
    tcase_add_test(tc, diff_compares_integers_exactly_and_checks_shapes);
    tcase_add_test(tc, diff_runs_the_op_chain);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(apply_suite());
}
