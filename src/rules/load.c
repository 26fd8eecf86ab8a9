/*
 * load.c - read a YAML rules file (format version 1) into graft_rules.
 *
 * The file is parsed with libyaml's document API, which keeps the start mark
 * (line, column) of every node, so each problem is reported at
 * "<file>:<line>:<col>".  Layout of a file (man/graft-rules.5):
 *
 *   1. graft: 1                      required, first checked
 *   2. include: [paths]              loaded first, relative to this file
 *   3. name, description, select     strings; this file's values win
 *   4. rename: {source: [..], target: [..]}  entries {match, to, expect}
 *   5. pairs: {target: source | [sources]}
 *   6. transforms: [{target, source, rank, dtype, ops, expect}]
 *   7. ignore: {source: [..], target: [..]}
 *   8. policy: {missing, unused, mismatch}
 *
 * Aliases make a YAML document a graph, so every node visit is charged to a
 * budget: a small hostile file cannot make the walk explode.
 */
#include "rules_int.h"
#include "strmap.h"
#include "optab.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "source.h"

#define NODE_BUDGET (1u << 20) /* node visits per file, aliases included */
#define MAX_FILES 256          /* files loaded for one rules set, includes counted */
#define MAX_YAML_DEPTH 64      /* nested lists/mappings; a rules file needs about 6 */
#define MAX_YAML_NODES (1u << 20) /* scalars, lists, mappings and aliases, as written */

typedef struct loader {
    graft_rules *r;
    graft_ctx *ctx;
    const char *file;            /* current file, rules arena */
    yaml_document_t *doc;
    size_t budget;
    const char *chain[GRAFT_RULES_MAX_INCLUDE_DEPTH + 1]; /* files being loaded */
    size_t depth;
    size_t files;                /* loaded so far: diamonds of includes are capped too */
    bool allow_include;
    unsigned minor;              /* the current file's format minor version */
    size_t cap_rename[2], cap_pairs, cap_transforms, cap_ignore[2];
    graft_strmap pairs;          /* pairs by target */
} loader;

static graft_rules_pos pos_of(const loader *L, const yaml_node_t *n)
{
    graft_rules_pos p = {L->file, (uint32_t)n->start_mark.line + 1,
                         (uint32_t)n->start_mark.column + 1};
    return p;
}

static int fail(const loader *L, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(const loader *L, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[GRAFT_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return graft_error(L->ctx, GRAFT_ERULE, "%s:%zu:%zu: %s", L->file, n->start_mark.line + 1,
                       n->start_mark.column + 1, msg);
}

static int node_at(loader *L, int index, yaml_node_t **out)
{
    if (L->budget == 0)
        return graft_error(L->ctx, GRAFT_ELIMIT, "%s: more than %u YAML nodes (aliases counted)",
                           L->file, NODE_BUDGET);
    L->budget--;
    *out = yaml_document_get_node(L->doc, index);
    if (!*out) return graft_error(L->ctx, GRAFT_ERULE, "%s: broken YAML node reference", L->file);
    return 0;
}

static const char *kind_name(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE: return "a scalar";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "nothing";
    }
}

/* A scalar's text; `what` names the value in messages. */
static int want_string(loader *L, const yaml_node_t *n, const char *what, const char **s,
                       size_t *len)
{
    if (n->type != YAML_SCALAR_NODE)
        return fail(L, n, "%s: expected a string, got %s", what, kind_name(n));
    *s = (const char *)n->data.scalar.value;
    *len = n->data.scalar.length;
    if (memchr(*s, '\0', *len)) return fail(L, n, "%s: contains a NUL byte", what);
    return 0;
}

static int want_arena_string(loader *L, const yaml_node_t *n, const char *what, const char **out)
{
    const char *s = NULL;
    size_t len = 0;
    GRAFT_TRY(want_string(L, n, what, &s, &len));
    *out = graft_arena_strndup(&L->r->arena, s, len);
    return *out ? 0 : graft_error_oom(L->ctx, "rules string");
}

static int want_int(loader *L, const yaml_node_t *n, const char *what, int64_t lo, int64_t hi,
                    int64_t *out)
{
    char buf[32];
    char *end;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.length == 0 ||
        n->data.scalar.length >= sizeof buf || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return fail(L, n, "%s: expected an integer, got %s", what,
                    n->type == YAML_SCALAR_NODE ? "a string" : kind_name(n));
    memcpy(buf, n->data.scalar.value, n->data.scalar.length);
    buf[n->data.scalar.length] = '\0';
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (*end || errno) return fail(L, n, "%s: expected an integer, got '%s'", what, buf);
    if (v < lo || v > hi)
        return fail(L, n, "%s: %lld is out of range [%lld, %lld]", what, v, (long long)lo,
                    (long long)hi);
    *out = v;
    return 0;
}

static bool scalar_is(const yaml_node_t *n, const char *s)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.length == strlen(s) &&
           memcmp(n->data.scalar.value, s, n->data.scalar.length) == 0;
}

/* A mapping's keys must be plain strings among `known` (NULL-terminated),
 * each at most once. */
