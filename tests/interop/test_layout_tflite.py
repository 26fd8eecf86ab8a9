"""Layout semantics (issue 12) for TFLite and Core ML skeletons (issue 15).

- `graft ls --json` gives the structure layouts the operators / layer params
  call for: on the real held-out and fixture .tflite files (every weight of a
  CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED as the oracle reader, written
  from schema.fbs, finds it), and on a Core ML model built with protobuf from
  the real protos.
- F: a PyTorch net (conv, depthwise with multiplier 2, transposed conv,
  flatten of the feature map into a Dense, a square Dense) into a TFLite
  skeleton with those operators: the correct rules plan clean and the
  transplant, run by the NumPy reference-kernel interpreter (tflite_ref),
  equals PyTorch; each mutant (OIHW->HWIO where TFLite wants OHWI, H/W
  swapped, C*M read multiplier-major, a transposed conv permuted as a conv,
  the NCHW flatten kept where TFLite reads NHWC, a square Dense transposed)
  gives a `layout` finding naming its target.
- G: the same net's weights into a Core ML NeuralNetwork (convolution OIHW,
  depthwise, deconvolution IOHW, inner product (out, in), embedding (dim,
  vocab), batchnorm): correct rules plan clean, the transplanted values read
  back by protobuf are PyTorch's (re-laid as the proto's comments say), and
  the mutants are flagged.
The share of mutants flagged is printed and must be 100 %.
"""
import glob
import json
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
from fwdlib import close  # noqa: E402
from graftlib import FIXTURES, Results, ls_layouts, run  # noqa: E402
import tflite_fb as fb  # noqa: E402
import tflite_ref  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

R = Results()
MUTANTS = []  # (case, name, flagged)
HERE = os.path.dirname(os.path.abspath(__file__))


def findings(pj):
    return [d for d in pj["warnings"] + pj["problems"] if isinstance(d, dict) and d.get("kind") == "layout"]


def plan(rules, src, skel):
    p = run("plan", "--json", "-r", rules, src, skel, check=False, layout_ok=True)
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout)


def write(name, data):
    path = R.path(name)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path


def mutants(case, rules, src, skel, cases):
    """Correct rules plan clean; each (name, target, old, new) gives a finding naming
    target (a warning: the PyTorch side is known by convention)."""
    pj = plan(write(case + ".yaml", rules), src, skel)
    assert not findings(pj) and pj["errors"] == 0, (findings(pj), pj["problems"])
    for name, target, old, new in cases:
        assert old in rules, (case, name)
        mj = plan(write(f"{case}_{len(MUTANTS)}.yaml", rules.replace(old, new)), src, skel)
        hit = [f for f in findings(mj) if f["target"] == target and re.match(r".+:\d+$", f["rule"])]
        MUTANTS.append((case, name, bool(hit)))
        print(f"     {case}: {name}: " + (hit[0]["message"][:300] if hit else "MISSED"))
    return R.path(case + ".yaml")


# ---- listing: real files --------------------------------------------------------

ROLE = {tflite_ref.CONV_2D: ("conv2d", "OHWI"), tflite_ref.DEPTHWISE_CONV_2D: ("depthwise", "1HW(C*M)"),
        tflite_ref.FULLY_CONNECTED: ("dense", "(out,in)")}


def real_files_listed():
    files = sorted(glob.glob(os.path.join(HERE, "data", "tflite", "*.tflite")) +
                   glob.glob(os.path.join(FIXTURES, "tflite", "*", "*.tflite")))
    assert len(files) == 12, files
    seen = set()
    for path in files:
        data = open(path, "rb").read()
        g = tflite_ref.read_graph(data)
        names = {e["_range"][0]: e["name"] for e in fb.listing(data)}
        r = g["reader"]
        root = r.table(r.deref(0))
        tts = r.tables(r.tables(root, 2)[0], 0)
        bufs = fb.read_model(data)["buffers"]
        got = ls_layouts(path)
        for o in g["ops"]:
            if o["code"] not in ROLE or len(o["inputs"]) < 2:
                continue
            ti = o["inputs"][1]
            pos = bufs[r.scalar(tts[ti], 2, "I")][0]
            e = got[names[pos]]
            assert (e["role"], e["layout"], e["certainty"]) == ROLE[o["code"]] + ("structure",), (path, e)
            seen.add(o["code"])
            if len(o["inputs"]) > 2 and o["inputs"][2] >= 0:
                b = got[names[bufs[r.scalar(tts[o["inputs"][2]], 2, "I")][0]]]
                assert (b["role"], b["layout"]) == ("bias", "(out)"), (path, b)
    assert seen == set(ROLE), seen
    mic = ls_layouts(os.path.join(FIXTURES, "tflite", "tflm_micro_speech_int8_conv", "micro_speech_quantized.tflite"))
    fc = mic["final_fc_weights/read/transpose"]  # FULLY_CONNECTED on the [1, 25, 20, 8] map
    assert fc["flatten"] == {"order": "HWC", "channels": 8, "spatial": [25, 20]}, fc


