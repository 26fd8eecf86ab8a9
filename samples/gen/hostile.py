#!/usr/bin/python3
"""Hostile and odd inputs of issue 18, made like the files the campaign found
(run with /usr/bin/python3).  Each function writes one file (or folder) under
`out` and returns its path; tests/interop/test_hostile.py runs graft on them
and, where a reference reader exists, checks that it agrees (numpy refuses a
bad CRC; torch reads a whole-model pickle).  Run as a script to write them
all into a folder given as the only argument.
"""
import io
import os
import struct
import sys
import zipfile
import zlib

import numpy as np


def _npz_bytes(arrays):
    """np.savez's bytes (stored members)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return bytearray(buf.getvalue())


def _central(data):
    """(offset of the central directory, entry count, end-record offset)."""
    end = data.rfind(b"PK\x05\x06")
    count = struct.unpack_from("<H", data, end + 10)[0]
    cd_off = struct.unpack_from("<I", data, end + 16)[0]
    return cd_off, count, end


def npz_bad_crc(out):
    """Item 9: an npz whose stored member's data no longer matches its CRC-32
    (one byte of the array flipped, directory untouched)."""
    data = _npz_bytes({"w": np.arange(64, dtype="<f4")})
    data[-200] ^= 0x01  # inside the member's data (the directory is ~150 bytes)
    path = os.path.join(out, "bad_crc.npz")
    open(path, "wb").write(data)
    return path


def npz_shared_local_header(out):
    """Item 10: two central-directory entries with one name over one local header
    (numpy reads the array once; graft refuses the name twice)."""
    data = _npz_bytes({"w": np.arange(4, dtype="<f4")})
    cd_off, count, end = _central(data)
    entry = bytes(data[cd_off:end])  # the single entry
    new = data[:cd_off] + entry + entry
    tail = bytearray(data[end:])
    struct.pack_into("<HHI", tail, 8, 2, 2, 2 * len(entry))  # entries on disk, total, size
    path = os.path.join(out, "shared_header.npz")
    open(path, "wb").write(bytes(new) + bytes(tail))
    return path


def npz_name_mismatch(out):
    """Item 10: a central-directory name that differs from its local header's."""
    data = _npz_bytes({"w": np.arange(4, dtype="<f4")})
    cd_off, _, _ = _central(data)
    at = data.index(b"w.npy", cd_off)
    data[at:at + 5] = b"v.npy"
    path = os.path.join(out, "name_mismatch.npz")
    open(path, "wb").write(data)
    return path


def torch_bad_crc(out):
    """Item 9: torch.save's zip with one stored storage record's byte flipped."""
    import torch
    buf = io.BytesIO()
    torch.save({"w": torch.arange(64, dtype=torch.float32)}, buf)
    data = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        rec = next(i for i in z.infolist() if i.filename.endswith("/data/0"))
    nlen, xlen = struct.unpack_from("<HH", data, rec.header_offset + 26)
    data[rec.header_offset + 30 + nlen + xlen + 9] ^= 0x40
    path = os.path.join(out, "bad_crc.pt")
    open(path, "wb").write(data)
    return path


def torch_huge_frame(out):
    """Item 11: torch.save's zip whose data.pkl starts with a FRAME of 2^62 bytes
    (CRC kept right, so only the pickle is wrong)."""
    import torch
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    path = os.path.join(out, "huge_frame.pt")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for info in src.infolist():
            body = src.read(info)
            if info.filename.endswith("/data.pkl"):
                # protocol 2 has no frame: PROTO 2, then FRAME 2^62 in front
                body = body[:2] + b"\x95" + struct.pack("<Q", 1 << 62) + body[2:]
            z.writestr(info.filename, body)
    return path


