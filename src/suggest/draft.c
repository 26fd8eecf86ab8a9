/*
 * draft.c - the rules file of a suggestion, its check, and its JSON.
 *
 * Transforms: for each op chain, the simplest selector that picks exactly
 * targets with that chain among those not yet taken by an earlier entry:
 * the source's rank, the target's last name component (kernel:0,
 * depthwise_kernel:0), both, or the names themselves; the widest first.
 * Every entry carries `expect:`; every entry that decides a target which
 * is not certain carries a comment saying how many and why.
 */
#include "rules.h"
#include "sink.h"
#include "suggest_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const conf_names[] = {"certain", "likely", "guess", "unpaired"};

static const char *last_component(const char *s)
{
    const char *a = strrchr(s, '/'), *b = strrchr(s, '.');
    const char *p = a > b ? a : b;
    return p ? p + 1 : s;
}

void sg_regex_literal(graft_jsonw *w, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strchr("\\^$.|?*+()[]{}#", s[i])) graft_jsonw_raw(w, "\\", 1);
        graft_jsonw_raw(w, &s[i], 1);
    }
}

/* ---- transforms ----------------------------------------------------------- */

enum { SEL_RANK = 1, SEL_LAST = 2, SEL_NAMES = 4 };

typedef struct xsel {
    const char *ops;
    unsigned how;
    uint32_t rank;
    size_t cover;
} xsel;

static bool selects(const graft_suggestion *s, size_t i, const xsel *x, const char *const *lasts,
                    size_t nlast, const bool *member)
{
    const sg_t *t = &s->dst.v[i];
    if ((x->how & SEL_RANK) && s->src.v[t->pair].t->ndim != x->rank) return false;
    if (x->how & SEL_LAST) {
        bool hit = false;
        for (size_t k = 0; k < nlast && !hit; k++) hit = !strcmp(last_component(t->name), lasts[k]);
        if (!hit) return false;
    }
    if ((x->how & SEL_NAMES) && !member[i]) return false;
    return true;
}

typedef struct draft {
    graft_suggestion *s;
    graft_jsonw y;
    bool *taken, *member;
    const char **lasts;
    size_t ntransforms;
} draft;

static const char *conf_comment(const graft_suggestion *s, const bool *set, char *buf, size_t n)
{
    size_t k[4] = {0}, first = SIZE_MAX;
    for (size_t i = 0; i < s->dst.n; i++)
        if (set[i]) {
            k[s->dst.v[i].conf]++;
            if (s->dst.v[i].conf != GRAFT_SUGGEST_CERTAIN && first == SIZE_MAX) first = i;
        }
    if (first == SIZE_MAX) return NULL;
    snprintf(buf, n, "  # not certain: %zu likely, %zu guess (first: %s: %s)", k[1], k[2],
             s->dst.v[first].name, s->dst.v[first].reason);
    return buf;
}

