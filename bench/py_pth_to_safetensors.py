#!/usr/bin/python3
"""The Python way to turn a .pth into safetensors: torch.load (which runs
the pickle), then write every tensor.  Uses safetensors.torch.save_file when
the safetensors package is installed, else the same layout written here
(u64 header length, compact JSON header padded to 8, tensors back to back).
usage: py_pth_to_safetensors.py IN.pth OUT.safetensors"""
import json
import struct
import sys

import torch

DT = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
      torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
      torch.uint8: "U8", torch.bool: "BOOL"}


def main():
    sd = torch.load(sys.argv[1], map_location="cpu")
    sd = {k: v.contiguous() for k, v in sd.items() if isinstance(v, torch.Tensor)}
    try:
        from safetensors.torch import save_file
    except ImportError:
        save_file = None
    if save_file:
        save_file(sd, sys.argv[2])
        return
    header, off = {}, 0
    for k, v in sd.items():
        n = v.numel() * v.element_size()
        header[k] = {"dtype": DT[v.dtype], "shape": list(v.shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(sys.argv[2], "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for v in sd.values():
            f.write(v.view(torch.uint8).numpy().tobytes() if v.dtype == torch.bfloat16 else v.numpy().tobytes())


if __name__ == "__main__":
    main()
