"""graft convert: every PyTorch fixture into safetensors equals torch.load
(read back by a plain decoder), into a PyTorch zip that torch.load reads,
npz/npy by numpy, sharded safetensors named and split as huggingface_hub
does, rules renames/ops/ignores, --strict, and GGUF: read by ggufref and
@huggingface/gguf, GGUF -> npz -> GGUF byte-identical, --quantize q8_0 bit
for bit with ggml's reference."""
import glob
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import ggufref  # noqa: E402
from graftlib import FIXTURES, GRAFT, Results, flatten, run  # noqa: E402
from graftlib import torch_as_numpy as as_numpy  # noqa: E402

R = Results()
ST_DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I8": "i1", "I16": "<i2", "I32": "<i4",
             "I64": "<i8", "U8": "u1", "BOOL": "?", "BF16": "<u2"}


def st_decode(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b:8 + n + e], ST_DTYPES[info["dtype"]]).reshape(info["shape"])
    return meta, out


def pytorch_fixtures():
    files = sorted(glob.glob(os.path.join(FIXTURES, "pytorch_zip", "*", "*.pt*")) +
                   glob.glob(os.path.join(FIXTURES, "pytorch_legacy", "*", "*.pt*")))
    assert len(files) >= 20, files
    return files


def t_fixtures_to_safetensors():
    for f in pytorch_fixtures():
        out = R.path(os.path.basename(f) + ".safetensors")
        p = run("convert", f, "-o", out, "-q")
        want = dict(flatten(torch.load(f, map_location="cpu")))
        _, got = st_decode(out)
        assert list(got) == list(want), (f, list(got), list(want))
        for k, t in want.items():
            a = as_numpy(t)
            assert got[k].shape == a.shape and np.array_equal(got[k], a, equal_nan=True), (f, k)
        assert f"{len(want)} tensors written as safetensors" in p.stdout, p.stdout


def t_fixtures_to_pytorch():
    for f in pytorch_fixtures():
        out = R.path(os.path.basename(f) + ".conv.pt")
        run("convert", f, "-o", out, "-q")
        want = dict(flatten(torch.load(f, map_location="cpu")))
        got = torch.load(out, map_location="cpu")
        assert isinstance(got, dict) and list(got) == list(want), (f, list(got))
        for k, t in want.items():
            assert got[k].dtype == t.dtype and got[k].shape == t.shape, (f, k)
            assert torch.equal(got[k], t) or torch.allclose(got[k], t, equal_nan=True), (f, k)


def checkpoint_fixture():
    return os.path.join(FIXTURES, "pytorch_zip", "nn_adder_checkpoint_torch_pre21", "checkpoint_1000.pth")


def t_dropped_and_strict():
    f = checkpoint_fixture()
    out = R.path("ck.safetensors")
    p = run("convert", f, "-o", out)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "dropped 17 non-tensor values" in lines[0], p.stderr
    os.remove(out)
    p = run("convert", "--strict", f, "-o", out, check=False)
    err = p.stderr.strip()
    assert p.returncode == 2 and "\n" not in err and "--strict" in err and "17 non-tensor" in err, err
    assert not os.path.exists(out)


def t_npz_npy():
    f = os.path.join(FIXTURES, "pytorch_zip", "burn_mnist_state_dict", "mnist.pt")
    want = dict(flatten(torch.load(f, map_location="cpu")))
    out = R.path("mnist.npz")
    run("convert", f, "-o", out, "-q")
    with np.load(out) as z:
        assert list(z.files) == list(want)
        for k, t in want.items():
            assert np.array_equal(z[k], t.numpy()), k
    one = os.path.join(FIXTURES, "pytorch_zip", "burn_reader_float64", "float64.pt")
    (name, t), = flatten(torch.load(one))
    run("convert", one, "-o", R.path("one.npy"), "-q")
    assert np.array_equal(np.load(R.path("one.npy")), t.numpy())
    p = run("convert", f, "-o", R.path("many.npy"), check=False)
    assert p.returncode == 2 and "holds one array" in p.stderr, p.stderr


