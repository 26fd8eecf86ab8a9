#!/usr/bin/python3
"""Whole-model pickles of issue 18 item 16: torch.save(model) in the zip and
the legacy format, with what state_dict() leaves out (a bias of None, a
non-persistent buffer, a plain tensor attribute) and a tied weight, and a
module whose child cannot be walked (its pickled state is a tuple).

FAMILIES are small builds of every torchvision classification family and
the torch.nn modules whose pickles hold more than tensors as attributes
(functools.partial norm layers, activation functions, weight_norm and
spectral_norm hook objects, sets, dtypes, devices, bound-method hooks);
graft must list each exactly as model.state_dict().  REFUSED are modules
whose state_dict() is not their _parameters and _buffers (quantized, lazy,
an unknown state_dict hook): graft must name the class instead.  The
classes live here so torch.load finds them as `whole_model.<Class>`; run
with /usr/bin/python3 and samples/gen on sys.path.
"""
import os
import sys

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, bias=False)           # _parameters['bias'] = None
        self.bn = nn.BatchNorm2d(3)                           # buffers, int64 counter
        self.register_buffer("mask", torch.ones(3), persistent=False)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(2.0))          # a 0-d parameter on the root
        self.register_buffer("steps", torch.arange(4.0))       # a persistent root buffer
        self.block = Block()
        self.head = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3))
        self.tail = nn.Linear(4, 3)
        self.tail.weight = self.head[2].weight                 # tied: two names, one tensor
        self.note = torch.zeros(5)                             # not a parameter or buffer
        self.skip = None


class Odd(nn.Module):
    """A module that pickles its state as a tuple: not a module's __dict__."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(2))

    def __getstate__(self):
        return (dict(self.__dict__),)

    def __setstate__(self, state):
        self.__dict__.update(state[0])


class WithOdd(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.odd = Odd()


class Attrs(nn.Module):
    """Attributes of every pickled kind next to a Linear, and a forward hook
    that is a bound method (getattr on the module itself)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 3)
        self.tags = {"a", "b"}
        self.frozen = frozenset([1, 2])
        self.shape = (1, 2, (3, 4))
        self.cfg = {"k": [1, 2.5, None], "dt": torch.float16, "dev": torch.device("cpu")}
        self.name = "attrs"
        self.dtype = torch.bfloat16
        self.act = torch.tanh                      # getattr(_VariableFunctionsClass, 'tanh')
        self.gelu = nn.functional.gelu             # torch._C._nn.gelu
        self.fwd = nn.Linear.forward               # getattr(Linear, 'forward') at protocol 2
        self.big = 2 ** 70
        self.raw = b"\x00\x01"
        self.cut = slice(1, 5, 2)
        self.z = 1 + 2j
        self.fc.register_forward_hook(self.fc_hook)

    def fc_hook(self, module, args, out):
        return out


def add_extra(module, state_dict, prefix, local_metadata):
    state_dict[prefix + "extra"] = torch.zeros(1)


