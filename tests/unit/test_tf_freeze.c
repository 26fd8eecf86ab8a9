/* test_tf_freeze.c - the graph half of `graft freeze` (formats/tensorflow/
 * tf_freeze.c): variables become Consts of their dtype and shape, pruning
 * follows the outputs, and bad graphs fail with one line naming the node.
 * The graphs are the seeds of tests/fuzz/corpora/tf_freeze (made by
 * samples/gen/tf_fuzz_seeds.py): two control bytes (kind, "all nodes"), then
 * the graph. */
#include "testutil.h"

#include "error.h"
#include "format.h"
#include "tf_freeze.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const kinds[] = {"g.pb", "g.meta", "saved_model.pb"};

typedef struct freeze_job {
    uint8_t *data;
    size_t n;
    const char *const *outputs;
    size_t noutputs;
    const char *out;
    char **vars;
    size_t nvars;
} freeze_job;

static void load_seed(freeze_job *j, const char *name)
{
    char path[2048];
    const char *root = getenv("GRAFT_SOURCE_ROOT");
    snprintf(path, sizeof path, "%s/tests/fuzz/corpora/tf_freeze/%s", root ? root : ".", name);
    j->data = tu_read_file(path, &j->n);
    ck_assert_msg(j->data && j->n > 2, "seed %s missing", path);
}

static int freeze(freeze_job *j, graft_ctx *c)
{
    return graft_tf__freeze_buffer(j->data + 2, j->n - 2, kinds[j->data[0] % 3], j->outputs,
                                   j->noutputs, j->out, &j->vars, &j->nvars, c);
}

static void job_done(freeze_job *j)
{
    graft_tf__names_free(j->vars, j->nvars);
    j->vars = NULL;
    j->nvars = 0;
}

START_TEST(variables_become_zero_consts)
{
    static const char *const ys[] = {"y:0"};
    static const char *const seeds[] = {"ok_graph", "ok_meta", "ok_saved_model"};
    freeze_job j = {0};
    graft_model *m = NULL;
    load_seed(&j, seeds[_i]);
    j.outputs = ys;
    j.noutputs = 1;
    j.out = tu_write_temp("frozen.pb", "", 0);
    ck_assert_msg(freeze(&j, tu_ctx) == 0, "%s", graft_ctx_message(tu_ctx));
    ck_assert_uint_gt(j.nvars, 0);
    ck_assert_msg(graft_model_open(&m, j.out, NULL, tu_ctx) == 0, "%s", graft_ctx_message(tu_ctx));
    ck_assert_str_eq(graft_model_format(m), "tf-graphdef");
    for (size_t i = 0; i < j.nvars; i++) {
        const graft_tensor *t = graft_model_find(m, j.vars[i]);
        const uint8_t *p;
        void *owned;
        ck_assert_msg(t != NULL, "variable %s is no Const of the frozen graph", j.vars[i]);
        ck_assert_int_eq(graft_tensor_bytes(m, t, &p, &owned, tu_ctx), 0);
        for (uint64_t k = 0; k < graft_tensor_nbytes(t); k++) ck_assert_uint_eq(p[k], 0);
        free(owned);
    }
    graft_model_free(m);
    job_done(&j);
    free(j.data);
}
END_TEST

START_TEST(bad_graphs_are_named)
{
    static const struct {
        const char *seed, *output;
        int code;
        const char *msg;
    } cases[] = {
        {"ok_graph", "nope", GRAFT_ENOTFOUND, "nope"},
        {"unknown_shape", "y", GRAFT_EFORMAT, "shape"},
        {"truncated", "y", GRAFT_ECORRUPT, "offset"},
    };
    freeze_job j = {0};
    const char *outs[1] = {cases[_i].output};
    load_seed(&j, cases[_i].seed);
    j.outputs = outs;
    j.noutputs = 1;
    j.out = tu_write_temp("bad.pb", "", 0);
    unlink(j.out);
    ck_assert_int_eq(freeze(&j, tu_ctx), cases[_i].code);
    ck_assert_msg(strstr(graft_ctx_message(tu_ctx), cases[_i].msg), "%s: %s", cases[_i].seed,
                  graft_ctx_message(tu_ctx));
    ck_assert_msg(strncmp(graft_ctx_message(tu_ctx), "g.pb", 4) == 0, "not named: %s",
                  graft_ctx_message(tu_ctx));
    ck_assert_ptr_null(strchr(graft_ctx_message(tu_ctx), '\n'));
    ck_assert_int_ne(access(j.out, F_OK), 0);  /* nothing written */
    job_done(&j);
    free(j.data);
}
END_TEST

static int freeze_once(graft_ctx *c, void *payload)
{
    freeze_job *j = payload;
    int rc = freeze(j, c);
    if (rc < 0) ck_assert_int_ne(access(j->out, F_OK), 0);
    unlink(j->out);
    job_done(j);
    return rc;
}

START_TEST(allocation_failures_are_clean)
{
    static const char *const ys[] = {"y"};
    freeze_job j = {0};
    load_seed(&j, "resource_gather");
    j.outputs = ys;
    j.noutputs = 1;
    j.out = tu_write_temp("oom.pb", "", 0);
    unlink(j.out);
    ck_assert_int_gt(tu_each_alloc_failure(tu_ctx, freeze_once, &j), 0);
    free(j.data);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tf_freeze");
    TCase *tc = tcase_create("tf_freeze");
    tcase_add_checked_fixture(tc, tu_arena_setup, tu_arena_teardown);
    tcase_add_loop_test(tc, variables_become_zero_consts, 0, 3);
    tcase_add_loop_test(tc, bad_graphs_are_named, 0, 3);
    tcase_add_test(tc, allocation_failures_are_clean);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
