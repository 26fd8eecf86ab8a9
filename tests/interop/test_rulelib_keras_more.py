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
import torchapps  # noqa: E402
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


def convnext():
    """convnext_tiny's depths (3, 3, 9, 3) at widths 8..64, 64 x 64."""
    dims = (8, 16, 32, 64)
    keras_forward(R, "convnext_tiny (narrow)", torchapps.convnext((3, 3, 9, 3), dims, 40),
                  rules_path("torch-to-keras", "convnext"), kerasapps.convnext("convnext_tiny", dims, (3, 3, 9, 3)), 64)


def convnext_depths():
    """convnext_small/base/large share the depths (3, 3, 27, 3) and so every
    name; planned at those depths (narrow widths), and tiny at its real size."""
    keras_plan(R, "convnext_tiny", torchvision.models.convnext_tiny(), rules_path("torch-to-keras", "convnext"),
               kerasapps.convnext("convnext_tiny", (96, 192, 384, 768), (3, 3, 9, 3), 224, 1000))
    dims = (8, 16, 32, 64)
    keras_plan(R, "convnext_small", torchapps.convnext((3, 3, 27, 3), dims, 41),
               rules_path("torch-to-keras", "convnext"),
               kerasapps.convnext("convnext_small", dims, (3, 3, 27, 3), 224, 10))


def inception_v3():
    """Widths / 4 at 107 x 107 (the last blocks run at 2 x 2)."""
    keras_forward(R, "inception_v3 (widths div 4)", torchapps.inception_v3(4, False, 50),
                  rules_path("torch-to-keras", "inception_v3"), kerasapps.inception_v3(107, 10, 4), 107)


def inception_v3_aux():
    """With AuxLogits (torchvision's default), which Keras has no twin for."""
    keras_plan(R, "inception_v3 aux", torchapps.inception_v3(4, True, 51), rules_path("torch-to-keras", "inception_v3"),
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
