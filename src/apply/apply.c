/*
 * apply.c - write a skeleton model's format with tensors from a source model.
 *
 * The skeleton's format does the writing (format.h, write()): it copies
 * everything the skeleton holds and asks our graft_fill for each tensor's
 * bytes, in the skeleton's order.  emit() takes the source tensors' bytes
 * (borrowed from the mapped file when already row-major little-endian),
 * runs the op chain straight into the output sink, or copies the skeleton's
 * own bytes for a tensor the plan keeps.  Nothing is collected in memory
 * beyond what one op chain needs.
 */
#include "apply.h"
#include "verify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int graft_apply_default_output(char **out, const char *skeleton, graft_ctx *ctx)
{
    static const char tag[] = ".grafted";
    size_t len = strlen(skeleton), ext;
    const char *base, *dot;
    char *s;

    *out = NULL;
    while (len > 1 && skeleton[len - 1] == '/') len--; /* "folder/" names the folder */
    if (len == 0) return graft_error(ctx, GRAFT_ERROR, "empty skeleton path");
    base = skeleton;
    for (size_t i = 0; i < len; i++)
        if (skeleton[i] == '/') base = skeleton + i + 1;
    dot = NULL;
    for (const char *p = base + 1; p < skeleton + len; p++) /* base + 1: ".hidden" has none */
        if (*p == '.') dot = p;
    ext = dot ? (size_t)(dot - skeleton) : len;
    s = graft_malloc(ctx, len + sizeof tag);
    if (!s) return graft_error_oom(ctx, "the output path");
    memcpy(s, skeleton, ext);
    memcpy(s + ext, tag, sizeof tag - 1);
    memcpy(s + ext + sizeof tag - 1, skeleton + ext, len - ext);
    s[len + sizeof tag - 1] = '\0';
    *out = s;
    return GRAFT_OK;
}

static bool same_file(const struct stat *a, const char *path)
{
    struct stat b;
    return stat(path, &b) == 0 && a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

int graft_apply_check_output(const char *out_path, const graft_model *const *models,
                             size_t nmodels, graft_ctx *ctx)
{
    struct stat st;
    if (stat(out_path, &st) < 0) {
        /* A path that does not exist cannot be one of the inputs. */
        if (errno == ENOENT) return GRAFT_OK;
        return graft_error(ctx, GRAFT_EIO, "%s: %s", out_path, strerror(errno));
    }
    /* Anything else that exists (an older output, a folder a folder format
     * replaces) is the writer's to replace, unless the models came from it. */
    for (size_t i = 0; i < nmodels; i++) {
        const graft_model *m = models[i];
        bool hit = same_file(&st, m->path);
        for (size_t k = 0; !hit && k < m->nsources; k++)
            hit = same_file(&st, m->sources[k]->path);
        if (hit)
            return graft_error(ctx, GRAFT_EIO,
                               "%s: the output would overwrite the input %s; choose another -o",
                               out_path, m->path);
    }
    return GRAFT_OK;
}

int graft_apply__views(const graft_model *m, const size_t *idx, size_t n, graft_tview *views,
                       void **owned, graft_ctx *ctx)
{
    for (size_t i = 0; i < n; i++) owned[i] = NULL;
    for (size_t i = 0; i < n; i++) {
        const graft_tensor *t;
        if (idx[i] >= m->count)
            return graft_error(ctx, GRAFT_ERROR, "plan names source tensor %zu of %zu", idx[i],
                               m->count);
        t = &m->tensors[idx[i]];
        if (t->ndim > GRAFT_MAX_NDIM)
            return graft_error(ctx, GRAFT_ELIMIT, "tensor '%s': rank %u", t->name, t->ndim);
        views[i].shape.dtype = t->dtype;
        views[i].shape.ndim = t->ndim;
        for (uint32_t d = 0; d < t->ndim; d++) views[i].shape.dim[d] = t->shape[d];
        GRAFT_TRY(graft_tensor_bytes(m, t, &views[i].data, &owned[i], ctx));
    }
    return GRAFT_OK;
}

void graft_apply__unviews(void **owned, size_t n)
{
    for (size_t i = 0; i < n; i++) free(owned[i]);
}

int graft_apply__shape_text(const graft_shape *s, char *buf, size_t n)
{
    size_t k = 0;
    int w = snprintf(buf, n, "%s [", graft_dtype_name(s->dtype));
    if (w < 0 || (size_t)w >= n) return -1;
    k = (size_t)w;
    for (uint32_t i = 0; i < s->ndim && k < n; i++) {
        w = snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)s->dim[i]);
        if (w < 0) return -1;
        k += (size_t)w;
    }
    if (k + 2 > n) return -1;
    buf[k++] = ']';
    buf[k] = '\0';
    return 0;
}

