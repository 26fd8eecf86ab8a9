/* layout_json.h - src/layout's knowledge as JSON members and explain text
 * (internal; used by src/api's JSON and explain). */
#ifndef GRAFT_LAYOUT_JSON_H
#define GRAFT_LAYOUT_JSON_H

#include "json.h"
#include "lcheck.h"

/* `, "role": ..., "layout": ..., "certainty": ...` (+ gates, flatten, layer, op) */
void graft_layout__json_members(graft_jsonw *w, const graft_model *m, const graft_tensor *t);
/* A plan finding of kind layout as an object {"kind": "layout", target, ...}. */
void graft_layout__finding_json(graft_jsonw *w, const graft_layout_finding *l, const char *message);
/* explain's "layout:" section: both layouts and the check of entry e.
 * Fails only when out of memory. */
int graft_layout__explain(graft_jsonw *w, const graft_plan *p, const graft_plan_entry *e,
                          graft_ctx *ctx);
/* The same as a JSON object {"target", "source", "check", "expected",
 * "actual", "why"[, "suggested_ops"]}. */
int graft_layout__explain_json(graft_jsonw *w, const graft_plan *p, const graft_plan_entry *e,
                               graft_ctx *ctx);

#endif
