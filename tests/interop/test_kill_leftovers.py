"""kill -9 leaves nothing (issue 18, item 17) for the writers that used to
name temporaries: a Keras HDF5 skeleton with a chunked, compressed dataset
(written through libhdf5 in a child) and `graft freeze` (its zero-filled
frozen graph).  graft is killed once an unnamed (O_TMPFILE) file of its own
is open in the output's folder; afterwards the folder holds only the inputs.
Run with /usr/bin/python3.
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from graftlib import FIXTURES, GRAFT, SOURCE_ROOT, Results  # noqa: E402

sys.path.insert(0, os.path.join(SOURCE_ROOT, "samples", "gen"))
import hostile  # noqa: E402

R = Results()


def unnamed_open(pid, folder):
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if t.startswith(folder + "/#") and t.endswith(" (deleted)"):
            return True
    return False


def kill_while_writing(cmd, folder, inputs, sig=signal.SIGKILL):
    """Run cmd; send sig while it holds an unnamed file in folder.
    Returns True if it was caught writing."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    caught, end = False, time.monotonic() + 60
    while p.poll() is None and time.monotonic() < end:
        named = [f for f in os.listdir(folder) if f not in inputs]
        assert not named, f"a named temporary appeared while writing: {named}"
        if unnamed_open(p.pid, folder):
            caught = True
            break
        time.sleep(0.0002)
    p.send_signal(sig)
    p.wait()
    left = sorted(set(os.listdir(folder)) - set(inputs))
    assert not left, f"leftovers after {sig.name} of {os.path.basename(cmd[1])} {cmd[-3:]}: {left}"
    return caught


def keras_chunked():
    import h5py
    d = R.path("keras")
    os.makedirs(d)
    skel, src = os.path.join(d, "skel.h5"), os.path.join(d, "src.npz")
    with h5py.File(skel, "w") as f:
        g = f.create_group("dense")
        g.attrs["weight_names"] = [b"dense/kernel:0"]
        f.attrs["layer_names"] = [b"dense"]
        g.create_dataset("dense/kernel:0", data=np.zeros((512, 1024), "f4"), chunks=(64, 1024),
                         compression="gzip")
    np.savez(src, **{"dense/kernel:0": np.random.default_rng(0).standard_normal((512, 1024)).astype("f4")})
    cmd = [GRAFT, "apply", "-o", os.path.join(d, "out.h5"), src, skel]
    caught = sum(kill_while_writing(cmd, d, ["skel.h5", "src.npz"]) for _ in range(6))
    assert caught, "never killed while writing"


def freeze():
    d = R.path("freeze")
    os.makedirs(d)
    # a graph whose variable makes a 128 MiB zero-filled Const while freezing
    graph = hostile.graphdef_huge_variable(R.tmp, elements=1 << 25)
    ckpt = os.path.join(FIXTURES, "tf_ckpt_v2", "tf2onnx_regression_ckpt", "model")
    cmd = [GRAFT, "freeze", "--graph", graph, "--checkpoint", ckpt, "--outputs", "out",
           "-o", os.path.join(d, "f.pb")]
    caught = sum(kill_while_writing(cmd, d, []) for _ in range(3))
    # and left to finish (the checkpoint lacks 'v': refused after the
    # frozen graph is written), no named file ever appears beside the output
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while p.poll() is None:
        assert not os.listdir(d), os.listdir(d)
    assert p.returncode != 0 and not os.listdir(d), os.listdir(d)
    assert caught, "never killed while writing"


def _big_npz(path, n=24):
    rng = np.random.default_rng(0)
    np.savez(path, **{f"w{i}": rng.standard_normal((1024, 1024)).astype("f4") for i in range(n)})


def _signals(cmd, d, inputs, tries=3):
    """SIGKILL and SIGTERM while an unnamed file is open: nothing left."""
    caught = 0
    for sig in (signal.SIGKILL, signal.SIGTERM):
        for _ in range(tries):
            caught += kill_while_writing(cmd, d, inputs, sig)
    assert caught, "never killed while writing"


