/* test_ops.c - op chains: every kernel against a naive index-by-index
 * reference, exact cast rounding, shape errors with file:line, and
 * invert(chain) after chain == identity. */
#include "testutil.h"

#include "../../src/transform/kernels.h"
#include "../../src/transform/ops.h"
#include "error.h"
#include "sink.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static graft_ctx *ctx;
static void setup(void)
{
    ctx = graft_ctx_new();
}
static void teardown(void)
{
    graft_ctx_free(ctx);
}

/* ---- helpers ----------------------------------------------------------- */

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static const size_t esizes[] = {1, 2, 4, 8, 16};
static const graft_dtype dtype_of_size[] = {GRAFT_UINT8, GRAFT_INT16, GRAFT_FLOAT32, GRAFT_INT64,
                                            GRAFT_COMPLEX128};
static const int64_t odd_dims[] = {1, 3, 5, 7, 17, 33};

static graft_op mk(graft_op_kind kind, int64_t *v, uint32_t n)
{
    graft_op op = {.kind = kind, .n = n, .v = v, .file = "m.yaml", .line = 7, .col = 5};
    return op;
}

static graft_shape shape_of(graft_dtype dt, uint32_t n, const int64_t *d)
{
    graft_shape s = {.dtype = dt, .ndim = n};
    for (uint32_t i = 0; i < n; i++)
        s.dim[i] = d[i];
    return s;
}

static uint64_t numel(const graft_shape *s)
{
    uint64_t n = 1;
    for (uint32_t i = 0; i < s->ndim; i++)
        n *= (uint64_t)s->dim[i];
    return n;
}

static size_t nbytes(const graft_shape *s)
{
    return numel(s) * graft_dtype_size(s->dtype);
}

static uint8_t *random_bytes(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
    return p;
}

/* A random shape of odd sizes with at most `cap` elements. */
static void random_dims(uint32_t rank, int64_t *d, uint64_t cap)
{
    for (;;) {
        uint64_t n = 1;
        for (uint32_t i = 0; i < rank; i++) {
            d[i] = odd_dims[rnd() % 6];
            n *= (uint64_t)d[i];
        }
        if (n <= cap) return;
    }
}

static void random_perm(uint32_t n, int64_t *p)
{
    for (uint32_t i = 0; i < n; i++)
        p[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)(rnd() % i);
        int64_t t = p[i - 1];
        p[i - 1] = p[j];
        p[j] = t;
    }
}

/* Run a chain into a fresh buffer; NULL on failure (message in ctx). */
static uint8_t *run(const graft_op *ops, size_t nops, const graft_tview *in, size_t nin,
                    graft_shape *out)
{
    graft_shape ins[8];
    for (size_t i = 0; i < nin; i++)
        ins[i] = in[i].shape;
    if (graft_ops_infer(ops, nops, ins, nin, out, ctx) < 0) return NULL;
    uint8_t *dst = malloc(nbytes(out) + 1);
    if (graft_ops_run_mem(ops, nops, in, nin, dst, ctx) < 0) {
        free(dst);
        return NULL;
    }
    return dst;
}

/* Same through a sink into a file; returns the file's bytes. */
static uint8_t *run_sink(const graft_op *ops, size_t nops, const graft_tview *in, size_t nin,
                         size_t *n)
{
    static int seq;
    char path[512];
    graft_sink *s = NULL;
    snprintf(path, sizeof path, "%s/out%d.bin", tu_temp_dir(), seq++);
    ck_assert_int_eq(graft_sink_open(&s, path, ctx), 0);
    int rc = graft_ops_run(ops, nops, in, nin, s, ctx);
    if (rc < 0) {
        graft_sink_abort(s);
        return NULL;
    }
    ck_assert_int_eq(graft_sink_commit(s), 0);
    return tu_read_file(path, n);
}

/* Naive permute: walk every output index, compute the input offset. */
static void ref_permute(uint8_t *dst, const uint8_t *src, size_t w, uint32_t n, const int64_t *dim,
                        const int64_t *axes)
{
    int64_t istr[8], odim[8], idx[8] = {0};
    uint64_t total = 1;
    for (uint32_t i = 0; i < n; i++)
        total *= (uint64_t)dim[i];
    for (int i = (int)n - 1; i >= 0; i--)
        istr[i] = i == (int)n - 1 ? 1 : istr[i + 1] * dim[i + 1];
    for (uint32_t i = 0; i < n; i++)
        odim[i] = dim[axes[i]];
    for (uint64_t k = 0; k < total; k++) {
        uint64_t rem = k, off = 0;
        for (int i = (int)n - 1; i >= 0; i--) {
            idx[i] = (int64_t)(rem % (uint64_t)odim[i]);
            rem /= (uint64_t)odim[i];
        }
        for (uint32_t i = 0; i < n; i++)
            off += (uint64_t)(idx[i] * istr[axes[i]]);
        memcpy(dst + k * w, src + off * w, w);
    }
}

/* Naive [outer, mid, inner] decomposition for chunks/take/concat. */
static void dims3(const graft_shape *s, uint32_t axis, uint64_t *o, uint64_t *m, uint64_t *i)
{
    *o = 1;
    *i = 1;
    for (uint32_t k = 0; k < axis; k++)
        *o *= (uint64_t)s->dim[k];
    for (uint32_t k = axis + 1; k < s->ndim; k++)
        *i *= (uint64_t)s->dim[k];
    *m = (uint64_t)s->dim[axis];
}

/* ---- permute / transpose ----------------------------------------------- */

START_TEST(permute_matches_reference_every_rank_and_size)
{
    size_t w = esizes[_i];
    graft_dtype dt = dtype_of_size[_i];
    for (uint32_t rank = 1; rank <= 6; rank++) {
        for (int rep = 0; rep < 6; rep++) {
            int64_t d[8], axes[8];
            random_dims(rank, d, 60000);
            random_perm(rank, axes);
            graft_shape s = shape_of(dt, rank, d), out;
            uint8_t *src = random_bytes(nbytes(&s)), *want = malloc(nbytes(&s) + 1);
            graft_tview in = {s, src};
            graft_op op = mk(GRAFT_OP_PERMUTE, axes, rank);
            ref_permute(want, src, w, rank, d, axes);
            uint8_t *got = run(&op, 1, &in, 1, &out);
            ck_assert_msg(got != NULL, "%s", graft_ctx_message(ctx));
            ck_assert_uint_eq(out.ndim, rank);
            for (uint32_t i = 0; i < rank; i++)
                ck_assert_int_eq(out.dim[i], d[axes[i]]);
            ck_assert_int_eq(memcmp(got, want, nbytes(&s)), 0);
            /* negative axes mean the same */
            axes[0] -= rank;
            uint8_t *got2 = run(&op, 1, &in, 1, &out);
            ck_assert_int_eq(memcmp(got2, want, nbytes(&s)), 0);
            free(got2);
            free(got);
            free(want);
            free(src);
        }
    }
}
END_TEST

START_TEST(transpose_reverses_all_axes)
{
    size_t w = esizes[_i];
    for (uint32_t rank = 1; rank <= 6; rank++) {
        int64_t d[8], axes[8];
        random_dims(rank, d, 60000);
        for (uint32_t i = 0; i < rank; i++)
            axes[i] = rank - 1 - i;
        graft_shape s = shape_of(dtype_of_size[_i], rank, d), out;
        uint8_t *src = random_bytes(nbytes(&s)), *want = malloc(nbytes(&s) + 1);
        graft_tview in = {s, src};
        graft_op op = mk(GRAFT_OP_TRANSPOSE, NULL, 0);
        ref_permute(want, src, w, rank, d, axes);
        uint8_t *got = run(&op, 1, &in, 1, &out);
        ck_assert_ptr_nonnull(got);
        ck_assert_int_eq(memcmp(got, want, nbytes(&s)), 0);
        free(got);
        free(want);
        free(src);
    }
}
END_TEST

/* Letters name axes: "OIHW->HWIO" means out dim i = in index of letter i. */
static void letters_to_axes(const char *spec, int64_t *axes, uint32_t *n)
{
    const char *arrow = strstr(spec, "->");
    size_t k = (size_t)(arrow - spec);
    *n = (uint32_t)k;
    for (size_t i = 0; i < k; i++)
        axes[i] = strchr(spec, arrow[2 + i]) - spec;
}

