/*
 * tf_graphdef.c - format "tf-graphdef": the Const nodes of a TensorFlow graph.
 *
 * Files (binary protobuf, no magic; proto3 wire format, field numbers from
 * TensorFlow's graph.proto, node_def.proto, attr_value.proto, tensor.proto,
 * meta_graph.proto, saved_model.proto):
 *  1. a frozen GraphDef (*.pb): 1 node repeated NodeDef, 2 library,
 *     3 version, 4 versions;
 *  2. a MetaGraphDef (*.meta): its 2 graph_def;
 *  3. a SavedModel (saved_model.pb: 1 schema_version varint): the graph_def
 *     of its first 2 meta_graphs.
 * NodeDef: 1 name, 2 op, 3 input, 4 device, 5 attr (entries {1 key, 2 value
 * AttrValue}).  A node with op "Const" has attr "value" = AttrValue field 8,
 * a TensorProto: 1 dtype, 2 tensor_shape {2 dim {1 size}}, 4 tensor_content
 * (raw little-endian bytes; for strings varint32 lengths then the bytes), or
 * a typed repeated field (5 float, 6 double, 7 int32 and narrower, 8 string,
 * 9 complex64, 10 int64, 11 bool, 12 complex128, 13 half/bfloat16 bit
 * patterns, 16 uint32, 17 uint64) whose k values fill the N elements and
 * whose last value repeats when k < N (k = 0: zeros).
 * Each Const is a tensor named by its node: tensor_content is a zero-copy
 * view, typed fields are decoded by a load callback.
 *
 * Writing edits the file at the wire level (nothing is unpacked and
 * repacked): every byte is copied except each Const's TensorProto, which is
 * rewritten with the new value in the form the skeleton used, and the length
 * prefixes of the messages enclosing it.  Other nodes, attributes, unknown
 * fields, the function library and versions are kept as they are.
 */
#include "format.h"
#include "layout.h"
#include "pb.h"
#include "pb_check.h"
#include "rd.h"
#include "tf_common.h"
#include "tf_tensorproto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Cap on a Const decoded from typed fields: what a GraphDef, one protobuf
 * message under 2 GiB, could hold as tensor_content.  A few bytes of
 * float_val may declare a broadcast of 2^40 elements (issue 18 item 7). */
#define MAX_TYPED_BYTES 0x7fffffffull

/* One length-delimited field the writer may have to re-length or replace. */
typedef struct span {
    uint64_t start;    /* tag */
    uint32_t taglen;
    uint64_t pstart;   /* payload */
    uint64_t pend;
    int64_t parent;    /* index of the enclosing span, -1 at top level */
    /* writer scratch */
    uint64_t new_plen;
    int64_t delta_children;
} span;

typedef struct cnst {
    size_t target;          /* span of AttrValue.tensor (field 8) */
    uint32_t vfield;        /* typed field number for the dtype */
    uint64_t k;             /* values present in typed fields */
    bool content;           /* tensor_content was used */
    int tfdtype;
} cnst;

typedef struct gstate {
    span *spans;
    size_t nspans, cap;
    cnst *consts;           /* one per tensor */
    size_t nconsts, ccap;
} gstate;

static void gstate_free(void *p)
{
    gstate *g = p;
    if (!g) return;
    free(g->spans);
    free(g->consts);
    free(g);
}

static int push_span(gstate *g, const graft_pbf *f, int64_t parent, graft_ctx *ctx)
{
    if (g->nspans == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        span *ns = graft_realloc(ctx, g->spans, cap * sizeof *ns);
        if (!ns) return graft_error_oom(ctx, "the graph index");
        g->spans = ns;
        g->cap = cap;
    }
    g->spans[g->nspans++] = (span){f->start, f->taglen, f->pstart, f->end, parent, 0, 0};
    return GRAFT_OK;
}

/* ---- TensorProto --------------------------------------------------------- */

static uint32_t typed_field(int tf)
{
    switch (tf) {
    case 1: return 5;
    case 2: return 6;
    case 3: case 4: case 5: case 6: case 17: return 7;
    case 7: return 8;
    case 8: return 9;
    case 9: return 10;
    case 10: return 11;
    case 18: return 12;
    case 14: case 19: return 13;
    case 22: return 16;
    case 23: return 17;
    default: return 0;
    }
}

/* Bytes per value of a fixed-width typed field (0 = varint or bytes). */
static unsigned fixed_width(uint32_t field)
{
    return field == 5 || field == 9 ? 4 : field == 6 || field == 12 ? 8 : 0;
}

typedef graft_tf_tproto tproto;

