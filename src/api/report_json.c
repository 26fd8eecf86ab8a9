/* report_json.c - what check, apply, freeze, convert and rules report, as
 * JSON (graft.h; schemas/cli/<command>.schema.json), through core/json.c's
 * one writer, and graft_plan_check (the findings of `graft check`). */
#include "graft.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json.h"
#include "rules.h"

static void str(graft_jsonw *w, const char *s)
{
    if (s)
        graft_jsonw_string(w, s, strlen(s));
    else
        graft_jsonw_raw(w, "null", 4);
}

/* `"key": "value"` with a leading ", " unless first. */
static void member(graft_jsonw *w, bool first, const char *key, const char *value)
{
    graft_jsonw_printf(w, "%s\"%s\": ", first ? "" : ", ", key);
    str(w, value);
}

static int finish(graft_jsonw *w, char **out)
{
    graft_jsonw_raw(w, "\n", 1);
    if (w->rc < 0) {
        int rc = w->rc;
        graft_jsonw_free(w);
        return rc;
    }
    *out = w->p;
    return GRAFT_OK;
}

/* ---- check ------------------------------------------------------------- */

typedef struct relay {
    graft_finding_fn fn;
    void *payload;
} relay;

static void one_to_one(const char *message, void *payload)
{
    relay *r = payload;
    r->fn("one-to-one", true, message, r->payload);
}

int graft_plan_check(const graft_plan *plan, graft_finding_fn fn, void *payload,
                     size_t *nproblems, graft_ctx *ctx)
{
    const graft_plan *p = plan->sub ? plan->sub : plan;
    relay r = {fn, payload};
    size_t bad = 0;
    *nproblems = 0;
    GRAFT_TRY(graft_plan_check_one_to_one(plan, one_to_one, &r, &bad, ctx));
    for (size_t i = 0; i < p->ndiags; i++)
        if (p->diags[i].level == GRAFT_DIAG_ERROR) fn("plan", true, p->diags[i].message, payload);
    for (size_t i = 0; i < p->nentries; i++)
        if (p->entries[i].message && p->entries[i].status != GRAFT_PLAN_KEPT)
            fn("entry", true, p->entries[i].message, payload);
    *nproblems = bad + p->errors;
    return GRAFT_OK;
}

typedef struct finding_writer {
    graft_jsonw *w;
    size_t n;
} finding_writer;

static void finding(const char *kind, bool is_error, const char *message, void *payload)
{
    finding_writer *f = payload;
    graft_jsonw_printf(f->w, "%s{\"kind\": \"%s\", \"severity\": \"%s\", \"message\": ",
                       f->n++ ? ",\n  " : "\n  ", kind, is_error ? "error" : "warning");
    str(f->w, message);
    graft_jsonw_raw(f->w, "}", 1);
}

int graft_check_json(char **out, const char *rules_path, const graft_rules *r,
                     const char *load_error, const graft_plan *p, graft_ctx *ctx)
{
    static const struct {
        const char *key;
        graft_rules_item item;
    } counts[] = {
        {"source_renames", GRAFT_RULES_SOURCE_RENAMES}, {"target_renames", GRAFT_RULES_TARGET_RENAMES},
        {"pairs", GRAFT_RULES_PAIRS},                   {"transforms", GRAFT_RULES_TRANSFORMS},
        {"source_ignores", GRAFT_RULES_SOURCE_IGNORES}, {"target_ignores", GRAFT_RULES_TARGET_IGNORES},
    };
    graft_jsonw w;
    finding_writer f = {&w, 0};
    size_t problems = 0;
    int rc;
    *out = NULL;
    graft_jsonw_init(&w, ctx);
    graft_jsonw_raw(&w, "{", 1);
    member(&w, true, "rules", rules_path);
    graft_jsonw_printf(&w, ", \"valid\": %s, \"counts\": ", r ? "true" : "false");
    if (r) {
        for (size_t i = 0; i < sizeof counts / sizeof *counts; i++)
            graft_jsonw_printf(&w, "%s\"%s\": %zu", i ? ", " : "{", counts[i].key,
                               graft_rules_count(r, counts[i].item));
        graft_jsonw_raw(&w, "}", 1);
    } else {
        graft_jsonw_raw(&w, "null", 4);
    }
    member(&w, false, "source", p ? graft_model_path(graft_plan_source(p)) : NULL);
    member(&w, false, "skeleton", p ? graft_model_path(graft_plan_skeleton(p)) : NULL);
    graft_jsonw_printf(&w, ",\n \"findings\": [");
    if (!r) {
        finding("load", true, load_error ? load_error : "cannot load the rules", &f);
        problems = 1;
    } else if (p && (rc = graft_plan_check(p, finding, &f, &problems, ctx)) < 0) {
        graft_jsonw_free(&w);
        return rc;
    }
    graft_jsonw_printf(&w, "%s],\n \"problems\": %zu", f.n ? "\n " : "", problems);
    if (p)
        graft_jsonw_printf(&w, ", \"targets\": %zu, \"sources\": %zu, \"one_to_one\": %s}",
                           graft_plan_count(p), graft_model_count(graft_plan_source(p)),
                           problems ? "false" : "true");
    else
        graft_jsonw_printf(&w, ", \"targets\": null, \"sources\": null, \"one_to_one\": null}");
    return finish(&w, out);
}

