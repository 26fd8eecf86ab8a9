/* plan_open.c - the public face of rules and plans (graft.h): the version,
 * rules getters, graft_plan_open (both models opened, a reversed `select:`
 * planned onto the skeleton's sub-tree) and the plan's getters.
 *
 * A plan from graft_plan_open owns its models; reversed with `select:` it
 * also owns the sub-tree of the skeleton and the plan onto it (p->sub), and
 * every getter reads that plan: it is what apply writes into the skeleton. */
#include "graft.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "format.h"
#include "library.h"
#include "rules.h"

const char *graft_version(void)
{
    return GRAFT_VERSION;
}

unsigned graft_version_number(void)
{
    return GRAFT_VERSION_NUMBER;
}

void graft_free(void *p)
{
    free(p);
}

const char *graft_rules_path(const graft_rules *r)
{
    return r->path;
}

const char *graft_rules_select(const graft_rules *r)
{
    return r->select && *r->select ? r->select : NULL;
}

size_t graft_rules_count(const graft_rules *r, graft_rules_item what)
{
    switch (what) {
    case GRAFT_RULES_SOURCE_RENAMES: return r->nrename[GRAFT_SIDE_SOURCE];
    case GRAFT_RULES_TARGET_RENAMES: return r->nrename[GRAFT_SIDE_TARGET];
    case GRAFT_RULES_PAIRS: return r->npairs;
    case GRAFT_RULES_TRANSFORMS: return r->ntransforms;
    case GRAFT_RULES_SOURCE_IGNORES: return r->nignore[GRAFT_SIDE_SOURCE];
    case GRAFT_RULES_TARGET_IGNORES: return r->nignore[GRAFT_SIDE_TARGET];
    }
    return 0;
}

size_t graft_rules_library_count(const graft_rules_library *lib)
{
    return lib->count;
}

const char *graft_rules_library_get(const graft_rules_library *lib, size_t i,
                                    graft_rules_field what)
{
    const graft_rules_entry *e = &lib->entries[i];
    switch (what) {
    case GRAFT_RULES_FIELD_PATH: return e->path;
    case GRAFT_RULES_FIELD_NAME: return e->name;
    case GRAFT_RULES_FIELD_DIRECTION: return e->direction;
    case GRAFT_RULES_FIELD_TITLE: return e->title;
    case GRAFT_RULES_FIELD_DESCRIPTION: return e->description;
    }
    return NULL;
}

/* Reversed, `select:` names a sub-tree of the skeleton: plan onto that
 * sub-tree alone, so that its names pair as they did forward. */
static int plan_subtree(graft_plan *p, const graft_rules *rules, const char *skeleton,
                        const graft_plan_options *o, graft_ctx *ctx)
{
    graft_open_options oo = GRAFT_OPEN_OPTIONS_INIT;
    graft_plan_options po = *o;
    oo.format = o->skeleton_format;
    oo.select = rules->select;
    GRAFT_TRY(graft_model__open_deferred(&p->own_sel, skeleton, &oo, ctx));
    return graft_plan_build(&p->sub, rules, p->source, p->own_sel, &po, ctx);
}

int graft_plan_open(graft_plan **out, const graft_rules *rules, const char *source,
                    const char *skeleton, const graft_plan_options *opts, graft_ctx *ctx)
{
    static const graft_plan_options defaults = GRAFT_PLAN_OPTIONS_INIT;
    const graft_plan_options *o = opts ? opts : &defaults;
    graft_open_options so = GRAFT_OPEN_OPTIONS_INIT, ko = GRAFT_OPEN_OPTIONS_INIT;
    graft_model *src = NULL, *skel = NULL;
    graft_plan *p = NULL;
    int rc;

    *out = NULL;
    so.format = o->source_format;
    ko.format = o->skeleton_format;
    /* select names the forward source's sub-tree; reversed, that is the
     * skeleton, which stays whole (apply writes all of it). */
    so.select = o->select ? o->select : rules && !o->reverse ? rules->select : NULL;
    if ((rc = graft_model__open_deferred(&src, source, &so, ctx)) < 0) goto cleanup;
    if ((rc = graft_model__open_deferred(&skel, skeleton, &ko, ctx)) < 0) goto cleanup;
    if ((rc = graft_plan_build(&p, rules, src, skel, o, ctx)) < 0) goto cleanup;
    p->own_source = src;
    p->own_skeleton = skel;
    src = skel = NULL;
    if (rules && o->reverse && rules->select && *rules->select &&
        (rc = plan_subtree(p, rules, skeleton, o, ctx)) < 0)
        goto cleanup;
    *out = p;
    p = NULL;
cleanup:
    graft_plan_free(p);
    graft_model_free(skel);
    graft_model_free(src);
    return rc;
}