static int parse_shape(graft_rd *r, tproto *tp)
{
    graft_pbf f;
    while (graft_rd_left(r)) {
        GRAFT_TRY(graft_pb_next(r, &f));
        if (f.num == 3 && f.wt == 0 && f.v)
            return graft_rd_fail(r, "Const with unknown rank");
        if (f.num != 2 || f.wt != 2) continue;
        if (tp->ndim == GRAFT_MAX_NDIM)
            return graft_error(r->ctx, GRAFT_ELIMIT, "rank exceeds the cap of %d", GRAFT_MAX_NDIM);
        int64_t size = 0;
        graft_pbf d;
        while (graft_rd_left(&f.sub)) {
            GRAFT_TRY(graft_pb_next(&f.sub, &d));
            if (d.num == 1 && d.wt == 0) size = (int64_t)d.v;
        }
        tp->shape[tp->ndim++] = size;
    }
    return GRAFT_OK;
}

/* Count the values of typed field `num` in one occurrence. */
static int count_values(graft_pbf *f, uint32_t num, tproto *tp)
{
    unsigned w = fixed_width(num);
    if (num == 8) { /* string_val: one string per occurrence */
        if (f->wt != 2) return graft_rd_fail(&f->sub, "string_val is not length-delimited");
        tp->k++;
        tp->str_bytes += f->sub.len;
        tp->last_len = f->sub.len;
        return GRAFT_OK;
    }
    if (f->wt == 2) {
        if (w) {
            if (f->sub.len % w)
                return graft_error(f->sub.ctx, GRAFT_ECORRUPT, "offset 0x%llx: packed field %u "
                                   "of %zu bytes is not a multiple of %u",
                                   (unsigned long long)f->pstart, num, f->sub.len, w);
            tp->k += f->sub.len / w;
            return GRAFT_OK;
        }
        if (f->sub.len && (f->sub.p[f->sub.len - 1] & 0x80))
            return graft_error(f->sub.ctx, GRAFT_ECORRUPT,
                               "offset 0x%llx: packed varints end mid-value",
                               (unsigned long long)f->pstart);
        for (size_t i = 0; i < f->sub.len; i++) tp->k += !(f->sub.p[i] & 0x80);
        return GRAFT_OK;
    }
    if ((w == 4 && f->wt == 5) || (w == 8 && f->wt == 1) || (!w && f->wt == 0)) {
        tp->k++;
        return GRAFT_OK;
    }
    return graft_error(f->sub.ctx, GRAFT_ECORRUPT, "offset 0x%llx: field %u has wire type %u",
                       (unsigned long long)f->start, num, f->wt);
}

int graft_tf__parse_tensor(graft_rd r, int dtype, tproto *tp)
{
    graft_pbf f;
    graft_rd again = r;
    memset(tp, 0, sizeof *tp);
    tp->dtype = dtype;
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num == 1 && f.wt == 0) tp->dtype = (int)(f.v > 1000 ? 0 : f.v);
        if (f.num == 2 && f.wt == 2) {
            tp->ndim = 0;
            GRAFT_TRY(parse_shape(&f.sub, tp));
        }
        if (f.num == 4 && f.wt == 2) {
            tp->has_content = f.sub.len > 0;
            tp->content = f.sub;
        }
    }
    tp->vfield = typed_field(tp->dtype);
    if (!tp->vfield || tp->has_content) return GRAFT_OK;
    for (int pass = 0; pass < 2; pass++) {
        r = again;
        while (graft_rd_left(&r)) {
            GRAFT_TRY(graft_pb_next(&r, &f));
            if (f.num == tp->vfield) GRAFT_TRY(count_values(&f, f.num, tp));
        }
        /* very old TensorFlow kept bfloat16 bits in int_val */
        if (tp->k || tp->dtype != 14 || pass) break;
        tp->vfield = 7;
    }
    if (tp->dtype == 14 && !tp->k) tp->vfield = 13;
    if (tp->vfield == 9 || tp->vfield == 12) tp->k /= 2;
    return GRAFT_OK;
}

/* Decode the typed values of a Const into its N elements (dst, nbytes). */
int graft_tf__decode_typed(graft_rd r, const tproto *tp, const graft_tensor *t, uint8_t *dst)
{
    graft_pbf f;
    if (t->dtype == GRAFT_STRING) {
        /* varint32 lengths, then the strings, the last one repeated */
        uint8_t *lp = dst, *sp;
        uint64_t nstr = 0;
        const uint8_t *last = NULL;
        size_t last_len = 0, lens_bytes = 0;
        graft_rd q = r;
        while (graft_rd_left(&q)) {
            GRAFT_TRY(graft_pb_next(&q, &f));
            if (f.num != 8) continue;
            if (nstr < t->numel) lens_bytes += graft_pb_varint_len(f.sub.len);
            nstr++;
            last = f.sub.p;
            last_len = f.sub.len;
        }
        if (t->numel > nstr) lens_bytes += (t->numel - nstr) * graft_pb_varint_len(nstr ? last_len : 0);
        sp = dst + lens_bytes;
        nstr = 0;
        while (graft_rd_left(&r) && nstr < t->numel) {
            GRAFT_TRY(graft_pb_next(&r, &f));
            if (f.num != 8) continue;
            lp = graft_pb_put_varint(lp, f.sub.len);
            memcpy(sp, f.sub.p, f.sub.len);
            sp += f.sub.len;
            nstr++;
        }
        for (; nstr < t->numel; nstr++) {
            lp = graft_pb_put_varint(lp, last ? last_len : 0);
            if (last_len) memcpy(sp, last, last_len);
            sp += last_len;
        }
        return GRAFT_OK;
    }
    return graft_tf__decode_pieces(r, tp, t, dst, (size_t)t->nbytes, NULL, NULL);
}

