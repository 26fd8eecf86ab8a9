/*
 * test_onnx.c - the ONNX reader and skeleton writer.
 *
 * Models are crafted with the protobuf-c encoders generated from
 * schemas/onnx.proto; written models are read back by graft and checked by
 * python3-onnx (onnx.checker.check_model and numpy_helper values).
 */
#include "testutil.h"

#include "error.h"
#include "format.h"
#include "onnx.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static graft_ctx *ctx;
static void setup(void) { ctx = graft_ctx_new(); }
static void teardown(void) { graft_ctx_free(ctx); }

/* ---- building models ----------------------------------------------------- */

typedef struct built {
    uint8_t *bytes;
    size_t n;
} built;

static Onnx__ValueInfoProto *value_info(const char *name, int elem_type)
{
    Onnx__TypeProto__Tensor *tt = calloc(1, sizeof *tt);
    Onnx__TypeProto *tp = calloc(1, sizeof *tp);
    Onnx__ValueInfoProto *vi = calloc(1, sizeof *vi);
    static Onnx__TensorShapeProto scalar = ONNX__TENSOR_SHAPE_PROTO__INIT;
    onnx__type_proto__tensor__init(tt);
    tt->shape = &scalar; /* the checker wants a shape; inputs here are scalars */
    onnx__type_proto__init(tp);
    onnx__value_info_proto__init(vi);
    tt->has_elem_type = 1;
    tt->elem_type = elem_type;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->name = (char *)name;
    vi->type = tp;
    return vi;
}

static void value_info_free(Onnx__ValueInfoProto *vi)
{
    free(vi->type->tensor_type);
    free(vi->type);
    free(vi);
}

static const float raw_w[6] = {0, 1, 2, 3, 4, 5};
static const float float_b[4] = {1.5f, -2, 3.25f, 4};
static const int64_t int64_i[3] = {-1, 2, (int64_t)1 << 40};
static const int32_t half_h[2] = {0x3c00, 0xc000};   /* float16 1.0, -2.0 */
static const double double_d[2] = {0.5, -8};
static const int32_t bool_z[3] = {0, 1, 1};
static const int32_t sub_init[2] = {-5, 6};
static const float const_v = 7.0f;
static const float ext_w[4] = {10, 20, 30, 40};

/*
 * A checker-valid model: y = x + raw_w, a Constant `const_out`, an If whose
 * then-branch holds initializer `sub_init`, and initializers stored in every
 * typed field.  With `external`, `ext_w` lives in w.bin at offset 8.
 */
