"""Write the seed corpus of tests/fuzz/fuzz_onnx.c (run with /usr/bin/python3).

Small valid models (every storage field, Constant nodes, subgraphs, external
data) and malformed ones: truncations, lengths past the end, bad wire types,
hostile dims and external_data keys.  Usage: onnx_fuzz_corpus.py OUT_DIR
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def save(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes(data))


def model(inits, nodes=()):
    g = helper.make_graph(list(nodes), "g", [], [], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


typed = [helper.make_tensor("f", TensorProto.FLOAT, [2], [1.0, 2.0]),
         helper.make_tensor("h", TensorProto.FLOAT16, [2], [1.0, -2.0]),
         helper.make_tensor("i8", TensorProto.INT8, [2], [-1, 5]),
         helper.make_tensor("l", TensorProto.INT64, [2], [-1, 1 << 40]),
         helper.make_tensor("d", TensorProto.DOUBLE, [1], [0.5]),
         helper.make_tensor("u", TensorProto.UINT64, [1], [7]),
         helper.make_tensor("b", TensorProto.BOOL, [2], [0, 1]),
         helper.make_tensor("bf", TensorProto.BFLOAT16, [1], [1.5]),
         helper.make_tensor("c", TensorProto.COMPLEX64, [1], [1 + 2j]),
         numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "r")]
valid = model(typed)
save("typed.onnx", valid)

const = helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.float32([3]), "k"))
sub = helper.make_graph([const], "s", [], [helper.make_tensor_value_info("k", TensorProto.FLOAT, [1])],
                        initializer=[numpy_helper.from_array(np.int32([1, 2]), "si")])
ifn = helper.make_node("If", ["c"], ["o"], then_branch=sub, else_branch=sub)
save("subgraph.onnx", model([], [const, ifn]))

ext = TensorProto(name="e", data_type=TensorProto.FLOAT, dims=[2],
                  data_location=TensorProto.EXTERNAL)
for k, v in (("location", "fuzz.bin"), ("offset", "0"), ("length", "8")):
    e = ext.external_data.add()
    e.key, e.value = k, v
save("external.onnx", model([ext]))
for tag, loc in (("abs", "/etc/passwd"), ("dotdot", "../x"), ("empty", "")):
    t = TensorProto()
    t.CopyFrom(ext)
    t.external_data[0].value = loc
    save(f"external_{tag}.onnx", model([t]))
t = TensorProto()
t.CopyFrom(ext)
t.external_data[1].value = "99999999999999999999999"
save("external_bad_offset.onnx", model([t]))

for cut in (1, 2, 5, len(valid) // 3, len(valid) // 2, len(valid) - 1):
    save(f"trunc_{cut}.onnx", valid[:cut])
bad = bytearray(valid)
bad[1] = 0x7f  # graph length past the end
save("graph_len_past_end.onnx", bad)
save("graph_varint.onnx", b"\x38\x01")
save("group_wire_type.onnx", b"\x3b\x3c")
save("overlong_varint.onnx", b"\x08" + b"\xff" * 11)
save("neg_dim.onnx", b"\x3a\x12\x2a\x10\x08" + b"\xff" * 9 + b"\x01\x10\x01\x42\x01w")
save("huge_dims.onnx", b"\x3a\x1c\x2a\x1a" + b"\x08\xff\xff\xff\xff\x0f" * 4 + b"\x10\x01")
save("float_count.onnx", b"\x3a\x0e\x2a\x0c\x08\x02\x10\x01\x42\x01w\x25\x00\x00\x80\x3f")
save("packed_odd.onnx", b"\x3a\x0c\x2a\x0a\x10\x01\x42\x01w\x22\x03\x00\x00\x00")
save("string_type.onnx", model([helper.make_tensor("s", TensorProto.STRING, [1], [b"x"])]))
save("empty.onnx", b"")

# A graph whose nodes say what each initializer is (src/layout/onnx_graph.c):
# conv, depthwise-free conv transpose, a flatten after a transpose to NHWC
# before a Gemm, MatMul + Add, Gather, BatchNormalization.
def ones(name, *shape):
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


layout_nodes = [
    helper.make_node("Conv", ["x", "cw", "cb"], ["c"], group=1),
    helper.make_node("ConvTranspose", ["c", "tw"], ["t"]),
    helper.make_node("Relu", ["t"], ["r"]),
    helper.make_node("Transpose", ["r"], ["p"], perm=[0, 2, 3, 1]),
    helper.make_node("Flatten", ["p"], ["f"]),
    helper.make_node("Gemm", ["f", "gw", "gb"], ["y"], transB=1),
    helper.make_node("MatMul", ["y", "mw"], ["z"]),
    helper.make_node("Add", ["z", "ab"], ["o"]),
    helper.make_node("Gather", ["ew", "i"], ["e"]),
    helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"])]
save("layout_graph.onnx", model([ones("cw", 4, 2, 3, 3), ones("cb", 4), ones("tw", 4, 4, 3, 3),
                                 ones("gw", 3, 64), ones("gb", 3), ones("mw", 3, 3), ones("ab", 3),
                                 ones("ew", 5, 2), ones("s", 4), ones("b", 4), ones("m", 4),
                                 ones("v", 4)], layout_nodes))
