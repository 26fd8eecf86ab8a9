#!/usr/bin/python3
"""Whole-model pickles of issue 18 item 16: torch.save(model) in the zip and
the legacy format, with what state_dict() leaves out (a bias of None, a
non-persistent buffer, a plain tensor attribute) and a tied weight, and a
module whose child cannot be walked (its pickled state is a tuple).  The
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


if __name__ == "__main__":
    sys.modules.setdefault("whole_model", sys.modules[__name__])
    main()
