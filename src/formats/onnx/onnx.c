/*
 * onnx.c - ONNX models (.onnx): initializers and Constant values as tensors,
 * and their external data.
 *
 * On-disk layout (onnx.proto, protobuf proto2; no magic, no header):
 *   1. the file is one serialized ModelProto (< 2 GiB, the protobuf cap);
 *   2. ModelProto.graph (7) -> GraphProto.initializer (5): TensorProto;
 *      GraphProto.node (1) -> NodeProto; a node with op_type "Constant" keeps
 *      its value in AttributeProto "value" field t (5), named by the node's
 *      first output; value_float / value_int (0-d), value_floats / value_ints
 *      (1-d) and value_string(s) hold it in the attribute's own fields
 *      (onnx_wire.h); attributes g (6) and graphs (11) hold If/Loop bodies;
 *      ModelProto.functions (25) and training_info (20) hold more graphs;
 *      GraphProto.sparse_initializer (15) and a Constant's sparse_value
 *      (AttributeProto 22) hold SparseTensorProto, listed dense
 *      (onnx_sparse.c);
 *   3. TensorProto: dims (1), data_type (2), name (8), then the elements in
 *      one of: raw_data (9, row-major little-endian), the typed field of the
 *      type (float_data 4, int32_data 5 also for 8/16-bit types and float16
 *      bit patterns, int64_data 7, double_data 10, uint64_data 11), or, with
 *      data_location (14) = EXTERNAL, external_data (13) key/value entries
 *      `location` (relative to the model's folder), `offset`, `length` in
 *      decimal: raw_data bytes in a side file.
 * Raw and external tensors are views into the mapped files; typed fields are
 * decoded on demand.  The walk itself lives in onnx_wire.c, the skeleton
 * writer in onnx_write.c.
 */
#include "format.h"
#include "onnx_wire.h"
#include "layout.h"
#include "pb_check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static void state_free(void *p)
{
    graft_onnx_state *st = p;
    if (!st) return;
    for (size_t i = 0; i < st->next; i++) free(st->exts[i].location);
    free(st->exts);
    free(st->entries);
    free(st->dir);
    free(st);
}

static const char *field_name(int field)
{
    switch (field) {
    case ONNX_T_FLOAT: return "float_data";
    case ONNX_T_INT32: return "int32_data";
    case ONNX_T_INT64: return "int64_data";
    case ONNX_T_DOUBLE: return "double_data";
    case ONNX_T_UINT64: return "uint64_data";
    default: return "raw_data";
    }
}

static bool is_complex(graft_dtype dt) { return dt == GRAFT_COMPLEX64 || dt == GRAFT_COMPLEX128; }

/* ---- probe -------------------------------------------------------------- */

static bool onnx_probe(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    size_t pl = path ? strlen(path) : 0;
    uint32_t tag;

    /* No magic: only .onnx files whose first field is a ModelProto field. */
    if (is_dir || n < 2 || pl < 5 || strcasecmp(path + pl - 5, ".onnx") != 0) return false;
    tag = head[0] & 0x7f;
    if (head[0] & 0x80) {
        if (head[1] & 0x80) return false;
        tag |= (uint32_t)head[1] << 7;
    }
    switch (tag >> 3) {
    case 1: case 5: return (tag & 7) == GRAFT_PB_VARINT;
    case 2: case 3: case 4: case 6: case 7: case 8: case 14: case 20: case 25: case 26:
        return (tag & 7) == GRAFT_PB_LEN;
    default: return false;
    }
}

/* ---- external data ------------------------------------------------------ */

