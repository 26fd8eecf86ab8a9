/* test_tf.c - TensorFlow table, checkpoint V2, SavedModel and GraphDef formats. */
#include "testutil.h"

#include "error.h"
#include "format.h"
#include "rd.h"
#include "sink.h"
#include "tf_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static graft_ctx *ctx;
static void setup(void) { ctx = graft_ctx_new(); }
static void teardown(void) { graft_ctx_free(ctx); }

static const char *fixtures(void)
{
    const char *f = getenv("GRAFT_FIXTURES");
    return f ? f : "../../shared/fixtures";
}

static const char *fx(const char *rel)
{
    static char paths[4][1024];
    static int slot;
    char *p = paths[slot++ % 4];
    snprintf(p, 1024, "%s/%s", fixtures(), rel);
    return p;
}

static char *tmp_path(const char *name)
{
    static char paths[8][1024];
    static int slot;
    char *p = paths[slot++ % 8];
    snprintf(p, 1024, "%s/%s", tu_temp_dir(), name);
    return p;
}

static bool same_file(const char *a, const char *b)
{
    size_t na, nb;
    uint8_t *pa = tu_read_file(a, &na), *pb = tu_read_file(b, &nb);
    bool same = pa && pb && na == nb && memcmp(pa, pb, na) == 0;
    if (!same) fprintf(stderr, "differ: %s (%zu) vs %s (%zu)\n", a, na, b, nb);
    free(pa);
    free(pb);
    return same;
}