static int check_keys(loader *L, const yaml_node_t *map, const char *what,
                      const char *const *known)
{
    if (map->type != YAML_MAPPING_NODE)
        return fail(L, map, "%s: expected a mapping, got %s", *what ? what : "rules",
                    kind_name(map));
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k;
        size_t i;
        GRAFT_TRY(node_at(L, p->key, &k));
        for (i = 0; known[i]; i++)
            if (scalar_is(k, known[i])) break;
        if (!known[i]) {
            char list[256] = "";
            for (size_t j = 0; known[j]; j++) {
                strncat(list, j ? ", " : "", sizeof list - strlen(list) - 1);
                strncat(list, known[j], sizeof list - strlen(list) - 1);
            }
            if (k->type != YAML_SCALAR_NODE)
                return fail(L, k, "%s%sa key must be a string, got %s", what, *what ? ": " : "",
                            kind_name(k));
            return fail(L, k, "%s%sunknown key '%.*s' (expected one of: %s)", what,
                        *what ? ": " : "",
                        (int)(k->data.scalar.length > 64 ? 64 : k->data.scalar.length),
                        (const char *)k->data.scalar.value, list);
        }
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = yaml_document_get_node(L->doc, q->key);
            if (k2 && scalar_is(k2, known[i]))
                return fail(L, k, "%s%skey '%s' appears twice", what, *what ? ": " : "", known[i]);
        }
    }
    return 0;
}

/* The value of key `name` in a checked mapping, or NULL. */
static int get(loader *L, const yaml_node_t *map, const char *name, yaml_node_t **out)
{
    *out = NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(L->doc, p->key);
        if (k && scalar_is(k, name)) return node_at(L, p->value, out);
    }
    return 0;
}

static int want_list(loader *L, const yaml_node_t *n, const char *what)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(L, n, "%s: expected a list, got %s", what, kind_name(n));
    return 0;
}

static size_t list_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static int grow(loader *L, void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 8;
    if (nc > SIZE_MAX / elem) return graft_error_oom(L->ctx, "rules table");
    void *p = graft_realloc(L->ctx, *arr, nc * elem);
    if (!p) return graft_error_oom(L->ctx, "rules table");
    memset((char *)p + *cap * elem, 0, (nc - *cap) * elem);
    *arr = p;
    *cap = nc;
    return 0;
}

/* ---- regexes and small values ------------------------------------------ */

static int want_regex(loader *L, const yaml_node_t *n, const char *what, graft_regex *re)
{
    const char *s = NULL;
    size_t len = 0;
    GRAFT_TRY(want_string(L, n, what, &s, &len));
    return graft_rules__regex(L->r, re, s, len, pos_of(L, n), L->ctx);
}

static int want_expect(loader *L, const yaml_node_t *map, int64_t *out)
{
    yaml_node_t *v;
    *out = -1;
    GRAFT_TRY(get(L, map, "expect", &v));
    if (v) GRAFT_TRY(want_int(L, v, "expect", 0, INT32_MAX, out));
    return 0;
}

/* ---- ops: the reader behind graft_oparg (transform/optab.h) ------------- */

struct graft_oparg {
    loader *L;
    const yaml_node_t *at;    /* the list entry, for messages when there is no value */
    const yaml_node_t *v;     /* the op's value; NULL for a bare name */
    const char *name;         /* the op's name */
};

graft_oparg_kind graft_oparg_type(const graft_oparg *a)
{
    const yaml_node_t *v = a->v;
    if (!v) return GRAFT_OPARG_NONE;
    if (v->type == YAML_SCALAR_NODE)
        return v->data.scalar.length == 0 || scalar_is(v, "~") || scalar_is(v, "null")
                   ? GRAFT_OPARG_NONE
                   : GRAFT_OPARG_SCALAR;
    if (v->type == YAML_SEQUENCE_NODE) return GRAFT_OPARG_LIST;
    if (v->type == YAML_MAPPING_NODE)
        return v->data.mapping.pairs.top == v->data.mapping.pairs.start ? GRAFT_OPARG_NONE
                                                                        : GRAFT_OPARG_MAP;
    return GRAFT_OPARG_NONE;
}

/* The node of `key` in the mapping value (NULL when absent), or the value. */
static const yaml_node_t *oparg_node(const graft_oparg *a, const char *key)
{
    yaml_node_t *n = NULL;
    if (!key) return a->v ? a->v : a->at;
    if (!a->v || a->v->type != YAML_MAPPING_NODE) return NULL;
    if (get(a->L, a->v, key, &n) < 0) return NULL;
    return n;
}

