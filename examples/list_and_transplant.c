/*
 * list_and_transplant.c - libgraft from a C program.
 *
 *     cc list_and_transplant.c $(pkg-config --cflags --libs graft)
 *     ./a.out MODEL RULES
 *
 * Lists MODEL's tensors (name, dtype, shape), then transplants MODEL into
 * itself through RULES (MODEL is both the source and the skeleton) to a
 * temporary file, reports the progress, and prints `transplanted N tensors`.
 * Exit status 0 on success, 1 when the plan is incomplete, 2 on any error.
 */
#include <graft.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void progress(size_t done, size_t total, uint64_t bytes, void *payload)
{
    (void)payload;
    if (done == total) fprintf(stderr, "wrote %zu tensors, %llu bytes\n", total,
                               (unsigned long long)bytes);
}

static void list(const graft_model *m)
{
    for (size_t i = 0; i < graft_model_count(m); i++) {
        const graft_tensor *t = graft_model_tensor(m, i);
        printf("%s\t%s\t[", graft_tensor_name(t), graft_dtype_name(graft_tensor_dtype(t)));
        for (uint32_t d = 0; d < graft_tensor_ndim(t); d++)
            printf("%s%lld", d ? "," : "", (long long)graft_tensor_shape(t)[d]);
        printf("]\n");
    }
}

int main(int argc, char **argv)
{
    graft_ctx *ctx = graft_ctx_new();
    graft_rules *rules = NULL;
    graft_plan *plan = NULL;
    graft_apply_options ao = GRAFT_APPLY_OPTIONS_INIT;
    graft_apply_stats stats;
    char dir[] = "/tmp/graft-example-XXXXXX", out[64] = "";
    int rc = 2;

    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL RULES\n", argv[0]);
        return 2;
    }
    if (!ctx) return 2;
    fprintf(stderr, "libgraft %s (built with %s)\n", graft_version(), GRAFT_VERSION);
    /* 1. open the rules, and plan MODEL into itself (the plan opens both) */
    if (graft_rules_load(&rules, argv[2], ctx) < 0) goto fail;
    if (graft_plan_open(&plan, rules, argv[1], argv[1], NULL, ctx) < 0) goto fail;
    list(graft_plan_source(plan));
    for (size_t i = 0; i < graft_plan_count(plan); i++)
        if (graft_plan_entry_message(plan, i))
            fprintf(stderr, "%s\n", graft_plan_entry_message(plan, i));
    /* 2. apply it to a temporary file */
    if (!mkdtemp(dir)) {
        perror(dir);
        goto cleanup;
    }
    snprintf(out, sizeof out, "%s/out", dir);
    ao.progress = progress;
    if (graft_plan_apply(plan, out, &ao, &stats, ctx) < 0) {
        rc = graft_ctx_status(ctx) == GRAFT_EPLAN ? 1 : 2;
        fprintf(stderr, "%s\n", graft_ctx_message(ctx));
        goto cleanup;
    }
    printf("transplanted %zu tensors\n", stats.transplanted);
    rc = 0;
    goto cleanup;
fail:
    fprintf(stderr, "%s\n", graft_ctx_message(ctx));
cleanup:
    if (*out) unlink(out);
    rmdir(dir);
    graft_plan_free(plan);
    graft_rules_free(rules);
    graft_ctx_free(ctx);
    return rc;
}