static int parse_decimal(const graft_onnx_str *s, const char *key, const char *tname,
                         uint64_t *out, graft_ctx *ctx)
{
    uint64_t v = 0;
    if (s->n == 0 || s->n > 20) goto bad;
    for (size_t i = 0; i < s->n; i++) {
        if (s->p[i] < '0' || s->p[i] > '9') goto bad;
        if (graft_mul_overflow(v, 10, &v) || graft_add_overflow(v, s->p[i] - '0', &v)) goto bad;
    }
    *out = v;
    return GRAFT_OK;
bad:
    return graft_error(ctx, GRAFT_ECORRUPT,
                       "tensor '%s': external_data %s '%.*s' is not a byte count", tname, key,
                       (int)(s->n > 40 ? 40 : s->n), (const char *)s->p);
}

/* Refuse locations that leave the model's folder: absolute, `..`, symlinks. */
static int check_location(const char *dir, const char *loc, const char *tname, char **path_out,
                          graft_ctx *ctx)
{
    char *path = NULL, *real_dir = NULL, *real = NULL;
    size_t dl;
    int rc = GRAFT_OK;

    *path_out = NULL;
    if (!*loc)
        return graft_error(ctx, GRAFT_ECORRUPT, "tensor '%s': external_data location is empty",
                           tname);
    if (loc[0] == '/' || loc[0] == '\\')
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': external_data location '%s' is an absolute path; "
                           "it must be relative to the model's folder", tname, loc);
    for (const char *c = loc; *c;) {
        size_t n = strcspn(c, "/\\");
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "tensor '%s': external_data location '%s' has a '..' component; "
                               "it must stay inside the model's folder", tname, loc);
        c += n;
        if (*c) c++;
    }
    path = graft_malloc(ctx, strlen(dir) + strlen(loc) + 2);
    if (!path) return graft_error_oom(ctx, "a path");
    sprintf(path, "%s/%s", dir, loc);
    real_dir = realpath(dir, NULL);
    real = realpath(path, NULL);
    if (!real_dir || !real) {
        rc = graft_error(ctx, errno == ENOENT ? GRAFT_ENOTFOUND : GRAFT_EIO,
                         "tensor '%s': external_data location '%s': cannot open %s: %s", tname,
                         loc, path, strerror(errno));
        goto cleanup;
    }
    dl = strlen(real_dir);
    if (strncmp(real, real_dir, dl) != 0 || (real[dl] != '/' && dl > 1)) {
        rc = graft_error(ctx, GRAFT_ECORRUPT,
                         "tensor '%s': external_data location '%s' leads outside the model's "
                         "folder (to %s)", tname, loc, real);
        goto cleanup;
    }
    *path_out = path;
    path = NULL;
cleanup:
    free(real);
    free(real_dir);
    free(path);
    return rc;
}

