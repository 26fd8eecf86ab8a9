"""NumPy .npy/.npz and safetensors: graft against numpy and the safetensors spec.

Files are written by numpy itself (np.save, np.savez, np.savez_compressed,
np.lib.format.write_array) and by a small safetensors writer that follows the
reference implementation's layout (the `safetensors` package is not
installed); the real fixtures are compared too.  graft's writers are driven
through the test_npz helper and checked with np.load / a plain decoder, and
the zip writer through test_zip, checked with Python's zipfile.
"""
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from graftlib import FIXTURES, GRAFT, NUMPY_DTYPE_NAMES, SOURCE_ROOT, Results, ls_json, run, sha256_of_array  # noqa: E402

R = Results()
BUILD = os.path.dirname(os.path.dirname(os.path.abspath(GRAFT)))
HELPER_NPZ = os.path.join(BUILD, "tests", "test_npz")
HELPER_ZIPW = os.path.join(BUILD, "tests", "test_zip")

DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
          "uint16", "uint32", "uint64", "bool", "complex64", "complex128"]


def sample(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if dtype == "bool":
        return (rng.integers(0, 2, n) == 1).reshape(shape)
    if dtype.startswith("complex"):
        return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dtype).reshape(shape)
    if dtype.startswith("float"):
        return rng.standard_normal(n).astype(dtype).reshape(shape)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True).reshape(shape)


def check_listing(path, arrays, *extra):
    """graft ls --json PATH lists exactly `arrays` (name -> array), in order."""
    out = ls_json(path, *extra)
    names = [e["name"] for e in out]
    assert names == list(arrays), f"names {names} != {list(arrays)}"
    for e in out:
        a = arrays[e["name"]]
        want = "bfloat16" if getattr(a, "bf16", False) else NUMPY_DTYPE_NAMES[a.dtype.newbyteorder("=").name]
        assert e["dtype"] == want, f"{e['name']}: dtype {e['dtype']} != {want}"
        assert e["shape"] == list(a.shape), f"{e['name']}: shape {e['shape']} != {list(a.shape)}"
        assert e["sha256"] == sha256_of_array(a), f"{e['name']}: sha256 differs"


def check_error(path, fragment, *extra):
    p = run("ls", *extra, path, check=False)
    assert p.returncode == 2, f"exit {p.returncode}, stderr {p.stderr!r}"
    err = p.stderr.strip()
    assert "\n" not in err, f"more than one line: {err!r}"
    assert fragment in err, f"{fragment!r} not in {err!r}"
    assert err.startswith("graft: "), err


def write(name, data):
    path = R.path(name)
    with open(path, "wb") as f:
        f.write(data)
    return path


# ---- safetensors: a writer and a decoder following spec B.4 / B.1 ----------

ST_DT = {"bool": "BOOL", "uint8": "U8", "int8": "I8", "int16": "I16", "uint16": "U16",
         "float16": "F16", "int32": "I32", "uint32": "U32", "float32": "F32",
         "float64": "F64", "int64": "I64", "uint64": "U64", "complex64": "C64"}
ST_ORDER = ["U64", "I64", "F64", "C64", "F32", "U32", "I32", "BF16", "F16", "U16", "I16",
            "I8", "U8", "BOOL"]
NP_OF_ST = {v: k for k, v in ST_DT.items()}


def st_dtype(a):
    return "BF16" if getattr(a, "bf16", False) else ST_DT[a.dtype.name]


def st_bytes(tensors, metadata=None):
    """What safetensors' serialize() writes: dtype-descending layout, compact JSON."""
    items = sorted(tensors.items(), key=lambda kv: (ST_ORDER.index(st_dtype(kv[1])), kv[0]))
    header, off, blobs = {}, 0, []
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, a in items:
        b = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": st_dtype(a), "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    js = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    js += b" " * (-len(js) % 8)
    return struct.pack("<Q", len(js)) + js + b"".join(blobs)


def st_raw(header_text, data=b"", pad=True):
    js = header_text.encode() if isinstance(header_text, str) else header_text
    if pad:
        js += b" " * (-len(js) % 8)
    return struct.pack("<Q", len(js)) + js + data


class BF16(np.ndarray):
    """uint16 bit patterns standing for bfloat16 elements."""
    bf16 = True