# ---- F: TFLite --------------------------------------------------------------------

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.dw = nn.Conv2d(3, 6, 3, padding=1, groups=3)
        self.up = nn.ConvTranspose2d(6, 6, 3)
        self.fc1 = nn.Linear(294, 8)
        self.fc2 = nn.Linear(8, 8)

    def forward(self, x):
        x = self.up(self.dw(self.conv(x)))
        return self.fc2(self.fc1(torch.flatten(x, 1)))


def tflite_skeleton():
    rng = np.random.default_rng(3)
    tensors, bufs, ops, codes = [], [b""], [], []

    def t(name, shape, value=None, typ="float32"):
        if value is None and name.startswith("model/") and typ == "float32":
            value = rng.standard_normal(shape).astype(np.float32)
        if value is not None:
            bufs.append(np.ascontiguousarray(value).tobytes())
        tensors.append({"name": name, "type": typ, "shape": shape, "buffer": len(bufs) - 1 if value is not None else 0})
        return len(tensors) - 1

    def op(code, ins, shape, name, otype, opts):
        codes.append(code) if code not in codes else None
        ops.append({"opcode": codes.index(code), "inputs": ins, "outputs": [t(name, shape)],
                    "options_type": otype, "options": opts})
        return len(tensors) - 1

    x = t("input", [1, 5, 5, 3])
    same = {0: ("b", 0), 1: ("i", 1), 2: ("i", 1)}
    y = op(tflite_ref.CONV_2D, [x, t("model/conv/Conv2D", [3, 3, 3, 3]), t("model/conv/BiasAdd/ReadVariableOp", [3])],
           [1, 5, 5, 3], "conv", 1, same)
    y = op(tflite_ref.DEPTHWISE_CONV_2D, [y, t("model/dw/depthwise", [1, 3, 3, 6]),
                                          t("model/dw/BiasAdd/ReadVariableOp", [6])],
           [1, 5, 5, 6], "dw", 2, {**same, 3: ("i", 2)})
    shp = t("up/stack", [4], np.array([1, 7, 7, 6], np.int32), "int32")
    y = op(tflite_ref.TRANSPOSE_CONV, [shp, t("model/up/conv2d_transpose", [6, 3, 3, 6]), y,
                                       t("model/up/BiasAdd/ReadVariableOp", [6])],
           [1, 7, 7, 6], "up", 49, {0: ("b", 1), 1: ("i", 1), 2: ("i", 1)})
    y = op(tflite_ref.RESHAPE, [y, t("flatten/Const", [2], np.array([1, 294], np.int32), "int32")],
           [1, 294], "flatten", 17, {})
    for name, n_in in (("fc1", 294), ("fc2", 8)):
        y = op(tflite_ref.FULLY_CONNECTED, [y, t(f"model/{name}/MatMul", [8, n_in]),
                                            t(f"model/{name}/BiasAdd/ReadVariableOp", [8])],
               [1, 8], name, 8, {0: ("b", 0)})
    return fb.build([("main", tensors, ops, [x], [y])], bufs, opcodes=codes)


TFLITE_RULES = """graft: 1.1
rename:
  target:
    - {match: '^model/(\\w+)/BiasAdd/ReadVariableOp$', to: '$1.bias'}
    - {match: '^model/(\\w+)/\\w+$', to: '$1.weight'}
transforms:
  - target: '/Conv2D$'
    ops: [{permute: OIHW->OHWI}]
  - target: '/depthwise$'
    ops: [{permute: OIHW->IHWO}]
  - target: '/conv2d_transpose$'
    ops: [{permute: IOHW->OHWI}]
  - target: 'fc1/MatMul$'
    ops: [{reshape: [8, 6, 7, 7]}, {permute: [0, 2, 3, 1]}, {reshape: [8, 294]}]
ignore:
  target: ['^up/stack$', '^flatten/Const$']
policy: {missing: error, unused: error, mismatch: error}
"""

