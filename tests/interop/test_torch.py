"""PyTorch readers and writer against the real torch 1.13 (run with /usr/bin/python3).

Files written by torch.save (zip and legacy, every dtype, views into shared
storages, non-contiguous strides, nested checkpoints, Parameters, scalars,
empty tensors) and every fixture in $GRAFT_FIXTURES/pytorch_zip and
pytorch_legacy are listed with `graft ls --json` and compared with what
torch.load gives.  Hostile pickles must be refused without running anything;
malformed files (truncated, bad sizes, samples/corrupt/pytorch) must exit 2
with a message naming the file.  The writer (driven by the test_torch unit
binary's --rewrite mode) must produce files torch.load reads back exactly.
"""
import glob
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import zipfile

import torch

sys.path.insert(0, os.path.dirname(__file__))
import graftlib  # noqa: E402

R = graftlib.Results()
GRAFT = graftlib.GRAFT
REWRITE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(GRAFT))), "tests",
                       "test_torch")
torch.manual_seed(0)


flatten = graftlib.flatten


def expected(obj):
    return [{"name": n, "dtype": graftlib.TORCH_DTYPE_NAMES[str(t.dtype)],
             "shape": list(t.shape), "sha256": graftlib.sha256_of_torch(t)}
            for n, t in flatten(obj)]


def compare(path, obj, *extra):
    got = graftlib.ls_json(path, *extra)
    want = expected(obj)
    assert [g["name"] for g in got] == [w["name"] for w in want], \
        f"names differ:\n graft {[g['name'] for g in got]}\n torch {[w['name'] for w in want]}"
    for g, w in zip(got, want):
        assert g == w, f"{w['name']}: graft {g} vs torch {w}"


def torch_load(path, weights_only=True):
    return torch.load(path, map_location="cpu", weights_only=weights_only)


# ---- files written by torch.save -----------------------------------------

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8,
          torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool,
          torch.complex64, torch.complex128]


def make_dtypes():
    d = {}
    for dt in DTYPES:
        if dt == torch.bool:
            t = torch.rand(3, 4) > 0.5
        elif dt.is_complex:
            t = torch.randn(3, 4, dtype=dt)
        elif dt.is_floating_point:
            t = torch.randn(3, 4).to(dt)
        else:
            t = torch.randint(-100 if dt != torch.uint8 else 0, 100, (3, 4)).to(dt)
        d[str(dt).split(".")[1]] = t
    return d


def make_views():
    base = torch.arange(100, dtype=torch.float32)
    grid = torch.arange(60, dtype=torch.float64).view(6, 10)
    return {
        "base": base,                              # the whole shared storage
        "slice": base[10:20],                      # storage offset 10
        "reshaped": base[50:60].view(2, 5),        # offset 50, 2-D
        "transposed": base[:20].view(4, 5).t(),    # strides (1, 5)
        "strided": grid[::2, 1::3],                # offset 1, strides (20, 3)
        "column": grid[:, 7],                      # offset 7, stride (10,)
        "expanded": torch.ones(3, 1).expand(3, 4),  # stride 0
        "fortran": torch.arange(24).view(4, 3, 2).permute(2, 1, 0),
    }


def make_shapes():
    return {
        "scalar": torch.tensor(3.5),
        "int_scalar": torch.tensor(7, dtype=torch.int64),
        "empty": torch.zeros(0, 3),
        "empty_mid": torch.zeros(2, 0, 4, dtype=torch.int32),
        "one": torch.ones(1, 1, 1),
    }


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                            torch.nn.ReLU())
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def make_checkpoint():
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.randn(2, 3, 6, 6)).sum().backward()
    opt.step()
    return {"epoch": 3, "model": net.state_dict(), "optimizer": opt.state_dict(),
            "name": "run-1", "loss": 0.25, "history": [torch.ones(2), 1.5, "x", None],
            "extra": {7: torch.zeros(3), "flag": True}}


def make_parameters():
    w = torch.nn.Parameter(torch.randn(2, 3))
    return {"w": w, "frozen": torch.nn.Parameter(torch.randn(4), requires_grad=False)}


def make_tied():
    t = torch.randn(5, 2)
    return {"embed.weight": t, "head.weight": t, "bias": torch.randn(5)}


