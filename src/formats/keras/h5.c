/* h5.c - opening HDF5 files through libhdf5, name lists, datasets as tensors,
 * tree walks (see h5.h; the rewrite is in h5_rewrite.c). */
#define _GNU_SOURCE
#include "h5.h"
#include "rd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_LIST_MAX (1u << 22)        /* names in one layer_names/weight_names */
#define NAME_LIST_BYTES (64u << 20)     /* bytes of one fixed-length name attribute */

/* ---- errors and safety -------------------------------------------------- */

typedef struct walk_err {
    char desc[320];
} walk_err;

static herr_t innermost(unsigned n, const H5E_error2_t *e, void *data)
{
    walk_err *w = data;
    if (n == 0 && e->desc) snprintf(w->desc, sizeof w->desc, "%s", e->desc);
    return 0;
}

int graft_h5__fail(graft_ctx *ctx, int code, const char *fmt, ...)
{
    char what[512];
    walk_err w = {{0}};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    /* UPWARD starts at the function that detected the problem. */
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, &w);
    H5Eclear2(H5E_DEFAULT);
    for (char *c = w.desc; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    if (w.desc[0]) return graft_error(ctx, code, "%s: %s", what, w.desc);
    return graft_error(ctx, code, "%s: libhdf5 failed", what);
}

/* The library never prints; plugins would load code named by the file. */
static void quiet(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    H5PLset_loading_state(0);
}

static herr_t deny_external_link(const char *parent_file, const char *parent_group,
                                 const char *child_file, const char *child_object,
                                 unsigned *acc_flags, hid_t fapl, void *data)
{
    (void)parent_file, (void)parent_group, (void)child_file, (void)child_object;
    (void)acc_flags, (void)fapl, (void)data;
    return -1; /* an external link would open another file */
}

typedef struct h5_state {
    graft_h5_file pub;
} h5_state;

void graft_h5__state_free(void *state)
{
    h5_state *s = state;
    if (!s) return;
    /* libhdf5 handles exist in a child only; the parent holds none */
    free(s->pub.image);
    free(s);
}

static int attach(graft_model *m, const graft_source *src, uint64_t base, uint64_t size,
                  uint8_t *owned, graft_ctx *ctx)
{
    h5_state *s;
    if (m->state && m->state_free == graft_h5__state_free) {
        free(owned);
        return GRAFT_OK;
    }
    if (size < 8 || size > SIZE_MAX || (!owned && (!src || !src->data))) {
        free(owned);
        return graft_error(ctx, GRAFT_ECORRUPT, "%llu bytes: too short for HDF5",
                           (unsigned long long)size);
    }
    s = graft_calloc(ctx, 1, sizeof *s);
    if (!s) {
        free(owned);
        return graft_error_oom(ctx, "HDF5 state");
    }
    s->pub.file = s->pub.lapl = s->pub.dapl = s->pub.gapl = H5I_INVALID_HID;
    s->pub.src = owned ? NULL : src;
    s->pub.base = base;
    s->pub.size = size;
    s->pub.image = owned;
    m->state = s;
    m->state_free = graft_h5__state_free;
    return GRAFT_OK;
}

int graft_h5__attach(graft_model *m, const graft_source *src, uint64_t base, uint64_t size,
                     graft_ctx *ctx)
{
    return attach(m, src, base, size, NULL, ctx);
}

int graft_h5__attach_owned(graft_model *m, uint8_t *image, uint64_t size, graft_ctx *ctx)
{
    return attach(m, NULL, 0, size, image, ctx);
}

const uint8_t *graft_h5__image(const graft_h5_file *h)
{
    return h->image ? h->image : h->src->data + h->base;
}

/* In a child: open the model's image in place, refusing external links. */
int graft_h5__child_open(const graft_model *m, graft_ctx *ctx)
{
    h5_state *s = m->state;
    quiet();
    s->pub.lapl = H5Pcreate(H5P_LINK_ACCESS);
    s->pub.dapl = H5Pcreate(H5P_DATASET_ACCESS);
    s->pub.gapl = H5Pcreate(H5P_GROUP_ACCESS);
    if (s->pub.lapl < 0 || s->pub.dapl < 0 || s->pub.gapl < 0 ||
        H5Pset_elink_cb(s->pub.lapl, deny_external_link, NULL) < 0 ||
        H5Pset_elink_cb(s->pub.dapl, deny_external_link, NULL) < 0 ||
        H5Pset_elink_cb(s->pub.gapl, deny_external_link, NULL) < 0)
        return graft_h5__fail(ctx, GRAFT_ERROR, "HDF5 property lists");
    s->pub.file = graft_h5__open_image(graft_h5__image(&s->pub), (size_t)s->pub.size, false, ctx);
    return s->pub.file < 0 ? graft_ctx_status(ctx) : GRAFT_OK;
}

bool graft_h5__is_external(const graft_h5_file *h, hid_t loc, const char *path)
{
    H5L_info_t li;
    graft_h5__doing("looking up link '%s'", path);
    if (H5Lget_info(loc, path, &li, h->lapl) < 0) {
        H5Eclear2(H5E_DEFAULT);
        return false;
    }
    return li.type == H5L_TYPE_EXTERNAL;
}

bool graft_h5__has_attr(hid_t loc, const char *name, const char *where)
{
    htri_t r;
    if (where)
        graft_h5__doing("checking attribute '%s' of %s", name, where);
    else
        graft_h5__doing("checking attribute '%s'", name);
    r = H5Aexists(loc, name);
    if (r < 0) H5Eclear2(H5E_DEFAULT);
    return r > 0;
}

/* Why the last object lookup failed, when not for want of the object. */
static char lookup_error[320];

const char *graft_h5__lookup_error(void) { return lookup_error; }