TFLITE_MUTANTS = [
    ("conv permuted OIHW->HWIO where TFLite wants OHWI", "model/conv/Conv2D", "OIHW->OHWI", "OIHW->HWIO"),
    ("conv H and W swapped", "model/conv/Conv2D", "OIHW->OHWI", "OIHW->OWHI"),
    ("depthwise H and W swapped", "model/dw/depthwise", "OIHW->IHWO", "OIHW->IWHO"),
    ("depthwise C*M read multiplier-major", "model/dw/depthwise", "[{permute: OIHW->IHWO}]",
     "[{reshape: [3, 2, 3, 3]}, {permute: [1, 0, 2, 3]}, {reshape: [6, 1, 3, 3]}, {permute: OIHW->IHWO}]"),
    ("transposed conv permuted as a conv", "model/up/conv2d_transpose", "IOHW->OHWI", "OIHW->OHWI"),
    ("flatten kept in NCHW order where TFLite reads NHWC", "model/fc1/MatMul",
     "[{reshape: [8, 6, 7, 7]}, {permute: [0, 2, 3, 1]}, {reshape: [8, 294]}]", "[{reshape: [8, 294]}]"),
    ("square Dense transposed", "model/fc2/MatMul", "  - target: 'fc1/MatMul$'",
     "  - target: 'fc2/MatMul$'\n    ops: [transpose]\n  - target: 'fc1/MatMul$'"),
]