def _keras(path, extra=()):
    """A minimal Keras 3 archive (metadata, config, weights of one Dense layer)
    with `extra` (name, bytes) members appended as they are."""
    import h5py
    h5 = io.BytesIO()
    with h5py.File(h5, "w") as f:
        f.create_dataset("layers/dense/vars/0", data=np.arange(6, dtype="<f4").reshape(2, 3))
        f.create_dataset("layers/dense/vars/1", data=np.zeros(3, "<f4"))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("metadata.json", '{"keras_version": "3.3.3"}')
        z.writestr("config.json", '{"class_name": "Sequential", "config": {"layers": []}}')
        z.writestr("model.weights.h5", h5.getvalue())
        for name, body in extra:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # zipfile warns about the duplicate
                z.writestr(name, body)
    return path


def keras_dotdot_member(out):
    """Item 18: a .keras skeleton with a member named ../../evil.txt."""
    return _keras(os.path.join(out, "dotdot.keras"), [("../../evil.txt", b"owned\n")])


def keras_duplicate_weights(out):
    """Item 18: a .keras skeleton with model.weights.h5 twice."""
    return _keras(os.path.join(out, "dup.keras"), [("model.weights.h5", b"not hdf5")])


def onnx_constants(out, name="constants.onnx", values=None):
    """Item 1: Constant nodes in every attribute form (value_int, value_float,
    value_ints, value_floats, value_string, value_strings) beside a `value`
    tensor, as the ONNX backend suite's window-function models hold
    (`..._IsPeriodic` is a value_int)."""
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h
    v = values or {"c_int": -7, "c_float": 2.5, "c_ints": [1, -2, 300000000000],
                   "c_floats": [0.5, -1.25], "c_str": "hi", "c_strs": ["a", "bcd"],
                   "c_t": [1.0, 2.0]}
    nodes = [h.make_node("Constant", [], ["c_int"], value_int=v["c_int"]),
             h.make_node("Constant", [], ["c_float"], value_float=v["c_float"]),
             h.make_node("Constant", [], ["c_ints"], value_ints=v["c_ints"]),
             h.make_node("Constant", [], ["c_floats"], value_floats=v["c_floats"]),
             h.make_node("Constant", [], ["c_str"], value_string=v["c_str"]),
             h.make_node("Constant", [], ["c_strs"], value_strings=v["c_strs"]),
             h.make_node("Constant", [], ["c_t"], value=h.make_tensor("v", T.FLOAT, [2], v["c_t"]))]
    outs = [("c_int", T.INT64, []), ("c_float", T.FLOAT, []), ("c_ints", T.INT64, [3]),
            ("c_floats", T.FLOAT, [2]), ("c_str", T.STRING, []), ("c_strs", T.STRING, [2]),
            ("c_t", T.FLOAT, [2])]
    g = h.make_graph(nodes, "constants", [], [h.make_tensor_value_info(*o) for o in outs])
    path = os.path.join(out, name)
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), path)
    return path


def onnx_tensor_pb(out):
    """Item 2: an ONNX TensorProto .pb (as the ONNX backend suite's
    test_data_set_*/input_0.pb), first byte 0x08 (dims)."""
    from onnx import numpy_helper
    path = os.path.join(out, "input_0.pb")
    t = numpy_helper.from_array(np.arange(6, dtype="<f4").reshape(2, 3), "x")
    open(path, "wb").write(t.SerializeToString())
    return path


def savedmodel_text_pb(out):
    """Item 2: a SavedModel folder whose saved_model.pb is a 6-byte text file."""
    path = os.path.join(out, "text_savedmodel")
    os.makedirs(os.path.join(path, "variables"), exist_ok=True)
    open(os.path.join(path, "saved_model.pb"), "wb").write(b"hello\n")
    return path


def onnx_no_weights(out):
    """Item 2: a valid ONNX model with no initializers and no Constants."""
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h
    x = h.make_tensor_value_info("x", T.FLOAT, [2])
    y = h.make_tensor_value_info("y", T.FLOAT, [2])
    g = h.make_graph([h.make_node("Relu", ["x"], ["y"])], "empty", [x], [y])
    path = os.path.join(out, "no_weights.onnx")
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), path)
    return path


