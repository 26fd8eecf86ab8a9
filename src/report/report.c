/*
 * report.c - graft_plan_html (graft.h): one self-contained HTML page about a
 * plan.  The page is the template src/report/report.html (embedded at build
 * time by embed.py as graft_report__html) with the plan's data put in place
 * of its one marker, as JSON inside <script type="application/json">:
 *
 *   {"kind": "plan" | "diff", "title", "command", "version", "low", "bins",
 *    "sides": [source, target], each {"path", "format", "tensors": [{"n":
 *      name, "d": dtype, "s": shape, "role", "layout", "certainty" (...the
 *      members of graft_model_json), "st": status, "e": [entries it is in],
 *      "x": stats or null}]},
 *    "entries": [{"t": target index, "src": [source indices], "st": status,
 *      "ps": plan status, "m": message, "ops": [op JSON], "pair", "tf":
 *      "file:line" or null, "trace": graft_plan_explain text, "conf": 0..1
 *      and "note" (when given), "diff": null | {"abs", "rel", "eq", "n"} |
 *      {"err"}}],
 *    "findings": [layout findings as in graft_plan_json], "problems":
 *      [{"m", "error"}]}
 *
 * Statuses: ok, missing, unused, ignored, mismatch, layout (a layout finding
 * names the target), lowconf (confidence below the threshold).  A source
 * tensor takes the worst status of the entries it feeds, "unused" when it
 * feeds none, "ignored" when an ignore rule left it out.  Every '<' of the
 * data is written \u003c, so no name can close the script element.
 */
#include "graft.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "layout_json.h"
#include "lcheck.h"
#include "op_json.h"
#include "rules.h"
#include "sink.h"

extern const char graft_report__html[];
extern const size_t graft_report__html_len;

#define MARKER "@GRAFT_DATA@"

typedef enum { ST_OK, ST_LOWCONF, ST_IGNORED, ST_LAYOUT, ST_UNUSED, ST_MISSING, ST_MISMATCH } st;
static const char *const st_name[] = {"ok",     "lowconf", "ignored", "layout",
                                      "unused", "missing", "mismatch"};

typedef struct report {
    const graft_plan *p;  /* as given (the getters, explain, diff) */
    const graft_plan *q;  /* the plan the entries are in (p->sub or p) */
    const graft_report_options *o;
    st *entry_st;         /* per entry */
    st *source_st;        /* per source tensor */
    size_t *feed_at;      /* source s feeds entries feeds[feed_at[s] .. + feed_n[s]) */
    size_t *feed_n;
    size_t *feeds;
    graft_jsonw w;
    graft_ctx *ctx;
} report;

static void str(graft_jsonw *w, const char *s)
{
    if (s)
        graft_jsonw_string(w, s, strlen(s));
    else
        graft_jsonw_printf(w, "null");
}

/* A number JSON can hold, or the string JavaScript's Number() reads back. */
static void num(graft_jsonw *w, double x)
{
    if (isfinite(x))
        graft_jsonw_printf(w, "%.9g", x);
    else
        graft_jsonw_printf(w, isnan(x) ? "\"NaN\"" : x > 0 ? "\"Infinity\"" : "\"-Infinity\"");
}

static st entry_status(const report *r, size_t i)
{
    const graft_plan_entry *e = &r->q->entries[i];
    double low = r->o->low_confidence > 0 ? r->o->low_confidence : 0.5;
    switch (e->status) {
    case GRAFT_PLAN_OK:
        if (r->o->confidence && r->o->confidence[i] < low) return ST_LOWCONF;
        return e->ignored ? ST_IGNORED : ST_OK;
    case GRAFT_PLAN_KEPT: /* policy keep: no source, or a mismatch kept */
        return e->ignored ? ST_IGNORED : e->nsources ? ST_MISMATCH : ST_MISSING;
    case GRAFT_PLAN_MISSING: return e->ignored ? ST_IGNORED : ST_MISSING;
    default: return ST_MISMATCH;
    }
}