int graft_oparg_fail(const graft_oparg *a, const char *key, const char *fmt, ...)
{
    char msg[GRAFT_MSG_MAX];
    const yaml_node_t *n = oparg_node(a, key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(a->L, n ? n : a->v ? a->v : a->at, "%s: %s", a->name, msg);
}

int graft_oparg_keys(const graft_oparg *a, const char *const *known)
{
    if (!a->v) return fail(a->L, a->at, "%s: expected a mapping", a->name);
    return check_keys(a->L, a->v, a->name, known);
}

bool graft_oparg_has(const graft_oparg *a, const char *key)
{
    return oparg_node(a, key) != NULL;
}

/* The node of a required key; "<op>: '<key>' is required" at the mapping. */
static int oparg_want(const graft_oparg *a, const char *key, const yaml_node_t **n, char *what,
                      size_t cap)
{
    if (a->L->budget == 0) return node_at(a->L, 0, NULL);
    *n = oparg_node(a, key);
    if (!*n) return graft_oparg_fail(a, NULL, "'%s' is required", key);
    if (key)
        snprintf(what, cap, "%s: %s", a->name, key);
    else
        snprintf(what, cap, "%s", a->name);
    return 0;
}

int graft_oparg_int(const graft_oparg *a, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    const yaml_node_t *n;
    char what[96];
    GRAFT_TRY(oparg_want(a, key, &n, what, sizeof what));
    return want_int(a->L, n, what, lo, hi, out);
}

int graft_oparg_num(const graft_oparg *a, const char *key, double *out)
{
    const yaml_node_t *n;
    char what[96], buf[64], *end;
    GRAFT_TRY(oparg_want(a, key, &n, what, sizeof what));
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.length == 0 ||
        n->data.scalar.length >= sizeof buf || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return fail(a->L, n, "%s: expected a number, got %s", what,
                    n->type == YAML_SCALAR_NODE ? "a string" : kind_name(n));
    memcpy(buf, n->data.scalar.value, n->data.scalar.length);
    buf[n->data.scalar.length] = '\0';
    errno = 0;
    double v = strtod(buf, &end);
    /* strtod also reads "inf", "nan" and hex floats: a number is digits */
    if (*end || errno || buf + strspn(buf, "+-0123456789.eE") != end || !isfinite(v))
        return fail(a->L, n, "%s: expected a finite number, got '%s'", what, buf);
    *out = v;
    return 0;
}

int graft_oparg_str(const graft_oparg *a, const char *key, const char **out)
{
    const yaml_node_t *n;
    char what[96];
    size_t len;
    GRAFT_TRY(oparg_want(a, key, &n, what, sizeof what));
    return want_string(a->L, n, what, out, &len);
}

int graft_oparg_ints(const graft_oparg *a, const char *key, int64_t lo, int64_t hi,
                     int64_t **out, uint32_t *count)
{
    const yaml_node_t *n;
    char what[96];
    GRAFT_TRY(oparg_want(a, key, &n, what, sizeof what));
    GRAFT_TRY(want_list(a->L, n, what));
    size_t k = list_len(n);
    if (k > GRAFT_MAX_NDIM)
        return fail(a->L, n, "%s: %zu entries, at most %d allowed", what, k, GRAFT_MAX_NDIM);
    int64_t *v = graft_arena_alloc(&a->L->r->arena, (k ? k : 1) * sizeof *v);
    if (!v) return graft_error_oom(a->L->ctx, "op");
    for (size_t i = 0; i < k; i++) {
        yaml_node_t *item;
        GRAFT_TRY(node_at(a->L, n->data.sequence.items.start[i], &item));
        GRAFT_TRY(want_int(a->L, item, what, lo, hi, &v[i]));
    }
    *out = v;
    *count = (uint32_t)k;
    return 0;
}

unsigned graft_oparg_minor(const graft_oparg *a)
{
    return a->L->minor;
}

void *graft_oparg_alloc(const graft_oparg *a, size_t n)
{
    void *p = graft_arena_alloc(&a->L->r->arena, n);
    if (!p) graft_error_oom(a->L->ctx, "op");
    return p;
}

/* One entry of `ops:`: a bare name ("transpose") or {name: value}. */
static int parse_op(loader *L, const yaml_node_t *n, graft_op *op)
{
    graft_rules_pos p = pos_of(L, n);
    graft_oparg a = {.L = L, .at = n};
    const char *name;
    size_t len;
    char names[512];
    op->file = p.file;
    op->line = p.line;
    op->col = p.col;
    if (n->type == YAML_MAPPING_NODE) {
        yaml_node_t *k, *v;
        if (n->data.mapping.pairs.top - n->data.mapping.pairs.start != 1)
            return fail(L, n, "op: expected exactly one op per list entry");
        GRAFT_TRY(node_at(L, n->data.mapping.pairs.start->key, &k));
        GRAFT_TRY(node_at(L, n->data.mapping.pairs.start->value, &v));
        if (k->type != YAML_SCALAR_NODE)
            return fail(L, k, "op: a key must be a string, got %s", kind_name(k));
        name = (const char *)k->data.scalar.value;
        len = k->data.scalar.length;
        a.v = v;
    } else if (n->type == YAML_SCALAR_NODE) {
        name = (const char *)n->data.scalar.value;
        len = n->data.scalar.length;
    } else {
        return fail(L, n, "op: expected an op, got %s", kind_name(n));
    }
    graft_op_kind kind = graft_op_find(name, len);
    const graft_op_def *d = graft_op_def_of(kind);
    graft_op_names(L->minor, names, sizeof names);
    if (!d && a.v) /* {name: value}: as for any mapping's unknown key, at the key */
        return fail(L, yaml_document_get_node(L->doc, n->data.mapping.pairs.start->key),
                    "op: unknown key '%.*s' (expected one of: %s)", (int)(len > 64 ? 64 : len),
                    name, names);
    if (!d)
        return fail(L, n, "op: unknown op '%.*s' (expected one of: %s)", (int)(len > 64 ? 64 : len),
                    name, names);
    if (d->minor > L->minor)
        return fail(L, n, "op: '%s' needs graft: 1.%u (this file says graft: %s)", d->name,
                    d->minor, L->minor ? "1.1" : "1");
    if (n->type == YAML_SCALAR_NODE && !(d->flags & GRAFT_OPF_BARE))
        return fail(L, n, "op: unknown op '%.*s' (expected one of: %s)",
                    (int)(len > 64 ? 64 : len), name, names);
    op->kind = kind;
    a.name = d->name;
    return d->parse(&a, op);
}

static int parse_ops(loader *L, const yaml_node_t *n, graft_transform *t)
{
    GRAFT_TRY(want_list(L, n, "ops"));
    size_t k = list_len(n);
    if (k > 256) return fail(L, n, "ops: %zu ops, at most 256 allowed", k);
    t->ops = graft_arena_alloc(&L->r->arena, (k ? k : 1) * sizeof *t->ops);
    if (!t->ops) return graft_error_oom(L->ctx, "ops");
    for (size_t i = 0; i < k; i++) {
        yaml_node_t *item;
        GRAFT_TRY(node_at(L, n->data.sequence.items.start[i], &item));
        GRAFT_TRY(parse_op(L, item, &t->ops[i]));
        t->nops = i + 1; /* so a later failure frees nothing twice */
        const graft_op_def *d = graft_op_def_of(t->ops[i].kind);
        if ((d->flags & GRAFT_OPF_JOIN) && i != 0)
            return fail(L, item, "%s: must be the first op of a chain", d->name);
    }
    return 0;
}

/* ---- sections ----------------------------------------------------------- */

static int parse_rename_side(loader *L, const yaml_node_t *list, graft_side side)
{
    static const char *const keys[] = {"match", "to", "expect", NULL};
    graft_rules *r = L->r;
    GRAFT_TRY(want_list(L, list, side ? "rename: target" : "rename: source"));
    for (size_t i = 0; i < list_len(list); i++) {
        yaml_node_t *e, *m, *to;
        GRAFT_TRY(node_at(L, list->data.sequence.items.start[i], &e));
        GRAFT_TRY(check_keys(L, e, "rename entry", keys));
        GRAFT_TRY(get(L, e, "match", &m));
        GRAFT_TRY(get(L, e, "to", &to));
        if (!m) return fail(L, e, "rename entry: 'match' is required");
        if (!to) return fail(L, e, "rename entry: 'to' is required");
        GRAFT_TRY(grow(L, (void **)&r->rename[side], &L->cap_rename[side], r->nrename[side],
                       sizeof *r->rename[side]));
        graft_rename *rn = &r->rename[side][r->nrename[side]++];
        rn->pos = pos_of(L, e);
        GRAFT_TRY(want_regex(L, m, "match", &rn->match));
        GRAFT_TRY(want_arena_string(L, to, "to", &rn->to));
        rn->pos = pos_of(L, to);
        GRAFT_TRY(graft_rules__arith(r, rn, L->minor, L->ctx));
        rn->pos = pos_of(L, e);
        GRAFT_TRY(want_expect(L, e, &rn->expect));
    }
    return 0;
}

static int parse_rename(loader *L, const yaml_node_t *n)
{
    static const char *const keys[] = {"source", "target", NULL};
    yaml_node_t *v;
    GRAFT_TRY(check_keys(L, n, "rename", keys));
    GRAFT_TRY(get(L, n, "source", &v));
    if (v) GRAFT_TRY(parse_rename_side(L, v, GRAFT_SIDE_SOURCE));
    GRAFT_TRY(get(L, n, "target", &v));
    if (v) GRAFT_TRY(parse_rename_side(L, v, GRAFT_SIDE_TARGET));
    return 0;
}

static int parse_ignore(loader *L, const yaml_node_t *n)
{
    static const char *const keys[] = {"source", "target", NULL};
    graft_rules *r = L->r;
    GRAFT_TRY(check_keys(L, n, "ignore", keys));
    for (int side = 0; side < 2; side++) {
        yaml_node_t *list;
        GRAFT_TRY(get(L, n, side ? "target" : "source", &list));
        if (!list) continue;
        GRAFT_TRY(want_list(L, list, side ? "ignore: target" : "ignore: source"));
        for (size_t i = 0; i < list_len(list); i++) {
            yaml_node_t *e;
            GRAFT_TRY(node_at(L, list->data.sequence.items.start[i], &e));
            GRAFT_TRY(grow(L, (void **)&r->ignore[side], &L->cap_ignore[side], r->nignore[side],
                           sizeof *r->ignore[side]));
            GRAFT_TRY(want_regex(L, e, "ignore", &r->ignore[side][r->nignore[side]++]));
        }
    }
    return 0;
}

static const char *pair_key(const void *owner, size_t i, size_t *len)
{
    const char *target = ((const graft_rules *)owner)->pairs[i].target;
    *len = strlen(target);
    return target;
}

static int parse_pairs(loader *L, const yaml_node_t *n)
{
    graft_rules *r = L->r;
    if (n->type != YAML_MAPPING_NODE)
        return fail(L, n, "pairs: expected a mapping, got %s", kind_name(n));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k, *v;
        const char *target;
        GRAFT_TRY(node_at(L, p->key, &k));
        GRAFT_TRY(node_at(L, p->value, &v));
        GRAFT_TRY(want_arena_string(L, k, "pairs: target", &target));
        size_t ns = v->type == YAML_SEQUENCE_NODE ? list_len(v) : 1;
        if (ns == 0) return fail(L, v, "pairs: '%s': empty list of sources", target);
        if (ns > 4096) return fail(L, v, "pairs: '%s': more than 4096 sources", target);
        const char **sources = graft_arena_alloc(&L->r->arena, ns * sizeof *sources);
        if (!sources) return graft_error_oom(L->ctx, "pairs");
        if (v->type == YAML_SEQUENCE_NODE) {
            for (size_t i = 0; i < ns; i++) {
                yaml_node_t *e;
                GRAFT_TRY(node_at(L, v->data.sequence.items.start[i], &e));
                GRAFT_TRY(want_arena_string(L, e, "pairs: source", &sources[i]));
            }
        } else {
            GRAFT_TRY(want_arena_string(L, v, "pairs: source", &sources[0]));
        }
        if (!L->pairs.key) graft_strmap_init(&L->pairs, pair_key, r);
        GRAFT_TRY(graft_strmap_reserve(&L->pairs, r->npairs + 1, L->ctx));
        size_t at = graft_strmap_get(&L->pairs, target);
        if (at != GRAFT_STRMAP_NONE) {
            if (r->pairs[at].pos.file == L->file)
                return fail(L, k, "pairs: target '%s' appears twice", target);
            /* an including file overrides its includes */
        } else {
            GRAFT_TRY(grow(L, (void **)&r->pairs, &L->cap_pairs, r->npairs, sizeof *r->pairs));
            at = r->npairs++;
            r->pairs[at].target = target;
            graft_strmap_put(&L->pairs, at);
        }
        graft_pair_rule *pr = &r->pairs[at];
        pr->target = target;
        pr->sources = sources;
        pr->nsources = ns;
        pr->pos = pos_of(L, k);
    }
    return 0;
}