static bool same_path(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static int side_file(graft_model *m, graft_onnx_state *st, const graft_onnx_str *loc,
                     const char *tname, size_t *out, graft_ctx *ctx)
{
    char *name = NULL, *path = NULL;
    int rc;

    if (memchr(loc->p, '\0', loc->n))
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': external_data location has a NUL byte", tname);
    for (size_t i = 0; i < st->next; i++)
        if (strlen(st->exts[i].location) == loc->n &&
            !memcmp(st->exts[i].location, loc->p, loc->n)) {
            *out = i;
            return GRAFT_OK;
        }
    if (st->next == st->extcap) {
        size_t cap = st->extcap ? st->extcap * 2 : 4;
        graft_onnx_ext *e = graft_realloc(ctx, st->exts, cap * sizeof *e);
        if (!e) return graft_error_oom(ctx, "the external data list");
        st->exts = e;
        st->extcap = cap;
    }
    name = graft_malloc(ctx, loc->n + 1);
    if (!name) return graft_error_oom(ctx, "a location");
    memcpy(name, loc->p, loc->n);
    name[loc->n] = '\0';
    rc = check_location(st->dir, name, tname, &path, ctx);
    if (rc < 0) goto fail;
    /* "w.bin" and "./w.bin" are one file: one index, so the writer writes it once. */
    for (size_t i = 0; i < st->next; i++)
        if (same_path(st->exts[i].src->path, path)) {
            free(path);
            free(name);
            *out = i;
            return GRAFT_OK;
        }
    st->exts[st->next].location = name;
    rc = graft_model__add_source(m, path, &st->exts[st->next].src, ctx);
    free(path);
    if (rc < 0) {
        graft_error_prefix(ctx, "tensor '%s': external_data location '%s'", tname, name);
        goto fail;
    }
    *out = st->next++;
    return GRAFT_OK;
fail:
    free(name);
    return rc;
}

static int external_view(graft_model *m, graft_onnx_state *st, graft_tensor *t,
                         const graft_onnx_tensor *ti, graft_onnx_entry *e, graft_ctx *ctx)
{
    uint64_t off = 0, len;
    const graft_source *src;

    if (!ti->location.p)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': data_location is EXTERNAL but external_data has no "
                           "'location' key", t->name);
    GRAFT_TRY(side_file(m, st, &ti->location, t->name, &e->ext, ctx));
    src = st->exts[e->ext].src;
    if (ti->offset.p) GRAFT_TRY(parse_decimal(&ti->offset, "offset", t->name, &off, ctx));
    if (off > src->size)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': external_data offset %llu lies past the end of %s "
                           "(%zu bytes)", t->name, (unsigned long long)off, src->path, src->size);
    len = src->size - off;
    if (ti->length.p) GRAFT_TRY(parse_decimal(&ti->length, "length", t->name, &len, ctx));
    if (len > src->size - off)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': external_data offset %llu + length %llu runs past the "
                           "end of %s (%zu bytes)", t->name, (unsigned long long)off,
                           (unsigned long long)len, src->path, src->size);
    if (len != t->nbytes)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': external_data length %llu, but its dtype and dims need "
                           "%llu bytes", t->name, (unsigned long long)len,
                           (unsigned long long)t->nbytes);
    e->store = STORE_EXTERNAL;
    e->ext_off = off;
    e->ext_len = len;
    t->src = src;
    t->offset = off;
    return GRAFT_OK;
}

/* ---- reading ------------------------------------------------------------ */

/* A reader over the message entry e was found in (a TensorProto, an
 * attribute, a SparseTensorProto). */
static void entry_reader(const graft_model *m, const graft_onnx_entry *e, graft_rd *r,
                         graft_ctx *ctx)
{
    graft_rd_init(r, m->sources[0]->data + e->msg_off, (size_t)e->msg_len, e->msg_off, ctx);
}

static int load_typed(const graft_model *m, const graft_tensor *t, uint8_t *dst,
                      graft_ctx *ctx)
{
    const graft_onnx_state *st = m->state;
    const graft_onnx_entry *e = &st->entries[t->aux];
    size_t unit = graft_dtype_size(t->dtype) / (is_complex(t->dtype) ? 2 : 1);
    uint64_t units = t->numel * (is_complex(t->dtype) ? 2 : 1);
    graft_rd r;

    entry_reader(m, e, &r, ctx);
    if (graft_onnx__decode(&r, e->store, t->dtype, unit, units, dst) < 0)
        return graft_error_prefix(ctx, "tensor '%s'", t->name);
    return GRAFT_OK;
}

/* The typed field decoded 1 MiB at a time, the file's pages released
 * behind the decoding: hashing a large float_data keeps memory flat. */
