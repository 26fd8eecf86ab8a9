"""Layout semantics (issue 12) with real structure, proven by real runtimes.

For each case the correct rules plan clean (no layout finding) and the
transplant gives the framework's own output:
- A: a PyTorch CNN (conv, depthwise conv with multiplier 2, flatten of a
  feature map, a square 32x32 Dense) into a Keras 2 full-model HDF5 skeleton
  whose model_config tfjs-layers loads and runs;
- A2: the same into a Keras 3 .keras archive (config.json), its weights run
  in tfjs-layers with the same topology;
- B: a PyTorch net with a ConvTranspose and an embedding net, exported by
  torch.onnx.export under other module names, run in onnxruntime;
- C: the real frozen graph fixtures/frozen_pb/tf2onnx_fc_layers (MatMul
  kernels (in, out)), values checked against NumPy's W.T and the PyTorch
  model run on the weights `apply --reverse` brings back;
- D: a PyTorch GRU into a Keras GRU (reset_after) HDF5 skeleton, checked with
  a NumPy Keras GRU cell (tfjs has no reset_after GRU);
- E: the real Keras h5 and its keras2onnx twin (both sides structure), run
  in onnxruntime against tfjs.
Then each mutant of these rules (the mistakes of the issue) must give a
finding of kind `layout` naming the mutated target; the share flagged and
the findings on correct files are printed and asserted (>= 95 %, 0).
"""
import json
import os
import re
import subprocess
import sys
import zipfile

sys.path.insert(0, os.path.dirname(__file__))
from graftlib import FIXTURES, SOURCE_ROOT, Results, run  # noqa: E402
from fwdlib import write_keras_h5  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

R = Results()
JS = os.path.join(SOURCE_ROOT, "tests", "js")
MUTANTS = []     # (case, mutant, flagged: bool)
CORRECT = []     # (case, findings on the correct rules)


def node(script, *args):
    p = subprocess.run(["node", os.path.join(JS, script), *map(str, args)], capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise AssertionError(f"node {script} exited {p.returncode}: {p.stderr.strip()}")


def findings(plan_json):
    return [d for d in plan_json["warnings"] + plan_json["problems"]
            if isinstance(d, dict) and d.get("kind") == "layout"]


def plan(rules, src, skel, *extra):
    p = run("plan", "--json", "-r", rules, src, skel, *extra, check=False, layout_ok=True)
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout), p


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def correct_and_mutants(case, rules, src, skel, mutants):
    """The correct rules plan clean; each mutant (name, target, old, new) is flagged
    with a layout finding naming `target`."""
    path = write(R.path(f"{case}.yaml"), rules)
    pj, p = plan(path, src, skel)
    CORRECT.append((case, len(findings(pj))))
    assert not findings(pj) and pj["errors"] == 0, (findings(pj), p.stderr)
    for name, target, old, new in mutants:
        assert old in rules, (case, name, old)
        mp = write(R.path(f"{case}_{len(MUTANTS)}.yaml"), rules.replace(old, new))
        mj, _ = plan(mp, src, skel)
        hit = any(f["target"] == target and f["expected"] and f["actual"] and
                  re.match(r".+:\d+$", f["rule"]) for f in findings(mj))
        MUTANTS.append((case, name, hit))
        fixed_by_suggestion(case, rules, mp, src, skel, target)
        print(f"     {case}: {name}: {'flagged' if hit else 'MISSED'}"
              + "".join(f"\n       {f['message']}" for f in findings(mj) if f["target"] == target)[:400])
    return path


SUGGESTED = []   # (case, target, plan clean with the ops explain suggests)


def fixed_by_suggestion(case, rules, mutant_path, src, skel, target):
    """explain names the ops the two layouts call for (graft_layout_ops, what a
    suggester uses); put first for this target, they must plan clean."""
    ex = run("explain", "-r", mutant_path, src, skel, target, check=False, layout_ok=True).stdout
    m = re.search(r"^  the layouts call for the ops: (\[.*\])$", ex, re.M)
    if not m:
        SUGGESTED.append((case, target, None))
        return
    fixed = rules.replace("transforms:\n", "transforms:\n  - target: '^%s$'\n    ops: %s\n"
                          % (re.escape(target), m.group(1)), 1)
    pj, _ = plan(write(R.path(f"{case}_fixed.yaml"), fixed), src, skel)
    SUGGESTED.append((case, target, not findings(pj) and pj["errors"] == 0))


# ---- Keras model configs (tfjs-layers reads these) ---------------------------

def layer(cls, name, **kw):
    cfg = {"name": name, "trainable": True, "dtype": "float32"}
    cfg.update(kw)
    return {"class_name": cls, "config": cfg}


CONV = dict(kernel_size=[3, 3], strides=[1, 1], padding="valid", data_format="channels_last",
            dilation_rate=[1, 1], activation="relu", use_bias=True)


def cnn_config():
    return {"class_name": "Sequential", "config": {"name": "seq", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 8, 8, 3],
                                                 "dtype": "float32", "sparse": False,
                                                 "name": "input_1"}},
        layer("Conv2D", "conv1", filters=8, **CONV),
        layer("DepthwiseConv2D", "dw", depth_multiplier=2, **CONV),
        layer("Flatten", "flatten", data_format="channels_last"),
        layer("Dense", "fc1", units=32, activation="relu", use_bias=True),
        layer("Dense", "fc2", units=32, activation="relu", use_bias=True),
        layer("Dense", "fc3", units=5, activation="linear", use_bias=True)]}}


