"""libhdf5 in a child (issue 18, item 12): the HDF5 files that crash
libhdf5 1.10 itself (tests/fuzz/corpora/keras/libhdf5-*, found by fuzz_keras)
are refused through a plain `graft ls` and `graft apply` with one line
naming the file, graft's own process never crashes, and nothing is written.
Each that crashes libhdf5 names the signal and what libhdf5 was doing.
Run with /usr/bin/python3.
"""
import glob
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from graftlib import SOURCE_ROOT, Results, run  # noqa: E402

R = Results()
CORPUS = os.path.join(SOURCE_ROOT, "tests", "fuzz", "corpora", "keras")
# files whose libhdf5 bug is a crash (SIGSEGV, or ASan's report in a sanitizer build)
CRASHERS = {
    "libhdf5-H5F__accum_read-overflow.h5": "looking up object '/model_weights'",
    "libhdf5-H5F__accum_read-segv-via-H5Oget_info_by_name.h5": "looking up object '/model_weights'",
    "libhdf5-H5HG_read-memcpy-overlap.h5": "reading attribute 'weight_names' of layer 'h'",
    "libhdf5-H5HG_read-segv.h5": "reading attribute 'weight_names' of layer 'h'",
}


def one_line(p, path):
    lines = p.stderr.strip().splitlines()
    assert p.returncode in (0, 2), f"exit {p.returncode}: {p.stderr!r}"  # never a signal
    if p.returncode == 2:
        assert len(lines) == 1 and path in lines[0], p.stderr
    return lines[0] if lines else ""


def corpus_refused_cleanly():
    files = sorted(glob.glob(os.path.join(CORPUS, "libhdf5-*.h5")))
    assert len(files) >= 8, files
    for f in files:
        line = one_line(run("ls", "--sha256", f, check=False), f)
        want = CRASHERS.get(os.path.basename(f))
        if want:
            assert "libhdf5 failed on this file (" in line and f"while {want}); the file is " \
                   "malformed or hostile" in line, line
            # ASan reports the crash, then exits 1 (or aborts, with abort_on_error)
            assert any(w in line for w in ("SIGSEGV while", "exit status 1 while",
                                           "SIGABRT while")), line


def crashing_skeleton_writes_nothing():
    src = R.path("w.npz")
    np.savez(src, x=np.zeros(2, "f4"))
    for name in CRASHERS:
        out = R.path("out_" + name)
        p = run("apply", "-o", out, src, os.path.join(CORPUS, name), check=False)
        assert p.returncode == 2 and "libhdf5 failed on this file" in p.stderr, p.stderr
        assert not os.listdir(R.tmp) == [] and not os.path.exists(out)
    assert sorted(os.listdir(R.tmp)) == ["w.npz"], os.listdir(R.tmp)


R.check("every libhdf5 crasher of the corpus: one line, exit 2, no crash",
        corpus_refused_cleanly)
R.check("a skeleton that crashes libhdf5: nothing written", crashing_skeleton_writes_nothing)
R.close()
