/*
 * pickle_globals.c - which pickle globals graft accepts (see pickle.h).
 *
 * Mirrors PyTorch's weights_only unpickler: the tensor rebuild functions,
 * storage classes, dtypes and a few containers are known; modules that can
 * run code are refused outright; other classes (argparse.Namespace,
 * numpy scalars, __main__.Net) stay opaque names that are never called.
 * Between the two, "foreign" globals (PKG_FOREIGN, PKG_GETATTR) are what a
 * whole model holds as attributes: torch.nn.functional.relu, a
 * functools.partial norm layer, a WeightNorm hook, torch.ao classes.
 * Nothing is ever called, so they are harmless to read, but a state dict
 * has no use for them and keeps refusing them (see pickle.h).
 */
#include "pickle_globals.h"

#include <string.h>

/* First component of a module path that can reach code execution. */
static const char *const deny_modules[] = {
    "sys", "os", "posix", "nt", "subprocess", "_posixsubprocess", "shutil", "socket",
    "importlib", "imp", "zipimport", "runpy", "ctypes", "_ctypes", "cffi", "pty", "code",
    "codeop", "marshal", "pickle", "_pickle", "pickletools", "copy", "types", "operator",
    "_operator", "functools", "_functools", "multiprocessing", "threading", "_thread",
    "signal", "webbrowser", "commands", "popen2", "platform", "pydoc", "timeit", "pdb",
    "bdb", "inspect", "asyncio", "io", "_io", "tempfile", "glob", "pathlib", "posixpath",
    "ntpath", "http", "urllib", "urllib2", "ftplib", "smtplib", "telnetlib", "requests",
    "select", "selectors", "site", "sysconfig", "distutils", "setuptools", "pip",
    "ensurepip", "venv", "gc", "weakref", "codecs", "sqlite3", "_sqlite3", "dill",
    "cloudpickle", "joblib", "yaml", "shelve", "dbm", "zipfile", "tarfile", "ast",
    "builtins", "__builtin__", "exceptions", "_codecs", "copyreg", "copy_reg", "torch",
    NULL,
};

static const struct {
    const char *name;
    graft_dtype dtype;
} storages[] = {
    {"DoubleStorage", GRAFT_FLOAT64},     {"FloatStorage", GRAFT_FLOAT32},
    {"HalfStorage", GRAFT_FLOAT16},       {"BFloat16Storage", GRAFT_BFLOAT16},
    {"LongStorage", GRAFT_INT64},         {"IntStorage", GRAFT_INT32},
    {"ShortStorage", GRAFT_INT16},        {"CharStorage", GRAFT_INT8},
    {"ByteStorage", GRAFT_UINT8},         {"BoolStorage", GRAFT_BOOL},
    {"ComplexFloatStorage", GRAFT_COMPLEX64}, {"ComplexDoubleStorage", GRAFT_COMPLEX128},
};

/* Quantized storages, with a dtype of their element size (for skipping and
 * copying their bytes; their tensors are listed as unsupported). */
static const struct {
    const char *name;
    graft_dtype dtype;
} quantized_storages[] = {
    {"QInt8Storage", GRAFT_INT8},         {"QUInt8Storage", GRAFT_UINT8},
    {"QInt32Storage", GRAFT_INT32},       {"QUInt4x2Storage", GRAFT_UINT8},
    {"QUInt2x4Storage", GRAFT_UINT8},
};

static const struct {
    const char *name;
    graft_dtype dtype;
} dtypes[] = {
    {"float16", GRAFT_FLOAT16},   {"half", GRAFT_FLOAT16},     {"bfloat16", GRAFT_BFLOAT16},
    {"float32", GRAFT_FLOAT32},   {"float", GRAFT_FLOAT32},    {"float64", GRAFT_FLOAT64},
    {"double", GRAFT_FLOAT64},    {"int8", GRAFT_INT8},        {"int16", GRAFT_INT16},
    {"short", GRAFT_INT16},       {"int32", GRAFT_INT32},      {"int", GRAFT_INT32},
    {"int64", GRAFT_INT64},       {"long", GRAFT_INT64},       {"uint8", GRAFT_UINT8},
    {"uint16", GRAFT_UINT16},     {"uint32", GRAFT_UINT32},    {"uint64", GRAFT_UINT64},
    {"bool", GRAFT_BOOL},         {"complex64", GRAFT_COMPLEX64}, {"cfloat", GRAFT_COMPLEX64},
    {"complex128", GRAFT_COMPLEX128}, {"cdouble", GRAFT_COMPLEX128},
    {"float8_e4m3fn", GRAFT_FLOAT8_E4M3FN}, {"float8_e5m2", GRAFT_FLOAT8_E5M2},
};

