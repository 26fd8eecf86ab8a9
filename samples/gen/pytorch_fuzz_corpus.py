"""Seed tests/fuzz/corpora/{torch,pickle}/ (run with /usr/bin/python3).

torch/: small files written by torch.save (zip and legacy: state dicts,
views into shared storages, every dtype, a checkpoint, a Parameter) plus
malformed variants (truncations, bad sizes and offsets, hostile globals).
pickle/: the data.pkl of those files plus hand-made hostile and broken
pickles (cycles, memo abuse, huge lengths, protocol 4/5 opcodes).
whole_models(): torch.save(model) files of whole_model.py (functions,
partials, hook objects and getattr as attributes; quantized, lazy and hooked
modules) and getattr gadgets, cut and whole (issue 18 item 16).
"""
import io
import os
import sys
import zipfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_samples import rezip, save_bytes as save  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TORCH = os.path.join(ROOT, "tests", "fuzz", "corpora", "torch")
PICKLE = os.path.join(ROOT, "tests", "fuzz", "corpora", "pickle")


def put(folder, name, data):
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(TORCH, exist_ok=True)
    os.makedirs(PICKLE, exist_ok=True)
    torch.manual_seed(1)
    base = torch.arange(24, dtype=torch.float32)
    objs = {
        "state_dict": torch.nn.Sequential(torch.nn.Linear(2, 3),
                                          torch.nn.BatchNorm1d(3)).state_dict(),
        "views": {"a": base[2:8], "t": base[:12].view(3, 4).t(), "s": base.view(4, 6)[::2, 1::2],
                  "e": torch.ones(2, 1).expand(2, 3)},
        "dtypes": {str(d): torch.zeros(2, dtype=d) for d in (
            torch.float16, torch.bfloat16, torch.float64, torch.int8, torch.int16, torch.int32,
            torch.int64, torch.uint8, torch.bool, torch.complex64, torch.complex128)},
        "checkpoint": {"epoch": 2, "model": {"w": torch.ones(2, 2)}, "lr": 0.5, "tag": "x",
                       "opt": {"state": {0: {"m": torch.zeros(2)}}, "groups": [{"params": [0]}]}},
        "parameter": {"p": torch.nn.Parameter(torch.ones(3))},
        "scalar": torch.tensor(2.0),
        "tied": (lambda t: {"a": t, "b": t})(torch.ones(2)),
        "empty": {"e": torch.zeros(0, 2)},
    }
    for name, obj in objs.items():
        z, leg = save(obj), save(obj, legacy=True)
        put(TORCH, f"{name}.pt", z)
        put(TORCH, f"{name}_legacy.pt", leg)
        pkl = zipfile.ZipFile(io.BytesIO(z)).read("archive/data.pkl")
        put(PICKLE, f"{name}.pkl", pkl)
        for frac in (3, 2):
            put(TORCH, f"{name}_cut{frac}.pt", z[:len(z) * (frac - 1) // frac])
            put(TORCH, f"{name}_legacy_cut{frac}.pt", leg[:len(leg) * (frac - 1) // frac])
        put(PICKLE, f"{name}_cut.pkl", pkl[:len(pkl) // 2])

    parts = {k: zipfile.ZipFile(io.BytesIO(save(objs["views"]))).read(k)
             for k in zipfile.ZipFile(io.BytesIO(save(objs["views"]))).namelist()}
    pkl = parts["archive/data.pkl"]
    put(TORCH, "short_storage.pt", rezip(dict(parts, **{"archive/data/0": b"\0" * 8})))
    put(TORCH, "no_storage.pt", rezip({k: v for k, v in parts.items() if k != "archive/data/0"}))
    past = pkl.replace(b"QK\x02", b"QK\xf0", 1)
    huge = pkl.replace(b"K\x18t", b"J\xff\xff\xff\x7ft", 1)
    put(TORCH, "offset_past.pt", rezip(dict(parts, **{"archive/data.pkl": past})))
    put(TORCH, "huge_numel.pt", rezip(dict(parts, **{"archive/data.pkl": huge})))
    put(TORCH, "bad_version.pt", rezip(dict(parts, **{"archive/version": b"99\n"})))
    put(TORCH, "big_endian.pt", rezip(dict(parts, **{"archive/byteorder": b"big"})))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in parts.items():
            z.writestr(k, v)
    put(TORCH, "deflated.pt", buf.getvalue())

    evil = [
        b"\x80\x02cposix\nsystem\nX\x04\x00\x00\x00trueR.",
        b"\x80\x02c__builtin__\neval\nX\x01\x00\x00\x001\x85R.",
        b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R.",
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(ctorch\nload\nNtR.",
    ]
    for i, e in enumerate(evil):
        put(PICKLE, f"evil{i}.pkl", e)
        put(TORCH, f"evil{i}.pt", rezip({"archive/data.pkl": e, "archive/version": b"3\n"}))
    broken = {
        "cycle.pkl": b"]q\x00h\x00a.",
        "dict_cycle.pkl": b"}q\x00X\x01\x00\x00\x00ah\x00s.",
        "memo_unset.pkl": b"h\x09.",
        "memo_huge.pkl": b"Nr\xff\xff\xff\x00.",
        "long_len.pkl": b"X\xff\xff\xff\xff.",
        "long4.pkl": b"\x8b\x00\x00\x00\x80.",
        "frame.pkl": (b"\x80\x05\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x01a\x94"
                      b"\x8e\x01\x00\x00\x00\x00\x00\x00\x00b\x86."),
        "marks.pkl": b"(" * 64 + b"t" * 63 + b".",
        "setitems_odd.pkl": b"}(K\x01u.",
        "build_state_self.pkl": b"ccollections\nOrderedDict\n)Rq\x00h\x00b.",
        "pid_wrong.pkl": b"ctorch._utils\n_rebuild_tensor_v2\n(K\x01QK\x00)\x29\x89NtR.",
        "text_ops.pkl": b"(I01\nI42\nF1.5\nL7L\ntp0\ng0\nl.",
    }
    for name, data in broken.items():
        put(PICKLE, name, data)


def whole_models():
    import whole_model  # noqa: PLC0415  (its classes pickle as whole_model.<Class>)
    import tempfile  # noqa: PLC0415
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("weight_norm", "norm_hooks", "transformer", "vit", "attrs", "params",
                     "quantized_dynamic", "lazy", "state_dict_hook"):
            for legacy in (False, True):
                data = open(whole_model.family(tmp, name, legacy), "rb").read()
                tag = f"whole_{name}{'_legacy' if legacy else ''}"
                put(TORCH, f"{tag}.pt", data)
                put(TORCH, f"{tag}_cut2.pt", data[:len(data) // 2])
                if not legacy:
                    zf = zipfile.ZipFile(io.BytesIO(data))
                    pkl = zf.read(next(n for n in zf.namelist() if n.endswith("/data.pkl")))
                    put(PICKLE, f"{tag}.pkl", pkl)
                    put(PICKLE, f"{tag}_cut.pkl", pkl[:len(pkl) // 2])
        import hostile  # noqa: PLC0415  (item 15: quantized and sparse tensors)
        for legacy in (False, True):
            data = open(hostile.torch_unreadable(tmp, legacy), "rb").read()
            tag = f"unreadable{'_legacy' if legacy else ''}"
            put(TORCH, f"{tag}.pt", data)
            put(TORCH, f"{tag}_cut2.pt", data[:len(data) // 2])
            if not legacy:
                pkl = zipfile.ZipFile(io.BytesIO(data)).read("unreadable/data.pkl")
                put(PICKLE, f"{tag}.pkl", pkl)
    gadgets = {
        "getattr_dunder.pkl": (b"\x80\x02c__builtin__\ngetattr\nctorch.nn.modules.linear\n"
                               b"Linear\nX\x08\x00\x00\x00__init__\x86R."),
        "getattr_build.pkl": (b"\x80\x02c__builtin__\ngetattr\nctorch.nn\nfunctional\n"
                              b"X\x05\x00\x00\x00torch\x86R}b."),
        "getattr_call.pkl": (b"\x80\x02c__builtin__\ngetattr\nctorch.nn\nfunctional\n"
                             b"X\x05\x00\x00\x00torch\x86R)R."),
        "partial_in_dict.pkl": (b"\x80\x02}X\x03\x00\x00\x00actcfunctools\npartial\n"
                                b"ctorch.nn.modules.batchnorm\nBatchNorm2d\n\x85Rs."),
    }
    for name, data in gadgets.items():
        put(PICKLE, name, data)
        put(TORCH, name.replace(".pkl", ".pt"),
            rezip({"archive/data.pkl": data, "archive/version": b"3\n"}))


if __name__ == "__main__":
    main()
    whole_models()
