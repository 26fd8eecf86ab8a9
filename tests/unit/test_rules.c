/* test_rules.c - rules files (loading, every error with its file:line:col),
 * pairing, selectors, policies, expect counts, reverse plans and explain,
 * over tensor tables built in memory. */
#include "testutil.h"

#include "error.h"
#include "model.h"
#include "../../src/rules/rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static graft_ctx *ctx;
static void setup(void) { ctx = graft_ctx_new(); }
static void teardown(void) { graft_ctx_free(ctx); }

static int load(graft_rules **r, const char *yaml)
{
    return graft_rules_load_buffer(r, "r.yaml", yaml, strlen(yaml), ctx);
}

/* A model from "name:dtype:d0,d1,..;" entries (no data: plans need none). */
static graft_model *model(const char *spec)
{
    graft_model *m;
    char buf[4096];
    ck_assert_int_eq(graft_model__new(&m, "mem", ctx), 0);
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *tok = strtok_r(buf, ";", &save); tok;
         tok = strtok_r(NULL, ";", &save)) {
        /* names may hold ':', so split from the right */
        char *name = tok, *dims = strrchr(tok, ':'), *dt;
        int64_t shape[8];
        uint32_t nd = 0;
        ck_assert_ptr_nonnull(dims);
        *dims++ = '\0';
        dt = strrchr(tok, ':');
        ck_assert_ptr_nonnull(dt);
        *dt++ = '\0';
        for (char *s2 = NULL, *d = strtok_r(dims, ",", &s2); d; d = strtok_r(NULL, ",", &s2))
            shape[nd++] = strtoll(d, NULL, 10);
        ck_assert_ptr_nonnull(graft_model__add(m, name, strlen(name), graft_dtype_from_name(dt),
                                               nd, shape, ctx));
    }
    return m;
}

/* ---- loading ------------------------------------------------------------ */

static const char full[] =
    "graft: 1\n"
    "name: torchvision squeezenet1_1 -> TF-slim port\n"
    "description: free text\n"
    "select: model\n"
    "rename:\n"
    "  source:\n"
    "    - {match: '^module\\.', to: ''}\n"
    "  target:\n"
    "    - {match: '(weights|kernel):0$', to: 'weight', expect: 3}\n"
    "    - {match: '(biases|bias):0$', to: 'bias'}\n"
    "    - {match: '/', to: '.'}\n"
    "pairs:\n"
    "  'last_conv/weights:0': 'classifier.1.weight'\n"
    "  'attn/qkv/kernel:0': ['q.weight', 'k.weight', 'v.weight']\n"
    "transforms:\n"
    "  - target: 'fc1/kernel'\n"
    "    ops:\n"
    "      - reshape: [4096, 512, 7, 7]\n"
    "      - permute: OCHW->HWCO\n"
    "      - reshape: [-1, 4096]\n"
    "  - rank: 4\n"
    "    ops: [{permute: OIHW->HWIO}]\n"
    "  - rank: 2\n"
    "    dtype: float32\n"
    "    ops: [transpose, {cast: bfloat16}]\n"
    "  - source: 'gru'\n"
    "    ops: [{chunks: {axis: 0, order: [1, 0, 2]}}, {take: {axis: 1, count: 3, index: 2}}]\n"
    "  - target: qkv\n"
    "    ops: [{concat: {axis: 0}}, {permute: [1, 0]}]\n"
    "ignore:\n"
    "  source: ['num_batches_tracked$']\n"
    "  target: ['^global_step$']\n"
    "policy:\n"
    "  missing: keep\n"
    "  unused: error\n"
    "  mismatch: keep\n";

START_TEST(load_reads_every_section)
{
    graft_rules *r;
    ck_assert_int_eq(load(&r, full), 0);
    ck_assert_str_eq(r->name, "torchvision squeezenet1_1 -> TF-slim port");
    ck_assert_str_eq(r->select, "model");
    ck_assert_uint_eq(r->nrename[GRAFT_SIDE_SOURCE], 1);
    ck_assert_uint_eq(r->nrename[GRAFT_SIDE_TARGET], 3);
    ck_assert_int_eq(r->rename[GRAFT_SIDE_TARGET][0].expect, 3);
    ck_assert_int_eq(r->rename[GRAFT_SIDE_TARGET][1].expect, -1);
    ck_assert_uint_eq(r->rename[GRAFT_SIDE_TARGET][2].pos.line, 11);
    ck_assert_uint_eq(r->rename[GRAFT_SIDE_TARGET][2].pos.col, 7);
    ck_assert_uint_eq(r->npairs, 2);
    ck_assert_uint_eq(r->pairs[1].nsources, 3);
    ck_assert_str_eq(r->pairs[1].sources[2], "v.weight");
    ck_assert_uint_eq(r->ntransforms, 5);
    const graft_transform *t = &r->transforms[0];
    ck_assert_uint_eq(t->nops, 3);
    ck_assert_int_eq(t->ops[1].kind, GRAFT_OP_PERMUTE);
    /* OCHW->HWCO: out = (H, W, C, O) = in axes (2, 3, 1, 0) */
    ck_assert_uint_eq(t->ops[1].n, 4);
    ck_assert_int_eq(t->ops[1].v[0], 2);
    ck_assert_int_eq(t->ops[1].v[1], 3);
    ck_assert_int_eq(t->ops[1].v[2], 1);
    ck_assert_int_eq(t->ops[1].v[3], 0);
    ck_assert_uint_eq(t->ops[1].line, 19);
    ck_assert_str_eq(t->ops[1].file, "r.yaml");
    ck_assert_int_eq(t->ops[2].v[0], -1);
    ck_assert_int_eq(r->transforms[1].rank, 4);
    ck_assert_int_eq(r->transforms[2].dtype, GRAFT_FLOAT32);
    ck_assert_int_eq(r->transforms[2].ops[0].kind, GRAFT_OP_TRANSPOSE);
    ck_assert_int_eq(r->transforms[2].ops[1].dtype, GRAFT_BFLOAT16);
    ck_assert_int_eq(r->transforms[3].ops[0].kind, GRAFT_OP_CHUNKS);
    ck_assert_int_eq(r->transforms[3].ops[0].v[0], 1);
    ck_assert_int_eq(r->transforms[3].ops[1].count, 3);
    ck_assert_int_eq(r->transforms[3].ops[1].index, 2);
    ck_assert_int_eq(r->transforms[3].ops[1].axis, 1);
    ck_assert_int_eq(r->transforms[4].ops[0].kind, GRAFT_OP_CONCAT);
    ck_assert_uint_eq(r->nignore[GRAFT_SIDE_SOURCE], 1);
    ck_assert_int_eq(graft_rules_ignored(r, GRAFT_SIDE_SOURCE, "bn.num_batches_tracked", ctx), 1);
    ck_assert_int_eq(graft_rules_ignored(r, GRAFT_SIDE_TARGET, "bn.num_batches_tracked", ctx), 0);
    ck_assert_int_eq(r->missing, GRAFT_MISSING_KEEP);
    ck_assert_int_eq(r->unused, GRAFT_UNUSED_ERROR);
    ck_assert_int_eq(r->mismatch, GRAFT_MISMATCH_KEEP);
    graft_rules_free(r);
}
END_TEST

