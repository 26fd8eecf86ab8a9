"""graft.suggest: draft a rules file from the two models (`graft suggest`)."""
import ctypes
import json
from ctypes import POINTER as P
from ctypes import c_char_p, c_int, c_uint, c_void_p
from dataclasses import dataclass, field
from typing import List

from ._lib import Ctx, dec, enc, lib


class SuggestOptions(ctypes.Structure):
    """graft_suggest_options (graft.h)."""
    _fields_ = [("version", c_uint), ("source_format", c_char_p), ("skeleton_format", c_char_p)]


for _name, _res, _args in (
        ("graft_suggest", c_int, [P(c_void_p), c_char_p, c_char_p, P(SuggestOptions), c_void_p]),
        ("graft_suggestion_free", None, [c_void_p]),
        ("graft_suggestion_json", c_int, [P(c_void_p), c_void_p, c_void_p]),
        ("graft_suggestion_write", c_int, [c_void_p, c_char_p, c_void_p]),
        ("graft_suggestion_html", c_int, [c_void_p, c_char_p, c_char_p, c_void_p])):
    getattr(lib, _name).restype = _res
    getattr(lib, _name).argtypes = _args


@dataclass(frozen=True)
class Suggested:
    """One skeleton tensor of a draft: its source(s), op chain and how sure
    the draft is ("certain", "likely", "guess", "unpaired"), and why."""
    target: str
    sources: List[str]
    ops: list
    confidence: str
    reason: str


@dataclass(frozen=True)
class Suggestion:
    """graft.suggest's result: the rules text (format 1.1) and each target."""
    rules: str
    targets: List[Suggested]
    one_to_one: bool
    reversible: bool
    entries: dict = field(default_factory=dict)

    def count(self, confidence):
        return sum(1 for t in self.targets if t.confidence == confidence)

    @property
    def sure(self):
        """What `graft suggest` exits 0 for: no guess, nothing unpaired."""
        return not any(t.confidence in ("guess", "unpaired") for t in self.targets)


def suggest(source, skeleton, *, output=None, html=None, source_format=None,
            skeleton_format=None):
    """Draft rules that fill `skeleton` from `source` (graft suggest).  With
    output, the rules are also written there (atomically); with html, the
    report page of the plan they give.  Raises graft.Error on failure."""
    opts = SuggestOptions(1, enc(source_format), enc(skeleton_format))
    s = c_void_p()
    with Ctx() as ctx:
        ctx.check(lib.graft_suggest(ctypes.byref(s), enc(source), enc(skeleton),
                                    ctypes.byref(opts), ctx.p))
        try:
            text = c_void_p()
            ctx.check(lib.graft_suggestion_json(ctypes.byref(text), s, ctx.p))
            try:
                d = json.loads(dec(ctypes.string_at(text.value)))
            finally:
                lib.graft_free(text)
            if output is not None:
                ctx.check(lib.graft_suggestion_write(s, enc(output), ctx.p))
            if html is not None:
                ctx.check(lib.graft_suggestion_html(s, enc(html), None, ctx.p))
        finally:
            lib.graft_suggestion_free(s)
    targets = [Suggested(t["target"], list(t["sources"]), t["ops"], t["confidence"], t["reason"])
               for t in d["targets"]]
    return Suggestion(d["rules"], targets, bool(d.get("one_to_one")), bool(d.get("reversible")),
                      d.get("entries", {}))