static bool same_shape(const graft_shape *s, const graft_tensor *t)
{
    if (s->dtype != t->dtype || s->ndim != t->ndim) return false;
    for (uint32_t i = 0; i < s->ndim; i++)
        if (s->dim[i] != t->shape[i]) return false;
    return true;
}

/* Refuse a chain whose result is not exactly the skeleton tensor: the writer
 * has already laid out nbytes for it. */
static int check_result(const graft_op *ops, size_t nops, const graft_tview *in, size_t nin,
                        const graft_tensor *target, graft_ctx *ctx)
{
    graft_shape out, *ins;
    char a[512], b[512];
    int rc;

    if (nops == 0) {
        if (nin != 1)
            return graft_error(ctx, GRAFT_ESHAPE, "%zu sources and no op to join them", nin);
        out = in[0].shape;
    } else {
        ins = graft_malloc(ctx, nin * sizeof *ins);
        if (!ins) return graft_error_oom(ctx, "source shapes");
        for (size_t i = 0; i < nin; i++) ins[i] = in[i].shape;
        rc = graft_ops_infer(ops, nops, ins, nin, &out, ctx);
        free(ins);
        if (rc < 0) return rc;
    }
    if (same_shape(&out, target)) return GRAFT_OK;
    graft_apply__shape_text(&out, a, sizeof a);
    graft_shape ts = {.dtype = target->dtype, .ndim = target->ndim};
    for (uint32_t i = 0; i < target->ndim && i < GRAFT_MAX_NDIM; i++) ts.dim[i] = target->shape[i];
    graft_apply__shape_text(&ts, b, sizeof b);
    return graft_error(ctx, GRAFT_ESHAPE, "the sources give %s, the skeleton holds %s", a, b);
}

typedef struct apply_fill {
    graft_fill base;                /* first: emit() receives &base */
    const graft_model *source, *skeleton;
    const graft_apply_plan *plan;
    graft_apply_progress_fn progress; /* optional */
    void *progress_payload;
    const volatile int *cancel;       /* optional: non-zero stops before the next tensor */
    size_t done;                      /* tensors emitted so far, and their bytes */
    uint64_t bytes;
} apply_fill;

/* Copy t's bytes p to out.  Bytes borrowed from a mapped file leave the
 * resident set step by step, so copying a model needs little memory. */
static int copy_bytes(const graft_tensor *t, const uint8_t *p, bool borrowed, graft_sink *out)
{
    const size_t step = 8u << 20;
    /* Bytes as they are in a mapped file (already checked by the view): the
     * kernel copies them file to file, without faulting them in here. */
    if (borrowed && t->src && t->src->data && p == t->src->data + t->offset && t->nbytes >= (1u << 20)) {
        int rc = graft_sink_copy_range(out, graft_source_fd(t->src), t->offset, t->nbytes);
        if (rc <= 0) return rc;
    }
    for (uint64_t off = 0; off < t->nbytes; off += step) {
        size_t n = t->nbytes - off < step ? (size_t)(t->nbytes - off) : step;
        GRAFT_TRY(graft_sink_write(out, p + off, n));
        if (borrowed) graft_source_release(t->src, t->offset + off, n);
    }
    return GRAFT_OK;
}

static int emit_kept(const graft_model *skel, const graft_tensor *t, graft_sink *out,
                     graft_ctx *ctx)
{
    const uint8_t *p;
    void *owned;
    int rc;
    if ((rc = graft_tensor_bytes(skel, t, &p, &owned, ctx)) < 0)
        return graft_error_prefix(ctx, "%s", skel->path);
    rc = copy_bytes(t, p, !owned, out);
    free(owned);
    return rc;
}