def hf_split(sizes, max_shard):
    """huggingface_hub split_state_dict_into_shards_factory, on (name, bytes)."""
    shards, cur, cur_size = [], [], 0
    for name, size in sizes:
        if size > max_shard:
            shards.append([name])
            continue
        if cur_size + size > max_shard:
            shards.append(cur)
            cur, cur_size = [], 0
        cur.append(name)
        cur_size += size
    if cur:
        shards.append(cur)
    return shards


def t_sharded():
    sd = {"a": torch.randn(10, 10), "big": torch.randn(100, 10), "b": torch.randn(20),
          "c": torch.randn(30, 5), "d": torch.arange(7)}
    src = R.path("sd.pt")
    torch.save(sd, src)
    out = R.path("model.safetensors")
    p = run("convert", src, "-o", out, "--shard-size", "1000B", "-q")
    index = R.path("model.safetensors.index.json")
    assert p.stdout.startswith(index), p.stdout
    idx = json.load(open(index))
    shards = hf_split([(k, v.numel() * v.element_size()) for k, v in sd.items()], 1000)
    n = len(shards)
    assert n == 3 and shards[0] == ["big"], shards  # the big tensor closes first
    want_map = {k: f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i, s in enumerate(shards) for k in s}
    assert idx["weight_map"] == want_map, idx
    assert idx["metadata"] == {"total_size": sum(v.numel() * v.element_size() for v in sd.values())}
    for i, s in enumerate(shards):
        meta, got = st_decode(R.path(f"model-{i + 1:05d}-of-{n:05d}.safetensors"))
        assert meta == {"format": "pt"} and sorted(got) == sorted(s), (meta, got.keys(), s)
        for k in s:
            assert np.array_equal(got[k], sd[k].numpy()), k
    # the set reads back through its index
    listed = json.loads(run("ls", "--json", index).stdout)
    assert sorted(e["name"] for e in listed) == sorted(sd)


def t_rules():
    sd = {"enc.fc.weight": torch.randn(3, 4), "enc.fc.bias": torch.randn(3),
          "num_batches_tracked": torch.tensor(5)}
    src = R.path("r.pt")
    torch.save(sd, src)
    rules = R.path("r.yaml")
    with open(rules, "w") as f:
        f.write("graft: 1\nrename:\n  source:\n    - {match: '^enc\\.fc\\.', to: 'dense.'}\n"
                "ignore:\n  source: ['num_batches_tracked$']\n"
                "transforms:\n  - {source: 'weight$', ops: [transpose, {cast: float16}]}\n")
    out = R.path("r.safetensors")
    p = run("convert", "-r", rules, src, "-o", out, "-q")
    assert "1 ignored by the rules" in p.stdout, p.stdout
    _, got = st_decode(out)
    assert list(got) == ["dense.weight", "dense.bias"], list(got)
    assert np.array_equal(got["dense.weight"], sd["enc.fc.weight"].numpy().T.astype(np.float16))
    assert np.array_equal(got["dense.bias"], sd["enc.fc.bias"].numpy())
    # two sources renamed to one name: refused
    with open(rules, "w") as f:
        f.write("graft: 1\nrename:\n  source:\n    - {match: '\\.(weight|bias)$', to: '.w'}\n")
    p = run("convert", "-r", rules, src, "-o", R.path("dup.safetensors"), check=False)
    assert p.returncode == 2 and "both renamed to 'enc.fc.w'" in p.stderr, p.stderr


META = [("general.architecture", "str", 8, "llama"), ("general.name", "str", 8, "tiny"),
        ("llama.block_count", "u32", 4, 2), ("llama.rope.freq_base", "f32", 6, 10000.0),
        ("t.flag", "bool", 7, True), ("t.i64", "i64", 11, -5), ("t.f64", "f64", 12, 0.25)]


def meta_args():
    out = []
    for k, ty, _, v in META:
        out += ["--meta", f"{k}:{ty}={str(v).lower() if ty == 'bool' else v}"]
    return out