/* Which entries each source tensor feeds, in entry order, each once. */
static int feeding(report *r)
{
    const graft_plan *q = r->q;
    size_t ns = q->source->count;
    r->feed_at = graft_calloc(r->ctx, ns + 1, sizeof *r->feed_at);
    r->feed_n = graft_calloc(r->ctx, ns ? ns : 1, sizeof *r->feed_n);
    if (!r->feed_at || !r->feed_n) return graft_error_oom(r->ctx, "report links");
    for (size_t i = 0; i < q->nentries; i++)
        for (size_t k = 0; k < q->entries[i].nsources; k++) r->feed_at[q->entries[i].sources[k] + 1]++;
    for (size_t s = 0; s < ns; s++) r->feed_at[s + 1] += r->feed_at[s];
    r->feeds = graft_calloc(r->ctx, r->feed_at[ns] ? r->feed_at[ns] : 1, sizeof *r->feeds);
    if (!r->feeds) return graft_error_oom(r->ctx, "report links");
    for (size_t i = 0; i < q->nentries; i++)
        for (size_t k = 0; k < q->entries[i].nsources; k++) {
            size_t s = q->entries[i].sources[k], *at = r->feeds + r->feed_at[s];
            if (r->feed_n[s] == 0 || at[r->feed_n[s] - 1] != i) at[r->feed_n[s]++] = i;
        }
    return GRAFT_OK;
}

/* Statuses of every entry and source tensor (see the top of the file). */
static int statuses(report *r)
{
    const graft_plan *q = r->q;
    r->entry_st = graft_calloc(r->ctx, q->nentries ? q->nentries : 1, sizeof *r->entry_st);
    r->source_st = graft_calloc(r->ctx, q->source->count ? q->source->count : 1,
                                sizeof *r->source_st);
    if (!r->entry_st || !r->source_st) return graft_error_oom(r->ctx, "report statuses");
    for (size_t i = 0; i < q->nentries; i++) r->entry_st[i] = entry_status(r, i);
    for (size_t k = 0; k < q->ndiags; k++) {
        const graft_layout_finding *l = q->diags[k].layout;
        size_t i = l ? graft_plan_index(r->p, l->target) : SIZE_MAX;
        if (i < q->nentries && r->entry_st[i] < ST_LAYOUT) r->entry_st[i] = ST_LAYOUT;
    }
    GRAFT_TRY(feeding(r));
    for (size_t s = 0; s < q->source->count; s++) {
        r->source_st[s] = ST_IGNORED; /* feeds nothing, and not unused: an ignore rule */
        for (size_t k = 0; k < r->feed_n[s]; k++) {
            st e = r->entry_st[r->feeds[r->feed_at[s] + k]];
            if (k == 0 || e > r->source_st[s]) r->source_st[s] = e;
        }
    }
    for (size_t k = 0; k < q->nunused; k++) r->source_st[q->unused[k]] = ST_UNUSED;
    return GRAFT_OK;
}

static int stats_json(report *r, const graft_model *m, const graft_tensor *t)
{
    graft_stats s;
    graft_jsonw *w = &r->w;
    if (!r->o->stats) return GRAFT_OK;
    int rc = graft_tensor_statistics(m, t, &s, r->ctx);
    if (rc < 0) return graft_error_prefix(r->ctx, "%s: tensor '%s'", m->path, t->name);
    if (!s.numeric) return GRAFT_OK;
    graft_jsonw_printf(w, ", \"x\": {\"n\": %" PRIu64 ", \"nan\": %" PRIu64 ", \"inf\": %" PRIu64,
                       s.count, s.nan, s.inf);
    const char *keys[] = {"min", "max", "mean", "std"};
    const double vals[] = {s.min, s.max, s.mean, s.std};
    for (size_t i = 0; i < 4; i++) {
        graft_jsonw_printf(w, ", \"%s\": ", keys[i]);
        num(w, vals[i]);
    }
    graft_jsonw_printf(w, ", \"h\": [");
    for (size_t i = 0; i < GRAFT_STATS_BINS; i++)
        graft_jsonw_printf(w, "%s%" PRIu64, i ? "," : "", s.hist[i]);
    graft_jsonw_printf(w, "]}");
    return GRAFT_OK;
}

