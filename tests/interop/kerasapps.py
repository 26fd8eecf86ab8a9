"""Keras skeletons with the Keras Applications layer names and classes
(keras-team/keras keras/src/applications/*.py), computing what the torchvision
model computes: where Keras Applications differ in topology (ResNet50 strides
the 1x1 convolution, TF 'same' padding is asymmetric at stride 2) the layer is
written the torchvision way, with an explicit symmetric ZeroPadding2D.  Weight
names, classes and layouts are Keras'.  Random weights: these are skeletons."""
from fwdlib import KerasNet

RESNET_BLOCKS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}


def resnet(depth, hw=64, classes=10, bias=None):
    """ResNet: conv1_conv/conv1_bn, conv<stage>_block<b>_<i>_conv/_bn (0: the
    projection shortcut), predictions.  bias: convolution biases as Keras
    Applications' ResNet50 has them (default for the bottleneck depths)."""
    bottleneck = depth >= 50
    bias = bottleneck if bias is None else bias
    k = KerasNet(f"resnet{depth}", (hw, hw, 3))
    eps = 1.001e-5
    x = k.pad(k.x, "conv1_pad", 3)
    x = k.conv(x, "conv1_conv", 64, 7, 2, bias=bias)
    x = k.act(k.bn(x, "conv1_bn", eps), "conv1_relu", "relu")
    x = k.maxpool(k.pad(x, "pool1_pad", 1), "pool1_pool", 3, 2)
    for s, (n, f) in enumerate(zip(RESNET_BLOCKS[depth], (64, 128, 256, 512))):
        for b in range(n):
            name = f"conv{s + 2}_block{b + 1}"
            stride = 2 if s and not b else 1
            out = 4 * f if bottleneck else f
            short = x
            if not b and (stride != 1 or k.ch[x] != out):
                short = k.bn(k.conv(x, name + "_0_conv", out, 1, stride, bias=bias), name + "_0_bn", eps)
            if bottleneck:
                y = k.act(k.bn(k.conv(x, name + "_1_conv", f, 1, bias=bias), name + "_1_bn", eps), name + "_1_relu", "relu")
                y = k.conv(k.pad(y, name + "_2_pad", 1), name + "_2_conv", f, 3, stride, bias=bias)
                y = k.act(k.bn(y, name + "_2_bn", eps), name + "_2_relu", "relu")
                y = k.bn(k.conv(y, name + "_3_conv", out, 1, bias=bias), name + "_3_bn", eps)
            else:
                y = k.conv(k.pad(x, name + "_1_pad", 1), name + "_1_conv", f, 3, stride, bias=bias)
                y = k.act(k.bn(y, name + "_1_bn", eps), name + "_1_relu", "relu")
                y = k.bn(k.conv(k.pad(y, name + "_2_pad", 1), name + "_2_conv", f, 3, bias=bias), name + "_2_bn", eps)
            x = k.act(k.add([short, y], name + "_add"), name + "_out", "relu")
    x = k.dense(k.gap(x, "avg_pool"), "predictions", classes)
    return k, x


MOBILENET_V2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def mobilenet_v2(hw=64, classes=10):
    """MobileNetV2 (alpha 1): Conv1/bn_Conv1, expanded_conv_*, block_<i>_expand,
    _depthwise, _project (+ _BN), Conv_1/Conv_1_bn, predictions; BatchNorm
    epsilon 1e-3 as Keras has it."""
    k = KerasNet("mobilenetv2_1.00", (hw, hw, 3))
    eps = 1e-3
    x = k.conv(k.pad(k.x, "Conv1_pad", 1), "Conv1", 32, 3, 2, bias=False)
    x = k.relu6(k.bn(x, "bn_Conv1", eps), "Conv1_relu")
    block = 0
    for t, c, n, s in MOBILENET_V2:
        for i in range(n):
            stride = s if not i else 1
            prefix = f"block_{block}_" if block else "expanded_conv_"
            inp, y = x, x
            if block:
                y = k.conv(y, prefix + "expand", t * k.ch[x], 1, bias=False)
                y = k.relu6(k.bn(y, prefix + "expand_BN", eps), prefix + "expand_relu")
            if stride == 2:
                y = k.dwconv(k.pad(y, prefix + "pad", 1), prefix + "depthwise", 3, 2)
            else:
                y = k.dwconv(y, prefix + "depthwise", 3, 1, padding="same")
            y = k.relu6(k.bn(y, prefix + "depthwise_BN", eps), prefix + "depthwise_relu")
            y = k.bn(k.conv(y, prefix + "project", c, 1, bias=False), prefix + "project_BN", eps)
            if stride == 1 and k.ch[inp] == c:
                y = k.add([inp, y], prefix + "add")
            x, block = y, block + 1
    x = k.conv(x, "Conv_1", 1280, 1, bias=False)
    x = k.relu6(k.bn(x, "Conv_1_bn", eps), "out_relu")
    x = k.dense(k.gap(x, "global_average_pooling2d"), "predictions", classes)
    return k, x


