/*
 * match.c - the PCRE2 side of the rules: compiling patterns with errors at
 * file:line:col, renames (global, extended substitutions so $1 and ${name}
 * work; a group left unset by an alternation is empty), ignore lists and
 * selector searches.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "rules_int.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RENAMED (GRAFT_MAX_NAME) /* a rename that grows a name past this fails */

/* A rules file is untrusted input: every match runs under these caps (the
 * JIT honours the match limit; the interpreter all three).  A pattern that
 * hits one is an error at its file:line, never "no match". */
#define MATCH_LIMIT 1000000u   /* calls of the internal match() / JIT steps */
#define DEPTH_LIMIT 10000u     /* backtracking depth */
#define HEAP_LIMIT_KIB 16384u  /* backtracking frames */

static pcre2_match_context *match_context(void)
{
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    if (!mc) return NULL;
    pcre2_set_match_limit(mc, MATCH_LIMIT);
    pcre2_set_depth_limit(mc, DEPTH_LIMIT);
    pcre2_set_heap_limit(mc, HEAP_LIMIT_KIB);
    return mc;
}

static int match_error(const graft_regex *re, const char *what, const char *name, int rc,
                       graft_ctx *ctx)
{
    PCRE2_UCHAR msg[256];
    if (pcre2_get_error_message(rc, msg, sizeof msg) < 0) strcpy((char *)msg, "unknown error");
    return graft_error(ctx, rc == PCRE2_ERROR_NOMEMORY ? GRAFT_ENOMEM : GRAFT_ERULE,
                       "%s:%u: %s '%s' on tensor '%s': %s", re->pos.file, re->pos.line, what,
                       re->pattern, name, (char *)msg);
}

int graft_rules__regex(graft_rules *r, graft_regex *re, const char *pattern, size_t len,
                       graft_rules_pos pos, graft_ctx *ctx)
{
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, len, 0, &err, &off, NULL);
    re->pos = pos;
    re->pattern = graft_arena_strndup(&r->arena, pattern, len);
    if (!re->pattern) {
        pcre2_code_free(code);
        return graft_error_oom(ctx, "rules pattern");
    }
    if (!code) {
        PCRE2_UCHAR buf[256];
        if (pcre2_get_error_message(err, buf, sizeof buf) < 0) strcpy((char *)buf, "unknown error");
        return graft_error(ctx, GRAFT_ERULE, "%s:%u:%u: bad regex '%s' at offset %zu: %s",
                           pos.file, pos.line, pos.col, re->pattern, (size_t)off, (char *)buf);
    }
    /* the JIT is an optimisation: where it is missing (or refuses the
     * pattern) the interpreter runs under the same limits */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    re->code = code;
    return 0;
}

void graft_rules__regex_free(graft_regex *re)
{
    pcre2_code_free(re->code);
    re->code = NULL;
}

int graft_regex_search(const graft_regex *re, const char *name, graft_ctx *ctx)
{
    if (!re->code) return 1;
    pcre2_match_context *mc = match_context();
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re->code, NULL);
    int rc = PCRE2_ERROR_NOMEMORY;
    if (mc && md) rc = pcre2_match(re->code, (PCRE2_SPTR)name, strlen(name), 0, 0, md, mc);
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
    if (rc >= 0) return 1;
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    return match_error(re, "regex", name, rc, ctx);
}

int graft_rules_ignored(const graft_rules *r, graft_side side, const char *name, graft_ctx *ctx)
{
    for (size_t i = 0; r && i < r->nignore[side]; i++) {
        int rc = graft_regex_search(&r->ignore[side][i], name, ctx);
        if (rc != 0) return rc;
    }
    return 0;
}

/* ---- index arithmetic (format 1.1) ------------------------------------ */

/* Is to[i..) "${G+K}" or "${G-K}" (G digits or a name)?  Its length, else 0. */
static size_t arith_token(const char *to, size_t i, size_t *gstart, size_t *glen, char *sign,
                          size_t *kstart, size_t *klen)
{
    size_t j = i + 2, g = j;
    if (to[i] != '$' || to[i + 1] != '{') return 0;
    if (to[j] >= '0' && to[j] <= '9') {
        while (to[j] >= '0' && to[j] <= '9') j++;
    } else if (to[j] == '_' || (to[j] >= 'A' && to[j] <= 'Z') || (to[j] >= 'a' && to[j] <= 'z')) {
        while (to[j] == '_' || (to[j] >= 'A' && to[j] <= 'Z') || (to[j] >= 'a' && to[j] <= 'z') ||
               (to[j] >= '0' && to[j] <= '9'))
            j++;
    } else {
        return 0;
    }
    if (to[j] != '+' && to[j] != '-') return 0;
    *gstart = g;
    *glen = j - g;
    *sign = to[j++];
    *kstart = j;
    while (to[j] >= '0' && to[j] <= '9') j++;
    if (j == *kstart || to[j] != '}') return 0;
    *klen = j - *kstart;
    return j + 1 - i;
}