static void copy(const char *from, const char *to)
{
    size_t n;
    uint8_t *p = tu_read_file(from, &n);
    FILE *f;
    ck_assert_ptr_nonnull(p);
    f = fopen(to, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
    free(p);
}

/* ---- fills ------------------------------------------------------------- */

typedef struct fill_ctx {
    graft_fill fill;
    const graft_model *m;
    float add;          /* added to every float32 element; 0 = identity */
    bool flip_strings;  /* change the last byte of every string tensor */
} fill_ctx;

static int emit(graft_fill *f, size_t i, graft_sink *out, graft_ctx *c)
{
    fill_ctx *fc = f->payload;
    const graft_tensor *t = graft_model_tensor(fc->m, i);
    const uint8_t *p;
    void *owned;
    int rc = graft_tensor_bytes(fc->m, t, &p, &owned, c);
    if (rc < 0) return rc;
    if (fc->add != 0 && graft_tensor_dtype(t) == GRAFT_FLOAT32) {
        for (uint64_t k = 0; k < graft_tensor_numel(t) && rc == 0; k++) {
            float v;
            memcpy(&v, p + 4 * k, 4);
            v += fc->add;
            rc = graft_sink_write(out, &v, 4);
        }
    } else if (fc->flip_strings && graft_tensor_dtype(t) == GRAFT_STRING &&
               graft_tensor_nbytes(t)) {
        /* a new value: the last byte of the last string changes */
        size_t n = (size_t)graft_tensor_nbytes(t);
        uint8_t last = p[n - 1] ^ 0x20;
        rc = graft_sink_write(out, p, n - 1);
        if (rc == 0) rc = graft_sink_write(out, &last, 1);
    } else {
        rc = graft_sink_write(out, p, (size_t)graft_tensor_nbytes(t));
    }
    free(owned);
    return rc;
}

static int write_with(const graft_model *m, const char *out, float add)
{
    /* +1 also gives string tensors a new value (the checkpoint test) */
    fill_ctx fc = {{emit, NULL}, m, add, add == 1.0f};
    fc.fill.payload = &fc;
    return m->format->write(m, out, &fc.fill, ctx);
}

static graft_model *open_ok(const char *path)
{
    graft_model *m = NULL;
    int rc = graft_model_open(&m, path, NULL, ctx);
    if (rc < 0) fprintf(stderr, "%s\n", graft_ctx_message(ctx));
    ck_assert_int_eq(rc, 0);
    return m;
}

/* ---- CRC and table ----------------------------------------------------- */

START_TEST(mask_matches_spec_vectors)
{
    ck_assert_uint_eq(graft_crc32c(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(graft_tf_mask(0xE3069283u), 0xC78AB0E5u);
    ck_assert_uint_eq(graft_tf_unmask(0xC78AB0E5u), 0xE3069283u);
    ck_assert_uint_eq(graft_tf_mask(0), 0xA282EAD8u);
}
END_TEST

/* Keys k0000.. with values of varying size through writer then reader. */
static void table_round_trip(size_t nkeys, size_t block_size, bool snappy)
{
    graft_tf_table_options o = GRAFT_TF_TABLE_OPTIONS_INIT;
    graft_tf_table_writer *w = NULL;
    graft_tf_table *t = NULL;
    graft_sink *s = NULL;
    const char *path = tmp_path("t.table");
    uint8_t *data;
    size_t n;
    char key[32], val[300];

    o.block_size = block_size;
    o.snappy = snappy;
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    ck_assert_int_eq(graft_tf_table_writer_new(&w, s, &o, ctx), 0);
    for (size_t i = 0; i < nkeys; i++) {
        size_t vl = (i * 37) % sizeof val;
        snprintf(key, sizeof key, "layer%03zu/kernel%zu", i / 3, i % 3);
        memset(val, 'a' + (int)(i % 26), vl);
        ck_assert_int_eq(graft_tf_table_add(w, key, strlen(key), val, vl), 0);
    }
    ck_assert_int_eq(graft_tf_table_finish(w), 0);
    graft_tf_table_writer_free(w);
    ck_assert_int_eq(graft_sink_commit(s), 0);
    data = tu_read_file(path, &n);
    ck_assert_int_eq(graft_tf_table_open(&t, data, n, ctx), 0);
    ck_assert_uint_eq(t->count, nkeys);
    ck_assert(t->snappy == (snappy && nkeys > 0));
    for (size_t i = 0; i < nkeys; i++) {
        size_t vl = (i * 37) % sizeof val;
        snprintf(key, sizeof key, "layer%03zu/kernel%zu", i / 3, i % 3);
        ck_assert_str_eq(t->kv[i].key, key);
        ck_assert_uint_eq(t->kv[i].val_len, vl);
        for (size_t k = 0; k < vl; k++) ck_assert_int_eq(t->kv[i].val[k], 'a' + (int)(i % 26));
    }
    graft_tf_table_free(t);
    free(data);
}

START_TEST(table_round_trips_one_and_many_blocks)
{
    table_round_trip(0, 262144, false);
    table_round_trip(1, 262144, false);
    table_round_trip(500, 262144, false);
    table_round_trip(500, 256, false);   /* many blocks, separators */
    table_round_trip(500, 256, true);    /* Snappy blocks */
    table_round_trip(40, 1, false);      /* one entry per block */
}
END_TEST

START_TEST(table_reproduces_spec_worked_example_layout)
{
    /* An empty table: empty metaindex and index blocks plus the footer. */
    graft_tf_table_options o = GRAFT_TF_TABLE_OPTIONS_INIT;
    graft_tf_table_writer *w = NULL;
    graft_sink *s = NULL;
    const char *path = tmp_path("empty.table");
    static const uint8_t expect[] = {
        0, 0, 0, 0, 1, 0, 0, 0, 0, 0xc0, 0xf2, 0xa1, 0xb0, /* metaindex block */
        0, 0, 0, 0, 1, 0, 0, 0, 0, 0xc0, 0xf2, 0xa1, 0xb0, /* index block */
    };
    uint8_t *data;
    size_t n;
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    ck_assert_int_eq(graft_tf_table_writer_new(&w, s, &o, ctx), 0);
    ck_assert_int_eq(graft_tf_table_finish(w), 0);
    graft_tf_table_writer_free(w);
    ck_assert_int_eq(graft_sink_commit(s), 0);
    data = tu_read_file(path, &n);
    ck_assert_uint_eq(n, sizeof expect + 48);
    ck_assert_mem_eq(data, expect, sizeof expect);
    ck_assert_uint_eq(data[26], 0);  /* metaindex handle (0, 8) */
    ck_assert_uint_eq(data[27], 8);
    ck_assert_uint_eq(data[28], 13); /* index handle (13, 8) */
    ck_assert_uint_eq(data[29], 8);
    ck_assert_uint_eq(graft_le64(data + n - 8), GRAFT_TF_TABLE_MAGIC);
    free(data);
}
END_TEST

/* ---- checkpoints --------------------------------------------------------- */

static const char *const checkpoints[][3] = {
    /* fixture folder, prefix, number of shards */
    {"tf_ckpt_v2/tf1_estimator_linear_sharded_partitioned", "model.ckpt-5000", "2"},
    {"tf_ckpt_v2/tf2_keras_cp0000_object_based", "cp-0000.ckpt", "1"},
    {"tf_ckpt_v2/tf2onnx_regression_ckpt", "model", "1"},
    {"savedmodel/serving_counter/variables", "variables", "1"},
    {"savedmodel/serving_half_plus_two_cpu/variables", "variables", "1"},
    {"savedmodel/serving_half_plus_two_mkl/variables", "variables", "1"},
    {"savedmodel/serving_half_plus_two_tf2_cpu/variables", "variables", "1"},
    {"savedmodel/serving_tf_text_regression_keras/variables", "variables", "1"},
    {"savedmodel/tf2onnx_regression/variables", "variables", "1"},
    {"savedmodel/tfrust_keras_single_input/variables", "variables", "1"},
    {"savedmodel/tfrust_regression_savedmodel/variables", "variables", "1"},
};

START_TEST(identity_round_trip_is_byte_exact)
{
    const char *const *c = checkpoints[_i];
    char in[1024], out[1024], a[1100], b[1100];
    int shards = atoi(c[2]);
    graft_model *m;
    snprintf(in, sizeof in, "%s/%s/%s.index", fixtures(), c[0], c[1]);
    snprintf(out, sizeof out, "%s/rt%d/%s", tu_temp_dir(), _i, c[1]);
    snprintf(a, sizeof a, "%s/rt%d", tu_temp_dir(), _i);
    mkdir(a, 0755);
    m = open_ok(in);
    ck_assert_str_eq(graft_model_format(m), "tf-checkpoint");
    ck_assert_int_eq(write_with(m, out, 0), 0);
    snprintf(b, sizeof b, "%s.index", out);
    ck_assert(same_file(in, b));
    for (int s = 0; s < shards; s++) {
        snprintf(a, sizeof a, "%s/%s/%s.data-%05d-of-%05d", fixtures(), c[0], c[1], s, shards);
        snprintf(b, sizeof b, "%s.data-%05d-of-%05d", out, s, shards);
        ck_assert(same_file(a, b));
    }
    snprintf(a, sizeof a, "%s/rt%d/checkpoint", tu_temp_dir(), _i);
    ck_assert(access(a, F_OK) == 0);
    graft_model_free(m);
}
END_TEST

START_TEST(changed_values_are_written_with_new_crcs)
{
    graft_model *m = open_ok(fx("tf_ckpt_v2/tf2_keras_cp0000_object_based/cp-0000.ckpt.index"));
    graft_model *n;
    char out[1024];
    snprintf(out, sizeof out, "%s/plus1", tu_temp_dir());
    ck_assert_int_eq(write_with(m, out, 1.0f), 0);
    snprintf(out, sizeof out, "%s/plus1.index", tu_temp_dir());
    n = open_ok(out); /* open verifies every CRC */
    ck_assert_uint_eq(graft_model_count(n), graft_model_count(m));
    for (size_t i = 0; i < graft_model_count(m); i++) {
        const graft_tensor *t = graft_model_tensor(m, i), *u = graft_model_tensor(n, i);
        const uint8_t *p, *q;
        void *o1, *o2;
        ck_assert_str_eq(graft_tensor_name(t), graft_tensor_name(u));
        ck_assert_int_eq(graft_tensor_bytes(m, t, &p, &o1, ctx), 0);
        ck_assert_int_eq(graft_tensor_bytes(n, u, &q, &o2, ctx), 0);
        if (graft_tensor_dtype(t) == GRAFT_FLOAT32) {
            for (uint64_t k = 0; k < graft_tensor_numel(t); k += 97) {
                float x, y;
                memcpy(&x, p + 4 * k, 4);
                memcpy(&y, q + 4 * k, 4);
                ck_assert_float_eq(y, x + 1.0f);
            }
        } else if (graft_tensor_dtype(t) == GRAFT_STRING) {
            size_t nb = (size_t)graft_tensor_nbytes(t);
            ck_assert_mem_eq(p, q, nb - 1);
            ck_assert_uint_eq(q[nb - 1], p[nb - 1] ^ 0x20);
        } else {
            ck_assert_mem_eq(p, q, (size_t)graft_tensor_nbytes(t));
        }
        free(o1);
        free(o2);
    }
    graft_model_free(n);
    graft_model_free(m);
}
END_TEST

START_TEST(folder_with_state_file_opens_the_named_prefix)
{
    graft_model *m = open_ok(fx("tf_ckpt_v2/tf1_estimator_linear_sharded_partitioned"));
    ck_assert_uint_eq(graft_model_count(m), 40);
    ck_assert_ptr_nonnull(graft_model_find(m, "global_step"));
    graft_model_free(m);
    /* this state file names cp-0050.ckpt, which is not there */
    ck_assert_int_eq(graft_model_open(&m, fx("tf_ckpt_v2/tf2_keras_cp0000_object_based"), NULL,
                                      ctx), GRAFT_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "cp-0050.ckpt"));
}
END_TEST

/* A private copy of a fixture checkpoint, for corruption. */
static const char *copy_ckpt(const char *dir, const char *prefix, int shards, const char *to)
{
    static char index[1024];
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/%s", tu_temp_dir(), to);
    mkdir(a, 0755);
    for (int s = 0; s < shards; s++) {
        snprintf(a, sizeof a, "%s/%s/%s.data-%05d-of-%05d", fixtures(), dir, prefix, s, shards);
        snprintf(b, sizeof b, "%s/%s/%s.data-%05d-of-%05d", tu_temp_dir(), to, prefix, s, shards);
        copy(a, b);
    }
    snprintf(a, sizeof a, "%s/%s/%s.index", fixtures(), dir, prefix);
    snprintf(index, sizeof index, "%s/%s/%s.index", tu_temp_dir(), to, prefix);
    copy(a, index);
    return index;
}

static void poke(const char *path, long off, uint8_t xor_with)
{
    FILE *f = fopen(path, "r+b");
    int c;
    ck_assert_ptr_nonnull(f);
    fseek(f, off, off < 0 ? SEEK_END : SEEK_SET);
    c = fgetc(f);
    fseek(f, off, off < 0 ? SEEK_END : SEEK_SET);
    fputc(c ^ xor_with, f);
    fclose(f);
}

static void expect_error(const char *path, int code, const char *needle)
{
    graft_model *m = NULL;
    int rc = graft_model_open(&m, path, NULL, ctx);
    if (rc != code || !strstr(graft_ctx_message(ctx), needle))
        fprintf(stderr, "got %d '%s', wanted %d '%s'\n", rc, graft_ctx_message(ctx), code,
                needle);
    ck_assert_int_eq(rc, code);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), needle));
    ck_assert_ptr_null(strchr(graft_ctx_message(ctx), '\n'));
    ck_assert_ptr_null(m);
}

