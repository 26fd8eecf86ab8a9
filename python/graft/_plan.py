"""graft.plan, graft.apply, graft.diff and graft.explain over a libgraft plan."""
import ctypes
import json
from dataclasses import dataclass, field
from typing import Any, List, Optional

from ._errors import PlanError
from ._lib import (GRAFT_ECANCELED, GRAFT_EPLAN, GRAFT_ESHAPE, PROGRESS_FN,
                   ApplyOptions, ApplyStats, Ctx, DiffResult, Handle, PlanOptions, c_bool, c_int,
                   c_void_p, dec, enc, lib, take_text)

PLAN_ERROR = 4  # GRAFT_PLAN_ERROR


@dataclass(frozen=True)
class Pair:
    """One skeleton tensor of a plan: its sources, the ops run on them and
    whether they fit ("ok", "missing", "kept", "mismatch", "error")."""
    target: str
    sources: List[str]
    ops: List[Any]
    status: str
    target_shape: Optional[List[int]] = None
    source_shape: Optional[List[int]] = None
    dtype: Optional[str] = None
    source_dtype: Optional[str] = None
    transform: Optional[str] = None  # "file:line" of the transforms: entry whose ops were chosen
    pair: Optional[str] = None       # "file:line" of the pairs: entry, if one paired it
    message: Optional[str] = None    # why the status is not ok


@dataclass(frozen=True)
class Plan:
    """What `graft plan --json` reports, as Python objects: pairs (one per
    skeleton tensor, in its order), missing skeleton tensors, unused source
    tensors, warnings and problems (strings, or dicts for layout findings)
    and the number of errors (0: apply will write)."""
    pairs: List[Pair]
    missing: List[str]
    unused: List[str]
    warnings: List[Any]
    problems: List[Any]
    errors: int

    @property
    def complete(self):
        return self.errors == 0

    @property
    def ops(self):
        """target name -> the op chain run on its sources."""
        return {p.target: p.ops for p in self.pairs}

    def __getitem__(self, target):
        for p in self.pairs:
            if p.target == target:
                return p
        raise KeyError(target)

    @classmethod
    def from_json(cls, text):
        d = json.loads(text)
        fields = Pair.__dataclass_fields__
        pairs = [Pair(**{k: v for k, v in p.items() if k in fields}) for p in d["pairs"]]
        return cls(pairs, d["missing"], d["unused"], d["warnings"], d["problems"], d["errors"])


class _Planned:
    """An open libgraft plan (and the rules it borrows)."""

    def __init__(self, rules, source, skeleton, reverse, strict, source_format,
                 skeleton_format, select):
        self.rules = None
        self.p = None
        with Ctx() as ctx:
            if rules is not None:
                r = c_void_p()
                ctx.check(lib.graft_rules_load(ctypes.byref(r), enc(rules), ctx.p))
                self.rules = Handle(r.value, lib.graft_rules_free)
            opts = PlanOptions(1, bool(reverse), bool(strict), enc(source_format),
                               enc(skeleton_format), enc(select))
            p = c_void_p()
            ctx.check(lib.graft_plan_open(ctypes.byref(p), self.rules.ptr if self.rules else None,
                                          enc(source), enc(skeleton), ctypes.byref(opts), ctx.p))
            # Freed before the rules it borrows: this handle holds them.
            self.p = Handle(p.value, lib.graft_plan_free, keep=(self.rules,))

    def plan(self):
        out = c_void_p()
        with Ctx() as ctx:
            ctx.check(lib.graft_plan_json(ctypes.byref(out), self.p.ptr, ctx.p))
        return Plan.from_json(take_text(out))


def _plan_args(kw):
    return (kw.get("reverse", False), kw.get("strict", False), kw.get("source_format"),
            kw.get("skeleton_format"), kw.get("select"))


def plan(rules, source, skeleton, reverse=False, strict=False, *, source_format=None,
         skeleton_format=None, select=None):
    """Plan the transplant of `source`'s tensors into `skeleton` through the
    rules file `rules` (None: identical names, no ops) and return it as a
    graft.Plan.  An incomplete plan is returned, not raised: see .errors."""
    return _Planned(rules, source, skeleton, reverse, strict, source_format, skeleton_format,
                    select).plan()


def explain(rules, source, skeleton, name, reverse=False, strict=False, *, source_format=None,
            skeleton_format=None, select=None):
    """The trace behind one skeleton tensor (what `graft explain` prints)."""
    pl = _Planned(rules, source, skeleton, reverse, strict, source_format, skeleton_format,
                  select)
    out = c_void_p()
    with Ctx() as ctx:
        ctx.check(lib.graft_plan_explain(ctypes.byref(out), pl.p.ptr, enc(name), ctx.p))
    return take_text(out)


class _Progress:
    """A Python progress callable behind graft_progress_fn.  An exception it
    raises sets the cancel flag (apply stops, nothing written) and is raised
    again when the C call returns."""

    def __init__(self, fn):
        self.fn = fn
        self.error = None
        self.cancel = c_int(0)
        self.cfn = PROGRESS_FN(self._call) if fn else PROGRESS_FN()

    def _call(self, done, total, nbytes, _payload):
        if self.error is not None:
            return
        try:
            self.fn(done, total, nbytes)
        except BaseException as e:  # noqa: BLE001 - raised again after the C call
            self.error = e
            self.cancel.value = 1


@dataclass(frozen=True)
class Applied:
    """What graft.apply wrote."""
    output: str
    tensors: int       # skeleton tensors written
    transplanted: int  # of them filled from the source
    kept: int          # of them with the skeleton's own bytes
    bytes: int         # tensor bytes written


