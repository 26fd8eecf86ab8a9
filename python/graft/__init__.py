"""graft: read model files of many frameworks as NumPy arrays, without the
frameworks and without running code they hold, and transplant trained
weights into a skeleton file of another framework.

A thin layer over libgraft (ctypes; no compiled extension):

    import graft, numpy as np
    m = graft.open("model.pth")              # a PyTorch checkpoint, never unpickled
    for t in m:
        print(t.name, t.dtype, t.shape, t.sha256())
    w = np.asarray(m["fc.weight"])           # a read-only view of the mapped file
    p = graft.plan("rules.yaml", "model.pth", "skeleton.h5")
    graft.apply(rules="rules.yaml", source="model.pth", skeleton="skeleton.h5",
                output="trained.h5", progress=lambda done, total, nbytes: None)

Failures raise graft.Error with the library's one-line message.  Importing
graft imports neither torch nor NumPy (NumPy is imported for arrays).
"""
from ._errors import Error, PlanError
from ._lib import dec as _dec
from ._lib import lib as _clib
from ._model import Model, Tensor, numpy_dtype, open
from ._plan import Applied, Compared, Diff, Pair, Plan, apply, diff, explain, plan
from ._convert import Converted, convert

__version__ = _dec(_clib.graft_version())


def formats():
    """Names of the formats libgraft reads ("pytorch-zip", "safetensors"...)."""
    names = _clib.graft_format_names()
    out = []
    while names[len(out)]:
        out.append(_dec(names[len(out)]))
    return out


__all__ = ["Error", "PlanError", "Model", "Tensor", "open", "numpy_dtype", "Plan", "Pair",
           "plan", "explain", "Applied", "apply", "Compared", "Diff", "diff", "Converted",
           "convert", "formats", "__version__"]
