#!/usr/bin/python3
"""Hostile GGUF files for samples/corrupt/gguf (with EXPECTED: file, then a
fragment of graft's one-line error) and seeds for tests/fuzz/corpora/gguf
(valid files, their truncations and the hostile ones).

Run from the source root:  /usr/bin/python3 samples/gen/gguf_corrupt.py
Each case breaks one limit ggml's src/gguf.cpp checks.
"""
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "interop"))
import ggufref  # noqa: E402

CORRUPT = os.path.join(HERE, "..", "corrupt", "gguf")
FUZZ = os.path.join(HERE, "..", "..", "tests", "fuzz", "corpora", "gguf")


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def head(nt, nkv, version=3):
    return b"GGUF" + struct.pack("<IQQ", version, nt, nkv)


def info(name, ne, gt, off):
    return s(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}q", *ne) + struct.pack("<IQ", gt, off)


ARCH = s("general.architecture") + struct.pack("<I", 8) + s("llama")


def one_tensor(ne, gt=0, off=0, data=b"", kv=ARCH, nkv=1):
    h = head(1, nkv) + kv + info("w", ne, gt, off)
    return h + bytes(ggufref.pad(len(h), 32) - len(h)) + data


CASES = [
    ("version1.gguf", head(0, 0, version=1), "GGUF version 1"),
    ("huge_tensor_count.gguf", head(2**62, 0), "tensors cannot fit"),
    ("huge_kv_count.gguf", head(0, 2**40), "key-value pairs cannot fit"),
    ("huge_key_length.gguf", head(0, 1) + struct.pack("<Q", 2**40) + b"x" * 16, "exceeds the cap"),
    ("key_past_end.gguf", head(0, 1) + struct.pack("<Q", 1000) + b"x" * 16, "runs past the end"),
    ("huge_string_value.gguf", head(0, 1) + s("k") + struct.pack("<IQ", 8, 2**63) + b"x" * 8,
     "exceeds the cap"),
    ("huge_array.gguf", head(0, 1) + s("k") + struct.pack("<IIQ", 9, 4, 2**40) + b"\0" * 16,
     "exceeds the cap"),
    ("array_past_end.gguf", head(0, 1) + s("k") + struct.pack("<IIQ", 9, 4, 1000000) + b"\0" * 16,
     "runs past the end"),
    ("nested_array.gguf", head(0, 1) + s("k") + struct.pack("<IIQ", 9, 9, 1) + b"\0" * 16,
     "invalid array element type 9"),
    ("bad_value_type.gguf", head(0, 1) + s("k") + struct.pack("<I", 13) + b"\0" * 8,
     "invalid value type 13"),
    ("duplicate_key.gguf", head(0, 2) + ARCH + ARCH, "duplicate metadata key 'general.architecture'"),
    ("alignment_not_pow2.gguf", head(0, 1) + s("general.alignment") + struct.pack("<II", 4, 48),
     "general.alignment 48 is not a power of two"),
    ("alignment_huge.gguf", head(0, 1) + s("general.alignment") + struct.pack("<II", 4, 1 << 30),
     "is not a power of two up to 1048576"),
    ("alignment_u64.gguf", head(0, 1) + s("general.alignment") + struct.pack("<IQ", 10, 32),
     "general.alignment is u64, not u32"),
    ("dims_overflow.gguf", one_tensor([2**32, 2**32, 2**32]), "element count overflows int64"),
    ("negative_dim.gguf", one_tensor([-1]), "dimension 0 is negative"),
    ("too_many_dims.gguf", one_tensor([1, 1, 1, 1, 1]), "5 dimensions, ggml allows at most 4"),
    ("invalid_type.gguf", one_tensor([4], gt=99), "invalid ggml type 99"),
    ("unsupported_type.gguf", one_tensor([256], gt=12), "ggml type 12 is not supported"),
    ("q8_partial_block.gguf", one_tensor([33], gt=8), "not a multiple of the block size 32"),
    ("offset_past_end.gguf", one_tensor([1000], data=b"\0" * 64), "runs past the end of the"),
    ("misaligned_offset.gguf", one_tensor([4], off=4, data=b"\0" * 64), "data offset 4, expected 0"),
    ("long_name.gguf", head(1, 0) + s("n" * 64) + b"\0" * 32, "ggml allows fewer than 64"),
]


def two_tensors_misaligned():
    h = head(2, 1) + ARCH + info("a", [3], 0, 0) + info("b", [3], 0, 12)
    return h + bytes(ggufref.pad(len(h), 32) - len(h)) + b"\0" * 64


def duplicate_names():
    h = head(2, 1) + ARCH + info("a", [3], 0, 0) + info("a", [3], 0, 32)
    return h + bytes(ggufref.pad(len(h), 32) - len(h)) + b"\0" * 64


CASES += [
    ("second_tensor_misaligned.gguf", two_tensors_misaligned(), "tensor 'b': data offset 12, expected 32"),
    ("duplicate_tensor.gguf", duplicate_names(), "'a'"),
    ("truncated_header.gguf", head(3, 1)[:14], "need 8 bytes"),
]


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def main():
    lines = []
    for name, data, frag in CASES:
        write(CORRUPT, name, data)
        write(FUZZ, name, data)
        lines.append(f"{name}\t{frag}")
    with open(os.path.join(CORRUPT, "EXPECTED"), "w") as f:
        f.write("\n".join(lines) + "\n")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 64)).astype(np.float32)
    kvs = [("general.architecture", 8, "llama"), ("a", 9, (8, ["x", "yz"])), ("b", 6, 1.5)]
    valid = ggufref.write(os.path.join(FUZZ, "valid.gguf"), kvs, [
        ("f32", 0, [5, 2], rng.standard_normal(10).astype(np.float32).tobytes()),
        ("q8", 8, [64, 2], ggufref.quantize_q8_0(x)), ("q4", 2, [64, 2], ggufref.quantize_q4_0(x)),
        ("i16", 25, [3], np.arange(3, dtype=np.int16).tobytes())])
    for cut in (9, 30, len(valid) // 2, len(valid) - 1):
        write(FUZZ, f"valid_cut{cut}.gguf", valid[:cut])


if __name__ == "__main__":
    main()
