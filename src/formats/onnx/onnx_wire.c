/*
 * onnx_wire.c - protobuf wire format of ONNX models: fields, TensorProto,
 * and the walk from ModelProto to every weight tensor (see onnx_wire.h).
 *
 * Fields are read by the shared protobuf wire reader (core/pb.h).
 * Messages followed from ModelProto (field numbers as in onnx.proto):
 *   ModelProto 7 graph, 20 training_info, 25 functions
 *   TrainingInfoProto 1 initialization, 2 algorithm (GraphProto)
 *   GraphProto 1 node, 5 initializer (TensorProto), 15 sparse_initializer
 *     (SparseTensorProto: 1 values, 2 indices (TensorProto), 3 dims)
 *   FunctionProto 7 node
 *   NodeProto 2 output, 4 op_type, 7 domain, 5 attribute
 *   AttributeProto 1 name, 5 t (TensorProto), 6 g, 11 graphs (GraphProto);
 *     a Constant's value may instead sit in 2 f, 3 i, 4 s, 7 floats, 8 ints,
 *     9 strings (attributes value_float ... value_strings), 22 sparse_tensor
 *     (attribute sparse_value), 21 ref_attr_name
 */
#include "onnx_wire.h"

#include <string.h>

enum kind { K_MODEL, K_GRAPH, K_NODE, K_ATTR, K_FUNCTION, K_TRAINING, K_TENSOR, K_SPARSE };

static const char *const kind_names[] = {
    "ModelProto", "GraphProto", "NodeProto", "AttributeProto",
    "FunctionProto", "TrainingInfoProto", "TensorProto", "SparseTensorProto",
};

/* ---- TensorProto -------------------------------------------------------- */

static int push_dim(graft_rd *r, graft_onnx_tensor *t, uint64_t v)
{
    if (t->ndim == GRAFT_MAX_NDIM)
        return graft_error(r->ctx, GRAFT_ELIMIT, "offset 0x%llx: more than %d dims",
                           (unsigned long long)graft_rd_offset(r), GRAFT_MAX_NDIM);
    t->dims[t->ndim++] = (int64_t)v;
    return GRAFT_OK;
}

/* Elements in one occurrence of a numeric repeated field, packed or not.
 * Varints must be read to be counted: with `src` (the mapped file holding
 * them) their pages are released every MiB, so a large field is counted
 * with flat memory. */
static int count_elems(graft_rd *r, const graft_pbf *f, int want_wt, const graft_source *src,
                       uint64_t *n)
{
    graft_rd b = f->sub;
    uint64_t v;
    *n = 0;
    if ((int)f->wt == want_wt) {
        *n = 1;
        return GRAFT_OK;
    }
    if (f->wt != GRAFT_PB_LEN)
        return graft_rd_fail(r, "TensorProto field %u: wire type %u", f->num, f->wt);
    if (want_wt == GRAFT_PB_I32 || want_wt == GRAFT_PB_I64) {
        size_t w = want_wt == GRAFT_PB_I32 ? 4 : 8;
        if (b.len % w)
            return graft_rd_fail(&b, "TensorProto field %u: packed length %zu is not a "
                                 "multiple of %zu", f->num, b.len, w);
        *n = b.len / w;
        return GRAFT_OK;
    }
    uint64_t mark = graft_rd_offset(&b);
    while (graft_rd_left(&b)) {
        GRAFT_TRY(graft_rd_varint(&b, &v));
        (*n)++;
        if (src && graft_rd_offset(&b) - mark >= (1u << 20)) {
            graft_source_release(src, mark, graft_rd_offset(&b) - mark);
            mark = graft_rd_offset(&b);
        }
    }
    if (src) graft_source_release(src, mark, graft_rd_offset(&b) - mark);
    return GRAFT_OK;
}