def st_decode(path):
    """Plain decoder: (metadata, {name: array}) in header order."""
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        if info["dtype"] == "BF16":
            a = np.frombuffer(data[base + b:base + e], "<u2").reshape(info["shape"]).view(BF16)
        else:
            a = np.frombuffer(data[base + b:base + e], np.dtype(NP_OF_ST[info["dtype"]]).newbyteorder("<"))
            a = a.reshape(info["shape"])
        out[name] = a
    return meta, out


def helper(*args):
    p = subprocess.run([HELPER_NPZ, *args], capture_output=True, text=True)
    assert p.returncode == 0, f"test_npz {' '.join(args)}: {p.stderr.strip()}"


def reversed_like(a):
    return np.ascontiguousarray(a).ravel()[::-1].reshape(a.shape)


# ---- .npy ----------------------------------------------------------------

def t_npy_all_dtypes():
    for i, dt in enumerate(DTYPES):
        a = sample(dt, (2, 3), i)
        path = R.path(f"x_{dt}.npy")
        np.save(path, a)
        check_listing(path, {f"x_{dt}": a})


def t_npy_layouts():
    cases = {
        "fortran": np.asfortranarray(sample("float32", (3, 4, 5))),
        "fortran2": np.asfortranarray(sample("int16", (7, 2))),
        "bigend": sample("float64", (4, 3)).astype(">f8"),
        "bigend_c8": sample("complex64", (5,)).astype(">c8"),
        "bigend_fortran": np.asfortranarray(sample("int32", (3, 2))).astype(">i4", order="K"),
        "scalar": np.array(3.25, dtype="float32"),
        "scalar_bool": np.array(True),
        "empty": np.zeros((0, 3), dtype="float32"),
        "empty_fortran": np.asfortranarray(np.zeros((2, 0, 3), dtype="int8")),
        "onedim": sample("uint8", (17,)),
        "rank6": sample("float16", (1, 2, 1, 3, 1, 2)),
    }
    for name, a in cases.items():
        path = R.path(name + ".npy")
        np.save(path, a)
        with open(path, "rb") as f:
            if name.startswith("fortran"):
                assert b"'fortran_order': True" in f.read(128)
        check_listing(path, {name: np.load(path)})


def t_npy_versions():
    a = sample("float32", (3, 2))
    for ver in [(1, 0), (2, 0), (3, 0)]:
        path = R.path(f"v{ver[0]}.npy")
        with open(path, "wb") as f:
            np.lib.format.write_array(f, a, version=ver)
        assert open(path, "rb").read(7)[6] == ver[0]
        check_listing(path, {f"v{ver[0]}": a})
    # a v2 header of ~100 KB, as numpy writes when the dict outgrows 64 KiB
    text = b"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }"
    total = 12 + len(text) + 100000 + 1
    text += b" " * (100000 + (-total % 64)) + b"\n"
    path = write("huge.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", len(text)) + text + a.tobytes())
    assert np.array_equal(np.load(path, max_header_size=200000), a)
    check_listing(path, {"huge": a})


def npy_bytes(text, data=b"", version=1):
    text = text.encode() if isinstance(text, str) else text
    lenf = struct.pack("<H", len(text)) if version == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + lenf + text + data


