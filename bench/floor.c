/*
 * floor.c - the least work a transposing transplant does, with none of
 * graft's obligations: the source mapped whole and resident (no memory
 * budget), no CRC or checksum verification, no fsync, no format framing.
 * The file is taken as back-to-back [ROWS, COLS] matrices of ESIZE-byte
 * elements (2 or 4), each written transposed (mode t), the rest as is;
 * mode c writes the whole file from the mapping.  A writer thread writes
 * 64 KiB pieces (as graft) while two threads fill the next 16 MiB slab
 * with SSE2 4x4 / 8x8 blocks (graft's kernels).  Its time against cp of
 * the same file is a floor for jobs that transpose most of their bytes
 * (B1, B2, L1 into Keras): graft also verifies and stays within 64 MB.
 *
 *   bench_floor SRC DST c|t ESIZE ROWS COLS
 */
#define _GNU_SOURCE
#include <emmintrin.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLAB ((size_t)16 << 20)
#define PIECE ((size_t)64 << 10)

typedef struct slab {
    uint8_t *p;
    size_t n;
    int full;
} slab;

static slab slabs[2];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int out_fd, done;

static void *writer(void *arg)
{
    (void)arg;
    for (int k = 0;; k ^= 1) {
        pthread_mutex_lock(&mu);
        while (!slabs[k].full && !done)
            pthread_cond_wait(&cv, &mu);
        if (!slabs[k].full) {
            pthread_mutex_unlock(&mu);
            return NULL;
        }
        pthread_mutex_unlock(&mu);
        for (size_t o = 0; o < slabs[k].n; o += PIECE) {
            size_t n = slabs[k].n - o < PIECE ? slabs[k].n - o : PIECE;
            if (write(out_fd, slabs[k].p + o, n) != (ssize_t)n) {
                perror("write");
                exit(1);
            }
        }
        pthread_mutex_lock(&mu);
        slabs[k].full = 0;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
    }
}

static uint8_t *take(int k)
{
    pthread_mutex_lock(&mu);
    while (slabs[k].full)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return slabs[k].p;
}

