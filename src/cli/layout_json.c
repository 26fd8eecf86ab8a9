/* layout_json.c - a tensor's role, layout and certainty as JSON members
 * (graft ls --json, explain). */
#include "layout_json.h"

#include <inttypes.h>

void layout_json_members(FILE *f, const graft_model *m, const graft_tensor *t)
{
    graft_layout l;
    char s[96];
    graft_layout_of(m, t, &l);
    graft_layout_str(&l, s, sizeof s);
    fprintf(f, ", \"role\": \"%s\", \"layout\": ", graft_role_name(l.role, t->ndim));
    if (l.axes[0])
        json_string(f, s);
    else
        fputs("null", f);
    fprintf(f, ", \"certainty\": \"%s\"", graft_certainty_name(l.certainty));
    if (l.gates[0]) fprintf(f, ", \"gates\": \"%s\"", l.gates);
    if (l.flatten[0]) {
        fprintf(f, ", \"flatten\": {\"order\": \"%s\", \"channels\": %" PRId64 ", \"spatial\": ",
                l.flatten, l.flat_c);
        if (l.flat_h)
            fprintf(f, "[%" PRId64 ", %" PRId64 "]}", l.flat_h, l.flat_w);
        else
            fprintf(f, "[%" PRId64 "]}", l.flat_s);
    }
    if (l.layer) {
        fputs(", \"layer\": ", f);
        json_string(f, l.layer);
    }
    if (l.op) {
        fputs(", \"op\": ", f);
        json_string(f, l.op);
    }
}
