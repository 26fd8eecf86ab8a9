/* op_json.h - the one JSON form of an op, as written in a rules file: each
 * op table entry's json hook (transform/ops.c), written with the one JSON
 * writer (core/json.c).  Used by `plan --json`, the manifest, `explain`,
 * graft_op_json() and the tests. */
#ifndef GRAFT_TRANSFORM_OP_JSON_H
#define GRAFT_TRANSFORM_OP_JSON_H

#include "json.h"
#include "ops.h"

/* The op as its table entry writes it: {"permute": [2, 3, 1, 0]},
 * "transpose", {"take": {"axis": 0, "start": 4, "length": 2}}, ... */
void graft_op__json(graft_jsonw *w, const graft_op *op);
/* A chain: each op as above, separated by ", " (no brackets). */
void graft_op__json_chain(graft_jsonw *w, const graft_op *ops, size_t n);

#endif
