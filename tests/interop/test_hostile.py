"""Issue 18: graft on hostile and odd files made like the ones a campaign on
real files found (samples/gen/hostile.py makes them).  Each is refused with
one line naming the file and what is wrong (exit 2, nothing on stdout), or
read as its reference reader reads it.  Where a reference reader exists, it
is asked too: numpy refuses what graft refuses.
Run with /usr/bin/python3.
"""
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from graftlib import SOURCE_ROOT, Results, ls_json, peak_rss, run, sha256_of_array  # noqa: E402

sys.path.insert(0, os.path.join(SOURCE_ROOT, "samples", "gen"))
import hostile  # noqa: E402

R = Results()


def refused(path, *needles, args=("ls",)):
    """graft ARGS PATH exits 2 with one stderr line holding every needle."""
    p = run(*args, path, check=False)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2, f"exit {p.returncode}: {p.stderr!r} {p.stdout[:200]!r}"
    assert len(lines) == 1, p.stderr
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]


def numpy_refuses(path):
    try:
        with np.load(path) as z:
            for k in z.files:
                z[k]
    except (zipfile.BadZipFile, ValueError, OSError, KeyError):
        return
    raise AssertionError(f"numpy read {path}")


def npz_bad_crc():
    p = hostile.npz_bad_crc(R.tmp)
    numpy_refuses(p)
    refused(p, "bad_crc.npz", "'w.npy'", "CRC-32")


def npz_shared_local_header():
    p = hostile.npz_shared_local_header(R.tmp)
    refused(p, "shared_header.npz", "two entries are named 'w.npy'")


def npz_name_mismatch():
    p = hostile.npz_name_mismatch(R.tmp)
    numpy_refuses(p)
    refused(p, "name_mismatch.npz", "entry 'v.npy'", "names 'w.npy'")


def torch_bad_crc():
    p = hostile.torch_bad_crc(R.tmp)
    refused(p, "bad_crc.pt", "data/0'", "CRC-32")


def torch_huge_frame():
    p = hostile.torch_huge_frame(R.tmp)
    refused(p, "huge_frame.pt", "data.pkl", "FRAME of 4611686018427387904 bytes")


def keras_skeleton_names():
    np.savez(R.path("w.npz"), **{"layers/dense/vars/0": np.ones((2, 3), "f4"),
                                 "layers/dense/vars/1": np.ones(3, "f4")})
    good = hostile._keras(R.path("good.keras"))
    run("apply", "-o", R.path("good_out.keras"), R.path("w.npz"), good)  # the control
    for make, needle in ((hostile.keras_dotdot_member, "entry '../../evil.txt' has a '..' component"),
                         (hostile.keras_duplicate_weights, "two entries are named 'model.weights.h5'")):
        p = make(R.tmp)
        out = R.path("out_" + os.path.basename(p))
        refused(p, os.path.basename(p), needle)
        refused(p, os.path.basename(p), needle, args=("apply", "-o", out, R.path("w.npz")))
        assert not [f for f in os.listdir(R.tmp) if f.startswith("out_")], os.listdir(R.tmp)


def zip_member_names_everywhere():
    """A '..' member name is refused in a torch zip as in a .keras, and no zip
    graft writes gets one from a tensor name (npz: ../../evil.npy)."""
    t = hostile.torch_dotdot_member(R.tmp)
    np.savez(R.path("w2.npz"), w=np.zeros((2, 3), "f4"))
    refused(t, "dotdot.pt", "'..' component")
    refused(t, "dotdot.pt", "'..' component", args=("apply", "-o", R.path("o.pt"), R.path("w2.npz")))
    z = hostile.npz_dotdot_member(R.tmp)
    with np.load(z) as f:
        assert sorted(f.files) == ["../../evil", "w"]
    assert [x["name"] for x in ls_json(z)] == ["w", "../../evil"]
    for args in (("apply", "-o", R.path("o.npz"), z), ("convert", "-o", R.path("o.npz"))):
        refused(z, "o.npz: zip: entry '../../evil.npy' has a '..' component", args=args)
    assert not os.path.exists(R.path("o.npz")) and not os.path.exists(R.path("o.pt"))


