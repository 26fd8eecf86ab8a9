"""graft apply / diff end to end with real PyTorch (the acceptance tests of the
rule-engine issue).

A torchvision resnet18 state dict (random init, plus a GRU, an attention
block's fused QKV, three separate q/k/v matrices and a VGG-like flatten head)
is transplanted into TF-style skeletons (PyTorch zip, safetensors, npz) with
different names and layouts, checked value for value with torch.load /
NumPy, and moved back with --reverse.  Then every failure mode, kill -9
during apply, and diff.  The source and skeleton bytes are hashed around
every command.  Run with /usr/bin/python3.
"""
import hashlib
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
import graftlib  # noqa: E402

R = graftlib.Results()
GRAFT = graftlib.GRAFT

# ---- helpers ---------------------------------------------------------------


sha_file = graftlib.sha256_file


def graft(*args, inputs=()):
    """Run graft; every file in `inputs` must be byte-identical afterwards."""
    before = {p: sha_file(p) for p in inputs}
    p = subprocess.run([GRAFT, *map(str, args)], capture_output=True, text=True)
    # no false layout alarm (plan prints its findings on stdout)
    seen = p.stderr + (p.stdout if args and args[0] == "plan" else "")
    assert graftlib.LAYOUT_FINDING not in seen, seen
    for path, digest in before.items():
        assert sha_file(path) == digest, f"graft {args[0]} modified its input {path}"
    return p


def expect_exit(p, code, what):
    assert p.returncode == code, (
        f"{what}: exit {p.returncode}, expected {code}\nstdout: {p.stdout}\nstderr: {p.stderr}")


ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.int64: "I64", torch.float64: "F64", torch.int32: "I32"}
NP_OF_ST = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I64": np.int64,
            "F64": np.float64, "I32": np.int32}


def raw_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def save_safetensors(path, tensors, metadata=None):
    """A safetensors file as the reference writer lays it out (no package here)."""
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        b = raw_bytes(t)
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    """-> (metadata, {name: numpy array}); BF16 as its uint16 bit patterns."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None)
    out = {}
    ends = []
    for name, e in header.items():
        b, end = e["data_offsets"]
        ends.append((b, end))
        arr = np.frombuffer(data[8 + n + b:8 + n + end], dtype=NP_OF_ST[e["dtype"]])
        out[name] = (e["dtype"], arr.reshape(e["shape"]))
    ends.sort()
    pos = 0
    for b, end in ends:  # the buffer is tiled exactly, as the reference reader demands
        assert b == pos, f"{path}: gap or overlap at {b}"
        pos = end
    assert 8 + n + pos == len(data), f"{path}: trailing bytes"
    return meta, out


def np_of(t):
    """A torch tensor as NumPy, bfloat16 as uint16 bit patterns."""
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16)
    return t.numpy()


# ---- the model, the skeletons, the rules ----------------------------------

torch.manual_seed(1234)
E, H, I = 8, 4, 6  # attention width, GRU hidden and input sizes


def build_source():
    net = torchvision.models.resnet18()
    sd = {}
    for k, v in net.state_dict().items():
        # random values everywhere (batch-norm buffers start as 0 and 1)
        sd["module." + k] = torch.randn(v.shape) if v.is_floating_point() else v.clone()
    gru = torch.nn.GRU(I, H)
    for k, v in gru.state_dict().items():
        sd["module.gru." + k] = v.detach().clone()
    attn = torch.nn.MultiheadAttention(E, 2)
    for k, v in attn.state_dict().items():
        sd["module.attn." + k] = torch.randn(v.shape)
    for part in "qkv":
        sd["module.sep." + part] = torch.randn(E, E)
    sd["module.head.dense.weight"] = torch.randn(16, 8 * 3 * 3)
    sd["module.head.dense.bias"] = torch.randn(16)
    return sd


def tf_name(key, t, bn_modules):
    """'module.layer1.0.bn1.running_mean' -> 'layer1/0/bn1/moving_mean:0'."""
    parts = key[len("module."):].split(".")
    mod, leaf = "/".join(parts[:-1]), parts[-1]
    if leaf == "weight":
        leaf = "gamma" if mod in bn_modules else "kernel"
    elif leaf == "bias":
        leaf = "beta" if mod in bn_modules else "bias"
    elif leaf == "running_mean":
        leaf = "moving_mean"
    elif leaf == "running_var":
        leaf = "moving_variance"
    return f"{mod}/{leaf}:0"


def chunks(t, order):
    parts = t.chunk(len(order), 0)
    return torch.cat([parts[i] for i in order], 0)


def expected_targets(sd, bias_dtype):
    """What the rules must produce: target name -> tensor."""
    bn = {k[len("module."):-len(".running_mean")].replace(".", "/")
          for k in sd if k.endswith("running_mean")}
    out = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked") or k.split(".")[1] in ("gru", "attn", "sep"):
            continue
        name = tf_name(k, v, bn)
        if name == "fc/kernel:0":
            v = v.t().half()
        elif name == "fc/bias:0":
            v = v.to(bias_dtype)
        elif name == "head/dense/kernel:0":
            v = v.reshape(16, 8, 3, 3).permute(2, 3, 1, 0).reshape(-1, 16)
        elif v.dim() == 4:
            v = v.permute(2, 3, 1, 0)
        elif v.dim() == 2:
            v = v.t()
        out[name] = v.contiguous()
    zrn = [1, 0, 2]  # PyTorch r,z,n -> Keras z,r,n
    out["gru/kernel:0"] = chunks(sd["module.gru.weight_ih_l0"], zrn).t().contiguous()
    out["gru/recurrent_kernel:0"] = chunks(sd["module.gru.weight_hh_l0"], zrn).t().contiguous()
    out["gru/bias:0"] = chunks(sd["module.gru.bias_ih_l0"], zrn)
    out["gru/recurrent_bias:0"] = chunks(sd["module.gru.bias_hh_l0"], zrn)
    w, b = sd["module.attn.in_proj_weight"], sd["module.attn.in_proj_bias"]
    for i, part in enumerate(["query", "key", "value"]):
        out[f"attn/{part}/kernel:0"] = w[i * E:(i + 1) * E].t().contiguous()
        out[f"attn/{part}/bias:0"] = b[i * E:(i + 1) * E].clone()
    out["attn/out_proj/kernel:0"] = sd["module.attn.out_proj.weight"].t().contiguous()
    out["attn/out_proj/bias:0"] = sd["module.attn.out_proj.bias"].clone()
    out["fused/qkv/kernel:0"] = torch.cat([sd["module.sep." + p] for p in "qkv"], 0)
    return out


RULES = r"""graft: 1
name: resnet18 and friends -> TF-style names
rename:
  source:
    - {match: '^module\.', to: ''}
  target:
    - {match: '/', to: '.'}
    - {match: '(kernel|gamma):0$', to: 'weight'}
    - {match: '(bias|beta):0$', to: 'bias'}
    - {match: 'moving_mean:0$', to: 'running_mean'}
    - {match: 'moving_variance:0$', to: 'running_var'}
