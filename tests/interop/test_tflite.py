"""TFLite as source and skeleton, against an independent FlatBuffer reader.

The oracle is tflite_fb.py, a reader written in Python from TensorFlow's
schema.fbs (no TensorFlow runtime on the test machine reads .tflite).
- every fixture .tflite: `graft ls --json` equals the oracle's listing
  (names, dtypes, shapes, sha256 of the stored bytes, quantization);
- identity apply gives byte-identical files;
- float and int8 transplants from npz and PyTorch sources land in the right
  buffers, every other byte unchanged;
- a buffer shared by tensors that get different values is split: the file
  grows, the oracle (checking alignment) reads the new layout, and the
  skeleton's bytes before the appended part change only at the patched refs;
- offset/size (large-model) buffers, several subgraphs, name collisions;
- malformed files refused with one line naming the file and the problem.
Run with /usr/bin/python3.
"""
import glob
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import graftlib  # noqa: E402
import tflite_fb as fb  # noqa: E402

R = graftlib.Results()


def graft(*args):
    return subprocess.run([graftlib.GRAFT, *map(str, args)], capture_output=True, text=True)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def norm(entries):
    """Listing entries comparable across printers: scales as float32 values."""
    out = []
    for e in entries:
        e = {k: v for k, v in e.items()
             if k in ("name", "dtype", "shape", "sha256", "quant")}  # not the role/layout keys
        if "quant" in e:
            q = dict(e["quant"])
            q["scale"] = [f32(s) for s in q["scale"]]
            e["quant"] = q
        out.append(e)
    return out


def check_listing(path):
    data = open(path, "rb").read()
    want = norm(fb.listing(data))
    got = norm(json.loads(graftlib.run("ls", "--json", path).stdout))
    assert [g["name"] for g in got] == [w["name"] for w in want], \
        f"names {[g['name'] for g in got]} != {[w['name'] for w in want]}"
    for g, w in zip(got, want):
        assert g == w, f"{g} != {w}"
    assert want, "nothing listed"


def check_identity(path):
    out = R.path("identity_" + os.path.basename(os.path.dirname(path)) + ".tflite")
    p = graft("apply", "-o", out, path, path)
    assert p.returncode == 0, p.stderr
    assert open(out, "rb").read() == open(path, "rb").read(), "identity apply changed bytes"


HELDOUT = sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "tflite",
                                      "*.tflite")))
FIXTURES = sorted(glob.glob(os.path.join(graftlib.FIXTURES, "tflite", "*", "*.tflite")))

# ---- a small skeleton: conv (OHWI), depthwise-free, fc (out, in) ----------

RNG = np.random.default_rng(7)


def conv_model(int8=False, share_bias=False, external=()):
    """conv1 [8,3,3,3] OHWI + bias [8], fc [10,8] + bias [10], an input."""
    if int8:
        w1 = RNG.integers(-127, 128, (8, 3, 3, 3), dtype=np.int8)
        w2 = RNG.integers(-127, 128, (10, 8), dtype=np.int8)
        b1 = RNG.integers(-1000, 1000, 8, dtype=np.int32)
        b2 = RNG.integers(-1000, 1000, 10, dtype=np.int32)
        wt, bt = "int8", "int32"
        q1 = {"scale": [0.01 * (i + 1) for i in range(8)], "zero_point": [0] * 8, "axis": 0}
        q2 = {"scale": [0.02], "zero_point": [0], "axis": 0}
    else:
        w1 = RNG.standard_normal((8, 3, 3, 3), dtype=np.float32)
        w2 = RNG.standard_normal((10, 8), dtype=np.float32)
        b1 = np.zeros(8, np.float32)
        b2 = np.zeros(10, np.float32)
        wt = bt = "float32"
        q1 = q2 = None
    bufs = [b"", w1.tobytes(), b1.tobytes(), w2.tobytes(), b2.tobytes(), b"\x01\x02\x03"]
    tensors = [
        {"name": "input", "type": "float32", "shape": [1, 8, 8, 3], "buffer": 0},
        {"name": "conv1/kernel", "type": wt, "shape": [8, 3, 3, 3], "buffer": 1, "quant": q1},
        {"name": "conv1/bias", "type": bt, "shape": [8], "buffer": 2},
        {"name": "fc/kernel", "type": wt, "shape": [10, 8], "buffer": 3, "quant": q2},
        {"name": "fc/bias", "type": bt, "shape": [10], "buffer": 4},
    ]
    if share_bias:  # a converter deduplicating two equal all-zero biases
        tensors[4] = {"name": "fc/bias", "type": bt, "shape": [8], "buffer": 2}
        tensors.append({"name": "fc2/bias", "type": bt, "shape": [8], "buffer": 2})
        bufs[4] = b""
    return fb.build([("main", tensors)], bufs, external=external)


