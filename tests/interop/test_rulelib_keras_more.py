"""Forward-pass proofs of rules/torch-to-keras/{mobilenet_v3_small,
mobilenet_v3_large,convnext,inception_v3}.yaml: a torchvision model with
random weights and calibrated BatchNorm statistics is transplanted by graft
into a Keras skeleton with Keras Applications' layer names and classes
(tests/interop/kerasapps.py); tfjs-layers runs it and its output must equal
PyTorch's (1e-4 of the output's scale).  Where a family has several depths,
the others are planned against their real torchvision state dicts and must
fill their skeletons completely."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import kerasapps  # noqa: E402
from fwdlib import keras3_forward, keras_forward, keras_plan, rules_path  # noqa: E402
from graftlib import Results  # noqa: E402

import torch  # noqa: E402
import torchvision  # noqa: E402

R = Results()


def mobilenet_v3(size, keras2):
    """keras2: tf.keras names in a Keras 2 .h5; else Keras 3 names in a Keras 3
    legacy .h5 (model-name prefix, no ':0')."""
    arch = f"mobilenet_v3_{size}"
    torch.manual_seed(30 + keras2)
    keras_forward(R, f"{arch} ({'Keras 2' if keras2 else 'Keras 3 legacy .h5'} names)",
                  getattr(torchvision.models, arch)(num_classes=10), rules_path("torch-to-keras", arch),
                  kerasapps.mobilenet_v3(arch, 64, 10, keras2=keras2), 64, keras3=not keras2)


def mobilenet_v3_keras3(size):
    arch = f"mobilenet_v3_{size}"
    torch.manual_seed(32)
    keras3_forward(R, f"{arch} .keras", getattr(torchvision.models, arch)(num_classes=10),
                   rules_path("torch-to-keras", arch), kerasapps.mobilenet_v3(arch, 64, 10, keras2=False), 64)


def convnext_model(depths, dims, seed):
    """torchvision's ConvNeXt with the given stage depths and widths; layer
    scales and LayerNorm affines drawn at random (their init, 1e-6 and 1, would
    leave the blocks out of the output)."""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt
    torch.manual_seed(seed)
    setting = [CNBlockConfig(c, dims[i + 1] if i < 3 else None, n) for i, (c, n) in enumerate(zip(dims, depths))]
    model = ConvNeXt(setting, num_classes=10)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_scale"):
                p.uniform_(0.5, 1.5)
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):  # LayerNorm2d too
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return model.eval()


def convnext():
    """convnext_tiny's depths (3, 3, 9, 3) at widths 8..64, 64 x 64."""
    dims = (8, 16, 32, 64)
    keras_forward(R, "convnext_tiny (narrow)", convnext_model((3, 3, 9, 3), dims, 40),
                  rules_path("torch-to-keras", "convnext"), kerasapps.convnext("convnext_tiny", dims, (3, 3, 9, 3)), 64)


def convnext_depths():
    """convnext_small/base/large share the depths (3, 3, 27, 3) and so every
    name; planned at those depths (narrow widths), and tiny at its real size."""
    keras_plan(R, "convnext_tiny", torchvision.models.convnext_tiny(), rules_path("torch-to-keras", "convnext"),
               kerasapps.convnext("convnext_tiny", (96, 192, 384, 768), (3, 3, 9, 3), 224, 1000))
    dims = (8, 16, 32, 64)
    keras_plan(R, "convnext_small", convnext_model((3, 3, 27, 3), dims, 41), rules_path("torch-to-keras", "convnext"),
               kerasapps.convnext("convnext_small", dims, (3, 3, 27, 3), 224, 10))


def inception_model(div, aux, seed):
    """torchvision's Inception3, every BasicConv2d's widths divided by div
    (the module names and the order of everything unchanged)."""
    from functools import partial

    from torchvision.models import inception as inc

    class Narrow(inc.BasicConv2d):
        def __init__(self, cin, cout, **kw):
            super().__init__(cin if cin == 3 else cin // div, cout // div, **kw)

    blocks = [Narrow] + [partial(b, conv_block=Narrow) for b in (inc.InceptionA, inc.InceptionB, inc.InceptionC,
                                                                    inc.InceptionD, inc.InceptionE, inc.InceptionAux)]
    torch.manual_seed(seed)
    model = inc.Inception3(num_classes=10, aux_logits=aux, inception_blocks=blocks, init_weights=True)
    model.fc = torch.nn.Linear(2048 // div, 10)
    if aux:
        model.AuxLogits.fc = torch.nn.Linear(768 // div, 10)
    return model


def inception_v3():
    """Widths / 4 at 107 x 107 (the last blocks run at 2 x 2)."""
    keras_forward(R, "inception_v3 (widths div 4)", inception_model(4, False, 50),
                  rules_path("torch-to-keras", "inception_v3"), kerasapps.inception_v3(107, 10, 4), 107)


def inception_v3_aux():
    """With AuxLogits (torchvision's default), which Keras has no twin for."""
    keras_plan(R, "inception_v3 aux", inception_model(4, True, 51), rules_path("torch-to-keras", "inception_v3"),
               kerasapps.inception_v3(299, 10, 4))


if __name__ == "__main__":
    for size in ("small", "large"):
        R.check(f"mobilenet_v3_{size} -> Keras 2 MobileNetV3 names (tfjs forward pass)", mobilenet_v3, size, True)
    R.check("mobilenet_v3_large -> Keras 3 legacy .h5 MobileNetV3Large names (tfjs forward pass)", mobilenet_v3,
            "large", False)
    R.check("mobilenet_v3_small -> Keras 3 .keras through keras-named (tfjs forward pass)", mobilenet_v3_keras3,
            "small")
    R.check("convnext (tiny depths, narrow) -> Keras ConvNeXt names (tfjs forward pass)", convnext)
    R.check("convnext_tiny (real) and small/base/large depths -> Keras names: complete plans", convnext_depths)
    R.check("inception_v3 -> Keras Applications InceptionV3, BatchNorm folded (tfjs forward pass)", inception_v3)
    R.check("inception_v3 with AuxLogits -> Keras names: complete plan", inception_v3_aux)
    R.close()