def t_npy_malformed():
    good = np.arange(6, dtype="<f4")
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }\n"
    cases = [
        ("trunc_data", npy_bytes(hdr, good.tobytes()[:20]), "data needs 24 bytes but 20 are left"),
        ("trunc_header", npy_bytes(hdr)[:30], "runs past the end"),
        ("trunc_magic", b"\x93NUMPY\x01", "need 1 bytes, 0 left"),
        ("bad_version", npy_bytes(hdr, good.tobytes(), version=4)[:8] + b"\0\0\0\0", "unsupported .npy version 4.0"),
        ("structured_open", npy_bytes("{'descr': [('a', '<f4'), 'fortran_order': False, 'shape': (1,), }", b"\0" * 4),
         "unterminated structured descr"),
        ("missing_key", npy_bytes("{'descr': '<f4', 'shape': (6,), }", good.tobytes()), "header dict lacks 'fortran_order'"),
        ("extra_key", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", good.tobytes()),
         "unexpected key 'x'"),
        ("dup_key", npy_bytes("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", good.tobytes()),
         "key 'descr' appears twice"),
        ("bad_bool", npy_bytes("{'descr': '<f4', 'fortran_order': 0, 'shape': (6,), }", good.tobytes()),
         "'fortran_order' must be True or False"),
        ("shape_list", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': [6], }", good.tobytes()),
         "'shape' must be a tuple"),
        ("negative_dim", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }", good.tobytes()),
         "negative dimension"),
        ("huge_dims", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"),
         "element count overflows"),
        ("huge_dim", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,), }"),
         "byte size overflows"),
        ("dim_overflow", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }"),
         "dimension overflows"),
        ("big_claim", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000,), }", b"\0" * 8),
         "data needs 4000000000 bytes but 8 are left"),
        ("eval_bait", npy_bytes("{'descr': __import__('os'), 'fortran_order': False, 'shape': (1,), }"),
         "expected a quoted string"),
        ("junk_after", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), } x", good.tobytes()),
         "unexpected text after the dict"),
        ("header_cap", b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0), "exceeds the cap of 1048576"),
    ]
    for name, data, frag in cases:
        check_error(write(name + ".npy", data), frag)
    # dtypes graft cannot read are listed as such (issue 18 item 15), not refused
    for name, descr, data, stored in [
            ("object", "'|O'", b"\x80\x02.", "numpy dtype '|O' (an object array: a pickle)"),
            ("unicode", "'<U3'", b"\0" * 12, "numpy dtype '<U3'"),
            ("structured", "[('a', '<f4')]", b"\0" * 4, "numpy structured dtype [('a', '<f4')]")]:
        p = write(name + ".npy", npy_bytes("{'descr': %s, 'fortran_order': False, 'shape': (1,), }"
                                           % descr, data))
        line = run("ls", p).stdout.strip().split("\t")
        assert line == [name, "unsupported", "[1]", str(len(data)), f"stored as {stored} (no data)"], line


# ---- .npz ----------------------------------------------------------------

def npz_arrays():
    arrays = {f"a_{dt}": sample(dt, (3, 2), i) for i, dt in enumerate(DTYPES)}
    arrays["fortran"] = np.asfortranarray(sample("float64", (4, 5, 2)))
    arrays["bigend"] = sample("int32", (6,)).astype(">i4")
    arrays["scalar"] = np.array(-7, dtype="int64")
    arrays["empty"] = np.zeros((3, 0), dtype="float16")
    arrays["0.0.weight"] = sample("float32", (8, 4))  # PyTorch-style dotted keys
    return arrays


def check_npz_against_numpy(path):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    check_listing(path, arrays)
    return arrays


def t_npz_savez():
    arrays = npz_arrays()
    path = R.path("stored.npz")
    np.savez(path, **arrays)
    got = check_npz_against_numpy(path)
    assert list(got) == list(arrays)
    for k in arrays:
        assert np.array_equal(got[k], arrays[k])


def t_npz_savez_compressed():
    arrays = npz_arrays()
    path = R.path("deflated.npz")
    np.savez_compressed(path, **arrays)
    with zipfile.ZipFile(path) as z:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    check_npz_against_numpy(path)


def t_npz_positional():
    path = R.path("positional.npz")
    np.savez(path, np.arange(3), np.ones((2, 2), dtype="float32"))
    got = check_npz_against_numpy(path)
    assert list(got) == ["arr_0", "arr_1"]


def npz_of(members, method=zipfile.ZIP_STORED):
    path = R.path("m.npz")
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in members:
            z.writestr(name, data)
    return open(path, "rb").read()


