"""The command line as a new user meets it (issue 20's polish list): each item
checked on real files, with NumPy / PyTorch as the oracles where values count.
Run with /usr/bin/python3.
"""
import os
import pty
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import graftlib  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

R = graftlib.Results()
run = graftlib.run
FX = graftlib.FIXTURES
MAN = os.path.join(graftlib.SOURCE_ROOT, "man", "graft.1")


def man_text():
    """graft(1) as man renders it (roff escapes gone, lines joined)."""
    p = subprocess.run(["man", "-l", "-P", "cat", MAN], capture_output=True, text=True,
                       env={**os.environ, "MANWIDTH": "2000", "LANG": "C.UTF-8"})
    assert p.returncode == 0, p.stderr
    return " ".join(p.stdout.replace("\u2010", "-").split())


def pair():
    src = R.path("a.npz")
    np.savez(src, w=np.ones((2, 3), np.float32), b=np.arange(3, dtype=np.float32))
    skel = R.path("k.npz")
    np.savez(skel, w=np.zeros((2, 3), np.float32), b=np.zeros(3, np.float32))
    return src, skel


def check_help_lists_version():
    out = run("--help").stdout
    assert "--version" in out and "--help" in out, out
    assert run("--version").stdout.startswith("graft ")


def check_no_clobber():
    src, skel = pair()
    out = R.path("out.npz")
    with open(out, "wb") as f:
        f.write(b"precious")
    p = run("apply", "--no-clobber", src, skel, "-o", out, check=False)
    assert p.returncode == 2 and "exists and --no-clobber is given" in p.stderr, p
    with open(out, "rb") as f:
        assert f.read() == b"precious"
    conv = R.path("c.safetensors")
    with open(conv, "wb") as f:
        f.write(b"precious")
    p = run("convert", "--no-clobber", src, "-o", conv, check=False)
    assert p.returncode == 2 and conv in p.stderr, p
    with open(conv, "rb") as f:
        assert f.read() == b"precious"
    d = os.path.join(FX, "tf_ckpt_v2", "tf2onnx_regression_ckpt")
    pb = R.path("f.pb")
    with open(pb, "wb") as f:
        f.write(b"precious")
    p = run("freeze", "--no-clobber", "--graph", os.path.join(d, "model.meta"), "--checkpoint",
            os.path.join(d, "model.index"), "--outputs", "pred", "-o", pb, check=False)
    assert p.returncode == 2 and "--no-clobber" in p.stderr, p
    with open(pb, "rb") as f:
        assert f.read() == b"precious"
    # a TF checkpoint output: the state file beside it counts too
    src2 = R.path("regr.npz")
    run("convert", os.path.join(d, "model.index"), "-o", src2)
    outdir = R.path("ck")
    os.mkdir(outdir)
    with open(os.path.join(outdir, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "other"\n')
    p = run("apply", "--no-clobber", src2, os.path.join(d, "model.index"), "-o",
            os.path.join(outdir, "m"), check=False)
    assert p.returncode == 2 and os.path.join(outdir, "checkpoint") in p.stderr, p
    assert not os.path.exists(os.path.join(outdir, "m.index"))
    # without it the file is replaced, and its values are numpy's
    run("apply", src, skel, "-o", out)
    assert np.array_equal(np.load(out)["b"], np.arange(3, dtype=np.float32))


def check_extension_warning():
    src, skel = pair()
    p = run("apply", src, skel, "-o", R.path("out.safetensors"))
    assert "warning: " in p.stderr and "extension is that of safetensors files, but a npz file" \
        in p.stderr, p.stderr
    p = run("apply", src, skel, "-o", R.path("fine.npz"))
    assert "extension" not in p.stderr, p.stderr
    p = run("convert", "--to", "npz", src, "-o", R.path("c.safetensors"))
    assert "extension is that of safetensors files, but a npz file" in p.stderr, p.stderr
    # what was written is the skeleton's format whatever the name: numpy reads it
    assert np.array_equal(np.load(R.path("out.safetensors"))["w"], np.ones((2, 3), np.float32))


def check_diff_rtol():
    a = np.array([1.0, 100.0, -50.0, 0.5], np.float32)
    b = a * np.float32(1.0005)
    pa, pb = R.path("da.npz"), R.path("db.npz")
    np.savez(pa, x=a)
    np.savez(pb, x=b)
    for atol, rtol in ((0, 0), (0, 1e-3), (0, 1e-4), (0.01, 1e-4), (0.03, 0)):
        want = bool(np.all(np.isclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol, atol=atol)))
        p = run("diff", "--atol", atol, "--rtol", rtol, pa, pb, check=False)
        assert p.returncode == (0 if want else 1), (atol, rtol, want, p.stdout)
    p = run("diff", "--rtol", "-1", pa, pb, check=False)
    assert p.returncode == 2 and "--rtol" in p.stderr, p


def check_diff_swapped_hint():
    src = R.path("sw.pth")
    torch.save({"enc.w": torch.ones(2, 2)}, src)
    tgt = R.path("sw.npz")
    np.savez(tgt, **{"encoder/w": np.ones((2, 2), np.float32)})
    rules = R.path("sw.yaml")
    with open(rules, "w") as f:
        f.write("graft: 1\nrename:\n  source:\n    - {match: '^enc\\.', to: 'encoder/'}\n")
    assert run("diff", "-r", rules, src, tgt).returncode == 0
    p = run("diff", "-r", rules, tgt, src, check=False)
    assert p.returncode == 1 and "0 compared" in p.stdout, p.stdout
    assert "A and B look swapped" in p.stdout and f"graft diff -r {rules} {src} {tgt}" in p.stdout, p.stdout


def check_diff_proves_what():
    h = run("diff", "--help").stdout
    assert "does not prove the rules right" in h and "forward passes" in h, h
    m = man_text()
    assert "does not prove that the rules are right" in m, "man graft(1): diff -r"


def check_freeze_names_missing_option():
    d = os.path.join(FX, "tf_ckpt_v2", "tf2onnx_regression_ckpt")
    p = run("freeze", "--graph", os.path.join(d, "model.meta"), "--checkpoint",
            os.path.join(d, "model.index"), "-o", R.path("x.pb"), check=False)
    assert p.returncode == 2 and p.stderr.startswith("graft: freeze: --outputs NAME[,NAME] is required"), p.stderr
    p = run("freeze", "--outputs", "y", "-o", R.path("x.pb"), check=False)
    assert p.returncode == 2 and "--graph GRAPH is required" in p.stderr, p.stderr


def check_yaml_tab():
    r = R.path("tab.yaml")
    with open(r, "w") as f:
        f.write("graft: 1\nrename:\n  source:\n\t- {match: 'a', to: 'b'}\n")
    p = run("check", r, check=False)
    assert p.returncode == 2, p
    assert p.stderr == f"graft: {r}:4:1: tabs are not allowed for indentation (line 4, column 1); " \
                       "indent with spaces\n", p.stderr
    with open(r, "w") as f:
        f.write("graft: 1\nrename:\n  source:\n    - {match: 'a',\n \t to: 'b'}\n")
    p = run("check", r, check=False)
    assert p.returncode != 0 or "tabs" not in p.stderr  # a tab inside a flow mapping is legal YAML


def check_to_group_caught_by_check():
    src, skel = pair()
    r = R.path("grp.yaml")
    with open(r, "w") as f:
        f.write("graft: 1\nrename:\n  source:\n    - {match: '^(w)$', to: 'x${2}'}\n")
    p = run("check", r, check=False)
    assert p.returncode == 2 and p.stderr == f"graft: {r}:4:28: to: '${{2}}': the pattern '^(w)$' has no " \
        "such group (it has 1)\n", p.stderr
    with open(r, "w") as f:
        f.write("graft: 1\nrename:\n  source:\n    - {match: '^(?<n>w)$', to: '$n.$missing'}\n")
    p = run("check", r, check=False)
    assert p.returncode == 2 and "'$missing'" in p.stderr, p.stderr
    # references that exist, $$ and escapes stay fine, and rename as PCRE2 does
    with open(r, "w") as f:
        f.write("graft: 1\nrename:\n  source:\n    - {match: '^(?<n>w)$', to: '${n}_$1_$$2'}\n"
                "  target:\n    - {match: '^w$', to: 'w_w_$$2'}\n")
    assert run("check", r).returncode == 0
    assert run("plan", "-r", r, src, skel, check=False).stdout.startswith("ok       w [2,3] float32 <- w ")


def check_plan_findings_once():
    src, _ = pair()
    skel = R.path("k2.npz")
    np.savez(skel, w=np.zeros((3, 2), np.float32), c=np.zeros(1, np.float32))
    p = run("plan", src, skel, check=False)
    assert p.returncode == 1 and p.stderr == "", p.stderr
    lines = p.stdout.splitlines()
    for needle in ("after ops vs 'w' [3,2] float32", "'c' (renamed 'c'): no source tensor",
                   "1 source tensor is not used"):
        assert sum(needle in ln for ln in lines) == 1, (needle, p.stdout)
    assert lines[-1].startswith("2 targets: 0 ok"), lines
    p = run("plan", "--json", src, skel, check=False)
    assert p.stderr == "", p.stderr
    # on a terminal the summary comes first
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(graftlib.GRAFT, [graftlib.GRAFT, "plan", src, skel])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    first = out.decode().splitlines()[0]
    assert first.startswith("2 targets: 0 ok"), out


def check_rules_by_name():
    p = run("check", "torch-to-keras/resnet18")
    assert p.stdout.startswith(os.path.join(graftlib.SOURCE_ROOT, "rules", "torch-to-keras", "resnet18.yaml")
                               + ": ok") or "resnet18.yaml: ok" in p.stdout, p.stdout
    s = os.path.join(graftlib.SOURCE_ROOT, "samples")
    p = run("plan", "-r", "torch-to-keras/resnet18", os.path.join(s, "resnet18_narrow.pth"),
            os.path.join(s, "resnet18_narrow_keras2.h5"))
    assert "102 targets: 102 ok" in p.stdout, p.stdout


def check_man_tf_state_file():
    m = man_text()
    assert "the checkpoint state file" in m, "man graft(1): apply into a TF checkpoint"


R.check("graft --help lists --version", check_help_lists_version)
R.check("--no-clobber refuses an existing output", check_no_clobber)
R.check("an -o extension of another format warns", check_extension_warning)
R.check("diff --rtol is numpy.isclose", check_diff_rtol)
R.check("diff says when A and B look swapped", check_diff_swapped_hint)
R.check("diff --help and man say what diff -r proves", check_diff_proves_what)
R.check("freeze names the missing option", check_freeze_names_missing_option)
R.check("a YAML tab says so, with line:col", check_yaml_tab)
R.check("a to: group the regex lacks is caught by check", check_to_group_caught_by_check)
R.check("plan prints each finding once; summary first on a terminal", check_plan_findings_once)
R.check("-r and check take shipped rules names", check_rules_by_name)
R.check("man graft(1) names the checkpoint state file", check_man_tf_state_file)
R.close()
