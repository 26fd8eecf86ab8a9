"""GGUF v3: graft's reader against an independent reader/writer (ggufref.py),
graft's writer read back by @huggingface/gguf and by ggufref, the quantize /
dequantize ops bit for bit against a NumPy port of ggml's reference code, and the
hostile corpus in samples/corrupt/gguf refused with one-line errors."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import ggufref  # noqa: E402
from graftlib import SOURCE_ROOT, Results, ls_json, run, sha256_of_array  # noqa: E402

R = Results()
rng = np.random.default_rng(16)

# metadata of every type, arrays of every element type, and a custom alignment
KVS = [
    ("general.architecture", 8, "llama"),
    ("general.alignment", 4, 64),
    ("t.u8", 0, 200), ("t.i8", 1, -100), ("t.u16", 2, 60000), ("t.i16", 3, -30000),
    ("t.u32", 4, 4000000000), ("t.i32", 5, -2000000000), ("t.f32", 6, 0.1),
    ("t.bool", 7, True), ("t.str", 8, "héllo wörld"), ("t.u64", 10, 2**63 + 5),
    ("t.i64", 11, -2**62), ("t.f64", 12, 1.0 / 3.0),
    ("t.arr.str", 9, (8, ["a", "", "ccc"])), ("t.arr.i32", 9, (5, [1, -2, 3])),
    ("t.arr.f32", 9, (6, [0.5, -1.25])), ("t.arr.bool", 9, (7, [True, False])),
    ("t.arr.u64", 9, (10, [0, 2**64 - 1])), ("t.arr.empty", 9, (4, [])),
    ("t.arr.u8", 9, (0, [1, 2, 255])), ("t.arr.f64", 9, (12, [2.5])),
]


def tensors_for(seed_values):
    """One tensor per supported type: (name, ggml type, ne, bytes, row-major array)."""
    out = []
    for name, gt, shape in [("f32", 0, (3, 5)), ("f16", 1, (2, 3, 4)), ("bf16", 30, (7,)),
                            ("f64", 28, (2, 2)), ("i8", 24, (9,)), ("i16", 25, (2, 3)),
                            ("i32", 26, (1, 1, 2, 3)), ("i64", 27, (4,))]:
        dt = ggufref.GGML[gt][0]
        if dt == "bfloat16":
            a = seed_values.integers(0, 2**16, size=shape, dtype=np.uint16)
        elif dt.startswith("float"):
            a = seed_values.standard_normal(shape).astype(dt)
        else:
            a = seed_values.integers(-100, 100, size=shape).astype(dt)
        out.append(("blk.0." + name, gt, list(reversed(shape)), a.tobytes(), a))
    for name, gt, q in [("q8_0", 8, ggufref.quantize_q8_0), ("q4_0", 2, ggufref.quantize_q4_0)]:
        x = seed_values.standard_normal((3, 64)).astype(np.float32)
        raw = q(x)
        bb = ggufref.GGML[gt][2]
        out.append(("blk.0." + name, gt, [64, 3], raw,
                    np.frombuffer(raw, np.uint8).reshape(3, 2, bb)))
    return out


def write_ref(path, tensors, kvs=KVS):
    return ggufref.write(path, kvs, [(n, gt, ne, raw) for n, gt, ne, raw, _ in tensors])


def t_listing():
    ts = tensors_for(rng)
    p = R.path("ref.gguf")
    write_ref(p, ts)
    got = ls_json(p)
    assert [e["name"] for e in got] == [t[0] for t in ts]
    for e, (name, gt, ne, raw, a) in zip(got, ts):
        want_dtype = "uint8" if ggufref.GGML[gt][0] is None else (
            "bfloat16" if gt == 30 else str(a.dtype))
        assert e["dtype"] == want_dtype, (name, e)
        assert e["shape"] == list(a.shape), (name, e["shape"], a.shape)
        assert e["sha256"] == sha256_of_array(np.frombuffer(raw, np.uint8)), name
        if gt in (2, 8):
            assert e["encoding"].startswith("ggml " + name.split(".")[-1] + ": blocks of 32"), e
        else:
            assert "encoding" not in e


def norm(kv):
    """A KV as the file holds it: f32 values rounded to float32."""
    k, t, v = kv
    f32 = lambda x: float(np.float32(x))  # noqa: E731
    if t == 6:
        return (k, t, f32(v))
    if t == 9 and v[0] == 6:
        return (k, t, (6, [f32(x) for x in v[1]]))
    return kv


def js_value(v):
    return int(v["bigint"]) if isinstance(v, dict) and "bigint" in v else v


def same_value(t, want, got):
    if t == 9:
        et, items = want
        assert len(items) == len(got), (want, got)
        for w, g in zip(items, got):
            same_value(et, w, g)
    elif t == 6:
        assert float(np.float32(want)) == js_value(got), (want, got)
    else:
        assert want == js_value(got), (want, got)


def t_transplant_read_by_hf_and_ref():
    skel_ts = tensors_for(rng)
    skel = R.path("skel.gguf")
    write_ref(skel, skel_ts)
    new_ts = tensors_for(np.random.default_rng(99))
    # the source: a GGUF with other metadata and the default alignment
    src = R.path("new.gguf")
    write_ref(src, new_ts, kvs=[("general.architecture", 8, "other")])
    out = R.path("out.gguf")
    run("apply", src, skel, "-o", out)
    # the same file ggufref writes with the new data: only tensor data changed
    want = write_ref(R.path("want.gguf"), new_ts)
    got = open(out, "rb").read()
    assert got == want, "graft's GGUF differs from the reference layout"
    # every value read back by the independent reader
    version, kvs, tensors, start = ggufref.read(out)
    assert version == 3 and kvs == [norm(k) for k in KVS]
    for (name, gt, ne, off, raw), (n2, g2, ne2, raw2, _) in zip(tensors, new_ts):
        assert (name, gt, ne, raw) == (n2, g2, ne2, raw2), name
        assert off % 64 == 0
    # and by Hugging Face's parser
    js = ggufref.hf_parse(out)
    md = js["metadata"]
    assert js_value(md["version"]) == 3
    assert js_value(md["tensor_count"]) == len(tensors)
    assert js_value(md["kv_count"]) == len(KVS)
    for k, t, v in KVS:
        same_value(t, v, md[k])
    assert js_value(js["tensorDataOffset"]) == start
    for ti, (name, gt, ne, off, _) in zip(js["tensorInfos"], tensors):
        assert ti["name"] == name and ti["dtype"] == gt, ti
        assert [js_value(x) for x in ti["shape"]] == ne, ti
        assert js_value(ti["offset"]) == off, ti


def rules(name, text):
    path = R.path(name)
    with open(path, "w") as f:
        f.write(text)
    return path


def t_quant_ops_bit_for_bit():
    """The quantize / dequantize ops of the op table against a NumPy port of
    ggml's quantize_row_q8_0_ref / quantize_row_q4_0_ref / dequantize_row_*:
    random blocks at many scales, exact halves, zeros, one-hot and
    negative-max blocks, through graft convert into GGUF and back."""
    parts = [rng.standard_normal(32 * 200) * s for s in (1e-3, 1, 1e4)]
    parts.append(np.repeat(np.arange(-64, 64) * 0.5, 2)[:256])   # ties at .5 steps
    parts.append(np.zeros(32))
    parts.append(np.eye(32)[3] * -7.0)
    parts.append(rng.integers(-127, 128, 32 * 50) / 127.0 * 3.3)
    x = np.concatenate(parts).astype(np.float32).reshape(-1, 64)
    src = R.path("x.npz")
    np.savez(src, x=x, h=x[:8].astype(np.float16))
    for name, gt, ref in [("q8_0", 8, ggufref.quantize_q8_0), ("q4_0", 2, ggufref.quantize_q4_0)]:
        r = rules(f"{name}.yaml", f"graft: 1.1\ntransforms:\n  - ops: [{{quantize: {name}}}]\n")
        out = R.path(f"x_{name}.gguf")
        p = run("convert", "-r", r, src, "-o", out, "--meta", "general.architecture=test", "-q")
        assert "2 quantized" in p.stdout, p.stdout
        _, _, tensors, _ = ggufref.read(out)
        got = {n: (g, ne, raw) for n, g, ne, _, raw in tensors}
        want = ref(x)
        assert got["x"][:2] == (gt, [64, x.shape[0]]), got["x"][:2]
        bb = ggufref.GGML[gt][2]
        bad = [i for i in range(0, len(want), bb) if got["x"][2][i:i + bb] != want[i:i + bb]]
        assert not bad, f"{name}: {len(bad)} of {len(want) // bb} blocks differ, first at byte {bad[0]}"
        assert got["h"][2] == ref(x[:8].astype(np.float16).astype(np.float32)), name
        # and back: the dequantize op, into npz
        r = rules(f"de{name}.yaml", f"graft: 1.1\ntransforms:\n  - ops: [{{dequantize: {name}}}]\n")
        back = R.path(f"x_{name}.npz")
        run("convert", "-r", r, out, "-o", back, "-q")
        with np.load(back) as z:
            assert z["x"].dtype == np.float32 and z["x"].shape == x.shape
            assert np.array_equal(z["x"].reshape(-1), ggufref.dequantize(gt, want)), name


def t_quantize_into_gguf_skeleton():
    """apply: float weights into a GGUF skeleton's q8_0 tensor through the op."""
    skel = R.path("qskel.gguf")
    x0 = np.zeros((2, 64), np.float32)
    ggufref.write(skel, [("general.architecture", 8, "llama")],
                  [("w", 8, [64, 2], ggufref.quantize_q8_0(x0)), ("b", 0, [2], bytes(8))])
    x = rng.standard_normal((2, 64)).astype(np.float32)
    b = np.array([1.5, -2], np.float32)
    src = R.path("qsrc.npz")
    np.savez(src, w=x, b=b)
    r = rules("qapply.yaml", "graft: 1.1\ntransforms:\n  - {source: '^w$', ops: [{quantize: q8_0}]}\n")
    out = R.path("qout.gguf")
    run("apply", "-r", r, src, skel, "-o", out)
    _, kvs, tensors, _ = ggufref.read(out)
    assert kvs == [("general.architecture", 8, "llama")]
    assert tensors[0][4] == ggufref.quantize_q8_0(x) and tensors[1][4] == b.tobytes()


def t_corpus():
    d = os.path.join(SOURCE_ROOT, "samples", "corrupt", "gguf")
    lines = [ln.split("\t") for ln in open(os.path.join(d, "EXPECTED")).read().splitlines() if ln]
    assert len(lines) >= 8
    for name, frag in lines:
        p = run("ls", os.path.join(d, name), check=False)
        err = p.stderr.strip()
        assert p.returncode == 2, (name, p.returncode, err)
        assert "\n" not in err and err.startswith("graft: ") and name in err, (name, err)
        assert frag in err, (name, frag, err)


R.check("ls: every tensor type, shapes row-major, quantized block layout", t_listing)
R.check("apply into a GGUF skeleton: byte layout kept, read by @huggingface/gguf and ggufref",
        t_transplant_read_by_hf_and_ref)
R.check("quantize / dequantize ops equal ggml's reference bit for bit", t_quant_ops_bit_for_bit)
R.check("apply: the quantize op fills a GGUF skeleton's q8_0 tensor", t_quantize_into_gguf_skeleton)
R.check("hostile corpus refused with one-line errors", t_corpus)
R.close()
