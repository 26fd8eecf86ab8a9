"""float8 in ONNX (issue 18, item 14), with onnxruntime-node as the oracle:
a FLOAT8E4M3FN / FLOAT8E5M2 initializer is read (listed with its codes),
written into a skeleton byte for byte (onnxruntime's Cast of graft's file
equals its Cast of the same codes written by Python), and graft's `cast`
from float32 rounds and saturates exactly as onnxruntime's Cast(saturate=1)
(compared through Cast back to float32); codes kept in int32_data read and
write the same; graft's cast from float8 to float32 and bfloat16 equals
onnxruntime's Cast for all 256 codes.  onnx 1.12 predates float8 (no
numpy_helper or onnx.reference support, and ml_dtypes is not installed), so
the models are built with the raw DataType numbers (17, 19) and IR version 9
and onnxruntime is the reference.
Run with /usr/bin/python3.
"""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from graftlib import SOURCE_ROOT, Results, ls_json, run, save_st  # noqa: E402

R = Results()
TYPES = {"float8_e4m3fn": (17, "F8_E4M3"), "float8_e5m2": (19, "F8_E5M2")}  # onnx DataType


def model(path, name, dtype, raw, narrow_to=None):
    """An ONNX model without inputs: initializer `name` (dtype, raw bytes) and
    y = Cast(name, to=float) -- or y = Cast(Cast(name, to=narrow_to), to=float)."""
    import onnx
    from onnx import helper as h
    n = len(raw) // {1: 4, 16: 2}.get(dtype, 1)  # float32, bfloat16, float8
    t = onnx.TensorProto()
    t.name, t.data_type, t.raw_data = name, dtype, raw
    t.dims.append(n)
    if narrow_to:
        nodes = [h.make_node("Cast", [name], ["t8"], to=narrow_to, saturate=1),
                 h.make_node("Cast", ["t8"], ["y"], to=1)]
    else:
        nodes = [h.make_node("Cast", [name], ["y"], to=1)]
    g = h.make_graph(nodes, "f8", [], [h.make_tensor_value_info("y", 1, [n])], initializer=[t])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 19)])
    m.ir_version = 9
    onnx.save(m, path)
    return path