START_TEST(rename_substitutes_globally_with_groups)
{
    graft_rules *r;
    char *out;
    graft_rename_step steps[4];
    size_t n;
    ck_assert_int_eq(load(&r, "graft: 1\n"
                              "rename:\n"
                              "  target:\n"
                              "    - {match: '(?<blk>block\\d+)/conv(\\d)', to: '${blk}.c$2'}\n"
                              "    - {match: '/', to: '.'}\n"
                              "    - {match: 'nomatch', to: 'x'}\n"
                              "    - {match: '(kernel)|(bias)$', to: '[$1$2]'}\n"),
                     0);
    ck_assert_int_eq(graft_rules_rename(r, GRAFT_SIDE_TARGET, "net/block1/conv2/w", &out, steps,
                                        4, &n, ctx),
                     0);
    ck_assert_str_eq(out, "net.block1.c2.w");
    ck_assert_uint_eq(n, 2);
    graft_rename_steps_free(steps, n);
    free(out);
    /* an alternative's unset group substitutes as empty */
    ck_assert_int_eq(graft_rules_rename(r, GRAFT_SIDE_TARGET, "fc/bias", &out, steps, 4, &n, ctx), 0);
    ck_assert_str_eq(out, "fc.[bias]");
    ck_assert_uint_eq(n, 2);
    graft_rename_steps_free(steps, n);
    free(out);
    ck_assert_int_eq(graft_rules_rename(r, GRAFT_SIDE_TARGET, "net/block1/conv2/w", &out, steps,
                                        4, &n, ctx),
                     0);
    ck_assert_str_eq(steps[0].before, "net/block1/conv2/w");
    ck_assert_str_eq(steps[0].after, "net/block1.c2/w");
    ck_assert_uint_eq(steps[1].rule->pos.line, 5);
    ck_assert_str_eq(steps[1].after, "net.block1.c2.w");
    graft_rename_steps_free(steps, n);
    free(out);
    /* the source side has no renames */
    ck_assert_int_eq(graft_rules_rename(r, GRAFT_SIDE_SOURCE, "a/b", &out, NULL, 0, NULL, ctx), 0);
    ck_assert_str_eq(out, "a/b");
    free(out);
    graft_rules_free(r);
}
END_TEST

START_TEST(rename_with_bad_group_reference_fails_at_the_rule)
{
    graft_rules *r = NULL;
    /* caught when the file loads (graft check), not once a name matches */
    ck_assert_int_eq(load(&r, "graft: 1\nrename:\n  source:\n    - {match: 'a', to: '$3'}\n"),
                     GRAFT_ERULE);
    ck_assert_ptr_null(r);
    ck_assert_str_eq(graft_ctx_message(ctx),
                     "r.yaml:4:24: to: '$3': the pattern 'a' has no such group (it has 0)");
}
END_TEST