def t_gguf_round_trip():
    rng = np.random.default_rng(3)
    arrays = {"token_embd.weight": rng.standard_normal((8, 4)).astype(np.float32),
              "blk.0.attn_norm.weight": rng.standard_normal(4).astype(np.float16),
              "blk.0.ids": rng.integers(-9, 9, (2, 3)).astype(np.int32),
              "blk.0.d": rng.standard_normal((1, 2, 3, 2)),
              "blk.0.b": rng.integers(-9, 9, 5).astype(np.int8)}
    gt = {"float32": 0, "float16": 1, "int32": 26, "float64": 28, "int8": 24}
    kvs = [(k, t, v) for k, _, t, v in META]
    ref = R.path("ref.gguf")
    ggufref.write(ref, kvs, [(k, gt[str(a.dtype)], list(reversed(a.shape)), a.tobytes()) for k, a in arrays.items()])
    npz = R.path("ref.npz")
    p = run("convert", ref, "-o", npz, "-q")
    assert "dropped 7 non-tensor values (7 metadata keys)" in p.stderr, p.stderr
    with np.load(npz) as z:
        assert list(z.files) == list(arrays)
        for k, a in arrays.items():
            assert np.array_equal(z[k], a), k
    back = R.path("back.gguf")
    run("convert", npz, "-o", back, "-q", *meta_args())
    assert open(back, "rb").read() == open(ref, "rb").read(), "GGUF -> npz -> GGUF changed bytes"
    js = ggufref.hf_parse(back)
    assert js["metadata"]["general.architecture"] == "llama"
    assert [t["name"] for t in js["tensorInfos"]] == list(arrays)
    p = run("convert", npz, "-o", R.path("noarch.gguf"), check=False)
    assert p.returncode == 2 and "general.architecture" in p.stderr, p.stderr


def t_rules_meta():
    src = R.path("m.npz")
    np.savez(src, w=np.arange(6, dtype=np.float32).reshape(2, 3))
    rules = R.path("meta.yaml")
    with open(rules, "w") as f:
        f.write("graft: 1.1\nmeta:\n  - general.architecture=llama\n  - llama.block_count:u32=2\n"
                "  - general.name=from-rules\n")
    out = R.path("meta.gguf")
    run("convert", "-r", rules, src, "-o", out, "-q", "--meta", "general.name=from-cli")
    _, kvs, _, _ = ggufref.read(out)
    # rules first, a later --meta for the same key wins
    assert kvs == [("general.architecture", 8, "llama"), ("llama.block_count", 4, 2),
                   ("general.name", 8, "from-cli")], kvs
    with open(rules, "w") as f:
        f.write("graft: 1.1\nmeta: [novalue]\n")
    p = run("convert", "-r", rules, src, "-o", R.path("bad.gguf"), check=False)
    assert p.returncode == 2 and "meta.yaml:2:8: meta: 'novalue' is not KEY=VALUE" in p.stderr, p.stderr
    with open(rules, "w") as f:
        f.write("graft: 1\nmeta: [a=b]\n")
    p = run("convert", "-r", rules, src, "-o", R.path("bad.gguf"), check=False)
    assert p.returncode == 2 and "meta.yaml:2:7: meta: needs graft: 1.1" in p.stderr, p.stderr


def t_gguf_quantize():
    rng = np.random.default_rng(5)
    sd = {"w": torch.from_numpy(rng.standard_normal((4, 64)).astype(np.float32)),
          "h": torch.from_numpy(rng.standard_normal((2, 32)).astype(np.float16)),
          "norm": torch.randn(64), "odd": torch.randn(3, 33)}
    src = R.path("q.pt")
    torch.save(sd, src)
    for q, gtype, ref in [("q8_0", 8, ggufref.quantize_q8_0), ("q4_0", 2, ggufref.quantize_q4_0)]:
        out = R.path(f"q_{q}.gguf")
        p = run("convert", src, "-o", out, "-q", "--quantize", q, "--meta", "general.architecture=x")
        assert f"2 quantized {q}" in p.stdout, p.stdout
        _, kvs, tensors, _ = ggufref.read(out)
        got = {n: (g, ne, raw) for n, g, ne, _, raw in tensors}
        assert got["w"][:2] == (gtype, [64, 4]) and got["w"][2] == ref(sd["w"].numpy())
        assert got["h"][:2] == (gtype, [32, 2]) and got["h"][2] == ref(sd["h"].float().numpy())
        assert got["norm"][0] == 0 and got["odd"][0] == 0  # 1-D and partial rows stay f32
        js = ggufref.hf_parse(out)
        assert [t["dtype"] for t in js["tensorInfos"]] == [gtype, gtype, 0, 0], js["tensorInfos"]
    p = run("convert", src, "-o", R.path("q.safetensors"), "--quantize", "q8_0", check=False)
    assert p.returncode == 2 and "GGUF only" in p.stderr