static bool name_char(char c, bool first)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (!first && c >= '0' && c <= '9');
}

/* Is to[i..) a plain group reference of PCRE2's extended replacement syntax
 * ($N, ${N}, $name, ${name}, ${N:-x} / ${N:+x:y})?  Its length and the group
 * number (-1 for a name the pattern lacks, -2 past INT_MAX), else 0. */
static size_t group_ref(const graft_rename *rn, const char *to, size_t i, long *group)
{
    size_t j = i + 1, g;
    bool braced = to[j] == '{';
    if (to[i] != '$') return 0;
    j += braced;
    g = j;
    if (to[j] >= '0' && to[j] <= '9') {
        long v = 0;
        while (to[j] >= '0' && to[j] <= '9') {
            v = v > 100000 ? 100000 : v * 10 + (to[j] - '0');
            j++;
        }
        *group = v;
    } else if (name_char(to[j], true)) {
        char name[256];
        while (name_char(to[j], false)) j++;
        if (j - g >= sizeof name) return 0;
        memcpy(name, to + g, j - g);
        name[j - g] = '\0';
        *group = pcre2_substring_number_from_name(rn->match.code, (PCRE2_SPTR)name);
        if (*group < 0) *group = -1;
    } else {
        return 0;
    }
    if (braced && to[j] != '}' && to[j] != ':') return 0; /* arithmetic, or not a reference */
    return j - i;
}

/* Every group a `to:` names exists in its pattern: a wrong reference is a
 * rules error at load time (`graft check`), not a failure once a name
 * matches. */
static int check_groups(const graft_rename *rn, uint32_t groups, graft_ctx *ctx)
{
    const char *to = rn->to;
    for (size_t i = 0; to[i]; i++) {
        size_t len;
        long g;
        if (to[i] == '\\' && to[i + 1]) {
            i++;
            continue;
        }
        if (to[i] == '$' && to[i + 1] == '$') {
            i++;
            continue;
        }
        if (!(len = group_ref(rn, to, i, &g))) continue;
        if (g < 0 || g > (long)groups)
            return graft_error(ctx, GRAFT_ERULE, "%s:%u:%u: to: '%.*s': the pattern '%s' has no "
                               "such group (it has %u)", rn->pos.file, rn->pos.line, rn->pos.col,
                               (int)len + (to[i + len] == '}'), to + i, rn->match.pattern, groups);
        i += len - 1;
    }
    return 0;
}

