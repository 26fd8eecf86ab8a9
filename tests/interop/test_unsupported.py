"""Members graft cannot read (issue 18, item 15): a scipy.sparse .npz with a
byte-string 'format' member, string, object and structured arrays beside
float tensors.  `ls` lists every tensor, the unsupported ones with their
stored type and no data; as a source such a tensor is an error only when a
target needs it; in a skeleton it is copied unchanged.  NumPy is the oracle
(np.load with allow_pickle=False, except where noted).
Run with /usr/bin/python3.
"""
import os
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from graftlib import SOURCE_ROOT, Results, ls_json, run, sha256_of_array  # noqa: E402

sys.path.insert(0, os.path.join(SOURCE_ROOT, "samples", "gen"))
import hostile  # noqa: E402

R = Results()


def listed_with_stored_type():
    p = hostile.npz_scipy_sparse(R.tmp)
    got = {t["name"]: t for t in ls_json(p)}
    with np.load(p) as z:
        assert sorted(got) == sorted(z.files), (sorted(got), z.files)
        for k in z.files:
            a = z[k]
            t = got[k]
            assert t["shape"] == list(a.shape), (k, t)
            if a.dtype.kind == "S":
                assert t["dtype"] == "unsupported" and t["sha256"] is None, t
                assert t["stored_type"] == f"numpy dtype '{a.dtype.str}'", t
            else:
                assert t["sha256"] == sha256_of_array(a), k
    lines = run("ls", "--sha256", p).stdout.splitlines()
    fmt = [ln.split("\t") for ln in lines if ln.startswith("format\t")]
    assert fmt == [["format", "unsupported", "[]", "3", "-", "stored as numpy dtype '|S3' (no data)"]], fmt


def pickles_are_not_run():
    marker = R.path("marker")
    p = hostile.npz_mixed(R.tmp, marker)
    got = {t["name"]: t for t in ls_json(p)}
    assert got["w"]["dtype"] == "float32" and got["names"]["dtype"] == "unsupported", got
    assert "object array" in got["obj"]["stored_type"], got["obj"]
    assert got["rec"]["stored_type"].startswith("numpy structured dtype [('x', '<f4')"), got["rec"]
    assert not os.path.exists(marker), "graft ran the object array's pickle"
    # the file really is hostile: numpy runs the pickle when allowed to
    with np.load(p, allow_pickle=True) as z:
        z["obj"]
    assert os.path.exists(marker), "the generator's pickle does nothing"
    os.unlink(marker)


def skeleton_members_copied():
    """Fill the sparse matrix's numbers; 'format' is copied, byte for byte."""
    skel = hostile.npz_scipy_sparse(R.tmp)
    src = R.path("csr_src.npz")
    np.savez(src, data=np.array([7.0, 8.0, 9.0], "<f4"), indices=np.array([1, 0, 2], "<i4"),
             indptr=np.array([0, 1, 3], "<i4"), shape=np.array([2, 3], "<i8"))
    out = R.path("csr_out.npz")
    r = run("apply", "-o", out, src, skel)
    assert "format" not in r.stderr, r.stderr
    with np.load(out) as z, np.load(src) as s:
        assert z["format"].dtype == np.dtype("S3") and z["format"][()] == b"csr"
        for k in s.files:
            assert np.array_equal(z[k], s[k]) and z[k].dtype == s[k].dtype, k
        dense = np.zeros(tuple(z["shape"]), "f4")  # scipy's CSR, by hand
        for row in range(dense.shape[0]):
            for j in range(z["indptr"][row], z["indptr"][row + 1]):
                dense[row, z["indices"][j]] = z["data"][j]
        assert np.array_equal(dense, [[0, 7.0, 0], [8.0, 0, 9.0]]), dense
    with zipfile.ZipFile(skel) as a, zipfile.ZipFile(out) as b:
        assert a.read("format.npy") == b.read("format.npy")
    d = run("diff", src, out)  # every readable tensor equal; 'format' named, not compared
    assert "skipped   -            format  (stored as numpy dtype '|S3': not compared)" in d.stdout, d.stdout
    assert d.stdout.rstrip().endswith("4 compared, 0 over --atol 0, 0 mismatched, 0 unpaired"), d.stdout
    # an object array in a skeleton is copied without being read
    marker = R.path("marker2")
    mixed = hostile.npz_mixed(R.tmp, marker)
    wsrc = R.path("w_src.npz")
    np.savez(wsrc, w=np.array([4.0, 5.0, 6.0], "<f4"))
    out2 = R.path("mixed_out.npz")
    run("apply", "-o", out2, wsrc, mixed)
    with zipfile.ZipFile(mixed) as a, zipfile.ZipFile(out2) as b:
        for k in ("names.npy", "obj.npy", "rec.npy"):
            assert a.read(k) == b.read(k), k
    with np.load(out2) as z:
        assert np.array_equal(z["w"], [4.0, 5.0, 6.0]) and list(z["names"]) == ["ab", "cde"]
    assert not os.path.exists(marker)
    # a lone .npy skeleton of strings: the output is the skeleton
    words = hostile.npy_unicode(R.tmp)
    out3 = R.path("words_out.npy")
    run("apply", "-o", out3, words, words)
    assert open(out3, "rb").read() == open(words, "rb").read()