static int stream_typed(const graft_model *m, const graft_tensor *t, graft_piece_fn fn, void *arg,
                        graft_ctx *ctx)
{
    const graft_onnx_state *st = m->state;
    const graft_onnx_entry *e = &st->entries[t->aux];
    size_t unit = graft_dtype_size(t->dtype) / (is_complex(t->dtype) ? 2 : 1);
    uint64_t units = t->numel * (is_complex(t->dtype) ? 2 : 1), cap = (1u << 20) / unit;
    graft_releasing_pieces tp = {fn, arg, m->sources[0], e->msg_off, GRAFT_OK};
    uint8_t *buf;
    graft_rd r;
    int rc;

    if (cap > units) cap = units ? units : 1;
    if (!(buf = graft_malloc(ctx, (size_t)(cap * unit))))
        return graft_error_oom(ctx, "a decoding buffer");
    entry_reader(m, e, &r, ctx);
    rc = graft_onnx__decode_pieces(&r, e->store, t->dtype, unit, units, buf, cap, graft_releasing_piece,
                                   &tp);
    free(buf);
    if (rc < 0 && tp.fn_rc == GRAFT_OK) return graft_error_prefix(ctx, "tensor '%s'", t->name);
    return rc;
}

static int add_entry(graft_onnx_state *st, graft_onnx_entry **out, graft_ctx *ctx)
{
    if (st->count == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 64;
        graft_onnx_entry *e = graft_realloc(ctx, st->entries, cap * sizeof *e);
        if (!e) return graft_error_oom(ctx, "the ONNX tensor list");
        st->entries = e;
        st->cap = cap;
    }
    *out = &st->entries[st->count++];
    memset(*out, 0, sizeof **out);
    return GRAFT_OK;
}

/* A tensor of a function or a subgraph keeps the walk's scope (aux_ptr),
 * for qualify_names. */
static int set_scope(graft_model *m, graft_tensor *t, const graft_onnx_walker *w)
{
    if (!w->scope_len) return GRAFT_OK;
    if (!(t->aux_ptr = graft_arena_strdup(&m->arena, w->scope)))
        return graft_error_oom(w->ctx, "a scope");
    return GRAFT_OK;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const graft_tensor *const *)a)->name, (*(const graft_tensor *const *)b)->name);
}

/*
 * Functions and If/Loop/Scan bodies are namespaces of their own: a Constant
 * `c` in a function and one in the main graph, or in the then and else
 * branches of an If, are two tensors.  Where a name is shared, the scoped
 * ones are named "<function>/c" or "<node>/<attribute>/c"; unique names
 * stay plain.
 */
static int qualify_names(graft_model *m, graft_ctx *ctx)
{
    graft_tensor **by = NULL;
    int rc = GRAFT_OK;

    if (m->count < 2) return GRAFT_OK;
    if (!(by = graft_malloc(ctx, m->count * sizeof *by))) return graft_error_oom(ctx, "names");
    for (size_t i = 0; i < m->count; i++) by[i] = &m->tensors[i];
    qsort(by, m->count, sizeof *by, cmp_name);
    for (size_t i = 0, j; i < m->count; i = j) {
        for (j = i + 1; j < m->count && !strcmp(by[i]->name, by[j]->name); j++) {}
        for (size_t k = i; j - i > 1 && k < j; k++) {
            const char *scope = by[k]->aux_ptr;
            char *q;
            if (!scope) continue;
            if (!(q = graft_arena_printf(&m->arena, "%s%s", scope, by[k]->name))) {
                rc = graft_error_oom(ctx, "a name");
                goto cleanup;
            }
            by[k]->name = q;
        }
    }
cleanup:
    free(by);
    return rc;
}

