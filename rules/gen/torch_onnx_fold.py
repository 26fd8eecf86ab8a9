#!/usr/bin/env python3
"""Write rules/torch-to-onnx/{resnet,resnet34,..,resnet152,mobilenet_v2}.yaml
(resnet.yaml is resnet18's): the pairs from a
torchvision state dict to the initializers of the model's own eval-mode
torch.onnx.export (PyTorch 1.13, default opset), where every BatchNorm is
folded into the convolution before it under a counter name (onnx::Conv_N).
The counters depend on the exporter and the network, so the pairs are read
from a real export: the Conv nodes in graph order are the Conv2d modules in
the order a forward pass runs them, each followed by its BatchNorm.
Run from the repository root with the python that has torch:
    /usr/bin/python3 rules/gen/torch_onnx_fold.py
"""
import io

import onnx
import torch
import torchvision

HEADER = {
    "resnet": ("resnet18", "torchvision resnet18 state dict -> its torch.onnx.export with BatchNorm folded", """\
  Source: a torchvision.models.resnet18 state dict (any number of classes).
  Skeleton: the same network exported by torch.onnx.export in eval mode
  (PyTorch 1.13, default opset 14, any input size), where every BatchNorm is
  folded into the convolution before it: onnx::Conv_N (weight) =
  W*gamma/sqrt(var+eps) and onnx::Conv_N+1 (bias) =
  beta-mean*gamma/sqrt(var+eps) (fold_bn, eps 1e-5); fc.weight and fc.bias
  keep their names.  Input layout NCHW on both sides.  Export the skeleton
  from a model with random weights, or equal initializers (all-zero biases)
  are merged into one and cannot be filled.  Not covered: the onnx::Conv_N
  counters are the exporter's own and differ for other depths (resnet34/50/
  101/152), other PyTorch versions and opsets: regenerate this file with
  rules/gen/torch_onnx_fold.py for them.  No --reverse (fold_bn has no
  inverse)."""),
    "mobilenet_v2": ("mobilenet_v2", "torchvision mobilenet_v2 state dict -> its torch.onnx.export with BatchNorm folded", """\
  Source: a torchvision.models.mobilenet_v2 state dict (width 1.0, any number
  of classes).  Skeleton: the same network exported by torch.onnx.export in
  eval mode (PyTorch 1.13, default opset 14, any input size), where every
  BatchNorm is folded into the convolution before it: onnx::Conv_N (weight)
  = W*gamma/sqrt(var+eps) and onnx::Conv_N+1 (bias) =
  beta-mean*gamma/sqrt(var+eps) (fold_bn, eps 1e-5); classifier.1.weight
  and .bias keep their names.  Input layout NCHW on both sides.  Export the
  skeleton from a model with random weights, or equal initializers are
  merged into one and cannot be filled.  Not covered: the onnx::Conv_N
  counters are the exporter's own and differ for other PyTorch versions and
  opsets (regenerate with rules/gen/torch_onnx_fold.py); no --reverse
  (fold_bn has no inverse)."""),
}


DEPTH_DESC = """\
  Source: a torchvision.models.resnet{d} state dict (any number of classes,
  any width_per_group).  Skeleton: the same network exported by
  torch.onnx.export in eval mode (PyTorch 1.13, default opset 14, any input
  size), where every BatchNorm is folded into the convolution before it:
  onnx::Conv_N (weight) = W*gamma/sqrt(var+eps) and onnx::Conv_N+1 (bias) =
  beta-mean*gamma/sqrt(var+eps) (fold_bn, eps 1e-5); fc.weight and fc.bias
  keep their names.  Input layout NCHW on both sides.  Export the skeleton
  from a model with random weights, or equal initializers (all-zero biases)
  are merged into one and cannot be filled.  Not covered: the onnx::Conv_N
  counters are the exporter's own and differ for each depth (resnet.yaml is
  resnet18's), other PyTorch versions and opsets: regenerate with
  rules/gen/torch_onnx_fold.py for them.  No --reverse (fold_bn has no
  inverse)."""
for _d in (34, 50, 101, 152):
    HEADER[f"resnet{_d}"] = (f"resnet{_d}", f"torchvision resnet{_d} state dict -> its torch.onnx.export with "
                             "BatchNorm folded", DEPTH_DESC.format(d=_d))


def randomize(model):
    """Distinct values everywhere: the exporter merges equal initializers."""
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def pairs(model):
    """[(weight name, bias name, conv module name, bn module name)]."""
    randomize(model)
    mods = list(model.named_modules())
    order = []
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: order.append(n))
             for n, m in mods if isinstance(m, torch.nn.Conv2d)]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    names = [n for n, _ in mods]
    bn_after = {}
    for i, (n, m) in enumerate(mods):
        if isinstance(m, torch.nn.Conv2d):
            nxt = next(k for k in names[i + 1:] if isinstance(dict(mods)[k], torch.nn.BatchNorm2d))
            bn_after[n] = nxt
    f = io.BytesIO()
    torch.onnx.export(model, x, f)
    g = onnx.load_from_string(f.getvalue()).graph
    convs = [n for n in g.node if n.op_type == "Conv"]
    assert [o.version for o in onnx.load_from_string(f.getvalue()).opset_import] == [14]
    assert len(convs) == len(order)
    return [(c.input[1], c.input[2], conv, bn_after[conv]) for c, conv in zip(convs, order)]


def main():
    for family, (arch, title, desc) in HEADER.items():
        torch.manual_seed(0)
        model = getattr(torchvision.models, arch)(num_classes=10)
        lines = ["graft: 1.1", f"name: {title}", "description: >", desc, "",
                 "# Generated by rules/gen/torch_onnx_fold.py from a real export.", "pairs:"]
        for w, b, conv, bn in pairs(model):
            stats = [f"{bn}.{p}" for p in ("weight", "bias", "running_mean", "running_var")]
            assert model.get_submodule(conv).bias is None
            lines.append(f"  '{w}': [{', '.join([conv + '.weight'] + stats)}]")
            lines.append(f"  '{b}': [{', '.join(stats)}]")
        lines += ["", "transforms:", "  - target: '^onnx::Conv_'", "    rank: 4",
                  "    ops: [{fold_bn: {part: weight, eps: 1.0e-5}}]",
                  "  - target: '^onnx::Conv_'", "    ops: [{fold_bn: {part: bias, eps: 1.0e-5}}]", "",
                  "ignore:", "  source: ['num_batches_tracked$']",
                  "  # Constant nodes the exporter adds (Clip bounds of ReLU6): not weights",
                  "  target: ['/Constant(?:_\\d+)?_output_0$']", "", "policy:", "  missing: error",
                  "  unused: error", "  mismatch: error", ""]
        with open(f"rules/torch-to-onnx/{family}.yaml", "w") as out:
            out.write("\n".join(lines))


if __name__ == "__main__":
    main()
