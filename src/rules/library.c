/* library.c - find the shipped rules files and rank them against two models. */
#include "library.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

/* "a  b\n c" -> "a b c" (malloc'ed). */
static char *collapse(graft_ctx *ctx, const char *s)
{
    char *out = graft_malloc(ctx, strlen(s ? s : "") + 1), *o = out;
    if (!out) return NULL;
    for (; s && *s; s++) {
        bool space = *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r';
        if (space && (o == out || o[-1] == ' ')) continue;
        *o++ = space ? ' ' : *s;
    }
    if (o > out && o[-1] == ' ') o--;
    *o = '\0';
    return out;
}

static void entry_free(graft_rules_entry *e)
{
    free(e->path);
    free(e->name);
    free(e->direction);
    free(e->title);
    free(e->description);
}

void graft_rules_library_free(graft_rules_library *lib)
{
    if (!lib) return;
    for (size_t i = 0; i < lib->count; i++) entry_free(&lib->entries[i]);
    free(lib->entries);
    free(lib);
}

static bool known(const graft_rules_library *lib, const char *name)
{
    for (size_t i = 0; i < lib->count; i++)
        if (!strcmp(lib->entries[i].name, name)) return true;
    return false;
}

/* Load one file and append it (unless an earlier folder had its name). */
static int add_file(graft_rules_library *lib, size_t *cap, const char *dir, const char *direction,
                    const char *file, graft_ctx *ctx)
{
    graft_rules *r = NULL;
    graft_rules_entry e = {0};
    int rc = GRAFT_ENOMEM;
    size_t n = strlen(dir) + strlen(direction) + strlen(file) + 3;
    e.path = graft_malloc(ctx, n);
    e.name = graft_malloc(ctx, strlen(direction) + strlen(file) + 2);
    if (!e.path || !e.name) goto oom;
    snprintf(e.path, n, "%s/%s/%s", dir, direction, file);
    snprintf(e.name, strlen(direction) + strlen(file) + 2, "%s/%.*s", direction,
             (int)(strlen(file) - strlen(".yaml")), file);
    if (known(lib, e.name)) {
        rc = GRAFT_OK;
        goto cleanup;
    }
    if ((rc = graft_rules_load(&r, e.path, ctx)) < 0) goto cleanup;
    rc = GRAFT_ENOMEM;
    e.direction = graft_strdup(ctx, direction);
    e.title = collapse(ctx, r->name);
    e.description = collapse(ctx, r->description);
    if (!e.direction || !e.title || !e.description) goto oom;
    if (lib->count == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        graft_rules_entry *v = graft_realloc(ctx, lib->entries, c * sizeof *v);
        if (!v) goto oom;
        lib->entries = v;
        *cap = c;
    }
    lib->entries[lib->count++] = e;
    graft_rules_free(r);
    return GRAFT_OK;
oom:
    graft_error_oom(ctx, "rules library");
cleanup:
    graft_rules_free(r);
    entry_free(&e);
    return rc;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names in a folder that pass `keep`; malloc'ed, NULL-terminated. */
static char **listing(const char *dir, bool (*keep)(const char *dir, const char *name),
                      graft_ctx *ctx)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **v = NULL;
    size_t n = 0;
    if (!d) return graft_calloc(ctx, 1, sizeof *v);
    while ((de = readdir(d))) {
        char **w;
        if (de->d_name[0] == '.' || !keep(dir, de->d_name)) continue;
        if (!(w = graft_realloc(ctx, v, (n + 2) * sizeof *v)) ||
            !(w[n] = graft_strdup(ctx, de->d_name))) {
            if (w) v = w;
            goto oom;
        }
        v = w;
        n++;
    }
    closedir(d);
    if (!v && !(v = graft_malloc(ctx, sizeof *v))) return NULL;
    v[n] = NULL;
    qsort(v, n, sizeof *v, cmp_name);
    return v;
oom:
    closedir(d);
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
    return NULL;
}

static void listing_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++) free(v[i]);
    free(v);
}

static bool keep_dir(const char *dir, const char *name)
{
    char path[4096];
    return snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path && is_dir(path);
}

static bool keep_yaml(const char *dir, const char *name)
{
    (void)dir;
    return has_suffix(name, ".yaml");
}

static int scan_dir(graft_rules_library *lib, size_t *cap, const char *dir, graft_ctx *ctx)
{
    char **dirs = listing(dir, keep_dir, ctx), path[4096];
    int rc = GRAFT_OK;
    if (!dirs) return graft_error_oom(ctx, "rules library");
    for (size_t i = 0; dirs[i] && rc == GRAFT_OK; i++) {
        char **files;
        if (snprintf(path, sizeof path, "%s/%s", dir, dirs[i]) >= (int)sizeof path) continue;
        if (!(files = listing(path, keep_yaml, ctx))) {
            rc = graft_error_oom(ctx, "rules library");
            break;
        }
        for (size_t k = 0; files[k] && rc == GRAFT_OK; k++)
            rc = add_file(lib, cap, dir, dirs[i], files[k], ctx);
        listing_free(files);
    }
    listing_free(dirs);
    return rc;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const graft_rules_entry *)a)->name, ((const graft_rules_entry *)b)->name);
}

