/*
 * ops.c - op chains: shape inference with rule-located messages, running a
 * chain into memory or a sink, and inverting a chain for `apply --reverse`.
 *
 * Running: reshape moves no data; a lone data-moving op is its kernel,
 * writing straight into the destination; a chain of several runs as one
 * gather plan (gather.c), block by block, so no intermediate holds a whole
 * tensor (a chain the plan does not take runs op by op through
 * intermediates).
 */
#include "gather.h"
#include "op_json.h"
#include "optab.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the table -------------------------------------------------------- */

static const graft_op_def *const table[] = {
#define OP(E, name, minor) [GRAFT_OP_##E] = &graft_op_def_##name,
#include "ops.def"
#undef OP
};

const graft_op_def *graft_op_def_of(graft_op_kind kind)
{
    return (unsigned)kind < GRAFT_OP_COUNT ? table[kind] : NULL;
}

const char *graft_op_name(graft_op_kind kind)
{
    const graft_op_def *d = graft_op_def_of(kind);
    return d ? d->name : "op";
}

graft_op_kind graft_op_find(const char *name, size_t len)
{
    for (unsigned k = 0; k < GRAFT_OP_COUNT; k++)
        if (strlen(table[k]->name) == len && !memcmp(table[k]->name, name, len))
            return (graft_op_kind)k;
    return GRAFT_OP_COUNT;
}

void graft_op_names(unsigned minor, char *buf, size_t n)
{
    size_t len = 0;
    if (n) buf[0] = '\0';
    for (unsigned k = 0, i = 0; k < GRAFT_OP_COUNT; k++) {
        if (table[k]->minor > minor) continue;
        int r = snprintf(len < n ? buf + len : NULL, len < n ? n - len : 0, "%s%s",
                         i++ ? ", " : "", table[k]->name);
        if (r > 0) len += (size_t)r;
    }
}

/* ---- JSON --------------------------------------------------------------- */

/* Whether an op that may be written bare has a value to print (dequantize:
 * q8_0 has one, plain dequantize none). */
static bool bare_value(const graft_op_def *d, const graft_op *op, graft_ctx *ctx)
{
    graft_jsonw v;
    graft_jsonw_init(&v, ctx);
    d->json(op, &v);
    bool some = v.len > 0 || v.rc < 0;
    graft_jsonw_free(&v);
    return some;
}

void graft_op__json(graft_jsonw *w, const graft_op *op)
{
    const graft_op_def *d = graft_op_def_of(op->kind);
    if (!d) {
        graft_jsonw_printf(w, "null");
    } else if ((d->flags & GRAFT_OPF_BARE) && (!d->json || !bare_value(d, op, w->ctx))) {
        graft_jsonw_printf(w, "\"%s\"", d->name);
    } else {
        graft_jsonw_printf(w, "{\"%s\": ", d->name);
        d->json(op, w);
        graft_jsonw_raw(w, "}", 1);
    }
}

void graft_op__json_chain(graft_jsonw *w, const graft_op *ops, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (k) graft_jsonw_raw(w, ", ", 2);
        graft_op__json(w, &ops[k]);
    }
}

bool graft_ops_joins(const graft_op *op)
{
    const graft_op_def *d = graft_op_def_of(op->kind);
    return d && (d->flags & GRAFT_OPF_JOIN);
}

bool graft_ops_take_part(const graft_op *ops, size_t nops)
{
    for (size_t i = 0; i < nops; i++) {
        const graft_op_def *d = graft_op_def_of(ops[i].kind);
        if (d && (d->flags & GRAFT_OPF_PART)) return true;
    }
    return false;
}

/* ---- helpers shared by the op files ------------------------------------ */