def keras_copied_member_crc():
    """A .keras skeleton's copied member (config.json) that fails its CRC-32
    was copied with it: exit 0 and an output zipfile refuses."""
    p = hostile.keras_bad_crc_config(R.tmp)
    try:
        zipfile.ZipFile(p).read("config.json")
        raise AssertionError("zipfile read it")
    except zipfile.BadZipFile:
        pass
    np.savez(R.path("w3.npz"), **{"layers/dense/vars/0": np.ones((2, 3), "f4"),
                                  "layers/dense/vars/1": np.ones(3, "f4")})
    out = R.path("crc_out.keras")
    refused(p, "bad_crc_config.keras: zip: entry 'config.json': CRC-32",
            args=("apply", "-o", out, R.path("w3.npz")))
    assert not os.path.exists(out)


def ort_outputs(path):
    """onnxruntime-node's outputs of a model without inputs (the oracle)."""
    js = os.path.join(SOURCE_ROOT, "tests", "js")
    p = subprocess.run(["node", "ort_outputs.mjs", os.path.abspath(path)], cwd=js,
                       capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def onnx_constant_forms():
    """Every Constant form is listed with the values onnxruntime computes, and
    a skeleton's are rewritten with a source's (onnxruntime runs the output)."""
    skel = hostile.onnx_constants(R.tmp)
    want = ort_outputs(skel)
    names = {t["name"]: t for t in ls_json(skel)}
    assert set(names) == set(want), (sorted(names), sorted(want))
    for n, o in want.items():
        t = names[n]
        assert t["shape"] == o["dims"], (n, t, o)
        if o["type"] == "string":
            assert t["dtype"] == "string", t
            continue
        a = np.array([int(x) for x in o["data"]] if o["type"] == "int64" else o["data"],
                     {"int64": "<i8", "float32": "<f4"}[o["type"]]).reshape(o["dims"])
        assert t["dtype"] == o["type"] and t["sha256"] == sha256_of_array(a), (n, t, o)
    new = {"c_int": 9, "c_float": -3.0, "c_ints": [4, 5, -6], "c_floats": [7.5, 8.0],
           "c_str": "yo", "c_strs": ["x", "yzw"], "c_t": [3.0, 4.0]}
    src = hostile.onnx_constants(R.tmp, "constants_src.onnx", new)
    out = R.path("constants_out.onnx")
    run("apply", "-o", out, src, skel)
    assert ort_outputs(out) == ort_outputs(src)


def onnx_sparse_forms():
    """A Constant's sparse_value and a graph's sparse_initializer are listed
    dense with the values onnxruntime computes (they were dropped); a
    skeleton's are rewritten with a source's (onnxruntime runs the output),
    or copied byte for byte when unchanged; indices the ONNX checker refuses
    are refused, naming the tensor."""
    import onnx
    skel = hostile.onnx_sparse(R.tmp)
    want = {k[:-len("_out")]: o for k, o in ort_outputs(skel).items()}
    names = {t["name"]: t for t in ls_json(skel)}
    assert set(names) == set(want), (sorted(names), sorted(want))
    for n, o in want.items():
        a = np.array([int(x) for x in o["data"]] if o["type"] == "int64" else o["data"],
                     {"int64": "<i8", "float32": "<f4"}[o["type"]]).reshape(o["dims"])
        t = names[n]
        assert t["dtype"] == o["type"] and t["shape"] == o["dims"], (n, t, o)
        assert t["sha256"] == sha256_of_array(a), (n, t, o)
    src = hostile.onnx_sparse(R.tmp, "sparse_src.onnx",
                              {"c_sp": [0.0, 9.0, -1.0], "s_init": [5, 6], "d_init": [1.0, 2.0]})
    out = R.path("sparse_out.onnx")
    run("apply", "-o", out, src, skel)
    onnx.checker.check_model(onnx.load(out))
    assert ort_outputs(out) == ort_outputs(src) != ort_outputs(skel)
    same = R.path("sparse_same.onnx")
    run("apply", "-o", same, skel, skel)
    assert open(same, "rb").read() == open(skel, "rb").read()
    p = run("diff", src, skel, check=False)
    assert p.returncode == 1 and "c_sp" in p.stdout and "s_init" in p.stdout, (p.stdout, p.stderr)
    for tag, idx, needle in (("unsorted", [[1, 3], [0, 1], [2, 0]], "comes before the one before"),
                             ("dup", [[0, 1], [0, 1], [2, 0]], "repeats the one before"),
                             ("oor", [[0, 1], [1, 4], [2, 0]], "index 4 of value 1 is out of range"),
                             ("neg", [[0, 1], [1, -1], [2, 0]], "index -1 of value 1 is out of range"),
                             ("lin_oor", [1, 5, 12], "index 12 of value 2 is out of range [0, 12)"),
                             ("rank", [[0, 1, 0], [1, 3, 0], [2, 0, 0]], "indices of shape [3, 3]")):
        p = hostile.onnx_sparse(R.tmp, f"sparse_{tag}.onnx", indices=idx)
        try:
            onnx.checker.check_model(onnx.load(p))
            raise AssertionError(f"the checker took {p}")
        except onnx.checker.ValidationError:
            pass
        refused(p, f"sparse_{tag}.onnx", "sparse tensor 'c_sp'", needle)
    p = hostile.onnx_sparse(R.tmp, "sparse_lin.onnx", indices=[1, 7, 8])
    onnx.checker.check_model(onnx.load(p))
    assert ort_outputs(p)["c_sp_out"]["data"][7:9] == [-2.0, 3.0]
    assert {t["name"]: t for t in ls_json(p)}["c_sp"]["sha256"] == sha256_of_array(
        np.array(ort_outputs(p)["c_sp_out"]["data"], "<f4"))
    # 256 MiB dense from a few bytes: hashed streaming, with flat memory
    big = hostile.onnx_sparse(R.tmp, "sparse_big.onnx", indices=[[0, 1], [1, 3], [8191, 8190]],
                              dims=[8192, 8192])
    a = np.zeros((8192, 8192), "<f4")
    a[0, 1], a[1, 3], a[8191, 8190] = 1.5, -2.0, 3.0
    status, rss, out = peak_rss(["ls", "--sha256", big])
    assert status == "0" and out.splitlines()[0].split("\t")[-1] == sha256_of_array(a), out
    assert int(rss) < 48 * 1024, f"peak RSS {rss} KiB"
    huge = hostile.onnx_sparse(R.tmp, "sparse_huge.onnx", dims=[1 << 40, 1 << 20])
    line = run("ls", huge).stdout.splitlines()[0]
    assert line.startswith("c_sp\tunsupported\t[1099511627776,1048576]") and "over graft's" in line, line
    refused(hostile.onnx_sparse(R.tmp, "sparse_overflow.onnx", dims=[1 << 40, 1 << 40]),
            "tensor 'c_sp'", "overflows")


def onnx_scoped_names():
    """A name used in a function and in the main graph, or in both branches
    of an If, is two tensors (the whole file was refused: 'name appears
    twice'); the scoped ones are qualified, and a skeleton's are each
    rewritten with the source's value of the same place."""
    import onnx
    skel = hostile.onnx_scoped_constants(R.tmp)
    onnx.checker.check_model(onnx.load(skel))
    got = {t["name"]: t for t in ls_json(skel)}
    assert sorted(got) == ["F/c", "c", "flip", "o/else_branch/b", "o/then_branch/b"], sorted(got)
    for n, v in (("c", 1.0), ("F/c", 2.0), ("o/then_branch/b", 3.0), ("o/else_branch/b", 4.0)):
        assert got[n]["sha256"] == sha256_of_array(np.array(v, "<f4")), n
    src = hostile.onnx_scoped_constants(R.tmp, "scoped_src.onnx", (5.0, 6.0, 7.0, 8.0))
    out = R.path("scoped_out.onnx")
    run("apply", "-o", out, src, skel)
    assert ort_outputs(out) == ort_outputs(src) != ort_outputs(skel)
    assert {t["name"]: t["sha256"] for t in ls_json(out)} == {
        t["name"]: t["sha256"] for t in ls_json(src)}
    tr = hostile.onnx_training_info(R.tmp)
    onnx.checker.check_model(onnx.load(tr))
    got = {t["name"]: t["sha256"] for t in ls_json(tr)}
    assert got == {"W": sha256_of_array(np.array([1.0, 2.0], "<f4")),
                   "training_info/initialization/W": sha256_of_array(np.zeros(2, "<f4"))}, got


def not_the_claimed_message():
    import onnx
    pb = hostile.onnx_tensor_pb(R.tmp)
    onnx.load_tensor(pb)  # what it really is
    refused(pb, "input_0.pb", "not a TensorFlow SavedModel", "field 2 (meta_graphs) has wire type 0")
    refused(pb, "input_0.pb", "not an ONNX ModelProto", "field 2 (producer_name) has wire type 0",
            args=("ls", "--format", "onnx"))
    sm = hostile.savedmodel_text_pb(R.tmp)
    refused(sm, "text_savedmodel", "saved_model.pb: not a TensorFlow SavedModel")
    # variants: another ONNX message, empty and 1-byte files, --format on
    # a file of a folder format and on a folder (SIGSEGV before)
    g = hostile.onnx_graph_pb(R.tmp)
    refused(g, "graph.pb", "not a TensorFlow GraphDef", "field 2 (library) is not a message")
    refused(g, "graph.pb", "not an ONNX ModelProto", "no graph", args=("ls", "--format", "onnx"))
    for fmt in ("tf-graphdef", "onnx", "tf-savedmodel", "coreml", "tflite"):
        refused(R.path("empty.pb"), "empty.pb: the file is empty, not a " + fmt,
                args=("ls", "--format", fmt))
    refused(R.path("one_byte.pb"), "too short to tell")
    refused(R.path("one_byte.pb"), "not a TensorFlow GraphDef", "runs past the end",
            args=("ls", "--format", "tf-graphdef"))
    refused(R.path("one_byte.pb"), "not an ONNX ModelProto", args=("ls", "--format", "onnx"))
    refused(pb, "input_0.pb: a TensorFlow SavedModel is a folder",
            args=("ls", "--format", "tf-savedmodel"))
    os.makedirs(R.path("no_model_dir"), exist_ok=True)
    for fmt in ("onnx", "tf-graphdef", "pytorch-zip", "keras-h5", "tf-savedmodel"):
        refused(R.path("no_model_dir"), "no_model_dir: a folder that holds no " + fmt,
                args=("ls", "--format", fmt))
    # a variables.index that is a FIFO or a folder was taken for "no
    # variables": listed empty with exit 0
    for kind, needle in (("fifo", "not a regular file (a FIFO)"), ("dir", "is a folder")):
        refused(hostile.savedmodel_special_index(R.tmp, kind), "variables.index", needle)
    empty = hostile.onnx_no_weights(R.tmp)
    onnx.checker.check_model(onnx.load(empty))
    p = run("ls", empty)
    assert p.stdout == "" and p.stderr.strip() == (
        f"graft: warning: {empty}: no tensors in this onnx model"), p.stderr


def freeze_is_bounded():
    from graftlib import FIXTURES
    g = hostile.graphdef_huge_variable(R.tmp)
    assert os.path.getsize(g) < 110
    out = R.path("frozen.pb")
    ckpt = os.path.join(FIXTURES, "tf_ckpt_v2", "tf2onnx_regression_ckpt", "model")
    refused(out, "variable 'v': 1099511627776 elements of float32",
            "2 GiB limit",
            args=("freeze", "--graph", g, "--checkpoint", ckpt, "--outputs", "out", "-o"))
    assert not [f for f in os.listdir(R.tmp) if f.startswith("frozen")], os.listdir(R.tmp)


def broadcast_const_is_bounded():
    """A 60-byte Const broadcasting 2^26 floats hashes with flat memory, and
    one past GraphDef's 2 GiB is refused."""
    p = hostile.graphdef_broadcast_const(R.tmp, 1 << 26)
    assert os.path.getsize(p) < 80
    want = sha256_of_array(np.full(1 << 26, 1.5, "<f4"))
    _hashes_flat(p, want)
    big = hostile.graphdef_broadcast_const(R.tmp, 1 << 29, "broadcast_2g.pb")
    refused(big, "broadcast_2g.pb", "Const 'c': 536870912 elements of float32 (2147483648 bytes)",
            "exceed what a GraphDef can hold (2 GiB)")


def _hashes_flat(p, want, tag="ls"):
    """`ls --sha256` of a one-tensor file gives `want` with peak RSS under 48 MB."""
    status, rss, out = peak_rss(["ls", "--sha256", p])
    assert status == "0" and out.split("\t")[-1].strip() == want, (tag, out)
    assert int(rss) < 48 * 1024, f"{tag}: peak RSS {rss} KiB"


def sha256_streams_everywhere():
    """A deflated torch storage record and a big-endian .npy hash with flat
    memory, to the values torch and numpy read."""
    import torch
    p = hostile.torch_big_deflated(R.tmp)
    want = sha256_of_array(torch.load(p)["w"].numpy())
    _hashes_flat(p, want, "torch")
    p = hostile.npy_big_be(R.tmp)
    want = sha256_of_array(np.load(p))
    _hashes_flat(p, want, "npy")


def sha256_streams_spread_views():
    """Item 8: a permuted torch view and a Fortran-order big-endian .npy,
    whose rows each reach over the whole storage, hash to the values torch
    and numpy read with flat memory (144 MB peak before, for 128 MiB)."""
    import torch
    p = hostile.torch_big_permuted(R.tmp)
    want = sha256_of_array(torch.load(p)["w"].numpy())
    _hashes_flat(p, want, "torch")
    p = hostile.npy_big_fortran(R.tmp)
    want = sha256_of_array(np.load(p))
    _hashes_flat(p, want, "npy")


def sha256_streams_onnx_typed_fields():
    """Item 8: initializers in float_data and in int32_data (float16 bit
    patterns) hash to the values onnx.numpy_helper reads, decoded 1 MiB at a
    time with the file's pages released behind."""
    import onnx
    from onnx import numpy_helper
    for dtype in ("float", "float16"):
        p = hostile.onnx_big_typed(R.tmp, dtype)
        want = sha256_of_array(numpy_helper.to_array(onnx.load(p).graph.initializer[0]))
        _hashes_flat(p, want, dtype)
        os.unlink(p)


def sha256_streams_tf_v1():
    """Item 8: a TF V1 checkpoint's tensors, in float_val and in
    tensor_content, hash to the values written with flat memory (the table's
    CRC checks let pages go too)."""
    p, arrays = hostile.tf_v1_big(R.tmp)
    status, rss, out = peak_rss(["ls", "--sha256", "--format", "tf-checkpoint-v1", p])
    got = dict((ln.split("\t")[0], ln.split("\t")[-1]) for ln in out.strip().splitlines())
    assert status == "0" and got == {k: sha256_of_array(a) for k, a in arrays.items()}, out
    assert int(rss) < 48 * 1024, f"peak RSS {rss} KiB"
    os.unlink(p)


def sha256_streams_chunked_hdf5():
    """Item 12: a 128 MiB gzip-chunked Keras kernel hashes, through the
    libhdf5 child, to the values h5py reads, with flat memory in both."""
    import h5py
    p = hostile.keras_h5_big_chunked(R.tmp)
    with h5py.File(p, "r") as f:
        want = sha256_of_array(f["dense/dense/kernel:0"][()])
    _hashes_flat(p, want)


def keras_shared_weight_names():
    import h5py
    skel = hostile.keras_h5_shared_weight_names(R.tmp)
    names = [t["name"] for t in ls_json(skel)]
    assert names == ["q_in/keep_negative:0", "q_in/bits:0", "q_in/integers:0", "dense/kernel:0",
                     "dense/bias:0", "q_out/keep_negative:0", "q_out/bits:0",
                     "q_out/integers:0"], names
    src = hostile.keras_h5_shared_weight_names(R.tmp, "hgq_src.h5", -1.0)
    out = R.path("hgq_out.h5")
    run("apply", "-o", out, src, skel)
    with h5py.File(out, "r") as f, h5py.File(src, "r") as g:
        for layer in ("q_in", "dense", "q_out"):
            for w in f[layer].attrs["weight_names"]:
                w = w.decode()
                assert (f[layer][w][()] == g[layer][w][()]).all(), (layer, w)


def sha256_streams_deflated_members():
    from graftlib import GRAFT
    p = hostile.npz_big_deflated(R.tmp)
    with np.load(p) as z:
        want = sha256_of_array(z["w"])
    status, rss, out = peak_rss(["ls", "--sha256", p])
    assert status == "0", out
    assert out.split("\t")[-1].strip() == want, out
    # 128 MiB of elements, hashed with flat memory (ru_maxrss is in KiB)
    assert int(rss) < 48 * 1024, f"peak RSS {rss} KiB"


def source_checked_as_read():
    """Issue 19: a source's checksums run beside the transplant, over the
    tensors it reads.  A used tensor whose bytes fail their CRC stops the
    output from being put in place (an old file there is kept, no temporary
    is left); an ignored one is never read, so the transplant goes on."""
    import torch
    buf = io.BytesIO()
    torch.save({"w": torch.arange(64, dtype=torch.float32), "v": torch.ones(8)}, buf)
    data = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        rec = next(i for i in z.infolist() if i.filename.endswith("/data/0"))  # w's
    nlen, xlen = struct.unpack_from("<HH", data, rec.header_offset + 26)
    data[rec.header_offset + 30 + nlen + xlen + 9] ^= 0x40
    pt = R.path("crc_w.pt")
    open(pt, "wb").write(data)
    np.savez(R.path("skel_wv.npz"), w=np.zeros(64, "f4"), v=np.zeros(8, "f4"))
    np.savez(R.path("skel_v.npz"), v=np.zeros(8, "f4"))
    np.savez(R.path("skel_w.npz"), w=np.zeros(64, "f4"))
    npz = hostile.npz_bad_crc(R.tmp)  # its only tensor, 'w', fails
    out = R.path("kept_out.npz")
    for src, name, skel in ((pt, "crc_w.pt", "skel_wv.npz"), (npz, "bad_crc.npz", "skel_w.npz")):
        open(out, "wb").write(b"the user's file")
        p = run("apply", "-o", out, src, R.path(skel), check=False)
        assert p.returncode == 2 and len(p.stderr.splitlines()) == 1, (p.returncode, p.stderr)
        for needle in (name, "tensor 'w'", "CRC-32"):
            assert needle in p.stderr, (needle, p.stderr)
        assert open(out, "rb").read() == b"the user's file"
        c = R.path("c_" + name + ".safetensors")
        refused(src, name, "tensor 'w'", "CRC-32", args=("convert", "-o", c))
        assert not os.path.exists(c)
    assert not [f for f in os.listdir(R.tmp) if ".graft" in f], os.listdir(R.tmp)
    # w is not read: v comes through
    run("apply", "-o", R.path("v_out.npz"), pt, R.path("skel_v.npz"))
    with np.load(R.path("v_out.npz")) as z:
        assert np.array_equal(z["v"], np.ones(8, "f4"))
    # ...and the same file is still refused where w is read
    refused(pt, "crc_w.pt", "data/0'", "CRC-32")
    # a TF checkpoint source: its CRC-32C, per tensor, the same way
    np.savez(R.path("wv.npz"), w=np.arange(64, dtype="f4"), v=np.ones(8, "f4"))
    run("convert", R.path("wv.npz"), "-o", R.path("wv.ckpt.index"))
    data = R.path("wv.ckpt.data-00000-of-00001")
    raw = bytearray(open(data, "rb").read())
    at = raw.find(np.arange(64, dtype="<f4").tobytes())
    assert at >= 0
    raw[at + 9] ^= 0x40  # inside w
    open(data, "wb").write(bytes(raw))
    p = run("apply", "-o", out, R.path("wv.ckpt.index"), R.path("skel_wv.npz"), check=False)
    assert p.returncode == 2 and len(p.stderr.splitlines()) == 1, (p.returncode, p.stderr)
    assert "tensor 'w'" in p.stderr and "CRC-32C" in p.stderr, p.stderr
    assert open(out, "rb").read() == b"the user's file"
    run("apply", "-o", R.path("v_tf.npz"), R.path("wv.ckpt.index"), R.path("skel_v.npz"))


for name, fn in list(globals().items()):
    if callable(fn) and fn.__module__ == __name__ and name not in ("refused", "numpy_refuses", "ort_outputs", "peak_rss", "_hashes_flat"):
        R.check(name, fn)
R.close()