def source_members_unneeded_are_fine():
    src = hostile.npz_scipy_sparse(R.tmp, "csr_as_src.npz", data=(5.0, 6.0, 7.0))
    skel = R.path("only_data.npz")
    np.savez(skel, data=np.zeros(3, "<f4"))
    out = R.path("only_data_out.npz")
    r = run("apply", "-r", rules(R.path("ign.yaml"), "^(indices|indptr|shape)$"), "-o", out, src,
            skel)
    assert r.stderr == "", r.stderr  # 'format' is needed by no one: not even a warning
    with np.load(out) as z:
        assert np.array_equal(z["data"], [5.0, 6.0, 7.0])


def rules(path, ignore):
    with open(path, "w") as f:
        f.write(f"graft: 1\nignore:\n  source: ['{ignore}']\n")
    return path


def source_member_needed_is_an_error():
    src = hostile.npz_scipy_sparse(R.tmp, "csr_needed.npz")
    skel = R.path("wants_format.npz")
    np.savez(skel, format=np.zeros(3, "u1"), data=np.zeros(3, "<f4"))
    out = R.path("wants_format_out.npz")
    r = run("apply", "-o", out, src, skel, check=False)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "'format' needs source 'format', stored as numpy dtype '|S3', which graft cannot " \
           "read" in r.stderr, r.stderr
    assert not os.path.exists(out)
    # convert needs every source tensor it is not told to ignore
    conv = R.path("conv.safetensors")
    r = run("convert", "-o", conv, src, check=False)
    assert r.returncode == 2 and "tensor 'format': stored as numpy dtype '|S3'" in r.stderr, r.stderr
    assert not os.path.exists(conv)
    run("convert", "-r", rules(R.path("ign2.yaml"), "^format$"), "-o", conv, src)
    names = [t["name"] for t in ls_json(conv)]
    assert sorted(names) == ["data", "indices", "indptr", "shape"], names


def torch_listed(legacy):
    """Quantized and sparse tensors of a torch state dict: listed, no data."""
    import torch  # noqa: PLC0415
    p = hostile.torch_unreadable(R.tmp, legacy)
    sd = torch.load(p)
    got = ls_json(p)
    assert [t["name"] for t in got] == list(sd), got
    for t in got:
        v = sd[t["name"]]
        assert t["shape"] == list(v.shape), t
        if v.is_quantized or v.is_sparse:
            assert t["dtype"] == "unsupported" and t["sha256"] is None, t
        else:
            assert t["sha256"] == sha256_of_array(v.numpy()), t
    types = {t["name"]: t.get("stored_type") for t in got}
    assert types["q"] == "torch quantized tensor over torch.QInt8Storage", types
    assert types["qc"] == "torch quantized tensor over torch.QUInt8Storage", types
    assert types["s"] == "torch tensor rebuilt by torch._utils._rebuild_sparse_tensor", types


def torch_skeleton_kept(legacy):
    """As a skeleton: w and b filled, q, qc and s copied as torch wrote them."""
    import torch  # noqa: PLC0415
    skel = hostile.torch_unreadable(R.tmp, legacy)
    src = R.path("wb.pt")
    torch.save({"w": torch.full((2, 3), 7.0), "b": torch.full((2,), 3.0)}, src)
    out = R.path("unreadable_out.pt")
    run("apply", "-o", out, src, skel)
    got, kept = torch.load(out), torch.load(skel)
    assert list(got) == list(kept) and torch.equal(got["w"], torch.full((2, 3), 7.0))
    for k in ("q", "qc"):
        assert torch.equal(got[k].int_repr(), kept[k].int_repr()), k
        assert got[k].qscheme() == kept[k].qscheme(), k
        assert torch.equal(got[k].dequantize(), kept[k].dequantize()), k
    assert torch.equal(got["s"].to_dense(), kept["s"].to_dense())


