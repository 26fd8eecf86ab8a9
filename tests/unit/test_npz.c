/*
 * test_npz.c - safetensors, .npy and .npz: writers and readers round trip.
 *
 * Also a helper for tests/interop/test_numpy_safetensors.py, which checks
 * what the writers produce with numpy:
 *   test_npz rewrite IN OUT [reverse]   open IN, write a copy of it to OUT in
 *                                       its own format with every tensor's
 *                                       elements as is or in reverse order
 */
#include "testutil.h"

#include "format.h"
#include "rd.h"
#include "zipw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static graft_ctx *ctx;
static void setup(void) { ctx = graft_ctx_new(); }
static void teardown(void) { graft_ctx_free(ctx); }

/* A fill taking each tensor's bytes from the skeleton itself. */
typedef struct self_fill {
    graft_fill base;
    const graft_model *m;
    bool reverse;       /* elements in reverse flat order */
} self_fill;

static int emit_self(graft_fill *f, size_t index, graft_sink *out, graft_ctx *c)
{
    self_fill *sf = (self_fill *)f;
    const graft_tensor *t = graft_model_tensor(sf->m, index);
    const uint8_t *p;
    void *owned;
    int rc;
    GRAFT_TRY(graft_tensor_bytes(sf->m, t, &p, &owned, c));
    if (!sf->reverse) {
        rc = graft_sink_write(out, p, (size_t)t->nbytes);
    } else {
        size_t es = graft_dtype_size(t->dtype);
        rc = GRAFT_OK;
        for (uint64_t i = t->numel; i-- > 0 && rc == GRAFT_OK;)
            rc = graft_sink_write(out, p + i * es, es);
    }
    free(owned);
    return rc;
}

static int rewrite(const char *in, const char *out, bool reverse, graft_ctx *c)
{
    graft_model *m = NULL;
    self_fill f = {{emit_self, NULL}, NULL, reverse};
    int rc = graft_model_open(&m, in, NULL, c);
    if (rc < 0) return rc;
    f.m = m;
    rc = m->format->write(m, out, &f.base, c);
    graft_model_free(m);
    return rc;
}

static void same_tensors(const char *a_path, const char *b_path)
{
    graft_model *a = NULL, *b = NULL;
    ck_assert_msg(graft_model_open(&a, a_path, NULL, ctx) == 0, "%s", graft_ctx_message(ctx));
    ck_assert_msg(graft_model_open(&b, b_path, NULL, ctx) == 0, "%s", graft_ctx_message(ctx));
    ck_assert_uint_eq(graft_model_count(a), graft_model_count(b));
    for (size_t i = 0; i < graft_model_count(a); i++) {
        const graft_tensor *x = graft_model_tensor(a, i), *y = graft_model_tensor(b, i);
        uint8_t hx[32], hy[32];
        ck_assert_str_eq(x->name, y->name);
        ck_assert_int_eq(x->dtype, y->dtype);
        ck_assert_uint_eq(x->ndim, y->ndim);
        for (uint32_t d = 0; d < x->ndim; d++) ck_assert_int_eq(x->shape[d], y->shape[d]);
        ck_assert_int_eq(graft_tensor_sha256(a, x, hx, ctx), 0);
        ck_assert_int_eq(graft_tensor_sha256(b, y, hy, ctx), 0);
        ck_assert(memcmp(hx, hy, 32) == 0);
    }
    graft_model_free(a);
    graft_model_free(b);
}

/* A safetensors file: header text padded to 8, then `data`. */
static const char *st_file(const char *name, const char *header, const void *data, size_t n)
{
    size_t h = strlen(header), padded = (h + 7) / 8 * 8;
    uint8_t *buf = calloc(1, 8 + padded + n + 1);
    graft_put_le64(buf, padded);
    memcpy(buf + 8, header, h);
    memset(buf + 8 + h, ' ', padded - h);
    memcpy(buf + 8 + padded, data, n);
    const char *path = tu_write_temp(name, buf, 8 + padded + n);
    free(buf);
    return path;
}

static const char st_header[] =
    "{\"__metadata__\":{\"format\":\"pt\",\"k\\\"q\":\"v\\n\"},"
    "\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,24]},"
    "\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
    "\"e\":{\"dtype\":\"BF16\",\"shape\":[0,3],\"data_offsets\":[24,24]},"
    "\"b\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[24,27]}}";

