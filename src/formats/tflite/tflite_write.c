/*
 * tflite_write.c - a TFLite skeleton written back with new tensor values.
 *
 * In place (the usual case): the output is the skeleton byte for byte, with
 * each listed buffer's bytes replaced at its place; identity apply gives the
 * same file.  A buffer shared by several tensors (converters deduplicate
 * equal constants) is written once when all its tensors get equal values.
 *
 * Anew, when tensors sharing a buffer get different values: each further
 * value needs a buffer of its own, so Model.buffers grows.  FlatBuffer
 * references only point forward, so the new buffers vector, every Buffer
 * table and every inline buffer's bytes are appended after the skeleton's
 * bytes, and two kinds of fields are patched in place: Model.buffers (to the
 * new vector) and the Tensor.buffer index of each tensor that moves.  The old
 * vector, tables and bytes stay as unreferenced bytes.  Appended layout:
 *   1. zero padding to 16;
 *   2. vtables: data-only (6 bytes + 2 pad), empty (4), offset/size (10 + 2 pad);
 *   3. the vector: u32 count, then one uoffset per Buffer table;
 *   4. Buffer tables, 8-aligned: soffset to their vtable, then a uoffset to the
 *      data, nothing, or padding and u64 offset and size (kept as they were);
 *   5. each inline buffer: u32 length at 16n-4 so the bytes start 16-aligned
 *      (the schema's force_align: 16).
 */
#define _GNU_SOURCE /* qsort_r */
#include "tflite.h"

#include "rd.h"

#include <stdlib.h>
#include <string.h>

typedef struct group {
    uint32_t buffer;         /* Model.buffers index */
    size_t first, count;     /* run in `order` of the tensors sharing it */
    uint8_t *bytes;          /* shared buffers: the first tensor's new value; owned */
} group;

typedef struct plan {
    const graft_model *m;
    const tfl_state *st;
    size_t *order;           /* tensor indices by (buffer, index) */
    group *groups;           /* ngroups, then sorted by data offset */
    size_t ngroups;
    uint8_t **values;        /* per tensor (shared buffers only): new value; owned */
    uint32_t *newbuf;        /* per tensor: buffer it ends up in */
    uint32_t nbuffers;       /* after splitting */
} plan;

static int by_buffer(const void *a, const void *b, void *m)
{
    const graft_tensor *ta = &((const graft_model *)m)->tensors[*(const size_t *)a];
    const graft_tensor *tb = &((const graft_model *)m)->tensors[*(const size_t *)b];
    uint32_t ba = TFL_AUX_BUFFER(ta->aux), bb = TFL_AUX_BUFFER(tb->aux);
    if (ba != bb) return ba < bb ? -1 : 1;
    return ta < tb ? -1 : ta > tb;
}

static int by_offset(const void *a, const void *b, void *st)
{
    const tfl_buffer *bufs = ((const tfl_state *)st)->buffers;
    uint64_t oa = bufs[((const group *)a)->buffer].data, ob = bufs[((const group *)b)->buffer].data;
    return oa < ob ? -1 : oa > ob;
}

/* One tensor's new value, in memory. */
static int emit_mem(plan *p, graft_fill *fill, size_t ti, uint8_t **out, graft_ctx *ctx)
{
    graft_sink *s = NULL;
    const uint8_t *bytes;
    size_t n;
    int rc;
    *out = NULL;
    if ((rc = graft_sink_open_mem(&s, ctx)) < 0) return rc;
    if ((rc = graft_fill_emit(fill, p->m, ti, s, ctx)) < 0) goto cleanup;
    if ((rc = graft_sink_mem(s, &bytes, &n)) < 0) goto cleanup;
    *out = graft_malloc(ctx, n ? n : 1);
    if (!*out) {
        rc = graft_error_oom(ctx, "a shared buffer's value");
        goto cleanup;
    }
    memcpy(*out, bytes, n);
cleanup:
    graft_sink_abort(s);
    return rc;
}

/* Group tensors by buffer; take the values of shared buffers and count how
 * many distinct ones each holds. */
