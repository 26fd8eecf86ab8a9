/*
 * json.c - JSON parser and writer helpers (RFC 8259), see json.h.
 *
 * Recursive descent over (ptr, len); depth is capped so hostile nesting
 * cannot exhaust the stack.  Children are gathered in a malloc'd vector per
 * level and copied into the arena once the container closes.
 */
#include "json.h"

#include "rd.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    graft_rd r;           /* the text (bounded cursor, file offsets) */
    unsigned depth;
    graft_arena *arena;
    graft_ctx *ctx;
} parser;

typedef struct vec {
    graft_json *items;
    const char **keys;
    size_t *lens;
    size_t n, cap;
} vec;

static int fail_at(parser *P, size_t pos, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(parser *P, size_t pos, int code, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return graft_error(P->ctx, code, "offset 0x%llx: %s",
                       (unsigned long long)(P->r.origin + pos), what);
}

static void skip_ws(parser *P) { graft_rd_skip_ws(&P->r); }

static int unexpected(parser *P, const char *wanted)
{
    int c = graft_rd_peek(&P->r);
    if (c < 0) return fail_at(P, P->r.pos, GRAFT_ECORRUPT, "JSON ends early: expected %s", wanted);
    if (c >= 0x20 && c < 0x7f)
        return fail_at(P, P->r.pos, GRAFT_ECORRUPT, "expected %s, found '%c'", wanted, c);
    return fail_at(P, P->r.pos, GRAFT_ECORRUPT, "expected %s, found byte 0x%02x", wanted, c);
}

static int parse_value(parser *P, graft_json *v);

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c < 0xc2 || c > 0xf4) return 0; /* continuation, overlong lead or > U+10FFFF */
    len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    cp = c & (0x7fu >> len);
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static size_t put_utf8(char *d, uint32_t cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xc0 | cp >> 6);
        d[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xe0 | cp >> 12);
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        d[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (char)(0xf0 | cp >> 18);
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    d[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int hex4(parser *P, size_t at, uint32_t *out)
{
    uint32_t v = 0;
    if (P->r.len - at < 4) return fail_at(P, at, GRAFT_ECORRUPT, "JSON ends inside a \\u escape");
    for (size_t i = 0; i < 4; i++) {
        uint8_t c = P->r.p[at + i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return fail_at(P, at + i, GRAFT_ECORRUPT, "bad hex digit in a \\u escape");
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return GRAFT_OK;
}

/* A string at P->r.pos (the opening quote); decoded into the arena. */
static int parse_string(parser *P, const char **out, size_t *out_len)
{
    size_t start = ++P->r.pos, end = start;
    char *d;
    size_t k = 0;

    /* find the closing quote first, so the output size is bounded by the input */
    for (;;) {
        if (end >= P->r.len) return fail_at(P, start - 1, GRAFT_ECORRUPT, "unterminated string");
        if (P->r.p[end] == '"') break;
        end += P->r.p[end] == '\\' ? 2 : 1;
    }
    d = graft_arena_alloc(P->arena, end - start + 1);
    if (!d) return graft_error_oom(P->ctx, "a JSON string");
    while (P->r.pos < end) {
        uint8_t c = P->r.p[P->r.pos];
        if (c < 0x20)
            return fail_at(P, P->r.pos, GRAFT_ECORRUPT, "control character 0x%02x in a string", c);
        if (c != '\\') {
            size_t len = utf8_len(P->r.p + P->r.pos, end - P->r.pos);
            if (!len) return fail_at(P, P->r.pos, GRAFT_ECORRUPT, "invalid UTF-8 in a string");
            memcpy(d + k, P->r.p + P->r.pos, len);
            k += len;
            P->r.pos += len;
            continue;
        }
        c = P->r.p[P->r.pos + 1];
        P->r.pos += 2;
        switch (c) {
        case '"': d[k++] = '"'; break;
        case '\\': d[k++] = '\\'; break;
        case '/': d[k++] = '/'; break;
        case 'b': d[k++] = '\b'; break;
        case 'f': d[k++] = '\f'; break;
        case 'n': d[k++] = '\n'; break;
        case 'r': d[k++] = '\r'; break;
        case 't': d[k++] = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            GRAFT_TRY(hex4(P, P->r.pos, &cp));
            P->r.pos += 4;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return fail_at(P, P->r.pos - 6, GRAFT_ECORRUPT, "lone low surrogate \\u%04x", cp);
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (P->r.len - P->r.pos < 6 || P->r.p[P->r.pos] != '\\' || P->r.p[P->r.pos + 1] != 'u')
                    return fail_at(P, P->r.pos - 6, GRAFT_ECORRUPT,
                                   "high surrogate \\u%04x without a low one", cp);
                GRAFT_TRY(hex4(P, P->r.pos + 2, &lo));
                if (lo < 0xdc00 || lo > 0xdfff)
                    return fail_at(P, P->r.pos, GRAFT_ECORRUPT,
                                   "high surrogate \\u%04x followed by \\u%04x", cp, lo);
                P->r.pos += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            k += put_utf8(d + k, cp);
            break;
        }
        default:
            return fail_at(P, P->r.pos - 2, GRAFT_ECORRUPT, "bad escape in a string");
        }
    }
    if (P->r.pos != end) /* an escape ran over the quote: "\u12" */
        return fail_at(P, end, GRAFT_ECORRUPT, "bad escape in a string");
    P->r.pos = end + 1;
    d[k] = '\0';
    *out = d;
    *out_len = k;
    return GRAFT_OK;
}

static bool digit(parser *P)
{
    return graft_rd_peek(&P->r) >= '0' && graft_rd_peek(&P->r) <= '9';
}

static int parse_number(parser *P, graft_json *v)
{
    size_t start = P->r.pos;
    bool neg = false, integral = true, overflow = false;
    int64_t acc = 0;
    char small[64], *buf;

    if (graft_rd_peek(&P->r) == '-') {
        neg = true;
        P->r.pos++;
    }
    if (!digit(P)) return unexpected(P, "a digit");
    if (graft_rd_peek(&P->r) == '0') {
        P->r.pos++;
    } else {
        while (digit(P)) {
            int dgt = P->r.p[P->r.pos++] - '0';
            /* accumulate negatively so INT64_MIN fits */
            if (__builtin_mul_overflow(acc, 10, &acc) || __builtin_sub_overflow(acc, dgt, &acc))
                overflow = true;
        }
    }
    if (graft_rd_peek(&P->r) == '.') {
        integral = false;
        P->r.pos++;
        if (!digit(P)) return unexpected(P, "a digit after '.'");
        while (digit(P)) P->r.pos++;
    }
    if ((graft_rd_peek(&P->r) == 'e' || graft_rd_peek(&P->r) == 'E')) {
        integral = false;
        P->r.pos++;
        if ((graft_rd_peek(&P->r) == '+' || graft_rd_peek(&P->r) == '-')) P->r.pos++;
        if (!digit(P)) return unexpected(P, "a digit in the exponent");
        while (digit(P)) P->r.pos++;
    }
    if (integral && !overflow && (neg || acc != INT64_MIN)) {
        v->type = GRAFT_JSON_INT;
        v->i = neg ? acc : -acc;
        v->d = (double)v->i;
        return GRAFT_OK;
    }
    size_t len = P->r.pos - start;
    buf = len < sizeof small ? small : graft_malloc(P->ctx, len + 1);
    if (!buf) return graft_error_oom(P->ctx, "a JSON number");
    memcpy(buf, P->r.p + start, len);
    buf[len] = '\0';
    v->type = GRAFT_JSON_DOUBLE;
    v->d = strtod(buf, NULL);
    if (buf != small) free(buf);
    return GRAFT_OK;
}

static int literal(parser *P, const char *word, graft_json *v, graft_json_type type, bool b)
{
    if (!graft_rd_eat(&P->r, word)) return unexpected(P, "a JSON value");
    v->type = type;
    v->b = b;
    return GRAFT_OK;
}

static int vec_push(parser *P, vec *x)
{
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 8;
        graft_json *it = graft_realloc(P->ctx, x->items, cap * sizeof *it);
        if (!it) return graft_error_oom(P->ctx, "a JSON container");
        x->items = it;
        const char **k = graft_realloc(P->ctx, x->keys, cap * sizeof *k);
        if (!k) return graft_error_oom(P->ctx, "a JSON container");
        x->keys = k;
        size_t *l = graft_realloc(P->ctx, x->lens, cap * sizeof *l);
        if (!l) return graft_error_oom(P->ctx, "a JSON container");
        x->lens = l;
        x->cap = cap;
    }
    memset(&x->items[x->n], 0, sizeof *x->items);
    x->keys[x->n] = NULL;
    x->lens[x->n] = 0;
    x->n++;
    return GRAFT_OK;
}

/* Move the gathered children into the arena. */
static int vec_finish(parser *P, vec *x, graft_json *v, bool object)
{
    v->count = x->n;
    if (!x->n) return GRAFT_OK;
    v->items = graft_arena_alloc(P->arena, x->n * sizeof *v->items);
    if (object) {
        v->keys = graft_arena_alloc(P->arena, x->n * sizeof *v->keys);
        v->key_lens = graft_arena_alloc(P->arena, x->n * sizeof *v->key_lens);
    }
    if (!v->items || (object && (!v->keys || !v->key_lens)))
        return graft_error_oom(P->ctx, "a JSON container");
    memcpy(v->items, x->items, x->n * sizeof *v->items);
    if (object) {
        memcpy(v->keys, x->keys, x->n * sizeof *v->keys);
        memcpy(v->key_lens, x->lens, x->n * sizeof *v->key_lens);
    }
    return GRAFT_OK;
}

static int parse_container(parser *P, graft_json *v, bool object)
{
    vec x = {0};
    uint8_t close = object ? '}' : ']';
    int rc;

    if (++P->depth > GRAFT_JSON_MAX_DEPTH) {
        rc = fail_at(P, P->r.pos, GRAFT_ELIMIT, "JSON nested deeper than %d levels",
                     GRAFT_JSON_MAX_DEPTH);
        goto cleanup;
    }
    v->type = object ? GRAFT_JSON_OBJECT : GRAFT_JSON_ARRAY;
    P->r.pos++;
    skip_ws(P);
    if (graft_rd_peek(&P->r) == close) {
        P->r.pos++;
        rc = GRAFT_OK;
        goto cleanup;
    }
    for (;;) {
        rc = vec_push(P, &x);
        if (rc < 0) goto cleanup;
        skip_ws(P);
        if (object) {
            if (graft_rd_peek(&P->r) != '"') {
                rc = unexpected(P, "a string key");
                goto cleanup;
            }
            rc = parse_string(P, &x.keys[x.n - 1], &x.lens[x.n - 1]);
            if (rc < 0) goto cleanup;
            skip_ws(P);
            if (graft_rd_peek(&P->r) != ':') {
                rc = unexpected(P, "':' after an object key");
                goto cleanup;
            }
            P->r.pos++;
        }
        rc = parse_value(P, &x.items[x.n - 1]);
        if (rc < 0) goto cleanup;
        skip_ws(P);
        if (graft_rd_peek(&P->r) == ',') {
            P->r.pos++;
            continue;
        }
        if (graft_rd_peek(&P->r) == close) {
            P->r.pos++;
            break;
        }
        rc = unexpected(P, object ? "',' or '}'" : "',' or ']'");
        goto cleanup;
    }
    rc = vec_finish(P, &x, v, object);
cleanup:
    P->depth--;
    free(x.items);
    free(x.keys);
    free(x.lens);
    return rc;
}

static int parse_value(parser *P, graft_json *v)
{
    skip_ws(P);
    memset(v, 0, sizeof *v);
    v->offset = graft_rd_offset(&P->r);
    int c = graft_rd_peek(&P->r);
    switch (c) {
    case '{': return parse_container(P, v, true);
    case '[': return parse_container(P, v, false);
    case '"':
        v->type = GRAFT_JSON_STRING;
        return parse_string(P, &v->str, &v->len);
    case 't': return literal(P, "true", v, GRAFT_JSON_BOOL, true);
    case 'f': return literal(P, "false", v, GRAFT_JSON_BOOL, false);
    case 'n': return literal(P, "null", v, GRAFT_JSON_NULL, false);
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(P, v);
        return unexpected(P, "a JSON value"); /* the end too (c < 0) */
    }
}

int graft_json_parse(const graft_json **out, const uint8_t *p, size_t n, uint64_t origin,
                     graft_arena *arena, graft_ctx *ctx)
{
    parser P = {.arena = arena, .ctx = ctx};
    graft_json *root;
    *out = NULL;
    if (n > GRAFT_JSON_MAX_SIZE)
        return graft_error(ctx, GRAFT_ELIMIT, "JSON text of %zu bytes exceeds the cap of %u",
                           n, GRAFT_JSON_MAX_SIZE);
    graft_rd_init(&P.r, p, n, origin, ctx);
    root = graft_arena_alloc(arena, sizeof *root);
    if (!root) return graft_error_oom(ctx, "a JSON value");
    GRAFT_TRY(parse_value(&P, root));
    skip_ws(&P);
    if (graft_rd_left(&P.r)) return unexpected(&P, "the end of the JSON text");
    *out = root;
    return GRAFT_OK;
}

const graft_json *graft_json_get(const graft_json *obj, const char *key)
{
    size_t len = strlen(key);
    if (!obj || obj->type != GRAFT_JSON_OBJECT) return NULL;
    for (size_t i = 0; i < obj->count; i++)
        if (obj->key_lens[i] == len && memcmp(obj->keys[i], key, len) == 0)
            return &obj->items[i];
    return NULL;
}

const char *graft_json_type_name(graft_json_type t)
{
    static const char *const names[] = {"null", "boolean", "integer", "number",
                                        "string", "array", "object"};
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

/* ---- writing ------------------------------------------------------------ */

void graft_jsonw_init(graft_jsonw *w, graft_ctx *ctx)
{
    memset(w, 0, sizeof *w);
    w->ctx = ctx;
}

void graft_jsonw_free(graft_jsonw *w)
{
    free(w->p);
    w->p = NULL;
    w->len = w->cap = 0;
}

static bool reserve(graft_jsonw *w, size_t more)
{
    size_t cap;
    char *np;
    if (w->rc < 0) return false;
    if (w->cap - w->len > more) return true;
    cap = w->cap ? w->cap : 256;
    while (cap - w->len <= more) {
        if (cap > SIZE_MAX / 2) {
            w->rc = graft_error_oom(w->ctx, "JSON text");
            return false;
        }
        cap *= 2;
    }
    np = graft_realloc(w->ctx, w->p, cap);
    if (!np) {
        w->rc = graft_error_oom(w->ctx, "JSON text");
        return false;
    }
    w->p = np;
    w->cap = cap;
    return true;
}

void graft_jsonw_raw(graft_jsonw *w, const char *s, size_t n)
{
    if (!reserve(w, n)) return;
    memcpy(w->p + w->len, s, n);
    w->len += n;
    w->p[w->len] = '\0';
}

void graft_jsonw_printf(graft_jsonw *w, const char *fmt, ...)
{
    va_list ap, ap2;
    int n;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n >= 0 && reserve(w, (size_t)n)) {
        vsnprintf(w->p + w->len, (size_t)n + 1, fmt, ap2);
        w->len += (size_t)n;
    }
    va_end(ap2);
}

void graft_jsonw_string(graft_jsonw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    graft_jsonw_raw(w, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        const char *e = NULL;
        switch (c) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        default:
            if (c < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                esc[6] = '\0';
                e = esc;
            }
        }
        if (e)
            graft_jsonw_raw(w, e, strlen(e));
        else
            graft_jsonw_raw(w, (const char *)&s[i], 1);
    }
    graft_jsonw_raw(w, "\"", 1);
}

void graft_jsonw_ints(graft_jsonw *w, const int64_t *v, uint32_t n)
{
    graft_jsonw_raw(w, "[", 1);
    for (uint32_t i = 0; i < n; i++) graft_jsonw_printf(w, "%s%" PRId64, i ? ", " : "", v[i]);
    graft_jsonw_raw(w, "]", 1);
}

void graft_jsonw_num(graft_jsonw *w, double x)
{
    char tmp[32];
    if (!isfinite(x)) {
        graft_jsonw_raw(w, "null", 4);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, x);
        if (strtod(tmp, NULL) == x) break;
    }
    graft_jsonw_printf(w, "%s", tmp);
}