H5O_type_t graft_h5__obj_type(const graft_h5_file *h, hid_t loc, const char *path)
{
    H5O_info_t oi;
    walk_err w = {{0}};
    graft_h5__doing("looking up object '%s'", path);
    lookup_error[0] = '\0';
    if (H5Oget_info_by_name2(loc, path, &oi, H5O_INFO_BASIC, h->lapl) < 0) {
        H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, &w);
        H5Eclear2(H5E_DEFAULT);
        /* a damaged heap or header is not a missing object: say what broke */
        if (w.desc[0] && !strstr(w.desc, "not found") && !strstr(w.desc, "doesn't exist") &&
            !strstr(w.desc, "does not exist"))
            snprintf(lookup_error, sizeof lookup_error, " (libhdf5: %.300s)", w.desc);
        return H5O_TYPE_UNKNOWN;
    }
    return oi.type;
}

/* ---- name-list attributes ----------------------------------------------- */

typedef struct name_list {
    char **v;
    size_t n, cap;
} name_list;

static int push_name(graft_model *m, name_list *l, const char *s, size_t len, graft_ctx *ctx)
{
    if (l->n + 1 >= l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = graft_arena_alloc(&m->arena, cap * sizeof *v);
        if (!v) return graft_error_oom(ctx, "a name list");
        if (l->n) memcpy(v, l->v, l->n * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = graft_arena_strndup(&m->arena, s, len)))
        return graft_error_oom(ctx, "a name");
    l->v[++l->n] = NULL;
    return GRAFT_OK;
}

static const char *class_name(H5T_class_t c)
{
    switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_STRING: return "string";
    case H5T_BITFIELD: return "bitfield";
    case H5T_OPAQUE: return "opaque";
    case H5T_COMPOUND: return "compound";
    case H5T_REFERENCE: return "reference";
    case H5T_ENUM: return "enum";
    case H5T_VLEN: return "variable-length";
    case H5T_ARRAY: return "array";
    default: return "unknown";
    }
}

static int read_names(graft_model *m, hid_t loc, const char *where, const char *aname,
                      name_list *l, graft_ctx *ctx)
{
    hid_t a = H5I_INVALID_HID, t = H5I_INVALID_HID, s = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    hssize_t np;
    char **vl = NULL;
    char *fixed = NULL;
    int rc = GRAFT_OK;

    graft_h5__doing("reading attribute '%s' of %s", aname, where);
    a = H5Aopen(loc, aname, H5P_DEFAULT);
    if (a < 0) return graft_h5__fail(ctx, GRAFT_ECORRUPT, "%s: attribute '%s'", where, aname);
    t = H5Aget_type(a);
    s = H5Aget_space(a);
    np = s < 0 ? -1 : H5Sget_simple_extent_npoints(s);
    if (t < 0 || np < 0 || H5Sget_simple_extent_ndims(s) > 1) {
        rc = graft_error(ctx, GRAFT_ECORRUPT, "%s: attribute '%s': not a list", where, aname);
        goto cleanup;
    }
    if ((uint64_t)np > NAME_LIST_MAX) {
        rc = graft_error(ctx, GRAFT_ELIMIT, "%s: attribute '%s': %lld names (limit %u)", where,
                         aname, (long long)np, NAME_LIST_MAX);
        goto cleanup;
    }
    if (H5Tget_class(t) != H5T_STRING) {
        /* Keras stores an empty list as an empty float64 array. */
        if (np != 0)
            rc = graft_error(ctx, GRAFT_ECORRUPT,
                             "%s: attribute '%s': %s values where a list of names is expected",
                             where, aname, class_name(H5Tget_class(t)));
        goto cleanup;
    }
    if (np == 0) goto cleanup;
    if (H5Tis_variable_str(t) > 0) {
        mt = H5Tcopy(H5T_C_S1);
        if (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, H5Tget_cset(t)) < 0) {
            rc = graft_h5__fail(ctx, GRAFT_ERROR, "%s: attribute '%s'", where, aname);
            goto cleanup;
        }
        if (!(vl = graft_calloc(ctx, (size_t)np, sizeof *vl))) {
            rc = graft_error_oom(ctx, "a name list");
            goto cleanup;
        }
        if (H5Aread(a, mt, vl) < 0) {
            rc = graft_h5__fail(ctx, GRAFT_ECORRUPT, "%s: attribute '%s'", where, aname);
            goto cleanup;
        }
        for (hssize_t i = 0; i < np && rc == GRAFT_OK; i++) {
            if (!vl[i]) {
                rc = graft_error(ctx, GRAFT_ECORRUPT, "%s: attribute '%s': item %lld is null",
                                 where, aname, (long long)i);
                break;
            }
            size_t len = strlen(vl[i]);
            if (len > GRAFT_MAX_NAME)
                rc = graft_error(ctx, GRAFT_ELIMIT, "%s: attribute '%s': name of %zu bytes",
                                 where, aname, len);
            else
                rc = push_name(m, l, vl[i], len, ctx);
        }
        H5Dvlen_reclaim(mt, s, H5P_DEFAULT, vl);
    } else {
        size_t size = H5Tget_size(t);
        uint64_t total;
        bool spacepad = H5Tget_strpad(t) == H5T_STR_SPACEPAD;
        if (size == 0 || graft_mul_overflow((uint64_t)np, size, &total) ||
            total > NAME_LIST_BYTES) {
            rc = graft_error(ctx, GRAFT_ELIMIT, "%s: attribute '%s': %lld names of %zu bytes",
                             where, aname, (long long)np, size);
            goto cleanup;
        }
        if (!(fixed = graft_malloc(ctx, (size_t)total))) {
            rc = graft_error_oom(ctx, "a name list");
            goto cleanup;
        }
        if (H5Aread(a, t, fixed) < 0) {
            rc = graft_h5__fail(ctx, GRAFT_ECORRUPT, "%s: attribute '%s'", where, aname);
            goto cleanup;
        }
        for (hssize_t i = 0; i < np && rc == GRAFT_OK; i++) {
            const char *p = fixed + (size_t)i * size;
            size_t len = strnlen(p, size);
            while (spacepad && len && p[len - 1] == ' ') len--;
            rc = push_name(m, l, p, len, ctx);
        }
    }
