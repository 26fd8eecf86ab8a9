"""Forward-pass proofs of rules/torch-to-onnx/{resnet,mobilenet_v2}.yaml: the
skeleton is the network's own eval-mode torch.onnx.export (BatchNorm folded
into onnx::Conv_N), made from a model with other random weights; graft
fills it from a calibrated state dict with fold_bn, and onnxruntime-node
running the result must equal PyTorch on that state dict (1e-4 of the
output's scale)."""
import io
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from fwdlib import apply, calibrate, close, onnx_predict, rules_path  # noqa: E402
from graftlib import SOURCE_ROOT, Results  # noqa: E402

sys.path.insert(0, os.path.join(SOURCE_ROOT, "rules", "gen"))
from torch_onnx_fold import randomize  # noqa: E402

import torch  # noqa: E402
import torchvision  # noqa: E402

R = Results()


def export(model, path, hw):
    f = io.BytesIO()
    torch.onnx.export(randomize(model), torch.randn(2, 3, hw, hw), f)
    with open(path, "wb") as out:
        out.write(f.getvalue())


def forward(arch, hw):
    torch.manual_seed(11)
    export(getattr(torchvision.models, arch)(num_classes=10), R.path(arch + "_skel.onnx"), hw)
    torch.manual_seed(12)
    model = calibrate(getattr(torchvision.models, arch)(num_classes=10), (4, 3, hw, hw))
    src, out = R.path(arch + ".pth"), R.path(arch + ".onnx")
    torch.save(model.state_dict(), src)
    apply(rules_path("torch-to-onnx", "resnet" if arch.startswith("resnet") else arch), src,
          R.path(arch + "_skel.onnx"), out)
    x = torch.randn(2, 3, hw, hw, generator=torch.Generator().manual_seed(13))
    with torch.no_grad():
        want = model(x).numpy()
    close(arch + " in onnxruntime", onnx_predict(out, x.numpy(), R.path(arch + "_ort")), want)


if __name__ == "__main__":
    R.check("resnet18 state dict -> its eval-mode ONNX export, BatchNorm folded (onnxruntime forward pass)",
            forward, "resnet18", 64)
    R.check("mobilenet_v2 state dict -> its eval-mode ONNX export, BatchNorm folded (onnxruntime forward pass)",
            forward, "mobilenet_v2", 64)
    R.close()