typedef struct borrowed {
    const graft_model *m;
    const graft_apply_item *it;
    void **owned;
    graft_ctx *ctx;
} borrowed;

/* Drop the mapped sources of an op chain from the resident set while it runs. */
static void release_sources(void *payload)
{
    const borrowed *b = payload;
    for (size_t i = 0; i < b->it->nsrc; i++) {
        const graft_tensor *st = &b->m->tensors[b->it->src[i]];
        if (!b->owned[i]) graft_source_release(st->src, st->offset, st->nbytes);
    }
}

/* Bytes of a mapped source read with pread: the kernel's scattered reads
 * neither fault nor stay resident.  Owned (decoded) sources are memory. */
static int read_source(void *payload, const uint8_t *at, void *dst, size_t n, graft_ctx *ctx)
{
    const borrowed *b = payload;
    for (size_t i = 0; i < b->it->nsrc; i++) {
        const graft_tensor *st = &b->m->tensors[b->it->src[i]];
        if (b->owned[i] || !st->src || !st->src->data) continue;
        const uint8_t *lo = st->src->data + st->offset;
        if (at >= lo && at + n <= lo + st->nbytes)
            return graft_source_read(st->src, (uint64_t)(at - st->src->data), dst, n, ctx);
    }
    memcpy(dst, at, n);
    return GRAFT_OK;
}

/* After a tensor: everything in its file up to its end, with the pages it
 * shares with its neighbours and the headers between tensors, which faults
 * there mapped around what was read.  Left mapped, a few pages per tensor
 * add up over thousands; any needed again faults back in from the cache. */
static void release_done(const graft_tensor *t)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    if (t->src) graft_source_release(t->src, 0, t->offset + t->nbytes + page);
}

static int emit_item(apply_fill *f, const graft_apply_item *it, const graft_tensor *t,
                     graft_sink *out, graft_ctx *ctx)
{
    graft_tview *views = NULL;
    void **owned = NULL;
    graft_op *bound = NULL; /* the chain with quantize/dequantize parameters */
    int rc;

    rc = graft_ops_bind_quant(it->ops, it->nops, f->source->tensors[it->src[0]].quant, t->quant,
                              &bound, ctx);
    if (rc < 0) return rc;
    views = graft_calloc(ctx, it->nsrc, sizeof *views);
    owned = graft_calloc(ctx, it->nsrc, sizeof *owned);
    if (!views || !owned) {
        rc = graft_error_oom(ctx, "source views");
        goto cleanup;
    }
    rc = graft_apply__views(f->source, it->src, it->nsrc, views, owned, ctx);
    if (rc < 0) {
        graft_error_prefix(ctx, "%s", f->source->path); /* a load() of the source failed */
        goto cleanup;
    }
    rc = check_result(it->ops, it->nops, views, it->nsrc, t, ctx);
    if (rc < 0) goto cleanup;
    /* Strings are serialized: equal shapes do not mean equal sizes. */
    if (it->nops == 0 && f->source->tensors[it->src[0]].nbytes != t->nbytes)
        rc = graft_error(ctx, GRAFT_ESHAPE, "the source holds %llu bytes, the skeleton %llu",
                         (unsigned long long)f->source->tensors[it->src[0]].nbytes,
                         (unsigned long long)t->nbytes);
    else if (it->nops == 0)
        rc = copy_bytes(&f->source->tensors[it->src[0]], views[0].data, !owned[0], out);
    else
        rc = graft_ops_run_io(bound ? bound : it->ops, it->nops, views, it->nsrc, out,
                              release_sources, read_source,
                              &(borrowed){f->source, it, owned, ctx}, ctx);
    /* An op reads its whole input: release it afterwards. */
    if (rc == GRAFT_OK && it->nops) release_sources(&(borrowed){f->source, it, owned, ctx});
cleanup:
    if (owned) graft_apply__unviews(owned, it->nsrc);
    free(owned);
    free(views);
    free(bound);
    return rc;
}

