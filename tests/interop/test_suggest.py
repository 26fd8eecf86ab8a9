"""graft suggest on a corpus of (source, skeleton, known mapping) cases,
scored by values: each case's draft is applied unchanged (graft apply -r
DRAFT), the output is read back by the real framework (h5py, torch.load,
onnx, the independent TF checkpoint reader of test_tf.py) and every skeleton
tensor is compared with what the known mapping, written here in Python and
evaluated on the source's tensors as PyTorch / NumPy hold them, says it must
hold (or its own value where the mapping keeps it).

Per case (printed): targets, right values (>= 95% required), confidences,
wrong targets (each must be a guess or unpaired), rename + pairs entries
(<= max(12, 10% of targets)), exit status (0 iff nothing is a guess or
unpaired), one to one / reverse flags.  Also: --json shape, -o writes the
same YAML atomically, every entry that is not certain carries a comment,
bad input fails with one line and exit 2."""
import json
import os
import re
import subprocess
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import hfmodels  # noqa: E402
import kerasapps  # noqa: E402
from fwdlib import KerasNet, calibrate, write_keras_h5  # noqa: E402
from graftlib import FIXTURES, GRAFT, Results, run  # noqa: E402
from test_rulelib_tf import tf_skeleton, tf_values  # noqa: E402

import torch  # noqa: E402
import torchvision  # noqa: E402
from torch import nn  # noqa: E402

R = Results()
KEEP = "keep"
FIGURES = []


# ---- readers (the frameworks' own) ---------------------------------------------

def keras_tensors(path):
    """{weight name: array} of a Keras 2 HDF5 file (model_weights, by weight_names)."""
    out = {}
    with h5py.File(path, "r") as f:
        mw = f["model_weights"] if "model_weights" in f else f
        for layer in mw.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            for w in mw[layer].attrs["weight_names"]:
                w = w.decode() if isinstance(w, bytes) else w
                out[w] = np.array(mw[layer][w])
        if "optimizer_weights" in f:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    out["optimizer_weights/" + name] = np.array(obj)
            f["optimizer_weights"].visititems(visit)
    return out


def torch_tensors(path):
    return {k: v.numpy() for k, v in torch.load(path).items()}


def onnx_tensors(path):
    import onnx
    from onnx import numpy_helper
    return {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}


def tf_tensors(index):
    return tf_values(index[:-len(".index")])


# ---- the layout changes of the known mappings ---------------------------------

def conv(w):        # torch OIHW -> Keras HWIO
    return w.transpose(2, 3, 1, 0)


def dwconv(w):      # torch (C, 1, H, W) -> Keras (H, W, C, 1)
    return w.transpose(2, 3, 0, 1)


def dense(w):       # torch (out, in) -> Keras (in, out)
    return w.T


def flat_dense(c, h, w):
    """torch Linear after a CHW flatten -> Keras Dense after an HWC flatten."""
    return lambda m: m.reshape(-1, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, -1)


def keras_param(name):
    """Keras weight name -> (layer, torch parameter name)."""
    layer, leaf = name.rsplit("/", 1)
    leaf = leaf.split(":")[0]
    return layer, {"kernel": "weight", "depthwise_kernel": "weight", "gamma": "weight", "beta": "bias",
                   "bias": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}[leaf]


def keras_op(name, a, flatten=None):
    leaf = name.rsplit("/", 1)[1].split(":")[0]
    if leaf == "depthwise_kernel":
        return dwconv(a)
    if leaf == "kernel" and a.ndim == 4:
        return conv(a)
    if leaf == "kernel" and a.ndim == 2:
        return flatten(a) if flatten else dense(a)
    return a


def from_torch(sd, layer_map, flatten=None):
    """A known mapping Keras name -> value from a torch state dict, given
    layer_map(keras layer) -> torch module path (None: keep)."""
    def known(name):
        if name.startswith("optimizer_weights/"):
            return KEEP
        layer, p = keras_param(name)
        mod = layer_map(layer)
        if mod is None:
            return KEEP
        return keras_op(name, sd[f"{mod}.{p}"], flatten.get(layer) if flatten else None)
    return known


# ---- torchvision -> Keras Applications names ----------------------------------

def resnet_layers(layer):
    if layer == "conv1_conv":
        return "conv1"
    if layer == "conv1_bn":
        return "bn1"
    if layer == "predictions":
        return "fc"
    s, b, i, kind = re.fullmatch(r"conv(\d)_block(\d+)_(\d)_(conv|bn)", layer).groups()
    base = f"layer{int(s) - 1}.{int(b) - 1}."
    if i == "0":
        return base + ("downsample.0" if kind == "conv" else "downsample.1")
    return base + kind + i


def mobilenet_layers(layer):
    fixed = {"Conv1": "features.0.0", "bn_Conv1": "features.0.1", "Conv_1": "features.18.0",
             "Conv_1_bn": "features.18.1", "predictions": "classifier.1",
             "expanded_conv_depthwise": "features.1.conv.0.0", "expanded_conv_depthwise_BN": "features.1.conv.0.1",
             "expanded_conv_project": "features.1.conv.1", "expanded_conv_project_BN": "features.1.conv.2"}
    if layer in fixed:
        return fixed[layer]
    i, part = re.fullmatch(r"block_(\d+)_(\w+)", layer).groups()
    return f"features.{int(i) + 1}." + {"expand": "conv.0.0", "expand_BN": "conv.0.1", "depthwise": "conv.1.0",
                                         "depthwise_BN": "conv.1.1", "project": "conv.2", "project_BN": "conv.3"}[part]


def densenet_layers(layer):
    fixed = {"conv1_conv": "features.conv0", "conv1_bn": "features.norm0", "bn": "features.norm5",
             "predictions": "classifier"}
    if layer in fixed:
        return fixed[layer]
    m = re.fullmatch(r"pool(\d)_(bn|conv)", layer)
    if m:
        return f"features.transition{int(m[1]) - 1}." + ("norm" if m[2] == "bn" else "conv")
    b, l, part = re.fullmatch(r"conv(\d)_block(\d+)_(\d_\w+)", layer).groups()
    return f"features.denseblock{int(b) - 1}.denselayer{l}." + {"0_bn": "norm1", "1_conv": "conv1", "1_bn": "norm2",
                                                                 "2_conv": "conv2"}[part]


