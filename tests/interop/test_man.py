"""man graft(1) against the option tables: every command has a section whose
text names each of its options (from `graft completion table`, the tables the
command parses with), each command's --help names them too, and the JSON
OUTPUT section names every command's schema, which exists.  Run with
/usr/bin/python3.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import graftlib  # noqa: E402

R = graftlib.Results()
run = graftlib.run
MAN = os.path.join(graftlib.SOURCE_ROOT, "man", "graft.1")


def sections():
    """'.SS "graft CMD ..."' -> that section's roff text with \\- as -."""
    with open(MAN) as f:
        text = f.read().replace("\\-", "-")
    out, cur = {}, None
    for line in text.splitlines():
        m = re.match(r'\.SS "graft ([a-z]+)', line)
        if m:
            cur = m.group(1)
            out[cur] = ""
        elif line.startswith(".SH") or line.startswith(".SS"):
            cur = None
        elif cur:
            out[cur] += line + "\n"
    return out, text


def table():
    rows = []
    for ln in run("completion", "table").stdout.splitlines():
        f = ln.split()
        rows.append((f[0], f[1], f[3] if len(f) > 3 else None))
    return rows


def check_sections():
    secs, _ = sections()
    commands = {c for c, _, _ in table()}
    listed = {ln.split()[0] for ln in run("--help").stdout.split("commands:")[1].split("options:")[0].splitlines()
              if ln.strip()}
    assert commands == listed, (commands ^ listed)
    missing = []
    for c, opt, short in table():
        if c not in secs:
            missing.append(f"no section for graft {c}")
            continue
        if opt == "--help":
            continue
        if not re.search(re.escape(opt) + r"(?![a-z-])", secs[c]):
            missing.append(f"graft {c}: {opt}")
        if short and not re.search(re.escape(short) + r"(?![a-z-])", secs[c]):
            missing.append(f"graft {c}: {short}")
    assert not missing, missing


def check_help():
    missing = []
    for c, opt, short in table():
        if opt == "--help":
            continue
        h = run(c, "--help").stdout
        if not re.search(re.escape(opt) + r"(?![a-z-])", h):
            missing.append(f"graft {c} --help: {opt}")
    assert not missing, missing


def check_json_section():
    _, text = sections()
    m = re.search(r"^\.SH \"?JSON OUTPUT\"?$(.*?)^\.SH", text, re.S | re.M)
    assert m, "no JSON OUTPUT section"
    for c in ("ls", "plan", "explain", "check", "apply", "freeze", "diff", "rules", "convert"):
        name = f"schemas/cli/{c}.schema.json"
        assert name in m.group(1), name
        assert os.path.isfile(os.path.join(graftlib.SOURCE_ROOT, name)), name


def check_renders():
    p = subprocess.run(["man", "-l", "-P", "cat", "--warnings", MAN], capture_output=True, text=True,
                       env={**os.environ, "LANG": "C.UTF-8"})
    assert p.returncode == 0 and "COMPLETION" in p.stdout and "JSON OUTPUT" in p.stdout, p.stderr
    assert "warning" not in p.stderr, p.stderr


R.check("graft(1) has a section per command naming every option", check_sections)
R.check("every command's --help names every option", check_help)
R.check("JSON OUTPUT names each command's schema", check_json_section)
R.check("graft(1) renders without warnings", check_renders)
R.close()