cleanup:
    free(vl);
    free(fixed);
    if (mt >= 0) H5Tclose(mt);
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return rc;
}

int graft_h5__name_list(graft_model *m, hid_t loc, const char *where, const char *name,
                        char ***out, size_t *count, graft_ctx *ctx)
{
    name_list l = {0};
    char chunk[96];
    static char *none[1] = {NULL};

    *out = none;
    *count = 0;
    if (strlen(name) > 64) return graft_error(ctx, GRAFT_ERROR, "attribute name too long");
    if (graft_h5__has_attr(loc, name, where)) {
        GRAFT_TRY(read_names(m, loc, where, name, &l, ctx));
    } else {
        /* Keras splits long lists into name0, name1, ... (object header limit). */
        for (unsigned k = 0;; k++) {
            snprintf(chunk, sizeof chunk, "%s%u", name, k);
            if (!graft_h5__has_attr(loc, chunk, where)) {
                if (k == 0)
                    return graft_error(ctx, GRAFT_ENOTFOUND, "%s: no '%s' attribute", where,
                                       name);
                break;
            }
            GRAFT_TRY(read_names(m, loc, where, chunk, &l, ctx));
        }
    }
    if (l.n) *out = l.v;
    *count = l.n;
    return GRAFT_OK;
}

/* ---- datasets ----------------------------------------------------------- */

/* A short string attribute of an object, "" when absent or not a string. */
static void string_attr(hid_t obj, const char *name, char *buf, size_t n)
{
    hid_t a, t, mt;
    buf[0] = '\0';
    if (!graft_h5__has_attr(obj, name, NULL)) return;
    if ((a = H5Aopen(obj, name, H5P_DEFAULT)) < 0) goto out;
    t = H5Aget_type(a);
    if (t >= 0 && H5Tget_class(t) == H5T_STRING) {
        hid_t s = H5Aget_space(a);
        if (s >= 0 && H5Sget_simple_extent_npoints(s) == 1) {
            if (H5Tis_variable_str(t) > 0) {
                char *v = NULL;
                mt = H5Tcopy(H5T_C_S1);
                H5Tset_size(mt, H5T_VARIABLE);
                if (H5Aread(a, mt, &v) >= 0 && v) snprintf(buf, n, "%s", v);
                if (v) H5Dvlen_reclaim(mt, s, H5P_DEFAULT, &v);
                H5Tclose(mt);
            } else {
                size_t size = H5Tget_size(t);
                char tmp[64];
                if (size > 0 && size < sizeof tmp) {
                    memset(tmp, 0, sizeof tmp);
                    if (H5Aread(a, t, tmp) >= 0) snprintf(buf, n, "%.*s", (int)size, tmp);
                }
            }
        }
        if (s >= 0) H5Sclose(s);
    }
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
out:
    H5Eclear2(H5E_DEFAULT);
}

/* h5py writes float16 as a 2-byte IEEE half: sign 15, exponent 10..14, mantissa 0..9. */
static bool is_ieee(hid_t t, size_t spos, size_t epos, size_t esize, size_t msize,
                    size_t ebias)
{
    size_t s, e, es, mp, ms;
    if (H5Tget_fields(t, &s, &e, &es, &mp, &ms) < 0) return false;
    return s == spos && e == epos && es == esize && mp == 0 && ms == msize &&
           H5Tget_ebias(t) == ebias && H5Tget_offset(t) == 0;
}

static const graft_dtype int_types[2][4] = {
    {GRAFT_UINT8, GRAFT_UINT16, GRAFT_UINT32, GRAFT_UINT64},
    {GRAFT_INT8, GRAFT_INT16, GRAFT_INT32, GRAFT_INT64},
};

/* The element type of dataset d; a type graft cannot read (strings,
 * compounds, odd float formats) leaves *dt invalid and names itself in
 * `stored` (issue 18 item 15: listed, never the end of the file). */
static void map_type(hid_t d, hid_t t, graft_dtype *dt, bool *be, char *stored, size_t cap)
{
    H5T_class_t c = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    char tag[32];
    *dt = GRAFT_DTYPE_INVALID;
    *be = H5Tget_order(t) == H5T_ORDER_BE;
    stored[0] = '\0';

    /* Keras 3 writes bfloat16 as 2-byte elements with attribute dtype="bfloat16". */
    string_attr(d, "dtype", tag, sizeof tag);
    if (strcmp(tag, "bfloat16") == 0 && size == 2 &&
        (c == H5T_OPAQUE || c == H5T_INTEGER || c == H5T_FLOAT)) {
        *dt = GRAFT_BFLOAT16;
        if (c == H5T_OPAQUE) *be = false;
        return;
    }
    switch (c) {
    case H5T_FLOAT:
        if (size == 2 && is_ieee(t, 15, 10, 5, 10, 15)) *dt = GRAFT_FLOAT16;
        if (size == 4 && is_ieee(t, 31, 23, 8, 23, 127)) *dt = GRAFT_FLOAT32;
        if (size == 8 && is_ieee(t, 63, 52, 11, 52, 1023)) *dt = GRAFT_FLOAT64;
        break;
    case H5T_INTEGER: {
        int k = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : size == 8 ? 3 : -1;
        if (k >= 0 && H5Tget_precision(t) == size * 8 && H5Tget_offset(t) == 0)
            *dt = int_types[H5Tget_sign(t) == H5T_SGN_2][k];
        break;
    }
    case H5T_ENUM: {
        /* h5py bool: enum over a 1-byte integer, FALSE=0, TRUE=1. */
        char *n0 = NULL, *n1 = NULL;
        if (size == 1 && H5Tget_nmembers(t) == 2) {
            n0 = H5Tget_member_name(t, 0);
            n1 = H5Tget_member_name(t, 1);
            if (n0 && n1 && strcmp(n0, "FALSE") == 0 && strcmp(n1, "TRUE") == 0)
                *dt = GRAFT_BOOL;
        }
        H5free_memory(n0);
        H5free_memory(n1);
        *be = false;
        break;
    }
    default:
        break;
    }
    if (*dt == GRAFT_DTYPE_INVALID) {
        if (c == H5T_STRING && H5Tis_variable_str(t) > 0)
            snprintf(stored, cap, "HDF5 variable-length string");
        else
            snprintf(stored, cap, "HDF5 %zu-byte %s", size, class_name(c));
    }
    H5Eclear2(H5E_DEFAULT);
}

