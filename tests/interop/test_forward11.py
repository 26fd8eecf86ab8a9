"""Forward passes through real runtimes after a rules-1.1 transplant (the
runtimes are the oracles; graft only moves the weights):

- a PyTorch LSTM (+ Linear head) fills a real Keras 2.3.1 LSTM model file
  (fixtures keras2_h5/full_keras2.3.1_lstm), the Keras bias being the sum of
  PyTorch's bias_ih and bias_hh (op `sum`); tfjs-layers builds the model from
  the file's model_config (run over 6 time steps instead of 1, so the
  recurrent kernel counts) with the transplanted weights, and its output
  equals PyTorch's to 1e-5;
- a conv+BatchNorm network exported by torch.onnx.export in eval mode (BN
  folded into onnx::Conv_N initializers) is filled from the unfolded state
  dict with `fold_bn`, and onnxruntime's output equals PyTorch's to 1e-5.

The runtimes are the pinned npm packages in tests/js (a missing one fails
the test).  The largest error seen is printed with each check.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from graftlib import FIXTURES, SOURCE_ROOT, Results, run  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402

R = Results()
JS = os.path.join(SOURCE_ROOT, "tests", "js")


def node(script, *args):
    p = subprocess.run(["node", os.path.join(JS, script), *map(str, args)], capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise AssertionError(f"node {script} exited {p.returncode}: {p.stderr.strip()}")


class LstmNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(56, 50, batch_first=True)
        self.fc = torch.nn.Linear(50, 1)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.fc(y[:, -1])


LSTM_RULES = """graft: 1.1
# PyTorch LSTM gates are i, f, g, o; Keras' i, f, c, o: the same order.
rename:
  target:
    - {match: '^lstm_1/kernel:0$', to: 'lstm.weight_ih_l0'}
    - {match: '^lstm_1/recurrent_kernel:0$', to: 'lstm.weight_hh_l0'}
    - {match: '^dense_1/(kernel|bias):0$', to: 'fc.$1'}
    - {match: '\\.kernel$', to: '.weight'}
pairs:
  lstm_1/bias:0: [lstm.bias_ih_l0, lstm.bias_hh_l0]
transforms:
  - source: 'bias_ih'
    ops: [sum]
  - rank: 2
    ops: [transpose]
ignore:
  target: ['^optimizer_weights/']
