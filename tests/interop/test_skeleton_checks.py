"""Skeleton checksums are verified only for the tensors a plan keeps (issue 19).

A skeleton's tensors that the plan replaces are never read, so a flipped
byte in one of them must not stop `graft apply`; a flipped byte in a tensor
the plan keeps (copied unchanged) must still be refused with one line naming
the file and the tensor.  `graft ls` still verifies every tensor.  The
skeletons are written by the real libraries (torch.save, np.savez) and, for
TensorFlow (not installable here), by test_tf.py's independent writer; the
outputs are read back with them.  Run with /usr/bin/python3.
"""
import json
import os
import shutil
import struct
import sys
import zipfile

sys.path.insert(0, os.path.dirname(__file__))
import graftlib  # noqa: E402

import numpy as np  # noqa: E402

R = graftlib.Results()
RULES = "graft: 1\npolicy: {missing: keep, unused: error, mismatch: error}\n"
rng = np.random.default_rng(19)
A = rng.standard_normal((4, 4)).astype(np.float32)   # replaced by the source
B = rng.standard_normal(8).astype(np.float32)        # kept from the skeleton
NEW_A = rng.standard_normal((4, 4)).astype(np.float32)


def st_write(path, tensors):
    """A safetensors file from numpy float32 arrays (the format's whole spec)."""
    header, data = {}, b""
    for name, a in tensors.items():
        raw = a.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)


def flip(path, offset):
    data = bytearray(open(path, "rb").read())
    data[offset] ^= 0x10
    open(path, "wb").write(data)


def setup(tag):
    d = R.path(tag)
    os.makedirs(d, exist_ok=True)
    rules, src = os.path.join(d, "r.yaml"), os.path.join(d, "src.safetensors")
    open(rules, "w").write(RULES)
    st_write(src, {"a": NEW_A})
    return d, rules, src


def apply(rules, src, skel, out):
    return graftlib.run("apply", "-q", "-r", rules, "-o", out, src, skel, check=False)


def expect_refused(p, *needles):
    assert p.returncode != 0, "a corrupt kept tensor was accepted"
    for n in needles:
        assert n in p.stderr, (n, p.stderr)
    assert p.stderr.count("\n") == 1, p.stderr


