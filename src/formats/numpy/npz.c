/*
 * npz.c - a NumPy .npz archive: a zip of .npy members (np.savez stores
 * them, np.savez_compressed deflates them; numpy/lib/_npyio_impl.py).
 *
 * Layout: zip (see core/zip.h), one member "<key>.npy" per array, each a
 * complete .npy file (npyhdr.h).  Tensors are named by the member name
 * without ".npy", in central-directory order; a member of another kind is
 * refused.  Stored members are views into the mapped archive; deflated ones
 * are inflated on demand (their header is parsed from an inflated prefix).
 *
 * The writer stores every member (like np.savez) in the skeleton's order,
 * each with the header numpy 1.24 writes.
 */
#include "format.h"
#include "npyhdr.h"
#include "rd.h"
#include "zipw.h"

#include <stdlib.h>
#include <string.h>

typedef struct npz_state {
    graft_zip *zip;   /* owned; entries referenced by tensors' aux_ptr */
} npz_state;

static void state_free(void *p)
{
    npz_state *st = p;
    if (!st) return;
    graft_zip_free(st->zip);
    free(st);
}

static bool npz_probe(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    size_t len = strlen(path), nlen;
    if (is_dir) return false;
    if (len > 4 && strcmp(path + len - 4, ".npz") == 0) return true;
    if (n < 30 || graft_le32(head) != 0x04034b50u) return false;
    nlen = graft_le16(head + 26);
    return nlen > 4 && 30 + nlen <= n && memcmp(head + 30 + nlen - 4, ".npy", 4) == 0;
}

/* The .npy header of a deflated member, from an inflated prefix. */
static int inflated_header(const graft_zip *z, const graft_zip_entry *e, graft_npy_header *h,
                           graft_ctx *ctx)
{
    uint8_t first[12], *buf;
    uint64_t n = e->usize < sizeof first ? e->usize : sizeof first, total;
    int rc;
    GRAFT_TRY(graft_zip_extract(z, e, first, n, ctx));
    GRAFT_TRY(graft_npy__header_size(first, (size_t)n, 0, &total, ctx));
    if (total > e->usize)
        return graft_error(ctx, GRAFT_ECORRUPT, "header of %llu bytes runs past the %llu-byte member",
                           (unsigned long long)total, (unsigned long long)e->usize);
    buf = graft_malloc(ctx, (size_t)total);
    if (!buf) return graft_error_oom(ctx, "a .npy header");
    rc = graft_zip_extract(z, e, buf, total, ctx);
    if (rc == GRAFT_OK) rc = graft_npy__parse(h, buf, (size_t)total, 0, ctx);
    free(buf);
    return rc;
}

static int load_deflated(const graft_model *m, const graft_tensor *t, uint8_t *dst,
                         graft_ctx *ctx)
{
    const npz_state *st = m->state;
    const graft_zip_entry *e = t->aux_ptr;
    graft_npy_header h;
    uint8_t *buf;
    uint64_t need;
    int rc;

    GRAFT_TRY(inflated_header(st->zip, e, &h, ctx));
    need = h.data_offset + h.nbytes; /* both checked against usize at open */
    buf = graft_malloc(ctx, (size_t)need ? (size_t)need : 1);
    if (!buf) return graft_error_oom(ctx, "an inflated member");
    rc = graft_zip_extract(st->zip, e, buf, need, ctx);
    if (rc == GRAFT_OK) graft_npy__to_rowmajor(&h, buf + h.data_offset, dst);
    free(buf);
    if (rc < 0) return graft_error_prefix(ctx, "member '%s'", e->name);
    return GRAFT_OK;
}

/* A deflated C-order little-endian array, inflated piece by piece (others
 * need the whole array to reorder: load_deflated). */
static int stream_deflated(const graft_model *m, const graft_tensor *t, graft_piece_fn fn,
                           void *arg, graft_ctx *ctx)
{
    const npz_state *st = m->state;
    const graft_zip_entry *e = t->aux_ptr;
    graft_npy_header h;
    int rc;

    GRAFT_TRY(inflated_header(st->zip, e, &h, ctx));
    if ((h.fortran && h.ndim > 1) || h.big_endian) {
        uint8_t *buf = graft_malloc(ctx, (size_t)t->nbytes ? (size_t)t->nbytes : 1);
        if (!buf) return graft_error_oom(ctx, "an inflated member");
        rc = load_deflated(m, t, buf, ctx);
        if (rc == 0) rc = fn(arg, buf, (size_t)t->nbytes);
        free(buf);
        return rc;
    }
    rc = graft_zip_stream(st->zip, e, h.data_offset, h.nbytes, fn, arg, ctx);
    if (rc < 0) return graft_error_prefix(ctx, "member '%s'", e->name);
    return GRAFT_OK;
}

/* A skeleton's stored member, its CRC-32 checked when it is read
 * (graft_model.defer_checks): a member only replaced is never read. */
static int check_member(const graft_model *m, const graft_tensor *t, graft_ctx *ctx)
{
    const npz_state *st = m->state;
    const uint8_t *p;
    if (graft_zip_borrow(st->zip, t->aux_ptr, m->sources[0], &p, ctx) < 0)
        return graft_error_prefix(ctx, "tensor '%s'", t->name);
    return GRAFT_OK;
}

