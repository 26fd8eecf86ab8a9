"""An independent TFLite FlatBuffer reader and a small builder, for the tests.

Written from tensorflow/compiler/mlir/lite/schema/schema.fbs (schema v3) and
the FlatBuffers wire format (flatbuffers.dev, "FlatBuffers internals"), not
from graft's C code.  The reader also checks what the FlatBuffers verifier
checks for the tables it walks: every reference inside the file, scalars and
vector lengths aligned; on request Buffer.data aligned to 16 (force_align).
"""
import hashlib
import struct

# schema.fbs TensorType, in order
TYPES = ["float32", "float16", "int32", "uint8", "int64", "string", "bool", "int16",
         "complex64", "int8", "float64", "complex128", "uint64", "resource", "variant",
         "uint32", "uint16", "int4", "bfloat16"]
ESIZE = {"float32": 4, "float16": 2, "int32": 4, "uint8": 1, "int64": 8, "bool": 1,
         "int16": 2, "complex64": 8, "int8": 1, "float64": 8, "complex128": 16,
         "uint64": 8, "uint32": 4, "uint16": 2, "bfloat16": 2}
TYPE_ID = {n: i for i, n in enumerate(TYPES)}


class Bad(Exception):
    pass


class Reader:
    def __init__(self, data, check_align=True):
        self.d = bytes(data)
        self.align = check_align

    def need(self, pos, n, al=1):
        if pos < 0 or pos + n > len(self.d):
            raise Bad(f"read of {n} at {pos} outside {len(self.d)}")
        if self.align and al > 1 and pos % al:
            raise Bad(f"misaligned {al}-byte item at {pos}")

    def u(self, fmt, pos):
        n = struct.calcsize(fmt)
        self.need(pos, n, n)
        return struct.unpack_from("<" + fmt, self.d, pos)[0]

    def deref(self, pos):
        off = self.u("I", pos)
        if off == 0:
            raise Bad("zero offset")
        return pos + off

    def table(self, pos):
        vt = pos - self.u("i", pos)
        vtlen, tlen = self.u("H", vt), self.u("H", vt + 2)
        self.need(vt, vtlen, 2)
        self.need(pos, tlen)
        return (pos, vt, vtlen)

    def field(self, t, fid):
        pos, vt, vtlen = t
        slot = 4 + 2 * fid
        if slot + 2 > vtlen:
            return None
        off = self.u("H", vt + slot)
        return pos + off if off else None

    def scalar(self, t, fid, fmt, default=0):
        p = self.field(t, fid)
        return default if p is None else self.u(fmt, p)

    def sub(self, t, fid):
        p = self.field(t, fid)
        return None if p is None else self.table(self.deref(p))

    def vector(self, t, fid, esize, data_align=None):
        """(position of element 0, length), or (None, 0) when absent."""
        p = self.field(t, fid)
        if p is None:
            return None, 0
        v = self.deref(p)
        n = self.u("I", v)
        self.need(v + 4, n * esize, data_align or min(esize, 8))
        return v + 4, n

    def tables(self, t, fid):
        p, n = self.vector(t, fid, 4)
        return [self.table(self.deref(p + 4 * i)) for i in range(n)]

    def string(self, t, fid):
        p, n = self.vector(t, fid, 1)
        return b"" if p is None else self.d[p:p + n]


def n_nonzero(r, bt):
    p = r.field(bt, 0)
    return p is not None and r.u("I", r.deref(p)) > 0


