/*
 * fuzz_rules.c - a rules file from arbitrary bytes; when it loads, plan it
 * forward and reverse against two small tensor tables and explain each
 * target, so renames, selectors, op checks and inversion all run.
 */
#include "model.h"
#include "../../src/rules/rules.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static graft_model *table(const char *const *names, const int64_t (*shapes)[4],
                          const uint32_t *ndims, size_t n, graft_ctx *ctx)
{
    graft_model *m = NULL;
    if (graft_model__new(&m, "mem", ctx) < 0) return NULL;
    for (size_t i = 0; i < n; i++)
        if (!graft_model__add(m, names[i], strlen(names[i]), GRAFT_FLOAT32, ndims[i], shapes[i],
                              ctx)) {
            graft_model_free(m);
            return NULL;
        }
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const src_names[] = {"module.conv.weight", "module.fc.weight",
                                            "module.fc.bias", "qkv", "bn.num_batches_tracked",
                                            "layer1.0.w"};
    static const int64_t src_shapes[][4] = {{8, 3, 3, 3}, {10, 12}, {10}, {12, 4}, {0}, {4}};
    static const uint32_t src_nd[] = {4, 2, 1, 2, 0, 1};
    static const char *const tgt_names[] = {"conv/kernel:0", "fc/kernel:0", "fc/bias:0", "q",
                                            "k", "v", "global_step", "conv2_block1_w"};
    static const int64_t tgt_shapes[][4] = {{3, 3, 3, 8}, {12, 10}, {10}, {4, 4}, {4, 4},
                                            {4, 4}, {0}, {4}};
    static const uint32_t tgt_nd[] = {4, 2, 1, 2, 2, 2, 0, 1};
    graft_ctx *ctx = graft_ctx_new();
    graft_rules *r = NULL;
    graft_model *s = NULL, *t = NULL;

    if (!ctx) return 0;
    if (graft_rules_load_buffer(&r, "fuzz.yaml", (const char *)data, size, ctx) < 0) goto done;
    s = table(src_names, src_shapes, src_nd, 6, ctx);
    t = table(tgt_names, tgt_shapes, tgt_nd, 8, ctx);
    if (!s || !t) goto done;
    for (int rev = 0; rev < 2; rev++) {
        graft_plan_options o = GRAFT_PLAN_OPTIONS_INIT;
        graft_plan *p = NULL;
        o.reverse = rev;
        if (graft_plan_build(&p, r, rev ? t : s, rev ? s : t, &o, ctx) == 0) {
            for (size_t i = 0; i < p->nentries; i++) {
                graft_explain *x = NULL;
                if (graft_explain_build(&x, p, p->target->tensors[i].name, ctx) == 0)
                    graft_explain_free(x);
            }
        }
        graft_plan_free(p);
    }
done:
    graft_model_free(s);
    graft_model_free(t);
    graft_rules_free(r);
    graft_ctx_free(ctx);
    return 0;
}