def case_tflite():
    torch.manual_seed(4)
    net = Net().eval()
    src = R.path("net.pth")
    torch.save(net.state_dict(), src)
    skel = write("net_skel.tflite", tflite_skeleton())
    lay = ls_layouts(skel)
    want = {"model/conv/Conv2D": ("conv2d", "OHWI"), "model/dw/depthwise": ("depthwise", "1HW(C*M)"),
            "model/up/conv2d_transpose": ("conv_transpose", "OHWI"), "model/fc2/MatMul": ("dense", "(out,in)"),
            "model/up/BiasAdd/ReadVariableOp": ("bias", "(out)")}
    for name, rl in want.items():
        assert (lay[name]["role"], lay[name]["layout"], lay[name]["certainty"]) == rl + ("structure",), lay[name]
    assert lay["model/fc1/MatMul"]["flatten"] == {"order": "HWC", "channels": 6, "spatial": [7, 7]}
    rules = mutants("tflite", TFLITE_RULES, src, skel, TFLITE_MUTANTS)
    out = R.path("net.tflite")
    run("apply", "-q", "--strict", "-r", rules, src, skel, "-o", out)
    x = torch.randn(1, 3, 5, 5, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = net(x).numpy()
    got = tflite_ref.run(open(out, "rb").read(), x.numpy().transpose(0, 2, 3, 1))
    close("small net in the NumPy TFLite reference interpreter", got, ref)


# ---- G: Core ML ------------------------------------------------------------------

def coreml_skeleton():
    import test_coreml
    try:
        m = test_coreml.Model()
    finally:
        shutil.rmtree(test_coreml.R.tmp, ignore_errors=True)
    m.specificationVersion = 4
    net = m.neuralNetwork
    rng = np.random.default_rng(6)

    def vals(wp, n):
        wp.floatValue.extend(rng.standard_normal(n).astype(np.float32).tolist())

    def conv(name, cin, cout, groups=1, deconv=False):
        p = net.layers.add(name=name, input=["x"], output=[name]).convolution
        p.outputChannels, p.kernelChannels, p.nGroups = cout, cin // groups if not deconv else cin, groups
        p.isDeconvolution, p.hasBias = deconv, True
        p.kernelSize.extend([3, 3])
        vals(p.weights, cout * (cin // groups) * 9)
        vals(p.bias, cout)

    conv("conv", 3, 3)
    conv("dw", 3, 6, groups=3)
    conv("up", 6, 6, deconv=True)
    for name, cin in (("fc1", 294), ("fc2", 8)):
        p = net.layers.add(name=name, input=["x"], output=[name]).innerProduct
        p.inputChannels, p.outputChannels, p.hasBias = cin, 8, True
        vals(p.weights, 8 * cin)
        vals(p.bias, 8)
    e = net.layers.add(name="emb", input=["x"], output=["emb"]).embedding
    e.inputDim, e.outputChannels = 6, 6
    vals(e.weights, 36)
    bn = net.layers.add(name="bn", input=["x"], output=["bn"]).batchnorm
    bn.channels = 6
    for f in ("gamma", "beta", "mean", "variance"):
        vals(getattr(bn, f), 6)
    return m


class CoreNet(Net):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(6, 6)
        self.bn = nn.BatchNorm2d(6)


COREML_RULES = """graft: 1.1
pairs: {bn/gamma: bn.weight, bn/beta: bn.bias, bn/mean: bn.running_mean, bn/variance: bn.running_var}
rename:
  target:
    - {match: '^(\\w+)/weights$', to: '$1.weight'}
    - {match: '^(\\w+)/bias$', to: '$1.bias'}
transforms:
  - target: '^emb/'
    ops: [transpose]
ignore:
  source: ['num_batches_tracked$']
policy: {missing: error, unused: error, mismatch: error}
"""

COREML_MUTANTS = [
    ("conv H and W swapped", "conv/weights", "transforms:\n", "transforms:\n  - target: '^conv/weights'\n"
     "    ops: [{permute: OIHW->OIWH}]\n"),
    ("depthwise H and W swapped", "dw/weights", "transforms:\n", "transforms:\n  - target: '^dw/weights'\n"
     "    ops: [{permute: OIHW->OIWH}]\n"),
    ("deconvolution permuted as a conv (IOHW->OIHW)", "up/weights", "transforms:\n",
     "transforms:\n  - target: '^up/weights'\n    ops: [{permute: [1, 0, 2, 3]}]\n"),
    ("square inner product transposed", "fc2/weights", "transforms:\n",
     "transforms:\n  - target: '^fc2/weights'\n    ops: [transpose]\n"),
    ("embedding (vocab, dim) not transposed to Core ML's (dim, vocab)", "emb/weights",
     "ops: [transpose]", "ops: [{reshape: [6, 6]}]"),
]


def case_coreml():
    torch.manual_seed(7)
    net = CoreNet().eval()
    src = R.path("core.pth")
    torch.save(net.state_dict(), src)
    m = coreml_skeleton()
    skel = write("core.mlmodel", m.SerializeToString())
    lay = ls_layouts(skel)
    want = {"conv/weights": ("conv2d", "OIHW"), "dw/weights": ("depthwise", "OIHW"),
            "up/weights": ("conv_transpose", "IOHW"), "fc1/weights": ("dense", "(out,in)"),
            "emb/weights": ("embedding", "(dim,vocab)"), "bn/variance": ("norm_var", "(out)"),
            "up/bias": ("bias", "(out)")}
    for name, rl in want.items():
        assert (lay[name]["role"], lay[name]["layout"], lay[name]["certainty"]) == rl + ("structure",), lay[name]
    rules = mutants("coreml", COREML_RULES, src, skel, COREML_MUTANTS)
    out = R.path("core_out.mlmodel")
    run("apply", "-q", "--strict", "-r", rules, src, skel, "-o", out)
    got = type(m).FromString(open(out, "rb").read())
    layers = {ly.name: ly for ly in got.neuralNetwork.layers}
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    for name in ("conv", "dw", "up"):  # Core ML OIHW / deconvolution IOHW = PyTorch's own
        assert np.array_equal(np.array(layers[name].convolution.weights.floatValue, np.float32),
                              sd[name + ".weight"].reshape(-1)), name
    assert np.array_equal(np.array(layers["fc1"].innerProduct.weights.floatValue, np.float32),
                          sd["fc1.weight"].reshape(-1))
    assert np.array_equal(np.array(layers["emb"].embedding.weights.floatValue, np.float32),
                          sd["emb.weight"].T.reshape(-1))  # [outputChannels, inputDim]
    assert np.array_equal(np.array(layers["bn"].batchnorm.variance.floatValue, np.float32), sd["bn.running_var"])


def figure():
    flagged = sum(1 for *_, h in MUTANTS if h)
    print(f"     mutants flagged: {flagged}/{len(MUTANTS)} = {100.0 * flagged / max(len(MUTANTS), 1):.1f}%")
    assert len(MUTANTS) == len(TFLITE_MUTANTS) + len(COREML_MUTANTS) and flagged == len(MUTANTS), MUTANTS


if __name__ == "__main__":
    R.check("real .tflite files: CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED weights and biases get their "
            "structure layouts, the micro_speech Dense its NHWC flatten", real_files_listed)
    R.check("F: PyTorch -> TFLite skeleton: plan clean, reference-kernel forward == PyTorch, mutants flagged",
            case_tflite)
    R.check("G: PyTorch -> Core ML NeuralNetwork: plan clean, values by protobuf, mutants flagged", case_coreml)
    R.check("all mutants flagged", figure)
    R.close()
