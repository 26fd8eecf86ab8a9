/* test_gather.c - composed gather plans (src/transform/gather.c) against the
 * op-by-op reference: random shapes of ranks 1 to 6, random chains of
 * layout ops (permute, transpose, reshape, chunks, take, slice, unstack,
 * pad, a leading concat or stack), value ops (cast, scale), a leading sum or
 * fold_bn and a trailing quantize; random block sizes so that pieces cross
 * block edges.  The reference runs each op on its own (its own kernel) into
 * a whole intermediate; the plan must give the same bytes, or fail where the
 * reference fails. */
#include "testutil.h"

#include "../../src/transform/gather.h"
#include "error.h"
#include "sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static int64_t pick(int64_t n)
{
    return (int64_t)(rnd() % (uint64_t)n);
}

static uint64_t nbytes(const graft_shape *s)
{
    uint64_t n = graft_dtype_size(s->dtype);
    for (uint32_t i = 0; i < s->ndim; i++) n *= (uint64_t)s->dim[i];
    return n;
}

/* Small non-negative integers: every cast in the chains below holds them. */
static uint8_t *random_tensor(const graft_shape *s, graft_ctx *ctx)
{
    uint64_t n = nbytes(s) / graft_dtype_size(s->dtype);
    uint8_t *p = malloc(nbytes(s) + 1);
    for (uint64_t i = 0; i < n; i++)
        ck_assert_int_eq(graft_xform__scalar(p + i * graft_dtype_size(s->dtype), s->dtype,
                                             (double)pick(21), ctx), 0);
    return p;
}

/* ---- the reference: one op at a time ------------------------------------ */

static int reference(const graft_op *ops, size_t nops, const graft_tview *in, size_t nin,
                     uint8_t **out, graft_shape *os, graft_ctx *ctx)
{
    graft_tview cur = in[0];
    uint8_t *owned = NULL;
    for (size_t i = 0; i < nops; i++) {
        graft_shape next;
        const graft_tview *src = i == 0 ? in : &cur;
        size_t ns = i == 0 ? nin : 1;
        graft_shape *ins = malloc(ns * sizeof *ins);
        for (size_t k = 0; k < ns; k++) ins[k] = src[k].shape;
        int rc = graft_ops_infer(&ops[i], 1, ins, ns, &next, ctx);
        free(ins);
        if (rc < 0) {
            free(owned);
            return rc;
        }
        uint8_t *buf = malloc(nbytes(&next) + 1);
        rc = graft_ops_run_mem(&ops[i], 1, src, ns, buf, ctx);
        if (rc < 0) {
            free(buf);
            free(owned);
            return rc;
        }
        free(owned);
        owned = buf;
        cur.shape = next;
        cur.data = buf;
    }
    *out = owned;
    *os = cur.shape;
    return 0;
}

/* ---- random chains ------------------------------------------------------ */

static int64_t vbuf[64][GRAFT_MAX_NDIM];
static const float qscale[] = {0.5f};
static const graft_quant q1 = {.nscale = 1, .scale = qscale};

static graft_op op_of(graft_op_kind k)
{
    graft_op op = {.kind = k, .file = "g.yaml", .line = 3};
    return op;
}

static bool is_float(graft_dtype t)
{
    return t == GRAFT_FLOAT16 || t == GRAFT_BFLOAT16 || t == GRAFT_FLOAT32 || t == GRAFT_FLOAT64;
}

