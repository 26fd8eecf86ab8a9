/*
 * cast.c - element type conversion.
 *
 * Elements are decoded a block at a time into one of three exact carriers
 * (double for floats, int64 for signed integers and bool, uint64 for
 * unsigned), then encoded into the target type:
 *   - float16/bfloat16/float32 -> double is exact; double -> a narrower float
 *     rounds once, to nearest even, in integer arithmetic (so no host
 *     rounding mode or float-cast UB is involved); NaN stays NaN (quiet, top
 *     payload bits kept), Inf stays Inf, overflow gives Inf, subnormals are
 *     produced and read correctly.
 *   - int64 -> double -> float16/bfloat16/float32 rounds twice, which gives
 *     the correctly rounded result because 53 >= 2p + 2 for p <= 24.
 *   - to an integer: the value must be integral and in range, else the
 *     element's index is reported.  bool reads as 0/1 (any non-zero byte is
 *     1) and accepts only 0 or 1.
 *   - float8_e4m3fn / float8_e5m2 widen exactly into double and narrow in
 *     float8.c (one rounding, to nearest even, saturating as ONNX Cast does);
 *   - complex64 <-> complex128 converts both parts; complex <-> real is
 *     refused by graft_xform__can_cast.
 * float32 <-> float16/bfloat16, the casts models need most, skip the carrier
 * in branch-free loops the compiler vectorises; they agree with narrow() bit
 * for bit on all 2^32 float32 inputs (checked once, exhaustively).
 */
#include "kernels.h"
#include "rd.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 4096

typedef enum { CARRY_F, CARRY_I, CARRY_U } carry;

typedef union {
    double f;
    int64_t i;
    uint64_t u;
} val;

static bool is_f8(graft_dtype t)
{
    return t == GRAFT_FLOAT8_E4M3FN || t == GRAFT_FLOAT8_E5M2;
}
static bool is_float(graft_dtype t)
{
    return t == GRAFT_FLOAT16 || t == GRAFT_BFLOAT16 || t == GRAFT_FLOAT32 ||
           t == GRAFT_FLOAT64 || is_f8(t);
}
static bool is_complex(graft_dtype t)
{
    return t == GRAFT_COMPLEX64 || t == GRAFT_COMPLEX128;
}
static bool is_real(graft_dtype t)
{
    return (t >= GRAFT_FLOAT16 && t <= GRAFT_BOOL) || is_f8(t);
}

bool graft_xform__can_cast(graft_dtype from, graft_dtype to)
{
    if (from == to) return graft_dtype_size(from) > 0;
    if (is_real(from) && is_real(to)) return true;
    return is_complex(from) && is_complex(to);
}

static carry carrier(graft_dtype t)
{
    if (is_float(t)) return CARRY_F;
    if (t == GRAFT_UINT8 || t == GRAFT_UINT16 || t == GRAFT_UINT32 || t == GRAFT_UINT64)
        return CARRY_U;
    return CARRY_I;
}

/* ---- float bit conversions ------------------------------------------- */

static double f64_of_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, 8);
    return d;
}

/* float16 -> double, exact. */
static double f16_to_f64(uint16_t h)
{
    uint64_t sign = (uint64_t)(h >> 15) << 63;
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) return f64_of_bits(sign | 0x7ffull << 52 | (uint64_t)m << 42);
    if (e == 0) {
        if (m == 0) return f64_of_bits(sign);
        int shift = 0; /* normalise the subnormal */
        while (!(m & 0x400)) {
            m <<= 1;
            shift++;
        }
        m &= 0x3ff;
        return f64_of_bits(sign | (uint64_t)(1023 - 15 + 1 - shift) << 52 | (uint64_t)m << 42);
    }
    return f64_of_bits(sign | (uint64_t)(e - 15 + 1023) << 52 | (uint64_t)m << 42);
}

