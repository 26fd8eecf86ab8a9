"""graft apply's (and convert's) progress line: on stderr only when it is a terminal (a pty
here), never with --quiet or when stderr is a pipe; the output is the same
either way (checked with torch.load and a safetensors reader in numpy)."""
import json
import os
import pty
import re
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import graftlib  # noqa: E402

import numpy as np  # noqa: E402

R = graftlib.Results()
LINE = re.compile(rb"graft apply: (\d+)/(\d+) tensors, [\d.]+/([\d.]+) MiB, \d+ MiB/s")


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    head = json.loads(data[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[8 + n + a:8 + n + b], "<f4").reshape(v["shape"])
    return out


def write_skeleton(path, shapes):
    header, off = {}, 0
    for k, s in shapes.items():
        n = 4 * int(np.prod(s))
        header[k] = {"dtype": "F32", "shape": list(s), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + bytes(off))


def inputs():
    import torch
    torch.manual_seed(0)
    sd = {f"l{i}.weight": torch.randn(64 + i, 48) for i in range(6)}
    src = R.path("src.pth")
    torch.save(sd, src)
    skel = R.path("skel.safetensors")
    write_skeleton(skel, {k: v.shape for k, v in sd.items()})
    return sd, src, skel


SD, SRC, SKEL = inputs()
TOTAL_MIB = sum(v.numel() * 4 for v in SD.values()) / 2**20


def pty_capture(argv):
    """Run argv with stderr on a pty; returns (status, stderr bytes)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    got = b""
    while True:
        try:
            d = os.read(master, 65536)
        except OSError:  # EIO: the child closed the pty
            break
        if not d:
            break
        got += d
    p.stdout.read()
    os.close(master)
    return p.wait(), got


def run_pty(*extra):
    """Run graft apply with stderr on a pty; returns (status, stderr bytes, output)."""
    out = R.path("out.safetensors")
    if os.path.exists(out):
        os.unlink(out)
    rc, got = pty_capture([graftlib.GRAFT, "apply", *extra, "-o", out, SRC, SKEL])
    return rc, got, out


def same_output(out):
    got = read_safetensors(out)
    assert set(got) == set(SD)
    for k, v in SD.items():
        assert np.array_equal(got[k], v.numpy()), k


def check_tty_shows_progress():
    rc, err, out = run_pty()
    assert rc == 0, err
    lines = LINE.findall(err)
    assert lines, err
    done, total, mib = lines[-1]
    assert int(done) == int(total) == len(SD), lines
    assert abs(float(mib) - TOTAL_MIB) < 0.1, (mib, TOTAL_MIB)
    assert err.endswith(b"\n"), err  # the line is finished, not left open
    same_output(out)


def check_quiet_on_tty():
    rc, err, out = run_pty("--quiet")
    assert rc == 0, err
    assert not LINE.search(err) and b"tensors," not in err, err
    same_output(out)
    rc, err, out = run_pty("-q")
    assert rc == 0 and not LINE.search(err), err


def check_pipe_is_silent():
    out = R.path("pipe.safetensors")
    p = graftlib.run("apply", "-o", out, SRC, SKEL)
    assert p.stderr == "", p.stderr
    assert "6 tensors transplanted" in p.stdout, p.stdout
    same_output(out)


def check_failure_ends_line():
    # A skeleton whose shape does not match: the error is on its own line.
    bad = R.path("bad.safetensors")
    write_skeleton(bad, {k: (v.shape[1], v.shape[0]) if k == "l5.weight" else v.shape
                         for k, v in SD.items()})
    rc, got = pty_capture([graftlib.GRAFT, "apply", "-o", R.path("bad_out.safetensors"), SRC, bad])
    assert rc != 0
    assert b"l5.weight" in got, got
    for line in got.replace(b"\r\n", b"\n").split(b"\n"):
        assert not (LINE.search(line) and b"l5.weight" in line), got


def check_convert_progress():
    out = R.path("conv.safetensors")
    rc, err = pty_capture([graftlib.GRAFT, "convert", SRC, "-o", out])
    assert rc == 0, err
    lines = re.findall(rb"graft convert: (\d+)/(\d+) tensors", err)
    assert lines and lines[-1] == (b"6", b"6") and err.endswith(b"\n"), err
    same_output(out)
    rc, err = pty_capture([graftlib.GRAFT, "convert", "-q", SRC, "-o", out])
    assert rc == 0 and b"tensors," not in err, err


R.check("progress line on a terminal", check_tty_shows_progress)
R.check("graft convert: the same line on a terminal, none with -q", check_convert_progress)
R.check("--quiet silences it", check_quiet_on_tty)
R.check("silent when stderr is not a terminal", check_pipe_is_silent)
R.check("a failure starts its own line", check_failure_ends_line)
R.close()
