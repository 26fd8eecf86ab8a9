/*
 * test_torch.c - the torch.save tensor walk and the PyTorch formats' reader
 * and writer (the pickle interpreter has its own suite, test_pickle.c).
 *
 * Also a helper for tests/interop/test_torch.py (which loads the output
 * with the real torch): `test_torch --rewrite IN OUT [--xor]` writes OUT
 * from skeleton IN with each tensor's own bytes (or every byte XOR 0x01).
 */
#include "testutil.h"

#include "error.h"
#include "format.h"
#include "pickle.h"
#include "torch_walk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* A pickle from bytes, for the walk tests. */
static int load(graft_pk **out, const char *p, size_t n)
{
    return graft_pickle__load(out, NULL, &tu_arena, (const uint8_t *)p, n, 0, tu_ctx);
}
#define LOAD(v, lit) load(&(v), lit, sizeof lit - 1)

/* ---- the tensor walk ---------------------------------------------------- */

START_TEST(walk_stops_on_cycles_and_shared_blowup)
{
    /* l = []; l.append(l) */
    static const char cyc[] = "]q\x00h\x00" "a.";
    /* d = {'a': x, 'b': x} with x = [x2, x2], 40 levels deep: 2^40 visits */
    char big[4096];
    size_t n = 0;
    graft_pk *v;
    graft_torch_refs refs;

    ck_assert_int_eq(LOAD(v, cyc), 0);
    ck_assert_int_eq(graft_torch__collect(&refs, v, NULL, &tu_arena, tu_ctx), GRAFT_ELIMIT);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(tu_ctx), "contain themselves"));
    graft_torch__refs_free(&refs);

    big[n++] = 'N';
    for (int i = 0; i < 40; i++) {
        big[n++] = 'q', big[n++] = 0;             /* memo 0 = current */
        big[n++] = 'h', big[n++] = 0;             /* push it again */
        big[n++] = (char)0x86;                    /* (x, x) */
    }
    big[n++] = '.';
    ck_assert_int_eq(load(&v, big, n), 0);
    ck_assert_int_eq(graft_torch__collect(&refs, v, NULL, &tu_arena, tu_ctx), GRAFT_ELIMIT);
    graft_torch__refs_free(&refs);
}
END_TEST

START_TEST(walk_allows_foreign_globals_only_in_a_whole_model)
{
    /* wm.M with a module's __dict__ and act = partial(BatchNorm2d), then the
     * same partial in a plain dict: a state dict has no use for it. */
    static const char module[] =
        "\x80\x02" "cwm\nM\nq\x00)\x81q\x01}q\x02(X\x0b\x00\x00\x00_parametersq\x03}q\x04"
        "X\x08\x00\x00\x00_buffersq\x05}q\x06X\x08\x00\x00\x00_modulesq\x07}q\x08"
        "X\x03\x00\x00\x00" "actq\tcfunctools\npartial\nq\nctorch.nn.modules.batchnorm\n"
        "BatchNorm2d\nq\x0b\x85q\x0cRq\r(h\x0bK\x01\x85q\x0e}q\x0fNtq\x10" "bub.";
    static const char dict[] = "}X\x03\x00\x00\x00" "actcfunctools\npartial\n"
                               "ctorch.nn.modules.batchnorm\nBatchNorm2d\n\x85Rs.";
    graft_pk *v, *foreign;
    graft_torch_refs refs;
    ck_assert_msg(graft_pickle__load_lenient(&v, &foreign, NULL, &tu_arena,
                                             (const uint8_t *)module, sizeof module - 1, 0,
                                             tu_ctx) == 0, "%s", graft_ctx_message(tu_ctx));
    ck_assert_ptr_nonnull(foreign);
    ck_assert_int_eq(graft_torch__collect(&refs, v, foreign, &tu_arena, tu_ctx), 0);
    ck_assert_uint_eq(refs.n, 0);
    graft_torch__refs_free(&refs);
    ck_assert_int_eq(graft_pickle__load_lenient(&v, &foreign, NULL, &tu_arena,
                                                (const uint8_t *)dict, sizeof dict - 1, 0,
                                                tu_ctx), 0);
    ck_assert_int_eq(graft_torch__collect(&refs, v, foreign, &tu_arena, tu_ctx), GRAFT_EUNSAFE);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(tu_ctx),
                                 "pickle offset 0x9: global 'functools.partial' is not allowed"));
    graft_torch__refs_free(&refs);
}
END_TEST

