/*
 * convert.c - `graft convert`: a source model's tensors into a new file of
 * a container format, with no skeleton (see convert.h).
 *
 * The target's tensor table is built first: for each source tensor, the
 * rules' source-side ignores, renames (in order) and the first transform
 * whose selectors match (source regex on the original name, target regex
 * on the renamed one, rank, dtype) give its name and op chain, and the
 * chain's inferred shape its dtype and shape.  The format then gets the
 * state a fresh file needs (a state dict, GGUF metadata, a shard plan) and
 * the apply machinery streams every tensor through its chain into the
 * format's writer, exactly as `graft apply` fills a skeleton.  --dequantize
 * puts a dequantize op before a quantized GGUF tensor's chain, --quantize a
 * quantize op after a float matrix's; a chain ending in quantize gives the
 * GGUF tensor that ggml type.
 */
#include "convert.h"

#include "ggml_quant.h"
#include "gguf.h"
#include "optab.h"
#include "rules.h"
#include "tf_bundle.h"
#include "torch_walk.h"

#include <stdlib.h>
#include <string.h>

extern const graft_format graft_format_npz, graft_format_npy;
/* safetensors.c has no header of its own */
int graft_safetensors__prepare(graft_model *m, uint64_t max_shard, const char *out_path,
                               char **final_path, graft_ctx *ctx);

static const struct {
    const char *suffix, *format;
} by_ext[] = {
    {".safetensors.index.json", "safetensors"}, {".safetensors", "safetensors"},
    {".npz", "npz"}, {".npy", "npy"}, {".gguf", "gguf"}, {".pt", "pytorch-zip"},
    {".pth", "pytorch-zip"}, {".bin", "pytorch-zip"}, {".index", "tf-checkpoint"},
};

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

const char *graft_convert_format_for(const char *out_path)
{
    for (size_t i = 0; i < sizeof by_ext / sizeof *by_ext; i++)
        if (ends_with(out_path, by_ext[i].suffix)) return by_ext[i].format;
    return NULL;
}

/* The distinct formats of by_ext, in its order. */
const char *const *graft_convert_format_names(void)
{
    static const char *const names[] = {"safetensors", "npz", "npy", "gguf", "pytorch-zip",
                                        "tf-checkpoint", NULL};
    return names;
}

/* One target tensor: where it comes from. */
typedef struct citem {
    size_t src;                 /* source tensor index */
    const graft_op *ops;        /* borrowed from the rules */
    size_t nops;
    graft_shape out;            /* after the ops */
    char *name;                 /* renamed; malloc */
    graft_op *own;              /* malloc: the chain when --dequantize / --quantize add to it */
    const graft_ggml_type *gtype; /* GGUF: the chain ends in a quantize op of this type */
    bool dequantized;           /* --dequantize put a dequantize op first */
} citem;

typedef struct conv {
    graft_ctx *ctx;
    const graft_convert_options *o;
    graft_rules *rules;
    graft_model *src, *tm;
    citem *items;
    size_t n;
    size_t *src_idx;
    graft_apply_item *aitems;
    const char **meta;          /* rules' meta: then --meta; malloc, strings borrowed */
    size_t nmeta;
} conv;

/* The first transform whose selectors match, in *out (NULL: none). */
static int transform_for(const graft_rules *r, const graft_tensor *t, const char *renamed,
                         const graft_transform **out, graft_ctx *ctx)
{
    *out = NULL;
    for (size_t i = 0; r && i < r->ntransforms; i++) {
        const graft_transform *tr = &r->transforms[i];
        int rc;
        if (tr->rank >= 0 && (uint32_t)tr->rank != t->ndim) continue;
        if (tr->dtype != GRAFT_DTYPE_INVALID && tr->dtype != t->dtype) continue;
        if ((rc = graft_regex_search(&tr->source, t->name, ctx)) <= 0 ||
            (rc = graft_regex_search(&tr->target, renamed, ctx)) <= 0) {
            if (rc < 0) return rc;
            continue;
        }
        *out = tr;
        return GRAFT_OK;
    }
    return GRAFT_OK;
}

