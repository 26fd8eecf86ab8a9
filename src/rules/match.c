/*
 * match.c - the PCRE2 side of the rules: compiling patterns with errors at
 * file:line:col, renames (global, extended substitutions so $1 and ${name}
 * work; a group left unset by an alternation is empty), ignore lists and
 * selector searches.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "rules_int.h"

#include <pcre2.h>
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

/* One substitution; *out is malloc'ed, *changed says whether anything matched. */
static int substitute(const graft_rename *rn, const char *in, char **out, bool *changed,
                      graft_ctx *ctx)
{
    size_t inlen = strlen(in);
    PCRE2_SIZE cap = inlen + strlen(rn->to) + 64;
    char *buf = NULL;
    int rc;
    pcre2_match_context *mc = match_context();

    *out = NULL;
    *changed = false;
    if (!mc) return graft_error_oom(ctx, "match context");
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
        if (substitute(rn, cur, &next, &changed, ctx) < 0) goto fail;
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
