/*
 * pickle.h - a restricted pickle reader: it builds a tree of values and never
 * runs anything (internal to the PyTorch formats).
 *
 * REDUCE, NEWOBJ and BUILD only record what they would call (a PK_OBJ node
 * holding the callable, its arguments and state).  Globals are classified as
 * they are read: the ones PyTorch's weights_only loader allows get a known
 * id, harmless unknown classes stay opaque, and globals from modules that can
 * run code (os, sys, subprocess, builtins.eval, ...) fail with GRAFT_EUNSAFE.
 */
#ifndef GRAFT_FORMATS_PICKLE_H
#define GRAFT_FORMATS_PICKLE_H

#include "arena.h"

#define GRAFT_PK_MAX_STACK (1u << 20)   /* values on the stack */
#define GRAFT_PK_MAX_MARKS (1u << 16)   /* nested MARKs */
#define GRAFT_PK_MAX_MEMO (1u << 22)    /* highest memo index + 1 */
#define GRAFT_PK_MAX_NODES (1u << 22)   /* values built from one pickle (~120 bytes each) */

typedef enum graft_pk_kind {
    PK_NONE,
    PK_BOOL,    /* i: 0 or 1 */
    PK_INT,     /* i */
    PK_BIGINT,  /* s, n: little-endian two's complement (LONG1/LONG4 over 8 bytes) */
    PK_FLOAT,   /* f */
    PK_STR,     /* s, n: UTF-8 */
    PK_BYTES,   /* s, n */
    PK_TUPLE,   /* v, len */
    PK_LIST,    /* v, len */
    PK_SET,     /* v, len */
    PK_DICT,    /* v, len pairs: v[2i] key, v[2i+1] value */
    PK_GLOBAL,  /* s: module, name; gid */
    PK_OBJ,     /* callable (a PK_GLOBAL), args; v, len: SETITEM pairs; state (BUILD) */
    PK_PERSID,  /* args: the persistent id */
} graft_pk_kind;

/* Globals the PyTorch readers interpret; anything else allowed is opaque. */
typedef enum graft_pk_gid {
    PKG_OPAQUE = 0,          /* harmless unknown class, kept as a name */
    PKG_ORDERED_DICT,        /* collections.OrderedDict */
    PKG_COUNTER,             /* collections.Counter */
    PKG_REBUILD_TENSOR,      /* torch._utils._rebuild_tensor */
    PKG_REBUILD_TENSOR_V2,
    PKG_REBUILD_TENSOR_V3,
    PKG_REBUILD_PARAMETER,
    PKG_REBUILD_PARAMETER_STATE,
    PKG_REBUILD_FROM_TYPE_V2,  /* torch._tensor._rebuild_from_type_v2 */
    PKG_REBUILD_OTHER,       /* qtensor, sparse, nested, meta...: refused by the readers */
    PKG_STORAGE,             /* torch.FloatStorage etc.; dtype in the node */
    PKG_STORAGE_QUANTIZED,   /* torch.QInt8Storage etc. */
    PKG_UNTYPED_STORAGE,     /* torch.UntypedStorage, torch.storage.UntypedStorage */
    PKG_DTYPE,               /* torch.float32 etc.; dtype in the node */
    PKG_DTYPE_OTHER,         /* a torch dtype graft has no name for */
    PKG_PARAMETER,           /* torch.nn.parameter.Parameter */
    PKG_TENSOR,              /* torch.Tensor, torch.FloatTensor... */
    PKG_TORCH_OTHER,         /* torch.Size, torch.device, layouts, qschemes */
    PKG_CODECS_ENCODE,       /* _codecs.encode */
    PKG_BUILTIN,             /* builtins set, frozenset, bytearray, complex, bytes... */
    /* Globals a whole-model pickle holds as attributes (activation functions,
     * functools.partial, hook objects, torch.ao classes) and a state dict
     * never does: read by graft_pickle__load_lenient() only, kept opaque. */
    PKG_FOREIGN,
    PKG_GETATTR,             /* builtins.getattr: only on a torch._C function table */
} graft_pk_gid;

typedef struct graft_pk graft_pk;
struct graft_pk {
    graft_pk_kind kind;
    uint8_t gid;            /* graft_pk_gid of a PK_GLOBAL */
    uint8_t op;             /* PK_OBJ: the opcode that made it (REDUCE, NEWOBJ...) */
    graft_dtype dtype;      /* PK_GLOBAL storage class or dtype */
    uint64_t off;           /* file offset of the opcode that made it */
    int64_t i;              /* PK_INT, PK_BOOL */
    double f;               /* PK_FLOAT */
    const char *s;          /* str/bytes/bigint bytes, global module; arena, NUL-terminated */
    size_t n;               /* bytes in s */
    const char *name;       /* PK_GLOBAL: attribute name (arena) */
    graft_pk **v;           /* arena; len items (dicts and objects: key, value, ...) */
    size_t len, cap;
    graft_pk *callable;     /* PK_OBJ: the global called */
    graft_pk *args;         /* PK_OBJ: its argument tuple; PK_PERSID: the id */
    graft_pk *state;        /* PK_OBJ: BUILD state, NULL if none */
    uint32_t tid;           /* PyTorch readers: tensor number + 1 (0 = none) */
};

/**
 * Read one pickle from p[0..n) up to its STOP.  Nodes are allocated from
 * `arena` and live as long as it.  `origin` is the file offset of p[0], for
 * messages ("pickle offset 0x1f: global 'os.system' is not allowed").
 *
 * @param[out] out       the value left by STOP
 * @param[out] consumed  bytes up to and including STOP (may be NULL)
 * @return GRAFT_OK, GRAFT_ECORRUPT (malformed), GRAFT_EFORMAT (an opcode or
 *         use graft does not support), GRAFT_EUNSAFE (a global that could run
 *         code), GRAFT_ELIMIT (a cap), GRAFT_ENOMEM
 */
int graft_pickle__load(graft_pk **out, size_t *consumed, graft_arena *arena,
                       const uint8_t *p, size_t n, uint64_t origin, graft_ctx *ctx);

/*
 * graft_pickle__load, except that foreign globals (PKG_FOREIGN, PKG_GETATTR)
 * are accepted as opaque names; *foreign is the first one read (NULL if
 * none), for the caller to refuse unless the pickle is a whole model
 * (graft_torch__collect).  Globals that could run code still fail.
 */
int graft_pickle__load_lenient(graft_pk **out, graft_pk **foreign, size_t *consumed,
                               graft_arena *arena, const uint8_t *p, size_t n, uint64_t origin,
                               graft_ctx *ctx);

/* "dict", "tuple", "object"...: a kind's Python name, for messages. */
const char *graft_pickle__kind_name(graft_pk_kind kind);

/* An item of a tuple/list or NULL when out of range. */
static inline graft_pk *graft_pk_item(const graft_pk *t, size_t i)
{
    return t && (t->kind == PK_TUPLE || t->kind == PK_LIST) && i < t->len ? t->v[i] : NULL;
}

#endif