int graft_op__error(graft_ctx *ctx, const graft_op *op, int code, const char *fmt, ...)
{
    char msg[GRAFT_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (op->file)
        return graft_error(ctx, code, "%s:%u: %s: %s", op->file, op->line,
                           graft_op_name(op->kind), msg);
    return graft_error(ctx, code, "%s: %s", graft_op_name(op->kind), msg);
}

/* Prefix a kernel's message with the op's place. */
static int op_prefix(graft_ctx *ctx, const graft_op *op, int rc)
{
    if (rc == GRAFT_ENOMEM || rc == GRAFT_EIO) return rc;
    if (op->file)
        graft_error_prefix(ctx, "%s:%u: %s", op->file, op->line, graft_op_name(op->kind));
    else
        graft_error_prefix(ctx, "%s", graft_op_name(op->kind));
    return rc;
}

const char *graft_op__dims(char *buf, size_t cap, uint32_t n, const int64_t *d)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (uint32_t i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, i ? ", " : "", d[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

bool graft_op__axis(int64_t a, uint32_t rank, uint32_t *out)
{
    if (a < 0) a += rank;
    if (a < 0 || a >= (int64_t)rank) return false;
    *out = (uint32_t)a;
    return true;
}

int graft_op__want_axis(const graft_op *op, int64_t a, uint32_t rank, uint32_t *out,
                        graft_ctx *ctx)
{
    if (!graft_op__axis(a, rank, out))
        return graft_op__error(ctx, op, GRAFT_ESHAPE, "axis %" PRId64 " out of range for rank %u",
                               a, rank);
    return GRAFT_OK;
}

static bool shape_numel(const graft_shape *s, uint64_t *numel)
{
    uint64_t n = 1;
    for (uint32_t i = 0; i < s->ndim; i++)
        if (s->dim[i] < 0 || graft_mul_overflow(n, (uint64_t)s->dim[i], &n)) return false;
    *numel = n;
    return true;
}

uint64_t graft_op__numel(const graft_shape *s)
{
    uint64_t n = 1;
    for (uint32_t i = 0; i < s->ndim; i++) n *= (uint64_t)s->dim[i];
    return n;
}

void graft_op__split3(const graft_shape *s, uint32_t axis, uint64_t *outer, uint64_t *mid,
                      uint64_t *inner)
{
    *outer = 1;
    *inner = graft_dtype_size(s->dtype);
    for (uint32_t i = 0; i < axis; i++) *outer *= (uint64_t)s->dim[i];
    for (uint32_t i = axis + 1; i < s->ndim; i++) *inner *= (uint64_t)s->dim[i];
    *mid = (uint64_t)s->dim[axis];
}

int graft_op__alloc_v(graft_op *r, uint32_t n, graft_ctx *ctx)
{
    r->v = graft_malloc(ctx, (n ? n : 1) * sizeof *r->v);
    if (!r->v) return graft_error_oom(ctx, "an inverted op");
    r->n = n;
    return GRAFT_OK;
}

bool graft_op__is_float(graft_dtype t)
{
    return t == GRAFT_FLOAT16 || t == GRAFT_BFLOAT16 || t == GRAFT_FLOAT32 || t == GRAFT_FLOAT64;
}

int graft_op__same_dtype(const graft_op *op, const graft_shape *in, size_t nin, bool float_only,
                         graft_ctx *ctx)
{
    for (size_t s = 0; s < nin; s++) {
        if (in[s].dtype != in[0].dtype)
            return graft_op__error(ctx, op, GRAFT_ESHAPE, "source %zu is %s, source 0 is %s", s,
                                   graft_dtype_name(in[s].dtype), graft_dtype_name(in[0].dtype));
    }
    if (float_only && !graft_op__is_float(in[0].dtype))
        return graft_op__error(ctx, op, GRAFT_ESHAPE,
                               "%s elements: only float16, bfloat16, float32 and float64",
                               graft_dtype_name(in[0].dtype));
    return GRAFT_OK;
}

int graft_op__same_shape(const graft_op *op, const graft_shape *in, size_t nin, graft_ctx *ctx)
{
    char a[256], b[256];
    for (size_t s = 1; s < nin; s++) {
        bool same = in[s].ndim == in[0].ndim;
        for (uint32_t i = 0; same && i < in[0].ndim; i++) same = in[s].dim[i] == in[0].dim[i];
        if (!same)
            return graft_op__error(ctx, op, GRAFT_ESHAPE, "source %zu has shape %s, source 0 %s",
                                   s, graft_op__dims(a, sizeof a, in[s].ndim, in[s].dim),
                                   graft_op__dims(b, sizeof b, in[0].ndim, in[0].dim));
    }
    return GRAFT_OK;
}

int graft_op__rows_inside(const graft_op *op, const graft_shape *s, int64_t start, int64_t len,
                          uint32_t *axis, graft_ctx *ctx)
{
    GRAFT_TRY(graft_op__want_axis(op, op->axis, s->ndim, axis, ctx));
    if (start < 0 || len < 0 || start > s->dim[*axis] || len > s->dim[*axis] - start)
        return graft_op__error(ctx, op, GRAFT_ESHAPE,
                               "rows %" PRId64 "+%" PRId64 " outside axis %u of %" PRId64 " rows",
                               start, len, *axis, s->dim[*axis]);
    return GRAFT_OK;
}

int graft_op__emit_rows(const graft_op *op, const graft_shape *s, const uint8_t *src,
                        uint64_t start, uint64_t len, graft_xout *o)
{
    uint32_t axis = 0;
    uint64_t outer, mid, inner;
    graft_op__axis(op->axis, s->ndim, &axis);
    graft_op__split3(s, axis, &outer, &mid, &inner);
    return graft_xform__slice(o, src, outer, mid, inner, start, len);
}

int graft_op__parse_axis(const graft_oparg *a, graft_op *op)
{
    int64_t v;
    GRAFT_TRY(graft_oparg_int(a, "axis", -GRAFT_MAX_NDIM, GRAFT_MAX_NDIM - 1, &v));
    op->axis = (int32_t)v;
    return 0;
}

int graft_op__parse_axis_only(const graft_oparg *a, graft_op *op)
{
    static const char *const keys[] = {"axis", NULL};
    GRAFT_TRY(graft_oparg_keys(a, keys));
    return graft_op__parse_axis(a, op);
}

void graft_op__json_axis(const graft_op *op, graft_jsonw *b)
{
    graft_jsonw_printf(b, "{\"axis\": %d}", (int)op->axis);
}

int graft_op__map_f64(graft_xout *o, const uint8_t *const *src, const graft_dtype *dt,
                      size_t nin, uint64_t numel, graft_dtype to,
                      void (*f)(const void *payload, double *const *x, size_t nin, uint64_t first,
                                double *out, size_t n),
                      const void *payload, graft_ctx *ctx)
{
    double *buf = graft_malloc(ctx, (nin + 1) * GRAFT_OP_BLOCK * sizeof *buf);
    double *x[16], **xs = nin <= 16 ? x : graft_malloc(ctx, nin * sizeof *xs);
    uint8_t *bytes = graft_malloc(ctx, GRAFT_OP_BLOCK * graft_dtype_size(to));
    int rc = GRAFT_OK;
    if (!buf || !xs || !bytes) {
        rc = graft_error_oom(ctx, "an arithmetic block");
        goto cleanup;
    }
    for (size_t k = 0; k < nin; k++) xs[k] = buf + (k + 1) * GRAFT_OP_BLOCK;
    for (uint64_t i = 0; i < numel && rc == GRAFT_OK; i += GRAFT_OP_BLOCK) {
        size_t n = numel - i < GRAFT_OP_BLOCK ? (size_t)(numel - i) : GRAFT_OP_BLOCK;
        for (size_t k = 0; k < nin; k++)
            graft_xform__to_f64(src[k] + i * graft_dtype_size(dt[k]), dt[k], n, xs[k]);
        f(payload, xs, nin, i, buf, n);
        graft_xform__from_f64(bytes, to, buf, n);
        rc = graft_xform__emit(o, bytes, n * graft_dtype_size(to));
    }
cleanup:
    if (xs != x) free(xs);
    free(bytes);
    free(buf);
    return rc;
}

/* ---- inference -------------------------------------------------------- */

static int infer_op(const graft_op *op, size_t i, const graft_shape *in, size_t nin,
                    graft_shape *cur, graft_ctx *ctx)
{
    const graft_op_def *d = graft_op_def_of(op->kind);
    if (!d) return graft_op__error(ctx, op, GRAFT_ERULE, "unknown op kind %d", (int)op->kind);
    if (d->flags & GRAFT_OPF_JOIN) {
        if (i != 0) return graft_op__error(ctx, op, GRAFT_ERULE, "must be the first op");
        *cur = in[0];
    } else if (i == 0) {
        if (nin != 1)
            return graft_op__error(ctx, op, GRAFT_ERULE, "%zu sources need a concat first", nin);
        *cur = in[0];
    }
    if (graft_dtype_size(cur->dtype) == 0)
        return graft_op__error(ctx, op, GRAFT_ESHAPE, "%s elements cannot be transformed",
                               graft_dtype_name(cur->dtype));
    return d->infer(op, in, nin, cur, ctx);
}

/* shapes[0] = the input (in[0]), shapes[j+1] = after op j, for j < k. */
static int infer_all(const graft_op *ops, size_t k, const graft_shape *in, size_t nin,
                     graft_shape *shapes, graft_ctx *ctx)
{
    if (nin == 0) return graft_error(ctx, GRAFT_ERROR, "an op chain needs a source");
    for (size_t s = 0; s < nin; s++) {
        uint64_t n;
        if (in[s].ndim > GRAFT_MAX_NDIM || !shape_numel(&in[s], &n) ||
            graft_mul_overflow(n, graft_dtype_size(in[s].dtype), &n) || n > SIZE_MAX ||
            n > INT64_MAX)
            return graft_error(ctx, GRAFT_ESHAPE, "source %zu: shape out of range", s);
    }
    shapes[0] = in[0];
    for (size_t i = 0; i < k; i++) {
        uint64_t n;
        shapes[i + 1] = shapes[i];
        GRAFT_TRY(infer_op(&ops[i], i, in, nin, &shapes[i + 1], ctx));
        /* a join or a wider dtype can outgrow what its sources fit in */
        if (!shape_numel(&shapes[i + 1], &n) ||
            graft_mul_overflow(n, graft_dtype_size(shapes[i + 1].dtype), &n) || n > SIZE_MAX ||
            n > INT64_MAX)
            return graft_op__error(ctx, &ops[i], GRAFT_ESHAPE, "the result is too large");
    }
    return GRAFT_OK;
}

static int infer_alloc(const graft_op *ops, size_t k, const graft_shape *in, size_t nin,
                       graft_shape **out, graft_ctx *ctx)
{
    *out = graft_malloc(ctx, (k + 1) * sizeof **out);
    if (!*out) return graft_error_oom(ctx, "op shapes");
    int rc = infer_all(ops, k, in, nin, *out, ctx);
    if (rc < 0) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

int graft_ops_infer_prefix(const graft_op *ops, size_t nops, size_t k, const graft_shape *in,
                           size_t nin, graft_shape *out, graft_ctx *ctx)
{
    graft_shape *shapes;
    if (k > nops) k = nops;
    if (nops == 0 && nin > 1)
        return graft_error(ctx, GRAFT_ERULE, "%zu sources need a concat first", nin);
    GRAFT_TRY(infer_alloc(ops, k, in, nin, &shapes, ctx));
    *out = shapes[k];
    free(shapes);
    return GRAFT_OK;
}

int graft_ops_infer(const graft_op *ops, size_t nops, const graft_shape *in, size_t nin,
                    graft_shape *out, graft_ctx *ctx)
{
    return graft_ops_infer_prefix(ops, nops, nops, in, nin, out, ctx);
}

/* ---- running ---------------------------------------------------------- */

/* n more bytes are out (to a sink or memory) */
static void advance(graft_xout *o, size_t n)
{
    o->pos += n;
    if (o->sink && o->release && (o->unreleased += n) >= GRAFT_OPS_RELEASE) {
        o->release(o->payload);
        o->unreleased = 0;
    }
}

int graft_xform__emit(graft_xout *o, const void *p, size_t n)
{
    if (n == 0) return GRAFT_OK;
    if (o->filter) {
        GRAFT_TRY(o->filter(o, p, n));
        o->pos += n;
        return GRAFT_OK;
    }
    if (o->mem)
        memcpy(o->mem + o->pos, p, n);
    else
        GRAFT_TRY(graft_sink_write(o->sink, p, n));
    advance(o, n);
    return GRAFT_OK;
}

int graft_xform__lend(graft_xout *o, const void *p, size_t n, uint64_t *ticket)
{
    *ticket = 0;
    if (o->filter || o->mem || !o->sink || n == 0) return graft_xform__emit(o, p, n);
    GRAFT_TRY(graft_sink_lend(o->sink, p, n, ticket));
    advance(o, n);
    return GRAFT_OK;
}

int graft_xform__wait(graft_xout *o, uint64_t ticket)
{
    return ticket ? graft_sink_wait(o->sink, ticket) : GRAFT_OK;
}

uint8_t *graft_xform__room(graft_xout *o, size_t *room)
{
    *room = 0;
    if (o->filter) return NULL;
    if (o->mem) { /* the whole output is there */
        *room = SIZE_MAX;
        return o->mem + o->pos;
    }
    return o->sink ? graft_sink_room(o->sink, room) : NULL;
}

int graft_xform__filled(graft_xout *o, size_t n)
{
    if (!o->mem) GRAFT_TRY(graft_sink_filled(o->sink, n));
    advance(o, n);
    return GRAFT_OK;
}

static int run_chain(const graft_op *ops, size_t nops, const graft_tview *in, size_t nin,
                     graft_xout *out, graft_ctx *ctx)
{
    graft_shape *ins = NULL, *shapes = NULL;
    uint8_t *owned = NULL;
    int rc;

    if (nin == 0) return graft_error(ctx, GRAFT_ERROR, "an op chain needs a source");
    if (nops == 0 && nin > 1)
        return graft_error(ctx, GRAFT_ERULE, "%zu sources need a concat first", nin);
    ins = graft_malloc(ctx, nin * sizeof *ins);
    if (!ins) return graft_error_oom(ctx, "op shapes");
    for (size_t s = 0; s < nin; s++)
        ins[s] = in[s].shape;
    rc = infer_alloc(ops, nops, ins, nin, &shapes, ctx);
    if (rc < 0) goto cleanup;

    size_t last = nops, moving = 0;
    for (size_t i = 0; i < nops; i++)
        if (graft_op_def_of(ops[i].kind)->run) last = i, moving++;
    if (moving > 1) { /* one gather plan rather than whole intermediates */
        graft_gplan g;
        rc = graft_gplan_build(&g, ops, nops, ins, nin, ctx);
        if (rc == 0) {
            rc = graft_gplan_run(&g, in, nin, out, ctx);
            graft_gplan_free(&g);
        }
        if (rc != 1) goto cleanup;
    }
    if (last == nops) { /* reshapes only: the bytes do not change */
        uint64_t n = graft_op__numel(&ins[0]) * graft_dtype_size(ins[0].dtype);
        rc = graft_xform__emit(out, in[0].data, (size_t)n);
        goto cleanup;
    }

    const uint8_t *cur = in[0].data;
    for (size_t i = 0; i <= last; i++) {
        const graft_op_def *d = graft_op_def_of(ops[i].kind);
        if (!d->run) continue;
        graft_xout mem = {.ctx = ctx}, *dst = out;
        uint8_t *buf = NULL;
        if (i < last) {
            uint64_t n = graft_op__numel(&shapes[i + 1]) * graft_dtype_size(shapes[i + 1].dtype);
            buf = graft_malloc(ctx, (size_t)n);
            if (!buf) {
                rc = graft_error_oom(ctx, "an intermediate tensor");
                goto cleanup;
            }
            mem.mem = buf;
            dst = &mem;
        }
        rc = d->run(&ops[i], &shapes[i], cur, in, nin, dst, ctx);
        if (rc < 0) {
            free(buf);
            op_prefix(ctx, &ops[i], rc);
            goto cleanup;
        }
        free(owned);
        owned = buf;
        cur = buf;
    }
cleanup:
    free(owned);
    free(shapes);
    free(ins);
    return rc;
}

int graft_ops_run(const graft_op *ops, size_t nops, const graft_tview *in, size_t nin,
                  graft_sink *out, graft_ctx *ctx)
{
    graft_xout o = {.sink = out, .ctx = ctx};
    return run_chain(ops, nops, in, nin, &o, ctx);
}

int graft_ops_run_released(const graft_op *ops, size_t nops, const graft_tview *in, size_t nin,
                           graft_sink *out, void (*release)(void *payload), void *payload,
                           graft_ctx *ctx)
{
    graft_xout o = {.sink = out, .ctx = ctx, .release = release, .payload = payload};
    return run_chain(ops, nops, in, nin, &o, ctx);
}

int graft_ops_run_io(const graft_op *ops, size_t nops, const graft_tview *in, size_t nin,
                     graft_sink *out, void (*release)(void *payload),
                     int (*read)(void *payload, const uint8_t *at, void *dst, size_t n,
                                 graft_ctx *ctx),
                     void *payload, graft_ctx *ctx)
{
    graft_xout o = {.sink = out, .ctx = ctx, .release = release, .read = read,
                    .payload = payload};
    return run_chain(ops, nops, in, nin, &o, ctx);
}

int graft_ops_run_mem(const graft_op *ops, size_t nops, const graft_tview *in, size_t nin,
                      uint8_t *dst, graft_ctx *ctx)
{
    graft_xout o = {.mem = dst, .ctx = ctx};
    return run_chain(ops, nops, in, nin, &o, ctx);
}

/* ---- inversion -------------------------------------------------------- */

void graft_ops_free(graft_op *ops, size_t nops)
{
    if (!ops) return;
    for (size_t i = 0; i < nops; i++)
        free(ops[i].v);
    free(ops);
}

/* The inverse of op, whose input shape is `s`. */
static int invert_op(const graft_op *op, const graft_shape *s, const graft_shape *in, size_t nin,
                     size_t which, graft_op *r, graft_ctx *ctx)
{
    const graft_op_def *d = graft_op_def_of(op->kind);
    *r = *op;
    r->v = NULL;
    r->n = 0;
    if (!d) return graft_op__error(ctx, op, GRAFT_ERULE, "unknown op kind %d", (int)op->kind);
    if (!d->invert) return graft_op__error(ctx, op, GRAFT_ERULE, "has no reverse");
    return d->invert(op, s, in, nin, which, r, ctx);
}

int graft_ops_invert(const graft_op *ops, size_t nops, const graft_shape *in, size_t nin,
                     size_t which, graft_op **out, size_t *nout, graft_ctx *ctx)
{
    graft_shape *shapes = NULL;
    graft_op *r = NULL;
    size_t joins = 0, done = 0;
    int rc;

    *out = NULL;
    *nout = 0;
    if (which >= nin)
        return graft_error(ctx, GRAFT_ERROR, "source %zu of %zu to invert", which, nin);
    for (size_t i = 0; i < nops; i++) {
        const graft_op_def *d = graft_op_def_of(ops[i].kind);
        if (!d || !(d->flags & (GRAFT_OPF_JOIN | GRAFT_OPF_PART))) continue;
        if (++joins > 1)
            return graft_op__error(ctx, &ops[i], GRAFT_ERULE,
                                   "cannot reverse a chain with more than one op that joins "
                                   "sources or takes a part");
    }
    GRAFT_TRY(infer_alloc(ops, nops, in, nin, &shapes, ctx));
    r = graft_calloc(ctx, nops ? nops : 1, sizeof *r);
    if (!r) {
        rc = graft_error_oom(ctx, "an inverted op chain");
        goto cleanup;
    }
    for (; done < nops; done++) {
        rc = invert_op(&ops[done], &shapes[done], in, nin, which, &r[nops - 1 - done], ctx);
        if (rc < 0) goto cleanup;
    }
    *out = r;
    *nout = nops;
    r = NULL;
    rc = GRAFT_OK;
cleanup:
    if (r) {
        for (size_t i = 0; i < done; i++)
            free(r[nops - 1 - i].v);
        free(r);
    }
    free(shapes);
    return rc;
}
