/*
 * floor.c - the least work a transposing transplant does, with none of
 * graft's obligations: the source mapped whole and resident (no memory
 * budget), no CRC or checksum verification, no fsync, no format framing.
 * The file is taken as back-to-back [ROWS, COLS] matrices of ESIZE-byte
 * elements, each written transposed (mode t), the rest as is;
 * mode c writes the whole file from the mapping.  A writer thread writes
 * 64 KiB pieces (as graft) while graft's tile kernel fills the next 16 MiB
 * slab on two threads (graft_xform__gather2).  Its time against cp of
 * the same file is a floor for jobs that transpose most of their bytes
 * (B1, B2, L1 into Keras): graft also verifies and stays within 64 MB.
 *
 *   bench_floor SRC DST c|t ESIZE ROWS COLS
 */
#define _GNU_SOURCE
#include "../src/transform/kernels.h"

#include <fcntl.h>
#include <pthread.h>
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

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: bench_floor SRC DST c|t ESIZE ROWS COLS\n");
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
    if (es == 0 || es > 16 || (es & (es - 1)) || rows == 0 || cols == 0 || rows * es > SLAB) {
        fprintf(stderr, "bench_floor: ESIZE 1, 2, 4, 8 or 16, 0 < ROWS <= %zu / ESIZE, COLS > 0\n", SLAB);
        return 2;
    }
    if (size == 0) return close(out_fd) ? 1 : 0;
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
            /* graft's tile kernel, on two threads */
            int64_t dim[2] = {(int64_t)(c1 - c), (int64_t)rows}, stride[2] = {1, (int64_t)cols};
            graft_xform__gather2(d, src + off + c * es, es, 2, dim, stride, rows * es);
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
