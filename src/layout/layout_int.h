/* layout_int.h - shared by the files of src/layout (internal). */
#ifndef GRAFT_LAYOUT_INT_H
#define GRAFT_LAYOUT_INT_H

#include "layout.h"
#include "strmap.h"

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

#endif
