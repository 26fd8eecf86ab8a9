"""The ctypes Structures of python/graft/_lib.py have graft.h's layout: every
field at the C offset with the C size, and the same sizeof (a Structure
smaller than its C struct lets the library write past the Python buffer)."""
import ctypes
import os
import subprocess

from graft import _lib, _suggest

STRUCTS = {
    "graft_open_options": _lib.OpenOptions, "graft_plan_options": _lib.PlanOptions,
    "graft_apply_options": _lib.ApplyOptions, "graft_apply_stats": _lib.ApplyStats,
    "graft_diff_result": _lib.DiffResult, "graft_extras": _lib.Extras,
    "graft_convert_options": _lib.ConvertOptions, "graft_convert_result": _lib.ConvertResult,
    "graft_suggest_options": _suggest.SuggestOptions,
}


def c_layout():
    out = subprocess.run([os.environ["GRAFT_ABI_LAYOUT"]], check=True, capture_output=True,
                         text=True).stdout
    rows = [line.split() for line in out.splitlines()]
    return {(s, f): (int(off), int(size)) for s, f, off, size in rows}


def test_structures_match_graft_h():
    c = c_layout()
    assert {s for s, _ in c} == set(STRUCTS)
    py = {}
    for name, cls in STRUCTS.items():
        py[(name, "-")] = (0, ctypes.sizeof(cls))
        for f, _ in cls._fields_:
            d = getattr(cls, f)
            py[(name, f)] = (d.offset, d.size)
    assert py == c
