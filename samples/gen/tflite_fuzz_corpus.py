#!/usr/bin/python3
"""Seed corpus for fuzz_tflite.

Run from the source root:  /usr/bin/python3 samples/gen/tflite_fuzz_corpus.py
Writes samples/corrupt/tflite/ (test_tflite.py's malformed files) and
tests/fuzz/corpora/tflite/: the small fixture models, models made with
tests/interop/tflite_fb.py (int8 per-channel quantization, shared buffers,
offset/size buffers, several subgraphs), truncations of each, and each with
one reference, vtable entry, vector length or shape entry made hostile;
made_ops has the operators the layout hook reads.
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
    yield "made_ops", made_ops()
    yield "made_ops_huge", made_ops([1, 2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1])


def made_ops(u_shape=(1, 1, 2, 2)):
    """Operators the layout hook follows (src/layout/tflite_graph.c): CONV_2D,
    DEPTHWISE_CONV_2D, TRANSPOSE_CONV, RESHAPE into FULLY_CONNECTED (whose
    feature map is `u_shape`: huge, its flatten must not overflow)."""
    f = {"type": "float32"}
    ts = [dict(f, name="x", shape=[1, 1, 2, 2], buffer=0),
          dict(f, name="conv", shape=[2, 1, 1, 2], buffer=1), dict(f, name="cb", shape=[2], buffer=2),
          dict(f, name="y", shape=[1, 1, 2, 2], buffer=0),
          dict(f, name="dw", shape=[1, 1, 1, 2], buffer=2), dict(f, name="z", shape=[1, 1, 2, 2], buffer=0),
          dict(name="os", type="int32", shape=[4], buffer=3), dict(f, name="up", shape=[2, 1, 1, 2], buffer=1),
          dict(f, name="u", shape=list(u_shape), buffer=0), dict(name="rs", type="int32", shape=[2], buffer=4),
          dict(f, name="r", shape=[1, 4], buffer=0), dict(f, name="fc", shape=[1, 4], buffer=5),
          dict(f, name="out", shape=[1, 1], buffer=0)]
    ops = [{"opcode": 0, "inputs": [0, 1, 2], "outputs": [3]},
           {"opcode": 1, "inputs": [3, 4, 2], "outputs": [5]},
           {"opcode": 2, "inputs": [6, 7, 5, -1], "outputs": [8]},
           {"opcode": 3, "inputs": [8, 9], "outputs": [10]},
           {"opcode": 4, "inputs": [10, 11], "outputs": [12]}]
    bufs = [b"", b"\0" * 16, b"\0" * 8, struct.pack("<4i", 1, 1, 2, 2), struct.pack("<2i", 1, 4), b"\0" * 16]
    return fb.build([("main", ts, ops, [0], [12])], bufs, opcodes=(3, 4, 67, 22, 9))


def hostile(name, data, both=True):
    """Each 4-byte word set to values that break references (0: a cycle, huge;
    one of them, alternating, unless both)."""
    for at in range(0, len(data) - 3, 4):
        for v in (0, 0xFFFFFFF0) if both else ((0, 0xFFFFFFF0)[at // 4 % 2],):
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
    for name, data in seeds:
        if name not in ("made_basic", "made_int8", "made_ops"):
            continue
        for n, d in hostile(name, data, name != "made_ops"):
            put(n, d)


main()
