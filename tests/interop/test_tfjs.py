"""TF.js models: a PyTorch CNN transplanted into a TF.js layers skeleton made
by @tensorflow/tfjs is loaded by tf.loadLayersModel and gives PyTorch's
output; model.json is kept byte for byte and the shards keep their names and
sizes (a weight straddles two); quantized manifests (uint8, uint16, float16)
and graph models are read as tfjs's own decodeWeights reads them; malformed
manifests are refused with one-line errors."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from graftlib import LAYOUT_FINDING, SOURCE_ROOT, Results, ls_json, ls_layouts, peak_rss, run  # noqa: E402

R = Results()
JS = os.path.join(SOURCE_ROOT, "tests", "js")
torch.manual_seed(0)


def node(script, *args):
    p = subprocess.run(["node", os.path.join(JS, script), *map(str, args)], capture_output=True,
                       text=True, cwd=JS)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = p.stdout.strip().splitlines()
    return lines[-1] if lines else ""


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 4, 3)
        self.conv2 = torch.nn.Conv2d(4, 5, 3, padding=1)
        self.fc = torch.nn.Linear(5, 3)

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


RULES = """graft: 1
rename:
  source:
    - {match: '^conv(\\d)\\.weight$', to: 'c$1/kernel'}
    - {match: '^conv(\\d)\\.bias$', to: 'c$1/bias'}
    - {match: '^fc\\.weight$', to: 'fc/kernel'}
    - {match: '^fc\\.bias$', to: 'fc/bias'}
transforms:
  - {source: '^conv\\d\\.weight$', ops: [{permute: [2, 3, 1, 0]}]}
  - {source: '^fc\\.weight$', ops: [transpose]}