pairs:
  'gru/kernel:0': 'module.gru.weight_ih_l0'
  'gru/recurrent_kernel:0': 'module.gru.weight_hh_l0'
  'gru/bias:0': 'module.gru.bias_ih_l0'
  'gru/recurrent_bias:0': 'module.gru.bias_hh_l0'
  'attn/query/kernel:0': 'module.attn.in_proj_weight'
  'attn/key/kernel:0': 'module.attn.in_proj_weight'
  'attn/value/kernel:0': 'module.attn.in_proj_weight'
  'attn/query/bias:0': 'module.attn.in_proj_bias'
  'attn/key/bias:0': 'module.attn.in_proj_bias'
  'attn/value/bias:0': 'module.attn.in_proj_bias'
  'fused/qkv/kernel:0': ['module.sep.q', 'module.sep.k', 'module.sep.v']
transforms:
  - target: '^head/dense/kernel'
    ops:
      - reshape: [16, 8, 3, 3]
      - permute: OCHW->HWCO
      - reshape: [-1, 16]
  - target: '^gru/(recurrent_)?kernel'
    ops: [{chunks: {axis: 0, order: [1, 0, 2]}}, transpose]
  - target: '^gru/(recurrent_)?bias'
    ops: [{chunks: {axis: 0, order: [1, 0, 2]}}]
  - target: '^attn/query/kernel'
    ops: [transpose, {take: {axis: 1, count: 3, index: 0}}]
  - target: '^attn/key/kernel'
    ops: [transpose, {take: {axis: 1, count: 3, index: 1}}]
  - target: '^attn/value/kernel'
    ops: [transpose, {take: {axis: 1, count: 3, index: 2}}]
  - target: '^attn/query/bias'
    ops: [{take: {axis: 0, count: 3, index: 0}}]
  - target: '^attn/key/bias'
    ops: [{take: {axis: 0, count: 3, index: 1}}]
  - target: '^attn/value/bias'
    ops: [{take: {axis: 0, count: 3, index: 2}}]
  - target: '^fused/qkv'
    ops: [{concat: {axis: 0}}]
  - target: '^fc/kernel'
    ops: [transpose, {cast: float16}]
  - target: '^fc/bias'
    ops: [{cast: BIAS_DTYPE}]
  - target: '^conv1/kernel'
    ops: [{permute: [2, 3, 1, 0]}]
  - rank: 4
    ops: [{permute: OIHW->HWIO}]
  - rank: 2
    ops: [transpose]
ignore:
  source: ['num_batches_tracked$']