static double f32bits_to_f64(uint32_t b)
{
    float f;
    if ((b & 0x7f800000) == 0x7f800000 && (b & 0x7fffff)) /* NaN: bits, not the FPU, */
        return f64_of_bits((uint64_t)(b >> 31) << 63 | 0x7ffull << 52 | /* which would quiet it */
                           (uint64_t)(b & 0x7fffff) << 29);
    memcpy(&f, &b, 4);
    return (double)f; /* exact */
}

/*
 * Round x to a binary format with `ebits` exponent and `mbits` fraction bits,
 * to nearest even, and return its bit pattern.
 */
static uint32_t narrow(double x, int ebits, int mbits)
{
    uint64_t b;
    memcpy(&b, &x, 8);
    uint32_t sign = (uint32_t)(b >> 63) << (ebits + mbits);
    int e = (int)((b >> 52) & 0x7ff);
    uint64_t m = b & ((1ull << 52) - 1);
    uint32_t inf = ((1u << ebits) - 1) << mbits;
    if (e == 0x7ff) {
        if (m == 0) return sign | inf;
        /* NaN: keep the top payload bits; if none survive, make it quiet
         * so that it stays a NaN */
        uint32_t payload = (uint32_t)(m >> (52 - mbits));
        return sign | inf | (payload ? payload : 1u << (mbits - 1));
    }
    if (e == 0) return sign; /* double subnormals are far below any target's */
    int bias = (1 << (ebits - 1)) - 1;
    int te = e - 1023 + bias;
    uint64_t sig = m | 1ull << 52;
    int shift = 52 - mbits;
    if (te < 1) { /* subnormal in the target: drop more bits */
        shift += 1 - te;
        te = 0;
    }
    if (shift >= 64) return sign; /* below half the smallest subnormal */
    uint64_t q = sig >> shift, rem = sig & ((1ull << shift) - 1), half = 1ull << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    if (te == 0) return sign | (uint32_t)q; /* q == 1 << mbits is the smallest normal */
    /* A carry out of the fraction moves into the exponent, as it should. */
    uint64_t r = ((uint64_t)te << mbits) + (q - (1ull << mbits));
    if (r >= inf) return sign | inf;
    return sign | (uint32_t)r;
}

/* ---- decode ----------------------------------------------------------- */

static void decode(const uint8_t *p, graft_dtype t, size_t n, val *v)
{
    size_t i;
    switch (t) {
    case GRAFT_FLOAT16:
        for (i = 0; i < n; i++)
            v[i].f = f16_to_f64(graft_le16(p + 2 * i));
        break;
    case GRAFT_BFLOAT16:
        for (i = 0; i < n; i++)
            v[i].f = f32bits_to_f64((uint32_t)graft_le16(p + 2 * i) << 16);
        break;
    case GRAFT_FLOAT32:
        for (i = 0; i < n; i++)
            v[i].f = f32bits_to_f64(graft_le32(p + 4 * i));
        break;
    case GRAFT_FLOAT64:
        for (i = 0; i < n; i++)
            v[i].f = f64_of_bits(graft_le64(p + 8 * i));
        break;
    case GRAFT_INT8:
        for (i = 0; i < n; i++)
            v[i].i = (int8_t)p[i];
        break;
    case GRAFT_INT16:
        for (i = 0; i < n; i++)
            v[i].i = (int16_t)graft_le16(p + 2 * i);
        break;
    case GRAFT_INT32:
        for (i = 0; i < n; i++)
            v[i].i = (int32_t)graft_le32(p + 4 * i);
        break;
    case GRAFT_INT64:
        for (i = 0; i < n; i++)
            v[i].i = (int64_t)graft_le64(p + 8 * i);
        break;
    case GRAFT_BOOL:
        for (i = 0; i < n; i++)
            v[i].i = p[i] != 0;
        break;
    case GRAFT_UINT8:
        for (i = 0; i < n; i++)
            v[i].u = p[i];
        break;
    case GRAFT_UINT16:
        for (i = 0; i < n; i++)
            v[i].u = graft_le16(p + 2 * i);
        break;
    case GRAFT_UINT32:
        for (i = 0; i < n; i++)
            v[i].u = graft_le32(p + 4 * i);
        break;
    case GRAFT_UINT64:
        for (i = 0; i < n; i++)
            v[i].u = graft_le64(p + 8 * i);
        break;
    case GRAFT_FLOAT8_E4M3FN:
    case GRAFT_FLOAT8_E5M2:
        for (i = 0; i < n; i++)
            v[i].f = graft_xform__f8_decode(p[i], t);
        break;
    default:
        break;
    }
}

