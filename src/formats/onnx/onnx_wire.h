/*
 * onnx_wire.h - the protobuf wire-level walk shared by the ONNX reader and
 * writer (internal to src/formats/onnx/).
 *
 * The walk visits ModelProto -> graph, functions, training_info -> nodes ->
 * attributes -> subgraphs, and hands every weight TensorProto (graph
 * initializers and the `value` of Constant nodes) to a callback.  In SIZE and
 * EMIT modes it re-encodes only the length prefixes of the messages on the
 * way to a tensor and copies every other field byte for byte, so a rewritten
 * model keeps whatever it held that graft does not know about.
 * The reader's state (one entry per tensor message) is declared here too, for
 * the writer in onnx_write.c.
 */
#ifndef GRAFT_FORMATS_ONNX_WIRE_H
#define GRAFT_FORMATS_ONNX_WIRE_H

#include "model.h"
#include "pb.h"
#include "rd.h"
#include "sink.h"

struct graft_fill;

#define GRAFT_ONNX_MAX_DEPTH 64  /* cap on nested messages (subgraphs in subgraphs) */

/* TensorProto field numbers (onnx.proto). */
enum {
    ONNX_T_DIMS = 1, ONNX_T_DATA_TYPE = 2, ONNX_T_SEGMENT = 3, ONNX_T_FLOAT = 4,
    ONNX_T_INT32 = 5, ONNX_T_STRING = 6, ONNX_T_INT64 = 7, ONNX_T_NAME = 8,
    ONNX_T_RAW = 9, ONNX_T_DOUBLE = 10, ONNX_T_UINT64 = 11, ONNX_T_EXTERNAL = 13,
    ONNX_T_LOCATION = 14, ONNX_T_NFIELDS = 17
};

/* AttributeProto fields that hold a Constant node's value_float, value_int,
 * value_string, value_floats, value_ints and value_strings (onnx.proto). */
enum {
    ONNX_A_F = 2, ONNX_A_I = 3, ONNX_A_S = 4, ONNX_A_FLOATS = 7, ONNX_A_INTS = 8,
    ONNX_A_STRINGS = 9
};

/* A byte string borrowed from the file. */
typedef struct graft_onnx_str {
    const uint8_t *p;
    size_t n;
} graft_onnx_str;

/* What a TensorProto says about itself. */
typedef struct graft_onnx_tensor {
    graft_onnx_str name;
    int64_t data_type;                 /* TensorProto.DataType; 0 when absent */
    uint32_t ndim;
    int64_t dims[GRAFT_MAX_NDIM];
    bool segment;                      /* chunked tensor (unsupported) */
    bool external;                     /* data_location == EXTERNAL */
    bool has_raw;
    graft_onnx_str raw;                /* raw_data payload */
    uint64_t raw_off;                  /* its file offset */
    uint64_t count[ONNX_T_NFIELDS];    /* elements in each typed *_data field */
    graft_onnx_str location, offset, length; /* external_data keys (p NULL if absent) */
} graft_onnx_tensor;

/* src: the mapped file holding msg, whose pages counting varint runs may
 * release (or NULL). */
int graft_onnx__parse_tensor(graft_rd *msg, const graft_source *src, graft_onnx_tensor *out);
/* The *_data field holding elements of ONNX type `data_type`, and graft's
 * dtype; 0 / GRAFT_DTYPE_INVALID when graft cannot hold the type. */
int graft_onnx__typed_field(int64_t data_type, graft_dtype *dt);
const char *graft_onnx__type_name(int64_t data_type);
/* Decode `units` elements of typed field `field` of the message into dst as
 * little-endian values of `unit` bytes (complex numbers count two units). */
int graft_onnx__decode(graft_rd *msg, int field, graft_dtype dt, size_t unit,
                       uint64_t units, uint8_t *dst);
/* The same through a buffer of cap units, handed to flush(arg, buf, bytes,
 * at) whenever it fills and at the end; `at` is the message offset the
 * decoding has reached (bytes before it are done with). */
typedef int (*graft_onnx_flush_fn)(void *arg, const uint8_t *p, size_t n, uint64_t at);
int graft_onnx__decode_pieces(graft_rd *msg, int field, graft_dtype dt, size_t unit,
                              uint64_t units, uint8_t *buf, uint64_t cap,
                              graft_onnx_flush_fn flush, void *arg);

/*
 * A Constant value held in an AttributeProto field: value_float and
 * value_int are 0-d float32 / int64, value_floats and value_ints 1-d;
 * value_string(s) are string tensors whose bytes are the attribute's own
 * fields, tags included (so they can only be copied to where they came from).
 */
typedef struct graft_onnx_attr_value {
    uint32_t field;          /* ONNX_A_* */
    int wt;                  /* wire type of one element (packed runs allowed) */
    graft_dtype dtype;       /* GRAFT_FLOAT32, GRAFT_INT64 or GRAFT_STRING */
    uint32_t ndim;           /* 0 or 1 */
    uint64_t count;          /* elements */
    uint64_t nbytes;         /* count * 4 or 8; strings: bytes of their fields */
} graft_onnx_attr_value;