START_TEST(one_flipped_data_byte_is_named)
{
    const char *dir = "tf_ckpt_v2/tf1_estimator_linear_sharded_partitioned";
    const char *idx = copy_ckpt(dir, "model.ckpt-5000", 2, "crc");
    char data[1024];
    snprintf(data, sizeof data, "%s/crc/model.ckpt-5000.data-00001-of-00002", tu_temp_dir());
    poke(data, 40, 0x01); /* Country_indicator/weights is at [36, 204) */
    expect_error(idx, GRAFT_ECORRUPT,
                 "tensor 'linear/linear_model/Country_indicator/weights': CRC-32C mismatch");
}
END_TEST

START_TEST(malformed_indexes_give_clear_errors)
{
    const char *dir = "tf_ckpt_v2/tf2onnx_regression_ckpt";
    const char *idx = copy_ckpt(dir, "model", 1, "bad");
    size_t n;
    uint8_t *orig = tu_read_file(idx, &n);
    FILE *f;

    poke(idx, -1, 0xff);
    expect_error(idx, GRAFT_EFORMAT, "bad magic number");
    copy(fx("tf_ckpt_v2/tf2onnx_regression_ckpt/model.index"), idx);
    poke(idx, 5, 0x10); /* inside the data block */
    expect_error(idx, GRAFT_ECORRUPT, "checksum mismatch");
    copy(fx("tf_ckpt_v2/tf2onnx_regression_ckpt/model.index"), idx);
    poke(idx, -45, 0x40); /* index handle's size: block runs past the end */
    expect_error(idx, GRAFT_ECORRUPT, "outside the");
    /* truncated: the footer is gone */
    f = fopen(idx, "wb");
    fwrite(orig, 1, 40, f);
    fclose(f);
    expect_error(idx, GRAFT_ECORRUPT, "too short for a table");
    /* truncated data file: offsets past its end */
    copy(fx("tf_ckpt_v2/tf2onnx_regression_ckpt/model.index"), idx);
    {
        char data[1024];
        snprintf(data, sizeof data, "%s/bad/model.data-00000-of-00001", tu_temp_dir());
        size_t dn;
        uint8_t *d = tu_read_file(data, &dn);
        f = fopen(data, "wb");
        fwrite(d, 1, 4, f); /* keep W, cut b */
        fclose(f);
        free(d);
        expect_error(idx, GRAFT_ECORRUPT, "tensor 'b': data [4, 8) lies past the end");
    }
    free(orig);
}
END_TEST