/* it's chain with one more op (first or last) of kind, type `q`. */
static int add_op(conv *c, citem *it, bool first, graft_op_kind kind, int64_t q)
{
    graft_op *ops = graft_calloc(c->ctx, it->nops + 1, sizeof *ops);
    if (!ops) return graft_error_oom(c->ctx, "an op chain");
    if (it->nops) memcpy(ops + first, it->ops, it->nops * sizeof *ops); /* v borrowed */
    ops[first ? 0 : it->nops] = (graft_op){.kind = kind, .index = q, .dtype = GRAFT_UINT8,
                                           .file = kind == GRAFT_OP_QUANTIZE ? "--quantize"
                                                                             : "--dequantize"};
    free(it->own);
    it->own = ops;
    it->ops = ops;
    it->nops++;
    it->dequantized |= kind == GRAFT_OP_DEQUANTIZE;
    return GRAFT_OK;
}

static bool quantizable(const graft_shape *s, uint32_t block)
{
    return (s->dtype == GRAFT_FLOAT32 || s->dtype == GRAFT_FLOAT16 || s->dtype == GRAFT_BFLOAT16) &&
           s->ndim >= 2 && s->dim[s->ndim - 1] > 0 && s->dim[s->ndim - 1] % block == 0;
}

/* Name, ops and shape of source tensor i; *skip when the rules ignore it. */
static int plan_one(conv *c, size_t i, citem *it, bool *skip)
{
    const graft_tensor *t = &c->src->tensors[i];
    const graft_transform *tr;
    graft_shape in = {.dtype = t->dtype, .ndim = t->ndim};

    *skip = false;
    if (c->rules) {
        int rc = graft_rules_ignored(c->rules, GRAFT_SIDE_SOURCE, t->name, c->ctx);
        if (rc < 0) return rc;
        if ((*skip = rc > 0)) return GRAFT_OK;
    }
    if (c->rules) {
        GRAFT_TRY(graft_rules_rename(c->rules, GRAFT_SIDE_SOURCE, t->name, &it->name, NULL, 0,
                                     NULL, c->ctx));
    } else if (!(it->name = graft_strdup(c->ctx, t->name))) {
        return graft_error_oom(c->ctx, "a name");
    }
    if (t->unsupported)
        return graft_error(c->ctx, GRAFT_EFORMAT, "stored as %s, which graft cannot read "
                           "(ignore it in the rules to convert the rest)", t->unsupported);
    if (t->ndim > GRAFT_MAX_NDIM)
        return graft_error(c->ctx, GRAFT_ELIMIT, "rank %u exceeds %d", t->ndim, GRAFT_MAX_NDIM);
    for (uint32_t d = 0; d < t->ndim; d++) in.dim[d] = t->shape[d];
    it->src = i;
    GRAFT_TRY(transform_for(c->rules, t, it->name, &tr, c->ctx));
    if (tr) {
        it->ops = tr->ops;
        it->nops = tr->nops;
    }
    if (c->o->dequantize && c->src->format == &graft_format_gguf) {
        const graft_ggml_type *ty = graft_gguf__type((uint32_t)t->aux);
        if (ty && ty->block_elems > 1) /* blocks to float32 first, then the rules' ops */
            GRAFT_TRY(add_op(c, it, true, GRAFT_OP_DEQUANTIZE,
                             ty->id == GGML_Q4_0 ? GRAFT_GGML_Q4_0 : GRAFT_GGML_Q8_0));
    }
    if (it->nops && (graft_op_def_of(it->ops[0].kind)->flags & GRAFT_OPF_JOIN))
        return graft_error(c->ctx, GRAFT_ERULE, "%s:%u: %s joins several sources, but "
                           "convert maps each source tensor to one target", it->ops[0].file,
                           it->ops[0].line, graft_op_def_of(it->ops[0].kind)->name);
    if (it->nops) GRAFT_TRY(graft_ops_infer(it->ops, it->nops, &in, 1, &it->out, c->ctx));
    else it->out = in;
    return GRAFT_OK;
}

