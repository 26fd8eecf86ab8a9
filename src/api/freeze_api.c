/* freeze_api.c - graft_freeze (graft.h): the frozen skeleton of a graph
 * (formats/tf_freeze.c), planned from a checkpoint like any transplant and
 * written by the tf-graphdef writer. */
#include "graft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply.h"
#include "error.h"
#include "rules.h"
#include "sink.h"
#include "tf_freeze.h"

/* Items for the frozen skeleton: variables from the plan, other Consts kept.
 * Each variable without a value is reported; GRAFT_EPLAN when any is. */
static int items_for(const graft_plan *p, char **vars, size_t nvars,
                     const graft_freeze_options *o, graft_apply_item **out, graft_ctx *ctx)
{
    graft_apply_item *items = graft_calloc(ctx, p->nentries ? p->nentries : 1, sizeof *items);
    char msg[1024];
    size_t bad = 0;
    if (!items) return graft_error_oom(ctx, "the plan");
    for (size_t v = 0; v < nvars; v++) {
        const graft_plan_entry *e = graft_plan_find(p, vars[v]);
        if (e && e->status == GRAFT_PLAN_OK) {
            items[e->target].nsrc = e->nsources;
            items[e->target].src = e->sources;
            items[e->target].ops = e->ops;
            items[e->target].nops = e->nops;
            continue;
        }
        if (!e)
            snprintf(msg, sizeof msg, "variable '%s': not in the frozen graph", vars[v]);
        else
            snprintf(msg, sizeof msg, "variable '%s': no value in the checkpoint%s%s", vars[v],
                     e->message ? ": " : "", e->message ? e->message : "");
        if (o->problem) o->problem(msg, o->payload);
        bad++;
    }
    if (bad) {
        free(items);
        return graft_error(ctx, GRAFT_EPLAN, "nothing written");
    }
    *out = items;
    return GRAFT_OK;
}

int graft_freeze(const char *graph, const char *checkpoint, const char *const *outputs,
                 size_t noutputs, const char *out_path, const graft_freeze_options *opts,
                 size_t *nfrozen, graft_ctx *ctx)
{
    static const graft_freeze_options defaults = GRAFT_FREEZE_OPTIONS_INIT;
    const graft_freeze_options *o = opts ? opts : &defaults;
    graft_plan_options po = GRAFT_PLAN_OPTIONS_INIT;
    graft_apply_item *items = NULL;
    graft_apply_plan ap = {0};
    graft_plan *p = NULL;
    graft_sink *skel = NULL;
    char **vars = NULL, tmp[64];
    size_t nvars = 0;
    int rc, fd = -1;

    if (noutputs == 0) return graft_error(ctx, GRAFT_ERROR, "--outputs: no node names");
    /* The zero-filled frozen graph: an unnamed file beside the output
     * (O_TMPFILE), read back through /proc/self/fd, so a kill leaves nothing. */
    if ((rc = graft_sink_open(&skel, out_path, ctx)) < 0) goto cleanup;
    rc = graft_tf__freeze_skeleton(graph, outputs, noutputs, skel, &vars, &nvars, ctx);
    if (rc < 0 || (rc = graft_sink_reopen(skel, &fd, ctx)) < 0) goto cleanup;
    snprintf(tmp, sizeof tmp, "/proc/self/fd/%d", fd);
    po.source_format = o->checkpoint_format;
    po.skeleton_format = "tf-graphdef";
    if ((rc = graft_plan_open(&p, o->rules, checkpoint, tmp, &po, ctx)) < 0) goto cleanup;
    {
        const graft_model *inputs[2] = {p->source, p->target};
        if ((rc = graft_apply_check_output(out_path, inputs, 2, ctx)) < 0) goto cleanup;
    }
    if ((rc = items_for(p, vars, nvars, o, &items, ctx)) < 0) goto cleanup;
    ap.items = items;
    ap.count = p->nentries;
    if ((rc = graft_apply_write(p->source, p->target, &ap, out_path, ctx)) < 0) goto cleanup;
    if (nfrozen) *nfrozen = nvars;
cleanup:
    free(items);
    graft_plan_free(p);
    if (fd >= 0) close(fd);
    graft_sink_abort(skel);
    graft_tf__names_free(vars, nvars);
    return rc;
}
