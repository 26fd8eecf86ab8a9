/* op_json.c - an op in JSON, as a rules file writes it (op_json.h): the
 * op table's own form (graft_ops__json, transform/ops.c) into a JSON writer. */
#include "op_json.h"

#include <stdlib.h>

#include "error.h"

void graft_op__json(graft_jsonw *w, const graft_op *op)
{
    char buf[256], *big = NULL;
    size_t n;
    if (w->rc < 0) return;
    n = graft_ops__json(op, buf, sizeof buf);
    if (n >= sizeof buf) { /* a long permute or reshape: ask again with room */
        if (!(big = graft_malloc(w->ctx, n + 1))) {
            w->rc = graft_error_oom(w->ctx, "an op's JSON");
            return;
        }
        graft_ops__json(op, big, n + 1);
    }
    graft_jsonw_raw(w, big ? big : buf, n);
    free(big);
}

void graft_op__json_chain(graft_jsonw *w, const graft_op *ops, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (k) graft_jsonw_raw(w, ", ", 2);
        graft_op__json(w, &ops[k]);
    }
}