START_TEST(permute_spanning_many_tiles_matches_reference)
{
    /* Larger than the kernel's tiles in both tiled axes, with ragged edges,
     * for every element size. */
    static const int64_t shapes[][3] = {{300, 261, 1}, {3, 131, 257}, {130, 3, 129}};
    static const int64_t perms[][3] = {{1, 0, 2}, {0, 2, 1}, {2, 1, 0}};
    size_t w = esizes[_i];
    for (int c = 0; c < 3; c++) {
        graft_shape s = shape_of(dtype_of_size[_i], 3, shapes[c]), out;
        int64_t axes[3] = {perms[c][0], perms[c][1], perms[c][2]};
        uint8_t *src = random_bytes(nbytes(&s)), *want = malloc(nbytes(&s));
        graft_tview in = {s, src};
        graft_op op = mk(GRAFT_OP_PERMUTE, axes, 3);
        ref_permute(want, src, w, 3, s.dim, axes);
        uint8_t *got = run(&op, 1, &in, 1, &out);
        ck_assert_ptr_nonnull(got);
        ck_assert_int_eq(memcmp(got, want, nbytes(&s)), 0);
        free(got);
        free(want);
        free(src);
    }
}
END_TEST

START_TEST(permute_by_letters_moves_named_axes)
{
    /* OIHW (4, 3, 2, 5) -> HWIO: element [o][i][h][w] lands at [h][w][i][o] */
    int64_t d[] = {4, 3, 2, 5}, axes[4];
    uint32_t n;
    letters_to_axes("OIHW->HWIO", axes, &n);
    ck_assert_uint_eq(n, 4);
    ck_assert(axes[0] == 2 && axes[1] == 3 && axes[2] == 1 && axes[3] == 0);
    graft_shape s = shape_of(GRAFT_INT32, 4, d), out;
    int32_t src[120];
    for (int k = 0; k < 120; k++)
        src[k] = k * 7 + 1;
    graft_tview in = {s, (const uint8_t *)src};
    graft_op op = mk(GRAFT_OP_PERMUTE, axes, 4);
    int32_t *got = (int32_t *)run(&op, 1, &in, 1, &out);
    ck_assert_ptr_nonnull(got);
    ck_assert(out.dim[0] == 2 && out.dim[1] == 5 && out.dim[2] == 3 && out.dim[3] == 4);
    for (int o = 0; o < 4; o++)
        for (int i = 0; i < 3; i++)
            for (int h = 0; h < 2; h++)
                for (int w = 0; w < 5; w++)
                    ck_assert_int_eq(got[((h * 5 + w) * 3 + i) * 4 + o],
                                     src[((o * 3 + i) * 2 + h) * 5 + w]);
    free(got);
    /* "ABCD->CDAB" is [2, 3, 0, 1] */
    letters_to_axes("ABCD->CDAB", axes, &n);
    ck_assert(axes[0] == 2 && axes[1] == 3 && axes[2] == 0 && axes[3] == 1);
}
END_TEST

START_TEST(permute_streams_large_tensors_into_a_sink)
{
    /* Bigger than one 4 MiB slab in several layouts, so slabs split rows,
     * split the outer axes, and split a single long innermost row. */
    static const int64_t shapes[][3] = {{1100, 1030, 1}, {3, 700, 900}, {2, 1, 1200000}};
    static const int64_t perms[][3] = {{1, 0, 2}, {2, 0, 1}, {2, 1, 0}};
    for (int c = 0; c < 3; c++) {
        graft_shape s = shape_of(GRAFT_FLOAT32, 3, shapes[c]);
        int64_t axes[3] = {perms[c][0], perms[c][1], perms[c][2]};
        uint8_t *src = random_bytes(nbytes(&s)), *want = malloc(nbytes(&s));
        graft_tview in = {s, src};
        graft_op op = mk(GRAFT_OP_PERMUTE, axes, 3);
        size_t n = 0;
        ref_permute(want, src, 4, 3, s.dim, axes);
        uint8_t *got = run_sink(&op, 1, &in, 1, &n);
        ck_assert_msg(got != NULL, "%s", graft_ctx_message(ctx));
        ck_assert_uint_eq(n, nbytes(&s));
        ck_assert_int_eq(memcmp(got, want, n), 0);
        free(got);
        free(want);
        free(src);
    }
}
END_TEST

/* ---- chunks / take / concat -------------------------------------------- */

START_TEST(chunks_take_concat_match_reference)
{
    size_t w = esizes[_i];
    graft_dtype dt = dtype_of_size[_i];
    for (uint32_t rank = 1; rank <= 6; rank++) {
        for (int rep = 0; rep < 4; rep++) {
            int64_t d[8], order[8];
            random_dims(rank, d, 20000);
            uint32_t axis = (uint32_t)(rnd() % rank);
            uint32_t k = 1 + (uint32_t)(rnd() % 4);
            d[axis] *= k; /* divisible into k chunks */
            random_perm(k, order);
            graft_shape s = shape_of(dt, rank, d), out;
            uint8_t *src = random_bytes(nbytes(&s)), *want = malloc(nbytes(&s) + 1);
            graft_tview in = {s, src};
            uint64_t o, m, inn;
            dims3(&s, axis, &o, &m, &inn);
            uint64_t L = m / k;

            /* chunks, with the axis counted from the end half of the time */
            graft_op op = mk(GRAFT_OP_CHUNKS, order, k);
            op.axis = rep % 2 ? (int32_t)axis - (int32_t)rank : (int32_t)axis;
            for (uint64_t a = 0; a < o; a++)
                for (uint64_t c = 0; c < k; c++)
                    for (uint64_t l = 0; l < L; l++)
                        for (uint64_t b = 0; b < inn; b++)
                            memcpy(want + (((a * m) + c * L + l) * inn + b) * w,
                                   src + (((a * m) + (uint64_t)order[c] * L + l) * inn + b) * w, w);
            uint8_t *got = run(&op, 1, &in, 1, &out);
            ck_assert_msg(got != NULL, "%s", graft_ctx_message(ctx));
            ck_assert_int_eq(memcmp(got, want, nbytes(&s)), 0);
            free(got);

            /* take every chunk, then concat them back */
            graft_tview parts[4];
            uint8_t *pieces[4];
            for (uint32_t c = 0; c < k; c++) {
                graft_op t = mk(GRAFT_OP_TAKE, NULL, 0);
                t.axis = (int32_t)axis;
                t.count = k;
                t.index = c;
                pieces[c] = run(&t, 1, &in, 1, &out);
                ck_assert_ptr_nonnull(pieces[c]);
                ck_assert_int_eq(out.dim[axis], (int64_t)L);
                for (uint64_t a = 0; a < o; a++)
                    for (uint64_t l = 0; l < L; l++)
                        for (uint64_t b = 0; b < inn; b++)
                            ck_assert_int_eq(memcmp(pieces[c] + ((a * L + l) * inn + b) * w,
                                                    src + ((a * m + c * L + l) * inn + b) * w, w),
                                             0);
                parts[c].shape = out;
                parts[c].data = pieces[c];
            }
            graft_op cat = mk(GRAFT_OP_CONCAT, NULL, 0);
            cat.axis = (int32_t)axis;
            got = run(&cat, 1, parts, k, &out);
            ck_assert_ptr_nonnull(got);
            ck_assert_int_eq(out.dim[axis], d[axis]);
            ck_assert_int_eq(memcmp(got, src, nbytes(&s)), 0);
            free(got);
            for (uint32_t c = 0; c < k; c++)
                free(pieces[c]);
            free(want);
            free(src);
        }
    }
}
END_TEST

START_TEST(concat_of_unequal_sources_and_through_a_sink)
{
    /* [2,3] ++ [2,1] ++ [2,2] along axis 1 */
    int16_t a[] = {1, 2, 3, 4, 5, 6}, b[] = {7, 8}, c[] = {9, 10, 11, 12};
    int16_t want[] = {1, 2, 3, 7, 9, 10, 4, 5, 6, 8, 11, 12};
    int64_t da[] = {2, 3}, db[] = {2, 1}, dc[] = {2, 2};
    graft_tview in[3] = {{shape_of(GRAFT_INT16, 2, da), (const uint8_t *)a},
                         {shape_of(GRAFT_INT16, 2, db), (const uint8_t *)b},
                         {shape_of(GRAFT_INT16, 2, dc), (const uint8_t *)c}};
    graft_op cat = mk(GRAFT_OP_CONCAT, NULL, 0);
    cat.axis = -1;
    graft_shape out;
    uint8_t *got = run(&cat, 1, in, 3, &out);
    ck_assert_ptr_nonnull(got);
    ck_assert(out.ndim == 2 && out.dim[0] == 2 && out.dim[1] == 6);
    ck_assert_int_eq(memcmp(got, want, sizeof want), 0);
    free(got);
    size_t n;
    got = run_sink(&cat, 1, in, 3, &n);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(n, sizeof want);
    ck_assert_int_eq(memcmp(got, want, sizeof want), 0);
    free(got);
}
END_TEST

