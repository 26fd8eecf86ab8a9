/* suggest_html.c - graft_suggestion_html (graft.h): the report page of a
 * draft, the plan its rules give with each target's confidence and reason
 * (the page of issue 17, fed by the suggestion). */
#include "suggest_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the page takes per confidence: certain and likely stay above the
 * low-confidence line (0.5), a guess or an unpaired target falls below. */
static const double conf_value[] = {1.0, 0.75, 0.25, 0.0};
static const char *const conf_word[] = {"certain", "likely", "guess", "unpaired"};

int graft_suggestion_html(const graft_suggestion *s, const char *path, const char *command,
                          graft_ctx *ctx)
{
    graft_report_options o = GRAFT_REPORT_OPTIONS_INIT;
    graft_rules *r = NULL;
    graft_plan *p = NULL;
    double *conf = NULL;
    char **notes = NULL;
    size_t n = 0;
    int rc;

    if ((rc = graft_rules_load_buffer(&r, "suggested rules", s->yaml, strlen(s->yaml), ctx)) < 0 ||
        (rc = graft_plan_build(&p, r, s->own_src, s->own_dst, NULL, ctx)) < 0)
        goto cleanup;
    n = graft_plan_count(p);
    conf = graft_calloc(ctx, n ? n : 1, sizeof *conf);
    notes = graft_calloc(ctx, n ? n : 1, sizeof *notes);
    if (!conf || !notes) {
        rc = graft_error_oom(ctx, "the suggestion page");
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        /* the plan's targets are the skeleton's tensors, as dst.v is (collect.c) */
        size_t k = (size_t)(graft_plan_entry_target(p, i) - s->dst.m->tensors);
        const sg_t *x = k < s->dst.n ? &s->dst.v[k] : NULL;
        conf[i] = 1.0; /* a tensor the draft left out on purpose (ignore:) */
        if (!x || x->ignore || x->conf < 0 || x->conf > GRAFT_SUGGEST_UNPAIRED) continue;
        conf[i] = conf_value[x->conf];
        if (x->reason) {
            size_t len = strlen(x->reason) + 16;
            if (!(notes[i] = graft_malloc(ctx, len))) {
                rc = graft_error_oom(ctx, "the suggestion page");
                goto cleanup;
            }
            snprintf(notes[i], len, "%s: %s", conf_word[x->conf], x->reason);
        }
    }
    o.title = "graft suggest";
    o.command = command;
    o.stats = true;
    o.confidence = conf;
    o.notes = (const char *const *)notes;
    rc = graft_plan_html(p, path, &o, ctx);
cleanup:
    for (size_t i = 0; notes && i < n; i++) free(notes[i]);
    free(notes);
    free(conf);
    graft_plan_free(p);
    graft_rules_free(r);
    return rc;
}
