/* op_json.h - the one JSON form of an op, as written in a rules file.  Used
 * by `plan --json`, the manifest, `explain` and graft_op_json(); the op
 * table (issue 10, part 3) will provide it per op. */
#ifndef GRAFT_TRANSFORM_OP_JSON_H
#define GRAFT_TRANSFORM_OP_JSON_H

#include "json.h"
#include "ops.h"

/* {"permute": [2, 3, 1, 0]}, "transpose", {"reshape": [...]}, {"cast": "float16"},
 * {"chunks": {"axis": 0, "order": [...]}}, {"take": {"axis", "count", "index"}}
 * or, rows start..start+length (the inverse of an unequal concat),
 * {"take": {"axis", "start", "length"}}, {"concat": {"axis": 0}}; null for
 * an unknown kind. */
void graft_op__json(graft_jsonw *w, const graft_op *op);
/* A chain: each op as above, separated by ", " (no brackets). */
void graft_op__json_chain(graft_jsonw *w, const graft_op *ops, size_t n);

#endif