/* Elements go through libhdf5 in the file's own type (no conversion, so NaN
 * payloads survive) and are byte-swapped here when the file is big-endian. */
size_t graft_h5__swap_unit(hid_t ft)
{
    H5T_class_t c = H5Tget_class(ft);
    size_t size = H5Tget_size(ft);
    if ((c == H5T_FLOAT || c == H5T_INTEGER) && H5Tget_order(ft) == H5T_ORDER_BE && size > 1)
        return size;
    return 0;
}

void graft_h5__byteswap(uint8_t *p, uint64_t n, size_t unit)
{
    for (uint64_t i = 0; unit && i + unit <= n; i += unit)
        for (size_t a = 0, b = unit - 1; a < b; a++, b--) {
            uint8_t t = p[i + a];
            p[i + a] = p[i + b];
            p[i + b] = t;
        }
}

/* ---- dataset bytes, read in a child ---------------------------------------- */

typedef struct load_job {
    const graft_model *m;
    const graft_tensor *t;
} load_job;

/* In the child: the dataset read in slabs of whole rows (dimension 0) of
 * about PIECE_BYTES, a whole number of chunk rows when it is chunked so that
 * each chunk is inflated once, and each slab written to the pipe in 1 MiB
 * records: memory stays near one slab (or one row of chunks) at any size. */
#define PIECE_BYTES (8u << 20)

static int send_bytes(int fd, const uint8_t *p, uint64_t n, const char *path, graft_ctx *ctx)
{
    for (uint64_t off = 0; off < n; off += 1u << 20) {
        size_t k = n - off < (1u << 20) ? (size_t)(n - off) : 1u << 20;
        if (graft_h5__put(fd, 'D', p + off, k) < 0)
            return graft_error(ctx, GRAFT_EIO, "dataset '%s': pipe closed", path);
    }
    return GRAFT_OK;
}

/* Rows of dimension 0 per slab: a multiple of the chunk's rows, at least one. */
static uint64_t slab_rows(hid_t d, const graft_tensor *t)
{
    uint64_t row = t->ndim ? t->nbytes / (uint64_t)t->shape[0] : t->nbytes, step = 1, rows;
    hid_t dcpl = H5Dget_create_plist(d);
    hsize_t cdims[H5S_MAX_RANK];
    if (dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED &&
        H5Pget_chunk(dcpl, H5S_MAX_RANK, cdims) == (int)t->ndim && t->ndim && cdims[0])
        step = cdims[0];
    if (dcpl >= 0) H5Pclose(dcpl);
    H5Eclear2(H5E_DEFAULT);
    rows = row ? PIECE_BYTES / row / step * step : 0;
    return rows ? rows : step;
}

static int load_child(void *arg, int fd, graft_ctx *ctx)
{
    const load_job *j = arg;
    const h5_state *h = j->m->state;
    const graft_tensor *t = j->t;
    const char *path = t->aux_ptr;
    hid_t d, ft = H5I_INVALID_HID, fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    uint64_t rows_total = t->ndim ? (uint64_t)t->shape[0] : 1, row, rows;
    uint8_t *buf = NULL;
    size_t unit;
    int rc = GRAFT_OK;

    GRAFT_TRY(graft_h5__child_open(j->m, ctx));
    graft_h5__doing("reading dataset '%s'", path);
    d = H5Dopen2(h->pub.file, path, h->pub.dapl);
    if (d < 0) return graft_h5__fail(ctx, GRAFT_ECORRUPT, "dataset '%s'", path);
    ft = H5Dget_type(d);
    if (ft < 0 || H5Tget_size(ft) != graft_dtype_size(t->dtype) || (fs = H5Dget_space(d)) < 0) {
        rc = graft_h5__fail(ctx, GRAFT_ECORRUPT, "dataset '%s'", path);
        goto cleanup;
    }
    if (t->nbytes == 0) goto cleanup;
    unit = graft_h5__swap_unit(ft);
    row = t->nbytes / rows_total;
    rows = slab_rows(d, t);
    if (rows > rows_total) rows = rows_total;
    if (!(buf = malloc((size_t)(rows * row)))) {
        rc = graft_error_oom(ctx, "a dataset slab");
        goto cleanup;
    }
    for (uint64_t r0 = 0; r0 < rows_total && rc == GRAFT_OK; r0 += rows) {
        hsize_t start[H5S_MAX_RANK] = {0}, count[H5S_MAX_RANK];
        uint64_t n = rows_total - r0 < rows ? rows_total - r0 : rows;
        for (uint32_t k = 0; k < t->ndim; k++) count[k] = (hsize_t)t->shape[k];
        start[0] = r0;
        if (t->ndim) count[0] = n;
        if (ms >= 0) H5Sclose(ms);
        ms = t->ndim ? H5Screate_simple((int)t->ndim, count, NULL) : H5Screate(H5S_SCALAR);
        if (ms < 0 ||
            (t->ndim && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0) ||
            H5Dread(d, ft, ms, fs, H5P_DEFAULT, buf) < 0) {
            rc = graft_h5__fail(ctx, GRAFT_ECORRUPT, "dataset '%s'", path);
            break;
        }
        graft_h5__byteswap(buf, n * row, unit);
        if (t->dtype == GRAFT_BOOL)
            for (uint64_t i = 0; i < n * row; i++) buf[i] = buf[i] != 0;
        rc = send_bytes(fd, buf, n * row, path, ctx);
        /* the chunks just read stay mapped in this child: let them go (a
         * no-op on an image that is not a mapped file) */
        if (h->pub.src) graft_source_release(h->pub.src, h->pub.base, h->pub.size);
    }
cleanup:
    free(buf);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (ft >= 0) H5Tclose(ft);
    H5Dclose(d);
    return rc;
}