static int add_member(graft_model *m, const graft_zip *z, const graft_zip_entry *e,
                      graft_ctx *ctx)
{
    graft_npy_header h;
    graft_tensor *t;
    const uint8_t *p;

    if (e->name_len <= 4 || strcmp(e->name + e->name_len - 4, ".npy") != 0)
        return graft_error(ctx, GRAFT_EFORMAT, "not a .npy array (an .npz holds only .npy members)");
    if (e->method == 0) {
        if (m->defer_checks) /* a skeleton's: check_member when it is read */
            p = z->data + e->data_offset;
        else
            GRAFT_TRY(graft_zip_borrow(z, e, m->sources[0], &p, ctx));
        GRAFT_TRY(graft_npy__parse(&h, p, (size_t)e->usize, e->data_offset, ctx));
    } else {
        GRAFT_TRY(inflated_header(z, e, &h, ctx));
    }
    if (h.nbytes > e->usize - h.data_offset)
        return graft_error(ctx, GRAFT_ECORRUPT, "data needs %llu bytes but the member has %llu after its header",
                           (unsigned long long)h.nbytes,
                           (unsigned long long)(e->usize - h.data_offset));
    if (h.unsupported[0]) {
        /* listed, never read; a skeleton's writer copies the member whole */
        t = graft_model__add_unsupported(m, e->name, e->name_len - 4, h.unsupported, h.ndim,
                                         h.shape, e->usize - h.data_offset, ctx);
        if (!t) return ctx->status;
        t->aux_ptr = (void *)e;
        if (e->method == 0) {
            t->src = m->sources[0];
            t->offset = e->data_offset + h.data_offset;
        }
        return GRAFT_OK;
    }
    t = graft_model__add(m, e->name, e->name_len - 4, h.dtype, h.ndim, h.shape, ctx);
    if (!t) return ctx->status;
    t->aux_ptr = (void *)e;
    if (e->method != 0) {
        t->load = load_deflated;
        t->stream = stream_deflated;
        return GRAFT_OK;
    }
    t->src = m->sources[0];
    t->offset = e->data_offset + h.data_offset;
    if (m->defer_checks) t->check = check_member;
    return graft_npy__set_view(m, t, &h, ctx);
}

static int npz_open(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    const graft_source *src;
    npz_state *st;

    (void)opts;
    if (m->nsources == 0) return graft_error(ctx, GRAFT_EFORMAT, "a folder is not a .npz file");
    src = m->sources[0];
    st = graft_calloc(ctx, 1, sizeof *st);
    if (!st) return graft_error_oom(ctx, "the npz state");
    m->state = st;
    m->state_free = state_free;
    GRAFT_TRY(graft_zip_open(&st->zip, src->data, src->size, ctx));
    for (size_t i = 0; i < st->zip->count; i++) {
        const graft_zip_entry *e = &st->zip->entries[i];
        if (add_member(m, st->zip, e, ctx) < 0) return graft_error_prefix(ctx, "member '%s'", e->name);
    }
    return GRAFT_OK;
}

static int put_piece(void *arg, const uint8_t *p, size_t n)
{
    return graft_zipw_write(arg, p, n);
}

/* A member graft cannot read, copied as the skeleton holds it (stored). */
static int copy_member(const graft_model *m, const graft_tensor *t, graft_zipw *zw,
                       graft_ctx *ctx)
{
    const npz_state *st = m->state;
    const graft_zip_entry *e = t->aux_ptr;
    GRAFT_TRY(graft_zipw_begin(zw, e->name, 0, GRAFT_ZIPW_STORED, e->usize));
    GRAFT_TRY(graft_zip_stream(st->zip, e, 0, e->usize, put_piece, zw, ctx));
    return graft_zipw_end(zw);
}

static int write_members(const graft_model *m, graft_zipw *zw, graft_fill *fill, graft_ctx *ctx)
{
    graft_jsonw hdr;
    int rc = GRAFT_OK;
    graft_jsonw_init(&hdr, ctx);
    for (size_t i = 0; i < m->count && rc == GRAFT_OK; i++) {
        const graft_tensor *t = &m->tensors[i];
        char *name = NULL;
        hdr.len = 0;
        if (t->unsupported) {
            rc = copy_member(m, t, zw, ctx);
            continue;
        }
        if ((rc = graft_npy__write_header(&hdr, t, ctx)) < 0) break;
        name = graft_malloc(ctx, strlen(t->name) + 5);
        if (!name) {
            rc = graft_error_oom(ctx, "a member name");
            break;
        }
        strcpy(name, t->name);
        strcat(name, ".npy");
        rc = graft_zipw_begin(zw, name, 0, GRAFT_ZIPW_STORED, hdr.len + t->nbytes);
        free(name);
        if (rc < 0 || (rc = graft_zipw_write(zw, hdr.p, hdr.len)) < 0) break;
        if ((rc = graft_fill_emit(fill, m, i, graft_zipw_sink(zw), ctx)) < 0) break;
        rc = graft_zipw_end(zw);
    }
    graft_jsonw_free(&hdr);
    return rc;
}

static int npz_write(const graft_model *m, const char *out_path, graft_fill *fill,
                     graft_ctx *ctx)
{
    graft_sink *sink = NULL;
    graft_zipw *zw = NULL;
    int rc;

    if ((rc = graft_sink_open(&sink, out_path, ctx)) < 0) return rc;
    if ((rc = graft_zipw_new(&zw, sink, false, ctx)) < 0) goto cleanup;
    if ((rc = write_members(m, zw, fill, ctx)) < 0) goto cleanup;
    if ((rc = graft_zipw_finish(zw)) < 0) goto cleanup;
    rc = graft_sink_commit(sink);
    sink = NULL;
cleanup:
    graft_zipw_free(zw);
    graft_sink_abort(sink);
    return rc;
}

const graft_format graft_format_npz = {
    .name = "npz",
    .probe = npz_probe,
    .open = npz_open,
    .write = npz_write,
};