int graft_rules__arith(graft_rules *r, graft_rename *rn, unsigned minor, graft_ctx *ctx)
{
    const char *to = rn->to;
    size_t n = 0, cap = 0;
    graft_rename_arith *v = NULL;
    uint32_t groups = 0;
    pcre2_pattern_info(rn->match.code, PCRE2_INFO_CAPTURECOUNT, &groups);
    GRAFT_TRY(check_groups(rn, groups, ctx));
    for (size_t i = 0; to[i]; i++) {
        size_t gs, gl, ks, kl, len;
        char sign;
        if (to[i] == '\\' && to[i + 1]) { /* an escaped character */
            i++;
            continue;
        }
        if (to[i] == '$' && to[i + 1] == '$') {
            i++;
            continue;
        }
        if (!(len = arith_token(to, i, &gs, &gl, &sign, &ks, &kl))) continue;
        if (minor < 1)
            return graft_error(ctx, GRAFT_ERULE, "%s:%u:%u: to: index arithmetic '%.*s' needs "
                                                 "graft: 1.1", rn->pos.file, rn->pos.line,
                               rn->pos.col, (int)len, to + i);
        if (n == cap) {
            cap = cap ? 2 * cap : 4;
            graft_rename_arith *nv = graft_arena_alloc(&r->arena, cap * sizeof *nv);
            if (!nv) return graft_error_oom(ctx, "rename arithmetic");
            if (n) memcpy(nv, v, n * sizeof *nv);
            v = nv;
        }
        char num[24];
        int64_t group = -1;
        if (kl > 15)
            return graft_error(ctx, GRAFT_ERULE, "%s:%u:%u: to: '%.*s': constant too large",
                               rn->pos.file, rn->pos.line, rn->pos.col, (int)len, to + i);
        memcpy(num, to + ks, kl);
        num[kl] = '\0';
        v[n].delta = (sign == '-' ? -1 : 1) * strtoll(num, NULL, 10);
        if (to[gs] >= '0' && to[gs] <= '9') {
            if (gl <= 9) {
                memcpy(num, to + gs, gl);
                num[gl] = '\0';
                group = strtoll(num, NULL, 10);
            }
        } else {
            char name[256];
            if (gl < sizeof name) {
                memcpy(name, to + gs, gl);
                name[gl] = '\0';
                int g = pcre2_substring_number_from_name(rn->match.code, (PCRE2_SPTR)name);
                group = g >= 0 ? g : -1;
            }
        }
        if (group < 0 || group > (int64_t)groups)
            return graft_error(ctx, GRAFT_ERULE, "%s:%u:%u: to: '%.*s': the pattern has no such "
                                                 "group (it has %u)", rn->pos.file, rn->pos.line,
                               rn->pos.col, (int)len, to + i, groups);
        v[n].at = (uint32_t)i;
        v[n].len = (uint32_t)len;
        v[n].group = (uint32_t)group;
        n++;
        i += len - 1;
    }
    rn->arith = v;
    rn->narith = n;
    return 0;
}

/* " on 'renamed'" when an earlier rename changed the tensor's name. */
#define ON(in, tensor) strcmp(in, tensor) ? " on '" : "", strcmp(in, tensor) ? in : "", \
                       strcmp(in, tensor) ? "'" : ""

/* rn->to with each arithmetic token replaced by its value for the match in
 * md (malloc'ed).  The group must be a decimal integer, the result >= 0. */
static int arith_template(const graft_rename *rn, const char *in, const char *tensor,
                          pcre2_match_data *md, char **out, graft_ctx *ctx)
{
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t tolen = strlen(rn->to);
    char *t = graft_malloc(ctx, tolen + 24 * rn->narith + 1);
    size_t k = 0, from = 0;
    if (!t) return graft_error_oom(ctx, "renamed name");
    for (size_t a = 0; a < rn->narith; a++) {
        const graft_rename_arith *ar = &rn->arith[a];
        PCRE2_SIZE s = ov[2 * ar->group], e = ov[2 * ar->group + 1];
        size_t len = s == PCRE2_UNSET ? 0 : e - s;
        const char *g = s == PCRE2_UNSET ? "" : in + s;
        int64_t val = 0;
        bool ok = len > 0 && len <= 15;
        for (size_t i = 0; ok && i < len; i++) {
            ok = g[i] >= '0' && g[i] <= '9';
            val = val * 10 + (g[i] - '0');
        }
        if (!ok) {
            free(t);
            return graft_error(ctx, GRAFT_ERULE, "%s:%u: tensor '%s': rename '%s'%s%s%s: %.*s: "
                                                 "group %u is '%.*s', not a decimal integer",
                               rn->pos.file, rn->pos.line, tensor, rn->match.pattern, ON(in, tensor),
                               (int)ar->len, rn->to + ar->at, ar->group,
                               (int)(len > 64 ? 64 : len), g);
        }
        val += ar->delta;
        if (val < 0) {
            free(t);
            return graft_error(ctx, GRAFT_ERULE, "%s:%u: tensor '%s': rename '%s'%s%s%s: %.*s "
                                                 "gives %lld, below 0", rn->pos.file, rn->pos.line,
                               tensor, rn->match.pattern, ON(in, tensor), (int)ar->len, rn->to + ar->at,
                               (long long)val);
        }
        memcpy(t + k, rn->to + from, ar->at - from);
        k += ar->at - from;
        k += (size_t)snprintf(t + k, 24, "%lld", (long long)val);
        from = ar->at + ar->len;
    }
    memcpy(t + k, rn->to + from, tolen - from + 1);
    *out = t;
    return 0;
}

