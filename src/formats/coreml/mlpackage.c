/*
 * mlpackage.c - format "coreml-package": Core ML .mlpackage folders holding
 * an ML Program whose const weights live in blob storage.
 *
 * Layout (apple/coremltools; schemas/coreml/MIL.proto, Model.proto;
 * mlmodel/src/MILBlob/Blob/StorageFormat.hpp, BlobDataType.hpp):
 *  1. X.mlpackage/Manifest.json, Data/com.apple.CoreML/model.mlmodel (a
 *     Model protobuf) and Data/com.apple.CoreML/weights/weight.bin;
 *  2. Model field 502 mlProgram: Program {2 functions map<string, Function>};
 *     Function {3 block_specializations map<string, Block>}; Block
 *     {3 operations repeated Operation}; Operation {1 type, 3 outputs repeated
 *     NamedValueType {1 name}, 4 blocks repeated Block, 5 attributes
 *     map<string, Value>}; map entries are {1 key, 2 value};
 *  3. an Operation of type "const" with attribute "val": Value {2 type
 *     ValueType {1 tensorType TensorType {1 dataType, 3 dimensions repeated
 *     Dimension {1 constant {1 size}}}}, 5 blobFileValue {1 fileName,
 *     2 offset}}; offset is that of the blob's metadata in weight.bin;
 *  4. weight.bin (little-endian): a 64-byte storage_header {u32 count, u32
 *     version 2, 7 x u64 reserved}, and per blob a 64-byte blob_metadata
 *     {u32 sentinel 0xDEADBEEF, u32 dtype (1 float16, 2 float32, 3 uint8,
 *     4 int8, 5 bfloat16, 6 int16, 7 uint16, 14 int32, 15 uint32; others are
 *     sub-byte or float8 and refused), u64 sizeInBytes, u64 offset (of the
 *     data, from the file start), u64 padding bits, 4 x u64 reserved}.
 * Each blob-backed const is a tensor named by its output, a view into
 * weight.bin.  Writing makes a new folder beside the output with
 * Manifest.json and model.mlmodel copied and weight.bin rewritten in place,
 * then renames it into place.
 */
#include "format.h"
#include "pb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DATA "Data/com.apple.CoreML"
#define SPEC DATA "/model.mlmodel"
#define WEIGHTS DATA "/weights/weight.bin"
#define MAX_DEPTH 32  /* blocks nested in operations */

static bool exists(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;
    /* present as anything: opening refuses what is not a regular file */
    return (size_t)snprintf(p, sizeof p, "%s/%s", dir, name) < sizeof p && stat(p, &st) == 0;
}

static bool pkg_probe(const char *path, bool is_dir, const uint8_t *head, size_t n)
{
    (void)head;
    (void)n;
    return is_dir && exists(path, "Manifest.json") && exists(path, SPEC);
}

static graft_dtype blob_dtype(uint32_t d)
{
    switch (d) {
    case 1: return GRAFT_FLOAT16;
    case 2: return GRAFT_FLOAT32;
    case 3: return GRAFT_UINT8;
    case 4: return GRAFT_INT8;
    case 5: return GRAFT_BFLOAT16;
    case 6: return GRAFT_INT16;
    case 7: return GRAFT_UINT16;
    case 14: return GRAFT_INT32;
    case 15: return GRAFT_UINT32;
    default: return GRAFT_DTYPE_INVALID;
    }
}

/* MIL DataType (MIL.proto) of the same element types. */
static graft_dtype mil_dtype(uint64_t d)
{
    switch (d) {
    case 10: return GRAFT_FLOAT16;
    case 11: return GRAFT_FLOAT32;
    case 13: return GRAFT_BFLOAT16;
    case 21: return GRAFT_INT8;
    case 22: return GRAFT_INT16;
    case 23: return GRAFT_INT32;
    case 31: return GRAFT_UINT8;
    case 32: return GRAFT_UINT16;
    case 33: return GRAFT_UINT32;
    default: return GRAFT_DTYPE_INVALID;
    }
}

