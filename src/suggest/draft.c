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

/* ---- YAML text: every scalar and comment of the draft goes through these -- */

/* Length of the UTF-8 sequence at p (n bytes left), 0 when not valid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t k = p[0] < 0x80 ? 1 : (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3
             : (p[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (!k || k > n || (k == 2 && p[0] < 0xC2)) return 0;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return k;
}

static bool printable(unsigned char c) { return c >= 0x20 && c != 0x7f; }

/* Single-quoted ('' for a quote) when every character may appear there;
 * else double-quoted with escapes (control characters).  Bytes that are not
 * UTF-8 cannot be written in YAML at all: they come out as \xNN, which
 * YAML reads as another character, and the draft's own check then fails
 * naming the tensor. */
void sg_yaml_quote(graft_jsonw *w, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    bool plain = true;
    for (size_t i = 0, k; i < n && plain; i += k) {
        k = utf8_len(p + i, n - i);
        plain = k > 0 && (k > 1 || printable(p[i]));
    }
    if (plain) {
        graft_jsonw_raw(w, "'", 1);
        for (size_t i = 0; i < n; i++) graft_jsonw_raw(w, p[i] == '\'' ? "''" : s + i, p[i] == '\'' ? 2 : 1);
        graft_jsonw_raw(w, "'", 1);
        return;
    }
    graft_jsonw_raw(w, "\"", 1);
    for (size_t i = 0, k; i < n; i += k) {
        k = utf8_len(p + i, n - i);
        if (k > 1) graft_jsonw_raw(w, s + i, k);
        else if (k == 1 && (p[i] == '"' || p[i] == '\\')) graft_jsonw_printf(w, "\\%c", p[i]);
        else if (k == 1 && printable(p[i])) graft_jsonw_raw(w, s + i, 1);
        else graft_jsonw_printf(w, "\\x%02x", p[i]), k = 1;
    }
    graft_jsonw_raw(w, "\"", 1);
}

/* "# text" with what a comment cannot hold (line breaks, control
 * characters, bytes that are not UTF-8) written as '?'. */
void sg_yaml_comment(graft_jsonw *w, const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t n = strlen(text);
    graft_jsonw_raw(w, "# ", 2);
    for (size_t i = 0, k; i < n; i += k) {
        k = utf8_len(p + i, n - i);
        if (k > 1 || (k == 1 && printable(p[i]))) graft_jsonw_raw(w, text + i, k);
        else graft_jsonw_raw(w, "?", 1), k = 1;
    }
}

/* ---- transforms ----------------------------------------------------------- */

enum { SEL_RANK = 1, SEL_LAST = 2, SEL_NAMES = 4, SEL_PREFIX = 8 };

typedef struct xsel {
    const char *ops;
    unsigned how;
    uint32_t rank;
    size_t cover;
} xsel;

typedef struct draft {
    graft_suggestion *s;
    graft_jsonw y;
    bool *taken, *member;
    const char **lasts;
    size_t nlast;
    bool lasts_ok;        /* every member's name has a last component of its own */
    char prefix[256];     /* the members' common start, without a trailing number */
    size_t ntransforms;
} draft;

static bool selects(const draft *d, size_t i, const xsel *x)
{
    const graft_suggestion *s = d->s;
    const sg_t *t = &s->dst.v[i];
    long from[5];
    sg_sources(s, t, from);
    if ((x->how & SEL_RANK) && s->src.v[from[0]].t->ndim != x->rank) return false;
    if ((x->how & SEL_PREFIX) && strncmp(t->name, d->prefix, strlen(d->prefix))) return false;
    if (x->how & SEL_LAST) {
        bool hit = false;
        for (size_t k = 0; k < d->nlast && !hit; k++) hit = !strcmp(last_component(t->name), d->lasts[k]);
        if (!hit) return false;
    }
    if ((x->how & SEL_NAMES) && !d->member[i]) return false;
    return true;
}

/* The members of the chain `ops` among the targets not taken yet, their
 * last components and their common prefix. */
static void members(draft *d, const char *ops)
{
    const graft_suggestion *s = d->s;
    size_t plen = SIZE_MAX;
    const char *first = NULL;
    d->nlast = 0;
    d->lasts_ok = true;
    for (size_t j = 0; j < s->dst.n; j++) {
        const sg_t *u = &s->dst.v[j];
        d->member[j] = u->pair >= 0 && !d->taken[j] && !strcmp(u->ops, ops);
        if (!d->member[j]) continue;
        const char *l = last_component(u->name);
        d->lasts_ok &= l != u->name;
        size_t k = 0;
        while (k < d->nlast && strcmp(d->lasts[k], l)) k++;
        if (k == d->nlast) d->lasts[d->nlast++] = l;
        if (!first) first = u->name, plen = strlen(u->name);
        size_t q = 0;
        while (q < plen && first[q] == u->name[q]) q++;
        plen = q;
    }
    if (!first) plen = 0;
    while (plen > 0 && first[plen - 1] >= '0' && first[plen - 1] <= '9') plen--;
    if (plen >= sizeof d->prefix || plen < 3) plen = 0;
    memcpy(d->prefix, first ? first : "", plen);
    d->prefix[plen] = '\0';
}