static int emit(graft_fill *base, size_t index, graft_sink *out, graft_ctx *ctx)
{
    apply_fill *f = (apply_fill *)base;
    const graft_tensor *t;
    const graft_apply_item *it;
    int rc;

    if (index >= f->plan->count || index >= f->skeleton->count)
        return graft_error(ctx, GRAFT_ERROR, "the writer asked for tensor %zu of %zu", index,
                           f->plan->count);
    if (f->cancel && *f->cancel)
        return graft_error(ctx, GRAFT_ECANCELED, "canceled after %zu of %zu tensors", f->done,
                           f->plan->count);
    t = &f->skeleton->tensors[index];
    it = &f->plan->items[index];
    if (t->nbytes > SIZE_MAX)
        return graft_error(ctx, GRAFT_ELIMIT, "tensor '%s': too large for memory", t->name);
    rc = it->nsrc == 0 ? emit_kept(f->skeleton, t, out, ctx) : emit_item(f, it, t, out, ctx);
    if (rc < 0) return graft_error_prefix(ctx, "target '%s'", t->name);
    /* the skeleton's too when it was replaced: the writer copied the headers
     * around it, and the pages those share with it (and the fault-around
     * window) stayed mapped, ~20 KB a dataset (issue 19's L1 growth) */
    release_done(t);
    for (size_t i = 0; i < it->nsrc; i++) release_done(&f->source->tensors[it->src[i]]);
    f->done++;
    f->bytes += t->nbytes;
    if (f->progress) f->progress(f->done, f->plan->count, f->bytes, f->progress_payload);
    return rc;
}

int graft_apply_write(const graft_model *source, const graft_model *skeleton,
                      const graft_apply_plan *plan, const char *out_path, graft_ctx *ctx)
{
    return graft_apply_write_progress(source, skeleton, plan, out_path, NULL, NULL, ctx);
}

int graft_apply_write_progress(const graft_model *source, const graft_model *skeleton,
                               const graft_apply_plan *plan, const char *out_path,
                               graft_apply_progress_fn progress, void *payload, graft_ctx *ctx)
{
    return graft_apply__write(source, skeleton, plan, out_path, progress, payload, NULL, ctx);
}

int graft_apply__write(const graft_model *source, const graft_model *skeleton,
                       const graft_apply_plan *plan, const char *out_path,
                       graft_apply_progress_fn progress, void *payload,
                       const volatile int *cancel, graft_ctx *ctx)
{
    const graft_model *inputs[2] = {source, skeleton};
    apply_fill fill = {.base = {.emit = emit}, .source = source, .skeleton = skeleton,
                       .plan = plan, .progress = progress, .progress_payload = payload,
                       .cancel = cancel};

    if (!skeleton->format || !skeleton->format->write)
        return graft_error(ctx, GRAFT_EFORMAT, "%s: graft cannot write %s files yet",
                           skeleton->path, graft_model_format(skeleton));
    if (plan->count != skeleton->count)
        return graft_error(ctx, GRAFT_ERROR, "plan has %zu items for %zu skeleton tensors",
                           plan->count, skeleton->count);
    fill.base.payload = &fill;
    GRAFT_TRY(graft_apply_check_output(out_path, inputs, 2, ctx));
    /* Opening touched headers spread over the files (a zip's local headers,
     * one per tensor): a fault maps a whole folio around each, which adds up
     * with the tensor count.  Drop them; what is needed again faults back in. */
    for (size_t i = 0; i < 2; i++)
        for (size_t k = 0; k < inputs[i]->nsources; k++)
            graft_source_release(inputs[i]->sources[k], 0, inputs[i]->sources[k]->size);
    /* The source's checksums, when its open left them to us, run on a
     * second thread over the tensors the plan reads; the commit waits. */
    graft_verify *v = NULL;
    bool *want = graft_calloc(ctx, source->count + 1, sizeof *want);
    if (!want) return graft_error_oom(ctx, "the tensors to verify");
    for (size_t i = 0; i < plan->count; i++)
        for (size_t k = 0; k < plan->items[i].nsrc; k++)
            if (plan->items[i].src[k] < source->count) want[plan->items[i].src[k]] = true;
    /* the flag it sets is the open model's run-time state, not its content */
    int rc = graft_verify_start(&v, (graft_model *)source, want, ctx);
    free(want);
    if (rc < 0) return rc;
    rc = skeleton->format->write(skeleton, out_path, &fill.base, ctx);
    return graft_verify_end(v, rc, ctx);
}
