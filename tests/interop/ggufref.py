"""An independent GGUF v3 reader/writer and ggml's Q8_0/Q4_0 reference
quantizers in NumPy, written from ggml's docs/gguf.md, src/gguf.cpp and
src/ggml-quants.c (quantize_row_q8_0_ref, quantize_row_q4_0_ref), for the
interop tests.  Shares no code with graft."""
import json
import os
import struct
import subprocess

import numpy as np

SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9
# ggml type -> (numpy dtype or None when quantized, block elements, block bytes)
GGML = {0: ("float32", 1, 4), 1: ("float16", 1, 2), 2: (None, 32, 18), 8: (None, 32, 34),
        24: ("int8", 1, 1), 25: ("int16", 1, 2), 26: ("int32", 1, 4), 27: ("int64", 1, 8),
        28: ("float64", 1, 8), 30: ("bfloat16", 1, 2)}


def pad(n, a):
    return (n + a - 1) // a * a


def _str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def _val(t, v):
    if t == STRING:
        return _str(v)
    if t == ARRAY:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(_val(et, x) for x in items)
    return struct.pack("<" + SCALAR[t], v)


def write(path, kvs, tensors, version=3):
    """kvs: [(key, type, value)], array values as (elem_type, [..]);
    tensors: [(name, ggml_type, ne innermost first, raw bytes)]."""
    align = next((v for k, t, v in kvs if k == "general.alignment"), 32)
    out = bytearray(b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)))
    for k, t, v in kvs:
        out += _str(k) + struct.pack("<I", t) + _val(t, v)
    off = 0
    for name, gt, ne, data in tensors:
        out += _str(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}q", *ne)
        out += struct.pack("<IQ", gt, off)
        off += pad(len(data), align)
    if tensors:
        out += bytes(pad(len(out), align) - len(out))
    for _, _, _, data in tensors:
        out += data + bytes(pad(len(data), align) - len(data))
    with open(path, "wb") as f:
        f.write(out)
    return bytes(out)


class _Cur:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, n):
        if self.p + n > len(self.b):
            raise ValueError("truncated")
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def unpack(self, fmt):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0]

    def str(self):
        return self.take(self.unpack("Q")).decode()

    def val(self, t):
        if t == STRING:
            return self.str()
        if t == ARRAY:
            et, n = self.unpack("I"), self.unpack("Q")
            return (et, [self.val(et) for _ in range(n)])
        return self.unpack(SCALAR[t])


def read(path):
    """-> (version, kvs, tensors [(name, ggml_type, ne, offset, bytes)], data_start)."""
    b = open(path, "rb").read()
    c = _Cur(b)
    assert c.take(4) == b"GGUF"
    version, nt, nkv = c.unpack("I"), c.unpack("Q"), c.unpack("Q")
    kvs = []
    for _ in range(nkv):
        k = c.str()
        t = c.unpack("I")
        kvs.append((k, t, c.val(t)))
    align = next((v for k, t, v in kvs if k == "general.alignment"), 32)
    infos = []
    for _ in range(nt):
        name = c.str()
        nd = c.unpack("I")
        ne = [c.unpack("q") for _ in range(nd)]
        infos.append((name, c.unpack("I"), ne, c.unpack("Q")))
    start = pad(c.p, align)
    tensors = []
    for name, gt, ne, off in infos:
        n = int(np.prod(ne)) if ne else 1
        nbytes = n // GGML[gt][1] * GGML[gt][2]
        tensors.append((name, gt, ne, off, b[start + off:start + off + nbytes]))
    return version, kvs, tensors, start


def _f16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16).view(np.uint16)


def _roundf(x):
    """C roundf (half away from zero) on float32 values, exactly (in float64)."""
    x = x.astype(np.float64)
    return np.trunc(x + np.copysign(0.5, x))


def quantize_q8_0(x):
    x = np.asarray(x, dtype=np.float32).reshape(-1, 32)
    out = bytearray()
    for blk in x:
        amax = np.float32(0)
        for v in blk:
            a = np.float32(abs(v))
            amax = amax if amax > a else a
        d = np.float32(amax / np.float32(127))
        idv = np.float32(np.float32(1) / d) if d != 0 else np.float32(0)
        q = _roundf((blk * idv).astype(np.float32)).astype(np.int8)
        out += _f16(d).tobytes() + q.tobytes()
    return bytes(out)


def quantize_q4_0(x):
    x = np.asarray(x, dtype=np.float32).reshape(-1, 32)
    out = bytearray()
    for blk in x:
        amax, mx = np.float32(0), np.float32(0)
        for v in blk:
            if amax < abs(v):
                amax, mx = np.float32(abs(v)), np.float32(v)
        d = np.float32(mx / np.float32(-8))
        idv = np.float32(np.float32(1) / d) if d != 0 else np.float32(0)
        x0 = (blk[:16] * idv).astype(np.float32) + np.float32(8.5)
        x1 = (blk[16:] * idv).astype(np.float32) + np.float32(8.5)
        q0 = np.minimum(15, np.trunc(x0.astype(np.float32)).astype(np.int8)).astype(np.uint8)
        q1 = np.minimum(15, np.trunc(x1.astype(np.float32)).astype(np.int8)).astype(np.uint8)
        out += _f16(d).tobytes() + (q0 | (q1 << 4)).astype(np.uint8).tobytes()
    return bytes(out)


def dequantize(gt, raw):
    bb = GGML[gt][2]
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, bb)
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    if gt == 8:
        return (blocks[:, 2:].view(np.int8).astype(np.float32) * d).reshape(-1)
    lo = (blocks[:, 2:] & 15).astype(np.int32) - 8
    hi = (blocks[:, 2:] >> 4).astype(np.int32) - 8
    return (np.concatenate([lo, hi], axis=1).astype(np.float32) * d).reshape(-1)


def hf_parse(path):
    """What @huggingface/gguf (the npm parser, tests/js/gguf_dump.mjs) reads
    from path: {metadata, tensorInfos, tensorDataOffset}, BigInts as
    {"bigint": "..."}."""
    js = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "js")
    p = subprocess.run(["node", os.path.join(js, "gguf_dump.mjs"), path], capture_output=True,
                       text=True, cwd=js)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)