def efficientnet_layers(layer):
    fixed = {"stem_conv": "features.0.0", "stem_bn": "features.0.1", "top_conv": "features.8.0",
             "top_bn": "features.8.1", "predictions": "classifier.1"}
    if layer in fixed:
        return fixed[layer]
    s, j, part = re.fullmatch(r"block(\d)([a-z])_(\w+)", layer).groups()
    e = 0 if s == "1" else 1  # stage 1 has no expansion block
    sub = {"expand_conv": "0.0", "expand_bn": "0.1", "dwconv": f"{e}.0", "bn": f"{e}.1", "se_reduce": f"{e + 1}.fc1",
           "se_expand": f"{e + 1}.fc2", "project_conv": f"{e + 2}.0", "project_bn": f"{e + 2}.1"}[part]
    return f"features.{s}.{ord(j) - 97}.block.{sub}"


def vgg_layers(layer):
    return {"block1_conv1": "features.0", "block2_conv1": "features.3", "block3_conv1": "features.6",
            "block3_conv2": "features.8", "fc1": "classifier.0", "fc2": "classifier.3",
            "predictions": "classifier.6"}[layer]


class SmallVGG(nn.Module):
    """torchvision VGG's module layout (features.N, classifier.N, a CHW
    flatten before classifier.0), narrow, for 32x32 inputs."""

    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(16 * 4 * 4, 24), nn.ReLU(), nn.Dropout(),
                                        nn.Linear(24, 24), nn.ReLU(), nn.Dropout(), nn.Linear(24, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def keras_vgg():
    k = KerasNet("vgg_small", (32, 32, 3))
    x = k.conv(k.x, "block1_conv1", 8, 3, padding="same", act="relu")
    x = k.maxpool(x, "block1_pool", 2, 2)
    x = k.conv(x, "block2_conv1", 16, 3, padding="same", act="relu")
    x = k.maxpool(x, "block2_pool", 2, 2)
    x = k.conv(x, "block3_conv1", 16, 3, padding="same", act="relu")
    x = k.conv(x, "block3_conv2", 16, 3, padding="same", act="relu")
    x = k.maxpool(x, "block3_pool", 2, 2)
    x = k.flatten(x, "flatten", 256)
    x = k.dense(x, "fc1", 24, act="relu")
    x = k.dense(x, "fc2", 24, act="relu")
    return k, k.dense(x, "predictions", 10)


# ---- one case -------------------------------------------------------------------

def score(tag, src, skel, known, read, ext, extra=(), rtol=0.0, limit=None):
    """Draft, apply the draft unchanged, compare every skeleton tensor by value
    (exactly; within rtol of the largest value where the known values are
    computed, as a folded BatchNorm is, in float32 by the exporter)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", tag)
    draft, out = R.path(stem + ".yaml"), R.path(stem + "_out" + ext)
    p = run("suggest", "--json", "-o", draft, *extra, src, skel, check=False)
    assert p.returncode in (0, 1), f"{tag}: suggest exited {p.returncode}: {p.stderr}"
    d = json.loads(p.stdout)
    with open(draft) as f:
        assert f.read() == d["rules"], f"{tag}: -o and --json rules differ"
    conf = {t["target"]: t["confidence"] for t in d["targets"]}
    unsure = sum(c in ("guess", "unpaired") for c in conf.values())
    assert p.returncode == (1 if unsure else 0), f"{tag}: exit {p.returncode} with {unsure} unsure"
    run("apply", "-r", draft, *extra, src, skel, "-o", out)
    got, before = read(out), read(skel)
    right, wrong = 0, []
    for name in before:
        want = known(name)
        want = before[name] if isinstance(want, str) and want == KEEP else np.asarray(want)
        if got[name].shape == want.shape and (
                np.array_equal(got[name], want) if not rtol else
                np.allclose(got[name], want, rtol=rtol, atol=rtol * float(np.abs(want).max(initial=1.0)))):
            right += 1
        else:
            wrong.append(name)
    n = len(before)
    entries = d["entries"]["rename"] + d["entries"]["pairs"]
    # a folded BatchNorm is a pairs entry of several sources: no rename can
    # say that, so those entries are counted apart and the limit holds the rest
    folds = sum(1 for t in d["targets"] if t["ops"] and isinstance(t["ops"][0], dict) and "fold_bn" in t["ops"][0])
    limit = (max(12, n // 10) if limit is None else limit) + folds
    counts = {c: sum(v == c for v in conf.values()) for c in ("certain", "likely", "guess", "unpaired")}
    bad = [w for w in wrong if conf.get(w) not in ("guess", "unpaired")]
    line = (f"{tag}: {n} targets, {right} right ({100.0 * right / n:.1f}%), {counts['certain']} certain, "
            f"{counts['likely']} likely, {counts['guess']} guess, {counts['unpaired']} unpaired; "
            f"{len(wrong)} wrong ({len(bad)} not marked guess); {entries} rename+pairs entries "
            f"({folds} of them fold_bn pairs; limit {limit}); "
            f"exit {p.returncode}; one to one {d['one_to_one']}, reverse {d['reversible']}")
    print("     " + line)
    FIGURES.append(line)
    for t in d["targets"]:  # every entry deciding a target that is not certain says so
        if t["confidence"] in ("likely", "guess") and t["target"] in d["rules"]:
            for ln in d["rules"].splitlines():
                if f"'{t['target']}':" in ln:
                    assert "#" in ln, f"{tag}: no comment on {ln}"
    assert not bad, f"{tag}: wrong and not a guess: {bad[:5]}"
    assert right >= 0.95 * n, f"{tag}: {right}/{n} right: {wrong[:8]}"
    assert entries <= limit, f"{tag}: {entries} entries > {limit}"
    return d


def torch_to_keras(tag, model, keras, layer_map, hw, flatten=None):
    model = calibrate(model, (4, 3, hw, hw))
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    src, skel = R.path(tag + ".pth"), R.path(tag + "_skel.h5")
    torch.save(model.state_dict(), src)
    k, output = keras
    k.write(skel, output)
    return score(tag, src, skel, from_torch(sd, layer_map, flatten), keras_tensors, ".h5")


def resnet18():
    torch.manual_seed(0)
    torch_to_keras("resnet18 -> Keras", torchvision.models.resnet18(num_classes=10), kerasapps.resnet(18, 32, 10),
                   resnet_layers, 32)


def resnet101():
    """A deep stage of 23 identical bottlenecks (conv4 / layer3), Keras
    counting blocks from 1 where torchvision counts from 0: names one apart
    must not pull the alignment one block off."""
    torch.manual_seed(18)
    torch_to_keras("resnet101 (23 alike blocks) -> Keras", torchvision.models.resnet101(num_classes=10),
                   kerasapps.resnet(101, 32, 10, bias=False), resnet_layers, 32)


def vgg():
    torch.manual_seed(1)
    torch_to_keras("vgg (flatten) -> Keras", SmallVGG(), keras_vgg(), vgg_layers, 32,
                   flatten={"fc1": flat_dense(16, 4, 4)})


def mobilenet_v2():
    torch.manual_seed(2)
    torch_to_keras("mobilenet_v2 -> Keras", torchvision.models.mobilenet_v2(num_classes=10),
                   kerasapps.mobilenet_v2(32, 10), mobilenet_layers, 32)


def small_densenet():
    kerasapps.DENSENET[7] = (8, 16, [2, 3, 2, 2])
    return torchvision.models.DenseNet(growth_rate=8, block_config=(2, 3, 2, 2), num_init_features=16,
                                       num_classes=10), kerasapps.densenet(7, 32, 10)


def densenet():
    torch.manual_seed(3)
    model, keras = small_densenet()
    torch_to_keras("densenet -> Keras", model, keras, densenet_layers, 32)


def efficientnet():
    torch.manual_seed(4)
    torch_to_keras("efficientnet_b0 -> Keras", torchvision.models.efficientnet_b0(num_classes=10),
                   kerasapps.efficientnet(0, 32, 10), efficientnet_layers, 32)


def keras_to_torch_resnet():
    """Reverse: a Keras ResNet18 with trained-like values into a torchvision skeleton."""
    torch.manual_seed(5)
    k, output = kerasapps.resnet(18, 32, 10)
    src, skel = R.path("kr18.h5"), R.path("kr18_skel.pth")
    k.write(src, output, seed=7, trained=True)
    model = torchvision.models.resnet18(num_classes=10)
    torch.save(model.state_dict(), skel)
    kv = keras_tensors(src)
    inverse = {}
    for name in kv:
        layer, p = keras_param(name)
        inverse[f"{resnet_layers(layer)}.{p}"] = name

    def known(name):
        if name not in inverse:
            return KEEP  # num_batches_tracked
        kname = inverse[name]
        a = kv[kname]
        leaf = kname.rsplit("/", 1)[1].split(":")[0]
        return a.transpose(3, 2, 0, 1) if leaf == "kernel" and a.ndim == 4 else a.T if leaf == "kernel" else a
    score("Keras resnet18 -> torchvision (reverse)", src, skel, known, torch_tensors, ".pth")


# ---- HF BERT <-> Google BERT TF checkpoint names -------------------------------

def bert_tf_to_hf(name):
    if name == "global_step":
        return None
    fixed = {"cls/predictions/output_bias": "cls.predictions.bias",
             "cls/seq_relationship/output_weights": "cls.seq_relationship.weight",
             "cls/seq_relationship/output_bias": "cls.seq_relationship.bias"}
    if name in fixed:
        return fixed[name]
    n = re.sub(r"^bert/encoder/layer_(\d+)/", r"bert/encoder/layer/\1/", name)
    n = re.sub(r"_embeddings$", "_embeddings/weight", n)
    n = re.sub(r"/(kernel|gamma)$", "/weight", n)
    n = re.sub(r"/beta$", "/bias", n)
    return n.replace("/", ".")


def bert_model():
    torch.manual_seed(6)
    return hfmodels.BertForPreTraining(h=64, heads=4, inter=128).eval()


def bert_known(sd):
    def known(name):
        hf = bert_tf_to_hf(name)
        if hf is None:
            return KEEP
        a = sd[hf]
        return a.T if name.endswith("/kernel") else a  # output_weights stays [2, hidden]
    return known


def bert():
    model = bert_model()
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    src = R.path("bert.pth")
    torch.save(model.state_dict(), src)
    index = tf_skeleton(R.path("bert_skel/model.ckpt"), hfmodels.bert_tf_shapes(h=64, inter=128), 42)
    d = score("HF BERT -> Google BERT TF names", src, index, bert_known(sd), tf_tensors, ".index")
    conf = {t["target"]: t for t in d["targets"]}
    sq = conf["bert/encoder/layer_0/attention/self/query/kernel"]
    assert sq["ops"] == ["transpose"] and sq["confidence"] == "guess", sq  # square: naming conventions alone
    ow = conf["cls/seq_relationship/output_weights"]
    assert ow["ops"] == [] and ow["sources"] == ["cls.seq_relationship.weight"], ow
    assert conf["global_step"]["sources"] == [], conf["global_step"]


def bert_reverse():
    """Reverse: the TF checkpoint (values of the HF model) into an HF skeleton."""
    model = bert_model()
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    shapes = hfmodels.bert_tf_shapes(h=64, inter=128)
    index = tf_skeleton(R.path("bertr_src/model.ckpt"), shapes, 7)
    tv = tf_tensors(index)
    skel = R.path("bertr_skel.pth")
    torch.save(model.state_dict(), skel)
    inverse = {bert_tf_to_hf(n): n for n in shapes}

    def known(name):
        if name not in inverse:
            return KEEP  # tied decoder copies, position_ids
        a = tv[inverse[name]]
        return a.T if inverse[name].endswith("/kernel") else a
    score("Google BERT TF names -> HF BERT (reverse)", index, skel, known, torch_tensors, ".pth")


# ---- real files from ../shared/fixtures ------------------------------------------

class MnistCNN(nn.Module):
    """The PyTorch twin of keras2_h5/full_tfkeras2.3.0_cnn_with_onnx_twin."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc = nn.Linear(1600, 10)


def keras_fixture_to_torch():
    src = os.path.join(FIXTURES, "keras2_h5", "full_tfkeras2.3.0_cnn_with_onnx_twin", "mnist.h5")
    skel = R.path("mnist_skel.pth")
    torch.manual_seed(8)
    torch.save(MnistCNN().state_dict(), skel)
    kv = keras_tensors(src)
    m = {"conv1.weight": ("conv2d_2_1/kernel:0", lambda a: a.transpose(3, 2, 0, 1)),
         "conv1.bias": ("conv2d_2_1/bias:0", None), "conv2.weight": ("conv2d_3/kernel:0", lambda a: a.transpose(3, 2, 0, 1)),
         "conv2.bias": ("conv2d_3/bias:0", None),
         # Keras flattens 5x5x64 HWC, PyTorch 64x5x5 CHW
         "fc.weight": ("dense_1_1/kernel:0", lambda a: a.reshape(5, 5, 64, 10).transpose(3, 2, 0, 1).reshape(10, 1600)),
         "fc.bias": ("dense_1_1/bias:0", None)}

    def known(name):
        k, f = m[name]
        return f(kv[k]) if f else kv[k]
    d = score("Keras h5 fixture (Adam slots) -> PyTorch", src, skel, known, torch_tensors, ".pth")
    used = {s for t in d["targets"] for s in t["sources"]}
    assert not any(s.startswith("optimizer_weights/") for s in used), used


def pb_to_keras(tag, fixture, layers):
    """A real frozen GraphDef into a Keras skeleton whose Dense layers carry
    automatic names (dense_5, dense_6, ...)."""
    src = os.path.join(FIXTURES, "frozen_pb", fixture, "frozen.pb")
    k = KerasNet("sequential_3", (layers[0][1][0],))
    x, names = k.x, {}
    for i, (pbname, (fin, fout)) in enumerate(layers):
        auto = f"dense_{i + 5}"
        names[auto] = pbname
        x = k.dense(x, auto, fout, act="relu")
    skel = R.path(tag + "_skel.h5")
    k.write(skel, x)
    values = read_graphdef(src)

    def known(name):
        layer, p = keras_param(name)
        return values[f"{names[layer]}/{'kernel' if p == 'weight' else 'bias'}"]
    score(tag, src, skel, known, keras_tensors, ".h5")


def read_graphdef(path):
    """Const tensors (float32 tensor_content) of a frozen GraphDef, read with
    test_tf.py's independent protobuf wire reader over TensorFlow's field numbers
    (graph.proto: GraphDef.node 1; NodeDef name 1, op 2, attr 5; AttrValue
    tensor 8; TensorProto dtype 1, tensor_shape 2, tensor_content 4)."""
    from test_tf import fields as wire
    data = open(path, "rb").read()

    def fields(buf):
        return [(num, v) for num, _, v in wire(buf)]
    out = {}
    for num, node in fields(data):
        if num != 1:  # GraphDef.node
            continue
        name, op, tensor = None, None, None
        for f, v in fields(node):
            if f == 1:
                name = v.decode()
            elif f == 2:
                op = v.decode()
            elif f == 5:  # attr map entry
                key, val = None, None
                for g, w in fields(v):
                    if g == 1:
                        key = w.decode()
                    elif g == 2:
                        val = w
                if key == "value":
                    for g, w in fields(val):
                        if g == 8:  # AttrValue.tensor
                            tensor = w
        if op != "Const" or tensor is None:
            continue
        dims, content, dtype = [], None, None
        for g, w in fields(tensor):
            if g == 1:
                dtype = w
            elif g == 2:
                for h, dim in fields(w):
                    if h == 2:
                        dims.append(dict(fields(dim)).get(1, 0))
            elif g == 4:
                content = w
        if dtype == 1 and content is not None:
            out[name] = np.frombuffer(content, "<f4").reshape(dims)
    return out


def pb_fc_layers():
    pb_to_keras("frozen .pb (tf2onnx fc_layers) -> Keras dense_N", "tf2onnx_fc_layers",
                [("dense", (784, 256)), ("dense_1", (256, 256)), ("pred", (256, 10))])


def pb_ae0():
    pb_to_keras("frozen .pb (tf2onnx ae0) -> Keras dense_N", "tf2onnx_ae0",
                [("dense", (784, 256)), ("dense_1", (256, 128)), ("dense_2", (128, 128)), ("dense_3", (128, 784))])


# ---- ONNX export with onnx:: names ----------------------------------------------

class Tokens(nn.Module):
    """Linear layers on (batch, tokens, features) inputs: torch.onnx.export
    writes their weights transposed as onnx::MatMul_N initializers."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.proj = nn.Linear(8, 16)
        self.head = nn.Linear(16, 16)
        self.norm = nn.LayerNorm(16)
        self.out = nn.Linear(16, 5)

    def forward(self, x):
        y = self.conv(x).flatten(2).transpose(1, 2)
        return self.out(self.norm(self.head(torch.relu(self.proj(y)))))


def onnx_export(path, seed):
    torch.manual_seed(seed)
    m = Tokens().eval()
    torch.onnx.export(m, torch.randn(1, 3, 6, 6), path, opset_version=13)
    return m


def onnx_matmul_sources(path):
    """onnx::MatMul_N initializer -> the torch module that owns it (from the node names)."""
    import onnx
    g = onnx.load(path).graph
    out = {}
    for n in g.node:
        if n.op_type == "MatMul":
            for i in n.input:
                if i.startswith("onnx::"):
                    out[i] = n.name.strip("/").split("/")[0]
    return out


def onnx_case():
    skel = R.path("tokens_skel.onnx")
    onnx_export(skel, 10)
    mm = onnx_matmul_sources(skel)
    assert len(mm) >= 2, mm
    torch.manual_seed(11)
    model = Tokens()
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    src = R.path("tokens.pth")
    torch.save(model.state_dict(), src)

    def known(name):
        return sd[mm[name] + ".weight"].T if name in mm else sd[name]
    score("torch -> ONNX export (onnx:: names)", src, skel, known, onnx_tensors, ".onnx")


def onnx_reverse():
    src = R.path("tokens_src.onnx")
    onnx_export(src, 12)
    mm = {v + ".weight": k for k, v in onnx_matmul_sources(src).items()}
    ov = onnx_tensors(src)
    torch.manual_seed(13)
    skel = R.path("tokens_skel.pth")
    torch.save(Tokens().state_dict(), skel)

    def known(name):
        return ov[mm[name]].T if name in mm else ov[name]
    score("ONNX export (onnx:: names) -> torch (reverse)", src, skel, known, torch_tensors, ".pth")


# ---- BatchNorm folded into Conv by torch.onnx.export (fold_bn) -------------------

def onnx_fold(arch, hw=32):
    """A torchvision model's eval-mode ONNX export (BatchNorm folded into
    onnx::Conv_N initializers) as the skeleton, exported from other random
    weights; the source is a calibrated state dict; the known values are the
    initializers of that same model's own export, and onnxruntime-node runs
    the filled file against the model's forward pass."""
    from fwdlib import calibrate, close, onnx_predict
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "rules", "gen"))
    from torch_onnx_fold import randomize
    torch.manual_seed(11)
    skel, real = R.path(arch + "_fold_skel.onnx"), R.path(arch + "_fold_real.onnx")
    torch.onnx.export(randomize(getattr(torchvision.models, arch)(num_classes=10)), torch.randn(2, 3, hw, hw), skel)
    torch.manual_seed(12)
    model = calibrate(getattr(torchvision.models, arch)(num_classes=10), (4, 3, hw, hw))
    src = R.path(arch + "_fold.pth")
    torch.save(model.state_dict(), src)
    torch.onnx.export(model, torch.randn(2, 3, hw, hw), real)
    rv, sv = onnx_tensors(real), onnx_tensors(skel)
    assert set(rv) == set(sv), "the two exports name their initializers alike"
    d = score(f"{arch} -> its ONNX export, BatchNorm folded (fold_bn)", src, skel, lambda n: rv[n], onnx_tensors,
              ".onnx", rtol=1e-5)
    folded = [t for t in d["targets"] if t["ops"] and "fold_bn" in t["ops"][0]]
    assert len(folded) >= 2 * 17, len(folded)
    for t in folded:
        part = t["ops"][0]["fold_bn"]["part"]
        assert len(t["sources"]) == (5 if part == "weight" else 4), t
    x = torch.randn(2, 3, hw, hw, generator=torch.Generator().manual_seed(13))
    with torch.no_grad():
        want = model(x).numpy()
    out = R.path(re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{arch} -> its ONNX export, BatchNorm folded (fold_bn)") + "_out.onnx")
    close(arch + " filled by the draft, in onnxruntime", onnx_predict(out, x.numpy(), R.path(arch + "_fold_ort")), want)


class Swapped(nn.Module):
    """Two conv+BN blocks of one shape defined (state dict order) a, b but
    run b first: the export's initializers come in the other order, and only
    the Conv nodes' scopes (/b/Conv) tell which is which."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.a, self.abn = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.b, self.bbn = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)

    def forward(self, x):
        x = self.stem(x)
        return self.abn(self.a(torch.relu(self.bbn(self.b(x)))))


def onnx_fold_swapped():
    torch.manual_seed(15)
    skel, real = R.path("swapped_skel.onnx"), R.path("swapped_real.onnx")
    torch.onnx.export(calibrate(Swapped(), (2, 3, 8, 8), seed=1), torch.randn(1, 3, 8, 8), skel)
    model = calibrate(Swapped(), (2, 3, 8, 8), seed=2)
    src = R.path("swapped.pth")
    torch.save(model.state_dict(), src)
    torch.onnx.export(model, torch.randn(1, 3, 8, 8), real)
    rv = onnx_tensors(real)
    score("conv+BN blocks run in another order than defined -> ONNX (fold_bn)", src, skel, lambda n: rv[n],
          onnx_tensors, ".onnx", rtol=1e-5)


class ConvBiasBn(nn.Module):
    """A convolution with its own bias before its BatchNorm: the folded bias
    is fold_bn over [b, gamma, beta, mean, var]."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 4, 3, bias=False), nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))


def onnx_fold_conv_bias():
    skel, real, src = R.path("cbb_skel.onnx"), R.path("cbb_real.onnx"), R.path("cbb.pth")
    torch.manual_seed(19)
    torch.onnx.export(calibrate(ConvBiasBn(), (2, 3, 8, 8), seed=5), torch.randn(1, 3, 8, 8), skel)
    model = calibrate(ConvBiasBn(), (2, 3, 8, 8), seed=6)
    torch.save(model.state_dict(), src)
    torch.onnx.export(model, torch.randn(1, 3, 8, 8), real)
    rv = onnx_tensors(real)
    d = score("conv with its own bias + BN -> ONNX (fold_bn over 5 sources)", src, skel, lambda n: rv[n],
              onnx_tensors, ".onnx", rtol=1e-5)
    assert any(t["sources"][:1] == ["conv1.bias"] and len(t["sources"]) == 5 for t in d["targets"]), d["targets"]


def fold_wrong_eps_is_flagged():
    """A BatchNorm of eps 1e-3 (not PyTorch's default, and not in the state
    dict): the fold is right but for eps, and no folded target is certain."""
    torch.manual_seed(16)
    m = Swapped()
    for bn in (m.abn, m.bbn):
        bn.eps = 1e-3
    skel, src = R.path("eps_skel.onnx"), R.path("eps.pth")
    torch.onnx.export(calibrate(m, (2, 3, 8, 8), seed=3), torch.randn(1, 3, 8, 8), skel)
    torch.save(calibrate(m, (2, 3, 8, 8), seed=4).state_dict(), src)
    p = run("suggest", "--json", src, skel, check=False)
    d = json.loads(p.stdout)
    folded = [t for t in d["targets"] if t["ops"] and "fold_bn" in t["ops"][0]]
    # the values are wrong (eps 1e-5 drafted): so each must be a guess, and the exit 1
    assert len(folded) == 4 and all(t["confidence"] == "guess" and "eps" in t["reason"] for t in folded), folded
    assert p.returncode == 1, p.returncode


# ---- recurrent layers: PyTorch's two biases into Keras' one (sum, stack), gate orders ----

class LstmNet(nn.Module):
    """The PyTorch twin of keras2_h5/full_keras2.3.1_lstm (LSTM 56 -> 50, Dense 1)."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(56, 50, batch_first=True)
        self.fc = nn.Linear(50, 1)


def keras_lstm(x, kernel, rkernel, bias):
    """Keras LSTMCell in NumPy: gates i, f, c, o; kernel (in, 4u), one bias."""
    u = rkernel.shape[0]
    h = c = np.zeros((x.shape[0], u))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ rkernel + bias
        i, f, g, o = sig(z[:, :u]), sig(z[:, u:2 * u]), np.tanh(z[:, 2 * u:3 * u]), sig(z[:, 3 * u:])
        c = f * c + i * g
        h = o * np.tanh(c)
    return h


def keras_cell_matches_torch(kind, rnn, x, cell, layer):
    """The NumPy Keras cell on layer's weights in the draft's output (the
    torch_<kind> case of score()) against PyTorch's last step on x."""
    from fwdlib import close
    out = [p for p in os.listdir(R.tmp) if p.startswith("torch_" + kind) and p.endswith("_out.h5")][0]
    w = keras_tensors(os.path.join(R.tmp, out))
    with torch.no_grad():
        want = rnn(x)[0][:, -1].numpy()
    close(f"Keras {kind} cell (NumPy) on the draft's output vs PyTorch {kind}",
          cell(x.numpy().astype(np.float64), w[f"{layer}/kernel:0"], w[f"{layer}/recurrent_kernel:0"],
               w[f"{layer}/bias:0"]), want)


def lstm_to_keras():
    """A torch LSTM into the real Keras LSTM h5 (Adam slots of the same
    shapes as decoys): bias = bias_ih + bias_hh (sum), kernels transposed
    (gates i,f,g,o and i,f,c,o agree); then the Keras cell on the filled
    weights against PyTorch's forward pass."""
    skel = os.path.join(FIXTURES, "keras2_h5", "full_keras2.3.1_lstm", "model.h5")
    torch.manual_seed(3)
    net = LstmNet().eval()
    src = R.path("lstm.pth")
    torch.save(net.state_dict(), src)
    sd = {k: v.detach().double().numpy() for k, v in net.state_dict().items()}
    known = {"lstm_1/kernel:0": sd["lstm.weight_ih_l0"].T, "lstm_1/recurrent_kernel:0": sd["lstm.weight_hh_l0"].T,
             "lstm_1/bias:0": sd["lstm.bias_ih_l0"] + sd["lstm.bias_hh_l0"],
             "dense_1/kernel:0": sd["fc.weight"].T, "dense_1/bias:0": sd["fc.bias"]}
    d = score("torch LSTM -> Keras LSTM h5 fixture (sum)", src, skel,
              lambda n: KEEP if n.startswith("optimizer_weights/") else known[n].astype(np.float32),
              keras_tensors, ".h5")
    t = {x["target"]: x for x in d["targets"]}["lstm_1/bias:0"]
    assert t["ops"] == ["sum"] and t["sources"] == ["lstm.bias_ih_l0", "lstm.bias_hh_l0"], t
    keras_cell_matches_torch("LSTM", net.lstm, torch.randn(3, 6, 56), keras_lstm, "lstm_1")


def keras_gru(x, kernel, rkernel, bias):
    """Keras GRUCell, reset_after=True, in NumPy: gates z, r, h; bias[0] input side, bias[1] recurrent."""
    u = rkernel.shape[0]
    h = np.zeros((x.shape[0], u))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for t in range(x.shape[1]):
        xi, hr = x[:, t] @ kernel + bias[0], h @ rkernel + bias[1]
        z = sig(xi[:, :u] + hr[:, :u])
        r = sig(xi[:, u:2 * u] + hr[:, u:2 * u])
        hh = np.tanh(xi[:, 2 * u:] + r * hr[:, 2 * u:])
        h = z * h + (1 - z) * hh
    return h


def keras_layer(cls, name, **kw):
    return {"class_name": cls, "config": dict({"name": name, "trainable": True, "dtype": "float32"}, **kw)}


class GruNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(6, 4, batch_first=True)
        self.fc = nn.Linear(4, 3)


def gru_to_keras():
    """A torch GRU into a Keras GRU skeleton (reset_after=True: one (2, 3u)
    bias): bias = stack(bias_ih, bias_hh) with gates r,z,n -> z,r,h, kernels
    gate-reordered and transposed; then the Keras GRU cell on the filled
    weights against PyTorch's forward pass."""
    torch.manual_seed(6)
    net = GruNet().eval()
    src, skel = R.path("gru.pth"), R.path("gru_skel.h5")
    torch.save(net.state_dict(), src)
    cfg = {"class_name": "Sequential", "config": {"name": "seq", "layers": [
        keras_layer("GRU", "gru_3", units=4, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
              reset_after=True, return_sequences=False, batch_input_shape=[None, 5, 6]),
        keras_layer("Dense", "dense_7", units=3, activation="linear", use_bias=True)]}}
    rng = np.random.default_rng(1)
    write_keras_h5(skel, cfg, [("gru_3", [("kernel", rng.normal(size=(6, 12))), ("recurrent_kernel", rng.normal(size=(4, 12))),
                                          ("bias", rng.normal(size=(2, 12)))]),
                               ("dense_7", [("kernel", rng.normal(size=(4, 3))), ("bias", rng.normal(size=3))])])
    sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}

    def zrh(a, axis):  # PyTorch r, z, n -> Keras z, r, h
        r, z, n = np.split(a, 3, axis=axis)
        return np.concatenate([z, r, n], axis=axis)
    known = {"gru_3/kernel:0": zrh(sd["gru.weight_ih_l0"], 0).T, "gru_3/recurrent_kernel:0": zrh(sd["gru.weight_hh_l0"], 0).T,
             "gru_3/bias:0": zrh(np.stack([sd["gru.bias_ih_l0"], sd["gru.bias_hh_l0"]]), 1),
             "dense_7/kernel:0": sd["fc.weight"].T, "dense_7/bias:0": sd["fc.bias"]}
    d = score("torch GRU -> Keras GRU reset_after (stack, gates r,z,n -> z,r,h)", src, skel, lambda n: known[n],
              keras_tensors, ".h5")
    t = {x["target"]: x for x in d["targets"]}["gru_3/bias:0"]
    assert t["ops"][0] == {"stack": {"axis": 0}} and t["sources"] == ["gru.bias_ih_l0", "gru.bias_hh_l0"], t
    keras_cell_matches_torch("GRU", net.gru, torch.randn(3, 5, 6), keras_gru, "gru_3")


