#!/usr/bin/env python3
"""Seeds for tests/fuzz/fuzz_ops.c (layout described at the top of that file).

Run from the repository root: python3 samples/gen/ops_fuzz_corpus.py
The corpus's found-* files are not from here: they are what libFuzzer added
to the coverage in a run of fuzz_ops (kept with -merge=1).
"""
import os

OUT = os.path.join("tests", "fuzz", "corpora", "ops")
# the order of src/transform/ops.def
(PERMUTE, TRANSPOSE, RESHAPE, CAST, CHUNKS, TAKE, CONCAT, SUM, SCALE, FOLD_BN, STACK, UNSTACK,
 PAD, SLICE) = range(14)
# graft_dtype values
F16, BF16, F32, F64, I8, I16, I32, I64, U8 = 1, 2, 3, 4, 5, 6, 7, 8, 9
BOOL, C64, C128, STRING = 13, 14, 15, 16


def s8(v):
    return v & 0xFF


def op(kind, v=(), axis=0, count=0, index=0, dtype=0, start=0, length=0, mul=4, add=0, eps=1,
       value=0, part=0):
    """mul is in quarters, add in eighths, eps in 1/1024ths, value in halves (fuzz_ops.c)."""
    return bytes([kind, len(v)] + [s8(x) for x in v] + [s8(axis), s8(count), s8(index), dtype] +
                 [s8(start), s8(length), s8(mul), s8(add), eps & 0xFF, s8(value), part])


def seed(name, dtype, shape, ops, extra_sources=(), nin=None, tail=b""):
    nin = nin if nin is not None else 1 + len(extra_sources)
    b = bytes([nin - 1, dtype - 1, len(shape)] + list(shape))
    b += bytes(extra_sources)
    b += bytes([len(ops)]) + b"".join(ops)
    b += tail or bytes(range(7, 251, 3))
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(b)
    return b