/* Each bad file and the exact message it must give. */
static const struct {
    const char *yaml;
    int code;
    const char *msg;
} bad[] = {
    {"graft: 1\nrenmae: {}\n", GRAFT_ERULE,
     "r.yaml:2:1: unknown key 'renmae' (expected one of: graft, name, description, include, "
     "select, rename, pairs, transforms, ignore, policy, meta)"},
    {"graft: 1\nrename:\n  source:\n    - {mtach: 'a', to: b}\n", GRAFT_ERULE,
     "r.yaml:4:8: rename entry: unknown key 'mtach' (expected one of: match, to, expect)"},
    {"graft: 1\nrename:\n  source:\n    - {match: 'a(b', to: x}\n", GRAFT_ERULE,
     "r.yaml:4:15: bad regex 'a(b' at offset 3: missing closing parenthesis"},
    {"graft: 1\nignore:\n  target: ['[z-a]']\n", GRAFT_ERULE,
     "r.yaml:3:12: bad regex '[z-a]' at offset 3: range out of order in character class"},
    {"graft: 1\ntransforms:\n  - rank: four\n    ops: []\n", GRAFT_ERULE,
     "r.yaml:3:11: rank: expected an integer, got 'four'"},
    {"graft: 1\ntransforms:\n  - rank: 65\n    ops: []\n", GRAFT_ERULE,
     "r.yaml:3:11: rank: 65 is out of range [0, 64]"},
    {"graft: 1\ntransforms:\n  - dtype: float17\n    ops: []\n", GRAFT_ERULE,
     "r.yaml:3:12: dtype: unknown dtype 'float17'"},
    {"graft: 1\npairs: [a, b]\n", GRAFT_ERULE, "r.yaml:2:8: pairs: expected a mapping, got a list"},
    {"graft: 1\nrename: {source: {match: a, to: b}}\n", GRAFT_ERULE,
     "r.yaml:2:18: rename: source: expected a list, got a mapping"},
    {"graft: '1'\n", GRAFT_ERULE, "r.yaml:1:8: graft: expected an integer, got a string"},
    {"graft: 2\n", GRAFT_ERULE,
     "r.yaml:1:8: graft: format version 2 is not supported (this graft reads 1 and 1.1)"},
    {"name: x\n", GRAFT_ERULE, "r.yaml:1:1: missing required key 'graft' (the format version, 1 or 1.1)"},
    {"- graft: 1\n", GRAFT_ERULE, "r.yaml:1:1: expected a mapping at the top, got a list"},
    {"", GRAFT_ERULE, "r.yaml:1:1: the file is empty"},
    {"graft: 1\nrename: [1\n", GRAFT_ERULE,
     "r.yaml:3:1: did not find expected ',' or ']' while parsing a flow sequence"},
    {"graft: 1\nname: a\nname: b\n", GRAFT_ERULE, "r.yaml:3:1: key 'name' appears twice"},
    {"graft: 1\ntransforms:\n  - ops: [{permute: OOHW->HWOO}]\n", GRAFT_ERULE,
     "r.yaml:3:21: permute: letter 'O' repeated in 'OOHW->HWOO'"},
    {"graft: 1\ntransforms:\n  - ops: [{permute: OIHW->HWIX}]\n", GRAFT_ERULE,
     "r.yaml:3:21: permute: letter 'X' of the right side is not on the left in 'OIHW->HWIX'"},
    {"graft: 1\ntransforms:\n  - ops: [{permute: OIHW->HWI}]\n", GRAFT_ERULE,
     "r.yaml:3:21: permute: 'OIHW->HWI' has 4 letters on the left and 3 on the right"},
    {"graft: 1\ntransforms:\n  - ops: [{permute: OIHW}]\n", GRAFT_ERULE,
     "r.yaml:3:21: permute: expected 'LETTERS->LETTERS' or a list of axes, got 'OIHW'"},
    {"graft: 1\ntransforms:\n  - ops: [{permute: [0, 0, 1]}]\n", GRAFT_ERULE,
     "r.yaml:3:21: permute: not a permutation of 0..2"},
    {"graft: 1\ntransforms:\n  - ops:\n      - reshape: [-1, 4, -1]\n", GRAFT_ERULE,
     "r.yaml:4:18: reshape: more than one -1"},
    {"graft: 1\ntransforms:\n  - ops:\n      - reshape: [-2]\n", GRAFT_ERULE,
     "r.yaml:4:19: reshape: -2 is out of range [-1, 9223372036854775807]"},
    {"graft: 1\ntransforms:\n  - ops: [{cast: float17}]\n", GRAFT_ERULE,
     "r.yaml:3:18: cast: unknown dtype 'float17'"},
    {"graft: 1\ntransforms:\n  - ops: [{take: {axis: 0, count: 3, index: 3}}]\n", GRAFT_ERULE,
     "r.yaml:3:45: take: index 3 is not below count 3"},
    {"graft: 1\ntransforms:\n  - ops: [{take: {axis: 0, count: 3}}]\n", GRAFT_ERULE,
     "r.yaml:3:18: take: 'index' is required"},
    {"graft: 1\ntransforms:\n  - ops: [{chunks: {axis: 0, order: [1, 1]}}]\n", GRAFT_ERULE,
     "r.yaml:3:37: chunks: order: not a permutation of 0..1"},
    {"graft: 1\ntransforms:\n  - ops: [transpose, {concat: {axis: 0}}]\n", GRAFT_ERULE,
     "r.yaml:3:22: concat: must be the first op of a chain"},
    {"graft: 1\ntransforms:\n  - ops: [flip]\n", GRAFT_ERULE,
     "r.yaml:3:11: op: unknown op 'flip' (expected one of: permute, transpose, reshape, cast, "
     "chunks, take, concat)"},
    {"graft: 1\ntransforms:\n  - ops: [{transpose: ~, cast: int8}]\n", GRAFT_ERULE,
     "r.yaml:3:11: op: expected exactly one op per list entry"},
    {"graft: 1\ntransforms:\n  - rank: 2\n", GRAFT_ERULE, "r.yaml:3:5: transform: 'ops' is required"},
    {"graft: 1\ntransforms:\n  - ops: []\n    expect: -1\n", GRAFT_ERULE,
     "r.yaml:4:13: expect: -1 is out of range [0, 2147483647]"},
    {"graft: 1\npolicy: {missing: maybe}\n", GRAFT_ERULE,
     "r.yaml:2:19: policy: missing: 'maybe' is not one of error | keep"},
    {"graft: 1\npolicy: {unused: keep}\n", GRAFT_ERULE,
     "r.yaml:2:18: policy: unused: 'keep' is not one of warn | error | ignore"},
    {"graft: 1\npairs: {a: []}\n", GRAFT_ERULE, "r.yaml:2:12: pairs: 'a': empty list of sources"},
    {"graft: 1\npairs: {a: b, a: c}\n", GRAFT_ERULE, "r.yaml:2:15: pairs: target 'a' appears twice"},
    {"graft: 1\ninclude: [x.yaml]\n", GRAFT_ERULE, "r.yaml:2:10: include: not allowed here"},
    {"graft: 1\nname: [a]\n", GRAFT_ERULE, "r.yaml:2:7: name: expected a string, got a list"},
    {"graft: 1\n---\ngraft: 1\n", GRAFT_ERULE,
     "r.yaml:2:1: a second YAML document; a rules file holds one"},
    {"graft: 1\n...\n: : :\n", GRAFT_ERULE,
     "r.yaml:3:1: did not find expected <document start>"},
};

START_TEST(load_reports_errors_at_line_and_column)
{
    graft_rules *r = (graft_rules *)1;
    ck_assert_int_eq(load(&r, bad[_i].yaml), bad[_i].code);
    ck_assert_ptr_null(r);
    ck_assert_str_eq(graft_ctx_message(ctx), bad[_i].msg);
}
END_TEST

