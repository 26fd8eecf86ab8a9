/*
 * json.h - a small bounds-checked JSON parser (RFC 8259) and writer helpers.
 *
 * The parser builds a tree in a caller's arena: objects keep their members in
 * file order (duplicate keys are kept; callers decide), strings are decoded
 * to UTF-8 (escapes and surrogate pairs included; input must be valid UTF-8),
 * numbers without fraction or exponent that fit int64 are GRAFT_JSON_INT,
 * all others GRAFT_JSON_DOUBLE.  Errors are GRAFT_ECORRUPT (GRAFT_ELIMIT for
 * caps) with the byte offset: "offset 0x1c: expected ':' after an object key".
 */
#ifndef GRAFT_CORE_JSON_H
#define GRAFT_CORE_JSON_H

#include "arena.h"

#define GRAFT_JSON_MAX_DEPTH 128           /* nesting of arrays and objects */
#define GRAFT_JSON_MAX_SIZE (1u << 30)     /* bytes of input */

typedef enum graft_json_type {
    GRAFT_JSON_NULL,
    GRAFT_JSON_BOOL,
    GRAFT_JSON_INT,
    GRAFT_JSON_DOUBLE,
    GRAFT_JSON_STRING,
    GRAFT_JSON_ARRAY,
    GRAFT_JSON_OBJECT,
} graft_json_type;

typedef struct graft_json graft_json;
struct graft_json {
    graft_json_type type;
    uint64_t offset;        /* input offset of the value's first byte (+origin) */
    bool b;                 /* BOOL */
    int64_t i;              /* INT */
    double d;               /* DOUBLE, and INT as a double */
    const char *str;        /* STRING: NUL-terminated (may hold NULs); arena */
    size_t len;             /* STRING: bytes */
    size_t count;           /* ARRAY items / OBJECT members */
    graft_json *items;      /* ARRAY items / OBJECT values; arena */
    const char **keys;      /* OBJECT keys, NUL-terminated; arena */
    size_t *key_lens;       /* OBJECT key lengths */
};

/**
 * Parse one JSON value filling all of p[0..n) (whitespace around it allowed).
 * `origin` is the file offset of p[0], for messages.
 * @param[out] out  the root, allocated in `arena` (freed with it)
 */
int graft_json_parse(const graft_json **out, const uint8_t *p, size_t n, uint64_t origin,
                     graft_arena *arena, graft_ctx *ctx);
/** The value of the first member named `key` of an object, or NULL. */
const graft_json *graft_json_get(const graft_json *obj, const char *key);
/** "object", "string", ... for messages. */
const char *graft_json_type_name(graft_json_type t);

/* ---- writing ------------------------------------------------------------ */

/* A growable text buffer.  The first failure sticks in `rc` (with the
 * message in ctx) and later appends do nothing, so callers check once. */
typedef struct graft_jsonw {
    char *p;            /* NUL-terminated text; owned, free with graft_jsonw_free */
    size_t len, cap;
    int rc;             /* GRAFT_OK or the first failure */
    graft_ctx *ctx;
} graft_jsonw;

void graft_jsonw_init(graft_jsonw *w, graft_ctx *ctx);
void graft_jsonw_free(graft_jsonw *w);
void graft_jsonw_raw(graft_jsonw *w, const char *s, size_t n);
void graft_jsonw_printf(graft_jsonw *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* s as a quoted JSON string: escapes for '"', '\\' and control characters
 * (\b \f \n \r \t or \u00XX), other bytes (UTF-8) copied. */
void graft_jsonw_string(graft_jsonw *w, const char *s, size_t n);
/* "[1, 2, 3]" */
void graft_jsonw_ints(graft_jsonw *w, const int64_t *v, uint32_t n);
/* The shortest of %.15g..%.17g that reads back to x ("0.001", "1e-05", "2");
 * null for a non-finite x (JSON has none). */
void graft_jsonw_num(graft_jsonw *w, double x);
/* A parsed value written back compactly (members in order; doubles with
 * 17 significant digits, non-finite ones as null). */
void graft_jsonw_value(graft_jsonw *w, const graft_json *v);

#endif
