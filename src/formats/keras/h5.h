/*
 * h5.h - libhdf5 plumbing shared by the Keras formats (keras_h5.c, keras3.c).
 *
 * HDF5 files are read through libhdf5 only (never parsed by hand); this
 * module keeps libhdf5 quiet and safe (no automatic error printing, no filter
 * plugins, no external links, no external or virtual dataset storage), turns
 * its error stack into one graft_error line, maps HDF5 datatypes onto graft
 * dtypes (h5.c), rewrites a copy of a skeleton file with new dataset
 * values (h5_rewrite.c) and checks that copy before it is committed (h5.c).
 */
#ifndef GRAFT_CORE_H5_H
#define GRAFT_CORE_H5_H

#include "format.h"

#include <hdf5.h>
#include <string.h>

#define GRAFT_H5_MAX_DEPTH 64        /* cap on group nesting walked */
#define GRAFT_H5_MAX_GROUPS (1u << 20) /* cap on groups visited in one walk */

/* Format state of a model read through libhdf5: m->state points here (or to
 * a struct that starts with it).  The parent process never opens the file
 * with libhdf5 (see graft_h5__sandbox): the handles are set in a child. */
typedef struct graft_h5_file {
    hid_t file;              /* a child's read-only handle on the image; invalid in the parent */
    hid_t lapl, dapl, gapl;  /* link/dataset/group access lists refusing external links */
    const graft_source *src; /* source holding the HDF5 bytes (views point here) */
    uint64_t base;           /* offset of the HDF5 image inside src */
    uint64_t size;           /* bytes of the image */
    uint8_t *image;          /* owned copy of an image no source holds, or NULL */
    /* An image stored in a zip member opened as a skeleton's: the member's
     * CRC-32, checked the first time a tensor is read (keras3.c). */
    bool crc_due;
    uint32_t crc;
} graft_h5_file;

/* The HDF5 datasets behind a model's tensors: t->aux_ptr is the dataset's
 * absolute path (arena string). */

/* Make the HDF5 image src->data[base, base + size) m->state, unless m->state
 * is one already (a format handing a file over to another).  Nothing is
 * parsed here. */
int graft_h5__attach(graft_model *m, const graft_source *src, uint64_t base,
                     uint64_t size, graft_ctx *ctx);
/* The same for an image in a malloc'd buffer, which m->state takes over
 * (tensors are then read through libhdf5, never viewed). */
int graft_h5__attach_owned(graft_model *m, uint8_t *image, uint64_t size, graft_ctx *ctx);
void graft_h5__state_free(void *state);
/* The image's first byte (in a mapped source or the owned copy). */
const uint8_t *graft_h5__image(const graft_h5_file *h);

/*
 * The libhdf5 sandbox (h5_sandbox.c).  graft_h5__sandbox() forks; the child
 * limits its address space (its own plus 1 GiB plus budget->mem) and CPU
 * time (graft_h5__limits), installs a seccomp filter (read, mmap, write to
 * its pipe), runs child(carg, fd, ctx), which writes records with
 * graft_h5__put(), and exits; its error (ctx) goes back as an 'E' record.
 * The parent hands every other record to fn(arg, kind, payload, n) and
 * turns a crash, a limit or silence into one line naming the signal and
 * what the child was doing (graft_h5__doing()).
 */
typedef struct graft_h5_budget {
    uint64_t mem;   /* bytes the job itself must hold at once */
    uint64_t work;  /* bytes it reads or writes (its CPU allowance) */
    uint64_t file;  /* bytes of the HDF5 image: work counts up to 16x these */
} graft_h5_budget;
typedef int (*graft_h5_child_fn)(void *arg, int fd, graft_ctx *ctx);
typedef int (*graft_h5_record_fn)(void *arg, uint8_t kind, const uint8_t *p, size_t n);
int graft_h5__sandbox(graft_h5_child_fn child, void *carg, const graft_h5_budget *budget,
                      graft_h5_record_fn fn, void *arg, graft_ctx *ctx);
int graft_h5__put(int fd, uint8_t kind, const void *p, size_t n);
/* A child's CPU seconds (base + 1 s per 64 MiB of work, work capped at 16x
 * the file's bytes) and seconds of silence on the pipe (2 x CPU + base). */
