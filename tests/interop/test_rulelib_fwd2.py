"""Forward-pass proofs of rules/torch-to-tf/squeezenet1_1.yaml and
rules/hf-to-gguf/{llama,gpt2}.yaml.  The oracle is PyTorch on the source;
the transplanted file is read by an independent reader (test_tf.read_bundle,
ggufref.read) and run by a NumPy forward written from the target's own
conventions, by its tensor names only:

- squeezenet1_1 in a TF-slim-style checkpoint (skeleton of random values
  written by test_tf.write_skeleton): NHWC, HWIO kernels, 'VALID' stem,
  'SAME' 3x3 expands, max pools 3/2 padded on the right as torchvision's
  ceil_mode (a 65x65 input makes ceil and floor differ at every pool).
- Llama in GGUF as llama.cpp's llm_build_llama runs it: ggml mul_mat
  (W of ne [in, out] is rows x in), RMS norm, rope type 0 (NORM: rotates
  consecutive pairs, the layout LlamaModel.permute writes Q and K in), GQA
  (query head h reads key/value head h // (n_head / n_head_kv)), SiLU
  gate; hyper-parameters read from the file's --meta keys.  The PyTorch
  side is transformers' LlamaForCausalLM (rotate_half RoPE on unpermuted
  weights), so a wrong permute fails.
- GPT-2 in GGUF as llm_build_gpt2: attn_qkv split by rows into Q, K, V,
  ggml_gelu (tanh), output = token_embd when output.weight is absent."""
import math
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import ggufref  # noqa: E402
import hfmodels  # noqa: E402
from fwdlib import apply, close, rules_path  # noqa: E402
from graftlib import Results, run  # noqa: E402
from test_llm_rules import st_write  # noqa: E402
from test_tf import read_bundle, tf_name, write_skeleton  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

R = Results()


# ---- squeezenet1_1 -> TF-slim checkpoint ------------------------------------------

def conv_nhwc(x, w, b, stride=1, pad=0):
    """tf.nn.conv2d NHWC x HWIO (+ bias), symmetric zero padding."""
    kh, kw, ci, co = w.shape
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    n, h, wd, _ = x.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    cols = np.empty((n, oh, ow, kh, kw, ci), x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j] = x[:, i:i + stride * oh:stride, j:j + stride * ow:stride]
    return cols.reshape(n, oh, ow, -1) @ w.reshape(-1, co) + b