/* A data shard that is a FIFO is refused, not read (issue 18, item 4). */
START_TEST(data_shard_fifo_is_refused)
{
    const char *idx = copy_ckpt("tf_ckpt_v2/tf2onnx_regression_ckpt", "model", 1, "fifo");
    char data[1100];
    snprintf(data, sizeof data, "%s/fifo/model.data-00000-of-00001", tu_temp_dir());
    ck_assert_int_eq(unlink(data), 0);
    ck_assert_int_eq(mkfifo(data, 0600), 0);
    alarm(20); /* a hang fails the test instead of the suite's timeout */
    expect_error(idx, GRAFT_EFORMAT, "model.data-00000-of-00001: not a regular file (a FIFO)");
    alarm(0);
}
END_TEST

/* An index written by our table writer from hand-made entries. */
static const char *make_index_with(const char *name, const uint8_t *header, size_t hn,
                                   const uint8_t *entry, size_t n)
{
    graft_tf_table_options o = GRAFT_TF_TABLE_OPTIONS_INIT;
    graft_tf_table_writer *w = NULL;
    graft_sink *s = NULL;
    char *path = tmp_path(name), data[1100];
    snprintf(data, sizeof data, "%.*s.data-00000-of-00001", (int)(strlen(path) - 6), path);
    tu_write_temp("x", "0123456789abcdef", 16);
    copy(tmp_path("x"), data);
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    ck_assert_int_eq(graft_tf_table_writer_new(&w, s, &o, ctx), 0);
    ck_assert_int_eq(graft_tf_table_add(w, "", 0, header, hn), 0);
    ck_assert_int_eq(graft_tf_table_add(w, "w", 1, entry, n), 0);
    ck_assert_int_eq(graft_tf_table_finish(w), 0);
    graft_tf_table_writer_free(w);
    ck_assert_int_eq(graft_sink_commit(s), 0);
    return path;
}