START_TEST(alias_bombs_hit_the_node_budget)
{
    /* 100 transforms x 250 ops x 62 nodes, all aliases of one small tree */
    static char yaml[8192];
    size_t n = (size_t)snprintf(yaml, sizeof yaml,
                                "graft: 1\ntransforms: [&t {ops: &o [&p {reshape: &d [");
    for (int i = 0; i < 60; i++) n += (size_t)snprintf(yaml + n, sizeof yaml - n, "%s1", i ? "," : "");
    n += (size_t)snprintf(yaml + n, sizeof yaml - n, "]}");
    for (int i = 1; i < 250; i++) n += (size_t)snprintf(yaml + n, sizeof yaml - n, ",*p");
    n += (size_t)snprintf(yaml + n, sizeof yaml - n, "]}");
    for (int i = 1; i < 100; i++) n += (size_t)snprintf(yaml + n, sizeof yaml - n, ",*t");
    snprintf(yaml + n, sizeof yaml - n, "]\n");
    graft_rules *r;
    ck_assert_int_eq(load(&r, yaml), GRAFT_ELIMIT);
    ck_assert_str_eq(graft_ctx_message(ctx), "r.yaml: more than 1048576 YAML nodes (aliases counted)");
}
END_TEST

START_TEST(includes_come_first_and_cycles_are_caught)
{
    const char *dir = tu_temp_dir();
    char path[1200], sub[600];
    graft_rules *r;
    snprintf(sub, sizeof sub, "%s/common", dir);
    ck_assert_int_eq(system((snprintf(path, sizeof path, "mkdir -p '%s'", sub), path)), 0);
    tu_write_temp("common/base.yaml",
                  "graft: 1\nname: base\nrename:\n  source:\n    - {match: '^module\\.', to: ''}\n"
                  "pairs: {t: s1}\npolicy: {unused: ignore}\n",
                  strlen("graft: 1\nname: base\nrename:\n  source:\n    - {match: '^module\\.', to: ''}\n"
                         "pairs: {t: s1}\npolicy: {unused: ignore}\n"));
    const char *top = "graft: 1\ninclude: [common/base.yaml]\nname: top\n"
                      "rename:\n  source:\n    - {match: 'x', to: 'y'}\npairs: {t: s2}\n";
    tu_write_temp("top.yaml", top, strlen(top));
    snprintf(path, sizeof path, "%s/top.yaml", dir);
    ck_assert_int_eq(graft_rules_load(&r, path, ctx), 0);
    ck_assert_str_eq(r->name, "top");
    ck_assert_uint_eq(r->nrename[GRAFT_SIDE_SOURCE], 2);
    ck_assert_str_eq(r->rename[GRAFT_SIDE_SOURCE][0].match.pattern, "^module\\.");
    ck_assert_ptr_nonnull(strstr(r->rename[GRAFT_SIDE_SOURCE][0].pos.file, "common/base.yaml"));
    ck_assert_uint_eq(r->npairs, 1);
    ck_assert_str_eq(r->pairs[0].sources[0], "s2"); /* the including file wins */
    ck_assert_int_eq(r->unused, GRAFT_UNUSED_IGNORE);
    graft_rules_free(r);

    const char *a = "graft: 1\ninclude: b.yaml\n", *b = "graft: 1\ninclude: [a.yaml]\n";
    tu_write_temp("a.yaml", a, strlen(a));
    tu_write_temp("b.yaml", b, strlen(b));
    snprintf(path, sizeof path, "%s/a.yaml", dir);
    ck_assert_int_eq(graft_rules_load(&r, path, ctx), GRAFT_ERULE);
    ck_assert_ptr_null(r);
    char want[2048];
    snprintf(want, sizeof want, "%s/b.yaml:2:11: include cycle: %s/a.yaml -> %s/b.yaml -> %s/a.yaml",
             dir, dir, dir, dir);
    ck_assert_str_eq(graft_ctx_message(ctx), want);

    const char *c = "graft: 1\ninclude: [nowhere.yaml]\n";
    tu_write_temp("c.yaml", c, strlen(c));
    snprintf(path, sizeof path, "%s/c.yaml", dir);
    ck_assert_int_eq(graft_rules_load(&r, path, ctx), GRAFT_ERULE);
    snprintf(want, sizeof want, "%s/c.yaml:2:11: include '%s/nowhere.yaml': No such file or directory",
             dir, dir);
    ck_assert_str_eq(graft_ctx_message(ctx), want);
    ck_assert_int_eq(graft_rules_load(&r, "/nonexistent/rules.yaml", ctx), GRAFT_ENOTFOUND);
}
END_TEST

/* ---- plans -------------------------------------------------------------- */

static graft_plan *plan(const graft_rules *r, graft_model *s, graft_model *t, bool reverse)
{
    graft_plan *p;
    graft_plan_options o = GRAFT_PLAN_OPTIONS_INIT;
    o.reverse = reverse;
    ck_assert_int_eq(graft_plan_build(&p, r, s, t, &o, ctx), 0);
    for (size_t i = 0; i < p->nentries; i++)
        if (p->entries[i].message) fprintf(stderr, "entry %zu: %s\n", i, p->entries[i].message);
    return p;
}

/* Free what a plan test built (the plan first: it borrows the others). */
static void plan_done(graft_plan *p, graft_rules *r, graft_model *s, graft_model *t)
{
    graft_plan_free(p);
    graft_rules_free(r);
    graft_model_free(s);
    graft_model_free(t);
}

static bool has_diag(const graft_plan *p, graft_diag_level level, const char *text)
{
    for (size_t i = 0; i < p->ndiags; i++)
        if (p->diags[i].level == level && !strcmp(p->diags[i].message, text)) return true;
    for (size_t i = 0; i < p->ndiags; i++) fprintf(stderr, "diag: %s\n", p->diags[i].message);
    return false;
}

