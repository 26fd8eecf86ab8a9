"""Core ML .mlmodel as source and skeleton, checked with Python's protobuf.

The models are built with Python's protobuf from the real coremltools protos
(schemas/coreml/*.proto, compiled here into a descriptor set by protoc-c):
a NeuralNetwork, a NeuralNetworkClassifier and a NeuralNetworkRegressor with
convolution (float32 and float16 weights), batchnorm, inner product (also
int8RawValue) layers.
- `graft ls --json` lists each WeightParams as '<layer>/<field>' with Core
  ML's shape and the sha256 of the stored values, as read by protobuf;
- identity apply is byte-identical;
- a PyTorch state dict transplanted in: the output parsed by protobuf equals
  the skeleton message with exactly those values replaced;
- malformed files are refused with one line naming the file.
Run with /usr/bin/python3.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

sys.path.insert(0, os.path.dirname(__file__))
import graftlib  # noqa: E402

R = graftlib.Results()
SCHEMAS = os.path.join(graftlib.SOURCE_ROOT, "schemas", "coreml")


def model_class():
    protoc = shutil.which("protoc-c")
    assert protoc, "protoc-c is needed to compile the Core ML protos"
    desc = R.path("coreml.desc")
    subprocess.run([protoc, f"--proto_path={SCHEMAS}", "--include_imports",
                    f"--descriptor_set_out={desc}", "Model.proto"], check=True)
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(desc, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    d = pool.FindMessageTypeByName("CoreML.Specification.Model")
    get = getattr(message_factory, "GetMessageClass", None)
    return get(d) if get else message_factory.MessageFactory(pool).GetPrototype(d)


Model = model_class()
RNG = np.random.default_rng(5)


def build(kind="neuralNetwork"):
    """A small network; returns (Model message, {tensor name: (dtype, shape, bytes)})."""
    m = Model()
    m.specificationVersion = 4
    m.description.metadata.shortDescription = "graft test"
    nn = getattr(m, kind)
    want = {}

    conv = nn.layers.add(name="conv1", input=["x"], output=["c1"])
    p = conv.convolution
    p.outputChannels, p.kernelChannels, p.hasBias = 8, 3, True
    p.kernelSize.extend([3, 3])
    w = RNG.standard_normal((8, 3, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(8).astype(np.float32)
    p.weights.floatValue.extend(w.reshape(-1).tolist())
    p.bias.floatValue.extend(b.tolist())
    want["conv1/weights"] = ("float32", [8, 3, 3, 3], w.tobytes())
    want["conv1/bias"] = ("float32", [8], b.tobytes())

    bn = nn.layers.add(name="bn", input=["c1"], output=["b1"])
    bn.batchnorm.channels = 8
    for f in ("gamma", "beta", "mean", "variance"):
        v = RNG.standard_normal(8).astype(np.float32)
        getattr(bn.batchnorm, f).floatValue.extend(v.tolist())
        want[f"bn/{f}"] = ("float32", [8], v.tobytes())

    half = nn.layers.add(name="conv2", input=["b1"], output=["c2"])
    q = half.convolution
    q.outputChannels, q.kernelChannels = 4, 8
    q.kernelSize.extend([1, 1])
    h = RNG.standard_normal((4, 8, 1, 1)).astype(np.float16)
    q.weights.float16Value = h.tobytes()
    want["conv2/weights"] = ("float16", [4, 8, 1, 1], h.tobytes())

    fc = nn.layers.add(name="fc", input=["c2"], output=["y"])
    fc.innerProduct.inputChannels, fc.innerProduct.outputChannels = 4, 10
    fc.innerProduct.hasBias = True
    fw = RNG.standard_normal((10, 4)).astype(np.float32)
    fb = RNG.standard_normal(10).astype(np.float32)
    fc.innerProduct.weights.floatValue.extend(fw.reshape(-1).tolist())
    fc.innerProduct.bias.floatValue.extend(fb.tolist())
    want["fc/weights"] = ("float32", [10, 4], fw.tobytes())
    want["fc/bias"] = ("float32", [10], fb.tobytes())

    q8 = nn.layers.add(name="fc_q", input=["y"], output=["z"])
    q8.innerProduct.inputChannels, q8.innerProduct.outputChannels = 10, 2
    qi = RNG.integers(-128, 128, (2, 10), dtype=np.int8)
    q8.innerProduct.weights.int8RawValue = qi.tobytes()
    q8.innerProduct.int8DynamicQuantize = True
    want["fc_q/weights"] = ("int8", [2, 10], qi.tobytes())
    if kind == "neuralNetworkClassifier":
        nn.stringClassLabels.vector.extend(["a", "b"])
    return m, want


def write(name, data):
    path = R.path(name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def listed(kind):
    m, want = build(kind)
    path = write(f"{kind}.mlmodel", m.SerializeToString())
    got = json.loads(graftlib.run("ls", "--json", path).stdout)
    assert [g["name"] for g in got] == list(want), [g["name"] for g in got]
    for g in got:
        dt, shape, raw = want[g["name"]]
        assert (g["dtype"], g["shape"]) == (dt, shape), g
        assert g["sha256"] == hashlib.sha256(raw).hexdigest(), g["name"]
    out = R.path(f"{kind}_identity.mlmodel")
    graftlib.run("apply", "-o", out, path, path)
    assert open(out, "rb").read() == open(path, "rb").read(), "identity apply changed bytes"


RULES = """graft: 1
name: torch -> coreml test
rename:
  target:
    - {match: '^bn/gamma$', to: 'bn.weight'}
    - {match: '^bn/beta$', to: 'bn.bias'}
    - {match: '^bn/mean$', to: 'bn.running_mean'}
    - {match: '^bn/variance$', to: 'bn.running_var'}
    - {match: '/weights$', to: '.weight'}
    - {match: '/', to: '.'}