/* Where decoded numbers go: buf of cap bytes, flushed when full (and at the
 * end) if flush is set; `emitted` counts bytes flushed before buf. */
typedef struct tsink {
    uint8_t *buf;
    size_t cap, pos;
    uint64_t emitted;
    graft_tf_flush_fn flush;
    void *arg;
} tsink;

static int tsink_put(tsink *o, const uint8_t *p, size_t n, uint64_t at)
{
    memcpy(o->buf + o->pos, p, n);
    o->pos += n;
    if (o->pos == o->cap && o->flush) {
        GRAFT_TRY(o->flush(o->arg, o->buf, o->pos, at));
        o->emitted += o->pos;
        o->pos = 0;
    }
    return GRAFT_OK;
}

/* One element (unit bytes) in; `last` keeps the last whole value (a
 * complex pair is one), `pair` the half of one. */
typedef struct tvals {
    uint64_t have;
    size_t unit, step;
    uint8_t pair[16], last[16];
    bool any;
} tvals;

static int tvals_put(tvals *v, tsink *o, const uint8_t *b, uint64_t at)
{
    memcpy(v->pair + (v->have * v->unit) % v->step, b, v->unit);
    if (++v->have % (v->step / v->unit) == 0) {
        memcpy(v->last, v->pair, v->step);
        v->any = true;
    }
    return tsink_put(o, b, v->unit, at);
}

int graft_tf__decode_pieces(graft_rd r, const tproto *tp, const graft_tensor *t, uint8_t *buf,
                            size_t cap, graft_tf_flush_fn flush, void *arg)
{
    bool cplx = tp->vfield == 9 || tp->vfield == 12;
    size_t es = graft_dtype_size(t->dtype);
    uint64_t want = t->numel * (cplx ? 2 : 1);
    tvals v = {.unit = cplx ? es / 2 : es, .step = es};
    tsink o = {buf, cap, 0, 0, flush, arg};
    graft_pbf f;

    while (graft_rd_left(&r) && v.have < want) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num != tp->vfield) continue;
        unsigned w = fixed_width(f.num);
        uint8_t le[8];
        const uint8_t *b;
        if (f.wt != 2) {
            graft_put_le64(le, f.v);
            GRAFT_TRY(tvals_put(&v, &o, le, graft_rd_offset(&r)));
            continue;
        }
        while (graft_rd_left(&f.sub) && v.have < want) {
            uint64_t x;
            if (w) {
                GRAFT_TRY(graft_rd_take(&f.sub, w, &b));
            } else {
                GRAFT_TRY(graft_rd_varint(&f.sub, &x));
                graft_put_le64(le, x);
                b = le;
            }
            GRAFT_TRY(tvals_put(&v, &o, b, graft_rd_offset(&f.sub)));
        }
    }
    /* Fewer values than elements: the last whole one repeats, or zeros when
     * there is none.  An incomplete complex pair is dropped; it is in buf,
     * as buf only fills (cap is a multiple of es) at a pair's end. */
    if (v.have % (v.step / v.unit)) o.pos -= v.unit;
    if (!v.any) memset(v.last, 0, sizeof v.last);
    while (o.emitted + o.pos < t->nbytes) GRAFT_TRY(tsink_put(&o, v.last, v.step, graft_rd_offset(&r)));
    if (o.pos && o.flush) return o.flush(o.arg, o.buf, o.pos, graft_rd_offset(&r));
    return GRAFT_OK;
}

static int load_typed(const graft_model *m, const graft_tensor *t, uint8_t *dst, graft_ctx *ctx)
{
    const gstate *g = m->state;
    const span *s = &g->spans[g->consts[t->aux].target];
    const graft_source *src = m->sources[0];
    graft_rd r;
    tproto tp;
    graft_rd_init(&r, src->data + s->pstart, (size_t)(s->pend - s->pstart), s->pstart, ctx);
    GRAFT_TRY(graft_tf__parse_tensor(r, 0, &tp));
    return graft_tf__decode_typed(r, &tp, t, dst);
}

/* The same elements in pieces: the values written out, then the last one
 * repeated, so a broadcast hashes with flat memory. */
