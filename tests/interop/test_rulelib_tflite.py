"""Forward-pass proof of rules/torch-to-tflite/mobilenet_v2.yaml.

No TFLite runtime installs here, so the skeleton is written the way the
TFLite converter writes a Keras MobileNetV2 with BatchNorm folded
(tflite_fb.build: schema.fbs tables; operators CONV_2D / DEPTHWISE_CONV_2D
with fused RELU6, PAD before each stride-2 convolution, ADD for the
residuals, MEAN for the global pooling, FULLY_CONNECTED; filters OHWI and
1HW(C*M); the converter's fused tensor names, as in the real models of
tests/interop/data/tflite), with random weights.  graft fills it from a
calibrated torchvision mobilenet_v2 state dict (--strict), and
tflite_ref.run (a NumPy interpreter of the reference kernels, reading the
output with its own FlatBuffer reader) must give PyTorch's output on the same
image: the max error is printed and must stay below 1e-4 of the output's
scale.  Bytes outside the weight buffers must be the skeleton's.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from fwdlib import calibrate, close, rules_path  # noqa: E402
from graftlib import Results, run  # noqa: E402
import tflite_fb as fb  # noqa: E402
import tflite_ref  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

R = Results()
P = "mobilenetv2_1.00_224"
RELU6 = 3
HW = 224


class Skeleton:
    """Tensors, buffers and operators of one subgraph, as the converter lays them out."""

    def __init__(self, rng):
        self.rng, self.tensors, self.bufs, self.ops, self.codes = rng, [], [b""], [], []

    def tensor(self, name, shape, value=None, typ="float32"):
        buf = 0
        if value is not None:
            self.bufs.append(np.ascontiguousarray(value).tobytes())
            buf = len(self.bufs) - 1
        self.tensors.append({"name": name, "type": typ, "shape": list(shape), "buffer": buf})
        return len(self.tensors) - 1

    def weight(self, name, shape):
        return self.tensor(name, shape, self.rng.standard_normal(shape).astype(np.float32) * 0.1)

    def op(self, code, ins, out, options_type=0, options=None):
        if code not in self.codes:
            self.codes.append(code)
        self.ops.append({"opcode": self.codes.index(code), "inputs": ins, "outputs": [out],
                         "options_type": options_type, "options": options or {}})
        return out

    def shape(self, i):
        return self.tensors[i]["shape"]

    def pad(self, x, name):
        n, h, w, c = self.shape(x)
        p = self.tensor(f"{P}/{name}/Pad/paddings", [4, 2], np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32),
                        "int32")
        return self.op(tflite_ref.PAD, [x, p], self.tensor(f"{P}/{name}/Pad", [n, h + 2, w + 2, c]), 22)

    def conv(self, x, conv, bn, act, cout, k, stride, dw=False):
        """A convolution with its BatchNorm folded; stride 2 after an explicit PAD (VALID)."""
        n, h, w, c = self.shape(x)
        if stride == 2:
            x = self.pad(x, conv.replace("depthwise", "pad") if dw else conv + "_pad")
            h, w = h + 2, w + 2
        padding = 1 if stride == 2 else 0  # VALID after PAD, else SAME
        oh = (h + stride - k) // stride if padding else h
        ow = (w + stride - k) // stride if padding else w
        op = "depthwise" if dw else "Conv2D"
        bias = f"{P}/{bn}/FusedBatchNormV3;{P}/{conv}/{op}"
        if act:
            bias = f"{P}/{act}/Relu6;" + bias
        wname = f"{P}/{bn}/FusedBatchNormV3;{P}/{conv}/depthwise" if dw else f"{P}/{conv}/Conv2D"
        wt = self.weight(wname, [1, k, k, cout] if dw else [cout, k, k, c])
        b = self.weight(bias, [cout])
        out = self.tensor(f"{P}/{act}/Relu6" if act else f"{P}/{bn}/FusedBatchNormV3", [n, oh, ow, cout])
        fused = RELU6 if act else 0
        if dw:  # DepthwiseConv2DOptions: padding, stride_w, stride_h, depth_multiplier, fused
            opts = {0: ("b", padding), 1: ("i", stride), 2: ("i", stride), 3: ("i", cout // c), 4: ("b", fused)}
            return self.op(tflite_ref.DEPTHWISE_CONV_2D, [x, wt, b], out, 2, opts)
        opts = {0: ("b", padding), 1: ("i", stride), 2: ("i", stride), 3: ("b", fused)}
        return self.op(tflite_ref.CONV_2D, [x, wt, b], out, 1, opts)


def skeleton(model, seed):
    """The .tflite a converter would write for `model`'s architecture (random weights)."""
    s = Skeleton(np.random.default_rng(seed))
    x0 = s.tensor("serving_default_input_1:0", [1, HW, HW, 3])
    x = s.conv(x0, "Conv1", "bn_Conv1", "Conv1_relu", model.features[0][0].out_channels, 3, 2)
    for k in range(1, 18):
        blk = model.features[k]
        pre = "expanded_conv_" if k == 1 else f"block_{k - 1}_"
        convs = [m for m in blk.conv.modules() if isinstance(m, torch.nn.Conv2d)]
        inp = x
        if len(convs) == 3:
            x = s.conv(x, pre + "expand", pre + "expand_BN", pre + "expand_relu", convs[0].out_channels, 1, 1)
        dwc = convs[-2]
        x = s.conv(x, pre + "depthwise", pre + "depthwise_BN", pre + "depthwise_relu", dwc.out_channels, 3,
                   dwc.stride[0], dw=True)
        x = s.conv(x, pre + "project", pre + "project_BN", None, convs[-1].out_channels, 1, 1)
        if blk.use_res_connect:
            x = s.op(tflite_ref.ADD, [inp, x], s.tensor(f"{P}/{pre}add/add", s.shape(x)), 11, {0: ("b", 0)})
    x = s.conv(x, "Conv_1", "Conv_1_bn", "out_relu", model.features[18][0].out_channels, 1, 1)
    axes = s.tensor(f"{P}/global_average_pooling2d/Mean/reduction_indices", [2], np.array([1, 2], np.int32), "int32")
    x = s.op(tflite_ref.MEAN, [x, axes], s.tensor(f"{P}/global_average_pooling2d/Mean", [1, s.shape(x)[3]]),
             27, {0: ("b", 0)})
    fc = model.classifier[1]
    w = s.weight(f"{P}/predictions/MatMul", [fc.out_features, fc.in_features])
    b = s.weight(f"{P}/predictions/BiasAdd/ReadVariableOp/resource", [fc.out_features])
    y = s.op(tflite_ref.FULLY_CONNECTED, [x, w, b], s.tensor("StatefulPartitionedCall:0", [1, fc.out_features]),
             8, {0: ("b", 0)})
    return fb.build([("main", s.tensors, s.ops, [x0], [y])], s.bufs, opcodes=s.codes)