def read_model(data, check_align=True, data_align=None):
    """{'buffers': [(pos, size, external)], 'tensors': [dict per tensor of every subgraph]}."""
    r = Reader(data, check_align)
    if data[4:8] != b"TFL3":
        raise Bad("no TFL3 identifier")
    root = r.table(r.deref(0))
    if r.scalar(root, 0, "I") != 3:
        raise Bad("version")
    buffers = []
    for bt in r.tables(root, 4):
        p, n = r.vector(bt, 0, 1, data_align=data_align if n_nonzero(r, bt) else None)
        off, size = r.scalar(bt, 1, "Q"), r.scalar(bt, 2, "Q")
        if n:
            buffers.append((p, n, False))
        elif off > 1:
            if off + size > len(data):
                raise Bad("external buffer past the end")
            buffers.append((off, size, True))
        else:
            buffers.append((0, 0, False))
    tensors = []
    for si, sg in enumerate(r.tables(root, 2)):
        sgname = r.string(sg, 4).decode()
        for ti, tt in enumerate(r.tables(sg, 0)):
            bi = r.scalar(tt, 2, "I")
            p, n = r.vector(tt, 0, 4)
            shape = [r.u("i", p + 4 * i) for i in range(n)]
            q = r.sub(tt, 4)
            quant = None
            if q is not None:
                sp, sn = r.vector(q, 2, 4)
                zp, zn = r.vector(q, 3, 8)
                if sn:
                    quant = {"scale": [r.u("f", sp + 4 * i) for i in range(sn)],
                             "zero_point": [r.u("q", zp + 8 * i) for i in range(zn)],
                             "axis": r.scalar(q, 6, "i")}
            tensors.append({"subgraph": si, "sgname": sgname, "index": ti,
                            "name": r.string(tt, 3).decode(), "type": TYPES[r.scalar(tt, 1, "b")],
                            "shape": shape, "buffer": bi, "quant": quant,
                            "buffer_field": r.field(tt, 2)})
    return {"buffers": buffers, "tensors": tensors, "buffers_field": r.field(root, 4)}


def listing(data):
    """What `graft ls --json` must print: constant tensors, named as graft's
    documentation says (bare; '<subgraph>/<name>'; then '#<index>')."""
    m = read_model(data)
    seen, out = set(), []
    for t in m["tensors"]:
        pos, size, _ = m["buffers"][t["buffer"]]
        if t["buffer"] == 0 or size == 0:
            continue
        name = t["name"] or f"tensor{t['index']}"
        if name in seen:
            name = f"{t['sgname'] or 'subgraph%d' % t['subgraph']}/{name}"
            if name in seen:
                name = f"{name}#{t['index']}"
        seen.add(name)
        raw = data[pos:pos + size]
        e = {"name": name, "dtype": t["type"], "shape": t["shape"],
             "sha256": hashlib.sha256(raw).hexdigest()}
        if t["quant"]:
            e["quant"] = t["quant"]
        e["_range"] = (pos, size)
        out.append(e)
    return out


# ---- builder: tables laid out front to back (children after parents) ----

class T:
    """A table: {field id: (struct fmt, value)} or {id: T/V/S}."""
    def __init__(self, **fields):
        self.f = {int(k[1:]): v for k, v in fields.items()}


class V:
    """A vector of scalars (fmt) or of tables (fmt None)."""
    def __init__(self, fmt, items, align=None):
        self.fmt, self.items, self.align = fmt, items, align


class S:
    def __init__(self, s):
        self.s = s.encode() if isinstance(s, str) else s


class Builder:
    def __init__(self):
        self.b = bytearray(8)
        self.b[4:8] = b"TFL3"
        self.patches = {}

    def pad(self, al, rem=0):
        while len(self.b) % al != rem % al:
            self.b.append(0)

    def put(self, fmt, v):
        self.b += struct.pack("<" + fmt, v)

    def ref(self, at, obj):
        pos = self.obj(obj)
        struct.pack_into("<I", self.b, at, pos - at)

    def obj(self, o):
        if isinstance(o, S):
            self.pad(4)
            pos = len(self.b)
            self.put("I", len(o.s))
            self.b += o.s + b"\0"
            return pos
        if isinstance(o, V):
            if o.fmt is None:
                self.pad(4)
                pos = len(self.b)
                self.put("I", len(o.items))
                slots = []
                for _ in o.items:
                    slots.append(len(self.b))
                    self.put("I", 0)
                for at, it in zip(slots, o.items):
                    self.ref(at, it)
                return pos
            al = max(4, o.align or struct.calcsize(o.fmt))
            self.pad(al, al - 4)
            pos = len(self.b)
            self.put("I", len(o.items))
            if isinstance(o.items, (bytes, bytearray)):
                self.b += o.items
            else:
                for it in o.items:
                    self.put(o.fmt, it)
            return pos
        # a table: vtable first, then the table 8-aligned
        ids = sorted(o.f)
        layout, off = {}, 4
        for i in ids:
            v = o.f[i]
            size = 4 if not isinstance(v, tuple) else struct.calcsize(v[0])
            off = (off + size - 1) // size * size
            layout[i] = off
            off += size
        tlen = off
        nfields = (max(ids) + 1) if ids else 0
        vt = bytearray(struct.pack("<HH", 4 + 2 * nfields, tlen))
        for i in range(nfields):
            vt += struct.pack("<H", layout.get(i, 0))
        self.pad(2)
        vtpos = len(self.b)
        self.b += vt
        self.pad(8)
        pos = len(self.b)
        self.b += bytes(tlen)
        struct.pack_into("<i", self.b, pos, pos - vtpos)
        refs = []
        for i in ids:
            v = o.f[i]
            if isinstance(v, tuple):
                struct.pack_into("<" + v[0], self.b, pos + layout[i], v[1])
            else:
                refs.append((pos + layout[i], v))
        for at, v in refs:
            self.ref(at, v)
        return pos

    def finish(self, root):
        self.ref(0, root)
        return bytes(self.b)


