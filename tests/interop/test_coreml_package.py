"""Core ML .mlpackage (ML Program, blob storage) as source and skeleton.

Packages are built with Python's protobuf from the real coremltools protos
(MIL.proto through Model.proto, compiled by protoc-c into a descriptor set)
and a weight.bin laid out as coremltools' MILBlob StorageFormat.hpp says
(64-byte storage_header, 64-byte blob_metadata with sentinel 0xDEADBEEF,
data 64-aligned).  The oracle reads the package back with protobuf and
struct: every blob-backed const is listed under its output name with its
dtype, shape and the sha256 of its blob; identity apply is byte-identical;
a PyTorch transplant changes exactly the blobs' data; weight.bin offsets
past its end and bad sentinels are refused with one line.
Run with /usr/bin/python3.
"""
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import graftlib  # noqa: E402
import test_coreml  # noqa: E402  (the Model class from the real protos)

R = graftlib.Results()
Model = test_coreml.Model
SPEC = "Data/com.apple.CoreML/model.mlmodel"
WEIGHTS = "Data/com.apple.CoreML/weights/weight.bin"
MIL_FLOAT16, MIL_FLOAT32, MIL_INT8 = 10, 11, 21
BLOB = {MIL_FLOAT16: (1, np.float16), MIL_FLOAT32: (2, np.float32), MIL_INT8: (4, np.int8)}
RNG = np.random.default_rng(9)


def align(n, a=64):
    return (n + a - 1) // a * a


def package(path, consts, bad=None):
    """consts: [(output name, MIL dtype, array)]; returns {name: (dtype, shape, bytes)}."""
    blobs = bytearray(64)
    offsets = []
    for _, dt, a in consts:
        meta = align(len(blobs))
        data = align(meta + 64)
        blobs += bytes(data - len(blobs))
        struct.pack_into("<IIQQQ", blobs, meta, 0xDEADBEEF, BLOB[dt][0], a.nbytes, data, 0)
        blobs += a.tobytes()
        offsets.append(meta)
    struct.pack_into("<II", blobs, 0, len(consts), 2)
    if bad == "sentinel":
        struct.pack_into("<I", blobs, offsets[0], 0x12345678)
    if bad == "data_past_end":
        struct.pack_into("<Q", blobs, offsets[0] + 16, len(blobs) - 4)
    m = Model()
    m.specificationVersion = 7
    prog = m.mlProgram
    prog.version = 1
    fn = prog.functions["main"]
    fn.opset = "CoreML6"
    block = fn.block_specializations["CoreML6"]
    for (name, dt, a), off in zip(consts, offsets):
        op = block.operations.add(type="const")
        out = op.outputs.add(name=name)
        out.type.tensorType.dataType = dt
        out.type.tensorType.rank = a.ndim
        for d in a.shape:
            out.type.tensorType.dimensions.add().constant.size = d
        val = op.attributes["val"]
        val.type.CopyFrom(out.type)
        val.blobFileValue.fileName = "@model_path/weights/weight.bin"
        val.blobFileValue.offset = off + (1 << 20 if bad == "meta_past_end" and off == offsets[0] else 0)
    small = block.operations.add(type="const")  # an immediate value: not listed
    small.outputs.add(name="eps").type.tensorType.dataType = MIL_FLOAT32
    small.attributes["val"].immediateValue.tensor.floats.values.append(1e-5)
    block.operations.add(type="conv").outputs.add(name="y")
    block.outputs.append("y")
    os.makedirs(os.path.join(path, os.path.dirname(WEIGHTS)))
    with open(os.path.join(path, SPEC), "wb") as f:
        f.write(m.SerializeToString())
    with open(os.path.join(path, WEIGHTS), "wb") as f:
        f.write(blobs)
    manifest = {"fileFormatVersion": "1.0.0", "rootModelIdentifier": "A",
                "itemInfoEntries": {"A": {"author": "com.apple.CoreML", "name": "model.mlmodel",
                                          "path": "com.apple.CoreML/model.mlmodel"},
                                    "B": {"author": "com.apple.CoreML", "name": "weights",
                                          "path": "com.apple.CoreML/weights"}}}
    with open(os.path.join(path, "Manifest.json"), "w") as f:
        json.dump(manifest, f)


