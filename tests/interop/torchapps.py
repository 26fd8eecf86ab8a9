"""torchvision models at test sizes for the rules-library proofs: the real
module names and structure, narrower widths or other depths where the test
says so."""
import torch
from torch import nn
from torchvision.models import vgg as _vgg

VGG_CFG = {11: "A", 13: "B", 16: "D", 19: "E"}
VGG_NARROW = {64: 4, 128: 8, 256: 8, 512: 16}


def vgg_narrow(cfg):
    """torchvision's table with small widths; the last convolution keeps 512."""
    out = [v if v == "M" else VGG_NARROW[v] for v in cfg]
    last = max(i for i, v in enumerate(out) if v != "M")
    out[last] = 512
    return out


def vgg(cfg, bn, hidden):
    """torchvision's VGG on the layer table cfg, classifier widths `hidden`."""
    model = _vgg.VGG(_vgg.make_layers(cfg, batch_norm=bn), num_classes=10)
    model.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, hidden), nn.ReLU(True), nn.Dropout(),
                                     nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(),
                                     nn.Linear(hidden, 10))
    return model


def convnext(depths, dims, seed):
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


def inception_v3(div, aux, seed):
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


def efficientnet(b, width, eps):
    """torchvision's EfficientNet-B<b> depths at another width multiplier,
    BatchNorm epsilon eps."""
    from functools import partial

    from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf
    depth = {0: 1.0, 1: 1.1, 2: 1.2, 3: 1.4, 4: 1.8, 5: 2.2, 6: 2.6, 7: 3.1}[b]
    setting, last = _efficientnet_conf(f"efficientnet_b{b}", width_mult=width, depth_mult=depth)
    return EfficientNet(setting, 0.2, num_classes=10, last_channel=last, norm_layer=partial(nn.BatchNorm2d, eps=eps))
