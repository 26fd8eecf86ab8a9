/*
 * npy.c - a NumPy .npy file: one array (layout in npyhdr.h).
 *
 * The one tensor is named after the file: its base name without ".npy"
 * ("weights.npy" -> "weights").  Big-endian data become a big-endian view,
 * Fortran order a strided view, so nothing is copied when opening.
 *
 * The writer emits the header numpy 1.24 writes for a little-endian C-order
 * array of the skeleton's dtype and shape, then the bytes from the fill.
 */
#include "format.h"
#include "npyhdr.h"

#include <string.h>

static bool npy_probe(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    (void)path;
    return !is_dir && n >= 6 && memcmp(head, "\x93NUMPY", 6) == 0;
}

static int npy_open(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    const graft_source *src;
    graft_npy_header h;
    graft_tensor *t;
    const char *base, *slash;
    size_t len;

    (void)opts;
    if (m->nsources == 0) return graft_error(ctx, GRAFT_EFORMAT, "a folder is not a .npy file");
    src = m->sources[0];
    GRAFT_TRY(graft_npy__parse(&h, src->data, src->size, 0, ctx));
    if (h.nbytes > src->size - h.data_offset)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "offset 0x%llx: data needs %llu bytes but %llu are left",
                           (unsigned long long)h.data_offset, (unsigned long long)h.nbytes,
                           (unsigned long long)(src->size - h.data_offset));
    slash = strrchr(m->path, '/');
    base = slash ? slash + 1 : m->path;
    len = strlen(base);
    if (len > 4 && strcmp(base + len - 4, ".npy") == 0) len -= 4;
    if (h.unsupported[0]) {
        t = graft_model__add_unsupported(m, base, len, h.unsupported, h.ndim, h.shape,
                                         src->size - h.data_offset, ctx);
        if (!t) return ctx->status;
        t->src = src;
        t->offset = h.data_offset;
        return GRAFT_OK;
    }
    t = graft_model__add(m, base, len, h.dtype, h.ndim, h.shape, ctx);
    if (!t) return ctx->status;
    t->src = src;
    t->offset = h.data_offset;
    return graft_npy__set_view(m, t, &h, ctx);
}

static int npy_write(const graft_model *m, const char *out_path, graft_fill *fill,
                     graft_ctx *ctx)
{
    graft_sink *sink = NULL;
    graft_jsonw w;
    int rc;

    if (m->count != 1)
        return graft_error(ctx, GRAFT_EFORMAT, "a .npy file holds one array, not %zu", m->count);
    if (m->tensors[0].unsupported) /* nothing graft can fill: the skeleton as it is */
        return graft_copy_file(m->sources[0]->path, out_path, ctx);
    graft_jsonw_init(&w, ctx);
    if ((rc = graft_npy__write_header(&w, &m->tensors[0], ctx)) < 0) goto cleanup;
    if ((rc = graft_sink_open(&sink, out_path, ctx)) < 0) goto cleanup;
    if ((rc = graft_sink_write(sink, w.p, w.len)) < 0) goto cleanup;
    if ((rc = graft_fill_emit(fill, m, 0, sink, ctx)) < 0) goto cleanup;
    rc = graft_sink_commit(sink);
    sink = NULL;
cleanup:
    graft_sink_abort(sink);
    graft_jsonw_free(&w);
    return rc;
}

const graft_format graft_format_npy = {
    .name = "npy",
    .probe = npy_probe,
    .open = npy_open,
    .write = npy_write,
};
