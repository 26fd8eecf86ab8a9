"""Loading libgraft.so with ctypes and declaring the C calls the package uses.

The library is looked for, in order: $GRAFT_LIBRARY (a path; when set, only
there), next to the installed package (the libdir meson installed it to,
found relative to this file, so a `meson install --destdir` staging root or a
moved prefix works), the configured libdir itself, then the dynamic loader's
search path (libgraft.so.0).
"""
import ctypes
import os
import threading

from ._errors import Error, PlanError

SONAME = "libgraft.so.0"
ABI_MAJOR = 0  # GRAFT_VERSION_MAJOR these declarations were written for

c_char_p = ctypes.c_char_p
c_void_p = ctypes.c_void_p
c_int = ctypes.c_int
c_bool = ctypes.c_bool
c_size_t = ctypes.c_size_t
c_uint = ctypes.c_uint
c_uint32 = ctypes.c_uint32
c_uint64 = ctypes.c_uint64
c_int64 = ctypes.c_int64
c_double = ctypes.c_double
P = ctypes.POINTER

PROGRESS_FN = ctypes.CFUNCTYPE(None, c_size_t, c_size_t, c_uint64, c_void_p)


class OpenOptions(ctypes.Structure):
    _fields_ = [("version", c_uint), ("format", c_char_p), ("select", c_char_p)]


class PlanOptions(ctypes.Structure):
    _fields_ = [("version", c_uint), ("reverse", c_bool), ("strict", c_bool),
                ("source_format", c_char_p), ("skeleton_format", c_char_p),
                ("select", c_char_p)]


class ApplyOptions(ctypes.Structure):
    _fields_ = [("version", c_uint), ("progress", PROGRESS_FN), ("payload", c_void_p),
                ("cancel", P(c_int)), ("manifest", c_char_p), ("rules_path", c_char_p)]


class ApplyStats(ctypes.Structure):
    _fields_ = [("tensors", c_size_t), ("transplanted", c_size_t), ("kept", c_size_t),
                ("bytes", c_uint64)]


class DiffResult(ctypes.Structure):
    _fields_ = [("numeric", c_bool), ("max_abs", c_double), ("equal", c_bool),
                ("numel", c_uint64), ("max_rel", c_double)]  # as graft.h's graft_diff_result


class Extras(ctypes.Structure):
    _fields_ = [("count", c_uint64), ("summary", ctypes.c_char * 200)]


class ConvertOptions(ctypes.Structure):
    _fields_ = [("version", c_uint), ("to", c_char_p), ("rules_path", c_char_p),
                ("select", c_char_p), ("source_format", c_char_p), ("meta", P(c_char_p)),
                ("nmeta", c_size_t), ("quantize", c_char_p), ("dequantize", c_bool),
                ("shard_size", c_uint64), ("strict", c_bool), ("manifest", c_char_p),
                ("progress", PROGRESS_FN), ("progress_payload", c_void_p)]


class ConvertResult(ctypes.Structure):
    _fields_ = [("tensors", c_size_t), ("ignored", c_size_t), ("quantized", c_size_t),
                ("dequantized", c_size_t), ("bytes", c_uint64), ("format", c_char_p),
                ("out_path", c_void_p), ("dropped", Extras)]