def maxpool_ceil(x, k=3, s=2):
    """3x3/2 max pool with torchvision's ceil_mode: windows that start inside
    the input are kept, the missing right/bottom cells count as -inf."""
    n, h, w, c = x.shape
    oh, ow = -(-(h - k) // s) + 1, -(-(w - k) // s) + 1
    x = np.pad(x, ((0, 0), (0, (oh - 1) * s + k - h), (0, (ow - 1) * s + k - w), (0, 0)), constant_values=-np.inf)
    out = np.full((n, oh, ow, c), -np.inf)
    for i in range(k):
        for j in range(k):
            out = np.maximum(out, x[:, i:i + s * oh:s, j:j + s * ow:s])
    return out


def squeezenet_tf_forward(v, x):
    relu = lambda a: np.maximum(a, 0)  # noqa: E731

    def conv(a, name, **kw):
        return conv_nhwc(a, v[name + "/weights"], v[name + "/biases"], **kw)

    def fire(a, i):
        sq = relu(conv(a, f"features/{i}/squeeze"))
        return np.concatenate([relu(conv(sq, f"features/{i}/expand1x1")),
                               relu(conv(sq, f"features/{i}/expand3x3", pad=1))], axis=-1)
    a = maxpool_ceil(relu(conv(x, "features/0", stride=2)))
    for i in (3, 4):
        a = fire(a, i)
    a = maxpool_ceil(a)
    for i in (6, 7):
        a = fire(a, i)
    a = maxpool_ceil(a)
    for i in (9, 10, 11, 12):
        a = fire(a, i)
    return relu(conv(a, "last_conv")).mean(axis=(1, 2))


def squeezenet():
    import torchvision
    torch.manual_seed(21)
    model = torchvision.models.squeezenet1_1(num_classes=10).eval()
    with torch.no_grad():  # the default init's N(0, 0.01) last conv leaves most logits at 0 after ReLU
        model.classifier[1].weight.normal_(0, 0.05)
        model.classifier[1].bias.uniform_(0.0, 0.2)
    sd = model.state_dict()
    src = R.path("squeezenet1_1.pth")
    torch.save(sd, src)
    rng = np.random.default_rng(22)
    tensors, values = {}, {}
    for k, t in sd.items():
        shape = list(t.shape)
        if len(shape) == 4:
            shape = [shape[2], shape[3], shape[1], shape[0]]  # OIHW -> HWIO
        tensors[tf_name(k)] = (1, shape)
        values[tf_name(k)] = rng.standard_normal(shape).astype("<f4").tobytes()
    tensors["global_step"], values["global_step"] = (9, []), struct.pack("<q", 31)
    os.makedirs(R.path("sq_skel"), exist_ok=True)
    os.makedirs(R.path("sq_out"), exist_ok=True)
    write_skeleton(R.path("sq_skel/model.ckpt"), tensors, values)
    out = R.path("sq_out/model.ckpt")
    apply(rules_path("torch-to-tf", "squeezenet1_1"), src, R.path("sq_skel/model.ckpt.index"), out + ".index")
    v = {n: np.frombuffer(b, "<f4" if d == "float32" else "<i8").reshape(s) for n, d, s, b in read_bundle(out)}
    assert v["global_step"] == 31 and set(v) == set(tensors)
    x = torch.randn(2, 3, 65, 65, generator=torch.Generator().manual_seed(23))
    with torch.no_grad():
        want = model(x).numpy()
    got = squeezenet_tf_forward({k: a.astype("f8") for k, a in v.items()}, x.permute(0, 2, 3, 1).numpy().astype("f8"))
    close("squeezenet1_1 TF-slim checkpoint (65x65)", got, want)


# ---- GGUF helpers ----------------------------------------------------------------------


def gguf_convert(tag, sd, rules, meta):
    """Write sd (numpy) as safetensors, graft convert it with the shipped
    rules and --meta, read it back with ggufref: ({key: value}, {name: array
    in ggml's row-major view, shape reversed(ne)})."""
    src, out = R.path(tag + ".safetensors"), R.path(tag + ".gguf")
    st_write(src, sd)
    args = []
    for m in meta:
        args += ["--meta", m]
    run("convert", "-r", rules_path("hf-to-gguf", rules), src, "-o", out, "-q", *args)
    _, kvs, tensors, _ = ggufref.read(out)
    arrays = {}
    for name, gt, ne, _, raw in tensors:
        assert gt == 0, (name, gt)  # F32 in, F32 out
        arrays[name] = np.frombuffer(raw, "<f4").reshape(list(reversed(ne))).astype("f8")
    return {k: val for k, _, val in kvs}, arrays


def mul_mat(t, name, x):
    """ggml_mul_mat(W, x) for W of ne [in, out]: x @ W^T (+ bias if stored)."""
    y = x @ t[name + ".weight"].T
    return y + t[name + ".bias"] if name + ".bias" in t else y


def softmax_causal(s):
    n = s.shape[-1]
    s = np.where(np.tril(np.ones((n, n), bool)), s, -np.inf)
    s = np.exp(s - s.max(-1, keepdims=True))
    return s / s.sum(-1, keepdims=True)


# ---- Llama ----------------------------------------------------------------------------------


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class LlamaAttention(nn.Module):
    def __init__(self, hidden, n_head, n_kv, hd, theta):
        super().__init__()
        self.n_head, self.n_kv, self.hd = n_head, n_kv, hd
        self.q_proj = nn.Linear(hidden, n_head * self.hd, bias=False)
        self.k_proj = nn.Linear(hidden, n_kv * self.hd, bias=False)
        self.v_proj = nn.Linear(hidden, n_kv * self.hd, bias=False)
        self.o_proj = nn.Linear(n_head * self.hd, hidden, bias=False)
        self.register_buffer("inv_freq", 1.0 / theta ** (torch.arange(0, self.hd, 2).float() / self.hd))

    def forward(self, x):
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.n_head, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.n_kv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.n_kv, self.hd).transpose(1, 2)
        freqs = torch.outer(torch.arange(s).float(), self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)  # transformers' LlamaRotaryEmbedding
        cos, sin = emb.cos(), emb.sin()
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        rep = self.n_head // self.n_kv  # repeat_kv
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        w = q @ k.transpose(2, 3) / math.sqrt(self.hd)
        w = w.masked_fill(~torch.tril(torch.ones(s, s, dtype=torch.bool)), float("-inf")).softmax(-1)
        return self.o_proj((w @ v).transpose(1, 2).reshape(b, s, -1))


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(n)), eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class LlamaMLP(nn.Module):
    def __init__(self, hidden, ffn):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, ffn, bias=False)
        self.up_proj = nn.Linear(hidden, ffn, bias=False)
        self.down_proj = nn.Linear(ffn, hidden, bias=False)

    def forward(self, x):
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaLayer(nn.Module):
    def __init__(self, hidden, n_head, n_kv, hd, ffn, eps, theta):
        super().__init__()
        self.self_attn = LlamaAttention(hidden, n_head, n_kv, hd, theta)
        self.mlp = LlamaMLP(hidden, ffn)
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(hidden, eps), RMSNorm(hidden, eps)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, vocab, hidden, layers, n_head, n_kv, hd, ffn, eps, theta):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, hidden)
        self.layers = nn.ModuleList(LlamaLayer(hidden, n_head, n_kv, hd, ffn, eps, theta) for _ in range(layers))
        self.norm = RMSNorm(hidden, eps)