def h5_weights(path):
    """[(layer, [(weight, array)])] of a Keras 2 HDF5 file, in its layer order."""
    out = []
    with h5py.File(path, "r") as f:
        mw = f["model_weights"]
        for lname in mw.attrs["layer_names"]:
            lname = lname.decode() if isinstance(lname, bytes) else lname
            ws = []
            for w in mw[lname].attrs["weight_names"]:
                w = w.decode() if isinstance(w, bytes) else w
                ws.append((w.split("/")[-1].split(":")[0], mw[lname][w][()]))
            out.append((lname, ws))
    return out


def tfjs_run(topology, weights, x, tag):
    """tfjs-layers' output for x (NHWC) from a Keras 2 topology and [(layer, [(w, a)])]."""
    specs, blobs = [], []
    for lname, ws in weights:
        for w, a in ws:
            a = np.ascontiguousarray(a, dtype="<f4")
            specs.append({"name": f"{lname}/{w}", "shape": list(a.shape), "dtype": "float32"})
            blobs.append(a.tobytes())
    write(R.path(f"{tag}_spec.json"), json.dumps({
        "modelTopology": topology, "weightSpecs": specs,
        "input": {"shape": list(x.shape), "data": x.flatten().tolist()}}))
    with open(R.path(f"{tag}_w.bin"), "wb") as f:
        f.write(b"".join(blobs))
    node("keras_forward.mjs", R.path(f"{tag}_spec.json"), R.path(f"{tag}_w.bin"), R.path(f"{tag}_y.json"))
    with open(R.path(f"{tag}_y.json")) as f:
        y = json.load(f)
    return np.array(y["data"], dtype=np.float64).reshape(y["shape"])


def onnx_run(path, x, tag, name=None):
    name = name or onnx.load(path).graph.input[0].name
    write(R.path(f"{tag}_x.json"), json.dumps({"name": name, "shape": list(x.shape),
                                               "data": np.asarray(x).flatten().tolist()}))
    node("onnx_run.mjs", path, R.path(f"{tag}_x.json"), R.path(f"{tag}_y.json"))
    with open(R.path(f"{tag}_y.json")) as f:
        y = json.load(f)
    return np.array(y["data"], dtype=np.float64).reshape(y["shape"])


def close(got, want, what):
    err = np.abs(got - want).max()
    print(f"     {what}: max |error| = {err:.3g} over {got.size} outputs")
    assert got.shape == want.shape and err <= 1e-5, (got.shape, want.shape, err)
    assert np.abs(want).max() > 1e-2


# ---- A: PyTorch CNN -> Keras 2 HDF5 (tfjs) -------------------------------------

