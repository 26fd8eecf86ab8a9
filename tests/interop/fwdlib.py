"""Forward-pass proofs of the shipped rules files (tests/interop/test_rulelib_*.py).

- `calibrate` gives a PyTorch model random BatchNorm statistics measured on
  data (a few batches in train mode, then eval), so the output depends on the
  input and every tensor matters.
- `KerasNet` writes a Keras 2 HDF5 full model (model_config JSON, layer_names,
  weight_names, `layer/kernel:0` datasets) the way Keras' `model.save` lays it
  out, with random weights; `tfjs_predict` loads such a file into tfjs-layers
  (the npm @tensorflow/tfjs, tests/js/keras_predict.mjs) and runs it.
- `onnx_predict` runs an ONNX file in onnxruntime-node (tests/js/onnx_predict.mjs).
- `close` states the error relative to the output's scale and fails above 1e-4.
"""
import json
import os
import subprocess

import h5py
import numpy as np

from graftlib import SOURCE_ROOT, run

JS = os.path.join(SOURCE_ROOT, "tests", "js")
TOL = 1e-4


def rules_path(direction, family):
    return os.path.join(SOURCE_ROOT, "rules", direction, family + ".yaml")


def calibrate(model, shape, batches=3, seed=0):
    """Random affine BatchNorm parameters, statistics measured on random
    batches (cumulative average), then eval mode."""
    import torch
    from torch import nn
    g = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d))]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        with torch.no_grad():
            m.weight.uniform_(0.5, 1.5, generator=g)
            m.bias.uniform_(-0.3, 0.3, generator=g)
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(*shape, generator=g))
    for m in norms:
        m.momentum = 0.1
    return model.eval()