static int want_wire_type(uint32_t field)
{
    switch (field) {
    case ONNX_T_FLOAT: return GRAFT_PB_I32;
    case ONNX_T_DOUBLE: return GRAFT_PB_I64;
    case ONNX_T_INT32: case ONNX_T_INT64: case ONNX_T_UINT64: return GRAFT_PB_VARINT;
    default: return -1;
    }
}

static int parse_entry(graft_onnx_tensor *t, graft_rd *b)
{
    graft_onnx_str key = {NULL, 0}, val = {NULL, 0};
    graft_pbf f;
    while (graft_rd_left(b)) {
        GRAFT_TRY(graft_pb_next(b, &f));
        if ((f.num == 1 || f.num == 2) && f.wt == GRAFT_PB_LEN) {
            graft_onnx_str *s = f.num == 1 ? &key : &val;
            s->p = f.sub.p;
            s->n = f.sub.len;
        }
    }
    if (!key.p || !val.p) return GRAFT_OK;
    if (key.n == 8 && !memcmp(key.p, "location", 8)) t->location = val;
    if (key.n == 6 && !memcmp(key.p, "offset", 6)) t->offset = val;
    if (key.n == 6 && !memcmp(key.p, "length", 6)) t->length = val;
    return GRAFT_OK;
}

int graft_onnx__parse_tensor(graft_rd *msg, const graft_source *src, graft_onnx_tensor *t)
{
    graft_pbf f;
    uint64_t n;

    memset(t, 0, sizeof *t);
    while (graft_rd_left(msg)) {
        GRAFT_TRY(graft_pb_next(msg, &f));
        switch (f.num) {
        case ONNX_T_DIMS:
            if (f.wt == GRAFT_PB_VARINT) {
                GRAFT_TRY(push_dim(msg, t, f.v));
            } else if (f.wt == GRAFT_PB_LEN) {
                graft_rd b = f.sub;
                uint64_t v;
                while (graft_rd_left(&b)) {
                    GRAFT_TRY(graft_rd_varint(&b, &v));
                    GRAFT_TRY(push_dim(&b, t, v));
                }
            } else {
                return graft_rd_fail(msg, "TensorProto dims: wire type %u", f.wt);
            }
            break;
        case ONNX_T_DATA_TYPE:
            if (f.wt != GRAFT_PB_VARINT)
                return graft_rd_fail(msg, "TensorProto data_type: wire type %u", f.wt);
            t->data_type = (int64_t)f.v;
            break;
        case ONNX_T_SEGMENT:
            t->segment = true;
            break;
        case ONNX_T_FLOAT: case ONNX_T_INT32: case ONNX_T_INT64:
        case ONNX_T_DOUBLE: case ONNX_T_UINT64:
            GRAFT_TRY(count_elems(msg, &f, want_wire_type(f.num), src, &n));
            t->count[f.num] += n; /* packed runs may repeat; they concatenate */
            break;
        case ONNX_T_STRING:
            t->count[f.num]++;
            break;
        case ONNX_T_NAME:
        case ONNX_T_RAW:
            if (f.wt != GRAFT_PB_LEN)
                return graft_rd_fail(msg, "TensorProto field %u: wire type %u", f.num, f.wt);
            if (f.num == ONNX_T_NAME) {
                t->name.p = f.sub.p;
                t->name.n = f.sub.len;
            } else { /* proto2: the last occurrence wins */
                t->has_raw = true;
                t->raw.p = f.sub.p;
                t->raw.n = f.sub.len;
                t->raw_off = f.sub.origin;
            }
            break;
        case ONNX_T_EXTERNAL:
            if (f.wt != GRAFT_PB_LEN)
                return graft_rd_fail(msg, "TensorProto external_data: wire type %u", f.wt);
            GRAFT_TRY(parse_entry(t, &f.sub));
            break;
        case ONNX_T_LOCATION:
            if (f.wt != GRAFT_PB_VARINT)
                return graft_rd_fail(msg, "TensorProto data_location: wire type %u", f.wt);
            t->external = f.v == 1;
            break;
        default:
            break;
        }
    }
    return GRAFT_OK;
}