static int stream_typed(const graft_model *m, const graft_tensor *t, graft_piece_fn fn, void *arg,
                        graft_ctx *ctx)
{
    const gstate *g = m->state;
    const span *s = &g->spans[g->consts[t->aux].target];
    const graft_source *src = m->sources[0];
    size_t es = graft_dtype_size(t->dtype);
    uint8_t *buf;
    graft_tensor head;
    graft_rd r;
    tproto tp;
    int rc;

    graft_rd_init(&r, src->data + s->pstart, (size_t)(s->pend - s->pstart), s->pstart, ctx);
    GRAFT_TRY(graft_tf__parse_tensor(r, 0, &tp));
    if (t->dtype == GRAFT_STRING || tp.vfield == 9 || tp.vfield == 12 || tp.k >= t->numel) {
        buf = graft_malloc(ctx, t->nbytes ? (size_t)t->nbytes : 1); /* bounded by the file */
        if (!buf) return graft_error_oom(ctx, "a Const");
        rc = graft_tf__decode_typed(r, &tp, t, buf);
        if (rc == 0) rc = fn(arg, buf, (size_t)t->nbytes);
        free(buf);
        return rc;
    }
    head = *t; /* the k values present */
    head.numel = tp.k;
    head.nbytes = tp.k * es;
    if (!(buf = graft_malloc(ctx, head.nbytes > (1u << 20) ? (size_t)head.nbytes : 1u << 20)))
        return graft_error_oom(ctx, "a Const");
    rc = graft_tf__decode_typed(r, &tp, &head, buf);
    if (rc == 0 && head.nbytes) rc = fn(arg, buf, (size_t)head.nbytes);
    if (rc == 0) { /* then the last (or zero) repeated, a MiB at a time */
        size_t per = ((1u << 20) / es) * es;
        if (tp.k) memmove(buf, buf + head.nbytes - es, es);
        else memset(buf, 0, es);
        for (size_t at = es; at < per; at += es) memcpy(buf + at, buf, es);
        for (uint64_t left = t->nbytes - head.nbytes; rc == 0 && left; ) {
            size_t n = left < per ? (size_t)left : per;
            rc = fn(arg, buf, n);
            left -= n;
        }
    }
    free(buf);
    return rc;
}

/* ---- reading the graph --------------------------------------------------- */

/* A Const node: its tensor, from the TensorProto span g->spans[target]. */
static int add_const(graft_model *m, gstate *g, const graft_pbf *name, size_t target, graft_ctx *ctx)
{
    const span *s = &g->spans[target];
    graft_rd r;
    tproto tp;
    graft_dtype dt;
    graft_tensor *t;
    cnst *c;
    int nlen = name->sub.len > 200 ? 200 : (int)name->sub.len;

    graft_rd_init(&r, m->sources[0]->data + s->pstart, (size_t)(s->pend - s->pstart), s->pstart,
                  ctx);
    if (graft_tf__parse_tensor(r, 0, &tp) < 0)
        return graft_error_prefix(ctx, "Const '%.*s'", nlen, (const char *)name->sub.p);
    dt = graft_tf__dtype((uint64_t)tp.dtype);
    if (dt == GRAFT_DTYPE_INVALID) return GRAFT_OK; /* quantized, resource...: not weights */
    for (uint32_t i = 0; i < tp.ndim; i++)
        if (tp.shape[i] < 0)
            return graft_error(ctx, GRAFT_ECORRUPT, "Const '%.*s': dimension %lld",
                               nlen, (const char *)name->sub.p, (long long)tp.shape[i]);
    t = graft_model__add(m, (const char *)name->sub.p, name->sub.len, dt, tp.ndim, tp.shape, ctx);
    if (!t) return ctx->status;
    if (g->nconsts == g->ccap) {
        size_t cap = g->ccap ? g->ccap * 2 : 32;
        cnst *nc = graft_realloc(ctx, g->consts, cap * sizeof *nc);
        if (!nc) return graft_error_oom(ctx, "the Const list");
        g->consts = nc;
        g->ccap = cap;
    }
    c = &g->consts[g->nconsts];
    *c = (cnst){target, tp.vfield, tp.k, tp.has_content, tp.dtype};
    t->aux = g->nconsts++;
    if (t->numel == 0) {
        t->nbytes = 0;
        return GRAFT_OK;
    }
    if (tp.has_content) {
        if (dt == GRAFT_STRING) {
            graft_rd q = tp.content;
            uint64_t total = 0, len;
            for (uint64_t i = 0; i < t->numel; i++) {
                GRAFT_TRY(graft_rd_varint(&q, &len));
                if (graft_add_overflow(total, len, &total)) break;
            }
            if (total != graft_rd_left(&q))
                return graft_error(ctx, GRAFT_ECORRUPT, "Const '%s': string lengths do not add up "
                                   "to the %zu-byte tensor_content", t->name, tp.content.len);
            t->nbytes = tp.content.len;
        } else if (t->nbytes != tp.content.len) {
            return graft_error(ctx, GRAFT_ECORRUPT, "Const '%s': tensor_content of %zu bytes, but "
                               "%s of that shape takes %llu", t->name, tp.content.len,
                               graft_dtype_name(dt), (unsigned long long)t->nbytes);
        }
        t->src = m->sources[0];
        t->offset = tp.content.origin;
        return GRAFT_OK;
    }
    if (dt == GRAFT_STRING) {
        /* serialized as varint32 lengths and bytes, the last string repeated */
        uint64_t extra = t->numel > tp.k ? t->numel - tp.k : 0, per, more;
        graft_rd q = r;
        graft_pbf f;
        uint64_t bytes = 0, seen = 0; /* only the first numel strings count */
        while (graft_rd_left(&q) && seen < t->numel) {
            GRAFT_TRY(graft_pb_next(&q, &f));
            if (f.num != 8) continue;
            bytes += graft_pb_varint_len(f.sub.len) + f.sub.len;
            seen++;
        }
        per = graft_pb_varint_len(tp.k ? tp.last_len : 0) + (tp.k ? tp.last_len : 0);
        if (graft_mul_overflow(extra, per, &more) || graft_add_overflow(bytes, more, &bytes) ||
            bytes > MAX_TYPED_BYTES)
            return graft_error(ctx, GRAFT_ELIMIT, "Const '%s': strings exceed the cap", t->name);
        t->nbytes = bytes;
    } else if (t->nbytes > MAX_TYPED_BYTES) {
        return graft_error(ctx, GRAFT_ELIMIT, "Const '%s': %llu elements of %s (%llu bytes) from "
                           "%llu typed values exceed what a GraphDef can hold (2 GiB)", t->name,
                           (unsigned long long)t->numel, graft_dtype_name(t->dtype),
                           (unsigned long long)t->nbytes, (unsigned long long)tp.k);
    }
    t->load = load_typed;
    t->stream = stream_typed;
    return GRAFT_OK;
}

