/* layout_json.h - printing what src/layout knows about tensors. */
#ifndef GRAFT_CLI_LAYOUT_JSON_H
#define GRAFT_CLI_LAYOUT_JSON_H

#include "cli.h"
#include "layout.h"

/* `, "role": ..., "layout": ..., "certainty": ...` (+ gates, flatten, layer, op) */
void layout_json_members(FILE *f, const graft_model *m, const graft_tensor *t);

#endif