static int parse_enum(loader *L, const yaml_node_t *map, const char *what, const char *key,
                      const char *const *names, int *out)
{
    yaml_node_t *v;
    const char *s = NULL;
    size_t len = 0;
    GRAFT_TRY(get(L, map, key, &v));
    if (!v) return 0;
    GRAFT_TRY(want_string(L, v, key, &s, &len));
    for (int i = 0; names[i]; i++) {
        if (!strcmp(s, names[i])) {
            *out = i;
            return 0;
        }
    }
    char list[128] = "";
    for (int i = 0; names[i]; i++) {
        strncat(list, i ? " | " : "", sizeof list - strlen(list) - 1);
        strncat(list, names[i], sizeof list - strlen(list) - 1);
    }
    return fail(L, v, "%s: %s: '%s' is not one of %s", what, key, s, list);
}

static int parse_transforms(loader *L, const yaml_node_t *n)
{
    static const char *const keys[] = {"target", "source", "rank", "dtype", "ops", "expect", NULL};
    static const char *const keys1[] = {"target", "source", "rank", "dtype", "ops", "expect",
                                        "mismatch", NULL};
    static const char *const mismatch[] = {"error", "keep", NULL};
    graft_rules *r = L->r;
    GRAFT_TRY(want_list(L, n, "transforms"));
    for (size_t i = 0; i < list_len(n); i++) {
        yaml_node_t *e, *v;
        GRAFT_TRY(node_at(L, n->data.sequence.items.start[i], &e));
        GRAFT_TRY(check_keys(L, e, "transform", L->minor ? keys1 : keys));
        GRAFT_TRY(grow(L, (void **)&r->transforms, &L->cap_transforms, r->ntransforms,
                       sizeof *r->transforms));
        graft_transform *t = &r->transforms[r->ntransforms++];
        t->pos = pos_of(L, e);
        t->rank = -1;
        t->dtype = GRAFT_DTYPE_INVALID;
        t->mismatch = -1;
        GRAFT_TRY(parse_enum(L, e, "transform", "mismatch", mismatch, &t->mismatch));
        GRAFT_TRY(get(L, e, "target", &v));
        if (v) GRAFT_TRY(want_regex(L, v, "target", &t->target));
        GRAFT_TRY(get(L, e, "source", &v));
        if (v) GRAFT_TRY(want_regex(L, v, "source", &t->source));
        GRAFT_TRY(get(L, e, "rank", &v));
        if (v) {
            int64_t rank;
            GRAFT_TRY(want_int(L, v, "rank", 0, GRAFT_MAX_NDIM, &rank));
            t->rank = (int32_t)rank;
        }
        GRAFT_TRY(get(L, e, "dtype", &v));
        if (v) {
            const char *s = NULL;
            size_t len = 0;
            GRAFT_TRY(want_string(L, v, "dtype", &s, &len));
            t->dtype = graft_dtype_from_name(s);
            if (t->dtype == GRAFT_DTYPE_INVALID) return fail(L, v, "dtype: unknown dtype '%s'", s);
        }
        GRAFT_TRY(get(L, e, "ops", &v));
        if (!v) return fail(L, e, "transform: 'ops' is required");
        GRAFT_TRY(parse_ops(L, v, t));
        GRAFT_TRY(want_expect(L, e, &t->expect));
    }
    return 0;
}

