/* op_json.c - an op in JSON, as a rules file writes it (op_json.h). */
#include "op_json.h"

#include <inttypes.h>

static void int_list(graft_jsonw *w, const int64_t *v, uint32_t n)
{
    graft_jsonw_raw(w, "[", 1);
    for (uint32_t i = 0; i < n; i++) graft_jsonw_printf(w, "%s%" PRId64, i ? ", " : "", v[i]);
    graft_jsonw_raw(w, "]", 1);
}

void graft_op__json(graft_jsonw *w, const graft_op *op)
{
    switch (op->kind) {
    case GRAFT_OP_PERMUTE:
    case GRAFT_OP_RESHAPE:
        graft_jsonw_printf(w, "{\"%s\": ", op->kind == GRAFT_OP_PERMUTE ? "permute" : "reshape");
        int_list(w, op->v, op->n);
        graft_jsonw_raw(w, "}", 1);
        break;
    case GRAFT_OP_TRANSPOSE: graft_jsonw_printf(w, "\"transpose\""); break;
    case GRAFT_OP_CAST: graft_jsonw_printf(w, "{\"cast\": \"%s\"}", graft_dtype_name(op->dtype)); break;
    case GRAFT_OP_CHUNKS:
        graft_jsonw_printf(w, "{\"chunks\": {\"axis\": %d, \"order\": ", (int)op->axis);
        int_list(w, op->v, op->n);
        graft_jsonw_raw(w, "}}", 2);
        break;
    case GRAFT_OP_TAKE:
        if (op->n == 2) /* rows start..start+length: the inverse of an unequal concat */
            graft_jsonw_printf(w, "{\"take\": {\"axis\": %d, \"start\": %" PRId64
                                  ", \"length\": %" PRId64 "}}",
                               (int)op->axis, op->v[0], op->v[1]);
        else
            graft_jsonw_printf(w, "{\"take\": {\"axis\": %d, \"count\": %" PRId64
                                  ", \"index\": %" PRId64 "}}",
                               (int)op->axis, op->count, op->index);
        break;
    case GRAFT_OP_CONCAT: graft_jsonw_printf(w, "{\"concat\": {\"axis\": %d}}", (int)op->axis); break;
    default: graft_jsonw_raw(w, "null", 4);
    }
}

void graft_op__json_chain(graft_jsonw *w, const graft_op *ops, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (k) graft_jsonw_raw(w, ", ", 2);
        graft_op__json(w, &ops[k]);
    }
}