policy:
  unused: error
"""


def write_rules(name, bias_dtype="bfloat16"):
    path = R.path(name)
    with open(path, "w") as f:
        f.write(RULES.replace("BIAS_DTYPE", bias_dtype))
    return path


def skeleton_of(expected):
    """Random values of the right shapes and dtypes, in a shuffled order."""
    names = sorted(expected, key=lambda n: hashlib.md5(n.encode()).hexdigest())
    return {n: torch.randn(expected[n].shape).to(expected[n].dtype) for n in names}


SD = build_source()
SRC = R.path("resnet18.pth")
torch.save(SD, SRC)
EXP = expected_targets(SD, torch.bfloat16)
EXP16 = expected_targets(SD, torch.float16)
RULES_PATH = write_rules("rules.yaml")
RULES16_PATH = write_rules("rules16.yaml", "float16")
SKEL_PT = R.path("skel_tf.pth")
SKEL_PT_DICT = skeleton_of(EXP)
torch.save(SKEL_PT_DICT, SKEL_PT)
SKEL_ST = R.path("skel_tf.safetensors")
SKEL_ST_DICT = skeleton_of(EXP)
save_safetensors(SKEL_ST, SKEL_ST_DICT, {"format": "tf", "note": "kept by graft"})
SKEL_NPZ = R.path("skel_tf.npz")
np.savez(SKEL_NPZ, **{k: v.numpy() for k, v in skeleton_of(EXP16).items()})

# ---- transplants -------------------------------------------------------------


def check_apply_pytorch():
    out = R.path("out_tf.pth")
    manifest = R.path("out_tf.json")
    p = graft("apply", "-r", RULES_PATH, "-o", out, "--manifest", manifest, SRC, SKEL_PT,
              inputs=[SRC, SKEL_PT, RULES_PATH])
    expect_exit(p, 0, "apply into a PyTorch skeleton")
    got = torch.load(out, weights_only=True)
    assert list(got) == list(SKEL_PT_DICT), "the skeleton's key order is not kept"
    for name, want in EXP.items():
        t = got[name]
        assert t.dtype == SKEL_PT_DICT[name].dtype, f"{name}: dtype {t.dtype}"
        assert t.shape == want.shape, f"{name}: shape {tuple(t.shape)} vs {tuple(want.shape)}"
        assert torch.equal(t, want), f"{name}: values differ"
    assert got["fc/kernel:0"].dtype == torch.float16
    assert got["fc/bias:0"].dtype == torch.bfloat16

    m = json.load(open(manifest))
    assert m["inputs"]["source"]["files"][0]["sha256"] == sha_file(SRC)
    assert m["inputs"]["skeleton"]["files"][0]["sha256"] == sha_file(SKEL_PT)
    assert m["rules"]["sha256"] == sha_file(RULES_PATH)
    assert m["output"]["files"][0]["sha256"] == sha_file(out)
    rows = {row["target"]: row for row in m["tensors"]}
    assert list(rows) == list(SKEL_PT_DICT)
    for name, want in EXP.items():
        assert rows[name]["sha256"] == graftlib.sha256_of_torch(want), name
        assert rows[name]["action"] == "transplanted"
    assert rows["fused/qkv/kernel:0"]["sources"] == ["module.sep.q", "module.sep.k", "module.sep.v"]
    assert rows["fused/qkv/kernel:0"]["ops"] == [{"concat": {"axis": 0}}]
    assert rows["fc/kernel:0"]["ops"] == ["transpose", {"cast": "float16"}]
    assert rows["conv1/kernel:0"]["ops"] == [{"permute": [2, 3, 1, 0]}]


def check_apply_safetensors():
    out = R.path("out_tf.safetensors")
    p = graft("apply", "-r", RULES_PATH, "-o", out, SRC, SKEL_ST, inputs=[SRC, SKEL_ST])
    expect_exit(p, 0, "apply into a safetensors skeleton")
    meta, got = load_safetensors(out)
    assert meta == {"format": "tf", "note": "kept by graft"}, f"__metadata__ {meta}"
    assert set(got) == set(EXP)
    for name, want in EXP.items():
        dt, arr = got[name]
        assert dt == ST_DTYPES[want.dtype], f"{name}: dtype {dt}"
        w = np_of(want)
        assert arr.shape == w.shape, f"{name}: shape {arr.shape} vs {w.shape}"
        assert np.array_equal(arr, w), f"{name}: values differ"


def check_apply_npz():
    out = R.path("out_tf.npz")
    p = graft("apply", "-r", RULES16_PATH, "-o", out, SRC, SKEL_NPZ, inputs=[SRC, SKEL_NPZ])
    expect_exit(p, 0, "apply into an npz skeleton")
    with np.load(out) as z:
        assert set(z.files) == set(EXP16)
        for name, want in EXP16.items():
            arr = z[name]
            w = want.numpy()
            assert arr.dtype == w.dtype, f"{name}: dtype {arr.dtype}"
            assert arr.shape == w.shape, f"{name}: shape {arr.shape}"
            assert np.array_equal(arr, w), f"{name}: values differ"


def check_default_output_name():
    out = R.path("skel_tf.grafted.safetensors")
    p = graft("apply", "-r", RULES_PATH, SRC, SKEL_ST, inputs=[SRC, SKEL_ST])
    expect_exit(p, 0, "apply with the default output")
    assert os.path.exists(out), "no skel_tf.grafted.safetensors"
    os.unlink(out)


def check_reverse():
    fwd = R.path("out_tf.pth")
    if not os.path.exists(fwd):
        check_apply_pytorch()
    skel = R.path("skel_src.pth")
    skel_dict = {k: torch.randn(v.shape) if v.is_floating_point() else v + 7
                 for k, v in SD.items()}
    torch.save(skel_dict, skel)
    back = R.path("back.pth")
    p = graft("apply", "--reverse", "-r", RULES_PATH, "-o", back, fwd, skel,
              inputs=[fwd, skel, RULES_PATH])
    expect_exit(p, 0, "apply --reverse")
    got = torch.load(back, weights_only=True)
    assert list(got) == list(skel_dict), "key order of the reverse skeleton not kept"
    for k, v in SD.items():
        t = got[k]
        if k.endswith("num_batches_tracked"):  # ignored: the skeleton's value stays
            assert torch.equal(t, skel_dict[k]), k
            continue
        if k == "module.fc.weight":
            v = v.half().float()
        elif k == "module.fc.bias":
            v = v.bfloat16().float()
        assert t.dtype == v.dtype and t.shape == v.shape, f"{k}: {t.dtype} {tuple(t.shape)}"
        assert torch.equal(t, v), f"{k}: values differ after the round trip"
    # diff proves the reverse transplant through the same inverted chains.
    p = graft("diff", "--reverse", "-r", RULES_PATH, fwd, back, inputs=[fwd, back])
    expect_exit(p, 0, "diff --reverse of the reverse transplant")


def check_select_reverse():
    """`select: model` reads a training checkpoint's sub-tree forward; reversed,
    that sub-tree of the checkpoint skeleton is filled and the rest kept."""
    rules = R.path("select.yaml")
    with open(rules, "w") as f:
        f.write(SMALL_RULES.replace("EXTRA", "select: model").replace("POLICY", "")
                .replace("  source:\n    - {match: '^module\\.', to: ''}\n", ""))
    model = {k[len("module."):]: v for k, v in SMALL.items()}
    ck = R.path("select_ckpt.pth")
    torch.save({"epoch": 3, "model": model,
                "optimizer": {"state": {0: {"exp_avg": torch.randn(5)}}, "name": "adam"}}, ck)
    skel = R.path("select_skel.safetensors")
    save_safetensors(skel, {"conv/kernel:0": torch.randn(3, 3, 3, 4),
                            "fc/kernel:0": torch.randn(4, 5), "fc/bias:0": torch.randn(5)})
    tf = R.path("select_tf.safetensors")
    expect_exit(graft("apply", "-r", rules, "-o", tf, ck, skel, inputs=[ck, skel]), 0,
                "apply with select: model")
    ck2_dict = {"epoch": 3, "model": {k: torch.randn(v.shape) for k, v in model.items()},
                "optimizer": {"state": {0: {"exp_avg": torch.randn(5)}}, "name": "adam"}}
    ck2 = R.path("select_ckpt2.pth")
    torch.save(ck2_dict, ck2)
    back = R.path("select_back.pth")
    p = graft("apply", "--reverse", "-r", rules, "-o", back, tf, ck2, inputs=[tf, ck2])
    expect_exit(p, 0, "apply --reverse into a checkpoint's sub-tree")
    got = torch.load(back, weights_only=True)
    assert list(got) == ["epoch", "model", "optimizer"] and got["epoch"] == 3
    for k, v in model.items():
        assert torch.equal(got["model"][k], v), f"model.{k} not transplanted back"
    assert torch.equal(got["optimizer"]["state"][0]["exp_avg"],
                       ck2_dict["optimizer"]["state"][0]["exp_avg"]), "optimizer state not kept"
    assert got["optimizer"]["name"] == "adam"
    expect_exit(graft("diff", "--reverse", "-r", rules, tf, back), 0, "diff --reverse with select")
    # plan, explain and check see the sub-tree that apply --reverse fills.
    p = graft("plan", "--reverse", "--json", "-r", rules, tf, ck2, inputs=[tf, ck2])
    expect_exit(p, 0, "plan --reverse with select")
    plan = json.loads(p.stdout)
    assert sorted(e["target"] for e in plan["pairs"]) == sorted(model), plan
    assert all(e["status"] == "ok" for e in plan["pairs"]) and not plan["missing"], plan
    for n in ("conv.weight", "model.conv.weight"):
        p = graft("explain", "--reverse", "-r", rules, tf, ck2, n, inputs=[tf, ck2])
        expect_exit(p, 0, f"explain --reverse with select: {n}")
        assert "target 'conv.weight'" in p.stdout and "status: ok" in p.stdout, p.stdout
    p = graft("check", "--reverse", rules, tf, ck2, inputs=[tf, ck2])
    expect_exit(p, 0, "check --reverse with select")
    assert f"one to one on {len(model)} targets" in p.stdout, p.stdout


def check_diff():
    out = R.path("out_tf.pth")
    if not os.path.exists(out):
        check_apply_pytorch()
    p = graft("diff", "-r", RULES_PATH, SRC, out, inputs=[SRC, out])
    expect_exit(p, 0, "diff of a correct transplant")
    assert f"{len(EXP)} compared" in p.stdout, p.stdout
    # The same tensors in two formats, paired by name.
    st = R.path("out_tf.safetensors")
    if os.path.exists(st):
        expect_exit(graft("diff", out, st), 0, "diff pytorch vs safetensors output")
    bad = dict(torch.load(out, weights_only=True))
    w = bad["layer1/0/conv1/kernel:0"].clone()
    w[1, 2, 3, 4] += 0.5
    bad["layer1/0/conv1/kernel:0"] = w
    perturbed = R.path("perturbed.pth")
    torch.save(bad, perturbed)
    p = graft("diff", "-r", RULES_PATH, SRC, perturbed)
    expect_exit(p, 1, "diff with one value perturbed")
    assert re.search(r"over\s+0\.5\s+layer1/0/conv1/kernel:0", p.stdout), p.stdout
    expect_exit(graft("diff", "-r", RULES_PATH, "--atol", "0.25", SRC, perturbed), 1,
                "diff --atol below the perturbation")
    expect_exit(graft("diff", "-r", RULES_PATH, "--atol", "0.75", SRC, perturbed), 0,
                "diff --atol above the perturbation")
    # An unpaired tensor fails whatever the tolerance.
    del bad["attn/out_proj/bias:0"]
    torch.save(bad, perturbed)
    p = graft("diff", "-r", RULES_PATH, "--atol", "1", SRC, perturbed)
    expect_exit(p, 1, "diff with a tensor missing from B")
    assert "unpaired" in p.stdout


for name, fn in [("apply into a PyTorch skeleton, torch.load checks every value", check_apply_pytorch),
                 ("apply into a safetensors skeleton, NumPy checks every value", check_apply_safetensors),
                 ("apply into an npz skeleton, NumPy checks every value", check_apply_npz),
                 ("default output name beside the skeleton", check_default_output_name),
                 ("apply --reverse gives the original state dict back", check_reverse),
                 ("diff: 0 when right, 1 when one value is off", check_diff)]:
    R.check(name, fn)

# ---- failure modes: documented exit code, no output file, inputs unchanged ---

SMALL = {"module.conv.weight": torch.randn(4, 3, 3, 3), "module.fc.weight": torch.randn(5, 4),
         "module.fc.bias": torch.randn(5)}
SMALL_RULES = """graft: 1
rename:
  source:
    - {match: '^module\\.', to: ''}
  target:
    - {match: '/', to: '.'}
    - {match: 'kernel:0$', to: 'weight'}
    - {match: 'bias:0$', to: 'bias'}