static int walk_node(graft_model *m, gstate *g, const graft_pbf *node, size_t node_span, graft_ctx *ctx)
{
    graft_rd r = node->sub;
    graft_pbf f, name = {0}, e, v, tf;
    bool is_const = false, have_name = false;
    int64_t target = -1;
    size_t mark = g->nspans;
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num == 1 && f.wt == 2) {
            name = f;
            have_name = true;
        } else if (f.num == 2) {
            is_const = graft_pb_is(&f, "Const");
        } else if (f.num == 5 && f.wt == 2) {
            graft_rd er = f.sub;
            bool is_value = false;
            graft_pbf val = {0};
            bool have_val = false;
            while (graft_rd_left(&er)) {
                GRAFT_TRY(graft_pb_next(&er, &e));
                if (e.num == 1) is_value = graft_pb_is(&e, "value");
                if (e.num == 2 && e.wt == 2) {
                    val = e;
                    have_val = true;
                }
            }
            if (!is_value || !have_val) continue;
            graft_rd vr = val.sub;
            while (graft_rd_left(&vr)) {
                GRAFT_TRY(graft_pb_next(&vr, &v));
                if (v.num != 8 || v.wt != 2) continue;
                tf = v;
                g->nspans = mark; /* a later "value" attr wins */
                GRAFT_TRY(push_span(g, &f, (int64_t)node_span, ctx));
                GRAFT_TRY(push_span(g, &val, (int64_t)g->nspans - 1, ctx));
                GRAFT_TRY(push_span(g, &tf, (int64_t)g->nspans - 1, ctx));
                target = (int64_t)g->nspans - 1;
            }
        }
    }
    if (!is_const || target < 0 || !have_name) {
        g->nspans = mark - 1; /* forget the node span too */
        return GRAFT_OK;
    }
    return add_const(m, g, &name, (size_t)target, ctx);
}

static int walk_graph(graft_model *m, gstate *g, graft_rd r, int64_t parent, graft_ctx *ctx)
{
    graft_pbf f;
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num != 1 || f.wt != 2) continue;
        GRAFT_TRY(push_span(g, &f, parent, ctx));
        GRAFT_TRY(walk_node(m, g, &f, g->nspans - 1, ctx));
    }
    return GRAFT_OK;
}

/* The graph_def (field 2) of a MetaGraphDef. */
static int walk_meta(graft_model *m, gstate *g, graft_rd r, int64_t parent, graft_ctx *ctx)
{
    graft_pbf f;
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num != 2 || f.wt != 2) continue;
        GRAFT_TRY(push_span(g, &f, parent, ctx));
        return walk_graph(m, g, f.sub, (int64_t)g->nspans - 1, ctx);
    }
    return GRAFT_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Which message the file holds: 0 GraphDef, 1 MetaGraphDef, 2 SavedModel. */
static int kind_of(const char *path, const uint8_t *p, size_t n)
{
    if (ends_with(path, ".meta")) return 1;
    if (ends_with(path, "saved_model.pb")) return 2;
    return n > 0 && p[0] == 0x08 ? 2 : 0; /* SavedModel's schema_version comes first */
}