/* A random op valid for shape s (checked by infer below; else retried). */
static graft_op random_op(const graft_shape *s, size_t slot, bool frac)
{
    static const graft_dtype casts[] = {GRAFT_FLOAT32, GRAFT_FLOAT16, GRAFT_BFLOAT16,
                                        GRAFT_FLOAT64, GRAFT_INT16,   GRAFT_INT32,
                                        GRAFT_UINT8,   GRAFT_INT64};
    int64_t *v = vbuf[slot];
    uint32_t r = s->ndim, ax = r ? (uint32_t)pick(r) : 0;
    graft_op op;
    switch (pick(11)) {
    case 0:
    case 1:
        op = op_of(GRAFT_OP_PERMUTE);
        for (uint32_t i = 0; i < r; i++) v[i] = i;
        for (uint32_t i = r; i > 1; i--) {
            uint32_t j = (uint32_t)pick(i);
            int64_t t = v[i - 1];
            v[i - 1] = v[j], v[j] = t;
        }
        op.v = v, op.n = r;
        return op;
    case 2:
        return op_of(GRAFT_OP_TRANSPOSE);
    case 3: { /* reshape: split an axis, merge two, or refactor the whole */
        op = op_of(GRAFT_OP_RESHAPE);
        uint32_t n = 0;
        int mode = (int)pick(3);
        for (uint32_t i = 0; i < r; i++) {
            int64_t d = s->dim[i];
            if (mode == 0 && i == ax && n + 2 <= 6 && d % 2 == 0) {
                v[n++] = 2, v[n++] = d / 2;
            } else if (mode == 1 && i == ax && i + 1 < r) {
                v[n++] = d * s->dim[i + 1];
                i++;
            } else {
                v[n++] = d;
            }
        }
        if (mode == 2) { /* numel refactored: [a, numel / a] */
            int64_t e = 1;
            for (uint32_t i = 0; i < r; i++) e *= s->dim[i];
            int64_t a = 1 + pick(4);
            if (e % a) a = 1;
            n = 0;
            v[n++] = a, v[n++] = e / a;
        }
        op.v = v, op.n = n;
        return op;
    }
    case 4: {
        op = op_of(GRAFT_OP_CHUNKS);
        uint32_t k = 2 + (uint32_t)pick(2);
        op.axis = (int32_t)ax;
        for (uint32_t i = 0; i < k; i++) v[i] = (int64_t)(k - 1 - i);
        if (pick(2) && k == 3) v[0] = 1, v[1] = 0, v[2] = 2;
        op.v = v, op.n = k;
        return op;
    }
    case 5:
        op = op_of(GRAFT_OP_TAKE);
        op.axis = (int32_t)ax;
        if (pick(2)) {
            op.count = 1 + pick(3);
            op.index = pick(op.count);
        } else {
            int64_t d = r ? s->dim[ax] : 1;
            v[0] = pick(d);
            v[1] = 1 + pick(d - v[0]);
            op.v = v, op.n = 2;
        }
        return op;
    case 6: {
        op = op_of(GRAFT_OP_SLICE);
        int64_t d = r ? s->dim[ax] : 1;
        op.axis = (int32_t)ax;
        op.start = pick(d);
        op.length = 1 + pick(d - op.start);
        return op;
    }
    case 7:
        op = op_of(r > 1 ? GRAFT_OP_UNSTACK : GRAFT_OP_TRANSPOSE);
        op.axis = (int32_t)ax;
        op.index = r ? pick(s->dim[ax]) : 0;
        return op;
    case 8:
        op = op_of(GRAFT_OP_PAD);
        op.axis = (int32_t)ax;
        op.length = (r ? s->dim[ax] : 0) + pick(4);
        op.value = (double)pick(9);
        return op;
    case 9:
        op = op_of(GRAFT_OP_CAST);
        op.dtype = casts[pick(frac ? 4 : 8)]; /* fractions: floats only */
        return op;
    default:
        if (!is_float(s->dtype)) {
            op = op_of(GRAFT_OP_CAST);
            op.dtype = GRAFT_FLOAT32;
            return op;
        }
        op = op_of(GRAFT_OP_SCALE);
        op.mul = pick(2) ? 0.5 : 1.25;
        op.add = (double)pick(3);
        return op;
    }
}

typedef struct job {
    graft_shape in[5];
    size_t nin;
    graft_op ops[12];
    size_t nops;
} job;

static void random_shape(graft_shape *s, uint32_t rank)
{
    static const graft_dtype dts[] = {GRAFT_FLOAT32, GRAFT_FLOAT16, GRAFT_BFLOAT16, GRAFT_INT16,
                                      GRAFT_UINT8,   GRAFT_FLOAT64, GRAFT_INT32};
    s->dtype = dts[pick(7)];
    s->ndim = rank;
    for (uint32_t i = 0; i < rank; i++) s->dim[i] = 1 + pick(i % 2 ? 6 : 4);
    if (rank && pick(2)) s->dim[pick(rank)] = 6; /* room for chunks of 2 and 3 */
}