static built build_model(bool external)
{
    Onnx__TensorProto t[9];
    Onnx__StringStringEntryProto kv[3];
    Onnx__StringStringEntryProto *kvp[3] = {&kv[0], &kv[1], &kv[2]};
    Onnx__TensorProto *inits[8], *sub_inits[1];
    Onnx__AttributeProto a_value, a_then, a_else;
    Onnx__AttributeProto *const_attrs[1] = {&a_value}, *if_attrs[2] = {&a_else, &a_then};
    Onnx__NodeProto n_add, n_const, n_if, n_then, n_else;
    Onnx__NodeProto *nodes[3] = {&n_const, &n_add, &n_if}, *then_nodes[1] = {&n_then},
                    *else_nodes[1] = {&n_else};
    Onnx__GraphProto g, g_then, g_else;
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opsets[1] = {&opset};
    Onnx__ModelProto model;
    Onnx__ValueInfoProto *in[2], *out[3], *then_out[1], *else_out[1];
    char *add_in[2] = {"x", "raw_w"}, *add_out[1] = {"y"}, *const_out[1] = {"const_out"};
    char *if_in[1] = {"cond"}, *if_out[1] = {"if_out"}, *then_in[1] = {"sub_init"};
    char *then_o[1] = {"then_o"}, *else_o[1] = {"else_o"}, *else_in[1] = {"x"};
    int64_t d6[2] = {2, 3}, d4[1] = {4}, d3[1] = {3}, d2[1] = {2}, d1[1] = {1};
    size_t ni = 0;
    built b;

    for (int i = 0; i < 9; i++) onnx__tensor_proto__init(&t[i]);
    t[0].name = "raw_w"; t[0].n_dims = 2; t[0].dims = d6;
    t[0].has_data_type = 1; t[0].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t[0].has_raw_data = 1; t[0].raw_data.len = sizeof raw_w; t[0].raw_data.data = (uint8_t *)raw_w;
    t[1].name = "float_b"; t[1].n_dims = 1; t[1].dims = d4;
    t[1].has_data_type = 1; t[1].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t[1].n_float_data = 4; t[1].float_data = (float *)float_b;
    t[2].name = "int64_i"; t[2].n_dims = 1; t[2].dims = d3;
    t[2].has_data_type = 1; t[2].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t[2].n_int64_data = 3; t[2].int64_data = (int64_t *)int64_i;
    t[3].name = "half_h"; t[3].n_dims = 1; t[3].dims = d2;
    t[3].has_data_type = 1; t[3].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
    t[3].n_int32_data = 2; t[3].int32_data = (int32_t *)half_h;
    t[4].name = "double_d"; t[4].n_dims = 1; t[4].dims = d2;
    t[4].has_data_type = 1; t[4].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
    t[4].n_double_data = 2; t[4].double_data = (double *)double_d;
    t[5].name = "bool_z"; t[5].n_dims = 1; t[5].dims = d3;
    t[5].has_data_type = 1; t[5].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
    t[5].n_int32_data = 3; t[5].int32_data = (int32_t *)bool_z;
    t[6].name = "sub_init"; t[6].n_dims = 1; t[6].dims = d2;
    t[6].has_data_type = 1; t[6].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
    t[6].n_int32_data = 2; t[6].int32_data = (int32_t *)sub_init;
    t[7].name = "const_value"; t[7].n_dims = 1; t[7].dims = d1; /* named by the node */
    t[7].has_data_type = 1; t[7].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t[7].has_raw_data = 1; t[7].raw_data.len = 4; t[7].raw_data.data = (uint8_t *)&const_v;
    t[8].name = "ext_w"; t[8].n_dims = 1; t[8].dims = d4;
    t[8].has_data_type = 1; t[8].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t[8].has_data_location = 1; t[8].data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    for (int i = 0; i < 3; i++) onnx__string_string_entry_proto__init(&kv[i]);
    kv[0].key = "location"; kv[0].value = "w.bin";
    kv[1].key = "offset"; kv[1].value = "8";
    kv[2].key = "length"; kv[2].value = "16";
    t[8].n_external_data = 3; t[8].external_data = kvp;
    for (int i = 0; i < 6; i++) inits[ni++] = &t[i];
    if (external) inits[ni++] = &t[8];
    sub_inits[0] = &t[6];

    onnx__attribute_proto__init(&a_value);
    a_value.name = "value"; a_value.has_type = 1;
    a_value.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR; a_value.t = &t[7];
    onnx__node_proto__init(&n_const);
    n_const.op_type = "Constant"; n_const.n_output = 1; n_const.output = const_out;
    n_const.n_attribute = 1; n_const.attribute = const_attrs;
    onnx__node_proto__init(&n_add);
    n_add.op_type = "Add"; n_add.n_input = 2; n_add.input = add_in;
    n_add.n_output = 1; n_add.output = add_out;

    onnx__node_proto__init(&n_then);
    n_then.op_type = "Identity"; n_then.n_input = 1; n_then.input = then_in;
    n_then.n_output = 1; n_then.output = then_o;
    onnx__graph_proto__init(&g_then);
    g_then.name = "then"; g_then.n_node = 1; g_then.node = then_nodes;
    g_then.n_initializer = 1; g_then.initializer = sub_inits;
    then_out[0] = value_info("then_o", ONNX__TENSOR_PROTO__DATA_TYPE__INT32);
    g_then.n_output = 1; g_then.output = then_out;
    onnx__node_proto__init(&n_else);
    n_else.op_type = "Identity"; n_else.n_input = 1; n_else.input = else_in;
    n_else.n_output = 1; n_else.output = else_o;
    onnx__graph_proto__init(&g_else);
    g_else.name = "else"; g_else.n_node = 1; g_else.node = else_nodes;
    else_out[0] = value_info("else_o", ONNX__TENSOR_PROTO__DATA_TYPE__INT32);
    g_else.n_output = 1; g_else.output = else_out;
    onnx__attribute_proto__init(&a_then);
    a_then.name = "then_branch"; a_then.has_type = 1;
    a_then.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH; a_then.g = &g_then;
    onnx__attribute_proto__init(&a_else);
    a_else.name = "else_branch"; a_else.has_type = 1;
    a_else.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH; a_else.g = &g_else;
    onnx__node_proto__init(&n_if);
    n_if.op_type = "If"; n_if.n_input = 1; n_if.input = if_in;
    n_if.n_output = 1; n_if.output = if_out; n_if.n_attribute = 2; n_if.attribute = if_attrs;

    onnx__graph_proto__init(&g);
    g.name = "main"; g.doc_string = "kept byte for byte";
    g.n_node = 3; g.node = nodes;
    g.n_initializer = ni; g.initializer = inits;
    in[0] = value_info("x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    in[1] = value_info("cond", ONNX__TENSOR_PROTO__DATA_TYPE__BOOL);
    out[0] = value_info("y", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    out[1] = value_info("const_out", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    out[2] = value_info("if_out", ONNX__TENSOR_PROTO__DATA_TYPE__INT32);
    g.n_input = 2; g.input = in; g.n_output = 3; g.output = out;

    onnx__operator_set_id_proto__init(&opset);
    opset.domain = ""; opset.has_version = 1; opset.version = 13;
    onnx__model_proto__init(&model);
    model.has_ir_version = 1; model.ir_version = 8;
    model.producer_name = "test_onnx"; model.graph = &g;
    model.n_opset_import = 1; model.opset_import = opsets;

    b.n = onnx__model_proto__get_packed_size(&model);
    b.bytes = malloc(b.n);
    ck_assert_uint_eq(onnx__model_proto__pack(&model, b.bytes), b.n);
    for (int i = 0; i < 2; i++) value_info_free(in[i]);
    for (int i = 0; i < 3; i++) value_info_free(out[i]);
    value_info_free(then_out[0]);
    value_info_free(else_out[0]);
    return b;
}

/* A folder holding m.onnx (and w.bin for the external variant). */
static const char *write_model(const char *folder, bool external)
{
    static char path[512];
    char dir[400];
    built b = build_model(external);
    FILE *f;
    snprintf(dir, sizeof dir, "%s/%s", tu_temp_dir(), folder);
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b.bytes, 1, b.n, f), b.n);
    fclose(f);
    free(b.bytes);
    if (external) {
        char wpath[512];
        uint8_t data[32] = "junkjunk";
        memcpy(data + 8, ext_w, sizeof ext_w);
        memcpy(data + 24, "trailing", 8);
        snprintf(wpath, sizeof wpath, "%s/w.bin", dir);
        f = fopen(wpath, "wb");
        ck_assert_uint_eq(fwrite(data, 1, sizeof data, f), sizeof data);
        fclose(f);
    }
    return path;
}

static void expect_bytes(const graft_model *m, const char *name, graft_dtype dt,
                         const void *want, size_t n)
{
    const graft_tensor *t = graft_model_find(m, name);
    const uint8_t *p;
    void *owned;
    ck_assert_msg(t != NULL, "no tensor %s", name);
    ck_assert_int_eq(graft_tensor_dtype(t), dt);
    ck_assert_uint_eq(graft_tensor_nbytes(t), n);
    ck_assert_int_eq(graft_tensor_bytes(m, t, &p, &owned, ctx), 0);
    ck_assert_msg(memcmp(p, want, n) == 0, "tensor %s: wrong bytes", name);
    free(owned);
}

static void expect_model_values(const graft_model *m, bool external)
{
    const uint8_t half_bytes[4] = {0x00, 0x3c, 0x00, 0xc0};
    const uint8_t bools[3] = {0, 1, 1};
    ck_assert_uint_eq(graft_model_count(m), external ? 9 : 8);
    ck_assert_str_eq(graft_tensor_name(graft_model_tensor(m, 0)), "const_out");
    ck_assert_str_eq(graft_tensor_name(graft_model_tensor(m, 1)), "sub_init");
    expect_bytes(m, "raw_w", GRAFT_FLOAT32, raw_w, sizeof raw_w);
    expect_bytes(m, "float_b", GRAFT_FLOAT32, float_b, sizeof float_b);
    expect_bytes(m, "int64_i", GRAFT_INT64, int64_i, sizeof int64_i);
    expect_bytes(m, "half_h", GRAFT_FLOAT16, half_bytes, 4);
    expect_bytes(m, "double_d", GRAFT_FLOAT64, double_d, sizeof double_d);
    expect_bytes(m, "bool_z", GRAFT_BOOL, bools, 3);
    expect_bytes(m, "sub_init", GRAFT_INT32, sub_init, sizeof sub_init);
    expect_bytes(m, "const_out", GRAFT_FLOAT32, &const_v, 4);
    if (external) expect_bytes(m, "ext_w", GRAFT_FLOAT32, ext_w, sizeof ext_w);
}

/* ---- fills ------------------------------------------------------------------ */

typedef struct test_fill {
    graft_fill base;
    const graft_model *m;
    bool pattern;   /* float32 element i becomes i * 0.5 - 3 */
} test_fill;

static int emit(graft_fill *f, size_t index, graft_sink *out, graft_ctx *c)
{
    test_fill *tf = (test_fill *)f;
    const graft_tensor *t = graft_model_tensor(tf->m, index);
    const uint8_t *p;
    void *owned;
    int rc;
    if (tf->pattern && graft_tensor_dtype(t) == GRAFT_FLOAT32) {
        for (uint64_t i = 0; i < graft_tensor_numel(t); i++) {
            float v = (float)i * 0.5f - 3;
            GRAFT_TRY(graft_sink_write(out, &v, 4));
        }
        return GRAFT_OK;
    }
    GRAFT_TRY(graft_tensor_bytes(tf->m, t, &p, &owned, c));
    rc = graft_sink_write(out, p, (size_t)graft_tensor_nbytes(t));
    free(owned);
    return rc;
}

static void rewrite(const char *in, const char *out, bool pattern)
{
    graft_model *m = NULL;
    test_fill tf = {{emit, NULL}, NULL, pattern};
    ck_assert_msg(graft_model_open(&m, in, NULL, ctx) == 0, "%s", graft_ctx_message(ctx));
    tf.m = m;
    ck_assert_msg(m->format->write(m, out, &tf.base, ctx) == 0, "%s", graft_ctx_message(ctx));
    graft_model_free(m);
}

/* check_model, then every float32 weight must hold the pattern (or not). */
static const char py_check[] =
    "import sys, onnx, numpy as np\n"
    "from onnx import numpy_helper\n"
    "m = onnx.load(sys.argv[1])\n"
    "onnx.checker.check_model(m)\n"
    "def walk(g):\n"
    "    for n in g.node:\n"
    "        for a in n.attribute:\n"
    "            if n.op_type == 'Constant' and a.name == 'value': yield a.t\n"
    "            if a.HasField('g'): yield from walk(a.g)\n"
    "    yield from g.initializer\n"
    "k = 0\n"
    "for t in walk(m.graph):\n"
    "    a = numpy_helper.to_array(t)\n"
    "    if a.dtype == np.float32 and sys.argv[2] == 'pattern':\n"
    "        want = np.arange(a.size, dtype=np.float32) * 0.5 - 3\n"
    "        assert np.array_equal(a.ravel(), want), t.name\n"
    "        k += 1\n"
    "print(k)\n"
    "sys.exit(0 if k == int(sys.argv[3]) else 3)\n";

static void python_check(const char *path, const char *mode, int nfloat)
{
    char cmd[1024];
    const char *script = tu_write_temp("check_onnx.py", py_check, strlen(py_check));
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %s %d >/dev/null", script, path, mode,
             nfloat);
    ck_assert_msg(system(cmd) == 0, "python3-onnx rejects %s", path);
}

