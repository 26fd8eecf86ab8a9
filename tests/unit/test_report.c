/* test_report.c - graft_plan_html and graft_tensor_statistics (graft.h) as a
 * C user calls them: the confidence data source (what `suggest` gives),
 * statistics of a known tensor, refusing to write over an input, and every
 * allocation failure reported with no page left behind; and (model.h) the
 * statistics of a tensor streamed in pieces that split its elements.  (The
 * page itself is rendered in Chromium by tests/interop/test_html.py.) */
#include "graft.h"
#include "model.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static char pth[512], h5[512], rules18[512], tiny[512];
static graft_ctx *ctx;

static void setup(void)
{
    const char *root = getenv("GRAFT_SOURCE_ROOT");
    ck_assert_ptr_nonnull(root);
    snprintf(pth, sizeof pth, "%s/samples/resnet18_narrow.pth", root);
    snprintf(h5, sizeof h5, "%s/samples/resnet18_narrow_keras2.h5", root);
    snprintf(rules18, sizeof rules18, "%s/rules/torch-to-keras/resnet18.yaml", root);
    snprintf(tiny, sizeof tiny, "%s/samples/mlp_tiny.safetensors", root);
    ctx = graft_ctx_new();
    ck_assert_ptr_nonnull(ctx);
}

static void teardown(void)
{
    graft_ctx_free(ctx);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* One confidence per entry: those below the threshold are low-confidence on
 * the page (their statuses in its data), the others keep theirs. */
START_TEST(confidence_marks_low_confidence_entries)
{
    graft_rules *r = NULL;
    graft_plan *p = NULL;
    graft_report_options o = GRAFT_REPORT_OPTIONS_INIT;
    char page[600];
    size_t n;
    ck_assert_int_eq(graft_rules_load(&r, rules18, ctx), 0);
    ck_assert_int_eq(graft_plan_open(&p, r, pth, h5, NULL, ctx), 0);
    n = graft_plan_count(p);
    double *conf = calloc(n, sizeof *conf);
    const char **notes = calloc(n, sizeof *notes);
    for (size_t i = 0; i < n; i++) {
        conf[i] = i % 4 == 0 ? 0.2 : 0.9;
        notes[i] = i == 1 ? "paired by order </script> alone" : NULL;
    }
    o.confidence = conf;
    o.notes = notes;
    o.low_confidence = 0.5;
    o.title = "graft suggest";
    snprintf(page, sizeof page, "%s/conf.html", tu_temp_dir());
    ck_assert_int_eq(graft_plan_html(p, page, &o, ctx), 0);
    size_t len;
    char *text = (char *)tu_read_file(page, &len);
    ck_assert_ptr_nonnull(text);
    text = realloc(text, len + 1);
    text[len] = 0;
    /* the entry, its target and its one source */
    ck_assert_uint_eq(count(text, "\"st\": \"lowconf\""), 3 * ((n + 3) / 4));
    ck_assert_uint_eq(count(text, "\"conf\": 0.2"), (n + 3) / 4);
    ck_assert_ptr_nonnull(strstr(text, "\"title\": \"graft suggest\""));
    ck_assert_ptr_null(strstr(text, "http"));
    /* the note, its '<' escaped so it cannot close the data's script element */
    ck_assert_uint_eq(count(text, "\"note\": "), 1);
    ck_assert_ptr_nonnull(strstr(text, "\"note\": \"paired by order \\u003c/script> alone\""));
    ck_assert_uint_eq(count(text, "</script>"), 2);
    free(text);
    free(notes);
    free(conf);
    graft_plan_free(p);
    graft_rules_free(r);
}
END_TEST

START_TEST(the_page_never_replaces_an_input)
{
    graft_plan *p = NULL;
    struct stat before, after;
    ck_assert_int_eq(graft_plan_open(&p, NULL, tiny, tiny, NULL, ctx), 0);
    ck_assert_int_eq(stat(tiny, &before), 0);
    ck_assert_int_eq(graft_plan_html(p, tiny, NULL, ctx), GRAFT_EIO);
    ck_assert_ptr_nonnull(strstr(graft_ctx_message(ctx), "mlp_tiny.safetensors"));
    ck_assert_int_eq(stat(tiny, &after), 0);
    ck_assert(before.st_mtime == after.st_mtime && before.st_size == after.st_size);
    graft_plan_free(p);
}
END_TEST

/* 0, 1, ..., 11 as float32 in a safetensors file: known figures. */
START_TEST(statistics_of_a_known_tensor)
{
    static const char hdr[] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]}}";
    uint8_t buf[8 + sizeof hdr - 1 + 48];
    uint64_t hl = sizeof hdr - 1;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(hl >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    for (int i = 0; i < 12; i++) {
        float f = (float)i;
        memcpy(buf + 8 + hl + 4 * i, &f, 4);
    }
    const char *path = tu_write_temp("known.safetensors", buf, sizeof buf);
    graft_model *m = NULL;
    graft_stats s;
    ck_assert_int_eq(graft_model_open(&m, path, NULL, ctx), 0);
    ck_assert_int_eq(graft_tensor_statistics(m, graft_model_tensor(m, 0), &s, ctx), 0);
    ck_assert(s.numeric && s.count == 12 && s.nan == 0 && s.inf == 0);
    ck_assert(s.min == 0 && s.max == 11 && s.mean == 5.5);
    ck_assert(fabs(s.std - sqrt(143.0 / 12)) < 1e-12);
    /* numpy.histogram(arange(12), 32): bin width 11/32; value v in bin floor(v*32/11), 11 in the last */
    uint64_t total = 0;
    for (int b = 0; b < GRAFT_STATS_BINS; b++) total += s.hist[b];
    ck_assert_uint_eq(total, 12);
    for (int v = 0; v < 12; v++) {
        int b = v == 11 ? GRAFT_STATS_BINS - 1 : (int)(v * 32 / 11);
        ck_assert_uint_ge(s.hist[b], 1);
    }
    graft_model_free(m);
}
END_TEST