ignore:
  target: ['^fc_q/']
policy: {missing: error, unused: error, mismatch: error}
"""


def transplant():
    skel_msg, _ = build("neuralNetworkClassifier")
    skel = write("skel.mlmodel", skel_msg.SerializeToString())
    sd = {"conv1.weight": torch.randn(8, 3, 3, 3), "conv1.bias": torch.randn(8),
          "bn.weight": torch.randn(8), "bn.bias": torch.randn(8),
          "bn.running_mean": torch.randn(8), "bn.running_var": torch.rand(8),
          "conv2.weight": torch.randn(4, 8, 1, 1).half(),
          "fc.weight": torch.randn(10, 4), "fc.bias": torch.randn(10)}
    src = R.path("src.pth")
    torch.save(sd, src)
    rules = write("coreml.yaml", RULES.encode())
    out = R.path("out.mlmodel")
    p = subprocess.run([graftlib.GRAFT, "apply", "-r", rules, "-o", out, src, skel],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    got = Model.FromString(open(out, "rb").read())
    exp = Model()
    exp.CopyFrom(skel_msg)
    nn = exp.neuralNetworkClassifier
    layers = {l.name: l for l in nn.layers}

    def floats(wp, t):
        del wp.floatValue[:]
        wp.floatValue.extend(t.reshape(-1).tolist())
    floats(layers["conv1"].convolution.weights, sd["conv1.weight"].numpy())
    floats(layers["conv1"].convolution.bias, sd["conv1.bias"].numpy())
    for f, k in (("gamma", "weight"), ("beta", "bias"), ("mean", "running_mean"),
                 ("variance", "running_var")):
        floats(getattr(layers["bn"].batchnorm, f), sd[f"bn.{k}"].numpy())
    layers["conv2"].convolution.weights.float16Value = sd["conv2.weight"].numpy().tobytes()
    floats(layers["fc"].innerProduct.weights, sd["fc.weight"].numpy())
    floats(layers["fc"].innerProduct.bias, sd["fc.bias"].numpy())
    assert got == exp, "the output differs from the skeleton with the new values"
    assert len(open(out, "rb").read()) == len(open(skel, "rb").read())


def refused(name, data, what):
    refused_file(write(name, data), what)


def refused_file(path, what):
    p = subprocess.run([graftlib.GRAFT, "ls", path], capture_output=True, text=True)
    assert p.returncode > 0, p.returncode
    line = p.stderr.strip()
    assert "\n" not in line and path in line and what in line, line


def bad_count():
    m, _ = build()
    m.neuralNetwork.layers[0].convolution.weights.floatValue.append(1.0)
    refused("count.mlmodel", m.SerializeToString(), "217 values, its layer's shape needs 216")


def main():
    for kind in ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor"):
        R.check(f"{kind}: listed and identity apply", listed, kind)
    R.check("PyTorch transplant checked with protobuf", transplant)
    data = build()[0].SerializeToString()
    R.check("truncated refused", refused, "cut.mlmodel", data[: len(data) // 2], "offset")
    R.check("value count mismatch refused", bad_count)
    folder = os.path.join(graftlib.SOURCE_ROOT, "samples", "corrupt", "coreml")
    for ln in open(os.path.join(folder, "EXPECTED")).read().splitlines():
        name, what = ln.split("\t")
        R.check(f"refused: samples/corrupt/coreml/{name}", refused_file, os.path.join(folder, name), what)
    prog = Model()
    prog.specificationVersion = 6
    prog.mlProgram.version = 1
    R.check("ML Program .mlmodel refused", refused, "prog.mlmodel", prog.SerializeToString(),
            ".mlpackage")


if __name__ == "__main__":
    main()
    R.close()