/* ---- tests ------------------------------------------------------------------ */

START_TEST(reads_every_storage_field_constants_and_subgraphs)
{
    graft_model *m = NULL;
    const char *p = write_model("read", false);
    ck_assert_msg(graft_model_open(&m, p, NULL, ctx) == 0, "%s", graft_ctx_message(ctx));
    ck_assert_str_eq(graft_model_format(m), "onnx");
    expect_model_values(m, false);
    graft_model_free(m);
    python_check(p, "plain", 0);
}
END_TEST

START_TEST(reads_external_data)
{
    graft_model *m = NULL;
    const char *p = write_model("ext", true);
    ck_assert_msg(graft_model_open(&m, p, NULL, ctx) == 0, "%s", graft_ctx_message(ctx));
    expect_model_values(m, true);
    graft_model_free(m);
}
END_TEST

/* An external-data location that is a FIFO is refused, not read: opening it
 * would wait for a writer forever (issue 18, item 4). */
START_TEST(external_data_fifo_is_refused)
{
    graft_model *m = NULL;
    char w[600];
    const char *p = write_model("extfifo", true);
    snprintf(w, sizeof w, "%s/extfifo/w.bin", tu_temp_dir());
    ck_assert_int_eq(unlink(w), 0);
    ck_assert_int_eq(mkfifo(w, 0600), 0);
    alarm(20); /* a hang fails the test instead of the suite's timeout */
    ck_assert_int_eq(graft_model_open(&m, p, NULL, ctx), GRAFT_EFORMAT);
    alarm(0);
    ck_assert_msg(strstr(graft_ctx_message(ctx), "tensor 'ext_w'") &&
                      strstr(graft_ctx_message(ctx), "w.bin: not a regular file (a FIFO)"),
                  "%s", graft_ctx_message(ctx));
    ck_assert_ptr_null(m);
}
END_TEST