RULES = """graft: 1
name: test torch -> tflite
rename:
  target:
    - {match: '/kernel$', to: '.weight'}
    - {match: '/bias$', to: '.bias'}
    - {match: '/', to: '.'}
transforms:
  - rank: 4
    ops: [{permute: OIHW->OHWI}]
policy: {missing: error, unused: error, mismatch: error}
"""


def write(name, data):
    path = R.path(name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def rules():
    return write("torch-to-tflite.yaml", RULES.encode())


def source_arrays(int8):
    if int8:
        return {"conv1.weight": RNG.integers(-127, 128, (8, 3, 3, 3), dtype=np.int8),
                "conv1.bias": RNG.integers(-9999, 9999, 8, dtype=np.int32),
                "fc.weight": RNG.integers(-127, 128, (10, 8), dtype=np.int8),
                "fc.bias": RNG.integers(-9999, 9999, 10, dtype=np.int32)}
    return {"conv1.weight": RNG.standard_normal((8, 3, 3, 3), dtype=np.float32),
            "conv1.bias": RNG.standard_normal(8, dtype=np.float32),
            "fc.weight": RNG.standard_normal((10, 8), dtype=np.float32),
            "fc.bias": RNG.standard_normal(10, dtype=np.float32)}


def expected(arrays):
    """Skeleton name -> the bytes the transplant must store (OIHW -> OHWI)."""
    return {"conv1/kernel": np.ascontiguousarray(arrays["conv1.weight"].transpose(0, 2, 3, 1)).tobytes(),
            "conv1/bias": arrays["conv1.bias"].tobytes(),
            "fc/kernel": arrays["fc.weight"].tobytes(),
            "fc/bias": arrays["fc.bias"].tobytes()}


def check_in_place(skel_bytes, out_bytes, want):
    """Each target's buffer holds its new bytes; all other bytes are the skeleton's."""
    assert len(out_bytes) == len(skel_bytes), "the size changed"
    listed = {e["name"]: e["_range"] for e in fb.listing(skel_bytes)}
    mask = bytearray(len(skel_bytes))
    for name, value in want.items():
        pos, size = listed[name]
        assert out_bytes[pos:pos + size] == value, f"{name}: wrong bytes in its buffer"
        mask[pos:pos + size] = b"\1" * size
    for i, (a, b) in enumerate(zip(skel_bytes, out_bytes)):
        if not mask[i] and a != b:
            raise AssertionError(f"byte {i} outside the buffers changed")
    assert fb.listing(out_bytes), "the output no longer reads"


def transplant(src_kind, int8, external=()):
    arrays = source_arrays(int8)
    skel_bytes = conv_model(int8=int8, external=external)
    skel = write(f"skel_{src_kind}_{int8}_{len(external)}.tflite", skel_bytes)
    if src_kind == "npz":
        src = R.path(f"src_{int8}.npz")
        np.savez(src, **arrays)
    else:
        src = R.path(f"src_{int8}.pth")
        torch.save({k: torch.from_numpy(v) for k, v in arrays.items()}, src)
    out = R.path(f"out_{src_kind}_{int8}_{len(external)}.tflite")
    p = graft("apply", "-r", rules(), "-o", out, src, skel)
    assert p.returncode == 0, p.stderr
    assert open(skel, "rb").read() == skel_bytes, "the skeleton changed"
    check_in_place(skel_bytes, open(out, "rb").read(), expected(arrays))
    p = graft("diff", "-r", rules(), src, out)
    assert p.returncode == 0, p.stdout[-400:] + p.stderr


def split_shared():
    """Two biases sharing one buffer get different values: the file is written anew."""
    skel_bytes = conv_model(share_bias=True)
    skel = write("shared.tflite", skel_bytes)
    arrays = {"conv1.weight": RNG.standard_normal((8, 3, 3, 3), dtype=np.float32),
              "conv1.bias": np.arange(8, dtype=np.float32),
              "fc.weight": RNG.standard_normal((10, 8), dtype=np.float32),
              "fc.bias": np.arange(8, dtype=np.float32) + 100,
              "fc2.bias": np.arange(8, dtype=np.float32) + 200}
    src = R.path("shared_src.npz")
    np.savez(src, **arrays)
    out = R.path("shared_out.tflite")
    p = graft("apply", "-r", rules(), "-o", out, src, skel)
    assert p.returncode == 0, p.stderr
    got = open(out, "rb").read()
    assert len(got) > len(skel_bytes), "a split buffer must grow the model"
    m = fb.read_model(got, data_align=16)  # valid layout, data 16-aligned
    assert len(m["buffers"]) == len(fb.read_model(skel_bytes)["buffers"]) + 2
    lst = {e["name"]: e for e in fb.listing(got)}
    want = expected(arrays)
    want["fc2/bias"] = arrays["fc2.bias"].tobytes()
    for name, value in want.items():
        pos, size = lst[name]["_range"]
        assert got[pos:pos + size] == value, f"{name}: wrong value"
    by_name = {t["name"]: t for t in m["tensors"]}
    assert len({by_name[n]["buffer"] for n in ("conv1/bias", "fc/bias", "fc2/bias")}) == 3
    # before the appended part only the refs (Model.buffers, moved Tensor.buffer) differ
    skel_m = fb.read_model(skel_bytes)
    allowed = set(range(skel_m["buffers_field"], skel_m["buffers_field"] + 4))
    for t in skel_m["tensors"]:
        if t["name"] in ("fc/bias", "fc2/bias"):
            allowed |= set(range(t["buffer_field"], t["buffer_field"] + 4))
    diff = {i for i, (a, b) in enumerate(zip(skel_bytes, got)) if a != b}
    assert diff <= allowed, f"bytes {sorted(diff - allowed)[:8]} changed"
    # the metadata-like buffer 5 is copied
    pos, size, _ = m["buffers"][5]
    assert got[pos:pos + size] == b"\x01\x02\x03"
    # and the new file reads back in graft, and round-trips identically
    check_listing(out)
    check_identity(out)


def shared_equal_in_place():
    """Sharers that receive equal values keep one buffer, in place."""
    skel_bytes = conv_model(share_bias=True)
    skel = write("shared_eq.tflite", skel_bytes)
    arrays = {"conv1.weight": np.zeros((8, 3, 3, 3), np.float32),
              "conv1.bias": np.full(8, 5, np.float32), "fc.weight": np.ones((10, 8), np.float32),
              "fc.bias": np.full(8, 5, np.float32), "fc2.bias": np.full(8, 5, np.float32)}
    src = R.path("shared_eq.npz")
    np.savez(src, **arrays)
    out = R.path("shared_eq_out.tflite")
    p = graft("apply", "-r", rules(), "-o", out, src, skel)
    assert p.returncode == 0, p.stderr
    w = expected(arrays)
    del w["fc/bias"]
    check_in_place(skel_bytes, open(out, "rb").read(), w)


def external_buffers():
    """The offset/size form: listed from after the FlatBuffer, written in place."""
    path = write("external.tflite", conv_model(external=(1, 3)))
    m = fb.read_model(open(path, "rb").read())
    assert m["buffers"][1][2] and m["buffers"][3][2], "the builder made no external buffers"
    check_listing(path)
    check_identity(path)
    transplant("npz", False, external=(1, 3))


def subgraph_names():
    t = {"type": "float32", "shape": [2], "buffer": 1}
    data = fb.build([("main", [dict(t, name="w"), dict(t, name="w", buffer=2),
                               dict(t, name="w", buffer=3)]),
                     (None, [dict(t, name="w", buffer=3), dict(t, name="", buffer=1)])],
                    [b"", b"\0" * 8, b"\1" * 8, b"\2" * 8])
    path = write("subgraphs.tflite", data)
    names = [e["name"] for e in json.loads(graftlib.run("ls", "--json", path).stdout)]
    assert names == ["w", "main/w", "main/w#2", "subgraph1/w", "tensor1"], names
    check_listing(path)


def transplant_all(path):
    """New values for every listed tensor of a real model, from an npz named
    like the skeleton (identity pairing): each lands in its buffer, every other
    byte stays."""
    skel_bytes = open(path, "rb").read()
    arrays = {}
    for e in fb.listing(skel_bytes):
        dt = np.dtype(e["dtype"])
        shape = e["shape"]
        if dt.kind == "f":
            a = RNG.standard_normal(shape).astype(dt)
        else:
            info = np.iinfo(dt)
            a = RNG.integers(max(info.min, -1000), min(info.max, 1000), shape, endpoint=True).astype(dt)
        arrays[e["name"]] = np.asarray(a, dt)
    src = R.path("heldout_" + os.path.basename(path) + ".npz")
    np.savez(src, **arrays)
    out = R.path("heldout_out_" + os.path.basename(path))
    p = graft("apply", "-o", out, src, path)
    assert p.returncode == 0, p.stderr
    got = open(out, "rb").read()
    want = {k: v.tobytes() for k, v in arrays.items()}
    skel_m = fb.read_model(skel_bytes)
    used = [t["buffer"] for t in skel_m["tensors"] if skel_m["buffers"][t["buffer"]][1]]
    if len(used) == len(set(used)):
        check_in_place(skel_bytes, got, want)
        return
    # tensors sharing a buffer got different values: a grown, valid model
    m = fb.read_model(got, data_align=16)
    assert len(m["buffers"]) > len(skel_m["buffers"]), "shared buffers were not split"
    for e in fb.listing(got):
        pos, size = e["_range"]
        assert got[pos:pos + size] == want[e["name"]], f"{e['name']}: wrong value"


def ref_quantize(x, scale, zero, axis):
    """TFLite's reference: round_half_away(float32(x) / float32(scale)) + zero_point, clamped."""
    b = [1] * x.ndim
    b[axis] = len(scale)
    s = np.asarray(scale, np.float32).reshape(b if len(scale) > 1 else [1] * x.ndim)
    z = np.asarray(zero, np.int64).reshape(s.shape)
    v = (x.astype(np.float32) / s).astype(np.float64)
    return np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + z, -128, 127).astype(np.int8)