/* ---- cast --------------------------------------------------------------- */

static uint32_t f32bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}
static float f32of(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* Cast n elements of `from` at src to `to`; returns a buffer or NULL. */
static uint8_t *cast(const void *src, graft_dtype from, graft_dtype to, int64_t n)
{
    graft_shape out;
    graft_tview in = {shape_of(from, 1, &n), src};
    graft_op op = mk(GRAFT_OP_CAST, NULL, 0);
    op.dtype = to;
    return run(&op, 1, &in, 1, &out);
}

static uint16_t f32_to_16(uint32_t bits, graft_dtype to)
{
    uint16_t h;
    uint8_t *p = cast(&bits, GRAFT_FLOAT32, to, 1);
    ck_assert_ptr_nonnull(p);
    memcpy(&h, p, 2);
    free(p);
    return h;
}

static uint16_t f64_to_16(double x, graft_dtype to)
{
    uint16_t h;
    uint8_t *p = cast(&x, GRAFT_FLOAT64, to, 1);
    ck_assert_ptr_nonnull(p);
    memcpy(&h, p, 2);
    free(p);
    return h;
}

static uint32_t f64_to_32(double x)
{
    uint32_t r;
    uint8_t *p = cast(&x, GRAFT_FLOAT64, GRAFT_FLOAT32, 1);
    ck_assert_ptr_nonnull(p);
    memcpy(&r, p, 4);
    free(p);
    return r;
}

START_TEST(cast_float16_rounds_to_nearest_even)
{
    const graft_dtype H = GRAFT_FLOAT16;
    ck_assert_uint_eq(f32_to_16(f32bits(1.0f), H), 0x3c00);
    ck_assert_uint_eq(f32_to_16(f32bits(-2.0f), H), 0xc000);
    ck_assert_uint_eq(f32_to_16(f32bits(-0.0f), H), 0x8000);
    ck_assert_uint_eq(f32_to_16(f32bits(65504.0f), H), 0x7bff);
    /* halfway cases go to the even neighbour */
    ck_assert_uint_eq(f32_to_16(f32bits(1.0f + 0x1p-11f), H), 0x3c00);
    ck_assert_uint_eq(f32_to_16(f32bits(1.0f + 3 * 0x1p-11f), H), 0x3c02);
    ck_assert_uint_eq(f32_to_16(f32bits(1.0f + 0x1p-11f + 0x1p-20f), H), 0x3c01);
    /* overflow: 65520 is halfway to 65536 and rounds up to Inf */
    ck_assert_uint_eq(f32_to_16(f32bits(65519.0f), H), 0x7bff);
    ck_assert_uint_eq(f32_to_16(f32bits(65520.0f), H), 0x7c00);
    ck_assert_uint_eq(f32_to_16(f32bits(1e10f), H), 0x7c00);
    ck_assert_uint_eq(f32_to_16(f32bits(-1e10f), H), 0xfc00);
    ck_assert_uint_eq(f32_to_16(0x7f800000, H), 0x7c00);
    ck_assert_uint_eq(f32_to_16(0xff800000, H), 0xfc00);
    /* subnormals */
    ck_assert_uint_eq(f32_to_16(f32bits(0x1p-24f), H), 0x0001);
    ck_assert_uint_eq(f32_to_16(f32bits(0x1p-25f), H), 0x0000);     /* tie -> even (0) */
    ck_assert_uint_eq(f32_to_16(f32bits(3 * 0x1p-25f), H), 0x0002); /* tie -> even (2) */
    ck_assert_uint_eq(f32_to_16(f32bits(0x1p-25f + 0x1p-40f), H), 0x0001);
    ck_assert_uint_eq(f32_to_16(f32bits(1023 * 0x1p-24f), H), 0x03ff);
    ck_assert_uint_eq(f32_to_16(f32bits(0x1p-14f), H), 0x0400);
    ck_assert_uint_eq(f32_to_16(f32bits(0x1p-14f - 0x1p-25f), H), 0x0400); /* rounds up to normal */
    ck_assert_uint_eq(f32_to_16(f32bits(1e-30f), H), 0x0000);
    /* NaN stays NaN whatever the payload, sign kept */
    uint32_t nans[] = {0x7fc00000, 0x7f800001, 0xffc00001, 0x7fbfffff};
    for (int i = 0; i < 4; i++) {
        uint16_t h = f32_to_16(nans[i], H);
        ck_assert_uint_eq(h & 0x7c00, 0x7c00);
        ck_assert_uint_ne(h & 0x3ff, 0);
        ck_assert_uint_eq(h >> 15, nans[i] >> 31);
    }
    /* from float64 the rounding is done once: this value is just above a
     * float16 halfway point but would round onto it as float32 first */
    ck_assert_uint_eq(f64_to_16(1.0 + 0x1p-11 + 0x1p-40, H), 0x3c01);
    ck_assert_uint_eq(f64_to_16(1.0 + 0x1p-11, H), 0x3c00);
    ck_assert_uint_eq(f64_to_16(0x1p-1074, H), 0x0000);
    ck_assert_uint_eq(f64_to_16(1e300, H), 0x7c00);
}
END_TEST

START_TEST(cast_float16_widening_is_exact_for_all_patterns)
{
    /* every float16 -> float32 -> float16 round trip; values checked too */
    uint16_t *h = malloc(65536 * 2);
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    uint32_t *f = (uint32_t *)cast(h, GRAFT_FLOAT16, GRAFT_FLOAT32, 65536);
    ck_assert_ptr_nonnull(f);
    ck_assert_float_eq(f32of(f[0x0001]), 0x1p-24f);
    ck_assert_float_eq(f32of(f[0x03ff]), 1023 * 0x1p-24f);
    ck_assert_float_eq(f32of(f[0x3c00]), 1.0f);
    ck_assert_float_eq(f32of(f[0x7bff]), 65504.0f);
    ck_assert_float_eq(f32of(f[0xc000]), -2.0f);
    ck_assert(isinf(f32of(f[0x7c00])) && f32of(f[0x7c00]) > 0);
    ck_assert(isnan(f32of(f[0x7e00])) && isnan(f32of(f[0x7c01])));
    uint16_t *back = (uint16_t *)cast(f, GRAFT_FLOAT32, GRAFT_FLOAT16, 65536);
    uint8_t *d = cast(h, GRAFT_FLOAT16, GRAFT_FLOAT64, 65536);
    uint16_t *back64 = (uint16_t *)cast(d, GRAFT_FLOAT64, GRAFT_FLOAT16, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        bool nan = (i & 0x7c00) == 0x7c00 && (i & 0x3ff);
        if (nan) {
            ck_assert(isnan(f32of(f[i])));
            ck_assert((back[i] & 0x7c00) == 0x7c00 && (back[i] & 0x3ff));
        } else {
            ck_assert_uint_eq(back[i], i);
            ck_assert_uint_eq(back64[i], i);
        }
    }
    free(back64);
    free(d);
    free(back);
    free(f);
    free(h);
}
END_TEST

#ifdef __FLT16_MAX__
START_TEST(cast_float16_agrees_with_the_compiler_on_random_floats)
{
    /* libgcc's __truncsfhf2/__truncdfhf2 are an independent RNE reference */
    enum { N = 1 << 16 };
    uint32_t *f = malloc(N * 4);
    uint64_t *dbits = malloc(N * 8);
    for (int i = 0; i < N; i++) {
        f[i] = (uint32_t)rnd();
        if (i % 2) f[i] = (f[i] & 0x87ffffffu) | 0x30000000u; /* near float16's range */
        double x = ldexp((double)(rnd() >> 11) / 0x1p53, (int)(rnd() % 60) - 40);
        if (i % 3 == 0) x = -x;
        memcpy(&dbits[i], &x, 8);
    }
    uint16_t *h = (uint16_t *)cast(f, GRAFT_FLOAT32, GRAFT_FLOAT16, N);
    uint16_t *h64 = (uint16_t *)cast(dbits, GRAFT_FLOAT64, GRAFT_FLOAT16, N);
    for (int i = 0; i < N; i++) {
        float x = f32of(f[i]);
        double y;
        memcpy(&y, &dbits[i], 8);
        _Float16 r = (_Float16)x, r64 = (_Float16)y;
        uint16_t rb, rb64;
        memcpy(&rb, &r, 2);
        memcpy(&rb64, &r64, 2);
        if (isnan(x))
            ck_assert((h[i] & 0x7c00) == 0x7c00 && (h[i] & 0x3ff));
        else
            ck_assert_msg(h[i] == rb, "%a: %04x vs %04x", (double)x, h[i], rb);
        ck_assert_msg(h64[i] == rb64, "%a: %04x vs %04x", y, h64[i], rb64);
    }
    free(h64);
    free(h);
    free(dbits);
    free(f);
}
END_TEST
#endif

/* The F16C kernels (float32 / bfloat16 -> float16) against the portable
 * ones: every bfloat16, float32 at and around every float16 rounding
 * boundary plus a sweep of all exponents, signalling and quiet NaNs, at odd
 * lengths and every byte misalignment of source and destination. */
static void cast_both_ways(const uint8_t *src, graft_dtype from, size_t n, size_t sh, size_t dh)
{
    uint8_t *a = malloc(2 * n + 8), *b = malloc(2 * n + 8);
    graft_xout oa = {.mem = a + dh, .ctx = ctx}, ob = {.mem = b + dh, .ctx = ctx};
    memset(a, 0x5a, 2 * n + 8);
    memset(b, 0x5a, 2 * n + 8);
    ck_assert_int_eq(graft_xform__cast(&oa, src + sh, from, GRAFT_FLOAT16, n, ctx), 0);
    bool had = graft_xform__cast_use_hw(false);
    ck_assert_int_eq(graft_xform__cast(&ob, src + sh, from, GRAFT_FLOAT16, n, ctx), 0);
    graft_xform__cast_use_hw(had);
    for (size_t i = 0; i < 2 * n + 8; i++)
        ck_assert_msg(a[i] == b[i], "%s -> float16: byte %zu of %zu (shifts %zu, %zu) differs",
                      from == GRAFT_BFLOAT16 ? "bfloat16" : "float32", i, 2 * n, sh, dh);
    free(a);
    free(b);
}

START_TEST(cast_float16_hardware_path_equals_portable)
{
    size_t n = 65536;
    uint8_t *bf = malloc(2 * n + 8);
    for (size_t i = 0; i < n; i++) {
        bf[2 * i + 0] = (uint8_t)i; /* element i at shift 0 */
        bf[2 * i + 1] = (uint8_t)(i >> 8);
    }
    cast_both_ways(bf, GRAFT_BFLOAT16, n, 0, 0);
    for (size_t sh = 1; sh < 4; sh++)
        for (size_t dh = 0; dh < 4; dh++) cast_both_ways(bf, GRAFT_BFLOAT16, n - 1 - sh, sh, dh);
    free(bf);

    /* float32: each float16 h's neighbourhood in float32 (h itself, the
     * midpoint to h + 1 ulp, and one float32 ulp either side of both) and
     * every 4099th bit pattern */
    size_t m = 65536 * 6 + (1u << 20) + 64;
    uint8_t *f = malloc(4 * m + 8);
    size_t k = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1f, man = h & 0x3ff, w;
        if (e == 31)
            w = sign | 0x7f800000u | man << 13; /* Inf and NaN (signalling ones too) */
        else if (e == 0) { /* a subnormal: man * 2^-24 */
            float v = (float)man * 0x1.0p-24f;
            memcpy(&w, &v, 4);
            w |= sign;
        } else
            w = sign | (e + 112) << 23 | man << 13;
        uint32_t mid = w + (1u << 12);
        uint32_t put[6] = {w, w + 1, w - 1, mid, mid + 1, mid - 1};
        for (int j = 0; j < 6; j++, k++) memcpy(f + 4 * k, &put[j], 4);
    }
    for (uint64_t x = 0; k < m; x += 4099, k++) {
        uint32_t w = (uint32_t)(x * 1048573u);
        memcpy(f + 4 * k, &w, 4);
    }
    cast_both_ways(f, GRAFT_FLOAT32, m, 0, 0);
    for (size_t sh = 1; sh < 4; sh++)
        for (size_t dh = 1; dh < 4; dh++) cast_both_ways(f, GRAFT_FLOAT32, 1000 + sh + dh, sh, dh);
    free(f);
}
END_TEST