START_TEST(plan_pairs_by_renamed_names_first_transform_wins)
{
    graft_rules *r;
    ck_assert_int_eq(load(&r, "graft: 1\n"
                              "rename:\n"
                              "  source:\n"
                              "    - {match: '^module\\.', to: ''}\n"
                              "  target:\n"
                              "    - {match: '(weights|kernel):0$', to: 'weight'}\n"
                              "    - {match: '/', to: '.'}\n"
                              "transforms:\n"
                              "  - target: 'special'\n"
                              "    ops: []\n"
                              "  - rank: 4\n"
                              "    ops: [{permute: OIHW->HWIO}]\n"
                              "  - rank: 2\n"
                              "    dtype: float64\n"
                              "    ops: [{cast: float32}]\n"
                              "  - rank: 2\n"
                              "    ops: [transpose]\n"),
                     0);
    graft_model *s = model("module.conv.weight:float32:8,3,5,5;module.fc.weight:float32:10,20;"
                           "module.d.weight:float64:4,4;module.special.weight:float32:2,3");
    graft_model *t = model("conv/kernel:0:float32:5,5,3,8;fc/weights:0:float32:20,10;"
                           "d/kernel:0:float32:4,4;special/kernel:0:float32:2,3");
    graft_plan *p = plan(r, s, t, false);
    ck_assert_uint_eq(p->errors, 0);
    ck_assert_uint_eq(p->nentries, 4);
    const graft_plan_entry *e = &p->entries[0];
    ck_assert_int_eq(e->status, GRAFT_PLAN_OK);
    ck_assert_str_eq(e->key, "conv.weight");
    ck_assert_uint_eq(e->nsources, 1);
    ck_assert_uint_eq(e->sources[0], 0);
    ck_assert_ptr_eq(e->transform, &r->transforms[1]);
    ck_assert_uint_eq(e->out.dim[3], 8);
    ck_assert_ptr_eq(p->entries[1].transform, &r->transforms[3]);  /* rank 2 float32 */
    ck_assert_ptr_eq(p->entries[2].transform, &r->transforms[2]);  /* dtype selector */
    ck_assert_int_eq(p->entries[2].out.dtype, GRAFT_FLOAT32);
    ck_assert_ptr_eq(p->entries[3].transform, &r->transforms[0]);  /* target selector first */
    ck_assert_uint_eq(p->nmissing, 0);
    ck_assert_uint_eq(p->nunused, 0);
    ck_assert_str_eq(p->source_keys[1], "fc.weight");
    ck_assert_ptr_eq(graft_plan_find(p, "fc/weights:0"), &p->entries[1]);
    plan_done(p, r, s, t);
}
END_TEST

START_TEST(plan_source_selector_and_pairs_beat_renames)
{
    graft_rules *r;
    ck_assert_int_eq(load(&r, "graft: 1\n"
                              "pairs:\n"
                              "  a: c\n"
                              "  nothere: c\n"
                              "  qkv: [q, k, v]\n"
                              "transforms:\n"
                              "  - source: '^q$'\n"
                              "    ops: [{concat: {axis: 0}}]\n"
                              "  - source: '^c$'\n"
                              "    ops: [transpose]\n"),
                     0);
    graft_model *s = model("a:float32:2,3;c:float32:3,2;q:float32:2,4;k:float32:2,4;v:float32:2,4");
    graft_model *t = model("a:float32:2,3;qkv:float32:6,4");
    graft_plan *p = plan(r, s, t, false);
    ck_assert_uint_eq(p->entries[0].sources[0], 1); /* pair 'c', not same-named 'a' */
    ck_assert_ptr_eq(p->entries[0].pair, &r->pairs[0]);
    ck_assert_int_eq(p->entries[0].status, GRAFT_PLAN_OK);
    ck_assert_int_eq(p->entries[1].status, GRAFT_PLAN_OK);
    ck_assert_uint_eq(p->entries[1].nsources, 3);
    ck_assert_uint_eq(p->entries[1].out.dim[0], 6);
    ck_assert_uint_eq(p->nunused, 1);
    ck_assert_uint_eq(p->unused[0], 0);
    ck_assert(has_diag(p, GRAFT_DIAG_WARNING, "r.yaml:4: pairs: target 'nothere' is not in the skeleton"));
    ck_assert(has_diag(p, GRAFT_DIAG_WARNING,
                       "1 source tensor is not used (first 'a'; policy unused: warn)"));
    ck_assert_uint_eq(p->errors, 0);
    plan_done(p, r, s, t);
}
END_TEST

START_TEST(plan_missing_unused_and_policies)
{
    graft_rules *r;
    graft_model *s = model("x:float32:2;y:float32:3;bn.num_batches_tracked:int64:");
    graft_model *t = model("x:float32:2;z:float32:4;global_step:int64:;y:float32:4");
    /* defaults: missing error, unused warn, mismatch error */
    graft_plan *p = plan(NULL, s, t, false);
    ck_assert_int_eq(p->entries[1].status, GRAFT_PLAN_MISSING);
    ck_assert_str_eq(p->entries[1].message, "'z' (renamed 'z'): no source tensor");
    ck_assert_int_eq(p->entries[3].status, GRAFT_PLAN_MISMATCH);
    ck_assert_str_eq(p->entries[3].message,
                     "'y' [3] float32 after ops vs 'y' [4] float32 in the skeleton");
    ck_assert_uint_eq(p->nmissing, 2);
    ck_assert_uint_eq(p->nunused, 1);
    ck_assert_uint_eq(p->errors, 3);
    graft_plan_free(p);

    ck_assert_int_eq(load(&r, "graft: 1\n"
                              "ignore:\n"
                              "  source: ['num_batches_tracked$']\n"
                              "  target: ['^global_step$']\n"
                              "policy: {missing: keep, unused: error, mismatch: keep}\n"),
                     0);
    p = plan(r, s, t, false);
    ck_assert_int_eq(p->entries[1].status, GRAFT_PLAN_KEPT);
    ck_assert_int_eq(p->entries[2].status, GRAFT_PLAN_KEPT);
    ck_assert(p->entries[2].ignored);
    ck_assert_int_eq(p->entries[3].status, GRAFT_PLAN_KEPT);
    ck_assert_uint_eq(p->nmissing, 1); /* global_step is ignored */
    ck_assert_uint_eq(p->nunused, 0);  /* num_batches_tracked is ignored */
    ck_assert_uint_eq(p->errors, 0);
    graft_plan_free(p);
    graft_rules_free(r);

    ck_assert_int_eq(load(&r, "graft: 1\npolicy: {unused: error}\npairs: {y: x}\n"), 0);
    p = plan(r, s, t, false);
    ck_assert_uint_eq(p->entries[3].sources[0], 0);
    ck_assert(has_diag(p, GRAFT_DIAG_ERROR,
                       "2 source tensors are not used (first 'y'; policy unused: error)"));
    plan_done(p, r, s, t);
}
END_TEST

