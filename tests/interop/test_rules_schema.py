"""schemas/graft-rules.schema.json against graft's own loader: every rules
file graft accepts (shipped rules/, the fuzz seeds, the man page examples)
must validate, and structural mistakes graft rejects must fail the schema too.
"""
import glob
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from graftlib import SOURCE_ROOT, Results, run  # noqa: E402

import jsonschema  # noqa: E402  (Debian: python3-jsonschema)
import yaml  # noqa: E402

R = Results()
with open(os.path.join(SOURCE_ROOT, "schemas", "graft-rules.schema.json")) as f:
    SCHEMA = json.load(f)
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)


def schema_errors(text):
    return [e.message for e in VALIDATOR.iter_errors(yaml.safe_load(text))]


def man_examples():
    """The YAML examples of man/graft-rules.5 (between .EX/.EE after '.\\" rules-example')."""
    path = os.path.join(SOURCE_ROOT, "man", "graft-rules.5")
    out, cur = [], None
    with open(path) as f:
        for line in f:
            if line.startswith('.\\" rules-example'):
                cur = []
            elif cur is not None and line.startswith(".EX"):
                continue
            elif cur is not None and line.startswith(".EE"):
                out.append("".join(cur).replace("\\(aq", "'").replace("\\e", "\\").replace("\\-", "-"))
                cur = None
            elif cur is not None:
                cur.append(line)
    return out


def accepted_files():
    files = sorted(glob.glob(os.path.join(SOURCE_ROOT, "rules", "**", "*.yaml"), recursive=True))
    # hand-written seeds only: fuzzer finds are not meant to be tidy (e.g. a plain
    # number where a string belongs, which graft reads as its text)
    files += sorted(p for p in glob.glob(os.path.join(SOURCE_ROOT, "tests", "fuzz", "corpora",
                                                      "rules", "*.yaml"))
                    if not os.path.basename(p).startswith("fuzz-"))
    return [p for p in files if run("check", p, check=False).returncode == 0]


def test_schema_is_draft7():
    jsonschema.Draft7Validator.check_schema(SCHEMA)


def test_files_graft_accepts_validate():
    files = accepted_files()
    assert len(files) >= 4, files
    for p in files:
        with open(p) as f:
            errs = schema_errors(f.read())
        assert not errs, (p, errs)


def test_man_page_examples_load_and_validate():
    examples = man_examples()
    assert len(examples) >= 3, len(examples)
    for i, text in enumerate(examples):
        path = R.path(f"man{i}.yaml")
        with open(path, "w") as f:
            f.write(text)
        p = run("check", path, check=False)
        assert p.returncode == 0, (text, p.stderr)
        assert not schema_errors(text), (text, schema_errors(text))


BAD = [
    "graft: 1\nrenmae: {}\n",
    "graft: 2\n",
    "name: x\n",
    "graft: 1\nrename:\n  source:\n    - {mtach: a, to: b}\n",
    "graft: 1\npairs: [a]\n",
    "graft: 1\ntransforms:\n  - rank: four\n    ops: []\n",
    "graft: 1\ntransforms:\n  - ops: [flip]\n",
    "graft: 1\ntransforms:\n  - ops: [{cast: float17}]\n",
    "graft: 1\ntransforms:\n  - ops: [{take: {axis: 0, count: 3}}]\n",
    "graft: 1\npolicy: {unused: keep}\n",
    "graft: 1\ntransforms:\n  - rank: 2\n",
    # 1.1 features in a 1.0 file, and malformed 1.1 ops
    "graft: 1\ntransforms:\n  - ops: [sum]\n",
    "graft: 1\nrename:\n  source:\n    - {match: '(\\d)', to: '${1+1}'}\n",
    "graft: 1\ntransforms:\n  - ops: []\n    mismatch: keep\n",
    "graft: 1\ntransforms:\n  - ops: [{take: {axis: 0, start: 1, length: 2}}]\n",
    "graft: 1.1\ntransforms:\n  - ops: [{fold_bn: {part: gamma, eps: 1}}]\n",
    "graft: 1.1\ntransforms:\n  - ops: [{fold_bn: {part: weight}}]\n",
    "graft: 1.1\ntransforms:\n  - ops: [{stack: {}}]\n",
    "graft: 1.1\ntransforms:\n  - ops: [{pad: {axis: 0, to: -1}}]\n",
    "graft: 1.1\ntransforms:\n  - ops: [{slice: {axis: 0, start: 1}}]\n",
    "graft: 1.1\ntransforms:\n  - ops: [{scale: {mul: x}}]\n",
    "graft: 1.1\ntransforms:\n  - ops: []\n    mismatch: maybe\n",
    "graft: 1.2\n",
]


def table_ops():
    """The op table as graft reports it: the ops a 1.1 file may use."""
    with open(R.path("ops.yaml"), "w") as f:
        f.write("graft: 1.1\ntransforms:\n  - ops: [nosuchop]\n")
    err = run("check", R.path("ops.yaml"), check=False).stderr
    return err.split("expected one of: ")[1].rstrip(")\n").split(", ")


def test_every_op_of_the_table_is_in_the_schema_and_the_man_page():
    ops = table_ops()
    assert len(ops) >= 14 and "fold_bn" in ops, ops
    names = set()
    for alt in SCHEMA["definitions"]["op"]["anyOf"] + SCHEMA["definitions"]["op10"]["oneOf"]:
        names |= set(alt.get("properties", {})) | ({alt["const"]} if "const" in alt else set())
    assert set(ops) <= names, set(ops) - names
    with open(os.path.join(SOURCE_ROOT, "man", "graft-rules.5")) as f:
        man = f.read()
    import re
    for op in ops:  # an item of the OPS section: .B sum, .BI "scale: {mul: " ...
        assert re.search(rf'^\.BI? "?{op}\b', man.split(".SH OPS")[1].split(".SH ")[0], re.M), op


def test_structural_mistakes_fail_both():
    for i, text in enumerate(BAD):
        path = R.path(f"bad{i}.yaml")
        with open(path, "w") as f:
            f.write(text)
        p = run("check", path, check=False)
        assert p.returncode == 2, (text, p.returncode)
        assert schema_errors(text), text


for name, fn in list(globals().items()):
    if name.startswith("test_") and callable(fn):
        R.check(name, fn)
R.close()