/* ---- apply, freeze, convert --------------------------------------------- */

static void model_ref(graft_jsonw *w, const char *key, const graft_model *m)
{
    graft_jsonw_printf(w, ", \"%s\": {", key);
    member(w, true, "path", graft_model_path(m));
    member(w, false, "format", graft_model_format(m));
    graft_jsonw_raw(w, "}", 1);
}

static void files(graft_jsonw *w, char **v)
{
    graft_jsonw_printf(w, ", \"files\": [");
    for (size_t i = 0; v[i]; i++) {
        if (i) graft_jsonw_printf(w, ", ");
        str(w, v[i]);
    }
    graft_jsonw_raw(w, "]", 1);
}

int graft_apply_json(char **out, const graft_plan *plan, const char *out_path,
                     const graft_apply_options *opts, const graft_apply_stats *st,
                     graft_ctx *ctx)
{
    const graft_plan *p = plan->sub ? plan->sub : plan;
    char **written = NULL;
    graft_jsonw w;
    int rc;
    *out = NULL;
    GRAFT_TRY(graft_plan_output_files(&written, plan, out_path, ctx));
    graft_jsonw_init(&w, ctx);
    graft_jsonw_raw(&w, "{", 1);
    member(&w, true, "output", out_path);
    member(&w, false, "format", graft_model_format(graft_plan_skeleton(plan)));
    files(&w, written);
    free(written);
    model_ref(&w, "source", graft_plan_source(plan));
    model_ref(&w, "skeleton", graft_plan_skeleton(plan));
    member(&w, false, "rules",
           opts && opts->rules_path ? opts->rules_path : p->rules ? graft_rules_path(p->rules) : NULL);
    member(&w, false, "manifest", opts ? opts->manifest : NULL);
    graft_jsonw_printf(&w, ", \"tensors\": %zu, \"transplanted\": %zu, \"kept\": %zu, "
                           "\"bytes\": %llu,\n \"entries\": [",
                       st->tensors, st->transplanted, st->kept, (unsigned long long)st->bytes);
    for (size_t i = 0; i < p->nentries; i++) {
        const graft_plan_entry *e = &p->entries[i];
        graft_jsonw_printf(&w, "%s{", i ? ",\n  " : "\n  ");
        member(&w, true, "target", p->target->tensors[e->target].name);
        graft_jsonw_printf(&w, ", \"status\": \"%s\", \"from\": [",
                           e->nsources && e->status == GRAFT_PLAN_OK ? "transplanted" : "kept");
        for (size_t k = 0; k < e->nsources && e->status == GRAFT_PLAN_OK; k++) {
            if (k) graft_jsonw_printf(&w, ", ");
            str(&w, p->source->tensors[e->sources[k]].name);
        }
        graft_jsonw_printf(&w, "], \"ops\": %zu}", e->status == GRAFT_PLAN_OK ? e->nops : 0);
    }
    graft_jsonw_printf(&w, "%s]}", p->nentries ? "\n " : "");
    rc = finish(&w, out);
    return rc;
}