static int grow_out(char **buf, size_t *cap, size_t need, const graft_rename *rn, const char *in,
                    graft_ctx *ctx)
{
    if (need <= *cap) return 0;
    if (need > MAX_RENAMED)
        return graft_error(ctx, GRAFT_ERULE, "%s:%u: rename of '%s' grows past %u bytes",
                           rn->pos.file, rn->pos.line, in, MAX_RENAMED);
    size_t nc = *cap * 2 > need ? *cap * 2 : need;
    char *nb = graft_realloc(ctx, *buf, nc);
    if (!nb) return graft_error_oom(ctx, "renamed name");
    *buf = nb;
    *cap = nc;
    return 0;
}

/*
 * A global substitution whose replacement holds index arithmetic: PCRE2
 * cannot compute, so each match is found here, its template made concrete
 * (arith_template), and PCRE2 expands that template for this one match
 * (PCRE2_SUBSTITUTE_REPLACEMENT_ONLY, same start offset and options, hence
 * the same match).  Empty matches advance as in PCRE2's own global mode.
 */
static int substitute_arith(const graft_rename *rn, const char *in, const char *tensor,
                            char **out, bool *changed, graft_ctx *ctx)
{
    size_t inlen = strlen(in), cap = inlen + 64, k = 0, last = 0, pos = 0;
    uint32_t opts = 0;
    char *buf = graft_malloc(ctx, cap), *tmpl = NULL, *rep = graft_malloc(ctx, MAX_RENAMED + 1);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(rn->match.code, NULL);
    pcre2_match_context *mc = match_context();
    int rc = 0;
    *changed = false;
    if (!buf || !md || !rep || !mc) {
        rc = graft_error_oom(ctx, "renamed name");
        goto cleanup;
    }
    while (pos <= inlen) {
        int m = pcre2_match(rn->match.code, (PCRE2_SPTR)in, inlen, pos, opts, md, mc);
        if (m == PCRE2_ERROR_NOMATCH) {
            if (!opts) break;
            pos++; /* after an empty match: move on one character */
            opts = 0;
            continue;
        }
        if (m < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(m, msg, sizeof msg);
            rc = graft_error(ctx, GRAFT_ERULE, "%s:%u: rename '%s' on '%s': %s", rn->pos.file,
                             rn->pos.line, rn->match.pattern, in, (char *)msg);
            goto cleanup;
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if ((rc = arith_template(rn, in, tensor, md, &tmpl, ctx)) < 0) goto cleanup;
        PCRE2_SIZE replen = MAX_RENAMED + 1;
        int s = pcre2_substitute(rn->match.code, (PCRE2_SPTR)in, inlen, pos,
                                 opts | PCRE2_SUBSTITUTE_EXTENDED | PCRE2_SUBSTITUTE_UNSET_EMPTY |
                                     PCRE2_SUBSTITUTE_REPLACEMENT_ONLY,
                                 NULL, mc, (PCRE2_SPTR)tmpl, PCRE2_ZERO_TERMINATED,
                                 (PCRE2_UCHAR *)rep, &replen);
        free(tmpl);
        tmpl = NULL;
        if (s == PCRE2_ERROR_NOMEMORY) {
            rc = graft_error(ctx, GRAFT_ERULE, "%s:%u: rename of '%s' grows past %u bytes",
                             rn->pos.file, rn->pos.line, in, MAX_RENAMED);
            goto cleanup;
        }
        if (s < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(s, msg, sizeof msg);
            rc = graft_error(ctx, GRAFT_ERULE, "%s:%u: rename '%s' -> '%s' on '%s': %s",
                             rn->pos.file, rn->pos.line, rn->match.pattern, rn->to, in,
                             (char *)msg);
            goto cleanup;
        }
        if ((rc = grow_out(&buf, &cap, k + (ms - last) + replen + 1, rn, in, ctx)) < 0)
            goto cleanup;
        memcpy(buf + k, in + last, ms - last);
        k += ms - last;
        memcpy(buf + k, rep, replen);
        k += replen;
        last = me;
        *changed = true;
        pos = me;
        opts = me == ms ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
    }
    if ((rc = grow_out(&buf, &cap, k + (inlen - last) + 1, rn, in, ctx)) < 0) goto cleanup;
    memcpy(buf + k, in + last, inlen - last);
    buf[k + inlen - last] = '\0';
    *out = buf;
    buf = NULL;
cleanup:
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
    free(rep);
    free(buf);
    return rc;
}

/* One substitution; *out is malloc'ed, *changed says whether anything matched. */
static int substitute(const graft_rename *rn, const char *in, const char *tensor, char **out,
                      bool *changed, graft_ctx *ctx)
{
    size_t inlen = strlen(in);
    PCRE2_SIZE cap = inlen + strlen(rn->to) + 64;
    char *buf = NULL;
    int rc;
    pcre2_match_context *mc;

    *out = NULL;
    *changed = false;
    if (rn->narith) return substitute_arith(rn, in, tensor, out, changed, ctx);
    if (!(mc = match_context())) return graft_error_oom(ctx, "match context");
    for (;;) {
        char *nb = graft_realloc(ctx, buf, cap + 1);
        if (!nb) {
            free(buf);
            pcre2_match_context_free(mc);
            return graft_error_oom(ctx, "renamed name");
        }
        buf = nb;
        PCRE2_SIZE outlen = cap + 1;
        rc = pcre2_substitute(rn->match.code, (PCRE2_SPTR)in, inlen, 0,
                              PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_EXTENDED |
                                  PCRE2_SUBSTITUTE_UNSET_EMPTY |
                                  PCRE2_SUBSTITUTE_OVERFLOW_LENGTH,
                              NULL, mc, (PCRE2_SPTR)rn->to, PCRE2_ZERO_TERMINATED,
                              (PCRE2_UCHAR *)buf, &outlen);
        if (rc == PCRE2_ERROR_NOMEMORY) {
            /* outlen is the size needed, including the terminating zero */
            if (outlen > MAX_RENAMED) {
                free(buf);
                pcre2_match_context_free(mc);
                return graft_error(ctx, GRAFT_ERULE, "%s:%u: rename of '%s' grows past %u bytes",
                                   rn->pos.file, rn->pos.line, in, MAX_RENAMED);
            }
            cap = outlen;
            continue;
        }
        break;
    }
    pcre2_match_context_free(mc);
    if (rc < 0) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(rc, msg, sizeof msg) < 0) strcpy((char *)msg, "unknown error");
        free(buf);
        return graft_error(ctx, GRAFT_ERULE, "%s:%u: rename '%s' -> '%s' on '%s': %s",
                           rn->pos.file, rn->pos.line, rn->match.pattern, rn->to, in,
                           (char *)msg);
    }
    *changed = rc > 0;
    *out = buf;
    return 0;
}

