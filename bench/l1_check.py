#!/usr/bin/python3
"""Spot-check bench L1's outputs against NumPy (not graft): a few tensors of
the Keras 3 .weights.h5 (h5py) and the GGUF (tests/interop/ggufref.py, an
independent reader) equal the source's bf16 values transposed / RoPE-
permuted and rounded to float16.
usage: l1_check.py DIR [OUTDIR] (DIR holds the model; OUTDIR, by default DIR,
out.weights.h5 and out.gguf)"""
import json
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "interop"))
import ggufref  # noqa: E402
from gen_llm import keras_name  # noqa: E402

d = sys.argv[1]
o = sys.argv[2] if len(sys.argv) > 2 else d
idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))["weight_map"]


def source(name):
    path = os.path.join(d, idx[name])
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        h = json.loads(f.read(n))[name]
        f.seek(8 + n + h["data_offsets"][0])
        raw = np.frombuffer(f.read(h["data_offsets"][1] - h["data_offsets"][0]), np.uint16)
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(h["shape"])


names = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
         "model.layers.0.mlp.down_proj.weight", "model.layers.0.input_layernorm.weight",
         "lm_head.weight"]
with h5py.File(os.path.join(o, "out.weights.h5"), "r") as f:
    for n in names:
        a = source(n)
        want = (a.T if a.ndim == 2 and n != "model.embed_tokens.weight" else a).astype(np.float16)
        got = f[keras_name(n)][()]
        assert got.dtype == np.float16 and np.array_equal(got, want), n
_, _, tensors, _ = ggufref.read(os.path.join(o, "out.gguf"))
g = {t[0]: t for t in tensors}
q = source("model.layers.0.self_attn.q_proj.weight")
want = q.reshape(24, 2, 64, 3072).swapaxes(1, 2).reshape(q.shape).astype(np.float16)
name, gt, ne, _, raw = g["blk.0.attn_q.weight"]
assert gt == 1 and list(ne) == [3072, 3072], (gt, ne)
assert np.array_equal(np.frombuffer(raw, np.float16).reshape(3072, 3072), want), "attn_q"
name, gt, ne, _, raw = g["blk.0.ffn_down.weight"]
assert np.array_equal(np.frombuffer(raw, np.float16).reshape(3072, 9216),
                      source("model.layers.0.mlp.down_proj.weight").astype(np.float16)), "ffn_down"
print(f"  outputs checked against NumPy: {len(names)} Keras datasets, 2 GGUF tensors")