def gru_no_reset_after_is_a_guess():
    """A Keras GRU with one bias (reset_after=False) resets before the
    recurrent product, PyTorch after: no exact mapping, so its bias is a
    guess however well the shapes fit."""
    torch.manual_seed(6)
    src, skel = R.path("gru_nra.pth"), R.path("gru_nra_skel.h5")
    torch.save(GruNet().state_dict(), src)
    cfg = {"class_name": "Sequential", "config": {"name": "seq", "layers": [
        keras_layer("GRU", "gru_3", units=4, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                    reset_after=False, return_sequences=False, batch_input_shape=[None, 5, 6]),
        keras_layer("Dense", "dense_7", units=3, activation="linear", use_bias=True)]}}
    write_keras_h5(skel, cfg, [("gru_3", [("kernel", np.zeros((6, 12))), ("recurrent_kernel", np.zeros((4, 12))),
                                          ("bias", np.zeros(12))]),
                               ("dense_7", [("kernel", np.zeros((4, 3))), ("bias", np.zeros(3))])])
    p = run("suggest", "--json", src, skel, check=False)
    assert p.returncode == 1, p.returncode
    t = {x["target"]: x for x in json.loads(p.stdout)["targets"]}["gru_3/bias:0"]
    assert t["confidence"] == "guess" and "reset_after" in t["reason"], t


