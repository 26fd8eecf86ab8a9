/*
 * generalise.c - renames (target side) learned from the pairs, so that the
 * draft maps the architecture and not a list of names.
 *
 * Greedy: from every pair whose renamed target name is not yet its source's
 * name, candidates are drawn:
 *   - a separator swap ('/' -> '.');
 *   - the last component in the frameworks' vocabularies ('/kernel:0$' ->
 *     '.weight'), several words with one replacement as one alternation;
 *   - the part that differs (the names' common prefix and suffix cut off,
 *     widened to whole words), with one character of context or anchored at
 *     the start, its numbers as captures with index arithmetic
 *     (conv2_block1_1_conv -> layer${1-1}.${2-1}.conv${3}: numbers in
 *     order, each matched to a number of the target's name equal or off by
 *     one, a sequence alignment of the two lists) and as literals.
 * Each candidate is run by the rules engine itself (graft_rules_rename) on
 * every name of the side, and scored: the edit distance it removes between
 * the names and their partners' (summed), +2 for each name it makes equal,
 * -4 for each it breaks; never one that would give an unpaired name a name
 * of the other side, or two names the same name.  The best is kept while it gains; what no rename reaches becomes a
 * `pairs:` entry (draft.c).
 */
#include "rules.h"
#include "rules_int.h"
#include "suggest_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROUNDS 64
#define MAX_SEEDS 160   /* pairs candidates are drawn from, per round */

typedef struct cand {
    char *match, *to;
} cand;

typedef struct clist {
    cand *v;
    size_t n, cap;
} clist;

typedef struct learner {
    graft_suggestion *s;
    graft_side side;       /* whose names are renamed (toward the other's) */
    bool splits;           /* also try a name's first word alone (split_hunks) */
    sg_rename *ren;        /* learned, in order */
    size_t nren;
    size_t n;
    char **cur;
    const char **goal;     /* the paired tensor's name on the other side, NULL */
    long cur_dups;         /* duplicates(cur) */
    const char **sources;  /* the other side's names, sorted */
    size_t nsources;
    graft_ctx *ctx;
} learner;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool is_source_name(const learner *L, const char *name)
{
    return L->nsources && bsearch(&name, L->sources, L->nsources, sizeof *L->sources, cmp_str);
}

static int cl_add(clist *c, const char *match, const char *to, graft_ctx *ctx)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->v[i].match, match) && !strcmp(c->v[i].to, to)) return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        cand *nv = graft_realloc(ctx, c->v, cap * sizeof *nv);
        if (!nv) return graft_error_oom(ctx, "rename candidates");
        c->v = nv, c->cap = cap;
    }
    cand *x = &c->v[c->n];
    x->match = graft_strdup(ctx, match);
    x->to = graft_strdup(ctx, to);
    if (!x->match || !x->to) {
        free(x->match);
        free(x->to);
        return graft_error_oom(ctx, "rename candidates");
    }
    c->n++;
    return 0;
}

static void cl_free(clist *c)
{
    for (size_t i = 0; i < c->n; i++) free(c->v[i].match), free(c->v[i].to);
    free(c->v);
    memset(c, 0, sizeof *c);
}

/* ---- text of patterns and replacements ---------------------------------- */

typedef struct sbuf {
    char p[1024];
    size_t n;
    bool over;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->n + n >= sizeof b->p) {
        b->over = true;
        return;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_lit(sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strchr("\\^$.|?*+()[]{}#", s[i]) && s[i]) sb_put(b, "\\", 1);
        sb_put(b, &s[i], 1);
    }
}

/* A replacement may not hold '$' or '\' as literals (PCRE2 would read them). */
static bool repl_safe(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '$' || s[i] == '\\') return false;
    return true;
}

typedef struct run {
    size_t at, len;
    long value;  /* -1: not to be captured (too long, leading zero) */
} run;

static size_t digit_runs(const char *s, size_t n, run *r, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < max;) {
        if (!isdigit((unsigned char)s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && isdigit((unsigned char)s[j])) j++;
        r[k].at = i, r[k].len = j - i;
        r[k].value = (j - i > 9 || (s[i] == '0' && j - i > 1)) ? -1 : strtol(s + i, NULL, 10);
        k++;
        i = j;
    }
    return k;
}

