/* test_keras.c - the Keras formats through libhdf5: detection, one-line
 * errors from libhdf5's stack, a rewrite of each layout, and every
 * allocation failure while opening and hashing (under ASan this also proves
 * that no error path leaks). */
#include "testutil.h"

#include "error.h"
#include "format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

static graft_ctx *ctx;
static void setup(void) { ctx = graft_ctx_new(); }
static void teardown(void) { graft_ctx_free(ctx); }

/* A seed of the fuzz corpus (built by samples/gen/keras_corpus.py). */
static const char *seed(const char *name)
{
    static char path[4][4096];
    static int slot;
    const char *root = getenv("GRAFT_SOURCE_ROOT");
    char *p = path[slot++ % 4];
    snprintf(p, sizeof path[0], "%s/tests/fuzz/corpora/keras/%s", root ? root : ".", name);
    return p;
}

START_TEST(formats_claim_their_files)
{
    graft_model *m = NULL;
    graft_open_options opts = GRAFT_OPEN_OPTIONS_INIT;
    ck_assert_int_eq(graft_model_open(&m, seed("keras2_full.h5"), NULL, ctx), 0);
    ck_assert_str_eq(graft_model_format(m), "keras-h5");
    ck_assert_uint_eq(graft_model_count(m), 3);
    ck_assert_str_eq(graft_tensor_name(graft_model_tensor(m, 0)), "dense/kernel:0");
    ck_assert_str_eq(graft_tensor_name(graft_model_tensor(m, 2)), "optimizer_weights/Adam/iter:0");
    graft_model_free(m);
    /* Keras 3 object layout under a plain .h5 name: handed to keras3-weights */
    ck_assert_int_eq(graft_model_open(&m, seed("keras3.weights.h5"), NULL, ctx), 0);
    ck_assert_str_eq(graft_model_format(m), "keras3-weights");
    ck_assert_str_eq(graft_tensor_name(graft_model_tensor(m, 0)), "layers/dense/vars/0");
    graft_model_free(m);
    ck_assert_int_eq(graft_model_open(&m, seed("model.keras"), NULL, ctx), 0);
    ck_assert_str_eq(graft_model_format(m), "keras");
    graft_model_free(m);
    opts.format = "keras-named";
    ck_assert_int_eq(graft_model_open(&m, seed("named.keras"), &opts, ctx), 0);
    ck_assert_str_eq(graft_tensor_name(graft_model_tensor(m, 0)), "d0/kernel");
    ck_assert_str_eq(graft_tensor_name(graft_model_tensor(m, 2)), "d1/kernel");
    graft_model_free(m);
}
END_TEST

START_TEST(libhdf5_errors_become_one_line)
{
    graft_model *m = NULL;
    const char *p = seed("trunc_96.h5");
    ck_assert_int_eq(graft_model_open(&m, p, NULL, ctx), GRAFT_ECORRUPT);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), p));
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "not a readable HDF5 file: "));
    ck_assert_ptr_null(strchr(graft_ctx_message(ctx), '\n'));
}
END_TEST

/* Issue 18 item 15: datasets graft cannot read are listed, not fatal. */
START_TEST(string_and_compound_datasets_are_unsupported)
{
    graft_model *m = NULL;
    const graft_tensor *t;
    ck_assert_int_eq(graft_model_open(&m, seed("bad_types.h5"), NULL, ctx), GRAFT_OK);
    ck_assert_uint_eq(graft_model_count(m), 2);
    t = graft_model_tensor(m, 0);
    ck_assert_str_eq(graft_tensor_name(t), "s/str:0");
    ck_assert_str_eq(graft_tensor_unsupported(t), "HDF5 2-byte string");
    t = graft_model_tensor(m, 1);
    ck_assert_str_eq(graft_tensor_unsupported(t), "HDF5 8-byte compound");
    graft_model_free(m);
}
END_TEST

/* emit: the tensor's own bytes with every bit flipped (bools negated). */
static int emit_flipped(graft_fill *f, size_t index, graft_sink *out, graft_ctx *c)
{
    const graft_model *m = f->payload;
    const uint8_t *p;
    void *owned;
    uint8_t *copy;
    const graft_tensor *t = graft_model_tensor(m, index);
    int rc;
    GRAFT_TRY(graft_tensor_bytes(m, t, &p, &owned, c));
    copy = malloc(t->nbytes + 1);
    for (uint64_t i = 0; i < t->nbytes; i++)
        copy[i] = t->dtype == GRAFT_BOOL ? (uint8_t)!p[i] : (uint8_t)~p[i];
    rc = graft_sink_write(out, copy, t->nbytes);
    free(copy);
    free(owned);
    return rc;
}