def oracle(path):
    """name -> (dtype, shape, (data offset, size)), read with protobuf and struct."""
    m = Model.FromString(open(os.path.join(path, SPEC), "rb").read())
    w = open(os.path.join(path, WEIGHTS), "rb").read()
    out = {}
    for fn in m.mlProgram.functions.values():
        for block in fn.block_specializations.values():
            for op in block.operations:
                if op.type != "const" or not op.attributes["val"].HasField("blobFileValue"):
                    continue
                v = op.attributes["val"]
                sentinel, _, size, data, _ = struct.unpack_from("<IIQQQ", w, v.blobFileValue.offset)
                assert sentinel == 0xDEADBEEF
                tt = v.type.tensorType
                out[op.outputs[0].name] = (np.dtype(BLOB[tt.dataType][1]).name,
                                           [d.constant.size for d in tt.dimensions], (data, size))
    return out, w


CONSTS = [("conv1_weight", MIL_FLOAT32, RNG.standard_normal((8, 3, 3, 3)).astype(np.float32)),
          ("conv1_bias", MIL_FLOAT16, RNG.standard_normal(8).astype(np.float16)),
          ("fc_weight_q", MIL_INT8, RNG.integers(-128, 128, (10, 8), dtype=np.int8))]


def files(path):
    return {rel: open(os.path.join(path, rel), "rb").read()
            for rel in ("Manifest.json", SPEC, WEIGHTS)}


def listed_and_identity():
    path = R.path("model.mlpackage")
    package(path, CONSTS)
    want, w = oracle(path)
    got = json.loads(graftlib.run("ls", "--json", path).stdout)
    assert [g["name"] for g in got] == list(want), got
    for g in got:
        dt, shape, (off, size) = want[g["name"]]
        assert (g["dtype"], g["shape"]) == (dt, shape), g
        assert g["sha256"] == hashlib.sha256(w[off:off + size]).hexdigest(), g["name"]
    out = R.path("identity.mlpackage")
    graftlib.run("apply", "-o", out, path, path)
    assert files(out) == files(path), "identity apply changed the package"


RULES = """graft: 1
name: torch -> mlpackage test
rename:
  target:
    - {match: '_', to: '.'}
ignore:
  target: ['^fc_weight_q$']
policy: {missing: error, unused: error, mismatch: error}
"""


def transplant():
    path = R.path("skel.mlpackage")
    package(path, CONSTS)
    sd = {"conv1.weight": torch.randn(8, 3, 3, 3), "conv1.bias": torch.randn(8).half()}
    src = R.path("src.pth")
    torch.save(sd, src)
    rules = R.path("pkg.yaml")
    with open(rules, "w") as f:
        f.write(RULES)
    out = R.path("out.mlpackage")
    p = subprocess.run([graftlib.GRAFT, "apply", "-r", rules, "-o", out, src, path],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    before, after = files(path), files(out)
    assert before["Manifest.json"] == after["Manifest.json"] and before[SPEC] == after[SPEC]
    want, _ = oracle(path)
    new = {"conv1_weight": sd["conv1.weight"].numpy().tobytes(),
           "conv1_bias": sd["conv1.bias"].numpy().tobytes()}
    mask = bytearray(len(before[WEIGHTS]))
    for name, value in new.items():
        off, size = want[name][2]
        assert after[WEIGHTS][off:off + size] == value, name
        mask[off:off + size] = b"\1" * size
    assert len(after[WEIGHTS]) == len(before[WEIGHTS])
    for i, (a, b) in enumerate(zip(before[WEIGHTS], after[WEIGHTS])):
        assert mask[i] or a == b, f"weight.bin byte {i} outside the blobs changed"


def refused(bad, what):
    path = R.path(f"bad_{bad}.mlpackage")
    package(path, CONSTS, bad=bad)
    p = subprocess.run([graftlib.GRAFT, "ls", path], capture_output=True, text=True)
    assert p.returncode > 0, p.returncode
    line = p.stderr.strip()
    assert "\n" not in line and path in line and what in line, line


def main():
    R.check("listed (protobuf oracle) and identity apply", listed_and_identity)
    R.check("PyTorch transplant changes only the blobs", transplant)
    R.check("blob metadata past the end of weight.bin refused", refused, "meta_past_end",
            "past the end of the")
    R.check("blob data past the end of weight.bin refused", refused, "data_past_end",
            "past the end of the")
    R.check("bad sentinel refused", refused, "sentinel", "sentinel")


if __name__ == "__main__":
    main()
    shutil.rmtree(test_coreml.R.tmp, ignore_errors=True)
    R.close()