QRULES = """graft: 1.1
name: float torch-layout weights into an int8 TFLite skeleton
rename:
  target:
    - {match: '/kernel$', to: '.weight'}
    - {match: '/bias$', to: '.bias'}
transforms:
  - rank: 4
    ops: [{permute: OIHW->OHWI}, {quantize: int8}]
  - rank: 2
    ops: [{quantize: int8}]
"""


def quantize_op():
    """quantize rounds float sources with the skeleton's own per-channel and
    per-tensor scales; graft diff agrees; nothing else changes."""
    skel_bytes = conv_model(int8=True)
    skel = write("q_skel.tflite", skel_bytes)
    lst = {e["name"]: e for e in fb.listing(skel_bytes)}
    arrays = source_arrays(False)
    arrays["conv1.bias"] = RNG.integers(-999, 999, 8).astype(np.int32)
    arrays["fc.bias"] = RNG.integers(-999, 999, 10).astype(np.int32)
    src = R.path("q_src.npz")
    np.savez(src, **arrays)
    rules = write("q.yaml", QRULES.encode())
    out = R.path("q_out.tflite")
    p = graft("apply", "-r", rules, "-o", out, src, skel)
    assert p.returncode == 0, p.stderr
    q1, q2 = lst["conv1/kernel"]["quant"], lst["fc/kernel"]["quant"]
    assert len(q1["scale"]) == 8 and len(q2["scale"]) == 1
    want = {"conv1/kernel": ref_quantize(arrays["conv1.weight"].transpose(0, 2, 3, 1), q1["scale"],
                                         q1["zero_point"], q1["axis"]).tobytes(),
            "fc/kernel": ref_quantize(arrays["fc.weight"], q2["scale"], q2["zero_point"],
                                      0).tobytes(),
            "conv1/bias": arrays["conv1.bias"].tobytes(), "fc/bias": arrays["fc.bias"].tobytes()}
    check_in_place(skel_bytes, open(out, "rb").read(), want)
    p = graft("diff", "-r", rules, src, out)
    assert p.returncode == 0, p.stdout[-400:] + p.stderr


