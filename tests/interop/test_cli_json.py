"""Every command's --json against its schema (schemas/cli/<command>.schema.json)
and against what NumPy, PyTorch and the files themselves say.

Run with /usr/bin/python3 (python3-jsonschema validates, NumPy and torch are
the oracles of the values the reports carry).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import graftlib  # noqa: E402

import jsonschema  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

R = graftlib.Results()
run = graftlib.run
SCHEMAS = os.path.join(graftlib.SOURCE_ROOT, "schemas", "cli")
FX = graftlib.FIXTURES
COMMANDS = ["ls", "plan", "explain", "check", "apply", "freeze", "diff", "rules", "convert"]


def valid(command, text):
    """Parse text as JSON and validate it against the command's schema."""
    with open(os.path.join(SCHEMAS, command + ".schema.json")) as f:
        schema = json.load(f)
    doc = json.loads(text)
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(doc, schema, cls=jsonschema.Draft7Validator)
    return doc


SRC = {"enc.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
       "enc.bias": np.array([1, 2, 3], np.float32),
       "head.weight": np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4),
       "epoch_count": np.array([7], np.int64)}
RULES = """graft: 1
rename:
  source:
    - {match: '^enc\\.', to: 'encoder/'}
  target:
    - {match: '/kernel$', to: '/weight'}
transforms:
  - target: 'kernel$'
    ops: [transpose]
ignore:
  source: ['^epoch_count$']
"""


def files():
    src = R.path("src.pth")
    torch.save({k: torch.from_numpy(v) for k, v in SRC.items()}, src)
    skel = R.path("skel.npz")
    np.savez(skel, **{"encoder/kernel": np.zeros((4, 3), np.float32),
                      "encoder/bias": np.zeros(3, np.float32),
                      "head.weight": np.zeros((2, 4), np.float32)})
    rules = R.path("r.yaml")
    with open(rules, "w") as f:
        f.write(RULES)
    return src, skel, rules


def check_every_help_shows_json():
    for c in COMMANDS:
        out = run(c, "--help").stdout
        assert "--json" in out, (c, out)
        assert "schemas/cli/" + c + ".schema.json" in out, (c, out)
    # completion prints scripts, and says so
    assert "no --json" in run("completion", "--help").stdout


def check_ls():
    src, _, _ = files()
    doc = valid("ls", run("ls", "--json", src).stdout)
    assert [t["name"] for t in doc] == list(SRC), doc
    for t in doc:
        assert t["shape"] == list(SRC[t["name"]].shape)
        assert t["sha256"] == graftlib.sha256_of_array(SRC[t["name"]])


def check_plan_explain_check():
    src, skel, rules = files()
    plan = valid("plan", run("plan", "--json", "-r", rules, src, skel).stdout)
    by = {p["target"]: p for p in plan["pairs"]}
    assert by["encoder/kernel"]["sources"] == ["enc.weight"] and by["encoder/kernel"]["ops"] == ["transpose"]
    ex = valid("explain", run("explain", "--json", "-r", rules, src, skel, "encoder/kernel").stdout)
    assert ex["target"]["name"] == "encoder/kernel" and ex["target"]["key"] == "encoder/weight", ex
    assert [s["name"] for s in ex["sources"]] == ["enc.weight"]
    assert ex["sources"][0]["renames"][0]["before"] == "enc.weight"
    assert ex["sources"][0]["renames"][0]["rule"] == f"{rules}:4", ex["sources"][0]
    assert ex["ops"][0]["op"] == "transpose" and ex["ops"][0]["result"]["shape"] == [4, 3], ex["ops"]
    assert ex["transform"] == f"{rules}:8" and ex["status"] == "ok", ex
    # the text trace says the same
    text = run("explain", "-r", rules, src, skel, "encoder/kernel").stdout
    assert f"transform: {rules}:8" in text, text
    # check: alone, on two models, and a file that does not load
    alone = valid("check", run("check", "--json", rules).stdout)
    assert alone["valid"] and alone["counts"]["source_renames"] == 1 and alone["findings"] == [], alone
    both = valid("check", run("check", "--json", rules, src, skel).stdout)
    assert both["one_to_one"] is True and both["targets"] == 3 and both["sources"] == 4, both
    bad = R.path("bad.yaml")
    with open(bad, "w") as f:
        f.write("graft: 1\nrenamed: {}\n")
    p = run("check", "--json", bad, check=False)
    assert p.returncode == 2, p
    doc = valid("check", p.stdout)
    assert not doc["valid"] and doc["findings"][0]["kind"] == "load", doc
    assert "unknown key 'renamed'" in doc["findings"][0]["message"], doc
    # a plan that is not one to one: two targets from one source
    skel2 = R.path("skel2.npz")
    np.savez(skel2, **{"encoder/kernel": np.zeros((4, 3), np.float32), "encoder/bias": np.zeros(3, np.float32),
                       "head.weight": np.zeros((2, 4), np.float32), "x/head.weight": np.zeros((2, 4), np.float32)})
    r2 = R.path("r2.yaml")
    with open(r2, "w") as f:
        f.write(RULES.replace("  target:\n", "  target:\n    - {match: '^x/', to: ''}\n"))
    p = run("check", "--json", r2, src, skel2, check=False)
    doc = valid("check", p.stdout)
    assert p.returncode == 1 and doc["one_to_one"] is False and doc["problems"] >= 1, (p.returncode, doc)
    assert any(f["kind"] == "one-to-one" for f in doc["findings"]), doc


