"""graft.convert: a model into another container format (`graft convert`)."""
import ctypes
from dataclasses import dataclass

from ._lib import ConvertOptions, ConvertResult, Ctx, c_char_p, dec, enc, lib
from ._plan import _Progress


@dataclass(frozen=True)
class Converted:
    """What graft.convert wrote."""
    output: str        # the file written (the index of a sharded set)
    format: str        # the target format's name
    tensors: int       # written
    ignored: int       # left out by the rules' source ignores
    quantized: int     # written quantized (GGUF)
    dequantized: int   # read from quantized blocks as float32
    bytes: int         # tensor bytes written
    dropped: int       # the source's non-tensor values, not written
    dropped_summary: str  # "2 ints, 1 string"; "" when none


def _meta_items(meta):
    if meta is None:
        return []
    if isinstance(meta, dict):
        return [f"{k}={v}" for k, v in meta.items()]
    return list(meta)


def convert(source, output, to=None, rules=None, *, select=None, source_format=None, meta=None,
            quantize=None, dequantize=False, shard_size=0, strict=False, manifest=None,
            progress=None, sync=True):
    """Write every tensor of `source`, renamed and transformed by the source
    side of `rules`, into a new file of format `to` (default: from output's
    extension): safetensors (sharded at shard_size bytes), npz, npy, a PyTorch
    state dict, GGUF (meta: {"general.architecture": "llama", "KEY:TYPE": v}
    or ["KEY[:TYPE]=VALUE"], quantize "q8_0"/"q4_0").  progress(done, total,
    bytes) after each tensor; convert cannot be stopped, so an exception it
    raises propagates once the file is written.  sync=False: no fsync before
    the output is renamed into place (see graft_ctx_set_sync)."""
    items = [enc(m) for m in _meta_items(meta)]
    arr = (c_char_p * max(1, len(items)))(*items)
    prog = _Progress(progress)
    opts = ConvertOptions(version=1, to=enc(to), rules_path=enc(rules), select=enc(select),
                          source_format=enc(source_format), meta=arr, nmeta=len(items),
                          quantize=enc(quantize), dequantize=bool(dequantize),
                          shard_size=int(shard_size), strict=bool(strict),
                          manifest=enc(manifest), progress=prog.cfn)
    res = ConvertResult()
    with Ctx() as ctx:
        lib.graft_ctx_set_sync(ctx.p, int(bool(sync)))
        ctx.check(lib.graft_convert(enc(source), enc(output), ctypes.byref(opts),
                                    ctypes.byref(res), ctx.p))
    try:
        out = Converted(dec(ctypes.string_at(res.out_path)) if res.out_path else str(output),
                        dec(res.format), res.tensors, res.ignored, res.quantized,
                        res.dequantized, res.bytes, res.dropped.count,
                        dec(res.dropped.summary))
    finally:
        lib.graft_convert_result_free(ctypes.byref(res))
    if prog.error is not None:
        raise prog.error
    return out
