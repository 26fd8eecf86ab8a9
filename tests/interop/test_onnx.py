"""ONNX reader: graft ls against python3-onnx and onnx.numpy_helper.

Every fixture in $GRAFT_FIXTURES/onnx, then models built here with onnx.helper:
every typed *_data field, raw_data, Constant nodes, If/Loop subgraphs,
functions, external data (one file and one file per tensor); then malformed
models that must be refused with a one-line error.
"""
import glob
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import graftlib  # noqa: E402
from graftlib import FIXTURES, Results, run, sha256_of_array  # noqa: E402

ONNX_DTYPE = {
    TensorProto.FLOAT: "float32", TensorProto.UINT8: "uint8", TensorProto.INT8: "int8",
    TensorProto.UINT16: "uint16", TensorProto.INT16: "int16", TensorProto.INT32: "int32",
    TensorProto.INT64: "int64", TensorProto.BOOL: "bool", TensorProto.FLOAT16: "float16",
    TensorProto.DOUBLE: "float64", TensorProto.UINT32: "uint32", TensorProto.UINT64: "uint64",
    TensorProto.COMPLEX64: "complex64", TensorProto.COMPLEX128: "complex128",
    TensorProto.BFLOAT16: "bfloat16",
}


def tensor_array(t):
    """A TensorProto's elements as NumPy (bfloat16 as uint16 bit patterns)."""
    if t.data_type == TensorProto.BFLOAT16:  # numpy has no bfloat16
        if t.raw_data:
            return np.frombuffer(t.raw_data, dtype="<u2").reshape(t.dims)
        return np.array(t.int32_data, dtype=np.uint32).astype(np.uint16).reshape(t.dims)
    if t.data_type in (TensorProto.COMPLEX64, TensorProto.COMPLEX128):
        # numpy_helper.to_array of onnx 1.12 fails on typed complex data.
        c = "<c8" if t.data_type == TensorProto.COMPLEX64 else "<c16"
        if t.raw_data:
            return np.frombuffer(t.raw_data, dtype=c).reshape(t.dims)
        parts = t.float_data if t.data_type == TensorProto.COMPLEX64 else t.double_data
        f = "<f4" if t.data_type == TensorProto.COMPLEX64 else "<f8"
        return np.array(parts, dtype=f).view(c).reshape(t.dims)
    return numpy_helper.to_array(t)


def tensor_sha(t):
    """SHA-256 of a TensorProto's elements as graft defines it."""
    return sha256_of_array(tensor_array(t))


def weights(graph, out):
    """Initializers and Constant values of a graph and its subgraphs, in file order."""
    for node in graph.node:
        for a in node.attribute:
            if node.op_type == "Constant" and a.name == "value" and a.HasField("t"):
                out.append((node.output[0], a.t))
            if a.HasField("g"):
                weights(a.g, out)
            for g in a.graphs:
                weights(g, out)
    for t in graph.initializer:
        out.append((t.name, t))
    return out


def all_weights(model):
    """weights() of the main graph, then Constant values of functions."""
    ws = weights(model.graph, [])
    for f in model.functions:
        for node in f.node:
            for a in node.attribute:
                if node.op_type == "Constant" and a.name == "value":
                    ws.append((node.output[0], a.t))
    return ws


def expected(model, base_dir=None):
    if base_dir:
        onnx.external_data_helper.load_external_data_for_model(model, base_dir)
    ws = all_weights(model)
    return [{"name": n, "dtype": ONNX_DTYPE[t.data_type], "shape": list(t.dims),
             "sha256": tensor_sha(t)} for n, t in ws]


def compare(path, model=None, sort=True):
    if model is None:
        model = onnx.load(path, load_external_data=False)
    want = expected(model, os.path.dirname(path) if has_external(model) else None)
    got = graftlib.ls_json(path)
    key = (lambda e: e["name"]) if sort else None
    if sort:
        want, got = sorted(want, key=key), sorted(got, key=key)
    assert len(want) == len(got), f"{len(got)} tensors, expected {len(want)}"
    for w, g in zip(want, got):
        assert w == g, f"graft {g} != onnx {w}"
    return want


