"""Keras HDF5 / .weights.h5 / .keras: graft against h5py on the real fixtures
and on files built here with h5py (layouts, dtypes, malformed inputs)."""
import glob
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import graftlib  # noqa: E402
from graftlib import FIXTURES, Results, ls_json, run, sha256_of_array  # noqa: E402

R = Results()
K2 = sorted(glob.glob(os.path.join(FIXTURES, "keras2_h5", "*", "*.h5")))
K3H5 = sorted(glob.glob(os.path.join(FIXTURES, "keras3", "*", "*.h5")))
K3ZIP = sorted(glob.glob(os.path.join(FIXTURES, "keras3", "*", "*.keras")))


# ---- what Keras itself would list, read with h5py ----------------------------

def name_list(g, key):
    if key in g.attrs:
        v = list(g.attrs[key])
    else:
        v, k = [], 0
        while f"{key}{k}" in g.attrs:
            v.extend(g.attrs[f"{key}{k}"])
            k += 1
    return [x.decode() if isinstance(x, bytes) else str(x) for x in v]


def natural(s):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)]


def tree(g, prefix=""):
    out = []
    for k in sorted(g.keys(), key=natural):
        obj = g[k]
        name = f"{prefix}/{k}" if prefix else k
        if isinstance(obj, h5py.Dataset):
            out.append((name, obj))
        else:
            out.extend(tree(obj, name))
    return out


def expected(f):
    """[(name, h5py dataset)] in the order graft must list them."""
    if "layer_names" in f.attrs or "layer_names0" in f.attrs:
        base = f
    elif "model_weights" in f:
        base = f["model_weights"]
    else:
        return tree(f)
    out = []
    layers = name_list(base, "layer_names")
    for layer in layers:
        for w in name_list(base[layer], "weight_names"):
            out.append((w, base[layer][w]))
    if "top_level_model_weights" in base and "top_level_model_weights" not in layers:
        for w in name_list(base["top_level_model_weights"], "weight_names"):
            out.append((w, base["top_level_model_weights"][w]))
    if base is not f and "optimizer_weights" in f:
        og = f["optimizer_weights"]
        for w in name_list(og, "weight_names"):
            out.append(("optimizer_weights/" + w, og[w]))
    return out


DT = {"float16": "float16", "float32": "float32", "float64": "float64", "int8": "int8",
      "int16": "int16", "int32": "int32", "int64": "int64", "uint8": "uint8", "bool": "bool",
      "uint16": "uint16", "uint32": "uint32", "uint64": "uint64"}


def dtype_of(ds):
    if ds.attrs.get("dtype") in ("bfloat16", b"bfloat16"):
        return "bfloat16"
    return DT[ds.dtype.newbyteorder("=").name]


def compare_listing(path, h5file):
    with h5py.File(h5file, "r") as f:
        want = [(n, dtype_of(d), list(d.shape), sha256_of_array(d[()])) for n, d in expected(f)]
    got = [(t["name"], t["dtype"], t["shape"], t["sha256"]) for t in ls_json(path)]
    assert len(want) > 0
    assert got == want, f"\ngraft: {got}\nh5py:  {want}"


def inner_h5(keras_zip, dest):
    with zipfile.ZipFile(keras_zip) as z:
        with open(dest, "wb") as out:
            out.write(z.read("model.weights.h5"))
    return dest


# ---- every group, attribute and value, for before/after comparisons ----------

def attr_value(v):
    if isinstance(v, np.ndarray):
        return (v.dtype.str, v.shape, [x.decode() if isinstance(x, bytes) else x for x in v.ravel().tolist()])
    if isinstance(v, bytes):
        return ("bytes", v)
    if isinstance(v, np.generic):
        return (v.dtype.str, v.item())
    return (type(v).__name__, v)