static const char *conf_comment(const graft_suggestion *s, const bool *set, char *buf, size_t n)
{
    size_t k[4] = {0}, first = SIZE_MAX;
    for (size_t i = 0; i < s->dst.n; i++)
        if (set[i]) {
            k[s->dst.v[i].conf]++;
            if (s->dst.v[i].conf != GRAFT_SUGGEST_CERTAIN && first == SIZE_MAX) first = i;
        }
    if (first == SIZE_MAX) return NULL;
    snprintf(buf, n, "not certain: %zu likely, %zu guess (first: %s: %s)", k[1], k[2],
             s->dst.v[first].name, s->dst.v[first].reason);
    return buf;
}

/* The best selector for the chain of target i (cover 0: none). */
static xsel best_for(draft *d, size_t i)
{
    const graft_suggestion *s = d->s;
    const sg_t *t = &s->dst.v[i];
    long from[5];
    sg_sources(s, t, from);
    members(d, t->ops);
    static const unsigned tries[] = {SEL_RANK, SEL_LAST, SEL_RANK | SEL_LAST, SEL_PREFIX | SEL_RANK,
                                     SEL_PREFIX, SEL_NAMES};
    for (size_t q = 0; q < sizeof tries / sizeof *tries; q++) {
        xsel x = {.ops = t->ops, .how = tries[q], .rank = s->src.v[from[0]].t->ndim};
        if ((x.how & SEL_LAST) && !d->lasts_ok) continue;
        if ((x.how & SEL_PREFIX) && !d->prefix[0]) continue;
        bool ok = true;
        for (size_t j = 0; j < s->dst.n && ok; j++) {
            const sg_t *u = &s->dst.v[j];
            if (u->pair < 0 || d->taken[j] || !selects(d, j, &x)) continue;
            if (strcmp(u->ops, t->ops)) ok = false;
            else x.cover++;
        }
        if (ok) return x;
    }
    return (xsel){0};
}

/* Emit one transforms entry for the best selector; false when none is left. */
static bool one_transform(draft *d)
{
    graft_suggestion *s = d->s;
    xsel best = {0};
    const char *seen[64];  /* chains tried: each once, not once per target */
    size_t nseen = 0;
    for (size_t i = 0; i < s->dst.n; i++) {
        const sg_t *t = &s->dst.v[i];
        if (t->pair < 0 || d->taken[i] || !t->ops[0]) continue;
        size_t k = 0;
        while (k < nseen && strcmp(seen[k], t->ops)) k++;
        if (k < nseen) continue;
        if (nseen < sizeof seen / sizeof *seen) seen[nseen++] = t->ops;
        xsel x = best_for(d, i);
        if (x.cover > best.cover) best = x;
    }
    if (!best.cover) return false;
    members(d, best.ops);  /* the chosen chain's members, lasts and prefix again */
    bool *set = calloc(s->dst.n + 1, sizeof *set);
    if (!set) {
        d->y.rc = graft_error_oom(d->y.ctx, "transforms");
        return false;
    }
    for (size_t j = 0; j < s->dst.n; j++)
        if (s->dst.v[j].pair >= 0 && !d->taken[j] && selects(d, j, &best)) set[j] = true;
    graft_jsonw_raw(&d->y, "  - ", 4);
    const char *lead = "";
    if (best.how & (SEL_LAST | SEL_NAMES | SEL_PREFIX)) {
        graft_jsonw re;
        graft_jsonw_init(&re, d->y.ctx);
        if (best.how & SEL_NAMES) {
            graft_jsonw_raw(&re, "^(?:", 4);
            bool first = true;
            for (size_t j = 0; j < s->dst.n; j++)
                if (set[j]) {
                    if (!first) graft_jsonw_raw(&re, "|", 1);
                    first = false;
                    sg_regex_literal(&re, s->dst.v[j].name, strlen(s->dst.v[j].name));
                }
            graft_jsonw_raw(&re, ")$", 2);
        } else if (best.how & SEL_PREFIX) {
            graft_jsonw_raw(&re, "^", 1);
            sg_regex_literal(&re, d->prefix, strlen(d->prefix));
        } else {
            graft_jsonw_raw(&re, "(?:^|[/.])(?:", 13);
            for (size_t k = 0; k < d->nlast; k++) {
                if (k) graft_jsonw_raw(&re, "|", 1);
                sg_regex_literal(&re, d->lasts[k], strlen(d->lasts[k]));
            }
            graft_jsonw_raw(&re, ")$", 2);
        }
        graft_jsonw_raw(&d->y, "target: ", 8);
        if (re.rc < 0) d->y.rc = re.rc;
        else sg_yaml_quote(&d->y, re.p ? re.p : "");
        graft_jsonw_free(&re);
        graft_jsonw_raw(&d->y, "\n", 1);
        lead = "    ";
    }
    if (best.how & SEL_RANK) graft_jsonw_printf(&d->y, "%srank: %u\n", lead, best.rank), lead = "    ";
    char note[768];
    const char *c = conf_comment(s, set, note, sizeof note);
    graft_jsonw_printf(&d->y, "%sops: %s\n    expect: %zu", lead, best.ops, best.cover);
    if (c) graft_jsonw_raw(&d->y, "  ", 2), sg_yaml_comment(&d->y, c);
    graft_jsonw_raw(&d->y, "\n", 1);
    for (size_t j = 0; j < s->dst.n; j++) d->taken[j] |= set[j];
    free(set);
    d->ntransforms++;
    return d->y.rc == 0;
}

