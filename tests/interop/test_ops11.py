"""The ops of rules format 1.1 (sum, scale, fold_bn, stack, unstack, pad,
slice, take with start/length) against NumPy references, for every dtype each
accepts, through `graft apply` on real files: NumPy .npz for every NumPy
dtype, torch.save for bfloat16.  The arithmetic ops compute in float64 and
round once, so their reference is the float64 result rounded once (NumPy's
astype for float16/float32; round-half-even to 8 significant bits for
bfloat16) and the comparison is bit for bit.  Also: what --reverse does with
each (undoes stack, pad, scale; refuses sum and fold_bn naming the rule).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from graftlib import Results, run  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

R = Results()
RNG = np.random.default_rng(11)

FLOATS = ["float16", "float32", "float64"]
ALL = FLOATS + ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool",
                "complex64", "complex128"]
M, A, EPS = 0.37, -1.25, 1e-3


def rand(shape, dt):
    if dt == "bool":
        return RNG.integers(0, 2, shape).astype(bool)
    if dt.startswith("complex"):
        return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dt)
    if dt.startswith(("int", "uint")):
        return RNG.integers(0, 100, shape).astype(dt)
    return RNG.standard_normal(shape).astype(dt)


def round_bf16(x):
    """float64 -> the nearest bfloat16 value (half to even), as float64."""
    m, e = np.frexp(x)
    return np.ldexp(np.round(m * 256.0) / 256.0, e)


def fold_ref(w, g, b, mu, var, bias=None, part="weight"):
    g, b, mu, var = (v.astype(np.float64) for v in (g, b, mu, var))
    scale = g / np.sqrt(var + EPS)
    if part == "weight":
        return w.astype(np.float64) * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    b0 = np.zeros_like(g) if bias is None else bias.astype(np.float64)
    return (b0 - mu) * scale + b


RULES = f"""graft: 1.1
transforms:
  - target: '^sum_'
    ops: [sum]
  - target: '^scale_'
    ops: [{{scale: {{mul: {M}, add: {A}}}}}]
  - target: '^foldw_'
    ops: [{{fold_bn: {{part: weight, eps: {EPS}}}}}]
  - target: '^foldb'
    ops: [{{fold_bn: {{part: bias, eps: {EPS}}}}}]
  - target: '^stack_'
    ops: [{{stack: {{axis: 1}}}}]
  - target: '^unstack_'
    ops: [{{unstack: {{axis: -3, index: 2}}}}]
  - target: '^pad_'
    ops: [{{pad: {{axis: 1, to: 7, value: 1}}}}]
  - target: '^slice_'
    ops: [{{slice: {{axis: 1, start: 1, length: 2}}}}]
  - target: '^rows_'
    ops: [{{take: {{axis: 0, start: 1, length: 2}}}}]