/* The first field `num` of message r (LEN), if any. */
static int find(graft_rd r, uint32_t num, graft_rd *out, bool *found)
{
    graft_pbf f;
    *found = false;
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num == num && f.wt == GRAFT_PB_LEN) {
            *out = f.sub;
            *found = true;
            return GRAFT_OK;
        }
    }
    return GRAFT_OK;
}

typedef struct konst {
    char name[512];
    graft_dtype dt;
    uint32_t ndim;
    int64_t shape[GRAFT_MAX_NDIM];
    bool blob;
    uint64_t meta;   /* blob_metadata offset in weight.bin */
} konst;

/* Value "val" of a const op: its type and blob reference. */
static int parse_value(graft_rd v, konst *k, graft_ctx *ctx)
{
    graft_rd type, tensor, blob;
    graft_pbf f, g;
    bool have;
    GRAFT_TRY(find(v, 5, &blob, &k->blob));
    if (!k->blob) return GRAFT_OK; /* an immediate value: small, not listed */
    GRAFT_TRY(find(v, 2, &type, &have));
    if (have) GRAFT_TRY(find(type, 1, &tensor, &have));
    if (!have) return graft_error(ctx, GRAFT_ECORRUPT, "const '%s': no tensor type", k->name);
    while (graft_rd_left(&tensor)) {
        GRAFT_TRY(graft_pb_next(&tensor, &f));
        if (f.num == 1 && f.wt == GRAFT_PB_VARINT) k->dt = mil_dtype(f.v);
        if (f.num != 3 || f.wt != GRAFT_PB_LEN) continue;
        graft_rd c;
        GRAFT_TRY(find(f.sub, 1, &c, &have));
        if (!have)
            return graft_error(ctx, GRAFT_EFORMAT, "const '%s': a dimension of unknown size",
                               k->name);
        if (k->ndim == GRAFT_MAX_NDIM)
            return graft_error(ctx, GRAFT_ELIMIT, "const '%s': rank over %d", k->name,
                               GRAFT_MAX_NDIM);
        k->shape[k->ndim] = 0;
        while (graft_rd_left(&c)) {
            GRAFT_TRY(graft_pb_next(&c, &g));
            if (g.num == 1 && g.wt == GRAFT_PB_VARINT)
                k->shape[k->ndim] = g.v > INT64_MAX ? -1 : (int64_t)g.v;
        }
        k->ndim++;
    }
    while (graft_rd_left(&blob)) {
        GRAFT_TRY(graft_pb_next(&blob, &f));
        if (f.num == 2 && f.wt == GRAFT_PB_VARINT) k->meta = f.v;
    }
    return GRAFT_OK;
}

/* The tensor of a blob-backed const, checked against its blob_metadata. */
static int add_const(graft_model *m, const graft_source *w, const konst *k, graft_ctx *ctx)
{
    const uint8_t *p;
    graft_tensor *t;
    uint64_t size, off;
    if (k->dt == GRAFT_DTYPE_INVALID)
        return graft_error(ctx, GRAFT_EFORMAT, "const '%s': element type not supported", k->name);
    if (k->meta > w->size || w->size - k->meta < 64)
        return graft_error(ctx, GRAFT_ECORRUPT, "const '%s': blob metadata at %llu past the end "
                           "of the %zu-byte weight.bin", k->name, (unsigned long long)k->meta,
                           w->size);
    p = w->data + k->meta;
    if (graft_le32(p) != 0xDEADBEEFu)
        return graft_error(ctx, GRAFT_ECORRUPT, "const '%s': no blob metadata sentinel at %llu",
                           k->name, (unsigned long long)k->meta);
    if (blob_dtype(graft_le32(p + 4)) != k->dt)
        return graft_error(ctx, GRAFT_ECORRUPT, "const '%s': blob type %u, the op says %s",
                           k->name, graft_le32(p + 4), graft_dtype_name(k->dt));
    size = graft_le64(p + 8);
    off = graft_le64(p + 16);
    if (off > w->size || size > w->size - off)
        return graft_error(ctx, GRAFT_ECORRUPT, "const '%s': blob [%llu, +%llu) past the end of "
                           "the %zu-byte weight.bin", k->name, (unsigned long long)off,
                           (unsigned long long)size, w->size);
    t = graft_model__add(m, k->name, strlen(k->name), k->dt, k->ndim, k->shape, ctx);
    if (!t) return ctx->status;
    if (t->nbytes != size)
        return graft_error(ctx, GRAFT_ECORRUPT, "const '%s': blob of %llu bytes, %s of that "
                           "shape takes %llu", k->name, (unsigned long long)size,
                           graft_dtype_name(k->dt), (unsigned long long)t->nbytes);
    t->src = w;
    t->offset = off;
    return GRAFT_OK;
}