int graft_onnx__typed_field(int64_t data_type, graft_dtype *dt)
{
    static const struct { graft_dtype dt; int field; } map[] = {
        [1] = {GRAFT_FLOAT32, ONNX_T_FLOAT},     [2] = {GRAFT_UINT8, ONNX_T_INT32},
        [3] = {GRAFT_INT8, ONNX_T_INT32},        [4] = {GRAFT_UINT16, ONNX_T_INT32},
        [5] = {GRAFT_INT16, ONNX_T_INT32},       [6] = {GRAFT_INT32, ONNX_T_INT32},
        [7] = {GRAFT_INT64, ONNX_T_INT64},       [9] = {GRAFT_BOOL, ONNX_T_INT32},
        [10] = {GRAFT_FLOAT16, ONNX_T_INT32},    [11] = {GRAFT_FLOAT64, ONNX_T_DOUBLE},
        [12] = {GRAFT_UINT32, ONNX_T_UINT64},    [13] = {GRAFT_UINT64, ONNX_T_UINT64},
        [14] = {GRAFT_COMPLEX64, ONNX_T_FLOAT},  [15] = {GRAFT_COMPLEX128, ONNX_T_DOUBLE},
        [16] = {GRAFT_BFLOAT16, ONNX_T_INT32},
        [17] = {GRAFT_FLOAT8_E4M3FN, ONNX_T_INT32}, [19] = {GRAFT_FLOAT8_E5M2, ONNX_T_INT32},
    };
    *dt = GRAFT_DTYPE_INVALID;
    if (data_type < 0 || data_type >= (int64_t)(sizeof map / sizeof *map)) return 0;
    *dt = map[data_type].dt;
    return map[data_type].field;
}

const char *graft_onnx__type_name(int64_t data_type)
{
    static const char *const names[] = {
        "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64",
        "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64",
        "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2",
        "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1", "FLOAT8E8M0", "UINT2", "INT2",
    };
    if (data_type < 0 || data_type >= (int64_t)(sizeof names / sizeof *names)) return "unknown";
    return names[data_type];
}

/* Where decoded elements go: a buffer of cap units, handed to flush (when
 * set) each time it fills and at the end, with the message offset reached. */
typedef struct decode_sink {
    uint8_t *buf;
    uint64_t cap;
    graft_onnx_flush_fn flush;
    void *arg;
} decode_sink;

static int decode_field(graft_rd *msg, int field, int want, graft_dtype dt, size_t unit,
                        uint64_t units, const decode_sink *out);

static void put_unit(uint8_t *dst, graft_dtype dt, size_t unit, uint64_t v)
{
    if (dt == GRAFT_BOOL) v = v != 0;
    for (size_t i = 0; i < unit; i++) dst[i] = (uint8_t)(v >> (8 * i));
}

int graft_onnx__decode(graft_rd *msg, int field, graft_dtype dt, size_t unit,
                       uint64_t units, uint8_t *dst)
{
    decode_sink out = {dst, units, NULL, NULL};
    return decode_field(msg, field, want_wire_type((uint32_t)field), dt, unit, units, &out);
}

int graft_onnx__decode_pieces(graft_rd *msg, int field, graft_dtype dt, size_t unit,
                              uint64_t units, uint8_t *buf, uint64_t cap,
                              graft_onnx_flush_fn flush, void *arg)
{
    decode_sink out = {buf, cap, flush, arg};
    return decode_field(msg, field, want_wire_type((uint32_t)field), dt, unit, units, &out);
}

/* One element in: flush the sink's buffer when it is full (at: the message
 * offset the decoding has reached). */
static int put_elem(const decode_sink *out, uint64_t *done, graft_dtype dt, size_t unit,
                    uint64_t v, uint64_t at)
{
    uint64_t i = *done % out->cap;
    put_unit(out->buf + i * unit, dt, unit, v);
    ++*done;
    if (out->flush && i + 1 == out->cap) return out->flush(out->arg, out->buf, out->cap * unit, at);
    return GRAFT_OK;
}