/* ---- the file ------------------------------------------------------------- */

static void comment_line(graft_jsonw *w, const sg_t *t)
{
    char buf[1024];
    if (t->conf == GRAFT_SUGGEST_CERTAIN) return;
    snprintf(buf, sizeof buf, "%s: %s", conf_names[t->conf], t->reason);
    graft_jsonw_raw(w, "  ", 2);
    sg_yaml_comment(w, buf);
}

static void ignores(draft *d, const sg_side *side, bool targets)
{
    graft_suggestion *s = d->s;
    bool any = false;
    for (size_t i = 0; i < side->n; i++) {
        const sg_t *x = &side->v[i];
        bool out = x->ignore || (targets ? x->pair < 0 : !sg_src_used(s, i));
        if (!out) continue;
        /* a pattern written once */
        bool dup = false;
        for (size_t j = 0; j < i && x->ignore && x->ignore[0] && !dup; j++)
            dup = side->v[j].ignore && !strcmp(side->v[j].ignore, x->ignore);
        if (dup) continue;
        if (!any) graft_jsonw_printf(&d->y, "  %s:\n", targets ? "target" : "source");
        any = true;
        graft_jsonw re;
        char why[1024];
        graft_jsonw_init(&re, d->y.ctx);
        if (x->ignore && x->ignore[0]) graft_jsonw_raw(&re, x->ignore, strlen(x->ignore));
        else {
            graft_jsonw_raw(&re, "^", 1);
            sg_regex_literal(&re, x->name, strlen(x->name));
            graft_jsonw_raw(&re, "$", 1);
        }
        graft_jsonw_raw(&d->y, "    - ", 6);
        if (re.rc < 0) d->y.rc = re.rc;
        else sg_yaml_quote(&d->y, re.p);
        graft_jsonw_free(&re);
        if (x->ignore) snprintf(why, sizeof why, "%s", x->ignore_why);
        else if (targets) snprintf(why, sizeof why, "unpaired: %s; the skeleton's value is kept", x->reason);
        else snprintf(why, sizeof why, "unused: no target of its kind and shape");
        graft_jsonw_raw(&d->y, "  ", 2);
        sg_yaml_comment(&d->y, why);
        graft_jsonw_raw(&d->y, "\n", 1);
    }
    (void)s;
}

static int write_yaml(draft *d, const char *src_path, const char *dst_path)
{
    graft_suggestion *s = d->s;
    graft_jsonw *y = &d->y;
    char head[1024];
    snprintf(head, sizeof head, "Drafted by graft suggest from %s onto %s.", src_path, dst_path);
    sg_yaml_comment(y, head);
    graft_jsonw_raw(y, "\n", 1);
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
            /* the comment's text is ours: numbers only */
            graft_jsonw_raw(y, "\n", 1);
        }
    }
    s->nrename_entries = s->nren;
    s->npairs_entries = 0;
    for (size_t i = 0; i < s->dst.n; i++) {
        const sg_t *t = &s->dst.v[i];
        long from[5];
        size_t nfrom = sg_sources(s, t, from);
        if (t->pair < 0) continue;
        if (nfrom == 1 && (s->ren_side == GRAFT_SIDE_SOURCE ? !strcmp(s->renamed[t->pair], t->name)
                                                            : !strcmp(s->renamed[i], s->src.v[t->pair].name)))
            continue;
        if (!s->npairs_entries++) graft_jsonw_printf(y, "pairs:\n");
        graft_jsonw_raw(y, "  ", 2);
        sg_yaml_quote(y, t->name);
        graft_jsonw_raw(y, nfrom > 1 ? ": [" : ": ", nfrom > 1 ? 3 : 2);
        for (size_t k = 0; k < nfrom; k++) {
            if (k) graft_jsonw_raw(y, ", ", 2);
            sg_yaml_quote(y, s->src.v[from[k]].name);
        }
        if (nfrom > 1) graft_jsonw_raw(y, "]", 1);
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
    for (size_t i = 0; i < s->src.n; i++) out_src |= s->src.v[i].ignore || !sg_src_used(s, i);
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
        long from[5];
        const graft_tensor *want = sg_sources(s, t, from) ? s->src.v[from[0]].t : NULL;
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
        long from[5];
        size_t nfrom = sg_sources(s, t, from);
        for (size_t k = 0; k < nfrom; k++) {
            const char *n = s->src.v[from[k]].name;
            if (k) graft_jsonw_raw(&w, ", ", 2);
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
