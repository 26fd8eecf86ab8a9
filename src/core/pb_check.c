/* pb_check.c - a protobuf's top-level fields against its schema (pb_check.h). */
#include "pb_check.h"

#include "pb.h"

#include <string.h>

static const graft_pb_rule *rule_of(const graft_pb_rule *rules, size_t n, uint32_t num)
{
    for (size_t i = 0; i < n; i++)
        if (rules[i].num == num) return &rules[i];
    return NULL;
}

int graft_pb_check(const uint8_t *p, size_t n, const char *what, const graft_pb_rule *rules,
                   size_t nrules, graft_ctx *ctx)
{
    uint64_t seen = 0; /* bit i: rules[i] present (nrules <= 64) */
    graft_rd r;
    graft_pbf f;

    graft_rd_init(&r, p, n, 0, ctx);
    while (graft_rd_left(&r)) {
        /* corrupt from its first field: another kind of file; else maybe cut */
        if (graft_pb_next(&r, &f) < 0)
            return graft_error_prefix(ctx, r.pos ? "not %s, or a truncated one" : "not %s", what);
        const graft_pb_rule *ru = rule_of(rules, nrules, f.num);
        if (!ru) continue;
        /* packed repeated scalars arrive as LEN */
        if (f.wt != ru->wt && !(f.wt == GRAFT_PB_LEN && ru->wt != GRAFT_PB_LEN))
            return graft_error(ctx, GRAFT_ECORRUPT, "not %s: offset 0x%llx: field %u (%s) has "
                               "wire type %u, not %u", what, (unsigned long long)f.start,
                               f.num, ru->name, f.wt, ru->wt);
        /* One level down: another message's string field (a name) rarely
         * parses as the fields of a message. */
        for (graft_rd sub = f.sub; ru->message && graft_rd_left(&sub);) {
            graft_pbf g;
            if (graft_pb_next(&sub, &g) < 0)
                return graft_error_prefix(ctx, "not %s: field %u (%s) is not a message", what,
                                          f.num, ru->name);
        }
        if (ru - rules < 64) seen |= 1ull << (ru - rules);
    }
    for (size_t i = 0; i < nrules && i < 64; i++)
        if (rules[i].required && !(seen >> i & 1))
            return graft_error(ctx, GRAFT_ECORRUPT, "not %s: no %s (field %u)%s", what,
                               rules[i].name, rules[i].num,
                               n ? "" : "; the file is empty");
    return GRAFT_OK;
}