/* Emit one transforms entry for the best selector; false when none is left. */
static bool one_transform(draft *d)
{
    graft_suggestion *s = d->s;
    xsel best = {0};
    size_t nlast_best = 0;
    for (size_t i = 0; i < s->dst.n; i++) {
        const sg_t *t = &s->dst.v[i];
        if (t->pair < 0 || d->taken[i] || !t->ops[0]) continue;
        /* the chain of target i: members and their last components */
        size_t nlast = 0;
        for (size_t j = 0; j < s->dst.n; j++) {
            const sg_t *u = &s->dst.v[j];
            d->member[j] = u->pair >= 0 && !d->taken[j] && !strcmp(u->ops, t->ops);
            if (!d->member[j]) continue;
            const char *l = last_component(u->name);
            size_t k = 0;
            while (k < nlast && strcmp(d->lasts[k], l)) k++;
            if (k == nlast) d->lasts[nlast++] = l;
        }
        static const unsigned tries[] = {SEL_RANK, SEL_LAST, SEL_RANK | SEL_LAST, SEL_NAMES};
        for (size_t q = 0; q < 4; q++) {
            xsel x = {.ops = t->ops, .how = tries[q], .rank = s->src.v[t->pair].t->ndim};
            bool ok = true;
            for (size_t j = 0; j < s->dst.n && ok; j++) {
                const sg_t *u = &s->dst.v[j];
                if (u->pair < 0 || d->taken[j] || !selects(s, j, &x, d->lasts, nlast, d->member))
                    continue;
                if (strcmp(u->ops, t->ops)) ok = false;
                else x.cover++;
            }
            if (ok && x.cover > best.cover) best = x, nlast_best = nlast;
            if (ok) break;
        }
        (void)nlast_best;
    }
    if (!best.cover) return false;
    /* rebuild the members and lasts of the chosen chain */
    size_t nlast = 0;
    for (size_t j = 0; j < s->dst.n; j++) {
        const sg_t *u = &s->dst.v[j];
        d->member[j] = u->pair >= 0 && !d->taken[j] && !strcmp(u->ops, best.ops);
        if (!d->member[j]) continue;
        const char *l = last_component(u->name);
        size_t k = 0;
        while (k < nlast && strcmp(d->lasts[k], l)) k++;
        if (k == nlast) d->lasts[nlast++] = l;
    }
    bool *set = calloc(s->dst.n + 1, sizeof *set);
    if (!set) {
        d->y.rc = graft_error_oom(d->y.ctx, "transforms");
        return false;
    }
    for (size_t j = 0; j < s->dst.n; j++)
        if (s->dst.v[j].pair >= 0 && !d->taken[j] &&
            selects(s, j, &best, d->lasts, nlast, d->member))
            set[j] = true;
    graft_jsonw_raw(&d->y, "  - ", 4);
    const char *lead = "";
    if (best.how & (SEL_LAST | SEL_NAMES)) {
        graft_jsonw_raw(&d->y, "target: '", 9);
        if (best.how & SEL_NAMES) {
            graft_jsonw_raw(&d->y, "^(?:", 4);
            bool first = true;
            for (size_t j = 0; j < s->dst.n; j++)
                if (set[j]) {
                    if (!first) graft_jsonw_raw(&d->y, "|", 1);
                    first = false;
                    sg_regex_literal(&d->y, s->dst.v[j].name, strlen(s->dst.v[j].name));
                }
            graft_jsonw_raw(&d->y, ")$", 2);
        } else {
            graft_jsonw_raw(&d->y, "(?:^|[/.])(?:", 13);
            for (size_t k = 0; k < nlast; k++) {
                if (k) graft_jsonw_raw(&d->y, "|", 1);
                sg_regex_literal(&d->y, d->lasts[k], strlen(d->lasts[k]));
            }
            graft_jsonw_raw(&d->y, ")$", 2);
        }
        graft_jsonw_raw(&d->y, "'\n", 2);
        lead = "    ";
    }
    if (best.how & SEL_RANK) graft_jsonw_printf(&d->y, "%srank: %u\n", lead, best.rank), lead = "    ";
    char note[768];
    const char *c = conf_comment(s, set, note, sizeof note);
    graft_jsonw_printf(&d->y, "%sops: %s\n    expect: %zu%s\n", lead, best.ops, best.cover,
                       c ? c : "");
    for (size_t j = 0; j < s->dst.n; j++) d->taken[j] |= set[j];
    free(set);
    d->ntransforms++;
    return d->y.rc == 0;
}

/* ---- the file ------------------------------------------------------------- */

static void comment_line(graft_jsonw *w, const sg_t *t)
{
    if (t->conf != GRAFT_SUGGEST_CERTAIN)
        graft_jsonw_printf(w, "  # %s: %s", conf_names[t->conf], t->reason);
}

