"""graft rules: the listing of the shipped files, --match and -r auto on real
torchvision state dicts and Keras skeletons (the ResNet-50 pick itself, with
its forward pass, is in test_rulelib_keras.py)."""
import glob
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import kerasapps  # noqa: E402
import torchapps  # noqa: E402
from fwdlib import sparse_state_dict  # noqa: E402
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
    p = subprocess.run([os.environ.get("GRAFT", "graft"), "rules"], env=env, capture_output=True, text=True)
    assert p.returncode == 2 and "bad.yaml" in p.stderr, p.stderr


def models():
    torch.manual_seed(0)
    r18, mb = R.path("r18.pth"), R.path("mb.pth")
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), r18)
    torch.save(torchvision.models.mobilenet_v2(num_classes=10).state_dict(), mb)
    k, o = kerasapps.resnet(18, 32, 10, bias=False)  # the quick start's skeleton: no conv biases
    skel = k.write(R.path("r18.h5"), o, empty=True)
    return r18, mb, skel


def matches(src, skel):
    """The names `graft rules --match` prints, best first."""
    return [line.split()[0] for line in run("rules", "--match", src, skel).stdout.splitlines()]


def auto_ranks_ties_and_none():
    r18, mb, skel = models()
    # both fill; the family file has warnings (its bias rules match nothing)
    assert matches(r18, skel) == ["torch-to-keras/resnet18", "torch-to-keras/resnet"]
    out = R.path("r18_out.h5")
    p = run("apply", "-r", "auto", r18, skel, "-o", out)
    assert "-r auto: torch-to-keras/resnet18 (" in p.stderr and os.path.exists(out), p.stderr
    os.remove(out)
    # a true tie: the same file twice, first in $GRAFT_RULES_PATH
    d = R.path("twin")
    os.makedirs(os.path.join(d, "torch-to-keras"))
    shutil.copy(os.path.join(SOURCE_ROOT, "rules", "torch-to-keras", "resnet18.yaml"),
                os.path.join(d, "torch-to-keras", "resnet18_twin.yaml"))
    env = dict(os.environ, GRAFT_RULES_PATH=d)
    p = subprocess.run([os.environ.get("GRAFT", "graft"), "apply", "-r", "auto", r18, skel, "-o", out], env=env,
                       capture_output=True, text=True)
    assert p.returncode == 1 and "several" in p.stderr and "resnet18_twin" in p.stderr, p.stderr
    assert "torch-to-keras/resnet18 " in p.stderr and not os.path.exists(out), p.stderr
    p = run("rules", "--match", mb, skel, check=False)
    assert p.returncode == 1 and "none of the" in p.stderr and not p.stdout, p.stderr
    p = run("apply", "-r", "auto", mb, skel, "-o", out, check=False)
    assert p.returncode == 1 and "none of the" in p.stderr, p.stderr
    assert not os.path.exists(out)


def one_file_per_skeleton():
    """Every kind of skeleton the shipped files serve (as the forward-pass
    tests build them) has exactly one complete match, which -r auto picks."""
    from torchvision.models import vgg
    cfg = torchapps.vgg_narrow(vgg.cfgs["A"])
    tv = torchvision.models
    cases = [
        ("torch-to-keras/resnet", tv.resnet50(num_classes=10), kerasapps.resnet(50, 32, 10)),
        ("torch-to-keras/efficientnet", tv.efficientnet_b0(num_classes=10), kerasapps.efficientnet(0, 32, 10)),
        ("torch-to-keras/efficientnet_b5_b7", torchapps.efficientnet(5, 0.5, 1e-3),
         kerasapps.efficientnet(5, 32, 10, width=0.5)),
        ("torch-to-keras/mobilenet_v2", tv.mobilenet_v2(num_classes=10), kerasapps.mobilenet_v2(32, 10)),
        ("torch-to-keras/mobilenet_v3_small", tv.mobilenet_v3_small(num_classes=10),
         kerasapps.mobilenet_v3("mobilenet_v3_small", 32, 10)),
        ("torch-to-keras/mobilenet_v3_large", tv.mobilenet_v3_large(num_classes=10),
         kerasapps.mobilenet_v3("mobilenet_v3_large", 32, 10, keras2=False)),
        ("torch-to-keras/densenet", tv.densenet121(num_classes=10), kerasapps.densenet(121, 32, 10)),
        ("torch-to-keras/convnext", torchapps.convnext((3, 3, 9, 3), (8, 16, 32, 64), 0),
         kerasapps.convnext("convnext_tiny", (8, 16, 32, 64), (3, 3, 9, 3), 32)),
        ("torch-to-keras/inception_v3", torchapps.inception_v3(4, True, 0), kerasapps.inception_v3(299, 10, 4)),
        ("torch-to-keras/vgg11", torchapps.vgg(cfg, False, 16), kerasapps.vgg(cfg, False, 224, 16)),
        ("torch-to-keras/vgg11_bn", torchapps.vgg(cfg, True, 16), kerasapps.vgg(cfg, True, 224, 16)),
    ]
    for want, model, (k, o) in cases:
        tag = want.split("/")[1]
        src, skel = R.path(tag + "_one.pth"), R.path(tag + "_one.h5")
        sparse_state_dict(model, src)
        k.write(skel, o, empty=True)
        assert matches(src, skel) == [want], (want, matches(src, skel))
        p = run("plan", "-r", "auto", src, skel)
        assert f"-r auto: {want} (" in p.stderr, p.stderr
        os.remove(src)
        os.remove(skel)


if __name__ == "__main__":
    R.check("graft rules lists every shipped file with direction and description", lists_every_file)
    R.check("--dir comes first; a broken file is named", first_dir_wins_and_broken_files_named)
    R.check("--match ranks; -r auto takes the strictly best, refuses a tie or no complete fill",
            auto_ranks_ties_and_none)
    R.check("each kind of skeleton has exactly one complete match, which -r auto picks", one_file_per_skeleton)
    R.close()
