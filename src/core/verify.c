/* verify.c - a source's checksums on a second thread (see verify.h). */
#include "verify.h"
#include "error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct graft_verify {
    graft_model *m;
    bool *want;       /* owned; NULL: every tensor */
    pthread_t thread;
    bool running;     /* a thread to join */
    atomic_bool stop; /* the transplant failed: no result is needed */
    graft_ctx own;    /* the thread's errors, copied out by graft_verify_wait */
    int rc;
};

/* The tensors' checks in file order, the order most formats are read in. */
static void *run(void *arg)
{
    graft_verify *v = arg;
    for (size_t i = 0; i < v->m->count && !atomic_load(&v->stop); i++) {
        const graft_tensor *t = &v->m->tensors[i];
        if (!t->check || t->unsupported || !t->nbytes || (v->want && !v->want[i])) continue;
        if ((v->rc = t->check(v->m, t, &v->own)) < 0) break;
    }
    return NULL;
}

int graft_verify_start(graft_verify **out, graft_model *m, const bool *want, graft_ctx *ctx)
{
    graft_verify *v;
    size_t i;
    *out = NULL;
    for (i = 0; i < m->count; i++)
        if (m->tensors[i].check && (!want || want[i])) break;
    if (i == m->count) return GRAFT_OK;
    if (!(v = graft_calloc(ctx, 1, sizeof *v))) return graft_error_oom(ctx, "a verifier");
    v->m = m;
    v->own.mem_budget = ctx->mem_budget;
    atomic_init(&v->stop, false);
    if (want) {
        if (!(v->want = graft_malloc(ctx, m->count * sizeof *v->want))) {
            free(v);
            return graft_error_oom(ctx, "a verifier");
        }
        for (i = 0; i < m->count; i++) v->want[i] = want[i];
    }
    m->verifying = true;
    v->running = pthread_create(&v->thread, NULL, run, v) == 0;
    if (!v->running) run(v);
    ctx->verify = v;
    *out = v;
    return GRAFT_OK;
}

static void join(graft_verify *v)
{
    if (v->running) pthread_join(v->thread, NULL);
    v->running = false;
    v->m->verifying = false;
}

int graft_verify_wait(graft_verify *v, graft_ctx *ctx)
{
    join(v);
    if (v->rc < 0) return graft_error(ctx, v->own.status, "%s: %s", v->m->path, v->own.msg);
    return GRAFT_OK;
}

int graft_verify_end(graft_verify *v, int rc, graft_ctx *ctx)
{
    int vrc = GRAFT_OK;
    if (!v) return rc;
    if (rc < 0) { /* ctx keeps the transplant's own error */
        atomic_store(&v->stop, true);
        join(v);
    } else {
        vrc = graft_verify_wait(v, ctx);
    }
    if (ctx->verify == v) ctx->verify = NULL;
    free(v->want);
    free(v);
    return rc < 0 ? rc : vrc;
}
