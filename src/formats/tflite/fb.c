/* fb.c - bounds-checked FlatBuffers reading (layout in fb.h). */
#include "fb.h"

#include "rd.h"

#include <stdarg.h>
#include <stdio.h>

static int fail(const graft_fb *b, size_t at, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(const graft_fb *b, size_t at, const char *what, const char *fmt, ...)
{
    char problem[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    return graft_error(b->ctx, GRAFT_ECORRUPT, "offset 0x%zx: %s: %s", at, what, problem);
}

/* Follow the uoffset stored at `at` to an absolute position with room for `need`. */
static int follow(const graft_fb *b, size_t at, size_t need, const char *what, size_t *out)
{
    uint32_t off;
    if (at > b->n || b->n - at < 4) return fail(b, at, what, "reference past the end of the %zu-byte file", b->n);
    off = graft_le32(b->p + at);
    if (off == 0) return fail(b, at, what, "reference 0 points at itself (a cycle)");
    if (off > b->n - at || b->n - at - off < need)
        return fail(b, at, what, "reference +%u points outside the %zu-byte file", off, b->n);
    *out = at + off;
    return GRAFT_OK;
}

static int table_at(const graft_fb *b, size_t pos, const char *what, graft_fb_table *out)
{
    int32_t so;
    int64_t vt;
    uint16_t vtlen, tlen;
    if (b->n - pos < 4) return fail(b, pos, what, "table past the end of the %zu-byte file", b->n);
    so = (int32_t)graft_le32(b->p + pos);
    vt = (int64_t)pos - so;
    if (vt < 0 || (uint64_t)vt > b->n || b->n - (uint64_t)vt < 4)
        return fail(b, pos, what, "vtable at %lld outside the %zu-byte file", (long long)vt, b->n);
    vtlen = graft_le16(b->p + vt);
    tlen = graft_le16(b->p + vt + 2);
    if (vtlen < 4 || vtlen % 2 || (uint64_t)vtlen > b->n - (uint64_t)vt)
        return fail(b, (size_t)vt, what, "vtable size %u bad (%zu bytes left)", vtlen, b->n - (size_t)vt);
    if (tlen < 4 || tlen > b->n - pos)
        return fail(b, pos, what, "table size %u bad (%zu bytes left)", tlen, b->n - pos);
    *out = (graft_fb_table){.pos = pos, .vt = (size_t)vt, .vtlen = vtlen, .tlen = tlen};
    return GRAFT_OK;
}

int graft_fb__root(const graft_fb *b, graft_fb_table *out)
{
    size_t pos = 0; /* set by follow() on success; gcc -O3 cannot see it */
    GRAFT_TRY(follow(b, 0, 4, "root table", &pos));
    return table_at(b, pos, "root table", out);
}

int graft_fb__field(const graft_fb *b, const graft_fb_table *t, unsigned id, size_t width,
                    const char *what, size_t *out)
{
    size_t slot = 4 + 2 * (size_t)id;
    uint16_t off;
    *out = 0;
    if (slot + 2 > t->vtlen) return GRAFT_OK;
    off = graft_le16(b->p + t->vt + slot);
    if (off == 0) return GRAFT_OK;
    if (off < 4 || (size_t)off + width > t->tlen)
        return fail(b, t->vt + slot, what, "field %u at +%u outside its %u-byte table", id, off, t->tlen);
    *out = t->pos + off;
    return GRAFT_OK;
}

int graft_fb__u8(const graft_fb *b, const graft_fb_table *t, unsigned id, uint8_t def,
                 const char *what, uint8_t *out)
{
    size_t at;
    GRAFT_TRY(graft_fb__field(b, t, id, 1, what, &at));
    *out = at ? b->p[at] : def;
    return GRAFT_OK;
}

int graft_fb__u32(const graft_fb *b, const graft_fb_table *t, unsigned id, uint32_t def,
                  const char *what, uint32_t *out)
{
    size_t at;
    GRAFT_TRY(graft_fb__field(b, t, id, 4, what, &at));
    *out = at ? graft_le32(b->p + at) : def;
    return GRAFT_OK;
}

int graft_fb__u64(const graft_fb *b, const graft_fb_table *t, unsigned id, uint64_t def,
                  const char *what, uint64_t *out)
{
    size_t at;
    GRAFT_TRY(graft_fb__field(b, t, id, 8, what, &at));
    *out = at ? graft_le64(b->p + at) : def;
    return GRAFT_OK;
}

int graft_fb__table(const graft_fb *b, const graft_fb_table *t, unsigned id, const char *what,
                    graft_fb_table *out, bool *present)
{
    size_t at, pos;
    *present = false;
    GRAFT_TRY(graft_fb__field(b, t, id, 4, what, &at));
    if (!at) return GRAFT_OK;
    GRAFT_TRY(follow(b, at, 4, what, &pos));
    GRAFT_TRY(table_at(b, pos, what, out));
    *present = true;
    return GRAFT_OK;
}

int graft_fb__vector(const graft_fb *b, const graft_fb_table *t, unsigned id, size_t elem,
                     const char *what, graft_fb_vec *out)
{
    size_t at, pos;
    uint32_t len;
    *out = (graft_fb_vec){0};
    GRAFT_TRY(graft_fb__field(b, t, id, 4, what, &at));
    if (!at) return GRAFT_OK;
    GRAFT_TRY(follow(b, at, 4, what, &pos));
    len = graft_le32(b->p + pos);
    /* compare with the bytes left before anyone multiplies or allocates */
    if ((uint64_t)len > (b->n - pos - 4) / elem)
        return fail(b, pos, what, "vector of %u elements of %zu bytes, %zu bytes left", len,
                    elem, b->n - pos - 4);
    *out = (graft_fb_vec){.pos = pos + 4, .len = len};
    return GRAFT_OK;
}

int graft_fb__vec_table(const graft_fb *b, const graft_fb_vec *v, uint32_t i, const char *what,
                        graft_fb_table *out)
{
    size_t pos = 0;
    GRAFT_TRY(follow(b, v->pos + 4 * (size_t)i, 4, what, &pos));
    return table_at(b, pos, what, out);
}

int graft_fb__string(const graft_fb *b, const graft_fb_table *t, unsigned id, const char *what,
                     const char **out, uint32_t *len)
{
    graft_fb_vec v;
    GRAFT_TRY(graft_fb__vector(b, t, id, 1, what, &v));
    *out = (const char *)b->p + v.pos;
    *len = v.len;
    if (v.len == 0) *out = "";
    return GRAFT_OK;
}
