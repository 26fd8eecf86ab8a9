"""Shared helpers for graft's interop tests (run with /usr/bin/python3).

Each test script builds files with the real framework, runs the graft
binary ($GRAFT) and compares.  `Results` prints the closing line meson and CI
read: 'N passed, M failed'.
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import traceback

GRAFT = os.environ.get("GRAFT", "graft")
FIXTURES = os.environ.get("GRAFT_FIXTURES", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "fixtures"))
SOURCE_ROOT = os.environ.get("GRAFT_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))


LAYOUT_FINDING = ": layout: '"  # how a layout finding's message reads (plan diags)


def run(*args, check=True, input=None, layout_ok=False):
    """Run graft with args; returns CompletedProcess (text).  Unless layout_ok, a
    layout finding (issue 12) on stderr fails the test: every test transplant must
    plan clean, so the check raises no false alarm anywhere in the suite."""
    p = subprocess.run([GRAFT, *map(str, args)], capture_output=True, text=True, input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"graft {' '.join(map(str, args))} exited {p.returncode}: {p.stderr.strip()}")
    if not layout_ok and (LAYOUT_FINDING in p.stderr or (args and args[0] == "plan" and LAYOUT_FINDING in p.stdout)):
        raise AssertionError(f"graft {' '.join(map(str, args))}: layout finding: {p.stderr.strip()}")
    return p


LAYOUT_KEYS = ("role", "layout", "certainty", "gates", "flatten", "layer", "op")


def ls_json(path, *extra):
    """graft ls --json PATH -> [{name, dtype, shape, sha256[, encoding][, quant]}]
    in file order (the role/layout keys of each tensor left out: see ls_layouts)."""
    out = json.loads(run("ls", "--json", *extra, path).stdout)
    return [{k: v for k, v in t.items() if k not in LAYOUT_KEYS} for t in out]


def ls_layouts(path, *extra):
    """graft ls --json PATH, whole: name -> entry (with role, layout, certainty...)."""
    return {t["name"]: t for t in json.loads(run("ls", "--json", *extra, path).stdout)}


def peak_rss(args):
    """graft ARGS: (exit status, peak RSS in KiB of graft and the children it
    reaped, stdout), measured from a small parent (a child forked from the
    test's own process would start with its RSS)."""
    meter = ("import os, subprocess, sys\n"
             "c = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, text=True)\n"
             "out = c.stdout.read()\n"
             "_, status, usage = os.wait4(c.pid, 0)\n"
             "print(status, usage.ru_maxrss, out, sep='\\n')\n")
    env = dict(os.environ)
    if "ASAN_OPTIONS" in env:  # freed blocks ASan holds back are not graft's memory
        env["ASAN_OPTIONS"] += ":quarantine_size_mb=8"
    r = subprocess.run([sys.executable, "-c", meter, GRAFT, *args], capture_output=True,
                       text=True, check=True, env=env)
    return r.stdout.split("\n", 2)


def sha256_of_array(a):
    """SHA-256 of a NumPy array's elements, row-major, little-endian, bool as 1 byte."""
    import numpy as np
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and sys.byteorder == "big"):
        a = a.astype(a.dtype.newbyteorder("<"))
    return hashlib.sha256(a.tobytes(order="C")).hexdigest()


def sha256_of_torch(t):
    """SHA-256 of a torch tensor by graft's convention (bfloat16 as its raw bits)."""
    import torch
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return sha256_of_array(t.numpy())


def flatten(obj, prefix=""):
    """Every torch tensor of a torch.load result under its dotted key path, as
    graft names them (nested dicts, lists and tuples)."""
    import torch
    if isinstance(obj, torch.Tensor):
        yield (prefix or "tensor"), obj
        return
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return
    for k, v in items:
        if isinstance(k, bool) or not isinstance(k, (str, int)):
            continue
        yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))


def torch_as_numpy(t):
    """A torch tensor's values as NumPy, bfloat16 as its raw bits (uint16)."""
    import torch
    t = t.detach().contiguous().cpu()
    return t.view(torch.int16).numpy().view("<u2") if t.dtype == torch.bfloat16 else t.numpy()


TORCH_DTYPE_NAMES = {
    "torch.float16": "float16", "torch.bfloat16": "bfloat16", "torch.float32": "float32",
    "torch.float64": "float64", "torch.int8": "int8", "torch.int16": "int16",
    "torch.int32": "int32", "torch.int64": "int64", "torch.uint8": "uint8",
    "torch.bool": "bool", "torch.complex64": "complex64", "torch.complex128": "complex128",
}

NUMPY_DTYPE_NAMES = {
    "float16": "float16", "float32": "float32", "float64": "float64", "int8": "int8",
    "int16": "int16", "int32": "int32", "int64": "int64", "uint8": "uint8",
    "uint16": "uint16", "uint32": "uint32", "uint64": "uint64", "bool": "bool",
    "complex64": "complex64", "complex128": "complex128",
}


def expect_refused(path, what):
    """`graft ls PATH` fails cleanly (exit > 0, no signal) with one stderr line
    that names PATH and contains WHAT."""
    p = run("ls", path, check=False)
    assert p.returncode > 0, f"exit {p.returncode}"
    line = p.stderr.strip()
    assert "\n" not in line, f"not one line: {p.stderr!r}"
    assert path in line, f"file not named: {line}"
    assert what in line, f"'{what}' not in: {line}"


class Results:
    """Collects named checks; `close()` prints the tally and exits."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.tmp = tempfile.mkdtemp(prefix="graft-interop-")

    def check(self, name, fn, *args):
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - report every failure, keep going
            self.failed += 1
            print(f"FAIL {name}")
            traceback.print_exc()
        else:
            self.passed += 1
            print(f"ok   {name}")

    def path(self, name):
        return os.path.join(self.tmp, name)

    def close(self):
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed or not self.passed else 0)


def sha256_file(path):
    """SHA-256 of a whole file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_st(path, tensors):
    """safetensors writer: {name: (dtype string, shape, bytes)}."""
    header, blobs, off = {}, [], 0
    for name, (dt, shape, b) in tensors.items():
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    js = json.dumps(header).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))


def load_st(path, name):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    h = json.loads(data[8:8 + n])
    a, b = h[name]["data_offsets"]
    return h[name]["dtype"], data[8 + n + a:8 + n + b]