static int walk_block(graft_model *m, const graft_source *w, graft_rd b, int depth,
                      graft_ctx *ctx);

static int walk_op(graft_model *m, const graft_source *w, graft_rd op, int depth, graft_ctx *ctx)
{
    graft_rd r = op, val = {0};
    graft_pbf f;
    bool is_const = false, have_val = false;
    konst k = {.dt = GRAFT_DTYPE_INVALID};
    while (graft_rd_left(&r)) {
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.wt != GRAFT_PB_LEN) continue;
        if (f.num == 1) is_const = graft_pb_is(&f, "const");
        if (f.num == 3 && !k.name[0]) {
            graft_rd name;
            bool have;
            GRAFT_TRY(find(f.sub, 1, &name, &have));
            if (have)
                snprintf(k.name, sizeof k.name, "%.*s", (int)(name.len < 500 ? name.len : 500),
                         (const char *)name.p);
        }
        if (f.num == 4) GRAFT_TRY(walk_block(m, w, f.sub, depth + 1, ctx));
        if (f.num == 5) { /* attributes entry {1 key, 2 value} */
            graft_rd key, v;
            bool hk, hv;
            GRAFT_TRY(find(f.sub, 1, &key, &hk));
            GRAFT_TRY(find(f.sub, 2, &v, &hv));
            if (hk && hv && key.len == 3 && memcmp(key.p, "val", 3) == 0) val = v, have_val = true;
        }
    }
    if (!is_const || !have_val) return GRAFT_OK;
    GRAFT_TRY(parse_value(val, &k, ctx));
    return k.blob ? add_const(m, w, &k, ctx) : GRAFT_OK;
}

static int walk_block(graft_model *m, const graft_source *w, graft_rd b, int depth,
                      graft_ctx *ctx)
{
    graft_pbf f;
    if (depth > MAX_DEPTH)
        return graft_error(ctx, GRAFT_ELIMIT, "blocks nested deeper than %d", MAX_DEPTH);
    while (graft_rd_left(&b)) {
        GRAFT_TRY(graft_pb_next(&b, &f));
        if (f.num == 3 && f.wt == GRAFT_PB_LEN) GRAFT_TRY(walk_op(m, w, f.sub, depth, ctx));
    }
    return GRAFT_OK;
}

/* Every value of map field `num` of message r: entries {1 key, 2 value}. */
static int walk_map(graft_model *m, const graft_source *w, graft_rd r, uint32_t num,
                    bool blocks, graft_ctx *ctx)
{
    graft_pbf f;
    while (graft_rd_left(&r)) {
        graft_rd v;
        bool have;
        GRAFT_TRY(graft_pb_next(&r, &f));
        if (f.num != num || f.wt != GRAFT_PB_LEN) continue;
        GRAFT_TRY(find(f.sub, 2, &v, &have));
        if (!have) continue;
        GRAFT_TRY(blocks ? walk_block(m, w, v, 0, ctx) : walk_map(m, w, v, 3, true, ctx));
    }
    return GRAFT_OK;
}