int graft_rules_library_scan(graft_rules_library **out, const char *const *dirs, size_t ndirs,
                             graft_ctx *ctx)
{
    size_t cap = 0;
    graft_rules_library *lib = graft_calloc(ctx, 1, sizeof *lib);
    *out = NULL;
    if (!lib) return graft_error_oom(ctx, "rules library");
    for (size_t i = 0; i < ndirs; i++) {
        if (!dirs[i] || !is_dir(dirs[i])) continue;
        if (scan_dir(lib, &cap, dirs[i], ctx) < 0) {
            graft_rules_library_free(lib);
            return graft_ctx_status(ctx);
        }
    }
    if (lib->count) qsort(lib->entries, lib->count, sizeof *lib->entries, cmp_entry);
    *out = lib;
    return GRAFT_OK;
}

/* ---- matching ------------------------------------------------------------ */

static int cmp_match(const void *pa, const void *pb)
{
    const graft_rules_match *a = pa, *b = pb;
    if (a->filled != b->filled) return a->filled > b->filled ? -1 : 1;
    if (a->unused != b->unused) return a->unused < b->unused ? -1 : 1;
    if (a->warnings != b->warnings) return a->warnings < b->warnings ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* Plan one file; *m filled in. */
static int plan_one(const graft_rules_entry *e, graft_model *src, const char *source,
                    const graft_open_options *src_opts, const graft_model *skel, bool reverse,
                    graft_rules_match *m, graft_ctx *ctx)
{
    graft_rules *r = NULL;
    graft_model *sel = NULL;
    graft_plan *p = NULL;
    graft_plan_options po = GRAFT_PLAN_OPTIONS_INIT;
    int rc;
    po.reverse = reverse;
    if ((rc = graft_rules_load(&r, e->path, ctx)) < 0) goto cleanup;
    if (r->select && *r->select && !reverse) {
        graft_open_options o = src_opts ? *src_opts : (graft_open_options)GRAFT_OPEN_OPTIONS_INIT;
        o.select = r->select;
        if ((rc = graft_model_open(&sel, source, &o, ctx)) < 0) {
            if (rc == GRAFT_ENOMEM) goto cleanup;
            graft_ctx_clear(ctx); /* no such sub-tree: no match */
            m->errors = 1;
            rc = GRAFT_OK;
            goto cleanup;
        }
    }
    if ((rc = graft_plan_build(&p, r, sel ? sel : src, skel, &po, ctx)) < 0) goto cleanup;
    m->targets = p->nentries;
    m->unused = p->nunused;
    m->errors = p->errors;
    for (size_t i = 0; i < p->nentries; i++)
        m->filled += p->entries[i].status == GRAFT_PLAN_OK && p->entries[i].nsources;
    for (size_t i = 0; i < p->ndiags; i++) m->warnings += p->diags[i].level == GRAFT_DIAG_WARNING;
cleanup:
    if (rc < 0) graft_error_prefix(ctx, "%s", e->path);
    graft_plan_free(p);
    graft_model_free(sel);
    graft_rules_free(r);
    return rc;
}

int graft_rules_library_match(const graft_rules_library *lib, const char *source,
                              const graft_open_options *src_opts, const char *skeleton,
                              const graft_open_options *skel_opts, bool reverse,
                              graft_rules_match **out, size_t *n, graft_ctx *ctx)
{
    graft_model *src = NULL, *skel = NULL;
    graft_rules_match *v = NULL;
    int rc;
    *out = NULL;
    *n = 0;
    if ((rc = graft_model_open(&src, source, src_opts, ctx)) < 0) goto cleanup;
    if ((rc = graft_model_open(&skel, skeleton, skel_opts, ctx)) < 0) goto cleanup;
    if (!(v = graft_calloc(ctx, lib->count + 1, sizeof *v))) {
        rc = graft_error_oom(ctx, "rules matches");
        goto cleanup;
    }
    for (size_t i = 0; i < lib->count; i++) {
        graft_rules_match m = {.entry = i, .name = lib->entries[i].name};
        if ((rc = plan_one(&lib->entries[i], src, source, src_opts, skel, reverse, &m, ctx)) < 0)
            goto cleanup;
        if (!m.errors) v[(*n)++] = m;
    }
    if (*n) qsort(v, *n, sizeof *v, cmp_match);
    *out = v;
    v = NULL;
cleanup:
    if (rc < 0) *n = 0;
    free(v);
    graft_model_free(skel);
    graft_model_free(src);
    return rc;
}
