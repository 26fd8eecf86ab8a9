/*
 * test_torch.c - the restricted pickle interpreter, the torch.save tensor
 * walk and the PyTorch writer.
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


static int load(graft_pk **out, const char *p, size_t n)
{
    return graft_pickle__load(out, NULL, &tu_arena, (const uint8_t *)p, n, 0, tu_ctx);
}
#define LOAD(v, lit) load(&(v), lit, sizeof lit - 1)

/* ---- pickle values ----------------------------------------------------- */

START_TEST(pickle_builds_containers_ints_and_strings)
{
    /* {'a': [1, -2, 70000, 2**63-1 (LONG1 8), True], 'b': (None, 1.5)} */
    static const char p[] =
        "\x80\x02}q\x00(X\x01\x00\x00\x00" "aq\x01]q\x02(K\x01J\xfe\xff\xff\xffJ\x70\x11\x01\x00"
        "\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f\x88" "eX\x01\x00\x00\x00"
        "bNG?\xf8\x00\x00\x00\x00"
        "\x00\x00\x86u.";
    graft_pk *v;
    size_t used;
    ck_assert_int_eq(graft_pickle__load(&v, &used, &tu_arena, (const uint8_t *)p, sizeof p - 1, 0,
                                        tu_ctx), 0);
    ck_assert_uint_eq(used, sizeof p - 1);
    ck_assert_int_eq(v->kind, PK_DICT);
    ck_assert_uint_eq(v->len, 4);
    ck_assert_str_eq(v->v[0]->s, "a");
    graft_pk *l = v->v[1];
    ck_assert_int_eq(l->kind, PK_LIST);
    ck_assert_uint_eq(l->len, 5);
    ck_assert_int_eq(l->v[0]->i, 1);
    ck_assert_int_eq(l->v[1]->i, -2);
    ck_assert_int_eq(l->v[2]->i, 70000);
    ck_assert_int_eq(l->v[3]->i, INT64_MAX);
    ck_assert_int_eq(l->v[4]->kind, PK_BOOL);
    ck_assert_int_eq(v->v[3]->kind, PK_TUPLE);
    ck_assert(v->v[3]->v[1]->f == 1.5);
}
END_TEST

START_TEST(pickle_reads_protocol_4_framing_and_stack_global)
{
    /* protocol 4: FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, EMPTY_TUPLE, REDUCE */
    static const char p[] =
        "\x80\x04\x95\x20\x00\x00\x00\x00\x00\x00\x00\x8c\x0b" "collections\x94\x8c\x0b"
        "OrderedDict\x94\x93\x94)R\x94.";
    graft_pk *v;
    ck_assert_int_eq(LOAD(v, p), 0);
    ck_assert_int_eq(v->kind, PK_OBJ);
    ck_assert_int_eq(v->callable->gid, PKG_ORDERED_DICT);
}
END_TEST

START_TEST(pickle_keeps_big_longs_opaque)
{
    static const char p[] = "\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
    graft_pk *v;
    ck_assert_int_eq(LOAD(v, p), 0);
    ck_assert_int_eq(v->kind, PK_BIGINT);
    ck_assert_uint_eq(v->n, 10);
}
END_TEST

static const struct {
    const char *pickle;
    size_t n;
    const char *global;
} unsafe[] = {
#define U(lit, g) {lit, sizeof lit - 1, g}
    U("cposix\nsystem\n(X\x05\x00\x00\x00touchtR.", "posix.system"),
    U("cos\nsystem\n(X\x05\x00\x00\x00touchtR.", "os.system"),
    U("c__builtin__\neval\n.", "__builtin__.eval"),
    U("cbuiltins\ngetattr\n.", "builtins.getattr"),
    U("csubprocess\nPopen\n.", "subprocess.Popen"),
    U("cnt\nsystem\n.", "nt.system"),
    U("cos.path\njoin\n.", "os.path.join"),
    U("cos\n_rebuild_tensor_v2\n.", "os._rebuild_tensor_v2"),
    U("ctorch._utils\n_rebuild_tensor_v2.__globals__\n.",
      "torch._utils._rebuild_tensor_v2.__globals__"),
    U("ctorch\nload\n.", "torch.load"),
    U("\x8c\x02os\x8c\x06system\x93.", "os.system"),
    U("ios\nsystem\n.", "os.system"),
#undef U
};

START_TEST(pickle_refuses_globals_that_run_code)
{
    graft_pk *v;
    char want[128];
    ck_assert_int_eq(load(&v, unsafe[_i].pickle, unsafe[_i].n), GRAFT_EUNSAFE);
    snprintf(want, sizeof want, "global '%s' is not allowed", unsafe[_i].global);
    ck_assert_msg(strstr(graft_ctx_message(tu_ctx), want), "%s", graft_ctx_message(tu_ctx));
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(tu_ctx), "pickle offset 0x"));
}
END_TEST