os.makedirs(OUT, exist_ok=True)
good = [
    seed("permute_hwio", F32, [4, 3, 3, 2], [op(PERMUTE, [2, 3, 1, 0])]),
    seed("transpose_f16", F16, [5, 7], [op(TRANSPOSE)]),
    seed("flatten_reorder", F32, [4, 6], [op(RESHAPE, [4, 3, 2, 1]), op(PERMUTE, [2, 3, 1, 0]),
                                          op(RESHAPE, [-1, 4])]),
    seed("chunks_gru", I16, [6, 5], [op(CHUNKS, [1, 0, 2], axis=0)]),
    seed("take_qkv", BF16, [6, 4], [op(TAKE, axis=0, count=3, index=1), op(TRANSPOSE)]),
    seed("concat3", F64, [2, 3], [op(CONCAT, axis=1), op(TRANSPOSE)],
         extra_sources=[0x21, 0x41]),
    seed("cast_chain", F32, [3, 5], [op(CAST, dtype=F16), op(PERMUTE, [1, 0]), op(CAST, dtype=F64)]),
    seed("cast_int", I32, [7], [op(CAST, dtype=I8)], tail=bytes([1, 0, 0, 0, 0x2c, 1, 0, 0] * 7)),
    seed("cast_bool", U8, [2, 2], [op(CAST, dtype=BOOL), op(CAST, dtype=F32)], tail=bytes([0, 1, 1, 0])),
    seed("complex", C64, [2, 3], [op(CAST, dtype=C128), op(PERMUTE, [-1, -2])]),
    seed("empty_dim", F32, [0, 3], [op(TRANSPOSE), op(RESHAPE, [3, 0])]),
    seed("scalar", I64, [], [op(RESHAPE, [1, 1, 1]), op(TRANSPOSE)]),
]
# the ops of rules format 1.1 (0x80 | x: a vector source of the first's dim 0)
good += [
    seed("sum3", F32, [2, 3], [op(SUM)], extra_sources=[0x00, 0x00]),
    seed("sum_bf16", BF16, [4], [op(SUM), op(SCALE, mul=-2, add=3)], extra_sources=[0x00]),
    seed("scale_f16", F16, [3, 2], [op(SCALE, mul=3, add=-4), op(TRANSPOSE)]),
    seed("fold_weight", F32, [4, 3, 2, 2], [op(FOLD_BN, eps=1, part=0)],
         extra_sources=[0x80, 0x80, 0x80, 0x80]),
    seed("fold_bias", F64, [4], [op(FOLD_BN, eps=2, part=1)], extra_sources=[0x80, 0x80, 0x80, 0x80]),
    seed("fold_bias4", F16, [5], [op(FOLD_BN, eps=0, part=1)], extra_sources=[0x80, 0x80, 0x80]),
    seed("stack2", I16, [2, 3], [op(STACK, axis=1), op(TRANSPOSE)], extra_sources=[0x00]),
    seed("unstack", U8, [3, 2, 2], [op(UNSTACK, axis=-1, index=1)]),
    seed("pad_vocab", F32, [5, 2], [op(PAD, axis=0, length=8, value=-3)]),
    seed("pad_bool", BOOL, [2, 2], [op(PAD, axis=1, length=3, value=2)]),
    seed("slice_rows", C64, [6, 2], [op(SLICE, axis=0, start=0, length=4)]),
    seed("take_rows", F32, [6, 2], [op(TAKE, [1, 3], axis=0)]),
]
seed("bad_sum_shape", F32, [2, 3], [op(SUM)], extra_sources=[0x30])
seed("bad_sum_int", I32, [2], [op(SUM)], extra_sources=[0x00])
seed("bad_scale_late_sum", F32, [2], [op(SCALE), op(SUM)])
seed("bad_fold_count", F32, [4, 2], [op(FOLD_BN)], extra_sources=[0x80, 0x80])
seed("bad_fold_vector", F32, [4, 2], [op(FOLD_BN)], extra_sources=[0x80, 0x80, 0x80, 0x00])
seed("bad_stack_axis", F32, [2], [op(STACK, axis=3)], extra_sources=[0x00])
seed("bad_unstack_index", F32, [2, 2], [op(UNSTACK, index=2)])
seed("bad_pad_shorter", F32, [5], [op(PAD, length=3)])
seed("bad_pad_value", U8, [2], [op(PAD, length=3, value=-1)])
seed("bad_slice_range", F32, [5], [op(SLICE, start=4, length=3)])
# malformed chains: each must fail cleanly
seed("bad_permute_repeat", F32, [2, 3], [op(PERMUTE, [1, 1])])
seed("bad_permute_rank", F32, [2, 3], [op(PERMUTE, [0, 1, 2])])
seed("bad_permute_range", F32, [2, 3], [op(PERMUTE, [0, 9])])
seed("bad_reshape_two_wild", F32, [2, 3], [op(RESHAPE, [-1, -1])])
seed("bad_reshape_count", F32, [2, 3], [op(RESHAPE, [4, 2])])
seed("bad_reshape_negative", F32, [2, 3], [op(RESHAPE, [-6, -1])])
seed("bad_reshape_zero_wild", F32, [0, 3], [op(RESHAPE, [0, -1])])
seed("bad_chunks_div", F32, [5, 3], [op(CHUNKS, [1, 0], axis=0)])
seed("bad_chunks_order", F32, [4, 3], [op(CHUNKS, [0, 0], axis=0)])
seed("bad_chunks_axis", F32, [4, 3], [op(CHUNKS, [1, 0], axis=5)])
seed("bad_take_index", F32, [6, 3], [op(TAKE, axis=0, count=3, index=3)])
seed("bad_take_negative", F32, [6, 3], [op(TAKE, axis=0, count=-3, index=-1)])
seed("bad_take_slice", F32, [6, 3], [op(TAKE, [4, 5], axis=0)])
seed("bad_concat_late", F32, [2, 3], [op(TRANSPOSE), op(CONCAT)])
seed("bad_concat_shape", F32, [2, 3], [op(CONCAT, axis=1)], extra_sources=[0x30])
seed("bad_no_concat", F32, [2, 3], [op(TRANSPOSE)], extra_sources=[0x21])
seed("bad_cast_string", F32, [2], [op(CAST, dtype=STRING)])
seed("bad_cast_complex", C64, [2], [op(CAST, dtype=F32)])
seed("bad_cast_invalid", F32, [2], [op(CAST, dtype=0)])
seed("bad_string_source", STRING, [2], [op(TRANSPOSE)])
seed("bad_float_to_int", F32, [4], [op(CAST, dtype=U8)], tail=bytes([0, 0, 0xc0, 0x7f] * 4))
# truncations of the valid seeds
for i, b in enumerate(good[:6]):
    for cut in (0, 1, 3, 6, len(b) // 2):
        with open(os.path.join(OUT, f"cut{i}_{cut}"), "wb") as f:
            f.write(b[:cut])