START_TEST(identity_rewrite_of_fixtures_is_byte_identical)
{
    const char *fx = getenv("GRAFT_FIXTURES");
    const char *names[] = {
        "keras2onnx_mnist_cnn_twin_of_h5/onnx_mnist.onnx",
        "onnx_pytorch_converted_Conv2d/model.onnx",
        "onnx_pytorch_converted_BatchNorm2d_eval/model.onnx",
        "onnx_pytorch_operator_conv/model.onnx",
    };
    ck_assert_ptr_nonnull(fx);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char in[1024], out[600];
        size_t na, nb;
        uint8_t *a, *b;
        snprintf(in, sizeof in, "%s/onnx/%s", fx, names[i]);
        snprintf(out, sizeof out, "%s/same%zu.onnx", tu_temp_dir(), i);
        rewrite(in, out, false);
        a = tu_read_file(in, &na);
        b = tu_read_file(out, &nb);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_uint_eq(na, nb);
        ck_assert_msg(memcmp(a, b, na) == 0, "%s changed", names[i]);
        free(a);
        free(b);
    }
}
END_TEST

START_TEST(rewrite_replaces_values_and_keeps_the_rest)
{
    char out[600];
    graft_model *m = NULL;
    const char *p = write_model("rw", false);
    snprintf(out, sizeof out, "%s/rw_same.onnx", tu_temp_dir());
    rewrite(p, out, false);
    ck_assert_int_eq(graft_model_open(&m, out, NULL, ctx), 0);
    expect_model_values(m, false); /* varint fields became raw_data, same values */
    graft_model_free(m);
    python_check(out, "plain", 0);

    snprintf(out, sizeof out, "%s/rw_pattern.onnx", tu_temp_dir());
    rewrite(p, out, true);
    python_check(out, "pattern", 3); /* raw_w, float_b (float_data), const_out */
    ck_assert_int_eq(graft_model_open(&m, out, NULL, ctx), 0);
    expect_bytes(m, "sub_init", GRAFT_INT32, sub_init, sizeof sub_init);
    graft_model_free(m);
}
END_TEST