/* The first op and the sources it takes. */
static void random_head(job *j, uint32_t rank)
{
    random_shape(&j->in[0], rank);
    j->nin = 1;
    int h = (int)pick(8);
    if (h >= 5) return; /* no join */
    graft_op op = op_of((graft_op_kind[]){GRAFT_OP_CONCAT, GRAFT_OP_STACK, GRAFT_OP_SUM,
                                          GRAFT_OP_FOLD_BN, GRAFT_OP_FOLD_BN}[h]);
    if (h >= 2 && !is_float(j->in[0].dtype)) j->in[0].dtype = GRAFT_FLOAT32;
    op.axis = (int32_t)pick(rank);
    j->nin = 2 + (size_t)pick(2);
    for (size_t k = 1; k < j->nin; k++) j->in[k] = j->in[0];
    if (h == 0)
        for (size_t k = 1; k < j->nin; k++) j->in[k].dim[op.axis] = 1 + pick(4);
    if (h >= 3) { /* fold_bn: [W or b, gamma, beta, mean, var] */
        op.part = h == 3 ? GRAFT_BN_WEIGHT : GRAFT_BN_BIAS;
        op.eps = 1e-3;
        if (h == 4) j->in[0].ndim = 1;
        graft_shape v = {.dtype = GRAFT_FLOAT32, .ndim = 1, .dim = {j->in[0].dim[0]}};
        j->nin = 5;
        for (size_t k = 1; k < 5; k++) j->in[k] = v;
    }
    j->ops[j->nops++] = op;
}

static bool infers(const job *j, size_t nops, graft_shape *out, graft_ctx *ctx)
{
    bool ok = graft_ops_infer(j->ops, nops, j->in, j->nin, out, ctx) == 0;
    graft_ctx_clear(ctx);
    return ok;
}

static void random_job(job *j, uint32_t rank, graft_ctx *ctx)
{
    graft_shape s;
    memset(j, 0, sizeof *j);
    random_head(j, rank);
    ck_assert(infers(j, j->nops, &s, ctx));
    size_t want = 2 + (size_t)pick(6);
    for (int tries = 0; j->nops < want && tries < 60; tries++) {
        bool frac = false; /* fold_bn and scale make fractions */
        for (size_t i = 0; i < j->nops; i++)
            frac |= j->ops[i].kind == GRAFT_OP_FOLD_BN || j->ops[i].kind == GRAFT_OP_SCALE;
        j->ops[j->nops] = random_op(&s, j->nops, frac);
        graft_shape t;
        uint64_t e = 1;
        if (!infers(j, j->nops + 1, &t, ctx)) continue;
        for (uint32_t i = 0; i < t.ndim; i++) e *= (uint64_t)t.dim[i];
        if (t.ndim == 0 || t.ndim > 6 || e > 4096) continue;
        j->nops++;
        s = t;
    }
    /* now and then a trailing quantize: ggml blocks or one scale */
    if (pick(6) == 0 && s.ndim && j->nops + 3 <= 12) {
        int64_t e = 1;
        for (uint32_t i = 0; i < s.ndim; i++) e *= s.dim[i];
        graft_op c = op_of(GRAFT_OP_CAST), q = op_of(GRAFT_OP_QUANTIZE);
        c.dtype = GRAFT_FLOAT32;
        j->ops[j->nops++] = c;
        if (e % 32 == 0 && pick(2)) {
            graft_op r = op_of(GRAFT_OP_RESHAPE);
            vbuf[11][0] = e / 32, vbuf[11][1] = 32;
            r.v = vbuf[11], r.n = 2;
            j->ops[j->nops++] = r;
            q.index = 1; /* q8_0 */
            q.dtype = GRAFT_UINT8;
        } else {
            q.dtype = GRAFT_INT8;
            q.quant = &q1;
        }
        j->ops[j->nops++] = q;
        if (!infers(j, j->nops, &s, ctx)) j->nops -= 3; /* never mind */
    }
}

