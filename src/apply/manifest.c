/*
 * manifest.c - the JSON provenance record of one `graft apply --manifest`.
 *
 * {"graft": VERSION,
 *  "inputs": {"source": MODEL, "skeleton": MODEL},
 *  "rules": {"path", "sha256"} | null, "reverse": bool,
 *  "output": MODEL,
 *  "tensors": [{"target", "action": "transplanted" | "kept", "sources": [names],
 *               "ops": [op...], "dtype", "shape", "sha256"}]}
 * MODEL = {"path", "format", "files": [{"path", "sha256"}]}: every file the
 * model was read from (shards, data files).  Tensor hashes are of the
 * row-major little-endian elements, as `graft ls --sha256` prints them, read
 * back from the output file so the record describes what was written.
 */
#include "apply.h"

#include "../core/sha256.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A JSON writer over a sink; the first failure sticks. */
typedef struct jw {
    graft_sink *s;
    int rc;
} jw;

static void put(jw *w, const char *s)
{
    if (w->rc == GRAFT_OK) w->rc = graft_sink_write(w->s, s, strlen(s));
}

static void putf(jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(jw *w, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    put(w, buf);
}

static void put_str(jw *w, const char *s)
{
    char esc[8];
    const char *run = s;
    put(w, "\"");
    for (const unsigned char *p = (const unsigned char *)s;; p++) {
        if (*p && *p >= 0x20 && *p != '"' && *p != '\\') continue;
        if (w->rc == GRAFT_OK && (const char *)p > run)
            w->rc = graft_sink_write(w->s, run, (size_t)((const char *)p - run));
        if (!*p) break;
        snprintf(esc, sizeof esc, *p < 0x20 ? "\\u%04x" : "\\%c", *p);
        put(w, esc);
        run = (const char *)p + 1;
    }
    put(w, "\"");
}

static void put_hex(jw *w, const uint8_t digest[32])
{
    char hex[65];
    graft_sha256_hex(digest, hex);
    putf(w, "\"%s\"", hex);
}

static void put_model(jw *w, const graft_model *m)
{
    uint8_t digest[32];
    put(w, "{\"path\": ");
    put_str(w, m->path);
    put(w, ", \"format\": ");
    put_str(w, graft_model_format(m));
    put(w, ", \"files\": [");
    for (size_t i = 0; i < m->nsources; i++) {
        graft_sha256(m->sources[i]->data, m->sources[i]->size, digest);
        put(w, i ? ", {\"path\": " : "{\"path\": ");
        put_str(w, m->sources[i]->path);
        put(w, ", \"sha256\": ");
        put_hex(w, digest);
        put(w, "}");
    }
    put(w, "]}");
}

static int put_rules(jw *w, const char *path, graft_ctx *ctx)
{
    graft_source *src = NULL;
    uint8_t digest[32];
    if (!path) {
        put(w, "null");
        return GRAFT_OK;
    }
    GRAFT_TRY(graft_source_open(&src, path, ctx));
    graft_sha256(src->data, src->size, digest);
    graft_source_free(src);
    put(w, "{\"path\": ");
    put_str(w, path);
    put(w, ", \"sha256\": ");
    put_hex(w, digest);
    put(w, "}");
    return GRAFT_OK;
}

static int put_tensor(jw *w, const graft_manifest_info *info, const graft_model *out,
                      size_t i, graft_ctx *ctx)
{
    const graft_tensor *t = &info->skeleton->tensors[i];
    const graft_tensor *o = graft_model_find(out, t->name);
    const graft_apply_item *it = &info->plan->items[i];
    char op[1024];
    uint8_t digest[32];

    if (!o)
        return graft_error(ctx, GRAFT_ERROR, "%s: tensor '%s' of the skeleton is not in the output",
                           info->out_path, t->name);
    GRAFT_TRY(graft_tensor_sha256(out, o, digest, ctx));
    put(w, "  {\"target\": ");
    put_str(w, t->name);
    put(w, it->nsrc ? ", \"action\": \"transplanted\", \"sources\": ["
                    : ", \"action\": \"kept\", \"sources\": [");
    for (size_t k = 0; k < it->nsrc; k++) {
        if (k) put(w, ", ");
        put_str(w, info->source->tensors[it->src[k]].name);
    }
    put(w, "], \"ops\": [");
    for (size_t k = 0; k < it->nops; k++) {
        graft_op_json(&it->ops[k], op, sizeof op);
        if (k) put(w, ", ");
        put(w, op);
    }
    putf(w, "], \"dtype\": \"%s\", \"shape\": [", graft_dtype_name(o->dtype));
    for (uint32_t d = 0; d < o->ndim; d++) putf(w, "%s%lld", d ? ", " : "", (long long)o->shape[d]);
    put(w, "], \"sha256\": ");
    put_hex(w, digest);
    put(w, i + 1 < info->plan->count ? "},\n" : "}\n");
    return GRAFT_OK;
}

int graft_manifest_write(const char *path, const graft_manifest_info *info, graft_ctx *ctx)
{
    graft_model *out = NULL;
    graft_sink *sink = NULL;
    jw w = {0};
    int rc;

    if (info->plan->count != info->skeleton->count)
        return graft_error(ctx, GRAFT_ERROR, "plan has %zu items for %zu skeleton tensors",
                           info->plan->count, info->skeleton->count);
    rc = graft_model_open(&out, info->out_path, NULL, ctx);
    if (rc < 0) goto cleanup;
    rc = graft_sink_open(&sink, path, ctx);
    if (rc < 0) goto cleanup;
    w.s = sink;
    put(&w, "{\"graft\": \"" GRAFT_VERSION "\",\n \"inputs\": {\"source\": ");
    put_model(&w, info->source);
    put(&w, ",\n  \"skeleton\": ");
    put_model(&w, info->skeleton);
    put(&w, "},\n \"rules\": ");
    rc = put_rules(&w, info->rules_path, ctx);
    if (rc < 0) goto cleanup;
    putf(&w, ",\n \"reverse\": %s,\n \"output\": ", info->reverse ? "true" : "false");
    put_model(&w, out);
    put(&w, ",\n \"tensors\": [\n");
    for (size_t i = 0; i < info->plan->count && w.rc == GRAFT_OK; i++) {
        rc = put_tensor(&w, info, out, i, ctx);
        if (rc < 0) goto cleanup;
    }
    put(&w, " ]}\n");
    rc = w.rc;
    if (rc < 0) goto cleanup;
    rc = graft_sink_commit(sink);
    sink = NULL;
cleanup:
    graft_sink_abort(sink);
    graft_model_free(out);
    return rc;
}