def has_external(model):
    return any(t.data_location == TensorProto.EXTERNAL for _, t in weights(model.graph, []))


# ---- fixtures ----------------------------------------------------------------

def fixture_files():
    files = sorted(glob.glob(os.path.join(FIXTURES, "onnx", "*", "*.onnx")))
    assert files, f"no ONNX fixtures under {FIXTURES}/onnx"
    return files


def check_fixture(path):
    model = onnx.load(path)
    # graft lists initializers in file order; the order must agree too.
    want = expected(model)
    got = graftlib.ls_json(path)
    assert want == got, f"\ngraft {got}\nonnx  {want}"


def check_storage_kinds_covered():
    kinds = set()
    for path in fixture_files():
        for _, t in weights(onnx.load(path).graph, []):
            kinds.add("raw_data" if t.raw_data else "float_data" if t.float_data else "other")
    assert {"raw_data", "float_data"} <= kinds, kinds


# ---- models built here -----------------------------------------------------

rng = np.random.default_rng(7)


def typed_tensors():
    """One tensor per type, in the typed field ONNX uses for it (raw=False)."""
    out = []
    for dt, npdt in [(TensorProto.FLOAT, np.float32), (TensorProto.DOUBLE, np.float64),
                     (TensorProto.INT8, np.int8), (TensorProto.UINT8, np.uint8),
                     (TensorProto.INT16, np.int16), (TensorProto.UINT16, np.uint16),
                     (TensorProto.INT32, np.int32), (TensorProto.INT64, np.int64),
                     (TensorProto.UINT32, np.uint32), (TensorProto.UINT64, np.uint64),
                     (TensorProto.FLOAT16, np.float16), (TensorProto.BOOL, np.bool_)]:
        if np.issubdtype(npdt, np.floating):
            a = rng.standard_normal((2, 3)).astype(npdt)
        elif npdt == np.bool_:
            a = rng.integers(0, 2, (2, 3)).astype(np.bool_)
        else:
            info = np.iinfo(npdt)
            a = rng.integers(info.min, info.max, (2, 3), dtype=npdt, endpoint=True)
        name = f"typed_{ONNX_DTYPE[dt]}"
        out.append(helper.make_tensor(name, dt, a.shape, a.flatten().tolist(), raw=False))
        out.append(numpy_helper.from_array(a, name=f"raw_{ONNX_DTYPE[dt]}"))
    out.append(helper.make_tensor("typed_bfloat16", TensorProto.BFLOAT16, [4],
                                  [1.0, -2.5, 3.140625, 0.0], raw=False))
    c = (rng.standard_normal(3) + 1j * rng.standard_normal(3)).astype(np.complex64)
    out.append(helper.make_tensor("typed_complex64", TensorProto.COMPLEX64, [3], c.tolist()))
    out.append(numpy_helper.from_array(c.astype(np.complex128), name="raw_complex128"))
    out.append(helper.make_tensor("typed_complex128", TensorProto.COMPLEX128, [3],
                                  c.astype(np.complex128).tolist()))
    out.append(numpy_helper.from_array(np.float32(2.5), name="scalar"))
    out.append(numpy_helper.from_array(np.zeros((0, 4), np.float32), name="empty"))
    return out


