"""The documentation agrees with the binary: every command `graft --help`
lists answers --help with exit 0, every option its --help names is in that
command's section of man/graft.1, and README.md's format table lists every
format graft has registered (src/formats/formats.def, the names `--format`
takes, as `graft ls --help` prints them), and so does the FORMATS list of
man/graft.1, in the same order.  Run with /usr/bin/python3.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from graftlib import SOURCE_ROOT, Results, run  # noqa: E402

R = Results()
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def commands():
    out = run("--help").stdout
    names = re.findall(r"^  (\w+) ", out.split("commands:", 1)[1], re.M)
    assert len(names) >= 7, out
    return names


def man_text():
    with open(os.path.join(SOURCE_ROOT, "man", "graft.1")) as f:
        text = f.read()
    # roff escapes as a reader sees them: \- is '-', \fB...\fR are fonts
    return re.sub(r"\\f[BIRP]", "", text.replace("\\-", "-").replace("\\e", "\\"))


def man_section(text, cmd):
    m = re.search(r'^\.SS "graft ' + cmd + r'\b.*?$(.*?)(?=^\.S[SH] )', text, re.M | re.S)
    assert m, f"man/graft.1 has no section for graft {cmd}"
    return m.group(0)


def help_options(cmd):
    p = run(cmd, "--help", check=False)
    assert p.returncode == 0, f"graft {cmd} --help: exit {p.returncode}: {p.stderr}"
    assert p.stdout.startswith(f"usage: graft {cmd}"), p.stdout[:80]
    assert not p.stderr, p.stderr
    return set(OPTION.findall(p.stdout)) - {"-h", "--help"}


def help_matches_man(cmd):
    section = man_section(man_text(), cmd)
    opts = help_options(cmd)
    missing = sorted(o for o in opts
                     if not re.search(r"(?<![\w-])" + re.escape(o) + r"(?![\w-])", section))
    assert not missing, f"graft {cmd} --help names {missing}, its man section does not"


def man_synopsis_lists_every_command():
    text = man_text()
    synopsis = text.split(".SH SYNOPSIS", 1)[1].split(".SH ", 1)[0]
    for cmd in commands():
        assert f".B graft {cmd}" in synopsis, f"graft {cmd} not in the SYNOPSIS"
    assert "graft-onnx (7)" in text, "no reference to graft-onnx(7)"


def registered_formats():
    """The --format names in registry order, from formats.def and each
    format's .name; `graft ls --help` must print the same list (it comes from
    graft_format_names() at run time)."""
    with open(os.path.join(SOURCE_ROOT, "src", "formats", "formats.def")) as f:
        syms = re.findall(r"^\s*FORMAT\((\w+)\)", f.read(), re.M)
    assert len(syms) >= 10, syms
    src = os.path.join(SOURCE_ROOT, "src", "formats")
    declared = {}
    for folder, _, files in os.walk(src):  # formats live in family folders
        for fn in files:
            if not fn.endswith(".c"):
                continue
            with open(os.path.join(folder, fn)) as f:
                body = f.read()
            for sym, name in re.findall(
                    r"const graft_format graft_format_(\w+) = \{\s*\.name = \"([\w-]+)\"", body):
                declared[sym] = name
    names = []
    for sym in syms:
        assert sym in declared, f"FORMAT({sym}) has no graft_format_{sym} with a .name"
        names.append(declared[sym])
    listed = re.search(r"^formats \(in detection order\): (.*)$", run("ls", "--help").stdout, re.M)
    assert listed, "graft ls --help does not list the formats"
    assert listed.group(1).split(", ") == names, (listed.group(1), names)
    return names


def readme_lists_every_format():
    with open(os.path.join(SOURCE_ROOT, "README.md")) as f:
        readme = f.read()
    assert "FORMATS_TABLE" not in readme, "the placeholder is still there"
    table = re.findall(r"^\| `([\w-]+)` \|", readme, re.M)
    names = registered_formats()
    missing = sorted(set(names) - set(table))
    assert not missing, f"README.md's format table lacks {missing}"
    assert table == names, f"README.md's format table: {table}, registry order: {names}"


def man_lists_every_format():
    text = man_text()
    assert ".SH FORMATS" in text, "man/graft.1 has no FORMATS section"
    section = text.split(".SH FORMATS", 1)[1].split(".SH ", 1)[0]
    assert "format options take:" in section, "the FORMATS section has no list of names"
    listing = section.split("format options take:", 1)[1].split("Every one of them", 1)[0]
    # one name per .B/.BR line; `.B .keras` in a remark is a suffix, not a name
    listed = re.findall(r"^\.BR? ([a-z][\w-]*)", listing, re.M)
    names = registered_formats()
    missing = sorted(set(names) - set(listed))
    assert not missing, f"man/graft.1's FORMATS list lacks {missing}"
    assert listed == names, f"man/graft.1's FORMATS list: {listed}, registry order: {names}"


def adding_a_format_names_every_step():
    with open(os.path.join(SOURCE_ROOT, "src", "formats", "README.md")) as f:
        guide = f.read()
    for must in ("formats.def", "src/meson.build", "`README.md`", "man/graft.1",
                 "tests/unit/test_<name>.c", "tests/interop/test_<name>.py",
                 "samples/corrupt/<name>/", "tests/fuzz/fuzz_<name>.c", "test_docs.py"):
        assert must in guide, f"src/formats/README.md does not mention {must}"


for cmd in commands():
    R.check(f"graft {cmd} --help: exit 0, and its options are in man/graft.1",
            help_matches_man, cmd)
R.check("the man page's SYNOPSIS lists every command, and points to graft-onnx(7)",
        man_synopsis_lists_every_command)
R.check("README.md's format table lists every registered format", readme_lists_every_format)
R.check("man/graft.1's FORMATS list names every registered format, in registry order",
        man_lists_every_format)
R.check("src/formats/README.md lists every step of adding a format", adding_a_format_names_every_step)
R.close()