# name: (restype, argtypes); c_void_p stands for every opaque handle.
_PROTOS = {
    "graft_version": (c_char_p, []),
    "graft_version_number": (c_uint, []),
    "graft_dtype_name": (c_char_p, [c_int]),
    "graft_format_names": (P(c_char_p), []),
    "graft_ctx_new": (c_void_p, []),
    "graft_ctx_free": (None, [c_void_p]),
    "graft_ctx_message": (c_char_p, [c_void_p]),
    "graft_ctx_status": (c_int, [c_void_p]),
    "graft_ctx_clear": (None, [c_void_p]),
    "graft_ctx_set_sync": (None, [c_void_p, c_int]),
    "graft_free": (None, [c_void_p]),
    "graft_model_open": (c_int, [P(c_void_p), c_char_p, P(OpenOptions), c_void_p]),
    "graft_model_free": (None, [c_void_p]),
    "graft_model_format": (c_char_p, [c_void_p]),
    "graft_model_path": (c_char_p, [c_void_p]),
    "graft_model_count": (c_size_t, [c_void_p]),
    "graft_model_tensor": (c_void_p, [c_void_p, c_size_t]),
    "graft_model_find": (c_void_p, [c_void_p, c_char_p]),
    "graft_tensor_name": (c_char_p, [c_void_p]),
    "graft_tensor_dtype": (c_int, [c_void_p]),
    "graft_tensor_ndim": (c_uint32, [c_void_p]),
    "graft_tensor_shape": (P(c_int64), [c_void_p]),
    "graft_tensor_numel": (c_uint64, [c_void_p]),
    "graft_tensor_nbytes": (c_uint64, [c_void_p]),
    "graft_tensor_bytes": (c_int, [c_void_p, c_void_p, P(c_void_p), P(c_void_p), c_void_p]),
    "graft_tensor_view": (c_bool, [c_void_p, c_void_p, P(c_void_p), P(c_int64)]),
    "graft_tensor_encoding": (c_char_p, [c_void_p, c_void_p]),
    "graft_tensor_sha256": (c_int, [c_void_p, c_void_p, ctypes.c_char * 32, c_void_p]),
    "graft_sha256_hex": (None, [ctypes.c_char * 32, ctypes.c_char * 65]),
    "graft_rules_load": (c_int, [P(c_void_p), c_char_p, c_void_p]),
    "graft_rules_free": (None, [c_void_p]),
    "graft_plan_open": (c_int, [P(c_void_p), c_void_p, c_char_p, c_char_p, P(PlanOptions),
                                c_void_p]),
    "graft_plan_free": (None, [c_void_p]),
    "graft_plan_json": (c_int, [P(c_void_p), c_void_p, c_void_p]),
    "graft_plan_explain": (c_int, [P(c_void_p), c_void_p, c_char_p, c_void_p]),
    "graft_plan_errors": (c_size_t, [c_void_p]),
    "graft_plan_count": (c_size_t, [c_void_p]),
    "graft_plan_entry_status": (c_int, [c_void_p, c_size_t]),
    "graft_plan_entry_target": (c_void_p, [c_void_p, c_size_t]),
    "graft_plan_entry_nsources": (c_size_t, [c_void_p, c_size_t]),
    "graft_plan_entry_source": (c_void_p, [c_void_p, c_size_t, c_size_t]),
    "graft_plan_entry_message": (c_char_p, [c_void_p, c_size_t]),
    "graft_plan_entry_ignored": (c_bool, [c_void_p, c_size_t]),
    "graft_plan_unused_count": (c_size_t, [c_void_p]),
    "graft_plan_unused": (c_void_p, [c_void_p, c_size_t]),
    "graft_plan_problem_count": (c_size_t, [c_void_p]),
    "graft_plan_problem": (c_char_p, [c_void_p, c_size_t, P(c_bool)]),
    "graft_plan_diff": (c_int, [c_void_p, c_size_t, P(DiffResult), c_void_p]),
    "graft_default_output": (c_int, [P(c_void_p), c_char_p, c_void_p]),
    "graft_plan_apply": (c_int, [c_void_p, c_char_p, P(ApplyOptions), P(ApplyStats),
                                 c_void_p]),
    "graft_convert": (c_int, [c_char_p, c_char_p, P(ConvertOptions), P(ConvertResult),
                              c_void_p]),
    "graft_convert_result_free": (None, [P(ConvertResult)]),
}

GRAFT_ENOTFOUND = -2
GRAFT_ESHAPE = -6
GRAFT_EPLAN = -11
GRAFT_ECANCELED = -12


def _candidates():
    env = os.environ.get("GRAFT_LIBRARY")
    if env:
        return [env]
    found = []
    try:
        from . import _paths  # written by meson install (python/meson.build)
    except ImportError:
        _paths = None
    if _paths is not None:
        here = os.path.dirname(os.path.abspath(__file__))
        rel = os.path.relpath(_paths.LIBDIR, _paths.PACKAGE_DIR)
        found.append(os.path.normpath(os.path.join(here, rel, SONAME)))
        found.append(os.path.join(_paths.LIBDIR, SONAME))
    found.append(SONAME)
    return found


def _load():
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(f"{path}: no such file")
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append(str(e))
            continue
        major = lib.graft_version_number() // 10000
        if major != ABI_MAJOR:
            tried.append(f"{path}: libgraft {major}.x, this package needs {ABI_MAJOR}.x")
            continue
        for name, (res, args) in _PROTOS.items():
            fn = getattr(lib, name)
            fn.restype = res
            fn.argtypes = args
        return lib
    raise ImportError("graft: cannot load libgraft (set GRAFT_LIBRARY to its path): "
                      + "; ".join(tried))


lib = _load()


def enc(s):
    """A str / path-like / None argument as the bytes C wants."""
    if s is None:
        return None
    return os.fsencode(s)


def dec(b):
    return None if b is None else b.decode("utf-8", "surrogateescape")


class Ctx:
    """A graft_ctx for one call: `with Ctx() as ctx: ctx.check(lib.graft_x(..., ctx.p))`."""

    def __enter__(self):
        self.p = lib.graft_ctx_new()
        if not self.p:
            raise MemoryError("graft: out of memory")
        return self

    def __exit__(self, *exc):
        lib.graft_ctx_free(self.p)
        self.p = None

    def message(self):
        return dec(lib.graft_ctx_message(self.p))

    def error(self, rc, cls=Error, **extra):
        return cls(self.message(), rc, **extra)

    def check(self, rc):
        if rc < 0:
            raise self.error(rc)
        return rc


def take_text(ptr):
    """Text the library handed over (a char * to free): as str, freed."""
    try:
        return dec(ctypes.string_at(ptr.value))
    finally:
        lib.graft_free(ptr)


class Handle:
    """Owns one C object and frees it once, when the last Python reference
    (a model, its tensors, arrays over its memory) goes away.  Calls on the
    object are serialized: the library's objects are not locked, and ctypes
    releases the GIL around every call."""

    def __init__(self, ptr, free, keep=()):
        self.ptr = ptr
        self._free = free
        self.keep = keep  # objects the C object borrows from
        self.lock = threading.Lock()

    def __del__(self):
        if self.ptr:
            self._free(self.ptr)
            self.ptr = None