static int scan_tensor(graft_onnx_walker *w, graft_onnx_mode mode, graft_rd *msg,
                       const graft_onnx_str *cname, uint64_t *size)
{
    graft_model *m = w->payload;
    graft_onnx_state *st = m->state;
    graft_ctx *ctx = w->ctx;
    uint64_t off = graft_rd_offset(msg), len = msg->len, units;
    graft_onnx_tensor ti;
    graft_onnx_str name;
    graft_tensor *t;
    graft_onnx_entry *e = NULL;
    graft_dtype dt;
    int field;

    (void)mode;
    (void)size;
    GRAFT_TRY(graft_onnx__parse_tensor(msg, m->sources[0], &ti));
    name = cname ? *cname : ti.name;
    if (!name.p || !name.n)
        return graft_error(ctx, GRAFT_ECORRUPT, "offset 0x%llx: initializer without a name",
                           (unsigned long long)off);
    field = graft_onnx__typed_field(ti.data_type, &dt);
    if (!field)
        return graft_error(ctx, GRAFT_EFORMAT,
                           "tensor '%.*s': data_type %lld (%s) is not supported",
                           (int)(name.n > 200 ? 200 : name.n), (const char *)name.p,
                           (long long)ti.data_type, graft_onnx__type_name(ti.data_type));
    if (ti.segment)
        return graft_error(ctx, GRAFT_EFORMAT, "tensor '%.*s': segmented tensors are not supported",
                           (int)(name.n > 200 ? 200 : name.n), (const char *)name.p);
    t = graft_model__add(m, (const char *)name.p, name.n, dt, ti.ndim, ti.dims, ctx);
    if (!t) return ctx->status;
    GRAFT_TRY(set_scope(m, t, w));
    GRAFT_TRY(add_entry(st, &e, ctx));
    e->msg_off = off;
    e->msg_len = len;
    t->aux = st->count - 1;
    if (ti.external) return external_view(m, st, t, &ti, e, ctx);
    if (ti.has_raw) {
        if (ti.raw.n != t->nbytes)
            return graft_error(ctx, GRAFT_ECORRUPT,
                               "tensor '%s': raw_data holds %zu bytes, but its dtype and dims "
                               "need %llu", t->name, ti.raw.n, (unsigned long long)t->nbytes);
        e->store = ONNX_T_RAW;
        t->src = m->sources[0];
        t->offset = ti.raw_off;
        return GRAFT_OK;
    }
    units = t->numel * (is_complex(dt) ? 2 : 1);
    if (ti.count[field] != units)
        return graft_error(ctx, GRAFT_ECORRUPT,
                           "tensor '%s': no raw_data, and %s holds %llu values where its dims "
                           "need %llu", t->name, field_name(field),
                           (unsigned long long)ti.count[field], (unsigned long long)units);
    e->store = field;
    t->load = load_typed;
    t->stream = stream_typed;
    return GRAFT_OK;
}

static int load_attr(const graft_model *m, const graft_tensor *t, uint8_t *dst, graft_ctx *ctx)
{
    const graft_onnx_state *st = m->state;
    const graft_onnx_entry *e = &st->entries[t->aux];
    graft_onnx_attr_value v;
    graft_rd r;

    entry_reader(m, e, &r, ctx);
    if (graft_onnx__parse_attr_value(&r, (uint32_t)(e->store - STORE_ATTR), &v) < 0)
        return graft_error_prefix(ctx, "tensor '%s'", t->name);
    entry_reader(m, e, &r, ctx);
    if (graft_onnx__decode_attr_value(&r, &v, dst) < 0)
        return graft_error_prefix(ctx, "tensor '%s'", t->name);
    return GRAFT_OK;
}

/* A Constant node's value_float(s) / value_int(s) / value_string(s): a 0-d
 * or 1-d tensor named by the node's output, decoded on demand. */
static int scan_attr(graft_onnx_walker *w, graft_onnx_mode mode, graft_rd *msg,
                     const graft_onnx_str *cname, uint32_t field, uint64_t *size)
{
    graft_model *m = w->payload;
    graft_onnx_state *st = m->state;
    uint64_t off = graft_rd_offset(msg), len = msg->len;
    graft_onnx_attr_value v;
    graft_onnx_entry *e = NULL;
    graft_tensor *t;
    int64_t dim;

    (void)mode;
    (void)size;
    if (graft_onnx__parse_attr_value(msg, field, &v) < 0)
        return graft_error_prefix(w->ctx, "Constant '%.*s'", (int)(cname->n > 200 ? 200 : cname->n),
                                  (const char *)cname->p);
    dim = (int64_t)v.count;
    t = graft_model__add(m, (const char *)cname->p, cname->n, v.dtype, v.ndim, &dim, w->ctx);
    if (!t) return w->ctx->status;
    GRAFT_TRY(set_scope(m, t, w));
    if (v.dtype == GRAFT_STRING) t->nbytes = v.nbytes;
    GRAFT_TRY(add_entry(st, &e, w->ctx));
    e->msg_off = off;
    e->msg_len = len;
    e->store = STORE_ATTR + (int)field;
    t->aux = st->count - 1;
    t->load = load_attr;
    return GRAFT_OK;
}