def t_npz_malformed():
    a = np.arange(12, dtype="<f4").reshape(3, 4)
    path = R.path("ok.npz")
    np.savez(path, w=a)
    good = open(path, "rb").read()
    path = R.path("okc.npz")
    np.savez_compressed(path, w=np.zeros(4096, dtype="<f8"))
    goodc = open(path, "rb").read()
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("w.npy")
    # flip bytes in the middle of the deflate stream
    data_at = info.header_offset + 30 + len(info.filename) + len(info.extra)
    corrupt = bytearray(goodc)
    for i in range(data_at + 10, data_at + 30):
        corrupt[i] ^= 0x5A
    # claim a huge uncompressed size in the central directory
    huge = bytearray(goodc)
    cd = huge.rfind(b"PK\x01\x02")
    struct.pack_into("<I", huge, cd + 24, 0xFFFFFFF0)
    npy_obj = npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\x80\x02N.")
    cases = [
        ("truncated", good[: len(good) // 2], "no end-of-central-directory record"),
        ("cut_member", good[:200] + good[-200:], "zip"),
        ("not_npy_member", npz_of([("w.npy", good[good.find(b"\x93NUMPY"):][:176]), ("notes.txt", b"hi")]),
         "member 'notes.txt': not a .npy array"),
        ("object_member_short", npz_of([("o.npy", npy_obj[:20])]), "member 'o.npy': offset 0x"),
        ("short_member", npz_of([("w.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }", b"\0" * 8))]),
         "member 'w.npy': data needs 400 bytes but the member has 8"),
        ("short_member_deflated", npz_of([("w.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }", b"\0" * 8))], zipfile.ZIP_DEFLATED),
         "member 'w.npy': data needs 400 bytes"),
        ("bad_header_deflated", npz_of([("w.npy", npy_bytes("{'descr': '<f4', 'shape': (1,)}", b"\0" * 4))], zipfile.ZIP_DEFLATED),
         "member 'w.npy': offset 0xa: header dict lacks 'fortran_order'"),
        ("huge_usize", bytes(huge), "cannot expand to the claimed"),
    ]
    for name, data, frag in cases:
        check_error(write(name + ".npz", data), frag)
    # corrupt deflate data: the table opens, reading the tensor fails cleanly
    p = write("corrupt_deflate.npz", bytes(corrupt))
    check_error(p, "member 'w.npy': zip: entry 'w.npy':")


# ---- safetensors ---------------------------------------------------------

def st_arrays():
    arrays = {f"t.{dt}": sample(dt, (2, 3), i) for i, dt in enumerate(ST_DT)}
    arrays["scalar"] = np.array(2.5, dtype="float32")
    arrays["empty"] = np.zeros((0, 4), dtype="int64")
    arrays["bf16"] = np.array([0x3F80, 0xC000, 0x7F80], dtype="<u2").view(BF16)
    arrays["名前"] = np.arange(3, dtype="int16")
    return arrays


def t_st_reference_layout():
    arrays = st_arrays()
    path = write("ref.safetensors", st_bytes(arrays, {"format": "pt", "note": "q\"\\"}))
    meta, dec = st_decode(path)
    check_listing(path, dec)  # header order (layout order, as the reference writes)
    assert {k: sha256_of_array(v) for k, v in dec.items()} == {k: sha256_of_array(v) for k, v in arrays.items()}


def t_st_fixtures():
    files = []
    for root, _, names in os.walk(os.path.join(FIXTURES, "safetensors")):
        files += [os.path.join(root, n) for n in names if n.endswith(".safetensors")]
    assert len(files) >= 12, files
    for path in sorted(files):
        _, dec = st_decode(path)
        check_listing(path, dec)


def t_npz_fixtures():
    files = []
    for root, _, names in os.walk(os.path.join(FIXTURES, "npz")):
        files += [os.path.join(root, n) for n in names]
    assert len(files) >= 5, files
    for path in sorted(files):
        if path.endswith(".npy"):
            stem = os.path.basename(path)[:-4]
            check_listing(path, {stem: np.load(path)})
        else:
            check_npz_against_numpy(path)


def t_st_whitespace_and_order():
    # leading/trailing JSON whitespace is tolerated; offsets need not follow key order
    a, b = np.arange(4, dtype="<f4"), np.arange(2, dtype="<i8")
    hdr = ' {"b":{"dtype":"I64","shape":[2],"data_offsets":[16,32]},' \
          '"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}} '
    path = write("ws.safetensors", st_raw(hdr, a.tobytes() + b.tobytes()))
    check_listing(path, {"b": b, "a": a})
    # detected by content too, whatever the file is called
    path = write("noext.bin", st_raw(hdr.strip(), a.tobytes() + b.tobytes()))
    check_listing(path, {"b": b, "a": a})