/* Elements of field `field` (wire type `want` each, or packed runs). */
static int decode_field(graft_rd *msg, int field, int want, graft_dtype dt, size_t unit,
                        uint64_t units, const decode_sink *out)
{
    graft_pbf f;
    uint64_t done = 0, v;

    while (graft_rd_left(msg)) {
        GRAFT_TRY(graft_pb_next(msg, &f));
        if ((int)f.num != field) continue;
        if ((int)f.wt == want) {
            if (done == units) break;
            GRAFT_TRY(put_elem(out, &done, dt, unit, f.v, graft_rd_offset(msg)));
            continue;
        }
        if (f.wt != GRAFT_PB_LEN)
            return graft_rd_fail(msg, "TensorProto field %u: wire type %u", f.num, f.wt);
        graft_rd b = f.sub;
        while (graft_rd_left(&b) && done < units) {
            if (want == GRAFT_PB_I32) {
                uint32_t x;
                GRAFT_TRY(graft_rd_u32le(&b, &x));
                v = x;
            } else if (want == GRAFT_PB_I64) {
                GRAFT_TRY(graft_rd_u64le(&b, &v));
            } else {
                GRAFT_TRY(graft_rd_varint(&b, &v));
            }
            GRAFT_TRY(put_elem(out, &done, dt, unit, v, graft_rd_offset(&b)));
        }
    }
    if (done != units)
        return graft_rd_fail(msg, "TensorProto field %d: %llu elements, expected %llu", field,
                             (unsigned long long)done, (unsigned long long)units);
    if (out->flush && done % out->cap)
        return out->flush(out->arg, out->buf, (done % out->cap) * unit, graft_rd_offset(msg));
    return GRAFT_OK;
}

/* ---- Constant values held in AttributeProto's own fields ------------------ */

/* The element wire type, dtype and rank of attribute value field `field`. */
static bool attr_form(uint32_t field, int *wt, graft_dtype *dt, uint32_t *ndim)
{
    switch (field) {
    case ONNX_A_F: *wt = GRAFT_PB_I32; *dt = GRAFT_FLOAT32; *ndim = 0; return true;
    case ONNX_A_FLOATS: *wt = GRAFT_PB_I32; *dt = GRAFT_FLOAT32; *ndim = 1; return true;
    case ONNX_A_I: *wt = GRAFT_PB_VARINT; *dt = GRAFT_INT64; *ndim = 0; return true;
    case ONNX_A_INTS: *wt = GRAFT_PB_VARINT; *dt = GRAFT_INT64; *ndim = 1; return true;
    case ONNX_A_S: *wt = GRAFT_PB_LEN; *dt = GRAFT_STRING; *ndim = 0; return true;
    case ONNX_A_STRINGS: *wt = GRAFT_PB_LEN; *dt = GRAFT_STRING; *ndim = 1; return true;
    default: return false;
    }
}

int graft_onnx__parse_attr_value(graft_rd *msg, uint32_t field, graft_onnx_attr_value *out)
{
    graft_pbf f;
    uint64_t n;
    memset(out, 0, sizeof *out);
    out->field = field;
    if (!attr_form(field, &out->wt, &out->dtype, &out->ndim))
        return graft_rd_fail(msg, "AttributeProto field %u is not a value", field);
    while (graft_rd_left(msg)) {
        GRAFT_TRY(graft_pb_next(msg, &f));
        if (f.num != field) continue;
        if (out->wt == GRAFT_PB_LEN) {
            if (f.wt != GRAFT_PB_LEN)
                return graft_rd_fail(msg, "AttributeProto field %u: wire type %u", f.num, f.wt);
            out->count++;
            out->nbytes += f.span;
            continue;
        }
        GRAFT_TRY(count_elems(msg, &f, out->wt, NULL, &n));
        out->count += n;
    }
    if (out->ndim == 0 && out->count != 1)
        return graft_rd_fail(msg, "AttributeProto field %u: %llu values for a single one", field,
                             (unsigned long long)out->count);
    if (out->dtype != GRAFT_STRING) out->nbytes = out->count * graft_dtype_size(out->dtype);
    return GRAFT_OK;
}