def gru_reverse():
    """Reverse: a Keras GRU h5 (reset_after, values) into a torch GRU
    skeleton: its (2, 3u) bias split into bias_ih and bias_hh (take) with
    gates z,r,h -> r,z,n, kernels reordered and transposed; then PyTorch's
    GRU on the filled state dict against the Keras cell on the source."""
    from fwdlib import close
    rng = np.random.default_rng(2)
    cfg = {"class_name": "Sequential", "config": {"name": "seq", "layers": [
        keras_layer("GRU", "gru_1", units=4, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                    reset_after=True, return_sequences=False, batch_input_shape=[None, 5, 6]),
        keras_layer("Dense", "dense_2", units=3, activation="linear", use_bias=True)]}}
    kv = {"kernel": rng.normal(size=(6, 12)), "recurrent_kernel": rng.normal(size=(4, 12)), "bias": rng.normal(size=(2, 12))}
    src, skel = R.path("kgru.h5"), R.path("kgru_skel.pth")
    write_keras_h5(src, cfg, [("gru_1", list(kv.items())), ("dense_2", [("kernel", rng.normal(size=(4, 3))),
                                                                      ("bias", rng.normal(size=3))])])
    torch.manual_seed(7)
    net = GruNet().eval()
    torch.save(net.state_dict(), skel)
    w = keras_tensors(src)

    def rzn(a, axis):  # Keras z, r, h -> PyTorch r, z, n
        z, r, n = np.split(a, 3, axis=axis)
        return np.concatenate([r, z, n], axis=axis)
    known = {"gru.weight_ih_l0": rzn(w["gru_1/kernel:0"], 1).T, "gru.weight_hh_l0": rzn(w["gru_1/recurrent_kernel:0"], 1).T,
             "gru.bias_ih_l0": rzn(w["gru_1/bias:0"], 1)[0], "gru.bias_hh_l0": rzn(w["gru_1/bias:0"], 1)[1],
             "fc.weight": w["dense_2/kernel:0"].T, "fc.bias": w["dense_2/bias:0"]}
    d = score("Keras GRU reset_after -> torch GRU (reverse: take, gates z,r,h -> r,z,n)", src, skel,
              lambda n: known[n], torch_tensors, ".pth")
    t = {x["target"]: x for x in d["targets"]}
    assert t["gru.bias_hh_l0"]["ops"][0] == {"take": {"axis": 0, "count": 2, "index": 1}}, t["gru.bias_hh_l0"]
    out = [p for p in os.listdir(R.tmp) if p.startswith("Keras_GRU") and p.endswith("_out.pth")][0]
    net.load_state_dict(torch.load(os.path.join(R.tmp, out)))
    x = torch.randn(3, 5, 6)
    with torch.no_grad():
        got = net.gru(x)[0][:, -1].numpy()
    close("PyTorch GRU on the draft's output vs the Keras GRU cell (NumPy) on the source", got,
          keras_gru(x.numpy().astype(np.float64), w["gru_1/kernel:0"], w["gru_1/recurrent_kernel:0"], w["gru_1/bias:0"]))