static void give(int k, size_t n)
{
    pthread_mutex_lock(&mu);
    slabs[k].n = n;
    slabs[k].full = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* dst[c][r] = src[r][c] for the rows r0..r1 of the output (source columns) */
static void transpose4(uint8_t *dst, const uint8_t *src, size_t rows, size_t cols, size_t c0,
                       size_t c1)
{
    for (size_t cb = c0; cb < c1; cb += 64)
        for (size_t rb = 0; rb < rows; rb += 64)
            for (size_t c = cb; c < cb + 64 && c < c1; c += 4)
                for (size_t r = rb; r < rb + 64 && r < rows; r += 4) {
                    if (c + 4 > c1 || r + 4 > rows) {
                        for (size_t i = c; i < c + 4 && i < c1; i++)
                            for (size_t j = r; j < r + 4 && j < rows; j++)
                                memcpy(dst + ((i - c0) * rows + j) * 4, src + (j * cols + i) * 4, 4);
                        continue;
                    }
                    const float *s = (const float *)(const void *)(src + (r * cols + c) * 4);
                    __m128 a = _mm_loadu_ps(s), b = _mm_loadu_ps(s + cols);
                    __m128 e = _mm_loadu_ps(s + 2 * cols), f = _mm_loadu_ps(s + 3 * cols);
                    _MM_TRANSPOSE4_PS(a, b, e, f);
                    float *d = (float *)(void *)(dst + ((c - c0) * rows + r) * 4);
                    _mm_storeu_ps(d, a);
                    _mm_storeu_ps(d + rows, b);
                    _mm_storeu_ps(d + 2 * rows, e);
                    _mm_storeu_ps(d + 3 * rows, f);
                }
}

static void transpose2(uint8_t *dst, const uint8_t *src, size_t rows, size_t cols, size_t c0,
                       size_t c1)
{
    for (size_t cb = c0; cb < c1; cb += 128)
        for (size_t rb = 0; rb < rows; rb += 128)
            for (size_t c = cb; c < cb + 128 && c < c1; c += 8)
                for (size_t r = rb; r < rb + 128 && r < rows; r += 8) {
                    if (c + 8 > c1 || r + 8 > rows) {
                        for (size_t i = c; i < c + 8 && i < c1; i++)
                            for (size_t j = r; j < r + 8 && j < rows; j++)
                                memcpy(dst + ((i - c0) * rows + j) * 2, src + (j * cols + i) * 2, 2);
                        continue;
                    }
                    const uint8_t *s = src + (r * cols + c) * 2;
                    __m128i x[8], t[8], u[8];
                    for (int i = 0; i < 8; i++)
                        x[i] = _mm_loadu_si128((const __m128i *)(const void *)(s + i * cols * 2));
                    for (int i = 0; i < 8; i += 2) {
                        t[i] = _mm_unpacklo_epi16(x[i], x[i + 1]);
                        t[i + 1] = _mm_unpackhi_epi16(x[i], x[i + 1]);
                    }
                    for (int i = 0; i < 8; i += 4) {
                        u[i] = _mm_unpacklo_epi32(t[i], t[i + 2]);
                        u[i + 1] = _mm_unpackhi_epi32(t[i], t[i + 2]);
                        u[i + 2] = _mm_unpacklo_epi32(t[i + 1], t[i + 3]);
                        u[i + 3] = _mm_unpackhi_epi32(t[i + 1], t[i + 3]);
                    }
                    uint8_t *d = dst + ((c - c0) * rows + r) * 2;
                    for (int i = 0; i < 4; i++) {
                        _mm_storeu_si128((__m128i *)(void *)(d + 2 * i * rows * 2),
                                         _mm_unpacklo_epi64(u[i], u[i + 4]));
                        _mm_storeu_si128((__m128i *)(void *)(d + (2 * i + 1) * rows * 2),
                                         _mm_unpackhi_epi64(u[i], u[i + 4]));
                    }
                }
}

typedef struct half {
    uint8_t *d;
    const uint8_t *s;
    size_t rows, cols, c0, c1, es;
} half;

static void *run_half(void *arg)
{
    half *h = arg;
    if (h->es == 4)
        transpose4(h->d, h->s, h->rows, h->cols, h->c0, h->c1);
    else
        transpose2(h->d, h->s, h->rows, h->cols, h->c0, h->c1);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: floor SRC DST c|t ESIZE ROWS COLS\n");
        return 2;
    }
    int in = open(argv[1], O_RDONLY);
    struct stat st;
    if (in < 0 || fstat(in, &st) < 0) {
        perror(argv[1]);
        return 1;
    }
    out_fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out_fd < 0) {
        perror(argv[2]);
        return 1;
    }
    char mode = argv[3][0];
    size_t es = strtoul(argv[4], 0, 10), rows = strtoul(argv[5], 0, 10),
           cols = strtoul(argv[6], 0, 10), size = (size_t)st.st_size, mat = rows * cols * es;
    if ((es != 2 && es != 4) || rows == 0 || cols == 0 || rows * es > SLAB) {
        fprintf(stderr, "bench_floor: ESIZE 2 or 4, 0 < ROWS <= %zu / ESIZE, COLS > 0\n", SLAB);
        return 2;
    }
    const uint8_t *src = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, in, 0);
    if (src == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    for (int k = 0; k < 2; k++)
        slabs[k].p = aligned_alloc(4096, SLAB);
    pthread_t t;
    pthread_create(&t, NULL, writer, NULL);
    int k = 0;
    size_t off = 0;
    for (; mode == 't' && off + mat <= size; off += mat) {
        size_t per = SLAB / (rows * es); /* output rows (source columns) per slab */
        for (size_t c = 0; c < cols; c += per, k ^= 1) {
            size_t c1 = c + per < cols ? c + per : cols;
            uint8_t *d = take(k);
            /* two threads transpose, each half of the slab's rows */
            size_t mid = c + (c1 - c) / 2;
            half h = {d + (mid - c) * rows * es, src + off, rows, cols, mid, c1, es};
            pthread_t ht;
            bool two = pthread_create(&ht, NULL, run_half, &h) == 0;
            if (!two) h.c0 = c1;
            if (es == 4)
                transpose4(d, src + off, rows, cols, c, h.c0);
            else
                transpose2(d, src + off, rows, cols, c, h.c0);
            if (two) pthread_join(ht, NULL);
            give(k, (c1 - c) * rows * es);
        }
    }
    /* the rest (all of it in mode c) written straight from the mapping */
    for (; off < size; off += SLAB, k ^= 1) {
        size_t n = size - off < SLAB ? size - off : SLAB;
        take(k);
        slabs[k].p = (uint8_t *)src + off;
        give(k, n);
    }
    pthread_mutex_lock(&mu);
    done = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(t, NULL);
    return close(out_fd) ? 1 : 0;
}