DENSENET = {121: (32, 64, [6, 12, 24, 16]), 161: (48, 96, [6, 12, 36, 24]),
            169: (32, 64, [6, 12, 32, 32]), 201: (32, 64, [6, 12, 48, 32])}


def densenet(depth, hw=64, classes=10):
    """DenseNet (keras/src/applications/densenet.py): conv1_conv/conv1_bn,
    conv<b>_block<l>_0_bn, _1_conv, _1_bn, _2_conv, pool<b>_bn/_conv, bn,
    predictions; widths as torchvision's (growth, initial features)."""
    growth, init, blocks = DENSENET[depth]
    k = KerasNet(f"densenet{depth}", (hw, hw, 3))
    eps = 1.001e-5
    x = k.conv(k.pad(k.x, "zero_padding2d", 3), "conv1_conv", init, 7, 2, bias=False)
    x = k.act(k.bn(x, "conv1_bn", eps), "conv1_relu", "relu")
    x = k.maxpool(k.pad(x, "zero_padding2d_1", 1), "pool1", 3, 2)
    for b, n in enumerate(blocks):
        for i in range(n):
            name = f"conv{b + 2}_block{i + 1}"
            y = k.act(k.bn(x, name + "_0_bn", eps), name + "_0_relu", "relu")
            y = k.act(k.bn(k.conv(y, name + "_1_conv", 4 * growth, 1, bias=False), name + "_1_bn", eps),
                      name + "_1_relu", "relu")
            y = k.conv(y, name + "_2_conv", growth, 3, padding="same", bias=False)
            x = k.concat([x, y], name + "_concat")
        if b < 3:
            name = f"pool{b + 2}"
            y = k.act(k.bn(x, name + "_bn", eps), name + "_relu", "relu")
            x = k.avgpool(k.conv(y, name + "_conv", k.ch[x] // 2, 1, bias=False), name + "_pool", 2, 2)
    x = k.act(k.bn(x, "bn", eps), "relu", "relu")
    x = k.dense(k.gap(x, "avg_pool"), "predictions", classes)
    return k, x


EFFICIENTNET = {0: (1.0, 1.0), 1: (1.0, 1.1), 2: (1.1, 1.2), 3: (1.2, 1.4), 4: (1.4, 1.8),
                5: (1.6, 2.2), 6: (1.8, 2.6), 7: (2.0, 3.1)}
# (expand, kernel, stride, filters in, filters out, repeats): efficientnet.py DEFAULT_BLOCKS_ARGS
EFFICIENTNET_BLOCKS = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
                       (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]


def _round_filters(f, width):
    f *= width
    new = max(8, int(f + 4) // 8 * 8)
    return int(new + 8 if new < 0.9 * f else new)


def efficientnet(b, hw=64, classes=10, width=None):
    """EfficientNet B0-B7 (keras/src/applications/efficientnet.py) without the
    preprocessing layers: stem_conv/stem_bn, block<s><letter>_expand_conv,
    _expand_bn, _dwconv, _bn, _se_reduce, _se_expand, _project_conv,
    _project_bn, top_conv/top_bn, predictions; BatchNorm epsilon 1e-3.
    width: another width multiplier than B<b>'s (its depth kept)."""
    import math
    width, depth = (width or EFFICIENTNET[b][0]), EFFICIENTNET[b][1]
    k = KerasNet(f"efficientnetb{b}", (hw, hw, 3))
    eps = 1e-3
    x = k.conv(k.pad(k.x, "stem_conv_pad", 1), "stem_conv", _round_filters(32, width), 3, 2, bias=False)
    x = k.act(k.bn(x, "stem_bn", eps), "stem_activation", "swish")
    for s, (t, ks, stride, fin, fout, n) in enumerate(EFFICIENTNET_BLOCKS):
        fin, fout = _round_filters(fin, width), _round_filters(fout, width)
        for j in range(int(math.ceil(depth * n))):
            name = f"block{s + 1}{chr(j + 97)}_"
            st, fi = (stride, fin) if not j else (1, fout)
            y = x
            if t != 1:
                y = k.act(k.bn(k.conv(y, name + "expand_conv", fi * t, 1, bias=False), name + "expand_bn", eps),
                          name + "expand_activation", "swish")
            if st == 2:
                y = k.dwconv(k.pad(y, name + "dwconv_pad", ks // 2), name + "dwconv", ks, 2)
            else:
                y = k.dwconv(y, name + "dwconv", ks, 1, padding="same")
            y = k.act(k.bn(y, name + "bn", eps), name + "activation", "swish")
            se = k.reshape(k.gap(y, name + "se_squeeze"), name + "se_reshape", (1, 1, k.ch[y]))
            se = k.conv(se, name + "se_reduce", max(1, fi // 4), 1, padding="same", act="swish")
            se = k.conv(se, name + "se_expand", k.ch[y], 1, padding="same", act="sigmoid")
            y = k.mul([y, se], name + "se_excite")
            y = k.bn(k.conv(y, name + "project_conv", fout, 1, bias=False), name + "project_bn", eps)
            if st == 1 and fi == fout:
                y = k.add([y, x], name + "add")
            x = y
    x = k.conv(x, "top_conv", _round_filters(1280, width), 1, bias=False)
    x = k.act(k.bn(x, "top_bn", eps), "top_activation", "swish")
    x = k.dense(k.gap(x, "avg_pool"), "predictions", classes)
    return k, x


def vgg(cfg, bn, hw=224, hidden=16, classes=10):
    """VGG (keras/src/applications/vgg16.py): block<b>_conv<c> (3x3, 'same'),
    block<b>_pool, flatten, fc1, fc2, predictions; cfg is torchvision's layer
    table (widths, 'M' for a pooling).  bn: a BatchNormalization named
    block<b>_conv<c>_bn after each convolution (epsilon 1e-5, torchvision's),
    as rules/torch-to-keras/vgg*_bn.yaml expect.  The features must end 7 x 7
    (hw 224), where torchvision's adaptive pooling is the identity."""
    k = KerasNet("vgg", (hw, hw, 3))
    x, block, conv = k.x, 1, 0
    for v in cfg:
        if v == "M":
            x = k.maxpool(x, f"block{block}_pool", 2, 2)
            block, conv = block + 1, 0
            continue
        conv += 1
        name = f"block{block}_conv{conv}"
        if bn:
            x = k.act(k.bn(k.conv(x, name, v, 3, padding="same"), name + "_bn", 1e-5), name + "_relu", "relu")
        else:
            x = k.conv(x, name, v, 3, padding="same", act="relu")
    x = k.flatten(x, "flatten", k.ch[x] * (hw // 32) ** 2)
    x = k.dense(x, "fc1", hidden, act="relu")
    x = k.dense(x, "fc2", hidden, act="relu")
    x = k.dense(x, "predictions", classes)
    return k, x


def mobilenet_v3(arch, hw=64, classes=10, keras2=True):
    """MobileNetV3Small / Large (alpha 1), from torchvision's own block table
    (torchvision.models.mobilenetv3._mobilenet_v3_conf), with the layer names
    of keras/src/applications/mobilenet_v3.py (Keras 3: conv, conv_bn,
    expanded_conv_<i>_expand_bn, ..._squeeze_excite_conv_1, conv_1, conv_2,
    logits) or keras2: tf_keras' (Conv, Conv/BatchNorm,
    expanded_conv_<i>/expand/BatchNorm, .../squeeze_excite/Conv_1, Conv_1,
    Conv_2, Logits).  Hard-swish x * relu6(x + 3) / 6 is written with layers
    tfjs-layers has (Rescaling, ReLU(max 1), Multiply), global pooling with
    keepdims as pooling and Reshape; stride-2 convolutions pad symmetrically
    as torchvision does."""
    from torchvision.models._utils import _make_divisible
    from torchvision.models.mobilenetv3 import _mobilenet_v3_conf
    blocks, last_point = _mobilenet_v3_conf(arch)
    small = arch.endswith("small")
    size = "small" if small else "large"
    k = KerasNet("MobilenetV3" + size if keras2 else "MobileNetV3" + size.title(), (hw, hw, 3))
    eps, uid = 1e-3, [0]

    def n(keras3_name, keras2_name):
        return keras2_name if keras2 else keras3_name

    def act(x, hs):
        uid[0] += 1
        if not hs:
            return k.relu(x, f"re_lu_{uid[0]}")
        return k.mul([x, hsig(x)], f"multiply_{uid[0]}")

    def hsig(x):
        uid[0] += 1
        return k.relu(k.rescale(x, f"rescaling_{uid[0]}", 1 / 6, 0.5), f"re_lu_{uid[0]}", 1.0)

    def conv_bn(x, conv, bn, filters, kernel, stride=1):
        if stride == 2:
            x = k.pad(x, conv + "_pad", kernel // 2)
        x = k.conv(x, conv, filters, kernel, stride, padding="same" if stride == 1 else "valid", bias=False)
        return k.bn(x, bn, eps)

    x = act(conv_bn(k.x, n("conv", "Conv"), n("conv_bn", "Conv/BatchNorm"), 16, 3, 2), True)
    for i, c in enumerate(blocks):
        p = n(f"expanded_conv_{i}_" if i else "expanded_conv_", f"expanded_conv_{i}/" if i else "expanded_conv/")
        inp, y = x, x
        assert (c.expanded_channels != c.input_channels) == bool(i)  # Keras expands every block but the first
        if i:
            y = act(k.bn(k.conv(y, p + "expand", c.expanded_channels, 1, bias=False),
                         p + n("expand_bn", "expand/BatchNorm"), eps), c.use_hs)
        if c.stride == 2:
            y = k.dwconv(k.pad(y, p + n("depthwise_pad", "depthwise/pad"), c.kernel // 2), p + "depthwise", c.kernel, 2)
        else:
            y = k.dwconv(y, p + "depthwise", c.kernel, 1, padding="same")
        y = act(k.bn(y, p + n("depthwise_bn", "depthwise/BatchNorm"), eps), c.use_hs)
        if c.use_se:
            se = k.gap(y, p + n("squeeze_excite_avg_pool", "squeeze_excite/AvgPool"))
            se = k.reshape(se, p + n("squeeze_excite_reshape", "squeeze_excite/Reshape"), (1, 1, k.ch[y]))
            squeeze = _make_divisible(c.expanded_channels // 4, 8)
            se = k.conv(se, p + n("squeeze_excite_conv", "squeeze_excite/Conv"), squeeze, 1, act="relu")
            se = hsig(k.conv(se, p + n("squeeze_excite_conv_1", "squeeze_excite/Conv_1"), c.expanded_channels, 1))
            y = k.mul([y, se], p + n("squeeze_excite_mul", "squeeze_excite/Mul"))
        y = k.bn(k.conv(y, p + "project", c.out_channels, 1, bias=False), p + n("project_bn", "project/BatchNorm"), eps)
        if c.stride == 1 and c.input_channels == c.out_channels:
            y = k.add([inp, y], p + n("add", "Add"))
        x = y
    x = act(conv_bn(x, n("conv_1", "Conv_1"), n("conv_1_bn", "Conv_1/BatchNorm"), 6 * blocks[-1].out_channels, 1),
            True)
    x = k.reshape(k.gap(x, "global_average_pooling2d"), "reshape", (1, 1, k.ch[x]))
    x = act(k.conv(x, n("conv_2", "Conv_2"), last_point, 1), True)
    x = k.conv(x, n("logits", "Logits"), classes, 1)
    x = k.flatten(x, "flatten", classes)
    return k, x


def convnext(name, dims, depths, hw=64, classes=10):
    """ConvNeXt (keras/src/applications/convnext.py) with the model name `name`
    prefixing every layer: <name>_stem_conv / _stem_layernorm,
    <name>_downsampling_layernorm_<i> / _conv_<i>, <name>_stage_<s>_block_<b>_
    depthwise_conv (a Conv2D with groups) / _layernorm / _pointwise_conv_1 /
    _gelu / _pointwise_conv_2 / _layer_scale, <name>_head_gap / _head_layernorm
    / _head_dense.  Keras nests the stem and downsampling layers in Sequential
    blocks; here they are top-level layers with the same weight names."""
    k = KerasNet(name, (hw, hw, 3))
    x = k.conv(k.x, name + "_stem_conv", dims[0], 4, 4)
    x = k.ln(x, name + "_stem_layernorm", 1e-6)
    for s, (c, n) in enumerate(zip(dims, depths)):
        if s:
            x = k.ln(x, f"{name}_downsampling_layernorm_{s - 1}", 1e-6)
            x = k.conv(x, f"{name}_downsampling_conv_{s - 1}", c, 2, 2)
        for b in range(n):
            p = f"{name}_stage_{s}_block_{b}"
            y = k.conv(x, p + "_depthwise_conv", c, 7, padding="same", groups=c)
            y = k.ln(y, p + "_layernorm", 1e-6)
            y = k.act(k.dense(y, p + "_pointwise_conv_1", 4 * c), p + "_gelu", "gelu")
            y = k.layer_scale(k.dense(y, p + "_pointwise_conv_2", c), p + "_layer_scale")
            x = k.add([x, y], p + "_add")
    x = k.ln(k.gap(x, name + "_head_gap"), name + "_head_layernorm", 1e-6)
    x = k.dense(x, name + "_head_dense", classes)
    return k, x


def inception_v3(hw=107, classes=10, div=1):
    """InceptionV3 (keras/src/applications/inception_v3.py): conv2d_bn blocks
    named by creation order (conv2d, batch_normalization (scale=False),
    activation, then _1, _2, ...), concatenations mixed0..mixed10 and
    mixed9_0/_1, avg_pool, predictions; widths divided by div (torchvision's
    network built with the same division).  The average-pool branches pad
    explicitly (ZeroPadding2D + 'valid'): torchvision counts the padding in
    the average, TF 'same' does not."""
    k = KerasNet("inception_v3", (hw, hw, 3))
    n = {"conv": 0, "pool": 0, "max": 0, "cat": 0}

    def uid(kind, base):
        i = n[kind]
        n[kind] += 1
        return base + (f"_{i}" if i else "")

    def cbn(x, filters, rows, cols, padding="same", stride=1):
        i = n["conv"]
        sfx = f"_{i}" if i else ""
        n["conv"] += 1
        x = k.conv(x, "conv2d" + sfx, filters // div, (rows, cols), stride, padding=padding, bias=False)
        return k.act(k.bn(x, "batch_normalization" + sfx, 1e-3, scale=False), "activation" + sfx, "relu")

    def avg_branch(x, filters):
        p = uid("pool", "average_pooling2d")
        return cbn(k.avgpool(k.pad(x, p + "_pad", 1), p, 3, 1), filters, 1, 1)

    def maxpool(x):
        return k.maxpool(x, uid("max", "max_pooling2d"), 3, 2)

    x = cbn(k.x, 32, 3, 3, "valid", 2)
    x = cbn(x, 32, 3, 3, "valid")
    x = maxpool(cbn(x, 64, 3, 3))
    x = cbn(x, 80, 1, 1, "valid")
    x = maxpool(cbn(x, 192, 3, 3, "valid"))
    for i, pool in enumerate((32, 64, 64)):
        b1 = cbn(x, 64, 1, 1)
        b5 = cbn(cbn(x, 48, 1, 1), 64, 5, 5)
        b3 = cbn(cbn(cbn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3)
        x = k.concat([b1, b5, b3, avg_branch(x, pool)], f"mixed{i}")
    b3 = cbn(x, 384, 3, 3, "valid", 2)
    bd = cbn(cbn(cbn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3, "valid", 2)
    x = k.concat([b3, bd, maxpool(x)], "mixed3")
    for i, c in enumerate((128, 160, 160, 192)):
        b1 = cbn(x, 192, 1, 1)
        b7 = cbn(cbn(cbn(x, c, 1, 1), c, 1, 7), 192, 7, 1)
        bd = cbn(cbn(cbn(cbn(cbn(x, c, 1, 1), c, 7, 1), c, 1, 7), c, 7, 1), 192, 1, 7)
        x = k.concat([b1, b7, bd, avg_branch(x, 192)], f"mixed{4 + i}")
    b3 = cbn(cbn(x, 192, 1, 1), 320, 3, 3, "valid", 2)
    b7 = cbn(cbn(cbn(cbn(x, 192, 1, 1), 192, 1, 7), 192, 7, 1), 192, 3, 3, "valid", 2)
    x = k.concat([b3, b7, maxpool(x)], "mixed8")
    for i in range(2):
        b1 = cbn(x, 320, 1, 1)
        b3 = cbn(x, 384, 1, 1)
        b3 = k.concat([cbn(b3, 384, 1, 3), cbn(b3, 384, 3, 1)], f"mixed9_{i}")
        bd = cbn(cbn(x, 448, 1, 1), 384, 3, 3)
        bd = k.concat([cbn(bd, 384, 1, 3), cbn(bd, 384, 3, 1)], uid("cat", "concatenate"))
        x = k.concat([b1, b3, bd, avg_branch(x, 192)], f"mixed{9 + i}")
    x = k.dense(k.gap(x, "avg_pool"), "predictions", classes)
    return k, x
