"""Shell completion: the scripts `graft completion` generates from the option
tables, driven in bash (its completion function called as readline would),
checked by zsh -n and fish -n (and fish's own `complete -C`), and installed by
`meson install` into a staging root.  Run with /usr/bin/python3.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import graftlib  # noqa: E402

R = graftlib.Results()
run = graftlib.run
BUILD = os.environ.get("GRAFT_BUILD_ROOT") or os.path.dirname(os.path.dirname(graftlib.GRAFT))


def bash_complete(*words):
    """COMPREPLY of _graft for the command line `graft WORDS` (the last word being completed)."""
    script = run("completion", "bash").stdout
    words = ["graft", *words]
    arr = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    prog = f"{script}\nCOMP_WORDS=({arr}); COMP_CWORD={len(words) - 1}; _graft; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog], capture_output=True, text=True,
                       cwd=R.tmp)
    assert p.returncode == 0, p.stderr
    return [w for w in p.stdout.splitlines() if w]


def table():
    """(command, option, value kind) from `graft completion table`."""
    return [ln.split()[:3] for ln in run("completion", "table").stdout.splitlines()]


def check_bash():
    assert bash_complete("a") == ["apply"], bash_complete("a")
    assert bash_complete("c") == ["check", "convert", "completion"] or \
        sorted(bash_complete("c")) == ["check", "completion", "convert"]
    assert bash_complete("--v") == ["--version"]
    assert bash_complete("ls", "--fo") == ["--format"]
    fmts = bash_complete("ls", "--format", "")
    want = run("ls", "--help").stdout.split("formats (in detection order):")[1].replace(",", " ").split()
    assert fmts == want, (fmts, want)
    assert bash_complete("convert", "--to", "g") == ["gguf"]
    rules = bash_complete("plan", "-r", "torch-to-k")
    assert "torch-to-keras/resnet18" in rules, rules
    listed = {ln.split()[0] for ln in run("rules").stdout.splitlines() if not ln.startswith(" ")}
    assert set(bash_complete("apply", "--rules", "")) >= listed | {"auto"}
    # every option of every command's table is offered after '-'
    by_cmd = {}
    for c, o, _ in table():
        by_cmd.setdefault(c, set()).add(o)
    for c, opts in by_cmd.items():
        got = set(bash_complete(c, "--"))
        assert got == opts, (c, got ^ opts)
    # files after a file option
    open(os.path.join(R.tmp, "model.npz"), "w").close()
    assert bash_complete("apply", "-o", "mod") == ["model.npz"]
    # the script meson built is the same text
    with open(os.path.join(BUILD, "completions", "graft")) as f:
        assert f.read() == run("completion", "bash").stdout


def check_zsh_fish():
    for sh, name in (("zsh", "_graft"), ("fish", "graft.fish")):
        path = os.path.join(BUILD, "completions", name)
        with open(path) as f:
            assert f.read() == run("completion", sh).stdout
        exe = shutil.which(sh)
        assert exe, f"{sh} is not installed (.ci/install-deps installs it)"
        p = subprocess.run([exe, "-n", path], capture_output=True, text=True)
        assert p.returncode == 0, (sh, p.stderr)
    # fish completes from the script as a user's shell would
    fish = os.path.join(BUILD, "completions", "graft.fish")
    p = subprocess.run(["fish", "--no-config", "-c", f"source {fish}; complete -C 'graft a'"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and [ln.split("\t")[0] for ln in p.stdout.splitlines()] == ["apply"], p
    p = subprocess.run(["fish", "--no-config", "-c", f"source {fish}; complete -C 'graft diff --rt'"],
                       capture_output=True, text=True)
    assert p.stdout.strip().split("\t")[0] == "--rtol", p.stdout
    # zsh: load the function and let _arguments see the table (compdef-free check)
    zsh = os.path.join(BUILD, "completions", "_graft")
    with open(zsh) as f:
        text = f.read()
    for c, o, _ in table():
        assert o in text, (c, o)


def check_install():
    dest = tempfile.mkdtemp(prefix="graft-compl-install-", dir=R.tmp)
    p = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet", "--destdir", dest],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    found = {}
    for root, _, files in os.walk(dest):
        for f in files:
            found[os.path.relpath(os.path.join(root, f), dest)] = os.path.join(root, f)
    for tail in ("share/bash-completion/completions/graft", "share/zsh/site-functions/_graft",
                 "share/fish/vendor_completions.d/graft.fish", "share/graft/schemas/diff.schema.json"):
        hits = [k for k in found if k.endswith(tail)]
        assert len(hits) == 1, (tail, sorted(found)[:20])
    bash = found[[k for k in found if k.endswith("completions/graft")][0]]
    with open(bash) as f:
        assert "complete -o filenames -F _graft graft" in f.read()


R.check("bash completes commands, options, formats, rules names, files", check_bash)
R.check("zsh and fish scripts are valid and complete", check_zsh_fish)
R.check("meson install puts the three scripts and the schemas in place", check_install)
R.close()
