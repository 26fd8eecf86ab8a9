/*
 * kernels.h - the data-moving kernels behind the op chains (internal to
 * src/transform/): strided copies, permute, cast, chunks/take/concat.
 *
 * Every kernel writes its output in row-major order through a graft_xout,
 * which is either a memory buffer or a sink, so one code path serves
 * graft_ops_run_mem() and graft_ops_run() without a second full-size buffer.
 */
#ifndef GRAFT_TRANSFORM_KERNELS_H
#define GRAFT_TRANSFORM_KERNELS_H

#include "ops.h"

/* Where a kernel's output goes: exactly one of sink and mem is set. */
typedef struct graft_xout {
    graft_sink *sink; /* borrowed */
    uint8_t *mem;     /* borrowed; the whole output */
    uint64_t pos;     /* bytes written so far */
    graft_ctx *ctx;
    void (*release)(void *payload); /* optional, sink only: see graft_ops_run_released */
    void *payload;
    uint64_t unreleased;            /* bytes emitted since the last release */
    /* optional, with release: copy n bytes at `at` (inside a source of the
     * chain) into dst without mapping them (pread), for kernels that read a
     * large source in scattered pieces; < 0 on error, with ctx set */
    int (*read)(void *payload, const uint8_t *at, void *dst, size_t n, graft_ctx *ctx);
    /* optional: takes what is emitted instead of sink / mem (gather.c's value
     * ops on a kernel's output); sink may still name where the output goes */
    int (*filter)(struct graft_xout *self, const void *p, size_t n);
} graft_xout;

/* Append n bytes. */
int graft_xform__emit(graft_xout *o, const void *p, size_t n);
/* Emit in place (see graft_sink_room): where o goes straight to memory or
 * a sink, the space to produce up to *room bytes into, else NULL; then
 * graft_xform__filled with the bytes produced. */
uint8_t *graft_xform__room(graft_xout *o, size_t *room);
int graft_xform__filled(graft_xout *o, size_t n);

/* Append n bytes that a sink's writer thread may write from p itself: p
 * stays untouched until graft_xform__wait(o, *ticket).  Elsewhere (memory,
 * a filter, no writer thread) it is emit, and *ticket is 0. */
int graft_xform__lend(graft_xout *o, const void *p, size_t n, uint64_t *ticket);
int graft_xform__wait(graft_xout *o, uint64_t ticket);

/* Largest block a kernel stages before handing it to a sink. */
#define GRAFT_XFORM_SLAB ((size_t)4 << 20)

/*
 * dst (contiguous, shape dim[0..n)) receives element idx of src at
 * sum(idx[i] * stride[i]) elements.  Strides are >= 0.  Tiled so that
 * transposes read and write whole cache lines.
 */
void graft_xform__gather(uint8_t *dst, const uint8_t *src, size_t esize, uint32_t n,
                         const int64_t *dim, const int64_t *stride);

/* The same on two threads, each taking half of dim[0] (rows of row_bytes
 * output bytes); small outputs stay on one. */
void graft_xform__gather2(uint8_t *dst, const uint8_t *src, size_t esize, uint32_t n,
                          const int64_t *dim, const int64_t *stride, uint64_t row_bytes);

/* rows segments of seg bytes, pitch apart from src, staged into dst
 * (packed).  pread (o->read, which the caller must have): on two threads;
 * else copied from the mapping, its pages released after every 4 MiB of
 * source rows.  0, or < 0 with the error set. */
int graft_xform__stage_rows(graft_xout *o, uint8_t *dst, const uint8_t *src, uint64_t rows,
                            uint64_t pitch, uint64_t seg, bool pread);

/*
 * A permute into a sink that can release its source (o->release), given
 * as the simplified output dims d and source strides s of permute.c: when
 * it is large and moves the source's outermost axis inward, run it out of
 * core through a temporary file in the sink's folder (ooc.c).  Returns 1
 * when the permute is not one for this path.
 */
int graft_xform__permute_ooc(graft_xout *o, const uint8_t *src, size_t esize, uint32_t m,
                             const int64_t *d, const int64_t *s);
/* Tests only: the smallest tensor (bytes) taken out of core and the block
 * size; 0 restores the defaults (32 MiB, 8 MiB). */
void graft_xform__set_ooc(uint64_t min_bytes, size_t block_bytes);
/* Tests only: how many permutes the out-of-core path wrote in place (pwrite
 * at the output's offsets) rather than through a temporary file. */
uint64_t graft_xform__ooc_in_place(void);

/* Permute a contiguous tensor of shape dim[0..n): out dim i = in dim axes[i]
 * (axes already validated, non-negative). */
int graft_xform__permute(graft_xout *o, const uint8_t *src, size_t esize, uint32_t n,
                         const int64_t *dim, const uint32_t *axes);

/* Convert numel elements; an element that does not fit reports its index. */
int graft_xform__cast(graft_xout *o, const uint8_t *src, graft_dtype from, graft_dtype to,
                      uint64_t numel, graft_ctx *ctx);
/* n elements of a real dtype t (floats exactly; integers and bool as the
 * nearest double) to double; and floats back, rounding once to nearest even. */
void graft_xform__to_f64(const uint8_t *src, graft_dtype t, size_t n, double *out);
void graft_xform__from_f64(uint8_t *dst, graft_dtype t, const double *v, size_t n);
/* One element of dtype t holding x (complex: real part x); an integer
 * target needs an integral x in range. */
int graft_xform__scalar(uint8_t *dst, graft_dtype t, double x, graft_ctx *ctx);
/* Tests only: false keeps casts off the CPU's F16C instructions (the
 * portable kernels); returns the previous setting. */
bool graft_xform__cast_use_hw(bool on);
/* Whether cast from -> to is supported at all (checked by infer). */
bool graft_xform__can_cast(graft_dtype from, graft_dtype to);
/* float8_e4m3fn / float8_e5m2 (float8.c): exact widening, and narrowing
 * rounded to nearest even with ONNX Cast's saturation. */
double graft_xform__f8_decode(uint8_t c, graft_dtype t);
uint8_t graft_xform__f8_encode(double x, graft_dtype t);

/*
 * The split kernels see the tensor as [outer, mid, inner]: mid is the op's
 * axis and inner counts bytes.  chunks: mid = k chunks of mid/k, out chunk c
 * = in chunk order[c].  take: out = chunk `index` of `count` (or, when
 * len >= 0, rows [start, start+len)).  concat: join the sources' mids.
 */
int graft_xform__chunks(graft_xout *o, const uint8_t *src, uint64_t outer, uint64_t mid,
                        uint64_t inner, const int64_t *order, uint32_t k);
int graft_xform__slice(graft_xout *o, const uint8_t *src, uint64_t outer, uint64_t mid,
                       uint64_t inner, uint64_t start, uint64_t len);
int graft_xform__concat(graft_xout *o, const uint8_t *const *src, const uint64_t *mid, size_t nsrc,
                        uint64_t outer, uint64_t inner);

#endif