static const char *const other_dtypes[] = {
    "float8_e5m2", "float8_e4m3fn", "float8_e5m2fnuz", "float8_e4m3fnuz", "float8_e8m0fnu",
    "float4_e2m1fn_x2", "complex32", "chalf", "qint8", "quint8", "qint32", "quint4x2",
    "quint2x4", "bits8", "bits16", "bits1x8", "bits2x4", "bits4x2", "uint1", "uint2", "uint3",
    "uint4", "uint5", "uint6", "uint7", "int1", "int2", "int3", "int4", "int5", "int6", "int7",
    NULL,
};

static const char *const torch_misc[] = {
    "Size", "device", "strided", "sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr",
    "sparse_bsc", "_mkldnn", "per_tensor_affine", "per_tensor_symmetric",
    "per_channel_affine", "per_channel_symmetric", "per_channel_affine_float_qparams",
    "contiguous_format", "channels_last", "channels_last_3d", "preserve_format", NULL,
};

static const char *const other_rebuilds[] = {
    "_rebuild_qtensor", "_rebuild_sparse_tensor", "_rebuild_sparse_csr_tensor",
    "_rebuild_meta_tensor_no_storage", "_rebuild_nested_tensor", "_rebuild_wrapper_subclass",
    "_rebuild_device_tensor_from_numpy", "_rebuild_device_tensor_from_cpu_tensor",
    "_rebuild_xla_tensor", "_rebuild_mlc_tensor", NULL,
};

static const char *const safe_builtins[] = {
    "set", "frozenset", "bytearray", "complex", "bytes", "slice", "object", "list", "dict",
    "tuple", "int", "float", "str", "bool", "range", NULL,
};

/* Names of module torch that read or write files, even in a whole model. */
static const char *const torch_io[] = {"load", "save", "from_file", "compile", NULL};

/* Modules (and their submodules) of whole-model attributes: functions,
 * hooks, quantization classes. */
static const char *const foreign_modules[] = {
    "torch.nn", "torch.ao", "torch.quantization", "torch._C._nn", "torch.utils.hooks", NULL,
};

static bool in(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0) return true;
    return false;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool denied_module(const char *module)
{
    size_t n = strcspn(module, ".");
    for (const char *const *d = deny_modules; *d; d++)
        if (strlen(*d) == n && strncmp(*d, module, n) == 0) return true;
    return false;
}

/* Globals of torch (and torch.cuda) proper. */
static int classify_torch(const char *name, graft_dtype *dt, bool cuda)
{
    for (size_t i = 0; i < sizeof storages / sizeof *storages; i++)
        if (strcmp(storages[i].name, name) == 0) {
            *dt = storages[i].dtype;
            return PKG_STORAGE;
        }
    for (size_t i = 0; i < sizeof quantized_storages / sizeof *quantized_storages; i++)
        if (strcmp(quantized_storages[i].name, name) == 0) {
            *dt = quantized_storages[i].dtype;
            return PKG_STORAGE_QUANTIZED;
        }
    if (ends_with(name, "Tensor") && strcmp(name, "Tensor") != 0 && name[0] != '_')
        return PKG_TENSOR; /* torch.FloatTensor, torch.cuda.LongTensor */
    if (cuda) return -1;
    if (strcmp(name, "Tensor") == 0) return PKG_TENSOR;
    if (strcmp(name, "UntypedStorage") == 0) return PKG_UNTYPED_STORAGE;
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (strcmp(dtypes[i].name, name) == 0) {
            *dt = dtypes[i].dtype;
            return PKG_DTYPE;
        }
    if (in(other_dtypes, name)) return PKG_DTYPE_OTHER;
    if (in(torch_misc, name)) return PKG_TORCH_OTHER;
    /* torch.relu, torch.ScriptObject...: attributes of a whole model */
    return name[0] == '_' || in(torch_io, name) ? -1 : PKG_FOREIGN;
}