START_TEST(plan_expect_counts_and_rules_that_matched_nothing)
{
    graft_rules *r;
    ck_assert_int_eq(load(&r, "graft: 1\n"
                              "rename:\n"
                              "  source:\n"
                              "    - {match: '^m\\.', to: '', expect: 3}\n"
                              "    - {match: 'zzz', to: ''}\n"
                              "  target:\n"
                              "    - {match: '^t\\.', to: '', expect: 2}\n"
                              "transforms:\n"
                              "  - rank: 3\n"
                              "    ops: []\n"
                              "  - rank: 1\n"
                              "    ops: []\n"
                              "    expect: 1\n"),
                     0);
    graft_model *s = model("m.a:float32:2;m.b:float32:2");
    graft_model *t = model("t.a:float32:2;t.b:float32:2");
    graft_plan *p = plan(r, s, t, false);
    ck_assert_int_eq(p->entries[0].status, GRAFT_PLAN_OK);
    ck_assert(has_diag(p, GRAFT_DIAG_ERROR,
                       "r.yaml:4: rename '^m\\.' matched 2 source names, expected 3"));
    ck_assert(has_diag(p, GRAFT_DIAG_WARNING, "r.yaml:5: rename 'zzz' matched no source name"));
    ck_assert(has_diag(p, GRAFT_DIAG_WARNING, "r.yaml:9: transform matched no pair"));
    ck_assert(has_diag(p, GRAFT_DIAG_ERROR, "r.yaml:11: transform applied to 2 pairs, expected 1"));
    ck_assert_uint_eq(p->ndiags, 4);
    ck_assert_uint_eq(p->errors, 2);
    plan_done(p, r, s, t);
}
END_TEST

/* A shared rules file is untrusted: a catastrophic pattern over many names
 * stops at PCRE2's limits with an error at its file:line naming the tensor,
 * never a silent "no match" (issue 18, items 3 and 5). */
