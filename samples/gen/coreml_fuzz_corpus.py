#!/usr/bin/python3
"""Seed corpus for fuzz_coreml (.mlmodel protobufs).

Run from the source root:  /usr/bin/python3 samples/gen/coreml_fuzz_corpus.py
Writes samples/corrupt/coreml/ (with EXPECTED) and tests/fuzz/corpora/coreml/: the models tests/interop/test_coreml.py
builds from the real coremltools protos (network, classifier, regressor),
their truncations, and variants with a wrong value count, unpacked floats,
a huge kernel size, deep nesting and an ML Program; `layouts` holds the
layers the layout hook reads (tests/interop/test_layout_tflite.py).
"""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
os.environ.setdefault("GRAFT_SOURCE_ROOT", ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
import test_coreml as tc  # noqa: E402

OUT = os.path.join(ROOT, "tests", "fuzz", "corpora", "coreml")


def seeds():
    for kind in ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor"):
        yield kind, tc.build(kind)[0].SerializeToString()
    m, _ = tc.build()
    m.neuralNetwork.layers[0].convolution.weights.floatValue.append(1.0)
    yield "count", m.SerializeToString()
    m, _ = tc.build()
    del m.neuralNetwork.layers[0].convolution.kernelSize[:]
    m.neuralNetwork.layers[0].convolution.kernelSize.extend([1 << 62, 1 << 62])
    yield "huge_kernel", m.SerializeToString()
    m, _ = tc.build()
    inner = m.neuralNetwork.layers.add(name="loop").loop.bodyNetwork
    for i in range(30):
        inner = inner.layers.add(name=f"l{i}").loop.bodyNetwork
    yield "deep", m.SerializeToString()
    # floatValue written unpacked: tag 0x0d per value
    m, _ = tc.build()
    raw = m.SerializeToString()
    yield "unpacked", raw.replace(b"\x0a\x20", b"\x0d\x00\x00\x80\x3f", 1)
    p = tc.Model()
    p.mlProgram.version = 1
    yield "program", p.SerializeToString()
    import test_layout_tflite  # depthwise, deconvolution, embedding: the layout hook's cases
    yield "layouts", test_layout_tflite.coreml_skeleton().SerializeToString()
    shutil.rmtree(test_layout_tflite.R.tmp, ignore_errors=True)


CORRUPT = {"count": "217 values, its layer's shape needs 216", "unpacked": "not packed",
           "huge_kernel": "its layer's shape needs", "deep": "nested deeper than 24",
           "program": ".mlpackage", "neuralNetwork.cut3": "offset"}


def main():
    folder = os.path.join(ROOT, "samples", "corrupt", "coreml")
    os.makedirs(folder, exist_ok=True)
    made = dict(seeds())
    made["neuralNetwork.cut3"] = made["neuralNetwork"][:3]
    with open(os.path.join(folder, "EXPECTED"), "w") as f:
        for name, what in CORRUPT.items():
            with open(os.path.join(folder, name + ".mlmodel"), "wb") as g:
                g.write(made[name])
            f.write(f"{name}.mlmodel\t{what}\n")
    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        for cut in sorted({1, 3, len(data) // 3, len(data) // 2, len(data) - 1}):
            with open(os.path.join(OUT, f"{name}.cut{cut}"), "wb") as f:
                f.write(data[:cut])
    import shutil
    shutil.rmtree(tc.R.tmp, ignore_errors=True)


main()


def package_corpus():
    """tests/fuzz/corpora/coreml_package/: u32 length, model.mlmodel, weight.bin."""
    import shutil
    import struct
    import test_coreml_package as tp
    out = os.path.join(ROOT, "tests", "fuzz", "corpora", "coreml_package")
    os.makedirs(out, exist_ok=True)
    for bad in (None, "sentinel", "data_past_end", "meta_past_end"):
        path = tp.R.path(f"p_{bad}.mlpackage")
        tp.package(path, tp.CONSTS, bad=bad)
        spec = open(os.path.join(path, tp.SPEC), "rb").read()
        w = open(os.path.join(path, tp.WEIGHTS), "rb").read()
        data = struct.pack("<I", len(spec)) + spec + w
        for cut in sorted({len(data), 5, len(spec) // 2, len(spec) + 40, len(data) - 1}):
            with open(os.path.join(out, f"{bad or 'good'}.cut{cut}" if cut < len(data) else (bad or "good")), "wb") as f:
                f.write(data[:cut])
    shutil.rmtree(tp.R.tmp, ignore_errors=True)


package_corpus()