static bool foreign_module(const char *module)
{
    for (const char *const *p = foreign_modules; *p; p++) {
        size_t k = strlen(*p);
        if (strncmp(module, *p, k) == 0 && (module[k] == '\0' || module[k] == '.')) return true;
    }
    return false;
}

int graft_pickle__classify(const char *module, const char *name, graft_dtype *dtype)
{
    *dtype = GRAFT_DTYPE_INVALID;
    /* Dunder or dotted names reach attributes of attributes (__globals__...). */
    if (strchr(name, '.') || (name[0] == '_' && name[1] == '_')) return -1;
    if (strcmp(module, "__builtin__") == 0 || strcmp(module, "builtins") == 0)
        return in(safe_builtins, name) ? PKG_BUILTIN
               : strcmp(name, "getattr") == 0 ? PKG_GETATTR : -1;
    if (strcmp(module, "collections") == 0) {
        if (strcmp(name, "OrderedDict") == 0) return PKG_ORDERED_DICT;
        if (strcmp(name, "Counter") == 0) return PKG_COUNTER;
        return PKG_OPAQUE; /* defaultdict, deque: never constructed */
    }
    if (strcmp(module, "functools") == 0)
        return strcmp(name, "partial") == 0 ? PKG_FOREIGN : -1; /* torchvision's norm_layer */
    if (strcmp(module, "_codecs") == 0)
        return strcmp(name, "encode") == 0 ? PKG_CODECS_ENCODE : -1;
    if (strcmp(module, "copy_reg") == 0 || strcmp(module, "copyreg") == 0)
        return strcmp(name, "_reconstructor") == 0 ? PKG_OPAQUE : -1;
    if (strcmp(module, "torch") == 0) return classify_torch(name, dtype, false);
    if (strcmp(module, "torch.cuda") == 0) return classify_torch(name, dtype, true);
    if (strcmp(module, "torch._utils") == 0) {
        if (strcmp(name, "_rebuild_tensor") == 0) return PKG_REBUILD_TENSOR;
        if (strcmp(name, "_rebuild_tensor_v2") == 0) return PKG_REBUILD_TENSOR_V2;
        if (strcmp(name, "_rebuild_tensor_v3") == 0) return PKG_REBUILD_TENSOR_V3;
        if (strcmp(name, "_rebuild_parameter") == 0) return PKG_REBUILD_PARAMETER;
        if (strcmp(name, "_rebuild_parameter_with_state") == 0)
            return PKG_REBUILD_PARAMETER_STATE;
        return in(other_rebuilds, name) ? PKG_REBUILD_OTHER : -1;
    }
    if (strcmp(module, "torch._tensor") == 0)
        return strcmp(name, "_rebuild_from_type_v2") == 0 ? PKG_REBUILD_FROM_TYPE_V2 : -1;
    if (strcmp(module, "torch.storage") == 0)
        return strcmp(name, "UntypedStorage") == 0 || strcmp(name, "TypedStorage") == 0
                   ? PKG_UNTYPED_STORAGE : -1;
    if (strcmp(module, "torch.nn.parameter") == 0)
        return strcmp(name, "Parameter") == 0 ? PKG_PARAMETER : PKG_FOREIGN; /* lazy ones */
    if (strcmp(module, "torch.serialization") == 0)
        return strcmp(name, "_get_layout") == 0 ? PKG_TORCH_OTHER : -1;
    /* Module classes of whole-model saves: data, never constructed here. */
    if (strncmp(module, "torch.nn.modules.", 17) == 0) return PKG_OPAQUE;
    if (foreign_module(module)) return PKG_FOREIGN;
    if (strcmp(module, "torch._C") == 0)
        return strcmp(name, "_VariableFunctionsClass") == 0 ? PKG_FOREIGN : -1;
    if (denied_module(module)) return -1;
    return PKG_OPAQUE;
}