EXTRA
transforms:
  - rank: 4
    ops: [{permute: OIHW->HWIO}]
  - rank: 2
    ops: [transpose]
POLICY
"""


def small_case(tag, src=None, skel=None, extra="", policy="", rules_text=None):
    src = dict(SMALL if src is None else src)
    skel = skel or {"conv/kernel:0": torch.randn(3, 3, 3, 4), "fc/kernel:0": torch.randn(4, 5),
                    "fc/bias:0": torch.randn(5)}
    sp, kp, rp = R.path(f"{tag}_src.pth"), R.path(f"{tag}_skel.safetensors"), R.path(f"{tag}.yaml")
    torch.save(src, sp)
    save_safetensors(kp, skel)
    with open(rp, "w") as f:
        f.write(rules_text if rules_text is not None
                else SMALL_RULES.replace("EXTRA", extra).replace("POLICY", policy))
    return sp, kp, rp


def run_failure(tag, code, pattern, **kw):
    sp, kp, rp = small_case(tag, **kw)
    out = R.path(f"{tag}_out.safetensors")
    p = graft("apply", "-r", rp, "-o", out, sp, kp, inputs=[sp, kp, rp])
    expect_exit(p, code, tag)
    assert not os.path.exists(out), f"{tag}: an output file was left at {out}"
    leftovers = [f for f in os.listdir(R.tmp) if f.startswith(f".{tag}_out")]
    assert not leftovers, f"{tag}: temporary files left: {leftovers}"
    assert re.search(pattern, p.stderr), f"{tag}: stderr {p.stderr!r} lacks {pattern!r}"
    assert len(p.stderr.strip().splitlines()) >= 1
    return p


def line_of(path, needle):
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if needle in line:
                return i
    raise AssertionError(f"{needle!r} not in {path}")


def fail_missing_target():
    skel = {"conv/kernel:0": torch.randn(3, 3, 3, 4), "fc/kernel:0": torch.randn(4, 5),
            "fc/bias:0": torch.randn(5), "extra/kernel:0": torch.randn(2, 2)}
    run_failure("missing", 1, r"extra/kernel:0", skel=skel)


def keep_missing_target():
    extra = torch.randn(2, 2)
    skel = {"conv/kernel:0": torch.randn(3, 3, 3, 4), "fc/kernel:0": torch.randn(4, 5),
            "fc/bias:0": torch.randn(5), "extra/kernel:0": extra}
    sp, kp, rp = small_case("keep", skel=skel, policy="policy:\n  missing: keep\n")
    out, man = R.path("keep_out.safetensors"), R.path("keep.json")
    p = graft("apply", "-r", rp, "-o", out, "--manifest", man, sp, kp, inputs=[sp, kp, rp])
    expect_exit(p, 0, "missing: keep")
    _, got = load_safetensors(out)
    assert np.array_equal(got["extra/kernel:0"][1], extra.numpy()), "the skeleton value was not kept"
    assert np.array_equal(got["fc/kernel:0"][1], SMALL["module.fc.weight"].t().numpy())
    rows = {r["target"]: r for r in json.load(open(man))["tensors"]}
    assert rows["extra/kernel:0"]["action"] == "kept" and rows["extra/kernel:0"]["sources"] == []
    assert rows["extra/kernel:0"]["sha256"] == graftlib.sha256_of_torch(extra)
    assert rows["fc/kernel:0"]["sources"] == ["module.fc.weight"]


def fail_unused_source():
    src = dict(SMALL, **{"module.stray.weight": torch.randn(2)})
    run_failure("unused", 1, r"module\.stray\.weight", src=src,
                policy="policy:\n  unused: error\n")
    # Under the default policy the same plan is a warning and the file is written.
    sp, kp, rp = small_case("unusedwarn", src=src)
    out = R.path("unusedwarn_out.safetensors")
    p = graft("apply", "-r", rp, "-o", out, sp, kp, inputs=[sp, kp])
    expect_exit(p, 0, "unused source under unused: warn")
    assert "warning" in p.stderr and "stray" in p.stderr, p.stderr


def fail_shape_mismatch():
    # fc/kernel:0 stored untransposed: the rank-2 transpose gives [4,5], the skeleton holds [5,4]
    skel = {"conv/kernel:0": torch.randn(3, 3, 3, 4), "fc/kernel:0": torch.randn(5, 4),
            "fc/bias:0": torch.randn(5)}
    sp, kp, rp = small_case("mismatch_probe", skel=skel)
    lines = {line_of(rp, "- rank: 2"), line_of(rp, "- rank: 2") + 1}
    p = run_failure("mismatch", 1, r"fc/kernel:0", skel=skel)
    found = {int(n) for n in re.findall(r"mismatch\.yaml:(\d+)", p.stderr)}
    assert found & lines, f"the rule's file:line {sorted(lines)} not in {p.stderr!r}"


def fail_bad_regex():
    text = SMALL_RULES.replace("EXTRA", "").replace("POLICY", "").replace(
        "{match: '/', to: '.'}", "{match: '(unclosed', to: '.'}")
    p = run_failure("regex", 2, r"regex\.yaml:\d+:\d+", rules_text=text)
    line = line_of(R.path("regex.yaml"), "(unclosed")
    assert f"regex.yaml:{line}:" in p.stderr, p.stderr


def fail_typo_key():
    text = SMALL_RULES.replace("EXTRA", "").replace("POLICY", "").replace(
        "transforms:", "transfroms:")
    p = run_failure("typo", 2, r"typo\.yaml:\d+:\d+", rules_text=text)
    line = line_of(R.path("typo.yaml"), "transfroms:")
    assert f"typo.yaml:{line}:1" in p.stderr, p.stderr
    assert "transfroms" in p.stderr


def warn_several_targets():
    # fc2/ is renamed onto fc/: one source feeds two targets, with no take and no pairs entry.
    skel = {"conv/kernel:0": torch.randn(3, 3, 3, 4), "fc/kernel:0": torch.randn(4, 5),
            "fc/bias:0": torch.randn(5), "fc2/kernel:0": torch.randn(4, 5)}
    text = SMALL_RULES.replace("EXTRA", "").replace("POLICY", "").replace(
        "    - {match: '/', to: '.'}", "    - {match: '^fc2/', to: 'fc/'}\n    - {match: '/', to: '.'}")
    sp, kp, rp = small_case("tied", skel=skel, rules_text=text)
    out = R.path("tied_out.safetensors")
    p = graft("apply", "-r", rp, "-o", out, sp, kp, inputs=[sp, kp])
    expect_exit(p, 0, "several targets from one source (a warning)")
    assert "warning" in p.stderr and "fc.weight" in p.stderr, p.stderr
    _, got = load_safetensors(out)
    assert np.array_equal(got["fc2/kernel:0"][1], got["fc/kernel:0"][1])
    p = graft("plan", "-r", rp, sp, kp, inputs=[sp, kp])
    assert "warning" in p.stderr + p.stdout, "graft plan does not warn"


def fail_wrong_rank():
    text = SMALL_RULES.replace("EXTRA", "").replace("POLICY", "").replace(
        "transforms:\n", "transforms:\n  - target: '^fc/bias'\n    ops: [{permute: OI->IO}]\n")
    p = run_failure("rank", 1, r"fc/bias:0|rank", rules_text=text)
    line = line_of(R.path("rank.yaml"), "{permute: OI->IO}")
    found = {int(n) for n in re.findall(r"rank\.yaml:(\d+)", p.stderr)}
    assert found & {line, line - 1}, f"rank.yaml:{line} not in {p.stderr!r}"


def fail_output_is_an_input():
    sp, kp, rp = small_case("self")
    for out in (kp, sp, os.path.join(R.tmp, ".", os.path.basename(kp))):
        p = graft("apply", "-r", rp, "-o", out, sp, kp, inputs=[sp, kp])
        expect_exit(p, 2, f"-o {out}")
        assert "input" in p.stderr, p.stderr
    p = graft("apply", "-r", rp, "-o", rp, sp, kp, inputs=[sp, kp, rp])
    expect_exit(p, 2, "-o onto the rules file")
    link = R.path("self_link.safetensors")
    os.symlink(kp, link)
    p = graft("apply", "-r", rp, "-o", link, sp, kp, inputs=[sp, kp])
    expect_exit(p, 2, "-o a symlink to the skeleton")
    assert os.path.islink(link)
    p = graft("apply", "-r", rp, "-o", R.path("self_out.safetensors"), "--manifest", sp, sp, kp,
              inputs=[sp, kp])
    expect_exit(p, 2, "--manifest onto the source")
    assert not os.path.exists(R.path("self_out.safetensors"))


def fail_bad_inputs():
    sp, kp, rp = small_case("badin")
    junk = R.path("junk.pth")
    with open(junk, "wb") as f:
        f.write(b"PK\x03\x04 truncated")
    out = R.path("badin_out.safetensors")
    for args in ([junk, kp], [sp, R.path("nonexistent.safetensors")]):
        p = graft("apply", "-r", rp, "-o", out, *args)
        expect_exit(p, 2, f"apply {args}")
        assert not os.path.exists(out)
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    expect_exit(graft("apply", "-r", rp, sp), 2, "apply with one file")
    expect_exit(graft("diff", "--atol", "-1", sp, kp), 2, "diff --atol -1")


def fail_while_writing():
    """A source tensor that only fails when its bytes are read (a deflated
    member with a broken stream): the writer has started, and must leave
    nothing behind."""
    import zipfile
    sp, kp, rp = small_case("midwrite")
    good = R.path("midwrite_good.pth")
    os.replace(sp, good)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(sp, "w") as out:
        for info in src.infolist():
            deflate = info.filename.endswith("data/2")  # module.fc.bias, the last record
            out.writestr(info, src.read(info.filename),
                         compress_type=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    data = bytearray(open(sp, "rb").read())
    with zipfile.ZipFile(sp) as z:
        info = next(i for i in z.infolist() if i.filename.endswith("data/2"))
    n, m = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + n + m
    for k in range(start + 8, start + info.compress_size - 8):
        data[k] ^= 0x5A
    with open(sp, "wb") as f:
        f.write(data)
    # A PyTorch skeleton where fc/bias:0 comes last: two tensors are written first.
    kpt = R.path("midwrite_skel.pth")
    torch.save({"fc/kernel:0": torch.randn(4, 5), "conv/kernel:0": torch.randn(3, 3, 3, 4),
                "fc/bias:0": torch.randn(5)}, kpt)
    for skel, out in ((kpt, R.path("midwrite_out.pth")), (kp, R.path("midwrite_out.safetensors"))):
        p = graft("apply", "-r", rp, "-o", out, sp, skel, inputs=[sp, skel])
        expect_exit(p, 2, f"a source that breaks while {os.path.basename(out)} is written")
        assert "midwrite_src.pth" in p.stderr and "fc/bias:0" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert not os.path.exists(out), f"{out} left behind"
        assert not [f for f in os.listdir(R.tmp) if f.startswith(".midwrite_out")], "temporary left"


for name, fn in [("select: + --reverse fills a checkpoint's sub-tree, keeps the rest",
                  check_select_reverse),
                 ("missing target: exit 1, nothing written", fail_missing_target),
                 ("missing: keep keeps the skeleton's value", keep_missing_target),
                 ("unused source under unused: error: exit 1", fail_unused_source),
                 ("shape mismatch names the rule's file:line: exit 1", fail_shape_mismatch),
                 ("a regex that does not compile: exit 2 with line:column", fail_bad_regex),
                 ("a typo'd key: exit 2 with line:column", fail_typo_key),
                 ("one source for several targets: a warning", warn_several_targets),
                 ("an op on a tensor of the wrong rank: exit 1 with file:line", fail_wrong_rank),
                 ("-o onto an input is refused: exit 2", fail_output_is_an_input),
                 ("a source that breaks mid-write leaves nothing: exit 2", fail_while_writing),
                 ("unreadable inputs and bad usage: exit 2", fail_bad_inputs)]:
    R.check(name, fn)

# ---- kill -9 during apply ------------------------------------------------------


def temp_files(prefix):
    return [f for f in os.listdir(R.tmp) if f.startswith("." + prefix)]


def writing_size(pid, temp_prefix):
    """Bytes of the output the process is writing: its unnamed (O_TMPFILE)
    file in R.tmp seen through /proc/PID/fd, or a named temporary; -1 if none."""
    size = -1
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        fds = []
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith(R.tmp + "/#") and target.endswith(" (deleted)"):
                size = max(size, os.stat(f"/proc/{pid}/fd/{fd}").st_size)
        except OSError:
            continue
    for f in temp_files(temp_prefix):
        try:
            size = max(size, os.stat(os.path.join(R.tmp, f)).st_size)
        except FileNotFoundError:
            continue
    return size


def kill_when(cmd, temp_prefix, min_bytes, deadline):
    """Start cmd; SIGKILL it once its temporary output holds min_bytes (or at
    the deadline).  Returns the size of the temporary file when killed, or -1."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + deadline
    size = -1
    while p.poll() is None and time.monotonic() < end:
        size = writing_size(p.pid, temp_prefix)
        if size >= min_bytes:
            break
        time.sleep(0.0005)
    p.send_signal(signal.SIGKILL)
    p.wait()
    return size


