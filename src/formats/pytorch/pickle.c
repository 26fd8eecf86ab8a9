/*
 * pickle.c - a restricted pickle interpreter that builds a value tree and
 * never runs code (see pickle.h).
 *
 * Input: a pickle stream (CPython Lib/pickle.py, protocols 0-5):
 *  1. optional PROTO n (0x80, 1 byte) and FRAME (0x95, 8-byte LE length, a hint);
 *  2. opcodes, each one byte then its operands: lengths little-endian,
 *     BINFLOAT big-endian, text opcodes of protocol 0 end with '\n';
 *  3. STOP ('.'): the value on top of the stack is the result.
 * Binary opcodes of every protocol are supported; of the text ones, the
 * simple ones (INT, FLOAT, PUT, GET, LIST, DICT...) are, quoted strings and
 * INST/OBJ are refused cleanly.  Every length is checked against the bytes
 * left before anything is allocated; stack, marks, memo and node counts are
 * capped.
 */
#include "pickle.h"

#include "pickle_globals.h"
#include "rd.h"
#include "strmap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pk_memo_entry {
    uint64_t idx;             /* the pickle's memo index */
    graft_pk *value;
} pk_memo_entry;

typedef struct pk_state {
    graft_ctx *ctx;
    graft_arena *arena;
    graft_rd r;               /* the pickle bytes (bounded cursor) */
    uint64_t op_off;          /* file offset of the current opcode */
    uint8_t op;
    graft_pk **stack;         /* malloc; sp values */
    size_t sp, stack_cap;
    size_t *marks;            /* malloc; stack heights */
    size_t nmarks, marks_cap;
    pk_memo_entry *memo;      /* malloc; memo_count entries, memo_cap allocated */
    size_t memo_cap, memo_count;
    graft_strmap memo_map;    /* memo index (its 8 bytes) -> entry in memo */
    size_t nodes;
    bool lenient;             /* foreign globals allowed (whole models) */
    graft_pk *foreign;        /* the first foreign global read */
} pk_state;