def dequantize_op():
    """dequantize reads an int8 TFLite source as float32 with its own parameters."""
    src_bytes = conv_model(int8=True)
    src = write("dq_src.tflite", src_bytes)
    skel = R.path("dq_skel.npz")
    np.savez(skel, **{"conv1/kernel": np.zeros((8, 3, 3, 3), np.float32),
                      "fc/kernel": np.zeros((10, 8), np.float32)})
    rules = write("dq.yaml", b"graft: 1.1\nname: dequantize\ntransforms:\n  - ops: [dequantize]\n"
                  b"ignore:\n  source: ['/bias$']\n")
    out = R.path("dq_out.npz")
    p = graft("apply", "-r", rules, "-o", out, src, skel)
    assert p.returncode == 0, p.stderr
    got = np.load(out)
    for e in fb.listing(src_bytes):
        if not e["name"].endswith("/kernel"):
            continue
        pos, size = e["_range"]
        q = np.frombuffer(src_bytes[pos:pos + size], np.int8).reshape(e["shape"]).astype(np.int64)
        sc, zp = e["quant"]["scale"], e["quant"]["zero_point"]
        b = [1] * q.ndim
        b[e["quant"]["axis"]] = len(sc)
        s = np.asarray(sc, np.float32).astype(np.float64).reshape(b if len(sc) > 1 else [1] * q.ndim)
        z = np.asarray(zp, np.int64).reshape(s.shape)
        want = (s * (q - z)).astype(np.float32)
        assert got[e["name"]].tobytes() == want.tobytes(), e["name"]