START_TEST(safetensors_rewrite_is_byte_identical)
{
    uint8_t data[27];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7);
    data[24] = 1, data[25] = 0, data[26] = 1;
    const char *in = st_file("in.safetensors", st_header, data, sizeof data);
    const char *out = tu_write_temp("out.safetensors", "", 0);
    size_t na, nb;
    ck_assert_msg(rewrite(in, out, false, ctx) == 0, "%s", graft_ctx_message(ctx));
    uint8_t *a = tu_read_file(in, &na), *b = tu_read_file(out, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(memcmp(a, b, na) == 0, "%.*s", (int)nb, (const char *)b + 8);
    free(a);
    free(b);
    same_tensors(in, out);
}
END_TEST

START_TEST(safetensors_select_retiles_offsets)
{
    uint8_t data[27] = {0};
    const char *in = st_file("sel.safetensors", st_header, data, sizeof data);
    const char *out = tu_write_temp("sel-out.safetensors", "", 0);
    graft_open_options o = GRAFT_OPEN_OPTIONS_INIT;
    graft_model *m = NULL;
    self_fill f = {{emit_self, NULL}, NULL, false};
    o.select = "w";
    ck_assert_int_eq(graft_model_open(&m, in, &o, ctx), 0);
    ck_assert_uint_eq(graft_model_count(m), 1);
    f.m = m;
    ck_assert_msg(m->format->write(m, out, &f.base, ctx) == 0, "%s", graft_ctx_message(ctx));
    graft_model_free(m);
    ck_assert_msg(graft_model_open(&m, out, NULL, ctx) == 0, "%s", graft_ctx_message(ctx));
    ck_assert_str_eq(graft_model_tensor(m, 0)->name, "w");
    ck_assert_uint_eq(m->tensors[0].aux, 0);
    graft_model_free(m);
}
END_TEST