/* map[j] = the run of c that goal run j is written from (-1: literal),
 * monotonic, equal (cost 0) or off by one (cost 1), a literal costing 2. */
static void align_numbers(const run *c, size_t nc, const run *g, size_t ng, int *map)
{
    int cost[9][9], pick[9][9];
    for (size_t i = 0; i <= nc; i++) cost[ng][i] = 0;
    for (size_t j = ng; j-- > 0;)
        for (size_t i = nc + 1; i-- > 0;) {
            cost[j][i] = 2 + cost[j + 1][i];
            pick[j][i] = -1;
            for (size_t k = i; k < nc; k++) {
                if (c[k].value < 0 || g[j].value < 0) continue;
                long d = g[j].value - c[k].value;
                if (d < -1 || d > 1) continue;
                int v = (d ? 1 : 0) + cost[j + 1][k + 1];
                if (v < cost[j][i]) cost[j][i] = v, pick[j][i] = (int)k;
            }
        }
    for (size_t j = 0, i = 0; j < ng; j++) {
        map[j] = pick[j][i];
        if (map[j] >= 0) i = (size_t)map[j] + 1;
    }
}

/* The pattern for c[0..cn) and the replacement for g[0..gn): with numbers
 * as captures (digits) or literally. */
static bool template(const char *c, size_t cn, const char *g, size_t gn, bool digits, sbuf *pat,
                     sbuf *rep)
{
    run cr[8], gr[8];
    int map[8], group[8];
    size_t nc = digits ? digit_runs(c, cn, cr, 8) : 0, ng = digits ? digit_runs(g, gn, gr, 8) : 0;
    if (!repl_safe(g, gn)) return false;
    align_numbers(cr, nc, gr, ng, map);
    int groups = 0;
    for (size_t i = 0; i < nc; i++) {
        group[i] = 0;
        for (size_t j = 0; j < ng; j++)
            if (map[j] == (int)i) group[i] = ++groups;
    }
    if (digits && !groups) return false;  /* the literal variant says the same */
    size_t at = 0;
    for (size_t i = 0; i < nc; i++) {
        if (!group[i]) continue;
        sb_lit(pat, c + at, cr[i].at - at);
        sb_str(pat, "(\\d+)");
        at = cr[i].at + cr[i].len;
    }
    sb_lit(pat, c + at, cn - at);
    at = 0;
    for (size_t j = 0; j < ng; j++) {
        if (map[j] < 0) continue;
        char ref[32];
        long d = gr[j].value - cr[map[j]].value;
        sb_put(rep, g + at, gr[j].at - at);
        snprintf(ref, sizeof ref, d ? "${%d%+ld}" : "${%d}", group[map[j]], d);
        sb_str(rep, ref);
        at = gr[j].at + gr[j].len;
    }
    sb_put(rep, g + at, gn - at);
    return !pat->over && !rep->over;
}

/* The start of cur up to its first separator, against each start of goal
 * up to a separator: block2b_ -> features.${1}.1.block. (splits) */
static int split_hunks(clist *cl, const char *c, size_t e, const char *g, size_t eg, graft_ctx *ctx)
{
    size_t k = 0;
    while (k < e && !strchr("_./", c[k])) k++;
    if (k++ >= e) return 0;
    for (size_t l = 1; l <= eg; l++) {
        if (!strchr("./", g[l - 1])) continue;
        for (int digits = 1; digits >= 0; digits--) {
            sbuf pat = {.n = 0}, rep = {.n = 0};
            pat.p[0] = rep.p[0] = '\0';
            sb_str(&pat, "^");
            if (template(c, k, g, l, digits, &pat, &rep) && !pat.over && cl_add(cl, pat.p, rep.p, ctx) < 0)
                return -1;
        }
    }
    return 0;
}