/* "float32 [2, 3] x2: permute [1, 0], cast ..." for messages. */
static const char *describe(const job *j)
{
    static char buf[2048];
    size_t k = (size_t)snprintf(buf, sizeof buf, "%s [", graft_dtype_name(j->in[0].dtype));
    for (uint32_t i = 0; i < j->in[0].ndim; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%lld", i ? ", " : "",
                              (long long)j->in[0].dim[i]);
    k += (size_t)snprintf(buf + k, sizeof buf - k, "] x%zu:", j->nin);
    for (size_t i = 0; i < j->nops && k < sizeof buf - 200; i++) {
        const graft_op *o = &j->ops[i];
        k += (size_t)snprintf(buf + k, sizeof buf - k, " %s(axis %d, v", graft_op_name(o->kind),
                              (int)o->axis);
        for (uint32_t a = 0; a < o->n; a++)
            k += (size_t)snprintf(buf + k, sizeof buf - k, " %lld", (long long)o->v[a]);
        k += (size_t)snprintf(buf + k, sizeof buf - k, ", %s)", graft_dtype_name(o->dtype));
    }
    return buf;
}

/* One chain: the plan (built directly, block size random) and the public
 * path both against the reference.  Returns whether the plan took it. */
static bool check_job(const job *j, graft_ctx *ctx)
{
    graft_tview in[5];
    uint8_t *ref = NULL;
    graft_shape os;
    for (size_t k = 0; k < j->nin; k++) {
        in[k].shape = j->in[k];
        in[k].data = random_tensor(&j->in[k], ctx);
    }
    int rr = reference(j->ops, j->nops, in, j->nin, &ref, &os, ctx);
    char why[512];
    snprintf(why, sizeof why, "%s", rr < 0 ? graft_ctx_message(ctx) : "");
    graft_ctx_clear(ctx);

    graft_gplan g;
    int rb = graft_gplan_build(&g, j->ops, j->nops, j->in, j->nin, ctx);
    bool took = rb == 0;
    if (rb < 0) {
        ck_assert_msg(rr < 0, "the plan refused a chain the reference runs: %s",
                      graft_ctx_message(ctx));
        graft_ctx_clear(ctx);
    }
    if (took) {
        uint64_t n = rr == 0 ? nbytes(&os) : 1 << 20;
        uint8_t *got = malloc(n + 1);
        graft_xout o = {.mem = got, .ctx = ctx};
        graft_gplan__set_block(1 + (size_t)pick(40));
        int rp = graft_gplan_run(&g, in, j->nin, &o, ctx);
        graft_gplan__set_block(0);
        if (rr == 0) {
            ck_assert_msg(rp == 0, "plan failed: %s: %s", graft_ctx_message(ctx), describe(j));
            ck_assert_msg(o.pos == n, "%llu bytes, not %llu: %s", (unsigned long long)o.pos,
                          (unsigned long long)n, describe(j));
            ck_assert_msg(memcmp(got, ref, n) == 0, "plan differs from the op-by-op reference: %s",
                          describe(j));
        } else {
            ck_assert_msg(rp < 0, "the plan ran a chain the reference refused (%s): %s", why,
                          describe(j));
        }
        /* a layout-only plan asked element by element (the layout check's
         * sampled queries) names the reference's bytes too */
        if (rr == 0 && !g.head && !g.nvals && !g.tail) {
            size_t es = graft_dtype_size(os.dtype);
            for (uint64_t p = 0; p < n / es; p++) {
                int64_t off;
                const graft_gpiece *q = graft_gplan_piece_at(&g, p, &off);
                ck_assert_msg(q != NULL, "no piece holds %llu: %s", (unsigned long long)p, describe(j));
                const uint8_t *at = q->src < 0 ? q->fill : in[q->src].data + (uint64_t)off * es;
                ck_assert_msg(memcmp(at, ref + p * es, es) == 0, "piece_at(%llu) differs: %s",
                              (unsigned long long)p, describe(j));
            }
        }
        graft_ctx_clear(ctx);
        free(got);
        graft_gplan_free(&g);
    }
    /* the public path (plan or op by op) gives the same */
    if (rr == 0) {
        uint8_t *got = malloc(nbytes(&os) + 1);
        ck_assert_msg(graft_ops_run_mem(j->ops, j->nops, in, j->nin, got, ctx) == 0, "%s",
                      graft_ctx_message(ctx));
        ck_assert(memcmp(got, ref, nbytes(&os)) == 0);
        free(got);
    }
    graft_ctx_clear(ctx);
    for (size_t k = 0; k < j->nin; k++) free((void *)in[k].data);
    free(ref);
    return took;
}