def kill_during_apply():
    big = {f"module.layer{i}.weight": torch.randn(1024, 1000) for i in range(24)}  # 98 MB
    sp = R.path("big_src.pth")
    torch.save(big, sp)
    kp = R.path("big_skel.safetensors")
    save_safetensors(kp, {f"layer{i}/kernel:0": torch.zeros(1000, 1024) for i in range(24)})
    rp = R.path("big.yaml")
    with open(rp, "w") as f:
        f.write(SMALL_RULES.replace("EXTRA", "").replace("POLICY", ""))
    del big
    ref = R.path("big_ref.safetensors")
    expect_exit(graft("apply", "-r", rp, "-o", ref, sp, kp), 0, "reference apply")
    ref_sha, ref_size = sha_file(ref), os.path.getsize(ref)
    src_sha, skel_sha = sha_file(sp), sha_file(kp)
    out = R.path("big_out.safetensors")
    cmd = [GRAFT, "apply", "-r", rp, "-o", out, sp, kp]
    outcomes = []
    # Kill before anything is written, as the first bytes land, part way, near the end.
    for min_bytes in (0, 1, ref_size // 4, ref_size // 2, ref_size * 9 // 10, ref_size, 1 << 62):
        size = kill_when(cmd, "big_out", min_bytes, 20.0)
        if os.path.exists(out):
            assert sha_file(out) == ref_sha, f"killed at {size} bytes: OUT exists but is not complete"
            outcomes.append("complete")
            os.unlink(out)
        else:
            outcomes.append(f"absent@{size}")
        # The output is an unnamed file until it is complete: nothing is left.
        left = [f for f in os.listdir(R.tmp) if "big_out" in f]
        assert not left, f"killed at {size} bytes: leftovers {left}"
    assert sha_file(sp) == src_sha and sha_file(kp) == skel_sha, "an input changed"
    assert any(o.startswith("absent@") and int(o[7:]) > 0 for o in outcomes), (
        f"never killed while the output was being written: {outcomes}")
    print(f"     kill -9 outcomes: {outcomes}")


R.check("kill -9 during apply never leaves a partial OUT", kill_during_apply)
R.close()