/* The differing part of cur and goal, as renames with context. */
static int hunks(clist *cl, const char *c, const char *g, bool splits, bool whole, graft_ctx *ctx)
{
    size_t lc = strlen(c), lg = strlen(g), a = 0, b = 0;
    while (a < lc && a < lg && c[a] == g[a]) a++;
    while (b < lc - a && b < lg - a && c[lc - 1 - b] == g[lg - 1 - b]) b++;
    size_t e = lc - b;
    while (a > 0 && isalnum((unsigned char)c[a - 1])) a--;
    while (e < lc && isalnum((unsigned char)c[e])) e++;
    size_t eg = lg - (lc - e);
    if (splits && a == 0 && split_hunks(cl, c, e, g, eg, ctx) < 0) return -1;
    if (!whole) return 0;
    char look[16] = "$";
    if (e < lc) snprintf(look, sizeof look, "(?=%s%c)", strchr("\\^$.|?*+()[]{}#", c[e]) ? "\\" : "", c[e]);
    for (int anchored = 0; anchored < 2; anchored++) {
        size_t from = anchored ? 0 : a;
        if (anchored && a == 0) continue;
        for (int digits = 1; digits >= 0; digits--) {
            sbuf pat = {.n = 0}, rep = {.n = 0};
            pat.p[0] = rep.p[0] = '\0';
            if (from == 0) sb_str(&pat, "^");
            else {
                sb_lit(&pat, c + from - 1, 1);
                if (!repl_safe(c + from - 1, 1)) continue;
                sb_put(&rep, c + from - 1, 1);
            }
            if (!template(c + from, e - from, g + from, eg - from, digits, &pat, &rep)) continue;
            sb_str(&pat, look);
            if (!pat.over && cl_add(cl, pat.p, rep.p, ctx) < 0) return -1;
        }
    }
    return 0;
}

static const char *last_sep(const char *s)
{
    const char *a = strrchr(s, '/'), *b = strrchr(s, '.');
    return a > b ? a : b;
}

/* Suffix words grouped by their replacement: "[/.](?:kernel|gamma)(?::0)?$" -> ".weight". */
typedef struct suffix {
    char to[136];
    char alts[512];
} suffix;