START_TEST(cast_bfloat16_matches_known_bits)
{
    const graft_dtype B = GRAFT_BFLOAT16;
    ck_assert_uint_eq(f32_to_16(f32bits(1.0f), B), 0x3f80);
    ck_assert_uint_eq(f32_to_16(0x40490fdb, B), 0x4049); /* pi */
    ck_assert_uint_eq(f32_to_16(0x3f808000, B), 0x3f80); /* tie, even below */
    ck_assert_uint_eq(f32_to_16(0x3f818000, B), 0x3f82); /* tie, even above */
    ck_assert_uint_eq(f32_to_16(0x3f808001, B), 0x3f81);
    ck_assert_uint_eq(f32_to_16(0x7f7fffff, B), 0x7f80); /* FLT_MAX overflows */
    ck_assert_uint_eq(f32_to_16(0xff800000, B), 0xff80);
    ck_assert_uint_eq(f32_to_16(0x00010000, B), 0x0001); /* subnormal */
    ck_assert_uint_eq(f32_to_16(0x00008000, B), 0x0000);
    ck_assert_uint_eq(f32_to_16(0x00018000, B), 0x0002);
    ck_assert_uint_eq(f32_to_16(0x7fc00000, B), 0x7fc0);
    uint16_t h = f32_to_16(0x7f800001, B); /* signalling NaN with a low payload */
    ck_assert((h & 0x7f80) == 0x7f80 && (h & 0x7f));
    /* torch's formula for non-NaN values, on random patterns */
    enum { N = 1 << 16 };
    uint32_t *f = malloc(N * 4);
    for (int i = 0; i < N; i++)
        f[i] = (uint32_t)rnd();
    uint16_t *r = (uint16_t *)cast(f, GRAFT_FLOAT32, B, N);
    for (int i = 0; i < N; i++) {
        if (isnan(f32of(f[i]))) continue;
        uint32_t want = (f[i] + 0x7fff + ((f[i] >> 16) & 1)) >> 16;
        ck_assert_uint_eq(r[i], want);
    }
    free(r);
    free(f);
    /* every bfloat16 survives float32, float64 and back */
    uint16_t *all = malloc(65536 * 2);
    for (uint32_t i = 0; i < 65536; i++)
        all[i] = (uint16_t)i;
    uint32_t *w = (uint32_t *)cast(all, B, GRAFT_FLOAT32, 65536);
    uint8_t *d = cast(all, B, GRAFT_FLOAT64, 65536);
    uint16_t *back = (uint16_t *)cast(d, GRAFT_FLOAT64, B, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        ck_assert_uint_eq(w[i], i << 16);
        if (!isnan(f32of(i << 16))) ck_assert_uint_eq(back[i], i);
    }
    /* float16 <-> bfloat16 */
    uint16_t one = 0x3c00, big = 0x7bff;
    uint16_t *p = (uint16_t *)cast(&one, GRAFT_FLOAT16, B, 1);
    ck_assert_uint_eq(*p, 0x3f80);
    free(p);
    p = (uint16_t *)cast(&big, GRAFT_FLOAT16, B, 1);
    ck_assert_uint_eq(*p, 0x4780); /* 65504 rounds to 65536 in bfloat16 */
    free(p);
    free(back);
    free(d);
    free(w);
    free(all);
}
END_TEST

START_TEST(cast_float32_from_float64_rounds_once)
{
    ck_assert_uint_eq(f64_to_32(1.0 + 0x1p-24), 0x3f800000);
    ck_assert_uint_eq(f64_to_32(1.0 + 0x1p-24 + 0x1p-50), 0x3f800001);
    ck_assert_uint_eq(f64_to_32(1.0 + 3 * 0x1p-24), 0x3f800002);
    ck_assert_uint_eq(f64_to_32(1e39), 0x7f800000);
    ck_assert_uint_eq(f64_to_32(-1e39), 0xff800000);
    ck_assert_uint_eq(f64_to_32(0x1p-149), 0x00000001);
    ck_assert_uint_eq(f64_to_32(0x1p-150), 0x00000000);
    ck_assert_uint_eq(f64_to_32(3 * 0x1p-150), 0x00000002);
    ck_assert_uint_eq(f64_to_32(0x1p-126 - 0x1p-160), 0x00800000);
    ck_assert_uint_eq(f64_to_32(-0.0), 0x80000000);
    ck_assert(isnan(f32of(f64_to_32(NAN))));
    /* random doubles agree with the hardware conversion (default RNE) */
    for (int i = 0; i < 20000; i++) {
        double x = ldexp((double)(rnd() >> 11) / 0x1p53, (int)(rnd() % 300) - 150);
        ck_assert_uint_eq(f64_to_32(x), f32bits((float)x));
    }
    /* float32 -> float64 -> float32 */
    enum { N = 1 << 14 };
    uint32_t *f = malloc(N * 4);
    for (int i = 0; i < N; i++)
        f[i] = (uint32_t)rnd();
    uint8_t *d = cast(f, GRAFT_FLOAT32, GRAFT_FLOAT64, N);
    uint32_t *back = (uint32_t *)cast(d, GRAFT_FLOAT64, GRAFT_FLOAT32, N);
    for (int i = 0; i < N; i++)
        if (!isnan(f32of(f[i]))) ck_assert_uint_eq(back[i], f[i]);
    free(back);
    free(d);
    free(f);
}
END_TEST