class Hooked(nn.Module):
    """A state_dict hook that adds an entry: not _parameters + _buffers."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self._register_state_dict_hook(add_extra)


def _tv():
    import torchvision.models as tm  # noqa: PLC0415  (only the families need it)
    return tm


def _quant_dynamic():
    return torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.Linear(4, 4)), {nn.Linear},
                                                  dtype=torch.qint8)


def _convnext():
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt  # noqa: PLC0415
    return ConvNeXt([CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)], num_classes=10)


def _swin():
    from torchvision.models.swin_transformer import SwinTransformer  # noqa: PLC0415
    return SwinTransformer([4, 4], 8, [1, 1], [1, 2], [2, 2], num_classes=10)


def _maxvit():
    from torchvision.models import maxvit  # noqa: PLC0415
    return maxvit.MaxVit((32, 32), 8, 2, [16, 32], [1, 1], 8, 0.0, num_classes=10)


def _vit():
    return _tv().VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=2,
                                   hidden_dim=16, mlp_dim=32, num_classes=10)


def _deeplab():
    from torchvision.models import segmentation  # noqa: PLC0415
    return segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                  num_classes=3)


FAMILIES = {
    "resnet": lambda: _tv().resnet.ResNet(_tv().resnet.BasicBlock, [1, 1, 1, 1], num_classes=10),
    "squeezenet": lambda: _tv().squeezenet1_1(num_classes=10),
    "densenet": lambda: _tv().DenseNet(8, (2, 2), 16, num_classes=10),
    # fixed widths: float16 halves their 40 and 100 MB
    "googlenet": lambda: _tv().googlenet(num_classes=10, aux_logits=True,
                                         init_weights=False).half(),
    "inception_v3": lambda: _tv().inception_v3(num_classes=10, aux_logits=True,
                                               init_weights=False).half(),
    "mobilenet_v2": lambda: _tv().mobilenet_v2(num_classes=10, width_mult=0.25),
    "mobilenet_v3": lambda: _tv().mobilenet_v3_small(num_classes=10),
    "shufflenet": lambda: _tv().shufflenet_v2_x0_5(num_classes=10),
    "mnasnet": lambda: _tv().mnasnet0_5(num_classes=10),
    "efficientnet": lambda: _tv().efficientnet_b0(num_classes=10),
    "regnet": lambda: _tv().regnet_y_400mf(num_classes=10),
    "convnext": _convnext,
    "vit": _vit,
    "swin": _swin,
    "maxvit": _maxvit,
    "lraspp": _deeplab,
    "transformer": lambda: nn.Transformer(16, 2, 1, 1, 32),
    "transformer_gelu": lambda: nn.TransformerEncoder(
        nn.TransformerEncoderLayer(16, 2, 32, activation="gelu"), 2),
    "mha": lambda: nn.Sequential(nn.MultiheadAttention(8, 2, kdim=4, vdim=6),
                                 nn.MultiheadAttention(8, 2, bias=False, add_bias_kv=True)),
    "rnns": lambda: nn.ModuleList([nn.LSTM(6, 8, 2, proj_size=4, bidirectional=True),
                                   nn.RNN(3, 4, nonlinearity="relu"),
                                   nn.GRU(4, 5, batch_first=True)]),
    "norms": lambda: nn.Sequential(nn.BatchNorm2d(3, track_running_stats=False),
                                   nn.BatchNorm1d(2, affine=False),
                                   nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
                                   nn.InstanceNorm1d(2), nn.GroupNorm(2, 4),
                                   nn.LayerNorm([4, 3])),
    "embeddings": lambda: nn.Sequential(nn.Embedding(10, 3, padding_idx=0, max_norm=1.0),
                                        nn.EmbeddingBag(10, 3, mode="max")),
    "convs": lambda: nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"),
                                   nn.Conv1d(2, 2, 3, padding="same", padding_mode="reflect"),
                                   nn.ConvTranspose2d(3, 2, 2), nn.PReLU(3), nn.Hardtanh(),
                                   nn.Unflatten(1, (3, 1))),
    "weight_norm": lambda: nn.utils.weight_norm(nn.Linear(3, 4)),
    "spectral_norm": lambda: nn.utils.spectral_norm(nn.Linear(3, 4)),
    "norm_hooks": lambda: nn.Sequential(nn.utils.weight_norm(nn.Conv1d(2, 3, 3), dim=None),
                                        nn.utils.spectral_norm(nn.Conv2d(3, 2, 1))),
    "params": lambda: nn.ModuleDict({
        "l": nn.ParameterList([nn.Parameter(torch.ones(2)), nn.Parameter(torch.zeros(3))]),
        "d": nn.ParameterDict({"x": nn.Parameter(torch.ones(2))})}),
    "attrs": Attrs,
    "pruned": lambda: _pruned(nn.Sequential(nn.Linear(4, 3), nn.Conv2d(2, 2, 1))),
    "data_parallel": lambda: nn.DataParallel(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))),
    "more_nn": lambda: nn.ModuleList([
        nn.Bilinear(2, 3, 4), nn.Upsample(scale_factor=2.0), nn.MaxPool2d(2, return_indices=True),
        nn.Fold((4, 4), 2), nn.AdaptiveLogSoftmaxWithLoss(8, 10, [4, 8], div_value=2.0),
        nn.CrossEntropyLoss(weight=torch.rand(3)), nn.BCEWithLogitsLoss(pos_weight=torch.rand(2)),
        nn.LSTMCell(2, 3), nn.GRUCell(2, 3), nn.SyncBatchNorm(3),
        nn.Conv3d(4, 4, 1, groups=2, bias=False), nn.Embedding(5, 2, sparse=True),
        nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, norm_first=True,
                                                         batch_first=True), 1, norm=nn.LayerNorm(8)),
        nn.Sequential(nn.Linear(2, 2).half(), nn.Linear(2, 2).to(torch.bfloat16),
                      nn.Linear(2, 2).double())]),
}


def _pruned(m):
    """torch.nn.utils.prune: weight_orig and weight_mask, a pruning hook object."""
    from torch.nn.utils import prune  # noqa: PLC0415
    prune.l1_unstructured(m[0], "weight", amount=0.5)
    prune.random_unstructured(m[1], "bias", amount=0.5)
    return m

# name -> (builder, the class graft must name)
REFUSED = {
    "quantized_dynamic": (_quant_dynamic, "torch.ao.nn.quantized.dynamic.modules.linear.Linear"),
    "lazy": (lambda: nn.Sequential(nn.LazyLinear(3)), "torch.nn.modules.linear.LazyLinear"),
    "state_dict_hook": (Hooked, "whole_model.add_extra"),
}


def family(out, name, legacy=False, seed=0):
    """torch.save of FAMILIES[name] (or REFUSED[name]) built with `seed`."""
    torch.manual_seed(seed)
    m = FAMILIES[name]() if name in FAMILIES else REFUSED[name][0]()
    path = os.path.join(out, f"{name}_s{seed}{'_legacy' if legacy else ''}.pt")
    torch.save(m, path, _use_new_zipfile_serialization=not legacy)
    return path


def net(seed=0):
    torch.manual_seed(seed)
    m = Net()
    with torch.no_grad():
        for t in m.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn(t.shape))
        m.block.bn.num_batches_tracked.fill_(seed + 7)
        m.block.mask.copy_(torch.tensor([5.0, 6.0, 7.0]))
    return m


def whole(out, legacy=False, name=None, seed=0):
    """torch.save(net(seed)) as a zip archive or a legacy stream."""
    path = os.path.join(out, name or ("whole_legacy.pt" if legacy else "whole.pt"))
    torch.save(net(seed), path, _use_new_zipfile_serialization=not legacy)
    return path


def with_odd(out, legacy=False):
    path = os.path.join(out, "odd_legacy.pt" if legacy else "odd.pt")
    torch.save(WithOdd(), path, _use_new_zipfile_serialization=not legacy)
    return path


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for legacy in (False, True):
        print(whole(out, legacy))
        print(with_odd(out, legacy))
        for name in (*FAMILIES, *REFUSED):
            print(family(out, name, legacy))


if __name__ == "__main__":
    sys.modules.setdefault("whole_model", sys.modules[__name__])
    main()
