"""graft.open: a model file's tensors, as NumPy arrays over the mapped file."""
import ctypes

from ._errors import Error
from ._lib import Ctx, Handle, OpenOptions, c_int64, c_void_p, dec, enc, lib

# graft dtype -> NumPy type string; bfloat16 and float8 are their raw bits.
NUMPY_TYPES = {
    "float16": "<f2", "bfloat16": "<u2", "float32": "<f4", "float64": "<f8",
    "int8": "|i1", "int16": "<i2", "int32": "<i4", "int64": "<i8",
    "uint8": "|u1", "uint16": "<u2", "uint32": "<u4", "uint64": "<u8", "bool": "|b1",
    "complex64": "<c8", "complex128": "<c16",
    "float8_e4m3fn": "|u1", "float8_e5m2": "|u1",
}


def numpy_dtype(name):
    """The NumPy dtype np.asarray gives a tensor of graft dtype `name`:
    bfloat16 -> uint16 and float8_* -> uint8 (their bits; the tensor's .dtype
    keeps the real name)."""
    import numpy as np
    try:
        return np.dtype(NUMPY_TYPES[name])
    except KeyError:
        raise Error(f"dtype {name} has no NumPy equivalent", -3) from None


class _Memory:
    """NumPy's view of bytes graft holds: read-only memory in the mapped file
    (the model stays open while an array uses it) or a gathered copy, freed
    with graft_free when the last array over it goes."""

    def __init__(self, handle, address, shape, typestr, strides, owned):
        self.handle = handle
        self.owned = owned
        self.__array_interface__ = {
            "version": 3, "shape": shape, "typestr": typestr,
            "data": (address, True), "strides": strides,
        }

    def __del__(self):
        if self.owned:
            lib.graft_free(self.owned)
            self.owned = None


class Tensor:
    """One tensor of a model: .name, .dtype (graft's name: "float32",
    "bfloat16"...), .shape, .sha256(); np.asarray(t) gives its values."""

    __slots__ = ("_h", "_t", "name", "dtype", "shape")

    def __init__(self, handle, ptr):
        self._h = handle
        self._t = ptr
        self.name = dec(lib.graft_tensor_name(ptr))
        self.dtype = dec(lib.graft_dtype_name(lib.graft_tensor_dtype(ptr)))
        nd = lib.graft_tensor_ndim(ptr)
        dims = lib.graft_tensor_shape(ptr)
        self.shape = tuple(dims[i] for i in range(nd))

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        """Elements (1 for a scalar)."""
        return lib.graft_tensor_numel(self._t)

    @property
    def nbytes(self):
        return lib.graft_tensor_nbytes(self._t)

    @property
    def encoding(self):
        """How the bytes encode values when they are not plain elements
        (GGUF blocks), else None."""
        return dec(lib.graft_tensor_encoding(self._h.ptr, self._t))

    def sha256(self):
        """SHA-256 (hex) of the row-major little-endian element bytes, as
        `graft ls --sha256` prints it."""
        digest = (ctypes.c_char * 32)()
        text = (ctypes.c_char * 65)()
        with self._h.lock, Ctx() as ctx:
            ctx.check(lib.graft_tensor_sha256(self._h.ptr, self._t, digest, ctx.p))
        lib.graft_sha256_hex(digest, text)
        return text.value.decode()

    def numpy(self):
        """The values as a read-only NumPy array: a view of the mapped file
        when it stores them as plain little-endian elements (any strides), a
        copy otherwise (compressed, decoded or big-endian records).
        np.array(t) gives a writable copy."""
        import numpy as np
        dt = numpy_dtype(self.dtype)
        if self.size == 0:
            a = np.empty(self.shape, dt)
            a.flags.writeable = False
            return a
        data = c_void_p()
        strides = (c_int64 * max(1, len(self.shape)))()
        with self._h.lock:
            viewed = lib.graft_tensor_view(self._h.ptr, self._t, ctypes.byref(data), strides)
        if viewed:
            mem = _Memory(self._h, data.value, self.shape, dt.str,
                          tuple(strides[i] for i in range(len(self.shape))), None)
            return np.asarray(mem)
        out, owned = c_void_p(), c_void_p()
        with self._h.lock, Ctx() as ctx:
            ctx.check(lib.graft_tensor_bytes(self._h.ptr, self._t, ctypes.byref(out),
                                             ctypes.byref(owned), ctx.p))
        mem = _Memory(self._h if not owned.value else None, out.value, self.shape, dt.str,
                      None, owned.value)
        return np.asarray(mem)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        if dtype is not None:
            a = a.astype(dtype, copy=False)
        return a.copy() if copy else a

    def __repr__(self):
        return f"<graft.Tensor {self.name!r} {self.dtype} {list(self.shape)}>"


class Model:
    """The tensors of a model file, in file order: iterate over it for
    Tensor objects, index it by name (m["fc.weight"]), len(m), "x" in m.
    Arrays taken from it keep the file mapped after the model is gone."""

    def __init__(self, path, format=None, select=None):
        opts = OpenOptions(1, enc(format), enc(select))
        ptr = c_void_p()
        with Ctx() as ctx:
            ctx.check(lib.graft_model_open(ctypes.byref(ptr), enc(path), ctypes.byref(opts),
                                           ctx.p))
        self._h = Handle(ptr.value, lib.graft_model_free)
        self.path = dec(lib.graft_model_path(self._h.ptr))
        self.format = dec(lib.graft_model_format(self._h.ptr))

    def __len__(self):
        return lib.graft_model_count(self._h.ptr)

    def __iter__(self):
        for i in range(len(self)):
            yield Tensor(self._h, lib.graft_model_tensor(self._h.ptr, i))

    def __getitem__(self, name):
        if isinstance(name, int):
            if not -len(self) <= name < len(self):
                raise IndexError(name)
            return Tensor(self._h, lib.graft_model_tensor(self._h.ptr, name % len(self)))
        t = lib.graft_model_find(self._h.ptr, enc(name))
        if not t:
            raise KeyError(name)
        return Tensor(self._h, t)

    def __contains__(self, name):
        return bool(lib.graft_model_find(self._h.ptr, enc(name)))

    def keys(self):
        """Tensor names in file order."""
        return [t.name for t in self]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __repr__(self):
        return f"<graft.Model {self.path!r} {self.format}, {len(self)} tensors>"


def open(path, format=None, select=None):  # noqa: A001 - graft.open is the API
    """Open a model file (or folder) read-only: `format` forces a format by
    name (graft.formats()), `select` keeps a dotted sub-tree of a nested
    checkpoint.  Nothing in the file is executed (pickles are parsed)."""
    return Model(path, format, select)