void graft_rename_steps_free(graft_rename_step *steps, size_t n)
{
    for (size_t i = 0; steps && i < n; i++) {
        free((char *)steps[i].before);
        free((char *)steps[i].after);
    }
}

static int rename_impl(const graft_rules *r, graft_side side, const char *name, char **out,
                       graft_rename_step *steps, size_t max_steps, size_t *nsteps,
                       size_t *counts, graft_ctx *ctx)
{
    char *cur = graft_strdup(ctx, name);
    size_t ns = 0;
    if (!cur) return graft_error_oom(ctx, "renamed name");
    *out = NULL;
    if (nsteps) *nsteps = 0;
    for (size_t i = 0; r && i < r->nrename[side]; i++) {
        const graft_rename *rn = &r->rename[side][i];
        char *next;
        bool changed;
        if (substitute(rn, cur, name, &next, &changed, ctx) < 0) goto fail;
        if (changed && counts) counts[i]++;
        if (changed && strcmp(next, cur) != 0) {
            if (steps && ns < max_steps) {
                steps[ns].rule = rn;
                steps[ns].before = graft_strdup(ctx, cur);
                steps[ns].after = graft_strdup(ctx, next);
                if (!steps[ns].before || !steps[ns].after) {
                    free((char *)steps[ns].before);
                    free((char *)steps[ns].after);
                    free(next);
                    graft_error_oom(ctx, "rename trace");
                    goto fail;
                }
            }
            ns++;
        }
        free(cur);
        cur = next;
    }
    if (nsteps) *nsteps = ns;
    *out = cur;
    return 0;
fail:
    if (steps) graft_rename_steps_free(steps, ns < max_steps ? ns : max_steps);
    free(cur);
    return graft_ctx_status(ctx);
}

int graft_rules_rename(const graft_rules *r, graft_side side, const char *name, char **out,
                       graft_rename_step *steps, size_t max_steps, size_t *nsteps,
                       graft_ctx *ctx)
{
    return rename_impl(r, side, name, out, steps, max_steps, nsteps, NULL, ctx);
}

int graft_rules__rename_count(const graft_rules *r, graft_side side, const char *name,
                              char **out, size_t *counts, graft_ctx *ctx)
{
    return rename_impl(r, side, name, out, NULL, 0, NULL, counts, ctx);
}