def _pb_varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _pb_len(num, body):
    return _pb_varint(num << 3 | 2) + _pb_varint(len(body)) + body


def _pb_int(num, v):
    return _pb_varint(num << 3) + _pb_varint(v)


def graphdef_huge_variable(out, elements=1 << 40):
    """Item 7: a ~100-byte GraphDef whose VariableV2 declares 2^40 float32
    elements, read by an Identity (freezing it would mean 4 TiB of zeros)."""
    shape = _pb_len(7, _pb_len(2, _pb_int(1, elements)))           # AttrValue.shape
    attrs = (_pb_len(5, _pb_len(1, b"dtype") + _pb_len(2, _pb_int(6, 1))) +
             _pb_len(5, _pb_len(1, b"shape") + _pb_len(2, shape)))
    var = _pb_len(1, b"v") + _pb_len(2, b"VariableV2") + attrs
    ident = (_pb_len(1, b"out") + _pb_len(2, b"Identity") + _pb_len(3, b"v") +
             _pb_len(5, _pb_len(1, b"T") + _pb_len(2, _pb_int(6, 1))))
    path = os.path.join(out, "huge_variable.pb")
    open(path, "wb").write(_pb_len(1, var) + _pb_len(1, ident))
    return path


def graphdef_broadcast_const(out, elements, name="broadcast.pb"):
    """Item 7: a GraphDef whose Const holds one float_val (1.5) for `elements`
    elements, which TensorFlow broadcasts (the last value repeats)."""
    tensor = _pb_int(1, 1) + _pb_len(2, _pb_len(2, _pb_int(1, elements))) + \
        _pb_len(5, struct.pack("<f", 1.5))
    attrs = (_pb_len(5, _pb_len(1, b"dtype") + _pb_len(2, _pb_int(6, 1))) +
             _pb_len(5, _pb_len(1, b"value") + _pb_len(2, _pb_len(8, tensor))))
    path = os.path.join(out, name)
    open(path, "wb").write(_pb_len(1, _pb_len(1, b"c") + _pb_len(2, b"Const") + attrs))
    return path


def keras_h5_shared_weight_names(out, name="hgq.h5", scale=1.0):
    """Item 13: a Keras 2 HDF5 weights file whose quantizer layers (as HGQ /
    QKeras write them) each list keep_negative:0, bits:0 and integers:0;
    the dense layer's kernel:0 / bias:0 are unique."""
    import h5py
    path = os.path.join(out, name)
    layers = {"q_in": ["keep_negative:0", "bits:0", "integers:0"],
              "dense": ["dense/kernel:0", "dense/bias:0"],
              "q_out": ["keep_negative:0", "bits:0", "integers:0"]}
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.13.1"
        for i, (layer, weights) in enumerate(layers.items()):
            g = f.create_group(layer)
            g.attrs["weight_names"] = np.array([w.encode() for w in weights])
            for j, w in enumerate(weights):
                g.create_dataset(w, data=np.full((2, 3), scale * (10 * i + j), "<f4"))
    return path


def npz_big_deflated(out):
    """Item 8: an np.savez_compressed member of 128 MiB (a ramp, so it is
    not all zeros) that compresses to a few MiB."""
    a = np.tile(np.arange(1024, dtype="<f4"), 32 * 1024).reshape(32, 1024, 1024)
    path = os.path.join(out, "big_deflated.npz")
    np.savez_compressed(path, w=a)
    return path


def npz_scipy_sparse(out, name="sparse.npz", data=(1.0, 2.0, 3.0)):
    """Item 15: what scipy.sparse.save_npz writes for a 2x3 CSR matrix (its
    arrays_dict, np.savez_compressed): a byte-string 'format' member (|S3)
    among int32/int64/float32 arrays.  Built here with NumPy alone."""
    arrays = dict(indices=np.array([0, 2, 1], "<i4"), indptr=np.array([0, 2, 3], "<i4"))
    arrays.update(format=b"csr", shape=(2, 3), data=np.array(data, "<f4"))
    path = os.path.join(out, name)
    np.savez_compressed(path, **arrays)
    return path


