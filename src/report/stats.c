/*
 * stats.c - graft_tensor_statistics (graft.h): min, max, mean, standard
 * deviation and a histogram of one tensor, read in pieces of a few MB
 * (graft_tensor__pieces) so a tensor of any size needs the same memory.
 *
 * Two passes over the bytes: the first gives the count, extremes and moments
 * (each block's mean and squared deviations from it, merged by Chan et al.'s
 * formula, so large means do not cancel), the second the histogram, whose
 * equal bins span [min, max] and are assigned as numpy.histogram does
 * (index from the scaled offset, then corrected against the linspace edges;
 * the last bin is closed; min == max widens the range by 0.5 each side).
 * NaN and infinities are counted apart and left out of everything else.
 */
#include "graft.h"

#include <math.h>
#include <string.h>

#include "kernels.h"
#include "model.h"

#define BLOCK 512 /* elements converted to double at a time */

typedef struct pass {
    graft_dtype dtype;
    size_t esize;
    uint8_t part[16]; /* an element split between two pieces */
    size_t npart;
    bool histogram;   /* second pass */
    graft_stats *s;
    double mean, m2;  /* running moments of the finite elements */
    double edge[GRAFT_STATS_BINS + 1], first, last;
} pass;

static void moments(pass *ps, const double *v, size_t n)
{
    graft_stats *s = ps->s;
    double sum = 0, m2 = 0, mean;
    uint64_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(v[i])) {
            s->nan++;
        } else if (isinf(v[i])) {
            s->inf++;
        } else {
            if (s->count + k == 0 || v[i] < s->min) s->min = v[i];
            if (s->count + k == 0 || v[i] > s->max) s->max = v[i];
            sum += v[i];
            k++;
        }
    }
    if (k == 0) return;
    mean = sum / (double)k;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) m2 += (v[i] - mean) * (v[i] - mean);
    /* Chan, Golub and LeVeque: merge (count, mean, m2) of two parts. */
    double na = (double)s->count, nb = (double)k, d = mean - ps->mean;
    ps->mean += d * nb / (na + nb);
    ps->m2 += m2 + d * d * na * nb / (na + nb);
    s->count += k;
}

static void bins(pass *ps, const double *v, size_t n)
{
    const double width = ps->last - ps->first;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) continue;
        long b = (long)((v[i] - ps->first) / width * GRAFT_STATS_BINS);
        if (b >= GRAFT_STATS_BINS) b = GRAFT_STATS_BINS - 1;
        if (b < 0) b = 0;
        if (v[i] < ps->edge[b] && b > 0) b--;
        else if (b < GRAFT_STATS_BINS - 1 && v[i] >= ps->edge[b + 1]) b++;
        ps->s->hist[b]++;
    }
}

static void values(pass *ps, const uint8_t *p, size_t nelem)
{
    double v[BLOCK];
    for (size_t i = 0; i < nelem; i += BLOCK) {
        size_t k = nelem - i < BLOCK ? nelem - i : BLOCK;
        graft_xform__to_f64(p + i * ps->esize, ps->dtype, k, v);
        if (ps->histogram)
            bins(ps, v, k);
        else
            moments(ps, v, k);
    }
}

static int piece(void *arg, const uint8_t *p, size_t n)
{
    pass *ps = arg;
    if (ps->npart) { /* complete the element the last piece split */
        size_t take = ps->esize - ps->npart < n ? ps->esize - ps->npart : n;
        memcpy(ps->part + ps->npart, p, take);
        ps->npart += take;
        p += take;
        n -= take;
        if (ps->npart < ps->esize) return GRAFT_OK;
        values(ps, ps->part, 1);
        ps->npart = 0;
    }
    values(ps, p, n / ps->esize);
    ps->npart = n % ps->esize;
    memcpy(ps->part, p + n - ps->npart, ps->npart);
    return GRAFT_OK;
}

int graft_tensor_statistics(const graft_model *m, const graft_tensor *t, graft_stats *out,
                            graft_ctx *ctx)
{
    pass ps = {.dtype = t->dtype, .esize = graft_dtype_size(t->dtype), .s = out};
    graft_dtype d = t->dtype;

    memset(out, 0, sizeof *out);
    out->numeric = ps.esize > 0 && d != GRAFT_COMPLEX64 && d != GRAFT_COMPLEX128;
    if (!out->numeric || t->numel == 0) return GRAFT_OK;
    GRAFT_TRY(graft_tensor__pieces(m, t, piece, &ps, ctx));
    if (out->count == 0) return GRAFT_OK;
    out->mean = ps.mean;
    out->std = sqrt(ps.m2 / (double)out->count);
    ps.first = out->min;
    ps.last = out->max;
    if (ps.first == ps.last) {
        ps.first -= 0.5;
        ps.last += 0.5;
    }
    /* numpy.linspace(first, last, BINS + 1): i * step + first, the last exact. */
    double step = (ps.last - ps.first) / GRAFT_STATS_BINS;
    for (int i = 0; i < GRAFT_STATS_BINS; i++) ps.edge[i] = i * step + ps.first;
    ps.edge[GRAFT_STATS_BINS] = ps.last;
    ps.histogram = true;
    ps.npart = 0;
    return graft_tensor__pieces(m, t, piece, &ps, ctx);
}