def check_apply_and_diff():
    src, skel, rules = files()
    out = R.path("out.npz")
    doc = valid("apply", run("apply", "--json", "-r", rules, src, skel, "-o", out).stdout)
    assert doc["output"] == out and doc["files"] == [out] and doc["format"] == "npz", doc
    assert doc["source"] == {"path": src, "format": "pytorch-zip"}, doc
    assert doc["transplanted"] == 3 and doc["kept"] == 0 and doc["rules"] == rules, doc
    assert {e["target"]: e["from"] for e in doc["entries"]} == {
        "encoder/kernel": ["enc.weight"], "encoder/bias": ["enc.bias"], "head.weight": ["head.weight"]}
    got = np.load(out)
    assert np.array_equal(got["encoder/kernel"], SRC["enc.weight"].T)
    # diff: exact after the apply
    d = valid("diff", run("diff", "--json", "-r", rules, src, out).stdout)
    assert d["summary"]["compared"] == 3 and d["summary"]["ok"], d
    # perturb one tensor of B: max_abs and max_rel are numpy's
    b = dict(got)
    b["encoder/kernel"] = b["encoder/kernel"] * np.float32(1.001)
    bad = R.path("b.npz")
    np.savez(bad, **b)
    p = run("diff", "--json", "-r", rules, src, bad, check=False)
    d = valid("diff", p.stdout)
    assert p.returncode == 1 and d["summary"]["over"] == 1 and not d["summary"]["ok"], d
    e = {t["name"]: t for t in d["tensors"]}["encoder/kernel"]
    a64, b64 = SRC["enc.weight"].T.astype(np.float64), b["encoder/kernel"].astype(np.float64)
    assert e["status"] == "over" and e["source"] == "enc.weight", e
    assert e["max_abs"] == float(np.max(np.abs(a64 - b64))), (e, np.max(np.abs(a64 - b64)))
    nz = b64 != 0
    assert abs(e["max_rel"] - float(np.max(np.abs(a64 - b64)[nz] / np.abs(b64[nz])))) < 1e-12, e
    assert e["over"] == int(np.sum(~np.isclose(a64, b64, rtol=0, atol=0))), e


def check_tf_checkpoint_apply_names_state_file():
    d = os.path.join(FX, "tf_ckpt_v2", "tf2onnx_regression_ckpt")
    src = R.path("regr.safetensors")
    run("convert", os.path.join(d, "model.index"), "-o", src)
    outdir = R.path("ckpt_out")
    os.mkdir(outdir)
    out = os.path.join(outdir, "trained")
    doc = valid("apply", run("apply", "--json", src, os.path.join(d, "model.index"), "-o", out).stdout)
    want = [out + ".index", out + ".data-00000-of-00001", os.path.join(outdir, "checkpoint")]
    assert doc["files"] == want and doc["format"] == "tf-checkpoint", doc
    for f in want:
        assert os.path.isfile(f), f
    with open(os.path.join(outdir, "checkpoint")) as f:
        assert 'model_checkpoint_path: "trained"' in f.read()
    # the text output says so too
    out2 = os.path.join(outdir, "again")
    text = run("apply", src, os.path.join(d, "model.index"), "-o", out2).stdout
    assert f"{outdir}/checkpoint: TensorFlow's checkpoint state file" in text, text
    assert "again.index" in text, text


def check_freeze_convert_rules():
    d = os.path.join(FX, "tf_ckpt_v2", "tf2onnx_regression_ckpt")
    out = R.path("frozen.pb")
    doc = valid("freeze", run("freeze", "--json", "--graph", os.path.join(d, "model.meta"), "--checkpoint",
                              os.path.join(d, "model.index"), "--outputs", "pred", "-o", out).stdout)
    assert doc["output"] == out and doc["outputs"] == ["pred"] and doc["frozen"] == 2, doc
    assert os.path.getsize(out) > 0
    src, _, _ = files()
    conv = R.path("conv.safetensors")
    p = run("convert", "--json", src, "-o", conv)
    doc = valid("convert", p.stdout)
    assert doc["tensors"] == len(SRC) and doc["format"] == "safetensors" and doc["output"] == conv, doc
    assert doc["bytes"] == sum(v.nbytes for v in SRC.values()), doc
    assert [t["name"] for t in graftlib.ls_json(conv)] == sorted(SRC) or \
        sorted(t["name"] for t in graftlib.ls_json(conv)) == sorted(SRC)
    lib = valid("rules", run("rules", "--json").stdout)
    names = {f["name"] for f in lib["files"]}
    assert "torch-to-keras/resnet18" in names, names
    text_names = {line.split()[0] for line in run("rules").stdout.splitlines() if not line.startswith(" ")}
    assert names == text_names, (names ^ text_names)
    sample = os.path.join(graftlib.SOURCE_ROOT, "samples")
    m = valid("rules", run("rules", "--json", "--match", os.path.join(sample, "resnet18_narrow.pth"),
                           os.path.join(sample, "resnet18_narrow_keras2.h5")).stdout)
    assert m["matches"][0]["name"] == "torch-to-keras/resnet18" and m["files"] == len(names), m
    assert m["matches"][0]["filled"] == m["matches"][0]["targets"] == 102, m


R.check("every command's --help shows --json and its schema", check_every_help_shows_json)
R.check("ls --json", check_ls)
R.check("plan, explain and check --json", check_plan_explain_check)
R.check("apply and diff --json, diff values are numpy's", check_apply_and_diff)
R.check("apply into a TF checkpoint lists and names the state file",
        check_tf_checkpoint_apply_names_state_file)
R.check("freeze, convert and rules --json", check_freeze_convert_rules)
R.close()