class _Boom:
    """An object whose unpickling would create a file (numpy allow_pickle)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def npz_mixed(out, marker, name="mixed.npz", w=(1.0, 2.0, 3.0)):
    """Item 15: one float tensor beside a string tensor, an object array
    whose pickle would create `marker` if run, and a structured array."""
    path = os.path.join(out, name)
    obj = np.empty(1, dtype=object)
    obj[0] = _Boom(marker)
    np.savez(path, w=np.array(w, "<f4"), names=np.array(["ab", "cde"]), obj=obj,
             rec=np.zeros(2, dtype=[("x", "<f4"), ("y", "<i2", (2,))]))
    return path


def torch_unreadable(out, legacy=False, seed=0, name=None):
    """Item 15: a torch state dict with a per-tensor and a per-channel
    quantized tensor and a sparse one between float tensors (needs torch)."""
    import torch  # noqa: PLC0415
    g = torch.Generator().manual_seed(seed)
    sd = {"w": torch.randn(2, 3, generator=g),
          "q": torch.quantize_per_tensor(torch.randn(4, generator=g), 0.1, 0, torch.qint8),
          "qc": torch.quantize_per_channel(torch.randn(2, 3, generator=g),
                                           torch.tensor([0.1, 0.2], dtype=torch.float64),
                                           torch.tensor([0, 1]), 0, torch.quint8),
          "s": torch.randn(3, 3, generator=g).relu().to_sparse(),
          "b": torch.randn(2, generator=g)}
    path = os.path.join(out, name or f"unreadable{'_legacy' if legacy else ''}.pt")
    torch.save(sd, path, _use_new_zipfile_serialization=not legacy)
    return path


def keras_h5_strings(out, name="strings.h5", kernel=1.0, numeric_vocab=False):
    """Item 15: a Keras 2 HDF5 weights file whose layer lists, beside its
    kernel and bias, a fixed-length string, a variable-length string and a
    compound dataset among its weights (needs h5py)."""
    import h5py  # noqa: PLC0415
    path = os.path.join(out, name)
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.11.0"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["layer_names"] = [b"dense"]
        g = f.create_group("dense")
        g.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0", b"dense/vocab:0",
                                   b"dense/notes:0", b"dense/pairs:0"]
        d = g.create_group("dense")
        d["kernel:0"] = np.full((2, 3), kernel, "<f4")
        d["bias:0"] = np.arange(3, dtype="<f4")
        d["vocab:0"] = np.zeros(2, "<f4") if numeric_vocab else np.array([b"ab", b"cde"])
        d.create_dataset("notes:0", data=["x", "yz"], dtype=h5py.string_dtype())
        d["pairs:0"] = np.zeros(2, dtype=[("a", "<f4"), ("b", "<i2")])
    return path


def npy_unicode(out):
    """Item 15: a .npy holding one unicode string array."""
    path = os.path.join(out, "words.npy")
    np.save(path, np.array(["hello", "x"]))
    return path


def torch_big_deflated(out):
    """Item 8: torch.save's zip with its 128 MiB storage record deflated (a
    ramp, so it compresses to a few MiB), as zipfile writes it."""
    import torch
    buf = io.BytesIO()
    torch.save({"w": torch.arange(1024, dtype=torch.float32).repeat(32 * 1024)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    path = os.path.join(out, "big_deflated.pt")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            z.writestr(info.filename, src.read(info))
    return path


def npy_big_be(out):
    """Item 8: a 128 MiB big-endian .npy (a view graft must byte-swap to hash)."""
    a = np.arange(1 << 25, dtype=">f4").reshape(8192, 4096)
    path = os.path.join(out, "big_be.npy")
    np.save(path, a)
    return path


def torch_big_permuted(out):
    """Item 8: a 128 MiB torch tensor saved as a permuted view (strides
    (1, 1024*512, 1024)): each row graft hashes is spread over the storage."""
    import torch
    t = torch.arange(1 << 25, dtype=torch.float32).reshape(64, 512, 1024).permute(2, 0, 1)
    path = os.path.join(out, "big_permuted.pt")
    torch.save({"w": t}, path)
    return path


def npy_big_fortran(out):
    """Item 8: a 128 MiB Fortran-order big-endian .npy (a transposed,
    byte-swapped view)."""
    a = np.asfortranarray(np.arange(1 << 25, dtype=">f4").reshape(8192, 4096))
    path = os.path.join(out, "big_fortran.npy")
    np.save(path, a)
    return path


def onnx_big_typed(out, dtype="float"):
    """Item 8: an ONNX initializer of 2^25 elements in its typed field, not
    raw_data: float_data (128 MiB of float32) or, for float16, int32_data
    (varints of the bit patterns), as onnx.helper.make_tensor writes them."""
    import onnx
    from onnx import TensorProto, helper
    vals = (np.arange(1 << 25) % 1000).astype("<f4") * 0.25
    kind = {"float": TensorProto.FLOAT, "float16": TensorProto.FLOAT16}[dtype]
    if dtype == "float16":
        vals = vals.astype("<f2")
    t = helper.make_tensor("w", kind, [8192, 4096], vals, raw=False)
    g = helper.make_graph([], "g", [], [helper.make_tensor_value_info("w", kind, [8192, 4096])],
                          [t])
    path = os.path.join(out, f"big_typed_{dtype}.onnx")
    onnx.save(helper.make_model(g), path)
    return path


def tf_v1_big(out):
    """Item 8: a TF V1 checkpoint (SavedTensorSlices table, as
    tf.compat.v1.train.Saver wrote them) with two 64 MiB float32 tensors,
    'f' in packed float_val and 'c' in tensor_content; returns the path and
    the arrays."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from tf_fuzz_seeds import field
    from tf_v1_fuzz_corpus import ckpt, record, tmeta
    rng = np.random.default_rng(3)
    f = rng.standard_normal(1 << 24).astype("<f4")
    c = rng.standard_normal(1 << 24).astype("<f4")
    data = ckpt([tmeta(b"f", 1, [4096, 4096]), tmeta(b"c", 1, [4096, 4096])],
                [(b"f", record(b"f", field(5, 2, f.tobytes()))),
                 (b"c", record(b"c", field(4, 2, c.tobytes())))])
    path = os.path.join(out, "big_v1.ckpt")
    with open(path, "wb") as fh:
        fh.write(data)
    return path, {"f": f.reshape(4096, 4096), "c": c.reshape(4096, 4096)}


def keras_h5_big_chunked(out):
    """Item 12: a Keras 2 HDF5 file whose 128 MiB kernel is stored in gzip
    chunks of 64 rows, as h5py writes it; random values, so the file is as
    large as the data.  libhdf5 reads it in a child, which must stream it in
    bounded slabs and let the chunks it has read go."""
    import h5py
    a = np.random.default_rng(0).standard_normal(1 << 25, dtype=np.float32)
    path = os.path.join(out, "big_chunked.h5")
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense"])
        g = f.create_group("dense")
        g.attrs["weight_names"] = np.array([b"dense/kernel:0"])
        g.create_dataset("dense/kernel:0", data=a.reshape(8192, 4096), chunks=(64, 4096),
                         compression="gzip", compression_opts=1)
    return path


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, fn in list(globals().items()):
        if callable(fn) and fn.__module__ == __name__ and name != "main" and not name.startswith("_"):
            print(fn(out, os.path.join(out, "marker")) if name == "npz_mixed" else fn(out))


if __name__ == "__main__":
    main()
