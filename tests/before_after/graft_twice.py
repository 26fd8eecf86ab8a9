#!/usr/bin/python3
"""A stand-in for the graft binary that runs two builds side by side.

Set GRAFT=tests/before_after/graft_twice.py, GRAFT_BEFORE and GRAFT_AFTER to
two graft binaries and GRAFT_TWICE_LOG to a file.  Every call runs BEFORE,
then AFTER, with the same arguments, and compares exit status, stdout,
stderr and the bytes of every file either run wrote (files under the folders
of the arguments modified since the call began).  Differences are appended to
the log as one JSON line each; every call adds a line {"args", "same"}.  The
caller sees AFTER's results, so a test suite driven through this wrapper
still checks the new build.  Used by tests/before_after/run.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time


def dirs_of(args):
    out = set()
    for a in args:
        if a.startswith("-") or "=" in a or ("/" not in a and not os.path.exists(a)):
            continue  # options, and words such as the command name
        p = os.path.abspath(a)
        d = p if os.path.isdir(p) else os.path.dirname(p)
        if os.path.isdir(d) and d != "/":
            out.add(d)
    return out


def touched(dirs, since_ns):
    got = {}
    for d in dirs:
        for root, _, files in os.walk(d):
            if root.count(os.sep) - d.count(os.sep) > 2:
                continue
            for f in files:
                p = os.path.join(root, f)
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                if st.st_mtime_ns >= since_ns:
                    with open(p, "rb") as fh:
                        got[p] = hashlib.sha256(fh.read()).hexdigest()
    return got


def norm(s):
    return re.sub(r"graft-freeze-\d+", "graft-freeze-PID", s)


def run(binary, args, dirs):
    start = time.time_ns() - 1
    time.sleep(0.002)
    p = subprocess.run([binary, *args], capture_output=True)
    return p, touched(dirs, start)


def outputs(args):
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-o", "--output")]


def main():
    args = sys.argv[1:]
    dirs = dirs_of(args)
    fresh = [o for o in outputs(args) if not os.path.exists(o)]
    b, bfiles = run(os.environ["GRAFT_BEFORE"], args, dirs)
    # A folder output (SavedModel) is refused when it exists: remove BEFORE's.
    for o in fresh:
        if os.path.isdir(o):
            shutil.rmtree(o)
    a, afiles = run(os.environ["GRAFT_AFTER"], args, dirs)
    diffs = []
    if a.returncode != b.returncode:
        diffs.append(["exit", b.returncode, a.returncode])
    for name, x, y in (("stdout", b.stdout, a.stdout), ("stderr", b.stderr, a.stderr)):
        x, y = norm(x.decode(errors="replace")), norm(y.decode(errors="replace"))
        if x != y:
            diffs.append([name, x[-2000:], y[-2000:]])
    for path in sorted(set(bfiles) | set(afiles)):
        if "graft-freeze-" in path:
            continue
        if bfiles.get(path) != afiles.get(path):
            diffs.append(["file", path, bfiles.get(path), afiles.get(path)])
    with open(os.environ["GRAFT_TWICE_LOG"], "a") as log:
        log.write(json.dumps({"args": args, "same": not diffs, "diffs": diffs}) + "\n")
    sys.stdout.buffer.write(a.stdout)
    sys.stderr.buffer.write(a.stderr)
    sys.exit(a.returncode)


main()