static void ignores(draft *d, const sg_side *side, bool targets)
{
    graft_suggestion *s = d->s;
    bool any = false;
    for (size_t i = 0; i < side->n; i++) {
        const sg_t *x = &side->v[i];
        bool out = x->ignore || x->pair < 0;
        if (!out) continue;
        /* a pattern written once */
        bool dup = false;
        for (size_t j = 0; j < i && x->ignore && x->ignore[0] && !dup; j++)
            dup = side->v[j].ignore && !strcmp(side->v[j].ignore, x->ignore);
        if (dup) continue;
        if (!any) graft_jsonw_printf(&d->y, "  %s:\n", targets ? "target" : "source");
        any = true;
        graft_jsonw_raw(&d->y, "    - '", 7);
        if (x->ignore && x->ignore[0]) graft_jsonw_raw(&d->y, x->ignore, strlen(x->ignore));
        else {
            graft_jsonw_raw(&d->y, "^", 1);
            sg_regex_literal(&d->y, x->name, strlen(x->name));
            graft_jsonw_raw(&d->y, "$", 1);
        }
        graft_jsonw_raw(&d->y, "'", 1);
        if (x->ignore)
            graft_jsonw_printf(&d->y, "  # %s", x->ignore_why);
        else if (targets)
            graft_jsonw_printf(&d->y, "  # unpaired: %s; the skeleton's value is kept", x->reason);
        else
            graft_jsonw_printf(&d->y, "  # unused: no target of its kind and shape");
        graft_jsonw_raw(&d->y, "\n", 1);
    }
    (void)s;
}

static int write_yaml(draft *d, const char *src_path, const char *dst_path)
{
    graft_suggestion *s = d->s;
    graft_jsonw *y = &d->y;
    graft_jsonw_printf(y, "# Drafted by graft suggest from %s onto %s.\n", src_path, dst_path);
    graft_jsonw_printf(y, "# Skeleton tensors: %zu certain, %zu likely, %zu guess, %zu unpaired.\n",
                       s->counts[0], s->counts[1], s->counts[2], s->counts[3]);
    graft_jsonw_printf(y, "# Every entry deciding a tensor that is not certain says so in a comment.\n");
    graft_jsonw_printf(y, "graft: 1.1\nname: ");
    char name[512];
    snprintf(name, sizeof name, "suggested: %s -> %s", src_path, dst_path);
    sg_yaml_quote(y, name);
    graft_jsonw_raw(y, "\n", 1);
    if (s->nren) {
        graft_jsonw_printf(y, "rename:\n  %s:\n", s->ren_side == GRAFT_SIDE_SOURCE ? "source" : "target");
        for (size_t k = 0; k < s->nren; k++) {
            sg_rename_line(y, &s->ren[k]);
            graft_jsonw_printf(y, ", expect: %zu}", s->ren[k].expect);
            if (s->ren[k].uncertain)
                graft_jsonw_printf(y, "  # %zu of the pairs it names are not certain (graft suggest"
                                      " --json says which and why)", s->ren[k].uncertain);
            graft_jsonw_raw(y, "\n", 1);
        }
    }
    s->nrename_entries = s->nren;
    s->npairs_entries = 0;
    for (size_t i = 0; i < s->dst.n; i++) {
        const sg_t *t = &s->dst.v[i];
        if (t->pair < 0) continue;
        if (s->ren_side == GRAFT_SIDE_SOURCE ? !strcmp(s->renamed[t->pair], t->name)
                                             : !strcmp(s->renamed[i], s->src.v[t->pair].name))
            continue;
        if (!s->npairs_entries++) graft_jsonw_printf(y, "pairs:\n");
        graft_jsonw_raw(y, "  ", 2);
        sg_yaml_quote(y, t->name);
        graft_jsonw_raw(y, ": ", 2);
        sg_yaml_quote(y, s->src.v[t->pair].name);
        comment_line(y, t);
        graft_jsonw_raw(y, "\n", 1);
    }
    bool any_ops = false;
    for (size_t i = 0; i < s->dst.n; i++) any_ops |= s->dst.v[i].pair >= 0 && s->dst.v[i].ops[0];
    if (any_ops) {
        graft_jsonw_printf(y, "transforms:\n");
        while (one_transform(d)) {}
    }
    if (y->rc < 0) return y->rc;
    bool out_src = false, out_dst = false;
    for (size_t i = 0; i < s->src.n; i++) out_src |= s->src.v[i].ignore || s->src.v[i].pair < 0;
    for (size_t i = 0; i < s->dst.n; i++) out_dst |= s->dst.v[i].ignore || s->dst.v[i].pair < 0;
    if (out_src || out_dst) {
        graft_jsonw_printf(y, "ignore:\n");
        if (out_src) ignores(d, &s->src, false);
        if (out_dst) ignores(d, &s->dst, true);
    }
    graft_jsonw_printf(y, "policy:\n  missing: error\n  unused: error\n  mismatch: error\n");
    return y->rc;
}

