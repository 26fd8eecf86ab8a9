/* apply_api.c - applying a plan (graft.h): the output checks, the plan as
 * apply items (a reversed `select:` plan onto the whole skeleton), the
 * write with progress, cancel and manifest, and diffing one entry. */
#include "graft.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apply.h"
#include "error.h"
#include "rules.h"

static bool same_file(const char *a, const char *b)
{
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

int graft_default_output(char **out, const char *skeleton, graft_ctx *ctx)
{
    return graft_apply_default_output(out, skeleton, ctx);
}

int graft_check_outputs(const graft_plan *p, const char *out_path, const char *manifest,
                        const char *rules_path, graft_ctx *ctx)
{
    const graft_model *inputs[2] = {p->source, p->target};
    if (!rules_path && p->rules) rules_path = p->rules->path;
    GRAFT_TRY(graft_apply_check_output(out_path, inputs, 2, ctx));
    if (manifest) GRAFT_TRY(graft_apply_check_output(manifest, inputs, 2, ctx));
    if (manifest && (!strcmp(manifest, out_path) || same_file(manifest, out_path)))
        return graft_error(ctx, GRAFT_EIO, "--manifest and the output are the same file: %s",
                           out_path);
    if (rules_path && (same_file(out_path, rules_path) || (manifest && same_file(manifest, rules_path))))
        return graft_error(ctx, GRAFT_EIO, "%s: the output would overwrite the rules file",
                           rules_path);
    return GRAFT_OK;
}

static void set_item(graft_apply_item *it, const graft_plan_entry *e)
{
    it->nsrc = e->nsources;
    it->src = e->sources;
    it->ops = e->ops;
    it->nops = e->nops;
}

int graft_apply__items(const graft_plan *p, graft_apply_item **out, graft_ctx *ctx)
{
    size_t n = p->target->count, plen = p->sub ? strlen(p->rules->select) : 0;
    graft_apply_item *items = graft_calloc(ctx, n ? n : 1, sizeof *items);
    *out = NULL;
    if (!items) return graft_error_oom(ctx, "the plan");
    for (size_t i = 0; i < n; i++) {
        const char *name = p->target->tensors[i].name;
        const graft_plan_entry *e = &p->entries[i];
        /* The sub-tree's entries fill their tensors of the whole skeleton;
         * the tensors outside it (optimizer state...) keep their bytes. */
        if (p->sub && (strncmp(name, p->rules->select, plen) || name[plen] != '.')) continue;
        if (p->sub) e = graft_plan_find(p->sub, name + plen + 1);
        if (e && e->status == GRAFT_PLAN_OK) set_item(&items[i], e);
    }
    *out = items;
    return GRAFT_OK;
}

int graft_plan_apply(const graft_plan *p, const char *out_path, const graft_apply_options *opts,
                     graft_apply_stats *stats, graft_ctx *ctx)
{
    static const graft_apply_options defaults = GRAFT_APPLY_OPTIONS_INIT;
    const graft_apply_options *o = opts ? opts : &defaults;
    const graft_plan *a = p->sub ? p->sub : p;
    graft_apply_item *items = NULL;
    graft_apply_plan ap = {0};
    graft_apply_stats st = {0};
    int rc;

    GRAFT_TRY(graft_check_outputs(p, out_path, o->manifest, o->rules_path, ctx));
    if (a->errors)
        return graft_error(ctx, GRAFT_EPLAN,
                           "the plan has %zu error%s; nothing written (see 'graft plan')",
                           a->errors, a->errors == 1 ? "" : "s");
    GRAFT_TRY(graft_apply__items(p, &items, ctx));
    ap.items = items;
    ap.count = p->target->count;
    rc = graft_apply__write(p->source, p->target, &ap, out_path, o->progress, o->payload,
                            o->cancel, ctx);
    if (rc < 0) goto cleanup;
    if (o->manifest) {
        graft_manifest_info info = {.source = p->source, .skeleton = p->target,
                                    .rules_path = o->rules_path ? o->rules_path
                                                  : p->rules ? p->rules->path : NULL,
                                    .reverse = p->reverse, .plan = &ap, .out_path = out_path};
        if ((rc = graft_manifest_write(o->manifest, &info, ctx)) < 0) goto cleanup;
    }
    st.tensors = ap.count;
    for (size_t i = 0; i < ap.count; i++) {
        st.kept += items[i].nsrc == 0;
        st.bytes += p->target->tensors[i].nbytes;
    }
    st.transplanted = st.tensors - st.kept;
    if (stats) *stats = st;
cleanup:
    free(items);
    return rc;
}

int graft_plan_diff(const graft_plan *p, size_t i, graft_diff_result *out, graft_ctx *ctx)
{
    const graft_plan *a = p->sub ? p->sub : p;
    const graft_plan_entry *e = &a->entries[i];
    if (!e->nsources)
        return graft_error(ctx, GRAFT_ENOTFOUND, "target '%s': no source",
                           a->target->tensors[i].name);
    int rc = graft_diff_pair(a->source, e->sources, e->nsources, e->ops, e->nops, a->target,
                             e->target, out, ctx);
    if (rc < 0 && rc != GRAFT_ESHAPE)
        return graft_error_prefix(ctx, "tensor '%s'", a->target->tensors[i].name);
    return rc;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

typedef struct reporter {
    graft_message_fn fn;
    void *payload;
    size_t found;
    graft_ctx *ctx;
} reporter;

static int report(reporter *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int report(reporter *r, const char *fmt, ...)
{
    char msg[GRAFT_MSG_MAX]; /* one line, as long as a graft_ctx message */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->found++;
    if (r->fn) r->fn(msg, r->payload);
    return GRAFT_OK;
}

/* Renamed names that two tensors of one side share. */
static int duplicates(reporter *r, const char **keys, size_t n, const char *side)
{
    const char **sorted = graft_malloc(r->ctx, (n + 1) * sizeof *sorted);
    int rc = GRAFT_OK;
    if (!sorted) return graft_error_oom(r->ctx, "renamed names");
    memcpy(sorted, keys, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_str);
    for (size_t i = 1; i < n && rc == GRAFT_OK; i++) {
        if (strcmp(sorted[i - 1], sorted[i]) || (i > 1 && !strcmp(sorted[i - 2], sorted[i])))
            continue;
        rc = report(r, "renames are not one to one: several %s names become '%s'", side,
                    sorted[i]);
    }
    free(sorted);
    return rc;
}

int graft_plan_check_one_to_one(const graft_plan *plan, graft_message_fn fn, void *payload,
                                size_t *nproblems, graft_ctx *ctx)
{
    const graft_plan *p = plan->sub ? plan->sub : plan;
    reporter r = {fn, payload, 0, ctx};
    size_t n = p->nentries;
    const char **tkeys = graft_malloc(ctx, (n + 1) * sizeof *tkeys);
    size_t *uses = graft_calloc(ctx, p->source->count + 1, sizeof *uses);
    int rc = GRAFT_OK;

    *nproblems = 0;
    if (!tkeys || !uses) {
        rc = graft_error_oom(ctx, "renamed names");
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) tkeys[i] = p->entries[i].key;
    if ((rc = duplicates(&r, tkeys, n, "target")) < 0) goto cleanup;
    if ((rc = duplicates(&r, p->source_keys, p->source->count, "source")) < 0) goto cleanup;
    for (size_t i = 0; i < n && rc == GRAFT_OK; i++)
        for (size_t k = 0; k < p->entries[i].nsources && rc == GRAFT_OK; k++)
            /* a chain that takes one piece of its source: several such uses are a split */
            if (!graft_ops_take_part(p->entries[i].ops, p->entries[i].nops) &&
                uses[p->entries[i].sources[k]]++ == 1)
                rc = report(&r, "source '%s' feeds more than one target (first '%s'): not reversible",
                            p->source->tensors[p->entries[i].sources[k]].name,
                            p->target->tensors[i].name);
    *nproblems = r.found;
cleanup:
    free(tkeys);
    free(uses);
    return rc;
}