int graft_onnx__decode_attr_value(graft_rd *msg, const graft_onnx_attr_value *v, uint8_t *dst)
{
    graft_pbf f;
    if (v->dtype != GRAFT_STRING)
        return decode_field(msg, (int)v->field, v->wt, v->dtype, graft_dtype_size(v->dtype),
                            v->count, &(decode_sink){dst, v->count ? v->count : 1, NULL, NULL});
    while (graft_rd_left(msg)) {
        GRAFT_TRY(graft_pb_next(msg, &f));
        if (f.num != v->field) continue;
        memcpy(dst, f.at, f.span);
        dst += f.span;
    }
    return GRAFT_OK;
}

/* ---- the walk ----------------------------------------------------------- */

/* The message kind of field `num` of a `kind` message, or -1 to copy it.
 * In a Constant node's `value` attribute, field 5 is a weight, in its
 * `sparse_value` attribute field 22. */
static int child_kind(int kind, uint32_t num, bool constant_value, bool sparse_value)
{
    switch (kind) {
    case K_MODEL: return num == 7 ? K_GRAPH : num == 20 ? K_TRAINING : num == 25 ? K_FUNCTION : -1;
    case K_TRAINING: return num == 1 || num == 2 ? K_GRAPH : -1;
    case K_GRAPH: return num == 1 ? K_NODE : num == 5 ? K_TENSOR : num == 15 ? K_SPARSE : -1;
    case K_FUNCTION: return num == 7 ? K_NODE : -1;
    case K_NODE: return num == 5 ? K_ATTR : -1;
    case K_ATTR:
        if (num == 6 || num == 11) return K_GRAPH;
        if (num == 22 && sparse_value) return K_SPARSE;
        return num == 5 && constant_value ? K_TENSOR : -1;
    default: return -1;
    }
}

static bool str_is(const graft_onnx_str *s, const char *lit)
{
    size_t n = strlen(lit);
    return s->p && s->n == n && memcmp(s->p, lit, n) == 0;
}

/* A Constant node's first output (its value's name); p NULL for other nodes. */
static int constant_output(graft_rd r, graft_onnx_str *out)
{
    graft_onnx_str op = {NULL, 0}, domain = {NULL, 0}, output = {NULL, 0};
    graft_pbf f;
    out->p = NULL;
    out->n = 0;
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.wt != GRAFT_PB_LEN) continue;
        graft_onnx_str s = {f.sub.p, f.sub.len};
        if (f.num == 4) op = s;
        if (f.num == 7) domain = s;
        if (f.num == 2 && !output.p) output = s;
    }
    if (!str_is(&op, "Constant")) return GRAFT_OK;
    if (domain.p && domain.n && !str_is(&domain, "ai.onnx")) return GRAFT_OK;
    if (!output.p || !output.n)
        return graft_rd_fail(&r, "Constant node without an output name");
    *out = output;
    return GRAFT_OK;
}

/* Which value attribute of a Constant node this is: *tensor for `value`,
 * *sparse for `sparse_value`, or *field the AttributeProto field of
 * value_float(s), value_int(s) and value_string(s); none for other
 * attributes and for references to a function's attribute (ref_attr_name,
 * 21: no value of its own). */