/* ---- encode ----------------------------------------------------------- */

/* Carrier values as double, for float targets. */
static void to_double(val *v, size_t n, carry c)
{
    if (c == CARRY_I)
        for (size_t i = 0; i < n; i++)
            v[i].f = (double)v[i].i;
    else if (c == CARRY_U)
        for (size_t i = 0; i < n; i++)
            v[i].f = (double)v[i].u;
}

static void encode_float(uint8_t *p, graft_dtype t, const val *v, size_t n)
{
    size_t i;
    switch (t) {
    case GRAFT_FLOAT16:
        for (i = 0; i < n; i++)
            graft_put_le16(p + 2 * i, (uint16_t)narrow(v[i].f, 5, 10));
        break;
    case GRAFT_BFLOAT16:
        for (i = 0; i < n; i++)
            graft_put_le16(p + 2 * i, (uint16_t)narrow(v[i].f, 8, 7));
        break;
    case GRAFT_FLOAT32:
        for (i = 0; i < n; i++)
            graft_put_le32(p + 4 * i, narrow(v[i].f, 8, 23));
        break;
    case GRAFT_FLOAT8_E4M3FN:
    case GRAFT_FLOAT8_E5M2:
        for (i = 0; i < n; i++)
            p[i] = graft_xform__f8_encode(v[i].f, t);
        break;
    default: {
        uint64_t b;
        for (i = 0; i < n; i++) {
            memcpy(&b, &v[i].f, 8);
            graft_put_le64(p + 8 * i, b);
        }
    }
    }
}

/* Integer target ranges as [lo, hi] in the signed or unsigned carrier. */
static const struct {
    int64_t lo;
    uint64_t hi;
} int_ranges[GRAFT_DTYPE_COUNT] = {
    [GRAFT_INT8] = {INT8_MIN, INT8_MAX},
    [GRAFT_INT16] = {INT16_MIN, INT16_MAX},
    [GRAFT_INT32] = {INT32_MIN, INT32_MAX},
    [GRAFT_INT64] = {INT64_MIN, INT64_MAX},
    [GRAFT_UINT8] = {0, UINT8_MAX},
    [GRAFT_UINT16] = {0, UINT16_MAX},
    [GRAFT_UINT32] = {0, UINT32_MAX},
    [GRAFT_UINT64] = {0, UINT64_MAX},
    [GRAFT_BOOL] = {0, 1},
};

/*
 * Check every value against the target's range and leave it as uint64 bits
 * (two's complement for negatives).  first = index of v[0] in the tensor.
 */
static int to_int_bits(val *v, size_t n, carry c, graft_dtype t, uint64_t first, graft_ctx *ctx)
{
    int64_t lo = int_ranges[t].lo;
    uint64_t hi = int_ranges[t].hi;
    const char *name = graft_dtype_name(t);
    for (size_t i = 0; i < n; i++) {
        if (c == CARRY_F) {
            double d = v[i].f;
            if (isfinite(d) && d != floor(d))
                return graft_error(ctx, GRAFT_ESHAPE,
                                   "element %" PRIu64 ": %.17g is not an integer, %s needs one",
                                   first + i, d, name);
            /* -2^63 and 2^64 are exact doubles, so the comparisons are exact
             * and the conversions below are defined. */
            if (isfinite(d) && d < 0 && d >= (double)lo) {
                v[i].u = (uint64_t)(int64_t)d;
                continue;
            }
            if (isfinite(d) && d >= 0 && d < 18446744073709551616.0 && (uint64_t)d <= hi) {
                v[i].u = (uint64_t)d;
                continue;
            }
            return graft_error(ctx, GRAFT_ESHAPE, "element %" PRIu64 ": %.17g does not fit in %s",
                               first + i, d, name);
        } else if (c == CARRY_I) {
            int64_t x = v[i].i;
            if (x < lo || (x > 0 && (uint64_t)x > hi))
                return graft_error(ctx, GRAFT_ESHAPE,
                                   "element %" PRIu64 ": %" PRId64 " does not fit in %s", first + i,
                                   x, name);
            v[i].u = (uint64_t)x;
        } else if (v[i].u > hi) {
            return graft_error(ctx, GRAFT_ESHAPE,
                               "element %" PRIu64 ": %" PRIu64 " does not fit in %s", first + i,
                               v[i].u, name);
        }
    }
    return GRAFT_OK;
}