def dump(path, with_values=True):
    out = {}
    with h5py.File(path, "r") as f:
        def attrs(o):
            return {k: (o.attrs.get_id(k).dtype.str, attr_value(o.attrs[k])) for k in o.attrs}
        out["/"] = ("G", attrs(f), list(f.keys()))

        def vis(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = ("D", obj.dtype.str, obj.shape, obj.chunks, obj.compression,
                             obj.compression_opts, obj.shuffle, attrs(obj),
                             sha256_of_array(obj[()]) if with_values else None)
            else:
                out[name] = ("G", attrs(obj), list(obj.keys()))
        f.visititems(vis)
    return out


def values(path):
    with h5py.File(path, "r") as f:
        return {n: np.array(d[()]) for n, d in tree(f)}


def randomize(path, seed):
    """Give every numeric dataset of an h5 file new values, in place."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "r+") as f:
        for _, d in tree(f):
            if d.dtype.kind == "f":
                d[...] = rng.standard_normal(d.shape).astype(d.dtype)
            elif d.dtype.kind in "iu":
                d[...] = rng.integers(0, 100, d.shape).astype(d.dtype)
            elif d.dtype.kind == "b":
                d[...] = rng.integers(0, 2, d.shape).astype(bool)
            elif d.dtype.kind == "V":
                d[...] = rng.integers(0, 65535, d.shape).astype("<u2").view(d.dtype)


# ---- fixtures ----------------------------------------------------------------

for f in K2 + K3H5:
    R.check(f"ls {os.path.relpath(f, FIXTURES)}", compare_listing, f, f)

for f in K3ZIP:
    R.check(f"ls {os.path.relpath(f, FIXTURES)}", lambda f=f: compare_listing(f, inner_h5(f, R.path("inner.h5"))))


def format_names():
    fmt = {}
    for f in K2 + K3H5 + K3ZIP:
        out = run("ls", "--json", f).stdout
        assert out.startswith("[")
    p = run("ls", R.path("none.h5"), check=False)
    assert p.returncode != 0


def twins():
    pair = os.path.join(FIXTURES, "keras2_h5", "pair_keras2.12.0_concrete_full_and_weights")
    full = [t for t in ls_json(os.path.join(pair, "my_model.h5"))
            if not t["name"].startswith("optimizer_weights/")]
    weights = ls_json(os.path.join(pair, "my_model_weights.h5"))
    assert full == weights and len(full) == 4
    legacy = ls_json(os.path.join(FIXTURES, "keras3", "legacy_h5_keras3.10_churn", "model.h5"))
    zipped = ls_json(os.path.join(FIXTURES, "keras3", "keras_zip_keras3.10_churn", "model.keras"))
    a = [(t["shape"], t["sha256"]) for t in legacy if not t["name"].startswith("optimizer_weights/")]
    b = [(t["shape"], t["sha256"]) for t in zipped if t["name"].startswith("layers/")]
    assert a == b and len(a) == 6


R.check("model.save / save_weights twins list the same tensors", twins)


def identity_apply(f):
    out = R.path("identity_" + os.path.basename(f))
    run("apply", f, f, "-o", out)
    assert dump(out) == dump(f)


for f in K2:
    R.check(f"identity apply {os.path.relpath(f, FIXTURES)}", identity_apply, f)


def transplant_into(skel):
    src = R.path("src_" + os.path.basename(skel))
    shutil.copy(skel, src)
    os.chmod(src, 0o644)
    randomize(src, 7)
    out = R.path("out_" + os.path.basename(skel))
    run("apply", src, skel, "-o", out)
    before, after = dump(skel, with_values=False), dump(out, with_values=False)
    assert before == after  # every group, attribute, dtype, chunking unchanged
    want, got, old = values(src), values(out), values(skel)
    assert want.keys() == got.keys()
    changed = 0
    for k in want:
        assert want[k].dtype == got[k].dtype and np.array_equal(want[k], got[k]), k
        changed += not np.array_equal(old[k], got[k])
    assert changed > len(want) // 2


for f in [os.path.join(FIXTURES, "keras2_h5", "full_tfkeras2.3.0_cnn_with_onnx_twin", "mnist.h5"),
          os.path.join(FIXTURES, "keras3", "legacy_h5_keras3.10_churn", "model.h5"),
          os.path.join(FIXTURES, "keras3", "weights_h5_churn", "model.weights.h5")]:
    R.check(f"transplant into {os.path.relpath(f, FIXTURES)}", transplant_into, f)


def transplant_into_keras_zip():
    skel = K3ZIP[0]
    src = inner_h5(skel, R.path("src.weights.h5"))
    randomize(src, 11)
    out = R.path("out.keras")
    run("apply", src, skel, "-o", out)
    with zipfile.ZipFile(skel) as a, zipfile.ZipFile(out) as b:
        assert a.namelist() == b.namelist()
        for info in a.infolist():
            assert b.getinfo(info.filename).compress_type == info.compress_type
            if info.filename != "model.weights.h5":
                assert a.read(info.filename) == b.read(info.filename)
        open(R.path("out_inner.h5"), "wb").write(b.read("model.weights.h5"))
    inner_h5(skel, R.path("skel_inner.h5"))
    assert dump(R.path("skel_inner.h5"), False) == dump(R.path("out_inner.h5"), False)
    want, got = values(src), values(R.path("out_inner.h5"))
    assert all(np.array_equal(want[k], got[k]) for k in want) and want.keys() == got.keys()
    assert ls_json(out) == ls_json(src)


R.check("transplant into a .keras archive rewrites only model.weights.h5", transplant_into_keras_zip)


# ---- keras-named: Keras-style names from config.json ---------------------------

def named_fixture():
    legacy = ls_json(os.path.join(FIXTURES, "keras3", "legacy_h5_keras3.10_churn", "model.h5"))
    named = ls_json(K3ZIP[0], "--format", "keras-named")
    want = [(t["name"].split("/", 1)[1], t["sha256"]) for t in legacy
            if t["name"].startswith("sequential_2/")]
    got = [(t["name"], t["sha256"]) for t in named if not t["name"].startswith("optimizer/")]
    assert got == want and len(got) == 6, (got, want)


R.check("keras-named: .keras names match the legacy .h5 twin", named_fixture)


def named_synthetic():
    rng = np.random.default_rng(4)
    layers = [("InputLayer", {"name": "input"}, []),
              ("Conv2D", {"name": "stem"}, [(3, 3, 1, 4), (4,)]),
              ("BatchNormalization", {"name": "bn", "scale": False}, [(4,), (4,), (4,)]),
              ("Flatten", {"name": "flat"}, []),
              ("Dense", {"name": "proj", "use_bias": False}, [(36, 5)]),
              ("Dense", {"name": "head"}, [(5, 2), (2,)]),
              ("DepthwiseConv2D", {"name": "dw"}, [(3, 3, 4, 1), (4,)])]
    keys, seen = [], {}
    for cls, _, _ in layers:
        base = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", cls)).lower()
        keys.append(base if base not in seen else f"{base}_{seen[base]}")
        seen[base] = seen.get(base, 0) + 1
    bio = io.BytesIO()
    want = []
    with h5py.File(bio, "w") as f:
        for key, (cls, cfg, shapes) in zip(keys, layers):
            g = f.create_group(f"layers/{key}/vars")
            for i, shp in enumerate(shapes):
                a = rng.standard_normal(shp).astype("f4")
                g.create_dataset(str(i), data=a)
                want.append((i, cfg["name"], a))
        f.create_group("vars")
    names = {"Conv2D": ["kernel", "bias"], "BatchNormalization": ["beta", "moving_mean", "moving_variance"],
             "Dense": ["kernel", "bias"], "DepthwiseConv2D": ["depthwise_kernel", "bias"]}
    cls_of = {cfg["name"]: cls for cls, cfg, _ in layers}
    config = {"class_name": "Sequential", "config": {"name": "seq", "layers": [
        {"module": "keras.layers", "class_name": cls, "config": cfg} for cls, cfg, _ in layers]}}
    p = R.path("synthetic.keras")
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("metadata.json", '{"keras_version": "3.10.0"}')
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", bio.getvalue())
    got = {t["name"]: t["sha256"] for t in ls_json(p, "--format", "keras-named")}
    expect = {f"{n}/{names[cls_of[n]][i]}": sha256_of_array(a) for i, n, a in want}
    assert got == expect, (sorted(got), sorted(expect))


R.check("keras-named: variable names per layer class and config flags", named_synthetic)


def named_apply():
    src = R.path("legacy_src.h5")
    shutil.copy(os.path.join(FIXTURES, "keras3", "legacy_h5_keras3.10_churn", "model.h5"), src)
    os.chmod(src, 0o644)
    randomize(src, 5)
    rules = R.path("legacy_to_named.yaml")
    with open(rules, "w") as fh:
        fh.write("graft: 1\nrename:\n  source:\n    - {match: '^sequential_2/', to: ''}\n"
                 "ignore:\n  source: ['^optimizer_weights/']\n  target: ['^optimizer/']\n")
    out = R.path("named_out.keras")
    run("apply", "-r", rules, "--skeleton-format", "keras-named", src, K3ZIP[0], "-o", out)
    with zipfile.ZipFile(K3ZIP[0]) as a, zipfile.ZipFile(out) as b:
        assert a.read("config.json") == b.read("config.json")
    named = {t["name"]: t["sha256"] for t in ls_json(out, "--format", "keras-named")}
    for t in ls_json(src):
        if t["name"].startswith("sequential_2/"):
            assert named[t["name"].split("/", 1)[1]] == t["sha256"], t["name"]


R.check("keras-named: apply into a .keras skeleton by Keras-style names", named_apply)


# ---- layouts and dtypes built here ---------------------------------------------

def layer(g, lname, weights):
    """A Keras 2 layer group: weights is [(name, array, dataset kwargs)]."""
    lg = g.create_group(lname)
    lg.attrs["weight_names"] = [w.encode() for w, _, _ in weights] or np.zeros((0,), "f8")
    for w, a, kw in weights:
        lg.create_dataset(w, data=a, **kw)
    return lg


def build_zoo(path, seed, userblock=0):
    rng = np.random.default_rng(seed)
    bf16 = rng.integers(0, 65535, (3, 5)).astype("<u2").view("V2")
    layers = [
        ("chunked", [("chunked/kernel:0", rng.standard_normal((40, 30)).astype("f4"),
                      dict(chunks=(7, 11), compression="gzip", shuffle=True)),
                     ("chunked/bias:0", rng.standard_normal(30).astype("f4"), dict(chunks=(8,)))]),
        ("bigendian", [("bigendian/kernel:0", rng.standard_normal((4, 6)).astype(">f4"), {}),
                       ("bigendian/steps:0", rng.integers(-5, 5, (3,)).astype(">i8"), {}),
                       ("bigendian/half:0", rng.standard_normal((2, 3)).astype(">f2"), {})]),
        ("types", [("types/half:0", rng.standard_normal((5, 2)).astype("<f2"), {}),
                   ("types/double:0", rng.standard_normal(4).astype("f8"), {}),
                   ("types/mask:0", rng.integers(0, 2, 6).astype(bool), {}),
                   ("types/count:0", np.array(12345678901, "i8"), {}),
                   ("types/u8:0", rng.integers(0, 255, 9).astype("u1"), {})]),
        ("dropout", []),
    ]
    with h5py.File(path, "w", userblock_size=userblock or None) as f:
        names = [n for n, _ in layers] + ["bf16"]
        # the chunked name-list form Keras uses for long lists
        f.attrs["layer_names0"] = np.array([n.encode() for n in names[:3]], dtype="S9")
        f.attrs["layer_names1"] = np.array([n.encode() for n in names[3:]], dtype="S9")
        f.attrs["keras_version"] = "2.10.0"
        for n, w in layers:
            layer(f, n, w)
        lg = f.create_group("bf16")
        lg.attrs["weight_names"] = ["bf16/w:0"]
        ds = lg.create_dataset("bf16/w:0", data=bf16)
        ds.attrs["dtype"] = "bfloat16"


def zoo_listing():
    for ub in (0, 512):
        p = R.path(f"zoo{ub}.h5")
        build_zoo(p, 1, ub)
        compare_listing(p, p)
        got = {t["name"]: t["dtype"] for t in ls_json(p)}
        assert got["bf16/w:0"] == "bfloat16" and got["types/half:0"] == "float16"
        assert got["bigendian/half:0"] == "float16" and got["types/mask:0"] == "bool"


R.check("chunked, compressed, big-endian, float16, bfloat16, bool, user block", zoo_listing)


def zoo_apply():
    for ub in (0, 512):
        skel, src, out = R.path(f"zs{ub}.h5"), R.path(f"zsrc{ub}.h5"), R.path(f"zout{ub}.h5")
        build_zoo(skel, 1, ub)
        build_zoo(src, 2, ub)
        run("apply", src, skel, "-o", out)
        assert dump(out, False) == dump(skel, False)  # chunks, filters, byte order kept
        want, got = values(src), values(out)
        for k in want:
            assert want[k].dtype == got[k].dtype and np.array_equal(want[k], got[k]), k
        assert ls_json(out) == ls_json(src)


R.check("apply into chunked/compressed/big-endian/float16/bfloat16 skeletons", zoo_apply)


# ---- malformed inputs: one clear line, non-zero exit --------------------------

def minimal(path, **tweak):
    with h5py.File(path, "w") as f:
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = [b"dense"]
        layer(mw, "dense", [("dense/kernel:0", np.ones((2, 3), "f4"), {}),
                            ("dense/bias:0", np.zeros(3, "f4"), {})])
        f.attrs["model_config"] = b"{}"
        for fn in tweak.values():
            fn(f)
    return path


def expect_error(path, *needles):
    p = run("ls", "--json", path, check=False)
    err = p.stderr.strip()
    assert p.returncode != 0, p.stdout
    assert "\n" not in err and path in err, err
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"
    assert "Sanitizer" not in p.stderr and "HDF5-DIAG" not in p.stderr


def bad(name, needles, **tweak):
    R.check(f"malformed: {name}", lambda: expect_error(minimal(R.path(name + ".h5"), **tweak), *needles))


def set_attr(obj, key, value):
    del obj.attrs[key]
    obj.attrs[key] = value


bad("layer_names numbers", ["layer_names", "integer"],
    t=lambda f: set_attr(f["model_weights"], "layer_names", np.arange(3)))
bad("weight_names numbers", ["weight_names", "float"],
    t=lambda f: set_attr(f["model_weights/dense"], "weight_names", np.ones(2)))
bad("missing layer group", ["'ghost'", "no such group"],
    t=lambda f: set_attr(f["model_weights"], "layer_names", [b"dense", b"ghost"]))
bad("missing weight dataset", ["dense/gamma:0", "no such dataset"],
    t=lambda f: set_attr(f["model_weights/dense"], "weight_names", [b"dense/kernel:0", b"dense/gamma:0"]))
bad("weight name is a group", ["'dense'", "not a dataset"],
    t=lambda f: set_attr(f["model_weights/dense"], "weight_names", [b"dense"]))
bad("no layer_names", ["layer_names"], t=lambda f: f["model_weights"].attrs.__delitem__("layer_names"))
bad("no weight_names", ["weight_names"], t=lambda f: f["model_weights/dense"].attrs.__delitem__("weight_names"))
def unsupported(name, tensor, stored, **tweak):
    """Issue 18 item 15: listed with its stored type, no data, the rest readable."""
    def check():
        p = minimal(R.path(name + ".h5"), **tweak)
        got = {t["name"]: t for t in ls_json(p)}
        assert got[tensor]["dtype"] == "unsupported" and got[tensor]["sha256"] is None, got
        assert got[tensor]["stored_type"] == stored, got[tensor]
        assert all(t["sha256"] for n, t in got.items() if n != tensor), got
    R.check(f"unsupported: {name}", check)


unsupported("string dataset", "dense/kernel:0", "HDF5 2-byte string",
            t=lambda f: (f["model_weights/dense/dense"].__delitem__("kernel:0"),
                         f["model_weights/dense/dense"].create_dataset("kernel:0", data=np.array([b"ab", b"cd"]))))
unsupported("object dataset", "dense/bias:0", "HDF5 variable-length string",
            t=lambda f: (f["model_weights/dense/dense"].__delitem__("bias:0"),
                         f["model_weights/dense/dense"].create_dataset("bias:0", data=["x", "y"], dtype=h5py.string_dtype())))
unsupported("compound dataset", "dense/bias:0", "HDF5 8-byte compound",
            t=lambda f: (f["model_weights/dense/dense"].__delitem__("bias:0"),
                         f["model_weights/dense/dense"].create_dataset("bias:0", data=np.zeros(3, "f4,i4"))))
bad("external link", ["dense/bias:0", "external link to another file (refused)"],
    t=lambda f: (f["model_weights/dense/dense"].__delitem__("bias:0"),
                 f["model_weights/dense/dense"].__setitem__("bias:0", h5py.ExternalLink("/etc/passwd.h5", "/x"))))


def not_keras():
    p = R.path("plain.h5")
    with h5py.File(p, "w") as f:
        f["x"] = np.ones(3)
    expect_error(p, "no layer_names")


R.check("malformed: HDF5 without Keras groups", not_keras)


def truncated():
    src = minimal(R.path("whole.h5"))
    data = open(src, "rb").read()
    for n in (8, 100, 800, len(data) // 2, len(data) - 10):
        p = R.path(f"trunc{n}.h5")
        open(p, "wb").write(data[:n])
        expect_error(p)


R.check("malformed: truncated files", truncated)


def bad_keras_zip():
    p = R.path("empty.keras")
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("metadata.json", "{}")
        z.writestr("config.json", "{}")
    expect_error(p, "model.weights.h5")
    p = R.path("garbage.keras")
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("metadata.json", "{}")
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    expect_error(p, "model.weights.h5")


R.check("malformed: .keras without usable weights", bad_keras_zip)

R.close()
