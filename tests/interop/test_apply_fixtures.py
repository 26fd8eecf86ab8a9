"""graft apply into every real fixture file graft reads, as its own skeleton.

For each file of $GRAFT_FIXTURES that `graft ls` opens and whose format graft
can write: `graft apply -o OUT FILE FILE` (identity pairing) must succeed,
leave FILE byte-identical, and give an OUT in the same format whose
`graft ls --json` (names, order, dtypes, shapes, sha256 of every tensor)
equals FILE's; `graft diff FILE OUT` must exit 0.  This runs every writer
over files written by the real frameworks.  Run with /usr/bin/python3.
"""
import hashlib
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import graftlib  # noqa: E402

R = graftlib.Results()
SOURCE_ONLY = {"tf_ckpt_v1"}  # formats graft reads but cannot write
GRAFT = graftlib.GRAFT


def sha_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def graft(*args):
    p = subprocess.run([GRAFT, *map(str, args)], capture_output=True, text=True)
    # every fixture plans clean (plan prints its findings on stdout)
    seen = p.stderr + (p.stdout if args and args[0] == "plan" else "")
    assert graftlib.LAYOUT_FINDING not in seen, seen
    return p


def fixture_files():
    for root, _, files in sorted(os.walk(graftlib.FIXTURES)):
        for name in sorted(files):
            if not name.endswith(".md"):
                yield os.path.join(root, name)


def round_trip(path, out):
    before = sha_file(path)
    want = json.loads(graftlib.run("ls", "--json", path).stdout)
    p = graft("apply", "-o", out, path, path)
    assert p.returncode == 0, f"apply exited {p.returncode}: {p.stderr.strip()}"
    assert sha_file(path) == before, "the fixture changed"
    got = json.loads(graftlib.run("ls", "--json", out).stdout)
    assert [t["name"] for t in got] == [t["name"] for t in want], "names or order differ"
    for g, w in zip(got, want):
        assert g == w, f"tensor {w['name']}: {g} != {w}"
    p = graft("diff", path, out)
    assert p.returncode == 0, f"diff exited {p.returncode}: {p.stdout[-300:]} {p.stderr}"


def main():
    if not os.path.isdir(graftlib.FIXTURES):
        raise SystemExit(f"no fixtures at {graftlib.FIXTURES}")
    seen = set()
    for path in fixture_files():
        if graft("ls", path).returncode != 0:
            continue  # not a model file graft reads on its own (a data shard, a .meta...)
        rel = os.path.relpath(path, graftlib.FIXTURES)
        if rel.split(os.sep)[0] in SOURCE_ONLY:
            continue
        folder = R.path(os.path.dirname(rel).replace(os.sep, "_"))
        os.makedirs(folder, exist_ok=True)
        out = os.path.join(folder, os.path.basename(path))  # same name: formats probed by name
        seen.add(rel.split(os.sep)[0])
        R.check(f"apply into {rel}", round_trip, path, out)
    # Every format with a writer must have been exercised.
    for folder in ("pytorch_zip", "safetensors", "npz", "onnx", "keras2_h5", "keras3",
                   "savedmodel", "tf_ckpt_v2", "tflite"):
        R.check(f"fixtures of {folder} were found", found, folder, seen)


def found(folder, seen):
    assert folder in seen, f"no fixture of {folder} opened"


main()
R.close()