int graft_freeze_json(char **out, const char *graph, const char *checkpoint,
                      const char *const *outputs, size_t noutputs, const char *out_path,
                      size_t nfrozen, graft_ctx *ctx)
{
    graft_jsonw w;
    *out = NULL;
    graft_jsonw_init(&w, ctx);
    graft_jsonw_raw(&w, "{", 1);
    member(&w, true, "output", out_path);
    graft_jsonw_printf(&w, ", \"format\": \"tf-graphdef\"");
    member(&w, false, "graph", graph);
    member(&w, false, "checkpoint", checkpoint);
    graft_jsonw_printf(&w, ", \"outputs\": [");
    for (size_t i = 0; i < noutputs; i++) {
        if (i) graft_jsonw_printf(&w, ", ");
        str(&w, outputs[i]);
    }
    graft_jsonw_printf(&w, "], \"frozen\": %zu}", nfrozen);
    return finish(&w, out);
}

int graft_convert_json(char **out, const char *source, const graft_convert_options *o,
                       const graft_convert_result *res, graft_ctx *ctx)
{
    graft_jsonw w;
    *out = NULL;
    graft_jsonw_init(&w, ctx);
    graft_jsonw_raw(&w, "{", 1);
    member(&w, true, "output", res->out_path);
    member(&w, false, "format", res->format);
    member(&w, false, "source", source);
    member(&w, false, "rules", o ? o->rules_path : NULL);
    member(&w, false, "manifest", o ? o->manifest : NULL);
    graft_jsonw_printf(&w, ", \"tensors\": %zu, \"bytes\": %llu, \"ignored\": %zu, "
                           "\"quantized\": %zu",
                       res->tensors, (unsigned long long)res->bytes, res->ignored, res->quantized);
    member(&w, false, "quantize", o && res->quantized ? o->quantize : NULL);
    graft_jsonw_printf(&w, ", \"dequantized\": %zu, \"dropped\": {\"count\": %llu, ",
                       res->dequantized, (unsigned long long)res->dropped.count);
    member(&w, true, "summary", res->dropped.summary);
    graft_jsonw_printf(&w, "}}");
    return finish(&w, out);
}

/* ---- rules -------------------------------------------------------------- */

int graft_rules_library_json(char **out, const graft_rules_library *lib, graft_ctx *ctx)
{
    static const struct {
        const char *key;
        graft_rules_field field;
    } fields[] = {
        {"name", GRAFT_RULES_FIELD_NAME},   {"direction", GRAFT_RULES_FIELD_DIRECTION},
        {"title", GRAFT_RULES_FIELD_TITLE}, {"description", GRAFT_RULES_FIELD_DESCRIPTION},
        {"path", GRAFT_RULES_FIELD_PATH},
    };
    graft_jsonw w;
    *out = NULL;
    graft_jsonw_init(&w, ctx);
    graft_jsonw_printf(&w, "{\"files\": [");
    for (size_t i = 0; i < graft_rules_library_count(lib); i++) {
        graft_jsonw_printf(&w, "%s{", i ? ",\n  " : "\n  ");
        for (size_t k = 0; k < sizeof fields / sizeof *fields; k++)
            member(&w, k == 0, fields[k].key, graft_rules_library_get(lib, i, fields[k].field));
        graft_jsonw_raw(&w, "}", 1);
    }
    graft_jsonw_printf(&w, "%s]}", graft_rules_library_count(lib) ? "\n " : "");
    return finish(&w, out);
}

int graft_rules_match_json(char **out, const graft_rules_library *lib,
                           const graft_rules_match *m, size_t n, graft_ctx *ctx)
{
    graft_jsonw w;
    *out = NULL;
    graft_jsonw_init(&w, ctx);
    graft_jsonw_printf(&w, "{\"matches\": [");
    for (size_t i = 0; i < n; i++) {
        graft_jsonw_printf(&w, "%s{", i ? ",\n  " : "\n  ");
        member(&w, true, "name", m[i].name);
        member(&w, false, "path", graft_rules_library_get(lib, m[i].entry, GRAFT_RULES_FIELD_PATH));
        graft_jsonw_printf(&w, ", \"filled\": %zu, \"targets\": %zu, \"unused\": %zu, "
                               "\"warnings\": %zu}",
                           m[i].filled, m[i].targets, m[i].unused, m[i].warnings);
    }
    graft_jsonw_printf(&w, "%s], \"files\": %zu}", n ? "\n " : "", graft_rules_library_count(lib));
    return finish(&w, out);
}