class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3)
        self.dw = nn.Conv2d(8, 16, 3, groups=8)
        self.fc1 = nn.Linear(16 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 32)
        self.fc3 = nn.Linear(32, 5)

    def forward(self, x):
        x = torch.relu(self.dw(torch.relu(self.conv1(x)))).flatten(1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


CNN_RULES = """graft: 1.1
rename:
  target:
    - {match: '^(\\w+)/(?:depthwise_)?kernel:0$', to: '$1.weight'}
    - {match: '^(\\w+)/bias:0$', to: '$1.bias'}
transforms:
  - target: '^conv1/kernel'
    ops: [{permute: OIHW->HWIO}]
  - target: '^dw/depthwise_kernel'
    ops: [{reshape: [8, 2, 3, 3]}, {permute: [2, 3, 0, 1]}]
  - target: '^fc1/kernel'
    ops: [{reshape: [32, 16, 4, 4]}, {permute: [0, 2, 3, 1]}, {reshape: [32, 256]}, transpose]
  - target: '^fc2/kernel'
    ops: [transpose]
  - rank: 2
    ops: [transpose]
policy: {missing: error, unused: error, mismatch: error}
"""

CNN_MUTANTS = [
    ("square 32x32 Dense kernel left untransposed", "fc2/kernel:0",
     "target: '^fc2/kernel'\n    ops: [transpose]", "target: '^fc2/kernel'\n    ops: []"),
    ("3x3 conv permuted OIHW->WHIO", "conv1/kernel:0", "{permute: OIHW->HWIO}", "{permute: OIHW->WHIO}"),
    ("flatten reorder replaced by a plain transpose", "fc1/kernel:0",
     "[{reshape: [32, 16, 4, 4]}, {permute: [0, 2, 3, 1]}, {reshape: [32, 256]}, transpose]",
     "[transpose]"),
    ("depthwise kernel read as a normal conv", "dw/depthwise_kernel:0",
     "[{reshape: [8, 2, 3, 3]}, {permute: [2, 3, 0, 1]}]",
     "[{reshape: [2, 8, 3, 3]}, {permute: [2, 3, 1, 0]}]"),
]


def cnn_weights_for_keras(sd):
    """The Keras layout of a Cnn state dict (what the transplant must give)."""
    t = {k: v.detach().numpy() for k, v in sd.items()}
    fc1 = t["fc1.weight"].reshape(32, 16, 4, 4).transpose(0, 2, 3, 1).reshape(32, 256).T
    return [("conv1", [("kernel", t["conv1.weight"].transpose(2, 3, 1, 0)), ("bias", t["conv1.bias"])]),
            ("dw", [("depthwise_kernel", t["dw.weight"].reshape(8, 2, 3, 3).transpose(2, 3, 0, 1)),
                    ("bias", t["dw.bias"])]),
            ("fc1", [("kernel", fc1), ("bias", t["fc1.bias"])]),
            ("fc2", [("kernel", t["fc2.weight"].T), ("bias", t["fc2.bias"])]),
            ("fc3", [("kernel", t["fc3.weight"].T), ("bias", t["fc3.bias"])])]


def case_keras_h5():
    torch.manual_seed(1)
    skel_net, net = Cnn(), Cnn().eval()
    write_keras_h5(R.path("cnn_skel.h5"), cnn_config(), cnn_weights_for_keras(skel_net.state_dict()))
    torch.save(net.state_dict(), R.path("cnn.pth"))
    ls = {t["name"]: t for t in json.loads(run("ls", "--json", R.path("cnn_skel.h5")).stdout)}
    assert ls["fc1/kernel:0"]["certainty"] == "structure", ls["fc1/kernel:0"]
    assert ls["fc1/kernel:0"]["flatten"] == {"order": "HWC", "channels": 16, "spatial": [16]}, ls["fc1/kernel:0"]
    assert ls["dw/depthwise_kernel:0"]["layout"] == "HWCM" and ls["dw/depthwise_kernel:0"]["role"] == "depthwise"
    rules = correct_and_mutants("keras_h5", CNN_RULES, R.path("cnn.pth"), R.path("cnn_skel.h5"),
                                CNN_MUTANTS)
    out = R.path("cnn_out.h5")
    run("apply", "-q", "-r", rules, R.path("cnn.pth"), R.path("cnn_skel.h5"), "-o", out)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        want = net(x).numpy()
    xk = x.permute(0, 2, 3, 1).numpy()
    close(tfjs_run(cnn_config(), h5_weights(out), xk, "cnn"), want, "Keras h5 in tfjs-layers vs PyTorch")
    # the skeleton's own weights are far off: the comparison can fail
    assert np.abs(tfjs_run(cnn_config(), h5_weights(R.path("cnn_skel.h5")), xk, "cnn0") - want).max() > 1e-2
    # explain shows both layouts and the check
    ex = run("explain", "-r", rules, R.path("cnn.pth"), R.path("cnn_skel.h5"), "fc1/kernel:0").stdout
    assert "target dense: (in,out), structure, after a Flatten of HWC (C=16, S=16)" in ex, ex
    assert "check: the layouts call for" in ex and ": agrees" in ex, ex
    return net


# ---- A2: the same into a Keras 3 .keras archive -------------------------------

def keras3_config():
    def k3(cls, name, build=None, **kw):
        d = layer(cls, name, **kw)
        d["module"] = "keras.layers"
        if build:
            d["build_config"] = {"input_shape": build}
        return d
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "seq", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer",
         "config": {"batch_shape": [None, 8, 8, 3], "dtype": "float32", "name": "input_layer"}},
        k3("Conv2D", "conv1", [None, 8, 8, 3], filters=8, **CONV),
        k3("DepthwiseConv2D", "dw", [None, 6, 6, 8], depth_multiplier=2, **CONV),
        k3("Flatten", "flatten", [None, 4, 4, 16], data_format="channels_last"),
        k3("Dense", "fc1", [None, 256], units=32, activation="relu", use_bias=True),
        k3("Dense", "fc2", [None, 32], units=32, activation="relu", use_bias=True),
        k3("Dense", "fc3", [None, 32], units=5, activation="linear", use_bias=True)]}}


KEYS = {"conv1": "conv2d", "dw": "depthwise_conv2d", "fc1": "dense", "fc2": "dense_1", "fc3": "dense_2"}


def write_keras3(path, weights):
    h5 = R.path("k3_weights.h5")
    with h5py.File(h5, "w") as f:
        for lname, ws in weights:
            g = f.create_group(f"layers/{KEYS[lname]}/vars")
            for i, (_, a) in enumerate(ws):
                g.create_dataset(str(i), data=np.asarray(a, dtype="<f4"))
        f.create_group("vars")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.6.0", "date_saved": "2026-12-02"}))
        z.writestr("config.json", json.dumps(keras3_config()))
        z.write(h5, "model.weights.h5")


def keras3_weights(path):
    with zipfile.ZipFile(path) as z:
        z.extract("model.weights.h5", R.path("k3x"))
    out = []
    with h5py.File(os.path.join(R.path("k3x"), "model.weights.h5"), "r") as f:
        for lname, var_names in (("conv1", ["kernel", "bias"]), ("dw", ["depthwise_kernel", "bias"]),
                                 ("fc1", ["kernel", "bias"]), ("fc2", ["kernel", "bias"]),
                                 ("fc3", ["kernel", "bias"])):
            out.append((lname, [(v, f[f"layers/{KEYS[lname]}/vars/{i}"][()])
                                for i, v in enumerate(var_names)]))
    return out