class LlamaForCausalLM(nn.Module):
    """transformers' LlamaForCausalLM forward (no cache), same state dict
    names; head_dim given (config.head_dim, as Mistral-NeMo's), not
    hidden / n_head."""

    def __init__(self, vocab, hidden, layers, n_head, n_kv, hd, ffn, eps, theta):
        super().__init__()
        self.model = LlamaModel(vocab, hidden, layers, n_head, n_kv, hd, ffn, eps, theta)
        self.lm_head = nn.Linear(hidden, vocab, bias=False)

    def forward(self, ids):
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x)
        return self.lm_head(self.model.norm(x))


def rms_norm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rope_norm(x, base):
    """ggml_rope_ext mode 0 (LLAMA_ROPE_TYPE_NORM) over [T, heads, hd]:
    pairs (x[2i], x[2i+1]) rotated by pos * base^(-2i/hd)."""
    t, _, hd = x.shape
    theta = np.arange(t)[:, None] * base ** (-np.arange(0, hd, 2) / hd)[None]
    cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2], out[..., 1::2] = x0 * cos - x1 * sin, x0 * sin + x1 * cos
    return out


def llama_cpp_forward(kv, t, ids):
    """llm_build_llama over the GGUF tensors, one sequence of token ids."""
    n_layer, n_head = kv["llama.block_count"], kv["llama.attention.head_count"]
    n_kv, eps = kv["llama.attention.head_count_kv"], kv["llama.attention.layer_norm_rms_epsilon"]
    base, hd = kv["llama.rope.freq_base"], kv["llama.attention.key_length"]
    assert kv["llama.rope.dimension_count"] == hd == kv["llama.attention.value_length"]
    x, n = t["token_embd.weight"][ids], len(ids)
    for i in range(n_layer):
        p = f"blk.{i}."
        a = rms_norm(x, t[p + "attn_norm.weight"], eps)
        q = rope_norm(mul_mat(t, p + "attn_q", a).reshape(n, n_head, hd), base)
        k = rope_norm(mul_mat(t, p + "attn_k", a).reshape(n, n_kv, hd), base)
        v = mul_mat(t, p + "attn_v", a).reshape(n, n_kv, hd)
        heads = []
        for h in range(n_head):
            g = h // (n_head // n_kv)
            heads.append(softmax_causal(q[:, h] @ k[:, g].T / math.sqrt(hd)) @ v[:, g])
        x = x + mul_mat(t, p + "attn_output", np.concatenate(heads, -1))
        f = rms_norm(x, t[p + "ffn_norm.weight"], eps)
        gate = mul_mat(t, p + "ffn_gate", f)
        x = x + mul_mat(t, p + "ffn_down", gate / (1 + np.exp(-gate)) * mul_mat(t, p + "ffn_up", f))
    return mul_mat(t, "output", rms_norm(x, t["output_norm.weight"], eps))


