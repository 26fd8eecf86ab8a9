"""Whole-model pickles (issue 18, item 16): torch.save(model) files, zip and
legacy, are listed under the names and values torch's own
model.state_dict() gives (buffers included, non-persistent buffers and None
entries left out), nothing in them is executed, they fill and are filled
like state dicts, and a module whose class cannot be walked is named.
torch 1.13 is the oracle.  Run with /usr/bin/python3.

Then every family of whole_model.FAMILIES (torchvision classification
families, segmentation, torch.nn modules holding functions, partials, hook
objects, sets, dtypes, devices as attributes), in both formats, is listed
exactly as its state_dict(); every one of whole_model.REFUSED is refused in
one line naming the class; a state dict still refuses what only a whole
model may hold, and a whole model still refuses globals that run code.
"""
import functools
import os
import sys
import zipfile

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
from graftlib import SOURCE_ROOT, Results, ls_json, run, sha256_of_torch  # noqa: E402

sys.path.insert(0, os.path.join(SOURCE_ROOT, "samples", "gen"))
import whole_model  # noqa: E402

R = Results()


def listed_as_state_dict(legacy):
    p = whole_model.whole(R.tmp, legacy)
    want = torch.load(p).state_dict()
    got = ls_json(p)
    assert [t["name"] for t in got] == list(want), ([t["name"] for t in got], list(want))
    assert "block.mask" not in [t["name"] for t in got]  # non-persistent
    for t in got:
        w = want[t["name"]]
        assert t["shape"] == list(w.shape), (t, w.shape)
        assert t["sha256"] == sha256_of_torch(w), t["name"]


def nothing_runs(legacy):
    """Listing needs no class: graft reads a file whose classes torch cannot import."""
    p = whole_model.whole(R.tmp, legacy, name="renamed.pt")
    q = R.path("gone_legacy.pt" if legacy else "gone.pt")
    if legacy:
        open(q, "wb").write(open(p, "rb").read().replace(b"whole_model", b"gone_module"))
    else:
        with zipfile.ZipFile(p) as src, zipfile.ZipFile(q, "w", zipfile.ZIP_STORED) as dst:
            for info in src.infolist():
                dst.writestr(info, src.read(info).replace(b"whole_model", b"gone_module"))
    try:
        torch.load(q)
    except ModuleNotFoundError:
        pass
    else:
        raise AssertionError("torch imported a module that does not exist")
    assert [t["name"] for t in ls_json(q)] == [t["name"] for t in ls_json(p)]


def fills_and_is_filled(legacy):
    skel = whole_model.whole(R.tmp, legacy, seed=0)
    src_model = whole_model.net(seed=1)
    src = R.path("state_dict.pth")
    torch.save(src_model.state_dict(), src)
    out = R.path("filled.pt")
    run("apply", "-o", out, src, skel)
    got = torch.load(out)
    assert isinstance(got, whole_model.Net), type(got)
    for k, v in src_model.state_dict().items():
        assert torch.equal(got.state_dict()[k], v), k
    kept = torch.load(skel)
    assert torch.equal(got.block.mask, kept.block.mask)  # not in state_dict: kept
    assert torch.equal(got.note, kept.note)
    assert got.tail.weight is got.head[2].weight  # still tied
    # and the other way: a whole model as the source of a state dict
    back = R.path("back.pth")
    run("apply", "-o", back, out, src)
    sd = torch.load(back)
    for k, v in src_model.state_dict().items():
        assert torch.equal(sd[k], v), k


def unwalkable_class_named(legacy):
    p = whole_model.with_odd(R.tmp, legacy)
    r = run("ls", p, check=False)
    line = r.stderr.strip()
    assert r.returncode == 2 and "\n" not in line, (r.returncode, r.stderr)
    for needle in (p, "module 'odd'", "'whole_model.Odd'", "graft cannot walk this class"):
        assert needle in line, (needle, line)


def family_listed(name, legacy):
    p = whole_model.family(R.tmp, name, legacy)
    want = torch.load(p).state_dict()
    got = ls_json(p)
    assert [t["name"] for t in got] == list(want), ([t["name"] for t in got], list(want))
    for t in got:
        w = want[t["name"]]
        assert t["shape"] == list(w.shape), (t, w.shape)
        assert t["sha256"] == sha256_of_torch(w), t["name"]
    os.remove(p)