/* The plan the getters describe. */
static const graft_plan *act(const graft_plan *p)
{
    return p->sub ? p->sub : p;
}

const graft_model *graft_plan_source(const graft_plan *p)
{
    return act(p)->source;
}

const graft_model *graft_plan_target(const graft_plan *p)
{
    return act(p)->target;
}

const graft_model *graft_plan_skeleton(const graft_plan *p)
{
    return p->target;
}

size_t graft_plan_errors(const graft_plan *p)
{
    return act(p)->errors;
}

size_t graft_plan_count(const graft_plan *p)
{
    return act(p)->nentries;
}

size_t graft_plan_index(const graft_plan *p, const char *name)
{
    const graft_plan *a = act(p);
    const graft_plan_entry *e;
    if (p->sub) { /* a whole-skeleton name: strip the selected sub-tree's prefix */
        size_t n = strlen(a->rules->select);
        if (!strncmp(name, a->rules->select, n) && name[n] == '.') name += n + 1;
    }
    e = graft_plan_find(a, name);
    return e ? (size_t)(e - a->entries) : SIZE_MAX;
}

graft_plan_status graft_plan_entry_status(const graft_plan *p, size_t i)
{
    return act(p)->entries[i].status;
}

const graft_tensor *graft_plan_entry_target(const graft_plan *p, size_t i)
{
    return &act(p)->target->tensors[i];
}

size_t graft_plan_entry_nsources(const graft_plan *p, size_t i)
{
    return act(p)->entries[i].nsources;
}

const graft_tensor *graft_plan_entry_source(const graft_plan *p, size_t i, size_t k)
{
    const graft_plan *a = act(p);
    return &a->source->tensors[a->entries[i].sources[k]];
}

size_t graft_plan_entry_nops(const graft_plan *p, size_t i)
{
    return act(p)->entries[i].nops;
}

const graft_op *graft_plan_entry_op(const graft_plan *p, size_t i, size_t k)
{
    return &act(p)->entries[i].ops[k];
}

const char *graft_plan_entry_key(const graft_plan *p, size_t i)
{
    return act(p)->entries[i].key;
}

const char *graft_plan_entry_message(const graft_plan *p, size_t i)
{
    return act(p)->entries[i].message;
}

bool graft_plan_entry_ignored(const graft_plan *p, size_t i)
{
    return act(p)->entries[i].ignored;
}

bool graft_plan_entry_rule(const graft_plan *p, size_t i, graft_rule_kind kind,
                           const char **file, unsigned *line)
{
    const graft_plan_entry *e = &act(p)->entries[i];
    const graft_rules_pos *pos = NULL;
    if (kind == GRAFT_RULE_PAIR && e->pair) pos = &e->pair->pos;
    if (kind == GRAFT_RULE_TRANSFORM && e->transform) pos = &e->transform->pos;
    if (!pos) return false;
    *file = pos->file;
    *line = pos->line;
    return true;
}

size_t graft_plan_missing_count(const graft_plan *p)
{
    return act(p)->nmissing;
}

const graft_tensor *graft_plan_missing(const graft_plan *p, size_t k)
{
    return &act(p)->target->tensors[act(p)->missing[k]];
}

size_t graft_plan_unused_count(const graft_plan *p)
{
    return act(p)->nunused;
}

const graft_tensor *graft_plan_unused(const graft_plan *p, size_t k)
{
    return &act(p)->source->tensors[act(p)->unused[k]];
}

size_t graft_plan_problem_count(const graft_plan *p)
{
    return act(p)->ndiags;
}

const char *graft_plan_problem(const graft_plan *p, size_t k, bool *is_error)
{
    const graft_plan_diag *d = &act(p)->diags[k];
    if (is_error) *is_error = d->level == GRAFT_DIAG_ERROR;
    return d->message;
}

void graft_op_where(const graft_op *op, const char **file, unsigned *line)
{
    *file = op->file;
    *line = op->line;
}