START_TEST(regex_limits_are_errors_naming_rule_and_tensor)
{
    static const char *yaml[] = {
        "graft: 1\nignore:\n  source: ['^(a+)+$']\n",
        "graft: 1\ntransforms:\n  - source: '^(a+)+$'\n    ops: [transpose]\n",
        "graft: 1\nrename:\n  source:\n    - {match: '^(a+)+$', to: x}\n",
    };
    static const char *line[] = {"r.yaml:3: ", "r.yaml:3: ", "r.yaml:4: "};
    char spec[4096] = "", name[64];
    /* 40 a's then a non-a: 2^40 ways to fail without limits */
    for (int i = 0; i < 60; i++) {
        snprintf(name, sizeof name, "%s%.40s!%02d:float32:2,2", i ? ";" : "",
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", i);
        strcat(spec, name);
    }
    for (size_t k = 0; k < sizeof yaml / sizeof *yaml; k++) {
        graft_rules *r;
        graft_plan *p = NULL;
        graft_plan_options o = GRAFT_PLAN_OPTIONS_INIT;
        ck_assert_int_eq(load(&r, yaml[k]), 0);
        /* the ignore list is asked about unused sources */
        graft_model *s = model(spec), *t = model(k == 0 ? "other:float32:2,2" : spec);
        ck_assert_int_lt(graft_plan_build(&p, r, s, t, &o, ctx), 0);
        const char *msg = graft_ctx_message(ctx);
        ck_assert_msg(strstr(msg, line[k]) && strstr(msg, "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!00'") &&
                          strstr(msg, "limit"),
                      "%s", msg);
        graft_plan_free(p);
        graft_rules_free(r);
        graft_model_free(s);
        graft_model_free(t);
    }
}
END_TEST

/* 100k nested levels in a 200 KB file, block or flow, and a flat list past
 * the node cap stop while libyaml's events are read (issue 18, item 6). */
START_TEST(yaml_depth_and_node_caps_stop_early)
{
    const size_t levels = 100000;
    char *flow = malloc(2 * levels + 32), *block = malloc(200 * 204 + 32);
    ck_assert_ptr_nonnull(flow);
    ck_assert_ptr_nonnull(block);
    size_t n = (size_t)sprintf(flow, "graft: 1\nrename: ");
    memset(flow + n, '[', levels);
    memset(flow + n + levels, ']', levels);
    strcpy(flow + n + 2 * levels, "\n");
    /* block style: one "- " per line, each indented one more */
    n = (size_t)sprintf(block, "graft: 1\nrename:\n");
    for (size_t i = 1; i < 200; i++) {
        memset(block + n, ' ', i);
        n += i;
        n += (size_t)sprintf(block + n, "- \n");
    }
    block[n] = '\0';
    const char *texts[] = {flow, block};
    const char *want[] = {"r.yaml:2:72: YAML nested deeper than 64 levels",
                          "YAML nested deeper than 64 levels"};
    for (int k = 0; k < 2; k++) {
        graft_rules *r = NULL;
        ck_assert_int_eq(load(&r, texts[k]), GRAFT_ELIMIT);
        ck_assert_msg(strstr(graft_ctx_message(ctx), want[k]), "%s", graft_ctx_message(ctx));
    }
    free(flow);
    free(block);

    /* more nodes than the cap, flat */
    size_t items = (1u << 20) + 1;
    char *flat = malloc(items * 2 + 32);
    ck_assert_ptr_nonnull(flat);
    n = (size_t)sprintf(flat, "graft: 1\nrename: [");
    for (size_t i = 0; i < items; i++) {
        flat[n++] = '0';
        flat[n++] = ',';
    }
    strcpy(flat + n - 1, "]\n");
    graft_rules *r = NULL;
    ck_assert_int_eq(load(&r, flat), GRAFT_ELIMIT);
    ck_assert_msg(strstr(graft_ctx_message(ctx), "more than 1048576 YAML nodes"), "%s",
                  graft_ctx_message(ctx));
    free(flat);
}
END_TEST

/* A rules path that is a FIFO is refused, not read (issue 18, item 4). */
START_TEST(rules_fifo_is_refused)
{
    graft_rules *r = NULL;
    char path[600];
    snprintf(path, sizeof path, "%s/rules-fifo.yaml", tu_temp_dir());
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    alarm(20); /* a hang fails the test instead of the suite's timeout */
    ck_assert_int_eq(graft_rules_load(&r, path, ctx), GRAFT_EFORMAT);
    alarm(0);
    ck_assert_msg(strstr(graft_ctx_message(ctx), "rules-fifo.yaml: not a regular file (a FIFO)"),
                  "%s", graft_ctx_message(ctx));
}
END_TEST

START_TEST(plan_warns_when_one_source_feeds_several_targets)
{
    graft_rules *r;
    ck_assert_int_eq(load(&r, "graft: 1\n"
                              "rename:\n"
                              "  target:\n"
                              "    - {match: '^(enc|dec)\\.', to: ''}\n"),
                     0);
    graft_model *s = model("emb:float32:4,2");
    graft_model *t = model("enc.emb:float32:4,2;dec.emb:float32:4,2");
    graft_plan *p = plan(r, s, t, false);
    ck_assert_uint_eq(p->errors, 0);
    ck_assert(has_diag(p, GRAFT_DIAG_WARNING,
                       "source 'emb' feeds 2 targets (first 'enc.emb') without take or an "
                       "explicit pairs entry"));
    graft_plan_free(p);
    graft_rules_free(r);

    /* the same through take: a fused source split on purpose */
    ck_assert_int_eq(load(&r, "graft: 1\n"
                              "rename:\n"
                              "  target:\n"
                              "    - {match: '^(enc|dec)\\.', to: ''}\n"
                              "transforms:\n"
                              "  - target: '^enc'\n"
                              "    ops: [{take: {axis: 0, count: 2, index: 0}}]\n"
                              "  - target: '^dec'\n"
                              "    ops: [{take: {axis: 0, count: 2, index: 1}}]\n"),
                     0);
    graft_model_free(t);
    t = model("enc.emb:float32:2,2;dec.emb:float32:2,2");
    p = plan(r, s, t, false);
    ck_assert_uint_eq(p->errors, 0);
    ck_assert_uint_eq(p->ndiags, 0);
    plan_done(p, r, s, t);
}
END_TEST

START_TEST(plan_reports_op_on_wrong_rank_and_ambiguous_renames)
{
    graft_rules *r;
    ck_assert_int_eq(load(&r, "graft: 1\n"
                              "rename:\n"
                              "  source:\n"
                              "    - {match: '^(a|b)\\.', to: ''}\n"
                              "transforms:\n"
                              "  - target: w\n"
                              "    ops:\n"
                              "      - permute: OIHW->HWIO\n"
                              "pairs: {multi: [w, w2]}\n"),
                     0);
    graft_model *s = model("w:float32:2,3;a.x:float32:1;b.x:float32:1;w2:float32:2,3");
    graft_model *t = model("w:float32:3,2;x:float32:1;multi:float32:4,3");
    graft_plan *p = plan(r, s, t, false);
    ck_assert_int_eq(p->entries[0].status, GRAFT_PLAN_ERROR);
    ck_assert_ptr_nonnull(strstr(p->entries[0].message, "'w': r.yaml:8: permute: "));
    ck_assert_int_eq(p->entries[1].status, GRAFT_PLAN_ERROR);
    ck_assert_str_eq(p->entries[1].message, "'x': sources 'a.x' and 'b.x' both rename to 'x'");
    ck_assert_int_eq(p->entries[2].status, GRAFT_PLAN_ERROR);
    ck_assert_str_eq(p->entries[2].message,
                     "'multi' has 2 sources but its op chain does not start with concat (or "
                     "stack, sum, fold_bn)");
    ck_assert_uint_eq(p->errors, 3);
    plan_done(p, r, s, t);
}
END_TEST

START_TEST(plan_reverse_swaps_sides_and_inverts_chains)
{
    graft_rules *r;
    ck_assert_int_eq(load(&r, "graft: 1\n"
                              "rename:\n"
                              "  source:\n"
                              "    - {match: '^module\\.', to: ''}\n"
                              "  target:\n"
                              "    - {match: '/', to: '.'}\n"
                              "pairs:\n"
                              "  qkv: [q, k]\n"
                              "transforms:\n"
                              "  - rank: 4\n"
                              "    ops: [{permute: OIHW->HWIO}]\n"
                              "  - target: qkv\n"
                              "    ops: [{concat: {axis: 0}}]\n"
                              "ignore: {source: ['tracked$']}\n"
                              "policy: {missing: error, unused: warn}\n"),
                     0);
    /* forward: torch-like source, tf-like skeleton; reverse swaps the files */
    graft_model *fs = model("module.conv.w:float32:8,3,5,5;q:float32:2,4;k:float32:2,4;"
                            "bn.tracked:int64:");
    graft_model *ft = model("conv/w:float32:5,5,3,8;qkv:float32:4,4;extra:float32:1");
    graft_plan *p = plan(r, ft, fs, true);
    ck_assert(p->reverse);
    ck_assert_uint_eq(p->nentries, 4);
    const graft_plan_entry *e = &p->entries[0];
    ck_assert_int_eq(e->status, GRAFT_PLAN_OK);
    ck_assert_uint_eq(e->sources[0], 0);
    ck_assert_uint_eq(e->nops, 1);
    ck_assert_int_eq(e->ops[0].kind, GRAFT_OP_PERMUTE);
    /* inverse of [2,3,1,0] is [3,2,0,1] */
    ck_assert_int_eq(e->ops[0].v[0], 3);
    ck_assert_int_eq(e->ops[0].v[1], 2);
    ck_assert_int_eq(e->ops[0].v[2], 0);
    ck_assert_int_eq(e->ops[0].v[3], 1);
    ck_assert_str_eq(e->key, "conv.w");
    /* each concat source gets a take of the fused tensor */
    ck_assert_int_eq(p->entries[1].status, GRAFT_PLAN_OK);
    ck_assert_int_eq(p->entries[2].status, GRAFT_PLAN_OK);
    ck_assert_uint_eq(p->entries[2].sources[0], 1);
    ck_assert_uint_eq(p->entries[2].out.dim[0], 2);
    /* the rules' ignored source is an ignored (kept) target here */
    ck_assert_int_eq(p->entries[3].status, GRAFT_PLAN_KEPT);
    ck_assert(p->entries[3].ignored);
    /* 'extra' had no source forward: unused here, an error under missing: error */
    ck_assert_uint_eq(p->nunused, 1);
    ck_assert_uint_eq(p->unused[0], 2);
    ck_assert(has_diag(p, GRAFT_DIAG_ERROR,
                       "1 source tensor is not used (first 'extra'; policy unused: error)"));
    ck_assert_uint_eq(p->errors, 1);
    plan_done(p, r, fs, ft);
}
END_TEST

START_TEST(explain_traces_renames_and_shapes)
{
    graft_rules *r;
    graft_explain *x;
    ck_assert_int_eq(load(&r, "graft: 1\n"
                              "rename:\n"
                              "  source:\n"
                              "    - {match: '^module\\.', to: ''}\n"
                              "  target:\n"
                              "    - {match: 'kernel$', to: 'weight'}\n"
                              "    - {match: '/', to: '.'}\n"
                              "transforms:\n"
                              "  - ops:\n"
                              "      - reshape: [4, 2, 3]\n"
                              "      - permute: [2, 0, 1]\n"
                              "      - reshape: [-1, 8]\n"),
                     0);
    graft_model *s = model("module.fc.weight:float32:4,6;module.other:float32:1");
    graft_model *t = model("fc/kernel:float32:3,8;fc/kernal:float32:1");
    graft_plan *p = plan(r, s, t, false);
    ck_assert_int_eq(graft_explain_build(&x, p, "fc/kernel", ctx), 0);
    ck_assert_uint_eq(x->ntarget_steps, 2);
    ck_assert_str_eq(x->target_steps[0].after, "fc/weight");
    ck_assert_uint_eq(x->target_steps[1].rule->pos.line, 7);
    ck_assert_uint_eq(x->nsource_steps[0], 1);
    ck_assert_str_eq(x->source_steps[0][0].before, "module.fc.weight");
    ck_assert_uint_eq(x->nshapes, 4);
    ck_assert_uint_eq(x->shapes[2].ndim, 3);
    ck_assert_int_eq(x->shapes[2].dim[0], 3);
    ck_assert_int_eq(x->shapes[3].dim[1], 8);
    ck_assert_uint_eq(x->closest, SIZE_MAX);
    graft_explain_free(x);
    /* a typo'd name: no pair, and the nearest source key as a hint */
    ck_assert_int_eq(graft_explain_build(&x, p, "fc/kernal", ctx), 0);
    ck_assert_int_eq(x->entry->status, GRAFT_PLAN_MISSING);
    ck_assert_uint_eq(x->closest, 0);
    ck_assert_uint_eq(x->nshapes, 0);
    graft_explain_free(x);
    ck_assert_int_eq(graft_explain_build(&x, p, "module.fc.weight", ctx), GRAFT_ENOTFOUND);
    ck_assert_str_eq(graft_ctx_message(ctx),
                     "'module.fc.weight' is a source tensor (renamed 'fc.weight'); it feeds target "
                     "'fc/kernel'");
    ck_assert_int_eq(graft_explain_build(&x, p, "nope", ctx), GRAFT_ENOTFOUND);
    plan_done(p, r, s, t);
}
END_TEST

typedef struct lpe_job {
    graft_model *s, *t;
} lpe_job;

/* Load, plan both ways and explain, stopping at the first failure. */
static int load_plan_explain(graft_ctx *c, void *payload)
{
    lpe_job *j = payload;
    graft_rules *r = NULL;
    int rc = load(&r, full);
    for (int rev = 0; rc == 0 && rev < 2; rev++) {
        graft_plan_options o = GRAFT_PLAN_OPTIONS_INIT;
        graft_plan *p = NULL;
        graft_explain *x = NULL;
        o.reverse = rev;
        rc = graft_plan_build(&p, r, rev ? j->t : j->s, rev ? j->s : j->t, &o, c);
        if (rc == 0)
            rc = graft_explain_build(&x, p, graft_tensor_name(graft_model_tensor(p->target, 0)),
                                     c);
        graft_explain_free(x);
        graft_plan_free(p);
    }
    graft_rules_free(r);
    return rc;
}

START_TEST(allocation_failures_are_clean)
{
    lpe_job job = {model("module.a:float32:2,3;module.b:float32:4;q:float32:3,4"),
                   model("a/x:float32:3,2;b:float32:4;c:float32:1;qkv:float32:3,4")};
    /* fail each allocation in turn: a clean error every time, never a leak */
    ck_assert_int_gt(tu_each_alloc_failure(ctx, load_plan_explain, &job), 50);
    graft_model_free(job.s);
    graft_model_free(job.t);
}
END_TEST

static Suite *rules_suite(void)
{
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("load");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, load_reads_every_section);
    tcase_add_test(tc, rename_substitutes_globally_with_groups);
    tcase_add_test(tc, rename_with_bad_group_reference_fails_at_the_rule);
    tcase_add_loop_test(tc, load_reports_errors_at_line_and_column, 0, sizeof bad / sizeof *bad);
    tcase_add_test(tc, alias_bombs_hit_the_node_budget);
    tcase_add_test(tc, includes_come_first_and_cycles_are_caught);
    suite_add_tcase(s, tc);
    tc = tcase_create("plan");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, plan_pairs_by_renamed_names_first_transform_wins);
    tcase_add_test(tc, plan_source_selector_and_pairs_beat_renames);
    tcase_add_test(tc, plan_missing_unused_and_policies);
    tcase_add_test(tc, plan_expect_counts_and_rules_that_matched_nothing);
    tcase_add_test(tc, plan_warns_when_one_source_feeds_several_targets);
    tcase_add_test(tc, plan_reports_op_on_wrong_rank_and_ambiguous_renames);
    tcase_add_test(tc, plan_reverse_swaps_sides_and_inverts_chains);
    tcase_add_test(tc, explain_traces_renames_and_shapes);
    tcase_add_test(tc, allocation_failures_are_clean);
    tcase_add_test(tc, regex_limits_are_errors_naming_rule_and_tensor);
    tcase_add_test(tc, yaml_depth_and_node_caps_stop_early);
    tcase_add_test(tc, rules_fifo_is_refused);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(rules_suite());
}