def family_refused(name, legacy):
    p = whole_model.family(R.tmp, name, legacy)
    r = run("ls", p, check=False)
    line = r.stderr.strip()
    assert r.returncode == 2 and "\n" not in line, (r.returncode, r.stderr)
    for needle in (p, whole_model.REFUSED[name][1], "graft cannot walk this class"):
        assert needle in line, (needle, line)


def family_filled(name, legacy):
    """apply with a whole model as skeleton: torch loads it, with the source's values."""
    skel = whole_model.family(R.tmp, name, legacy, seed=0)
    src_path = whole_model.family(R.tmp, name, False, seed=1)
    want = torch.load(src_path).state_dict()
    src = R.path(f"{name}_sd.pth")
    torch.save(want, src)
    out = R.path(f"{name}_filled.pt")
    run("apply", "-o", out, src, skel)
    got = torch.load(out)
    kept = torch.load(skel)
    assert type(got) is type(kept), type(got)
    if name == "attrs":  # a bound-method hook still refers to its own module
        assert list(got.fc._forward_hooks.values())[0].__self__ is got
        assert (got.tags, got.cfg, got.act, got.fwd) == (kept.tags, kept.cfg, kept.act, kept.fwd)
    sd = got.state_dict()
    assert list(sd) == list(want)
    for k, v in want.items():
        assert torch.equal(sd[k], v), k


class RunsCode:
    def __init__(self, func, *args):
        self.call = (func, args)

    def __reduce__(self):
        return self.call


def state_dict_stays_strict(legacy):
    """A state dict never holds functions or partials: still refused."""
    for value, glob in ((nn.functional.relu, "torch.nn.functional.relu"),
                        (functools.partial(nn.BatchNorm2d, eps=1e-3), "functools.partial")):
        p = R.path("strict_legacy.pt" if legacy else "strict.pt")
        torch.save({"w": torch.ones(2), "f": value}, p, _use_new_zipfile_serialization=not legacy)
        r = run("ls", p, check=False)
        assert r.returncode == 2 and f"global '{glob}' is not allowed" in r.stderr, r.stderr


def whole_model_stays_safe(legacy):
    """In a whole model, globals that run code and getattr gadgets are still refused."""
    for value, needle in ((RunsCode(os.system, "true"), "system' is not allowed"),
                          (RunsCode(getattr, nn.Linear, "__init__"), "getattr' is not allowed"),
                          (RunsCode(getattr, nn.Linear, "a.b"), "getattr' is not allowed")):
        m = nn.Linear(2, 2)
        m.extra = value
        p = R.path("unsafe_legacy.pt" if legacy else "unsafe.pt")
        torch.save(m, p, _use_new_zipfile_serialization=not legacy)
        r = run("ls", p, check=False)
        assert r.returncode == 2 and needle in r.stderr and r.stderr.count("\n") == 1, r.stderr


for legacy in (False, True):
    kind = "legacy" if legacy else "zip"
    R.check(f"{kind}: listed as model.state_dict() names and values", listed_as_state_dict, legacy)
    R.check(f"{kind}: read without importing any class", nothing_runs, legacy)
    R.check(f"{kind}: filled from a state dict, and fills one", fills_and_is_filled, legacy)
    R.check(f"{kind}: a class that cannot be walked is named", unwalkable_class_named, legacy)
    for fam in whole_model.FAMILIES:
        R.check(f"{kind}: {fam} listed as its state_dict()", family_listed, fam, legacy)
    for fam in whole_model.REFUSED:
        R.check(f"{kind}: {fam} refused naming its class", family_refused, fam, legacy)
    R.check(f"{kind}: a state dict still refuses functions", state_dict_stays_strict, legacy)
    R.check(f"{kind}: a whole model still refuses code", whole_model_stays_safe, legacy)
    for fam in ("swin", "norm_hooks", "transformer", "attrs", "pruned", "vit"):
        R.check(f"{kind}: {fam} as a skeleton", family_filled, fam, legacy)
R.close()