def zip_data_offset(path, member):
    """Where a stored member's bytes start (local header + name + extra)."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(member)
    raw = open(path, "rb").read(info.header_offset + 30)
    nlen, xlen = struct.unpack_from("<HH", raw, info.header_offset + 26)
    return info.header_offset + 30 + nlen + xlen


# ---- TensorFlow checkpoint ---------------------------------------------------

def tf_skeleton(d):
    import test_tf
    shutil.rmtree(test_tf.R.tmp, ignore_errors=True)  # its Results is not ours
    prefix = os.path.join(d, "skel.ckpt")
    test_tf.write_skeleton(prefix, {"a": (1, [4, 4]), "b": (1, [8])},
                           {"a": A.tobytes(), "b": B.tobytes()})
    return prefix  # a at [0, 64), b at [64, 96) of the data file


def tf_values(prefix):
    import test_tf
    return {k: np.frombuffer(v, "<f4") for k, _, _, v in test_tf.read_bundle(prefix)}


def check_tf_replaced():
    d, rules, src = setup("tf_replaced")
    prefix = tf_skeleton(d)
    flip(prefix + ".data-00000-of-00001", 10)
    # ls still verifies every tensor
    p = graftlib.run("ls", prefix + ".index", check=False)
    assert p.returncode != 0 and "tensor 'a': CRC-32C mismatch" in p.stderr, p.stderr
    out = os.path.join(d, "out.ckpt.index")
    p = apply(rules, src, prefix + ".index", out)
    assert p.returncode == 0, p.stderr
    v = tf_values(os.path.join(d, "out.ckpt"))  # the independent decoder checks every CRC
    assert np.array_equal(v["a"], NEW_A.ravel()) and np.array_equal(v["b"], B), v


def check_tf_kept():
    d, rules, src = setup("tf_kept")
    prefix = tf_skeleton(d)
    flip(prefix + ".data-00000-of-00001", 70)
    p = apply(rules, src, prefix + ".index", os.path.join(d, "out.ckpt.index"))
    expect_refused(p, "tensor 'b': CRC-32C mismatch", "skel.ckpt.data-00000-of-00001")
    assert not os.path.exists(os.path.join(d, "out.ckpt.index"))


# ---- PyTorch zip -------------------------------------------------------------

def torch_skeleton(d):
    import torch
    path = os.path.join(d, "skel.pth")
    torch.save({"a": torch.from_numpy(A.copy()), "b": torch.from_numpy(B.copy())}, path)
    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if "/data/" in n]
    # which record holds which tensor: their sizes differ (64 and 32 bytes)
    with zipfile.ZipFile(path) as z:
        rec = {z.getinfo(n).file_size: n for n in names}
    return path, rec[64], rec[32]


def check_torch_replaced():
    import torch
    d, rules, src = setup("torch_replaced")
    path, ra, _ = torch_skeleton(d)
    flip(path, zip_data_offset(path, ra) + 5)
    p = graftlib.run("ls", path, check=False)
    assert p.returncode != 0 and "CRC-32" in p.stderr, p.stderr
    out = os.path.join(d, "out.pth")
    p = apply(rules, src, path, out)
    assert p.returncode == 0, p.stderr
    sd = torch.load(out, weights_only=True)  # zipfile checks every CRC
    assert np.array_equal(sd["a"].numpy(), NEW_A) and np.array_equal(sd["b"].numpy(), B)


def check_torch_kept():
    d, rules, src = setup("torch_kept")
    path, _, rb = torch_skeleton(d)
    flip(path, zip_data_offset(path, rb) + 5)
    p = apply(rules, src, path, os.path.join(d, "out.pth"))
    expect_refused(p, "tensor 'b'", "CRC-32", "skel.pth")
    assert not os.path.exists(os.path.join(d, "out.pth"))


# ---- NumPy npz ---------------------------------------------------------------

def check_npz_replaced():
    d, rules, src = setup("npz_replaced")
    path = os.path.join(d, "skel.npz")
    np.savez(path, a=A, b=B)
    flip(path, zip_data_offset(path, "a.npy") + 128 + 3)  # past the 128-byte .npy header
    out = os.path.join(d, "out.npz")
    p = apply(rules, src, path, out)
    assert p.returncode == 0, p.stderr
    with np.load(out) as z, zipfile.ZipFile(out) as zz:
        assert zz.testzip() is None
        assert np.array_equal(z["a"], NEW_A) and np.array_equal(z["b"], B)


def check_npz_kept():
    d, rules, src = setup("npz_kept")
    path = os.path.join(d, "skel.npz")
    np.savez(path, a=A, b=B)
    flip(path, zip_data_offset(path, "b.npy") + 128 + 3)
    p = apply(rules, src, path, os.path.join(d, "out.npz"))
    expect_refused(p, "tensor 'b'", "CRC-32", "skel.npz")


# ---- Keras 3 .keras (one CRC-32 over the whole weights member) -----------------

KERAS = os.path.join(graftlib.FIXTURES, "keras3", "keras_zip_keras3.10_churn", "model.keras")


def keras_case(tag, keep_one):
    """A copy of the fixture with a byte flipped inside one dataset of its
    stored model.weights.h5, and a source .weights.h5 holding every dataset
    (or all but that one, which the plan then keeps)."""
    import h5py
    d, rules, _ = setup(tag)
    skel, src = os.path.join(d, "skel.keras"), os.path.join(d, "src.weights.h5")
    shutil.copy(KERAS, skel)
    with zipfile.ZipFile(skel) as z:
        open(src, "wb").write(z.read("model.weights.h5"))
    names = []
    with h5py.File(src, "r") as f:
        f.visititems(lambda k, o: names.append(k) if isinstance(o, h5py.Dataset) and o.size > 4 else None)
        victim = names[0]
        at = f[victim].id.get_offset()
    assert at is not None, "the fixture's dataset is not contiguous"
    with h5py.File(src, "r+") as f:
        for k in names:
            f[k][...] = np.asarray(f[k][()]) + 1  # new values, same layout
        if keep_one:
            del f[victim]
    flip(skel, zip_data_offset(skel, "model.weights.h5") + at + 1)
    return d, rules, skel, src, victim


def check_keras_replaced():
    d, rules, skel, src, _ = keras_case("keras_replaced", False)
    p = graftlib.run("ls", skel, check=False)
    assert p.returncode != 0 and "CRC-32" in p.stderr, p.stderr
    out = os.path.join(d, "out.keras")
    p = apply(rules, src, skel, out)
    assert p.returncode == 0, p.stderr
    with zipfile.ZipFile(out) as z:
        assert z.testzip() is None


def check_keras_kept():
    d, rules, skel, src, victim = keras_case("keras_kept", True)
    p = apply(rules, src, skel, os.path.join(d, "out.keras"))
    expect_refused(p, "CRC-32", "skel.keras", "model.weights.h5")
    assert "tensor '" in p.stderr, p.stderr


def main():
    R.check("tf checkpoint: a corrupt replaced tensor applies", check_tf_replaced)
    R.check("tf checkpoint: a corrupt kept tensor is refused, named", check_tf_kept)
    R.check("torch zip: a corrupt replaced record applies", check_torch_replaced)
    R.check("torch zip: a corrupt kept record is refused, named", check_torch_kept)
    R.check("npz: a corrupt replaced member applies", check_npz_replaced)
    R.check("npz: a corrupt kept member is refused, named", check_npz_kept)
    R.check(".keras: a corrupt replaced dataset applies", check_keras_replaced)
    R.check(".keras: a corrupt kept dataset is refused, named", check_keras_kept)
    R.close()


if __name__ == "__main__":
    main()
