"""kill -9 leaves nothing (issue 18, item 17) for the writers that used to
name temporaries: a Keras HDF5 skeleton with a chunked, compressed dataset
(written through libhdf5 in a child) and `graft freeze` (its zero-filled
frozen graph).  graft is killed once an unnamed (O_TMPFILE) file of its own
is open in the output's folder; afterwards the folder holds only the inputs.
Run with /usr/bin/python3.
"""
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


def kill_while_writing(cmd, folder, inputs):
    """Run cmd; SIGKILL it while it holds an unnamed file in folder.
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
    p.send_signal(signal.SIGKILL)
    p.wait()
    left = sorted(set(os.listdir(folder)) - set(inputs))
    assert not left, f"leftovers after kill -9: {left}"
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


R.check("kill -9 during a Keras HDF5 rewrite through libhdf5 leaves nothing", keras_chunked)
R.check("kill -9 during graft freeze leaves nothing", freeze)
R.close()
