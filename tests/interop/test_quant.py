"""The quantize / dequantize kernels (src/transform/quant.c) against NumPy.

The reference follows TFLite's reference kernels
(tensorflow/lite/kernels/internal/reference/quantize.h, dequantize.h):
q = clamp(round_half_away(float32(x) / float32(scale)) + zero_point),
x = float32(float64(scale) * (q - zero_point)); per-channel along `axis`.
The kernels run through tests/interop/quant_driver.c (argv[1]).  Also run on
the real per-channel int8 weights of a fixture, with that skeleton's own
scales and zero points as `graft ls --json` reports them.
Run with /usr/bin/python3.
"""
import glob
import hashlib
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import graftlib  # noqa: E402

R = graftlib.Results()
DRIVER = sys.argv[1]
RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767),
         "int32": (-2 ** 31, 2 ** 31 - 1)}
RNG = np.random.default_rng(3)


def per_channel(a, shape, axis):
    """Broadcast per-channel values a (len shape[axis]) over shape."""
    b = [1] * len(shape)
    b[axis] = len(a)
    return np.asarray(a).reshape(b)


def ref_quantize(x, dtype, scale, zero, axis):
    s = np.float32(scale) if len(scale) == 1 else per_channel(np.float32(scale), x.shape, axis)
    z = np.int64(zero[0] if zero else 0) if len(scale) == 1 else \
        per_channel(np.asarray(zero or [0] * len(scale), np.int64), x.shape, axis)
    v = (x.astype(np.float32) / np.asarray(s, np.float32)).astype(np.float64)
    r = np.sign(v) * np.floor(np.abs(v) + 0.5) + z
    lo, hi = RANGE[dtype]
    return np.clip(r, lo, hi).astype(dtype)


def ref_dequantize(q, scale, zero, axis):
    s = np.float64(np.float32(scale[0])) if len(scale) == 1 else \
        per_channel(np.float32(scale).astype(np.float64), q.shape, axis)
    z = np.int64(zero[0] if zero else 0) if len(scale) == 1 else \
        per_channel(np.asarray(zero or [0] * len(scale), np.int64), q.shape, axis)
    return (s * (q.astype(np.int64) - z)).astype(np.float32)


def run(mode, dtype, axis, shape, scale, zero, data):
    src, out = R.path("in.bin"), R.path("out.bin")
    with open(src, "wb") as f:
        f.write(data.tobytes())
    args = [DRIVER, mode, dtype, str(axis), ",".join(map(str, shape)) or "1",
            ",".join(float(np.float32(s)).hex() for s in scale),
            ",".join(map(str, zero)) if zero else "-", src, out]
    p = subprocess.run(args, capture_output=True, text=True)
    return p, (open(out, "rb").read() if p.returncode == 0 else None)


def quant_case(dtype, shape, axis, per_ch, zero_kind):
    n = shape[axis] if per_ch else 1
    scale = list(RNG.uniform(0.001, 0.2, n).astype(np.float32))
    lo, hi = RANGE[dtype]
    zero = [] if zero_kind == "none" else list(RNG.integers(max(lo, -100), min(hi, 100) + 1, n))
    x = RNG.standard_normal(shape).astype(np.float32) * 30
    flat = x.reshape(-1)
    flat[:4] = [np.inf, -np.inf, 0.0, -0.0]
    p, got = run("quantize", dtype, axis, shape, scale, zero, x)
    assert p.returncode == 0, p.stderr
    want = ref_quantize(x, dtype, scale, zero, axis)
    assert got == want.tobytes(), f"quantize differs at {np.flatnonzero(np.frombuffer(got, dtype) != want.reshape(-1))[:5]}"
    q = RNG.integers(lo, hi, shape, endpoint=True).astype(dtype) if dtype != "int32" else \
        RNG.integers(-10 ** 6, 10 ** 6, shape).astype(np.int32)
    p, got = run("dequantize", dtype, axis, shape, scale, zero, q)
    assert p.returncode == 0, p.stderr
    assert got == ref_dequantize(q, scale, zero, axis).tobytes(), "dequantize differs"