START_TEST(rewrite_with_external_data)
{
    char out_dir[512], out[600], side[600];
    const float want[4] = {-3, -2.5f, -2, -1.5f};
    graft_model *m = NULL;
    const char *p = write_model("xw", true);
    uint8_t *skel;
    size_t n;

    /* Into another folder: w.bin beside the output, same layout. */
    snprintf(out_dir, sizeof out_dir, "%s/xw_out", tu_temp_dir());
    mkdir(out_dir, 0777);
    snprintf(out, sizeof out, "%s/out.onnx", out_dir);
    rewrite(p, out, true);
    python_check(out, "pattern", 4);
    ck_assert_int_eq(graft_model_open(&m, out, NULL, ctx), 0);
    expect_bytes(m, "ext_w", GRAFT_FLOAT32, want, sizeof want);
    graft_model_free(m);
    snprintf(side, sizeof side, "%s/w.bin", out_dir);
    skel = tu_read_file(side, &n);
    ck_assert_uint_eq(n, 24);
    ck_assert_int_eq(memcmp(skel + 8, want, 16), 0);
    free(skel);

    /* Beside the skeleton: its w.bin must survive; the output gets its own. */
    snprintf(out, sizeof out, "%s/xw/out.onnx", tu_temp_dir());
    rewrite(p, out, true);
    snprintf(side, sizeof side, "%s/xw/w.bin", tu_temp_dir());
    skel = tu_read_file(side, &n);
    ck_assert_int_eq(memcmp(skel + 8, ext_w, 16), 0);
    free(skel);
    snprintf(side, sizeof side, "%s/xw/out.onnx.w.bin", tu_temp_dir());
    ck_assert_int_eq(access(side, F_OK), 0);
    python_check(out, "pattern", 4);
}
END_TEST

