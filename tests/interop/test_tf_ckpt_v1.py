"""TF V1 checkpoints (one SSTable of SavedTensorSlices) as a source.

The oracle is Python's protobuf (google.protobuf) with the messages of
tensorflow/core/util/saved_tensor_slice.proto, framework/tensor_slice.proto,
tensor.proto and tensor_shape.proto declared field for field below, plus the
table encoder of samples/gen/tf_fuzz_seeds.py.  It decodes the fixture
(a=0.5, b=2.0 per the fixture manifest) and writes further V1 files: typed
values of several dtypes, tensor_content, an explicit full slice; a V1 file
is then a transplant source into an npz skeleton, checked with NumPy.
Partial slices, missing records and value-count mismatches are refused.
Run with /usr/bin/python3.
"""
import glob
import json
import os
import struct
import subprocess
import sys

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

sys.path.insert(0, os.path.dirname(__file__))
import graftlib  # noqa: E402

sys.path.insert(0, os.path.join(graftlib.SOURCE_ROOT, "samples", "gen"))
from tf_fuzz_seeds import table  # noqa: E402

R = graftlib.Results()
F = descriptor_pb2.FieldDescriptorProto

# (message, [(name, number, type, label, type_name)])
MESSAGES = [
    ("TensorShapeProto.Dim", [("size", 1, F.TYPE_INT64, 1, None), ("name", 2, F.TYPE_STRING, 1, None)]),
    ("TensorShapeProto", [("dim", 2, F.TYPE_MESSAGE, 3, ".tensorflow.TensorShapeProto.Dim"),
                          ("unknown_rank", 3, F.TYPE_BOOL, 1, None)]),
    ("TensorProto", [("dtype", 1, F.TYPE_INT32, 1, None),
                     ("tensor_shape", 2, F.TYPE_MESSAGE, 1, ".tensorflow.TensorShapeProto"),
                     ("tensor_content", 4, F.TYPE_BYTES, 1, None),
                     ("float_val", 5, F.TYPE_FLOAT, 3, None), ("double_val", 6, F.TYPE_DOUBLE, 3, None),
                     ("int_val", 7, F.TYPE_INT32, 3, None), ("int64_val", 10, F.TYPE_INT64, 3, None),
                     ("bool_val", 11, F.TYPE_BOOL, 3, None)]),
    ("TensorSliceProto.Extent", [("start", 1, F.TYPE_INT64, 1, None), ("length", 2, F.TYPE_INT64, 1, None)]),
    ("TensorSliceProto", [("extent", 1, F.TYPE_MESSAGE, 3, ".tensorflow.TensorSliceProto.Extent")]),
    ("SavedSliceMeta", [("name", 1, F.TYPE_STRING, 1, None),
                        ("shape", 2, F.TYPE_MESSAGE, 1, ".tensorflow.TensorShapeProto"),
                        ("type", 3, F.TYPE_INT32, 1, None),
                        ("slice", 4, F.TYPE_MESSAGE, 3, ".tensorflow.TensorSliceProto")]),
    ("SavedTensorSliceMeta", [("tensor", 1, F.TYPE_MESSAGE, 3, ".tensorflow.SavedSliceMeta")]),
    ("SavedSlice", [("name", 1, F.TYPE_STRING, 1, None),
                    ("slice", 2, F.TYPE_MESSAGE, 1, ".tensorflow.TensorSliceProto"),
                    ("data", 3, F.TYPE_MESSAGE, 1, ".tensorflow.TensorProto")]),
    ("SavedTensorSlices", [("meta", 1, F.TYPE_MESSAGE, 1, ".tensorflow.SavedTensorSliceMeta"),
                           ("data", 2, F.TYPE_MESSAGE, 1, ".tensorflow.SavedSlice")]),
]


