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


R.check("every member listed; unsupported ones with their stored type, no data",
        listed_with_stored_type)
R.check("object arrays are listed, their pickles never run", pickles_are_not_run)
R.check("a skeleton's unsupported members are copied unchanged", skeleton_members_copied)
R.check("a source's unsupported member needed by no target is no error",
        source_members_unneeded_are_fine)
R.check("a source's unsupported member a target needs is an error naming both",
        source_member_needed_is_an_error)
R.close()