static const char *make_index(const char *name, const uint8_t *entry, size_t n)
{
    static const uint8_t header[] = {0x08, 0x01, 0x1a, 0x02, 0x08, 0x01};
    return make_index_with(name, header, sizeof header, entry, n);
}

/* Shard counts and ids past 32 bits are reported as written, not as their
 * low 32 bits (2^40 shards read "0 shards"; issue 18, item 19). */
START_TEST(shard_counts_past_32_bits_are_reported_whole)
{
    /* num_shards = 2^40 */
    static const uint8_t many[] = {0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x1a, 0x02, 0x08, 0x01};
    static const uint8_t one[] = {0x08, 0x01, 0x1a, 0x02, 0x08, 0x01};
    /* float32 [4], shard_id = 2^40 + 1 */
    static const uint8_t entry[] = {0x08, 0x01, 0x12, 0x04, 0x12, 0x02, 0x08, 0x04, 0x18,
                                    0x81, 0x80, 0x80, 0x80, 0x80, 0x20, 0x28, 0x10};
    static const uint8_t fine[] = {0x08, 0x01, 0x12, 0x04, 0x12, 0x02, 0x08, 0x04, 0x28, 0x10};
    expect_error(make_index_with("many.index", many, sizeof many, fine, sizeof fine),
                 GRAFT_ECORRUPT, "header entry: 1099511627776 shards (1 to 100000 allowed)");
    expect_error(make_index_with("far.index", one, sizeof one, entry, sizeof entry),
                 GRAFT_ECORRUPT, "tensor 'w': shard 1099511627777, offset 0");
}
END_TEST