int graft_onnx__parse_attr_value(graft_rd *msg, uint32_t field, graft_onnx_attr_value *out);
/* Its nbytes into dst (row-major little-endian; strings as stored). */
int graft_onnx__decode_attr_value(graft_rd *msg, const graft_onnx_attr_value *v, uint8_t *dst);

typedef enum graft_onnx_mode { GRAFT_ONNX_SCAN, GRAFT_ONNX_SIZE, GRAFT_ONNX_EMIT } graft_onnx_mode;

typedef struct graft_onnx_walker graft_onnx_walker;
struct graft_onnx_walker {
    /*
     * A weight TensorProto (msg covers its body).  `name` is the Constant
     * node's output for Constant values, NULL for initializers (named by
     * their own field).  SIZE: set *size to the new body size; EMIT: write
     * the new body to w->out.
     */
    int (*tensor)(graft_onnx_walker *w, graft_onnx_mode mode, graft_rd *msg,
                  const graft_onnx_str *name, uint64_t *size);
    /* A Constant node's value_* attribute (msg covers the AttributeProto
     * body; field is its ONNX_A_* value field), in the same three modes;
     * NULL: copied as it is. */
    int (*attr)(graft_onnx_walker *w, graft_onnx_mode mode, graft_rd *msg,
                const graft_onnx_str *name, uint32_t field, uint64_t *size);
    /* A SparseTensorProto: a graph's sparse_initializer (name NULL: its
     * values' name names it) or a Constant's sparse_value, as tensor(). */
    int (*sparse)(graft_onnx_walker *w, graft_onnx_mode mode, graft_rd *msg,
                  const graft_onnx_str *name, uint64_t *size);
    graft_sink *out;       /* EMIT destination */
    void *payload;
    graft_ctx *ctx;
    /* Where the walk is: "" in the main graph, "<function>/" in a function,
     * "<node>/<attribute>/" (nested) in an If/Loop/Scan body,
     * "training_info/initialization/" or ".../algorithm/".  Names there
     * are their own namespace, so the reader qualifies a name by it when
     * another tensor has the same. */
    char scope[512];
    size_t scope_len;
    graft_onnx_str node;   /* the node whose attributes are being walked */
};

/* Walk a whole ModelProto; SIZE sets *size to the new model size. */
int graft_onnx__walk(graft_onnx_walker *w, graft_onnx_mode mode, const uint8_t *data,
                     size_t len, uint64_t *size);


/* ---- the reader's state, which the writer follows (onnx.c, onnx_write.c) */

#define STORE_EXTERNAL (-1)
#define STORE_SPARSE (-2)   /* a SparseTensorProto, densified (onnx_sparse.c) */
#define STORE_ATTR 100      /* + ONNX_A_*: a Constant's value_* attribute */

typedef struct graft_onnx_entry {
    uint64_t msg_off, msg_len;  /* TensorProto body in the model file */
    int store;                  /* field with the values, or STORE_EXTERNAL */
    size_t ext;                 /* index into exts when external */
    uint64_t ext_off, ext_len;  /* bytes in that side file */
} graft_onnx_entry;

typedef struct graft_onnx_ext {
    char *location;             /* as the model spells it; owned */
    const graft_source *src;    /* the mapped side file; owned by the model */
} graft_onnx_ext;

typedef struct graft_onnx_state {
    graft_onnx_entry *entries;  /* one per tensor message, file order; owned */
    size_t count, cap;
    graft_onnx_ext *exts;       /* distinct side files; owned */
    size_t next, extcap;
    char *dir;                  /* folder of the model file; owned */
} graft_onnx_state;

/*
 * SparseTensorProto (onnx.proto): values 1 (TensorProto, [NNZ]), indices 2
 * (TensorProto INT64, [NNZ] linearized or [NNZ, rank], ascending without
 * duplicates), dims 3 (the dense shape).
 */
typedef struct graft_onnx_sparse {
    graft_onnx_tensor values, indices;
    uint64_t values_off, values_len;   /* bodies in the file */
    uint64_t indices_off, indices_len;
    bool has_values, has_indices;
    uint32_t ndim;
    int64_t dims[GRAFT_MAX_NDIM];
} graft_onnx_sparse;

/* Dense sizes above this are listed as unsupported rather than densified. */
#define GRAFT_ONNX_SPARSE_MAX ((uint64_t)1 << 30)

int graft_onnx__parse_sparse(graft_rd *msg, graft_onnx_sparse *out);
/* Check sparse tensor `name` (dtype dt, the dense shape sp->dims) against
 * the spec and, with dst, write its dense row-major little-endian bytes
 * (zeros but at the indices) there.  base: the mapped model file. */
int graft_onnx__densify(const uint8_t *base, const graft_onnx_sparse *sp, const char *name,
                        graft_dtype dt, uint8_t *dst, graft_ctx *ctx);
/* The same bytes handed to fn in order, zeros from a static page: memory
 * stays that of the values and indices, whatever the dense size. */
int graft_onnx__sparse_pieces(const uint8_t *base, const graft_onnx_sparse *sp, const char *name,
                              graft_dtype dt, graft_piece_fn fn, void *arg, graft_ctx *ctx);

/* Write a copy of skeleton m with new tensor bytes (graft_format.write). */
int graft_onnx__write(const graft_model *m, const char *out_path, struct graft_fill *fill,
                      graft_ctx *ctx);

#endif
