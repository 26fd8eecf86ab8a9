/*
 * optab.h - the op table (internal to the library): every op of a rules
 * file's `ops:` described once.
 *
 * Each op is a `const graft_op_def graft_op_def_<name>` in one op_*.c file of
 * src/transform/, listed in ops.def.  The table gives, per op:
 *   1. its name and the rules format minor version that introduced it;
 *   2. parse: its value in a rules file, read through graft_oparg (the rules
 *      loader implements the reader, so an op file never sees YAML);
 *   3. infer: the output shape and dtype, checking the input;
 *   4. run: the output bytes, emitted in row-major order into a graft_xout
 *      (a sink or memory), streaming from the sources where it can;
 *   5. invert: the op that undoes it, for `--reverse` (NULL: it has none);
 *   6. json: its value as JSON, in the form parse reads back.
 * The YAML loader, the planner, `plan --json`, `--manifest`, reverse, the
 * docs tests and fuzz_ops all go through this table.
 *
 * Adding an op: one op_<name>.c with its graft_op_def, one line in ops.def,
 * its section in man/graft-rules.5 and its entry in
 * schemas/graft-rules.schema.json (tests check both against the table).
 */
#ifndef GRAFT_TRANSFORM_OPTAB_H
#define GRAFT_TRANSFORM_OPTAB_H

#include "json.h"
#include "kernels.h"

#include <stdio.h>

/* ---- reading an op's value from a rules file (rules/load.c) ------------ */

/* One op's value in a rules file: `{take: {axis: 0, ...}}` gives the mapping;
 * a bare `transpose` list entry gives no value. */
typedef struct graft_oparg graft_oparg;

typedef enum graft_oparg_kind {
    GRAFT_OPARG_NONE,    /* bare name, `~`, `{}`, or empty */
    GRAFT_OPARG_SCALAR,
    GRAFT_OPARG_LIST,
    GRAFT_OPARG_MAP,
} graft_oparg_kind;

graft_oparg_kind graft_oparg_type(const graft_oparg *a);
/* "<file>:<line>:<col>: <op>: <problem>" at the value (key NULL) or at a
 * key's value; returns GRAFT_ERULE. */