def t_tf_checkpoint():
    import test_tf  # its table / protobuf / CRC-32C decoder, independent of graft
    f = os.path.join(FIXTURES, "pytorch_zip", "burn_mnist_state_dict", "mnist.pt")
    want = dict(flatten(torch.load(f, map_location="cpu")))
    os.makedirs(R.path("tf"), exist_ok=True)
    prefix = R.path("tf/model.ckpt")
    p = run("convert", f, "--to", "tf-checkpoint", "-o", prefix, "-q")
    assert p.stdout.startswith(prefix + ".index"), p.stdout
    got = test_tf.read_bundle(prefix)
    assert [g[0] for g in got] == sorted(want), [g[0] for g in got]
    for name, dtype, dims, data in got:
        a = want[name].numpy()
        assert dtype == str(a.dtype) and list(dims) == list(a.shape), (name, dtype, dims)
        assert data == a.tobytes(), name
    assert 'model_checkpoint_path: "model.ckpt"' in open(R.path("tf/checkpoint")).read()


def t_gguf_dequantize():
    rng = np.random.default_rng(8)
    x8 = rng.standard_normal((3, 64)).astype(np.float32)
    x4 = rng.standard_normal((2, 32)).astype(np.float32)
    f = rng.standard_normal((5,)).astype(np.float32)
    src = R.path("deq.gguf")
    ggufref.write(src, [("general.architecture", 8, "x")],
                  [("a", 8, [64, 3], ggufref.quantize_q8_0(x8)), ("b", 2, [32, 2], ggufref.quantize_q4_0(x4)),
                   ("f", 0, [5], f.tobytes())])
    out = R.path("deq.npz")
    p = run("convert", "--dequantize", src, "-o", out, "-q")
    assert "2 dequantized" in p.stdout, p.stdout
    with np.load(out) as z:
        assert np.array_equal(z["a"], ggufref.dequantize(8, ggufref.quantize_q8_0(x8)).reshape(3, 64))
        assert np.array_equal(z["b"], ggufref.dequantize(2, ggufref.quantize_q4_0(x4)).reshape(2, 32))
        assert np.array_equal(z["f"], f)
        assert np.abs(z["a"] - x8).max() < np.abs(x8).max() / 127
    # then ops on the float32 values: a transpose after dequantizing
    rules = R.path("deq.yaml")
    with open(rules, "w") as fh:
        fh.write("graft: 1\ntransforms:\n  - {source: '^a$', ops: [transpose]}\n")
    run("convert", "--dequantize", "-r", rules, src, "-o", R.path("deqT.npz"), "-q")
    with np.load(R.path("deqT.npz")) as z:
        assert np.array_equal(z["a"], ggufref.dequantize(8, ggufref.quantize_q8_0(x8)).reshape(3, 64).T)
    # without --dequantize the blocks stay as they are
    run("convert", src, "-o", R.path("raw.npz"), "-q")
    with np.load(R.path("raw.npz")) as z:
        assert z["a"].dtype == np.uint8 and z["a"].shape == (3, 2, 34)
        assert z["a"].tobytes() == ggufref.quantize_q8_0(x8)


def t_refuses_source_as_output():
    f = R.path("self.npz")
    np.savez(f, a=np.arange(3))
    before = open(f, "rb").read()
    p = run("convert", f, "-o", f, check=False)
    assert p.returncode == 2 and "overwrite the input" in p.stderr, p.stderr
    assert open(f, "rb").read() == before