def lstm_reverse_is_a_guess():
    """Keras' one LSTM bias (a sum) into PyTorch's two has no inverse: the
    target it goes to is a guess, never certain or likely."""
    skel = R.path("lstm_rev_skel.pth")
    torch.manual_seed(8)
    torch.save(LstmNet().state_dict(), skel)
    src = os.path.join(FIXTURES, "keras2_h5", "full_keras2.3.1_lstm", "model.h5")
    p = run("suggest", "--json", src, skel, check=False)
    assert p.returncode == 1, p.returncode
    d = json.loads(p.stdout)
    for t in d["targets"]:
        if t["target"].startswith("lstm.bias_"):
            assert t["confidence"] in ("guess", "unpaired"), t


# ---- hostile names -----------------------------------------------------------------

HOSTILE = ["it's.weight", 'say "hi".weight', "#hash.weight", "key: value.weight", "-lead.weight",
           "ünïcødé/层.weight", "tab\there.weight", "back\\slash.weight", "[list].weight", "{map}.bias",
           "&anchor.weight", "*alias.weight", "!tag.weight", "%percent.weight", "@at.weight", "`tick`.weight",
           "a|b.weight", "q?.weight", "line\nbreak.weight", "$dollar{1}.weight"]


def hostile_names():
    """Names YAML gives meaning to (quotes, #, : , leading -, flow
    characters, control characters, unicode): as pairs keys and values,
    in a transform's target regex, in ignore patterns (an unused source, an
    integer target without a source) and in comments.  The draft loads,
    passes its own check and fills every target with the right values."""
    torch.manual_seed(17)
    names = HOSTILE
    # sources renamed arbitrarily (pairs), every other one transposed (a transform by names)
    def scramble(i, n):  # the transposed ones Keras-named: (in, out) kernels
        stem, leaf = n.rsplit(".", 1)
        return f"{stem[::-1]}{i}/kernel" if i % 2 and leaf == "weight" else f"{stem[::-1]}{i}.{leaf}"
    src = {scramble(i, n): torch.randn(2, 3 + i) if scramble(i, n).endswith("/kernel") else torch.randn(3 + i, 2)
           for i, n in enumerate(names)}
    src[names[0] + " unused"] = torch.randn(97)
    skel = {n: torch.zeros(3 + names.index(n), 2) for n in reversed(names)}
    skel[names[0] + " counter"] = torch.zeros(5, dtype=torch.int64)
    sp, kp = R.path("hostile.pth"), R.path("hostile_skel.pth")
    torch.save(src, sp)
    torch.save(skel, kp)
    sv = {k: v.numpy() for k, v in src.items()}

    def known(name):
        if name.endswith(" counter"):
            return KEEP
        i = names.index(name)
        a = sv[scramble(i, name)]
        return a.T if scramble(i, name).endswith("/kernel") else a
    d = score("hostile names (quotes, #, :, -, unicode, control characters)", sp, kp, known, torch_tensors,
              ".pth", limit=len(names))
    rules = d["rules"]  # the names went through pairs, a transform's target and both ignore lists
    assert "transforms:" in rules and "  source:" in rules and "  target:" in rules, rules


