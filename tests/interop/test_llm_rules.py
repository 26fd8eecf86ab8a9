"""The shipped rules/hf-to-gguf/*.yaml with graft convert against a Python
port of llama.cpp's own conventions: tensor names as gguf-py's
tensor_mapping.py maps them (llama-hf, gpt2) and the tensor changes of
convert_hf_to_gguf.py (LlamaModel.permute of Q and K, GPT-2's Conv1D
transposes, mask buffers dropped), on small HF-layout checkpoints; the
GGUF is read by ggufref and @huggingface/gguf."""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import ggufref  # noqa: E402
from graftlib import SOURCE_ROOT, Results, run  # noqa: E402

R = Results()
RULES = os.path.join(SOURCE_ROOT, "rules", "hf-to-gguf")
rng = np.random.default_rng(11)
ST = {np.dtype("float16"): "F16", np.dtype("float32"): "F32"}
GGML = {np.dtype("float16"): 1, np.dtype("float32"): 0}


def st_write(path, tensors):
    header, off, blobs = {}, 0, []
    for name, a in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": ST[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# llama.cpp gguf-py tensor_mapping.py entries ("llama-hf", "gpt2") and
# constants.py TENSOR_NAMES, transcribed
LLAMA_MAP = {"embed_tokens": "token_embd", "norm": "output_norm", "lm_head": "output"}
LLAMA_BLOCK = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
               "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
               "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
               "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
GPT2_MAP = {"wte": "token_embd", "wpe": "position_embd", "ln_f": "output_norm", "lm_head": "output"}
GPT2_BLOCK = {"ln_1": "attn_norm", "attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output",
              "ln_2": "ffn_norm", "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down"}


def gguf_name(hf, top, block, prefixes):
    base, suffix = hf.rsplit(".", 1)
    for p in prefixes:
        if base.startswith(p):
            base = base[len(p):]
    if base in top:
        return f"{top[base]}.{suffix}"
    parts = base.split(".", 2)
    return f"blk.{parts[1]}.{block[parts[2]]}.{suffix}"


def llama_permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py LlamaModel.permute"""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def convert(src, rules, out, arch):
    run("convert", "-r", os.path.join(RULES, rules), src, "-o", out, "-q",
        "--meta", f"general.architecture={arch}")
    _, kvs, tensors, _ = ggufref.read(out)
    assert kvs == [("general.architecture", 8, arch)]
    js = ggufref.hf_parse(out)
    assert [t["name"] for t in js["tensorInfos"]] == [t[0] for t in tensors]
    return {name: (gt, ne, raw) for name, gt, ne, _, raw in tensors}


def run_case(name, sd, rules, arch, modify, top, block, prefixes):
    """Write sd as safetensors, convert it with the shipped rules, and compare
    with llama.cpp's conventions: modify(hf_name, array) gives the array
    convert_hf_to_gguf.py writes (None: dropped), the maps its GGUF name."""
    src = R.path(f"{name}.safetensors")
    st_write(src, sd)
    got = convert(src, rules, R.path(f"{name}.gguf"), arch)
    want = {}
    for k, a in sd.items():
        a = modify(k, a)
        if a is not None:
            want[gguf_name(k, top, block, prefixes)] = a
    check(got, want)


def check(got, want):
    assert sorted(got) == sorted(want), (sorted(got), sorted(want))
    for name, a in want.items():
        gt, ne, raw = got[name]
        assert gt == GGML[a.dtype] and ne == list(reversed(a.shape)), (name, gt, ne, a.shape)
        assert raw == np.ascontiguousarray(a).tobytes(), f"{name}: values differ"


def t_llama():
    # Llama-3-8B's head_dim (128) and hidden size (4096), with 2 query heads,
    # 1 key/value head (GQA), one layer and a tiny MLP and vocabulary
    hidden, hd, n_head, n_kv, ffn, vocab = 4096, 128, 2, 1, 8, 5
    sd = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,),
          "lm_head.weight": (vocab, hidden)}
    for k, shape in {"input_layernorm.weight": (hidden,), "self_attn.q_proj.weight": (n_head * hd, hidden),
                     "self_attn.k_proj.weight": (n_kv * hd, hidden), "self_attn.v_proj.weight": (n_kv * hd, hidden),
                     "self_attn.o_proj.weight": (hidden, n_head * hd), "post_attention_layernorm.weight": (hidden,),
                     "mlp.gate_proj.weight": (ffn, hidden), "mlp.up_proj.weight": (ffn, hidden),
                     "mlp.down_proj.weight": (hidden, ffn), "self_attn.rotary_emb.inv_freq": (hd // 2,)}.items():
        sd[f"model.layers.0.{k}"] = shape
    sd = {k: rng.standard_normal(s).astype(np.float16) for k, s in sd.items()}

    def modify(k, a):
        if k.endswith("rotary_emb.inv_freq"):
            return None  # llama.cpp computes it
        if k.endswith("q_proj.weight"):
            return llama_permute(a, n_head, n_head)
        if k.endswith("k_proj.weight"):
            return llama_permute(a, n_head, n_kv)
        return a
    run_case("llama", sd, "llama.yaml", "llama", modify, LLAMA_MAP, LLAMA_BLOCK, ["model."])


def t_gpt2():
    n, vocab, ctx = 8, 6, 4
    sd = {"transformer.wte.weight": (vocab, n), "transformer.wpe.weight": (ctx, n),
          "transformer.ln_f.weight": (n,), "transformer.ln_f.bias": (n,)}
    for b in range(2):
        for k, shape in {"ln_1.weight": (n,), "ln_1.bias": (n,), "attn.c_attn.weight": (n, 3 * n),
                         "attn.c_attn.bias": (3 * n,), "attn.c_proj.weight": (n, n), "attn.c_proj.bias": (n,),
                         "ln_2.weight": (n,), "ln_2.bias": (n,), "mlp.c_fc.weight": (n, 4 * n),
                         "mlp.c_fc.bias": (4 * n,), "mlp.c_proj.weight": (4 * n, n), "mlp.c_proj.bias": (n,),
                         "attn.bias": (1, 1, ctx, ctx), "attn.masked_bias": ()}.items():
            sd[f"transformer.h.{b}.{k}"] = shape
    sd = {k: rng.standard_normal(s).astype(np.float32) for k, s in sd.items()}

    def modify(k, a):
        if k.endswith((".attn.bias", ".attn.masked_bias")):
            return None  # mask buffers
        if k.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")):
            return a.T  # Conv1D stores [in, out]
        return a
    run_case("gpt2", sd, "gpt2.yaml", "gpt2", modify, GPT2_MAP, GPT2_BLOCK, ["transformer."])


if __name__ == "__main__":
    R.check("rules/hf-to-gguf/llama.yaml: llama.cpp names, Q/K RoPE permute, GQA", t_llama)
    R.check("rules/hf-to-gguf/gpt2.yaml: llama.cpp names, Conv1D transposes, masks dropped", t_gpt2)
    R.close()
