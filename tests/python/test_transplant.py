"""graft.plan / apply / diff / explain / convert: a PyTorch state dict
transplanted into a PyTorch skeleton with other names and layouts; torch.load
of the output is the oracle."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import graft
from pyhelp import sha256_file

RULES = """graft: 1
rename:
  source:
    - {match: '^module\\.', to: ''}
  target:
    - {match: '/', to: '.'}
    - {match: 'kernel:0$', to: 'weight'}
    - {match: 'bias:0$', to: 'bias'}
transforms:
  - rank: 4
    ops: [{permute: OIHW->HWIO}]
  - rank: 2
    ops: [transpose]
"""
RANK4_LINE = RULES.splitlines().index("  - rank: 4") + 1
RENAMES_ONLY = RULES.split("transforms:")[0]


@pytest.fixture
def case(tmp_path):
    torch.manual_seed(1)
    src = {"module.conv.weight": torch.randn(4, 3, 3, 3), "module.fc.weight": torch.randn(5, 4),
           "module.fc.bias": torch.randn(5)}
    skel = {"conv/kernel:0": torch.zeros(3, 3, 3, 4), "fc/kernel:0": torch.zeros(4, 5),
            "fc/bias:0": torch.zeros(5)}
    sp, kp, rp = tmp_path / "src.pth", tmp_path / "skel.pth", tmp_path / "rules.yaml"
    torch.save(src, sp)
    torch.save(skel, kp)
    rp.write_text(RULES)
    return src, sp, kp, rp


def expected(src):
    return {"conv/kernel:0": src["module.conv.weight"].permute(2, 3, 1, 0),
            "fc/kernel:0": src["module.fc.weight"].t(), "fc/bias:0": src["module.fc.bias"]}


def test_plan_as_python_objects(case):
    _, sp, kp, rp = case
    p = graft.plan(rp, sp, kp)
    assert isinstance(p, graft.Plan) and p.complete and p.errors == 0
    assert [x.target for x in p.pairs] == ["conv/kernel:0", "fc/kernel:0", "fc/bias:0"]
    conv = p["conv/kernel:0"]
    assert conv.sources == ["module.conv.weight"] and conv.status == "ok"
    assert conv.ops == [{"permute": [2, 3, 1, 0]}]
    assert conv.source_shape == [4, 3, 3, 3] and conv.target_shape == [3, 3, 3, 4]
    assert conv.transform == f"{rp}:{RANK4_LINE}"
    assert p.ops == {"conv/kernel:0": [{"permute": [2, 3, 1, 0]}], "fc/kernel:0": ["transpose"],
                     "fc/bias:0": []}
    assert p.missing == [] and p.unused == [] and p.problems == []


def test_plan_reports_missing_unused_and_strict(tmp_path, case):
    src, sp, kp, rp = case
    torch.save({**src, "module.extra": torch.ones(2)}, sp)
    torch.save({"conv/kernel:0": torch.zeros(3, 3, 3, 4), "fc/kernel:0": torch.zeros(4, 5),
                "fc/bias:0": torch.zeros(5), "other": torch.zeros(3)}, kp)
    p = graft.plan(rp, sp, kp)
    assert p.missing == ["other"] and p.unused == ["module.extra"]
    assert p["other"].status == "missing" and "no source" in p["other"].message
    assert p.errors == 1 and not p.complete
    assert any("module.extra" in w for w in p.warnings)
    assert graft.plan(rp, sp, kp, strict=True).errors == 2
    # reverse: the rules read from the skeleton's side back to the source's
    back = graft.plan(rp, kp, sp, reverse=True)
    assert back["module.conv.weight"].sources == ["conv/kernel:0"]


def test_apply_output_loads_in_torch(tmp_path, case):
    src, sp, kp, rp = case
    before = [sha256_file(x) for x in (sp, kp, rp)]
    out = tmp_path / "out.pth"
    calls = []
    r = graft.apply(rules=rp, source=sp, skeleton=kp, output=out,
                    progress=lambda done, total, nbytes: calls.append((done, total, nbytes)))
    assert isinstance(r, graft.Applied) and r.output == str(out)
    assert (r.tensors, r.transplanted, r.kept) == (3, 3, 0)
    got = torch.load(out)
    want = expected(src)
    assert list(got) == list(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k
    assert [c[0] for c in calls] == [1, 2, 3] and all(c[1] == 3 for c in calls)
    assert calls[-1][2] == r.bytes == sum(t.numel() * 4 for t in want.values())
    assert [sha256_file(x) for x in (sp, kp, rp)] == before
    # diff proves the output follows the rules; a changed value shows
    d = graft.diff(sp, out, rules=rp)
    assert d.ok() and [e.status for e in d.entries] == ["ok"] * 3 and d.max_abs == 0
    assert d["fc/kernel:0"].sources == ["module.fc.weight"] and d["fc/kernel:0"].numel == 20
    bad = {k: v.clone() for k, v in got.items()}
    bad["fc/bias:0"][2] += 0.25
    torch.save(bad, tmp_path / "bad.pth")
    d = graft.diff(sp, tmp_path / "bad.pth", rules=rp)
    assert not d.ok() and d.ok(atol=0.3)
    assert d["fc/bias:0"].status == "over" and d["fc/bias:0"].max_abs == pytest.approx(0.25)


@pytest.mark.skipif(not shutil.which("strace"), reason="strace is not installed")
def test_sync_false_writes_the_same_bytes_without_fsync(tmp_path, case):
    # each mode in a process of its own under strace, counting its fsyncs
    _, sp, kp, rp = case
    counts = {}
    for sync in (True, False):  # same file names: a PyTorch zip holds its own
        (tmp_path / str(sync)).mkdir()
        code = (f"import graft; graft.apply(rules={str(rp)!r}, source={str(sp)!r}, "
                f"skeleton={str(kp)!r}, output={str(tmp_path / str(sync) / 'a.pth')!r}, sync={sync}); "
                f"graft.convert({str(sp)!r}, {str(tmp_path / str(sync) / 'c.npz')!r}, sync={sync})")
        log = tmp_path / f"strace{sync}.log"
        subprocess.run(["strace", "-f", "-qq", "-o", str(log), "-e", "trace=fsync,fdatasync",
                        sys.executable, "-c", code], check=True)
        counts[sync] = sum(1 for ln in open(log) if "fsync(" in ln)
    assert counts[True] >= 2 and counts[False] == 0, counts
    for name in ("a.pth", "c.npz"):
        assert (tmp_path / "True" / name).read_bytes() == (tmp_path / "False" / name).read_bytes()


def test_apply_default_output_name(case):
    src, sp, kp, rp = case
    r = graft.apply(rules=rp, source=sp, skeleton=kp)
    assert r.output == str(kp).replace("skel.pth", "skel.grafted.pth")
    assert torch.equal(torch.load(r.output)["fc/bias:0"], src["module.fc.bias"])


def test_incomplete_plan_raises_plan_error(tmp_path, case):
    src, sp, kp, rp = case
    torch.save({"module.fc.weight": src["module.fc.weight"]}, sp)
    out = tmp_path / "out.pth"
    with pytest.raises(graft.PlanError) as e:
        graft.apply(rules=rp, source=sp, skeleton=kp, output=out)
    assert "nothing written" in str(e.value) and e.value.code == "EPLAN"
    assert sorted(e.value.plan.missing) == ["conv/kernel:0", "fc/bias:0"]
    assert not out.exists()


def test_progress_exception_stops_apply(tmp_path, case):
    _, sp, kp, rp = case
    out = tmp_path / "out.pth"

    def stop(done, total, nbytes):
        if done == 2:
            raise KeyboardInterrupt("stop here")

    with pytest.raises(KeyboardInterrupt, match="stop here"):
        graft.apply(rules=rp, source=sp, skeleton=kp, output=out, progress=stop)
    assert not out.exists()
    assert not [f for f in os.listdir(tmp_path) if "graft-" in f]


def test_errors_are_graft_errors(tmp_path, case):
    _, sp, kp, rp = case
    bad = tmp_path / "bad.yaml"
    bad.write_text("graft: 1\ntransfroms: []\n")
    with pytest.raises(graft.Error) as e:
        graft.plan(bad, sp, kp)
    assert e.value.code == "ERULE" and f"{bad}:2:1" in str(e.value)
    with pytest.raises(graft.Error) as e:
        graft.apply(rules=rp, source=sp, skeleton=kp, output=sp)
    assert "src.pth" in str(e.value) and "\n" not in str(e.value)


def test_explain(case):
    _, sp, kp, rp = case
    text = graft.explain(rp, sp, kp, "conv/kernel:0")
    assert "module.conv.weight" in text and f"{rp}:{RANK4_LINE}" in text
    with pytest.raises(graft.Error) as e:
        graft.explain(rp, sp, kp, "module.fc.weight")
    assert e.value.code == "ENOTFOUND" and "fc/kernel:0" in str(e.value)


def test_identity_rules_and_mismatch(tmp_path):
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    torch.save({"w": torch.ones(2, 3), "only_a": torch.ones(1)}, a)
    torch.save({"w": torch.ones(3, 2), "only_b": torch.ones(1)}, b)
    d = graft.diff(a, b)
    status = {(e.name, e.side): e.status for e in d.entries}
    assert status == {("w", None): "mismatch", ("only_b", "B"): "unpaired",
                      ("only_a", "A"): "unpaired"}
    assert not d.ok()


@pytest.mark.parametrize("ext", ["safetensors", "npz", "pth"])
def test_convert(tmp_path, case, ext):
    src, sp, _, _ = case
    rp = tmp_path / "renames.yaml"
    rp.write_text(RENAMES_ONLY)
    out = tmp_path / f"out.{ext}"
    seen = []
    r = graft.convert(sp, out, rules=rp, progress=lambda *a: seen.append(a))
    assert isinstance(r, graft.Converted) and r.tensors == 3 and r.output == str(out)
    assert len(seen) == 3 and r.dropped == 0
    if ext == "npz":
        got = dict(np.load(out))
    elif ext == "pth":
        got = {k: v.numpy() for k, v in torch.load(out).items()}
    else:
        got = {t.name: np.asarray(t) for t in graft.open(out)}
    assert got.keys() == {"conv.weight", "fc.weight", "fc.bias"}
    for k in got:
        assert np.array_equal(got[k], src["module." + k].numpy()), k
    with pytest.raises(graft.Error) as e:
        graft.convert(sp, tmp_path / "x.unknown-ext")
    assert "x.unknown-ext" in str(e.value)


def test_suggest_drafts_rules_that_transplant(tmp_path):
    """graft.suggest on the quick start's pair (torchvision names into Keras
    Applications names): the draft, applied unchanged, gives every Keras
    tensor the value PyTorch's state dict holds after the layout change."""
    root = os.environ["GRAFT_SOURCE_ROOT"]
    src = os.path.join(root, "samples", "resnet18_narrow.pth")
    skel = os.path.join(root, "samples", "resnet18_narrow_keras2.h5")
    rules, page = tmp_path / "draft.yaml", tmp_path / "draft.html"
    s = graft.suggest(src, skel, output=rules, html=page)
    assert s.sure and s.one_to_one, [t for t in s.targets if t.confidence not in ("certain", "likely")]
    assert open(rules).read() == s.rules and page.stat().st_size > 0
    assert s.count("certain") + s.count("likely") == len(s.targets) == 102
    out = tmp_path / "out.h5"
    graft.apply(rules=rules, source=src, skeleton=skel, output=out)
    sd = torch.load(src)
    m = graft.open(out)
    conv = np.asarray(m["conv1_conv/kernel:0"])
    assert np.array_equal(conv, sd["conv1.weight"].permute(2, 3, 1, 0).numpy())
    fc = np.asarray(m["predictions/kernel:0"])
    assert np.array_equal(fc, sd["fc.weight"].numpy().T)


def test_suggest_error_is_one_line(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(graft.Error) as e:
        graft.suggest(bad, bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
