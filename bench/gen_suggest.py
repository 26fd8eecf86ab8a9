#!/usr/bin/python3
"""Inputs of bench/suggest.sh (not a test): large (source, skeleton) pairs
for graft suggest, whose cost grows with the tensor count.
  gen_suggest.py scale DIR N   DIR/scaleN.pth, DIR/scaleN_skel.pth (see scale())
  gen_suggest.py DIR    writes into DIR:
    r152.pth, r152_skel.h5     torchvision resnet152 state dict (931 tensors)
                               -> a Keras-Applications-named skeleton
    bertl.pth, bertl/model.ckpt.index
                               an HF BertForPreTraining of BERT-large shape
                               (24 layers, hidden 1024, 16 heads, 4096)
                               -> Google BERT TF checkpoint names
    llama.safetensors, llama_names.yaml (renames only, for graft convert)
                               a 32-layer Llama-named model, hidden 256 (the
                               tensor count of a 7B; shapes kept small)
                               -> bench/suggest.sh converts it to GGUF names
Run from the repository root."""
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
import hfmodels  # noqa: E402
import kerasapps  # noqa: E402
from test_rulelib_tf import tf_skeleton  # noqa: E402


def main(d):
    import torchvision
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet152(num_classes=10).state_dict(), os.path.join(d, "r152.pth"))
    k, out = kerasapps.resnet(152, 32, 10, bias=False)  # torchvision convs have none
    k.write(os.path.join(d, "r152_skel.h5"), out)
    big = dict(vocab=30522, h=1024, layers=24, inter=4096, pos=512)
    torch.save(hfmodels.BertForPreTraining(heads=16, **big).state_dict(), os.path.join(d, "bertl.pth"))
    tf_skeleton(os.path.join(d, "bertl", "model.ckpt"), hfmodels.bert_tf_shapes(**big), 1)
    h, inter, v = 256, 688, 32000
    sd = {"model.embed_tokens.weight": torch.randn(v, h)}
    for n in range(32):
        p = f"model.layers.{n}."
        for w in ("q", "k", "v", "o"):
            sd[p + f"self_attn.{w}_proj.weight"] = torch.randn(h, h)
        sd[p + "mlp.gate_proj.weight"] = torch.randn(inter, h)
        sd[p + "mlp.up_proj.weight"] = torch.randn(inter, h)
        sd[p + "mlp.down_proj.weight"] = torch.randn(h, inter)
        sd[p + "input_layernorm.weight"] = torch.randn(h)
        sd[p + "post_attention_layernorm.weight"] = torch.randn(h)
    sd["model.norm.weight"] = torch.randn(h)
    sd["lm_head.weight"] = torch.randn(v, h)
    torch.save(sd, os.path.join(d, "llama.pth"))
    with open(os.path.join(ROOT, "rules", "hf-to-gguf", "llama.yaml")) as f:
        text = f.read()
    names = text[text.index("rename:"):text.index("\nignore:")]
    with open(os.path.join(d, "llama_names.yaml"), "w") as f:
        f.write("graft: 1\n" + names + "\n")


def scale(d, n):
    """n tensors (n/4 blocks of conv, BN weight and bias, dense) of one shape
    per kind, PyTorch-named, into Keras auto names (conv2d_i, ...): nothing
    pairs by name, everything by order and layers, and the renames are
    learned over every name: the growth with the tensor count."""
    src, dst = {}, {}
    for i in range(n // 4):
        src[f"blocks.{i}.conv.weight"] = torch.zeros(8, 8, 3, 3)
        src[f"blocks.{i}.bn.weight"] = torch.zeros(8)
        src[f"blocks.{i}.bn.bias"] = torch.zeros(8)
        src[f"blocks.{i}.fc.weight"] = torch.zeros(8, 16)
        dst[f"conv2d_{i}/kernel:0"] = torch.zeros(3, 3, 8, 8)
        dst[f"batch_normalization_{i}/gamma:0"] = torch.zeros(8)
        dst[f"batch_normalization_{i}/beta:0"] = torch.zeros(8)
        dst[f"dense_{i}/kernel:0"] = torch.zeros(16, 8)
    torch.save(src, os.path.join(d, f"scale{n}.pth"))
    torch.save(dst, os.path.join(d, f"scale{n}_skel.pth"))


if __name__ == "__main__":
    if sys.argv[1] == "scale":
        scale(sys.argv[2], int(sys.argv[3]))
    else:
        main(sys.argv[1])
