"""Seed corpus for tests/fuzz/fuzz_keras.c: small Keras 2 / Keras 3 HDF5
files and a .keras archive built with h5py, plus truncated and corrupted
copies.  Run with /usr/bin/python3 from the source root:
    /usr/bin/python3 samples/gen/keras_corpus.py tests/fuzz/corpora/keras
"""
import io
import os
import sys
import zipfile

import h5py
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/corpora/keras"
os.makedirs(out, exist_ok=True)


def h5bytes(build, **kw):
    bio = io.BytesIO()
    with h5py.File(bio, "w", libver="earliest", **kw) as f:
        build(f)
    return bio.getvalue()


def keras2(f):
    mw = f.create_group("model_weights")
    mw.attrs["layer_names"] = np.array([b"dense", b"drop"], dtype="S5")
    g = mw.create_group("dense")
    g.attrs["weight_names"] = np.array([b"dense/kernel:0", b"dense/bias:0"])
    g.create_dataset("dense/kernel:0", data=np.arange(6, dtype="f4").reshape(2, 3))
    g.create_dataset("dense/bias:0", data=np.arange(3, dtype=">f4"))
    mw.create_group("drop").attrs["weight_names"] = np.zeros(0)
    ow = f.create_group("optimizer_weights")
    ow.attrs["weight_names"] = [b"Adam/iter:0"]
    ow.create_dataset("Adam/iter:0", data=np.int64(3))


def keras2_weights(f):
    f.attrs["layer_names0"] = np.array([b"c"], dtype="S1")
    f.attrs["layer_names1"] = np.array([b"h"], dtype="S1")
    c = f.create_group("c")
    c.attrs["weight_names"] = ["c/k:0"]
    c.create_dataset("c/k:0", data=np.ones((4, 4), "f4"), chunks=(2, 2), compression="gzip")
    h = f.create_group("h")
    h.attrs["weight_names"] = ["h/half:0", "h/mask:0", "h/bf:0"]
    h.create_dataset("h/half:0", data=np.ones(3, "f2"))
    h.create_dataset("h/mask:0", data=np.array([True, False]))
    d = h.create_dataset("h/bf:0", data=np.zeros(2, "V2"))
    d.attrs["dtype"] = "bfloat16"


def keras3(f):
    for name, shapes in (("dense", [(3, 2), (2,)]), ("dense_1", [(2, 1), (1,)])):
        g = f.create_group(f"layers/{name}/vars")
        for i, s in enumerate(shapes):
            g.create_dataset(str(i), data=np.full(s, i, "f4"))
    f.create_group("vars")
    f.create_dataset("optimizer/vars/0", data=np.int64(1))


def bad_types(f):
    mw = f.create_group("model_weights")
    mw.attrs["layer_names"] = [b"s"]
    g = mw.create_group("s")
    g.attrs["weight_names"] = [b"s/str:0", b"s/cmp:0"]
    g.create_dataset("s/str:0", data=np.array([b"ab"]))
    g.create_dataset("s/cmp:0", data=np.zeros(2, "f4,i4"))


seeds = {
    "keras2_full.h5": h5bytes(keras2),
    "keras2_weights_chunked.h5": h5bytes(keras2_weights),
    "keras2_userblock.h5": h5bytes(keras2, userblock_size=512),
    "keras3.weights.h5": h5bytes(keras3),
    "bad_types.h5": h5bytes(bad_types),
}
zbio = io.BytesIO()
with zipfile.ZipFile(zbio, "w") as z:
    z.writestr("metadata.json", '{"keras_version": "3.10.0"}')
    z.writestr("config.json", '{"class_name": "Sequential", "config": {}}')
    z.writestr("model.weights.h5", seeds["keras3.weights.h5"])
seeds["model.keras"] = zbio.getvalue()
zbio = io.BytesIO()
with zipfile.ZipFile(zbio, "w", compression=zipfile.ZIP_DEFLATED) as z:
    z.writestr("metadata.json", "{}")
    z.writestr("model.weights.h5", seeds["keras2_full.h5"])
seeds["deflated.keras"] = zbio.getvalue()

for name, data in list(seeds.items()):
    with open(os.path.join(out, name), "wb") as fh:
        fh.write(data)
base = seeds["keras2_full.h5"]
for n in (8, 96, len(base) // 2, len(base) - 1):
    with open(os.path.join(out, f"trunc_{n}.h5"), "wb") as fh:
        fh.write(base[:n])
with open(os.path.join(out, "trunc.keras"), "wb") as fh:
    fh.write(seeds["model.keras"][: len(seeds["model.keras"]) * 2 // 3])
# hostile values: stretch a few bytes of the superblock and object headers
rng = np.random.default_rng(5)
for k in range(6):
    b = bytearray(base)
    for _ in range(4):
        i = int(rng.integers(8, len(b)))
        b[i] = int(rng.integers(0, 256))
    with open(os.path.join(out, f"flip_{k}.h5"), "wb") as fh:
        fh.write(bytes(b))
# named.keras / named_badjson.keras (odd sizes: fuzz_keras reads them as
# keras-named) were made the same way with a config.json of an InputLayer and
# two Dense layers, and with a truncated config.json.


# keras2_config.h5: a model.save file whose model_config names the layer of
# every weight (src/layout/keras_cfg.c: Conv2D, Flatten before Dense, GRU).
def keras2_config(f):
    import json
    layers = [{"class_name": "Conv2D", "config": {"name": "conv", "filters": 2}},
              {"class_name": "Flatten", "config": {"name": "flat"}},
              {"class_name": "Dense", "config": {"name": "dense"}},
              {"class_name": "GRU", "config": {"name": "gru", "reset_after": True}}]
    f.attrs["model_config"] = json.dumps({"class_name": "Sequential",
                                          "config": {"name": "s", "layers": layers}})
    mw = f.create_group("model_weights")
    mw.attrs["layer_names"] = [b"conv", b"dense", b"gru"]
    for layer, ws in (("conv", [("kernel", (3, 3, 1, 2))]), ("dense", [("kernel", (8, 3))]),
                      ("gru", [("kernel", (3, 6)), ("recurrent_kernel", (2, 6)), ("bias", (2, 6))])):
        g = mw.create_group(layer)
        g.attrs["weight_names"] = [f"{layer}/{w}:0".encode() for w, _ in ws]
        for w, s in ws:
            g.create_dataset(f"{layer}/{w}:0", data=np.ones(s, "f4"))


with open(os.path.join(out, "keras2_config.h5"), "wb") as fh:
    fh.write(h5bytes(keras2_config))


# unsupported.h5 (issue 18 item 15): fixed and variable-length strings and a
# compound dataset among a layer's weights, listed with no data.
def unsupported(f):
    mw = f.create_group("model_weights")
    mw.attrs["layer_names"] = [b"d"]
    g = mw.create_group("d")
    g.attrs["weight_names"] = [b"d/k:0", b"d/s:0", b"d/v:0", b"d/c:0"]
    g.create_dataset("d/k:0", data=np.ones((2, 2), "f4"))
    g.create_dataset("d/s:0", data=np.array([b"ab", b"c"]))
    g.create_dataset("d/v:0", data=["x", "yz"], dtype=h5py.string_dtype())
    g.create_dataset("d/c:0", data=np.zeros(2, "f4,i2"))


with open(os.path.join(out, "unsupported.h5"), "wb") as fh:
    fh.write(h5bytes(unsupported))
