"""libgraft installs like a C library (issue 10, part 6).

`meson install --destdir` into a staging root must give the shared library
with its soname, graft.h, graft.pc and the man pages; `nm -D --defined-only`
of the installed library must list exactly the functions graft.h declares
(GRAFT_EXTERN), nothing internal and nothing of protobuf-c;
src/cli/ must include graft.h and its own headers only; and
examples/list_and_transplant.c must build against the staged copy with
`pkg-config --cflags --libs graft` and run on a real PyTorch file made here
by torch, whose tensors it must list as torch.load sees them.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "interop"))
from graftlib import SOURCE_ROOT, Results  # noqa: E402

BUILD = os.environ["GRAFT_BUILD_ROOT"]
R = Results()
STAGE = R.path("stage")


def sh(*args, env=None):
    p = subprocess.run(args, capture_output=True, text=True, env=env)
    assert p.returncode == 0, f"{' '.join(args)} exited {p.returncode}: {p.stderr.strip()[-2000:]}"
    return p.stdout


def one(pattern):
    got = glob.glob(os.path.join(STAGE, pattern), recursive=True)
    assert len(got) == 1, f"{pattern}: {got}"
    return got[0]


def install():
    sh("meson", "install", "-C", BUILD, "--destdir", STAGE, "--no-rebuild", "--quiet")
    lib = one("**/libgraft.so.*.*.*")
    assert os.path.islink(os.path.join(os.path.dirname(lib), "libgraft.so"))
    assert os.path.islink(os.path.join(os.path.dirname(lib), "libgraft.so.0"))
    soname = re.search(r"\(SONAME\)\s+Library soname: \[(.*)\]", sh("readelf", "-d", lib))
    assert soname and soname.group(1) == "libgraft.so.0", soname
    one("**/include/graft.h")
    one("**/pkgconfig/graft.pc")
    for page in ("man1/graft.1", "man5/graft-rules.5", "man7/graft-onnx.7"):
        one("**/man/" + page)
    one("**/bin/graft")


def declared():
    text = open(one("**/include/graft.h")).read()
    return set(re.findall(r"GRAFT_EXTERN\s[^;(]*?\b(graft_\w+)\s*\(", text))


def exported_only_declared():
    lib = one("**/libgraft.so.*.*.*")
    out = sh("nm", "-D", "--defined-only", lib)
    syms = {line.split()[-1] for line in out.splitlines() if line.strip()}
    want = declared()
    assert len(want) > 50, len(want)
    assert syms == want, f"exported, not declared: {sorted(syms - want)}; declared, not exported: {sorted(want - syms)}"
    assert not any("protobuf" in s for s in syms)


def example_builds_and_runs():
    pcdir = os.path.dirname(one("**/pkgconfig/graft.pc"))
    env = dict(os.environ, PKG_CONFIG_PATH=pcdir, PKG_CONFIG_SYSROOT_DIR=STAGE)
    flags = sh("pkg-config", "--cflags", "--libs", "graft", env=env).split()
    assert any(f.startswith("-I" + STAGE) for f in flags), flags
    exe = R.path("list_and_transplant")
    # A sanitizer build's library needs its runtime first in the program.
    needed = sh("readelf", "-d", one("**/libgraft.so.*.*.*"))
    san = ["-fsanitize=address,undefined"] if "libasan" in needed else []
    sh("cc", "-std=c11", "-Wall", "-Werror", "-D_DEFAULT_SOURCE", *san,
       os.path.join(SOURCE_ROOT, "examples", "list_and_transplant.c"), "-o", exe, *flags)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                torch.nn.Flatten(), torch.nn.Linear(4, 2).to(torch.float64))
    pth = R.path("model.pth")
    torch.save(model.state_dict(), pth)
    rules = R.path("identity.yaml")
    with open(rules, "w") as f:
        f.write("graft: 1\n")
    libdir = os.path.dirname(one("**/libgraft.so.*.*.*"))
    p = subprocess.run([exe, pth, rules], capture_output=True, text=True,
                       env=dict(os.environ, LD_LIBRARY_PATH=libdir))
    assert p.returncode == 0, p.stderr
    sd = torch.load(pth)
    names = {"torch.float32": "float32", "torch.float64": "float64", "torch.int64": "int64"}
    want = [f"{k}\t{names[str(v.dtype)]}\t[{','.join(map(str, v.shape))}]" for k, v in sd.items()]
    lines = p.stdout.splitlines()
    assert lines[:-1] == want, (lines, want)
    assert lines[-1] == f"transplanted {len(sd)} tensors", lines[-1]


def cli_includes_public_headers_only():
    cli = os.path.join(SOURCE_ROOT, "src", "cli")
    public = set(os.listdir(os.path.join(SOURCE_ROOT, "src", "include")))
    own = {f for f in os.listdir(cli) if f.endswith(".h")}
    for f in sorted(os.listdir(cli)):
        for inc in re.findall(r'^#\s*include\s+"([^"]+)"', open(os.path.join(cli, f)).read(), re.M):
            assert inc in public or inc in own, f"src/cli/{f} includes \"{inc}\""


R.check("the CLI includes graft.h and its own headers only", cli_includes_public_headers_only)
R.check("meson install --destdir gives libgraft.so*, graft.h, graft.pc, man pages", install)
R.check("nm -D --defined-only lists exactly the functions graft.h declares", exported_only_declared)
R.check("examples/list_and_transplant.c builds with pkg-config and runs on a .pth", example_builds_and_runs)
R.close()