static void suffix_note(suffix *sx, size_t *nsx, size_t max, const char *c, const char *g)
{
    const char *sc = last_sep(c), *sg = last_sep(g);
    if (!sc || !sg) return;
    char lc[128], lg[128];
    snprintf(lc, sizeof lc, "%s", sc + 1);
    size_t n = strlen(lc);
    if (n >= 2 && !strcmp(lc + n - 2, ":0")) lc[n - 2] = '\0';
    snprintf(lg, sizeof lg, "%s", sg + 1);
    if (!lc[0] || !lg[0] || (!strcmp(lc, lg) && *sc == *sg && strcmp(sc + 1, lc) == 0)) return;
    for (const char *p = lc; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_') return;
    if (!repl_safe(lg, strlen(lg))) return;
    char to[130];
    snprintf(to, sizeof to, "%c%s", *sg, lg);
    size_t k = 0;
    while (k < *nsx && strcmp(sx[k].to, to)) k++;
    if (k == *nsx) {
        if (k == max) return;
        snprintf(sx[k].to, sizeof sx[k].to, "%s", to);
        sx[k].alts[0] = '\0';
        (*nsx)++;
    }
    char word[140];
    snprintf(word, sizeof word, "|%s|", lc);
    char bar[516];
    snprintf(bar, sizeof bar, "|%s|", sx[k].alts);
    if (strstr(bar, word)) return;
    size_t have = strlen(sx[k].alts);
    if (have + strlen(lc) + 2 < sizeof sx[k].alts)
        snprintf(sx[k].alts + have, sizeof sx[k].alts - have, "%s%s", have ? "|" : "", lc);
}

/* phase 0: last components only; 1: separators; 2: first words alone
 * (split_hunks, when the learner tries them); 3: everything */
static int candidates(learner *L, clist *cl, int phase)
{
    suffix sx[32];
    size_t nsx = 0, open = 0, seen = 0;
    for (size_t i = 0; i < L->n; i++) open += L->goal[i] && strcmp(L->cur[i], L->goal[i]);
    size_t stride = open > MAX_SEEDS ? open / MAX_SEEDS : 1;
    for (size_t i = 0; i < L->n; i++) {
        const char *c = L->cur[i], *g = L->goal[i];
        if (!g || !strcmp(c, g) || seen++ % stride) continue;
        if (phase >= 1 && strchr(c, '/') && !strchr(g, '/') && strchr(g, '.') &&
            cl_add(cl, "/", ".", L->ctx) < 0)
            return -1;
        if (phase >= 1 && strchr(c, '.') && !strchr(g, '.') && strchr(g, '/') &&
            cl_add(cl, "\\.", "/", L->ctx) < 0)
            return -1;
        if (phase != 1 && phase != 2) suffix_note(sx, &nsx, 32, c, g);
        if (phase >= 2 && hunks(cl, c, g, phase == 2, phase == 3, L->ctx) < 0) return -1;
    }
    for (size_t k = 0; k < nsx; k++) {
        char pat[600];
        snprintf(pat, sizeof pat, "[/.](?:%s)(?::0)?$", sx[k].alts);
        if (cl_add(cl, pat, sx[k].to, L->ctx) < 0) return -1;
    }
    return 0;
}

/* ---- running a candidate ------------------------------------------------ */

/* "    - {match: '...', to: '...'" (the caller closes the brace). */
void sg_rename_line(graft_jsonw *w, const sg_rename *rn)
{
    graft_jsonw_printf(w, "    - {match: ");
    sg_yaml_quote(w, rn->match);
    graft_jsonw_printf(w, ", to: ");
    sg_yaml_quote(w, rn->to);
}

/* Rules holding the renames ren[0..n) of one side. */
int sg_rename_rules(graft_rules **out, int side, const sg_rename *ren, size_t n, graft_ctx *ctx)
{
    graft_jsonw w;
    int rc;
    graft_jsonw_init(&w, ctx);
    graft_jsonw_printf(&w, "graft: 1.1\nrename:\n  %s:\n", side == GRAFT_SIDE_SOURCE ? "source" : "target");
    for (size_t i = 0; i < n; i++) {
        sg_rename_line(&w, &ren[i]);
        graft_jsonw_printf(&w, "}\n");
    }
    if ((rc = w.rc) == 0) rc = graft_rules_load_buffer(out, "suggested renames", w.p, w.len, ctx);
    graft_jsonw_free(&w);
    return rc;
}

static size_t lev(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b), row[513];
    if (n > 512 || m > 512) return n > m ? n - m : m - n;
    return graft_rules__distance(a, b, row);
}

/* Names given to more than one tensor in names[0..n) (-1: out of memory). */
static long duplicates(char *const *names, size_t n)
{
    const char **v = malloc((n + 1) * sizeof *v);
    long dup = 0;
    if (!v) return -1;
    memcpy(v, names, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_str);
    for (size_t i = 1; i < n; i++) dup += !strcmp(v[i], v[i - 1]);
    free(v);
    return dup;
}

/* Names that out[] gives to two tensors of the side while cur[] did not
 * (two tensors renamed alike cannot both be paired by name); cur's own
 * count is kept per round (cur_dups). */
static long new_duplicates(const learner *L, char *const *out)
{
    long dup = duplicates(out, L->n);
    if (dup < 0) return 0;
    dup -= L->cur_dups;
    return dup > 0 ? dup : 0;
}

/* Score of one candidate; out receives every target's new name (NULL when
 * the candidate breaks on a name: score INT_MIN). */