/* policy: layout: auto | error | warn | ignore (graft: 1.1) */
static int parse_layout_policy(loader *L, const yaml_node_t *n)
{
    static const char *const layout[] = {"auto", "error", "warn", "ignore", NULL};
    yaml_node_t *v;
    int k = (int)L->r->layout;
    GRAFT_TRY(get(L, n, "layout", &v));
    if (v && L->minor < 1) return fail(L, v, "policy: layout needs graft: 1.1");
    GRAFT_TRY(parse_enum(L, n, "policy", "layout", layout, &k));
    L->r->layout = (graft_policy_layout)k;
    return 0;
}

static int parse_policy(loader *L, const yaml_node_t *n)
{
    static const char *const keys[] = {"missing", "unused", "mismatch", "layout", NULL};
    static const char *const missing[] = {"error", "keep", NULL};
    static const char *const unused[] = {"warn", "error", "ignore", NULL};
    static const char *const mismatch[] = {"error", "keep", NULL};
    int v;
    GRAFT_TRY(check_keys(L, n, "policy", keys));
    v = (int)L->r->missing;
    GRAFT_TRY(parse_enum(L, n, "policy", "missing", missing, &v));
    L->r->missing = (graft_policy_missing)v;
    v = (int)L->r->unused;
    GRAFT_TRY(parse_enum(L, n, "policy", "unused", unused, &v));
    L->r->unused = (graft_policy_unused)v;
    v = (int)L->r->mismatch;
    GRAFT_TRY(parse_enum(L, n, "policy", "mismatch", mismatch, &v));
    L->r->mismatch = (graft_policy_mismatch)v;
    GRAFT_TRY(parse_layout_policy(L, n));
    return 0;
}

/* ---- files -------------------------------------------------------------- */

static int load_file(loader *L, const char *path, const yaml_node_t *from);