void graft_jsonw_value(graft_jsonw *w, const graft_json *v)
{
    switch (v->type) {
    case GRAFT_JSON_NULL: graft_jsonw_raw(w, "null", 4); break;
    case GRAFT_JSON_BOOL: graft_jsonw_raw(w, v->b ? "true" : "false", v->b ? 4 : 5); break;
    case GRAFT_JSON_INT: graft_jsonw_printf(w, "%lld", (long long)v->i); break;
    case GRAFT_JSON_DOUBLE:
        if (isfinite(v->d))
            graft_jsonw_printf(w, "%.17g", v->d);
        else
            graft_jsonw_raw(w, "null", 4);
        break;
    case GRAFT_JSON_STRING: graft_jsonw_string(w, v->str, v->len); break;
    case GRAFT_JSON_ARRAY:
    case GRAFT_JSON_OBJECT: {
        bool obj = v->type == GRAFT_JSON_OBJECT;
        graft_jsonw_raw(w, obj ? "{" : "[", 1);
        for (size_t i = 0; i < v->count; i++) {
            if (i) graft_jsonw_raw(w, ",", 1);
            if (obj) {
                graft_jsonw_string(w, v->keys[i], v->key_lens[i]);
                graft_jsonw_raw(w, ":", 1);
            }
            graft_jsonw_value(w, &v->items[i]);
        }
        graft_jsonw_raw(w, obj ? "}" : "]", 1);
        break;
    }
    }
}
