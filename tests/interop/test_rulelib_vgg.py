"""Forward-pass proofs of rules/torch-to-keras/vgg{11,13,16,19}{,_bn}.yaml, one
file per variant (torchvision's features.<i> index of a Keras
block<b>_conv<c> depends on the depth and on BatchNorm).  Each variant is
built in PyTorch with torchvision's own layer table (make_layers on
vgg.cfgs) at reduced widths (the last convolution keeps 512 channels, which
fc1's flatten reorder assumes) and a narrow classifier, with random weights
and calibrated BatchNorm statistics; graft fills a Keras skeleton with the
same layers (tfjs-layers runs it) at 224 x 224, where the features end 7 x 7
and fc1's (C, H, W) -> (H, W, C) row reorder matters at every position."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import kerasapps  # noqa: E402
import torchapps  # noqa: E402
from fwdlib import keras_forward, rules_path  # noqa: E402
from graftlib import Results  # noqa: E402

import torch  # noqa: E402
from torchvision.models import vgg  # noqa: E402

R = Results()
HIDDEN = 16


def forward(depth, bn):
    arch = f"vgg{depth}{'_bn' if bn else ''}"
    torch.manual_seed(depth + bn)
    cfg = torchapps.vgg_narrow(vgg.cfgs[torchapps.VGG_CFG[depth]])
    model = torchapps.vgg(cfg, bn, HIDDEN)
    keras_forward(R, arch, model, rules_path("torch-to-keras", arch), kerasapps.vgg(cfg, bn, 224, HIDDEN, 10), 224)


if __name__ == "__main__":
    for d in torchapps.VGG_CFG:
        for bn in (False, True):
            R.check(f"vgg{d}{'_bn' if bn else ''} -> Keras VGG names (tfjs forward pass, 224x224)", forward, d, bn)
    R.close()
