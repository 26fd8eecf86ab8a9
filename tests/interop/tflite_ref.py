"""A NumPy TFLite interpreter for float32 models, for the tests (no TFLite
runtime can be installed here).

It reads the model with tflite_fb.Reader (written from schema.fbs, not from
graft's C code) and runs the main subgraph's operators in order, each as
tensorflow/lite/kernels/internal/reference/ defines it (float paths):
- CONV_2D (3), conv.h Conv: out[b, y, x, oc] = act(sum over fy, fx, ic of
  in[b, y*sh - pad_h + dh*fy, x*sw - pad_w + dw*fx, ic] *
  filter[oc, fy, fx, ic] + bias[oc]), points outside the image skipped;
- DEPTHWISE_CONV_2D (4), depthwiseconv_float.h: oc = m + ic * M,
  filter[0, fy, fx, oc], the same windows;
- FULLY_CONNECTED (9), fully_connected.h: the input read as [batches,
  accum_depth], out[b, o] = act(sum_d in[b, d] * weights[o, d] + bias[o]);
- ADD (0), add.h: broadcast sum, then the fused activation;
- MEAN (40), reduce.h Mean: the sum over the axes divided by their size;
- PAD (34), pad.h: zeros before/after per the int32 [rank, 2] paddings;
- RESHAPE (22): the shape of input 1;
- TRANSPOSE_CONV (67), transpose_conv.h (inputs output_shape, weights,
  input, bias; VALID only, where the padding is 0): out[b, iy*sh + fy,
  ix*sw + fx, oc] += in[b, iy, ix, ic] * filter[oc, fy, fx, ic], then + bias.
Padding SAME / VALID (padding.h ComputePaddingHeightWidth): out = ceil(in /
stride) or (in + stride - effective_filter) / stride; pad = total // 2 on
top/left (the odd one falls bottom/right, outside the reads).  Fused
activations (ActivationFunctionType, kernel_util.cc CalculateActivationRange):
NONE, RELU [0, inf), RELU_N1_TO_1 [-1, 1], RELU6 [0, 6].
Options field ids from schema.fbs: Conv2DOptions padding 0, stride_w 1,
stride_h 2, fused_activation_function 3, dilation_w 4, dilation_h 5;
DepthwiseConv2DOptions padding 0, stride_w 1, stride_h 2, depth_multiplier 3,
fused 4, dilation_w 5, dilation_h 6; FullyConnectedOptions fused 0,
weights_format 1, keep_num_dims 2; AddOptions fused 0; ReducerOptions
keep_dims 0; TransposeConvOptions padding 0, stride_w 1, stride_h 2, fused 3.
"""
import numpy as np

import tflite_fb as fb

ADD, CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, RESHAPE, PAD, MEAN, TRANSPOSE_CONV = 0, 3, 4, 9, 22, 34, 40, 67
NP = {"float32": np.float32, "int32": np.int32, "int64": np.int64, "int8": np.int8, "uint8": np.uint8}
ACT = {0: (-np.inf, np.inf), 1: (0.0, np.inf), 2: (-1.0, 1.0), 3: (0.0, 6.0)}


def read_graph(data):
    """The main subgraph: tensors (shape, type, constant value or None),
    operators (code, inputs, outputs, options table or None), inputs, outputs."""
    r = fb.Reader(data)
    root = r.table(r.deref(0))
    codes = [max(r.scalar(c, 0, "b"), r.scalar(c, 3, "i")) for c in r.tables(root, 1)]
    buffers = [r.vector(bt, 0, 1) for bt in r.tables(root, 4)]
    sg = r.tables(root, 2)[0]
    tensors = []
    for tt in r.tables(sg, 0):
        p, n = r.vector(tt, 0, 4)
        shape = [r.u("i", p + 4 * i) for i in range(n)]
        typ = fb.TYPES[r.scalar(tt, 1, "b")]
        bp, bn = buffers[r.scalar(tt, 2, "I")]
        value = None
        if bn and typ in NP:
            value = np.frombuffer(data, NP[typ], int(np.prod(shape)), bp).reshape(shape).copy()
        tensors.append({"name": r.string(tt, 3).decode(), "shape": shape, "type": typ, "value": value})

    def ints(t, fid):
        p, n = r.vector(t, fid, 4)
        return [r.u("i", p + 4 * i) for i in range(n)]

    ops = []
    for ot in r.tables(sg, 3):
        ops.append({"code": codes[r.scalar(ot, 0, "I")], "inputs": ints(ot, 1), "outputs": ints(ot, 2),
                    "options": r.sub(ot, 4)})
    return {"reader": r, "tensors": tensors, "ops": ops, "inputs": ints(sg, 1), "outputs": ints(sg, 2)}