def classes():
    fd = descriptor_pb2.FileDescriptorProto(name="graft_v1_test.proto", package="tensorflow",
                                            syntax="proto3")
    made = {}
    for full, fields in sorted(MESSAGES, key=lambda m: m[0].count(".")):  # parents first
        parts = full.split(".")
        parent = made.get(parts[0]) if len(parts) > 1 else None
        msg = parent.nested_type.add(name=parts[-1]) if parent else fd.message_type.add(name=full)
        made[full] = msg
        for name, num, typ, label, tname in fields:
            f = msg.field.add(name=name, number=num, type=typ, label=label)
            if tname:
                f.type_name = tname
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    get = getattr(message_factory, "GetMessageClass", None)
    return {n: (get(pool.FindMessageTypeByName("tensorflow." + n)) if get else
                message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName("tensorflow." + n)))
            for n, _ in MESSAGES if "." not in n}


PB = classes()
DT = {np.float32: 1, np.float64: 2, np.int32: 3, np.int64: 9, np.bool_: 10}
NAMES = {1: "float32", 2: "float64", 3: "int32", 9: "int64", 10: "bool"}


def sstable_entries(data):
    """(key, value) pairs of an uncompressed table, read from its footer."""
    def varint_in(buf, p):
        v = s = 0
        while True:
            b = buf[p]
            v |= (b & 0x7F) << s
            p += 1
            s += 7
            if not b & 0x80:
                return v, p

    def entries(off, size):
        blk = data[off:off + size]
        assert data[off + size] == 0, "compressed block"
        nrest = struct.unpack_from("<I", blk, len(blk) - 4)[0]
        end, p, last, out = len(blk) - 4 - 4 * nrest, 0, b"", []
        while p < end:
            sh, p = varint_in(blk, p)
            un, p = varint_in(blk, p)
            vl, p = varint_in(blk, p)
            key = last[:sh] + blk[p:p + un]
            p += un
            out.append((key, blk[p:p + vl]))
            p += vl
            last = key
        return out

    foot = len(data) - 48
    _, p = varint_in(data, foot)
    _, p = varint_in(data, p)
    ioff, p = varint_in(data, p)
    isize, p = varint_in(data, p)
    out = []
    for _, handle in entries(ioff, isize):
        off, q = varint_in(handle, 0)
        size, _ = varint_in(handle, q)
        out += entries(off, size)
    return out


def values(tp, dtype, n):
    if tp.tensor_content:
        return np.frombuffer(tp.tensor_content, dtype)
    field = {np.float32: tp.float_val, np.float64: tp.double_val, np.int32: tp.int_val,
             np.int64: tp.int64_val, np.bool_: tp.bool_val}[dtype]
    return np.asarray(list(field), dtype)


def oracle(path):
    """name -> array, decoded with Python's protobuf."""
    ents = sstable_entries(open(path, "rb").read())
    assert ents[0][0] == b""
    meta = PB["SavedTensorSlices"].FromString(ents[0][1]).meta
    info = {t.name: (t.type, [d.size for d in t.shape.dim]) for t in meta.tensor}
    out = {}
    for _, v in ents[1:]:
        s = PB["SavedTensorSlices"].FromString(v).data
        tftype, shape = info[s.name]
        dtype = {v: k for k, v in DT.items()}[tftype]
        out[s.name] = values(s.data, dtype, int(np.prod(shape))).reshape(shape)
    return [(t.name, out[t.name]) for t in meta.tensor]


def v1_file(path, arrays, content=(), slices=None, drop=(), extra_values=()):
    """Write a V1 checkpoint of {name: array} (meta first, then data records)."""
    meta = PB["SavedTensorSlices"]()
    recs = []
    for name, a in arrays.items():
        t = meta.meta.tensor.add(name=name, type=DT[a.dtype.type])
        for d in a.shape:
            t.shape.dim.add(size=d)
        sl = t.slice.add()
        for i, d in enumerate(a.shape):
            e = sl.extent.add()
            if slices and name in slices:
                e.start, e.length = slices[name][i]
            elif i == 0 and a.ndim:
                e.start, e.length = 0, d  # an explicit whole extent
        if name in drop:
            continue
        rec = PB["SavedTensorSlices"]()
        rec.data.name = name
        rec.data.slice.CopyFrom(sl)
        if name in content:
            rec.data.data.tensor_content = a.tobytes()
        else:
            flat = list(a.reshape(-1).tolist()) + ([1] if name in extra_values else [])
            {np.float32: rec.data.data.float_val, np.float64: rec.data.data.double_val,
             np.int32: rec.data.data.int_val, np.int64: rec.data.data.int64_val,
             np.bool_: rec.data.data.bool_val}[a.dtype.type].extend(flat)
        # the key: any bytes ordered after "", as TensorFlow's ordered code is
        recs.append((b"\x00" + name.encode() + b"\x00\x01", rec.SerializeToString()))
    entries = [(b"", meta.SerializeToString())] + sorted(recs)
    with open(path, "wb") as f:
        f.write(table(entries))