START_TEST(every_truncation_fails_cleanly)
{
    built b = build_model(false);
    for (size_t n = 0; n < b.n; n++) {
        graft_model *m = NULL;
        graft_open_options o = GRAFT_OPEN_OPTIONS_INIT;
        int rc;
        o.format = "onnx";
        rc = graft_model_open_buffer(&m, "t.onnx", b.bytes, n, &o, ctx);
        if (rc == 0) { /* a cut between top-level fields is a valid, smaller model */
            ck_assert_uint_le(graft_model_count(m), 8);
        } else {
            ck_assert_int_eq(rc, GRAFT_ECORRUPT);
            ck_assert_msg(strncmp(graft_ctx_message(ctx), "t.onnx: ", 8) == 0, "%s",
                          graft_ctx_message(ctx));
        }
        graft_model_free(m);
    }
    free(b.bytes);
}
END_TEST

START_TEST(hostile_fields_are_named_in_errors)
{
    static const struct {
        const char *bytes;
        size_t n;
        int rc;
        const char *msg;
    } cases[] = {
        /* graph (7) of 0x20 bytes with 2 present */
        {"\x3a\x20\x2a\x00", 4, GRAFT_ECORRUPT,
         "x.onnx: not an ONNX ModelProto: offset 0x0: field 7: length 32 runs past the end (2 bytes left)"},
        /* graph as a varint */
        {"\x38\x01", 2, GRAFT_ECORRUPT,
         "x.onnx: not an ONNX ModelProto: offset 0x0: field 7 (graph) has wire type 0, not 2"},
        /* group wire type */
        {"\x3b", 1, GRAFT_ECORRUPT,
         "x.onnx: not an ONNX ModelProto: offset 0x0: field 7: unsupported protobuf wire type 3"},
        /* initializer without a name */
        {"\x3a\x04\x2a\x02\x10\x01", 6, GRAFT_ECORRUPT,
         "x.onnx: offset 0x4: initializer without a name"},
        /* float [2] named w with one float_data value */
        {"\x3a\x0e\x2a\x0c\x08\x02\x10\x01\x42\x01w\x25\x00\x00\x80\x3f", 16, GRAFT_ECORRUPT,
         "x.onnx: tensor 'w': no raw_data, and float_data holds 1 values where its dims need 2"},
        /* packed float_data of 3 bytes */
        {"\x3a\x0c\x2a\x0a\x10\x01\x42\x01w\x22\x03\x00\x00\x00", 14, GRAFT_ECORRUPT,
         "packed length 3 is not a multiple of 4"},
        /* dims of -1 */
        {"\x3a\x12\x2a\x10\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x10\x01\x42\x01w", 20,
         GRAFT_ECORRUPT, "x.onnx: tensor 'w': negative dimension -1"},
        /* segment */
        {"\x3a\x09\x2a\x07\x10\x01\x42\x01w\x1a\x00", 11, GRAFT_EFORMAT,
         "x.onnx: tensor 'w': segmented tensors are not supported"},
        /* a 2-byte tag with field number 0 */
        {"\x80\x00", 2, GRAFT_ECORRUPT, "x.onnx: not an ONNX ModelProto: offset 0x0: bad protobuf field number 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        graft_model *m = NULL;
        graft_open_options o = GRAFT_OPEN_OPTIONS_INIT;
        o.format = "onnx";
        ck_assert_int_eq(graft_model_open_buffer(&m, "x.onnx", (const uint8_t *)cases[i].bytes,
                                                 cases[i].n, &o, ctx),
                         cases[i].rc);
        ck_assert_msg(strstr(graft_ctx_message(ctx), cases[i].msg) != NULL,
                      "case %zu: '%s' lacks '%s'", i, graft_ctx_message(ctx), cases[i].msg);
    }
}
END_TEST

/* Wrap buf[0..n) as a length-delimited field `tag` of an outer message. */
static void wrap(uint8_t *buf, size_t *n, uint8_t tag)
{
    uint8_t hdr[11];
    size_t h = 0;
    hdr[h++] = tag;
    for (size_t v = *n;; v >>= 7) {
        hdr[h++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80) break;
    }
    memmove(buf + h, buf, *n);
    memcpy(buf, hdr, h);
    *n += h;
}

START_TEST(deep_nesting_is_capped)
{
    /* graph{node{attribute{g{graph{node{...}}}}}} 100 levels deep. */
    static uint8_t buf[4096];
    size_t n = 0;
    graft_model *m = NULL;
    graft_open_options o = GRAFT_OPEN_OPTIONS_INIT;
    for (int d = 0; d < 100; d++) {
        wrap(buf, &n, 0x32); /* AttributeProto.g */
        wrap(buf, &n, 0x2a); /* NodeProto.attribute */
        wrap(buf, &n, 0x0a); /* GraphProto.node */
    }
    wrap(buf, &n, 0x3a);     /* ModelProto.graph */
    o.format = "onnx";
    ck_assert_int_eq(graft_model_open_buffer(&m, "d.onnx", buf, n, &o, ctx), GRAFT_ELIMIT);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "nested deeper than 64"));
}
END_TEST