CASES = {
    "dtypes": (make_dtypes, True),
    "views": (make_views, True),
    "shapes": (make_shapes, True),
    "checkpoint": (make_checkpoint, False),  # floats: torch 1.13 weights_only refuses BINFLOAT
    "parameters": (make_parameters, True),
    "tied": (make_tied, True),
    "root_tensor": (lambda: torch.arange(6).view(2, 3), True),
}


def check_saved(name, make, weights_only, legacy):
    path = R.path(f"{name}{'_legacy' if legacy else ''}.pth")
    torch.save(make(), path, _use_new_zipfile_serialization=not legacy)
    compare(path, torch_load(path, weights_only))
    fmt = graftlib.run("ls", "--json", "--format", "pytorch-legacy" if legacy else "pytorch-zip",
                       path)
    assert fmt.returncode == 0


for case, (make, wo) in CASES.items():
    for legacy in (False, True):
        R.check(f"torch.save {case} {'legacy' if legacy else 'zip'}", check_saved, case, make,
                wo, legacy)


def check_select():
    path = R.path("select.pth")
    ck = make_checkpoint()
    torch.save(ck, path)
    compare(path, ck["model"], "--select", "model")
    compare(path, {"state": ck["optimizer"]["state"]}, "--select", "optimizer")
    p = graftlib.run("ls", "--select", "nothing", path, check=False)
    assert p.returncode == 2 and "nothing" in p.stderr, p.stderr


R.check("--select a sub-tree of a checkpoint", check_select)


def check_deflated():
    """Compressed records (a zip re-packed with deflate) are inflated."""
    src, dst = R.path("plain.pth"), R.path("deflated.pth")
    sd = make_views()
    torch.save(sd, src)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    compare(dst, torch_load(dst))


R.check("deflated zip records", check_deflated)

# ---- real files ------------------------------------------------------------

FIXTURES = sorted(glob.glob(os.path.join(graftlib.FIXTURES, "pytorch_zip", "*", "*")) +
                  glob.glob(os.path.join(graftlib.FIXTURES, "pytorch_legacy", "*", "*")))


def check_fixture(path):
    try:
        obj = torch_load(path, True)
    except Exception:  # noqa: BLE001 - checkpoints with floats need the full unpickler
        obj = torch_load(path, False)
    compare(path, obj)


for fx in FIXTURES:
    R.check(f"fixture {os.path.relpath(fx, graftlib.FIXTURES)}", check_fixture, fx)
R.check("fixtures present", lambda: len(FIXTURES) >= 20 or (_ for _ in ()).throw(
    AssertionError(f"only {len(FIXTURES)} PyTorch fixtures under {graftlib.FIXTURES}")))


def check_torchscript():
    for path in glob.glob(os.path.join(graftlib.FIXTURES, "pytorch_torchscript", "*", "*")):
        p = graftlib.run("ls", path, check=False)
        assert p.returncode == 2 and "TorchScript" in p.stderr, p.stderr


R.check("TorchScript archives are refused clearly", check_torchscript)

# ---- the writer ---------------------------------------------------------------