/* ---- the check ------------------------------------------------------------ */

static void quiet(const char *message, void *payload)
{
    (void)message;
    (void)payload;
}

static int check(graft_suggestion *s, graft_ctx *ctx)
{
    graft_rules *r = NULL;
    graft_plan *p = NULL, *rp = NULL;
    graft_plan_options po = GRAFT_PLAN_OPTIONS_INIT;
    int rc;
    if ((rc = graft_rules_load_buffer(&r, "suggested rules", s->yaml, strlen(s->yaml), ctx)) < 0) {
        graft_error_prefix(ctx, "the draft does not load");
        goto cleanup;
    }
    if ((rc = graft_plan_build(&p, r, s->src.m, s->dst.m, &po, ctx)) < 0) goto cleanup;
    for (size_t i = 0; i < graft_plan_count(p) && i < s->dst.n; i++) {
        const sg_t *t = &s->dst.v[i];
        graft_plan_status st = graft_plan_entry_status(p, i);
        const graft_tensor *got = graft_plan_entry_nsources(p, i) ? graft_plan_entry_source(p, i, 0) : NULL;
        const graft_tensor *want = t->pair >= 0 ? s->src.v[t->pair].t : NULL;
        if (st != GRAFT_PLAN_OK && st != GRAFT_PLAN_KEPT) {
            rc = graft_error(ctx, GRAFT_ERROR, "the draft fails its own plan: %s",
                             graft_plan_entry_message(p, i) ? graft_plan_entry_message(p, i) : t->name);
            goto cleanup;
        }
        if ((st == GRAFT_PLAN_OK ? got : NULL) != want) {
            rc = graft_error(ctx, GRAFT_ERROR, "the draft's plan fills %s from %s, not %s", t->name,
                             got && st == GRAFT_PLAN_OK ? got->name : "nothing", want ? want->name : "nothing");
            goto cleanup;
        }
    }
    if (graft_plan_errors(p)) {
        bool is_error = false;
        const char *msg = NULL;
        for (size_t k = 0; k < graft_plan_problem_count(p) && !is_error; k++)
            msg = graft_plan_problem(p, k, &is_error);
        rc = graft_error(ctx, GRAFT_ERROR, "the draft fails its own plan: %s", msg ? msg : "errors");
        goto cleanup;
    }
    size_t problems = 0;
    if ((rc = graft_plan_check_one_to_one(p, quiet, NULL, &problems, ctx)) < 0) goto cleanup;
    s->one_to_one = problems == 0;
    po.reverse = true;
    if (graft_plan_build(&rp, r, s->dst.m, s->src.m, &po, ctx) < 0) {
        if (graft_ctx_status(ctx) == GRAFT_ENOMEM) {
            rc = GRAFT_ENOMEM;
            goto cleanup;
        }
        graft_ctx_clear(ctx);
    } else {
        s->reversible = graft_plan_errors(rp) == 0;
    }
    rc = 0;
cleanup:
    graft_plan_free(rp);
    graft_plan_free(p);
    graft_rules_free(r);
    return rc;
}