def build(subgraphs, buffers, external=(), opcodes=(3,)):
    """A model: subgraphs = [(name or None, [tensor dicts])] or (name,
    tensors, operators, inputs, outputs), a tensor dict has name, type,
    shape, buffer, optional quant {scale, zero_point, axis}; an operator dict
    opcode (index into `opcodes`, BuiltinOperator codes), inputs, outputs,
    optional options_type (BuiltinOptions union index) and options {field id:
    (struct fmt, value)}; buffers = [bytes] (buffer 0 should be b"");
    indices in `external` are stored after the FlatBuffer with offset/size."""
    bufs = []
    for i, data in enumerate(buffers):
        if i in external:
            bufs.append(T(_1=("Q", 0), _2=("Q", len(data))))
        elif data:
            bufs.append(T(_0=V("B", bytes(data), align=16)))
        else:
            bufs.append(T())
    sgs = []
    for sg in subgraphs:
        name, tensors, ops, ins, outs = (tuple(sg) + ((), (), ()))[:5]
        ts = []
        for t in tensors:
            f = {"_0": V("i", t["shape"]), "_1": ("b", TYPE_ID[t["type"]]),
                 "_2": ("I", t["buffer"]), "_3": S(t["name"])}
            if t.get("quant"):
                q = t["quant"]
                f["_4"] = T(_2=V("f", q["scale"]), _3=V("q", q["zero_point"]),
                            _6=("i", q.get("axis", 0)))
            ts.append(T(**f))
        sf = {"_0": V(None, ts), "_1": V("i", list(ins)), "_2": V("i", list(outs))}
        if ops:
            sf["_3"] = V(None, [operator(o) for o in ops])
        if name is not None:
            sf["_4"] = S(name)
        sgs.append(T(**sf))
    codes = [T(_0=("b", min(c, 127)), _2=("i", 1), _3=("i", c)) for c in opcodes]
    model = T(_0=("I", 3), _1=V(None, codes), _2=V(None, sgs),
              _3=S("graft test model"), _4=V(None, bufs))
    b = Builder()
    data = bytearray(b.finish(model))
    if external:
        r = Reader(bytes(data))
        root = r.table(r.deref(0))
        for i, bt in enumerate(r.tables(root, 4)):
            if i not in external:
                continue
            while len(data) % 16:
                data.append(0)
            struct.pack_into("<Q", data, r.field(bt, 1), len(data))
            data += buffers[i]
    return bytes(data)


def operator(o):
    """An Operator table: opcode_index 0, inputs 1, outputs 2, builtin_options
    (union: type 3, table 4)."""
    f = {"_0": ("I", o["opcode"]), "_1": V("i", o["inputs"]), "_2": V("i", o["outputs"])}
    if o.get("options_type"):
        opt = T()
        opt.f = dict(o.get("options", {}))
        f["_3"] = ("B", o["options_type"])
        f["_4"] = opt
    return T(**f)
