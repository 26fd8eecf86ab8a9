/*
 * tf_ckpt.c - format "tf-checkpoint": a TensorFlow checkpoint V2.
 *
 * What the path may name:
 *  1. PREFIX.index - the bundle index (a table ending with the 8-byte magic
 *     57 fb 80 8b 24 75 47 db); the data files PREFIX.data-SSSSS-of-NNNNN sit
 *     beside it (layout in tf_bundle.c and tf_table.c);
 *  2. a folder holding a `checkpoint` file: a text-format CheckpointState
 *     whose `model_checkpoint_path: "P"` names the prefix, relative to the
 *     folder unless absolute.
 * Writing to OUT produces OUT.index and OUT.data-* (OUT may end in ".index",
 * or be a folder, which receives the skeleton's file names) and a
 * `checkpoint` state file naming it, as tf.train.CheckpointManager does.
 */
#include "format.h"
#include "source.h"
#include "tf_bundle.h"
#include "tf_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STATE_FILE "checkpoint"

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool probe(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    if (is_dir) {
        char p[4096];
        struct stat st;
        if ((size_t)snprintf(p, sizeof p, "%s/" STATE_FILE, path) >= sizeof p) return false;
        return stat(p, &st) == 0 && S_ISREG(st.st_mode);
    }
    /* By name, so that a damaged footer still gets a table error. */
    (void)head;
    (void)n;
    return ends_with(path, ".index");
}

/* The value of the first `model_checkpoint_path: "..."` line, unescaped. */
static int state_path(const graft_source *src, char **out, graft_ctx *ctx)
{
    const char *p = (const char *)src->data, *end = p + src->size;
    static const char key[] = "model_checkpoint_path";
    *out = NULL;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *q = p;
        if (!eol) eol = end;
        while (q < eol && (*q == ' ' || *q == '\t')) q++;
        if ((size_t)(eol - q) > sizeof key && memcmp(q, key, sizeof key - 1) == 0 &&
            (q[sizeof key - 1] == ':' || q[sizeof key - 1] == ' ')) {
            char *s, *w;
            q += sizeof key - 1;
            while (q < eol && (*q == ' ' || *q == ':' || *q == '\t')) q++;
            if (q >= eol || (*q != '"' && *q != '\''))
                break;
            char quote = *q++;
            s = w = graft_malloc(ctx, (size_t)(eol - q) + 1);
            if (!s) return graft_error_oom(ctx, "a path");
            while (q < eol && *q != quote) {
                if (*q == '\\' && q + 1 < eol) {
                    q++;
                    if (*q >= '0' && *q <= '7') {
                        int v = 0;
                        for (int k = 0; k < 3 && q < eol && *q >= '0' && *q <= '7'; k++)
                            v = v * 8 + (*q++ - '0');
                        *w++ = (char)v;
                        continue;
                    }
                    *w++ = *q == 'n' ? '\n' : *q == 't' ? '\t' : *q == 'r' ? '\r' : *q;
                    q++;
                    continue;
                }
                *w++ = *q++;
            }
            *w = '\0';
            if (q >= eol || !s[0] || memchr(s, '\0', (size_t)(w - s))) {
                free(s);
                break;
            }
            *out = s;
            return GRAFT_OK;
        }
        p = eol + 1;
    }
    return graft_error(ctx, GRAFT_ECORRUPT, "%s: no model_checkpoint_path in the checkpoint state",
                       src->path);
}

