/* inplace.c - write a copy of a one-file skeleton with its tensors' bytes replaced (format.h). */
#define _GNU_SOURCE /* qsort_r */
#include "format.h"

#include <stdlib.h>

static int by_offset(const void *a, const void *b, void *m)
{
    const graft_tensor *t = ((const graft_model *)m)->tensors;
    uint64_t oa = t[*(const size_t *)a].offset, ob = t[*(const size_t *)b].offset;
    return oa < ob ? -1 : oa > ob;
}

int graft_write_in_place(const graft_model *m, const char *out_path, graft_fill *fill,
                         graft_ctx *ctx)
{
    if (!m->nsources) return graft_error(ctx, GRAFT_EFORMAT, "no file to copy");
    return graft_write_source_in_place(m, m->sources[0], out_path, fill, ctx);
}

int graft_write_source_in_place(const graft_model *m, const graft_source *src,
                                const char *out_path, graft_fill *fill, graft_ctx *ctx)
{
    graft_sink *out = NULL;
    size_t *order = NULL;
    uint64_t cursor = 0;
    int rc;

    order = graft_calloc(ctx, m->count ? m->count : 1, sizeof *order);
    if (!order) return graft_error_oom(ctx, "the write order");
    for (size_t i = 0; i < m->count; i++) order[i] = i;
    qsort_r(order, m->count, sizeof *order, by_offset, (void *)m);
    if ((rc = graft_sink_open(&out, out_path, ctx)) < 0) goto cleanup;
    for (size_t k = 0; k < m->count; k++) {
        const graft_tensor *t = &m->tensors[order[k]];
        if (t->src != src && src != m->sources[0]) continue; /* in another file */
        if (t->src != src || t->strides || t->big_endian || t->load) {
            rc = graft_error(ctx, GRAFT_EFORMAT, "tensor '%s' is not stored in place", t->name);
            goto cleanup;
        }
        if (t->offset < cursor || t->nbytes > src->size - t->offset) {
            rc = graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s' at %llu overlaps the one before "
                             "it or the end", t->name, (unsigned long long)t->offset);
            goto cleanup;
        }
        if ((rc = graft_sink_write(out, src->data + cursor, (size_t)(t->offset - cursor))) < 0 ||
            (rc = graft_fill_emit(fill, m, order[k], out, ctx)) < 0)
            goto cleanup;
        cursor = t->offset + t->nbytes;
    }
    if (src->size > cursor &&
        (rc = graft_sink_write(out, src->data + cursor, (size_t)(src->size - cursor))) < 0)
        goto cleanup;
    rc = graft_sink_commit(out);
    out = NULL;
cleanup:
    graft_sink_abort(out);
    free(order);
    return rc;
}