START_TEST(pickle_keeps_unknown_classes_opaque_and_never_runs_them)
{
    /* argparse.Namespace via copyreg._reconstructor + BUILD */
    static const char p[] =
        "ccopy_reg\n_reconstructor\n(cargparse\nNamespace\nc__builtin__\nobject\nNtR}"
        "X\x02\x00\x00\x00lrG?\xb9\x99\x99\x99\x99\x99\x9asb.";
    graft_pk *v;
    ck_assert_int_eq(LOAD(v, p), 0);
    ck_assert_int_eq(v->kind, PK_OBJ);
    ck_assert_int_eq(v->callable->gid, PKG_OPAQUE);
    ck_assert_int_eq(v->state->kind, PK_DICT);
}
END_TEST

static const struct {
    const char *pickle;
    size_t n;
    int code;
    const char *msg;
} bad[] = {
#define B(lit, c, m) {lit, sizeof lit - 1, c, m}
    B("", GRAFT_ECORRUPT, "ends without STOP"),
    B("X\xff\xff\xff\x7f" "abc.", GRAFT_ECORRUPT, "string of 2147483647 bytes but 4 left"),
    B("\x8d\xff\xff\xff\xff\xff\xff\xff\xff.", GRAFT_ECORRUPT, "bytes but"),
    B("h\x05.", GRAFT_ECORRUPT, "memo index 5 was never stored"),
    B("K\x01r\xff\xff\xff\xff.", GRAFT_ELIMIT, "memo index 4294967295 exceeds"),
    B("t.", GRAFT_ECORRUPT, "without a MARK"),
    B("(.", GRAFT_ECORRUPT, "needs 1 values on the stack"),
    B("R.", GRAFT_ECORRUPT, "needs 2 values"),
    B("NNR.", GRAFT_EFORMAT, "call of a None"),
    B("K\x01K\x02K\x03s.", GRAFT_EFORMAT, "SETITEMS on a int"),
    B("}K\x01" "a.", GRAFT_EFORMAT, "APPENDS into a dict"),
    B("\xff", GRAFT_ECORRUPT, "unknown opcode 0xff"),
    B("\x8a\x05\x01", GRAFT_ECORRUPT, "needs 5 bytes, 1 left"),
    B("\x8b\xff\xff\xff\xff.", GRAFT_ECORRUPT, "negative length"),
    B("S'abc'\n.", GRAFT_EFORMAT, "not supported"),
    B("\x80\x09.", GRAFT_EFORMAT, "protocol 9"),
    B("cfoo", GRAFT_ECORRUPT, "runs past the end"),
    B("}NNb.", GRAFT_EFORMAT, "BUILD on a None"),
    /* a FRAME claiming 2^62 bytes (issue 18, item 11) */
    B("\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x40N.", GRAFT_ECORRUPT,
      "FRAME of 4611686018427387904 bytes but 2 left"),
#undef B
};

START_TEST(pickle_rejects_malformed_input_cleanly)
{
    graft_pk *v;
    ck_assert_int_eq(load(&v, bad[_i].pickle, bad[_i].n), bad[_i].code);
    ck_assert_msg(strstr(graft_ctx_message(tu_ctx), bad[_i].msg), "case %d: %s", _i,
                  graft_ctx_message(tu_ctx));
}
END_TEST

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
    ck_assert_int_eq(graft_torch__collect(&refs, v, &tu_arena, tu_ctx), GRAFT_ELIMIT);
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
    ck_assert_int_eq(graft_torch__collect(&refs, v, &tu_arena, tu_ctx), GRAFT_ELIMIT);
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
    TCase *tp = tcase_create("pickle");
    TCase *tw = tcase_create("torch");
    tcase_add_checked_fixture(tp, tu_arena_setup, tu_arena_teardown);
    tcase_add_test(tp, pickle_builds_containers_ints_and_strings);
    tcase_add_test(tp, pickle_reads_protocol_4_framing_and_stack_global);
    tcase_add_test(tp, pickle_keeps_big_longs_opaque);
    tcase_add_loop_test(tp, pickle_refuses_globals_that_run_code, 0,
                        (int)(sizeof unsafe / sizeof *unsafe));
    tcase_add_test(tp, pickle_keeps_unknown_classes_opaque_and_never_runs_them);
    tcase_add_loop_test(tp, pickle_rejects_malformed_input_cleanly, 0,
                        (int)(sizeof bad / sizeof *bad));
    tcase_add_test(tp, walk_stops_on_cycles_and_shared_blowup);
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