static int open_dir(graft_model *m, graft_ctx *ctx)
{
    const graft_source *state, *index;
    char *p = graft_malloc(ctx, strlen(m->path) + sizeof STATE_FILE + 2), *rel = NULL;
    char *prefix = NULL, *ipath = NULL;
    int rc;
    if (!p) return graft_error_oom(ctx, "a path");
    sprintf(p, "%s/" STATE_FILE, m->path);
    rc = graft_model__add_source(m, p, &state, ctx);
    if (rc == 0) rc = state_path(state, &rel, ctx);
    if (rc == 0) {
        prefix = graft_malloc(ctx, strlen(m->path) + strlen(rel) + 2);
        ipath = graft_malloc(ctx, strlen(m->path) + strlen(rel) + 8);
        if (!prefix || !ipath) rc = graft_error_oom(ctx, "a path");
    }
    if (rc == 0) {
        if (rel[0] == '/')
            strcpy(prefix, rel);
        else
            sprintf(prefix, "%s/%s", m->path, rel);
        sprintf(ipath, "%s.index", prefix);
        rc = graft_model__add_source(m, ipath, &index, ctx);
        if (rc < 0)
            graft_error_prefix(ctx, "%s: model_checkpoint_path \"%s\"", p, rel);
    }
    if (rc == 0) rc = graft_tf__bundle_open(m, prefix, index, ctx);
    if (rc < 0 && ipath && strncmp(ctx->msg, ipath, strlen(ipath)) != 0 &&
        strncmp(ctx->msg, p, strlen(p)) != 0)
        graft_error_prefix(ctx, "%s", ipath);
    free(p);
    free(rel);
    free(prefix);
    free(ipath);
    return rc;
}

static int open_ckpt(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    size_t n;
    char *prefix;
    int rc;
    (void)opts;
    if (m->nsources == 0) return open_dir(m, ctx);
    n = strlen(m->path);
    if (!ends_with(m->path, ".index"))
        return graft_error(ctx, GRAFT_EFORMAT, "a checkpoint is named PREFIX.index");
    prefix = graft_strdup(ctx, m->path);
    if (!prefix) return graft_error_oom(ctx, "a path");
    prefix[n - 6] = '\0';
    rc = graft_tf__bundle_open(m, prefix, m->sources[0], ctx);
    free(prefix);
    return rc;
}

/* The `checkpoint` state file beside prefix, naming it relative to its
 * folder; written to *out but not committed. */
static int write_state(const char *prefix, graft_sink **out, graft_ctx *ctx)
{
    const char *slash = strrchr(prefix, '/');
    const char *base = slash ? slash + 1 : prefix;
    size_t dirlen = slash ? (size_t)(slash - prefix + 1) : 0;
    char *path = graft_malloc(ctx, dirlen + sizeof STATE_FILE);
    char *esc = graft_malloc(ctx, strlen(base) * 4 + 1), *w = esc;
    graft_sink *s = NULL;
    int rc;
    *out = NULL;
    if (!path || !esc) {
        free(path);
        free(esc);
        return graft_error_oom(ctx, "a path");
    }
    sprintf(path, "%.*s" STATE_FILE, (int)dirlen, prefix);
    for (const unsigned char *c = (const unsigned char *)base; *c; c++) {
        if (*c == '"' || *c == '\\') {
            *w++ = '\\';
            *w++ = (char)*c;
        } else if (*c < 0x20 || *c >= 0x7f) {
            w += sprintf(w, "\\%03o", *c);
        } else {
            *w++ = (char)*c;
        }
    }
    *w = '\0';
    rc = graft_sink_open(&s, path, ctx);
    for (int i = 0; rc == 0 && i < 2; i++) {
        const char *k = i ? "all_model_checkpoint_paths: \"" : "model_checkpoint_path: \"";
        rc = graft_sink_write(s, k, strlen(k));
        if (rc == 0) rc = graft_sink_write(s, esc, strlen(esc));
        if (rc == 0) rc = graft_sink_write(s, "\"\n", 2);
    }
    if (rc == 0)
        *out = s;
    else
        graft_sink_abort(s);
    free(path);
    free(esc);
    return rc;
}

/* The prefix written for out_path (malloc'ed): OUT.index -> OUT; a folder
 * receives the skeleton's base name; anything else is the prefix. */