def torch_source_needed_only(legacy):
    import torch  # noqa: PLC0415
    src = hostile.torch_unreadable(R.tmp, legacy, seed=1, name="src_unreadable.pt")
    skel, out = R.path("skel_wb.pt"), R.path("from_unreadable.pt")
    torch.save({"w": torch.zeros(2, 3), "b": torch.zeros(2)}, skel)
    run("apply", "-o", out, src, skel)
    want = torch.load(src)
    got = torch.load(out)
    assert torch.equal(got["w"], want["w"]) and torch.equal(got["b"], want["b"])
    torch.save({"w": torch.zeros(2, 3), "q": torch.zeros(4)}, skel)
    r = run("apply", "-o", R.path("never.pt"), src, skel, check=False)
    assert r.returncode == 1 and "'q' needs source 'q', stored as torch quantized tensor over " \
        "torch.QInt8Storage, which graft cannot read" in r.stderr, r.stderr
    assert not os.path.exists(R.path("never.pt"))


def keras_strings():
    """Keras HDF5 string and compound datasets: listed, kept, needed only as named."""
    import h5py  # noqa: PLC0415
    skel = hostile.keras_h5_strings(R.tmp)
    got = {t["name"]: t for t in ls_json(skel)}
    with h5py.File(skel) as f:
        d = f["dense/dense"]
        assert sorted(got) == sorted(f"dense/{k}" for k in d), sorted(got)
        for k in d:
            t, a = got[f"dense/{k}"], d[k][()]
            assert t["shape"] == list(a.shape), t
            if a.dtype.kind == "f":
                assert t["sha256"] == sha256_of_array(a), t
            else:
                assert t["dtype"] == "unsupported" and t["sha256"] is None, t
    assert got["dense/vocab:0"]["stored_type"] == "HDF5 3-byte string", got["dense/vocab:0"]
    assert got["dense/notes:0"]["stored_type"] == "HDF5 variable-length string"
    assert got["dense/pairs:0"]["stored_type"] == "HDF5 6-byte compound"
    src = hostile.keras_h5_strings(R.tmp, "strings_src.h5", kernel=7.0)
    out = R.path("strings_out.h5")
    run("apply", "-o", out, src, skel)
    with h5py.File(out) as o, h5py.File(skel) as k:
        assert (o["dense/dense/kernel:0"][()] == 7.0).all()
        for name in ("bias:0", "vocab:0", "notes:0", "pairs:0"):
            assert o["dense/dense/" + name][()].tolist() == k["dense/dense/" + name][()].tolist()
    wants = hostile.keras_h5_strings(R.tmp, "wants_vocab.h5", numeric_vocab=True)
    r = run("apply", "-o", R.path("never.h5"), src, wants, check=False)
    assert r.returncode == 1 and "'dense/vocab:0' needs source 'dense/vocab:0', stored as HDF5 " \
        "3-byte string, which graft cannot read" in r.stderr, r.stderr


R.check("every member listed; unsupported ones with their stored type, no data",
        listed_with_stored_type)
R.check("object arrays are listed, their pickles never run", pickles_are_not_run)
R.check("a skeleton's unsupported members are copied unchanged", skeleton_members_copied)
R.check("a source's unsupported member needed by no target is no error",
        source_members_unneeded_are_fine)
R.check("a source's unsupported member a target needs is an error naming both",
        source_member_needed_is_an_error)
R.check("keras h5: string and compound datasets listed, kept, needed only when asked",
        keras_strings)
for leg in (False, True):
    fmt = "legacy" if leg else "zip"
    R.check(f"torch {fmt}: quantized and sparse tensors listed, no data", torch_listed, leg)
    R.check(f"torch {fmt}: they are copied unchanged from a skeleton", torch_skeleton_kept, leg)
    R.check(f"torch {fmt}: as a source, an error only when needed", torch_source_needed_only, leg)
R.close()