typedef struct load_sink {
    const graft_tensor *t;
    uint8_t *dst;            /* load: the tensor's buffer */
    graft_piece_fn fn;       /* stream: where pieces go */
    void *arg;
    uint64_t got;
    graft_ctx *ctx;
} load_sink;

static int take_piece(void *arg, uint8_t kind, const uint8_t *p, size_t n)
{
    load_sink *ls = arg;
    if (kind != 'D' || n > ls->t->nbytes - ls->got)
        return graft_error(ls->ctx, GRAFT_ECORRUPT, "dataset '%s': more bytes than %llu",
                           (const char *)ls->t->aux_ptr, (unsigned long long)ls->t->nbytes);
    if (ls->dst) memcpy(ls->dst + ls->got, p, n);
    ls->got += n;
    return ls->fn ? ls->fn(ls->arg, p, n) : GRAFT_OK;
}

static int run_load(const graft_model *m, const graft_tensor *t, load_sink *ls, graft_ctx *ctx)
{
    load_job j = {m, t};
    /* memory: a slab or a row of chunks, which libhdf5 inflates whole */
    graft_h5_budget b = {t->nbytes < (4ull << 30) ? t->nbytes : 4ull << 30, t->nbytes,
                         ((const h5_state *)m->state)->pub.size};
    ls->t = t;
    ls->ctx = ctx;
    GRAFT_TRY(graft_h5__sandbox(load_child, &j, &b, take_piece, ls, ctx));
    if (ls->got != t->nbytes)
        return graft_error(ctx, GRAFT_ECORRUPT, "dataset '%s': %llu bytes of %llu",
                           (const char *)t->aux_ptr, (unsigned long long)ls->got,
                           (unsigned long long)t->nbytes);
    return GRAFT_OK;
}

static int load_dataset(const graft_model *m, const graft_tensor *t, uint8_t *dst,
                        graft_ctx *ctx)
{
    load_sink ls = {.dst = dst};
    return run_load(m, t, &ls, ctx);
}

/* The same bytes handed on piece by piece: hashing keeps memory flat. */
static int stream_dataset(const graft_model *m, const graft_tensor *t, graft_piece_fn fn,
                          void *arg, graft_ctx *ctx)
{
    load_sink ls = {.fn = fn, .arg = arg};
    return run_load(m, t, &ls, ctx);
}

/* ---- the walk, in a child --------------------------------------------------- */

typedef struct walk_job {
    graft_model *m;
    graft_h5_walk_fn walk;
    void *arg;
    size_t first;            /* tensors before this were there already */
    graft_h5_record_fn extra;
    void *xarg;
    graft_ctx *ctx;
} walk_job;

/* 'T': u8 dtype, u8 flags (1 view, 2 big-endian, 4 unsupported), u32 ndim,
 * ndim x i64, u64 offset (unsupported: stored bytes), u32 + name, u32 +
 * dataset path[, u32 + stored type]. */
static int put_tensor(int fd, const graft_tensor *t, graft_ctx *ctx)
{
    size_t nl = strlen(t->name), pl = strlen(t->aux_ptr);
    size_t ul = t->unsupported ? strlen(t->unsupported) : 0;
    size_t n = 2 + 4 + 8 * t->ndim + 8 + 4 + nl + 4 + pl + (t->unsupported ? 4 + ul : 0);
    uint8_t *b = malloc(n), *q = b;
    int rc;
    if (!b) return graft_error_oom(ctx, "a tensor record");
    *q++ = (uint8_t)t->dtype;
    *q++ = (uint8_t)(t->unsupported ? 4 : (t->load ? 0 : 1) | (t->big_endian ? 2 : 0));
    graft_put_le32(q, t->ndim), q += 4;
    for (uint32_t d = 0; d < t->ndim; d++) graft_put_le64(q, (uint64_t)t->shape[d]), q += 8;
    graft_put_le64(q, t->unsupported ? t->nbytes : t->offset), q += 8;
    graft_put_le32(q, (uint32_t)nl), q += 4;
    memcpy(q, t->name, nl), q += nl;
    graft_put_le32(q, (uint32_t)pl), q += 4;
    memcpy(q, t->aux_ptr, pl), q += pl;
    if (t->unsupported) {
        graft_put_le32(q, (uint32_t)ul), q += 4;
        memcpy(q, t->unsupported, ul);
    }
    rc = graft_h5__put(fd, 'T', b, n) < 0 ? graft_error(ctx, GRAFT_EIO, "pipe closed") : 0;
    free(b);
    return rc;
}

static int walk_child(void *arg, int fd, graft_ctx *ctx)
{
    walk_job *j = arg;
    GRAFT_TRY(graft_h5__child_open(j->m, ctx));
    GRAFT_TRY(j->walk(j->m, j->arg, fd, ctx));
    for (size_t i = j->first; i < j->m->count; i++) GRAFT_TRY(put_tensor(fd, &j->m->tensors[i], ctx));
    return GRAFT_OK;
}