def llama():
    # the shipped file's sizes (head_dim 128, hidden 4096), 4 query heads, 2
    # key/value heads (GQA), 2 layers, a tiny MLP and vocabulary
    torch.manual_seed(31)
    cfg = dict(vocab=16, hidden=4096, layers=2, n_head=4, n_kv=2, hd=128, ffn=24, eps=1e-5, theta=10000.0)
    model = LlamaForCausalLM(**cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
            elif "embed" not in name:
                p.normal_(0, 1 / math.sqrt(p.shape[1]))
    sd = {k: a.numpy() for k, a in model.state_dict().items()}  # inv_freq included, as old checkpoints
    meta = ["general.architecture=llama", "llama.block_count:u32=2", "llama.embedding_length:u32=4096",
            "llama.feed_forward_length:u32=24", "llama.attention.head_count:u32=4",
            "llama.attention.head_count_kv:u32=2", "llama.attention.key_length:u32=128",
            "llama.attention.value_length:u32=128", "llama.rope.dimension_count:u32=128",
            "llama.rope.freq_base:f32=10000", "llama.attention.layer_norm_rms_epsilon:f32=1e-5",
            "llama.context_length:u32=64"]
    kv, t = gguf_convert("llama", sd, "llama", meta)
    ids = torch.randint(0, 16, (9,), generator=torch.Generator().manual_seed(32))
    with torch.no_grad():
        want = model(ids[None]).numpy()[0]
    close("llama logits (llama.cpp NORM RoPE on the permuted Q/K)", llama_cpp_forward(kv, t, ids.numpy()), want)


# ---- GPT-2 ------------------------------------------------------------------------------


def layer_norm(x, t, name, eps):
    m, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - m) / np.sqrt(var + eps) * t[name + ".weight"] + t[name + ".bias"]


def gpt2_cpp_forward(kv, t, ids):
    """llm_build_gpt2 over the GGUF tensors, one sequence of token ids."""
    n_layer, n_head = kv["gpt2.block_count"], kv["gpt2.attention.head_count"]
    eps, n_embd = kv["gpt2.attention.layer_norm_epsilon"], kv["gpt2.embedding_length"]
    n, hd = len(ids), n_embd // n_head
    x = t["token_embd.weight"][ids] + t["position_embd.weight"][:n]
    for i in range(n_layer):
        p = f"blk.{i}."
        qkv = mul_mat(t, p + "attn_qkv", layer_norm(x, t, p + "attn_norm", eps))
        q, k, v = (qkv[:, j * n_embd:(j + 1) * n_embd].reshape(n, n_head, hd) for j in range(3))
        heads = [softmax_causal(q[:, h] @ k[:, h].T / math.sqrt(hd)) @ v[:, h] for h in range(n_head)]
        x = x + mul_mat(t, p + "attn_output", np.concatenate(heads, -1))
        u = mul_mat(t, p + "ffn_up", layer_norm(x, t, p + "ffn_norm", eps))
        u = 0.5 * u * (1 + np.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u ** 3)))  # ggml_gelu
        x = x + mul_mat(t, p + "ffn_down", u)
    out = t.get("output.weight", t["token_embd.weight"])  # tied when absent
    return layer_norm(x, t, "output_norm", eps) @ out.T


def gpt2():
    torch.manual_seed(41)
    model = hfmodels.GPT2LMHeadModel().eval()  # vocab 100, hidden 32, 2 layers, 4 heads, n_ctx 16
    sd = {k: a.float().numpy() for k, a in model.state_dict().items()}  # the mask buffer as float, as old checkpoints
    meta = ["general.architecture=gpt2", "gpt2.block_count:u32=2", "gpt2.embedding_length:u32=32",
            "gpt2.attention.head_count:u32=4", "gpt2.attention.layer_norm_epsilon:f32=1e-5",
            "gpt2.context_length:u32=16", "gpt2.feed_forward_length:u32=128"]
    ids = torch.randint(0, 100, (13,), generator=torch.Generator().manual_seed(42))
    with torch.no_grad():
        want = model(ids[None]).numpy()[0]
    kv, t = gguf_convert("gpt2", sd, "gpt2", meta)
    assert "output.weight" in t
    close("gpt2 logits (GPT2LMHeadModel, output.weight)", gpt2_cpp_forward(kv, t, ids.numpy()), want)
    # a GPT2Model checkpoint (no lm_head): no output.weight, llama.cpp ties token_embd
    sd = {k[len("transformer."):]: a for k, a in sd.items() if k.startswith("transformer.")}
    kv, t = gguf_convert("gpt2_base", sd, "gpt2", meta)
    assert "output.weight" not in t
    close("gpt2 logits (GPT2Model, tied token_embd)", gpt2_cpp_forward(kv, t, ids.numpy()), want)


if __name__ == "__main__":
    R.check("torchvision squeezenet1_1 -> TF-slim checkpoint (NumPy NHWC forward)", squeezenet)
    R.check("HF Llama -> GGUF (llama.cpp forward: NORM RoPE, GQA)", llama)
    R.check("HF GPT-2 -> GGUF (llama.cpp forward)", gpt2)
    R.close()
