#!/usr/bin/python3
"""Seed corpus for fuzz_tflite.

Run from the source root:  /usr/bin/python3 samples/gen/tflite_fuzz_corpus.py
Writes samples/corrupt/tflite/ (test_tflite.py's malformed files) and
tests/fuzz/corpora/tflite/: the small fixture models, models made with
tests/interop/tflite_fb.py (int8 per-channel quantization, shared buffers,
offset/size buffers, several subgraphs), truncations of each, and each with
one reference, vtable entry, vector length or shape entry made hostile.
"""
import glob
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "interop"))
import tflite_fb as fb  # noqa: E402

OUT = os.path.join(HERE, "..", "..", "tests", "fuzz", "corpora", "tflite")
FIXTURES = os.path.join(HERE, "..", "..", "..", "shared", "fixtures", "tflite")


def put(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def made():
    t = {"type": "float32", "shape": [2, 2], "buffer": 1}
    q = {"scale": [0.5, 0.25], "zero_point": [0, 1], "axis": 0}
    yield "made_basic", fb.build([("main", [dict(t, name="w"), dict(t, name="v", buffer=2)])],
                                 [b"", b"\0" * 16, b"\1" * 16])
    yield "made_int8", fb.build([("main", [dict(t, name="q", type="int8", quant=q)])],
                                [b"", b"\x05" * 4])
    yield "made_shared", fb.build([("main", [dict(t, name="a"), dict(t, name="b")])],
                                  [b"", b"\0" * 16])
    yield "made_external", fb.build([("main", [dict(t, name="x")])], [b"", b"\7" * 16],
                                    external=(1,))
    yield "made_subgraphs", fb.build([("main", [dict(t, name="w")]), (None, [dict(t, name="w")])],
                                     [b"", b"\0" * 16])


def hostile(name, data):
    """Each 4-byte word set to values that break references (0: a cycle, huge)."""
    for at in range(0, len(data) - 3, 4):
        for v in (0, 0xFFFFFFF0):
            b = bytearray(data)
            struct.pack_into("<I", b, at, v)
            yield f"{name}.w{at}_{v:x}", bytes(b)


def corrupt():
    """samples/corrupt/tflite: the malformed files of test_tflite.py, with EXPECTED."""
    os.environ.setdefault("GRAFT_SOURCE_ROOT", os.path.join(HERE, "..", ".."))
    import test_tflite
    folder = os.path.join(HERE, "..", "corrupt", "tflite")
    os.makedirs(folder, exist_ok=True)
    lines = []
    for name, (data, what) in test_tflite.corrupt_cases().items():
        put_in(folder, name + ".tflite", data)
        lines.append(f"{name}.tflite\t{what}\n")
    with open(os.path.join(folder, "EXPECTED"), "w") as f:
        f.writelines(lines)
    import shutil
    shutil.rmtree(test_tflite.R.tmp, ignore_errors=True)


def put_in(folder, name, data):
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def main():
    corrupt()
    os.makedirs(OUT, exist_ok=True)
    seeds = list(made())
    for path in sorted(glob.glob(os.path.join(FIXTURES, "*", "*.tflite"))):
        data = open(path, "rb").read()
        if len(data) < 20000:
            seeds.append((os.path.basename(os.path.dirname(path)), data))
    for name, data in seeds:
        put(name, data)
        for cut in sorted({1, 4, 8, 12, len(data) // 3, len(data) // 2, len(data) - 1}):
            put(f"{name}.cut{cut}", data[:cut])
    for name, data in seeds[:2]:
        for n, d in hostile(name, data):
            put(n, d)


main()
