"""graft rules: the listing of the shipped files, --match and -r auto on real
torchvision state dicts and Keras skeletons (the ResNet-50 pick itself, with
its forward pass, is in test_rulelib_keras.py)."""
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import kerasapps  # noqa: E402
from graftlib import SOURCE_ROOT, Results, run  # noqa: E402

import torch  # noqa: E402
import torchvision  # noqa: E402

R = Results()
SHIPPED = sorted(os.path.relpath(p, os.path.join(SOURCE_ROOT, "rules"))[:-len(".yaml")]
                 for p in glob.glob(os.path.join(SOURCE_ROOT, "rules", "*", "*.yaml")))


def listing(*extra):
    """{name: (direction, title, description)} from `graft rules`."""
    out, last = {}, None
    for line in run("rules", *extra).stdout.splitlines():
        if line.startswith("    "):
            out[last] = out[last][:2] + (line.strip(),)
        else:
            name, direction, title = line.split(None, 2)
            out[name], last = (direction, title, ""), name
    return out


def lists_every_file():
    got = listing()
    assert sorted(got) == SHIPPED, (sorted(got), SHIPPED)
    assert len(got) >= 12, len(got)
    for name, (direction, title, desc) in got.items():
        assert name.startswith(direction + "/") and "-to-" in direction, name
        assert title and len(desc) > 80, name


def first_dir_wins_and_broken_files_named():
    d = R.path("lib")
    os.makedirs(os.path.join(d, "hf-to-tf"))
    with open(os.path.join(SOURCE_ROOT, "rules", "hf-to-tf", "bert.yaml")) as f:
        text = f.read()
    with open(os.path.join(d, "hf-to-tf", "bert.yaml"), "w") as f:
        f.write(text.replace("name: Hugging Face", "name: LOCAL Hugging Face"))
    assert listing("--dir", d)["hf-to-tf/bert"][1].startswith("LOCAL ")
    os.makedirs(os.path.join(d, "x-to-y"))
    with open(os.path.join(d, "x-to-y", "bad.yaml"), "w") as f:
        f.write("graft: 1\nrename: {source: [{match: '(', to: x}]}\n")
    p = run("rules", "--dir", d, check=False)
    assert p.returncode == 2 and "x-to-y/bad.yaml:2:" in p.stderr, p.stderr
    env = dict(os.environ, GRAFT_RULES_PATH=d)
    import subprocess
    p = subprocess.run([os.environ.get("GRAFT", "graft"), "rules"], env=env, capture_output=True, text=True)
    assert p.returncode == 2 and "bad.yaml" in p.stderr, p.stderr


def models():
    torch.manual_seed(0)
    r18, mb = R.path("r18.pth"), R.path("mb.pth")
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), r18)
    torch.save(torchvision.models.mobilenet_v2(num_classes=10).state_dict(), mb)
    k, o = kerasapps.resnet(18, 32, 10, bias=False)  # as the older resnet18.yaml expects
    skel = k.write(R.path("r18.h5"), o, empty=True)
    return r18, mb, skel


def ambiguous_and_none():
    r18, mb, skel = models()
    p = run("rules", "--match", r18, skel)
    names = [line.split()[0] for line in p.stdout.splitlines()]
    # the family file fills as many tensors as resnet18.yaml, with more warnings: listed after it
    assert names.index("torch-to-keras/resnet18") < names.index("torch-to-keras/resnet"), p.stdout
    assert all("102/102 filled" in line for line in p.stdout.splitlines()), p.stdout
    out = R.path("r18_out.h5")
    p = run("apply", "-r", "auto", r18, skel, "-o", out, check=False)
    assert p.returncode == 1 and "several" in p.stderr and "torch-to-keras/resnet18" in p.stderr, p.stderr
    assert not os.path.exists(out)
    p = run("rules", "--match", mb, skel, check=False)
    assert p.returncode == 1 and "none of the" in p.stderr and not p.stdout, p.stderr
    p = run("apply", "-r", "auto", mb, skel, "-o", out, check=False)
    assert p.returncode == 1 and "none of the" in p.stderr, p.stderr
    assert not os.path.exists(out)


if __name__ == "__main__":
    R.check("graft rules lists every shipped file with direction and description", lists_every_file)
    R.check("--dir comes first; a broken file is named", first_dir_wins_and_broken_files_named)
    R.check("--match ranks; -r auto refuses several or no complete fills", ambiguous_and_none)
    R.close()
