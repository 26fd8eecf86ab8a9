"""Rules format 1.1 end to end with real PyTorch files and Keras-named HDF5
skeletons (h5py), the shipped rules files and what --strict refuses.

- rules/torch-to-keras/resnet18.yaml, rewritten with index arithmetic, gives
  the same output bytes and plan as the 1.0 file it replaced
  (tests/interop/data/resnet18_v1.0.yaml, kept verbatim).
- A whole torchvision ResNet-50 (random weights) fills a skeleton with
  keras.applications.ResNet50's layer names through
  tests/interop/data/resnet50_keep_bias.yaml (the shipped resnet50.yaml of
  rules 1.1, kept here when rules/torch-to-keras/resnet.yaml superseded it;
  at most 12 rename entries); every value is checked against torch, and
  --reverse gives the PyTorch tensors back exactly.
- --strict turns the shared-source mistake (moving_mean and moving_variance
  both renamed to running_mean) into exit 1 with nothing written; without it
  the file is written and the warning stands.
- Arithmetic errors name the rule file:line and the tensor; check --reverse
  proves renames one to one; apply --reverse --manifest records a reversed
  concat's take as plan --json does.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "samples", "gen"))
from graftlib import SOURCE_ROOT, Results, run, sha256_file  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

from quickstart import keras_name, write_keras_skeleton  # noqa: E402

R = Results()
RULES = os.path.join(SOURCE_ROOT, "rules", "torch-to-keras")
SAMPLES = os.path.join(SOURCE_ROOT, "samples")


def keras_layout(t):
    a = t.numpy()
    if a.ndim == 4:
        return a.transpose(2, 3, 1, 0)
    return a.T if a.ndim == 2 else a


def pairs_of(plan):
    return [(p["target"], p["sources"], p["ops"], p["status"]) for p in plan["pairs"]]


def test_resnet18_rewrite_same_bytes():
    old = os.path.join(SOURCE_ROOT, "tests", "interop", "data", "resnet18_v1.0.yaml")
    new = os.path.join(RULES, "resnet18.yaml")
    with open(new) as f:
        text = f.read()
    assert text.startswith("graft: 1.1\n") and "${1-1}.${2-1}" in text
    src, skel = os.path.join(SAMPLES, "resnet18_narrow.pth"), os.path.join(SAMPLES, "resnet18_narrow_keras2.h5")
    outs = []
    for i, rules in enumerate((old, new)):
        out = R.path(f"r18_{i}.h5")
        run("apply", "-q", "-r", rules, src, skel, "-o", out)
        outs.append(sha256_file(out))
    assert outs[0] == outs[1], outs
    plans = [pairs_of(json.loads(run("plan", "--json", "-r", r, src, skel).stdout)) for r in (old, new)]
    assert plans[0] == plans[1] and len(plans[0]) == 102
    # and back: the reverse plans agree too
    back = [pairs_of(json.loads(run("plan", "--json", "--reverse", "-r", r, R.path("r18_0.h5"), src).stdout))
            for r in (old, new)]
    assert back[0] == back[1]


def test_resnet50_fills_keras_names_and_reverses_exactly():
    rules = os.path.join(SOURCE_ROOT, "tests", "interop", "data", "resnet50_keep_bias.yaml")
    out = run("check", rules).stdout
    nrename = int(out.split(" target renames")[0].split()[-1])
    assert nrename <= 12, out
    torch.manual_seed(50)
    model = torchvision.models.resnet50(num_classes=10)
    sd = {k: (v + torch.randn_like(v) * 0.01 if v.is_floating_point() else v)
          for k, v in model.state_dict().items()}
    torch.save(sd, R.path("r50.pth"))
    write_keras_skeleton(R.path("r50_keras.h5"), sd, seed=1, conv_bias=True)
    run("apply", "-q", "-r", rules, R.path("r50.pth"), R.path("r50_keras.h5"), "-o", R.path("r50_out.h5"))
    n = 0
    with h5py.File(R.path("r50_out.h5"), "r") as f:
        for key, t in sd.items():
            if key.endswith("num_batches_tracked"):
                continue
            layer, leaf = keras_name(key)
            got = f[layer][f"{layer}/{leaf}:0"][()]
            assert np.array_equal(got, keras_layout(t)), key
            n += 1
        nbias = sum(1 for g in f.attrs["layer_names"]
                    if (g.decode() if isinstance(g, bytes) else g).endswith("_conv"))
        assert nbias == 53  # ResNet50's convolutions: kept from the skeleton
        assert not f["conv2_block1_1_conv"]["conv2_block1_1_conv/bias:0"][()].any()
    assert n == 267, n  # resnet50: 320 state dict entries, 53 of them num_batches_tracked
    # back to PyTorch through the same rules: a differently initialised resnet50 as skeleton
    torch.manual_seed(51)
    torch.save(torchvision.models.resnet50(num_classes=10).state_dict(), R.path("r50_skel.pth"))
    run("check", "--reverse", rules, R.path("r50_out.h5"), R.path("r50_skel.pth"))
    run("apply", "-q", "--reverse", "-r", rules, R.path("r50_out.h5"), R.path("r50_skel.pth"),
        "-o", R.path("r50_back.pth"))
    back = torch.load(R.path("r50_back.pth"))
    for key, t in sd.items():
        if key.endswith("num_batches_tracked"):
            continue  # kept from the skeleton: ignored by the rules
        assert back[key].dtype == t.dtype and torch.equal(back[key], t), key


def test_strict_refuses_shared_source():
    src, skel = os.path.join(SAMPLES, "resnet18_narrow.pth"), os.path.join(SAMPLES, "resnet18_narrow_keras2.h5")
    with open(os.path.join(RULES, "resnet18.yaml")) as f:
        text = f.read()
    wrong = text.replace("{match: '\\.moving_variance(?::0)?$', to: '.running_var'}",
                         "{match: '\\.moving_variance(?::0)?$', to: '.running_mean'}")
    # under the default policy (unused: warn), as a user's first file would be
    wrong = wrong.replace("  unused: error\n", "  unused: warn\n")
    assert wrong != text and "unused: warn" in wrong
    with open(R.path("shared.yaml"), "w") as f:
        f.write(wrong)
    out = R.path("shared_out.h5")
    p = run("apply", "-q", "--strict", "-r", R.path("shared.yaml"), src, skel, "-o", out, check=False)
    assert p.returncode == 1, p
    assert "source 'bn1.running_mean' feeds 2 targets" in p.stderr and "nothing written" in p.stderr, p.stderr
    assert not os.path.exists(out)
    for cmd in ("plan", "check", "diff"):
        args = (R.path("shared.yaml"), src, skel) if cmd == "check" else ("-r", R.path("shared.yaml"), src, skel)
        assert run(cmd, "--strict", *args, check=False).returncode == 1, cmd
    p = run("apply", "-q", "-r", R.path("shared.yaml"), src, skel, "-o", out, check=False)
    assert p.returncode == 0 and os.path.exists(out), p
    assert "warning" in p.stderr and "feeds 2 targets" in p.stderr, p.stderr
    assert run("plan", "-r", R.path("shared.yaml"), src, skel, check=False).returncode == 0
    with h5py.File(out, "r") as f:  # the mistake: variances are means, some negative
        assert (f["conv1_bn"]["conv1_bn/moving_variance:0"][()] < 0).any()


def test_arithmetic_errors_and_one_to_one():
    np.savez(R.path("k.npz"), **{"conv2_block1_x": np.zeros(1, "f4"), "conv2_blockx_y": np.zeros(1, "f4")})
    np.savez(R.path("t.npz"), **{"layer1.0.x": np.zeros(1, "f4")})
    with open(R.path("a.yaml"), "w") as f:
        f.write("graft: 1.1\nrename:\n  source:\n"
                "    - {match: '^conv(\\d)_block(\\w+)_', to: 'layer${1-1}.${2-1}.'}\n")
    p = run("plan", "-r", R.path("a.yaml"), R.path("k.npz"), R.path("t.npz"), check=False)
    assert p.returncode == 2, p
    assert p.stderr.strip() == f"graft: {R.path('a.yaml')}:4: tensor 'conv2_blockx_y': rename " \
        "'^conv(\\d)_block(\\w+)_': ${2-1}: group 2 is 'x', not a decimal integer", p.stderr
    np.savez(R.path("k0.npz"), **{"conv2_block0_x": np.zeros(1, "f4")})
    p = run("plan", "-r", R.path("a.yaml"), R.path("k0.npz"), R.path("t.npz"), check=False)
    assert p.returncode == 2 and "tensor 'conv2_block0_x'" in p.stderr and \
        "${2-1} gives -1, below 0" in p.stderr, p.stderr
    # a 1.0 file cannot use it
    with open(R.path("a10.yaml"), "w") as f:
        f.write("graft: 1\nrename:\n  source:\n    - {match: '(\\d)', to: '${1+1}'}\n")
    p = run("check", R.path("a10.yaml"), check=False)
    assert p.returncode == 2 and "a10.yaml:4:27: to: index arithmetic '${1+1}' needs graft: 1.1" \
        in p.stderr, p.stderr
    # reverse: layer3.5. goes back to conv4_block6_; check --reverse proves it one to one
    np.savez(R.path("k2.npz"), **{"conv4_block6_1_conv": np.arange(3, dtype="f4"),
                                  "conv2_block1_0_bn": np.arange(2, dtype="f4")})
    np.savez(R.path("t2.npz"), **{"layer3.5.1_conv": np.zeros(3, "f4"), "layer1.0.0_bn": np.zeros(2, "f4")})
    with open(R.path("b.yaml"), "w") as f:
        f.write("graft: 1.1\nrename:\n  source:\n"
                "    - {match: '^conv(\\d)_block(\\d+)_', to: 'layer${1-1}.${2-1}.'}\n")
    run("check", "--reverse", R.path("b.yaml"), R.path("t2.npz"), R.path("k2.npz"))
    plan = json.loads(run("plan", "--json", "--reverse", "-r", R.path("b.yaml"), R.path("t2.npz"),
                          R.path("k2.npz")).stdout)
    assert {(p["target"], p["sources"][0]) for p in plan["pairs"]} == \
        {("conv4_block6_1_conv", "layer3.5.1_conv"), ("conv2_block1_0_bn", "layer1.0.0_bn")}, plan
    # two Keras names that become one torch name: not one to one
    np.savez(R.path("k3.npz"), **{"conv2_block1_0_bn": np.zeros(2, "f4"),
                                  "conv2_block01_0_bn": np.zeros(2, "f4")})
    p = run("check", "--reverse", R.path("b.yaml"), R.path("t2.npz"), R.path("k3.npz"), check=False)
    assert p.returncode == 1 and "renames are not one to one: several target names become " \
        "'layer1.0.0_bn'" in p.stderr, p.stderr


def test_reverse_manifest_take_rows():
    """apply --reverse --manifest: a concat of unequal sources reverses to take rows."""
    np.savez(R.path("m_src.npz"), a=np.arange(4, dtype="f4"), b=np.arange(6, dtype="f4"))
    np.savez(R.path("m_skel.npz"), ab=np.zeros(10, "f4"))
    with open(R.path("m.yaml"), "w") as f:
        f.write("graft: 1\npairs: {ab: [a, b]}\ntransforms:\n  - ops: [{concat: {axis: 0}}]\n")
    run("apply", "-q", "-r", R.path("m.yaml"), R.path("m_src.npz"), R.path("m_skel.npz"), "-o", R.path("m_out.npz"))
    run("apply", "-q", "--reverse", "-r", R.path("m.yaml"), R.path("m_out.npz"), R.path("m_src.npz"),
        "-o", R.path("m_back.npz"), "--manifest", R.path("m.json"))
    man = json.load(open(R.path("m.json")))
    ops = {t["target"]: t["ops"] for t in man["tensors"]}
    assert ops == {"a": [{"take": {"axis": 0, "start": 0, "length": 4}}],
                   "b": [{"take": {"axis": 0, "start": 4, "length": 6}}]}, ops
    plan = json.loads(run("plan", "--json", "--reverse", "-r", R.path("m.yaml"), R.path("m_out.npz"),
                          R.path("m_src.npz")).stdout)
    assert {p["target"]: p["ops"] for p in plan["pairs"]} == ops
    back = np.load(R.path("m_back.npz"))
    assert np.array_equal(back["b"], np.arange(6, dtype="f4"))


def test_per_entry_mismatch_policy():
    np.savez(R.path("p_src.npz"), a=np.ones(3, "f4"), b=np.ones(3, "f4"))
    np.savez(R.path("p_skel.npz"), a=np.zeros(4, "f4"), b=np.zeros(4, "f4"))
    with open(R.path("p.yaml"), "w") as f:
        f.write("graft: 1.1\ntransforms:\n  - target: '^a$'\n    ops: []\n    mismatch: keep\n"
                "  - target: '^b$'\n    ops: []\n")
    plan = json.loads(run("plan", "--json", "-r", R.path("p.yaml"), R.path("p_src.npz"), R.path("p_skel.npz"),
                          check=False).stdout)
    assert {p["target"]: p["status"] for p in plan["pairs"]} == {"a": "kept", "b": "mismatch"}, plan
    with open(R.path("p10.yaml"), "w") as f:
        f.write("graft: 1\ntransforms:\n  - ops: []\n    mismatch: keep\n")
    p = run("check", R.path("p10.yaml"), check=False)
    assert p.returncode == 2 and "p10.yaml:4:5: transform: unknown key 'mismatch'" in p.stderr, p.stderr


R.check("resnet18.yaml rewritten with arithmetic: same output bytes and plan as the 1.0 file",
        test_resnet18_rewrite_same_bytes)
R.check("torchvision ResNet-50 fills keras.applications.ResNet50 names; --reverse gives it back exactly",
        test_resnet50_fills_keras_names_and_reverses_exactly)
R.check("--strict: a shared source is exit 1 with nothing written; without it, written with a warning",
        test_strict_refuses_shared_source)
R.check("arithmetic errors name file:line and tensor; check --reverse proves one to one",
        test_arithmetic_errors_and_one_to_one)
R.check("apply --reverse --manifest records a reversed concat's take as plan --json does",
        test_reverse_manifest_take_rows)
R.check("a transform's mismatch: keep overrides the file's policy (1.1 only)", test_per_entry_mismatch_policy)
R.close()