"""


def cases(dtypes, to_np=lambda a: a):
    """(source tensors, skeleton tensors, expected outputs, pairs) for these dtypes."""
    src, skel, want, pairs = {}, {}, {}, {}
    for dt in dtypes:
        a, b, c = (rand((3, 4, 5), dt) for _ in range(3))
        src.update({f"a_{dt}": a, f"b_{dt}": b, f"c_{dt}": c})
        st = np.stack([a, b, c], axis=1)
        src[f"st_{dt}"] = st
        want[f"stack_{dt}"] = st
        pairs[f"stack_{dt}"] = [f"a_{dt}", f"b_{dt}", f"c_{dt}"]
        want[f"unstack_{dt}"] = st[:, 2]
        pairs[f"unstack_{dt}"] = [f"st_{dt}"]
        want[f"pad_{dt}"] = np.concatenate([a, np.ones((3, 3, 5), dtype=a.dtype)], axis=1)
        pairs[f"pad_{dt}"] = [f"a_{dt}"]
        want[f"slice_{dt}"] = a[:, 1:3]
        pairs[f"slice_{dt}"] = [f"a_{dt}"]
        want[f"rows_{dt}"] = a[1:3]
        pairs[f"rows_{dt}"] = [f"a_{dt}"]
        if dt in FLOATS or dt == "bfloat16":
            f64 = [x.astype(np.float64) for x in (a, b, c)]
            want[f"sum_{dt}"] = f64[0] + f64[1] + f64[2]
            pairs[f"sum_{dt}"] = [f"a_{dt}", f"b_{dt}", f"c_{dt}"]
            want[f"scale_{dt}"] = f64[0] * M + A
            pairs[f"scale_{dt}"] = [f"a_{dt}"]
            w, bias = rand((4, 3, 2, 2), dt), rand((4,), dt)
            g, beta, mu = (rand((4,), dt) for _ in range(3))
            var = np.abs(rand((4,), dt)) + np.asarray(0.5, dtype=a.dtype)
            names = [f"{n}_{dt}" for n in ("w", "bias", "g", "beta", "mu", "var")]
            src.update(dict(zip(names, (w, bias, g, beta, mu, var))))
            want[f"foldw_{dt}"] = fold_ref(w, g, beta, mu, var)
            pairs[f"foldw_{dt}"] = [names[0]] + names[2:]
            want[f"foldb_{dt}"] = fold_ref(None, g, beta, mu, var, bias, "bias")
            pairs[f"foldb_{dt}"] = names[1:]
            want[f"foldb4_{dt}"] = fold_ref(None, g, beta, mu, var, None, "bias")
            pairs[f"foldb4_{dt}"] = names[2:]
    return src, want, pairs


def rules_with_pairs(pairs):
    lines = [RULES, "pairs:"]
    for t, s in pairs.items():
        lines.append(f"  {t}: [{', '.join(s)}]")
    lines.append("policy: {unused: ignore}")
    return "\n".join(lines) + "\n"


def rounded(x, dt):
    """The reference: float64 results rounded once to dt (layout results as they are)."""
    if x.dtype != np.float64 or dt == "float64":
        return x
    if dt == "bfloat16":
        return round_bf16(x)
    return x.astype(dt).astype(np.float64)


def test_numpy_dtypes():
    src, want, pairs = cases(ALL)
    np.savez(R.path("src.npz"), **src)
    np.savez(R.path("skel.npz"), **{k: np.zeros_like(rounded(v, k.rsplit("_", 1)[1])).astype(
        k.rsplit("_", 1)[1]) for k, v in want.items()})
    with open(R.path("ops.yaml"), "w") as f:
        f.write(rules_with_pairs(pairs))
    run("apply", "-q", "-r", R.path("ops.yaml"), R.path("src.npz"), R.path("skel.npz"),
        "-o", R.path("out.npz"))
    out = np.load(R.path("out.npz"))
    checked = set()
    for k, v in want.items():
        dt = k.rsplit("_", 1)[1]
        ref = rounded(v, dt).astype(dt)
        got = out[k]
        assert got.dtype == np.dtype(dt) and got.shape == ref.shape, (k, got.dtype, got.shape)
        assert got.tobytes() == ref.tobytes(), (k, got, ref)
        checked.add((k.split("_")[0], dt))
    ops = {o for o, _ in checked}
    assert ops == {"sum", "scale", "foldw", "foldb", "foldb4", "stack", "unstack", "pad", "slice",
                   "rows"}, ops
    assert {d for o, d in checked if o == "pad"} == set(ALL)
    assert {d for o, d in checked if o == "sum"} == set(FLOATS)


def test_bfloat16():
    src, want, pairs = cases(["float32"])
    # the same cases in bfloat16: sources rounded to bfloat16 first
    bsrc = {k.replace("float32", "bfloat16"): torch.from_numpy(round_bf16(v.astype(np.float64))
                                                              .astype(np.float32)).to(torch.bfloat16)
            for k, v in src.items()}
    bpairs = {k.replace("float32", "bfloat16"): [s.replace("float32", "bfloat16") for s in v]
              for k, v in pairs.items()}
    f64 = {k: v.to(torch.float64).numpy() for k, v in bsrc.items()}
    _, bwant, _ = cases_from(f64)
    torch.save(bsrc, R.path("src_bf16.pt"))
    torch.save({k: torch.zeros(v.shape, dtype=torch.bfloat16) for k, v in bwant.items()},
               R.path("skel_bf16.pt"))
    with open(R.path("bf16.yaml"), "w") as f:
        f.write(rules_with_pairs(bpairs))
    run("apply", "-q", "-r", R.path("bf16.yaml"), R.path("src_bf16.pt"), R.path("skel_bf16.pt"),
        "-o", R.path("out_bf16.pt"))
    out = torch.load(R.path("out_bf16.pt"))
    for k, v in bwant.items():
        ref = round_bf16(v) if k.split("_")[0] in ("sum", "scale", "foldw", "foldb", "foldb4") else v
        got = out[k].to(torch.float64).numpy()
        assert got.shape == ref.shape and np.array_equal(got, ref), (k, got, ref)


def cases_from(f):
    """want for the bfloat16 sources given as float64 arrays (names *_bfloat16)."""
    dt = "bfloat16"
    a, b, c, st = f[f"a_{dt}"], f[f"b_{dt}"], f[f"c_{dt}"], f[f"st_{dt}"]
    g, beta, mu, var, w, bias = (f[f"{n}_{dt}"] for n in ("g", "beta", "mu", "var", "w", "bias"))
    want = {f"stack_{dt}": np.stack([a, b, c], axis=1), f"unstack_{dt}": st[:, 2],
            f"pad_{dt}": np.concatenate([a, np.ones((3, 3, 5))], axis=1),
            f"slice_{dt}": a[:, 1:3], f"rows_{dt}": a[1:3], f"sum_{dt}": a + b + c,
            f"scale_{dt}": a * M + A, f"foldw_{dt}": fold_ref(w, g, beta, mu, var),
            f"foldb_{dt}": fold_ref(None, g, beta, mu, var, bias, "bias"),
            f"foldb4_{dt}": fold_ref(None, g, beta, mu, var, None, "bias")}
    return None, want, None


def test_arithmetic_refuses_integers():
    np.savez(R.path("i.npz"), a=np.arange(4, dtype=np.int32), b=np.arange(4, dtype=np.int32))
    np.savez(R.path("iskel.npz"), s=np.zeros(4, np.int32))
    with open(R.path("i.yaml"), "w") as f:
        f.write("graft: 1.1\npairs: {s: [a, b]}\ntransforms:\n  - ops: [sum]\n")
    p = run("plan", "-r", R.path("i.yaml"), R.path("i.npz"), R.path("iskel.npz"), check=False)
    assert p.returncode == 1, p
    # plan prints each finding once, under its entry on stdout
    assert f"{R.path('i.yaml')}:4: sum: int32 elements: only float16, bfloat16, float32 and " \
           "float64" in p.stdout and not p.stderr, p


def test_reverse():
    """stack <- unstack, pad <- slice, scale <- its inverse; sum and fold_bn refused by rule."""
    a, b = rand((2, 3), "float32"), rand((2, 3), "float32")
    np.savez(R.path("r_src.npz"), a=a, b=b)
    np.savez(R.path("r_skel.npz"), st=np.zeros((2, 2, 3), np.float32),
             pd=np.zeros((2, 5), np.float32), sc=np.zeros((2, 3), np.float32))
    with open(R.path("r.yaml"), "w") as f:
        f.write("graft: 1.1\npairs: {st: [a, b], pd: a, sc: b}\ntransforms:\n"
                "  - target: '^st$'\n    ops: [{stack: {axis: 0}}]\n"
                "  - target: '^pd$'\n    ops: [{pad: {axis: 1, to: 5, value: -7}}]\n"
                "  - target: '^sc$'\n    ops: [{scale: {mul: 4, add: 0.5}}]\n"
                "policy: {unused: error}\n")
    run("apply", "-q", "-r", R.path("r.yaml"), R.path("r_src.npz"), R.path("r_skel.npz"),
        "-o", R.path("r_out.npz"))
    o = np.load(R.path("r_out.npz"))
    assert np.array_equal(o["st"], np.stack([a, b])) and np.array_equal(o["pd"][:, 3:], np.full((2, 2), -7))
    # back: st feeds a and b through unstack, pd gives a's rows through slice
    with open(R.path("r2.yaml"), "w") as f:
        f.write("graft: 1.1\npairs: {st: [a, b]}\ntransforms:\n"
                "  - target: '^st$'\n    ops: [{stack: {axis: 0}}]\n"
                "ignore: {target: ['^(pd|sc)$']}\n")
    run("apply", "-q", "--reverse", "-r", R.path("r2.yaml"), R.path("r_out.npz"), R.path("r_src.npz"),
        "-o", R.path("r_back.npz"))
    back = np.load(R.path("r_back.npz"))
    assert back["a"].tobytes() == a.tobytes() and back["b"].tobytes() == b.tobytes()
    # pad and scale alone: their reverse gives the sources back (pad exactly; scale to the
    # rounding of its forward add)
    for name, text, key in (("pd", "{pad: {axis: 1, to: 5, value: -7}}", "a"),
                            ("sc", "{scale: {mul: 4, add: 0.5}}", "b")):
        with open(R.path(f"{name}.yaml"), "w") as f:
            f.write(f"graft: 1.1\npairs: {{{name}: {key}}}\ntransforms:\n  - ops: [{text}]\n"
                    f"ignore: {{target: ['^(?!{name}$)']}}\n")
        run("apply", "-q", "--reverse", "-r", R.path(f"{name}.yaml"), R.path("r_out.npz"),
            R.path("r_src.npz"), "-o", R.path(f"{name}_back.npz"))
        got = np.load(R.path(f"{name}_back.npz"))[key]
        if key == "a":
            assert got.tobytes() == a.tobytes(), (name, got)
        else:
            assert np.allclose(got, b, rtol=0, atol=1e-6) and not np.array_equal(got, o["sc"])
    p = run("plan", "--json", "--reverse", "-r", R.path("sc.yaml"), R.path("r_out.npz"),
            R.path("r_src.npz"))
    plan = {e["target"]: e for e in json.loads(p.stdout)["pairs"]}
    assert plan["b"]["ops"] == [{"scale": {"mul": 0.25, "add": -0.125}}], plan["b"]
    p = run("plan", "--json", "--reverse", "-r", R.path("r2.yaml"), R.path("r_out.npz"),
            R.path("r_src.npz"))
    plan = {e["target"]: e for e in json.loads(p.stdout)["pairs"]}
    assert plan["a"]["ops"] == [{"unstack": {"axis": 0, "index": 0}}], plan["a"]
    assert plan["b"]["ops"] == [{"unstack": {"axis": 0, "index": 1}}], plan["b"]
    # sum has no reverse: the entry is an error naming the rule line
    with open(R.path("s.yaml"), "w") as f:
        f.write("graft: 1.1\npairs: {sc: [a, b]}\ntransforms:\n  - ops: [sum]\n")
    np.savez(R.path("s_skel.npz"), sc=np.zeros((2, 3), np.float32))
    p = run("plan", "--reverse", "-r", R.path("s.yaml"), R.path("s_skel.npz"), R.path("r_src.npz"),
            check=False)
    assert p.returncode == 1 and f"cannot invert: {R.path('s.yaml')}:4: sum: has no reverse" in \
        p.stdout, p


def test_unstack_gathers_back():
    experts = rand((3, 4, 2), "float32")
    np.savez(R.path("u_src.npz"), experts=experts)
    np.savez(R.path("u_skel.npz"), **{f"e{k}": np.zeros((4, 2), "f4") for k in range(3)})
    with open(R.path("u.yaml"), "w") as f:
        f.write("graft: 1.1\npairs: {e0: experts, e1: experts, e2: experts}\ntransforms:\n" +
                "".join(f"  - target: '^e{k}$'\n    ops: [{{unstack: {{axis: 0, index: {k}}}}}]\n"
                        for k in range(3)) + "policy: {unused: error}\n")
    run("apply", "-q", "--strict", "-r", R.path("u.yaml"), R.path("u_src.npz"), R.path("u_skel.npz"),
        "-o", R.path("u_out.npz"))
    out = np.load(R.path("u_out.npz"))
    for k in range(3):
        assert out[f"e{k}"].tobytes() == experts[k].tobytes(), k
    np.savez(R.path("u_zero.npz"), experts=np.zeros_like(experts))
    plan = json.loads(run("plan", "--json", "--reverse", "-r", R.path("u.yaml"), R.path("u_out.npz"),
                          R.path("u_zero.npz")).stdout)
    assert plan["pairs"][0]["sources"] == ["e0", "e1", "e2"] and \
        plan["pairs"][0]["ops"] == [{"stack": {"axis": 0}}], plan
    run("apply", "-q", "--reverse", "-r", R.path("u.yaml"), R.path("u_out.npz"), R.path("u_zero.npz"),
        "-o", R.path("u_back.npz"))
    assert np.load(R.path("u_back.npz"))["experts"].tobytes() == experts.tobytes()


def test_pad_value_must_fit():
    np.savez(R.path("p.npz"), a=np.zeros((2, 2), np.uint8))
    np.savez(R.path("pskel.npz"), a=np.zeros((2, 4), np.uint8))
    with open(R.path("p.yaml"), "w") as f:
        f.write("graft: 1.1\ntransforms:\n  - ops: [{pad: {axis: 1, to: 4, value: -1}}]\n")
    p = run("plan", "-r", R.path("p.yaml"), R.path("p.npz"), R.path("pskel.npz"), check=False)
    assert p.returncode == 1 and "p.yaml:3: pad: value: element 0: -1 does not fit in uint8" in \
        p.stdout, p


R.check("every 1.1 op against NumPy, every NumPy dtype it accepts, bit for bit", test_numpy_dtypes)
R.check("every 1.1 op on bfloat16 (torch.save files), rounded once", test_bfloat16)
R.check("sum on integers is refused, naming the rule line", test_arithmetic_refuses_integers)
R.check("--reverse undoes stack, pad and scale; refuses sum naming the rule", test_reverse)
R.check("a pad value the dtype cannot hold is refused", test_pad_value_must_fit)
R.check("a stacked source split by unstack is stacked back by --reverse", test_unstack_gathers_back)
R.close()