def folder_outputs():
    """Outputs made of several files: a SavedModel folder (its temporary
    folder stayed behind), a sharded safetensors set and a TF.js model
    (the shards written so far stayed behind), a TF checkpoint prefix."""
    d = R.path("folders")
    os.makedirs(d)
    src = os.path.join(d, "big.npz")
    _big_npz(src)
    skel = os.path.join(R.tmp, "skel_sm")
    os.makedirs(os.path.join(skel, "variables"))
    with open(os.path.join(FIXTURES, "savedmodel", "tfrust_keras_single_input", "saved_model.pb"),
              "rb") as f, open(os.path.join(skel, "saved_model.pb"), "wb") as g:
        g.write(f.read())
    subprocess.run([GRAFT, "convert", "-q", "-o", os.path.join(skel, "variables", "variables.index"),
                    src], check=True, capture_output=True)
    tj = os.path.join(R.tmp, "skel_tfjs")
    os.makedirs(tj)
    with np.load(src) as z:
        names = sorted(z.files)[:12]
        blob = b"".join(z[n].tobytes() for n in names)
    step = len(blob) // 3
    shards = [(f"group1-shard{i + 1}of3.bin", blob[i * step:(i + 1) * step]) for i in range(3)]
    manifest = [{"paths": [n for n, _ in shards],
                 "weights": [{"name": n, "shape": [1024, 1024], "dtype": "float32"} for n in names]}]
    for n, b in shards:
        with open(os.path.join(tj, n), "wb") as f:
            f.write(b)
    with open(os.path.join(tj, "model.json"), "w") as f:
        json.dump({"format": "layers-model", "modelTopology": None, "weightsManifest": manifest}, f)
    import onnx
    from onnx import helper as h, numpy_helper as nh
    with np.load(src) as z:
        inits = [nh.from_array(z[n], n) for n in sorted(z.files)]
    g = h.make_graph([h.make_node("Identity", ["w0"], ["y"])], "g", [],
                     [h.make_tensor_value_info("y", 1, [1024, 1024])], initializer=inits)
    ext = os.path.join(R.tmp, "ext", "m.onnx")
    os.makedirs(os.path.dirname(ext))
    onnx.save(h.make_model(g), ext, save_as_external_data=True, all_tensors_to_one_file=False,
              size_threshold=0)
    for name, cmd in (
            ("onnx-external", [GRAFT, "apply", "-q", "-o", os.path.join(d, "m.onnx"), src, ext]),
            ("savedmodel", [GRAFT, "apply", "-q", "-o", os.path.join(d, "out_sm"), src, skel]),
            ("sharded", [GRAFT, "convert", "-q", "--shard-size", "10MB", "-o",
                         os.path.join(d, "s.safetensors"), src]),
            ("tfjs", [GRAFT, "apply", "-q", "-o", os.path.join(d, "out_tfjs"), src,
                      os.path.join(tj, "model.json")]),
            ("tf-checkpoint", [GRAFT, "convert", "-q", "-o", os.path.join(d, "ck.index"), src])):
        _signals(cmd, d, ["big.npz"])
    # and each runs to the end, giving what a run without kills gives
    for cmd in ([GRAFT, "apply", "-q", "-o", os.path.join(d, "out_sm"), src, skel],
                [GRAFT, "convert", "-q", "--shard-size", "10MB", "-o", os.path.join(d, "s.safetensors"), src]):
        subprocess.run(cmd, check=True, capture_output=True)
    assert sorted(os.listdir(os.path.join(d, "out_sm"))) == ["saved_model.pb", "variables"]
    assert len([f for f in os.listdir(d) if f.endswith(".safetensors")]) == 12, os.listdir(d)


R.check("kill -9 during a Keras HDF5 rewrite through libhdf5 leaves nothing", keras_chunked)
R.check("SIGKILL / SIGTERM while writing a folder or a set of files leaves nothing", folder_outputs)
R.check("kill -9 during graft freeze leaves nothing", freeze)
R.close()