START_TEST(rewrite_changes_only_values)
{
    static const char *const files[] = {"keras2_weights_chunked.h5", "keras2_userblock.h5",
                                        "model.keras", "deflated.keras"};
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        graft_model *m = NULL, *w = NULL;
        char out[4200];
        graft_fill fill;
        ck_assert_int_eq(graft_model_open(&m, seed(files[k]), NULL, ctx), 0);
        fill.emit = emit_flipped;
        fill.payload = m;
        snprintf(out, sizeof out, "%s/out-%s", tu_temp_dir(), files[k]);
        ck_assert_msg(m->format->write(m, out, &fill, ctx) == 0, "%s: %s", files[k],
                      graft_ctx_message(ctx));
        ck_assert_int_eq(graft_model_open(&w, out, NULL, ctx), 0);
        ck_assert_uint_eq(graft_model_count(w), graft_model_count(m));
        for (size_t i = 0; i < graft_model_count(m); i++) {
            const graft_tensor *a = graft_model_tensor(m, i), *b = graft_model_tensor(w, i);
            const uint8_t *pa, *pb;
            void *oa, *ob;
            ck_assert_str_eq(a->name, b->name);
            ck_assert_int_eq(graft_tensor_bytes(m, a, &pa, &oa, ctx), 0);
            ck_assert_int_eq(graft_tensor_bytes(w, b, &pb, &ob, ctx), 0);
            for (uint64_t j = 0; j < a->nbytes; j++)
                ck_assert_msg(pb[j] == (a->dtype == GRAFT_BOOL ? (uint8_t)!pa[j] : (uint8_t)~pa[j]),
                              "%s: %s byte %llu: %02x -> %02x", files[k], a->name, (unsigned long long)j, pa[j], pb[j]);
            free(oa);
            free(ob);
        }
        graft_model_free(w);
        graft_model_free(m);
    }
}
END_TEST

typedef struct open_job {
    const char *path;
    const char *format;  /* forced, or NULL */
} open_job;

/* Open a model and hash every tensor (reading each one). */
static int open_and_hash(graft_ctx *c, void *payload)
{
    open_job *j = payload;
    graft_open_options opts = GRAFT_OPEN_OPTIONS_INIT;
    graft_model *m = NULL;
    uint8_t digest[32];
    opts.format = j->format;
    int rc = graft_model_open(&m, j->path, &opts, c);
    if (rc < 0) ck_assert_ptr_null(m);  /* a failed open hands nothing back */
    for (size_t i = 0; rc == 0 && i < graft_model_count(m); i++)
        rc = graft_tensor_sha256(m, graft_model_tensor(m, i), digest, c);
    graft_model_free(m);
    return rc;
}

START_TEST(allocation_failures_are_reported_not_crashed)
{
    static const char *const files[] = {"keras2_full.h5", "keras2_weights_chunked.h5",
                                        "model.keras", "deflated.keras", "named.keras"};
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        open_job job = {seed(files[k]), k == 4 ? "keras-named" : NULL};
        ck_assert_int_gt(tu_each_alloc_failure(ctx, open_and_hash, &job), 0);
    }
}
END_TEST

typedef struct rewrite_job {
    graft_model *m;
    graft_fill *fill;
    const char *out;
} rewrite_job;

/* Rewrite a skeleton; a failed rewrite leaves no output. */
static int rewrite_once(graft_ctx *c, void *payload)
{
    rewrite_job *j = payload;
    int rc = j->m->format->write(j->m, j->out, j->fill, c);
    if (rc < 0)
        ck_assert_int_ne(access(j->out, F_OK), 0);
    else
        remove(j->out);
    return rc;
}

START_TEST(rewrite_allocation_failures_leave_no_output)
{
    static const char *const files[] = {"keras2_weights_chunked.h5", "deflated.keras"};
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        graft_model *m = NULL;
        graft_fill fill;
        char out[4200];
        ck_assert_int_eq(graft_model_open(&m, seed(files[k]), NULL, ctx), 0);
        fill.emit = emit_flipped;
        fill.payload = m;
        snprintf(out, sizeof out, "%s/alloc-%s", tu_temp_dir(), files[k]);
        rewrite_job job = {m, &fill, out};
        ck_assert_int_gt(tu_each_alloc_failure(ctx, rewrite_once, &job), 0);
        graft_model_free(m);
        /* no temporary file (output, scratch, inner weights) survives */
        DIR *d = opendir(tu_temp_dir());
        struct dirent *e;
        ck_assert_ptr_nonnull(d);
        while ((e = readdir(d))) ck_assert_msg(!strstr(e->d_name, ".graft-"), "%s", e->d_name);
        closedir(d);
    }
}
END_TEST

static Suite *keras_suite(void)
{
    Suite *s = suite_create("keras");
    TCase *tc = tcase_create("keras");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, formats_claim_their_files);
    tcase_add_test(tc, libhdf5_errors_become_one_line);
    tcase_add_test(tc, string_and_compound_datasets_are_unsupported);
    tcase_add_test(tc, rewrite_changes_only_values);
    tcase_add_test(tc, allocation_failures_are_reported_not_crashed);
    tcase_add_test(tc, rewrite_allocation_failures_leave_no_output);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(keras_suite());
}
