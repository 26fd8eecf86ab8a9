/* layout_int.h - shared by the files of src/layout (internal). */
#ifndef GRAFT_LAYOUT_INT_H
#define GRAFT_LAYOUT_INT_H

#include "layout.h"
#include "strmap.h"
#include "ops.h"

/* A name -> tensor index over a model being opened. */
typedef struct graft_lindex {
    graft_model *m;
    graft_strmap map; /* tensor name -> index */
} graft_lindex;

int graft_lindex_init(graft_lindex *x, graft_model *m, graft_ctx *ctx);
graft_tensor *graft_lindex_get(const graft_lindex *x, const char *name, size_t n);
void graft_lindex_free(graft_lindex *x);

/* Copy l into m's arena as t's structure layout. */
bool graft_layout__attach(graft_model *m, graft_tensor *t, const graft_layout *l);

/* Naming conventions (convention.c). */
void graft_layout__convention(const graft_model *m, const graft_tensor *t, graft_layout *out);
/* The layout `fam` gives a tensor of `role` and `rank` ("OIHW" for torch
 * conv2d...); "" when it has none.  gates: that family's order for an
 * LSTM (ngates 4) or GRU (3) cell. */
const char *graft_layout__axes_for(graft_family fam, graft_role role, uint32_t rank);
const char *graft_layout__gates_for(graft_family fam, int ngates);

/* ---- a layout applied to a shape (check.c) ------------------------------ */

#define MAXF 24 /* factors of one layout */

typedef struct fac {
    char letter;
    int64_t size;
} fac;

/* A layout applied to a shape: row-major factors. */
typedef struct lview {
    fac f[MAXF];
    int nf;
    char gates[5];      /* the layout's gate order */
    int fixed_b;        /* which half of a B axis this tensor is; -1 = none */
} lview;

/* Make t (target) and s (source) comparable: a convention side re-read in the
 * structure side's role, gates and flatten agreed; false (why) if they are not. */
bool graft_lview__reconcile(graft_layout *t, graft_layout *s, uint32_t trank, uint32_t srank,
                            char *why, size_t nwhy);
/* l applied to shape s (other / oshape: the other side, for a PyTorch
 * depthwise kernel's C); false when it does not fit. */
bool graft_lview__build(const graft_layout *l, const graft_shape *s, const graft_layout *other,
                        const graft_shape *oshape, lview *v);
/* The factor holding letter a, or -1. */
int graft_lview__find(const lview *v, char a);
/* A gate's name shared by both families (Keras c = PyTorch g, h = n). */
char graft_lview__gate(char g);

#endif