static long score(learner *L, const cand *c, char **out)
{
    sg_rename one = {.match = c->match, .to = c->to};
    graft_rules *r = NULL;
    long fixed = 0, broken = 0, closer = 0, gain = 0, collide = 0;
    if (sg_rename_rules(&r, L->side, &one, 1, L->ctx) < 0) {
        graft_ctx_clear(L->ctx);
        return -1000000;
    }
    for (size_t i = 0; i < L->n; i++) {
        out[i] = NULL;
        if (graft_rules_rename(r, L->side, L->cur[i], &out[i], NULL, 0, NULL, L->ctx) < 0) {
            graft_ctx_clear(L->ctx);
            for (size_t k = 0; k <= i; k++) free(out[k]), out[k] = NULL;
            graft_rules_free(r);
            return -1000000;
        }
        const char *was = L->cur[i], *now = out[i], *g = L->goal[i];
        if (!strcmp(was, now)) continue;
        if (!g) {
            collide += is_source_name(L, now);
            continue;
        }
        bool a = !strcmp(was, g), b = !strcmp(now, g);
        if (!a && b) fixed++;
        else if (a && !b) broken++;
        long d0 = (long)lev(was, g), d1 = (long)lev(now, g);
        closer += d1 < d0;
        gain += d0 - d1;
    }
    graft_rules_free(r);
    if (!fixed && closer < 2) return 0;
    if (collide || new_duplicates(L, out)) return -1000000;
    return gain + 2 * fixed - 4 * broken;
}

static int learn(learner *L)
{
    char **best = graft_calloc(L->ctx, L->n + 1, sizeof *best);
    char **trial = graft_calloc(L->ctx, L->n + 1, sizeof *trial);
    clist cl = {0};
    int rc = 0;
    if (!best || !trial) {
        rc = graft_error_oom(L->ctx, "renames");
        goto cleanup;
    }
    for (int round = 0, phase = 0; round < MAX_ROUNDS && phase < 4; round++) {
        if (phase == 2 && !L->splits) phase = 3;
        long top = 0;
        size_t pick = 0;
        cl_free(&cl);
        if ((L->cur_dups = duplicates(L->cur, L->n)) < 0) {
            rc = graft_error_oom(L->ctx, "renames");
            goto cleanup;
        }
        if ((rc = candidates(L, &cl, phase)) < 0) goto cleanup;
        for (size_t k = 0; k < cl.n; k++) {
            long sc = score(L, &cl.v[k], trial);
            if (sc > top) {
                top = sc, pick = k;
                char **x = best;
                best = trial, trial = x;
            }
            for (size_t i = 0; i < L->n; i++) free(trial[i]), trial[i] = NULL;
        }
        if (top <= 0) {
            phase++;
            continue;
        }
        sg_rename *nr = graft_realloc(L->ctx, L->ren, (L->nren + 1) * sizeof *nr);
        if (!nr) {
            rc = graft_error_oom(L->ctx, "renames");
            goto cleanup;
        }
        L->ren = nr;
        memset(&L->ren[L->nren], 0, sizeof *L->ren);
        L->ren[L->nren].match = cl.v[pick].match;
        L->ren[L->nren].to = cl.v[pick].to;
        cl.v[pick].match = cl.v[pick].to = NULL;
        L->nren++;
        for (size_t i = 0; i < L->n; i++) {
            free(L->cur[i]);
            L->cur[i] = best[i];
            best[i] = NULL;
        }
    }
cleanup:
    for (size_t i = 0; best && i < L->n; i++) free(best[i]);
    for (size_t i = 0; trial && i < L->n; i++) free(trial[i]);
    free(best);
    free(trial);
    for (size_t i = 0; i < cl.n; i++) free(cl.v[i].match), free(cl.v[i].to);
    free(cl.v);
    return rc;
}

/* expect: how many names of its side each rename matches; and of the
 * paired targets it helps name, how many are not certain. */
static int count_matches(graft_suggestion *s, graft_ctx *ctx)
{
    graft_rules *r = NULL;
    size_t *counts = NULL, *before = NULL;
    const sg_side *side = s->ren_side == GRAFT_SIDE_SOURCE ? &s->src : &s->dst;
    int rc = 0;
    if (!s->nren) return 0;
    if ((rc = sg_rename_rules(&r, s->ren_side, s->ren, s->nren, ctx)) < 0) return rc;
    if (!(counts = graft_calloc(ctx, s->nren, sizeof *counts)) ||
        !(before = graft_calloc(ctx, s->nren, sizeof *before))) {
        rc = graft_error_oom(ctx, "rename counts");
        goto cleanup;
    }
    for (size_t i = 0; i < side->n; i++) {
        char *out = NULL;
        memcpy(before, counts, s->nren * sizeof *counts);
        if ((rc = graft_rules__rename_count(r, s->ren_side, side->v[i].name, &out, counts, ctx)) < 0)
            goto cleanup;
        free(out);
        long ti = s->ren_side == GRAFT_SIDE_SOURCE ? side->v[i].pair : (long)i;
        const sg_t *t = ti >= 0 && s->dst.v[ti].pair >= 0 ? &s->dst.v[ti] : NULL;
        for (size_t k = 0; k < s->nren; k++)
            if (counts[k] != before[k] && t && t->conf != GRAFT_SUGGEST_CERTAIN) s->ren[k].uncertain++;
    }
    for (size_t k = 0; k < s->nren; k++) s->ren[k].expect = counts[k];
cleanup:
    free(counts);
    free(before);
    graft_rules_free(r);
    return rc;
}