static int cmp_item(const void *a, const void *b)
{
    return strcmp(((const citem *)a)->name, ((const citem *)b)->name);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const citem *const *)a)->name, (*(const citem *const *)b)->name);
}

static int check_unique(conv *c)
{
    const citem **v = graft_calloc(c->ctx, c->n + 1, sizeof *v);
    int rc = GRAFT_OK;
    if (!v) return graft_error_oom(c->ctx, "the names");
    for (size_t i = 0; i < c->n; i++) v[i] = &c->items[i];
    qsort(v, c->n, sizeof *v, cmp_name);
    for (size_t i = 1; i < c->n && rc == GRAFT_OK; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0)
            rc = graft_error(c->ctx, GRAFT_ERULE, "'%s' and '%s' are both renamed to '%s'",
                             c->src->tensors[v[i - 1]->src].name,
                             c->src->tensors[v[i]->src].name, v[i]->name);
    free(v);
    return rc;
}

/* The target table: one tensor per item, no bytes. */
static int build_target(conv *c, const graft_format *fmt)
{
    const graft_ggml_type *qt = NULL;
    if (c->o->quantize) {
        if (fmt != &graft_format_gguf)
            return graft_error(c->ctx, GRAFT_ERROR, "--quantize writes GGUF only, not %s",
                               fmt->name);
        if (!(qt = graft_gguf__type_by_name(c->o->quantize)))
            return graft_error(c->ctx, GRAFT_ERROR, "--quantize %s: graft quantizes q8_0 and "
                               "q4_0", c->o->quantize);
    }
    GRAFT_TRY(graft_model__new(&c->tm, "<convert>", c->ctx));
    c->tm->format = fmt;
    for (size_t i = 0; i < c->n; i++) {
        citem *it = &c->items[i];
        if (qt && quantizable(&it->out, qt->block_elems)) {
            graft_shape in = {.dtype = c->src->tensors[it->src].dtype};
            GRAFT_TRY(add_op(c, it, false, GRAFT_OP_QUANTIZE,
                             qt->id == GGML_Q4_0 ? GRAFT_GGML_Q4_0 : GRAFT_GGML_Q8_0));
            in.ndim = c->src->tensors[it->src].ndim;
            for (uint32_t d = 0; d < in.ndim; d++) in.dim[d] = c->src->tensors[it->src].shape[d];
            GRAFT_TRY(graft_ops_infer(it->ops, it->nops, &in, 1, &it->out, c->ctx));
        }
        if (it->nops && it->ops[it->nops - 1].kind == GRAFT_OP_QUANTIZE &&
            it->ops[it->nops - 1].index) /* ggml blocks, not an affine dtype */
            it->gtype = graft_gguf__type_by_name(
                it->ops[it->nops - 1].index == GRAFT_GGML_Q4_0 ? "q4_0" : "q8_0");
        if (!graft_model__add(c->tm, it->name, strlen(it->name), it->out.dtype, it->out.ndim,
                              it->out.dim, c->ctx))
            return c->ctx->status;
    }
    return GRAFT_OK;
}

/* The rules' meta: first, then --meta (a later entry for a key wins). */
static int merge_meta(conv *c)
{
    size_t nr = c->rules ? c->rules->nmeta : 0;
    c->nmeta = nr + c->o->nmeta;
    c->meta = graft_calloc(c->ctx, c->nmeta + 1, sizeof *c->meta);
    if (!c->meta) return graft_error_oom(c->ctx, "the metadata");
    for (size_t i = 0; i < nr; i++) c->meta[i] = c->rules->meta[i];
    for (size_t i = 0; i < c->o->nmeta; i++) c->meta[nr + i] = c->o->meta[i];
    return GRAFT_OK;
}