policy: {missing: error, unused: error, mismatch: error}
"""


def keras_run(path, x, tag):
    """tfjs-layers' output for x from a Keras 2 HDF5 model (its model_config, run over
    every time step of x, and its weights in layer order)."""
    with h5py.File(path, "r") as f:
        cfg = f.attrs["model_config"]
        topo = json.loads(cfg.decode() if isinstance(cfg, bytes) else cfg)
        mw = f["model_weights"]
        specs, blobs = [], []
        for layer in mw.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            for w in mw[layer].attrs["weight_names"]:
                w = w.decode() if isinstance(w, bytes) else w
                a = np.ascontiguousarray(mw[layer][w][()], dtype="<f4")
                specs.append({"name": f"{layer}/{w.split('/')[-1].split(':')[0]}",
                              "shape": list(a.shape), "dtype": "float32"})
                blobs.append(a.tobytes())
    lstm = topo["config"]["layers"][0]["config"]
    lstm["batch_input_shape"] = [None] + list(x.shape[1:])
    lstm["return_sequences"] = True  # the Dense head then runs on every step
    with open(R.path(f"{tag}_spec.json"), "w") as f:
        json.dump({"modelTopology": topo, "weightSpecs": specs,
                   "input": {"shape": list(x.shape), "data": x.flatten().tolist()}}, f)
    with open(R.path(f"{tag}_w.bin"), "wb") as f:
        f.write(b"".join(blobs))
    node("keras_forward.mjs", R.path(f"{tag}_spec.json"), R.path(f"{tag}_w.bin"), R.path(f"{tag}_y.json"))
    with open(R.path(f"{tag}_y.json")) as f:
        y = json.load(f)
    return np.array(y["data"], dtype=np.float64).reshape(y["shape"])


def test_lstm_in_tfjs():
    skel = os.path.join(FIXTURES, "keras2_h5", "full_keras2.3.1_lstm", "model.h5")
    torch.manual_seed(3)
    net = LstmNet().eval()
    torch.save(net.state_dict(), R.path("lstm.pth"))
    with open(R.path("lstm.yaml"), "w") as f:
        f.write(LSTM_RULES)
    out = R.path("lstm_out.h5")
    run("apply", "-q", "-r", R.path("lstm.yaml"), R.path("lstm.pth"), skel, "-o", out)
    with h5py.File(out, "r") as f:  # the Keras bias is the sum, rounded once from float64
        b = (net.lstm.bias_ih_l0.detach().double() + net.lstm.bias_hh_l0.detach().double()).float()
        assert np.array_equal(f["model_weights/lstm_1/lstm_1/bias:0"][()], b.numpy())
    x = torch.randn(4, 6, 56)
    with torch.no_grad():
        want = net.fc(net.lstm(x)[0]).numpy()  # every step, as return_sequences gives
    got = keras_run(out, x, "lstm")
    err = np.abs(got - want).max()
    print(f"     LSTM: tfjs-layers vs PyTorch, max |error| = {err:.3g} over {got.size} outputs")
    assert got.shape == want.shape and err <= 1e-5, (got.shape, want.shape, err)
    assert np.abs(want).max() > 1e-2  # not a degenerate all-zero output
    # the skeleton's own weights are far off: the comparison can fail
    assert np.abs(keras_run(skel, x, "lstm_skel") - want).max() > 1e-2


class ConvBn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 4, 3, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(4, eps=1e-3)

    def forward(self, x):
        return self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))


def randomised(seed):
    torch.manual_seed(seed)
    net = ConvBn()
    with torch.no_grad():
        for bn in (net.bn1, net.bn2):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
    return net.eval()


def conv_inputs(model):
    """Each Conv node's (W, B) initializer names, in node order."""
    inits = {i.name for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    return [(n.input[1], n.input[2] if len(n.input) > 2 else None) for n in convs
            if n.input[1] in inits]


def test_fold_bn_in_onnxruntime():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 10, 10)
    # the skeleton: exported from other weights, so only the transplant can make it right
    torch.onnx.export(randomised(1), x, R.path("convbn.onnx"), opset_version=13,
                      input_names=["x"], output_names=["y"])
    model = onnx.load(R.path("convbn.onnx"))
    assert not any(n.op_type == "BatchNormalization" for n in model.graph.node)  # folded
    (w1, b1), (w2, b2) = conv_inputs(model)
    assert all(n.startswith("onnx::Conv_") for n in (w1, b1, w2, b2)), (w1, b1, w2, b2)
    net = randomised(2)
    torch.save(net.state_dict(), R.path("convbn.pth"))
    bn = ["weight", "bias", "running_mean", "running_var"]
    rules = f"""graft: 1.1
pairs:
  '{w1}': [conv1.weight, {', '.join('bn1.' + b for b in bn)}]
  '{b1}': [conv1.bias, {', '.join('bn1.' + b for b in bn)}]
  '{w2}': [conv2.weight, {', '.join('bn2.' + b for b in bn)}]
  '{b2}': [{', '.join('bn2.' + b for b in bn)}]
transforms:
  - target: '^{w1}$'
    ops: [{{fold_bn: {{part: weight, eps: 1e-5}}}}]
  - target: '^{b1}$'
    ops: [{{fold_bn: {{part: bias, eps: 1e-5}}}}]
  - target: '^{w2}$'
    ops: [{{fold_bn: {{part: weight, eps: 0.001}}}}]
  - target: '^{b2}$'
    ops: [{{fold_bn: {{part: bias, eps: 0.001}}}}]
ignore:
  source: ['num_batches_tracked$']
policy: {{missing: error, unused: error, mismatch: error}}
"""
    with open(R.path("convbn.yaml"), "w") as f:
        f.write(rules)
    run("apply", "-q", "-r", R.path("convbn.yaml"), R.path("convbn.pth"), R.path("convbn.onnx"),
        "-o", R.path("convbn_out.onnx"))
    with torch.no_grad():
        want = net(x).numpy()
    with open(R.path("convbn_x.json"), "w") as f:
        json.dump({"name": "x", "shape": list(x.shape), "data": x.flatten().tolist()}, f)
    for path, expect_close in ((R.path("convbn_out.onnx"), True), (R.path("convbn.onnx"), False)):
        node("onnx_run.mjs", path, R.path("convbn_x.json"), R.path("convbn_y.json"))
        with open(R.path("convbn_y.json")) as f:
            y = json.load(f)
        got = np.array(y["data"], dtype=np.float64).reshape(y["shape"])
        err = np.abs(got - want).max()
        if expect_close:
            print(f"     conv+BN: onnxruntime vs PyTorch, max |error| = {err:.3g} over {got.size} outputs")
            assert got.shape == want.shape and err <= 1e-5, err
        else:  # the unfilled skeleton is far off: the comparison can fail
            assert err > 1e-2, err
    # fold_bn has no reverse: --reverse refuses it and names the rule line
    p = run("plan", "--reverse", "-r", R.path("convbn.yaml"), R.path("convbn_out.onnx"),
            R.path("convbn.pth"), check=False)
    assert p.returncode == 1 and "convbn.yaml:9: fold_bn: has no reverse" in p.stdout, p.stdout


R.check("PyTorch LSTM -> real Keras 2.3.1 LSTM file (bias via sum): tfjs-layers output == PyTorch's "
        "to 1e-5", test_lstm_in_tfjs)
R.check("conv+BN -> torch.onnx.export's folded initializers via fold_bn: onnxruntime output == "
        "PyTorch's to 1e-5", test_fold_bn_in_onnxruntime)
R.close()