def typed_model():
    inits = typed_tensors()
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    node = helper.make_node("Add", ["x", "typed_float32"], ["y"])
    g = helper.make_graph([node], "typed", [x], [y], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def check_typed():
    m = typed_model()
    onnx.checker.check_model(m)
    p = graftlib_path("typed.onnx")
    onnx.save(m, p)
    want = compare(p, sort=False)
    assert len(want) == 30, len(want)


def subgraph_model():
    """Constant nodes at top level, in an If's branches, in a Loop body, in a function."""
    def const(name, a):
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(a, name))

    a = rng.standard_normal((3, 2)).astype(np.float32)
    then_g = helper.make_graph(
        [const("then_c", a), helper.make_node("Identity", ["then_c"], ["then_out"])], "then", [],
        [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [3, 2])],
        initializer=[numpy_helper.from_array(np.arange(4, dtype=np.int64), "then_init")])
    else_g = helper.make_graph(
        [helper.make_node("Constant", [], ["else_c"],
                          value=helper.make_tensor("v", TensorProto.FLOAT, [3, 2],
                                                   list(range(6)), raw=False)),
         helper.make_node("Identity", ["else_c"], ["else_out"])], "else", [],
        [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [3, 2])])
    body = helper.make_graph(
        [const("loop_c", np.float32([1.5])),
         helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["v_in", "loop_c"], ["v_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1])])
    nodes = [
        const("top_c", rng.standard_normal((2, 2)).astype(np.float64)),
        helper.make_node("If", ["cond"], ["if_out"], then_branch=then_g, else_branch=else_g),
        helper.make_node("Loop", ["trip", "cond", "v0"], ["loop_out"], body=body),
        helper.make_node("Scale2", ["v0"], ["f_out"], domain="local"),
    ]
    g = helper.make_graph(
        nodes, "main",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("trip", TensorProto.INT64, []),
         helper.make_tensor_value_info("v0", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("if_out", TensorProto.FLOAT, [3, 2]),
         helper.make_tensor_value_info("loop_out", TensorProto.FLOAT, [1]),
         helper.make_tensor_value_info("f_out", TensorProto.FLOAT, [1])],
        initializer=[numpy_helper.from_array(a * 2, "top_init")])
    fn = helper.make_function(
        "local", "Scale2", ["x"], ["y"],
        [const("fn_two", np.float32([2.0])), helper.make_node("Mul", ["x", "fn_two"], ["y"])],
        [helper.make_opsetid("", 13)])
    return helper.make_model(g, functions=[fn], opset_imports=[
        helper.make_opsetid("", 13), helper.make_opsetid("local", 1)])


def check_subgraphs():
    m = subgraph_model()
    onnx.checker.check_model(m)
    p = graftlib_path("subgraphs.onnx")
    onnx.save(m, p)
    want = compare(p, sort=False)
    names = [w["name"] for w in want]
    # make_node sorts attributes by name: else_branch comes before then_branch.
    assert names == ["top_c", "else_c", "then_c", "then_init", "loop_c", "top_init",
                     "fn_two"], names


def external_model(folder, one_file):
    os.makedirs(folder, exist_ok=True)
    m = typed_model()
    p = os.path.join(folder, "ext.onnx")
    onnx.save_model(m, p, save_as_external_data=True, all_tensors_to_one_file=one_file,
                    location="weights.bin" if one_file else None, size_threshold=0)
    return p


def check_external(one_file):
    p = external_model(graftlib_path(f"ext{int(one_file)}"), one_file)
    m = onnx.load(p, load_external_data=False)
    assert has_external(m)
    compare(p, m, sort=False)


# ---- malformed -----------------------------------------------------------------

def refused(path, *needles, status=2):
    p = run("ls", "--json", path, check=False)
    err = p.stderr.strip()
    assert p.returncode == status, f"exit {p.returncode}: {err}"
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    assert len(err.splitlines()) == 1, f"not one line: {err!r}"
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"
    return err


def check_truncated():
    src = graftlib_path("typed.onnx")
    onnx.save(typed_model(), src)
    data = open(src, "rb").read()
    bad = graftlib_path("trunc.onnx")
    for cut in (len(data) - 1, len(data) - 7, len(data) // 2, 40, 3):
        open(bad, "wb").write(data[:cut])
        err = refused(bad, bad + ": ", "offset 0x")
        assert "truncated" in err or err.startswith(f"graft: {bad}: offset 0x"), err


def check_length_past_end():
    t = numpy_helper.from_array(np.ones(4, np.float32), "w")
    raw = bytearray(t.SerializeToString())
    i = raw.index(b"\x4a\x10")  # raw_data, 16 bytes
    raw[i + 1] = 0x7f
    g = helper.make_graph([], "g", [], [], initializer=[t])
    model = bytearray(helper.make_model(g).SerializeToString())
    model = model.replace(t.SerializeToString(), bytes(raw))
    p = graftlib_path("pastend.onnx")
    open(p, "wb").write(model)
    refused(p, "runs past the end")


def check_raw_size_mismatch():
    t = numpy_helper.from_array(np.ones(4, np.float32), "w")
    t.dims[0] = 5
    p = graftlib_path("rawsize.onnx")
    onnx.save(helper.make_model(helper.make_graph([], "g", [], [], initializer=[t])), p)
    refused(p, "tensor 'w': raw_data holds 16 bytes", "need 20")


def check_unsupported_type():
    t = helper.make_tensor("s", TensorProto.STRING, [1], [b"x"])
    p = graftlib_path("string.onnx")
    onnx.save(helper.make_model(helper.make_graph([], "g", [], [], initializer=[t])), p)
    refused(p, "tensor 's': data_type 8 (STRING) is not supported")


def external_case(name, location, offset=None, length=None, data=b"\0" * 16):
    folder = graftlib_path("bad_" + name)
    os.makedirs(folder, exist_ok=True)
    open(os.path.join(folder, "w.bin"), "wb").write(data)
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4])
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", offset), ("length", length)):
        if v is not None:
            e = t.external_data.add()
            e.key, e.value = k, str(v)
    p = os.path.join(folder, "m.onnx")
    open(p, "wb").write(helper.make_model(
        helper.make_graph([], "g", [], [], initializer=[t])).SerializeToString())
    return p


def check_external_refused():
    ok = external_case("ok", "w.bin", 0, 16)
    assert graftlib.ls_json(ok)[0]["shape"] == [4]
    refused(external_case("abs", "/etc/passwd"), "tensor 'w'", "absolute path")
    refused(external_case("dotdot", "../bad_ok/w.bin"), "tensor 'w'", "'..' component")
    refused(external_case("dotdot2", "sub/../../w.bin"), "'..' component")
    refused(external_case("offset", "w.bin", 17), "offset 17 lies past the end")
    refused(external_case("length", "w.bin", 8, 16), "offset 8 + length 16 runs past the end")
    refused(external_case("short", "w.bin", 0, 8), "length 8, but its dtype and dims need 16")
    refused(external_case("neg", "w.bin", -4), "offset '-4' is not a byte count")
    refused(external_case("missing", "nope.bin"), "location 'nope.bin'", "cannot open")
    refused(external_case("noloc", None), "no 'location' key")
    # A symlink inside the folder that leads out of it.
    outside = graftlib_path("outside.bin")
    open(outside, "wb").write(b"\0" * 16)
    p = external_case("link", "link.bin")
    os.symlink(outside, os.path.join(os.path.dirname(p), "link.bin"))
    refused(p, "leads outside the model's folder")
    # A folder is not a data file.
    p = external_case("dir", "sub")
    os.makedirs(os.path.join(os.path.dirname(p), "sub"))
    refused(p, "location 'sub'", "folder")


def check_probe_is_conservative():
    # A .onnx name alone is not enough: the first bytes must be a ModelProto field.
    p = graftlib_path("junk.onnx")
    open(p, "wb").write(b"PK\x03\x04junk")
    r = run("ls", p, check=False)
    assert r.returncode == 2 and "not a model file" in r.stderr, r.stderr
    # ...and a model with another name needs --format onnx.
    q = graftlib_path("model.bin")
    onnx.save(typed_model(), q)
    assert run("ls", q, check=False).returncode == 2
    assert len(graftlib.ls_json(q, "--format", "onnx")) == 30


_results = None


def graftlib_path(name):
    return _results.path(name)


def main():
    global _results
    r = _results = Results()
    for path in fixture_files():
        r.check(f"fixture {os.path.relpath(path, FIXTURES)}", check_fixture, path)
    r.check("fixtures cover raw_data and float_data", check_storage_kinds_covered)
    r.check("typed fields and raw_data of every type", check_typed)
    r.check("Constant nodes, If/Loop subgraphs, functions", check_subgraphs)
    r.check("external data, one file", check_external, True)
    r.check("external data, file per tensor", check_external, False)
    r.check("truncated models refused", check_truncated)
    r.check("length past the end refused", check_length_past_end)
    r.check("raw_data of the wrong size refused", check_raw_size_mismatch)
    r.check("unsupported data type refused", check_unsupported_type)
    r.check("hostile external data refused", check_external_refused)
    r.check("probe needs .onnx and a ModelProto field", check_probe_is_conservative)
    r.close()


if __name__ == "__main__":
    main()
