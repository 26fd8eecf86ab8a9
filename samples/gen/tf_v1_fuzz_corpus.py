#!/usr/bin/python3
"""Seed corpus for fuzz_tf_ckpt_v1 (TF V1 checkpoints of SavedTensorSlices).

Run from the source root:  /usr/bin/python3 samples/gen/tf_v1_fuzz_corpus.py
Writes samples/corrupt/tf_ckpt_v1/ (with EXPECTED) and tests/fuzz/corpora/tf_ckpt_v1/: the fixture file, small checkpoints
encoded field by field (saved_tensor_slice.proto numbers: meta 1 {tensor 1
{name 1, shape 2, type 3, slice 4}}, data 2 {name 1, slice 2, data 3}),
truncations, and hostile variants (huge dims, unknown rank, wrong value
counts, records for unlisted tensors, partial slices).
"""
import os
import shutil
import struct

from tf_fuzz_seeds import field, table

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "fuzz", "corpora", "tf_ckpt_v1")
FIXTURE = os.path.join(HERE, "..", "..", "..", "shared", "fixtures", "tf_ckpt_v1",
                       "serving_session_bundle_half_plus_two", "export-00000-of-00001")


def meta(*tensors):
    return field(1, 2, b"".join(field(1, 2, t) for t in tensors))


def tmeta(name, dtype, dims, slice_=b"", unknown=False):
    shape = b"".join(field(2, 2, field(1, 0, d)) for d in dims)
    if unknown:
        shape += field(3, 0, 1)
    return field(1, 2, name) + field(2, 2, shape) + field(3, 0, dtype) + field(4, 2, slice_)


def record(name, tensor):
    return field(2, 2, field(1, 2, name) + field(2, 2, b"") + field(3, 2, tensor))


def floats(*v):
    return field(5, 2, struct.pack(f"<{len(v)}f", *v))


def ckpt(metas, recs):
    return table([(b"", meta(*metas))] + sorted((b"\x00" + n + b"\x00\x01", r) for n, r in recs))


def seeds():
    yield "basic", ckpt([tmeta(b"w", 1, [2, 2]), tmeta(b"s", 9, [])],
                        [(b"w", record(b"w", floats(1, 2, 3, 4))),
                         (b"s", record(b"s", field(10, 0, 7)))])
    yield "content", ckpt([tmeta(b"c", 3, [3])], [(b"c", record(b"c", field(4, 2, b"\1" * 12)))])
    yield "huge_dims", ckpt([tmeta(b"h", 1, [1 << 40, 1 << 40])], [(b"h", record(b"h", floats(1)))])
    yield "unknown_rank", ckpt([tmeta(b"u", 1, [], unknown=True)], [])
    yield "too_many_values", ckpt([tmeta(b"w", 1, [1])], [(b"w", record(b"w", floats(1, 2)))])
    yield "unlisted", ckpt([tmeta(b"w", 1, [1])], [(b"x", record(b"x", floats(1)))])
    yield "partial", ckpt([tmeta(b"w", 1, [4], field(1, 2, field(1, 0, 1) + field(2, 0, 2)))],
                          [(b"w", record(b"w", floats(1, 2)))])
    yield "string", ckpt([tmeta(b"t", 7, [1])], [(b"t", record(b"t", field(8, 2, b"abc")))])


CORRUPT = {"huge_dims": "element count overflows", "unknown_rank": "unknown rank",
           "too_many_values": "2 values for 1 elements", "unlisted": "does not list",
           "partial": "partial slice", "string": "DataType 7 is not supported"}


def main():
    folder = os.path.join(HERE, "..", "corrupt", "tf_ckpt_v1")
    os.makedirs(folder, exist_ok=True)
    made = dict(seeds())
    made["truncated"] = made["basic"][: len(made["basic"]) - 9]
    with open(os.path.join(folder, "EXPECTED"), "w") as f:
        for name, what in list(CORRUPT.items()) + [("truncated", "bad magic")]:
            with open(os.path.join(folder, name + ".ckpt"), "wb") as g:
                g.write(made[name])
            f.write(f"{name}.ckpt\t{what}\n")
    os.makedirs(OUT, exist_ok=True)
    shutil.copy(FIXTURE, os.path.join(OUT, "fixture"))
    for name, data in seeds():
        for cut in sorted({len(data), 1, 5, len(data) // 2, len(data) - 1}):
            with open(os.path.join(OUT, name if cut == len(data) else f"{name}.cut{cut}"), "wb") as f:
                f.write(data[:cut])


main()
