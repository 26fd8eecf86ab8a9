/*
 * fuzz_ops.c - op chains over hostile shapes and op parameters.
 *
 * The input describes the sources and the chain (the layout below); what is
 * left fills the tensors.  Every chain is inferred, run when it is valid,
 * and inverted; a chain of layout ops only (permute, transpose, reshape,
 * chunks) must come back bit for bit, else the target traps.
 *
 *   1. u8 nin (1 + v % 5), u8 dtype (1 + v % (GRAFT_DTYPE_COUNT - 1))
 *   2. per source: u8 rank (v % 5), rank x u8 dim (v % 8); sources after
 *      the first copy the first's shape and take one dim from a u8 b, or
 *      when b >= 0x80 are the vector [first's dim 0] (fold_bn's inputs)
 *   3. u8 nops (v % 5); per op: u8 kind (v % GRAFT_OP_COUNT: every op of
 *      the table), u8 n (v % 7), n x s8 v, s8 axis, s8 count, s8 index,
 *      u8 dtype, s8 start, s8 length, s8 mul, s8 add, u8 eps, s8 value,
 *      u8 part (v % 2)
 */
#include "../../src/transform/op_json.h"
#include "../../src/transform/optab.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *p;
    size_t n, pos;
} cur;

static uint8_t u8(cur *c)
{
    return c->pos < c->n ? c->p[c->pos++] : 0;
}
static int8_t s8(cur *c)
{
    return (int8_t)u8(c);
}

static uint64_t nbytes(const graft_shape *s)
{
    uint64_t n = graft_dtype_size(s->dtype);
    for (uint32_t i = 0; i < s->ndim; i++)
        n *= (uint64_t)s->dim[i];
    return n;
}

/* Ops that move bytes only, and give them back bit for bit when inverted
 * (one source: a join of one is still a join, skip those). */
static bool layout_only(const graft_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const graft_op_def *d = graft_op_def_of(ops[i].kind);
        if (!d || !(d->flags & GRAFT_OPF_LAYOUT) || (d->flags & GRAFT_OPF_JOIN)) return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cur c = {data, size, 0};
    graft_shape in[5];
    graft_op ops[4];
    int64_t vals[4][6];
    graft_tview views[5];
    uint8_t *bufs[5] = {NULL, NULL, NULL, NULL, NULL}, *out = NULL, *back = NULL;
    graft_op *inv = NULL;
    size_t ninv = 0;
    graft_ctx *ctx = graft_ctx_new();
    if (!ctx) return 0;

    memset(in, 0, sizeof in);
    memset(ops, 0, sizeof ops);
    size_t nin = 1 + u8(&c) % 5;
    graft_dtype dt = (graft_dtype)(1 + u8(&c) % (GRAFT_DTYPE_COUNT - 1));
    for (size_t s = 0; s < nin; s++) {
        in[s].dtype = dt;
        if (s == 0) {
            in[0].ndim = u8(&c) % 5;
            for (uint32_t i = 0; i < in[0].ndim; i++)
                in[0].dim[i] = u8(&c) % 8;
        } else {
            in[s] = in[0];
            uint8_t b = u8(&c);
            if (b >= 0x80 && in[0].ndim) {
                in[s].ndim = 1;
                in[s].dim[0] = in[0].dim[0];
            } else if (in[s].ndim) {
                in[s].dim[b % in[s].ndim] = (b >> 4) % 8;
            }
        }
    }
    size_t nops = u8(&c) % 5;
    for (size_t k = 0; k < nops; k++) {
        ops[k].kind = (graft_op_kind)(u8(&c) % GRAFT_OP_COUNT);
        ops[k].n = u8(&c) % 7;
        ops[k].v = vals[k];
        for (uint32_t i = 0; i < ops[k].n; i++)
            vals[k][i] = s8(&c);
        ops[k].axis = s8(&c);
        ops[k].count = s8(&c);
        ops[k].index = s8(&c);
        ops[k].dtype = (graft_dtype)(u8(&c) % (GRAFT_DTYPE_COUNT + 1));
        ops[k].start = s8(&c);
        ops[k].length = s8(&c);
        ops[k].mul = s8(&c) / 4.0;
        ops[k].add = s8(&c) / 8.0;
        ops[k].eps = u8(&c) / 1024.0;
        ops[k].value = s8(&c) / 2.0;
        ops[k].part = (graft_bn_part)(u8(&c) % 2);
        ops[k].file = "fuzz.yaml";
        ops[k].line = (uint32_t)k + 1;
    }

    graft_shape res, mid;
    graft_jsonw json;
    graft_jsonw_init(&json, ctx);
    graft_op__json_chain(&json, ops, nops);
    graft_jsonw_free(&json);
    for (size_t k = 0; k <= nops; k++)
        graft_ops_infer_prefix(ops, nops, k, in, nin, &mid, ctx);
    if (graft_ops_infer(ops, nops, in, nin, &res, ctx) < 0) goto done;

    /* the tensors: the rest of the input, repeated */
    for (size_t s = 0; s < nin; s++) {
        uint64_t n = nbytes(&in[s]);
        bufs[s] = malloc(n ? n : 1);
        if (!bufs[s]) goto done;
        for (uint64_t i = 0; i < n; i++)
            bufs[s][i] = c.pos < size ? data[c.pos + i % (size - c.pos)] : (uint8_t)i;
        views[s].shape = in[s];
        views[s].data = bufs[s];
    }
    uint64_t on = nbytes(&res);
    out = malloc(on ? on : 1);
    if (!out || graft_ops_run_mem(ops, nops, views, nin, out, ctx) < 0) goto done;

    if (graft_ops_invert(ops, nops, in, nin, 0, &inv, &ninv, ctx) < 0) goto done;
    graft_jsonw_init(&json, ctx);
    graft_op__json_chain(&json, inv, ninv);
    graft_jsonw_free(&json);
    graft_tview ov = {res, out};
    graft_shape bs;
    if (graft_ops_infer(inv, ninv, &res, 1, &bs, ctx) < 0) goto done;
    back = malloc(nbytes(&bs) ? nbytes(&bs) : 1);
    if (!back || graft_ops_run_mem(inv, ninv, &ov, 1, back, ctx) < 0) goto done;
    if (layout_only(ops, nops) &&
        (nbytes(&bs) != nbytes(&in[0]) || memcmp(back, bufs[0], nbytes(&bs)) != 0))
        __builtin_trap(); /* the inverse of a layout chain must undo it */

done:
    graft_ops_free(inv, ninv);
    free(back);
    free(out);
    for (size_t s = 0; s < 5; s++)
        free(bufs[s]);
    graft_ctx_free(ctx);
    return 0;
}
