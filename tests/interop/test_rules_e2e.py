"""Rule engine end to end: a PyTorch state dict (torch.save) and a NumPy .npz
skeleton with other names and layouts; `graft plan --json`, `graft explain`,
`graft check` and every failure mode with its exit code and message.

The planned op chains are replayed with torch on the real source tensors, so
a wrong permutation or shape shows up as a shape or dtype that does not match
the skeleton numpy wrote.
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import graftlib  # noqa: E402
from graftlib import Results, run  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

R = Results()

RULES = """\
graft: 1
name: e2e torch -> tf-like npz
rename:
  source:
    - {match: '^module\\.', to: ''}
  target:
    - {match: '(weights|kernel):0$', to: 'weight'}
    - {match: '(biases|bias):0$', to: 'bias'}
    - {match: '/', to: '.'}
pairs:
  'attn/q/kernel:0': module.attn.qkv.weight
  'attn/k/kernel:0': module.attn.qkv.weight
  'attn/v/kernel:0': module.attn.qkv.weight
  'gru/kernel:0': module.gru.weight_ih
  'fused/kernel:0': [module.a.weight, module.b.weight]
transforms:
  - target: '^attn/q/'
    ops: [transpose, {take: {axis: 1, count: 3, index: 0}}]
  - target: '^attn/k/'
    ops: [transpose, {take: {axis: 1, count: 3, index: 1}}]
  - target: '^attn/v/'
    ops: [transpose, {take: {axis: 1, count: 3, index: 2}}]
  - target: '^gru/'
    ops: [{chunks: {axis: 0, order: [1, 0, 2]}}, transpose]
  - target: '^fused/'
    ops: [{concat: {axis: 0}}, transpose]
  - target: '^fc1/'
    ops:
      - reshape: [6, 4, 2, 2]
      - permute: OCHW->HWCO
      - reshape: [-1, 6]
  - target: '^half/'
    ops: [transpose, {cast: float16}]
  - rank: 4
    ops: [{permute: OIHW->HWIO}]
  - rank: 2
    ops: [transpose]
ignore:
  source: ['num_batches_tracked$']
  target: ['^global_step$']
policy:
  missing: error
  unused: warn