def check_against_oracle(path):
    got = json.loads(graftlib.run("ls", "--json", path).stdout)
    want = oracle(path)
    assert [g["name"] for g in got] == [n for n, _ in want]
    for g, (n, a) in zip(got, want):
        assert g["dtype"] == NAMES[DT[a.dtype.type]], (g, a.dtype)
        assert g["shape"] == list(a.shape), (g, a.shape)
        assert g["sha256"] == graftlib.sha256_of_array(a), n
    return want


def fixture():
    path = glob.glob(os.path.join(graftlib.FIXTURES, "tf_ckpt_v1", "*", "export-00000-of-00001"))[0]
    want = dict(check_against_oracle(path))
    assert want["a"] == np.float32(0.5) and want["b"] == np.float32(2.0), want
    assert graftlib.run("ls", path).stdout.splitlines()[0].startswith("a\tfloat32")


RNG = np.random.default_rng(11)
ARRAYS = {"dense/kernel": RNG.standard_normal((3, 4), dtype=np.float32),
          "dense/bias": RNG.standard_normal(4, dtype=np.float32),
          "global_step": np.array(12345, np.int64),
          "table": RNG.integers(-99, 99, (2, 3)).astype(np.int32),
          "mask": np.array([True, False, True]),
          "scale": RNG.standard_normal((2, 2)).astype(np.float64)}


def written():
    path = R.path("model.ckpt")
    v1_file(path, ARRAYS, content=("dense/bias",))
    want = check_against_oracle(path)
    assert len(want) == len(ARRAYS)


def as_source():
    src = R.path("src.ckpt")
    v1_file(src, ARRAYS)
    skel = R.path("skel.npz")
    np.savez(skel, **{k.replace("/", "_"): np.zeros_like(v) for k, v in ARRAYS.items()})
    rules = R.path("v1.yaml")
    with open(rules, "w") as f:
        f.write("graft: 1\nname: v1 test\nrename:\n  source:\n    - {match: '/', to: '_'}\n")
    out = R.path("out.npz")
    graftlib.run("apply", "-r", rules, "-o", out, src, skel)
    got = np.load(out)
    for k, v in ARRAYS.items():
        assert np.array_equal(got[k.replace("/", "_")], v), k


def refused(name, what, kw):
    path = R.path(f"bad_{name}.ckpt")
    v1_file(path, ARRAYS, **kw)
    refused_file(path, what)


def refused_file(path, what):
    p = subprocess.run([graftlib.GRAFT, "ls", path], capture_output=True, text=True)
    assert p.returncode > 0, p.returncode
    line = p.stderr.strip()
    assert "\n" not in line and path in line and what in line, line


def main():
    R.check("fixture V1 checkpoint listed (protobuf oracle)", fixture)
    R.check("written V1 checkpoints listed", written)
    R.check("V1 checkpoint as a transplant source", as_source)
    R.check("partial slice refused", refused, "slice", "partial slice",
            {"slices": {"dense/kernel": [(0, 2), (0, 4)]}})
    R.check("missing data record refused", refused, "drop", "no data record", {"drop": ("dense/bias",)})
    R.check("value count mismatch refused", refused, "count", "values for", {"extra_values": ("table",)})
    folder = os.path.join(graftlib.SOURCE_ROOT, "samples", "corrupt", "tf_ckpt_v1")
    for ln in open(os.path.join(folder, "EXPECTED")).read().splitlines():
        name, what = ln.split("\t")
        R.check(f"refused: samples/corrupt/tf_ckpt_v1/{name}", refused_file,
                os.path.join(folder, name), what)


main()
R.close()