static int make_plan(plan *p, graft_fill *fill, graft_ctx *ctx)
{
    const graft_model *m = p->m;
    size_t n = m->count;
    p->order = graft_calloc(ctx, n ? n : 1, sizeof *p->order);
    p->groups = graft_calloc(ctx, n ? n : 1, sizeof *p->groups);
    p->values = graft_calloc(ctx, n ? n : 1, sizeof *p->values);
    p->newbuf = graft_calloc(ctx, n ? n : 1, sizeof *p->newbuf);
    if (!p->order || !p->groups || !p->values || !p->newbuf)
        return graft_error_oom(ctx, "the write plan");
    for (size_t i = 0; i < n; i++) p->order[i] = i;
    qsort_r(p->order, n, sizeof *p->order, by_buffer, (void *)m);
    p->nbuffers = p->st->nbuffers;
    for (size_t i = 0; i < n;) {
        group *g = &p->groups[p->ngroups++];
        g->buffer = TFL_AUX_BUFFER(m->tensors[p->order[i]].aux);
        g->first = i;
        while (i < n && TFL_AUX_BUFFER(m->tensors[p->order[i]].aux) == g->buffer) {
            p->newbuf[p->order[i]] = g->buffer;
            i++;
        }
        g->count = i - g->first;
        if (g->count == 1) continue;
        for (size_t k = g->first; k < i; k++) {
            size_t ti = p->order[k];
            bool seen = k == g->first;
            GRAFT_TRY(emit_mem(p, fill, ti, &p->values[ti], ctx));
            for (size_t j = g->first; j < k && !seen; j++) {
                size_t tj = p->order[j];
                seen = memcmp(p->values[tj], p->values[ti], m->tensors[ti].nbytes) == 0;
                if (seen) p->newbuf[ti] = p->newbuf[tj];
            }
            if (!seen) p->newbuf[ti] = p->nbuffers++; /* a value of its own */
        }
        g->bytes = p->values[p->order[g->first]];
    }
    qsort_r(p->groups, p->ngroups, sizeof *p->groups, by_offset, (void *)p->st);
    return GRAFT_OK;
}

/* Group g's value: the kept bytes of a shared buffer, else its one tensor's. */
static int write_group(plan *p, const group *g, graft_fill *fill, graft_sink *out, graft_ctx *ctx)
{
    if (g->count > 1) return graft_sink_write(out, g->bytes, (size_t)p->st->buffers[g->buffer].size);
    return graft_fill_emit(fill, p->m, p->order[g->first], out, ctx);
}

/* The skeleton's bytes with each buffer replaced where it is; with `relocate`
 * only the offset/size buffers (the inline ones are appended afterwards). */
static int write_in_place(plan *p, bool relocate, graft_fill *fill, graft_sink *out,
                          graft_ctx *ctx)
{
    const graft_source *src = p->m->sources[0];
    uint64_t cursor = 0;
    for (size_t i = 0; i < p->ngroups; i++) {
        const group *g = &p->groups[i];
        const tfl_buffer *b = &p->st->buffers[g->buffer];
        if (relocate && !b->external) continue;
        if (b->data < cursor)
            return graft_error(ctx, GRAFT_ECORRUPT, "buffer %u overlaps the buffer before it "
                               "(offset %llu)", g->buffer, (unsigned long long)b->data);
        GRAFT_TRY(graft_sink_write(out, src->data + cursor, (size_t)(b->data - cursor)));
        GRAFT_TRY(write_group(p, g, fill, out, ctx));
        cursor = b->data + b->size;
    }
    return graft_sink_write(out, src->data + cursor, (size_t)(src->size - cursor));
}

static int pad_to(graft_sink *out, uint64_t align, uint64_t rem)
{
    uint64_t at = graft_sink_tell(out);
    return graft_sink_fill(out, 0, (align + rem - at % align) % align);
}

/* The value of buffer j of the grown table: a tensor's, a shared one, or the skeleton's. */
static int write_buffer_bytes(plan *p, uint32_t j, const size_t *owner, graft_fill *fill,
                              graft_sink *out, graft_ctx *ctx)
{
    const graft_model *m = p->m;
    size_t ti = owner[j];
    if (ti != SIZE_MAX && p->values[ti])
        return graft_sink_write(out, p->values[ti], (size_t)m->tensors[ti].nbytes);
    if (ti != SIZE_MAX) return graft_fill_emit(fill, m, ti, out, ctx);
    return graft_sink_write(out, m->sources[0]->data + p->st->buffers[j].data,
                            (size_t)p->st->buffers[j].size);
}

