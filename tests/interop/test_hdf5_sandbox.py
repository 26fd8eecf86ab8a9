"""libhdf5 in a child (issue 18, item 12): the HDF5 files that crash or
hang libhdf5 1.10 itself (every file of tests/fuzz/known-libhdf5/, found by
fuzz_keras or made by samples/gen/libhdf5_kinds.py, and any held-out file
dropped there) are refused through a plain `graft ls` and `graft apply`
with one line naming the file, graft's own process never crashes, and
nothing is written.  Each that crashes or spins names the signal or the
time limit and what libhdf5 was doing.  Run with /usr/bin/python3.
"""
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from graftlib import SOURCE_ROOT, Results, run  # noqa: E402

R = Results()
CORPUS = os.path.join(SOURCE_ROOT, "tests", "fuzz", "known-libhdf5")
# files whose libhdf5 bug is a crash (SIGSEGV, or ASan's report in a sanitizer build)
CRASHERS = {
    "libhdf5-H5F__accum_read-overflow.h5": "looking up object '/model_weights'",
    "libhdf5-H5F__accum_read-segv-via-H5Oget_info_by_name.h5": "looking up object '/model_weights'",
    "libhdf5-H5HG_read-memcpy-overlap.h5": "reading attribute 'weight_names' of layer 'h'",
    "libhdf5-H5HG_read-segv.h5": "reading attribute 'weight_names' of layer 'h'",
    "libhdf5-H5O__msg_iterate_real-via-H5Aexists.h5":
        "checking attribute 'weight_names' of layer 'dense'",
}
# files whose libhdf5 bug is a spin: the child's CPU limit ends it
SPINNERS = {
    "libhdf5-H5D-fill-spin-forged-chunk-size.h5":
        "reading dataset '/model_weights/dense/dense/kernel:0'",
    "libhdf5-attr-read-cpu-spin-weight_names.h5": "reading attribute 'weight_names' of layer 'c'",
}


# files whose libhdf5 bug ends in an error inside the child (here: an
# allocation refused by its RLIMIT_AS), or, under ASan, in the child's death
EXHAUSTERS = {"libhdf5-H5C_protect-heap-free-list-loop.h5"}


def corpus_files():
    """Every file of the folder but its README, whatever its name."""
    return sorted(os.path.join(CORPUS, n) for n in os.listdir(CORPUS)
                  if n != "README.md" and os.path.isfile(os.path.join(CORPUS, n)))


def one_line(p, path):
    lines = p.stderr.strip().splitlines()
    assert p.returncode in (0, 2), f"exit {p.returncode}: {p.stderr!r}"  # never a signal
    if p.returncode == 2:
        assert len(lines) == 1 and path in lines[0], p.stderr
    return lines[0] if lines else ""


def corpus_refused_cleanly():
    files = corpus_files()
    assert len(files) >= 11, files
    for f in files:
        # refused in one line, or (a bug libhdf5 survives unnoticed) read
        line = one_line(run("ls", "--sha256", f, check=False), f)
        spin = SPINNERS.get(os.path.basename(f))
        if spin:
            assert re.search(r"libhdf5 failed on this file \(timed out after \d+ s of CPU time "
                             rf"while {re.escape(spin)}\); the file is malformed or hostile", line), line
        if os.path.basename(f) in EXHAUSTERS:
            assert ("(libhdf5: " in line or "libhdf5 failed on this file (" in line) and \
                "dense" in line, line
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


R.check("every file of known-libhdf5: one line, exit 2, no crash",
        corpus_refused_cleanly)
R.check("a skeleton that crashes libhdf5: nothing written", crashing_skeleton_writes_nothing)
R.close()