def outside_buffers_unchanged(skel, out):
    assert len(skel) == len(out), "the size changed"
    mask = np.zeros(len(skel), bool)
    for e in fb.listing(skel):
        pos, size = e["_range"]
        mask[pos:pos + size] = True
    diff = np.frombuffer(skel, np.uint8) != np.frombuffer(out, np.uint8)
    assert not (diff & ~mask).any(), "bytes outside the buffers changed"
    assert diff.any(), "nothing was written"


def mobilenet_v2():
    torch.manual_seed(21)
    model = calibrate(torchvision.models.mobilenet_v2(num_classes=10), (4, 3, 64, 64))
    skel = skeleton(model, 22)
    src, sk, out = R.path("mnv2.pth"), R.path("mnv2_skel.tflite"), R.path("mnv2.tflite")
    torch.save(model.state_dict(), src)
    with open(sk, "wb") as f:
        f.write(skel)
    run("apply", "-q", "--strict", "-r", rules_path("torch-to-tflite", "mobilenet_v2"), src, sk, "-o", out)
    data = open(out, "rb").read()
    outside_buffers_unchanged(skel, data)
    x = torch.randn(1, 3, HW, HW, generator=torch.Generator().manual_seed(23))
    with torch.no_grad():
        want = model(x).numpy()
    nhwc = x.numpy().transpose(0, 2, 3, 1)
    got = tflite_ref.run(data, nhwc)
    print(f"     max |TFLite - PyTorch| = {np.abs(got - want).max():.2e}")
    close("mobilenet_v2 in the NumPy TFLite reference interpreter", got, want)
    assert np.abs(tflite_ref.run(skel, nhwc) - want).max() > 1e-2, "the skeleton already agreed"


def matched_by_library():
    """graft rules --match picks the file for this pair, filling the skeleton."""
    p = run("rules", "--match", R.path("mnv2.pth"), R.path("mnv2_skel.tflite"))
    first = p.stdout.splitlines()[0]
    assert first.split()[0] == "torch-to-tflite/mobilenet_v2" and "filled" in first, p.stdout


if __name__ == "__main__":
    R.check("torchvision mobilenet_v2 -> TFLite from Keras, BatchNorm folded (NumPy reference kernels "
            "forward pass, 224x224)", mobilenet_v2)
    R.check("graft rules --match picks torch-to-tflite/mobilenet_v2 for it", matched_by_library)
    R.close()