static int out_prefix(const graft_model *m, const char *out_path, char **out, graft_ctx *ctx)
{
    const char *skel = graft_tf__bundle_prefix(m);
    const char *base = skel ? strrchr(skel, '/') : NULL;
    size_t n = strlen(out_path);
    char *prefix;
    *out = NULL;
    if (!skel) return graft_error(ctx, GRAFT_EFORMAT, "the skeleton holds no checkpoint");
    base = base ? base + 1 : skel;
    prefix = graft_malloc(ctx, n + strlen(base) + 2);
    if (!prefix) return graft_error_oom(ctx, "a path");
    if (ends_with(out_path, ".index"))
        sprintf(prefix, "%.*s", (int)(n - 6), out_path);
    else if (graft_path_is_dir(out_path) || (n && out_path[n - 1] == '/'))
        sprintf(prefix, "%s%s%s", out_path, n && out_path[n - 1] == '/' ? "" : "/", base);
    else
        strcpy(prefix, out_path);
    *out = prefix;
    return GRAFT_OK;
}

static int write_ckpt(const graft_model *m, const char *out_path, graft_fill *fill,
                      graft_ctx *ctx)
{
    graft_sink *state = NULL;
    char *prefix;
    int rc;
    GRAFT_TRY(out_prefix(m, out_path, &prefix, ctx));
    /* The state file is prepared first and renamed into place last. */
    rc = write_state(prefix, &state, ctx);
    if (rc == 0) rc = graft_tf__bundle_write(m, prefix, fill, ctx);
    if (rc == 0) {
        rc = graft_sink_commit(state);
        state = NULL;
    }
    graft_sink_abort(state);
    free(prefix);
    return rc;
}

/* PREFIX.index, PREFIX.data-* and the state file, in one allocation. */
static int outputs(const graft_model *m, const char *out_path, char ***files, graft_ctx *ctx)
{
    uint32_t nshards = graft_tf__bundle_nshards(m);
    char *prefix, **v, *at;
    const char *slash;
    size_t plen, n = (size_t)nshards + 2, bytes;
    *files = NULL;
    GRAFT_TRY(out_prefix(m, out_path, &prefix, ctx));
    plen = strlen(prefix);
    slash = strrchr(prefix, '/');
    /* each name fits in prefix + ".data-00000-of-00000" (20 bytes + NUL) */
    bytes = (n + 1) * sizeof *v + n * (plen + sizeof STATE_FILE + 24);
    if (!(v = graft_calloc(ctx, 1, bytes))) {
        free(prefix);
        return graft_error_oom(ctx, "output names");
    }
    at = (char *)(v + n + 1);
    v[0] = at;
    at += sprintf(at, "%s.index", prefix) + 1;
    for (uint32_t i = 0; i < nshards; i++) {
        v[1 + i] = at;
        at += sprintf(at, "%s.data-%05u-of-%05u", prefix, i, nshards) + 1;
    }
    v[n - 1] = at;
    sprintf(at, "%.*s" STATE_FILE, slash ? (int)(slash - prefix + 1) : 0, prefix);
    free(prefix);
    *files = v;
    return GRAFT_OK;
}

/* A checkpoint is named by its prefix ("model.ckpt-5000"), which is no
 * file: open its ".index" instead. */
static int resolve_prefix(graft_source **out, const char *path, graft_ctx *ctx)
{
    char index[4096];
    if ((size_t)snprintf(index, sizeof index, "%s.index", path) >= sizeof index)
        return GRAFT_ENOTFOUND; /* the caller's "no such file" stands */
    if (graft_source_open(out, index, ctx) < 0)
        return graft_error(ctx, GRAFT_ENOTFOUND, "%s: no such file (nor a checkpoint %s)", path,
                           index);
    graft_ctx_clear(ctx);
    return GRAFT_OK;
}

const graft_format graft_format_tf_checkpoint = {
    .name = "tf-checkpoint",
    .probe = probe,
    .open = open_ckpt,
    .write = write_ckpt,
    .resolve = resolve_prefix,
    .outputs = outputs,
};