def ort_y(path):
    js = os.path.join(SOURCE_ROOT, "tests", "js")
    p = subprocess.run(["node", "ort_outputs.mjs", os.path.abspath(path)], cwd=js,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return np.array(json.loads(p.stdout)["y"]["data"], np.float32)


def same(a, b):
    return a.shape == b.shape and bool(((a == b) | (np.isnan(a) & np.isnan(b))).all())


def probes():
    rng = np.random.default_rng(3)
    xs = np.concatenate([rng.standard_normal(3000) * 40, rng.standard_normal(1000) * 3e4,
                         np.float32(2.0) ** np.arange(-20, 20), [0.0, -0.0, 448, 464, 57344,
                                                                 61440, 1e30, np.inf, -np.inf]])
    return xs.astype("<f4")


def read_and_write(fmt):
    dt, st = TYPES[fmt]
    codes = np.arange(256, dtype=np.uint8).tobytes()
    ref = model(R.path(f"{fmt}_codes.onnx"), "w", dt, codes)
    t = {x["name"]: x for x in ls_json(ref)}["w"]
    assert t["dtype"] == fmt and t["shape"] == [256], t
    import hashlib
    assert t["sha256"] == hashlib.sha256(codes).hexdigest(), t
    skel = model(R.path(f"{fmt}_skel.onnx"), "w", dt, bytes(256))
    src = R.path(f"{fmt}_codes.safetensors")
    save_st(src, {"w": (st, [256], codes)})
    out = R.path(f"{fmt}_out.onnx")
    run("apply", "-o", out, src, skel)
    assert same(ort_y(out), ort_y(ref)), "onnxruntime reads other values from graft's file"


def int32_data_read_and_written(fmt):
    """float8 codes kept in int32_data (as onnx.helper.make_tensor writes
    them without raw=True) read as the same codes, and a skeleton holding
    them there takes new values that onnxruntime reads."""
    import hashlib

    import onnx
    dt, st = TYPES[fmt]
    codes = np.arange(256, dtype=np.uint8)
    ref = model(R.path(f"{fmt}_i32ref.onnx"), "w", dt, codes.tobytes())
    m = onnx.load(ref)
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.int32_data.extend(int(c) for c in codes)
    path = R.path(f"{fmt}_i32.onnx")
    onnx.save(m, path)
    got = {x["name"]: x for x in ls_json(path)}["w"]
    assert got["dtype"] == fmt and got["sha256"] == hashlib.sha256(codes.tobytes()).hexdigest()
    assert same(ort_y(path), ort_y(ref)), "onnxruntime reads the int32_data codes otherwise"
    t.ClearField("int32_data")
    t.int32_data.extend([0] * 256)
    skel = R.path(f"{fmt}_i32skel.onnx")
    onnx.save(m, skel)
    src = R.path(f"{fmt}_i32.safetensors")
    save_st(src, {"w": (st, [256], codes[::-1].tobytes())})
    out = R.path(f"{fmt}_i32out.onnx")
    run("apply", "-o", out, src, skel)
    back = model(R.path(f"{fmt}_i32back.onnx"), "w", dt, codes[::-1].tobytes())
    assert same(ort_y(out), ort_y(back)), "onnxruntime reads other values from graft's file"


def cast_by_graft(src, skel, to, tag):
    """Apply `src` into the ONNX skeleton with a `cast: to` rule; what
    onnxruntime reads from the output."""
    rules = R.path(f"{tag}.yaml")
    open(rules, "w").write(f"graft: 1\ntransforms:\n  - target: '^w$'\n    ops: [{{cast: {to}}}]\n")
    out = R.path(f"{tag}_out.onnx")
    run("apply", "-r", rules, "-o", out, src, skel)
    return ort_y(out)


def mismatches(got, want):
    """Indices where got and want differ (NaN equals NaN)."""
    return np.nonzero(~((got == want) | (np.isnan(got) & np.isnan(want))))[0]


def cast_from_float8_matches_onnxruntime(fmt):
    """graft's cast from float8 to float32 and to bfloat16 gives what
    onnxruntime's Cast gives, for all 256 codes (NaN codes stay NaN)."""
    dt, st = TYPES[fmt]
    codes = np.arange(256, dtype=np.uint8)
    want = ort_y(model(R.path(f"{fmt}_c8.onnx"), "w", dt, codes.tobytes()))
    src = R.path(f"{fmt}_c8.safetensors")
    save_st(src, {"w": (st, [256], codes.tobytes())})
    for to, onnx_type, size in (("float32", 1, 4), ("bfloat16", 16, 2)):
        skel = model(R.path(f"{fmt}_{to}_skel.onnx"), "w", onnx_type, bytes(256 * size))
        got = cast_by_graft(src, skel, to, f"{fmt}_{to}")
        bad = mismatches(got, want)
        assert not len(bad), (to, [(int(i), float(got[i]), float(want[i])) for i in bad[:8]])


def cast_matches_onnxruntime(fmt):
    dt, _ = TYPES[fmt]
    xs = probes()
    want = ort_y(model(R.path(f"{fmt}_ref.onnx"), "x", 1, xs.tobytes(), narrow_to=dt))
    src = R.path(f"{fmt}_x.safetensors")
    save_st(src, {"w": ("F32", [len(xs)], xs.tobytes())})
    skel = model(R.path(f"{fmt}_nskel.onnx"), "w", dt, bytes(len(xs)))
    got = cast_by_graft(src, skel, fmt, f"{fmt}_n")
    bad = mismatches(got, want)
    assert not len(bad), [(float(xs[i]), float(got[i]), float(want[i])) for i in bad[:8]]


for fmt in TYPES:
    R.check(f"{fmt}: an ONNX initializer is read and written as onnxruntime reads it",
            read_and_write, fmt)
    R.check(f"{fmt}: cast from float32 rounds and saturates as onnxruntime's Cast",
            cast_matches_onnxruntime, fmt)
    R.check(f"{fmt}: codes in int32_data are read and written", int32_data_read_and_written, fmt)
    R.check(f"{fmt}: cast to float32 and bfloat16 as onnxruntime's Cast",
            cast_from_float8_matches_onnxruntime, fmt)
R.close()
