/*
 * float8.c - the two float8 formats of OCP FP8 (and ONNX, PyTorch,
 * safetensors, ml_dtypes), to and from double:
 *   float8_e4m3fn  S.EEEE.MMM, bias 7, no Inf; S.1111.111 is NaN, so the
 *                  largest finite value is S.1111.110 = 448;
 *   float8_e5m2    S.EEEEE.MM, bias 15, IEEE: S.11111.00 is Inf, S.11111.xx
 *                  NaN, the largest finite S.11110.11 = 57344.
 * Both have subnormals (exponent field 0).  Narrowing rounds once, to
 * nearest even, and saturates as ONNX Cast does by default (saturate=1):
 * a value whose rounding passes the largest finite value, and +-Inf, give
 * +-that value; NaN gives NaN (S.1111111); -0 stays -0.
 */
#include "kernels.h"

#include <math.h>
#include <string.h>

typedef struct f8fmt {
    int mbits, bias;
    unsigned maxcode;    /* largest finite, sign bit clear */
    bool ieee;           /* exponent all ones is Inf/NaN */
} f8fmt;

static const f8fmt E4M3FN = {3, 7, 0x7e, false}, E5M2 = {2, 15, 0x7b, true};

static const f8fmt *fmt_of(graft_dtype t)
{
    return t == GRAFT_FLOAT8_E5M2 ? &E5M2 : &E4M3FN;
}

double graft_xform__f8_decode(uint8_t c, graft_dtype t)
{
    const f8fmt *f = fmt_of(t);
    int ebits = 7 - f->mbits, e = (c >> f->mbits) & ((1 << ebits) - 1);
    unsigned m = c & ((1u << f->mbits) - 1);
    double sign = c & 0x80 ? -1.0 : 1.0;
    if (f->ieee && e == (1 << ebits) - 1) return m ? NAN : sign * INFINITY;
    if (!f->ieee && (c & 0x7f) == 0x7f) return NAN;
    if (e == 0) return sign * ldexp((double)m, 1 - f->bias - f->mbits);
    return sign * ldexp((double)(m | 1u << f->mbits), e - f->bias - f->mbits);
}

uint8_t graft_xform__f8_encode(double x, graft_dtype t)
{
    const f8fmt *f = fmt_of(t);
    uint64_t b;
    memcpy(&b, &x, 8);
    uint8_t sign = (uint8_t)(b >> 63 << 7);
    int e = (int)((b >> 52) & 0x7ff);
    uint64_t m = b & ((1ull << 52) - 1);
    if (e == 0x7ff) return m ? (uint8_t)(sign | 0x7f) : (uint8_t)(sign | f->maxcode);
    if (e == 0) return sign; /* double subnormals are far below half the smallest f8 */
    int te = e - 1023 + f->bias, shift = 52 - f->mbits;
    uint64_t sig = m | 1ull << 52;
    if (te < 1) { /* subnormal in float8: drop more bits */
        shift += 1 - te;
        te = 0;
    }
    if (shift >= 64) return sign;
    uint64_t q = sig >> shift, rem = sig & ((1ull << shift) - 1), half = 1ull << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    /* normal: the carry of q into bit mbits+1 moves to the next exponent */
    uint64_t code = te == 0 ? q : ((uint64_t)te << f->mbits) + q - (1ull << f->mbits);
    return (uint8_t)(sign | (code > f->maxcode ? f->maxcode : code));
}
