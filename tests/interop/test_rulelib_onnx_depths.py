"""Forward-pass proofs of rules/torch-to-onnx/resnet{34,50,101,152}.yaml (one
file per depth: the exporter's onnx::Conv_N counters differ by depth), as in
test_rulelib_onnx.py: torchvision's own eval-mode torch.onnx.export as the
skeleton, onnxruntime-node running the transplant against PyTorch.  The
bottleneck depths run at width_per_group 8 (the counters follow the graph,
not the widths: the files were generated from full-width exports), with
their residual branches' last BatchNorm scaled by 0.2 (fwdlib.onnx_forward)."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from fwdlib import onnx_forward, rules_path  # noqa: E402
from graftlib import Results  # noqa: E402

R = Results()

if __name__ == "__main__":
    R.check("resnet34 -> its ONNX export, BatchNorm folded (onnxruntime forward pass)",
            onnx_forward, R, "resnet34", 32, rules_path("torch-to-onnx", "resnet34"))
    for d in (50, 101, 152):
        R.check(f"resnet{d} (width_per_group 8) -> its ONNX export, BatchNorm folded (onnxruntime forward pass)",
                lambda d=d: onnx_forward(R, f"resnet{d}", 32, rules_path("torch-to-onnx", f"resnet{d}"),
                                         branch_gain=0.2, width_per_group=8))
    R.close()
