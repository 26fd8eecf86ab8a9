/*
 * suggest.c - graft_suggest(): open the two models and run the steps of
 * suggest_int.h in order.
 */
#include "rules.h"
#include "suggest_int.h"

#include <stdlib.h>
#include <string.h>

int graft_suggest(graft_suggestion **out, const char *source, const char *skeleton,
                  const graft_suggest_options *opts, graft_ctx *ctx)
{
    graft_open_options so = GRAFT_OPEN_OPTIONS_INIT, ko = GRAFT_OPEN_OPTIONS_INIT;
    graft_suggestion *s;
    int rc;
    *out = NULL;
    if (opts) so.format = opts->source_format, ko.format = opts->skeleton_format;
    if (!(s = graft_calloc(ctx, 1, sizeof *s))) return graft_error_oom(ctx, "suggestion");
    if ((rc = graft_model_open(&s->own_src, source, &so, ctx)) < 0 ||
        (rc = graft_model_open(&s->own_dst, skeleton, &ko, ctx)) < 0)
        goto fail;
    if ((rc = sg_collect(&s->src, s->own_src, true, ctx)) < 0 ||
        (rc = sg_collect(&s->dst, s->own_dst, false, ctx)) < 0 || (rc = sg_folds(s, ctx)) < 0 ||
        (rc = sg_pair(s, ctx)) < 0 ||
        (rc = sg_opchains(s, ctx)) < 0 || (rc = sg_generalise(s, ctx)) < 0 ||
        (rc = sg_draft(s, ctx)) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    graft_suggestion_free(s);
    return rc;
}

void graft_suggestion_free(graft_suggestion *s)
{
    if (!s) return;
    for (size_t k = 0; k < s->nren; k++) free(s->ren[k].match), free(s->ren[k].to);
    free(s->ren);
    free(s->folds);
    size_t nnames = s->ren_side == GRAFT_SIDE_SOURCE ? s->src.n : s->dst.n;
    for (size_t i = 0; s->renamed && i < nnames; i++) free(s->renamed[i]);
    free(s->renamed);
    free(s->yaml);
    sg_side_free(&s->src);
    sg_side_free(&s->dst);
    graft_model_free(s->own_src);
    graft_model_free(s->own_dst);
    free(s);
}

const char *graft_suggestion_rules(const graft_suggestion *s) { return s->yaml; }

size_t graft_suggestion_count(const graft_suggestion *s, graft_confidence c)
{
    return (unsigned)c < 4 ? s->counts[c] : 0;
}