"""

torch.manual_seed(0)
SOURCE = {
    "module.conv1.weight": torch.randn(8, 3, 3, 3),
    "module.conv1.bias": torch.randn(8),
    "module.bn.num_batches_tracked": torch.tensor(7),
    "module.fc.weight": torch.randn(10, 32),
    "module.fc.bias": torch.randn(10),
    "module.fc1.weight": torch.randn(6, 16),
    "module.attn.qkv.weight": torch.randn(12, 4),
    "module.gru.weight_ih": torch.randn(9, 5),
    "module.a.weight": torch.randn(2, 3),
    "module.b.weight": torch.randn(4, 3),
    "module.half.weight": torch.randn(3, 2),
}
SKELETON = {
    "conv1/kernel:0": np.zeros((3, 3, 3, 8), np.float32),
    "conv1/bias:0": np.zeros((8,), np.float32),
    "fc/weights:0": np.zeros((32, 10), np.float32),
    "fc/biases:0": np.zeros((10,), np.float32),
    "fc1/kernel:0": np.zeros((16, 6), np.float32),
    "attn/q/kernel:0": np.zeros((4, 4), np.float32),
    "attn/k/kernel:0": np.zeros((4, 4), np.float32),
    "attn/v/kernel:0": np.zeros((4, 4), np.float32),
    "gru/kernel:0": np.zeros((5, 9), np.float32),
    "fused/kernel:0": np.zeros((3, 6), np.float32),
    "half/kernel:0": np.zeros((2, 3), np.float16),
    "global_step": np.zeros((), np.int64),
}

# The lines of RULES, for exact file:line checks.
LINE = {text: i + 1 for i, text in enumerate(RULES.splitlines())}


def ln(fragment):
    """1-based line of the first line of RULES holding fragment."""
    return next(i + 1 for i, t in enumerate(RULES.splitlines()) if fragment in t)


def write(name, text):
    path = R.path(name)
    with open(path, "w") as f:
        f.write(text)
    return path


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


SRC = R.path("src.pth")
SKEL = R.path("skel.npz")
torch.save(SOURCE, SRC)
np.savez(SKEL, **SKELETON)
RULES_PATH = write("map.yaml", RULES)
HASHES = {p: sha(p) for p in (SRC, SKEL)}

TORCH_DT = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
            "float64": torch.float64}


def replay(ops, tensors):
    """Run a JSON op chain with torch (the semantics the man page gives)."""
    x = tensors[0] if len(tensors) == 1 else None
    for op in ops:
        if op == "transpose":
            x = x.permute(*reversed(range(x.dim())))
            continue
        (kind, arg), = op.items()
        if kind == "concat":
            x = torch.cat(tensors, dim=arg["axis"])
        elif kind == "permute":
            x = x.permute(*arg)
        elif kind == "reshape":
            x = x.contiguous().reshape(*arg)
        elif kind == "cast":
            x = x.to(TORCH_DT[arg])
        elif kind == "take" and "start" in arg:
            x = x.narrow(arg["axis"], arg["start"], arg["length"])
        elif kind == "take":
            x = torch.chunk(x, arg["count"], dim=arg["axis"])[arg["index"]]
        elif kind == "chunks":
            parts = torch.chunk(x, len(arg["order"]), dim=arg["axis"])
            x = torch.cat([parts[i] for i in arg["order"]], dim=arg["axis"])
        else:
            raise AssertionError(f"unknown op {kind}")
        if x is None:
            raise AssertionError("chain does not start with a tensor")
    return x if x is not None else tensors[0]


def plan_json(*extra, code=0):
    p = run("plan", "--json", "-r", RULES_PATH, *extra, check=False)
    assert p.returncode == code, (p.returncode, p.stderr)
    return json.loads(p.stdout), p.stderr


def test_plan_json_exact():
    got, err = plan_json(SRC, SKEL)
    assert err == "", err
    exp_ops = {
        "conv1/kernel:0": [{"permute": [2, 3, 1, 0]}],
        "fc/weights:0": ["transpose"],
        "fc1/kernel:0": [{"reshape": [6, 4, 2, 2]}, {"permute": [2, 3, 1, 0]}, {"reshape": [-1, 6]}],
        "attn/q/kernel:0": ["transpose", {"take": {"axis": 1, "count": 3, "index": 0}}],
        "attn/k/kernel:0": ["transpose", {"take": {"axis": 1, "count": 3, "index": 1}}],
        "attn/v/kernel:0": ["transpose", {"take": {"axis": 1, "count": 3, "index": 2}}],
        "gru/kernel:0": [{"chunks": {"axis": 0, "order": [1, 0, 2]}}, "transpose"],
        "fused/kernel:0": [{"concat": {"axis": 0}}, "transpose"],
        "half/kernel:0": ["transpose", {"cast": "float16"}],
    }
    exp_src = {
        "conv1/kernel:0": ["module.conv1.weight"], "conv1/bias:0": ["module.conv1.bias"],
        "fc/weights:0": ["module.fc.weight"], "fc/biases:0": ["module.fc.bias"],
        "fc1/kernel:0": ["module.fc1.weight"],
        "attn/q/kernel:0": ["module.attn.qkv.weight"], "attn/k/kernel:0": ["module.attn.qkv.weight"],
        "attn/v/kernel:0": ["module.attn.qkv.weight"], "gru/kernel:0": ["module.gru.weight_ih"],
        "fused/kernel:0": ["module.a.weight", "module.b.weight"],
        "half/kernel:0": ["module.half.weight"], "global_step": [],
    }
    exp_transform = {
        "conv1/kernel:0": LINE["  - rank: 4"], "fc/weights:0": LINE["  - rank: 2"],
        "fc1/kernel:0": LINE["  - target: '^fc1/'"],
        "attn/q/kernel:0": LINE["  - target: '^attn/q/'"],
        "attn/k/kernel:0": LINE["  - target: '^attn/k/'"],
        "attn/v/kernel:0": LINE["  - target: '^attn/v/'"],
        "gru/kernel:0": LINE["  - target: '^gru/'"], "fused/kernel:0": LINE["  - target: '^fused/'"],
        "half/kernel:0": LINE["  - target: '^half/'"],
    }
    expected = []
    for name, arr in SKELETON.items():
        srcs = exp_src[name]
        e = {"target": name, "sources": srcs, "ops": exp_ops.get(name, []),
             "source_shape": list(SOURCE[srcs[0]].shape) if srcs else None,
             "target_shape": list(arr.shape), "dtype": graftlib.NUMPY_DTYPE_NAMES[str(arr.dtype)]}
        if srcs:
            e["source_dtype"] = graftlib.TORCH_DTYPE_NAMES[str(SOURCE[srcs[0]].dtype)]
        e["status"] = "ok" if srcs else "kept"
        if name in exp_transform:
            e["transform"] = f"{RULES_PATH}:{exp_transform[name]}"
        key = f"  '{name}': "
        pair_line = [i + 1 for i, t in enumerate(RULES.splitlines()) if t.startswith(key)]
        if pair_line:
            e["pair"] = f"{RULES_PATH}:{pair_line[0]}"
        expected.append(e)
    want = {"pairs": expected, "missing": [], "unused": [], "warnings": [], "problems": [],
            "errors": 0}
    if got != want:
        for a, b in zip(got["pairs"], want["pairs"]):
            if a != b:
                print("got ", a, "\nwant", b)
        raise AssertionError("plan --json differs")


def test_plan_ops_replayed_with_torch():
    got, _ = plan_json(SRC, SKEL)
    for e in got["pairs"]:
        if not e["sources"]:
            continue
        out = replay(e["ops"], [SOURCE[s] for s in e["sources"]])
        arr = SKELETON[e["target"]]
        assert list(out.shape) == list(arr.shape), (e["target"], out.shape, arr.shape)
        assert graftlib.TORCH_DTYPE_NAMES[str(out.dtype)] == \
            graftlib.NUMPY_DTYPE_NAMES[str(arr.dtype)], e["target"]


def test_plan_reverse_inverts_chains():
    # the same rules, the other way: the npz is the source, the .pth the skeleton
    got, err = plan_json("--reverse", SKEL, SRC)
    by = {e["target"]: e for e in got["pairs"]}
    assert by["module.conv1.weight"]["ops"] == [{"permute": [3, 2, 0, 1]}], by["module.conv1.weight"]
    assert by["module.fc1.weight"]["ops"] == [
        {"reshape": [2, 2, 4, 6]}, {"permute": [3, 2, 0, 1]}, {"reshape": [6, 16]}]
    qkv = by["module.attn.qkv.weight"]
    assert qkv["sources"] == ["attn/q/kernel:0", "attn/k/kernel:0", "attn/v/kernel:0"], qkv
    assert qkv["ops"] == [{"concat": {"axis": 1}}, "transpose"], qkv
    assert by["module.gru.weight_ih"]["ops"] == ["transpose", {"chunks": {"axis": 0, "order": [1, 0, 2]}}]
    assert by["module.bn.num_batches_tracked"]["status"] == "kept"
    assert got["errors"] == 0 and got["unused"] == [], got
    # every inverted chain brings the skeleton tensors back to the source's shapes
    for e in got["pairs"]:
        if e["status"] != "ok" or not e["sources"]:
            continue
        ins = [torch.from_numpy(SKELETON[s]).float() for s in e["sources"]]
        out = replay([o for o in e["ops"] if not (isinstance(o, dict) and "cast" in o)], ins)
        assert list(out.shape) == list(SOURCE[e["target"]].shape), e
    # a fused forward target split back: each source gets its rows
    assert by["module.a.weight"]["sources"] == ["fused/kernel:0"]
    assert by["module.a.weight"]["ops"] == ["transpose", {"take": {"axis": 0, "start": 0, "length": 2}}]
    assert by["module.b.weight"]["ops"] == ["transpose", {"take": {"axis": 0, "start": 2, "length": 4}}]


def test_explain_text():
    p = run("explain", "-r", RULES_PATH, SRC, SKEL, "fc1/kernel:0")
    R_ = RULES_PATH
    SLASH = ln("match: '/'")
    want = (
        "target 'fc1/kernel:0' [16,6] float32\n"
        f"  rename {R_}:{ln('(weights|kernel):0$')}: 'fc1/kernel:0' -> 'fc1/weight'\n"
        f"  rename {R_}:{SLASH}: 'fc1/weight' -> 'fc1.weight'\n"
        "  key 'fc1.weight'\n"
        "source 'module.fc1.weight' [6,16] float32\n"
        f"  rename {R_}:{ln('^module')}: 'module.fc1.weight' -> 'fc1.weight'\n"
        "  key 'fc1.weight'\n"
        "pair: by renamed name 'fc1.weight'\n"
        f"transform: {R_}:{ln('^fc1/')}\n"
        "  input [6,16] float32\n"
        f"  1. {{\"reshape\": [6, 4, 2, 2]}} ({R_}:{ln('reshape: [6, 4')}) -> [6,4,2,2] float32\n"
        f"  2. {{\"permute\": [2, 3, 1, 0]}} ({R_}:{ln('OCHW->HWCO')}) -> [2,2,4,6] float32\n"
        f"  3. {{\"reshape\": [-1, 6]}} ({R_}:{ln('reshape: [-1, 6]')}) -> [16,6] float32\n"
        "status: ok\n"
        # issue 12: neither file shows the Flatten, so the reorder gets the benefit of the doubt
        "layout:\n"
        "  target dense: (in,out), convention, after a Flatten of HWC (C=4, S=4)\n"
        "  source dense: (out,in), convention, after a Flatten of CHW (C=4, S=4)\n"
        "  check: the layouts call for (out,in) in=CHW(C=4, S=4) -> (in,out) in=HWC(C=4, S=4); "
        "the ops give (out,in) in=CHW(C=4, S=4) -> (in,out) in=HWC(C=4, S=4): "
        "agrees; read as the flatten reorder CHW -> HWC (C=4)\n")
    assert p.stdout == want, "\n" + p.stdout + "\n---want---\n" + want


def test_explain_names_a_source_tensor():
    p = run("explain", "-r", RULES_PATH, SRC, SKEL, "module.fc.weight", check=False)
    assert p.returncode == 2, p.returncode
    assert p.stderr == ("graft: 'module.fc.weight' is a source tensor (renamed 'fc.weight'); "
                        "it feeds target 'fc/weights:0'\n"), p.stderr


def test_explain_reverse_joins_the_pieces():
    p = run("explain", "--reverse", "-r", RULES_PATH, SKEL, SRC, "module.attn.qkv.weight")
    lines = p.stdout.splitlines()
    assert [l for l in lines if l.startswith("source ")] == [
        "source 'attn/q/kernel:0' [4,4] float32", "source 'attn/k/kernel:0' [4,4] float32",
        "source 'attn/v/kernel:0' [4,4] float32"], p.stdout
    assert f"  1. {{\"concat\": {{\"axis\": 1}}}} ({RULES_PATH}:{ln('index: 0')}) -> [4,12] float32" \
        in lines, p.stdout
    assert lines[lines.index("layout:") - 1] == "status: ok", p.stdout


def test_explain_missing_names_the_nearest_source():
    rp, sp, kp = variant("near", skel={**SKELETON, "conv1/kernal:0": np.zeros(2, np.float32)})
    p = run("explain", "-r", rp, sp, kp, "conv1/kernal:0", check=False)
    assert p.returncode == 1, p.returncode
    assert "pair: none (no source renames to 'conv1.kernal:0'; nearest is 'conv1.weight' from " \
        "'module.conv1.weight')\n" in p.stdout, p.stdout
    assert p.stdout.split("layout:\n")[0].endswith(
        "status: missing\n  'conv1/kernal:0' (renamed 'conv1.kernal:0'): no source tensor\n"), p.stdout


def variant(name, rules=RULES, src=None, skel=None):
    """Write a rules / model variant; returns (rules, source, skeleton) paths."""
    rp = write(name + ".yaml", rules)
    sp, kp = SRC, SKEL
    if src is not None:
        sp = R.path(name + ".pth")
        torch.save(src, sp)
    if skel is not None:
        kp = R.path(name + ".npz")
        np.savez(kp, **skel)
    return rp, sp, kp


def test_missing_target():
    rp, sp, kp = variant("missing", skel={**SKELETON, "extra/kernel:0": np.zeros(2, np.float32)})
    p = run("plan", "-r", rp, sp, kp, check=False)
    assert p.returncode == 1, p.returncode
    # each finding once: the reason under its entry, on stdout
    assert "missing  extra/kernel:0 [2] float32\n         'extra/kernel:0' (renamed 'extra.weight'): " \
        "no source tensor\n" in p.stdout, p.stdout
    assert p.stderr == "", p.stderr


def test_unused_source_under_policy_error():
    rp, sp, kp = variant("unused", RULES.replace("unused: warn", "unused: error"),
                         src={**SOURCE, "module.extra": torch.zeros(3)})
    got = json.loads(run("plan", "--json", "-r", rp, sp, kp, check=False).stdout)
    assert got["unused"] == ["module.extra"] and got["errors"] == 1, got
    p = run("plan", "-r", rp, sp, kp, check=False)
    assert p.returncode == 1
    assert "error: 1 source tensor is not used (first 'module.extra'; policy unused: error)\n" \
        in p.stdout, p.stdout
    # under the default (warn) it is a warning and the plan is complete
    rp2, _, _ = variant("unused2")
    p = run("plan", "-r", rp2, sp, kp, check=False)
    assert p.returncode == 0, p.stderr
    assert "warning: 1 source tensor is not used" in p.stdout


def test_shape_mismatch_names_the_rule():
    rp, sp, kp = variant("mismatch", skel={**SKELETON, "fc/weights:0": np.zeros((10, 32), np.float32)})
    p = run("plan", "-r", rp, sp, kp, check=False)
    assert p.returncode == 1
    want = (f"         'module.fc.weight' [32,10] float32 after ops vs 'fc/weights:0' [10,32] float32 "
            f"in the skeleton (transform {rp}:{LINE['  - rank: 2']})\n")
    assert want in p.stdout, p.stdout


def test_op_on_wrong_rank():
    rules = RULES.replace("  - target: '^half/'\n    ops: [transpose, {cast: float16}]",
                          "  - target: '^half/'\n    ops:\n      - permute: OIHW->HWIO")
    rp, sp, kp = variant("rank", rules)
    line = rules.splitlines().index("      - permute: OIHW->HWIO") + 1
    p = run("plan", "-r", rp, sp, kp, check=False)
    assert p.returncode == 1
    assert f"         'half/kernel:0': {rp}:{line}: permute: " in p.stdout, p.stdout


def test_bad_regex_and_typo_key_exit_2():
    rp, sp, kp = variant("regex", RULES.replace("'^module\\.'", "'^module\\.(('"))
    for cmd in (["plan", "-r", rp, sp, kp], ["check", rp]):
        p = run(*cmd, check=False)
        assert p.returncode == 2, p.returncode
        assert p.stderr == f"graft: {rp}:5:15: bad regex '^module\\.((' at offset 11: " \
                           "missing closing parenthesis\n", p.stderr
        assert p.stdout == ""
    rp, sp, kp = variant("typo", RULES.replace("transforms:", "transfroms:"))
    p = run("check", rp, check=False)
    assert p.returncode == 2
    assert p.stderr.startswith(f"graft: {rp}:{LINE['transforms:']}:1: unknown key 'transfroms' "), p.stderr


def test_several_targets_warning():
    rules = "graft: 1\nrename:\n  target:\n    - {match: '^(enc|dec)/', to: ''}\n"
    rp, sp, kp = variant("tied", rules, src={"emb": torch.zeros(4, 2)},
                         skel={"enc/emb": np.zeros((4, 2), np.float32),
                               "dec/emb": np.zeros((4, 2), np.float32)})
    p = run("plan", "-r", rp, sp, kp, check=False)
    assert p.returncode == 0
    assert p.stderr == "", p.stderr
    assert ("warning: source 'emb' feeds 2 targets (first 'enc/emb') without "
            "take or an explicit pairs entry\n") in p.stdout, p.stdout


def test_check_command():
    p = run("check", RULES_PATH)
    assert p.stdout == f"{RULES_PATH}: ok: 1 source renames, 3 target renames, 5 pairs, " \
                       "9 transforms, 1+1 ignore patterns\n", p.stdout
    p = run("check", "--reverse", RULES_PATH, SKEL, SRC, check=False)
    assert p.returncode == 0, p.stderr
    # two target names that rename to one: not one to one
    rules = RULES.replace("    - {match: '/', to: '.'}", "    - {match: '/', to: '.'}\n"
                          "    - {match: '^(fc|conv1)\\.', to: 'x.'}")
    rp, _, _ = variant("notbijective", rules)
    p = run("check", "--reverse", rp, SKEL, SRC, check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "renames are not one to one: several target names become 'x.bias'" in p.stderr or \
        "renames are not one to one: several source names become 'x.bias'" in p.stderr, p.stderr


def test_inputs_unchanged():
    for path, digest in HASHES.items():
        assert sha(path) == digest, path


def test_select_reads_a_nested_checkpoint():
    nested = R.path("nested.pth")
    torch.save({"model": SOURCE, "optimizer": {"lr": torch.tensor(0.1)}, "epoch": 3}, nested)
    rp = write("select.yaml", RULES.replace("name: e2e", "select: model\nname: e2e"))
    got = json.loads(run("plan", "--json", "-r", rp, nested, SKEL).stdout)
    want, _ = plan_json(SRC, SKEL)
    strip = lambda d: [{k: v for k, v in e.items() if k not in ("transform", "pair")}
                       for e in d["pairs"]]
    assert strip(got) == strip(want) and got["errors"] == 0 and got["unused"] == [], got
    # without select the same file has no 'module.' names at the top
    p = run("plan", "--json", "-r", RULES_PATH, nested, SKEL, check=False)
    assert p.returncode == 1 and json.loads(p.stdout)["errors"] > 0


def test_identity_plan_without_rules():
    p = run("plan", "--json", SRC, SRC, check=False)
    got = json.loads(p.stdout)
    assert p.returncode == 0 and got["errors"] == 0
    assert [e["target"] for e in got["pairs"]] == list(SOURCE.keys())
    assert all(e["status"] == "ok" and e["ops"] == [] for e in got["pairs"])


for name, fn in list(globals().items()):
    if name.startswith("test_") and callable(fn):
        R.check(name, fn)
R.close()
