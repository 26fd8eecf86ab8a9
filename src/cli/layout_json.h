/* layout_json.h - printing what src/layout knows about tensors. */
#ifndef GRAFT_CLI_LAYOUT_JSON_H
#define GRAFT_CLI_LAYOUT_JSON_H

#include "cli.h"
#include "layout.h"
#include "lcheck.h"
#include "planload.h"

/* `, "role": ..., "layout": ..., "certainty": ...` (+ gates, flatten, layer, op) */
void layout_json_members(FILE *f, const graft_model *m, const graft_tensor *t);

/* explain's layout section: both layouts and the check of entry e. */
int layout_explain(FILE *f, const graft_plan *p, const graft_plan_entry *e, graft_ctx *ctx);

#endif