static int pkg_open(graft_model *m, const graft_open_options *opts, graft_ctx *ctx)
{
    const graft_source *spec, *w;
    char p[4096];
    graft_rd r, prog;
    bool have;
    int rc;

    (void)opts;
    if ((size_t)snprintf(p, sizeof p, "%s/" SPEC, m->path) >= sizeof p)
        return graft_error(ctx, GRAFT_ELIMIT, "path too long");
    GRAFT_TRY(graft_model__add_source(m, p, &spec, ctx));
    if ((size_t)snprintf(p, sizeof p, "%s/" WEIGHTS, m->path) >= sizeof p)
        return graft_error(ctx, GRAFT_ELIMIT, "path too long");
    GRAFT_TRY(graft_model__add_source(m, p, &w, ctx));
    graft_rd_init(&r, spec->data, spec->size, 0, ctx);
    rc = find(r, 502, &prog, &have);
    if (rc == GRAFT_OK && !have)
        rc = graft_error(ctx, GRAFT_EFORMAT, "no ML Program (Model field 502)");
    if (rc == GRAFT_OK) rc = walk_map(m, w, prog, 2, false, ctx);
    if (rc < 0) return graft_error_prefix(ctx, "%s", spec->path);
    return GRAFT_OK;
}

static const char *const DIRS[] = {"Data", DATA, DATA "/weights"};

static void remove_tmp(const char *tmp)
{
    char p[4096];
    const char *const files[] = {"Manifest.json", SPEC, WEIGHTS};
    for (size_t i = 0; i < 3; i++)
        if ((size_t)snprintf(p, sizeof p, "%s/%s", tmp, files[i]) < sizeof p) unlink(p);
    for (size_t i = 3; i-- > 0;)
        if ((size_t)snprintf(p, sizeof p, "%s/%s", tmp, DIRS[i]) < sizeof p) rmdir(p);
    rmdir(tmp);
}

/* The new package is made in "<out>.graft-<pid>-<n>", renamed into place;
 * its files stay unnamed until all are written, and its folders are made
 * when they are linked in (graft_sink): a kill leaves nothing. */
static int pkg_write(const graft_model *m, const char *out_path, graft_fill *fill, graft_ctx *ctx)
{
    static unsigned serial;
    const char *const copies[] = {"Manifest.json", SPEC};
    graft_sink *pending[2] = {NULL, NULL};
    char tmp[4096], from[4096], to[4096];
    size_t n = strlen(out_path);
    int rc = GRAFT_OK;

    while (n > 1 && out_path[n - 1] == '/') n--;
    if (n + 64 > sizeof tmp || strlen(m->path) + 64 > sizeof from)
        return graft_error(ctx, GRAFT_ELIMIT, "%s: path too long", out_path);
    do
        snprintf(tmp, sizeof tmp, "%.*s.graft-%ld-%u", (int)n, out_path, (long)getpid(), serial++);
    while (access(tmp, F_OK) == 0);
    graft_sink_folder_output(tmp);
    for (size_t i = 0; i < 2 && rc == GRAFT_OK; i++) {
        if ((size_t)snprintf(from, sizeof from, "%s/%s", m->path, copies[i]) >= sizeof from ||
            (size_t)snprintf(to, sizeof to, "%s/%s", tmp, copies[i]) >= sizeof to)
            rc = graft_error(ctx, GRAFT_ELIMIT, "%s: path too long", out_path);
        else
            rc = graft_copy_file_pending(from, to, &pending[i], ctx);
    }
    if (rc == GRAFT_OK) {
        if ((size_t)snprintf(to, sizeof to, "%s/" WEIGHTS, tmp) >= sizeof to)
            rc = graft_error(ctx, GRAFT_ELIMIT, "%s: path too long", out_path);
        else
            rc = graft_write_source_in_place(m, m->sources[1], to, fill, ctx);
    }
    for (size_t i = 0; i < 2 && rc == GRAFT_OK; i++) {
        rc = graft_sink_commit(pending[i]);
        pending[i] = NULL;
    }
    graft_sink_folder_output(NULL);
    if (rc == GRAFT_OK && rename(tmp, out_path) < 0)
        rc = graft_error(ctx, GRAFT_EIO, "%s: cannot move the new package into place "
                         "(does a non-empty folder exist there?)", out_path);
    for (size_t i = 0; i < 2; i++) graft_sink_abort(pending[i]);
    if (rc < 0) remove_tmp(tmp);
    return rc;
}

const graft_format graft_format_coreml_package = {
    .name = "coreml-package",
    .probe = pkg_probe,
    .open = pkg_open,
    .write = pkg_write,
};
