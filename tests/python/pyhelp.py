"""Helpers of the graft package's pytest suite (tests/python/).  meson runs it
with PYTHONPATH at python/ and GRAFT_LIBRARY at the built libgraft.so.0
(tests/meson.build); torch is imported by the tests only, as the oracle."""
import json
import os
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "interop"))
from graftlib import FIXTURES, SOURCE_ROOT, flatten, sha256_file, torch_as_numpy  # noqa: E402,F401


def torch_load(path):
    import torch
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - torch 1.13's weights_only refuses float scalars
        return torch.load(path, map_location="cpu", weights_only=False)


def assert_model_equals_torch(model, obj):
    """Names in order, dtypes, shapes and every value of a graft model equal
    what torch.load gave."""
    import graft
    want = list(flatten(obj))
    assert [t.name for t in model] == [n for n, _ in want]
    for (name, tt), t in zip(want, model):
        ref = torch_as_numpy(tt)
        got = np.asarray(t)
        assert t.dtype == str(tt.dtype).replace("torch.", ""), (name, t.dtype, tt.dtype)
        assert got.dtype == graft.numpy_dtype(t.dtype) == ref.dtype, (name, got.dtype, ref.dtype)
        assert got.shape == tuple(tt.shape) == t.shape, name
        assert np.array_equal(got, ref, equal_nan=got.dtype.kind in "fc"), name


def file_mapping_of(address):
    """The file /proc/self/maps says holds `address`, or None."""
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if lo <= address < hi:
                return parts[5].strip() if len(parts) > 5 else None
    return None


def save_safetensors(path, tensors):
    """A safetensors file laid out as the reference writer does: name ->
    (dtype code, shape, raw bytes)."""
    header, blobs, off = {}, [], 0
    for name, (dt, shape, raw) in tensors.items():
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def run_python(code, env=None, cwd=None):
    """Run code in a fresh /usr/bin/python3 (sys.executable); stdout; fails on
    a non-zero exit."""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=env, cwd=cwd)
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout
