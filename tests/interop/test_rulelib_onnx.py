"""Forward-pass proofs of rules/torch-to-onnx/{resnet,mobilenet_v2,squeezenet1_1}.yaml: the
skeleton is the network's own eval-mode torch.onnx.export (BatchNorm folded
into onnx::Conv_N), made from a model with other random weights; graft
fills it from a calibrated state dict with fold_bn, and onnxruntime-node
running the result must equal PyTorch on that state dict (1e-4 of the
output's scale).  The other ResNet depths: test_rulelib_onnx_depths.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from fwdlib import onnx_forward, rules_path  # noqa: E402
from graftlib import Results  # noqa: E402

R = Results()

if __name__ == "__main__":
    R.check("resnet18 state dict -> its eval-mode ONNX export, BatchNorm folded (onnxruntime forward pass)",
            onnx_forward, R, "resnet18", 64, rules_path("torch-to-onnx", "resnet"))
    R.check("mobilenet_v2 state dict -> its eval-mode ONNX export, BatchNorm folded (onnxruntime forward pass)",
            onnx_forward, R, "mobilenet_v2", 64, rules_path("torch-to-onnx", "mobilenet_v2"))
    R.check("squeezenet1_1 state dict -> its ONNX export, names kept (onnxruntime forward pass)",
            onnx_forward, R, "squeezenet1_1", 64, rules_path("torch-to-onnx", "squeezenet1_1"))
    R.close()