void graft_h5__limits(const graft_h5_budget *b, unsigned *cpu, unsigned *wall);
/* The bases: 10 s of CPU and 10 s of slack (tests lower them). */
extern unsigned graft_h5__base_cpu, graft_h5__base_wall;
/* In a child: say what it is doing, for the parent's message if it dies. */
void graft_h5__doing(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* In a child: open an in-memory image in place (no copy, no file opened). */
hid_t graft_h5__open_image(const uint8_t *p, size_t size, bool writable, graft_ctx *ctx);
/* In a child: drop the pages of a read-only, file-mapped image from the
 * resident set.  libhdf5 keeps what it parsed in its own cache, but every
 * header it touched mapped the page-cache folio around it (up to 2 MiB for
 * a file just written), which over hundreds of datasets grew the child by
 * ~200 KB a dataset.  Never for a heap image: it would read back zeros. */
void graft_h5__drop_pages(const uint8_t *p, size_t size);
/* In a child: open m's image and its access property lists into m->state. */
int graft_h5__child_open(const graft_model *m, graft_ctx *ctx);
/*
 * Run walk(m, arg, fd, ctx) in a child on m's image: the tensors it adds
 * come back to m in the parent (views into the mapped file, or datasets
 * loaded and streamed through a child); other records it writes to fd go
 * to extra(xarg, ...).
 */
typedef int (*graft_h5_walk_fn)(graft_model *m, void *arg, int fd, graft_ctx *ctx);
int graft_h5__walk(graft_model *m, graft_h5_walk_fn walk, void *arg, graft_h5_record_fn extra,
                   void *xarg, graft_ctx *ctx);

/* The HDF5 superblock signature at 0 or a user-block boundary (512, 1024, ...). */
static inline bool graft_h5__signature(const uint8_t *head, size_t n)
{
    static const uint8_t sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    if (!head) return false;
    for (uint64_t off = 0; off + 8 <= n; off = off ? off * 2 : 512)
        if (memcmp(head + off, sig, 8) == 0) return true;
    return false;
}

/* graft_format.layout of the Keras HDF5 formats (keras_h5.c): Keras 2
 * layouts are keras-h5's, Keras 3 object trees keras3-weights'; anything else
 * stays with the format that claimed the file. */
int graft_keras__h5_layout(graft_model *m, const struct graft_format **out, graft_ctx *ctx);

/* Report a libhdf5 failure: "<what>: <innermost libhdf5 message>". */
int graft_h5__fail(graft_ctx *ctx, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The type of the object at `path` (relative to loc), H5O_TYPE_UNKNOWN when
 * there is none; is there an attribute `name` on loc (`where` names loc in
 * the child's note, or NULL)? */
H5O_type_t graft_h5__obj_type(const graft_h5_file *h, hid_t loc, const char *path);
/* Is the last link of `path` an external link (never followed)? */
bool graft_h5__is_external(const graft_h5_file *h, hid_t loc, const char *path);
bool graft_h5__has_attr(hid_t loc, const char *name, const char *where);
/* After graft_h5__obj_type gave H5O_TYPE_UNKNOWN: " (libhdf5: <why>)" when
 * libhdf5 failed on the file rather than found nothing, else "". */
const char *graft_h5__lookup_error(void);

/*
 * Read a Keras name-list attribute of loc (`name`, or the chunked `name0`,
 * `name1`, ...): variable- or fixed-length strings, or an empty numeric
 * array (an empty list).  *out is a NULL-terminated array of arena strings.
 * `where` names loc in messages.
 */
int graft_h5__name_list(graft_model *m, hid_t loc, const char *where, const char *name,
                        char ***out, size_t *count, graft_ctx *ctx);

/* Add the dataset at absolute `path` as tensor `name` (dtype, shape, and a
 * view into the source when the bytes lie there as is, else a loader). */
int graft_h5__add_dataset(graft_model *m, const char *path, const char *name,
                          graft_ctx *ctx);

/* Add every dataset under group `path` (hard links only, in natural name
 * order so vars/2 comes before vars/10), named prefix + relative path. */
int graft_h5__add_tree(graft_model *m, const char *path, const char *prefix,
                       graft_ctx *ctx);

/* Elements go through libhdf5 in the file's own type (no conversion, so NaN
 * payloads survive): the element size to byte-swap for a big-endian number
 * type (0 otherwise), and the swap itself over n bytes. */
size_t graft_h5__swap_unit(hid_t ft);
void graft_h5__byteswap(uint8_t *p, uint64_t n, size_t unit);

/*
 * Write a copy of the HDF5 image of m to `out` (an open sink) with every
 * tensor's dataset holding fill->emit()'s bytes.  Datasets whose bytes lie
 * contiguous and little-endian in the file are emitted straight into the
 * copy at their offset (each byte written once); the others (chunked,
 * compressed, big-endian...) are emitted into a scratch file and written
 * through libhdf5 into the copy.  On return the sink is flushed, not
 * committed.
 */
int graft_h5__rewrite(const graft_model *m, graft_sink *out, graft_fill *fill,
                      graft_ctx *ctx);
/*
 * Check the rewritten copy of m in sink `copy` before it is committed: it must
 * reopen, every object in it must be reachable, and every tensor's dataset
 * must open with its shape.  A damaged skeleton that libhdf5 still reads can
 * give a dataset an address inside the file's own metadata (superblock,
 * object headers, heaps), which the new values then overwrite; such a
 * skeleton is refused with GRAFT_ECORRUPT naming m->path.
 */
int graft_h5__check_copy(const graft_model *m, graft_sink *copy, graft_ctx *ctx);
/* graft_h5__rewrite into a new file at out_path, checked with
 * graft_h5__check_copy and committed on success. */
int graft_h5__write_checked(const graft_model *m, const char *out_path, graft_fill *fill,
                            graft_ctx *ctx);

#endif