START_TEST(npy_and_npz_rewrite_round_trip)
{
    /* numpy 1.24's header for '<f4' (2, 3): 118 bytes of text, data at 128 */
    static const char npy_hdr[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    uint8_t file[128 + 24];
    memcpy(file, "\x93NUMPY\x01\x00\x76\x00", 10);
    memset(file + 10, ' ', 118);
    memcpy(file + 10, npy_hdr, strlen(npy_hdr));
    file[127] = '\n';
    for (int i = 0; i < 24; i++) file[128 + i] = (uint8_t)i;
    const char *in = tu_write_temp("arr.npy", file, sizeof file);
    const char *out = tu_write_temp("out.npy", "", 0);
    size_t n;
    ck_assert_msg(rewrite(in, out, false, ctx) == 0, "%s", graft_ctx_message(ctx));
    uint8_t *b = tu_read_file(out, &n);
    ck_assert_uint_eq(n, sizeof file);
    ck_assert(memcmp(b, file, n) == 0); /* the header numpy writes, byte for byte */
    free(b);
}
END_TEST

START_TEST(npz_writer_reads_back)
{
    /* write an npz from an npy skeleton's tensor through the npz writer */
    static const char npy_hdr[] = "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }";
    uint8_t file[128 + 12];
    graft_model *m = NULL;
    memcpy(file, "\x93NUMPY\x01\x00\x76\x00", 10);
    memset(file + 10, ' ', 118);
    memcpy(file + 10, npy_hdr, strlen(npy_hdr));
    file[127] = '\n';
    for (int i = 0; i < 6; i++) file[128 + 2 * i] = 0, file[129 + 2 * i] = (uint8_t)i;
    const char *in = tu_write_temp("f.npy", file, sizeof file);
    const char *out = tu_write_temp("f.npz", "", 0);
    self_fill f = {{emit_self, NULL}, NULL, false};
    ck_assert_int_eq(graft_model_open(&m, in, NULL, ctx), 0);
    f.m = m;
    ck_assert_msg(graft_format_find("npz")->write(m, out, &f.base, ctx) == 0, "%s",
                  graft_ctx_message(ctx));
    graft_model_free(m);
    same_tensors(in, out);
    ck_assert_int_eq(graft_model_open(&m, out, NULL, ctx), 0);
    ck_assert_str_eq(graft_model_format(m), "npz");
    ck_assert_str_eq(m->tensors[0].name, "f");
    const uint8_t *p;
    void *owned;
    ck_assert_int_eq(graft_tensor_bytes(m, &m->tensors[0], &p, &owned, ctx), 0);
    ck_assert_ptr_null(owned); /* stored, little-endian, C order: a plain view */
    const uint8_t want[12] = {0, 0, 2, 0, 4, 0, 1, 0, 3, 0, 5, 0};
    ck_assert(memcmp(p, want, 12) == 0);
    graft_model_free(m);
}
END_TEST

/* An .npz with one deflated member holding a big-endian Fortran-order array. */
static const char *deflated_npz(void)
{
    static const char hdr[] = "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }";
    uint8_t npy[128 + 12];
    const char *path = tu_write_temp("d.npz", "", 0);
    graft_sink *s;
    graft_zipw *w;
    memcpy(npy, "\x93NUMPY\x01\x00\x76\x00", 10);
    memset(npy + 10, ' ', 118);
    memcpy(npy + 10, hdr, strlen(hdr));
    npy[127] = '\n';
    for (int i = 0; i < 6; i++) npy[128 + 2 * i] = 0, npy[129 + 2 * i] = (uint8_t)i;
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    ck_assert_int_eq(graft_zipw_new(&w, s, false, ctx), 0);
    ck_assert_int_eq(graft_zipw_add(w, "a.npy", npy, sizeof npy, 0, GRAFT_ZIPW_DEFLATED), 0);
    ck_assert_int_eq(graft_zipw_finish(w), 0);
    graft_zipw_free(w);
    ck_assert_int_eq(graft_sink_commit(s), 0);
    return path;
}

START_TEST(npz_deflated_member_is_reordered)
{
    graft_model *m = NULL;
    const uint8_t *p;
    void *owned;
    const uint8_t want[12] = {0, 0, 2, 0, 4, 0, 1, 0, 3, 0, 5, 0};
    ck_assert_msg(graft_model_open(&m, deflated_npz(), NULL, ctx) == 0, "%s", graft_ctx_message(ctx));
    ck_assert_str_eq(m->tensors[0].name, "a");
    ck_assert_int_eq(graft_tensor_bytes(m, &m->tensors[0], &p, &owned, ctx), 0);
    ck_assert_ptr_nonnull(owned);
    ck_assert(memcmp(p, want, 12) == 0);
    free(owned);
    graft_model_free(m);
}
END_TEST

/* Open a model and hash every tensor (reading each one). */
static int open_and_hash(graft_ctx *c, void *payload)
{
    graft_model *m = NULL;
    uint8_t digest[32];
    int rc = graft_model_open(&m, payload, NULL, c);
    for (size_t i = 0; rc == 0 && i < graft_model_count(m); i++)
        rc = graft_tensor_sha256(m, graft_model_tensor(m, i), digest, c);
    graft_model_free(m);
    return rc;
}

START_TEST(open_allocation_failures_are_clean)
{
    uint8_t data[27] = {0};
    const char *files[3];
    files[0] = st_file("oom-00001.safetensors", st_header, data, sizeof data);
    files[1] = deflated_npz();
    files[2] = tu_write_temp("oom.safetensors.index.json",
                             "{\"metadata\":{},\"weight_map\":{\"w\":\"oom-00001.safetensors\","
                             "\"s\":\"oom-00001.safetensors\",\"e\":\"oom-00001.safetensors\","
                             "\"b\":\"oom-00001.safetensors\"}}", 142);
    for (int f = 0; f < 3; f++)
        ck_assert_int_gt(tu_each_alloc_failure(ctx, open_and_hash, (void *)files[f]), 0);
}
END_TEST

static Suite *npz_suite(void)
{
    Suite *s = suite_create("npz");
    TCase *tc = tcase_create("npz");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, safetensors_rewrite_is_byte_identical);
    tcase_add_test(tc, safetensors_select_retiles_offsets);
    tcase_add_test(tc, npy_and_npz_rewrite_round_trip);
    tcase_add_test(tc, npz_writer_reads_back);
    tcase_add_test(tc, npz_deflated_member_is_reordered);
    tcase_add_test(tc, open_allocation_failures_are_clean);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "rewrite")) { /* helper mode for the interop test */
        graft_ctx *c = graft_ctx_new();
        int rc = rewrite(argv[2], argv[3], argc > 4 && !strcmp(argv[4], "reverse"), c);
        if (rc < 0) fprintf(stderr, "test_npz: %s\n", graft_ctx_message(c));
        graft_ctx_free(c);
        return rc < 0;
    }
    return tu_run(npz_suite());
}