def t_st_malformed():
    f4 = np.arange(4, dtype="<f4").tobytes()

    def one(entry, data=f4, meta=None, pad=True):
        h = {}
        if meta is not None:
            h["__metadata__"] = meta
        h["x"] = entry
        return st_raw(json.dumps(h, separators=(",", ":")), data, pad)

    ok = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
    cases = [
        # B.3.1 HeaderTooSmall
        ("small", b"\x10\0\0\0", "4 bytes is too short for the 8-byte header length"),
        # B.3.2 HeaderTooLarge
        ("large", struct.pack("<Q", 100_000_001) + b"{}", "header length 100000001 exceeds the cap of 100000000 bytes"),
        # B.3.3 InvalidHeaderLength
        ("past_end", struct.pack("<Q", 64) + b'{"a":1}', "header length 64 runs past the end of the 15-byte file"),
        # B.3.4 InvalidHeader (UTF-8)
        ("utf8", st_raw(b'{"\xff":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', f4), "invalid UTF-8 in a string"),
        # B.3.5 InvalidHeaderDeserialization
        ("not_object", st_raw("[]"), "header is a JSON array, not an object"),
        ("bad_json", st_raw('{"x":{"dtype":"F32",}}', f4), "expected a string key, found '}'"),
        ("unknown_dtype", one({**ok, "dtype": "Q7"}), "tensor 'x': unknown dtype 'Q7'"),
        ("f4_end_before_start", one({**ok, "dtype": "F4", "shape": [32], "data_offsets": [16, 0]}),
         "tensor 'x': data_offsets [16, 0]: end before start"),
        ("neg_shape", one({**ok, "shape": [-4]}), "tensor 'x': shape entry 0 is not a non-negative integer"),
        ("float_shape", one({**ok, "shape": [4.0]}), "shape entry 0 is not a non-negative integer"),
        ("neg_offset", one({**ok, "data_offsets": [-1, 16]}), "tensor 'x': \"data_offsets\" is not a pair of non-negative integers"),
        ("three_offsets", one({**ok, "data_offsets": [0, 8, 16]}), "\"data_offsets\" is not a pair"),
        ("no_dtype", one({"shape": [4], "data_offsets": [0, 16]}), "tensor 'x': \"dtype\" missing or not a string"),
        ("no_shape", one({"dtype": "F32", "data_offsets": [0, 16]}), "tensor 'x': \"shape\" missing or not an array"),
        ("entry_not_object", st_raw('{"x":[1]}'), "tensor 'x': entry is array, not an object"),
        ("meta_int", one(ok, meta={"a": 1}), "__metadata__ 'a' is integer, not a string"),
        ("meta_not_object", one(ok, meta=["a"]), "__metadata__ is array, not an object"),
        ("trailing_text", st_raw('{"x":' + json.dumps(ok) + '} x', f4), "expected the end of the JSON text, found 'x'"),
        ("nul_pad", st_raw(b'{"x":' + json.dumps(ok).encode() + b'}\0\0', f4), "found byte 0x00"),
        # B.3.6 InvalidOffset
        ("gap_first", one({**ok, "data_offsets": [4, 20]}, f4 + b"1234"), "tensor 'x': data_offsets [4, 20] leave a gap: the previous tensor ends at 0"),
        ("end_before_start", one({**ok, "shape": [0], "data_offsets": [16, 0]}), "tensor 'x': data_offsets [16, 0]: end before start"),
        ("overlap", st_raw('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},'
                           '"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', f4),
         "tensor 'b': data_offsets [8, 16] overlap: the previous tensor ends at 16"),
        ("gap_between", st_raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                               '"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}', f4),
         "tensor 'b': data_offsets [12, 16] leave a gap: the previous tensor ends at 8"),
        # B.3.7 TensorInvalidInfo / ValidationOverflow
        ("size_mismatch", one({**ok, "data_offsets": [0, 8]}, f4[:8]), "tensor 'x': data_offsets [0, 8] hold 8 bytes but F32 with 4 elements needs 16"),
        ("overflow", one({**ok, "shape": [2**40, 2**40]}), "tensor 'x': element count overflows"),
        ("overflow_bytes", one({**ok, "dtype": "F64", "shape": [2**62]}), "tensor 'x': byte size overflows"),
        # B.3.8 MetadataIncompleteBuffer
        ("trailing_bytes", one(ok, f4 + b"xx"), "tensors cover 16 bytes but the data buffer after the header holds 18"),
        ("short_buffer", one(ok, f4[:12]), "tensors cover 16 bytes but the data buffer after the header holds 12"),
        # duplicate keys are disallowed by the spec
        ("dup", st_raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                       '"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', f4), "tensor 'a': name appears twice"),
        ("dup_meta", st_raw('{"__metadata__":{},"__metadata__":{}}'), "__metadata__ appears twice"),
    ]
    for name, data, frag in cases:
        check_error(write(name + ".safetensors", data), frag)
    # dtypes the reference knows but graft cannot read are listed (issue 18
    # item 15), and a skeleton holding one keeps it byte for byte
    mixed = st_raw('{"e":{"dtype":"F8_E8M0","shape":[16],"data_offsets":[0,16]},'
                   '"w":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}', bytes(range(16)) + f4[:8])
    p = write("f8_e8m0.safetensors", mixed)
    assert run("ls", p).stdout.splitlines()[0].split("\t") == [
        "e", "unsupported", "[16]", "16", "stored as safetensors dtype 'F8_E8M0' (no data)"]
    src = write("w_only.safetensors", st_raw('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
                                             np.array([5, 6], "<f4").tobytes()))
    out = R.path("f8_out.safetensors")
    run("apply", "-o", out, src, p)
    assert open(out, "rb").read() == mixed.replace(f4[:8], np.array([5, 6], "<f4").tobytes())
    # the file name comes first, then the offset
    check_error(write("off.safetensors", st_raw('{"x":tru}')), "off.safetensors: offset 0xd: expected a JSON value, found 't'")