/* In the parent: a tensor the child found, as a view or a dataset to load. */
static int take_tensor(void *arg, uint8_t kind, const uint8_t *p, size_t n)
{
    walk_job *j = arg;
    graft_model *m = j->m;
    const h5_state *h = m->state;
    graft_ctx *ctx = j->ctx;
    int64_t shape[GRAFT_MAX_NDIM];
    const uint8_t *name, *path;
    uint32_t ndim, nl, pl, ul;
    uint64_t off, v;
    uint8_t dt, flags;
    graft_tensor *t;
    graft_rd r;

    if (kind != 'T') return j->extra ? j->extra(j->xarg, kind, p, n) : GRAFT_OK;
#ifdef GRAFT_H5_IN_PROCESS
    return GRAFT_OK; /* measurement builds: the walk added its tensors to m itself */
#endif
    graft_rd_init(&r, p, n, 0, ctx);
    GRAFT_TRY(graft_rd_u8(&r, &dt));
    GRAFT_TRY(graft_rd_u8(&r, &flags));
    GRAFT_TRY(graft_rd_u32le(&r, &ndim));
    if (ndim > GRAFT_MAX_NDIM) return graft_error(ctx, GRAFT_ECORRUPT, "rank %u", ndim);
    for (uint32_t d = 0; d < ndim; d++) {
        GRAFT_TRY(graft_rd_u64le(&r, &v));
        shape[d] = (int64_t)v;
    }
    GRAFT_TRY(graft_rd_u64le(&r, &off));
    GRAFT_TRY(graft_rd_u32le(&r, &nl));
    GRAFT_TRY(graft_rd_take(&r, nl, &name));
    GRAFT_TRY(graft_rd_u32le(&r, &pl));
    GRAFT_TRY(graft_rd_take(&r, pl, &path));
    if (flags & 4) {
        const uint8_t *u;
        char *type;
        GRAFT_TRY(graft_rd_u32le(&r, &ul));
        GRAFT_TRY(graft_rd_take(&r, ul, &u));
        if (!(type = graft_arena_strndup(&m->arena, (const char *)u, ul)))
            return graft_error_oom(ctx, "a stored type");
        t = graft_model__add_unsupported(m, (const char *)name, nl, type, ndim, shape, off, ctx);
    } else {
        t = graft_model__add(m, (const char *)name, nl, (graft_dtype)dt, ndim, shape, ctx);
    }
    if (!t) return graft_ctx_status(ctx);
    if (!(t->aux_ptr = graft_arena_strndup(&m->arena, (const char *)path, pl)))
        return graft_error_oom(ctx, "a dataset path");
    if (flags & 4) return GRAFT_OK;
    if ((flags & 1) && h->pub.src) {
        t->src = h->pub.src;
        t->offset = off;
        t->big_endian = (flags & 2) != 0;
    } else {
        t->load = load_dataset;
        t->stream = stream_dataset;
    }
    return GRAFT_OK;
}

int graft_h5__walk(graft_model *m, graft_h5_walk_fn walk, void *arg, graft_h5_record_fn extra,
                   void *xarg, graft_ctx *ctx)
{
    walk_job j = {m, walk, arg, m->count, extra, xarg, ctx};
    const h5_state *h = m->state;
    if (!h || m->state_free != graft_h5__state_free)
        return graft_error(ctx, GRAFT_ERROR, "not an HDF5 model");
    graft_h5_budget b = {0, 0, h->pub.size};
    return graft_h5__sandbox(walk_child, &j, &b, take_tensor, &j, ctx);
}

int graft_h5__add_dataset(graft_model *m, const char *path, const char *name, graft_ctx *ctx)
{
    h5_state *h = m->state;
    hid_t d, t = H5I_INVALID_HID, s = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
    hsize_t dims[H5S_MAX_RANK];
    int64_t shape[H5S_MAX_RANK];
    int ndim, rc = GRAFT_OK;
    graft_dtype dt;
    bool be;
    H5D_layout_t layout;
    graft_tensor *gt;
    haddr_t off;
    char *apath, stored[64];

    graft_h5__doing("reading the header of dataset '%s'", path);
    d = H5Dopen2(h->pub.file, path, h->pub.dapl);
    if (d < 0) return graft_h5__fail(ctx, GRAFT_ECORRUPT, "dataset '%s'", path);
    t = H5Dget_type(d);
    s = H5Dget_space(d);
    dcpl = H5Dget_create_plist(d);
    if (t < 0 || s < 0 || dcpl < 0) {
        rc = graft_h5__fail(ctx, GRAFT_ECORRUPT, "dataset '%s'", path);
        goto cleanup;
    }
    if (H5Sget_simple_extent_type(s) == H5S_NULL) {
        rc = graft_error(ctx, GRAFT_ECORRUPT, "dataset '%s': null dataspace (no elements)", path);
        goto cleanup;
    }
    ndim = H5Sget_simple_extent_dims(s, dims, NULL);
    if (ndim < 0 || ndim > GRAFT_MAX_NDIM) {
        rc = graft_h5__fail(ctx, GRAFT_ECORRUPT, "dataset '%s': dataspace", path);
        goto cleanup;
    }
    for (int i = 0; i < ndim; i++) {
        if (dims[i] > INT64_MAX) {
            rc = graft_error(ctx, GRAFT_ECORRUPT, "dataset '%s': dimension %d too large", path, i);
            goto cleanup;
        }
        shape[i] = (int64_t)dims[i];
    }
    layout = H5Pget_layout(dcpl);
    /* External raw files and virtual datasets would read other files. */
    if (layout == H5D_VIRTUAL || layout < 0 || H5Pget_external_count(dcpl) != 0) {
        rc = graft_error(ctx, GRAFT_EFORMAT,
                         "dataset '%s': data stored outside the file (refused)", path);
        goto cleanup;
    }
    map_type(d, t, &dt, &be, stored, sizeof stored);
    if (!(apath = graft_arena_strdup(&m->arena, path))) {
        rc = graft_error_oom(ctx, "a dataset path");
        goto cleanup;
    }
    if (stored[0]) { /* no data: a skeleton's rewrite leaves it as it is */
        gt = graft_model__add_unsupported(m, name, strlen(name), stored, (uint32_t)ndim, shape,
                                          H5Dget_storage_size(d), ctx);
        if (!gt) rc = ctx->status;
        else gt->aux_ptr = apath;
        goto cleanup;
    }
    gt = graft_model__add(m, name, strlen(name), dt, (uint32_t)ndim, shape, ctx);
    if (!gt) {
        rc = ctx->status;
        goto cleanup;
    }
    gt->aux_ptr = apath;
    gt->load = load_dataset;
    gt->stream = stream_dataset;
    /* Declared shapes are free; stored bytes are not.  Compression expands at
     * most ~1032x (deflate); never-written datasets read as small fills. */
    {
        uint64_t stored = H5Dget_storage_size(d), cap;
        if (graft_mul_overflow(stored, 1032, &cap) || graft_add_overflow(cap, 1u << 20, &cap) ||
            gt->nbytes > cap) {
            rc = graft_error(ctx, GRAFT_ECORRUPT,
                             "dataset '%s': %llu bytes of elements from %llu stored bytes", path,
                             (unsigned long long)gt->nbytes, (unsigned long long)stored);
            goto cleanup;
        }
    }
    /* Contiguous, unfiltered, allocated numbers: a view into the mapped file. */
    if (h->pub.src && layout == H5D_CONTIGUOUS && H5Pget_nfilters(dcpl) == 0 &&
        dt != GRAFT_BOOL && (off = H5Dget_offset(d)) != HADDR_UNDEF &&
        H5Dget_storage_size(d) >= gt->nbytes && off <= h->pub.size &&
        gt->nbytes <= h->pub.size - off) {
        gt->load = NULL;
        gt->src = h->pub.src;
        gt->offset = h->pub.base + off;
        gt->big_endian = be && graft_dtype_size(dt) > 1;
    }
cleanup:
    H5Eclear2(H5E_DEFAULT);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    H5Dclose(d);
    return rc;
}