/* The state the target format's writer needs for a fresh file. */
static int prepare_target(conv *c, const char *out_path, graft_convert_result *res)
{
    const graft_format *fmt = c->tm->format;
    char *final = NULL;
    if (fmt == &graft_format_gguf) {
        const graft_ggml_type **types = graft_calloc(c->ctx, c->n + 1, sizeof *types);
        int rc;
        if (!types) return graft_error_oom(c->ctx, "the tensor types");
        for (size_t i = 0; i < c->n; i++) {
            types[i] = c->items[i].gtype;
            res->quantized += types[i] != NULL;
        }
        rc = graft_gguf__prepare(c->tm, c->meta, c->nmeta, types, c->ctx);
        free(types);
        GRAFT_TRY(rc);
    } else if (c->o->nmeta) { /* a rules file's meta: is for GGUF outputs only, unused here */
        return graft_error(c->ctx, GRAFT_ERROR, "--meta is for GGUF, not %s", fmt->name);
    }
    if (c->o->shard_size && strcmp(fmt->name, "safetensors") != 0)
        return graft_error(c->ctx, GRAFT_ERROR, "--shard-size is for safetensors, not %s",
                           fmt->name);
    if (strcmp(fmt->name, "safetensors") == 0)
        GRAFT_TRY(graft_safetensors__prepare(c->tm, c->o->shard_size, out_path, &final, c->ctx));
    else if (strcmp(fmt->name, "pytorch-zip") == 0)
        GRAFT_TRY(graft_torch__new_state_dict(c->tm, c->ctx));
#if GRAFT_WITH_PROTOBUF /* the TF bundle writer is behind -Dprotobuf */
    else if (strcmp(fmt->name, "tf-checkpoint") == 0) {
        size_t n = strlen(out_path);
        if (ends_with(out_path, ".index")) n -= 6;
        final = graft_arena_printf(&c->tm->arena, "%.*s.index", (int)n, out_path);
        if (!final) return graft_error_oom(c->ctx, "a path");
        final[n] = '\0'; /* the prefix, then the index path */
        GRAFT_TRY(graft_tf__bundle_new(c->tm, final, c->ctx));
        final[n] = '.';
    }
#endif
    else if (fmt != &graft_format_gguf && fmt != &graft_format_npz && fmt != &graft_format_npy)
        return graft_error(c->ctx, GRAFT_EFORMAT, "graft convert cannot write %s files yet",
                           fmt->name);
    res->out_path = graft_strdup(c->ctx, final ? final : out_path);
    return res->out_path ? GRAFT_OK : graft_error_oom(c->ctx, "the output path");
}

static int plan_all(conv *c)
{
    c->items = graft_calloc(c->ctx, c->src->count + 1, sizeof *c->items);
    if (!c->items) return graft_error_oom(c->ctx, "the convert plan");
    for (size_t i = 0; i < c->src->count; i++) {
        bool skip;
        int rc = plan_one(c, i, &c->items[c->n], &skip);
        if (rc < 0) {
            free(c->items[c->n].name);
            c->items[c->n].name = NULL;
            return graft_error_prefix(c->ctx, "tensor '%s'", c->src->tensors[i].name);
        }
        if (!skip) c->n++;
    }
    return check_unique(c);
}

static int open_inputs(conv *c, const char *source)
{
    graft_open_options oo = GRAFT_OPEN_OPTIONS_INIT;
    if (c->o->rules_path) GRAFT_TRY(graft_rules_load(&c->rules, c->o->rules_path, c->ctx));
    oo.format = c->o->source_format;
    oo.select = c->o->select ? c->o->select : c->rules ? c->rules->select : NULL;
    return graft_model__open_deferred(&c->src, source, &oo, c->ctx); /* checked as read */
}