def close(name, got, want, tol=TOL):
    """Error relative to the output's scale; printed, and fatal above tol."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    scale = float(np.max(np.abs(want)))
    err = float(np.max(np.abs(got - want))) / scale
    print(f"     {name}: max |diff| / max |ref| = {err:.2e} (output scale {scale:.3g})")
    assert scale > 0 and err <= tol, f"{name}: error {err:.2e} above {tol:g}"
    return err


# ---- Keras 2 HDF5 full models -------------------------------------------------

# Weight names per layer class, in Keras' order.
WEIGHTS = {
    "Conv2D": ("kernel", "bias"),
    "DepthwiseConv2D": ("depthwise_kernel", "bias"),
    "Dense": ("kernel", "bias"),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
    "LayerNormalization": ("gamma", "beta"),
    "LayerScale": ("gamma",),  # keras applications/convnext.py; run by tests/js/keras_predict.mjs
}
ZEROS = {"class_name": "Zeros", "config": {}}
ONES = {"class_name": "Ones", "config": {}}
GLOROT = {"class_name": "GlorotUniform", "config": {"seed": None}}


class KerasNet:
    """A Keras functional model built layer by layer, tracking channels (NHWC)."""

    def __init__(self, name, input_shape):
        self.name, self.layers, self.shapes, self.ch = name, [], {}, {}
        self.input_shape = list(input_shape)
        self.x = self._add("InputLayer", "input_1", {
            "batch_input_shape": [None, *input_shape], "dtype": "float32",
            "sparse": False, "ragged": False}, [], input_shape[-1])

    def _add(self, cls, name, cfg, inputs, ch, weights=()):
        assert name not in self.ch, name
        cfg = {"name": name, "trainable": True, "dtype": "float32", **cfg}
        inbound = [[[i, 0, 0, {}] for i in inputs]] if inputs else []
        self.layers.append({"class_name": cls, "config": cfg, "name": name, "inbound_nodes": inbound})
        self.shapes[name] = list(weights)
        self.ch[name] = ch
        return name

    def conv(self, x, name, filters, k, stride=1, padding="valid", bias=True, groups=1, act="linear"):
        """Conv2D; padding 'same' only at stride 1 (symmetric, as PyTorch)."""
        k = (k, k) if isinstance(k, int) else tuple(k)
        cfg = {"filters": filters, "kernel_size": list(k), "strides": [stride, stride], "padding": padding,
               "data_format": "channels_last", "dilation_rate": [1, 1], "groups": groups,
               "activation": act, "use_bias": bias, "kernel_initializer": GLOROT,
               "bias_initializer": ZEROS, "kernel_regularizer": None, "bias_regularizer": None,
               "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}
        w = [(*k, self.ch[x] // groups, filters)] + ([(filters,)] if bias else [])
        return self._add("Conv2D", name, cfg, [x], filters, w)

    def dwconv(self, x, name, k, stride=1, padding="valid", bias=False):
        cfg = {"kernel_size": [k, k], "strides": [stride, stride], "padding": padding,
               "data_format": "channels_last", "dilation_rate": [1, 1], "activation": "linear",
               "use_bias": bias, "depth_multiplier": 1, "depthwise_initializer": GLOROT,
               "bias_initializer": ZEROS, "depthwise_regularizer": None, "bias_regularizer": None,
               "activity_regularizer": None, "depthwise_constraint": None, "bias_constraint": None}
        c = self.ch[x]
        w = [(k, k, c, 1)] + ([(c,)] if bias else [])
        return self._add("DepthwiseConv2D", name, cfg, [x], c, w)

    def bn(self, x, name, eps, scale=True):
        """BatchNormalization; scale=False: no gamma (beta, moving_mean, moving_variance)."""
        cfg = {"axis": -1, "momentum": 0.99, "epsilon": eps, "center": True, "scale": scale,
               "beta_initializer": ZEROS, "gamma_initializer": ONES,
               "moving_mean_initializer": ZEROS, "moving_variance_initializer": ONES,
               "beta_regularizer": None, "gamma_regularizer": None,
               "beta_constraint": None, "gamma_constraint": None}
        c = self.ch[x]
        return self._add("BatchNormalization", name, cfg, [x], c, [(c,)] * (4 if scale else 3))

    def ln(self, x, name, eps):
        cfg = {"axis": [-1], "epsilon": eps, "center": True, "scale": True,
               "beta_initializer": ZEROS, "gamma_initializer": ONES, "beta_regularizer": None,
               "gamma_regularizer": None, "beta_constraint": None, "gamma_constraint": None}
        c = self.ch[x]
        return self._add("LayerNormalization", name, cfg, [x], c, [(c,)] * 2)

    def layer_scale(self, x, name):
        """convnext.py's LayerScale: x * gamma (gamma of shape (C,))."""
        c = self.ch[x]
        return self._add("LayerScale", name, {"init_values": 1e-6, "projection_dim": c}, [x], c, [(c,)])

    def dense(self, x, name, units, act="linear", inputs=None):
        cfg = {"units": units, "activation": act, "use_bias": True, "kernel_initializer": GLOROT,
               "bias_initializer": ZEROS, "kernel_regularizer": None, "bias_regularizer": None,
               "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}
        n_in = inputs or self.ch[x]
        return self._add("Dense", name, cfg, [x], units, [(n_in, units), (units,)])

    def act(self, x, name, fn):
        return self._add("Activation", name, {"activation": fn}, [x], self.ch[x])

    def relu6(self, x, name):
        return self.relu(x, name, 6.0)

    def relu(self, x, name, max_value=None):
        return self._add("ReLU", name, {"max_value": max_value, "negative_slope": 0.0, "threshold": 0.0}, [x],
                         self.ch[x])

    def rescale(self, x, name, scale, offset):
        """Rescaling: x * scale + offset."""
        return self._add("Rescaling", name, {"scale": scale, "offset": offset}, [x], self.ch[x])

    def pad(self, x, name, p):
        return self._add("ZeroPadding2D", name, {"padding": [[p, p], [p, p]], "data_format": "channels_last"},
                         [x], self.ch[x])

    def maxpool(self, x, name, k, stride, padding="valid"):
        return self._add("MaxPooling2D", name, {"pool_size": [k, k], "strides": [stride, stride],
                                                "padding": padding, "data_format": "channels_last"}, [x], self.ch[x])

    def avgpool(self, x, name, k, stride, padding="valid"):
        return self._add("AveragePooling2D", name, {"pool_size": [k, k], "strides": [stride, stride],
                                                    "padding": padding, "data_format": "channels_last"}, [x], self.ch[x])

    def gap(self, x, name, keepdims=False):
        return self._add("GlobalAveragePooling2D", name, {"data_format": "channels_last", "keepdims": keepdims},
                         [x], self.ch[x])

    def reshape(self, x, name, shape):
        return self._add("Reshape", name, {"target_shape": list(shape)}, [x], shape[-1])

    def flatten(self, x, name, size):
        return self._add("Flatten", name, {"data_format": "channels_last"}, [x], size)

    def add(self, xs, name):
        return self._add("Add", name, {}, list(xs), self.ch[xs[0]])

    def mul(self, xs, name):
        return self._add("Multiply", name, {}, list(xs), max(self.ch[x] for x in xs))

    def concat(self, xs, name):
        return self._add("Concatenate", name, {"axis": -1}, list(xs), sum(self.ch[x] for x in xs))

    def config(self, output):
        return {"class_name": "Functional", "config": {
            "name": self.name, "layers": self.layers,
            "input_layers": [["input_1", 0, 0]], "output_layers": [[output, 0, 0]]},
            "keras_version": "2.12.0", "backend": "tensorflow"}

    def write(self, path, output, seed=1, empty=False, trained=False, values=None, keras3=False):
        """Keras 2 `model.save` layout; random weights (a skeleton), or zeros
        (empty: written by libhdf5 alone, for plans), or (trained) weights
        that keep activations in range: kernels scaled by fan-in, positive
        variances, as a source model trained in Keras.  values: {layer name:
        [arrays]} to write instead.  keras3: weight names as Keras 3's legacy
        .h5 writes them, <model>/<layer>/<weight> without ':0'."""
        rng = np.random.default_rng(seed)
        with h5py.File(path, "w") as f:
            f.attrs["keras_version"] = "2.12.0"
            f.attrs["backend"] = "tensorflow"
            f.attrs["model_config"] = json.dumps(self.config(output))
            mw = f.create_group("model_weights")
            mw.attrs["layer_names"] = [lay["name"].encode() for lay in self.layers]
            mw.attrs["backend"] = b"tensorflow"
            mw.attrs["keras_version"] = b"2.12.0"
            # groups by name (a layer "a/b" after "a/b/pad" would collide: tf.keras
            # cannot save MobileNetV3 to .h5 in model order), layer_names in model order
            for lay in sorted(self.layers, key=lambda lay: lay["name"]):
                n, cls = lay["name"], lay["class_name"]
                g = mw.create_group(n)
                shapes = self.shapes[n]
                names = [f"{self.name}/{n}/{w}" if keras3 else f"{n}/{w}:0" for w in WEIGHTS.get(cls, ())]
                if cls in ("Conv2D", "DepthwiseConv2D", "Dense") and len(shapes) == 1:
                    names = names[:1]  # use_bias: False
                if cls == "BatchNormalization" and len(shapes) == 3:
                    names = names[1:]  # scale: False
                assert len(names) == len(shapes), n
                g.attrs["weight_names"] = [w.encode() for w in names] if names else np.zeros((0,), "f8")
                for i, (w, s) in enumerate(zip(names, shapes)):
                    if values is not None:
                        g.create_dataset(w, data=values[n][i])
                    elif empty:
                        g.create_dataset(w, shape=s, dtype="f4", fillvalue=0, dcpl=_early_alloc())
                    else:
                        g.create_dataset(w, data=_values(rng, w, s, trained))
        return path


def _snake(name):
    """keras.src.utils.naming.to_snake_case: Conv2D -> conv2d."""
    import re
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def write_keras3(net, path, output, seed=1):
    """The same model as a Keras 3 `model.save` archive: metadata.json,
    config.json, model.weights.h5 with /layers/<snake_case class>[_k]/vars/<i>
    (the group's `name` attribute is the layer's name), an Adam optimizer's
    /optimizer/vars and the model's empty /vars; random weights."""
    import io
    import zipfile
    rng = np.random.default_rng(seed)
    buf, seen = io.BytesIO(), {}
    with h5py.File(buf, "w") as f:
        for lay in net.layers:
            base = _snake(lay["class_name"])
            key = base if base not in seen else f"{base}_{seen[base]}"
            seen[base] = seen.get(base, 0) + 1
            g = f.create_group(f"layers/{key}/vars")
            g.attrs["name"] = lay["name"]
            for i, shape in enumerate(net.shapes[lay["name"]]):
                g.create_dataset(str(i), data=rng.standard_normal(shape).astype("f4"))
        opt = f.create_group("optimizer/vars")
        opt.attrs["name"] = "adam"
        opt.create_dataset("0", data=np.int64(3))
        f.create_group("vars").attrs["name"] = net.name
    cfg = net.config(output)
    cfg["config"]["layers"] = [{"module": "keras.layers", **lay} for lay in cfg["config"]["layers"]]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.10.0", "date_saved": "2026-12-02@22:00:00"}))
        z.writestr("config.json", json.dumps({"module": "keras", **cfg}))
        z.writestr("model.weights.h5", buf.getvalue())
    return path


def keras3_weights(path):
    """{layer name: [arrays in variable order]} from a .keras archive, by the
    `name` attribute of each /layers/<key>/vars group."""
    import io
    import zipfile
    out = {}
    with zipfile.ZipFile(path) as z, h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
        for key in f["layers"]:
            g = f["layers"][key]["vars"]
            out[g.attrs["name"]] = [g[str(i)][()] for i in range(len(g))]
    return out


def tfjs_predict_keras3(net, output, path, x, workdir):
    """Run the .keras archive's weights in tfjs-layers with net's topology."""
    weights = keras3_weights(path)
    h5 = os.path.join(workdir, "as_keras2.h5")
    os.makedirs(workdir, exist_ok=True)
    net.write(h5, output, values=weights)
    return tfjs_predict(h5, x, workdir)


def write_keras_h5(path, cfg, weights):
    """A Keras 2 model.save file: model_config + model_weights/<layer>/<layer>/<w>:0."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.3.1"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(cfg)
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = [n.encode() for n, _ in weights]
        for lname, ws in weights:
            g = mw.create_group(lname)
            g.attrs["weight_names"] = [f"{lname}/{w}:0".encode() for w, _ in ws]
            for w, a in ws:
                g.create_dataset(f"{lname}/{w}:0", data=np.asarray(a, dtype="<f4"))


def _early_alloc():
    """Storage allocated and filled at creation (graft refuses datasets with
    no stored bytes), written by libhdf5 without a NumPy buffer."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
    return dcpl


def _values(rng, name, shape, trained):
    a = rng.standard_normal(shape)
    if trained:
        leaf = name.split("/")[-1].split(":")[0]
        if leaf in ("kernel", "depthwise_kernel"):
            fan_in = int(np.prod(shape[:-1])) if leaf == "kernel" else int(np.prod(shape[:2]))
            a *= np.sqrt(2.0 / fan_in)
        elif leaf in ("gamma", "moving_variance"):
            a = rng.uniform(0.5, 1.5, shape)
        else:
            a *= 0.2
    return a.astype("f4")


def keras_weights(path):
    """(model_config, [(tfjs name, array)]) of a Keras 2 HDF5 full model, in
    layer_names / weight_names order."""
    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        mw, out = f["model_weights"], []
        for layer in mw.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            for w in mw[layer].attrs["weight_names"]:
                w = w.decode() if isinstance(w, bytes) else w
                out.append((f"{layer}/{w.split('/')[-1].split(':')[0]}", mw[layer][w][()]))
    return cfg, out


def _depthwise_groups(cfg, weights):
    """tfjs-layers' Conv2D has no groups: a Conv2D with groups == filters ==
    its input channels (ConvNeXt's 7x7) is the DepthwiseConv2D with the kernel
    (k, k, 1, C) stored as (k, k, C, 1); the same function, rewritten."""
    renamed = {}
    for lay in cfg["config"]["layers"]:
        c = lay["config"]
        if lay["class_name"] == "Conv2D" and c.get("groups", 1) > 1:
            assert c["groups"] == c["filters"], lay["name"]
            lay["class_name"] = "DepthwiseConv2D"
            c["depth_multiplier"] = 1
            c["depthwise_initializer"] = c.pop("kernel_initializer")
            for key in ("filters", "groups"):
                c.pop(key)
            renamed[lay["name"] + "/kernel"] = lay["name"] + "/depthwise_kernel"
    return [(renamed.get(n, n), a.transpose(0, 1, 3, 2) if n in renamed else a) for n, a in weights]


def tfjs_predict(path, x, workdir):
    """Load the Keras HDF5 file into tfjs-layers and run it on x (NHWC)."""
    cfg, weights = keras_weights(path)
    weights = _depthwise_groups(cfg, weights)
    os.makedirs(workdir, exist_ok=True)
    specs = [{"name": n, "shape": list(a.shape), "dtype": "float32"} for n, a in weights]
    with open(os.path.join(workdir, "model.json"), "w") as f:
        json.dump({"modelTopology": cfg, "weightSpecs": specs, "inputShape": list(x.shape)}, f)
    with open(os.path.join(workdir, "weights.bin"), "wb") as f:
        for _, a in weights:
            f.write(np.ascontiguousarray(a, "<f4").tobytes())
    np.ascontiguousarray(x, "<f4").tofile(os.path.join(workdir, "input.bin"))
    p = subprocess.run(["node", os.path.join(JS, "keras_predict.mjs"), workdir],
                       capture_output=True, text=True, cwd=JS)
    assert p.returncode == 0, f"tfjs failed on {path}: {p.stderr.strip()[-2000:]}"
    shape = json.loads(p.stdout.strip().splitlines()[-1])
    return np.fromfile(os.path.join(workdir, "output.bin"), "<f4").reshape(shape)


def onnx_predict(path, x, workdir):
    """Run the ONNX file in onnxruntime-node on x."""
    os.makedirs(workdir, exist_ok=True)
    inp, out = os.path.join(workdir, "input.bin"), os.path.join(workdir, "output.bin")
    np.ascontiguousarray(x, "<f4").tofile(inp)
    p = subprocess.run(["node", os.path.join(JS, "onnx_predict.mjs"), path, inp, json.dumps(list(x.shape)), out],
                       capture_output=True, text=True, cwd=JS)
    assert p.returncode == 0, f"onnxruntime failed on {path}: {p.stderr.strip()[-2000:]}"
    shape = json.loads(p.stdout.strip().splitlines()[-1])
    return np.fromfile(out, "<f4").reshape(shape)


def apply(rules, src, skel, out, *extra, allow=("matched no",), strict=True):
    """graft apply, --strict unless told (a file with renames for naming
    variants the skeleton lacks); without it, every warning is a failure
    except those naming a rename that matched nothing."""
    p = run("apply", "-r", rules, *(("--strict",) if strict else ()), *extra, src, skel, "-o", out)
    bad = [w for w in p.stderr.splitlines() if "warning" in w and not any(a in w for a in allow)]
    assert not bad, "\n".join(bad)
    return p


def plan_complete(rules, src, skel):
    """graft plan --strict must fill every target (no warning either)."""
    return run("plan", "--strict", "-r", rules, src, skel)


# ---- whole proofs ----------------------------------------------------------------


def sparse_state_dict(model, path):
    """The model's real state dict (names, shapes, dtypes) saved with one
    element per tensor (stride 0), for plans of the big depths."""
    import torch
    sd = {k: v.flatten()[:1].expand(v.shape) if v.dim() else v for k, v in model.state_dict().items()}
    torch.save(sd, path)
    return path


def _torch_run(model, hw, seed=5):
    """(NCHW input, PyTorch's output) on a random input."""
    import torch
    x = torch.randn(2, 3, hw, hw, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return x, model(x).numpy()


def keras_forward(R, tag, model, rules, keras, hw, extra=(), picks=None, strict=True, keras3=False):
    """Calibrate the PyTorch model, transplant its state dict into the Keras 2
    skeleton keras = (KerasNet, output) (keras3: with Keras 3 legacy .h5
    weight names), run both, compare.  rules 'auto': graft must pick the
    shipped file `picks`."""
    import torch
    model = calibrate(model, (16, 3, hw, hw))
    src, skel, out = R.path(tag + ".pth"), R.path(tag + "_skel.h5"), R.path(tag + ".h5")
    torch.save(model.state_dict(), src)
    k, output = keras
    k.write(skel, output, keras3=keras3)
    p = apply(rules, src, skel, out, *extra, strict=strict)
    if picks:
        assert f"-r auto: {picks} (" in p.stderr, p.stderr
    x, want = _torch_run(model, hw)
    got = tfjs_predict(out, x.permute(0, 2, 3, 1).numpy(), R.path(tag + "_js"))
    return close(tag, got, want)


def keras3_forward(R, tag, model, rules, keras, hw):
    """The same proof into a Keras 3 .keras archive, read with --skeleton-format
    keras-named (Keras' own layer names from config.json)."""
    import torch
    model = calibrate(model, (16, 3, hw, hw))
    src, skel, out = R.path(tag + ".pth"), R.path(tag + "_skel.keras"), R.path(tag + ".keras")
    torch.save(model.state_dict(), src)
    k, output = keras
    write_keras3(k, skel, output)
    apply(rules, src, skel, out, "--skeleton-format", "keras-named")
    x, want = _torch_run(model, hw)
    got = tfjs_predict_keras3(k, output, out, x.permute(0, 2, 3, 1).numpy(), R.path(tag + "_js"))
    return close(tag, got, want)


def keras_plan(R, tag, model, rules, keras):
    """The rules must fill the Keras skeleton completely (--strict) from the
    model's real state dict."""
    src, skel = R.path(tag + "_plan.pth"), R.path(tag + "_plan.h5")
    sparse_state_dict(model, src)
    k, output = keras
    k.write(skel, output, empty=True)
    plan_complete(rules, src, skel)
    os.remove(src)
    os.remove(skel)


def onnx_forward(R, arch, hw, rules, branch_gain=None, **kw):
    """The skeleton is torchvision's `arch` (kw: its constructor's options)
    exported by torch.onnx.export in eval mode from other random weights; graft
    fills it from a calibrated state dict, onnxruntime-node runs the result.
    branch_gain: the last BatchNorm of each bottleneck scaled by it, as a
    trained deep ResNet's residual branches are small (at random, a hundred
    blocks amplify float32 rounding past the tolerance on either side)."""
    import io

    import torch
    import torchvision
    import sys
    gen = os.path.join(SOURCE_ROOT, "rules", "gen")
    if gen not in sys.path:
        sys.path.insert(0, gen)
    from torch_onnx_fold import randomize
    torch.manual_seed(11)
    f = io.BytesIO()
    torch.onnx.export(randomize(getattr(torchvision.models, arch)(num_classes=10, **kw)), torch.randn(2, 3, hw, hw), f)
    skel = R.path(arch + "_skel.onnx")
    with open(skel, "wb") as out:
        out.write(f.getvalue())
    torch.manual_seed(12)
    model = calibrate(getattr(torchvision.models, arch)(num_classes=10, **kw), (4, 3, hw, hw))
    if branch_gain:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torchvision.models.resnet.Bottleneck):
                    m.bn3.weight.mul_(branch_gain)
                    m.bn3.bias.mul_(branch_gain)
    src, out = R.path(arch + ".pth"), R.path(arch + ".onnx")
    torch.save(model.state_dict(), src)
    apply(rules, src, skel, out)
    x = torch.randn(2, 3, hw, hw, generator=torch.Generator().manual_seed(13))
    with torch.no_grad():
        want = model(x).numpy()
    return close(arch + " in onnxruntime", onnx_predict(out, x.numpy(), R.path(arch + "_ort")), want)