static int attr_is_value(graft_rd r, bool *tensor, bool *sparse, uint32_t *field)
{
    static const struct { const char *name; uint32_t field; } forms[] = {
        {"value_float", ONNX_A_F},  {"value_floats", ONNX_A_FLOATS},
        {"value_int", ONNX_A_I},    {"value_ints", ONNX_A_INTS},
        {"value_string", ONNX_A_S}, {"value_strings", ONNX_A_STRINGS},
    };
    graft_onnx_str name = {NULL, 0};
    bool ref = false;
    graft_pbf f;
    *tensor = *sparse = false;
    *field = 0;
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num == 1 && f.wt == GRAFT_PB_LEN) name = (graft_onnx_str){f.sub.p, f.sub.len};
        if (f.num == 21) ref = true;
    }
    if (ref) return GRAFT_OK;
    *tensor = str_is(&name, "value");
    *sparse = str_is(&name, "sparse_value");
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++)
        if (str_is(&name, forms[i].name)) *field = forms[i].field;
    return GRAFT_OK;
}

static int walk(graft_onnx_walker *w, graft_onnx_mode mode, int kind, graft_rd *r,
                const graft_onnx_str *cname, int depth, uint64_t *size);

/* String field `num` of message r (the first one); p NULL when absent. */
static graft_onnx_str str_field(graft_rd r, uint32_t num)
{
    graft_pbf f;
    while (graft_rd_left(&r)) {
        if (graft_pb_next(&r, &f) < 0) break;
        if (f.num == num && f.wt == GRAFT_PB_LEN) return (graft_onnx_str){f.sub.p, f.sub.len};
    }
    return (graft_onnx_str){NULL, 0};
}

/* Append "<a>/" (and "<b>/") to the scope; false when it would not fit. */
static bool scope_push(graft_onnx_walker *w, const graft_onnx_str *a, const graft_onnx_str *b)
{
    size_t need = a->n + 1 + (b ? b->n + 1 : 0);
    if (w->scope_len + need >= sizeof w->scope) return false;
    memcpy(w->scope + w->scope_len, a->p, a->n);
    w->scope[w->scope_len + a->n] = '/';
    w->scope_len += a->n + 1;
    if (b) {
        memcpy(w->scope + w->scope_len, b->p, b->n);
        w->scope[w->scope_len + b->n] = '/';
        w->scope_len += b->n + 1;
    }
    w->scope[w->scope_len] = '\0';
    return true;
}

/* One container field: recurse (SCAN), add its new size (SIZE), or write it. */
static int child(graft_onnx_walker *w, graft_onnx_mode mode, int ck, const graft_pbf *f,
                 const graft_onnx_str *cname, int depth, uint64_t *total)
{
    uint64_t sub = 0, dummy;
    graft_rd b = f->sub;

    if (mode == GRAFT_ONNX_SCAN) {
        if (ck == K_TENSOR) return w->tensor(w, mode, &b, cname, &dummy);
        if (ck == K_SPARSE) return w->sparse(w, mode, &b, cname, &dummy);
        return walk(w, mode, ck, &b, cname, depth + 1, &dummy);
    }
    if (ck == K_TENSOR)
        GRAFT_TRY(w->tensor(w, GRAFT_ONNX_SIZE, &b, cname, &sub));
    else if (ck == K_SPARSE)
        GRAFT_TRY(w->sparse(w, GRAFT_ONNX_SIZE, &b, cname, &sub));
    else
        GRAFT_TRY(walk(w, GRAFT_ONNX_SIZE, ck, &b, cname, depth + 1, &sub));
    if (mode == GRAFT_ONNX_SIZE) {
        *total += f->taglen + graft_pb_varint_len(sub) + sub;
        return GRAFT_OK;
    }
    GRAFT_TRY(graft_sink_write(w->out, f->at, f->taglen));
    GRAFT_TRY(graft_pb_sink_varint(w->out, sub));
    b = f->sub;
    if (ck == K_TENSOR) return w->tensor(w, mode, &b, cname, &dummy);
    if (ck == K_SPARSE) return w->sparse(w, mode, &b, cname, &dummy);
    return walk(w, mode, ck, &b, cname, depth + 1, &dummy);
}