START_TEST(random_chains_equal_the_op_by_op_reference)
{
    graft_ctx *ctx = graft_ctx_new();
    uint32_t rank = 1 + (uint32_t)_i; /* ranks 1..6 */
    int took = 0, runs = 200;
    rng ^= (uint64_t)(_i + 1) * 0x2545f4914f6cdd1dull;
    for (int t = 0; t < runs; t++) {
        job j;
        random_job(&j, rank, ctx);
        took += check_job(&j, ctx);
    }
    /* the plan must take nearly every chain: falling back is not composing */
    ck_assert_msg(took * 10 >= runs * 9, "rank %u: the plan took %d of %d chains", rank, took,
                  runs);
    graft_ctx_free(ctx);
}
END_TEST

/* Chains as rules write them, each taken by the plan. */
START_TEST(real_chains_compose)
{
    graft_ctx *ctx = graft_ctx_new();
    job j;
    /* RoPE: [n*hd, dim] -> [n, 2, hd/2, dim] -> permute -> [n*hd, dim], cast */
    memset(&j, 0, sizeof j);
    j.in[0] = (graft_shape){.dtype = GRAFT_BFLOAT16, .ndim = 2, .dim = {32, 12}};
    j.nin = 1;
    int64_t d1[] = {4, 2, 4, 12}, p[] = {0, 2, 1, 3}, d2[] = {32, 12};
    j.ops[0] = op_of(GRAFT_OP_RESHAPE), j.ops[0].v = d1, j.ops[0].n = 4;
    j.ops[1] = op_of(GRAFT_OP_PERMUTE), j.ops[1].v = p, j.ops[1].n = 4;
    j.ops[2] = op_of(GRAFT_OP_RESHAPE), j.ops[2].v = d2, j.ops[2].n = 2;
    j.ops[3] = op_of(GRAFT_OP_CAST), j.ops[3].dtype = GRAFT_FLOAT16;
    j.nops = 4;
    ck_assert(check_job(&j, ctx));
    /* fold_bn of a convolution, then OIHW -> HWIO */
    memset(&j, 0, sizeof j);
    j.in[0] = (graft_shape){.dtype = GRAFT_FLOAT32, .ndim = 4, .dim = {8, 3, 3, 3}};
    for (int k = 1; k < 5; k++) j.in[k] = (graft_shape){.dtype = GRAFT_FLOAT32, .ndim = 1, .dim = {8}};
    j.nin = 5;
    int64_t hwio[] = {2, 3, 1, 0};
    j.ops[0] = op_of(GRAFT_OP_FOLD_BN), j.ops[0].eps = 1e-5;
    j.ops[1] = op_of(GRAFT_OP_PERMUTE), j.ops[1].v = hwio, j.ops[1].n = 4;
    j.nops = 2;
    ck_assert(check_job(&j, ctx));
    /* gate/up reorder then transpose then cast */
    memset(&j, 0, sizeof j);
    j.in[0] = (graft_shape){.dtype = GRAFT_FLOAT32, .ndim = 2, .dim = {12, 5}};
    j.nin = 1;
    int64_t order[] = {1, 0};
    j.ops[0] = op_of(GRAFT_OP_CHUNKS), j.ops[0].v = order, j.ops[0].n = 2;
    j.ops[1] = op_of(GRAFT_OP_TRANSPOSE);
    j.ops[2] = op_of(GRAFT_OP_CAST), j.ops[2].dtype = GRAFT_FLOAT16;
    j.nops = 3;
    ck_assert(check_job(&j, ctx));
    /* vocabulary pad after a cast, then scale */
    memset(&j, 0, sizeof j);
    j.in[0] = (graft_shape){.dtype = GRAFT_BFLOAT16, .ndim = 2, .dim = {5, 4}};
    j.nin = 1;
    j.ops[0] = op_of(GRAFT_OP_CAST), j.ops[0].dtype = GRAFT_FLOAT32;
    j.ops[1] = op_of(GRAFT_OP_PAD), j.ops[1].length = 8, j.ops[1].value = 3;
    j.ops[2] = op_of(GRAFT_OP_SCALE), j.ops[2].mul = 2, j.ops[2].add = 1;
    j.nops = 3;
    ck_assert(check_job(&j, ctx));
    graft_ctx_free(ctx);
}
END_TEST