/* One side: its tensors with dtype, shape, role/layout, status and stats. */
static int side(report *r, const graft_model *m, bool target)
{
    graft_jsonw *w = &r->w;
    graft_jsonw_printf(w, "{\"path\": ");
    str(w, m->path);
    graft_jsonw_printf(w, ", \"format\": ");
    str(w, graft_model_format(m));
    graft_jsonw_printf(w, ", \"tensors\": [");
    for (size_t i = 0; i < m->count && w->rc == GRAFT_OK; i++) {
        const graft_tensor *t = &m->tensors[i];
        graft_jsonw_printf(w, i ? ",\n" : "\n");
        graft_jsonw_printf(w, "{\"n\": ");
        str(w, t->name);
        graft_jsonw_printf(w, ", \"d\": \"%s\", \"s\": [", graft_dtype_name(t->dtype));
        for (uint32_t d = 0; d < t->ndim; d++)
            graft_jsonw_printf(w, "%s%" PRId64, d ? "," : "", t->shape[d]);
        graft_jsonw_raw(w, "]", 1);
        graft_layout__json_members(w, m, t);
        graft_jsonw_printf(w, ", \"st\": \"%s\", \"e\": [",
                           st_name[target ? r->entry_st[i] : r->source_st[i]]);
        if (target)
            graft_jsonw_printf(w, "%zu", i);
        else
            for (size_t k = 0; k < r->feed_n[i]; k++)
                graft_jsonw_printf(w, "%s%zu", k ? "," : "", r->feeds[r->feed_at[i] + k]);
        graft_jsonw_raw(w, "]", 1);
        GRAFT_TRY(stats_json(r, m, t));
        graft_jsonw_raw(w, "}", 1);
    }
    graft_jsonw_printf(w, "]}");
    return w->rc;
}

static int diff_json(report *r, size_t i)
{
    const graft_plan_entry *e = &r->q->entries[i];
    graft_jsonw *w = &r->w;
    graft_diff_result d;
    int rc;
    if (!r->o->diff || !e->nsources) return GRAFT_OK;
    graft_jsonw_printf(w, ", \"diff\": ");
    if (e->status == GRAFT_PLAN_ERROR) {
        graft_jsonw_printf(w, "{\"err\": ");
        str(w, e->message);
        graft_jsonw_raw(w, "}", 1);
        return GRAFT_OK;
    }
    rc = graft_plan_diff(r->p, i, &d, r->ctx);
    if (rc == GRAFT_ESHAPE) { /* shapes disagree: the entry's finding */
        graft_jsonw_printf(w, "{\"err\": ");
        str(w, graft_ctx_message(r->ctx));
        graft_jsonw_raw(w, "}", 1);
        graft_ctx_clear(r->ctx);
        return GRAFT_OK;
    }
    if (rc < 0) return rc;
    graft_jsonw_printf(w, "{\"eq\": %s, \"n\": %" PRIu64, d.equal ? "true" : "false", d.numel);
    if (d.numeric) {
        graft_jsonw_printf(w, ", \"abs\": ");
        num(w, d.max_abs);
        graft_jsonw_printf(w, ", \"rel\": ");
        num(w, d.max_rel);
    }
    graft_jsonw_raw(w, "}", 1);
    return GRAFT_OK;
}

static int entry(report *r, size_t i)
{
    const graft_plan *q = r->q;
    const graft_plan_entry *e = &q->entries[i];
    graft_jsonw *w = &r->w;
    char *trace = NULL;
    int rc;

    graft_jsonw_printf(w, "{\"t\": %zu, \"src\": [", i);
    for (size_t k = 0; k < e->nsources; k++)
        graft_jsonw_printf(w, "%s%zu", k ? "," : "", e->sources[k]);
    graft_jsonw_printf(w, "], \"st\": \"%s\", \"ps\": \"%s\", \"m\": ", st_name[r->entry_st[i]],
                       graft_plan_status_name(e->status));
    str(w, e->message);
    graft_jsonw_printf(w, ", \"ops\": [");
    graft_op__json_chain(w, e->ops, e->nops);
    graft_jsonw_raw(w, "]", 1);
    if (e->pair) graft_jsonw_printf(w, ", \"pair\": \"%s:%u\"", e->pair->pos.file, e->pair->pos.line);
    if (e->transform)
        graft_jsonw_printf(w, ", \"tf\": \"%s:%u\"", e->transform->pos.file, e->transform->pos.line);
    if (r->o->confidence) {
        graft_jsonw_printf(w, ", \"conf\": ");
        num(w, r->o->confidence[i]);
    }
    if (r->o->notes && r->o->notes[i]) {
        graft_jsonw_printf(w, ", \"note\": ");
        str(w, r->o->notes[i]);
    }
    rc = graft_plan_explain(&trace, r->p, q->target->tensors[e->target].name, r->ctx);
    if (rc < 0) return graft_error_prefix(r->ctx, "explain '%s'", q->target->tensors[e->target].name);
    graft_jsonw_printf(w, ", \"trace\": ");
    str(w, trace);
    free(trace);
    GRAFT_TRY(diff_json(r, i));
    graft_jsonw_raw(w, "}", 1);
    return w->rc;
}