static int parse_include(loader *L, const yaml_node_t *n)
{
    if (!L->allow_include) return fail(L, n, "include: not allowed here");
    if (n->type == YAML_SCALAR_NODE) {
        const char *s = NULL;
        size_t len = 0;
        GRAFT_TRY(want_string(L, n, "include", &s, &len));
        return load_file(L, s, n);
    }
    GRAFT_TRY(want_list(L, n, "include"));
    for (size_t i = 0; i < list_len(n); i++) {
        yaml_node_t *e;
        const char *s = NULL;
        size_t len = 0;
        GRAFT_TRY(node_at(L, n->data.sequence.items.start[i], &e));
        GRAFT_TRY(want_string(L, e, "include", &s, &len));
        GRAFT_TRY(load_file(L, s, e));
    }
    return 0;
}

/* `graft: 1` (or 1.0) and `graft: 1.1`.  An included file may use a lower
 * version than the file that includes it, not a higher one. */
static int parse_version(loader *L, const yaml_node_t *v)
{
    int64_t major;
    unsigned minor;
    bool plain = v->type == YAML_SCALAR_NODE && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (plain && (scalar_is(v, "1.0") || scalar_is(v, "1.1"))) {
        major = 1;
        minor = v->data.scalar.value[2] == '1';
    } else {
        const char *t = plain ? (const char *)v->data.scalar.value : "";
        size_t d = strspn(t, "0123456789");
        if (d && t[d] == '.' && t[d + 1 + strspn(t + d + 1, "0123456789")] == '\0')
            major = -1; /* a version number, just not one this graft reads */
        else
            GRAFT_TRY(want_int(L, v, "graft", 0, INT32_MAX, &major));
        minor = 0;
    }
    if (major != GRAFT_RULES_VERSION)
        return fail(L, v, "graft: format version %.*s is not supported (this graft reads 1 and 1.%d)",
                    (int)(v->data.scalar.length > 16 ? 16 : v->data.scalar.length),
                    (const char *)v->data.scalar.value, GRAFT_RULES_MINOR);
    if (L->depth > 1 && minor > L->r->minor)
        return fail(L, v, "graft: 1.%u in a file included by a graft: 1.%u file", minor,
                    L->r->minor);
    if (L->depth <= 1) L->r->version = (uint32_t)major;
    if (L->depth <= 1) L->r->minor = minor;
    L->minor = minor;
    return 0;
}

/* meta: a list of "KEY[:TYPE]=VALUE" for the files graft convert writes
 * (GGUF metadata), appended across includes. */
static int parse_meta(loader *L, const yaml_node_t *n)
{
    size_t k, have = L->r->nmeta;
    const char **v;
    if (!L->minor) return fail(L, n, "meta: needs graft: 1.1");
    GRAFT_TRY(want_list(L, n, "meta"));
    k = list_len(n);
    v = graft_arena_alloc(&L->r->arena, (have + k + 1) * sizeof *v);
    if (!v) return graft_error_oom(L->ctx, "meta");
    for (size_t i = 0; i < have; i++) v[i] = L->r->meta[i];
    for (size_t i = 0; i < k; i++) {
        yaml_node_t *e;
        const char *s = NULL, *eq;
        size_t len = 0;
        GRAFT_TRY(node_at(L, n->data.sequence.items.start[i], &e));
        GRAFT_TRY(want_string(L, e, "meta", &s, &len));
        eq = memchr(s, '=', len);
        if (!eq || eq == s || memchr(s, ':', (size_t)(eq - s)) == s)
            return fail(L, e, "meta: '%.*s' is not KEY=VALUE or KEY:TYPE=VALUE", (int)len, s);
        if (!(v[have + i] = graft_arena_strndup(&L->r->arena, s, len)))
            return graft_error_oom(L->ctx, "meta");
    }
    L->r->meta = v;
    L->r->nmeta = have + k;
    return 0;
}

static int parse_root(loader *L, const yaml_node_t *root)
{
    static const char *const keys[] = {"graft",  "name",  "description", "include",
                                       "select", "rename", "pairs",      "transforms",
                                       "ignore", "policy", "meta",       NULL};
    yaml_node_t *v;
    if (!root) return graft_error(L->ctx, GRAFT_ERULE, "%s:1:1: the file is empty", L->file);
    if (root->type != YAML_MAPPING_NODE)
        return fail(L, root, "expected a mapping at the top, got %s", kind_name(root));
    GRAFT_TRY(get(L, root, "graft", &v));
    if (!v) return fail(L, root, "missing required key 'graft' (the format version, 1 or 1.1)");
    GRAFT_TRY(parse_version(L, v));
    GRAFT_TRY(check_keys(L, root, "", keys));
    GRAFT_TRY(get(L, root, "include", &v));
    if (v) GRAFT_TRY(parse_include(L, v));
    GRAFT_TRY(get(L, root, "name", &v));
    if (v) GRAFT_TRY(want_arena_string(L, v, "name", &L->r->name));
    GRAFT_TRY(get(L, root, "description", &v));
    if (v) GRAFT_TRY(want_arena_string(L, v, "description", &L->r->description));
    GRAFT_TRY(get(L, root, "select", &v));
    if (v) GRAFT_TRY(want_arena_string(L, v, "select", &L->r->select));
    GRAFT_TRY(get(L, root, "rename", &v));
    if (v) GRAFT_TRY(parse_rename(L, v));
    GRAFT_TRY(get(L, root, "pairs", &v));
    if (v) GRAFT_TRY(parse_pairs(L, v));
    GRAFT_TRY(get(L, root, "transforms", &v));
    if (v) GRAFT_TRY(parse_transforms(L, v));
    GRAFT_TRY(get(L, root, "ignore", &v));
    if (v) GRAFT_TRY(parse_ignore(L, v));
    GRAFT_TRY(get(L, root, "policy", &v));
    if (v) GRAFT_TRY(parse_policy(L, v));
    GRAFT_TRY(get(L, root, "meta", &v));
    if (v) GRAFT_TRY(parse_meta(L, v));
    return 0;
}