/* ---- reading and writing fixtures --------------------------------------- */

static const char *fixture(const char *rel)
{
    static char path[1024];
    const char *root = getenv("GRAFT_FIXTURES");
    snprintf(path, sizeof path, "%s/%s", root ? root : "../../shared/fixtures", rel);
    /* a missing fixture fails the test, never skips it */
    ck_assert_msg(access(path, R_OK) == 0, "fixture %s missing (GRAFT_FIXTURES)", path);
    return path;
}

typedef struct xor_fill {
    graft_fill base;
    const graft_model *m;
    uint8_t mask;
} xor_fill;

static int emit_xor(graft_fill *f, size_t index, graft_sink *out, graft_ctx *c)
{
    xor_fill *x = (xor_fill *)f;
    const graft_tensor *t = graft_model_tensor(x->m, index);
    const uint8_t *p;
    void *owned;
    int rc;
    GRAFT_TRY(graft_tensor_bytes(x->m, t, &p, &owned, c));
    if (x->mask) {
        uint8_t *copy = malloc(t->nbytes ? (size_t)t->nbytes : 1);
        for (uint64_t i = 0; i < t->nbytes; i++) copy[i] = p[i] ^ x->mask;
        rc = graft_sink_write(out, copy, (size_t)t->nbytes);
        free(copy);
    } else {
        rc = graft_sink_write(out, p, (size_t)t->nbytes);
    }
    free(owned);
    return rc;
}

static int rewrite(const char *in, const char *out, uint8_t mask, graft_ctx *c)
{
    graft_model *m = NULL;
    xor_fill f = {{emit_xor, NULL}, NULL, mask};
    int rc = graft_model_open(&m, in, NULL, c);
    if (rc < 0) return rc;
    f.m = m;
    rc = m->format->write ? m->format->write(m, out, &f.base, c) : GRAFT_EFORMAT;
    graft_model_free(m);
    return rc;
}

static const char *round_trip[] = {
    "pytorch_zip/burn_mnist_state_dict/mnist.pt",
    "pytorch_zip/nn_adder_checkpoint_torch_pre21/checkpoint_1000.pth",
    "pytorch_zip/candle_fortran_tensor_3d/fortran_tensor_3d.pth",
    "pytorch_zip/burn_reader_parameter/parameter.pt",
    "pytorch_zip/burn_reader_bfloat16/bfloat16.pt",
    "pytorch_legacy/burn_legacy_uncloned_views/legacy_uncloned_views.pt",
};

START_TEST(writer_round_trips_every_tensor)
{
    const char *in = fixture(round_trip[_i]);
    char out[512];
    graft_model *a = NULL, *b = NULL;
    snprintf(out, sizeof out, "%s/rt%d.pth", tu_temp_dir(), _i);
    ck_assert_msg(rewrite(in, out, 0, tu_ctx) == 0, "%s", graft_ctx_message(tu_ctx));
    ck_assert_int_eq(graft_model_open(&a, in, NULL, tu_ctx), 0);
    ck_assert_msg(graft_model_open(&b, out, NULL, tu_ctx) == 0, "%s", graft_ctx_message(tu_ctx));
    ck_assert_str_eq(graft_model_format(b), "pytorch-zip");
    ck_assert_uint_eq(graft_model_count(a), graft_model_count(b));
    for (size_t i = 0; i < graft_model_count(a); i++) {
        const graft_tensor *ta = graft_model_tensor(a, i), *tb = graft_model_tensor(b, i);
        uint8_t ha[32], hb[32];
        ck_assert_str_eq(ta->name, tb->name);
        ck_assert_int_eq(ta->dtype, tb->dtype);
        ck_assert_uint_eq(ta->ndim, tb->ndim);
        ck_assert_ptr_null(tb->strides); /* every storage contiguous now */
        ck_assert_int_eq(graft_tensor_sha256(a, ta, ha, tu_ctx), 0);
        ck_assert_int_eq(graft_tensor_sha256(b, tb, hb, tu_ctx), 0);
        ck_assert_mem_eq(ha, hb, 32);
    }
    graft_model_free(a);
    graft_model_free(b);
}
END_TEST