START_TEST(cast_integers_are_range_checked)
{
    int32_t a[] = {5, -128, 300};
    uint8_t *p = cast(a, GRAFT_INT32, GRAFT_INT8, 3);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(graft_ctx_status(ctx), GRAFT_ESHAPE);
    ck_assert_str_eq(graft_ctx_message(ctx), "m.yaml:7: cast: element 2: 300 does not fit in int8");
    p = cast(a, GRAFT_INT32, GRAFT_INT16, 3);
    ck_assert_ptr_nonnull(p);
    int16_t s16[3];
    memcpy(s16, p, 6);
    ck_assert(s16[0] == 5 && s16[1] == -128 && s16[2] == 300);
    free(p);

    int64_t neg = -1;
    ck_assert_ptr_null(cast(&neg, GRAFT_INT64, GRAFT_UINT64, 1));
    ck_assert_str_eq(graft_ctx_message(ctx),
                     "m.yaml:7: cast: element 0: -1 does not fit in uint64");
    uint64_t big = UINT64_MAX;
    ck_assert_ptr_null(cast(&big, GRAFT_UINT64, GRAFT_INT64, 1));
    ck_assert_str_eq(graft_ctx_message(ctx),
                     "m.yaml:7: cast: element 0: 18446744073709551615 does not fit in int64");
    p = cast(&big, GRAFT_UINT64, GRAFT_FLOAT64, 1);
    double dv;
    memcpy(&dv, p, 8);
    ck_assert(dv == 18446744073709551616.0);
    free(p);

    /* float -> int: integral and in range */
    float fl[] = {3.0f, -128.0f, 127.0f, -0.0f};
    p = cast(fl, GRAFT_FLOAT32, GRAFT_INT8, 4);
    ck_assert_ptr_nonnull(p);
    ck_assert(p[0] == 3 && (int8_t)p[1] == -128 && p[2] == 127 && p[3] == 0);
    free(p);
    float frac[] = {1.0f, 2.5f};
    ck_assert_ptr_null(cast(frac, GRAFT_FLOAT32, GRAFT_INT32, 2));
    ck_assert_str_eq(graft_ctx_message(ctx),
                     "m.yaml:7: cast: element 1: 2.5 is not an integer, int32 needs one");
    float over[] = {-129.0f};
    ck_assert_ptr_null(cast(over, GRAFT_FLOAT32, GRAFT_INT8, 1));
    ck_assert_str_eq(graft_ctx_message(ctx),
                     "m.yaml:7: cast: element 0: -129 does not fit in int8");
    double edge[] = {9223372036854775808.0};
    ck_assert_ptr_null(cast(edge, GRAFT_FLOAT64, GRAFT_INT64, 1));
    double edge2[] = {-9223372036854775808.0};
    p = cast(edge2, GRAFT_FLOAT64, GRAFT_INT64, 1);
    int64_t i64;
    memcpy(&i64, p, 8);
    ck_assert(i64 == INT64_MIN);
    free(p);
    float nan = NAN, inf = INFINITY;
    ck_assert_ptr_null(cast(&nan, GRAFT_FLOAT32, GRAFT_INT32, 1));
    ck_assert_ptr_null(cast(&inf, GRAFT_FLOAT32, GRAFT_UINT8, 1));
    ck_assert_int_eq(graft_ctx_status(ctx), GRAFT_ESHAPE);

    /* bool: 0/1 only, any non-zero byte reads as 1 */
    int32_t bits[] = {0, 1, 2};
    ck_assert_ptr_null(cast(bits, GRAFT_INT32, GRAFT_BOOL, 3));
    ck_assert_str_eq(graft_ctx_message(ctx), "m.yaml:7: cast: element 2: 2 does not fit in bool");
    p = cast(bits, GRAFT_INT32, GRAFT_BOOL, 2);
    ck_assert(p[0] == 0 && p[1] == 1);
    free(p);
    uint8_t bools[] = {0, 1, 7};
    float *fb = (float *)cast(bools, GRAFT_BOOL, GRAFT_FLOAT32, 3);
    ck_assert(fb[0] == 0.0f && fb[1] == 1.0f && fb[2] == 1.0f);
    uint8_t *bb = cast(fb, GRAFT_FLOAT32, GRAFT_BOOL, 3);
    ck_assert(bb[0] == 0 && bb[1] == 1 && bb[2] == 1);
    free(bb);
    free(fb);
    /* int -> float16 overflows to Inf; 2049 is a tie between 2048 and 2050 */
    int64_t ints[] = {100000, 2049, 2051, -7};
    uint16_t *h = (uint16_t *)cast(ints, GRAFT_INT64, GRAFT_FLOAT16, 4);
    ck_assert(h[0] == 0x7c00 && h[1] == 0x6800 && h[2] == 0x6802 && h[3] == 0xc700);
    free(h);
    /* int -> float32 rounds once to nearest even (2^24 + 1 is a tie) */
    int64_t wide[] = {16777217, 16777219, INT64_MAX, -16777217, 0};
    uint32_t *w32 = (uint32_t *)cast(wide, GRAFT_INT64, GRAFT_FLOAT32, 5);
    ck_assert_uint_eq(w32[0], 0x4b800000);
    ck_assert_uint_eq(w32[1], 0x4b800002);
    ck_assert_uint_eq(w32[2], 0x5f000000);
    ck_assert_uint_eq(w32[3], 0xcb800000);
    ck_assert_uint_eq(w32[4], 0);
    free(w32);
    uint64_t umax = UINT64_MAX;
    w32 = (uint32_t *)cast(&umax, GRAFT_UINT64, GRAFT_FLOAT32, 1);
    ck_assert_uint_eq(w32[0], 0x5f800000);
    free(w32);
    /* uint8 <-> int8 both ways */
    uint8_t u[] = {0, 127, 128};
    ck_assert_ptr_null(cast(u, GRAFT_UINT8, GRAFT_INT8, 3));
    ck_assert_str_eq(graft_ctx_message(ctx), "m.yaml:7: cast: element 2: 128 does not fit in int8");
}
END_TEST

START_TEST(cast_complex_parts_and_refusals)
{
    float c64[] = {1.5f, -2.0f, 0x1p-149f, 3.0f};
    double *c128 = (double *)cast(c64, GRAFT_COMPLEX64, GRAFT_COMPLEX128, 2);
    ck_assert_ptr_nonnull(c128);
    ck_assert(c128[0] == 1.5 && c128[1] == -2.0 && c128[2] == 0x1p-149 && c128[3] == 3.0);
    float *back = (float *)cast(c128, GRAFT_COMPLEX128, GRAFT_COMPLEX64, 2);
    ck_assert_int_eq(memcmp(back, c64, sizeof c64), 0);
    free(back);
    free(c128);
    ck_assert_ptr_null(cast(c64, GRAFT_COMPLEX64, GRAFT_FLOAT32, 2));
    ck_assert_int_eq(graft_ctx_status(ctx), GRAFT_ESHAPE);
    ck_assert_str_eq(graft_ctx_message(ctx), "m.yaml:7: cast: cannot cast complex64 to float32");
    ck_assert_ptr_null(cast(c64, GRAFT_FLOAT32, GRAFT_STRING, 2));
    ck_assert_int_eq(graft_ctx_status(ctx), GRAFT_ERULE);
    /* same dtype is a copy */
    float *same = (float *)cast(c64, GRAFT_FLOAT32, GRAFT_FLOAT32, 4);
    ck_assert_int_eq(memcmp(same, c64, sizeof c64), 0);
    free(same);
}
END_TEST

/* ---- infer errors -------------------------------------------------------- */

static void expect_error(const graft_op *ops, size_t nops, const graft_shape *in, size_t nin,
                         int code, const char *msg)
{
    graft_shape out;
    graft_ctx_clear(ctx);
    ck_assert_int_eq(graft_ops_infer(ops, nops, in, nin, &out, ctx), code);
    ck_assert_str_eq(graft_ctx_message(ctx), msg);
}