def apply(rules=None, source=None, skeleton=None, output=None, progress=None, *, reverse=False,
          strict=False, manifest=None, source_format=None, skeleton_format=None, select=None,
          sync=True):
    """Write `output` (default: graft's NAME.grafted.EXT next to the skeleton):
    the skeleton with every planned tensor filled from `source`.  Written
    atomically; inputs are never modified.  progress(done, total, bytes) is
    called after each tensor; an exception it raises stops the apply with
    nothing written and propagates.  sync=False: no fsync before the output
    is renamed into place (faster; a crash soon after may lose it, as after
    cp).  Raises graft.PlanError (with .plan) when the plan is incomplete,
    graft.Error on any other failure."""
    if source is None or skeleton is None:
        raise TypeError("graft.apply needs source= and skeleton=")
    pl = _Planned(rules, source, skeleton, reverse, strict, source_format, skeleton_format,
                  select)
    with Ctx() as ctx:
        lib.graft_ctx_set_sync(ctx.p, int(bool(sync)))
        if output is None:
            out = c_void_p()
            ctx.check(lib.graft_default_output(ctypes.byref(out), enc(skeleton), ctx.p))
            output = take_text(out)
        prog = _Progress(progress)
        opts = ApplyOptions(1, prog.cfn, None, ctypes.pointer(prog.cancel), enc(manifest),
                            None)
        stats = ApplyStats()
        rc = lib.graft_plan_apply(pl.p.ptr, enc(output), ctypes.byref(opts),
                                  ctypes.byref(stats), ctx.p)
        if prog.error is not None and rc == GRAFT_ECANCELED:
            raise prog.error
        if rc == GRAFT_EPLAN:
            raise ctx.error(rc, PlanError, plan=pl.plan())
        ctx.check(rc)
    return Applied(str(output), stats.tensors, stats.transplanted, stats.kept, stats.bytes)


@dataclass(frozen=True)
class Compared:
    """One tensor of a diff.  status: "ok"/"over" (compared; over means a
    difference), "mismatch" (shapes or the op chain do not fit: message) or
    "unpaired" (side "A": a source tensor nothing uses; "B": a target with no
    source).  max_abs is set for numeric comparisons (float64; integers
    exactly), equal for every comparison."""
    name: str
    status: str
    sources: List[str] = field(default_factory=list)
    max_abs: Optional[float] = None
    equal: Optional[bool] = None
    numel: int = 0
    message: Optional[str] = None
    side: Optional[str] = None

    def within(self, atol):
        if self.status not in ("ok", "over"):
            return False
        return self.max_abs <= atol if self.max_abs is not None else bool(self.equal)


@dataclass(frozen=True)
class Diff:
    """graft.diff's result: one Compared per B tensor (then per unused A
    tensor), and the plan's errors (an `expect:` not met...)."""
    entries: List[Compared]
    errors: List[str]

    def ok(self, atol=0.0):
        """What `graft diff --atol` exits 0 for: every tensor compared within
        atol, nothing mismatched or unpaired, no plan error."""
        return not self.errors and all(e.within(atol) for e in self.entries)

    @property
    def max_abs(self):
        vals = [e.max_abs for e in self.entries if e.max_abs is not None]
        return max(vals) if vals else 0.0

    def __getitem__(self, name):
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)


def _diff_entry(p, i, ctx):
    name = dec(lib.graft_tensor_name(lib.graft_plan_entry_target(p, i)))
    n = lib.graft_plan_entry_nsources(p, i)
    if n == 0:
        if lib.graft_plan_entry_ignored(p, i):
            return None
        return Compared(name, "unpaired", side="B")
    sources = [dec(lib.graft_tensor_name(lib.graft_plan_entry_source(p, i, k)))
               for k in range(n)]
    if lib.graft_plan_entry_status(p, i) == PLAN_ERROR:
        return Compared(name, "mismatch", sources,
                        message=dec(lib.graft_plan_entry_message(p, i)))
    r = DiffResult()
    rc = lib.graft_plan_diff(p, i, ctypes.byref(r), ctx.p)
    if rc == GRAFT_ESHAPE:
        msg = ctx.message()
        lib.graft_ctx_clear(ctx.p)
        return Compared(name, "mismatch", sources, message=msg)
    ctx.check(rc)
    max_abs = r.max_abs if r.numeric else None
    within = r.max_abs == 0 if r.numeric else r.equal
    return Compared(name, "ok" if within else "over", sources, max_abs, r.equal, r.numel)


def diff(a, b, rules=None, reverse=False, strict=False, *, a_format=None, b_format=None):
    """Compare B's tensors with A's run through the rules' op chains (A is the
    source side; identical names when rules is None), as `graft diff` does.
    "over" marks any difference; use .ok(atol) or each entry's .max_abs."""
    pl = _Planned(rules, a, b, reverse, strict, a_format, b_format, None)
    p = pl.p.ptr
    errors = []
    for k in range(lib.graft_plan_problem_count(p)):
        is_error = c_bool()
        msg = dec(lib.graft_plan_problem(p, k, ctypes.byref(is_error)))
        if is_error.value:
            errors.append(msg)
    entries = []
    with Ctx() as ctx:
        for i in range(lib.graft_plan_count(p)):
            e = _diff_entry(p, i, ctx)
            if e is not None:
                entries.append(e)
    for k in range(lib.graft_plan_unused_count(p)):
        entries.append(Compared(dec(lib.graft_tensor_name(lib.graft_plan_unused(p, k))),
                                "unpaired", side="A"))
    return Diff(entries, errors)