def out_size(padding, size, k, stride, dil):
    eff = (k - 1) * dil + 1
    return (size + stride - 1) // stride if padding == 0 else (size + stride - eff) // stride


def windows(x, kh, kw, sh, sw, dh, dw, padding):
    """Yield (fy, fx, patch): patch[b, y, x, c] = x at the tap's input point, 0 outside."""
    _, h, w, _ = x.shape
    oh, ow = out_size(padding, h, kh, sh, dh), out_size(padding, w, kw, sw, dw)
    ph = max((oh - 1) * sh + (kh - 1) * dh + 1 - h, 0) // 2
    pw = max((ow - 1) * sw + (kw - 1) * dw + 1 - w, 0) // 2
    big = (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1
    xp = np.zeros((x.shape[0], max(big[0], ph + h), max(big[1], pw + w), x.shape[3]), np.float32)
    xp[:, ph:ph + h, pw:pw + w] = x
    for fy in range(kh):
        for fx in range(kw):
            yield fy, fx, xp[:, fy * dh:fy * dh + (oh - 1) * sh + 1:sh, fx * dw:fx * dw + (ow - 1) * sw + 1:sw]


def run(data, x):
    """Run the model on x (NHWC float32); the first output."""
    g = read_graph(data)
    r = g["reader"]
    val = {i: t["value"] for i, t in enumerate(g["tensors"]) if t["value"] is not None}
    val[g["inputs"][0]] = np.asarray(x, np.float32)

    def opt(o, fid, fmt, default=0):
        return default if o["options"] is None else r.scalar(o["options"], fid, fmt, default)

    for o in g["ops"]:
        ins = [val[i] if i >= 0 else None for i in o["inputs"]]
        code = o["code"]
        if code in (CONV_2D, DEPTHWISE_CONV_2D):
            dwc = code == DEPTHWISE_CONV_2D
            a, f = ins[0], ins[1]
            pad, sw, sh = opt(o, 0, "b"), opt(o, 1, "i"), opt(o, 2, "i")
            act = opt(o, 4 if dwc else 3, "b")
            dw_, dh_ = opt(o, 5 if dwc else 4, "i", 1), opt(o, 6 if dwc else 5, "i", 1)
            kh, kw = f.shape[1], f.shape[2]
            if dwc:
                mult = f.shape[3] // a.shape[3]
                a = np.repeat(a, mult, axis=3)  # channel oc = m + ic * M reads input ic
            else:
                assert f.shape[3] == a.shape[3], "grouped CONV_2D is not used here"
            out = None
            for fy, fx, patch in windows(a, kh, kw, sh, sw, dh_, dw_, pad):
                term = patch * f[0, fy, fx] if dwc else np.einsum("byxc,oc->byxo", patch, f[:, fy, fx, :])
                out = term if out is None else out + term
            if len(ins) > 2 and ins[2] is not None:
                out = out + ins[2]
        elif code == FULLY_CONNECTED:
            assert opt(o, 1, "b") == 0, "weights_format DEFAULT only"
            w = ins[1]
            out = ins[0].reshape(-1, w.shape[1]) @ w.T
            if len(ins) > 2 and ins[2] is not None:
                out = out + ins[2]
            act = opt(o, 0, "b")
        elif code == ADD:
            out, act = ins[0] + ins[1], opt(o, 0, "b")
        elif code == MEAN:
            axes = tuple(int(a) % ins[0].ndim for a in np.atleast_1d(ins[1]))
            out, act = ins[0].sum(axis=axes, keepdims=bool(opt(o, 0, "b"))) / np.prod(
                [ins[0].shape[a] for a in axes]), 0
        elif code == RESHAPE:
            out, act = ins[0].reshape([int(d) for d in ins[1]]), 0
        elif code == TRANSPOSE_CONV:
            assert opt(o, 0, "b") == 1, "VALID padding only"
            sw, sh, act = opt(o, 1, "i"), opt(o, 2, "i"), opt(o, 3, "b")
            f, a = ins[1], ins[2]
            out = np.zeros([int(d) for d in ins[0]], np.float32)
            h, w = a.shape[1], a.shape[2]
            for fy in range(f.shape[1]):
                for fx in range(f.shape[2]):
                    out[:, fy:fy + (h - 1) * sh + 1:sh, fx:fx + (w - 1) * sw + 1:sw] += np.einsum(
                        "byxc,oc->byxo", a, f[:, fy, fx, :])
            if len(ins) > 3 and ins[3] is not None:
                out = out + ins[3]
        elif code == PAD:
            out, act = np.pad(ins[0], [tuple(p) for p in ins[1]]), 0
        else:
            raise AssertionError(f"builtin operator {code} is not implemented here")
        lo, hi = ACT[act]
        val[o["outputs"][0]] = np.clip(out, lo, hi).astype(np.float32)
    return val[g["outputs"][0]]