/* An empty tensor padded to one element, then reshaped to a scalar: the
 * source's piece covers nothing and must not survive losing its axes, or
 * the scalar is read from the empty source (fuzz_ops: a heap overflow). */
START_TEST(an_empty_source_padded_to_a_scalar_is_the_fill)
{
    graft_ctx *ctx = graft_ctx_new();
    job j;
    memset(&j, 0, sizeof j);
    j.in[0] = (graft_shape){.dtype = GRAFT_FLOAT16, .ndim = 1, .dim = {0}};
    j.nin = 1;
    j.ops[0] = op_of(GRAFT_OP_PAD), j.ops[0].length = 1, j.ops[0].value = 3;
    j.ops[1] = op_of(GRAFT_OP_RESHAPE); /* to [] */
    j.ops[2] = op_of(GRAFT_OP_PERMUTE);
    j.nops = 3;
    ck_assert(check_job(&j, ctx));
    graft_ctx_free(ctx);
}
END_TEST

/* A large transpose + cast into a file sink goes through the permute
 * kernel out of core, with the cast applied on the stream. */
static void no_release(void *payload)
{
    (*(int *)payload)++;
}

START_TEST(permute_out_of_core_applies_the_cast)
{
    graft_ctx *ctx = graft_ctx_new();
    job j;
    memset(&j, 0, sizeof j);
    j.in[0] = (graft_shape){.dtype = GRAFT_FLOAT32, .ndim = 3, .dim = {64, 3, 40}};
    j.nin = 1;
    int64_t perm[] = {1, 2, 0};
    j.ops[0] = op_of(GRAFT_OP_PERMUTE), j.ops[0].v = perm, j.ops[0].n = 3;
    j.ops[1] = op_of(GRAFT_OP_CAST), j.ops[1].dtype = GRAFT_FLOAT16;
    j.nops = 2;
    graft_tview in = {.shape = j.in[0], .data = random_tensor(&j.in[0], ctx)};
    uint8_t *ref;
    graft_shape os;
    ck_assert_int_eq(reference(j.ops, j.nops, &in, 1, &ref, &os, ctx), 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/ooc.bin", tu_temp_dir());
    graft_sink *s;
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    int released = 0;
    graft_xform__set_ooc(1024, 2048);
    graft_gplan g;
    ck_assert_int_eq(graft_gplan_build(&g, j.ops, j.nops, j.in, 1, ctx), 0);
    graft_xout o = {.sink = s, .ctx = ctx, .release = no_release, .payload = &released};
    ck_assert_int_eq(graft_gplan_run(&g, &in, 1, &o, ctx), 0);
    graft_xform__set_ooc(0, 0);
    graft_gplan_free(&g);
    ck_assert_int_eq(graft_sink_commit(s), 0);
    ck_assert_int_gt(released, 3); /* pass 1 released the source block by block */
    size_t n;
    uint8_t *got = tu_read_file(path, &n);
    ck_assert_uint_eq(n, nbytes(&os));
    ck_assert(memcmp(got, ref, n) == 0);
    free(got);
    free(ref);
    free((void *)in.data);
    graft_ctx_free(ctx);
}
END_TEST

/* Out-of-core permutes of random shapes, tiny budget, into a file sink:
 * written in place (positioned pwrites) when the sink allows it, through
 * the temporary file when a running checksum forbids it; both equal the
 * op-by-op reference.  Shapes are random ranks 2..5 with the source's
 * outermost axis moved inward (what takes this path), also reshaped first
 * as the flatten reorder is ([O, C*H*W] -> [O,C,H,W] -> HWCO). */
typedef struct io_count {
    int released; /* first: no_release counts into it */
    int reads;
} io_count;

static int mem_read(void *payload, const uint8_t *at, void *dst, size_t n, graft_ctx *ctx)
{
    (void)ctx;
    __atomic_fetch_add(&((io_count *)payload)->reads, 1, __ATOMIC_RELAXED); /* two threads */
    memcpy(dst, at, n);
    return 0;
}

static void ooc_case(uint32_t rank, bool crc, bool flatten, bool pread, graft_ctx *ctx)
{
    job j;
    memset(&j, 0, sizeof j);
    graft_shape full = {.dtype = pick(2) ? GRAFT_FLOAT32 : GRAFT_FLOAT16, .ndim = rank};
    for (uint32_t i = 0; i < rank; i++) full.dim[i] = 2 + pick(i == 0 ? 40 : 9);
    int64_t perm[6], shp[6], back[2];
    for (uint32_t i = 0; i < rank; i++) perm[i] = i;
    for (uint32_t i = rank; i-- > 1;) { /* shuffle, then make sure axis 0 moved */
        uint32_t k = (uint32_t)pick(i + 1);
        int64_t t = perm[i];
        perm[i] = perm[k], perm[k] = t;
    }
    if (perm[0] == 0) perm[0] = perm[1], perm[1] = 0;
    size_t n = 0;
    if (flatten) { /* [O, rest] -> full shape -> permute -> [rest, O] */
        j.in[0] = (graft_shape){.dtype = full.dtype, .ndim = 2, .dim = {full.dim[0], 1}};
        for (uint32_t i = 1; i < rank; i++) j.in[0].dim[1] *= full.dim[i];
        for (uint32_t i = 0; i < rank; i++) shp[i] = full.dim[i];
        j.ops[n] = op_of(GRAFT_OP_RESHAPE), j.ops[n].v = shp, j.ops[n++].n = rank;
    } else {
        j.in[0] = full;
    }
    j.nin = 1;
    j.ops[n] = op_of(GRAFT_OP_PERMUTE), j.ops[n].v = perm, j.ops[n++].n = rank;
    if (flatten) {
        back[0] = -1, back[1] = full.dim[0];
        j.ops[n] = op_of(GRAFT_OP_RESHAPE), j.ops[n].v = back, j.ops[n++].n = 2;
    }
    j.nops = n;
    graft_tview in = {.shape = j.in[0], .data = random_tensor(&j.in[0], ctx)};
    uint8_t *ref;
    graft_shape os;
    ck_assert_int_eq(reference(j.ops, j.nops, &in, 1, &ref, &os, ctx), 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/ooc_rand.bin", tu_temp_dir());
    graft_sink *s;
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    ck_assert_int_eq(graft_sink_write(s, "head", 4), 0); /* the tensor starts mid-file */
    if (crc) graft_sink_crc32c_begin(s);
    io_count io = {0, 0};
    uint64_t before = graft_xform__ooc_in_place();
    size_t total = (size_t)nbytes(&os);
    graft_xform__set_ooc(1, total / 3 + 64); /* several blocks */
    ck_assert_int_eq(graft_ops_run_io(j.ops, j.nops, &in, 1, s, no_release,
                                      pread ? mem_read : NULL, &io, ctx), 0);
    graft_xform__set_ooc(0, 0);
    uint64_t took = graft_xform__ooc_in_place() - before;
    if (crc) {
        uint32_t want = graft_crc32c(0, ref, total);
        ck_assert_uint_eq(graft_sink_crc32c_end(s), want);
        ck_assert_uint_eq(took, 0);
    }
    ck_assert_int_eq(graft_sink_write(s, "tail", 4), 0);
    ck_assert_int_eq(graft_sink_commit(s), 0);
    size_t got_n;
    uint8_t *got = tu_read_file(path, &got_n);
    ck_assert_uint_eq(got_n, total + 8);
    ck_assert(memcmp(got, "head", 4) == 0 && memcmp(got + 4 + total, "tail", 4) == 0);
    ck_assert_msg(memcmp(got + 4, ref, total) == 0, "rank %u %s%s: bytes differ", rank,
                  flatten ? "flatten " : "", crc ? "(crc)" : "");
    free(got);
    free(ref);
    free((void *)in.data);
    unlink(path);
    ck_assert_msg(crc || io.released > 0 || io.reads > 0, "rank %u %s: not out of core", rank,
                  describe(&j));
    if (pread && took) ck_assert_int_gt(io.reads, 0); /* the staged segments came by read */
}

START_TEST(out_of_core_permutes_equal_the_reference)
{
    graft_ctx *ctx = graft_ctx_new();
    uint64_t before = graft_xform__ooc_in_place();
    int runs = 0;
    for (uint32_t rank = 2; rank <= 5; rank++)
        for (int t = 0; t < 16; t++, runs++)
            ooc_case(rank, t % 4 == 3, t % 2 == 1, t % 8 >= 4, ctx);
    /* most of them in place: only a checksummed sink or a block too thin forbids it */
    uint64_t took = graft_xform__ooc_in_place() - before;
    ck_assert_msg(took * 2 >= (uint64_t)runs, "%llu of %d in place", (unsigned long long)took,
                  runs);
    graft_ctx_free(ctx);
}
END_TEST

/* The 16-bit float casts L1 leans on (bfloat16 <-> float16, through
 * float32) against the two-step path through float64, every input. */
START_TEST(casts_between_16_bit_floats_match_float64_exhaustively)
{
    graft_ctx *ctx = graft_ctx_new();
    static const graft_dtype pairs[2][2] = {{GRAFT_BFLOAT16, GRAFT_FLOAT16},
                                            {GRAFT_FLOAT16, GRAFT_BFLOAT16}};
    uint16_t *in = malloc(65536 * 2), *fast = malloc(65536 * 2), *slow = malloc(65536 * 2);
    double *wide = malloc(65536 * sizeof *wide);
    for (uint32_t i = 0; i < 65536; i++) in[i] = (uint16_t)i;
    for (int k = 0; k < 2; k++) {
        graft_xout a = {.mem = (uint8_t *)fast, .ctx = ctx};
        ck_assert_int_eq(graft_xform__cast(&a, (uint8_t *)in, pairs[k][0], pairs[k][1], 65536, ctx), 0);
        graft_xform__to_f64((uint8_t *)in, pairs[k][0], 65536, wide);
        graft_xform__from_f64((uint8_t *)slow, pairs[k][1], wide, 65536);
        for (uint32_t i = 0; i < 65536; i++) {
            double x = wide[i];
            if (x != x) { /* NaN stays NaN (payloads may differ) */
                uint16_t e = pairs[k][1] == GRAFT_FLOAT16 ? 0x7c00 : 0x7f80;
                ck_assert_msg((fast[i] & e) == e && (fast[i] & ~e & 0x7fff), "%s 0x%04x: 0x%04x",
                              graft_dtype_name(pairs[k][0]), i, fast[i]);
                continue;
            }
            ck_assert_msg(fast[i] == slow[i], "%s 0x%04x: 0x%04x, not 0x%04x",
                          graft_dtype_name(pairs[k][0]), i, fast[i], slow[i]);
        }
    }
    free(in), free(fast), free(slow), free(wide);
    graft_ctx_free(ctx);
}
END_TEST

static Suite *gather_suite(void)
{
    Suite *s = suite_create("gather");
    TCase *tc = tcase_create("plans");
    tcase_set_timeout(tc, 60); /* a loaded machine: the work is well under a second */
    tcase_add_loop_test(tc, random_chains_equal_the_op_by_op_reference, 0, 6);
    tcase_add_test(tc, real_chains_compose);
    tcase_add_test(tc, an_empty_source_padded_to_a_scalar_is_the_fill);
    tcase_add_test(tc, permute_out_of_core_applies_the_cast);
    tcase_add_test(tc, out_of_core_permutes_equal_the_reference);
    tcase_add_test(tc, casts_between_16_bit_floats_match_float64_exhaustively);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(gather_suite());
}
