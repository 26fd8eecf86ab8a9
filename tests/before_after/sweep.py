#!/usr/bin/python3
"""Drive $GRAFT (graft_twice.py) over every fixture, sample and shipped rules
file: ls --json, ls --sha256, plan --json and apply of each model into
itself, apply --manifest of the samples, check of each rules file.  The
comparison itself is done by graft_twice.py."""
import os
import subprocess
import sys
import tempfile

GRAFT = os.environ["GRAFT"]
ROOT = os.environ["GRAFT_SOURCE_ROOT"]
FIX = os.environ["GRAFT_FIXTURES"]


def g(*args):
    subprocess.run([GRAFT, *args], capture_output=True)


def models():
    out = []
    for base in (FIX, os.path.join(ROOT, "samples")):
        for root, dirs, files in os.walk(base):
            if "corrupt" in root.split(os.sep) or "gen" in root.split(os.sep):
                continue
            if "saved_model.pb" in files:
                out.append(root)
            for f in files:
                if f.endswith((".md", ".json", ".pbtxt", ".py", ".txt")) or ".data-" in f:
                    continue
                out.append(os.path.join(root, f))
    return sorted(out)


def main():
    tmp = tempfile.mkdtemp(prefix="graft-before-after-")
    for i, m in enumerate(models()):
        base = os.path.basename(m.rstrip("/"))
        ext = os.path.splitext(base)[1] if os.path.isfile(m) else ""
        out = os.path.join(tmp, f"{i}{ext}")
        g("ls", "--json", m)
        g("ls", "--sha256", m)
        g("plan", "--json", m, m)
        g("apply", "-q", "-o", out, m, m)
        g("apply", "-q", "-o", out + ".m" + ext, "--manifest", out + ".json", m, m)
    for root, _, files in os.walk(os.path.join(ROOT, "rules")):
        for f in files:
            g("check", os.path.join(root, f))
    r = os.path.join(ROOT, "rules", "torch-to-keras", "resnet18.yaml")
    pth = os.path.join(ROOT, "samples", "resnet18_narrow.pth")
    h5 = os.path.join(ROOT, "samples", "resnet18_narrow_keras2.h5")
    g("plan", "--json", "-r", r, pth, h5)
    g("apply", "-q", "-r", r, "-o", os.path.join(tmp, "r.h5"), "--manifest", os.path.join(tmp, "r.json"), pth, h5)
    g("plan", "--json", "--reverse", "-r", r, h5, pth)
    g("apply", "-q", "--reverse", "-r", r, "-o", os.path.join(tmp, "rr.pth"), h5, pth)
    g("diff", "-r", r, pth, os.path.join(tmp, "r.h5"))
    g("explain", "-r", r, pth, h5, "conv1/kernel:0")
    g("check", "--reverse", r, h5, pth)


main()