/* ---- tree walk ---------------------------------------------------------- */

typedef struct links {
    char **v;
    size_t n, cap;
    graft_ctx *ctx;
    int rc;
} links;

static herr_t collect(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    links *l = data;
    (void)g;
    if (info->type != H5L_TYPE_HARD) return 0; /* soft/external links are not followed */
    if (l->n >= GRAFT_MAX_TENSORS) {
        l->rc = graft_error(l->ctx, GRAFT_ELIMIT, "more than %u links in a group",
                            GRAFT_MAX_TENSORS);
        return 1;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = graft_realloc(l->ctx, l->v, cap * sizeof *v);
        if (!v) {
            l->rc = graft_error_oom(l->ctx, "a link list");
            return 1;
        }
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = graft_strdup(l->ctx, name))) {
        l->rc = graft_error_oom(l->ctx, "a link name");
        return 1;
    }
    l->n++;
    return 0;
}

/* Natural order: digit runs compare as numbers ("2" < "10"). */
static int natural_cmp(const void *pa, const void *pb)
{
    const char *a = *(char *const *)pa, *b = *(char *const *)pb;
    while (*a && *b) {
        if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
            const char *ea = a, *eb = b;
            while (*a == '0') a++;
            while (*b == '0') b++;
            for (ea = a; *ea >= '0' && *ea <= '9'; ea++) {}
            for (eb = b; *eb >= '0' && *eb <= '9'; eb++) {}
            if (ea - a != eb - b) return ea - a < eb - b ? -1 : 1;
            int c = strncmp(a, b, (size_t)(ea - a));
            if (c) return c;
            a = ea;
            b = eb;
            continue;
        }
        if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++;
        b++;
    }
    return *a ? 1 : *b ? -1 : 0;
}

typedef struct walker {
    graft_model *m;
    graft_ctx *ctx;
    haddr_t *seen; /* groups visited: hard links may form cycles */
    size_t nseen, cap;
} walker;

static int walk(walker *w, const char *path, const char *prefix, int depth)
{
    h5_state *h = w->m->state;
    links l = {.ctx = w->ctx};
    hid_t g;
    int rc = GRAFT_OK;
    char *child = NULL, *name = NULL;

    if (depth > GRAFT_H5_MAX_DEPTH)
        return graft_error(w->ctx, GRAFT_ELIMIT, "group '%s': nested deeper than %d", path,
                           GRAFT_H5_MAX_DEPTH);
    graft_h5__doing("listing group '%s'", path);
    g = H5Gopen2(h->pub.file, path, h->pub.gapl);
    if (g < 0) return graft_h5__fail(w->ctx, GRAFT_ECORRUPT, "group '%s'", path);
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect, &l) < 0 && l.rc == 0)
        l.rc = graft_h5__fail(w->ctx, GRAFT_ECORRUPT, "group '%s': links", path);
    if ((rc = l.rc) < 0) goto cleanup;
    if (l.n) qsort(l.v, l.n, sizeof *l.v, natural_cmp);
    for (size_t i = 0; i < l.n && rc == GRAFT_OK; i++) {
        H5O_info_t oi;
        size_t plen = strlen(path), nlen = strlen(l.v[i]);
        free(child);
        free(name);
        child = graft_malloc(w->ctx, plen + nlen + 2);
        name = graft_malloc(w->ctx, strlen(prefix) + nlen + 2);
        if (!child || !name) {
            rc = graft_error_oom(w->ctx, "a dataset path");
            break;
        }
        sprintf(child, "%s%s%s", path, plen && path[plen - 1] == '/' ? "" : "/", l.v[i]);
        sprintf(name, "%s%s%s", prefix, *prefix ? "/" : "", l.v[i]);
        graft_h5__doing("looking up object '%s'", child);
        if (H5Oget_info_by_name2(g, l.v[i], &oi, H5O_INFO_BASIC, h->pub.lapl) < 0) {
            rc = graft_h5__fail(w->ctx, GRAFT_ECORRUPT, "object '%s'", child);
            break;
        }
        if (oi.type == H5O_TYPE_DATASET) {
            rc = graft_h5__add_dataset(w->m, child, name, w->ctx);
        } else if (oi.type == H5O_TYPE_GROUP) {
            bool again = false;
            for (size_t k = 0; k < w->nseen; k++) again |= w->seen[k] == oi.addr;
            if (again) continue;
            if (w->nseen == w->cap) {
                size_t cap = w->cap ? w->cap * 2 : 32;
                haddr_t *v;
                if (cap > GRAFT_H5_MAX_GROUPS) {
                    rc = graft_error(w->ctx, GRAFT_ELIMIT, "more than %u groups",
                                     GRAFT_H5_MAX_GROUPS);
                    break;
                }
                if (!(v = graft_realloc(w->ctx, w->seen, cap * sizeof *v))) {
                    rc = graft_error_oom(w->ctx, "a group list");
                    break;
                }
                w->seen = v;
                w->cap = cap;
            }
            w->seen[w->nseen++] = oi.addr;
            rc = walk(w, child, name, depth + 1);
        }
    }