def quantize_without_params():
    """A target with no scale is refused, naming the tensor."""
    skel = write("noq_skel.tflite", conv_model(int8=True))
    src = R.path("noq.npz")
    np.savez(src, **{"conv1.bias": np.zeros(8, np.float32)})
    rules = write("noq.yaml", b"graft: 1.1\nname: t\nrename:\n  target:\n    - {match: '/', to: '.'}\n"
                  b"transforms:\n  - ops: [{quantize: int32}]\nignore:\n  target: ['kernel', 'fc']\n")
    p = graft("apply", "-r", rules, "-o", R.path("noq_out.tflite"), src, skel)
    assert p.returncode != 0 and "conv1/bias" in p.stderr and "no scale" in p.stderr, p.stderr


# ---- malformed files ------------------------------------------------------

def corrupt_cases():
    good = conv_model()
    m = fb.read_model(good)
    r = fb.Reader(good)
    root = r.table(r.deref(0))
    t1 = m["tensors"][1]
    sg = r.tables(root, 2)[0]
    conv = r.tables(sg, 0)[1]
    shape_vec = r.deref(r.field(conv, 0))

    def patch(fmt, at, v):
        b = bytearray(good)
        struct.pack_into("<" + fmt, b, at, v)
        return bytes(b)

    cases = {
        "truncated": (good[: len(good) // 2], "bytes left"),
        "root_outside": (patch("I", 0, len(good) + 8), "root table"),
        "vtable_outside": (patch("i", root[0], -0x7000000), "vtable"),
        "zero_offset_cycle": (patch("I", r.field(root, 2), 0), "cycle"),
        "vector_longer_than_file": (patch("I", r.deref(r.field(root, 4)), 0x3fffffff), "vector"),
        "negative_shape": (patch("i", shape_vec + 4, -3), "negative"),
        "huge_shape": (patch("i", shape_vec + 8, 0x7fffffff), "buffer 1 holds"),
        "buffer_index_out_of_range": (patch("I", t1["buffer_field"], 99), "buffer index 99"),
        "field_outside_table": (patch("H", conv[1] + 4 + 2 * 2, 0xfff0), "outside its"),
    }
    ext = conv_model(external=(1,))
    rx = fb.Reader(ext)
    bt = rx.tables(rx.table(rx.deref(0)), 4)[1]
    b = bytearray(ext)
    struct.pack_into("<Q", b, rx.field(bt, 1), len(ext) - 4)
    cases["external_past_end"] = (bytes(b), "past the end")
    return cases


def main():
    assert len(FIXTURES) == 8, f"expected the 8 fixture .tflite files, found {len(FIXTURES)}"
    for path in FIXTURES:
        rel = os.path.relpath(path, graftlib.FIXTURES)
        R.check(f"ls {rel}", check_listing, path)
        R.check(f"identity apply {rel}", check_identity, path)
    assert len(HELDOUT) == 4, f"expected the 4 held-out models, found {len(HELDOUT)}"
    for path in HELDOUT:
        name = os.path.basename(path)
        R.check(f"held-out ls {name}", check_listing, path)
        R.check(f"held-out identity apply {name}", check_identity, path)
        R.check(f"held-out transplant into {name}", transplant_all, path)
    for kind in ("npz", "pytorch"):
        R.check(f"float transplant from {kind}", transplant, kind, False)
        R.check(f"int8 transplant from {kind}", transplant, kind, True)
    R.check("quantize op with the skeleton's own scales", quantize_op)
    R.check("dequantize op with the source's own scales", dequantize_op)
    R.check("quantize into a target without scales refused", quantize_without_params)
    R.check("shared buffer split into a grown model", split_shared)
    R.check("shared buffer with equal values stays in place", shared_equal_in_place)
    R.check("offset/size buffers", external_buffers)
    R.check("names across subgraphs", subgraph_names)
    folder = os.path.join(graftlib.SOURCE_ROOT, "samples", "corrupt", "tflite")
    expected = [ln.split("\t") for ln in open(os.path.join(folder, "EXPECTED")).read().splitlines()]
    assert len(expected) == len(corrupt_cases()), "samples/corrupt/tflite is stale"
    for name, what in expected:
        R.check(f"refused: samples/corrupt/tflite/{name}", graftlib.expect_refused, os.path.join(folder, name), what)


if __name__ == "__main__":
    main()
    R.close()