def heads_by_order():
    """Eight heads of one shape whose names say nothing, listed in opposite
    orders: paired by order alone, every one wrong, and every one a guess."""
    torch.manual_seed(14)
    names = ["alpha", "beta", "gamma_", "delta", "eps", "zeta", "eta", "theta"]
    src = {f"h{i}.weight": torch.randn(4, 4) for i in range(8)}
    skel = {f"{n}.weight": torch.randn(4, 4) for n in reversed(names)}
    sp, kp = R.path("heads.pth"), R.path("heads_skel.pth")
    torch.save(src, sp)
    torch.save(skel, kp)
    p = run("suggest", "--json", sp, kp, check=False)
    d = json.loads(p.stdout)
    assert p.returncode == 1, p.returncode
    known = {f"{n}.weight": f"h{i}.weight" for i, n in enumerate(names)}
    wrong = [t for t in d["targets"] if t["sources"] != [known[t["target"]]]]
    assert wrong, "expected order to mislead here"
    for t in d["targets"]:
        assert t["confidence"] == "guess", t
    print(f"     eight heads by order: {len(wrong)} of 8 wrong, all 8 marked guess")


# ---- the command's contract -------------------------------------------------------

def contract():
    torch.manual_seed(0)
    src, skel = R.path("c.pth"), R.path("c_skel.pth")
    torch.save(MnistCNN().state_dict(), src)
    torch.save(MnistCNN().state_dict(), skel)
    p = run("suggest", src, skel)
    assert p.stdout.startswith("# Drafted by graft suggest") and "graft: 1.1" in p.stdout, p.stdout
    assert "loads, plan complete" in p.stdout
    d = json.loads(run("suggest", "--json", src, skel).stdout)
    assert set(d) >= {"targets", "rules"}, d.keys()
    for t in d["targets"]:
        assert set(t) == {"target", "sources", "ops", "confidence", "reason"}, t
        assert t["confidence"] == "certain" and t["sources"] == [t["target"]], t
    draft = R.path("c.yaml")
    with open(draft, "w") as f:
        f.write(p.stdout)
    run("check", draft, src, skel)
    run("check", "--reverse", draft, skel, src)
    bad = R.path("bad.pth")
    with open(bad, "wb") as f:
        f.write(b"PK\x03\x04 not a zip")
    q = run("suggest", bad, skel, check=False)
    assert q.returncode == 2 and q.stderr.count("\n") == 1 and "bad.pth" in q.stderr, q.stderr
    q = run("suggest", src, check=False)
    assert q.returncode == 2, q.returncode
    assert not os.path.exists(R.path("never.yaml"))
    q = run("suggest", "-o", R.path("never.yaml"), bad, skel, check=False)
    assert q.returncode == 2 and not os.path.exists(R.path("never.yaml"))