START_TEST(infer_errors_name_the_rule_line_and_numbers)
{
    int64_t d2[] = {4, 4}, d1[] = {10};
    graft_shape s2 = shape_of(GRAFT_FLOAT32, 2, d2), s1 = shape_of(GRAFT_FLOAT32, 1, d1);
    int64_t p4[] = {2, 3, 1, 0}, p2[] = {1, 1}, p3[] = {0, 5};
    graft_op op = mk(GRAFT_OP_PERMUTE, p4, 4);
    op.file = "rules/m.yaml";
    op.line = 12;
    expect_error(&op, 1, &s2, 1, GRAFT_ESHAPE,
                 "rules/m.yaml:12: permute: source has rank 2, the op needs 4");
    op = mk(GRAFT_OP_PERMUTE, p2, 2);
    expect_error(&op, 1, &s2, 1, GRAFT_ERULE, "m.yaml:7: permute: axis 1 repeated");
    op = mk(GRAFT_OP_PERMUTE, p3, 2);
    expect_error(&op, 1, &s2, 1, GRAFT_ERULE, "m.yaml:7: permute: axis 5 out of range for rank 2");

    int64_t r1[] = {3, 5}, r2[] = {-1, -1}, r3[] = {3, -1}, r4[] = {-3, 2};
    op = mk(GRAFT_OP_RESHAPE, r1, 2);
    expect_error(&op, 1, &s2, 1, GRAFT_ESHAPE,
                 "m.yaml:7: reshape: [3, 5] has 15 elements, the source [4, 4] has 16");
    op = mk(GRAFT_OP_RESHAPE, r2, 2);
    expect_error(&op, 1, &s2, 1, GRAFT_ERULE, "m.yaml:7: reshape: more than one -1");
    op = mk(GRAFT_OP_RESHAPE, r3, 2);
    expect_error(&op, 1, &s2, 1, GRAFT_ESHAPE,
                 "m.yaml:7: reshape: [3, -1] cannot hold the 16 elements of the source [4, 4]");
    op = mk(GRAFT_OP_RESHAPE, r4, 2);
    expect_error(&op, 1, &s2, 1, GRAFT_ERULE, "m.yaml:7: reshape: dimension -3 is negative");

    int64_t o3[] = {1, 0, 2}, o2[] = {0, 0};
    op = mk(GRAFT_OP_CHUNKS, o3, 3);
    expect_error(&op, 1, &s1, 1, GRAFT_ESHAPE,
                 "m.yaml:7: chunks: axis 0 has 10 rows, not divisible into 3 chunks");
    op.axis = 1;
    expect_error(&op, 1, &s1, 1, GRAFT_ESHAPE, "m.yaml:7: chunks: axis 1 out of range for rank 1");
    op = mk(GRAFT_OP_CHUNKS, o2, 2);
    expect_error(&op, 1, &s1, 1, GRAFT_ERULE, "m.yaml:7: chunks: order entry 0 repeated");

    op = mk(GRAFT_OP_TAKE, NULL, 0);
    op.count = 3;
    op.index = 3;
    expect_error(&op, 1, &s1, 1, GRAFT_ERULE, "m.yaml:7: take: index 3 not in 0..2");
    op.index = 1;
    expect_error(&op, 1, &s1, 1, GRAFT_ESHAPE,
                 "m.yaml:7: take: axis 0 has 10 rows, not divisible into 3 chunks");

    graft_shape two[2] = {s2, s2};
    op = mk(GRAFT_OP_TRANSPOSE, NULL, 0);
    expect_error(&op, 1, two, 2, GRAFT_ERULE, "m.yaml:7: transpose: 2 sources need a concat first");
    graft_op chain[2] = {mk(GRAFT_OP_TRANSPOSE, NULL, 0), mk(GRAFT_OP_CONCAT, NULL, 0)};
    expect_error(chain, 2, &s2, 1, GRAFT_ERULE, "m.yaml:7: concat: must be the first op");
    op = mk(GRAFT_OP_CONCAT, NULL, 0);
    two[1].dtype = GRAFT_FLOAT16;
    expect_error(&op, 1, two, 2, GRAFT_ESHAPE,
                 "m.yaml:7: concat: source 1 is float16, source 0 is float32");
    two[1] = s1;
    expect_error(
        &op, 1, two, 2, GRAFT_ESHAPE,
        "m.yaml:7: concat: source 1 has shape [10], source 0 [4, 4]: only axis 0 may differ");
    op.file = NULL;
    op.axis = 2;
    expect_error(&op, 1, &s2, 1, GRAFT_ESHAPE, "concat: axis 2 out of range for rank 2");

    /* a chain stops at the first bad op; the prefix before it is fine */
    int64_t ok[] = {2, 8}, bad[] = {1, 0, 2};
    graft_op c3[3] = {mk(GRAFT_OP_RESHAPE, ok, 2), mk(GRAFT_OP_TRANSPOSE, NULL, 0),
                      mk(GRAFT_OP_PERMUTE, bad, 3)};
    c3[2].line = 9;
    expect_error(c3, 3, &s2, 1, GRAFT_ESHAPE,
                 "m.yaml:9: permute: source has rank 2, the op needs 3");
    graft_shape mid;
    ck_assert_int_eq(graft_ops_infer_prefix(c3, 3, 2, &s2, 1, &mid, ctx), 0);
    ck_assert(mid.ndim == 2 && mid.dim[0] == 8 && mid.dim[1] == 2);
    ck_assert_int_eq(graft_ops_infer_prefix(c3, 3, 0, &s2, 1, &mid, ctx), 0);
    ck_assert(mid.dim[0] == 4);

    /* string tensors cannot move */
    graft_shape str = shape_of(GRAFT_STRING, 1, d1);
    op = mk(GRAFT_OP_TRANSPOSE, NULL, 0);
    expect_error(&op, 1, &str, 1, GRAFT_ESHAPE,
                 "m.yaml:7: transpose: string elements cannot be transformed");
    /* reshape whose product overflows */
    int64_t huge[] = {INT64_MAX, 4};
    op = mk(GRAFT_OP_RESHAPE, huge, 2);
    graft_shape out;
    ck_assert_int_eq(graft_ops_infer(&op, 1, &s2, 1, &out, ctx), GRAFT_ESHAPE);
}
END_TEST

/* ---- inversion ----------------------------------------------------------- */

/* Run chain, then its inverse, and compare with the input. */
static void check_round_trip(const graft_op *ops, size_t nops, const graft_tview *in)
{
    graft_shape out, back;
    graft_op *inv = NULL;
    size_t ninv = 0;
    uint8_t *fwd = run(ops, nops, in, 1, &out);
    ck_assert_msg(fwd != NULL, "%s", graft_ctx_message(ctx));
    ck_assert_msg(graft_ops_invert(ops, nops, &in->shape, 1, 0, &inv, &ninv, ctx) == 0, "%s",
                  graft_ctx_message(ctx));
    ck_assert_uint_eq(ninv, nops);
    graft_tview mid = {out, fwd};
    uint8_t *rev = run(inv, ninv, &mid, 1, &back);
    ck_assert_msg(rev != NULL, "%s", graft_ctx_message(ctx));
    ck_assert_int_eq(back.dtype, in->shape.dtype);
    ck_assert_uint_eq(back.ndim, in->shape.ndim);
    for (uint32_t i = 0; i < back.ndim; i++)
        ck_assert_int_eq(back.dim[i], in->shape.dim[i]);
    ck_assert_int_eq(memcmp(rev, in->data, nbytes(&back)), 0);
    free(rev);
    free(fwd);
    graft_ops_free(inv, ninv);
}

static graft_op at(graft_op_kind kind)
{
    graft_op op = {.kind = kind, .file = "m.yaml", .line = 9};
    return op;
}

static void expect_no_reverse(const graft_op *op, const graft_shape *in, size_t nin, const char *msg)
{
    graft_op *inv = NULL;
    size_t ninv = 0;
    graft_ctx_clear(ctx);
    ck_assert_int_eq(graft_ops_invert(op, 1, in, nin, 0, &inv, &ninv, ctx), GRAFT_ERULE);
    ck_assert_str_eq(graft_ctx_message(ctx), msg);
    ck_assert_ptr_null(inv);
}