/* A tab in the indentation of line `line` (0-based) or the one before it,
 * where libyaml's scanner stops with a message that does not say so: its
 * 0-based line and column in *tl, *tc. */
static bool indent_tab(const char *data, size_t size, size_t line, size_t *tl, size_t *tc)
{
    size_t at = 0, l = 0;
    size_t first = line ? line - 1 : 0;
    while (l < first && at < size) l += data[at++] == '\n';
    for (; l <= line && at < size; l++) {
        size_t c = 0;
        while (at < size && (data[at] == ' ' || data[at] == '\t')) {
            if (data[at] == '\t') {
                *tl = l;
                *tc = c;
                return true;
            }
            at++, c++;
        }
        while (at < size && data[at] != '\n') at++;
        at++;
    }
    return false;
}

/* libyaml's error, at its position. */
static int yaml_failed(loader *L, const yaml_parser_t *parser, const char *name,
                       const char *data, size_t size)
{
    size_t tl, tc;
    if (parser->error == YAML_MEMORY_ERROR) return graft_error_oom(L->ctx, "YAML document");
    if (parser->error == YAML_SCANNER_ERROR && data &&
        indent_tab(data, size, parser->problem_mark.line, &tl, &tc))
        return graft_error(L->ctx, GRAFT_ERULE, "%s:%zu:%zu: tabs are not allowed for indentation "
                           "(line %zu, column %zu); indent with spaces", name, tl + 1, tc + 1,
                           tl + 1, tc + 1);
    return graft_error(L->ctx, GRAFT_ERULE, "%s:%zu:%zu: %s%s%s", name,
                       parser->problem_mark.line + 1, parser->problem_mark.column + 1,
                       parser->problem ? parser->problem : "YAML error",
                       parser->context ? " " : "", parser->context ? parser->context : "");
}

/*
 * Read the events once, before libyaml builds a document: nesting past
 * MAX_YAML_DEPTH or more than MAX_YAML_NODES nodes stops here, after at most
 * that much work (libyaml's cost grows with the depth for each token, so a
 * 100k-level file would otherwise take quadratic time).
 */
static int prescan(loader *L, const char *name, const char *data, size_t size)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    size_t depth = 0, nodes = 0;
    int rc = 0;
    bool done = false;

    if (!yaml_parser_initialize(&parser)) return graft_error_oom(L->ctx, "YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, size);
    while (!done && rc == 0) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = yaml_failed(L, &parser, name, data, size);
            break;
        }
        switch (ev.type) {
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++depth > MAX_YAML_DEPTH)
                rc = graft_error(L->ctx, GRAFT_ELIMIT, "%s:%zu:%zu: YAML nested deeper than %u "
                                 "levels", name, ev.start_mark.line + 1,
                                 ev.start_mark.column + 1, MAX_YAML_DEPTH);
            /* fall through */
        case YAML_SCALAR_EVENT:
        case YAML_ALIAS_EVENT:
            if (rc == 0 && ++nodes > MAX_YAML_NODES)
                rc = graft_error(L->ctx, GRAFT_ELIMIT, "%s:%zu:%zu: more than %u YAML nodes",
                                 name, ev.start_mark.line + 1, ev.start_mark.column + 1,
                                 MAX_YAML_NODES);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return rc;
}

/* A second YAML document would be silently ignored: refuse it. */
static int no_second_document(loader *L, yaml_parser_t *parser, const char *name)
{
    yaml_document_t doc;
    int rc = 0;
    if (!yaml_parser_load(parser, &doc)) return yaml_failed(L, parser, name, NULL, 0);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root)
        rc = graft_error(L->ctx, GRAFT_ERULE, "%s:%zu:%zu: a second YAML document; a rules file "
                                              "holds one", name, doc.start_mark.line + 1,
                         doc.start_mark.column + 1);
    yaml_document_delete(&doc);
    return rc;
}

/* Parse one YAML text as file `name` (already in the arena). */
static int load_text(loader *L, const char *name, const char *data, size_t size)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    const char *saved_file = L->file;
    yaml_document_t *saved_doc = L->doc;
    size_t saved_budget = L->budget;
    unsigned saved_minor = L->minor;
    int rc;

    GRAFT_TRY(prescan(L, name, data, size));
    if (!yaml_parser_initialize(&parser)) return graft_error_oom(L->ctx, "YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, size);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = yaml_failed(L, &parser, name, data, size);
        yaml_parser_delete(&parser);
        return rc;
    }
    L->file = name;
    L->doc = &doc;
    L->budget = NODE_BUDGET;
    rc = parse_root(L, yaml_document_get_root_node(&doc));
    L->file = saved_file;
    L->doc = saved_doc;
    L->budget = saved_budget;
    L->minor = saved_minor;
    yaml_document_delete(&doc);
    if (rc == 0) rc = no_second_document(L, &parser, name);
    yaml_parser_delete(&parser);
    return rc;
}