int graft_tf__check_message(int kind, const uint8_t *p, size_t n, graft_ctx *ctx)
{
    /* graph.proto, meta_graph.proto, saved_model.proto */
    static const graft_pb_rule graph[] = {
        {1, GRAFT_PB_LEN, "node", false, true},      {2, GRAFT_PB_LEN, "library", false, true},
        {3, GRAFT_PB_VARINT, "version", false, false}, {4, GRAFT_PB_LEN, "versions", false, true},
        {5, GRAFT_PB_LEN, "debug_info", false, true},
    };
    static const graft_pb_rule meta[] = {
        {1, GRAFT_PB_LEN, "meta_info_def", false, true}, {2, GRAFT_PB_LEN, "graph_def", true, true},
        {3, GRAFT_PB_LEN, "saver_def", false, true},     {4, GRAFT_PB_LEN, "collection_def", false, true},
        {5, GRAFT_PB_LEN, "signature_def", false, true}, {6, GRAFT_PB_LEN, "asset_file_def", false, true},
        {7, GRAFT_PB_LEN, "object_graph_def", false, true},
    };
    static const graft_pb_rule saved[] = {
        {1, GRAFT_PB_VARINT, "saved_model_schema_version", false, false},
        {2, GRAFT_PB_LEN, "meta_graphs", true, true},
    };
    switch (kind) {
    case GRAFT_TF_GRAPHDEF:
        return graft_pb_check(p, n, "a TensorFlow GraphDef", graph, sizeof graph / sizeof *graph,
                              ctx);
    case GRAFT_TF_METAGRAPHDEF:
        return graft_pb_check(p, n, "a TensorFlow MetaGraphDef", meta, sizeof meta / sizeof *meta,
                              ctx);
    default:
        return graft_pb_check(p, n, "a TensorFlow SavedModel", saved, sizeof saved / sizeof *saved,
                              ctx);
    }
}

static bool probe(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    if (is_dir || !head || n < 2) return false;
    if (!ends_with(path, ".pb") && !ends_with(path, ".meta") && !ends_with(path, ".graphdef"))
        return false;
    return head[0] == 0x0a || head[0] == 0x12 || head[0] == 0x08 || head[0] == 0x22;
}

static int open_graph(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    const graft_source *src = m->sources[0];
    gstate *g;
    graft_rd r;
    graft_pbf f;
    (void)opts;
    if (!src) return graft_error(ctx, GRAFT_EFORMAT, "a graph is a file, not a folder");
    g = graft_calloc(ctx, 1, sizeof *g);
    if (!g) return graft_error_oom(ctx, "a graph");
    m->state = g;
    m->state_free = gstate_free;
    graft_rd_init(&r, src->data, src->size, 0, ctx);
    int kind = kind_of(m->path, src->data, src->size);
    GRAFT_TRY(graft_tf__check_message(kind, src->data, src->size, ctx));
    switch (kind) {
    case 0: GRAFT_TRY(walk_graph(m, g, r, -1, ctx)); break;
    case 1: GRAFT_TRY(walk_meta(m, g, r, -1, ctx)); break;
    default:
        while (graft_rd_left(&r)) {
            GRAFT_TRY(graft_pb_next(&r, &f));
            if (f.num != 2 || f.wt != 2) continue;
            GRAFT_TRY(push_span(g, &f, -1, ctx));
            GRAFT_TRY(walk_meta(m, g, f.sub, (int64_t)g->nspans - 1, ctx));
            break;
        }
    }
    return graft_layout__tf(m, src->data, src->size, kind, ctx); /* roles from the consuming ops */
}

/* ---- writing --------------------------------------------------------------- */

typedef struct newval {
    uint8_t *typed;       /* encoded typed field(s), tag included; owned */
    size_t typed_len;
    uint64_t value_len;   /* bytes of the value field(s) in the new TensorProto */
} newval;

/* Encode N little-endian elements as the typed field, with the fewest values
 * that the repeat-the-last rule expands back to them. */