START_TEST(hostile_entries_are_rejected)
{
    /* float32 [2^40, 2^40]: the element count overflows */
    static const uint8_t huge[] = {0x08, 0x01, 0x12, 0x12, 0x12, 0x07, 0x08, 0x80, 0x80, 0x80,
                                   0x80, 0x80, 0x20, 0x12, 0x07, 0x08, 0x80, 0x80, 0x80, 0x80,
                                   0x80, 0x20, 0x28, 0x04};
    /* float32 [4] at offset 100 of a 16-byte data file */
    static const uint8_t past[] = {0x08, 0x01, 0x12, 0x04, 0x12, 0x02, 0x08, 0x04,
                                   0x20, 0x64, 0x28, 0x10};
    /* float32 [3] claiming 16 bytes */
    static const uint8_t size[] = {0x08, 0x01, 0x12, 0x04, 0x12, 0x02, 0x08, 0x03, 0x28, 0x10};
    /* shard 7 of 1 */
    static const uint8_t shard[] = {0x08, 0x01, 0x12, 0x00, 0x18, 0x07, 0x28, 0x04};
    /* negative dimension */
    static const uint8_t neg[] = {0x08, 0x01, 0x12, 0x0d, 0x12, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    /* not a protobuf */
    static const uint8_t junk[] = {0x0f, 0xff, 0xff};
    expect_error(make_index("huge.index", huge, sizeof huge), GRAFT_ELIMIT, "overflows");
    expect_error(make_index("past.index", past, sizeof past), GRAFT_ECORRUPT,
                 "tensor 'w': data [100, 116) lies past the end");
    expect_error(make_index("size.index", size, sizeof size), GRAFT_ECORRUPT,
                 "tensor 'w': stored size 16 bytes");
    expect_error(make_index("shard.index", shard, sizeof shard), GRAFT_ECORRUPT, "shard 7");
    expect_error(make_index("neg.index", neg, sizeof neg), GRAFT_ECORRUPT, "negative dimension");
    expect_error(make_index("junk.index", junk, sizeof junk), GRAFT_ECORRUPT,
                 "not a BundleEntryProto");
}
END_TEST

START_TEST(savedmodel_round_trip_copies_the_graph)
{
    const char *dir = fx("savedmodel/serving_half_plus_two_tf2_cpu");
    graft_model *m = open_ok(dir);
    char out[1024], a[1100], b[1100];
    ck_assert_str_eq(graft_model_format(m), "tf-savedmodel");
    ck_assert_uint_eq(graft_model_count(m), 4);
    snprintf(out, sizeof out, "%s/sm_out", tu_temp_dir());
    ck_assert_int_eq(write_with(m, out, 0), 0);
    snprintf(a, sizeof a, "%s/saved_model.pb", dir);
    snprintf(b, sizeof b, "%s/saved_model.pb", out);
    ck_assert(same_file(a, b));
    snprintf(a, sizeof a, "%s/variables/variables.index", dir);
    snprintf(b, sizeof b, "%s/variables/variables.index", out);
    ck_assert(same_file(a, b)); /* Snappy block reproduced too */
    /* the folder exists now: a second write must fail cleanly */
    ck_assert_int_lt(write_with(m, out, 0), 0);
    graft_model_free(m);
    m = open_ok(fx("savedmodel/serving_matrix_half_plus_two_noVars"));
    ck_assert_uint_eq(graft_model_count(m), 0);
    graft_model_free(m);
}
END_TEST

/* ---- GraphDef ---------------------------------------------------------------- */

static const char *const graphs[] = {
    "frozen_pb/tf1_encryptor_frozen_8x10/frozen_model.pb",
    "frozen_pb/tf2onnx_ae0/frozen.pb",
    "frozen_pb/tf2onnx_fc_layers/frozen.pb",
    "frozen_pb/tf2onnx_gru/frozen.pb",
    "frozen_pb/tf2onnx_lstm/frozen.pb",
    "frozen_pb/tf2onnx_regression/frozen.pb",
    "graphdef_pb/tfcr_tiny_variables_graph/graph.pb",
    "graphdef_pb/tfrust_regression_checkpoint_graph/model.pb",
    "tf_ckpt_v2/tf1_estimator_linear_sharded_partitioned/model.ckpt-5000.meta",
    "tf_ckpt_v2/tf2onnx_regression_ckpt/model.meta",
    "savedmodel/serving_counter/saved_model.pb",
    "savedmodel/serving_half_plus_two_mkl/saved_model.pb",
};

static void same_tensors(const graft_model *a, const graft_model *b, float add)
{
    ck_assert_uint_eq(graft_model_count(a), graft_model_count(b));
    for (size_t i = 0; i < graft_model_count(a); i++) {
        const graft_tensor *t = graft_model_tensor(a, i), *u = graft_model_tensor(b, i);
        const uint8_t *p, *q;
        void *o1, *o2;
        ck_assert_str_eq(graft_tensor_name(t), graft_tensor_name(u));
        ck_assert_int_eq(graft_tensor_dtype(t), graft_tensor_dtype(u));
        ck_assert_uint_eq(graft_tensor_ndim(t), graft_tensor_ndim(u));
        ck_assert_uint_eq(graft_tensor_nbytes(t), graft_tensor_nbytes(u));
        ck_assert_int_eq(graft_tensor_bytes(a, t, &p, &o1, ctx), 0);
        ck_assert_int_eq(graft_tensor_bytes(b, u, &q, &o2, ctx), 0);
        if (add != 0 && graft_tensor_dtype(t) == GRAFT_FLOAT32) {
            for (uint64_t k = 0; k < graft_tensor_numel(t); k++) {
                float x, y;
                memcpy(&x, p + 4 * k, 4);
                memcpy(&y, q + 4 * k, 4);
                ck_assert_float_eq(y, x + add);
            }
        } else {
            ck_assert_mem_eq(p, q, (size_t)graft_tensor_nbytes(t));
        }
        free(o1);
        free(o2);
    }
}

START_TEST(graph_identity_round_trip_is_byte_exact)
{
    const char *in = fx(graphs[_i]);
    const char *base = strrchr(graphs[_i], '/') + 1;
    char out[1024];
    graft_model *m = open_ok(in), *n;
    ck_assert_str_eq(graft_model_format(m), "tf-graphdef");
    snprintf(out, sizeof out, "%s/g%d-%s", tu_temp_dir(), _i, base);
    ck_assert_int_eq(write_with(m, out, 0), 0);
    ck_assert(same_file(in, out));
    n = open_ok(out);
    same_tensors(m, n, 0);
    graft_model_free(n);
    /* new values: every float Const + 0.5, whatever its encoding */
    snprintf(out, sizeof out, "%s/h%d-%s", tu_temp_dir(), _i, base);
    ck_assert_int_eq(write_with(m, out, 0.5f), 0);
    n = open_ok(out);
    same_tensors(m, n, 0.5f);
    graft_model_free(n);
    graft_model_free(m);
}
END_TEST

/* ---- allocation failures --------------------------------------------------- */

static const char *const alloc_inputs[] = {
    "tf_ckpt_v2/tf1_estimator_linear_sharded_partitioned/model.ckpt-5000.index",
    "frozen_pb/tf2onnx_regression/frozen.pb",
    "savedmodel/serving_counter/saved_model.pb",
};

static int count_files(const char *dir)
{
    char cmd[1200];
    FILE *p;
    int n = -1;
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    p = popen(cmd, "r");
    if (p && fscanf(p, "%d", &n) != 1) n = -1;
    if (p) pclose(p);
    return n;
}

static int open_once(graft_ctx *c, void *payload)
{
    graft_model *m = NULL;
    int rc = graft_model_open(&m, payload, NULL, c);
    if (rc < 0) ck_assert_ptr_null(m);
    graft_model_free(m);
    return rc;
}

typedef struct write_job {
    const graft_model *m;
    const char *dir, *out;
} write_job;

/* Write a copy; a failed write leaves no file (temporary or not) behind. */
static int write_once(graft_ctx *c, void *payload)
{
    write_job *j = payload;
    ck_assert_ptr_eq(c, ctx);  /* write_with reports into the suite's ctx */
    int rc = write_with(j->m, j->out, 0);
    if (rc < 0) ck_assert_int_eq(count_files(j->dir), 0);
    else {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'/*", j->dir);
        ck_assert_int_eq(system(cmd), 0);
    }
    return rc;
}

START_TEST(allocation_failures_are_reported_not_crashed)
{
    const char *in = fx(alloc_inputs[_i]);
    char dir[1024], out[1100];
    graft_model *m = NULL;
    snprintf(dir, sizeof dir, "%s/oom%d", tu_temp_dir(), _i);
    mkdir(dir, 0755);
    snprintf(out, sizeof out, "%s/out%s", dir, strstr(in, ".index") ? ".index" : strstr(in, ".pb") ? ".pb" : "");
    /* each allocation of opening, then of writing, fails in turn */
    ck_assert_int_gt(tu_each_alloc_failure(ctx, open_once, (void *)in), 0);
    m = open_ok(in);
    write_job job = {m, dir, out};
    ck_assert_int_gt(tu_each_alloc_failure(ctx, write_once, &job), 0);
    graft_model_free(m);
}
END_TEST

static Suite *tf_suite(void)
{
    Suite *s = suite_create("tf");
    TCase *tc = tcase_create("table");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 100); /* ASan on a shared machine; each test is ~1 s alone */
    tcase_add_test(tc, mask_matches_spec_vectors);
    tcase_add_test(tc, table_round_trips_one_and_many_blocks);
    tcase_add_test(tc, table_reproduces_spec_worked_example_layout);
    suite_add_tcase(s, tc);
    tc = tcase_create("checkpoint");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 100); /* ASan on a shared machine; each test is ~1 s alone */
    tcase_add_loop_test(tc, identity_round_trip_is_byte_exact, 0,
                        (int)(sizeof checkpoints / sizeof *checkpoints));
    tcase_add_test(tc, changed_values_are_written_with_new_crcs);
    tcase_add_test(tc, folder_with_state_file_opens_the_named_prefix);
    tcase_add_test(tc, one_flipped_data_byte_is_named);
    tcase_add_test(tc, malformed_indexes_give_clear_errors);
    tcase_add_test(tc, hostile_entries_are_rejected);
    tcase_add_test(tc, savedmodel_round_trip_copies_the_graph);
    tcase_add_test(tc, data_shard_fifo_is_refused);
    tcase_add_test(tc, shard_counts_past_32_bits_are_reported_whole);
    suite_add_tcase(s, tc);
    tc = tcase_create("graphdef");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 100); /* ASan on a shared machine; each test is ~1 s alone */
    tcase_add_loop_test(tc, graph_identity_round_trip_is_byte_exact, 0,
                        (int)(sizeof graphs / sizeof *graphs));
    tcase_add_loop_test(tc, allocation_failures_are_reported_not_crashed, 0,
                        (int)(sizeof alloc_inputs / sizeof *alloc_inputs));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(tf_suite());
}
