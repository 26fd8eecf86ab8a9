/*
 * tf_savedmodel.c - format "tf-savedmodel": a TensorFlow SavedModel folder.
 *
 * Layout of the folder:
 *  1. saved_model.pb - a serialized SavedModel (meta graphs, signatures);
 *     copied unchanged into an output folder;
 *  2. variables/variables.index + variables/variables.data-SSSSS-of-NNNNN -
 *     a checkpoint V2 (tf_bundle.c) holding the variables; absent when the
 *     model has none;
 *  3. assets/, fingerprint.pb, keras_metadata.pb - not read or written
 *     (a fingerprint would no longer match new weights).
 * The tensors are the checkpoint's.  Writing builds OUT as a temporary
 * folder beside it and renames it into place.
 */
#include "format.h"
#include "layout.h"
#include "tf_bundle.h"
#include "tf_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GRAPH_FILE "saved_model.pb"
#define VARS "variables/variables"

/* Present as anything: a FIFO or a folder named variables.index is then
 * refused when opened (graft_source), never taken for "no variables". */
static bool exists(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, name) >= sizeof p) return false;
    return stat(p, &st) == 0;
}

static bool probe(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    (void)head;
    (void)n;
    return is_dir && (exists(path, GRAPH_FILE) || exists(path, VARS ".index"));
}

static char *join(const char *dir, const char *name, graft_ctx *ctx)
{
    char *p = graft_malloc(ctx, strlen(dir) + strlen(name) + 2);
    if (p) sprintf(p, "%s/%s", dir, name);
    return p;
}

/* Roles and layouts of the variables (TF1 names) from the ops of saved_model.pb. */
static int layouts_from_graph(graft_model *m, graft_ctx *ctx)
{
    graft_source *src = NULL;
    char *path = join(m->path, GRAPH_FILE, ctx);
    int rc;
    if (!path) return graft_error_oom(ctx, "a path");
    rc = graft_layout__settle(graft_source_open(&src, path, ctx), ctx); /* optional */
    if (rc == 0 && src) rc = graft_layout__tf(m, src->data, src->size, 2, ctx);
    graft_source_free(src);
    free(path);
    return rc;
}

static int open_sm(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    const graft_source *index;
    char *prefix, *ipath;
    int rc;
    (void)opts;
    if (m->nsources) /* --format on a file */
        return graft_error(ctx, GRAFT_EFORMAT, "a TensorFlow SavedModel is a folder (with %s and "
                           "variables/), not a file", GRAPH_FILE);
    if (!exists(m->path, GRAPH_FILE) && !exists(m->path, VARS ".index"))
        return graft_error(ctx, GRAFT_EFORMAT, "not a TensorFlow SavedModel: neither %s nor %s",
                           GRAPH_FILE, VARS ".index");
    if (exists(m->path, GRAPH_FILE)) { /* a text file there is not a SavedModel */
        const graft_source *graph;
        char *gpath = join(m->path, GRAPH_FILE, ctx);
        rc = gpath ? graft_model__add_source(m, gpath, &graph, ctx)
                   : graft_error_oom(ctx, "a path");
        if (rc == 0) rc = graft_tf__check_message(GRAFT_TF_SAVEDMODEL, graph->data, graph->size, ctx);
        if (rc < 0 && gpath && strncmp(graft_ctx_message(ctx), "not ", 4) != 0)
            graft_error_prefix(ctx, "not a TensorFlow SavedModel");
        if (rc < 0 && gpath) graft_error_prefix(ctx, GRAPH_FILE);
        free(gpath);
        GRAFT_TRY(rc);
    }
    if (!exists(m->path, VARS ".index")) return GRAFT_OK; /* a model without variables */
    prefix = join(m->path, VARS, ctx);
    ipath = join(m->path, VARS ".index", ctx);
    rc = prefix && ipath ? graft_model__add_source(m, ipath, &index, ctx)
                         : graft_error_oom(ctx, "a path");
    if (rc == 0) rc = graft_tf__bundle_open(m, prefix, index, ctx);
    if (rc < 0 && ipath && strncmp(ctx->msg, ipath, strlen(ipath)) != 0)
        graft_error_prefix(ctx, "%s", ipath);
    free(prefix);
    free(ipath);
    return rc < 0 ? rc : layouts_from_graph(m, ctx);
}

/* Remove what we may have created in a temporary output folder. */
static void remove_tmp(const char *tmp, const graft_model *m)
{
    char p[4096];
    const char *const names[] = {GRAPH_FILE, VARS ".index", "checkpoint"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if ((size_t)snprintf(p, sizeof p, "%s/%s", tmp, names[i]) < sizeof p) unlink(p);
    for (size_t i = 0; i < m->nsources; i++) {
        const char *dp = strstr(m->sources[i]->path, VARS ".data-");
        if (dp && (size_t)snprintf(p, sizeof p, "%s/%s", tmp, dp) < sizeof p) unlink(p);
    }
    if ((size_t)snprintf(p, sizeof p, "%s/variables", tmp) < sizeof p) rmdir(p);
    rmdir(tmp);
}

/*
 * The new SavedModel is made in a folder "<out>.graft-<pid>-<n>" renamed
 * into place at the end.  Its files stay unnamed until all are written
 * (graft_sink), and the folder is made only when they are linked in: a
 * process killed on the way (even by SIGKILL) leaves nothing.
 */
static int write_sm(const graft_model *m, const char *out_path, graft_fill *fill,
                    graft_ctx *ctx)
{
    static unsigned serial;
    size_t n = strlen(out_path);
    char *tmp = graft_malloc(ctx, n + 48), *p = NULL;
    graft_sink *graph = NULL;
    int rc = GRAFT_OK;
    if (!tmp) return graft_error_oom(ctx, "a path");
    while (n > 1 && out_path[n - 1] == '/') n--;
    do
        sprintf(tmp, "%.*s.graft-%ld-%u", (int)n, out_path, (long)getpid(), serial++);
    while (access(tmp, F_OK) == 0);
    graft_sink_folder_output(tmp);
    if (exists(m->path, GRAPH_FILE)) { /* written now, linked in after the variables */
        char *fp = join(m->path, GRAPH_FILE, ctx);
        p = join(tmp, GRAPH_FILE, ctx);
        rc = fp && p ? graft_copy_file_pending(fp, p, &graph, ctx) : graft_error_oom(ctx, "a path");
        free(fp);
        free(p);
        p = NULL;
    }
    if (rc == 0 && graft_tf__bundle_prefix(m)) {
        p = join(tmp, VARS, ctx);
        rc = p ? graft_tf__bundle_write(m, p, fill, ctx) : graft_error_oom(ctx, "a path");
    }
    if (rc == 0 && graph) {
        rc = graft_sink_commit(graph);
        graph = NULL;
    }
    graft_sink_folder_output(NULL);
    if (rc == 0 && access(tmp, F_OK) != 0 && mkdir(tmp, 0777) < 0) /* nothing in it */
        rc = graft_error(ctx, GRAFT_EIO, "%s: cannot create the folder", tmp);
    if (rc == 0 && rename(tmp, out_path) < 0)
        rc = graft_error(ctx, GRAFT_EIO, "%s: cannot move the new SavedModel into place "
                         "(does a non-empty folder exist there?)", out_path);
    if (rc < 0) remove_tmp(tmp, m);
    graft_sink_abort(graph);
    free(p);
    free(tmp);
    return rc;
}

const graft_format graft_format_tf_savedmodel = {
    .name = "tf-savedmodel",
    .probe = probe,
    .open = open_sm,
    .write = write_sm,
};