static int encode_typed(const graft_tensor *t, const cnst *c, const uint8_t *p, newval *nv,
                        graft_ctx *ctx)
{
    size_t es = t->dtype == GRAFT_STRING ? 0 : graft_dtype_size(t->dtype);
    uint64_t n = t->numel, k = n;
    uint32_t field = c->vfield;
    unsigned w = fixed_width(field);
    size_t cap, len = 0;
    uint8_t *out, *q;
    bool all_zero = true;

    if (t->dtype == GRAFT_STRING) {
        /* p: varint32 lengths then bytes; emit each string as field 8 */
        graft_rd r, lr;
        uint64_t total = 0;
        graft_rd_init(&lr, p, (size_t)t->nbytes, 0, ctx);
        for (uint64_t i = 0; i < n; i++) {
            uint64_t l;
            GRAFT_TRY(graft_rd_varint(&lr, &l));
            total += l;
        }
        if (total != graft_rd_left(&lr))
            return graft_error(ctx, GRAFT_ECORRUPT, "Const '%s': new strings are malformed", t->name);
        cap = (size_t)t->nbytes + (size_t)n * 11 + 16;
        out = q = graft_malloc(ctx, cap);
        if (!out) return graft_error_oom(ctx, "a Const");
        graft_rd_init(&r, p, (size_t)t->nbytes, 0, ctx);
        const uint8_t *sp = p + lr.pos;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t l;
            GRAFT_TRY(graft_rd_varint(&r, &l));
            *q++ = 0x42;
            q = graft_pb_put_varint(q, l);
            memcpy(q, sp, (size_t)l);
            q += l;
            sp += l;
        }
        nv->typed = out;
        nv->typed_len = nv->value_len = (size_t)(q - out);
        return GRAFT_OK;
    }
    if (field == 9 || field == 12) w = (unsigned)es; /* a pair per element */
    for (uint64_t i = 0; i < t->nbytes && all_zero; i++) all_zero = p[i] == 0;
    if (c->k < n) {
        while (k > 1 && memcmp(p + (k - 1) * es, p + (k - 2) * es, es) == 0) k--;
        if (c->k == 0 && all_zero) k = 0;
    }
    cap = (size_t)k * (w ? w : 10) + 16;
    out = graft_malloc(ctx, cap);
    if (!out) return graft_error_oom(ctx, "a Const");
    q = out;
    if (k) {
        uint8_t *body = out + 16, *b = body;
        for (uint64_t i = 0; i < k; i++) {
            const uint8_t *e = p + i * es;
            uint64_t v;
            if (w) {
                memcpy(b, e, w);
                b += w;
                continue;
            }
            switch (t->dtype) {
            case GRAFT_INT8: v = (uint64_t)(int64_t)(int8_t)e[0]; break;
            case GRAFT_INT16: v = (uint64_t)(int64_t)(int16_t)graft_le16(e); break;
            case GRAFT_INT32: v = (uint64_t)(int64_t)(int32_t)graft_le32(e); break;
            case GRAFT_UINT8: case GRAFT_BOOL: v = e[0]; break;
            case GRAFT_UINT16: case GRAFT_FLOAT16: case GRAFT_BFLOAT16: v = graft_le16(e); break;
            case GRAFT_UINT32: v = graft_le32(e); break;
            default: v = graft_le64(e); break;
            }
            b = graft_pb_put_varint(b, v);
        }
        len = (size_t)(b - body);
        q = graft_pb_put_varint(q, (uint64_t)field << 3 | 2);
        q = graft_pb_put_varint(q, len);
        memmove(q, body, len);
        q += len;
    }
    nv->typed = out;
    nv->typed_len = nv->value_len = (size_t)(q - out);
    return GRAFT_OK;
}

static uint64_t tensor_prefix_len(const uint8_t *p, size_t n, bool before, graft_ctx *ctx)
{
    /* Bytes of the non-value fields that go before (num <= 3) or after. */
    graft_rd r;
    graft_pbf f;
    uint64_t len = 0;
    graft_rd_init(&r, p, n, 0, ctx);
    while (graft_rd_left(&r) && graft_pb_next(&r, &f) == 0) {
        bool value = (f.num >= 4 && f.num <= 13) || f.num == 16 || f.num == 17;
        if (!value && (f.num <= 3) == before) len += f.end - f.start;
    }
    return len;
}

static int copy_fields(graft_sink *s, const uint8_t *p, size_t n, bool before, graft_ctx *ctx)
{
    graft_rd r;
    graft_pbf f;
    graft_rd_init(&r, p, n, 0, ctx);
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        bool value = (f.num >= 4 && f.num <= 13) || f.num == 16 || f.num == 17;
        if (!value && (f.num <= 3) == before)
            GRAFT_TRY(graft_sink_write(s, p + f.start, (size_t)(f.end - f.start)));
    }
    return GRAFT_OK;
}

/* Values of typed-field Consts, which must be seen before they are encoded:
 * emitted into a scratch file beside the output, then mapped. */
static int gather_typed(const graft_model *m, const char *out_path, graft_fill *fill,
                        newval *nv, graft_ctx *ctx)
{
    const gstate *g = m->state;
    graft_sink *s = NULL;
    graft_source *src = NULL;
    char *path = graft_malloc(ctx, strlen(out_path) + 32);
    uint64_t *at = graft_calloc(ctx, m->count + 1, sizeof *at);
    bool any = false;
    int rc = GRAFT_OK;
    if (!path || !at) {
        free(path);
        free(at);
        return graft_error_oom(ctx, "the graph writer");
    }
    sprintf(path, "%s.graft-scratch", out_path);
    for (size_t i = 0; rc == 0 && i < m->count; i++) {
        const graft_tensor *t = &m->tensors[i];
        if (g->consts[t->aux].content || t->numel == 0) continue;
        if (!s) rc = graft_sink_open(&s, path, ctx);
        at[i] = s ? graft_sink_tell(s) : 0;
        if (rc == 0) rc = graft_fill_emit(fill, m, i, s, ctx);
        any = true;
    }
    if (rc == 0 && any) {
        rc = graft_sink_commit(s);
        s = NULL;
        if (rc == 0) rc = graft_source_open(&src, path, ctx);
        for (size_t i = 0; rc == 0 && i < m->count; i++) {
            const graft_tensor *t = &m->tensors[i];
            if (g->consts[t->aux].content || t->numel == 0) continue;
            rc = encode_typed(t, &g->consts[t->aux], src->data + at[i], &nv[i], ctx);
        }
        unlink(path);
    }
    graft_sink_abort(s);
    graft_source_free(src);
    free(path);
    free(at);
    return rc;
}