"""


def t_transplant_runs_in_tfjs():
    skel = R.path("skel")
    os.makedirs(skel)
    node("tfjs_skeleton.mjs", skel)
    net = Net().eval()
    src = R.path("net.pt")
    torch.save(net.state_dict(), src)
    rules = R.path("rules.yaml")
    with open(rules, "w") as f:
        f.write(RULES)
    out = R.path("out")
    run("apply", "-r", rules, src, os.path.join(skel, "model.json"), "-o", out)
    for name in ["model.json", "group1-shard1of2.bin", "group1-shard2of2.bin"]:
        a, b = os.path.join(skel, name), os.path.join(out, name)
        assert os.path.getsize(a) == os.path.getsize(b), name
    assert open(os.path.join(out, "model.json"), "rb").read() == \
        open(os.path.join(skel, "model.json"), "rb").read()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        want = net(x).numpy()
    inp = R.path("in.json")
    with open(inp, "w") as f:
        json.dump({"shape": [2, 8, 8, 3], "data": x.permute(0, 2, 3, 1).reshape(-1).tolist()}, f)
    got = json.loads(node("tfjs_run.mjs", os.path.join(out, "model.json"), inp))
    got = np.array(got["data"], dtype=np.float32).reshape(got["shape"])
    err = float(np.abs(got - want).max())
    assert err <= 1e-5, f"max |tfjs - torch| = {err}"
    # the skeleton alone gives something else: the weights really moved
    base = json.loads(node("tfjs_run.mjs", os.path.join(skel, "model.json"), inp))
    assert np.abs(np.array(base["data"]) - want.reshape(-1)).max() > 1e-3


def t_topology_gives_layouts():
    """The Keras topology in model.json says what each weight is (issue 12):
    the correct rules plan clean (run() fails on any layout finding), and a
    conv kernel permuted with H and W swapped, or the Dense kernel left
    untransposed through a reshape, is a layout finding naming the target."""
    skel = R.path("skel-layout")
    os.makedirs(skel)
    node("tfjs_skeleton.mjs", skel)
    model = os.path.join(skel, "model.json")
    got = {n: (e["role"], e["layout"], e["certainty"]) for n, e in ls_layouts(model).items()}
    assert got["c1/kernel"] == ("conv2d", "HWIO", "structure"), got
    assert got["fc/kernel"] == ("dense", "(in,out)", "structure"), got
    assert got["fc/bias"] == ("bias", "(out)", "structure"), got
    src = R.path("net-layout.pt")
    torch.save(Net().state_dict(), src)
    good = R.path("good.yaml")
    with open(good, "w") as f:
        f.write(RULES)
    run("plan", "-r", good, src, model)
    mutants = {"c2/kernel": RULES.replace("permute: [2, 3, 1, 0]", "permute: [3, 2, 1, 0]"),
               "fc/kernel": RULES.replace("ops: [transpose]", "ops: [{reshape: [5, 3]}]")}
    for target, text in mutants.items():
        path = R.path("mutant.yaml")
        with open(path, "w") as f:
            f.write(text)
        # the source's layout comes from PyTorch's naming convention: a warning,
        # which --strict makes an error
        p = run("plan", "-r", path, src, model, layout_ok=True)
        # (plan prints its findings once, on stdout)
        assert LAYOUT_FINDING in p.stdout and f"'{target}'" in p.stdout, (target, p.stdout)
        p = run("plan", "--strict", "-r", path, src, model, check=False, layout_ok=True)
        assert p.returncode == 1 and f"'{target}'" in p.stdout, (target, p.returncode, p.stdout)


def write_manifest(folder, fmt, groups, topology):
    """groups: [(paths with their bytes, weights)]"""
    os.makedirs(folder, exist_ok=True)
    manifest = []
    for shards, weights in groups:
        for name, data in shards:
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
        manifest.append({"paths": [n for n, _ in shards], "weights": weights})
    path = os.path.join(folder, "model.json")
    with open(path, "w") as f:
        json.dump({"format": fmt, "generatedBy": "test", "convertedBy": None,
                   "modelTopology": topology, "weightsManifest": manifest}, f)
    return path


def quantized_model(folder):
    rng = np.random.default_rng(1)
    q8 = rng.integers(0, 256, (3, 4), dtype=np.uint8)
    q16 = rng.integers(0, 65536, (5,), dtype=np.uint16)
    h = rng.standard_normal((2, 3)).astype(np.float16)
    qi = rng.integers(0, 256, (4,), dtype=np.uint8)
    f = rng.standard_normal((7,)).astype(np.float32)
    i32 = rng.integers(-5, 5, (2, 2)).astype(np.int32)
    b = np.array([1, 0, 1], dtype=np.uint8)
    data = b"".join(a.tobytes() for a in [q8, q16, h, qi, f, i32, b])
    weights = [
        {"name": "d/q8", "shape": [3, 4], "dtype": "float32",
         "quantization": {"dtype": "uint8", "scale": 0.0123, "min": -1.5}},
        {"name": "d/q16", "shape": [5], "dtype": "float32",
         "quantization": {"dtype": "uint16", "scale": 3.1e-5, "min": -0.75}},
        {"name": "d/h", "shape": [2, 3], "dtype": "float32", "quantization": {"dtype": "float16"}},
        {"name": "d/qi", "shape": [4], "dtype": "int32",
         "quantization": {"dtype": "uint8", "scale": 0.5, "min": -3}},
        {"name": "d/f", "shape": [7], "dtype": "float32"},
        {"name": "e/i", "shape": [2, 2], "dtype": "int32"},
        {"name": "e/b", "shape": [3], "dtype": "bool"},
    ]
    cut = [0, 7, 20, len(data) - 5, len(data)]
    shards = [(f"g-shard{i + 1}of4.bin", data[cut[i]:cut[i + 1]]) for i in range(4)]
    return write_manifest(folder, "layers-model", [(shards, weights)], {"class_name": "Sequential"})


def compare_with_tfjs(path):
    want = json.loads(node("tfjs_decode.mjs", path))
    got = ls_json(path)
    assert [g["name"] for g in got] == [w["name"] for w in want]
    for g, w in zip(got, want):
        assert g["dtype"] == w["dtype"] and g["shape"] == w["shape"], (g, w)
        assert g["sha256"] == w["sha256"], (g["name"], "values differ from tf.io.decodeWeights")
    return {w["name"]: np.array(w["values"]) for w in want}


def t_quantized_read_as_tfjs_decodes():
    compare_with_tfjs(quantized_model(R.path("quant")))


def t_int32_dequantize_wraps_as_tfjs():
    """tfjs stores Math.round(q * scale + min) into an Int32Array, which
    wraps modulo 2^32: values past the int32 range read the same here (a C
    cast of them was undefined behaviour, found by fuzz_tfjs)."""
    q = np.array([0, 1, 2, 3, 100, 255], np.uint8)
    weights = [{"name": "w", "shape": [6], "dtype": "int32",
                "quantization": {"dtype": "uint8", "scale": 1e9, "min": -3.2e9}}]
    path = write_manifest(R.path("wrap"), "layers-model", [([("g-shard1of1.bin", q.tobytes())], weights)],
                          {"class_name": "Sequential"})
    got = compare_with_tfjs(path)["w"]
    assert got.min() < -2**30 and got.max() > 2**30, got  # the case wraps, both ways


def t_big_weights_hash_with_flat_memory():
    """Issue 18 item 8: a 64 MiB float32 weight straddling two shards and a
    uint8-quantized one of 2^24 elements (64 MiB as float32) hash, piece by
    piece, to what tf.io.decodeWeights decodes, with flat memory."""
    folder = R.path("big")
    rng = np.random.default_rng(2)
    f = rng.standard_normal(1 << 24).astype(np.float32).tobytes()
    q = rng.integers(0, 256, 1 << 24, dtype=np.uint8).tobytes()
    data = f + q
    cut = [0, 40 << 20, 72 << 20, len(data)]
    shards = [(f"g-shard{i + 1}of3.bin", data[cut[i]:cut[i + 1]]) for i in range(3)]
    weights = [{"name": "d/f", "shape": [4096, 4096], "dtype": "float32"},
               {"name": "d/q", "shape": [4096, 4096], "dtype": "float32",
                "quantization": {"dtype": "uint8", "scale": 0.0123, "min": -1.5}}]
    path = write_manifest(folder, "layers-model", [(shards, weights)], {"class_name": "Sequential"})
    want = {w["name"]: w["sha256"] for w in json.loads(node("tfjs_decode.mjs", path, "--no-values"))}
    status, rss, out = peak_rss(["ls", "--sha256", path])
    got = dict((ln.split("\t")[0], ln.split("\t")[-1]) for ln in out.strip().splitlines())
    assert status == "0" and got == want, (out, want)
    assert int(rss) < 48 * 1024, f"peak RSS {rss} KiB"
    shutil.rmtree(folder)


def t_graph_model_listed():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((4, 2)).astype(np.float32)
    c = rng.integers(0, 9, (3,)).astype(np.int32)
    topology = {"node": [{"name": "w", "op": "Const"}], "versions": {"producer": 1}}
    path = write_manifest(R.path("graph"), "graph-model",
                          [([("group1-shard1of1.bin", a.tobytes())], [{"name": "w", "shape": [4, 2], "dtype": "float32"}]),
                           ([("group2-shard1of1.bin", c.tobytes())], [{"name": "sub/c", "shape": [3], "dtype": "int32"}])],
                          topology)
    compare_with_tfjs(path)


def t_write_into_quantized_skeleton():
    skel = quantized_model(R.path("qskel"))
    vals = {"d/q8": np.linspace(-1.5, 1.6, 12, dtype=np.float32).reshape(3, 4),
            "d/q16": np.linspace(-0.7, 1.2, 5, dtype=np.float32),
            "d/h": np.array([[0.5, -2, 3.25], [1e-3, 7, -0.125]], dtype=np.float32),
            "d/qi": np.array([-3, 0, 10, 40], dtype=np.int32),
            "d/f": np.arange(7, dtype=np.float32), "e/i": np.eye(2, dtype=np.int32),
            "e/b": np.array([False, True, True])}
    src = R.path("vals.npz")
    np.savez(src, **vals)
    out = R.path("qout")
    run("apply", src, skel, "-o", out)
    # tfjs decodes the new shards to the values, within half a quantization step
    dec = os.path.join(out, "model.json")
    assert open(dec, "rb").read() == open(skel, "rb").read()
    decoded = compare_with_tfjs(dec)
    # half a step (float16: its rounding), plus float32 rounding of q * scale + min
    tol = {"d/q8": 0.0123 / 2 + 1e-6, "d/q16": 3.1e-5 / 2 + 1e-6, "d/h": 2e-3, "d/qi": 0.5,
           "d/f": 0, "e/i": 0, "e/b": 0}
    for name, v in vals.items():
        err = np.abs(decoded[name].reshape(v.shape) - v.astype(np.float64)).max()
        assert err <= tol[name], (name, err, decoded[name], v)


def t_malformed():
    base = R.path("bad")
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, "w.bin"), "wb") as f:
        f.write(b"\0" * 16)
    cases = [
        ({"paths": ["../w.bin"], "weights": []}, "must be a file name beside model.json"),
        ({"paths": ["nope.bin"], "weights": []}, "shard 'nope.bin'"),
        ({"paths": ["w.bin"], "weights": [{"name": "a", "shape": [5], "dtype": "float32"}]},
         "weight 'a': needs 20 bytes at group offset 0 but the group's shards hold 16"),
        ({"paths": ["w.bin"], "weights": [{"name": "a", "shape": [2], "dtype": "float32",
                                           "quantization": {"dtype": "uint8"}}]},
         "uint8 quantization without numeric scale and min"),
        ({"paths": ["w.bin"], "weights": [{"name": "a", "shape": [2], "dtype": "string"}]},
         "dtype 'string' is not supported"),
        ({"paths": ["w.bin"], "weights": [{"name": "a", "shape": [-1], "dtype": "float32"}]},
         "shape entry 0 is not a non-negative integer"),
    ]
    for i, (group, frag) in enumerate(cases):
        path = os.path.join(base, f"m{i}.json")
        with open(path, "w") as f:
            json.dump({"format": "layers-model", "modelTopology": {}, "weightsManifest": [group]}, f)
        p = run("ls", path, check=False)
        err = p.stderr.strip()
        assert p.returncode == 2 and "\n" not in err and path in err and frag in err, (frag, err)


R.check("PyTorch CNN into a TF.js layers skeleton runs in tfjs with PyTorch's output",
        t_transplant_runs_in_tfjs)
R.check("the model.json topology gives structure layouts; mutants are layout findings",
        t_topology_gives_layouts)
R.check("quantized manifests read as tf.io.decodeWeights decodes them", t_quantized_read_as_tfjs_decodes)
R.check("int32 dequantization past the int32 range wraps as tfjs's does", t_int32_dequantize_wraps_as_tfjs)
R.check("big weights across shards, quantized or not, hash with flat memory",
        t_big_weights_hash_with_flat_memory)
R.check("graph-model weights listed", t_graph_model_listed)
R.check("writing into a quantized skeleton re-quantizes with its scale and min", t_write_into_quantized_skeleton)
R.check("malformed manifests refused with one-line errors", t_malformed)
R.close()
