/* pickle_globals.h - the allow/deny policy for pickle globals (internal). */
#ifndef GRAFT_FORMATS_PICKLE_GLOBALS_H
#define GRAFT_FORMATS_PICKLE_GLOBALS_H

#include "pickle.h"

/*
 * Classify module.name (after mapping Python 2 names).  Returns a
 * graft_pk_gid (PKG_OPAQUE for a harmless unknown class) or -1 when the
 * global could run code and must be refused.  Storage classes and dtypes
 * set *dtype.
 */
int graft_pickle__classify(const char *module, const char *name, graft_dtype *dtype);

#endif