/* A decoded tensor: 1001 float64 values, whole (load) or in 7-byte pieces. */
#define NSTREAM 1001
static double streamed_value(size_t i)
{
    return sin((double)i) * 1e3 + (double)(i % 17);
}

static int load_all(const graft_model *m, const graft_tensor *t, uint8_t *dst, graft_ctx *c)
{
    (void)m, (void)c;
    for (size_t i = 0; i < t->numel; i++) {
        double v = streamed_value(i);
        memcpy(dst + 8 * i, &v, 8); /* little-endian host: the test machines */
    }
    return GRAFT_OK;
}

static int stream_7(const graft_model *m, const graft_tensor *t, graft_piece_fn fn, void *arg,
                    graft_ctx *c)
{
    uint8_t all[8 * NSTREAM];
    GRAFT_TRY(load_all(m, t, all, c));
    for (size_t off = 0; off < sizeof all; off += 7)
        GRAFT_TRY(fn(arg, all + off, sizeof all - off < 7 ? sizeof all - off : 7));
    return GRAFT_OK;
}

START_TEST(statistics_of_pieces_that_split_elements)
{
    graft_model *m = NULL;
    int64_t shape[] = {NSTREAM};
    graft_stats whole, pieces;
    ck_assert_int_eq(graft_model__new(&m, "streamed", ctx), 0);
    graft_tensor *t = graft_model__add(m, "x", 1, GRAFT_FLOAT64, 1, shape, ctx);
    ck_assert_ptr_nonnull(t);
    t->load = load_all;
    ck_assert_int_eq(graft_model_validate(m, ctx), 0);
    t = &m->tensors[0];
    ck_assert_int_eq(graft_tensor_statistics(m, t, &whole, ctx), 0);
    t->stream = stream_7;
    ck_assert_int_eq(graft_tensor_statistics(m, t, &pieces, ctx), 0);
    double lo = INFINITY, hi = -INFINITY, sum = 0, sq = 0;
    for (size_t i = 0; i < NSTREAM; i++) {
        double v = streamed_value(i);
        lo = fmin(lo, v), hi = fmax(hi, v), sum += v;
    }
    for (size_t i = 0; i < NSTREAM; i++) sq += pow(streamed_value(i) - sum / NSTREAM, 2);
    const graft_stats *both[] = {&whole, &pieces};
    for (int k = 0; k < 2; k++) {
        const graft_stats *s = both[k];
        ck_assert(s->count == NSTREAM && s->min == lo && s->max == hi);
        ck_assert(fabs(s->mean - sum / NSTREAM) < 1e-9 && fabs(s->std - sqrt(sq / NSTREAM)) < 1e-9);
    }
    ck_assert_mem_eq(whole.hist, pieces.hist, sizeof whole.hist);
    uint64_t total = 0;
    for (int b = 0; b < GRAFT_STATS_BINS; b++) total += pieces.hist[b];
    ck_assert_uint_eq(total, NSTREAM);
    graft_model_free(m);
}
END_TEST

static int page_once(graft_ctx *c, void *payload)
{
    const char *out = payload;
    graft_report_options o = GRAFT_REPORT_OPTIONS_INIT;
    graft_plan *p = NULL;
    struct stat st;
    double conf[64];
    int rc;
    if ((rc = graft_plan_open(&p, NULL, tiny, tiny, NULL, c)) < 0) return rc;
    for (size_t i = 0; i < 64; i++) conf[i] = 0.25;
    o.stats = o.diff = true;
    o.confidence = graft_plan_count(p) <= 64 ? conf : NULL;
    rc = graft_plan_html(p, out, &o, c);
    if (rc < 0) ck_assert_int_ne(stat(out, &st), 0); /* no page after a failure */
    unlink(out);
    graft_plan_free(p);
    return rc;
}

START_TEST(every_allocation_failure_is_reported)
{
    char out[600];
    snprintf(out, sizeof out, "%s/oom.html", tu_temp_dir());
    ck_assert_int_gt(tu_each_alloc_failure(ctx, page_once, out), 0);
}
END_TEST

static Suite *report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("report");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, confidence_marks_low_confidence_entries);
    tcase_add_test(tc, the_page_never_replaces_an_input);
    tcase_add_test(tc, statistics_of_a_known_tensor);
    tcase_add_test(tc, statistics_of_pieces_that_split_elements);
    tcase_add_test(tc, every_allocation_failure_is_reported);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(report_suite());
}