int sg_draft(graft_suggestion *s, graft_ctx *ctx)
{
    draft d = {.s = s};
    int rc;
    memset(s->counts, 0, sizeof s->counts);
    for (size_t i = 0; i < s->dst.n; i++) s->counts[s->dst.v[i].conf]++;
    graft_jsonw_init(&d.y, ctx);
    d.taken = graft_calloc(ctx, s->dst.n + 1, sizeof *d.taken);
    d.member = graft_calloc(ctx, s->dst.n + 1, sizeof *d.member);
    d.lasts = graft_calloc(ctx, s->dst.n + 1, sizeof *d.lasts);
    if (!d.taken || !d.member || !d.lasts) {
        rc = graft_error_oom(ctx, "draft");
        goto cleanup;
    }
    if ((rc = write_yaml(&d, graft_model_path(s->src.m), graft_model_path(s->dst.m))) < 0) goto cleanup;
    s->yaml = d.y.p;
    d.y.p = NULL;
    if ((rc = check(s, ctx)) < 0) goto cleanup;
    /* the check's outcome, at the end of the file */
    graft_jsonw w;
    graft_jsonw_init(&w, ctx);
    graft_jsonw_printf(&w, "%s# Checked by graft suggest: loads, plan complete%s%s.\n", s->yaml,
                       s->one_to_one ? ", renames one to one" : ", renames NOT one to one",
                       s->reversible ? ", --reverse plan complete" : ", no complete --reverse plan");
    if ((rc = w.rc) == 0) {
        free(s->yaml);
        s->yaml = w.p;
        w.p = NULL;
    }
    graft_jsonw_free(&w);
cleanup:
    graft_jsonw_free(&d.y);
    free(d.taken);
    free(d.member);
    free(d.lasts);
    return rc;
}

/* ---- JSON ----------------------------------------------------------------- */

int graft_suggestion_json(char **out, const graft_suggestion *s, graft_ctx *ctx)
{
    graft_jsonw w;
    *out = NULL;
    graft_jsonw_init(&w, ctx);
    graft_jsonw_raw(&w, "{\"targets\": [", 13);
    for (size_t i = 0; i < s->dst.n; i++) {
        const sg_t *t = &s->dst.v[i];
        graft_jsonw_raw(&w, i ? ",\n  {\"target\": " : "\n  {\"target\": ", i ? 15 : 14);
        graft_jsonw_string(&w, t->name, strlen(t->name));
        graft_jsonw_raw(&w, ", \"sources\": [", 14);
        if (t->pair >= 0) {
            const char *n = s->src.v[t->pair].name;
            graft_jsonw_string(&w, n, strlen(n));
        }
        graft_jsonw_printf(&w, "], \"ops\": %s, \"confidence\": \"%s\", \"reason\": ",
                           t->ops && t->ops[0] ? t->ops : "[]", conf_names[t->conf]);
        graft_jsonw_string(&w, t->reason, strlen(t->reason));
        graft_jsonw_raw(&w, "}", 1);
    }
    graft_jsonw_printf(&w, "\n], \"entries\": {\"rename\": %zu, \"pairs\": %zu}, "
                           "\"one_to_one\": %s, \"reversible\": %s,\n\"rules\": ",
                       s->nrename_entries, s->npairs_entries, s->one_to_one ? "true" : "false",
                       s->reversible ? "true" : "false");
    graft_jsonw_string(&w, s->yaml, strlen(s->yaml));
    graft_jsonw_raw(&w, "}\n", 2);
    if (w.rc < 0) {
        int rc = w.rc;
        graft_jsonw_free(&w);
        return rc;
    }
    *out = w.p;
    return 0;
}

int graft_suggestion_write(const graft_suggestion *s, const char *path, graft_ctx *ctx)
{
    graft_sink *k = NULL;
    int rc = graft_sink_open(&k, path, ctx);
    if (rc < 0) return rc;
    if ((rc = graft_sink_write(k, s->yaml, strlen(s->yaml))) < 0) {
        graft_sink_abort(k);
        return rc;
    }
    return graft_sink_commit(k);
}