static int read_all(const char *path, char **out, size_t *n, graft_ctx *ctx)
{
    struct stat st;
    int fd = graft_open_regular(path, &st, ctx); /* a FIFO would hang fopen */
    FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (fd < 0) return fd;
    if (!f) {
        close(fd);
        return graft_error(ctx, GRAFT_EIO, "%s: %s", path, strerror(errno));
    }
    errno = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= GRAFT_RULES_MAX_BYTES) {
                fclose(f);
                free(buf);
                return graft_error(ctx, GRAFT_ELIMIT, "%s: larger than %u bytes", path,
                                   GRAFT_RULES_MAX_BYTES);
            }
            cap = cap ? cap * 2 : 4096;
            char *nb = graft_realloc(ctx, buf, cap + 1);
            if (!nb) {
                fclose(f);
                free(buf);
                return graft_error_oom(ctx, "rules file");
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        fclose(f);
        free(buf);
        return graft_error(ctx, GRAFT_EIO, "%s: %s", path, strerror(errno ? errno : EIO));
    }
    fclose(f);
    buf[len] = '\0';
    *out = buf;
    *n = len;
    return 0;
}

/* Load `path` (relative to the current file when included from node `from`). */
static int load_file(loader *L, const char *path, const yaml_node_t *from)
{
    const char *full = path;
    char *data = NULL, *real = NULL;
    size_t size = 0;
    int rc;

    if (from && path[0] != '/') {
        const char *slash = strrchr(L->file, '/');
        if (slash)
            full = graft_arena_printf(&L->r->arena, "%.*s/%s", (int)(slash - L->file), L->file,
                                      path);
    }
    full = full == path ? graft_arena_strdup(&L->r->arena, path) : full;
    if (!full) return graft_error_oom(L->ctx, "rules path");
    real = realpath(full, NULL);
    if (!real) {
        if (from) return fail(L, from, "include '%s': %s", full, strerror(errno));
        return graft_error(L->ctx, errno == ENOENT ? GRAFT_ENOTFOUND : GRAFT_EIO, "%s: %s", full,
                           strerror(errno));
    }
    for (size_t i = 0; i < L->depth; i++) {
        if (strcmp(L->chain[i], real)) continue;
        char msg[GRAFT_MSG_MAX] = "";
        for (size_t j = i; j < L->depth; j++) {
            strncat(msg, L->chain[j], sizeof msg - strlen(msg) - 1);
            strncat(msg, " -> ", sizeof msg - strlen(msg) - 1);
        }
        strncat(msg, real, sizeof msg - strlen(msg) - 1);
        free(real);
        return fail(L, from, "include cycle: %s", msg);
    }
    if (L->depth == GRAFT_RULES_MAX_INCLUDE_DEPTH || L->files == MAX_FILES) {
        free(real);
        return fail(L, from, "include: more than %d deep or %d files",
                    GRAFT_RULES_MAX_INCLUDE_DEPTH, MAX_FILES);
    }
    rc = read_all(full, &data, &size, L->ctx);
    if (rc < 0) {
        free(real);
        if (from) return fail(L, from, "include: %s", graft_ctx_message(L->ctx));
        return rc;
    }
    L->files++;
    L->chain[L->depth++] = real;
    rc = load_text(L, full, data, size);
    L->depth--;
    free(real);
    free(data);
    return rc;
}

static int new_rules(graft_rules **out, graft_ctx *ctx)
{
    graft_rules *r = graft_calloc(ctx, 1, sizeof *r);
    if (!r) return graft_error_oom(ctx, "rules");
    graft_arena_init(&r->arena, ctx);
    *out = r;
    return 0;
}

/* Hand the loaded rules to *out, or free them when rc < 0. */
static int finish_load(loader *L, int rc, graft_rules **out)
{
    graft_strmap_free(&L->pairs);
    if (rc < 0) {
        graft_rules_free(L->r);
        return graft_ctx_status(L->ctx);
    }
    *out = L->r;
    return 0;
}

int graft_rules_load(graft_rules **out, const char *path, graft_ctx *ctx)
{
    loader L = {.ctx = ctx, .allow_include = true};
    *out = NULL;
    GRAFT_TRY(new_rules(&L.r, ctx));
    L.r->path = graft_arena_strdup(&L.r->arena, path);
    return finish_load(&L, L.r->path ? load_file(&L, path, NULL)
                                     : graft_error_oom(ctx, "rules path"),
                       out);
}

int graft_rules_load_buffer(graft_rules **out, const char *name, const char *data,
                            size_t size, graft_ctx *ctx)
{
    loader L = {.ctx = ctx, .allow_include = false};
    *out = NULL;
    if (size > GRAFT_RULES_MAX_BYTES)
        return graft_error(ctx, GRAFT_ELIMIT, "%s: larger than %u bytes", name,
                           GRAFT_RULES_MAX_BYTES);
    GRAFT_TRY(new_rules(&L.r, ctx));
    L.r->path = graft_arena_strdup(&L.r->arena, name);
    return finish_load(&L, L.r->path ? load_text(&L, L.r->path, data, size)
                                     : graft_error_oom(ctx, "rules path"),
                       out);
}

void graft_rules_free(graft_rules *r)
{
    if (!r) return;
    for (int side = 0; side < 2; side++) {
        for (size_t i = 0; i < r->nrename[side]; i++) graft_rules__regex_free(&r->rename[side][i].match);
        for (size_t i = 0; i < r->nignore[side]; i++) graft_rules__regex_free(&r->ignore[side][i]);
        free(r->rename[side]);
        free(r->ignore[side]);
    }
    for (size_t i = 0; i < r->ntransforms; i++) {
        graft_rules__regex_free(&r->transforms[i].target);
        graft_rules__regex_free(&r->transforms[i].source);
    }
    free(r->transforms);
    free(r->pairs);
    graft_arena_free(&r->arena);
    free(r);
}