static int walk(graft_onnx_walker *w, graft_onnx_mode mode, int kind, graft_rd *r,
                const graft_onnx_str *cname, int depth, uint64_t *size)
{
    graft_onnx_str node_out = {NULL, 0};
    const graft_onnx_str *pass = NULL;  /* name handed to this message's children */
    bool constant_value = false, sparse_value = false;
    graft_onnx_str label = {NULL, 0}, aname = {NULL, 0};
    size_t scope_len = w->scope_len;
    graft_pbf f;
    uint64_t total = 0;

    if (depth > GRAFT_ONNX_MAX_DEPTH)
        return graft_error(w->ctx, GRAFT_ELIMIT, "offset 0x%llx: %s nested deeper than %d messages",
                           (unsigned long long)graft_rd_offset(r), kind_names[kind],
                           GRAFT_ONNX_MAX_DEPTH);
    if (kind == K_NODE) {
        GRAFT_TRY(constant_output(*r, &node_out));
        if (node_out.p) pass = &node_out;
        label = str_field(*r, 3);                /* name, else its first output */
        if (!label.n) label = str_field(*r, 2);
    } else if (kind == K_ATTR) {
        aname = str_field(*r, 1);
    } else if (kind == K_FUNCTION) {
        graft_onnx_str fname = str_field(*r, 1);
        if (fname.n) (void)scope_push(w, &fname, NULL);
    }
    if (kind == K_ATTR && cname) {
        uint32_t vf;
        GRAFT_TRY(attr_is_value(*r, &constant_value, &sparse_value, &vf));
        if (constant_value || sparse_value) pass = cname;
        if (vf && w->attr) return w->attr(w, mode, r, cname, vf, size);
    }
    while (graft_rd_left(r)) {
        GRAFT_TRY(graft_pb_next(r, &f));
        int ck = child_kind(kind, f.num, constant_value, sparse_value);
        if (ck < 0) {
            if (mode == GRAFT_ONNX_SIZE) total += f.span;
            if (mode == GRAFT_ONNX_EMIT) GRAFT_TRY(graft_sink_write(w->out, f.at, f.span));
            continue;
        }
        if (f.wt != GRAFT_PB_LEN)
            return graft_error(w->ctx, GRAFT_ECORRUPT,
                               "offset 0x%llx: %s field %u should hold a %s, not wire type %u",
                               (unsigned long long)(graft_rd_offset(r) - f.span), kind_names[kind],
                               f.num, kind_names[ck], f.wt);
        graft_onnx_str node = w->node;
        size_t before = w->scope_len;
        if (kind == K_NODE) w->node = label;
        if (kind == K_ATTR && ck == K_GRAPH && w->node.n && aname.n)
            (void)scope_push(w, &w->node, &aname);
        if (kind == K_TRAINING) {
            static const graft_onnx_str ti = {(const uint8_t *)"training_info", 13},
                                        init = {(const uint8_t *)"initialization", 14},
                                        algo = {(const uint8_t *)"algorithm", 9};
            (void)scope_push(w, &ti, f.num == 1 ? &init : &algo);
        }
        int rc = child(w, mode, ck, &f,
                       ck == K_TENSOR || ck == K_SPARSE || ck == K_ATTR ? pass : NULL, depth,
                       &total);
        w->node = node;
        w->scope_len = before;
        w->scope[before] = '\0';
        if (rc < 0) return rc;
    }
    w->scope_len = scope_len;
    w->scope[scope_len] = '\0';
    *size = total;
    return GRAFT_OK;
}

int graft_onnx__walk(graft_onnx_walker *w, graft_onnx_mode mode, const uint8_t *data,
                     size_t len, uint64_t *size)
{
    graft_rd r;
    uint64_t dummy;
    graft_rd_init(&r, data, len, 0, w->ctx);
    return walk(w, mode, K_MODEL, &r, NULL, 0, size ? size : &dummy);
}