cleanup:
    free(child);
    free(name);
    for (size_t i = 0; i < l.n; i++) free(l.v[i]);
    free(l.v);
    H5Gclose(g);
    H5Eclear2(H5E_DEFAULT);
    return rc;
}

int graft_h5__add_tree(graft_model *m, const char *path, const char *prefix, graft_ctx *ctx)
{
    walker w = {.m = m, .ctx = ctx};
    int rc = walk(&w, path, prefix, 0);
    free(w.seen);
    return rc;
}

/* ---- checking a rewritten copy ---------------------------------------- */

typedef struct check_job {
    const graft_model *m;
    const uint8_t *p; /* the copy, mapped read-only */
    size_t size;
    size_t seen;      /* objects visited */
} check_job;

#define DROP_EVERY 16 /* objects between drops of the mapped copy's pages */

static herr_t visit_object(hid_t o, const char *name, const H5O_info_t *info, void *data)
{
    check_job *j = data;
    (void)o, (void)name, (void)info;
    if (++j->seen % DROP_EVERY == 0) graft_h5__drop_pages(j->p, j->size);
    return 0;
}

/* In a child: the copy reopens, every object is reachable, every dataset
 * opens with its shape. */
static int check_child(void *arg, int fd, graft_ctx *ctx)
{
    check_job *j = arg;
    const graft_model *m = j->m;
    hid_t f, dapl = H5Pcreate(H5P_DATASET_ACCESS);
    (void)fd;
    quiet();
    if (dapl >= 0) H5Pset_elink_cb(dapl, deny_external_link, NULL);
    f = graft_h5__open_image(j->p, j->size, false, ctx);
    graft_h5__doing("visiting every object of the rewritten copy");
    if (f < 0 || H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_NATIVE, visit_object, j,
                           H5O_INFO_BASIC | H5O_INFO_NUM_ATTRS) < 0)
        return graft_h5__fail(ctx, GRAFT_ECORRUPT, "%s: skeleton refused: its rewritten copy does "
                              "not reopen (a dataset's bytes overlap the file's metadata)",
                              m->path);
    for (size_t i = 0; i < m->count; i++) {
        const graft_tensor *t = &m->tensors[i];
        hsize_t dims[GRAFT_MAX_NDIM];
        hid_t d, sp = H5I_INVALID_HID;
        int nd = -1;
        bool same;
        graft_h5__doing("checking dataset '%s' of the rewritten copy", (const char *)t->aux_ptr);
        d = H5Dopen2(f, t->aux_ptr, dapl);
        if (d >= 0) sp = H5Dget_space(d);
        if (sp >= 0) nd = H5Sget_simple_extent_ndims(sp);
        same = nd == (int)t->ndim && nd >= 0 && nd <= GRAFT_MAX_NDIM &&
               H5Sget_simple_extent_dims(sp, dims, NULL) == nd;
        for (int k = 0; same && k < nd; k++) same = dims[k] == (hsize_t)t->shape[k];
        if (i % DROP_EVERY == DROP_EVERY - 1) graft_h5__drop_pages(j->p, j->size);
        if (!same)
            return graft_h5__fail(ctx, GRAFT_ECORRUPT,
                                  "%s: skeleton refused: dataset '%s' is damaged in its rewritten "
                                  "copy (its bytes overlap the file's metadata)",
                                  m->path, (const char *)t->aux_ptr);
    }
    return GRAFT_OK;
}

static int no_records(void *arg, uint8_t kind, const uint8_t *p, size_t n)
{
    (void)arg, (void)kind, (void)p, (void)n;
    return GRAFT_OK;
}

/* See h5.h: a damaged skeleton can place a dataset's bytes over the file's
 * own metadata, which the rewrite would then overwrite. */
int graft_h5__check_copy(const graft_model *m, graft_sink *copy, graft_ctx *ctx)
{
    check_job j = {m, MAP_FAILED, 0, 0};
    int fd, rc;
    GRAFT_TRY(graft_sink_reopen(copy, &fd, ctx));
    j.size = (size_t)graft_sink_tell(copy);
    if (j.size) j.p = mmap(NULL, j.size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (j.p == MAP_FAILED)
        return graft_error(ctx, GRAFT_EIO, "%s: cannot map the rewritten copy",
                           graft_sink_path(copy));
    rc = graft_h5__sandbox(check_child, &j, &(graft_h5_budget){0, 0, j.size}, no_records, NULL,
                           ctx);
    munmap((void *)j.p, j.size);
    return rc;
}

int graft_h5__write_checked(const graft_model *m, const char *out_path, graft_fill *fill,
                            graft_ctx *ctx)
{
    graft_sink *out;
    int rc;
    GRAFT_TRY(graft_sink_open(&out, out_path, ctx));
    if ((rc = graft_h5__rewrite(m, out, fill, ctx)) < 0 ||
        (rc = graft_h5__check_copy(m, out, ctx)) < 0) {
        graft_sink_abort(out);
        return rc;
    }
    return graft_sink_commit(out);
}
