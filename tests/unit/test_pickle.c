/* test_pickle.c - the restricted pickle interpreter (formats/pytorch/pickle.c,
 * pickle_globals.c): values, framing, opaque classes, refused globals and
 * malformed input named by offset. */
#include "testutil.h"

#include "error.h"
#include "pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

START_TEST(pickle_memo_is_sparse_and_overwritable)
{
    /* 7 at memo 2^22-1 (the cap - 1), 8 then 9 at memo 1, MEMOIZE 10 at
     * len(memo) = 2; get all three: (7, 9, 10).  A dense memo would spend
     * 32 MB on the first PUT of this 30-byte pickle. */
    static const char p[] =
        "K\x07r\xff\xff\x3f\x00" "K\x08q\x01" "K\x09q\x01" "K\x0a\x94"
        "(j\xff\xff\x3f\x00" "h\x01" "h\x02" "t.";
    graft_pk *v;
    ck_assert_int_eq(LOAD(v, p), 0);
    ck_assert_int_eq(v->kind, PK_TUPLE);
    ck_assert_uint_eq(v->len, 3);
    ck_assert_int_eq(v->v[0]->i, 7);
    ck_assert_int_eq(v->v[1]->i, 9);
    ck_assert_int_eq(v->v[2]->i, 10);
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

/* What only a whole model holds: refused by the strict load, read as foreign
 * names by the lenient one. */
START_TEST(pickle_reads_whole_model_globals_only_when_lenient)
{
    static const char partial[] = "cfunctools\npartial\nctorch.nn.modules.batchnorm\n"
                                  "BatchNorm2d\n\x85R.";
    static const char relu[] = "ctorch.nn.functional\nrelu\n.";
    static const char tanh[] = "c__builtin__\ngetattr\nctorch._C\n_VariableFunctionsClass\n"
                               "X\x04\x00\x00\x00tanh\x86R.";
    graft_pk *v, *foreign;
    ck_assert_int_eq(LOAD(v, partial), GRAFT_EUNSAFE);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(tu_ctx), "'functools.partial' is not allowed"));
    ck_assert_int_eq(LOAD(v, relu), GRAFT_EUNSAFE);
    ck_assert_int_eq(graft_pickle__load_lenient(&v, &foreign, NULL, &tu_arena,
                                                (const uint8_t *)partial, sizeof partial - 1, 0,
                                                tu_ctx), 0);
    ck_assert_int_eq(v->kind, PK_OBJ);
    ck_assert_int_eq(v->callable->gid, PKG_FOREIGN);
    ck_assert_ptr_eq(foreign, v->callable);
    ck_assert_int_eq(graft_pickle__load_lenient(&v, &foreign, NULL, &tu_arena,
                                                (const uint8_t *)tanh, sizeof tanh - 1, 0,
                                                tu_ctx), 0);
    ck_assert_int_eq(v->callable->gid, PKG_GETATTR);
}
END_TEST

/* getattr is one plain name of a global or an object, never a chain, a
 * dunder, a call or a BUILD target; code-running globals stay refused. */
static const struct {
    const char *pickle;
    size_t n;
    const char *want;
} lenient_unsafe[] = {
#define U(lit, w) {lit, sizeof lit - 1, w}
    U("c__builtin__\ngetattr\nctorch.nn.modules.linear\nLinear\n"
      "X\x08\x00\x00\x00__init__\x86R.", "'__builtin__.getattr' is not allowed"),
    U("c__builtin__\ngetattr\nX\x02\x00\x00\x00osX\x06\x00\x00\x00system\x86R.",
      "'__builtin__.getattr' is not allowed"),
    U("c__builtin__\ngetattr\nctorch.nn\nfunctional\nX\x0a\x00\x00\x00torch.load\x86R.",
      "'__builtin__.getattr' is not allowed"),
    U("c__builtin__\ngetattr\nctorch.nn\nfunctional\nX\x05\x00\x00\x00torch\x86R}b.",
      "BUILD on the result of getattr"),
    U("c__builtin__\ngetattr\nctorch.nn\nfunctional\nX\x05\x00\x00\x00torch\x86R"
      "KaKbs.", "SETITEMS on the result of getattr"),
    U("c__builtin__\ngetattr\nctorch.nn\nfunctional\nX\x05\x00\x00\x00torch\x86R)R.",
      "call of a object"),
    U("cos\nsystem\n.", "'os.system' is not allowed"),
    U("ctorch\nload\n.", "'torch.load' is not allowed"),
    U("ctorch._C\n_jit_pass\n.", "'torch._C._jit_pass' is not allowed"),
    U("ctorch.nn.functional\n__globals__\n.", "is not allowed"),
#undef U
};