def t_manifest():
    f = os.path.join(FIXTURES, "pytorch_zip", "burn_conv2d", "conv2d.pt")
    man = R.path("m.json")
    run("convert", f, "-o", R.path("m.safetensors"), "-q", "--manifest", man)
    m = json.load(open(man))
    assert len(m["tensors"]) == 3, m
    out = m["output"]["files"][0]
    import hashlib
    assert out["sha256"] == hashlib.sha256(open(R.path("m.safetensors"), "rb").read()).hexdigest()


def syncs(*args):
    """The fsync and writeback calls of one graft run, from strace."""
    log = R.path("strace.log")
    env = dict(os.environ)  # LeakSanitizer cannot stop the world under ptrace
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    subprocess.run(["strace", "-f", "-qq", "-o", log, "-e", "trace=fsync,fdatasync,sync_file_range",
                    GRAFT, "convert", *args, "-q"], check=True, env=env)
    calls = [ln.split()[1].split("(")[0] for ln in open(log) if "(" in ln]
    return {c: calls.count(c) for c in set(calls)}


def t_no_sync():
    # 40 MB: past the 32 MB step at which writeback is asked for
    src = R.path("big.npy")
    np.save(src, np.arange(10 << 20, dtype=np.float32).reshape(2560, 4096))
    a, b = R.path("synced.safetensors"), R.path("unsynced.safetensors")
    got = syncs(src, "-o", a)
    assert got.get("fsync", 0) >= 1 and got.get("sync_file_range", 0) >= 1, got
    got = syncs(src, "-o", b, "--no-sync")
    assert got == {}, got
    assert open(a, "rb").read() == open(b, "rb").read()
    assert not [f for f in os.listdir(os.path.dirname(b)) if ".graft-" in f]


def t_write_pieces():
    # Writes of an output go in pieces of at most 64 KiB (sink.h: larger
    # ones took page-cache folios this VM's host had reclaimed, 5x slower)
    src = R.path("big2.npy")
    np.save(src, np.arange(10 << 20, dtype=np.float32).reshape(2560, 4096))
    log = R.path("writes.log")
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    out = R.path("pieces.npz")
    subprocess.run(["strace", "-f", "-qq", "-o", log, "-e", "trace=write,pwrite64",
                    GRAFT, "convert", src, "-o", out, "-q"], check=True, env=env)
    sizes = [int(ln.rsplit("=", 1)[1]) for ln in open(log) if "write" in ln and "= " in ln]
    assert sum(sizes) >= 40 << 20 and max(sizes) <= 64 << 10, (sum(sizes), max(sizes))
    assert np.array_equal(np.load(out)["big2"], np.load(src))


R.check("every PyTorch fixture to safetensors equals torch.load", t_fixtures_to_safetensors)
R.check("every PyTorch fixture to a PyTorch zip that torch.load reads", t_fixtures_to_pytorch)
R.check("non-tensor values dropped with one line, refused with --strict", t_dropped_and_strict)
R.check("npz and npy targets read by numpy", t_npz_npy)
R.check("sharded safetensors as huggingface_hub splits and names them", t_sharded)
R.check("rules: source renames, ignores, transforms; duplicate names refused", t_rules)
R.check("GGUF -> npz -> GGUF byte-identical; read by @huggingface/gguf", t_gguf_round_trip)
R.check("GGUF metadata from a rules file's meta: section and --meta", t_rules_meta)
R.check("--quantize q8_0/q4_0 into GGUF bit for bit with ggml's reference", t_gguf_quantize)
R.check("--dequantize: GGUF q8_0/q4_0 to float32 as ggml's dequantize_row_*", t_gguf_dequantize)
R.check("TF checkpoint V2 read by an independent bundle decoder", t_tf_checkpoint)
R.check("the source is never the output", t_refuses_source_as_output)
R.check("--manifest records the conversion", t_manifest)
R.check("--no-sync: no fsync and no writeback requests, the same bytes", t_no_sync)
R.check("outputs are written in pieces of at most 64 KiB", t_write_pieces)
R.close()