START_TEST(new_ops_check_their_inputs_and_reverse)
{
    graft_shape w = {GRAFT_FLOAT32, 4, {8, 3, 2, 2}}, v = {GRAFT_FLOAT32, 1, {8}},
                v4 = {GRAFT_FLOAT32, 1, {4}}, i = {GRAFT_INT32, 1, {8}}, out;
    graft_shape bn[5] = {w, v, v, v, v};
    graft_op op = at(GRAFT_OP_FOLD_BN);
    ck_assert_int_eq(graft_ops_infer(&op, 1, bn, 5, &out, ctx), 0);
    ck_assert(out.ndim == 4 && out.dim[0] == 8 && out.dtype == GRAFT_FLOAT32);
    expect_error(&op, 1, bn, 4, GRAFT_ERULE,
                 "m.yaml:9: fold_bn: 4 sources; part weight needs [W, gamma, beta, mean, var]");
    bn[3] = v4;
    expect_error(&op, 1, bn, 5, GRAFT_ESHAPE,
                 "m.yaml:9: fold_bn: source 3 has shape [4], expected [8] (the first axis of "
                 "source 0)");
    bn[3] = i;
    expect_error(&op, 1, bn, 5, GRAFT_ESHAPE,
                 "m.yaml:9: fold_bn: source 3 is int32: only float16, bfloat16, float32 and "
                 "float64");
    op.part = GRAFT_BN_BIAS;
    graft_shape b4[4] = {v, v, v, v};
    ck_assert_int_eq(graft_ops_infer(&op, 1, b4, 4, &out, ctx), 0);
    ck_assert(out.ndim == 1 && out.dim[0] == 8);
    expect_no_reverse(&op, b4, 4, "m.yaml:9: fold_bn: has no reverse");

    op = at(GRAFT_OP_SUM);
    graft_shape two[2] = {w, v};
    expect_error(&op, 1, two, 2, GRAFT_ESHAPE,
                 "m.yaml:9: sum: source 1 has shape [8], source 0 [8, 3, 2, 2]");
    two[1] = i;
    expect_error(&op, 1, two, 2, GRAFT_ESHAPE, "m.yaml:9: sum: source 1 is int32, source 0 is float32");
    expect_no_reverse(&op, &w, 1, "m.yaml:9: sum: has no reverse");

    op = at(GRAFT_OP_SCALE);
    expect_error(&op, 1, &i, 1, GRAFT_ESHAPE,
                 "m.yaml:9: scale: int32 elements: only float16, bfloat16, float32 and float64");
    op.mul = 0;
    expect_no_reverse(&op, &w, 1, "m.yaml:9: scale: mul 0 has no reverse");

    op = at(GRAFT_OP_STACK);
    op.axis = 5;
    graft_shape ww[2] = {w, w};
    expect_error(&op, 1, ww, 2, GRAFT_ESHAPE, "m.yaml:9: stack: axis 5 out of range for rank 5");
    op.axis = -1;
    ck_assert_int_eq(graft_ops_infer(&op, 1, ww, 2, &out, ctx), 0);
    ck_assert(out.ndim == 5 && out.dim[4] == 2 && out.dim[0] == 8);

    op = at(GRAFT_OP_UNSTACK);
    op.index = 3;
    op.axis = 1;
    expect_error(&op, 1, &w, 1, GRAFT_ESHAPE, "m.yaml:9: unstack: index 3 outside axis 1 of 3 rows");

    op = at(GRAFT_OP_PAD);
    op.length = 4;
    expect_error(&op, 1, &v, 1, GRAFT_ESHAPE, "m.yaml:9: pad: axis 0 has 8 rows, more than to: 4");
    op.length = 9;
    op.value = 0.5;
    expect_error(&op, 1, &i, 1, GRAFT_ESHAPE,
                 "m.yaml:9: pad: value: element 0: 0.5 is not an integer, int32 needs one");

    op = at(GRAFT_OP_SLICE);
    op.start = 6;
    op.length = 3;
    expect_error(&op, 1, &v, 1, GRAFT_ESHAPE, "m.yaml:9: slice: rows 6+3 outside axis 0 of 8 rows");
    op.length = 2;
    expect_no_reverse(&op, &v, 1,
                      "m.yaml:9: slice: a slice from row 6 has no reverse (pad adds rows at the end)");
}
END_TEST

START_TEST(invert_undoes_every_op_on_random_data)
{
    size_t w = esizes[_i];
    graft_dtype dt = dtype_of_size[_i];
    for (uint32_t rank = 1; rank <= 6; rank++) {
        int64_t d[8], axes[8], order[8], flat[1] = {-1};
        random_dims(rank, d, 20000);
        uint32_t axis = (uint32_t)(rnd() % rank);
        d[axis] *= 3;
        graft_shape s = shape_of(dt, rank, d);
        uint8_t *src = random_bytes(nbytes(&s));
        graft_tview in = {s, src};
        (void)w;

        random_perm(rank, axes);
        graft_op op = mk(GRAFT_OP_PERMUTE, axes, rank);
        check_round_trip(&op, 1, &in);
        op = mk(GRAFT_OP_TRANSPOSE, NULL, 0);
        check_round_trip(&op, 1, &in);
        op = mk(GRAFT_OP_RESHAPE, flat, 1);
        check_round_trip(&op, 1, &in);
        random_perm(3, order);
        op = mk(GRAFT_OP_CHUNKS, order, 3);
        op.axis = (int32_t)axis;
        check_round_trip(&op, 1, &in);

        /* permute, chunks, reshape, transpose in one chain */
        graft_op chain[4] = {mk(GRAFT_OP_PERMUTE, axes, rank), mk(GRAFT_OP_CHUNKS, order, 3),
                             mk(GRAFT_OP_RESHAPE, flat, 1), mk(GRAFT_OP_TRANSPOSE, NULL, 0)};
        uint32_t moved = 0;
        while (axes[moved] != axis)
            moved++;
        chain[1].axis = (int32_t)moved;
        check_round_trip(chain, 4, &in);
        free(src);
    }
}
END_TEST

START_TEST(invert_cast_chains_round_trip_exactly)
{
    enum { N = 999 };
    float f[N];
    int16_t i16[N];
    for (int i = 0; i < N; i++) {
        f[i] = (float)((int)(rnd() % 4001) - 2000) / 64.0f; /* exact in float16 */
        i16[i] = (int16_t)rnd();
    }
    int64_t d[] = {27, 37}, axes[] = {1, 0};
    graft_tview in = {shape_of(GRAFT_FLOAT32, 2, d), (const uint8_t *)f};
    graft_op chain[3] = {mk(GRAFT_OP_CAST, NULL, 0), mk(GRAFT_OP_PERMUTE, axes, 2),
                         mk(GRAFT_OP_CAST, NULL, 0)};
    chain[0].dtype = GRAFT_FLOAT64;
    chain[2].dtype = GRAFT_FLOAT32;
    check_round_trip(chain, 3, &in);
    chain[2].dtype = GRAFT_FLOAT16; /* these values are exact in float16 */
    check_round_trip(chain, 3, &in);
    graft_tview in2 = {shape_of(GRAFT_INT16, 2, d), (const uint8_t *)i16};
    chain[0].dtype = GRAFT_INT32;
    chain[2].dtype = GRAFT_FLOAT32;
    check_round_trip(chain, 3, &in2);
}
END_TEST

START_TEST(flatten_reorder_matches_reference_and_inverts)
{
    /* The rules contract example, scaled down: a dense layer's [O, C*H*W]
     * kernel from NCHW flattening to NHWC flattening and [HWC, O]. */
    enum { O = 16, C = 5, H = 3, W = 7 };
    int64_t d[] = {O, C * H * W}, r1[] = {O, C, H, W}, perm[] = {2, 3, 1, 0}, r2[] = {-1, O};
    float *src = malloc(sizeof(float) * O * C * H * W);
    for (int i = 0; i < O * C * H * W; i++)
        src[i] = (float)i + 0.25f;
    graft_tview in = {shape_of(GRAFT_FLOAT32, 2, d), (const uint8_t *)src};
    graft_op chain[3] = {mk(GRAFT_OP_RESHAPE, r1, 4), mk(GRAFT_OP_PERMUTE, perm, 4),
                         mk(GRAFT_OP_RESHAPE, r2, 2)};
    graft_shape out;
    float *got = (float *)run(chain, 3, &in, 1, &out);
    ck_assert_ptr_nonnull(got);
    ck_assert(out.ndim == 2 && out.dim[0] == H * W * C && out.dim[1] == O);
    for (int o = 0; o < O; o++)
        for (int c = 0; c < C; c++)
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++)
                    ck_assert(got[((h * W + w) * C + c) * O + o] ==
                              src[o * C * H * W + (c * H + h) * W + w]);
    free(got);
    check_round_trip(chain, 3, &in);
    /* through a sink the bytes are the same */
    size_t n;
    uint8_t *viasink = run_sink(chain, 3, &in, 1, &n);
    got = (float *)run(chain, 3, &in, 1, &out);
    ck_assert_uint_eq(n, sizeof(float) * O * C * H * W);
    ck_assert_int_eq(memcmp(viasink, got, n), 0);
    free(viasink);
    free(got);
    free(src);
}
END_TEST