static void encode_int(uint8_t *p, size_t w, const val *v, size_t n)
{
    size_t i;
    switch (w) {
    case 1:
        for (i = 0; i < n; i++)
            p[i] = (uint8_t)v[i].u;
        break;
    case 2:
        for (i = 0; i < n; i++)
            graft_put_le16(p + 2 * i, (uint16_t)v[i].u);
        break;
    case 4:
        for (i = 0; i < n; i++)
            graft_put_le32(p + 4 * i, (uint32_t)v[i].u);
        break;
    default:
        for (i = 0; i < n; i++)
            graft_put_le64(p + 8 * i, v[i].u);
        break;
    }
}

/* ---- fast paths ------------------------------------------------------- */

/*
 * The common conversions between float32 and the 16-bit floats or float64,
 * without the carrier, in straight-line code the compiler can vectorise.
 * Results equal narrow()/f16_to_f64() bit for bit except that a signalling
 * NaN comes out quiet (still a NaN with its payload).  They assume the
 * default floating-point environment (round to nearest even); flush-to-zero
 * would only touch values far below float16's range.
 */
static uint32_t ld32(const uint8_t *p)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
#else
    return graft_le32(p);
#endif
}
static uint16_t ld16(const uint8_t *p)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
#else
    return graft_le16(p);
#endif
}
static void st32(uint8_t *p, uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, 4);
#else
    graft_put_le32(p, v);
#endif
}
static void st16(uint8_t *p, uint16_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, 2);
#else
    graft_put_le16(p, v);
#endif
}
static double ldf64(const uint8_t *p)
{
    double v;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&v, p, 8);
#else
    v = f64_of_bits(graft_le64(p));
#endif
    return v;
}
static void stf64(uint8_t *p, double v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, 8);
#else
    uint64_t b;
    memcpy(&b, &v, 8);
    graft_put_le64(p, b);
#endif
}
static float ldf32(const uint8_t *p)
{
    float v;
    uint32_t b = ld32(p);
    memcpy(&v, &b, 4);
    return v;
}
static void stf32(uint8_t *p, float v)
{
    uint32_t b;
    memcpy(&b, &v, 4);
    st32(p, b);
}