static int data(report *r)
{
    const graft_plan *q = r->q;
    graft_jsonw *w = &r->w;
    const char *kind = r->o->diff ? "diff" : "plan";

    graft_jsonw_printf(w, "{\"kind\": \"%s\", \"version\": \"%s\", \"title\": ", kind,
                       graft_version());
    str(w, r->o->title ? r->o->title : r->o->diff ? "graft diff" : "graft plan");
    graft_jsonw_printf(w, ", \"command\": ");
    str(w, r->o->command);
    graft_jsonw_printf(w, ", \"low\": ");
    num(w, r->o->low_confidence > 0 ? r->o->low_confidence : 0.5);
    graft_jsonw_printf(w, ", \"bins\": %d, \"errors\": %zu,\n\"sides\": [", GRAFT_STATS_BINS,
                       q->errors);
    GRAFT_TRY(side(r, q->source, false));
    graft_jsonw_printf(w, ",\n");
    GRAFT_TRY(side(r, q->target, true));
    graft_jsonw_printf(w, "],\n\"entries\": [");
    for (size_t i = 0; i < q->nentries; i++) {
        graft_jsonw_printf(w, i ? ",\n" : "\n");
        GRAFT_TRY(entry(r, i));
    }
    graft_jsonw_printf(w, "],\n\"findings\": [");
    for (size_t k = 0, n = 0; k < q->ndiags; k++) {
        if (!q->diags[k].layout) continue;
        graft_jsonw_printf(w, n++ ? ",\n" : "\n");
        graft_layout__finding_json(w, q->diags[k].layout, q->diags[k].message);
    }
    graft_jsonw_printf(w, "],\n\"problems\": [");
    for (size_t k = 0, n = 0; k < q->ndiags; k++) {
        if (q->diags[k].layout) continue;
        graft_jsonw_printf(w, n++ ? ",\n" : "\n");
        graft_jsonw_printf(w, "{\"error\": %s, \"m\": ",
                           q->diags[k].level == GRAFT_DIAG_ERROR ? "true" : "false");
        str(w, q->diags[k].message);
        graft_jsonw_raw(w, "}", 1);
    }
    graft_jsonw_printf(w, "]}");
    return w->rc;
}

/* The data into the page, each '<' as \u003c (only strings can hold one). */
static int write_data(graft_sink *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        const char *lt = memchr(p + i, '<', n - i);
        size_t run = lt ? (size_t)(lt - (p + i)) : n - i;
        GRAFT_TRY(graft_sink_write(s, p + i, run));
        i += run;
        if (lt) {
            GRAFT_TRY(graft_sink_write(s, "\\u003c", 6));
            i++;
        }
    }
    return GRAFT_OK;
}

static int write_page(report *r, const char *path)
{
    const char *tpl = graft_report__html, *at = strstr(tpl, MARKER);
    graft_sink *s = NULL;
    int rc;
    if (!at) return graft_error(r->ctx, GRAFT_ERROR, "report template: no " MARKER);
    GRAFT_TRY(graft_sink_open(&s, path, r->ctx));
    size_t head = (size_t)(at - tpl), tail = strlen(MARKER);
    if ((rc = graft_sink_write(s, tpl, head)) < 0 || (rc = write_data(s, r->w.p, r->w.len)) < 0 ||
        (rc = graft_sink_write(s, at + tail, graft_report__html_len - head - tail)) < 0) {
        graft_sink_abort(s);
        return rc;
    }
    return graft_sink_commit(s);
}

int graft_plan_html(const graft_plan *p, const char *path, const graft_report_options *opts,
                    graft_ctx *ctx)
{
    static const graft_report_options defaults = GRAFT_REPORT_OPTIONS_INIT;
    report r = {.p = p, .q = p->sub ? p->sub : p, .o = opts ? opts : &defaults, .ctx = ctx};
    int rc;

    /* Never over an input: the models or the rules. */
    GRAFT_TRY(graft_check_outputs(p, path, NULL, p->rules ? graft_rules_path(p->rules) : NULL, ctx));
    graft_jsonw_init(&r.w, ctx);
    if ((rc = statuses(&r)) == GRAFT_OK && (rc = data(&r)) == GRAFT_OK)
        rc = write_page(&r, path); /* the sink's messages name the path */
    graft_jsonw_free(&r.w);
    free(r.entry_st);
    free(r.source_st);
    free(r.feed_at);
    free(r.feed_n);
    free(r.feeds);
    return rc;
}