def rewrite(src, dst, xor=False):
    args = [REWRITE, "--rewrite", src, dst] + (["--xor"] if xor else [])
    p = subprocess.run(args, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def same_structure(a, b):
    """Equal apart from tensor storage layout: keys, order, non-tensor values."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and type(a) is type(b)
        assert a.dtype == b.dtype and a.shape == b.shape and b.is_contiguous()
        assert a.requires_grad == b.requires_grad
        return
    assert type(a) is type(b), f"{type(a)} vs {type(b)}"
    if isinstance(a, dict):
        assert list(a.keys()) == list(b.keys())
        for k in a:
            same_structure(a[k], b[k])
        assert getattr(a, "_metadata", None) == getattr(b, "_metadata", None)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            same_structure(x, y)
    else:
        assert a == b, f"{a!r} vs {b!r}"


def check_writer(name, make, weights_only, legacy):
    src, out, xout = R.path(f"w_{name}.pth"), R.path(f"w_{name}_out.pth"), \
        R.path(f"w_{name}_xor.pth")
    obj = make()
    if isinstance(obj, dict) and name == "views":
        obj = torch.nn.Module().state_dict()  # an OrderedDict with _metadata
        obj.update(make_views())
        obj._metadata = {"": {"version": 1}}
    torch.save(obj, src, _use_new_zipfile_serialization=not legacy)
    rewrite(src, out)
    a, b = torch_load(src, weights_only), torch_load(out, weights_only)
    same_structure(a, b)
    for (na, ta), (nb, tb) in zip(flatten(a), flatten(b)):
        assert na == nb and torch.equal(ta, tb), na
    if name == "tied":
        assert b["embed.weight"] is b["head.weight"], "tied weights became two tensors"
    # A fill that changes every byte: torch must read exactly those bytes.
    rewrite(src, xout, xor=True)
    c = torch_load(xout, weights_only)
    for (na, ta), (nc, tc) in zip(flatten(a), flatten(c)):
        ta, tc = ta.detach().contiguous(), tc.detach()
        if ta.dtype == torch.bfloat16:
            ta, tc = ta.view(torch.int16), tc.view(torch.int16)
        want = bytes(x ^ 1 for x in ta.numpy().tobytes())
        assert tc.numpy().tobytes() == want, na
    compare(out, b)


for case, (make, wo) in CASES.items():
    for legacy in (False, True):
        R.check(f"writer {case} from {'legacy' if legacy else 'zip'}", check_writer, case, make,
                wo, legacy)


def check_writer_fixtures():
    for path in FIXTURES:
        out = R.path("fx_out.pth")
        rewrite(path, out)
        try:
            a, b = torch_load(path, True), torch_load(out, True)
        except Exception:  # noqa: BLE001
            a, b = torch_load(path, False), torch_load(out, False)
        same_structure(a, b)
        for (na, ta), (nb, tb) in zip(flatten(a), flatten(b)):
            assert na == nb and torch.equal(ta, tb), f"{path}: {na}"


R.check("writer round-trips every fixture", check_writer_fixtures)


def check_writer_layout():
    """64-byte aligned stored records, one storage per tensor, version 3."""
    src, out = R.path("lay.pth"), R.path("lay_out.pth")
    torch.save(make_views(), src)
    rewrite(src, out)
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert names[0] == "lay_out/data.pkl" and names[-1] == "lay_out/version", names
        assert z.read("lay_out/version") == b"3\n"
        data = [i for i in z.infolist() if "/data/" in i.filename]
        assert len(data) == len(make_views()), names
        raw = open(out, "rb").read()
        assert raw.rfind(b"PK\x06\x06") > 0 and raw.rfind(b"PK\x06\x07") > 0, "no zip64 end"
        for i in z.infolist():
            assert i.compress_type == zipfile.ZIP_STORED
            nlen, xlen = struct.unpack("<HH", raw[i.header_offset + 26:i.header_offset + 30])
            assert (i.header_offset + 30 + nlen + xlen) % 64 == 0, i.filename


R.check("writer layout is torch.save's", check_writer_layout)


def check_writer_keeps_python_values():
    """Values graft only carries along (NumPy scalars and arrays, bytes, sets,
    big ints, complex, devices, dtypes, Size, argparse.Namespace) come back
    equal and of the same type."""
    import argparse
    import numpy as np
    src, out = R.path("misc.pth"), R.path("misc_out.pth")
    obj = {"w": torch.ones(2), "acc": np.float64(0.5), "arr": np.arange(3), "b": b"\x00\xff",
           "dev": torch.device("cpu"), "ns": argparse.Namespace(lr=0.1, t=torch.zeros(1)),
           "s": {1, 2}, "big": 2**100, "neg": -2**70, "c": complex(1, 2), "dt": torch.float16,
           "sz": torch.Size([2, 3]), "nested": [(1, "a"), {"k": None}]}
    torch.save(obj, src)
    compare(src, {"w": obj["w"], "ns": {"t": obj["ns"].t}})
    rewrite(src, out)
    a, b = torch_load(src, False), torch_load(out, False)
    for k in a:
        assert type(a[k]) is type(b[k]), k
        if isinstance(a[k], np.ndarray):
            assert (a[k] == b[k]).all() and a[k].dtype == b[k].dtype
        elif k == "ns":
            assert a[k].lr == b[k].lr and torch.equal(a[k].t, b[k].t)
        elif isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k])
        else:
            assert a[k] == b[k], k


R.check("writer keeps other Python values", check_writer_keeps_python_values)

def check_writer_refuses_blowup():
    """A skeleton whose pickle shares one sub-tree 2^30 times (inside an
    object's arguments, which the reader does not walk): the writer stops."""
    path, out = R.path("dag.pth"), R.path("dag_out.pth")
    pkl = (b"\x80\x02}(X\x01\x00\x00\x00x" + b"cargparse\nNamespace\nN" +
           b"q\x00h\x00\x86" * 30 + b"\x85Ru.")
    zip_with_pickle(path, pkl)
    assert graftlib.run("ls", path).returncode == 0
    p = subprocess.run([REWRITE, "--rewrite", path, out], capture_output=True, text=True)
    assert p.returncode == 2 and "more than" in p.stderr, p.stderr
    assert not os.path.exists(out)


# ---- hostile pickles ----------------------------------------------------------

MARKER = R.path("pwned")


class Evil:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def zip_with_pickle(path, pkl, version=b"3\n", extra=()):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pkl)
        for name, data in extra:
            z.writestr(name, data)
        if version is not None:
            z.writestr("archive/version", version)


R.check("writer stops on shared-sub-tree blowup", check_writer_refuses_blowup)


def legacy_with_pickle(path, pkl):
    with open(path, "wb") as f:
        pickle.dump(0x1950a86a20f9469cfc6c, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": True,
                     "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=2)
        f.write(pkl)
        pickle.dump([], f, protocol=2)


def state_dict_with(evil):
    sd = torch.nn.Linear(2, 2).state_dict()
    buf = io.BytesIO()
    torch.save({"weight": sd["weight"], "payload": evil}, buf)
    return zipfile.ZipFile(io.BytesIO(buf.getvalue())).read("archive/data.pkl")


def handmade(module, name):
    """GLOBAL module.name called with the shell command: what a REDUCE looks like."""
    return (b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\nX" +
            struct.pack("<I", len(f"touch {MARKER}")) + f"touch {MARKER}".encode() +
            b"\x85R.")


import subprocess as _sp  # noqa: E402  (only referenced, never called)

HOSTILE = {
    "os.system": (pickle.dumps(Evil(os.system, f"touch {MARKER}"), protocol=2), "system"),
    "builtins.eval": (pickle.dumps(Evil(eval, f"__import__('os').system('touch {MARKER}')"),
                                   protocol=2), "eval"),
    "builtins.exec": (handmade("builtins", "exec"), "builtins.exec"),
    "getattr": (handmade("__builtin__", "getattr"), "__builtin__.getattr"),
    # protocol 2 renames subprocess to Python 2's 'commands'; both are refused
    "subprocess.Popen": (pickle.dumps(Evil(_sp.Popen, ["touch", MARKER]), protocol=2),
                         "commands.Popen"),
    "subprocess.Popen protocol 4": (pickle.dumps(Evil(_sp.Popen, ["touch", MARKER]),
                                                 protocol=4), "subprocess.Popen"),
    "protocol 4 STACK_GLOBAL": (pickle.dumps(Evil(os.system, f"touch {MARKER}"), protocol=4),
                                "system"),
    "nt.system": (handmade("nt", "system"), "nt.system"),
    "os lookalike of OrderedDict": (handmade("os", "OrderedDict"), "os.OrderedDict"),
    "os lookalike of _rebuild_tensor_v2": (handmade("os", "_rebuild_tensor_v2"),
                                           "os._rebuild_tensor_v2"),
    "torch.load": (handmade("torch", "load"), "torch.load"),
    "dunder attribute": (handmade("torch._utils", "__builtins__"), "torch._utils.__builtins__"),
    "inside a state dict": (state_dict_with(Evil(os.system, f"touch {MARKER}")), "system"),
}


def check_hostile(name, pkl, global_name, legacy):
    path = R.path("evil.pt")
    if legacy:
        legacy_with_pickle(path, pkl)
    else:
        zip_with_pickle(path, pkl)
    p = graftlib.run("ls", path, check=False)
    assert not os.path.exists(MARKER), "the pickle ran code"
    assert p.returncode == 2, f"exit {p.returncode}: {p.stderr}"
    assert path in p.stderr and "is not allowed" in p.stderr and global_name in p.stderr, \
        p.stderr
    assert p.stderr.count("\n") == 1, p.stderr


for hname, (hpkl, hglobal) in HOSTILE.items():
    for legacy in (False, True):
        R.check(f"hostile {hname} ({'legacy' if legacy else 'zip'})", check_hostile, hname,
                hpkl, hglobal, legacy)

# ---- malformed files ------------------------------------------------------------


def expect_fail(path, *substrings):
    p = graftlib.run("ls", "--json", path, check=False)
    assert p.returncode == 2, f"{path}: exit {p.returncode}: {p.stderr}"
    line = p.stderr.strip()
    assert line.startswith(f"graft: {path}:") and "\n" not in line, line
    for s in substrings:
        assert s in line, f"{s!r} not in {line!r}"


def check_truncations(legacy):
    src = R.path(f"trunc_src{'_l' if legacy else ''}.pth")
    torch.save(make_checkpoint()["model"], src, _use_new_zipfile_serialization=not legacy)
    data = open(src, "rb").read()
    cut = R.path("cut.pth")
    step = max(1, len(data) // 97)
    for n in list(range(0, len(data), step)) + [len(data) - 1, len(data) - 8]:
        with open(cut, "wb") as f:
            f.write(data[:n])
        expect_fail(cut)


R.check("truncated zip files", check_truncations, False)
R.check("truncated legacy files", check_truncations, True)


def zip_parts(sd):
    buf = io.BytesIO()
    torch.save(sd, buf)
    z = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    return {i.filename: z.read(i.filename) for i in z.infolist()}


def write_parts(path, parts):
    with zipfile.ZipFile(path, "w") as z:
        for k, v in parts.items():
            z.writestr(k, v)


def check_big_endian():
    """A byteorder record of "big" (PyTorch >= 2.1 on big-endian hosts): graft
    gives the same little-endian elements as the original."""
    src, dst = R.path("le.pth"), R.path("be.pth")
    sd = make_dtypes()
    torch.save(sd, src)
    parts = zip_parts(sd)
    for i, t in enumerate(sd.values()):  # one storage per tensor, keys in dict order
        unit = t.element_size() // (2 if t.is_complex() else 1)
        raw = parts[f"archive/data/{i}"]
        parts[f"archive/data/{i}"] = b"".join(raw[k:k + unit][::-1]
                                              for k in range(0, len(raw), unit))
    parts["archive/byteorder"] = b"big"
    write_parts(dst, parts)
    assert graftlib.ls_json(dst) == graftlib.ls_json(src)
    compare(dst, sd)


V3_SIZES = {"uint16": 2, "uint32": 4, "uint64": 8, "float8_e4m3fn": 1, "float8_e5m2": 1}


def v3_pickle(entries):
    """data.pkl of {name: _rebuild_tensor_v3(UntypedStorage, ..., torch.<dtype>)}."""
    def s(x):
        return b"X" + struct.pack("<I", len(x)) + x.encode()
    out = b"\x80\x02}("
    for i, (name, dtype, n) in enumerate(entries):
        out += (s(name) + b"ctorch._utils\n_rebuild_tensor_v3\n((" + s("storage") +
                b"ctorch\nUntypedStorage\n" + s(str(i)) + s("cpu") + b"J" +
                struct.pack("<i", n * V3_SIZES[dtype]) +
                b"tQK\x00K" + bytes([n]) + b"\x85K\x01\x85\x89ccollections\nOrderedDict\n)R"
                b"ctorch\n" + dtype.encode() + b"\ntR")
    return out + b"u."


def check_new_dtypes():
    """uint16/32/64 through _rebuild_tensor_v3 over untyped storages (PyTorch >= 2.3)."""
    import numpy as np
    arrays = {"a": np.array([1, 2, 65535], "<u2"), "b": np.array([7, 2**32 - 1], "<u4"),
              "c": np.array([2**64 - 1], "<u8")}
    path = R.path("v3.pth")
    parts = {"archive/data.pkl": v3_pickle([(k, str(v.dtype), v.size)
                                            for k, v in arrays.items()]),
             "archive/version": b"3\n"}
    for i, v in enumerate(arrays.values()):
        parts[f"archive/data/{i}"] = v.tobytes()
    write_parts(path, parts)
    got = graftlib.ls_json(path)
    want = [{"name": k, "dtype": str(v.dtype), "shape": [v.size],
             "sha256": graftlib.sha256_of_array(v)} for k, v in arrays.items()]
    assert got == want, got


def check_quantized():
    path = R.path("q.pth")
    torch.save({"w": torch.ones(2),
                "q": torch.quantize_per_tensor(torch.randn(4), 0.1, 0, torch.qint8)}, path)
    got = {t["name"]: t for t in graftlib.ls_json(path)}  # issue 18 item 15: listed
    assert got["w"]["dtype"] == "float32" and got["q"]["dtype"] == "unsupported", got
    assert got["q"]["stored_type"] == "torch quantized tensor over torch.QInt8Storage", got["q"]
    assert got["q"]["shape"] == [4] and got["q"]["sha256"] is None, got["q"]


def check_big_endian_legacy():
    """A legacy stream written on a big-endian host: sys_info says so, the
    storage's numel and elements are big-endian."""
    import pickletools
    src, dst = R.path("le_legacy.pt"), R.path("be_legacy.pt")
    sd = {"w": torch.arange(6, dtype=torch.float32).view(2, 3),
          "i": torch.arange(-3, 2, dtype=torch.int16)}
    torch.save(sd, src, _use_new_zipfile_serialization=False)
    data = open(src, "rb").read()
    f = io.BytesIO(data)
    ends = []
    for _ in range(5):
        for _op in pickletools.genops(f):
            pass
        ends.append(f.tell())
    keys = pickle.loads(data[ends[3]:ends[4]])
    out = io.BytesIO()
    out.write(data[:ends[1]])
    pickle.dump({"protocol_version": 1001, "little_endian": False,
                 "type_sizes": {"short": 2, "int": 4, "long": 4}}, out, protocol=2)
    out.write(data[ends[2]:ends[4]])
    pos = ends[4]
    sizes = {}
    for t in sd.values():  # key order is sorted; match storages by their numel
        sizes[t.numel()] = t.element_size()
    for _k in keys:
        numel = struct.unpack("<q", data[pos:pos + 8])[0]
        unit = sizes[numel]
        raw = data[pos + 8:pos + 8 + numel * unit]
        out.write(struct.pack(">q", numel))
        out.write(b"".join(raw[i:i + unit][::-1] for i in range(0, len(raw), unit)))
        pos += 8 + numel * unit
    assert pos == len(data)
    open(dst, "wb").write(out.getvalue())
    assert graftlib.ls_json(dst) == graftlib.ls_json(src)
    compare(dst, sd)


class _V3Recorder(pickle.Unpickler):
    """Loads a data.pkl without torch >= 2.1: the rebuild call and torch
    globals become plain tuples, so what graft wrote can be compared with
    what torch/_tensor.py's _reduce_ex_internal pickles for a dtype in
    torch.storage._new_dtypes(): _rebuild_tensor_v3(UntypedStorage, offset,
    size, stride, requires_grad, OrderedDict(), dtype), the storage's
    persistent id ('storage', torch.UntypedStorage, key, location, nbytes)."""

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v3"):
            return lambda *args: ("v3",) + args
        if (module, name) == ("collections", "OrderedDict"):
            import collections
            return collections.OrderedDict
        if module == "torch":
            return ("torch", name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

    def persistent_load(self, pid):
        return pid


def check_float8():
    """float8_e4m3fn / float8_e5m2 (issue 18 item 14) as PyTorch >= 2.1
    pickles them: read from such a file, and written the same way."""
    raw = {"a": ("float8_e4m3fn", "F8_E4M3", [2, 3], bytes([0x38, 0x40, 0xb8, 0x7e, 0x00, 0x80])),
           "b": ("float8_e5m2", "F8_E5M2", [4], bytes([0x3c, 0x40, 0xbc, 0x7b]))}
    path = R.path("f8_v3.pth")
    entries = [(k, dt, len(b)) for k, (dt, _, _, b) in raw.items()]
    parts = {"archive/data.pkl": v3_pickle(entries), "archive/version": b"3\n"}
    for i, (_, _, _, b) in enumerate(raw.values()):
        parts[f"archive/data/{i}"] = b
    write_parts(path, parts)
    got = {t["name"]: t for t in graftlib.ls_json(path)}
    for k, (dt, _, _, b) in raw.items():
        assert got[k]["dtype"] == dt and got[k]["sha256"] == hashlib.sha256(b).hexdigest(), got[k]
    # into safetensors and back into a .pth: the bytes survive, and the
    # pickle is the one torch writes
    st, back = R.path("f8.safetensors"), R.path("f8_back.pth")
    graftlib.save_st(st, {k: (sdt, shape, b) for k, (_, sdt, shape, b) in raw.items()})
    graftlib.run("convert", st, "-o", back)
    with zipfile.ZipFile(back) as z:
        pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        obj = _V3Recorder(io.BytesIO(z.read(pkl))).load()
        prefix = pkl[:-len("data.pkl")]
        for k, (dt, _, shape, b) in raw.items():
            call = obj[k]
            assert call[0] == "v3", call
            storage, offset, size, stride, grad, hooks, dtype = call[1:]
            assert storage[:2] == ("storage", ("torch", "UntypedStorage")), storage
            assert storage[3] == "cpu" and storage[4] == len(b), storage
            assert (offset, list(size), grad, dict(hooks)) == (0, shape, False, {}), call
            assert list(stride) == [shape[1], 1] if len(shape) == 2 else [1], stride
            assert dtype == ("torch", dt), dtype
            assert z.read(prefix + "data/" + storage[2]) == b, k


R.check("big-endian legacy stream", check_big_endian_legacy)
R.check("big-endian byteorder record", check_big_endian)
R.check("uint16/32/64 via _rebuild_tensor_v3", check_new_dtypes)
R.check("float8 read and written as PyTorch >= 2.1 pickles it", check_float8)
R.check("quantized tensors are listed as unsupported", check_quantized)

def check_corrupt_zips():
    good = {"w": torch.arange(12, dtype=torch.float32).view(3, 4)}
    path = R.path("bad.pth")
    parts = zip_parts(good)
    short = dict(parts, **{"archive/data/0": parts["archive/data/0"][:40]})
    write_parts(path, short)
    expect_fail(path, "storage '0' holds 40 bytes", "12 elements (48 bytes)")
    missing = {k: v for k, v in parts.items() if k != "archive/data/0"}
    write_parts(path, missing)
    expect_fail(path, "storage record 'archive/data/0' is missing")
    write_parts(path, dict(parts, **{"archive/version": b"abc"}))
    expect_fail(path, "is not a version number")
    write_parts(path, {k: v for k, v in parts.items() if k != "archive/version"})
    expect_fail(path, "no 'archive/version' record")
    write_parts(path, dict(parts, **{"archive/byteorder": b"middle"}))
    expect_fail(path, "neither 'little' nor 'big'")
    # A view past the end of its storage: storage offset 10 of a 12-element storage.
    pkl = parts["archive/data.pkl"].replace(b"Q\x4b\x00", b"Q\x4b\x0a", 1)
    assert pkl != parts["archive/data.pkl"]
    write_parts(path, dict(parts, **{"archive/data.pkl": pkl}))
    expect_fail(path, "tensor 'w'", "lies outside")
    # Truncated pickle inside an intact zip.
    write_parts(path, dict(parts, **{"archive/data.pkl": parts["archive/data.pkl"][:-20]}))
    expect_fail(path, "data.pkl", "pickle")
    # Entry sizes that run past the end: patch the central directory's sizes.
    torch.save(good, path)
    raw = bytearray(open(path, "rb").read())
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 20:cd + 28] = struct.pack("<II", 0x7fffffff, 0x7fffffff)
    open(path, "wb").write(raw)
    expect_fail(path)
    # Entry outside the archive folder.
    write_parts(path, dict(parts, **{"other/x": b"1"}))
    expect_fail(path, "outside the archive folder")


R.check("corrupt zip archives", check_corrupt_zips)


def check_corrupt_legacy():
    path = R.path("bad_legacy.pt")
    torch.save({"w": torch.arange(12, dtype=torch.float32)}, path,
               _use_new_zipfile_serialization=False)
    raw = bytearray(open(path, "rb").read())
    # The storage's int64 numel header sits 8 + 48 bytes before the end.
    hdr = len(raw) - 48 - 8
    assert struct.unpack("<q", raw[hdr:hdr + 8])[0] == 12
    bad = bytearray(raw)
    bad[hdr:hdr + 8] = struct.pack("<q", 1 << 40)
    open(path, "wb").write(bad)
    expect_fail(path, "holds 1099511627776 elements but its persistent id says 12")
    open(path, "wb").write(raw[:-4])
    expect_fail(path, "runs past the end")
    bad = bytearray(raw)
    bad[5] ^= 0xff  # magic number
    open(path, "wb").write(bad)
    expect_fail(path)


R.check("corrupt legacy streams", check_corrupt_legacy)


def check_samples():
    folder = os.path.join(graftlib.SOURCE_ROOT, "samples", "corrupt", "pytorch")
    expect_file = os.path.join(folder, "EXPECTED")
    lines = [ln.split("\t") for ln in open(expect_file).read().splitlines() if ln.strip()]
    assert len(lines) >= 5
    for name, substring in lines:
        expect_fail(os.path.join(folder, name), substring)


R.check("samples/corrupt/pytorch", check_samples)
R.close()