def case_keras3(net):
    torch.manual_seed(5)
    write_keras3(R.path("cnn_skel.keras"), cnn_weights_for_keras(Cnn().state_dict()))
    ls = {t["name"]: t for t in json.loads(run("ls", "--json", R.path("cnn_skel.keras")).stdout)}
    assert ls["layers/dense/vars/0"]["flatten"] == {"order": "HWC", "channels": 16, "spatial": [4, 4]}, ls
    rules = CNN_RULES.replace("""rename:
  target:
    - {match: '^(\\w+)/(?:depthwise_)?kernel:0$', to: '$1.weight'}
    - {match: '^(\\w+)/bias:0$', to: '$1.bias'}""", """rename:
  target:
    - {match: '^layers/conv2d/vars/', to: 'conv1.'}
    - {match: '^layers/depthwise_conv2d/vars/', to: 'dw.'}
    - {match: '^layers/dense/vars/', to: 'fc1.'}
    - {match: '^layers/dense_1/vars/', to: 'fc2.'}
    - {match: '^layers/dense_2/vars/', to: 'fc3.'}
    - {match: '\\.0$', to: '.weight'}
    - {match: '\\.1$', to: '.bias'}""")
    for a, b in (("conv1/kernel", "conv2d/vars/0"), ("dw/depthwise_kernel", "depthwise_conv2d/vars/0"),
                 ("fc1/kernel", "dense/vars/0"), ("fc2/kernel", "dense_1/vars/0")):
        rules = rules.replace(f"'^{a}'", f"'^layers/{b}$'")
    mutants = [(n, "layers/" + {"fc2/kernel:0": "dense_1/vars/0", "fc1/kernel:0": "dense/vars/0",
                                "conv1/kernel:0": "conv2d/vars/0",
                                "dw/depthwise_kernel:0": "depthwise_conv2d/vars/0"}[t],
                o.replace("'^fc2/kernel'", "'^layers/dense_1/vars/0$'"),
                nw.replace("'^fc2/kernel'", "'^layers/dense_1/vars/0$'"))
               for n, t, o, nw in CNN_MUTANTS]
    path = correct_and_mutants("keras3", rules, R.path("cnn.pth"), R.path("cnn_skel.keras"), mutants)
    out = R.path("cnn_out.keras")
    run("apply", "-q", "-r", path, R.path("cnn.pth"), R.path("cnn_skel.keras"), "-o", out)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        want = net(x).numpy()
    close(tfjs_run(cnn_config(), keras3_weights(out), x.permute(0, 2, 3, 1).numpy(), "k3"), want,
          ".keras weights in tfjs-layers vs PyTorch")


# ---- B: torch.onnx.export under other names (onnxruntime) -----------------------

class UpNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3)
        self.up = nn.ConvTranspose2d(8, 8, 3)
        self.fc1 = nn.Linear(8 * 8 * 8, 32)
        self.fc2 = nn.Linear(32, 32)
        self.fc3 = nn.Linear(32, 5)

    def forward(self, x):
        x = torch.relu(self.up(torch.relu(self.conv1(x)))).flatten(1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class UpNetRenamed(nn.Module):
    """The same network under other module names."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.ConvTranspose2d(8, 8, 3), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(512, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                                  nn.Linear(32, 5))

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


class EmbNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.out = nn.Linear(16, 4)

    def forward(self, x):
        return self.out(self.emb(x.long()).mean(1))


class EmbNetRenamed(nn.Module):
    def __init__(self):
        super().__init__()
        self.table = nn.Embedding(50, 16)
        self.proj = nn.Linear(16, 4)

    def forward(self, x):
        return self.proj(self.table(x.long()).mean(1))


ONNX_RULES = """graft: 1.1
rename:
  target:
    - {match: '^features\\.0\\.', to: 'conv1.'}
    - {match: '^features\\.2\\.', to: 'up.'}
    - {match: '^head\\.0\\.', to: 'fc1.'}
    - {match: '^head\\.2\\.', to: 'fc2.'}
    - {match: '^head\\.4\\.', to: 'fc3.'}
transforms:
  - target: '^head\\.2\\.weight$'
    ops: []
  - target: '^features\\.2\\.weight$'
    ops: []
  - target: '^features\\.0\\.weight$'
    ops: []
policy: {missing: error, unused: error, mismatch: error}
"""

ONNX_MUTANTS = [
    ("transpose added to a Gemm weight that already is (out,in)", "head.2.weight",
     "head\\.2\\.weight$'\n    ops: []", "head\\.2\\.weight$'\n    ops: [transpose]"),
    ("ConvTranspose kernel permuted as a Conv", "features.2.weight",
     "features\\.2\\.weight$'\n    ops: []", "features\\.2\\.weight$'\n    ops: [{permute: [1, 0, 2, 3]}]"),
    ("3x3 conv with H and W swapped", "features.0.weight",
     "features\\.0\\.weight$'\n    ops: []", "features\\.0\\.weight$'\n    ops: [{permute: OIHW->OIWH}]"),
]

EMB_RULES = """graft: 1.1
rename:
  target:
    - {match: '^table\\.', to: 'emb.'}
    - {match: '^proj\\.', to: 'out.'}
transforms:
  - target: '^table\\.weight$'
    ops: []
policy: {missing: error, unused: error, mismatch: error}
"""


def export(model, x, path):
    torch.onnx.export(model.eval(), x, path, opset_version=13, input_names=["x"],
                      output_names=["y"], do_constant_folding=False)


def case_onnx():
    torch.manual_seed(2)
    net = UpNet().eval()
    x = torch.randn(1, 3, 8, 8)
    export(UpNetRenamed(), x, R.path("up.onnx"))
    names = {i.name for i in onnx.load(R.path("up.onnx")).graph.initializer}
    assert "head.2.weight" in names and "features.2.weight" in names, names
    torch.save(net.state_dict(), R.path("up.pth"))
    ls = {t["name"]: t for t in json.loads(run("ls", "--json", R.path("up.onnx")).stdout)}
    assert ls["features.2.weight"]["role"] == "conv_transpose" and ls["features.2.weight"]["layout"] == "IOHW"
    assert ls["head.2.weight"]["layout"] == "(out,in)" and ls["head.2.weight"]["certainty"] == "structure"
    assert ls["head.0.weight"]["flatten"]["order"] == "CHW", ls["head.0.weight"]
    rules = correct_and_mutants("onnx", ONNX_RULES, R.path("up.pth"), R.path("up.onnx"), ONNX_MUTANTS)
    run("apply", "-q", "-r", rules, R.path("up.pth"), R.path("up.onnx"), "-o", R.path("up_out.onnx"))
    with torch.no_grad():
        want = net(x).numpy()
    close(onnx_run(R.path("up_out.onnx"), x.numpy(), "up"), want, "ONNX (ConvTranspose, Gemm) in onnxruntime vs PyTorch")
    assert np.abs(onnx_run(R.path("up.onnx"), x.numpy(), "up0") - want).max() > 1e-2

    torch.manual_seed(3)
    emb = EmbNet().eval()
    ids = torch.tensor([[1.0, 7.0, 49.0, 3.0, 3.0, 20.0]])
    export(EmbNetRenamed(), ids, R.path("emb.onnx"))
    torch.save(emb.state_dict(), R.path("emb.pth"))
    ls = {t["name"]: t for t in json.loads(run("ls", "--json", R.path("emb.onnx")).stdout)}
    assert ls["table.weight"]["role"] == "embedding", ls["table.weight"]
    rules = correct_and_mutants("onnx_embedding", EMB_RULES, R.path("emb.pth"), R.path("emb.onnx"), [
        ("embedding transposed through a reshape", "table.weight",
         "table\\.weight$'\n    ops: []", "table\\.weight$'\n    ops: [transpose, {reshape: [50, 16]}]")])
    run("apply", "-q", "-r", rules, R.path("emb.pth"), R.path("emb.onnx"), "-o", R.path("emb_out.onnx"))
    with torch.no_grad():
        want = emb(ids).numpy()
    close(onnx_run(R.path("emb_out.onnx"), ids.numpy(), "emb"), want, "ONNX Gather in onnxruntime vs PyTorch")


# ---- C: the real frozen graph tf2onnx_fc_layers ---------------------------------

class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc0 = nn.Linear(784, 256)
        self.fc1 = nn.Linear(256, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(torch.relu(self.fc0(x)))))


PB_RULES = """graft: 1.1
rename:
  target:
    - {match: '^dense/', to: 'fc0.'}
    - {match: '^dense_1/', to: 'fc1.'}
    - {match: '^pred/', to: 'fc2.'}
    - {match: '\\.kernel$', to: '.weight'}
transforms:
  - target: '^dense_1/kernel$'
    ops: [transpose]
  - rank: 2
    ops: [transpose]
policy: {missing: error, unused: error, mismatch: error}
"""


def case_frozen_pb():
    pb = os.path.join(FIXTURES, "frozen_pb", "tf2onnx_fc_layers", "frozen.pb")
    torch.manual_seed(4)
    net = Mlp().eval()
    torch.save(net.state_dict(), R.path("mlp.pth"))
    ls = {t["name"]: t for t in json.loads(run("ls", "--json", pb).stdout)}
    assert ls["dense_1/kernel"]["op"] == "MatMul" and ls["dense_1/kernel"]["layout"] == "(in,out)"
    rules = correct_and_mutants("frozen_pb", PB_RULES, R.path("mlp.pth"), pb, [
        ("square 256x256 MatMul kernel left untransposed", "dense_1/kernel",
         "dense_1/kernel$'\n    ops: [transpose]", "dense_1/kernel$'\n    ops: []")])
    out = R.path("mlp_out.pb")
    run("apply", "-q", "-r", rules, R.path("mlp.pth"), pb, "-o", out)
    # TF MatMul computes x @ kernel: the kernel must be W.T, value for value
    sha = {t["name"]: t["sha256"] for t in json.loads(run("ls", "--json", out).stdout)}
    from graftlib import sha256_of_array
    for k, t in (("dense", "fc0"), ("dense_1", "fc1"), ("pred", "fc2")):
        w = getattr(net, t).weight.detach().numpy()
        assert sha[f"{k}/kernel"] == sha256_of_array(np.ascontiguousarray(w.T)), k
    # PyTorch itself through --reverse: the graph's weights back into a state dict
    torch.save(Mlp().state_dict(), R.path("mlp_skel.pth"))
    run("apply", "-q", "--reverse", "-r", rules, out, R.path("mlp_skel.pth"), "-o", R.path("mlp_back.pth"))
    back = Mlp().eval()
    back.load_state_dict(torch.load(R.path("mlp_back.pth")))
    x = torch.randn(3, 784)
    with torch.no_grad():
        close(back(x).numpy(), net(x).numpy(), "frozen graph weights back in PyTorch via --reverse")


# ---- D: PyTorch GRU -> Keras GRU (reset_after) HDF5, NumPy Keras cell ------------

GRU_RULES = """graft: 1.1
pairs:
  gru/kernel:0: gru.weight_ih_l0
  gru/recurrent_kernel:0: gru.weight_hh_l0
  gru/bias:0: [gru.bias_ih_l0, gru.bias_hh_l0]
transforms:
  - target: '^gru/bias'
    ops: [{stack: {axis: 0}}, {chunks: {axis: 1, order: [1, 0, 2]}}]
  - target: '^gru/kernel'
    ops: [{chunks: {axis: 0, order: [1, 0, 2]}}, transpose]
  - target: '^gru/recurrent_kernel'
    ops: [{chunks: {axis: 0, order: [1, 0, 2]}}, transpose]
policy: {missing: error, unused: error, mismatch: error}
"""


def keras_gru(x, kernel, rkernel, bias):
    """keras GRUCell, reset_after=True: gates z, r, h; bias[0] input side, bias[1] recurrent."""
    u = rkernel.shape[0]
    h = np.zeros((x.shape[0], u))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for t in range(x.shape[1]):
        xi = x[:, t] @ kernel + bias[0]
        hr = h @ rkernel + bias[1]
        z = sig(xi[:, :u] + hr[:, :u])
        r = sig(xi[:, u:2 * u] + hr[:, u:2 * u])
        hh = np.tanh(xi[:, 2 * u:] + r * hr[:, 2 * u:])
        h = z * h + (1 - z) * hh
    return h


def case_gru():
    torch.manual_seed(6)
    gru = nn.GRU(6, 4, batch_first=True).eval()
    sd = {"gru." + k: v for k, v in gru.state_dict().items()}
    torch.save(sd, R.path("gru.pth"))
    cfg = {"class_name": "Sequential", "config": {"name": "seq", "layers": [
        layer("GRU", "gru", units=4, activation="tanh", recurrent_activation="sigmoid",
              use_bias=True, reset_after=True, return_sequences=False,
              batch_input_shape=[None, 5, 6])]}}
    write_keras_h5(R.path("gru_skel.h5"), cfg, [("gru", [
        ("kernel", np.zeros((6, 12))), ("recurrent_kernel", np.zeros((4, 12))), ("bias", np.zeros((2, 12)))])])
    ls = {t["name"]: t for t in json.loads(run("ls", "--json", R.path("gru_skel.h5")).stdout)}
    assert ls["gru/kernel:0"]["gates"] == "zrh" and ls["gru/bias:0"]["layout"] == "(input|recurrent,gates*units)"
    rules = correct_and_mutants("gru", GRU_RULES, R.path("gru.pth"), R.path("gru_skel.h5"), [
        ("GRU gates left r,z,n", "gru/kernel:0",
         "'^gru/kernel'\n    ops: [{chunks: {axis: 0, order: [1, 0, 2]}}, transpose]",
         "'^gru/kernel'\n    ops: [transpose]"),
        ("GRU recurrent gates left r,z,n", "gru/recurrent_kernel:0",
         "'^gru/recurrent_kernel'\n    ops: [{chunks: {axis: 0, order: [1, 0, 2]}}, transpose]",
         "'^gru/recurrent_kernel'\n    ops: [transpose]"),
        ("GRU bias gates left r,z,n", "gru/bias:0",
         "[{stack: {axis: 0}}, {chunks: {axis: 1, order: [1, 0, 2]}}]", "[{stack: {axis: 0}}]")])
    out = R.path("gru_out.h5")
    run("apply", "-q", "-r", rules, R.path("gru.pth"), R.path("gru_skel.h5"), "-o", out)
    w = dict(h5_weights(out)[0][1])
    x = torch.randn(3, 5, 6)
    with torch.no_grad():
        want = gru(x)[0][:, -1].numpy()
    close(keras_gru(x.numpy().astype(np.float64), w["kernel"], w["recurrent_kernel"], w["bias"]), want,
          "Keras GRU cell (NumPy) on the transplant vs PyTorch GRU")


# ---- E: real Keras h5 -> its keras2onnx twin (both sides structure) ---------------

TWIN_RULES = """graft: 1.1
rename:
  source:
    - {match: '^(conv2d_\\d|dense_\\d)_\\d+/', to: '$1/'}
  target:
    - {match: '^(conv2d_\\d|dense_\\d)_\\d+/', to: '$1/'}
transforms:
  - target: '^conv2d_3_1/kernel'
    ops: [{permute: HWIO->OIHW}]
  - rank: 4
    ops: [{permute: HWIO->OIHW}]
ignore:
  source: ['^optimizer_weights/']
policy: {missing: error, unused: error, mismatch: error}
"""


def case_twin():
    h5 = os.path.join(FIXTURES, "keras2_h5", "full_tfkeras2.3.0_cnn_with_onnx_twin", "mnist.h5")
    ox = os.path.join(FIXTURES, "onnx", "keras2onnx_mnist_cnn_twin_of_h5", "onnx_mnist.onnx")
    rules = correct_and_mutants("keras_to_onnx_twin", TWIN_RULES, h5, ox, [
        ("3x3 conv permuted HWIO->OIWH", "conv2d_3_1/kernel:0",
         "'^conv2d_3_1/kernel'\n    ops: [{permute: HWIO->OIHW}]",
         "'^conv2d_3_1/kernel'\n    ops: [{permute: HWIO->OIWH}]")])
    # both sides structure: the finding is an error (problems, exit 1)
    mj, p = plan(R.path(f"keras_to_onnx_twin_{len(MUTANTS) - 1}.yaml"), h5, ox)
    assert p.returncode == 1 and any(f["target"] == "conv2d_3_1/kernel:0" for f in
                                     mj["problems"] if isinstance(f, dict)), mj["problems"]
    # policy layout: warn / ignore govern it; a 1.0 file may not use the key
    m = open(R.path(f"keras_to_onnx_twin_{len(MUTANTS) - 1}.yaml")).read()
    for pol, code, n in (("warn", 0, 1), ("ignore", 0, 0)):
        pw = write(R.path(f"twin_{pol}.yaml"), m.replace("mismatch: error}", f"mismatch: error, layout: {pol}}}"))
        mj, p = plan(pw, h5, ox)
        assert p.returncode == code and len(findings(mj)) == n, (pol, p.returncode, findings(mj))
    p = run("plan", "--strict", "-r", R.path("twin_warn.yaml"), h5, ox, check=False, layout_ok=True)
    assert p.returncode == 1, (p.returncode, p.stderr)
    old = write(R.path("twin_10.yaml"), m.replace("graft: 1.1", "graft: 1").replace(
        "mismatch: error}", "mismatch: error, layout: warn}"))
    p = run("plan", "-r", old, h5, ox, check=False)
    assert p.returncode == 2 and "policy: layout needs graft: 1.1" in p.stderr, p.stderr
    # the twin already holds the h5's weights: transplant other ones (the h5's, perturbed)
    import shutil
    h5b = R.path("mnist_other.h5")
    shutil.copy(h5, h5b)
    rng = np.random.default_rng(0)
    with h5py.File(h5b, "r+") as f:
        def perturb(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.dtype == np.float32:
                obj[...] = obj[()] * rng.uniform(0.5, 1.5, obj.shape).astype(np.float32)
        f["model_weights"].visititems(perturb)
        cfg = f.attrs["model_config"]
        topo = json.loads(cfg.decode() if isinstance(cfg, bytes) else cfg)
    out = R.path("twin_out.onnx")
    run("apply", "-q", "-r", rules, h5b, ox, "-o", out)
    x = rng.standard_normal((1, 28, 28, 1)).astype(np.float32)
    want = tfjs_run(topo, h5_weights(h5b), x, "twin_tfjs")
    close(onnx_run(out, x, "twin"), want, "keras2onnx twin filled from the h5: onnxruntime vs tfjs-layers")
    assert np.abs(onnx_run(ox, x, "twin0") - want).max() > 1e-3  # the comparison can fail


def shipped_rules_plan_clean():
    rules = os.path.join(SOURCE_ROOT, "rules", "torch-to-keras", "resnet18.yaml")
    pj, p = plan(rules, os.path.join(SOURCE_ROOT, "samples", "resnet18_narrow.pth"),
                 os.path.join(SOURCE_ROOT, "samples", "resnet18_narrow_keras2.h5"))
    CORRECT.append(("shipped resnet18", len(findings(pj))))
    assert not findings(pj) and pj["errors"] == 0, findings(pj)


class Named(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.embed = nn.Embedding(10, 6)
        self.lstm = nn.LSTM(6, 5)
        self.gru = nn.GRU(6, 5)
        self.fc = nn.Linear(6, 2)


def conventions():
    """Files without a graph: roles and layouts from names and ranks (certainty convention)."""
    torch.save(Named().state_dict(), R.path("named.pth"))
    ls = {t["name"]: t for t in json.loads(run("ls", "--json", R.path("named.pth")).stdout)}
    want = {"conv.weight": ("conv2d", "OIHW", None), "bn.weight": ("norm_scale", "(out)", None),
            "bn.bias": ("norm_shift", "(out)", None), "bn.running_var": ("norm_var", "(out)", None),
            "embed.weight": ("embedding", "(vocab,dim)", None), "fc.weight": ("dense", "(out,in)", None),
            "lstm.weight_ih_l0": ("recurrent_input_kernel", "(gates*units,in)", "ifgo"),
            "lstm.weight_hh_l0": ("recurrent_hidden_kernel", "(gates*units,units)", "ifgo"),
            "gru.bias_hh_l0": ("recurrent_hidden_bias", "(gates*units)", "rzn")}
    for name, (role, lay, gates) in want.items():
        t = ls[name]
        assert (t["role"], t["layout"], t.get("gates"), t["certainty"]) == (role, lay, gates, "convention"), t
    assert ls["bn.num_batches_tracked"]["certainty"] == "unknown"
    # Keras weights without a config, and TF-slim names (npz)
    write_keras_h5(R.path("named_k.h5"), {}, [("lstm", [("kernel", np.zeros((6, 20))),
                                                        ("recurrent_kernel", np.zeros((5, 20))),
                                                        ("bias", np.zeros(20))]),
                                              ("conv", [("depthwise_kernel", np.zeros((3, 3, 4, 2)))])])
    with h5py.File(R.path("named_k.h5"), "r+") as f:
        del f.attrs["model_config"]
    ls = {t["name"]: t for t in json.loads(run("ls", "--json", R.path("named_k.h5")).stdout)}
    assert (ls["lstm/kernel:0"]["role"], ls["lstm/kernel:0"]["gates"]) == ("recurrent_input_kernel", "ifco")
    assert ls["lstm/recurrent_kernel:0"]["layout"] == "(units,gates*units)"
    assert ls["conv/depthwise_kernel:0"]["layout"] == "HWCM" and ls["conv/depthwise_kernel:0"]["certainty"] == "convention"
    np.savez(R.path("slim.npz"), **{"conv1/weights": np.zeros((3, 3, 2, 4), np.float32),
                                    "fc/weights": np.zeros((4, 3), np.float32)})
    ls = {t["name"]: t for t in json.loads(run("ls", "--json", R.path("slim.npz")).stdout)}
    assert ls["conv1/weights"]["layout"] == "HWIO" and ls["fc/weights"]["layout"] == "(in,out)", ls


# ---- F: tensors above the dense check's limit, checked on a sample ----------

BIG_RULES = """graft: 1.1
rename:
  target:
    - {match: '^(\\w+)/kernel:0$', to: '$1.weight'}
    - {match: '^(\\w+)/bias:0$', to: '$1.bias'}
transforms:
  - target: '^conv/kernel'
    ops: [{permute: OIHW->HWIO}]
  - rank: 2
    ops: [transpose]
policy: {missing: error, unused: error, mismatch: error}
"""

BIG_MUTANTS = [
    ("square 2049x2049 Dense kernel (4.2 Mi elements) left untransposed", "fc2/kernel:0",
     "  - rank: 2\n    ops: [transpose]",
     "  - target: '^fc2/kernel'\n    ops: []\n  - rank: 2\n    ops: [transpose]"),
    ("3x3 conv of 512 -> 1024 (4.7 Mi elements) permuted OIHW->WHIO", "conv/kernel:0",
     "{permute: OIHW->HWIO}", "{permute: OIHW->WHIO}"),
]


def case_large():
    """Issue 19: a tensor above the dense check's 4 Mi elements (an LLM's
    every matrix) is checked at a few thousand positions of the chain composed
    into one gather, so the mistakes that keep shapes are still flagged there."""
    torch.manual_seed(2)
    sd = {"conv.weight": torch.randn(1024, 512, 3, 3), "conv.bias": torch.randn(1024),
          "fc1.weight": torch.randn(2049, 1024), "fc1.bias": torch.randn(2049),
          "fc2.weight": torch.randn(2049, 2049), "fc2.bias": torch.randn(2049),
          "fc3.weight": torch.randn(5, 2049), "fc3.bias": torch.randn(5)}
    torch.save(sd, R.path("big.pth"))
    cfg = {"class_name": "Sequential", "config": {"name": "big", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 5, 5, 512],
                                                 "dtype": "float32", "sparse": False, "name": "in"}},
        layer("Conv2D", "conv", filters=1024, **CONV),
        layer("GlobalAveragePooling2D", "gap", data_format="channels_last"),
        layer("Dense", "fc1", units=2049, activation="relu", use_bias=True),
        layer("Dense", "fc2", units=2049, activation="relu", use_bias=True),
        layer("Dense", "fc3", units=5, activation="linear", use_bias=True)]}}
    z = np.zeros
    write_keras_h5(R.path("big_skel.h5"), cfg, [
        ("conv", [("kernel", z((3, 3, 512, 1024))), ("bias", z(1024))]),
        ("fc1", [("kernel", z((1024, 2049))), ("bias", z(2049))]),
        ("fc2", [("kernel", z((2049, 2049))), ("bias", z(2049))]),
        ("fc3", [("kernel", z((2049, 5))), ("bias", z(5))])])
    rules = correct_and_mutants("large", BIG_RULES, R.path("big.pth"), R.path("big_skel.h5"),
                                BIG_MUTANTS)
    for name in ("fc2/kernel:0", "conv/kernel:0"):
        ex = run("explain", "-r", rules, R.path("big.pth"), R.path("big_skel.h5"), name).stdout
        assert "check: the layouts call for" in ex and ": agrees" in ex, ex
        assert re.search(r"checked at \d+ of (4198401|4718592) positions", ex), ex
    ex = run("explain", "-r", rules, R.path("big.pth"), R.path("big_skel.h5"), "fc3/kernel:0").stdout
    assert ": agrees" in ex and "positions" not in ex, ex  # 10k elements: every one checked

    assert all(hit for case, _, hit in MUTANTS if case == "large"), MUTANTS


def figure():
    flagged = sum(1 for *_, h in MUTANTS if h)
    total = len(MUTANTS)
    false_alarms = sum(n for _, n in CORRECT)
    print(f"     mutants flagged: {flagged}/{total} = {100.0 * flagged / max(total, 1):.1f}%; "
          f"layout findings on {len(CORRECT)} correct rules files: {false_alarms}")
    assert total >= 12 and flagged * 100 >= 95 * total, MUTANTS
    made = [x for x in SUGGESTED if x[2] is not None]
    print(f"     op chains suggested for {len(made)}/{len(SUGGESTED)} flagged targets, "
          f"{sum(1 for x in made if x[2])} of them plan clean")
    assert len(made) >= len(SUGGESTED) - 1 and all(x[2] for x in made), SUGGESTED
    assert false_alarms == 0 and len(CORRECT) >= 8, CORRECT


NET = []
R.check("A: PyTorch CNN -> Keras h5 (model_config): plan clean, tfjs-layers == PyTorch, mutants flagged",
        lambda: NET.append(case_keras_h5()))
R.check("A2: the same into a .keras archive (config.json): tfjs-layers == PyTorch, mutants flagged",
        lambda: case_keras3(NET[0]))
R.check("B: torch.onnx.export under other names (ConvTranspose, Gemm, Gather): onnxruntime == PyTorch, "
        "mutants flagged", case_onnx)
R.check("C: real frozen graph tf2onnx_fc_layers: kernels == W.T, PyTorch via --reverse, mutant flagged",
        case_frozen_pb)
R.check("D: PyTorch GRU -> Keras GRU h5: NumPy Keras cell == PyTorch, gate mutants flagged", case_gru)
R.check("E: real Keras h5 -> its keras2onnx twin (structure both sides): onnxruntime == tfjs, error "
        "finding, policy layout and --strict", case_twin)
R.check("shipped resnet18 rules plan clean", shipped_rules_plan_clean)
R.check("naming conventions: PyTorch, Keras weights without a config, TF-slim", conventions)
R.check("F: tensors over 4 Mi elements checked on a sample: plan clean, mutants flagged", case_large)
R.check("all mutants: >= 95% flagged, no finding on any correct rules file", figure)
R.close()
