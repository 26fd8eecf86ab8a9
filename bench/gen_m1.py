#!/usr/bin/python3
"""Bench M1's inputs (not a test): DIR/m1.safetensors, one float32
[16384, 16384] matrix "w" (1 GiB; a 64 MiB block of N(0, 1) repeated), and
DIR/m1_skel.safetensors, the float16 [16384, 16384] tensor "w" it becomes
after [transpose, {cast: float16}], written sparse.
usage: gen_m1.py DIR"""
import json
import os
import struct
import sys

import numpy as np

N = 16384


def header(dtype, size):
    h = json.dumps({"w": {"dtype": dtype, "shape": [N, N], "data_offsets": [0, size]}},
                   separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h


d = sys.argv[1]
os.makedirs(d, exist_ok=True)
block = np.random.default_rng(1).normal(0, 1, 16 << 20).astype(np.float32).tobytes()
with open(os.path.join(d, "m1.safetensors"), "wb") as f:
    f.write(header("F32", N * N * 4))
    for _ in range(N * N * 4 // len(block)):
        f.write(block)
with open(os.path.join(d, "m1_skel.safetensors"), "wb") as f:
    f.write(header("F16", N * N * 2))
    f.truncate(f.tell() + N * N * 2)