START_TEST(writer_takes_bytes_from_the_fill)
{
    const char *in = fixture("pytorch_zip/burn_reader_state_dict/state_dict.pt");
    char out[512];
    graft_model *a = NULL, *b = NULL;
    snprintf(out, sizeof out, "%s/xor.pth", tu_temp_dir());
    ck_assert_int_eq(rewrite(in, out, 0x01, tu_ctx), 0);
    ck_assert_int_eq(graft_model_open(&a, in, NULL, tu_ctx), 0);
    ck_assert_int_eq(graft_model_open(&b, out, NULL, tu_ctx), 0);
    for (size_t i = 0; i < graft_model_count(a); i++) {
        const uint8_t *pa, *pb;
        void *oa, *ob;
        const graft_tensor *ta = graft_model_tensor(a, i), *tb = graft_model_tensor(b, i);
        ck_assert_int_eq(graft_tensor_bytes(a, ta, &pa, &oa, tu_ctx), 0);
        ck_assert_int_eq(graft_tensor_bytes(b, tb, &pb, &ob, tu_ctx), 0);
        for (uint64_t k = 0; k < ta->nbytes; k++) ck_assert_uint_eq(pa[k] ^ 1u, pb[k]);
        free(oa);
        free(ob);
    }
    graft_model_free(a);
    graft_model_free(b);
}
END_TEST

typedef struct buf_job {
    const uint8_t *data;
    size_t n;
} buf_job;

static int open_buffer_once(graft_ctx *c, void *payload)
{
    buf_job *j = payload;
    graft_model *m = NULL;
    int rc = graft_model_open_buffer(&m, "ckpt.pth", j->data, j->n, NULL, c);
    if (rc < 0) ck_assert_ptr_null(m);
    graft_model_free(m);
    return rc;
}

START_TEST(open_survives_every_allocation_failure)
{
    const char *in = fixture("pytorch_zip/nn_adder_checkpoint_torch_pre21/checkpoint_1000.pth");
    buf_job job;
    uint8_t *data = tu_read_file(in, &job.n);
    ck_assert_ptr_nonnull(data);
    job.data = data;
    ck_assert_int_gt(tu_each_alloc_failure(tu_ctx, open_buffer_once, &job), 0);
    free(data);
}
END_TEST

typedef struct write_job {
    const graft_model *m;
    const char *out;
} write_job;

static int write_once(graft_ctx *c, void *payload)
{
    write_job *j = payload;
    xor_fill f = {{emit_xor, NULL}, j->m, 0};
    int rc = j->m->format->write(j->m, j->out, &f.base, c);
    if (rc < 0) ck_assert_int_ne(access(j->out, F_OK), 0); /* nothing left behind */
    else remove(j->out);
    return rc;
}

START_TEST(write_survives_every_allocation_failure)
{
    const char *in = fixture("pytorch_zip/nn_adder_checkpoint_torch_pre21/checkpoint_1000.pth");
    char out[512];
    graft_model *m = NULL;
    snprintf(out, sizeof out, "%s/oom.pth", tu_temp_dir());
    ck_assert_int_eq(graft_model_open(&m, in, NULL, tu_ctx), 0);
    write_job job = {m, out};
    ck_assert_int_gt(tu_each_alloc_failure(tu_ctx, write_once, &job), 0);
    graft_model_free(m);
}
END_TEST

static Suite *torch_suite(void)
{
    Suite *s = suite_create("torch");
    TCase *tp = tcase_create("walk");
    TCase *tw = tcase_create("torch");
    tcase_add_checked_fixture(tp, tu_arena_setup, tu_arena_teardown);
    tcase_add_test(tp, walk_stops_on_cycles_and_shared_blowup);
    tcase_add_test(tp, walk_allows_foreign_globals_only_in_a_whole_model);
    suite_add_tcase(s, tp);
    tcase_add_checked_fixture(tw, tu_arena_setup, tu_arena_teardown);
    tcase_add_loop_test(tw, writer_round_trips_every_tensor, 0,
                        (int)(sizeof round_trip / sizeof *round_trip));
    tcase_add_test(tw, writer_takes_bytes_from_the_fill);
    tcase_add_test(tw, open_survives_every_allocation_failure);
    tcase_add_test(tw, write_survives_every_allocation_failure);
    suite_add_tcase(s, tw);
    return s;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "--rewrite") == 0) {
        graft_ctx *c = graft_ctx_new();
        int rc = rewrite(argv[2], argv[3], argc > 4 && !strcmp(argv[4], "--xor") ? 1 : 0, c);
        if (rc < 0) fprintf(stderr, "test_torch: %s\n", graft_ctx_message(c));
        graft_ctx_free(c);
        return rc < 0 ? 2 : 0;
    }
    return tu_run(torch_suite());
}