static void learner_free(learner *L)
{
    for (size_t i = 0; L->cur && i < L->n; i++) free(L->cur[i]);
    free(L->cur);
    free(L->goal);
    free(L->sources);
    for (size_t k = 0; k < L->nren; k++) free(L->ren[k].match), free(L->ren[k].to);
    free(L->ren);
    memset(L, 0, sizeof *L);
}

/* Learn the renames of one side; *entries: renames plus the pairs left. */
static int learn_side(graft_suggestion *s, graft_side side, bool splits, learner *L,
                      size_t *entries, graft_ctx *ctx)
{
    const sg_side *me = side == GRAFT_SIDE_SOURCE ? &s->src : &s->dst;
    const sg_side *other = side == GRAFT_SIDE_SOURCE ? &s->dst : &s->src;
    int rc;
    memset(L, 0, sizeof *L);
    L->s = s, L->side = side, L->splits = splits, L->n = me->n, L->ctx = ctx;
    L->cur = graft_calloc(ctx, L->n + 1, sizeof *L->cur);
    L->goal = graft_calloc(ctx, L->n + 1, sizeof *L->goal);
    L->sources = graft_calloc(ctx, other->n + 1, sizeof *L->sources);
    if (!L->cur || !L->goal || !L->sources) return graft_error_oom(ctx, "renames");
    for (size_t j = 0; j < other->n; j++) L->sources[L->nsources++] = other->v[j].name;
    qsort(L->sources, L->nsources, sizeof *L->sources, cmp_str);
    for (size_t i = 0; i < L->n; i++) {
        const sg_t *x = &me->v[i];
        if (!(L->cur[i] = graft_strdup(ctx, x->name))) return graft_error_oom(ctx, "renames");
        L->goal[i] = x->pair >= 0 ? other->v[x->pair].name : NULL;
        /* a folded BatchNorm is a pairs entry of several sources whatever the names */
        if (x->fold >= 0 || (x->pair >= 0 && other->v[x->pair].fold >= 0)) L->goal[i] = NULL;
    }
    if ((rc = learn(L)) < 0) return rc;
    *entries = L->nren;
    for (size_t i = 0; i < L->n; i++) *entries += L->goal[i] && strcmp(L->cur[i], L->goal[i]);
    return 0;
}

int sg_generalise(graft_suggestion *s, graft_ctx *ctx)
{
    learner L[4] = {0};
    size_t e[4] = {0}, best = 0;
    int rc = 0;
    /* renaming the targets or the sources, with or without split words:
     * the draft with the fewest rename and pairs entries */
    for (int k = 0; k < 4 && rc == 0; k++) {
        rc = learn_side(s, k & 1 ? GRAFT_SIDE_SOURCE : GRAFT_SIDE_TARGET, k >= 2, &L[k], &e[k], ctx);
        if (rc == 0 && e[k] < e[best]) best = (size_t)k;
    }
    if (rc == 0) {
        learner *pick = &L[best];
        s->ren_side = pick->side;
        s->ren = pick->ren, s->nren = pick->nren, s->renamed = pick->cur;
        pick->ren = NULL, pick->nren = 0, pick->cur = NULL;
        rc = count_matches(s, ctx);
    }
    for (int k = 0; k < 4; k++) learner_free(&L[k]);
    return rc;
}
