#!/usr/bin/python3
"""Keras 2 .h5 files that crash or hang libhdf5 1.10.8 itself, of the kinds
issue 18 item 12 names (run with /usr/bin/python3):

    /usr/bin/python3 samples/gen/libhdf5_kinds.py tests/fuzz/known-libhdf5

Each starts from a small h5py-written Keras 2 weights file (layer 'dense')
and changes a few bytes of its metadata; tests/fuzz/known-libhdf5/README.md
says what each does to libhdf5, and tests/interop/test_hdf5_sandbox.py
checks graft's one-line refusal of each.
"""
import io
import os
import re
import struct
import sys

import h5py
import numpy as np


def _keras(shape=(3, 4), chunks=None, write_last=False):
    """A Keras 2 weights file with one layer 'dense' and its kernel; bytes."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array([b"dense"])
        d = g.create_group("dense")
        d.attrs["weight_names"] = np.array([b"dense/kernel:0"])
        if chunks:
            ds = d.create_dataset("dense/kernel:0", shape=shape, dtype="<f4", chunks=chunks,
                                  compression="gzip")
            if write_last:
                ds[shape[0] - chunks[0]:] = 0
        else:
            d["dense/kernel:0"] = np.arange(np.prod(shape), dtype="<f4").reshape(shape)
        addr = h5py.h5o.get_info(d.id).addr
    return bytearray(buf.getvalue()), addr


def _attr_message(data, name):
    """Offset of the object header message (8-byte header) holding the
    version-1 attribute `name`."""
    at = data.index(name.encode() + b"\0")
    hdr = at - 8 - 8  # attribute body (version, reserved, 3 sizes) then the message header
    assert struct.unpack_from("<H", data, hdr)[0] == 0x000C, "not an attribute message"
    return hdr


def attr_shared_self(out):
    """H5O__msg_iterate_real via H5Aexists: the layer's 'weight_names'
    attribute message is flagged shared, its body a shared-message record
    naming the layer's own object header.  H5Aexists decodes every attribute
    message; the shared one is read from that header, whose first attribute
    message is itself: H5O_msg_read_oh -> H5O_shared_decode recurses until
    the stack overflows (SIGSEGV)."""
    data, layer_addr = _keras()
    hdr = _attr_message(data, "weight_names")
    data[hdr + 4] |= 0x02  # message flags: shared
    data[hdr + 8:hdr + 18] = bytes([3, 2]) + struct.pack("<Q", layer_addr)  # v3, committed
    return _write(out, "libhdf5-H5O__msg_iterate_real-via-H5Aexists.h5", data)


def heap_free_list_loop(out):
    """A timeout in H5C_protect: the local heap of group '/model_weights'
    has a free block whose 'next' offset is its own.  Looking 'dense' up
    loads the heap through H5C_protect, whose deserialize callback walks the
    free list forever, allocating a node per step (unbounded memory and CPU
    without limits; an allocation failure under graft's RLIMIT_AS)."""
    data, _ = _keras()
    heaps = [m.start() for m in re.finditer(b"HEAP", data)]
    heap = heaps[1]  # the root group's heap comes first, then /model_weights'
    size, free, addr = struct.unpack_from("<QQQ", data, heap + 8)
    assert free < size, "the heap has no free block"
    struct.pack_into("<Q", data, addr + free, free)
    return _write(out, "libhdf5-H5C_protect-heap-free-list-loop.h5", data)


def forged_chunk_size(out):
    """A CPU spin while reading: a gzip-chunked kernel of 2^36 float32
    (256 GiB) with 64-element chunks, of which only the last was written,
    and the chunk B-tree's record claiming 4 GiB stored for it.  The stored
    size makes the declared size look plausible; reading then fills 2^30
    never-written chunks one by one, for hours."""
    data, _ = _keras(shape=(1 << 36,), chunks=(64,), write_last=True)
    for m in re.finditer(b"TREE", data):
        if data[m.start() + 4] == 1:  # a raw-data chunk node: its first key's size
            struct.pack_into("<I", data, m.start() + 24, 0xFFFFFFFF)
    return _write(out, "libhdf5-H5D-fill-spin-forged-chunk-size.h5", data)


def _write(out, name, data):
    path = os.path.join(out, name)
    with open(path, "wb") as f:
        f.write(bytes(data))
    return path


KINDS = [attr_shared_self, heap_free_list_loop, forged_chunk_size]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    for k in KINDS:
        print(k(out))


if __name__ == "__main__":
    main()
