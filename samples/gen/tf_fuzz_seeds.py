#!/usr/bin/env python3
"""Write the seed corpora of tests/fuzz/corpora/{tf_table,graphdef}/.

Everything is built here from scratch (a small LevelDB-style table writer and
protobuf wire encoder written from the TensorFlow sources' description), so
no fixture bytes end up in the repository.  Run from the repository root:
    python3 samples/gen/tf_fuzz_seeds.py
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fuzz", "corpora")


def crc32c(data, crc=0):
    if len(data) >= 1 << 20:
        return _crc32c_big(data, crc)
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _crc32c_big(data, crc=0, piece=1 << 16):
    """CRC-32C of a large buffer with numpy: the CRCs of 64 KiB pieces run
    side by side (from a zero state), then chain: the state before a piece,
    moved over its length of zero bytes (a linear map), XOR its own CRC."""
    import numpy as np
    table = np.zeros(256, np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table[i] = c

    def run(state, cols):  # state: uint32 array; cols: uint8 rows x len
        for j in range(cols.shape[1]):
            state = table[(state ^ cols[:, j]) & 0xFF] ^ (state >> 8)
        return state
    k = len(data) // piece
    a = np.frombuffer(bytes(data[:k * piece]), np.uint8).reshape(k, piece)
    own = run(np.zeros(k, np.uint32), a)
    # zero bytes over one piece, for each bit of the state
    shift = run(np.array([1 << b for b in range(32)], np.uint32), np.zeros((32, piece), np.uint8))
    s = crc ^ 0xFFFFFFFF
    for i in range(k):
        moved = 0
        for b in range(32):
            if s >> b & 1:
                moved ^= int(shift[b])
        s = moved ^ int(own[i])
    for b in data[k * piece:]:
        s = int(table[(s ^ b) & 0xFF]) ^ (s >> 8)
    return s ^ 0xFFFFFFFF


def mask(c):
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def field(num, wt, payload):
    tag = varint(num << 3 | wt)
    if wt == 0:
        return tag + varint(payload)
    if wt == 2:
        return tag + varint(len(payload)) + payload
    if wt == 5:
        return tag + struct.pack("<I", payload)
    if wt == 1:
        return tag + struct.pack("<Q", payload)
    raise ValueError(wt)


def block(entries, restart=16):
    data, restarts, last = bytearray(), [0], b""
    for i, (k, v) in enumerate(entries):
        shared = 0
        if i % restart:
            while shared < min(len(k), len(last)) and k[shared] == last[shared]:
                shared += 1
        elif i:
            restarts.append(len(data))
        data += varint(shared) + varint(len(k) - shared) + varint(len(v)) + k[shared:] + v
        last = k
    for r in restarts:
        data += struct.pack("<I", r)
    return bytes(data + struct.pack("<I", len(restarts)))


def literal_snappy(raw):
    """A valid Snappy stream made of literals only."""
    out = bytearray(varint(len(raw)))
    for i in range(0, len(raw), 60):
        chunk = raw[i:i + 60]
        out.append((len(chunk) - 1) << 2)
        out += chunk
    return bytes(out)


def table(entries, per_block=1000, snappy=False, corrupt_crc=False, mutate=None, typ_override=None):
    out, index = bytearray(), []
    for i in range(0, max(len(entries), 1), per_block):
        chunk = entries[i:i + per_block]
        if not chunk:
            break
        raw = block(chunk)
        typ = 0
        if snappy:
            raw, typ = literal_snappy(raw), 1
        if mutate:
            raw = mutate(bytearray(raw))
        if typ_override is not None:
            typ = typ_override
        crc = mask(crc32c(raw + bytes([typ])))
        if corrupt_crc:
            crc ^= 1
        index.append((chunk[-1][0] + b"\xff", varint(len(out)) + varint(len(raw))))
        out += raw + bytes([typ]) + struct.pack("<I", crc)

    def put(raw):
        h = varint(len(out)) + varint(len(raw))
        out.extend(raw + b"\x00" + struct.pack("<I", mask(crc32c(raw + b"\x00"))))
        return h
    meta = put(block([]))
    idx = put(block(index, restart=1))
    footer = (meta + idx).ljust(40, b"\x00") + struct.pack("<Q", 0xDB4775248B80FB57)
    return bytes(out + footer)


HEADER = field(1, 0, 1) + field(3, 2, field(1, 0, 1))


def shape(*dims):
    return b"".join(field(2, 2, field(1, 0, d)) for d in dims)


def entry(dtype, dims, offset, size, crc=0x12345678, shard=0, extra=b""):
    e = field(1, 0, dtype) + field(2, 2, shape(*dims))
    if shard:
        e += field(3, 0, shard)
    if offset:
        e += field(4, 0, offset)
    if size:
        e += field(5, 0, size)
    return e + field(6, 5, crc) + extra


def tf_table_seeds():
    good = [(b"", HEADER), (b"W", entry(1, [], 0, 4)), (b"b", entry(1, [2, 2], 4, 16))]
    many = [(b"", HEADER)] + [(b"layer%03d/kernel" % i, entry(1, [i % 5 + 1], 4 * i, 4 * (i % 5 + 1)))
                              for i in range(60)]
    seeds = {
        "ok_small.index": table(good),
        "ok_string.index": table([(b"", HEADER), (b"_CHECKPOINTABLE_OBJECT_GRAPH", entry(7, [], 0, 9))]),
        "ok_multiblock.index": table(many, per_block=7),
        "ok_snappy.index": table(many, snappy=True),
        "empty_table.index": table([]),
        "no_header.index": table([(b"W", entry(1, [], 0, 4))]),
        "bad_header.index": table([(b"", field(1, 0, 0))] + good[1:]),
        "big_endian.index": table([(b"", HEADER + field(2, 0, 1))] + good[1:]),
        "bad_block_crc.index": table(good, corrupt_crc=True),
        "huge_dims.index": table([(b"", HEADER), (b"W", entry(1, [1 << 40, 1 << 40], 0, 4))]),
        "negative_dim.index": table([(b"", HEADER), (b"W", entry(1, [-1], 0, 4))]),
        "shard_out_of_range.index": table([(b"", HEADER), (b"W", entry(1, [], 0, 4, shard=9))]),
        "size_mismatch.index": table([(b"", HEADER), (b"W", entry(1, [3], 0, 4))]),
        "unknown_dtype.index": table([(b"", HEADER), (b"W", entry(99, [], 0, 4))]),
        "sliced.index": table([(b"", HEADER), (b"W", entry(1, [4], 0, 0, extra=field(7, 2, b"")))]),
        "slice_key.index": table([(b"", HEADER), (b"\x00W", entry(1, [], 0, 4))]),
        "junk_entry.index": table([(b"", HEADER), (b"W", b"\x0f\xff\xff")]),
        "keys_out_of_order.index": table([(b"", HEADER), (b"b", entry(1, [], 0, 4)), (b"a", entry(1, [], 4, 4))]),
    }
    t = bytearray(table(good))
    seeds["bad_magic.index"] = bytes(t[:-1] + b"\x00")
    seeds["truncated_half.index"] = bytes(t[:len(t) // 2])
    seeds["truncated_footer.index"] = bytes(t[:40])
    past = bytearray(t)
    past[-45] |= 0x70  # index handle size runs past the file
    seeds["handle_past_end.index"] = bytes(past)
    seeds["bad_block_type.index"] = table(good, typ_override=7)

    def set_at(pos, data):
        def f(raw):
            raw[pos if pos >= 0 else len(raw) + pos:(pos if pos >= 0 else len(raw) + pos) + len(data)] = data
            return bytes(raw)
        return f
    seeds["too_many_restarts.index"] = table(good, mutate=set_at(-4, struct.pack("<I", 0xFFFF)))
    seeds["zero_restarts.index"] = table(good, mutate=set_at(-4, struct.pack("<I", 0)))
    seeds["bad_shared.index"] = table(good, mutate=set_at(0, b"\x05"))
    seeds["value_past_block.index"] = table(good, mutate=set_at(2, b"\x7f"))
    seeds["snappy_corrupt.index"] = table(many, snappy=True, mutate=set_at(3, b"\xff"))
    seeds["snappy_huge_length.index"] = table(many, snappy=True,
                                              mutate=lambda r: varint(1 << 40) + bytes(r[2:]))
    return seeds


def tensor(dtype, dims, *fields):
    return field(1, 0, dtype) + field(2, 2, shape(*dims)) + b"".join(fields)


def const(name, tp, dtype=1):
    attr_dtype = field(5, 2, field(1, 2, b"dtype") + field(2, 2, field(6, 0, dtype)))
    attr_value = field(5, 2, field(1, 2, b"value") + field(2, 2, field(8, 2, tp)))
    return field(1, 2, field(1, 2, name) + field(2, 2, b"Const") + attr_dtype + attr_value)


def graph_seeds():
    f32 = lambda *v: struct.pack("<%df" % len(v), *v)
    nodes = [
        const(b"w", tensor(1, [2, 2], field(4, 2, f32(1, 2, 3, 4)))),
        const(b"s", tensor(1, [], field(5, 2, f32(0.5)))),
        const(b"bcast", tensor(3, [3], field(7, 2, varint(7))), 3),
        const(b"neg", tensor(3, [2], field(7, 2, varint(-5) + varint(6))), 3),
        const(b"zeros", tensor(9, [4]), 9),
        const(b"half", tensor(19, [2], field(13, 2, varint(0x3C00))), 19),
        const(b"bf16_old", tensor(14, [1], field(7, 0, 0x3F80)), 14),
        const(b"flag", tensor(10, [3], field(11, 2, b"\x01\x00")), 10),
        const(b"cplx", tensor(8, [2], field(9, 2, f32(1, 2, 3, 4))), 8),
        const(b"str", tensor(7, [2], field(8, 2, b"ab"), field(8, 2, b"c")), 7),
        const(b"str_content", tensor(7, [2], field(4, 2, b"\x01\x02abc")), 7),
        const(b"unpacked", tensor(1, [2], field(5, 5, 0x3F800000), field(5, 5, 0x40000000))),
        field(1, 2, field(1, 2, b"x") + field(2, 2, b"Placeholder") + field(4, 2, b"/cpu:0")),
        field(1, 2, field(1, 2, b"y") + field(2, 2, b"Add") + field(3, 2, b"w") + field(3, 2, b"x")),
    ]
    graph = b"".join(nodes) + field(4, 2, field(1, 0, 27))
    meta = field(1, 2, field(4, 2, b"serve")) + field(2, 2, graph)
    saved = field(1, 0, 1) + field(2, 2, meta)
    bad = {
        "content_size_mismatch": const(b"w", tensor(1, [3], field(4, 2, f32(1, 2)))),
        "huge_broadcast": const(b"w", tensor(1, [1 << 31, 1 << 31], field(5, 2, f32(1)))),
        "negative_dim": const(b"w", tensor(1, [-3], field(5, 2, f32(1)))),
        "packed_mid_varint": const(b"w", tensor(3, [2], field(7, 2, b"\x81")), 3),
        "packed_float_ragged": const(b"w", tensor(1, [2], field(5, 2, b"\x00\x00\x80"))),
        "odd_complex": const(b"w", tensor(8, [3], field(9, 2, f32(1, 2, 3))), 8),
        "wrong_wire_type": const(b"w", tensor(1, [2], field(5, 0, 3))),
        "string_content_bad": const(b"w", tensor(7, [2], field(4, 2, b"\x05\x01ab")), 7),
        "group_wire_type": b"\x0b\x0c",
        "length_past_end": b"\x0a\xff\xff\x03abc",
        "field_zero": b"\x02\x00",
        "deep_rank": const(b"w", tensor(1, [1] * 70, field(5, 2, f32(1)))),
        "duplicate_names": const(b"w", tensor(1, [], field(5, 2, f32(1)))) * 2,
    }
    seeds = {"ok_graph.pb": b"\x00" + graph, "ok_meta.meta": b"\x01" + meta,
             "ok_saved_model.pb": b"\x02" + saved,
             "truncated_graph.pb": b"\x00" + graph[:len(graph) // 2]}
    for k, v in bad.items():
        seeds[k + ".pb"] = b"\x00" + v
    return seeds


def node(name, op, inputs=(), attrs=b"", device=b""):
    out = field(1, 2, name.encode()) + field(2, 2, op.encode())
    out += b"".join(field(3, 2, i.encode()) for i in inputs)
    if device:
        out += field(4, 2, device)
    return field(1, 2, out + attrs)


def attr(key, value):
    return field(5, 2, field(1, 2, key.encode()) + field(2, 2, value))


def variable(name, dims, op="VariableV2", dtype=1):
    return node(name, op, attrs=attr("dtype", field(6, 0, dtype)) + attr("shape", field(7, 2, shape(*dims))),
                device=b"/job:worker/device:GPU:0")


def freeze_seeds():
    """Byte 0 picks the kind (GraphDef, MetaGraphDef, SavedModel); byte 1 odd
    keeps every node instead of pruning from output "y"."""
    f1 = field(6, 0, 1)
    g = (variable("v", [2], op="VarHandleOp")
         + node("v/id", "Identity", ["v"], attr("T", field(6, 0, 20)) + attr("_output_shapes", field(1, 2, b"")))
         + node("v/Read/ReadVariableOp", "ReadVariableOp", ["v/id"], attr("dtype", f1))
         + node("x", "Placeholder", attrs=attr("dtype", f1))
         + node("m", "Merge", ["v/id", "v"]))
    w = variable("w", [3, 4]) + node("w/read", "Identity", ["w"], attr("T", f1) +
                                      attr("_class", field(1, 2, field(2, 2, b"loc:@w"))))
    y = node("y", "Mul", ["x", "v/Read/ReadVariableOp", "w/read:0", "^x"], attr("T", f1), device=b"/cpu:0")
    graph = g + w + y + field(2, 2, field(1, 2, b"lib")) + field(4, 2, field(1, 0, 27))
    meta = field(2, 2, graph)
    saved = field(1, 0, 1) + field(2, 2, meta)
    return {
        "ok_graph": b"\x00\x00" + graph, "ok_all_nodes": b"\x00\x01" + graph,
        "ok_meta": b"\x01\x00" + meta, "ok_saved_model": b"\x02\x00" + saved,
        "no_output": b"\x00\x00" + g,
        "read_without_variable": b"\x00\x00" + node("r", "ReadVariableOp", ["x"], attr("dtype", f1))
        + node("x", "Placeholder") + node("y", "Identity", ["r"]),
        "unknown_shape": b"\x00\x00" + variable("v", [-1]) + node("y", "Identity", ["v"]),
        "no_shape": b"\x00\x00" + node("v", "VariableV2", attrs=attr("dtype", f1)) + node("y", "Identity", ["v"]),
        "string_variable": b"\x00\x00" + variable("v", [], dtype=7) + node("y", "Identity", ["v"]),
        "duplicate_nodes": b"\x00\x00" + node("y", "NoOp") * 2,
        "nameless_node": b"\x00\x00" + field(1, 2, field(2, 2, b"NoOp")),
        "resource_gather": b"\x00\x00" + variable("v", [4, 2], op="VarHandleOp")
        + node("y", "ResourceGather", ["v", "i"], attr("Tindices", field(6, 0, 3)) + attr("dtype", f1)),
        "gather_batched": b"\x00\x00" + node("y", "ResourceGather", ["v", "i"], attr("batch_dims", field(3, 0, 1))),
        "cycle": b"\x00\x00" + node("a", "Identity", ["b"]) + node("b", "Identity", ["a"])
        + node("r", "ReadVariableOp", ["a"]) + node("y", "Identity", ["r"]),
        "truncated": b"\x00\x00" + graph[:len(graph) // 2],
        "huge_variable": b"\x00\x00" + variable("v", [1 << 30, 1 << 30]) + node("y", "Identity", ["v"]),
    }


def write(dirname, seeds):
    d = os.path.join(ROOT, dirname)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("tf_table", tf_table_seeds())
    write("graphdef", graph_seeds())
    write("tf_freeze", freeze_seeds())