def ties():
    """Half-way values round away from zero (TfLiteRound), not to even like np.round."""
    scale = [0.5]
    x = np.float32([0.25, -0.25, 0.75, -0.75, 1.25, 63.75, 64.0, -64.25])
    p, got = run("quantize", "int8", 0, [8], scale, [0], x)
    assert p.returncode == 0, p.stderr
    assert list(np.frombuffer(got, np.int8)) == [1, -1, 2, -2, 3, 127, 127, -128], \
        list(np.frombuffer(got, np.int8))
    assert got == ref_quantize(x, "int8", scale, [0], 0).tobytes()


def refused(mode, dtype, shape, scale, zero, axis, data, what):
    p, _ = run(mode, dtype, axis, shape, scale, zero, data)
    assert p.returncode == 1, f"exit {p.returncode}"
    assert what in p.stderr, p.stderr


def skeleton_own_params():
    """Dequantize and re-quantize a real per-channel int8 weight with its own params."""
    path = glob.glob(os.path.join(graftlib.FIXTURES, "tflite", "tflm_micro_speech_int8_conv", "*.tflite"))[0]
    listing = json.loads(graftlib.run("ls", "--json", path).stdout)
    t = next(e for e in listing if e["name"] == "first_weights/read")
    q = t["quant"]
    assert len(q["scale"]) == 8 and q["axis"] == 3
    data = open(path, "rb").read()
    # the stored bytes, found through the listing's sha256 in the file
    n = 1 * 10 * 8 * 8
    for off in range(0, len(data) - n):
        if hashlib.sha256(data[off:off + n]).hexdigest() == t["sha256"]:
            break
    else:
        raise AssertionError("stored bytes not found")
    stored = np.frombuffer(data[off:off + n], np.int8).reshape(t["shape"])
    p, got = run("dequantize", "int8", q["axis"], t["shape"], q["scale"], q["zero_point"], stored)
    assert p.returncode == 0, p.stderr
    x = np.frombuffer(got, np.float32).reshape(t["shape"])
    assert x.tobytes() == ref_dequantize(stored, q["scale"], q["zero_point"], 3).tobytes()
    p, back = run("quantize", "int8", q["axis"], t["shape"], q["scale"], q["zero_point"], x)
    assert p.returncode == 0, p.stderr
    assert back == stored.tobytes(), "quantize(dequantize(q)) != q"


def main():
    for dtype in ("int8", "uint8", "int16", "int32"):
        for shape, axis in (([6, 3, 3, 4], 0), ([1, 3, 3, 8], 3), ([5, 7, 2], 1)):
            for per_ch in (False, True):
                for zk in ("none", "some"):
                    R.check(f"{dtype} {shape} axis {axis} per-channel={per_ch} zero={zk}",
                            quant_case, dtype, shape, axis, per_ch, zk)
    R.check("ties round away from zero", ties)
    f = np.float32([1, np.nan, 2])
    R.check("NaN refused", refused, "quantize", "int8", [3], [0.1], [0], 0, f, "element 1 is NaN")
    R.check("scale count", refused, "quantize", "int8", [3], [0.1, 0.2], [0, 0], 0, f,
            "2 scales do not match axis 0")
    R.check("zero point range", refused, "quantize", "uint8", [3], [0.1], [300], 0, f,
            "zero point 0 is 300")
    R.check("zero scale", refused, "quantize", "int8", [3], [0.0], [0], 0, f, "scale 0 is 0")
    R.check("float target", refused, "quantize", "float32", [3], [0.1], [0], 0, f,
            "float32 is not a quantized integer type")
    R.check("skeleton's own per-channel params", skeleton_own_params)


main()
R.close()