static int open_once(graft_ctx *c, void *payload)
{
    graft_model *m = NULL;
    int rc = graft_model_open(&m, payload, NULL, c);
    if (rc < 0) ck_assert_ptr_null(m);
    graft_model_free(m);
    return rc;
}

START_TEST(allocation_failures_are_reported)
{
    ck_assert_int_gt(tu_each_alloc_failure(ctx, open_once, (void *)write_model("oom", true)), 0);
}
END_TEST

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

START_TEST(inline_model_over_2gib_needs_external_data)
{
    /* One float32 initializer of 2^29 elements in raw_data: a sparse 2 GiB file. */
    const uint64_t data = (uint64_t)1 << 31;
    uint8_t tensor[32], head[64];
    size_t tn = 0, hn = 0;
    char in[512], out[512];
    graft_model *m = NULL;
    test_fill tf = {{emit, NULL}, NULL, false};
    FILE *f;

    tensor[tn++] = 0x08;
    tn += put_varint(tensor + tn, (uint64_t)1 << 29);
    memcpy(tensor + tn, "\x10\x01\x42\x01w\x4a", 6);
    tn += 6;
    tn += put_varint(tensor + tn, data);
    head[hn++] = 0x3a;
    hn += put_varint(head + hn, 1 + 5 + tn + data);
    head[hn++] = 0x2a;
    hn += put_varint(head + hn, tn + data);
    memcpy(head + hn, tensor, tn);
    hn += tn;
    snprintf(in, sizeof in, "%s/big.onnx", tu_temp_dir());
    snprintf(out, sizeof out, "%s/big_out.onnx", tu_temp_dir());
    f = fopen(in, "wb");
    ck_assert_uint_eq(fwrite(head, 1, hn, f), hn);
    ck_assert_int_eq(ftruncate(fileno(f), (off_t)(hn + data)), 0);
    fclose(f);
    ck_assert_msg(graft_model_open(&m, in, NULL, ctx) == 0, "%s", graft_ctx_message(ctx));
    ck_assert_uint_eq(graft_tensor_nbytes(graft_model_tensor(m, 0)), data);
    tf.m = m;
    ck_assert_int_eq(m->format->write(m, out, &tf.base, ctx), GRAFT_ELIMIT);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "over the 2 GiB protobuf limit"));
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "external data"));
    ck_assert_int_ne(access(out, F_OK), 0);
    graft_model_free(m);
    unlink(in);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("onnx");
    TCase *tc = tcase_create("onnx");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, reads_every_storage_field_constants_and_subgraphs);
    tcase_add_test(tc, reads_external_data);
    tcase_add_test(tc, identity_rewrite_of_fixtures_is_byte_identical);
    tcase_add_test(tc, rewrite_replaces_values_and_keeps_the_rest);
    tcase_add_test(tc, rewrite_with_external_data);
    tcase_add_test(tc, every_truncation_fails_cleanly);
    tcase_add_test(tc, hostile_fields_are_named_in_errors);
    tcase_add_test(tc, deep_nesting_is_capped);
    tcase_add_test(tc, allocation_failures_are_reported);
    tcase_add_test(tc, inline_model_over_2gib_needs_external_data);
    tcase_add_test(tc, external_data_fifo_is_refused);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