static float f32_of(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}
static uint32_t bits_of(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

/* Branch-free (selects only), so that the loops below vectorise. */
static inline uint16_t f32_to_bf16(uint32_t b)
{
    uint32_t top = b >> 16;
    uint32_t nan = top | ((top & 0x7f) == 0) << 6; /* keep the payload, else quiet */
    uint32_t rne = (b + 0x7fff + (top & 1)) >> 16;
    return (uint16_t)((b & 0x7fffffff) > 0x7f800000 ? nan : rne);
}

/*
 * float32 -> float16 by scaling in float arithmetic (M. Maratyszcza's
 * FP16 method): the hardware's round-to-nearest-even does the rounding,
 * including into subnormals, and scaling by 2^112 sends overflow to Inf.
 */
static inline uint16_t f32_to_f16(uint32_t w)
{
    float base = (fabsf(f32_of(w)) * 0x1.0p+112f) * 0x1.0p-110f;
    uint32_t shl1 = w + w, sign = w & 0x80000000u, bias = shl1 & 0xff000000u;
    bias = bias < 0x71000000u ? 0x71000000u : bias;
    base = f32_of((bias >> 1) + 0x07800000u) + base;
    uint32_t bits = bits_of(base);
    uint32_t nonsign = ((bits >> 13) & 0x7c00u) + (bits & 0x0fffu);
    uint32_t p = (w >> 13) & 0x3ff, nan = 0x7c00u | p | (p == 0) << 9;
    uint32_t is_nan = 0u - (shl1 > 0xff000000u); /* a mask, not a branch: see VEC */
    return (uint16_t)(sign >> 16 | (nan & is_nan) | (nonsign & ~is_nan));
}

static inline uint32_t f16_to_f32(uint16_t h)
{
    uint32_t w = (uint32_t)h << 16, sign = w & 0x80000000u, two_w = w + w;
    float normal = f32_of((two_w >> 4) + (0xe0u << 23)) * 0x1.0p-112f;
    float denormal = f32_of((two_w >> 17) | (126u << 23)) - 0.5f;
    uint32_t is_sub = 0u - (two_w < (1u << 27));
    return sign | (bits_of(denormal) & is_sub) | (bits_of(normal) & ~is_sub);
}

/* Loops in runs of a constant length: GCC's -O2 vectorises only loops that
 * need no runtime trip-count or aliasing checks.  Selects after float
 * arithmetic are written as masks, since a branch there would keep the
 * (possibly trapping) float ops from being if-converted. */
#define VEC 64
#define CONVERT_FN(name, expr)                                                                     \
    static void name(uint8_t *restrict dst, const uint8_t *restrict src, size_t n)                 \
    {                                                                                              \
        size_t i = 0, j;                                                                           \
        for (; i + VEC <= n; i += VEC)                                                             \
            for (j = i; j < i + VEC; j++)                                                          \
                expr;                                                                              \
        for (j = i; j < n; j++)                                                                    \
            expr;                                                                                  \
    }
CONVERT_FN(conv_f32_bf16, st16(dst + 2 * j, f32_to_bf16(ld32(src + 4 * j))))
CONVERT_FN(conv_f32_f16, st16(dst + 2 * j, f32_to_f16(ld32(src + 4 * j))))
CONVERT_FN(conv_bf16_f32, st32(dst + 4 * j, (uint32_t)ld16(src + 2 * j) << 16))
CONVERT_FN(conv_f16_f32, st32(dst + 4 * j, f16_to_f32(ld16(src + 2 * j))))
/* Between the 16-bit floats through float32, which holds both exactly: one
 * rounding, as the direct conversion. */
CONVERT_FN(conv_bf16_f16, st16(dst + 2 * j, f32_to_f16((uint32_t)ld16(src + 2 * j) << 16)))
CONVERT_FN(conv_f16_bf16, st16(dst + 2 * j, f32_to_bf16(f16_to_f32(ld16(src + 2 * j)))))
/* IEEE conversions (C11 Annex F): exact widening, and narrowing rounded by
 * the current mode, which is round-to-nearest-even unless the caller changed
 * it; overflow gives Inf. */
CONVERT_FN(conv_f64_f32, stf32(dst + 4 * j, (float)ldf64(src + 8 * j)))
CONVERT_FN(conv_f32_f64, stf64(dst + 8 * j, (double)ldf32(src + 4 * j)))

/*
 * To float16 with F16C (vcvtps2ph, rounding to nearest even as the
 * software kernels do, subnormals and overflow to Inf included): 8
 * elements a step.  A group holding a NaN goes through f32_to_f16, since
 * the instruction sets the quiet bit of a signalling NaN and the software
 * kernels keep its payload.  bfloat16 widens to float32 by a shift first.
 */
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define GRAFT_CAST_F16C 1
#define F16C_FN(name, load, scalar)                                                                \
    __attribute__((target("avx2,f16c"))) static void name(uint8_t *restrict dst,                   \
                                                          const uint8_t *restrict src, size_t n)   \
    {                                                                                              \
        const __m256i abs = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);    \
        size_t j = 0;                                                                              \
        for (; j + 8 <= n; j += 8) {                                                               \
            __m256i w = load;                                                                      \
            __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(w, abs), inf);                       \
            if (!_mm256_testz_si256(nan, nan)) {                                                   \
                for (size_t k = j; k < j + 8; k++) scalar;                                         \
                continue;                                                                          \
            }                                                                                      \
            __m128i h = _mm256_cvtps_ph(_mm256_castsi256_ps(w), _MM_FROUND_TO_NEAREST_INT);        \
            _mm_storeu_si128((__m128i *)(void *)(dst + 2 * j), h);                                 \
        }                                                                                          \
        for (size_t k = j; k < n; k++) scalar;                                                     \
    }