static int run(conv *c, const char *source, const char *out_path, graft_convert_result *res)
{
    const char *to = c->o->to ? c->o->to : graft_convert_format_for(out_path);
    const graft_format *fmt;
    graft_apply_plan plan;
    const char *select;

    if (!to)
        return graft_error(c->ctx, GRAFT_ERROR, "%s: cannot tell the format from the extension; "
                           "give --to", out_path);
    if (!(fmt = graft_format_find(to)))
        return graft_error(c->ctx, GRAFT_ERROR, "--to %s: no such format", to);
    res->format = fmt->name;
    GRAFT_TRY(open_inputs(c, source));
    select = c->o->select ? c->o->select : c->rules ? c->rules->select : NULL;
    graft_model__extras(c->src, select, &res->dropped);
    if (c->o->strict && res->dropped.count)
        return graft_error(c->ctx, GRAFT_EFORMAT, "%s: holds %llu non-tensor value%s (%s); "
                           "--strict refuses to drop them",
                           source, (unsigned long long)res->dropped.count,
                           res->dropped.count > 1 ? "s" : "", res->dropped.summary);
    GRAFT_TRY(plan_all(c));
    /* a checkpoint index is a table in bytewise key order */
    if (strcmp(fmt->name, "tf-checkpoint") == 0) qsort(c->items, c->n, sizeof *c->items, cmp_item);
    res->ignored = c->src->count - c->n;
    GRAFT_TRY(build_target(c, fmt));
    GRAFT_TRY(merge_meta(c));
    GRAFT_TRY(prepare_target(c, out_path, res));
    c->src_idx = graft_calloc(c->ctx, c->n + 1, sizeof *c->src_idx);
    c->aitems = graft_calloc(c->ctx, c->n + 1, sizeof *c->aitems);
    if (!c->src_idx || !c->aitems) return graft_error_oom(c->ctx, "the convert plan");
    for (size_t i = 0; i < c->n; i++) {
        c->src_idx[i] = c->items[i].src;
        res->dequantized += c->items[i].dequantized;
        c->aitems[i] = (graft_apply_item){.nsrc = 1, .src = &c->src_idx[i],
                                          .ops = c->items[i].ops, .nops = c->items[i].nops};
    }
    plan = (graft_apply_plan){.items = c->aitems, .count = c->n};
    GRAFT_TRY(graft_apply_write_progress(c->src, c->tm, &plan, res->out_path, c->o->progress,
                                         c->o->progress_payload, c->ctx));
    res->tensors = c->n;
    for (size_t i = 0; i < c->n; i++) res->bytes += c->tm->tensors[i].nbytes;
    if (c->o->manifest) {
        graft_manifest_info info = {.source = c->src, .skeleton = c->tm,
                                    .rules_path = c->o->rules_path, .plan = &plan,
                                    .out_path = res->out_path};
        const graft_model *inputs[1] = {c->src};
        GRAFT_TRY(graft_apply_check_output(c->o->manifest, inputs, 1, c->ctx));
        GRAFT_TRY(graft_manifest_write(c->o->manifest, &info, c->ctx));
    }
    return GRAFT_OK;
}

int graft_convert(const char *source, const char *out_path, const graft_convert_options *o,
                  graft_convert_result *res, graft_ctx *ctx)
{
    conv c = {.ctx = ctx, .o = o};
    int rc;
    memset(res, 0, sizeof *res);
    if (!o || o->version != GRAFT_CONVERT_OPTIONS_VERSION)
        return graft_error(ctx, GRAFT_ERROR, "graft_convert: options version %u, expected %u",
                           o ? o->version : 0, GRAFT_CONVERT_OPTIONS_VERSION);
    rc = run(&c, source, out_path, res);
    for (size_t i = 0; c.items && i < c.src->count; i++) {
        free(c.items[i].name);
        free(c.items[i].own);
    }
    free(c.items);
    free(c.src_idx);
    free(c.aitems);
    free(c.meta);
    graft_model_free(c.tm);
    graft_model_free(c.src);
    graft_rules_free(c.rules);
    return rc;
}

void graft_convert_result_free(graft_convert_result *res)
{
    if (!res) return;
    free(res->out_path);
    res->out_path = NULL;
}