if __name__ == "__main__":
    assert os.path.exists(GRAFT) or subprocess.run(["which", GRAFT]).returncode == 0
    R.check("suggest: output, --json shape, check, one line errors", contract)
    R.check("eight heads paired by order alone are guesses", heads_by_order)
    R.check("resnet18 -> Keras Applications names", resnet18)
    R.check("resnet101 (deep stage of alike blocks) -> Keras Applications names", resnet101)
    R.check("vgg with a flatten -> Keras names", vgg)
    R.check("mobilenet_v2 (depthwise) -> Keras Applications names", mobilenet_v2)
    R.check("densenet -> Keras Applications names", densenet)
    R.check("efficientnet_b0 -> Keras Applications names", efficientnet)
    R.check("HF BERT -> Google BERT TF checkpoint names", bert)
    R.check("Keras h5 fixture with Adam slots -> PyTorch", keras_fixture_to_torch)
    R.check("frozen .pb fc_layers -> Keras automatic names", pb_fc_layers)
    R.check("frozen .pb ae0 -> Keras automatic names", pb_ae0)
    R.check("torch -> ONNX export with onnx:: names", onnx_case)
    R.check("reverse: Keras resnet18 -> torchvision", keras_to_torch_resnet)
    R.check("reverse: Google BERT TF names -> HF BERT", bert_reverse)
    R.check("reverse: ONNX export -> torch", onnx_reverse)
    R.check("resnet18 -> its ONNX export, BatchNorm folded (fold_bn, onnxruntime)", lambda: onnx_fold("resnet18"))
    R.check("mobilenet_v2 -> its ONNX export, BatchNorm folded (fold_bn, onnxruntime)",
            lambda: onnx_fold("mobilenet_v2"))
    R.check("fold_bn: blocks run in another order than defined, paired by the Conv nodes' scopes",
            onnx_fold_swapped)
    R.check("fold_bn: a conv's own bias folded with its BatchNorm", onnx_fold_conv_bias)
    R.check("fold_bn: eps is PyTorch's default, so a guess", fold_wrong_eps_is_flagged)
    R.check("torch LSTM -> Keras LSTM (sum of the two biases, NumPy Keras cell)", lstm_to_keras)
    R.check("torch GRU -> Keras GRU reset_after (stack, gate order, NumPy Keras cell)", gru_to_keras)
    R.check("torch GRU -> Keras GRU reset_after=False is a guess (no exact mapping)", gru_no_reset_after_is_a_guess)
    R.check("reverse: Keras GRU reset_after -> torch GRU (take, gate order, torch forward)", gru_reverse)
    R.check("reverse: Keras LSTM's one bias into torch's two is a guess", lstm_reverse_is_a_guess)
    R.check("hostile names give valid YAML and right values", hostile_names)
    print("per-case figures:")
    for line in FIGURES:
        print("     " + line)
    R.close()