F16C_FN(conv_f32_f16_hw, _mm256_loadu_si256((const __m256i *)(const void *)(src + 4 * j)),
        st16(dst + 2 * k, f32_to_f16(ld32(src + 4 * k))))
F16C_FN(conv_bf16_f16_hw,
        _mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(src + 2 * j))),
            16),
        st16(dst + 2 * k, f32_to_f16((uint32_t)ld16(src + 2 * k) << 16)))
#endif

/* Off (tests only): the portable kernels, to check the F16C ones against. */
static bool hw_allowed = true;

bool graft_xform__cast_use_hw(bool on)
{
    bool had = hw_allowed;
    hw_allowed = on;
    return had;
}

#ifdef GRAFT_CAST_F16C
static bool cpu_f16c;

/* F16C by CPUID leaf 1, ECX bit 29: clang's __builtin_cpu_supports does
 * not know "f16c".  Once: in a virtual machine CPUID traps to the host, and
 * asked for every block it was half of a bfloat16 -> float16 apply. */
static void detect_f16c(void)
{
    unsigned a, b, c, d;
    cpu_f16c = __builtin_cpu_supports("avx2") && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

static bool have_f16c(void)
{
#ifdef GRAFT_CAST_F16C
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, detect_f16c);
    return hw_allowed && cpu_f16c;
#else
    return false;
#endif
}

/* Convert n elements if (from, to) has a fast path; false otherwise. */
static bool convert_fast(uint8_t *dst, const uint8_t *src, graft_dtype from, graft_dtype to,
                         size_t n)
{
    if (from == GRAFT_FLOAT32 && to == GRAFT_BFLOAT16)
        conv_f32_bf16(dst, src, n);
#ifdef GRAFT_CAST_F16C
    else if (from == GRAFT_FLOAT32 && to == GRAFT_FLOAT16 && have_f16c())
        conv_f32_f16_hw(dst, src, n);
    else if (from == GRAFT_BFLOAT16 && to == GRAFT_FLOAT16 && have_f16c())
        conv_bf16_f16_hw(dst, src, n);
#endif
    else if (from == GRAFT_FLOAT32 && to == GRAFT_FLOAT16)
        conv_f32_f16(dst, src, n);
    else if (from == GRAFT_BFLOAT16 && to == GRAFT_FLOAT32)
        conv_bf16_f32(dst, src, n);
    else if (from == GRAFT_FLOAT16 && to == GRAFT_FLOAT32)
        conv_f16_f32(dst, src, n);
    else if (from == GRAFT_BFLOAT16 && to == GRAFT_FLOAT16)
        conv_bf16_f16(dst, src, n);
    else if (from == GRAFT_FLOAT16 && to == GRAFT_BFLOAT16)
        conv_f16_bf16(dst, src, n);
    else if (from == GRAFT_FLOAT64 && to == GRAFT_FLOAT32)
        conv_f64_f32(dst, src, n);
    else if (from == GRAFT_FLOAT32 && to == GRAFT_FLOAT64)
        conv_f32_f64(dst, src, n);
    else
        return false;
    return true;
}

/* ---- driver ----------------------------------------------------------- */