int graft_oparg_fail(const graft_oparg *a, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The value must be a mapping whose keys are among `known` (NULL-ended). */
int graft_oparg_keys(const graft_oparg *a, const char *const *known);
bool graft_oparg_has(const graft_oparg *a, const char *key);
/* Key `key` of the mapping (required: "'<key>' is required"), or the value
 * itself when key is NULL. */
int graft_oparg_int(const graft_oparg *a, const char *key, int64_t lo, int64_t hi, int64_t *out);
int graft_oparg_num(const graft_oparg *a, const char *key, double *out);
int graft_oparg_str(const graft_oparg *a, const char *key, const char **out);
/* A list of at most GRAFT_MAX_NDIM integers in [lo, hi], in the rules arena. */
int graft_oparg_ints(const graft_oparg *a, const char *key, int64_t lo, int64_t hi,
                     int64_t **out, uint32_t *n);
/* The file's format minor version (graft: 1.<minor>). */
unsigned graft_oparg_minor(const graft_oparg *a);
/* Memory that lives as long as the rules. */
void *graft_oparg_alloc(const graft_oparg *a, size_t n);

/* ---- writing an op's JSON ---------------------------------------------- */

/* Ops write their JSON with core/json.c's writer (graft_jsonw_printf,
 * graft_jsonw_ints, graft_jsonw_num). */

/* ---- the table --------------------------------------------------------- */

enum {
    GRAFT_OPF_JOIN = 1u << 0,    /* first op only: consumes all the sources of a pairs entry */
    GRAFT_OPF_PART = 1u << 1,    /* takes one part of its input: several targets reading one
                                  * source through it are a split, not a tie */
    GRAFT_OPF_LAYOUT = 1u << 2,  /* moves bytes only; its inverse gives them back bit for bit */
    GRAFT_OPF_BARE = 1u << 3,    /* written with no value ("transpose", "sum") */
};

typedef struct graft_op_def {
    const char *name;   /* as in a rules file */
    unsigned minor;     /* rules format 1.<minor> introduced it */
    unsigned flags;     /* GRAFT_OPF_* */
    /* op->kind, file and line are set; fill the rest from a.  Errors through
     * graft_oparg_fail. */
    int (*parse)(const graft_oparg *a, graft_op *op);
    /* cur holds the input shape (a join: in[0]; all nin inputs in `in`) and
     * receives the output's. */
    int (*infer)(const graft_op *op, const graft_shape *in, size_t nin, graft_shape *cur,
                 graft_ctx *ctx);
    /* src has shape s (a join: the inputs are `in`); NULL: moves no bytes. */
    int (*run)(const graft_op *op, const graft_shape *s, const uint8_t *src,
               const graft_tview *in, size_t nin, graft_xout *o, graft_ctx *ctx);
    /* r = *op on entry (v NULL); s is op's input shape, in/nin/which as for
     * graft_ops_invert.  NULL: no inverse ("<op>: has no reverse"). */
    int (*invert)(const graft_op *op, const graft_shape *s, const graft_shape *in, size_t nin,
                  size_t which, graft_op *r, graft_ctx *ctx);
    /* The value after the name (nothing for a bare op; an op flagged BARE
     * whose json writes nothing for this op is printed bare). */
    void (*json)(const graft_op *op, graft_jsonw *b);
} graft_op_def;

/* The description of kind, NULL when out of range. */
const graft_op_def *graft_op_def_of(graft_op_kind kind);
/* The op named name[0..len), or GRAFT_OP_COUNT. */
graft_op_kind graft_op_find(const char *name, size_t len);
/* "permute, transpose, ..." : the ops a file of format 1.<minor> may use. */
void graft_op_names(unsigned minor, char *buf, size_t n);

/* ---- helpers the op files share (ops.c) -------------------------------- */

/* "<file>:<line>: <op>: <problem>" */
int graft_op__error(graft_ctx *ctx, const graft_op *op, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Normalise an axis that may count from the end; false if out of range. */
bool graft_op__axis(int64_t a, uint32_t rank, uint32_t *out);
/* The same, failing with "axis A out of range for rank R". */
int graft_op__want_axis(const graft_op *op, int64_t a, uint32_t rank, uint32_t *out,
                        graft_ctx *ctx);
uint64_t graft_op__numel(const graft_shape *s);
/* Rows before, along and after `axis` (inner in bytes). */
void graft_op__split3(const graft_shape *s, uint32_t axis, uint64_t *outer, uint64_t *mid,
                      uint64_t *inner);
/* "[4, 4]", truncated to the buffer. */
const char *graft_op__dims(char *buf, size_t cap, uint32_t n, const int64_t *d);
/* A new v array of n entries for an inverted op (freed with the chain). */
int graft_op__alloc_v(graft_op *r, uint32_t n, graft_ctx *ctx);
/* The inputs of a join must all have in[0]'s dtype; float_only: and be floats. */
int graft_op__same_dtype(const graft_op *op, const graft_shape *in, size_t nin, bool float_only,
                         graft_ctx *ctx);
bool graft_op__is_float(graft_dtype t);
/* The inputs of a join must all have in[0]'s shape. */
int graft_op__same_shape(const graft_op *op, const graft_shape *in, size_t nin, graft_ctx *ctx);
/* Rows [start, start + len) of op->axis must lie inside s: "rows 6+3
 * outside axis 0 of 8 rows".  *axis receives the normalised axis. */
int graft_op__rows_inside(const graft_op *op, const graft_shape *s, int64_t start, int64_t len,
                          uint32_t *axis, graft_ctx *ctx);
/* Emit rows [start, start + len) of op->axis of src (shape s). */
int graft_op__emit_rows(const graft_op *op, const graft_shape *s, const uint8_t *src,
                        uint64_t start, uint64_t len, graft_xout *o);
/* The required `axis` key; a mapping of `axis` alone; its JSON {"axis": A}. */
int graft_op__parse_axis(const graft_oparg *a, graft_op *op);
int graft_op__parse_axis_only(const graft_oparg *a, graft_op *op);
void graft_op__json_axis(const graft_op *op, graft_jsonw *b);
/* Element-wise arithmetic in float64 over the nin same-shaped float inputs
 * (a join's sources, or src alone when in is NULL), blocks of at most
 * GRAFT_OP_BLOCK elements: f(payload, x, nin, first, out, n) gets x[k] =
 * input k's block, whose elements start at index `first`, and writes n
 * results, which are rounded once to `to` and emitted. */
#define GRAFT_OP_BLOCK 1024
int graft_op__map_f64(graft_xout *o, const uint8_t *const *src, const graft_dtype *dt,
                      size_t nin, uint64_t numel, graft_dtype to,
                      void (*f)(const void *payload, double *const *x, size_t nin, uint64_t first,
                                double *out, size_t n),
                      const void *payload, graft_ctx *ctx);

#define GRAFT_OP_DEF_DECL(E, name, minor) extern const graft_op_def graft_op_def_##name;
#define OP GRAFT_OP_DEF_DECL
#include "ops.def"
#undef OP

#endif
