/* format.c - the format registry and graft_model_open(). */
#include "format.h"

#include <stdio.h>
#include <string.h>

#define FORMAT(x) extern const graft_format graft_format_##x;
#include "formats.def"
#undef FORMAT

const graft_format *const graft_formats[] = {
#define FORMAT(x) &graft_format_##x,
#include "formats.def"
#undef FORMAT
    NULL,
};

const char *const *graft_format_names(void)
{
    static const char *names[sizeof graft_formats / sizeof *graft_formats];
    for (size_t i = 0; graft_formats[i]; i++) names[i] = graft_formats[i]->name;
    return names;
}

const graft_format *graft_format_find(const char *name)
{
    for (size_t i = 0; graft_formats[i]; i++)
        if (strcmp(graft_formats[i]->name, name) == 0) return graft_formats[i];
    return NULL;
}

void graft_model__extras(const graft_model *m, const char *select, graft_extras *out)
{
    memset(out, 0, sizeof *out);
    if (m->format && m->format->extras) m->format->extras(m, select, out);
}

const char *graft_tensor_encoding(const graft_model *m, const graft_tensor *t)
{
    return m->format && m->format->tensor_encoding ? m->format->tensor_encoding(m, t) : NULL;
}

int graft_fill_emit(graft_fill *fill, const graft_model *m, size_t index, graft_sink *out,
                    graft_ctx *ctx)
{
    const graft_tensor *t = &m->tensors[index];
    uint64_t before = graft_sink_tell(out);
    GRAFT_TRY(fill->emit(fill, index, out, ctx));
    if (graft_sink_tell(out) - before != t->nbytes)
        return graft_error(ctx, GRAFT_ERROR, "tensor '%s': %llu bytes written, expected %llu",
                           t->name, (unsigned long long)(graft_sink_tell(out) - before),
                           (unsigned long long)t->nbytes);
    return GRAFT_OK;
}

static int pick(const graft_format **out, const char *path, bool is_dir,
                const graft_source *src, const graft_open_options *opts, graft_ctx *ctx)
{
    const uint8_t *head = src ? src->data : NULL;
    size_t n = src ? src->size : 0;
    *out = NULL;
    if (opts && opts->format) {
        *out = graft_format_find(opts->format);
        if (!*out)
            return graft_error(ctx, GRAFT_EFORMAT, "%s: unknown format '%s'", path, opts->format);
        /* The format is forced, not its container: a folder must still be
         * one this format reads (readers of files need a file), and an
         * empty file is no model of any format. */
        if (is_dir && !(*out)->probe(path, true, NULL, 0))
            return graft_error(ctx, GRAFT_EFORMAT, "%s: a folder that holds no %s model", path,
                               opts->format);
        if (!is_dir && n == 0)
            return graft_error(ctx, GRAFT_ECORRUPT, "%s: the file is empty, not a %s model", path,
                               opts->format);
        return GRAFT_OK;
    }
    for (size_t i = 0; graft_formats[i]; i++)
        if (graft_formats[i]->probe(path, is_dir, head, n)) {
            *out = graft_formats[i];
            return GRAFT_OK;
        }
    return graft_error(ctx, GRAFT_EFORMAT, "%s: not a model file graft knows (%s)", path,
                       n < 4 && !is_dir ? "too short to tell" : "unrecognized magic bytes");
}

static int open_model(graft_model *m, graft_source *src, const graft_open_options *opts,
                      graft_ctx *ctx)
{
    const graft_format *fmt;
    bool is_dir = src == NULL;

    if (src) GRAFT_TRY(graft_model__own_source(m, src, ctx));
    GRAFT_TRY(pick(&fmt, m->path, is_dir, src, opts, ctx));
    if (fmt->layout) GRAFT_TRY(fmt->layout(m, &fmt, ctx));
    m->format = fmt;
    GRAFT_TRY(fmt->open(m, opts, ctx));
    GRAFT_TRY(graft_model_validate(m, ctx));
    if (opts && opts->select && *opts->select)
        GRAFT_TRY(graft_model__select(m, opts->select, ctx));
    return GRAFT_OK;
}

/* Give every failure the file name once, unless the innermost already did. */
static int name_file(graft_ctx *ctx, const char *path)
{
    size_t n = strlen(path);
    if (strncmp(ctx->msg, path, n) == 0 && ctx->msg[n] == ':') return ctx->status;
    return graft_error_prefix(ctx, "%s", path);
}

/* Map path; a path that is no file may still name a model through a
 * format's resolve() (a TensorFlow checkpoint prefix). */
static int open_source(graft_source **src, const char *path, graft_ctx *ctx)
{
    int rc = graft_source_open(src, path, ctx);
    for (size_t i = 0; rc == GRAFT_ENOTFOUND && graft_formats[i]; i++)
        if (graft_formats[i]->resolve) rc = graft_formats[i]->resolve(src, path, ctx);
    return rc;
}

static int open_path(graft_model **out, const char *path, const graft_open_options *opts,
                     bool deferred, graft_ctx *ctx)
{
    graft_model *m = NULL;
    graft_source *src = NULL;
    char named[4096]; /* the path as opened; outlives the source and the model */
    int rc;

    *out = NULL;
    graft_ctx_clear(ctx);
    if (!graft_path_is_dir(path)) {
        rc = open_source(&src, path, ctx);
        if (rc < 0) return rc;
        path = src->path; /* what resolve() opened, e.g. a checkpoint's .index */
    }
    snprintf(named, sizeof named, "%s", path);
    rc = graft_model__new(&m, named, ctx);
    if (rc < 0) {
        graft_source_free(src);
        return name_file(ctx, named);
    }
    m->defer_checks = deferred;
    rc = open_model(m, src, opts, ctx);
    if (rc < 0) {
        graft_model_free(m);
        return name_file(ctx, named);
    }
    *out = m;
    return GRAFT_OK;
}

int graft_model_open(graft_model **out, const char *path, const graft_open_options *opts,
                     graft_ctx *ctx)
{
    return open_path(out, path, opts, false, ctx);
}

int graft_model__open_deferred(graft_model **out, const char *path,
                               const graft_open_options *opts, graft_ctx *ctx)
{
    return open_path(out, path, opts, true, ctx);
}

int graft_model_open_buffer(graft_model **out, const char *name, const uint8_t *data,
                            size_t size, const graft_open_options *opts, graft_ctx *ctx)
{
    graft_model *m = NULL;
    graft_source *src = NULL;
    int rc;

    *out = NULL;
    graft_ctx_clear(ctx);
    GRAFT_TRY(graft_source_from_buffer(&src, name, data, size, ctx));
    rc = graft_model__new(&m, name, ctx);
    if (rc < 0) {
        graft_source_free(src);
        return rc;
    }
    rc = open_model(m, src, opts, ctx);
    if (rc < 0) {
        graft_model_free(m);
        return name_file(ctx, name);
    }
    *out = m;
    return GRAFT_OK;
}