int graft_xform__cast(graft_xout *o, const uint8_t *src, graft_dtype from, graft_dtype to,
                      uint64_t numel, graft_ctx *ctx)
{
    size_t wi = graft_dtype_size(from), wo = graft_dtype_size(to);
    if (from == to) return graft_xform__emit(o, src, (size_t)(numel * wi));

    /* complex: two floats per element */
    if (is_complex(from)) {
        from = from == GRAFT_COMPLEX64 ? GRAFT_FLOAT32 : GRAFT_FLOAT64;
        to = to == GRAFT_COMPLEX64 ? GRAFT_FLOAT32 : GRAFT_FLOAT64;
        wi /= 2;
        wo /= 2;
        numel *= 2;
    }

    val *v = graft_malloc(ctx, BLOCK * sizeof *v);
    uint8_t *buf = graft_malloc(ctx, BLOCK * 8);
    int rc = GRAFT_OK;
    if (!v || !buf) {
        rc = graft_error_oom(ctx, "a cast buffer");
        goto cleanup;
    }
    carry c = carrier(from);
    bool to_float = is_float(to);
    for (uint64_t done = 0; done < numel;) {
        size_t n = numel - done < BLOCK ? (size_t)(numel - done) : BLOCK;
        size_t room;
        uint8_t *at = graft_xform__room(o, &room);
        if (at && room >= wo) { /* straight into the destination or the sink's buffer */
            size_t k = n < room / wo ? n : room / wo;
            if (convert_fast(at, src + done * wi, from, to, k)) {
                rc = graft_xform__filled(o, k * wo);
                if (rc < 0) goto cleanup;
                done += k;
                continue;
            }
        }
        if (convert_fast(buf, src + done * wi, from, to, n)) {
            rc = graft_xform__emit(o, buf, n * wo);
            if (rc < 0) goto cleanup;
            done += n;
            continue;
        }
        decode(src + done * wi, from, n, v);
        if (to_float) {
            to_double(v, n, c);
            encode_float(buf, to, v, n);
        } else {
            rc = to_int_bits(v, n, c, to, done, ctx);
            if (rc < 0) goto cleanup;
            encode_int(buf, wo, v, n);
        }
        rc = graft_xform__emit(o, buf, n * wo);
        if (rc < 0) goto cleanup;
        done += n;
    }
cleanup:
    free(v);
    free(buf);
    return rc;
}

/* ---- single values and double buffers (the arithmetic ops) ------------ */

void graft_xform__to_f64(const uint8_t *src, graft_dtype t, size_t n, double *out)
{
    val v[256];
    size_t esize = graft_dtype_size(t);
    for (size_t i = 0; i < n; i += 256) {
        size_t k = n - i < 256 ? n - i : 256;
        decode(src + i * esize, t, k, v);
        to_double(v, k, carrier(t));
        for (size_t j = 0; j < k; j++) out[i + j] = v[j].f;
    }
}

void graft_xform__from_f64(uint8_t *dst, graft_dtype t, const double *in, size_t n)
{
    val v[256];
    size_t esize = graft_dtype_size(t);
    for (size_t i = 0; i < n; i += 256) {
        size_t k = n - i < 256 ? n - i : 256;
        for (size_t j = 0; j < k; j++) v[j].f = in[i + j];
        encode_float(dst + i * esize, t, v, k);
    }
}

int graft_xform__scalar(uint8_t *dst, graft_dtype t, double x, graft_ctx *ctx)
{
    val v = {.f = x};
    if (is_float(t)) {
        encode_float(dst, t, &v, 1);
    } else if (is_complex(t)) {
        memset(dst, 0, graft_dtype_size(t));
        if (t == GRAFT_COMPLEX128) {
            encode_float(dst, GRAFT_FLOAT64, &v, 1);
        } else {
            encode_float(dst, GRAFT_FLOAT32, &v, 1);
        }
    } else if (graft_dtype_size(t) > 0) {
        GRAFT_TRY(to_int_bits(&v, 1, CARRY_F, t, 0, ctx));
        encode_int(dst, graft_dtype_size(t), &v, 1);
    } else {
        return graft_error(ctx, GRAFT_ESHAPE, "%s has no numeric value", graft_dtype_name(t));
    }
    return GRAFT_OK;
}
