#!/usr/bin/python3
"""The README quick start's files:
  samples/resnet18_narrow.pth       a torchvision resnet18 state dict (same keys,
                                    kinds and ranks) with narrow widths 4/8/16/32,
                                    "trained" (random) weights, written by torch.save
  samples/resnet18_narrow_keras2.h5 its Keras 2 `save_weights` skeleton laid out
                                    like keras.applications ResNet (conv1_conv,
                                    conv2_block1_1_conv, ...) with random initial
                                    weights, for rules/torch-to-keras/resnet18.yaml

usage: quickstart.py SAMPLES_DIR
"""
import sys

import h5py
import numpy as np
import torch
import torchvision


def keras_name(key):
    """torchvision-style resnet key -> (Keras layer, variable)."""
    parts = key.split(".")
    leaf = {"weight": "kernel", "bias": "bias", "running_mean": "moving_mean",
            "running_var": "moving_variance"}[parts[-1]]
    if parts[0] == "fc":
        return "predictions", leaf
    if parts[0] in ("conv1", "bn1"):
        layer = "conv1_conv" if parts[0] == "conv1" else "conv1_bn"
    else:
        stage, block = int(parts[0][5:]) + 1, int(parts[1]) + 1
        mod = parts[2:-1]
        if mod[0] == "downsample":
            kind, i = ("conv", 0) if mod[1] == "0" else ("bn", 0)
        else:
            kind, i = mod[0][:-1], int(mod[0][-1])
        layer = f"conv{stage}_block{block}_{i}_{kind}"
    if layer.endswith("_bn") and leaf in ("kernel", "bias"):
        leaf = {"kernel": "gamma", "bias": "beta"}[leaf]
    return layer, leaf


def narrow_resnet18():
    """torchvision's resnet18, with every width divided by 16."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    sd = {}
    for key, t in model.state_dict().items():
        shape = list(t.shape)
        if key.startswith("fc.weight"):
            shape[1] //= 16
        elif not key.startswith("fc.") and t.dim() >= 1:
            shape[0] //= 16
            if t.dim() == 4 and shape[1] > 3:
                shape[1] //= 16
        sd[key] = (torch.randn(shape) * 0.1 if t.is_floating_point() else torch.zeros(shape, dtype=t.dtype))
        if key.endswith("running_var"):
            sd[key] = sd[key].abs() + 0.5
    return sd


def keras_layout_shape(shape):
    """OIHW -> HWIO, (out, in) -> (in, out), others as they are."""
    if len(shape) == 4:
        return (shape[2], shape[3], shape[1], shape[0])
    if len(shape) == 2:
        return (shape[1], shape[0])
    return tuple(shape)


def write_keras_skeleton(out, sd, seed=0, conv_bias=False):
    """A Keras 2 `save_weights` file with keras.applications ResNet names for the
    tensors of state dict sd, random values; with conv_bias, also a zero bias
    per convolution, as keras.applications.ResNet50 has (use_bias=True)."""
    rng = np.random.default_rng(seed)
    layers = {}
    for key, t in sd.items():
        if key.endswith("num_batches_tracked"):
            continue
        layer, leaf = keras_name(key)
        layers.setdefault(layer, []).append((f"{layer}/{leaf}:0", keras_layout_shape(t.shape)))
        if conv_bias and layer.endswith("_conv") and leaf == "kernel":
            layers[layer].append((f"{layer}/bias:0", (t.shape[0],)))
    with h5py.File(out, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.12.0"
        for layer, ws in layers.items():
            g = f.create_group(layer)
            g.attrs["weight_names"] = [w.encode() for w, _ in ws]
            for w, shape in ws:
                zero = conv_bias and w.endswith("_conv/bias:0")
                g.create_dataset(w, data=np.zeros(shape, "f4") if zero else
                                 rng.standard_normal(shape).astype("f4"))


def main(samples):
    src, out = f"{samples}/resnet18_narrow.pth", f"{samples}/resnet18_narrow_keras2.h5"
    torch.save(narrow_resnet18(), src)
    write_keras_skeleton(out, torch.load(src, weights_only=True))


if __name__ == "__main__":
    main(sys.argv[1])