/* The SparseTensorProto behind t, parsed again from the file. */
static int sparse_of(const graft_model *m, const graft_tensor *t, graft_onnx_sparse *sp,
                     graft_ctx *ctx)
{
    const graft_onnx_state *st = m->state;
    graft_rd r;
    entry_reader(m, &st->entries[t->aux], &r, ctx);
    if (graft_onnx__parse_sparse(&r, sp) < 0) return graft_error_prefix(ctx, "tensor '%s'", t->name);
    return GRAFT_OK;
}

static int load_sparse(const graft_model *m, const graft_tensor *t, uint8_t *dst, graft_ctx *ctx)
{
    graft_onnx_sparse sp;
    GRAFT_TRY(sparse_of(m, t, &sp, ctx));
    return graft_onnx__densify(m->sources[0]->data, &sp, t->name, t->dtype, dst, ctx);
}

static int stream_sparse(const graft_model *m, const graft_tensor *t, graft_piece_fn fn, void *arg,
                         graft_ctx *ctx)
{
    graft_onnx_sparse sp;
    GRAFT_TRY(sparse_of(m, t, &sp, ctx));
    return graft_onnx__sparse_pieces(m->sources[0]->data, &sp, t->name, t->dtype, fn, arg, ctx);
}

/*
 * A SparseTensorProto (sparse_initializer, named by its values; or a
 * Constant's sparse_value, named by the node's output): listed as the dense
 * tensor of its dims, its indices checked now, densified on demand.  One
 * graft cannot densify (string or external values, a dense size over
 * GRAFT_ONNX_SPARSE_MAX) is listed as unsupported and copied as it is.
 */
static int scan_sparse(graft_onnx_walker *w, graft_onnx_mode mode, graft_rd *msg,
                       const graft_onnx_str *cname, uint64_t *size)
{
    graft_model *m = w->payload;
    graft_onnx_state *st = m->state;
    graft_ctx *ctx = w->ctx;
    uint64_t off = graft_rd_offset(msg), len = msg->len;
    graft_onnx_sparse sp;
    graft_onnx_entry *e = NULL;
    graft_onnx_str name;
    graft_tensor *t;
    graft_dtype dt = GRAFT_DTYPE_INVALID;
    char stored[160];

    (void)mode;
    (void)size;
    GRAFT_TRY(graft_onnx__parse_sparse(msg, &sp));
    name = cname ? *cname : sp.values.name;
    if (!name.p || !name.n)
        return graft_error(ctx, GRAFT_ECORRUPT, "offset 0x%llx: sparse_initializer whose values "
                           "have no name", (unsigned long long)off);
    if (!sp.has_values)
        return graft_error(ctx, GRAFT_ECORRUPT, "sparse tensor '%.*s': no values",
                           (int)(name.n > 200 ? 200 : name.n), (const char *)name.p);
    if (!graft_onnx__typed_field(sp.values.data_type, &dt) || sp.values.external ||
        sp.values.segment) {
        snprintf(stored, sizeof stored, "onnx sparse %s%s", graft_onnx__type_name(sp.values.data_type),
                 sp.values.external ? " (external values)" : sp.values.segment ? " (segmented)" : "");
        dt = GRAFT_DTYPE_INVALID;
    }
    t = graft_model__add(m, (const char *)name.p, name.n, dt == GRAFT_DTYPE_INVALID ? GRAFT_UINT8 : dt,
                         sp.ndim, sp.dims, ctx);
    if (!t) return ctx->status;
    GRAFT_TRY(set_scope(m, t, w));
    if (dt != GRAFT_DTYPE_INVALID && t->nbytes > GRAFT_ONNX_SPARSE_MAX) {
        snprintf(stored, sizeof stored, "onnx sparse %s of %llu dense bytes (over graft's %llu)",
                 graft_onnx__type_name(sp.values.data_type), (unsigned long long)t->nbytes,
                 (unsigned long long)GRAFT_ONNX_SPARSE_MAX);
        dt = GRAFT_DTYPE_INVALID;
    }
    if (dt == GRAFT_DTYPE_INVALID) {
        t->dtype = GRAFT_DTYPE_INVALID;
        t->nbytes = len;
        if (!(t->unsupported = graft_arena_strdup(&m->arena, stored)))
            return graft_error_oom(ctx, "a stored type");
    } else {
        GRAFT_TRY(graft_onnx__densify(m->sources[0]->data, &sp, t->name, dt, NULL, ctx));
        t->load = load_sparse;
        t->stream = stream_sparse;
    }
    GRAFT_TRY(add_entry(st, &e, ctx));
    e->msg_off = off;
    e->msg_len = len;
    e->store = STORE_SPARSE;
    t->aux = st->count - 1;
    return GRAFT_OK;
}

