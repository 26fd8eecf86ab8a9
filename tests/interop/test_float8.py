"""float8 (issue 18, item 14): F8_E4M3 / F8_E5M2 safetensors tensors are read
and written, and `cast` converts float32 and bfloat16 to and from them.

torch 1.13 and onnx 1.12 predate float8, so the reference is written here
in NumPy, independently of graft's bit arithmetic: the value of every one
of the 256 codes from its fields, and narrowing by searching the sorted
finite values for the nearest one (ties to the even code), then ONNX Cast's
saturate=1 rules (|x| past the largest finite value, and +-Inf, give +-that
value; NaN gives NaN).  Every code is decoded; narrowing is checked on every
code's value, every midpoint between neighbours and one float32 step either
side, values past the range, zeros, Inf, NaN and random float32s.
Run with /usr/bin/python3.
"""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from graftlib import Results, load_st, run, save_st  # noqa: E402

R = Results()
FORMATS = {  # name: (safetensors dtype, mantissa bits, bias, IEEE Inf/NaN)
    "float8_e4m3fn": ("F8_E4M3", 3, 7, False),
    "float8_e5m2": ("F8_E5M2", 2, 15, True),
}


def decode_ref(fmt):
    """float64 value of each code 0..255."""
    _, mb, bias, ieee = FORMATS[fmt]
    eb = 7 - mb
    out = np.empty(256)
    for c in range(256):
        s, e, m = c >> 7, (c >> mb) & ((1 << eb) - 1), c & ((1 << mb) - 1)
        if ieee and e == (1 << eb) - 1:
            v = np.inf if m == 0 else np.nan
        elif not ieee and (c & 0x7F) == 0x7F:
            v = np.nan
        elif e == 0:
            v = m * 2.0 ** (1 - bias - mb)
        else:
            v = (1 + m / 2 ** mb) * 2.0 ** (e - bias)
        out[c] = -v if s else v
    return out


def encode_ref(fmt, xs):
    """Nearest code by search over the finite non-negative codes."""
    vals = decode_ref(fmt)
    pos = [c for c in range(128) if np.isfinite(vals[c])]
    pv = np.array([vals[c] for c in pos])
    maxc = pos[-1]
    out = []
    for x in np.asarray(xs, np.float64):
        sign = 0x80 if np.signbit(x) else 0
        a = abs(x)
        if np.isnan(x):
            out.append(sign | 0x7F)
            continue
        if np.isinf(a) or a >= pv[-1]:
            out.append(sign | maxc)  # saturate (a == max is max itself)
            continue
        i = int(np.searchsorted(pv, a))  # pv[i-1] < a <= pv[i]
        lo, hi = pos[i - 1], pos[i]
        if a == pv[i]:
            c = hi
        else:
            dl, dh = a - pv[i - 1], pv[i] - a
            c = lo if dl < dh else hi if dh < dl else (lo if lo % 2 == 0 else hi)
        out.append(sign | c)
    return np.array(out, np.uint8)


def probes(fmt):
    """float32 inputs: codes, midpoints and their neighbours, edges, randoms."""
    v = decode_ref(fmt)
    fin = np.unique(np.abs(v[np.isfinite(v)]))
    mids = (fin[1:] + fin[:-1]) / 2
    xs = [fin, mids, [fin[-1] * 1.03, fin[-1] * 1.1, 1e30, 3.4e38, 1e-30, 0.0]]
    xs = np.concatenate([np.asarray(a, np.float64) for a in xs]).astype(np.float32)
    up = np.nextafter(xs, np.float32(np.inf))
    dn = np.nextafter(xs, np.float32(0))
    rng = np.random.default_rng(8)
    rnd = (rng.standard_normal(4000) * fin[-1] / 8).astype(np.float32)
    allx = np.concatenate([xs, up, dn, rnd])
    allx = np.concatenate([allx, -allx, np.array([np.inf, -np.inf, np.nan, -0.0], np.float32)])
    return allx.astype(np.float32)


def cast_with_graft(tag, src_dt, src_bytes, n, dst_dt, dst_name):
    src, skel, out = R.path(f"{tag}_src.st"), R.path(f"{tag}_skel.st"), R.path(f"{tag}_out.st")
    rules = R.path(f"{tag}.yaml")
    save_st(src, {"x": (src_dt, [n], src_bytes)})
    width = {"F32": 4, "BF16": 2}.get(dst_dt, 1)
    save_st(skel, {"x": (dst_dt, [n], b"\0" * (width * n))})
    open(rules, "w").write(f"graft: 1\ntransforms:\n  - target: '^x$'\n    ops: [{{cast: {dst_name}}}]\n")
    run("apply", "-r", rules, "-o", out, src, skel)
    dt, b = load_st(out, "x")
    assert dt == dst_dt, dt
    return b


def bf16_bits(x32):
    """Exact bfloat16 patterns for float32 values that are bfloat16 values."""
    return (x32.view(np.uint32) >> 16).astype(np.uint16)


def check_narrow(fmt):
    st, *_ = FORMATS[fmt]
    xs = probes(fmt)
    want = encode_ref(fmt, xs)
    got = np.frombuffer(cast_with_graft(fmt + "_n", "F32", xs.tobytes(), len(xs), st, fmt), np.uint8)
    bad = np.nonzero(got != want)[0]
    assert not len(bad), [(float(xs[i]), hex(got[i]), hex(want[i])) for i in bad[:8]]
    # bfloat16 sources: the probes that bfloat16 holds exactly
    xb = xs[(xs.view(np.uint32) & 0xFFFF) == 0]
    wantb = encode_ref(fmt, xb)
    gotb = np.frombuffer(cast_with_graft(fmt + "_nb", "BF16", bf16_bits(xb).tobytes(), len(xb),
                                         st, fmt), np.uint8)
    assert (gotb == wantb).all(), np.nonzero(gotb != wantb)[0][:8]
    assert len(xb) > 200, len(xb)


def check_widen(fmt):
    st, *_ = FORMATS[fmt]
    codes = np.arange(256, dtype=np.uint8)
    want = decode_ref(fmt).astype(np.float32)
    got = np.frombuffer(cast_with_graft(fmt + "_w", st, codes.tobytes(), 256, "F32", "float32"),
                        np.float32)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    assert same.all() and (np.signbit(got) == np.signbit(want))[~np.isnan(want)].all(), \
        [(i, got[i], want[i]) for i in np.nonzero(~same)[0][:8]]
    gotb = np.frombuffer(cast_with_graft(fmt + "_wb", st, codes.tobytes(), 256, "BF16", "bfloat16"),
                         np.uint16)
    wb = bf16_bits(want)
    ok = (gotb == wb) | (np.isnan(want) & ((gotb & 0x7F80) == 0x7F80) & ((gotb & 0x7F) != 0))
    assert ok.all(), np.nonzero(~ok)[0][:8]
    # listing and round trip of the stored dtype
    p = R.path(f"{fmt}_ls.st")
    save_st(p, {"w": (st, [16, 16], codes.tobytes())})
    line = run("ls", p).stdout.split("\t")
    assert line[1] == fmt and line[2] == "[16,16]", line


for fmt in FORMATS:
    R.check(f"{fmt}: every code widens to float32 and bfloat16 as the reference", check_widen, fmt)
    R.check(f"{fmt}: float32 and bfloat16 narrow with RNE and saturation", check_narrow, fmt)
R.close()