static int fail(pk_state *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(pk_state *st, int code, const char *fmt, ...)
{
    char what[GRAFT_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return graft_error(st->ctx, code, "pickle offset 0x%llx: %s",
                       (unsigned long long)st->op_off, what);
}

static const char *op_name(uint8_t op, char buf[8])
{
    if (op >= 0x21 && op < 0x7f)
        snprintf(buf, 8, "'%c'", op);
    else
        snprintf(buf, 8, "0x%02x", op);
    return buf;
}

static int take(pk_state *st, size_t k, const uint8_t **out)
{
    char b[8];
    if (k > graft_rd_left(&st->r)) /* said here, naming the opcode */
        return fail(st, GRAFT_ECORRUPT, "opcode %s needs %zu bytes, %zu left",
                    op_name(st->op, b), k, graft_rd_left(&st->r));
    return graft_rd_take(&st->r, k, out);
}

/* A '\n'-terminated operand of a text opcode, without the newline. */
static int take_line(pk_state *st, const char **out, size_t *len)
{
    const uint8_t *s;
    if (!graft_rd_find(&st->r, '\n', len))
        return fail(st, GRAFT_ECORRUPT, "line operand runs past the end of the pickle");
    GRAFT_TRY(graft_rd_take(&st->r, *len, &s));
    *out = (const char *)s;
    return graft_rd_skip(&st->r, 1);
}

static graft_pk *node(pk_state *st, graft_pk_kind kind)
{
    graft_pk *v;
    if (st->nodes >= GRAFT_PK_MAX_NODES) {
        fail(st, GRAFT_ELIMIT, "more than %u values", GRAFT_PK_MAX_NODES);
        return NULL;
    }
    v = graft_arena_alloc(st->arena, sizeof *v);
    if (!v) {
        graft_error_oom(st->ctx, "a pickle value");
        return NULL;
    }
    st->nodes++;
    v->kind = kind;
    v->off = st->op_off;
    return v;
}

static int push(pk_state *st, graft_pk *v)
{
    if (!v) return st->ctx->status ? st->ctx->status : GRAFT_ENOMEM;
    if (st->sp == st->stack_cap) {
        size_t cap = st->stack_cap ? st->stack_cap * 2 : 64;
        graft_pk **s;
        if (st->sp >= GRAFT_PK_MAX_STACK)
            return fail(st, GRAFT_ELIMIT, "stack deeper than %u values", GRAFT_PK_MAX_STACK);
        s = graft_realloc(st->ctx, st->stack, cap * sizeof *s);
        if (!s) return graft_error_oom(st->ctx, "the pickle stack");
        st->stack = s;
        st->stack_cap = cap;
    }
    st->stack[st->sp++] = v;
    return GRAFT_OK;
}

/* The base of the items above the innermost MARK. */
static size_t mark_base(pk_state *st)
{
    return st->nmarks ? st->marks[st->nmarks - 1] : 0;
}

static int need_stack(pk_state *st, size_t k)
{
    char b[8];
    if (st->sp - mark_base(st) < k)
        return fail(st, GRAFT_ECORRUPT, "opcode %s needs %zu values on the stack, %zu there",
                    op_name(st->op, b), k, st->sp - mark_base(st));
    return GRAFT_OK;
}

static int pop_mark(pk_state *st, size_t *base)
{
    char b[8];
    if (!st->nmarks)
        return fail(st, GRAFT_ECORRUPT, "opcode %s without a MARK", op_name(st->op, b));
    *base = st->marks[--st->nmarks];
    return GRAFT_OK;
}

static int append_items(pk_state *st, graft_pk *c, graft_pk *const *items, size_t k)
{
    if (k == 0) return GRAFT_OK;
    if (k > c->cap - c->len) {
        size_t cap = c->cap ? c->cap : 4;
        graft_pk **v;
        while (cap - c->len < k) {
            if (cap > SIZE_MAX / 2 / sizeof *v) return graft_error_oom(st->ctx, "a container");
            cap *= 2;
        }
        v = graft_arena_alloc(st->arena, cap * sizeof *v);
        if (!v) return graft_error_oom(st->ctx, "a container");
        if (c->len) memcpy(v, c->v, c->len * sizeof *v);
        c->v = v;
        c->cap = cap;
    }
    memcpy(c->v + c->len, items, k * sizeof *items);
    c->len += k;
    return GRAFT_OK;
}

static graft_pk *new_str(pk_state *st, graft_pk_kind kind, const uint8_t *s, size_t len)
{
    graft_pk *v = node(st, kind);
    if (!v) return NULL;
    v->s = graft_arena_strndup(st->arena, (const char *)s, len);
    v->n = len;
    if (!v->s) {
        graft_error_oom(st->ctx, "a pickle string");
        return NULL;
    }
    return v;
}

static graft_pk *new_int(pk_state *st, int64_t i)
{
    graft_pk *v = node(st, PK_INT);
    if (v) v->i = i;
    return v;
}

/* LONG1/LONG4: little-endian two's complement; over 8 bytes kept opaque. */
static graft_pk *new_long(pk_state *st, const uint8_t *b, size_t len)
{
    uint64_t u = 0;
    if (len > 8) return new_str(st, PK_BIGINT, b, len);
    for (size_t i = 0; i < len; i++) u |= (uint64_t)b[i] << (8 * i);
    if (len && len < 8 && (b[len - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * len);
    return new_int(st, (int64_t)u);
}

static int do_global(pk_state *st, const char *module, size_t mlen, const char *name,
                     size_t nlen)
{
    graft_pk *v = node(st, PK_GLOBAL);
    graft_dtype dt;
    int gid;
    if (!v) return st->ctx->status;
    v->s = graft_arena_strndup(st->arena, module, mlen);
    v->name = graft_arena_strndup(st->arena, name, nlen);
    if (!v->s || !v->name) return graft_error_oom(st->ctx, "a global name");
    v->n = mlen;
    if (strlen(v->s) != mlen || strlen(v->name) != nlen)
        return fail(st, GRAFT_EUNSAFE, "global name holds a NUL byte");
    gid = graft_pickle__classify(v->s, v->name, &dt);
    if (gid < 0 || (!st->lenient && (gid == PKG_FOREIGN || gid == PKG_GETATTR)))
        return fail(st, GRAFT_EUNSAFE, "global '%s.%s' is not allowed", v->s, v->name);
    if ((gid == PKG_FOREIGN || gid == PKG_GETATTR) && !st->foreign) st->foreign = v;
    v->gid = (uint8_t)gid;
    v->dtype = dt;
    return push(st, v);
}

/* The memo is sparse, as Python's dict is: a 6-byte LONG_BINPUT of index
 * 2^22 - 1 must not cost a dense table of 4M slots. */
static const char *memo_key(const void *owner, size_t i, size_t *len)
{
    *len = sizeof(uint64_t);
    return (const char *)&((const pk_memo_entry *)owner)[i].idx;
}

static int memo_put(pk_state *st, uint64_t idx)
{
    size_t have;
    if (!st->sp) return fail(st, GRAFT_ECORRUPT, "memo store with an empty stack");
    if (idx >= GRAFT_PK_MAX_MEMO)
        return fail(st, GRAFT_ELIMIT, "memo index %llu exceeds the cap of %u",
                    (unsigned long long)idx, GRAFT_PK_MAX_MEMO);
    have = graft_strmap_find(&st->memo_map, (const char *)&idx, sizeof idx);
    if (have != GRAFT_STRMAP_NONE) {
        st->memo[have].value = st->stack[st->sp - 1];
        return GRAFT_OK;
    }
    if (st->memo_count == st->memo_cap) {
        size_t cap = st->memo_cap ? st->memo_cap * 2 : 64;
        pk_memo_entry *m = graft_realloc(st->ctx, st->memo, cap * sizeof *m);
        if (!m) return graft_error_oom(st->ctx, "the pickle memo");
        st->memo = m;
        st->memo_cap = cap;
        st->memo_map.owner = m;     /* the map reads keys from the moved array */
    }
    GRAFT_TRY(graft_strmap_reserve(&st->memo_map, st->memo_count + 1, st->ctx));
    st->memo[st->memo_count].idx = idx;
    st->memo[st->memo_count].value = st->stack[st->sp - 1];
    (void)graft_strmap_put(&st->memo_map, st->memo_count++);
    return GRAFT_OK;
}

static int memo_get(pk_state *st, uint64_t idx)
{
    size_t at = graft_strmap_find(&st->memo_map, (const char *)&idx, sizeof idx);
    if (at == GRAFT_STRMAP_NONE)
        return fail(st, GRAFT_ECORRUPT, "memo index %llu was never stored",
                    (unsigned long long)idx);
    /* Containers are shared, not copied: a cycle stays a finite graph. */
    return push(st, st->memo[at].value);
}

/* Parse a decimal operand of a text opcode (INT, LONG, PUT, GET). */
static int parse_decimal(pk_state *st, const char *s, size_t len, int64_t *out)
{
    char buf[32];
    char *end;
    long long v;
    if (len && s[len - 1] == 'L') len--; /* protocol-0 LONG suffix */
    if (len == 0 || len >= sizeof buf)
        return fail(st, GRAFT_ECORRUPT, "bad decimal operand of %zu bytes", len);
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    v = strtoll(buf, &end, 10);
    if (*end != '\0') return fail(st, GRAFT_ECORRUPT, "bad decimal operand '%s'", buf);
    if (errno == ERANGE)
        return fail(st, GRAFT_EFORMAT, "decimal operand '%s' does not fit 64 bits", buf);
    *out = v;
    return GRAFT_OK;
}

static int make_seq(pk_state *st, graft_pk_kind kind, size_t base)
{
    graft_pk *t = node(st, kind);
    size_t k = st->sp - base;
    if (!t) return st->ctx->status;
    if (k) GRAFT_TRY(append_items(st, t, st->stack + base, k)); /* stack may be NULL */
    st->sp = base;
    return push(st, t);
}

/* SETITEM(S) on a dict, or on an object that keeps items (OrderedDict). */
static int set_items(pk_state *st, size_t base)
{
    graft_pk *d;
    if ((st->sp - base) % 2)
        return fail(st, GRAFT_ECORRUPT, "odd number of values for SETITEMS");
    if (base == 0) return fail(st, GRAFT_ECORRUPT, "SETITEMS without a target");
    d = st->stack[base - 1];
    if (d->kind != PK_DICT && d->kind != PK_OBJ)
        return fail(st, GRAFT_EFORMAT, "SETITEMS on a %s", graft_pickle__kind_name(d->kind));
    if (d->kind == PK_OBJ && d->callable->gid == PKG_GETATTR)
        return fail(st, GRAFT_EUNSAFE, "SETITEMS on the result of getattr is not allowed");
    GRAFT_TRY(append_items(st, d, st->stack + base, st->sp - base));
    st->sp = base;
    return GRAFT_OK;
}

static int add_to(pk_state *st, size_t base, graft_pk_kind want)
{
    graft_pk *c;
    if (base == 0) return fail(st, GRAFT_ECORRUPT, "APPENDS without a target");
    c = st->stack[base - 1];
    if (c->kind != want)
        return fail(st, GRAFT_EFORMAT, "%s into a %s", want == PK_LIST ? "APPENDS" : "ADDITEMS",
                    graft_pickle__kind_name(c->kind));
    GRAFT_TRY(append_items(st, c, st->stack + base, st->sp - base));
    st->sp = base;
    return GRAFT_OK;
}

/* REDUCE / NEWOBJ: record the call; nothing is run. */
static int make_obj(pk_state *st, graft_pk *callable, graft_pk *args)
{
    graft_pk *o;
    /* Legacy torch.save pickles a module class as the persistent id
     * ('module', class, source file, source) and calls that (torch.load's
     * persistent_load returns the class; the source is never run). */
    if (callable->kind == PK_PERSID && callable->args && callable->args->kind == PK_TUPLE &&
        callable->args->len == 4 && callable->args->v[0]->kind == PK_STR &&
        strcmp(callable->args->v[0]->s, "module") == 0 &&
        callable->args->v[1]->kind == PK_GLOBAL)
        callable = callable->args->v[1];
    if (callable->kind != PK_GLOBAL)
        return fail(st, GRAFT_EFORMAT, "call of a %s, not of a global",
                    graft_pickle__kind_name(callable->kind));
    if (args->kind != PK_TUPLE)
        return fail(st, GRAFT_ECORRUPT, "arguments of '%s.%s' are a %s, not a tuple",
                    callable->s, callable->name, graft_pickle__kind_name(args->kind));
    /* Whole models reference functions and bound methods through getattr:
     * torch.tanh is getattr(torch._C._VariableFunctionsClass, 'tanh'), a
     * hook self._infer_parameters is getattr(<the module>, '_infer_parameters').
     * Only one plain name of a global or an object; dunder names and dotted
     * paths are the gadgets, and the result is never called, built or
     * filled (make_obj, BUILD, SETITEMS). */
    if (callable->gid == PKG_GETATTR) {
        const graft_pk *on = graft_pk_item(args, 0), *attr = graft_pk_item(args, 1);
        if (args->len != 2 || (on->kind != PK_GLOBAL && on->kind != PK_OBJ) ||
            attr->kind != PK_STR || strncmp(attr->s, "__", 2) == 0 ||
            strlen(attr->s) != attr->n || strchr(attr->s, '.'))
            return fail(st, GRAFT_EUNSAFE, "global '%s.%s' is not allowed (but for a plain "
                        "attribute name of a global or an object)", callable->s,
                        callable->name);
    }
    o = node(st, PK_OBJ);
    if (!o) return st->ctx->status;
    o->callable = callable;
    o->args = args;
    o->op = st->op;
    return push(st, o);
}

static int op_binary_str(pk_state *st, graft_pk_kind kind, size_t lensize)
{
    const uint8_t *b, *s;
    uint64_t len;
    GRAFT_TRY(take(st, lensize, &b));
    len = lensize == 1 ? b[0] : lensize == 4 ? graft_le32(b) : graft_le64(b);
    if (len > graft_rd_left(&st->r))
        return fail(st, GRAFT_ECORRUPT, "string of %llu bytes but %zu left",
                    (unsigned long long)len, graft_rd_left(&st->r));
    GRAFT_TRY(take(st, (size_t)len, &s));
    return push(st, new_str(st, kind, s, (size_t)len));
}

/* One opcode; *stop set by STOP. */
static int step(pk_state *st, bool *stop)
{
    const uint8_t *b;
    const char *s1 = NULL, *s2 = NULL; /* set on success only: gcc -O3 cannot see it */
    size_t l1 = 0, l2 = 0, base = 0;
    int64_t iv;
    graft_pk *a, *c;
    char nb[8];

    st->op_off = graft_rd_offset(&st->r);
    GRAFT_TRY(take(st, 1, &b));
    st->op = b[0];
    switch (st->op) {
    case 0x80: /* PROTO */
        GRAFT_TRY(take(st, 1, &b));
        if (b[0] > 5) return fail(st, GRAFT_EFORMAT, "pickle protocol %u is not supported", b[0]);
        return GRAFT_OK;
    case 0x95: /* FRAME: a read-ahead hint; CPython reads the whole frame
                * first, so one longer than the bytes left is truncated */
        GRAFT_TRY(take(st, 8, &b));
        if (graft_le64(b) > graft_rd_left(&st->r))
            return fail(st, GRAFT_ECORRUPT, "FRAME of %llu bytes but %zu left",
                        (unsigned long long)graft_le64(b), graft_rd_left(&st->r));
        return GRAFT_OK;
    case '.':
        GRAFT_TRY(need_stack(st, 1));
        *stop = true;
        return GRAFT_OK;
    case '(':
        if (st->nmarks == st->marks_cap) {
            size_t cap = st->marks_cap ? st->marks_cap * 2 : 16;
            size_t *m;
            if (st->nmarks >= GRAFT_PK_MAX_MARKS)
                return fail(st, GRAFT_ELIMIT, "more than %u nested MARKs", GRAFT_PK_MAX_MARKS);
            m = graft_realloc(st->ctx, st->marks, cap * sizeof *m);
            if (!m) return graft_error_oom(st->ctx, "the pickle marks");
            st->marks = m;
            st->marks_cap = cap;
        }
        st->marks[st->nmarks++] = st->sp;
        return GRAFT_OK;
    case '0': /* POP */
        if (st->sp > mark_base(st)) {
            st->sp--;
            return GRAFT_OK;
        }
        return pop_mark(st, &base); /* POP of a bare MARK drops it */
    case '1': /* POP_MARK */
        GRAFT_TRY(pop_mark(st, &base));
        st->sp = base;
        return GRAFT_OK;
    case '2': /* DUP */
        GRAFT_TRY(need_stack(st, 1));
        return push(st, st->stack[st->sp - 1]);
    case 'c': /* GLOBAL module\nname\n */
        GRAFT_TRY(take_line(st, &s1, &l1));
        GRAFT_TRY(take_line(st, &s2, &l2));
        return do_global(st, s1, l1, s2, l2);
    case 0x93: /* STACK_GLOBAL */
        GRAFT_TRY(need_stack(st, 2));
        a = st->stack[st->sp - 2];
        c = st->stack[st->sp - 1];
        if (a->kind != PK_STR || c->kind != PK_STR)
            return fail(st, GRAFT_ECORRUPT, "STACK_GLOBAL of non-strings");
        st->sp -= 2;
        return do_global(st, a->s, a->n, c->s, c->n);
    case 'i': /* INST module\nname\n: classify, then refuse */
        GRAFT_TRY(take_line(st, &s1, &l1));
        GRAFT_TRY(take_line(st, &s2, &l2));
        GRAFT_TRY(do_global(st, s1, l1, s2, l2));
        return fail(st, GRAFT_EFORMAT, "opcode INST is not supported");
    case 'o': case 0x82: case 0x83: case 0x84: case 0x97: case 0x98:
    case 'S': case 'V':
        return fail(st, GRAFT_EFORMAT, "opcode %s is not supported", op_name(st->op, nb));
    case 'q': GRAFT_TRY(take(st, 1, &b)); return memo_put(st, b[0]);
    case 'r': GRAFT_TRY(take(st, 4, &b)); return memo_put(st, graft_le32(b));
    case 0x94: return memo_put(st, st->memo_count);
    case 'p':
        GRAFT_TRY(take_line(st, &s1, &l1));
        GRAFT_TRY(parse_decimal(st, s1, l1, &iv));
        if (iv < 0) return fail(st, GRAFT_ECORRUPT, "negative memo index");
        return memo_put(st, (uint64_t)iv);
    case 'h': GRAFT_TRY(take(st, 1, &b)); return memo_get(st, b[0]);
    case 'j': GRAFT_TRY(take(st, 4, &b)); return memo_get(st, graft_le32(b));
    case 'g':
        GRAFT_TRY(take_line(st, &s1, &l1));
        GRAFT_TRY(parse_decimal(st, s1, l1, &iv));
        if (iv < 0) return fail(st, GRAFT_ECORRUPT, "negative memo index");
        return memo_get(st, (uint64_t)iv);
    case ')': return push(st, node(st, PK_TUPLE));
    case ']': return push(st, node(st, PK_LIST));
    case '}': return push(st, node(st, PK_DICT));
    case 0x8f: return push(st, node(st, PK_SET));
    case 't': GRAFT_TRY(pop_mark(st, &base)); return make_seq(st, PK_TUPLE, base);
    case 'l': GRAFT_TRY(pop_mark(st, &base)); return make_seq(st, PK_LIST, base);
    case 0x91: GRAFT_TRY(pop_mark(st, &base)); return make_seq(st, PK_SET, base);
    case 'd':
        GRAFT_TRY(pop_mark(st, &base));
        if ((st->sp - base) % 2) return fail(st, GRAFT_ECORRUPT, "odd number of values for DICT");
        return make_seq(st, PK_DICT, base);
    case 0x85: case 0x86: case 0x87:
        GRAFT_TRY(need_stack(st, (size_t)(st->op - 0x84)));
        return make_seq(st, PK_TUPLE, st->sp - (size_t)(st->op - 0x84));
    case 'a':
        GRAFT_TRY(need_stack(st, 2));
        return add_to(st, st->sp - 1, PK_LIST);
    case 'e': GRAFT_TRY(pop_mark(st, &base)); return add_to(st, base, PK_LIST);
    case 0x90: GRAFT_TRY(pop_mark(st, &base)); return add_to(st, base, PK_SET);
    case 's':
        GRAFT_TRY(need_stack(st, 3));
        return set_items(st, st->sp - 2);
    case 'u': GRAFT_TRY(pop_mark(st, &base)); return set_items(st, base);
    case 'N': return push(st, node(st, PK_NONE));
    case 0x88: case 0x89:
        a = node(st, PK_BOOL);
        if (a) a->i = st->op == 0x88;
        return push(st, a);
    case 'K': GRAFT_TRY(take(st, 1, &b)); return push(st, new_int(st, b[0]));
    case 'M': GRAFT_TRY(take(st, 2, &b)); return push(st, new_int(st, graft_le16(b)));
    case 'J': GRAFT_TRY(take(st, 4, &b)); return push(st, new_int(st, (int32_t)graft_le32(b)));
    case 'I': case 'L':
        GRAFT_TRY(take_line(st, &s1, &l1));
        if (st->op == 'I' && (l1 == 2 && (!memcmp(s1, "00", 2) || !memcmp(s1, "01", 2)))) {
            a = node(st, PK_BOOL); /* protocol-0 True/False */
            if (a) a->i = s1[1] == '1';
            return push(st, a);
        }
        GRAFT_TRY(parse_decimal(st, s1, l1, &iv));
        return push(st, new_int(st, iv));
    case 0x8a:
        GRAFT_TRY(take(st, 1, &b));
        l1 = b[0];
        GRAFT_TRY(take(st, l1, &b));
        return push(st, new_long(st, b, l1));
    case 0x8b: {
        int32_t len;
        GRAFT_TRY(take(st, 4, &b));
        len = (int32_t)graft_le32(b);
        if (len < 0) return fail(st, GRAFT_ECORRUPT, "LONG4 with negative length %d", len);
        GRAFT_TRY(take(st, (size_t)len, &b));
        return push(st, new_long(st, b, (size_t)len));
    }
    case 'G': {
        uint64_t u = 0;
        GRAFT_TRY(take(st, 8, &b));
        for (int k = 0; k < 8; k++) u = u << 8 | b[k];
        a = node(st, PK_FLOAT);
        if (a) memcpy(&a->f, &u, sizeof a->f);
        return push(st, a);
    }
    case 'F': {
        char buf[64], *end;
        GRAFT_TRY(take_line(st, &s1, &l1));
        if (l1 == 0 || l1 >= sizeof buf) return fail(st, GRAFT_ECORRUPT, "bad FLOAT operand");
        memcpy(buf, s1, l1);
        buf[l1] = '\0';
        a = node(st, PK_FLOAT);
        if (a) a->f = strtod(buf, &end);
        if (a && *end) return fail(st, GRAFT_ECORRUPT, "bad FLOAT operand '%s'", buf);
        return push(st, a);
    }
    case 'X': return op_binary_str(st, PK_STR, 4);
    case 0x8c: return op_binary_str(st, PK_STR, 1);
    case 0x8d: return op_binary_str(st, PK_STR, 8);
    case 'U': return op_binary_str(st, PK_STR, 1);  /* Python 2 str, read as UTF-8 */
    case 'T': return op_binary_str(st, PK_STR, 4);
    case 'B': return op_binary_str(st, PK_BYTES, 4);
    case 'C': return op_binary_str(st, PK_BYTES, 1);
    case 0x8e: return op_binary_str(st, PK_BYTES, 8);
    case 0x96: return op_binary_str(st, PK_BYTES, 8);
    case 'P':
        GRAFT_TRY(take_line(st, &s1, &l1));
        a = node(st, PK_PERSID);
        if (!a) return st->ctx->status;
        a->args = new_str(st, PK_STR, (const uint8_t *)s1, l1);
        if (!a->args) return st->ctx->status;
        return push(st, a);
    case 'Q':
        GRAFT_TRY(need_stack(st, 1));
        a = node(st, PK_PERSID);
        if (!a) return st->ctx->status;
        a->args = st->stack[--st->sp];
        return push(st, a);
    case 'R': case 0x81:
        GRAFT_TRY(need_stack(st, 2));
        a = st->stack[st->sp - 1];
        c = st->stack[st->sp - 2];
        st->sp -= 2;
        return make_obj(st, c, a);
    case 0x92: /* NEWOBJ_EX cls args kwargs */
        GRAFT_TRY(need_stack(st, 3));
        a = st->stack[st->sp - 2];
        c = st->stack[st->sp - 3];
        st->sp -= 3;
        return make_obj(st, c, a);
    case 'b':
        GRAFT_TRY(need_stack(st, 2));
        a = st->stack[st->sp - 1];
        c = st->stack[st->sp - 2];
        if (c->kind != PK_OBJ)
            return fail(st, GRAFT_EFORMAT, "BUILD on a %s", graft_pickle__kind_name(c->kind));
        if (c->callable->gid == PKG_GETATTR)
            return fail(st, GRAFT_EUNSAFE, "BUILD on the result of getattr is not allowed");
        c->state = a;  /* recorded, never applied */
        st->sp--;
        return GRAFT_OK;
    default:
        return fail(st, GRAFT_ECORRUPT, "unknown opcode %s", op_name(st->op, nb));
    }
}

static int load(graft_pk **out, graft_pk **foreign, size_t *consumed, graft_arena *arena,
                const uint8_t *p, size_t n, uint64_t origin, graft_ctx *ctx)
{
    pk_state st = {.ctx = ctx, .arena = arena, .lenient = foreign != NULL};
    bool stop = false;
    int rc = GRAFT_OK;

    graft_strmap_init(&st.memo_map, memo_key, NULL);
    graft_rd_init(&st.r, p, n, origin, ctx);
    *out = NULL;
    while (!stop) {
        if (!graft_rd_left(&st.r)) {
            st.op_off = graft_rd_offset(&st.r);
            rc = fail(&st, GRAFT_ECORRUPT, "pickle ends without STOP");
            goto cleanup;
        }
        rc = step(&st, &stop);
        if (rc < 0) goto cleanup;
    }
    *out = st.stack[st.sp - 1];
    if (foreign) *foreign = st.foreign;
    if (consumed) *consumed = st.r.pos;
cleanup:
    free(st.stack);
    free(st.marks);
    free(st.memo);
    graft_strmap_free(&st.memo_map);
    return rc;
}

int graft_pickle__load(graft_pk **out, size_t *consumed, graft_arena *arena,
                       const uint8_t *p, size_t n, uint64_t origin, graft_ctx *ctx)
{
    return load(out, NULL, consumed, arena, p, n, origin, ctx);
}

int graft_pickle__load_lenient(graft_pk **out, graft_pk **foreign, size_t *consumed,
                               graft_arena *arena, const uint8_t *p, size_t n, uint64_t origin,
                               graft_ctx *ctx)
{
    *foreign = NULL;
    return load(out, foreign, consumed, arena, p, n, origin, ctx);
}

const char *graft_pickle__kind_name(graft_pk_kind kind)
{
    static const char *const names[] = {
        [PK_NONE] = "None",    [PK_BOOL] = "bool",   [PK_INT] = "int",
        [PK_BIGINT] = "int",   [PK_FLOAT] = "float", [PK_STR] = "str",
        [PK_BYTES] = "bytes",  [PK_TUPLE] = "tuple", [PK_LIST] = "list",
        [PK_SET] = "set",      [PK_DICT] = "dict",   [PK_GLOBAL] = "global",
        [PK_OBJ] = "object",   [PK_PERSID] = "persistent id",
    };
    return (unsigned)kind < sizeof names / sizeof *names ? names[kind] : "?";
}