/* onnx.proto's ModelProto, top level: a TensorProto .pb or other protobuf
 * given as a model is refused rather than listed as empty. */
static const graft_pb_rule model_rules[] = {
    {1, GRAFT_PB_VARINT, "ir_version", false, false},
    {2, GRAFT_PB_LEN, "producer_name", false, false},
    {3, GRAFT_PB_LEN, "producer_version", false, false},
    {4, GRAFT_PB_LEN, "domain", false, false},
    {5, GRAFT_PB_VARINT, "model_version", false, false},
    {6, GRAFT_PB_LEN, "doc_string", false, false},
    {7, GRAFT_PB_LEN, "graph", true, true},
    {8, GRAFT_PB_LEN, "opset_import", false, true},
    {14, GRAFT_PB_LEN, "metadata_props", false, true},
    {20, GRAFT_PB_LEN, "training_info", false, true},
    {25, GRAFT_PB_LEN, "functions", false, true},
};

static int onnx_open(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    graft_onnx_walker w = {.tensor = scan_tensor, .attr = scan_attr, .sparse = scan_sparse,
                           .payload = m, .ctx = ctx};
    const graft_source *src = m->sources[0];
    const char *slash = strrchr(m->path, '/');
    graft_onnx_state *st;

    (void)opts;
    st = graft_calloc(ctx, 1, sizeof *st);
    if (!st) return graft_error_oom(ctx, "the ONNX state");
    m->state = st;
    m->state_free = state_free;
    st->dir = slash ? graft_malloc(ctx, (size_t)(slash - m->path) + 2) : graft_strdup(ctx, ".");
    if (!st->dir) return graft_error_oom(ctx, "a path");
    if (slash) {
        size_t n = slash == m->path ? 1 : (size_t)(slash - m->path);
        memcpy(st->dir, m->path, n);
        st->dir[n] = '\0';
    }
    GRAFT_TRY(graft_pb_check(src->data, src->size, "an ONNX ModelProto", model_rules,
                             sizeof model_rules / sizeof *model_rules, ctx));
    GRAFT_TRY(graft_onnx__walk(&w, GRAFT_ONNX_SCAN, src->data, src->size, NULL));
    GRAFT_TRY(qualify_names(m, ctx));
    return graft_layout__onnx(m, src->data, src->size, ctx); /* roles from the consuming nodes */
}

const graft_format graft_format_onnx = {
    .name = "onnx",
    .probe = onnx_probe,
    .open = onnx_open,
    .write = graft_onnx__write,
};
