"""`meson install --destdir` gives the package; with that PYTHONPATH (and no
GRAFT_LIBRARY) a fresh interpreter imports graft, finds the staged
libgraft.so, reads real PyTorch checkpoints as arrays equal to torch.load and
applies a transplant, and never imports torch."""
import glob
import json
import os
import subprocess

import numpy as np
import pytest
import torch

from pyhelp import FIXTURES, SOURCE_ROOT, flatten, run_python, torch_as_numpy, torch_load

BUILD = os.environ.get("GRAFT_BUILD_ROOT")


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    assert BUILD, "GRAFT_BUILD_ROOT is not set (tests/meson.build sets it)"
    root = tmp_path_factory.mktemp("stage")
    p = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", str(root), "--no-rebuild",
                        "--quiet"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return root


def site_dir(stage):
    inits = glob.glob(os.path.join(stage, "**", "graft", "__init__.py"), recursive=True)
    assert len(inits) == 1, inits
    return os.path.dirname(os.path.dirname(inits[0]))


def staged_env(stage):
    env = {k: v for k, v in os.environ.items() if k not in ("GRAFT_LIBRARY", "PYTHONPATH")}
    env["PYTHONPATH"] = site_dir(stage)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def test_package_files_are_staged(stage):
    site = site_dir(stage)
    # Installed where the interpreter looks (less the staging root), not
    # meson's python3/dist-packages that Debian's python3 does not read.
    import sys
    assert site[len(str(stage)):] in sys.path, (site, sys.path)
    names = sorted(os.listdir(os.path.join(site, "graft")))
    assert names == ["__init__.py", "_convert.py", "_errors.py", "_lib.py", "_model.py",
                     "_paths.py", "_plan.py"], names


READ = """
import json, sys
import numpy as np
import graft
assert "torch" not in sys.modules and "numpy" in sys.modules
lib = graft._lib.lib._name
out = {}
for i, path in enumerate(sys.argv[1:]):
    for t in graft.open(path):
        out[f"{i}/{t.name}"] = np.asarray(t)
np.savez(OUT, **out)
print(json.dumps({"lib": lib, "torch": "torch" in sys.modules,
                  "modules": sorted(m for m in sys.modules if m.split(".")[0] == "torch")}))
"""


def test_staged_package_reads_checkpoints_without_torch(stage, tmp_path):
    paths = [os.path.join(SOURCE_ROOT, "samples", "resnet_tiny.pth"),
             *sorted(glob.glob(os.path.join(FIXTURES, "pytorch_zip", "burn_*", "*.pt"))),
             *sorted(glob.glob(os.path.join(FIXTURES, "pytorch_legacy", "*", "*.pt")))]
    assert len(paths) > 10
    npz = tmp_path / "arrays.npz"
    code = f"import sys; sys.argv[1:] = {paths!r}; OUT = {str(npz)!r}\n" + READ
    info = json.loads(run_python(code, env=staged_env(stage), cwd=str(tmp_path)))
    assert info["lib"].startswith(str(stage)), info["lib"]
    assert not info["torch"] and info["modules"] == []
    got = np.load(npz)
    n = 0
    for i, path in enumerate(paths):
        for name, t in flatten(torch_load(path)):
            a, ref = got[f"{i}/{name}"], torch_as_numpy(t)
            assert a.dtype == ref.dtype and a.shape == ref.shape, (path, name)
            assert np.array_equal(a, ref), (path, name)
            n += 1
    assert len(got.files) == n


APPLY = """
import json, sys
import graft
r = graft.apply(rules=RULES, source=SRC, skeleton=SKEL, output=OUT)
print(json.dumps({"tensors": r.tensors, "torch": "torch" in sys.modules}))
"""


def test_staged_package_applies(stage, tmp_path):
    torch.manual_seed(3)
    src = {"encoder.weight": torch.randn(6, 4), "encoder.bias": torch.randn(6)}
    sp, kp, rp, out = (tmp_path / n for n in ("s.pth", "k.pth", "r.yaml", "o.pth"))
    torch.save(src, sp)
    torch.save({"dense/kernel": torch.zeros(4, 6), "dense/bias": torch.zeros(6)}, kp)
    rp.write_text("graft: 1\nrename:\n  source:\n    - {match: '^encoder\\.', to: 'dense/'}\n"
                  "    - {match: 'weight$', to: 'kernel'}\n"
                  "transforms:\n  - rank: 2\n    ops: [transpose]\n")
    code = f"RULES, SRC, SKEL, OUT = {str(rp)!r}, {str(sp)!r}, {str(kp)!r}, {str(out)!r}\n" + APPLY
    info = json.loads(run_python(code, env=staged_env(stage)))
    assert info == {"tensors": 2, "torch": False}
    got = torch.load(out)
    assert torch.equal(got["dense/kernel"], src["encoder.weight"].t())
    assert torch.equal(got["dense/bias"], src["encoder.bias"])


def test_import_is_light(stage):
    out = run_python("import sys, graft; print(sorted(m for m in ('torch', 'numpy') "
                     "if m in sys.modules), graft.__version__)", env=staged_env(stage))
    assert out.split() == ["[]", "0.1.0"]


def test_missing_library_is_an_import_error(tmp_path):
    env = dict(os.environ, GRAFT_LIBRARY=str(tmp_path / "nope.so"))
    p = subprocess.run([__import__("sys").executable, "-c", "import graft"], env=env,
                       capture_output=True, text=True)
    assert p.returncode != 0 and "cannot load libgraft" in p.stderr and "nope.so" in p.stderr