static int write_graph(const graft_model *m, const char *out_path, graft_fill *fill,
                       graft_ctx *ctx)
{
    const gstate *g = m->state;
    const graft_source *src = m->sources[0];
    span *sp = NULL;
    newval *nv = NULL;
    int64_t *of_span = NULL; /* tensor index per span, -1 */
    graft_sink *s = NULL;
    uint64_t pos = 0;
    int rc;

    sp = graft_malloc(ctx, (g->nspans + 1) * sizeof *sp);
    nv = graft_calloc(ctx, m->count + 1, sizeof *nv);
    of_span = graft_malloc(ctx, (g->nspans + 1) * sizeof *of_span);
    if (!sp || !nv || !of_span) {
        rc = graft_error_oom(ctx, "the graph writer");
        goto cleanup;
    }
    if (g->nspans) memcpy(sp, g->spans, g->nspans * sizeof *sp);
    for (size_t i = 0; i < g->nspans; i++) of_span[i] = -1;
    for (size_t i = 0; i < m->count; i++) of_span[g->consts[m->tensors[i].aux].target] = (int64_t)i;
    rc = gather_typed(m, out_path, fill, nv, ctx);
    if (rc < 0) goto cleanup;
    /* New lengths, innermost first (children always follow their parent). */
    for (size_t i = g->nspans; i-- > 0;) {
        span *x = &sp[i];
        uint64_t old_plen = x->pend - x->pstart;
        if (of_span[i] >= 0) {
            const graft_tensor *t = &m->tensors[of_span[i]];
            const cnst *c = &g->consts[t->aux];
            const uint8_t *tp = src->data + x->pstart;
            size_t tn = (size_t)(x->pend - x->pstart);
            uint64_t value = c->content || t->numel == 0
                                 ? (t->numel ? 1 + graft_pb_varint_len(t->nbytes) + t->nbytes : 0)
                                 : nv[of_span[i]].value_len;
            x->new_plen = tensor_prefix_len(tp, tn, true, ctx) + value +
                          tensor_prefix_len(tp, tn, false, ctx);
        } else {
            x->new_plen = (uint64_t)((int64_t)old_plen + x->delta_children);
        }
        /* x->pstart includes the old length varint; the field's size changes
         * by the payload change and the change of its length prefix */
        int64_t delta = (int64_t)x->new_plen - (int64_t)old_plen +
                        (int64_t)graft_pb_varint_len(x->new_plen) - (int64_t)graft_pb_varint_len(old_plen);
        if (x->parent >= 0) sp[x->parent].delta_children += delta;
    }
    rc = graft_sink_open(&s, out_path, ctx);
    for (size_t i = 0; rc == 0 && i < g->nspans; i++) {
        const span *x = &sp[i];
        rc = graft_sink_write(s, src->data + pos, (size_t)(x->start - pos));
        if (rc == 0) rc = graft_sink_write(s, src->data + x->start, x->taglen);
        if (rc == 0) rc = graft_pb_sink_varint(s, x->new_plen);
        pos = x->pstart;
        if (rc < 0 || of_span[i] < 0) continue;
        /* the new TensorProto */
        size_t ti = (size_t)of_span[i];
        const graft_tensor *t = &m->tensors[ti];
        const cnst *c = &g->consts[t->aux];
        const uint8_t *tp = src->data + x->pstart;
        size_t tn = (size_t)(x->pend - x->pstart);
        rc = copy_fields(s, tp, tn, true, ctx);
        if (rc == 0 && t->numel && c->content) {
            rc = graft_sink_write(s, "\x22", 1);
            if (rc == 0) rc = graft_pb_sink_varint(s, t->nbytes);
            if (rc == 0) rc = graft_fill_emit(fill, m, ti, s, ctx);
        } else if (rc == 0 && nv[ti].typed_len) {
            rc = graft_sink_write(s, nv[ti].typed, nv[ti].typed_len);
        }
        if (rc == 0) rc = copy_fields(s, tp, tn, false, ctx);
        pos = x->pend;
    }
    if (rc == 0 && src->size > pos)
        rc = graft_sink_write(s, src->data + pos, (size_t)(src->size - pos));
    if (rc == 0) {
        rc = graft_sink_commit(s);
        s = NULL;
    }
cleanup:
    graft_sink_abort(s);
    for (size_t i = 0; nv && i < m->count; i++) free(nv[i].typed);
    free(nv);
    free(sp);
    free(of_span);
    return rc;
}

const graft_format graft_format_tf_graphdef = {
    .name = "tf-graphdef",
    .probe = probe,
    .open = open_graph,
    .write = write_graph,
};