/* Steps 1-5 at the top of the file, then the two kinds of patches. */
static int append_buffers(plan *p, graft_fill *fill, graft_sink *out, graft_ctx *ctx)
{
    const graft_model *m = p->m;
    const tfl_state *st = p->st;
    uint32_t nb = p->nbuffers;
    size_t *owner = NULL;
    uint64_t *table = NULL, vt, vec, at;
    uint8_t w[24];
    int rc = GRAFT_OK;

    owner = graft_malloc(ctx, nb * sizeof *owner);
    table = graft_calloc(ctx, nb, sizeof *table);
    if (!owner || !table) {
        rc = graft_error_oom(ctx, "the new buffer table");
        goto cleanup;
    }
    for (uint32_t j = 0; j < nb; j++) owner[j] = SIZE_MAX;
    for (size_t i = 0; i < m->count; i++)
        if (owner[p->newbuf[i]] == SIZE_MAX) owner[p->newbuf[i]] = i;
    /* 1-2: vtables at vt (data), vt+8 (empty), vt+12 (offset/size) */
    if ((rc = pad_to(out, 16, 0)) < 0) goto cleanup;
    vt = graft_sink_tell(out);
    static const uint8_t vtables[24] = {6, 0, 8, 0, 4, 0, 0, 0, 4, 0, 4, 0,
                                        10, 0, 24, 0, 0, 0, 8, 0, 16, 0, 0, 0};
    if ((rc = graft_sink_write(out, vtables, sizeof vtables)) < 0) goto cleanup;
    /* 3-4: table positions first, then the vector pointing at them */
    vec = graft_sink_tell(out);
    at = vec + 4 + 4 * (uint64_t)nb;
    for (uint32_t j = 0; j < nb; j++) {
        const tfl_buffer *b = j < st->nbuffers ? &st->buffers[j] : NULL;
        at = (at + 7) & ~(uint64_t)7;
        table[j] = at;
        at += b && b->external ? 24 : (b && b->size == 0) ? 4 : 8;
    }
    if (at - st->buffers_field > INT32_MAX) {
        rc = graft_error(ctx, GRAFT_ELIMIT, "the grown buffer table would lie past 2 GB");
        goto cleanup;
    }
    graft_put_le32(w, nb);
    if ((rc = graft_sink_write(out, w, 4)) < 0) goto cleanup;
    for (uint32_t j = 0; j < nb; j++) {
        graft_put_le32(w, (uint32_t)(table[j] - (vec + 4 + 4 * (uint64_t)j)));
        if ((rc = graft_sink_write(out, w, 4)) < 0) goto cleanup;
    }
    /* data positions follow the tables: compute them as the bytes are laid out */
    uint64_t data = at;
    for (uint32_t j = 0; j < nb; j++) {
        const tfl_buffer *b = j < st->nbuffers ? &st->buffers[j] : NULL;
        uint64_t len = b ? b->size : m->tensors[owner[j]].nbytes;
        if ((rc = pad_to(out, 8, 0)) < 0) goto cleanup;
        memset(w, 0, sizeof w);
        if (b && b->external) {
            graft_put_le32(w, (uint32_t)(table[j] - (vt + 12)));
            graft_put_le64(w + 8, b->data);
            graft_put_le64(w + 16, b->size);
            rc = graft_sink_write(out, w, 24);
        } else if (len == 0) {
            graft_put_le32(w, (uint32_t)(table[j] - (vt + 8)));
            rc = graft_sink_write(out, w, 4);
        } else {
            data = ((data + 4 + 15) & ~(uint64_t)15) - 4;
            if (data + 4 + len - st->buffers_field > INT32_MAX) {
                rc = graft_error(ctx, GRAFT_ELIMIT, "the grown buffer table would lie past 2 GB");
                goto cleanup;
            }
            graft_put_le32(w, (uint32_t)(table[j] - vt));
            graft_put_le32(w + 4, (uint32_t)(data - (table[j] + 4)));
            rc = graft_sink_write(out, w, 8);
            data += 4 + len;
        }
        if (rc < 0) goto cleanup;
    }
    /* 5 */
    for (uint32_t j = 0; j < nb; j++) {
        const tfl_buffer *b = j < st->nbuffers ? &st->buffers[j] : NULL;
        uint64_t len = b ? b->size : m->tensors[owner[j]].nbytes;
        if ((b && b->external) || len == 0) continue;
        if ((rc = pad_to(out, 16, 12)) < 0) goto cleanup;
        graft_put_le32(w, (uint32_t)len);
        if ((rc = graft_sink_write(out, w, 4)) < 0) goto cleanup;
        if ((rc = write_buffer_bytes(p, j, owner, fill, out, ctx)) < 0) goto cleanup;
    }
    /* the patches */
    graft_put_le32(w, (uint32_t)(vec - st->buffers_field));
    if ((rc = graft_sink_pwrite(out, st->buffers_field, w, 4)) < 0) goto cleanup;
    for (size_t i = 0; i < m->count; i++) {
        if (p->newbuf[i] == TFL_AUX_BUFFER(m->tensors[i].aux)) continue;
        graft_put_le32(w, p->newbuf[i]);
        rc = graft_sink_pwrite(out, TFL_AUX_FIELD(m->tensors[i].aux), w, 4);
        if (rc < 0) goto cleanup;
    }
cleanup:
    free(table);
    free(owner);
    return rc;
}

int graft_tflite__write(const graft_model *m, const char *out_path, graft_fill *fill,
                        graft_ctx *ctx)
{
    plan p = {.m = m, .st = m->state};
    graft_sink *out = NULL;
    bool relocate;
    int rc;

    if ((rc = make_plan(&p, fill, ctx)) < 0) goto cleanup;
    relocate = p.nbuffers != p.st->nbuffers;
    if ((rc = graft_sink_open(&out, out_path, ctx)) < 0) goto cleanup;
    if ((rc = write_in_place(&p, relocate, fill, out, ctx)) < 0) goto cleanup;
    if (relocate && (rc = append_buffers(&p, fill, out, ctx)) < 0) goto cleanup;
    rc = graft_sink_commit(out);
    out = NULL;
cleanup:
    graft_sink_abort(out);
    for (size_t i = 0; p.values && i < m->count; i++) free(p.values[i]);
    free(p.values);
    free(p.newbuf);
    free(p.groups);
    free(p.order);
    return rc;
}
