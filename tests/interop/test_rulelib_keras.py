"""Forward-pass proofs of rules/torch-to-keras/*.yaml: a torchvision model with
random weights and calibrated BatchNorm statistics is transplanted by graft
into a Keras skeleton (Keras Applications names and layer classes, random
weights); tfjs-layers loads the result and its output must equal PyTorch's
(relative to the output's scale, 1e-4).  The other depths of each family are
planned against their real torchvision state dicts and must fill the skeleton
completely."""
import os
import sys


sys.path.insert(0, os.path.dirname(__file__))
import kerasapps  # noqa: E402
import torchapps  # noqa: E402
from fwdlib import (apply, close, keras3_forward, keras_forward, keras_plan, rules_path,  # noqa: E402
                    tfjs_predict)
from graftlib import Results  # noqa: E402

import torch  # noqa: E402
import torchvision  # noqa: E402

R = Results()


def resnet18():
    """The quick start's bias-free Keras ResNet18: -r auto takes resnet18.yaml
    (resnet.yaml fills it too, with warnings for its bias rules)."""
    torch.manual_seed(0)
    keras_forward(R, "resnet18", torchvision.models.resnet18(num_classes=10), "auto",
                  kerasapps.resnet(18, 64, 10, bias=False), 64, picks="torch-to-keras/resnet18")


def resnet18_bias():
    """resnet.yaml on basic blocks, with Keras Applications' conv biases."""
    torch.manual_seed(7)
    keras_forward(R, "resnet18 (conv biases)", torchvision.models.resnet18(num_classes=10),
                  rules_path("torch-to-keras", "resnet"), kerasapps.resnet(18, 64, 10, bias=True), 64)


def resnet50():
    torch.manual_seed(1)
    keras_forward(R, "resnet50", torchvision.models.resnet50(num_classes=10), "auto", kerasapps.resnet(50, 32, 10), 32,
            picks="torch-to-keras/resnet")


def keras3():
    torch.manual_seed(6)
    keras3_forward(R, "resnet50 .keras", torchvision.models.resnet50(num_classes=10),
                   rules_path("torch-to-keras", "resnet"), kerasapps.resnet(50, 32, 10), 32)
    keras3_forward(R, "mobilenet_v2 .keras", torchvision.models.mobilenet_v2(num_classes=10),
                   rules_path("torch-to-keras", "mobilenet_v2"), kerasapps.mobilenet_v2(32, 10), 32)


def resnet_depths():
    for d in (34, 101, 152):
        keras_plan(R, f"resnet{d}", getattr(torchvision.models, f"resnet{d}")(), rules_path("torch-to-keras", "resnet"),
                   kerasapps.resnet(d, 224, 1000, bias=True))


def mobilenet_v2():
    torch.manual_seed(2)
    keras_forward(R, "mobilenet_v2", torchvision.models.mobilenet_v2(num_classes=10),
            rules_path("torch-to-keras", "mobilenet_v2"), kerasapps.mobilenet_v2(64, 10), 64)


def densenet():
    torch.manual_seed(3)
    keras_forward(R, "densenet121", torchvision.models.densenet121(num_classes=10),
            rules_path("torch-to-keras", "densenet"), kerasapps.densenet(121, 32, 10), 32)


def densenet_depths():
    for d in (161, 169, 201):
        keras_plan(R, f"densenet{d}", getattr(torchvision.models, f"densenet{d}")(),
                   rules_path("torch-to-keras", "densenet"), kerasapps.densenet(d, 224, 1000))


def efficientnet():
    torch.manual_seed(4)
    keras_forward(R, "efficientnet_b0", torchvision.models.efficientnet_b0(num_classes=10),
            rules_path("torch-to-keras", "efficientnet"), kerasapps.efficientnet(0, 64, 10), 64)


def efficientnet_eps3():
    """efficientnet_b5_b7.yaml, for torchvision's epsilon-1e-3 builds, on B5's
    depths (39 blocks, three in stage 1 as only B5-B7 have) at width 0.5."""
    torch.manual_seed(5)
    keras_forward(R, "efficientnet_b5_eps3 (width 0.5)", torchapps.efficientnet(5, 0.5, 1e-3),
                  rules_path("torch-to-keras", "efficientnet_b5_b7"), kerasapps.efficientnet(5, 64, 10, width=0.5), 64)


def efficientnet_depths():
    for b in range(1, 8):
        keras_plan(R, f"efficientnet_b{b}", getattr(torchvision.models, f"efficientnet_b{b}")(),
                   rules_path("torch-to-keras", "efficientnet" if b < 5 else "efficientnet_b5_b7"),
                   kerasapps.efficientnet(b, 224, 1000))


def keras_to_torch(tag, keras, model, rules, hw):
    """A Keras model with trained-like weights, run in tfjs, transplanted by
    graft into the torchvision state dict, run in PyTorch."""
    k, output = keras
    src, skel, out = R.path(tag + "_k.h5"), R.path(tag + "_skel.pth"), R.path(tag + "_out.pth")
    k.write(src, output, seed=7, trained=True)
    torch.save(model.state_dict(), skel)
    apply(rules, src, skel, out)
    model.load_state_dict(torch.load(out))
    x = torch.randn(2, 3, hw, hw, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        got = model.eval()(x).numpy()
    want = tfjs_predict(src, x.permute(0, 2, 3, 1).numpy(), R.path(tag + "_js"))
    return close(tag, got, want)


def keras_to_torch_mobilenet_v2():
    keras_to_torch("keras->mobilenet_v2", kerasapps.mobilenet_v2(64, 10), torchvision.models.mobilenet_v2(num_classes=10),
                   rules_path("keras-to-torch", "mobilenet_v2"), 64)


def keras_to_torch_densenet():
    keras_to_torch("keras->densenet121", kerasapps.densenet(121, 32, 10), torchvision.models.densenet121(num_classes=10),
                   rules_path("keras-to-torch", "densenet"), 32)


if __name__ == "__main__":
    R.check("resnet18 -> bias-free Keras ResNet18 through -r auto = resnet18.yaml (tfjs forward pass)", resnet18)
    R.check("resnet18 -> Keras ResNet names with conv biases through resnet.yaml (tfjs forward pass)", resnet18_bias)
    R.check("resnet50 -> Keras Applications ResNet50 names with conv biases, -r auto (tfjs forward pass)", resnet50)
    R.check("resnet50 and mobilenet_v2 -> Keras 3 .keras archives through keras-named (tfjs forward passes)", keras3)
    R.check("resnet34/101/152 -> Keras names: complete plans", resnet_depths)
    R.check("mobilenet_v2 -> Keras Applications MobileNetV2 (tfjs forward pass)", mobilenet_v2)
    R.check("densenet121 -> Keras Applications DenseNet (tfjs forward pass)", densenet)
    R.check("densenet161/169/201 -> Keras names: complete plans", densenet_depths)
    R.check("efficientnet_b0 -> Keras Applications EfficientNet (tfjs forward pass)", efficientnet)
    R.check("efficientnet_b5 (epsilon 1e-3, width 0.5) -> Keras through efficientnet_b5_b7.yaml (tfjs forward pass)",
            efficientnet_eps3)
    R.check("efficientnet_b1..b7 -> Keras names: complete plans", efficientnet_depths)
    R.check("Keras MobileNetV2 -> torchvision mobilenet_v2 (tfjs and PyTorch forward passes)",
            keras_to_torch_mobilenet_v2)
    R.check("Keras DenseNet121 -> torchvision densenet121 (tfjs and PyTorch forward passes)", keras_to_torch_densenet)
    R.close()
