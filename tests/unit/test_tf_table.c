/* test_tf_table.c - the LevelDB table layer of TensorFlow checkpoints
 * (formats/tensorflow/tf_table.c): masked CRC-32C, reader and writer round
 * trips over one and many blocks, and the spec's worked example byte for byte. */
#include "testutil.h"

#include "error.h"
#include "rd.h"
#include "sink.h"
#include "tf_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static graft_ctx *ctx;
static void setup(void) { ctx = graft_ctx_new(); }
static void teardown(void) { graft_ctx_free(ctx); }

static char *tmp_path(const char *name)
{
    static char paths[8][1024];
    static int slot;
    char *p = paths[slot++ % 8];
    snprintf(p, 1024, "%s/%s", tu_temp_dir(), name);
    return p;
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

int main(void)
{
    Suite *s = suite_create("tf_table");
    TCase *tc = tcase_create("table");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 100); /* ASan on a shared machine; each test is ~1 s alone */
    tcase_add_test(tc, mask_matches_spec_vectors);
    tcase_add_test(tc, table_round_trips_one_and_many_blocks);
    tcase_add_test(tc, table_reproduces_spec_worked_example_layout);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