START_TEST(invert_take_and_concat_rebuild_the_sources)
{
    /* forward: qkv [3*4, 5] -> take i, transpose.  Reverse: each piece runs
     * the inverted ops before the concat, then the pieces are joined. */
    int64_t d[] = {12, 5};
    int32_t qkv[60];
    for (int i = 0; i < 60; i++)
        qkv[i] = i * 3 - 50;
    graft_tview in = {shape_of(GRAFT_INT32, 2, d), (const uint8_t *)qkv};
    graft_tview pieces[3];
    uint8_t *bufs[3];
    for (int k = 0; k < 3; k++) {
        graft_op fwd[2] = {mk(GRAFT_OP_TAKE, NULL, 0), mk(GRAFT_OP_TRANSPOSE, NULL, 0)};
        fwd[0].count = 3;
        fwd[0].index = k;
        graft_shape out;
        uint8_t *t = run(fwd, 2, &in, 1, &out);
        ck_assert_ptr_nonnull(t);
        graft_op *inv;
        size_t ninv;
        ck_assert_int_eq(graft_ops_invert(fwd, 2, &in.shape, 1, 0, &inv, &ninv, ctx), 0);
        ck_assert_uint_eq(ninv, 2);
        ck_assert_int_eq(inv[0].kind, GRAFT_OP_TRANSPOSE);
        ck_assert_int_eq(inv[1].kind, GRAFT_OP_CONCAT);
        ck_assert(inv[1].count == 3 && inv[1].index == k && inv[1].axis == 0);
        ck_assert_int_eq(inv[1].line, 7);
        graft_tview tv = {out, t};
        bufs[k] = run(inv, 1, &tv, 1, &pieces[k].shape);
        pieces[k].data = bufs[k];
        free(t);
        graft_ops_free(inv, ninv);
    }
    graft_op cat = mk(GRAFT_OP_CONCAT, NULL, 0);
    graft_shape out;
    uint8_t *whole = run(&cat, 1, pieces, 3, &out);
    ck_assert(out.dim[0] == 12 && out.dim[1] == 5);
    ck_assert_int_eq(memcmp(whole, qkv, sizeof qkv), 0);
    free(whole);
    for (int k = 0; k < 3; k++)
        free(bufs[k]);

    /* forward concat of unequal sources, then permute: the inverse for each
     * source ends with a take that cuts its rows back out */
    int64_t da[] = {2, 3}, db[] = {2, 1}, perm[] = {1, 0};
    int16_t a[] = {1, 2, 3, 4, 5, 6}, b[] = {7, 8};
    graft_tview srcs[2] = {{shape_of(GRAFT_INT16, 2, da), (const uint8_t *)a},
                           {shape_of(GRAFT_INT16, 2, db), (const uint8_t *)b}};
    graft_shape shp[2] = {srcs[0].shape, srcs[1].shape};
    graft_op fwd[2] = {mk(GRAFT_OP_CONCAT, NULL, 0), mk(GRAFT_OP_PERMUTE, perm, 2)};
    fwd[0].axis = 1;
    uint8_t *joined = run(fwd, 2, srcs, 2, &out);
    ck_assert_ptr_nonnull(joined);
    graft_tview jv = {out, joined};
    for (size_t which = 0; which < 2; which++) {
        graft_op *inv;
        size_t ninv;
        ck_assert_int_eq(graft_ops_invert(fwd, 2, shp, 2, which, &inv, &ninv, ctx), 0);
        ck_assert_int_eq(inv[1].kind, GRAFT_OP_TAKE);
        graft_shape bs;
        uint8_t *back = run(inv, ninv, &jv, 1, &bs);
        ck_assert_msg(back != NULL, "%s", graft_ctx_message(ctx));
        ck_assert_int_eq(bs.dim[1], shp[which].dim[1]);
        ck_assert_int_eq(memcmp(back, srcs[which].data, nbytes(&bs)), 0);
        free(back);
        graft_ops_free(inv, ninv);
    }
    /* equal sources invert to take {count, index} */
    graft_shape eq[2] = {shp[0], shp[0]};
    graft_op *inv;
    size_t ninv;
    ck_assert_int_eq(graft_ops_invert(fwd, 2, eq, 2, 1, &inv, &ninv, ctx), 0);
    ck_assert(inv[1].kind == GRAFT_OP_TAKE && inv[1].count == 2 && inv[1].index == 1 &&
              inv[1].n == 0);
    graft_ops_free(inv, ninv);
    ck_assert_int_eq(graft_ops_invert(fwd, 2, eq, 2, 2, &inv, &ninv, ctx), GRAFT_ERROR);
    free(joined);
}
END_TEST

/* ---- allocation failures ------------------------------------------------- */

typedef struct ops_job {
    graft_op *chain;
    graft_tview in;
    uint8_t *dst;
} ops_job;

static int run_chain(graft_ctx *c, void *payload)
{
    ops_job *j = payload;
    return graft_ops_run_mem(j->chain, 3, &j->in, 1, j->dst, c);
}

static int invert_chain(graft_ctx *c, void *payload)
{
    ops_job *j = payload;
    graft_op *inv = NULL;
    size_t ninv = 0;
    int rc = graft_ops_invert(j->chain, 3, &j->in.shape, 1, 0, &inv, &ninv, c);
    graft_ops_free(inv, ninv);
    return rc;
}

START_TEST(allocation_failures_are_reported_cleanly)
{
    int64_t d[] = {33, 18, 5}, axes[] = {2, 0, 1}, order[] = {1, 0};
    float *src = (float *)random_bytes(sizeof(float) * 33 * 18 * 5);
    graft_op chain[3] = {mk(GRAFT_OP_CAST, NULL, 0), mk(GRAFT_OP_PERMUTE, axes, 3),
                         mk(GRAFT_OP_CHUNKS, order, 2)};
    chain[0].dtype = GRAFT_FLOAT64;
    chain[2].axis = 2;
    ops_job job = {chain, {shape_of(GRAFT_FLOAT32, 3, d), (const uint8_t *)src},
                   malloc(8 * 33 * 18 * 5)};
    ck_assert_int_gt(tu_each_alloc_failure(ctx, run_chain, &job), 0);
    ck_assert_int_gt(tu_each_alloc_failure(ctx, invert_chain, &job), 0);
    free(job.dst);
    free(src);
}
END_TEST

static Suite *ops_suite(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("kernels");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, permute_matches_reference_every_rank_and_size, 0, 5);
    tcase_add_loop_test(tc, transpose_reverses_all_axes, 0, 5);
    tcase_add_loop_test(tc, permute_spanning_many_tiles_matches_reference, 0, 5);
    tcase_add_test(tc, permute_by_letters_moves_named_axes);
    tcase_add_test(tc, permute_streams_large_tensors_into_a_sink);
    tcase_add_loop_test(tc, chunks_take_concat_match_reference, 0, 5);
    tcase_add_test(tc, concat_of_unequal_sources_and_through_a_sink);
    suite_add_tcase(s, tc);

    tc = tcase_create("cast");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, cast_float16_rounds_to_nearest_even);
    tcase_add_test(tc, cast_float16_widening_is_exact_for_all_patterns);
#ifdef __FLT16_MAX__
    tcase_add_test(tc, cast_float16_agrees_with_the_compiler_on_random_floats);
#endif
    tcase_add_test(tc, cast_bfloat16_matches_known_bits);
    tcase_add_test(tc, cast_float16_hardware_path_equals_portable);
    tcase_add_test(tc, cast_float32_from_float64_rounds_once);
    tcase_add_test(tc, cast_integers_are_range_checked);
    tcase_add_test(tc, cast_complex_parts_and_refusals);
    suite_add_tcase(s, tc);

    tc = tcase_create("chains");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, infer_errors_name_the_rule_line_and_numbers);
    tcase_add_test(tc, new_ops_check_their_inputs_and_reverse);
    tcase_add_loop_test(tc, invert_undoes_every_op_on_random_data, 0, 5);
    tcase_add_test(tc, invert_cast_chains_round_trip_exactly);
    tcase_add_test(tc, flatten_reorder_matches_reference_and_inverts);
    tcase_add_test(tc, invert_take_and_concat_rebuild_the_sources);
    tcase_add_test(tc, allocation_failures_are_reported_cleanly);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(ops_suite());
}
