/*
 * torch_walk.h - tensors of a torch.save pickle, shared by the zip and
 * legacy readers and the writer (internal).
 *
 * graft_torch__collect() walks the value tree of data.pkl: dicts (plain,
 * OrderedDict, attributes of opaque objects), lists and tuples, and lists
 * every tensor-rebuild call under its dotted key path ("model.fc.weight",
 * "optimizer.state.0.momentum_buffer").  It interprets the call and its
 * persistent id but touches no storage bytes: each format then says where
 * storage `key` lives and graft_torch__add() checks the view against it.
 */
#ifndef GRAFT_FORMATS_TORCH_WALK_H
#define GRAFT_FORMATS_TORCH_WALK_H

#include "format.h"
#include "pickle.h"

#define GRAFT_TORCH_MAX_DEPTH 64         /* nesting of containers */
#define GRAFT_TORCH_MAX_VISITS (1u << 22) /* values visited (shared sub-trees count again) */
#define GRAFT_TORCH_MAX_BROADCAST (64u << 20) /* bytes of a view larger than its storage */

typedef struct graft_torch_storage {
    const char *key;          /* record name under data/ (legacy: the stream key) */
    graft_dtype dtype;        /* element type; GRAFT_UINT8 for untyped storages */
    uint64_t numel;           /* elements, from the persistent id */
    uint64_t nbytes;          /* numel * element size */
    /* Filled by the format: */
    uint64_t data_off;        /* file offset of byte 0 (stored records) */
    uint64_t size;            /* bytes the file holds for it */
    const struct graft_zip_entry *entry; /* zip member (compressed records) */
    bool compressed;
    bool checked;             /* CRC-32 verified (deferred checks): its views need not */
} graft_torch_storage;

typedef struct graft_torch_ref {
    const char *name;         /* arena; dotted key path */
    graft_pk *node;           /* outermost call (Parameter, from_type or rebuild) */
    graft_pk *rebuild;        /* the _rebuild_tensor* call */
    graft_dtype dtype;
    uint32_t ndim;
    const int64_t *shape;     /* arena */
    const int64_t *stride;    /* arena, elements */
    int64_t offset;           /* storage offset, elements */
    size_t storage;           /* index into graft_torch_refs.storages */
    bool requires_grad;
    size_t first;             /* index of the first ref of the same node (tied weights) */
    bool hidden;              /* a non-persistent buffer: in the tree, not in state_dict() */
    /* A tensor graft cannot read (quantized, sparse, nested, a dtype graft
     * has no name for): its stored type (arena), NULL otherwise.  Its
     * storages are registered (the readers find them, the writer copies
     * them as they are); `storage` and the view fields are unused. */
    const char *unsupported;
    uint64_t stored_bytes;    /* unsupported: bytes of its storages */
} graft_torch_ref;

typedef struct graft_torch_refs {
    graft_torch_ref *v;       /* malloc; n refs in walk order */
    size_t n, cap;
    graft_torch_storage *storages; /* malloc; nstorages, in first-use order */
    size_t nstorages, scap;
    size_t *by_key;           /* malloc; storage indices sorted by key */
} graft_torch_refs;

/* Walk `root`; names and shapes go to `arena`.  Errors name the key path.
 * A torch.nn.Module object (torch.save(model)) is walked as state_dict()
 * walks it: each module's _parameters, then its _buffers, then its
 * _modules, named "conv1.weight"; None entries and other attributes are
 * left out, and non-persistent buffers are refs marked hidden.  A module
 * whose state_dict() is not that (quantized and lazy torch modules, an
 * unknown state_dict hook) is refused, naming it.  `foreign` is the first
 * foreign global of the pickle (graft_pickle__load_lenient): refused with
 * GRAFT_EUNSAFE unless the tree holds a module. */
int graft_torch__collect(graft_torch_refs *out, graft_pk *root, const graft_pk *foreign,
                         graft_arena *arena, graft_ctx *ctx);
void graft_torch__refs_free(graft_torch_refs *r);
/* The storage with this key, or NULL. */
graft_torch_storage *graft_torch__find_storage(graft_torch_refs *r, const char *key);
/*
 * Check storage sizes and add every ref as a tensor of m: a view into
 * m->sources[0] for stored storages, or `load` for compressed ones (then
 * t->offset is relative to the storage and t->aux the storage index).
 */
int graft_torch__add_all(graft_model *m, graft_torch_refs *r, bool big_endian,
                         graft_load_fn load, void *load_state, graft_ctx *ctx);

/* What a PyTorch reader keeps in m->state: the parsed pickle, for the writer. */
typedef struct graft_torch_state {
    graft_arena arena;        /* pickle values, key paths, shapes */
    graft_pk *root;           /* the value of data.pkl (legacy: the main pickle) */
    graft_torch_refs refs;
    graft_tensor *tensors;    /* malloc; refs.n copies as opened (before --select) */
    struct graft_zip *zip;    /* zip archives: the directory; owned */
    uint8_t *pkl;             /* data.pkl when it was compressed; owned */
    bool big_endian;          /* storages hold big-endian elements */
} graft_torch_state;

int graft_torch__state_new(graft_torch_state **out, graft_ctx *ctx);
void graft_torch__state_free(void *state);
/* Snapshot the tensor table into st->tensors (after graft_torch__add_all),
 * then leave the hidden refs out of m (the writer still writes them). */
int graft_torch__snapshot(graft_model *m, graft_torch_state *st, graft_ctx *ctx);

/* convert (torch_new.c): the values of the pickle that are not tensors,
 * under `select`; and turn m's tensor table into a fresh state dict to be
 * written by graft_torch__write (sets m->state and m->format). */
void graft_torch__extras(const graft_model *m, const char *select, graft_extras *out);
int graft_torch__new_state_dict(graft_model *m, graft_ctx *ctx);
extern const graft_format graft_format_pytorch_zip;

/* The writer of both PyTorch formats: a torch.save zip archive (torch_write.c). */
int graft_torch__write(const graft_model *m, const char *out_path, graft_fill *fill,
                       graft_ctx *ctx);

#endif