START_TEST(pickle_lenient_still_refuses_gadgets)
{
    graft_pk *v, *foreign;
    int rc = graft_pickle__load_lenient(&v, &foreign, NULL, &tu_arena,
                                        (const uint8_t *)lenient_unsafe[_i].pickle,
                                        lenient_unsafe[_i].n, 0, tu_ctx);
    ck_assert_int_lt(rc, 0);
    ck_assert_msg(strstr(graft_ctx_message(tu_ctx), lenient_unsafe[_i].want), "%s",
                  graft_ctx_message(tu_ctx));
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

START_TEST(pickle_calls_a_legacy_module_class_through_its_persistent_id)
{
    /* torch legacy: persistent id ('module', class, source file, source), called */
    static const char p[] =
        "(X\x06\x00\x00\x00" "modulecm\nNet\nX\x01\x00\x00\x00" "fX\x01\x00\x00\x00" "stQ)\x81}b.";
    static const char not_global[] =
        "(X\x06\x00\x00\x00" "moduleNX\x01\x00\x00\x00" "fX\x01\x00\x00\x00" "stQ)\x81.";
    graft_pk *v;
    ck_assert_int_eq(LOAD(v, p), 0);
    ck_assert_int_eq(v->kind, PK_OBJ);
    ck_assert_int_eq(v->callable->kind, PK_GLOBAL);
    ck_assert_str_eq(v->callable->s, "m");
    ck_assert_str_eq(v->callable->name, "Net");
    ck_assert_int_eq(v->state->kind, PK_DICT);
    ck_assert_int_eq(LOAD(v, not_global), GRAFT_EFORMAT);
    ck_assert_msg(strstr(graft_ctx_message(tu_ctx), "call of a persistent id"), "%s",
                  graft_ctx_message(tu_ctx));
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

static Suite *pickle_suite(void)
{
    Suite *s = suite_create("pickle");
    TCase *tc = tcase_create("pickle");
    tcase_add_checked_fixture(tc, tu_arena_setup, tu_arena_teardown);
    tcase_add_test(tc, pickle_builds_containers_ints_and_strings);
    tcase_add_test(tc, pickle_reads_protocol_4_framing_and_stack_global);
    tcase_add_test(tc, pickle_keeps_big_longs_opaque);
    tcase_add_loop_test(tc, pickle_refuses_globals_that_run_code, 0,
                        (int)(sizeof unsafe / sizeof *unsafe));
    tcase_add_test(tc, pickle_keeps_unknown_classes_opaque_and_never_runs_them);
    tcase_add_test(tc, pickle_reads_whole_model_globals_only_when_lenient);
    tcase_add_loop_test(tc, pickle_lenient_still_refuses_gadgets, 0,
                        (int)(sizeof lenient_unsafe / sizeof *lenient_unsafe));
    tcase_add_test(tc, pickle_calls_a_legacy_module_class_through_its_persistent_id);
    tcase_add_test(tc, pickle_memo_is_sparse_and_overwritable);
    tcase_add_loop_test(tc, pickle_rejects_malformed_input_cleanly, 0,
                        (int)(sizeof bad / sizeof *bad));
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(pickle_suite()); }