def t_st_sharded():
    a, b, c = sample("float32", (3, 2)), sample("int64", (4,)), sample("float16", (2, 2, 2))
    d = R.path("sharded")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model-00001-of-00002.safetensors"), "wb") as f:
        f.write(st_bytes({"enc.w": a, "enc.b": b}))
    with open(os.path.join(d, "model-00002-of-00002.safetensors"), "wb") as f:
        f.write(st_bytes({"dec.w": c}))
    index = {"metadata": {"total_size": a.nbytes + b.nbytes + c.nbytes},
             "weight_map": {"dec.w": "model-00002-of-00002.safetensors",
                            "enc.b": "model-00001-of-00002.safetensors",
                            "enc.w": "model-00001-of-00002.safetensors"}}
    ipath = os.path.join(d, "model.safetensors.index.json")
    with open(ipath, "w") as f:
        json.dump(index, f)
    # shards in order of first mention, each in its own layout order
    check_listing(ipath, {"dec.w": c, "enc.b": b, "enc.w": a})
    # one shard alone
    check_listing(os.path.join(d, "model-00002-of-00002.safetensors"), {"dec.w": c})

    def bad_index(name, wm, frag):
        p = os.path.join(d, name + ".safetensors.index.json")
        with open(p, "w") as f:
            json.dump({"weight_map": wm}, f)
        check_error(p, frag)

    s1, s2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    bad_index("missing", {"enc.w": s1, "enc.b": s1, "dec.w": s2, "ghost": s2},
              "weight_map lists 'ghost' in 'model-00002-of-00002.safetensors' but that shard does not hold it")
    bad_index("unlisted", {"enc.w": s1, "dec.w": s2},
              "shard 'model-00001-of-00002.safetensors' holds 'enc.b', which the weight_map does not list")
    bad_index("escape", {"enc.w": "../x.safetensors"}, "weight_map 'enc.w': shard must be a file name in the index's folder")
    bad_index("absent", {"enc.w": "nope.safetensors"}, "nope.safetensors")
    # the writer: index and shards beside the output path, data reversed
    od = R.path("sharded_out")
    os.makedirs(od, exist_ok=True)
    oindex = os.path.join(od, "out.safetensors.index.json")
    helper("rewrite", ipath, oindex, "reverse")
    got = json.load(open(oindex))
    assert got["metadata"] == index["metadata"]
    assert got["weight_map"] == index["weight_map"]
    assert sorted(os.listdir(od)) == sorted(["out.safetensors.index.json", "model-00001-of-00002.safetensors",
                                             "model-00002-of-00002.safetensors"])
    for shard in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]:
        src_meta, src = st_decode(os.path.join(d, shard))
        _, out = st_decode(os.path.join(od, shard))
        assert list(out) == list(src)
        for k in src:
            assert np.array_equal(out[k], reversed_like(src[k])), k
    check_listing(oindex, {"dec.w": reversed_like(c), "enc.b": reversed_like(b), "enc.w": reversed_like(a)})
    with open(os.path.join(d, "broken.safetensors"), "wb") as f:
        f.write(st_raw('{"q":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"12"))
    bad_index("broken", {"q": "broken.safetensors"}, "shard 'broken.safetensors': tensors cover 4 bytes")


# ---- writers ---------------------------------------------------------------

def t_write_safetensors():
    arrays = st_arrays()
    src = write("w_src.safetensors", st_bytes(arrays, {"format": "pt"}))
    out = R.path("w_out.safetensors")
    helper("rewrite", src, out)
    assert open(out, "rb").read() == open(src, "rb").read(), "identity rewrite is not byte-identical"
    out2 = R.path("w_rev.safetensors")
    helper("rewrite", src, out2, "reverse")
    meta, dec = st_decode(out2)
    assert meta == {"format": "pt"}
    _, orig = st_decode(src)
    assert list(dec) == list(orig)
    for k, v in orig.items():
        assert dec[k].dtype == v.dtype and dec[k].shape == v.shape
        assert np.array_equal(dec[k].view(np.uint8) if v.dtype == bool else dec[k],
                              reversed_like(v).view(np.uint8) if v.dtype == bool else reversed_like(v)), k
    # the real files: identity copies are byte-identical, except that headers
    # of old writers that did not pad to 8 come back padded
    for root, _, names in os.walk(os.path.join(FIXTURES, "safetensors")):
        for n in names:
            fx = os.path.join(root, n)
            o = R.path("fx_" + n)
            helper("rewrite", fx, o)
            a, b = open(fx, "rb").read(), open(o, "rb").read()
            na, nb = struct.unpack("<Q", a[:8])[0], struct.unpack("<Q", b[:8])[0]
            assert nb % 8 == 0
            if na % 8 == 0:
                assert a == b, f"{n}: rewrite differs"
            else:
                assert a[8:8 + na].rstrip() == b[8:8 + nb].rstrip(), f"{n}: header differs"
                assert a[8 + na:] == b[8 + nb:], f"{n}: data differs"


def t_write_npy():
    for name, a in {"c": sample("float64", (3, 4)), "f": np.asfortranarray(sample("int16", (3, 4))),
                    "be": sample("complex64", (5,)).astype(">c8"), "s": np.array(7, dtype="uint32")}.items():
        src = R.path(name + ".npy")
        np.save(src, a)
        out = R.path(name + "_out.npy")
        helper("rewrite", src, out)
        b = np.load(out)
        assert b.dtype == a.dtype.newbyteorder("<") or b.dtype == a.dtype, (b.dtype, a.dtype)
        assert np.array_equal(b, a)
        helper("rewrite", src, out, "reverse")
        assert np.array_equal(np.load(out), reversed_like(a))
    # a C-order little-endian file comes back byte for byte
    src = R.path("plain.npy")
    np.save(src, sample("float32", (2, 3)))
    helper("rewrite", src, R.path("plain_out.npy"))
    assert open(R.path("plain_out.npy"), "rb").read() == open(src, "rb").read()


def t_write_npz():
    arrays = npz_arrays()
    for kind, save in [("stored", np.savez), ("deflated", np.savez_compressed)]:
        src = R.path(f"wsrc_{kind}.npz")
        save(src, **arrays)
        out = R.path(f"wout_{kind}.npz")
        helper("rewrite", src, out)
        with zipfile.ZipFile(out) as z:
            assert z.testzip() is None
            assert [i.filename for i in z.infolist()] == [k + ".npy" for k in arrays]
            assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
        with np.load(out) as z:
            for k, a in arrays.items():
                assert np.array_equal(z[k], a), k
        helper("rewrite", src, out, "reverse")
        with np.load(out) as z:
            for k, a in arrays.items():
                assert np.array_equal(z[k], reversed_like(a)), k
    # np.savez's own output and ours hold the same .npy bytes for C-order arrays
    src = R.path("same.npz")
    np.savez(src, a=sample("float32", (4, 4)), b=sample("int8", (3,)))
    out = R.path("same_out.npz")
    helper("rewrite", src, out)
    with zipfile.ZipFile(src) as x, zipfile.ZipFile(out) as y:
        for n in x.namelist():
            assert x.read(n) == y.read(n), n


# ---- zip writer --------------------------------------------------------------

def demo_members():
    big = bytes(((i % 251) ^ (i // 1000)) & 0xFF for i in range(100000))
    return {"a.txt": b"hello", "dir/b.bin": big, "c.dat": big[:1000], "été.txt": b"x", "empty": b""}


def zipw(*args):
    p = subprocess.run([HELPER_ZIPW, *args], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def check_demo_zip(path):
    want = demo_members()
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        assert z.namelist() == list(want)
        for n, data in want.items():
            assert z.read(n) == data, n
        assert z.getinfo("dir/b.bin").compress_type == zipfile.ZIP_DEFLATED
        assert z.getinfo("a.txt").compress_type == zipfile.ZIP_STORED
        return z.infolist()


def t_zipw_python_reads():
    for mode in ["plain", "zip64"]:
        out = R.path(f"demo_{mode}.zip")
        zipw("write", out, *(["zip64"] if mode == "zip64" else []))
        infos = check_demo_zip(out)
        raw = open(out, "rb").read()
        assert (b"PK\x06\x06" in raw) == (mode == "zip64")
        c = [i for i in infos if i.filename == "c.dat"][0]
        # local header: 30 bytes + name + extra, then the 64-aligned data
        nlen, xlen = struct.unpack("<HH", raw[c.header_offset + 26:c.header_offset + 30])
        assert (c.header_offset + 30 + nlen + xlen) % 64 == 0
        if mode == "zip64":
            assert all(i.extract_version >= 45 for i in infos)
        cp = R.path(f"copy_{mode}.zip")
        zipw("copy", out, cp)
        check_demo_zip(cp)


def t_samples():
    samples = os.path.join(SOURCE_ROOT, "samples")
    with np.load(os.path.join(samples, "mlp_tiny.npz")) as z:
        arrays = {k: z[k] for k in z.files}
    check_listing(os.path.join(samples, "mlp_tiny.npz"), arrays)
    meta, dec = st_decode(os.path.join(samples, "mlp_tiny.safetensors"))
    assert meta == {"format": "pt"}
    check_listing(os.path.join(samples, "mlp_tiny.safetensors"), {k: arrays[k] for k in dec})
    for folder in ["safetensors", "npz"]:
        d = os.path.join(samples, "corrupt", folder)
        lines = [ln.split("\t") for ln in open(os.path.join(d, "EXPECTED")).read().splitlines() if ln]
        assert len(lines) >= 4
        for name, frag in lines:
            check_error(os.path.join(d, name), frag)


def t_helpers_built():
    assert os.access(HELPER_NPZ, os.X_OK), HELPER_NPZ
    assert os.access(HELPER_ZIPW, os.X_OK), HELPER_ZIPW


R.check("helpers are built", t_helpers_built)
R.check("npy: every dtype from np.save", t_npy_all_dtypes)
R.check("npy: fortran, big-endian, scalar, empty", t_npy_layouts)
R.check("npy: versions 1, 2, 3 and a huge v2 header", t_npy_versions)
R.check("npy: malformed files refused with a message", t_npy_malformed)
R.check("npz: np.savez", t_npz_savez)
R.check("npz: np.savez_compressed", t_npz_savez_compressed)
R.check("npz: positional arrays", t_npz_positional)
R.check("npz: malformed archives refused with a message", t_npz_malformed)
R.check("npz: fixtures match np.load", t_npz_fixtures)
R.check("safetensors: reference layout, all dtypes, metadata", t_st_reference_layout)
R.check("safetensors: whitespace and detection by content", t_st_whitespace_and_order)
R.check("safetensors: fixtures match a plain decode", t_st_fixtures)
R.check("safetensors: every spec B.3 rejection", t_st_malformed)
R.check("safetensors: sharded index", t_st_sharded)
R.check("write: safetensors", t_write_safetensors)
R.check("write: npy", t_write_npy)
R.check("write: npz", t_write_npz)
R.check("zipw: Python's zipfile reads our archives", t_zipw_python_reads)
R.check("samples: mlp_tiny and the corrupt variants", t_samples)
R.close()
