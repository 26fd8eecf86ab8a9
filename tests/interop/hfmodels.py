"""Faithful PyTorch BERT and GPT-2 with Hugging Face parameter names
(transformers' BertForPreTraining, GPT2LMHeadModel), and NumPy forward passes
that read the original TensorFlow checkpoints' names and layouts
(google-research/bert modeling.py + run_pretraining.py, openai/gpt-2
src/model.py).  No TF runtime exists here: the NumPy passes are the oracles of
the TF side."""
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def gelu_tanh(x):
    """modeling.py's gelu and gpt-2's (the tanh approximation; HF gelu_new)."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def torch_gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))


def layer_norm(x, g, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


# ---- BERT -------------------------------------------------------------------

class Dense(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.dense = nn.Linear(i, o)


class DenseLN(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.dense = nn.Linear(i, o)
        self.LayerNorm = nn.LayerNorm(o, eps=1e-12)


class SelfAttention(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)


class Attention(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.self = SelfAttention(h)
        self.output = DenseLN(h, h)


class BertLayer(nn.Module):
    def __init__(self, h, inter):
        super().__init__()
        self.attention = Attention(h)
        self.intermediate = Dense(h, inter)
        self.output = DenseLN(inter, h)


class Embeddings(nn.Module):
    def __init__(self, vocab, h, pos, types):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, h)
        self.position_embeddings = nn.Embedding(pos, h)
        self.token_type_embeddings = nn.Embedding(types, h)
        self.LayerNorm = nn.LayerNorm(h, eps=1e-12)
        self.register_buffer("position_ids", torch.arange(pos).expand((1, -1)))


class Encoder(nn.Module):
    def __init__(self, layers, h, inter):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(h, inter) for _ in range(layers))


class Bert(nn.Module):
    def __init__(self, vocab, h, layers, inter, pos, types):
        super().__init__()
        self.embeddings = Embeddings(vocab, h, pos, types)
        self.encoder = Encoder(layers, h, inter)
        self.pooler = Dense(h, h)


class LMHead(nn.Module):
    def __init__(self, vocab, h):
        super().__init__()
        self.transform = DenseLN(h, h)
        self.decoder = nn.Linear(h, vocab)
        self.bias = nn.Parameter(torch.zeros(vocab))
        self.decoder.bias = self.bias  # tied, as transformers does


class Heads(nn.Module):
    def __init__(self, vocab, h):
        super().__init__()
        self.predictions = LMHead(vocab, h)
        self.seq_relationship = nn.Linear(h, 2)


class BertForPreTraining(nn.Module):
    """transformers' BertForPreTraining, hidden_act gelu_new, eval mode."""

    def __init__(self, vocab=120, h=32, layers=2, heads=4, inter=64, pos=24, types=2):
        super().__init__()
        self.heads = heads
        self.bert = Bert(vocab, h, layers, inter, pos, types)
        self.cls = Heads(vocab, h)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight  # tied
        with torch.no_grad():
            for p in self.parameters():
                p.normal_(0, 0.3)

    def forward(self, ids, types, mask):
        e = self.bert.embeddings
        s = ids.shape[1]
        x = e.word_embeddings(ids) + e.position_embeddings(e.position_ids[:, :s]) + e.token_type_embeddings(types)
        x = e.LayerNorm(x)
        add = (1.0 - mask[:, None, None, :].float()) * -10000.0
        for lay in self.bert.encoder.layer:
            a = lay.attention.self
            b, n, hd = x.shape[0], self.heads, x.shape[2] // self.heads

            def split(t):
                return t.view(b, s, n, hd).permute(0, 2, 1, 3)
            q, k, v = split(a.query(x)), split(a.key(x)), split(a.value(x))
            p = F.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + add, -1)
            ctx = (p @ v).permute(0, 2, 1, 3).reshape(b, s, -1)
            o = lay.attention.output
            x = o.LayerNorm(o.dense(ctx) + x)
            i = torch_gelu_tanh(lay.intermediate.dense(x))
            x = lay.output.LayerNorm(lay.output.dense(i) + x)
        pooled = torch.tanh(self.bert.pooler.dense(x[:, 0]))
        t = self.cls.predictions.transform
        m = t.LayerNorm(torch_gelu_tanh(t.dense(x)))
        return self.cls.predictions.decoder(m), self.cls.seq_relationship(pooled)


def bert_tf_forward(v, heads, ids, types, mask):
    """modeling.py BertModel + run_pretraining.py heads over TF variables v."""
    s = ids.shape[1]
    x = (v["bert/embeddings/word_embeddings"][ids] + v["bert/embeddings/position_embeddings"][:s][None]
         + v["bert/embeddings/token_type_embeddings"][types])
    x = layer_norm(x, v["bert/embeddings/LayerNorm/gamma"], v["bert/embeddings/LayerNorm/beta"], 1e-12)
    add = (1.0 - mask[:, None, None, :]) * -10000.0
    n = 0
    while f"bert/encoder/layer_{n}/attention/self/query/kernel" in v:
        p = f"bert/encoder/layer_{n}/"

        def dense(name, t):
            return t @ v[p + name + "/kernel"] + v[p + name + "/bias"]
        b, hd = x.shape[0], x.shape[2] // heads

        def split(t):
            return t.reshape(b, s, heads, hd).transpose(0, 2, 1, 3)
        q, k, val = (split(dense(f"attention/self/{w}", x)) for w in ("query", "key", "value"))
        sc = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd) + add
        sc = np.exp(sc - sc.max(-1, keepdims=True))
        ctx = ((sc / sc.sum(-1, keepdims=True)) @ val).transpose(0, 2, 1, 3).reshape(b, s, -1)
        x = layer_norm(dense("attention/output/dense", ctx) + x, v[p + "attention/output/LayerNorm/gamma"],
                       v[p + "attention/output/LayerNorm/beta"], 1e-12)
        i = gelu_tanh(dense("intermediate/dense", x))
        x = layer_norm(dense("output/dense", i) + x, v[p + "output/LayerNorm/gamma"], v[p + "output/LayerNorm/beta"], 1e-12)
        n += 1
    pooled = np.tanh(x[:, 0] @ v["bert/pooler/dense/kernel"] + v["bert/pooler/dense/bias"])
    t = gelu_tanh(x @ v["cls/predictions/transform/dense/kernel"] + v["cls/predictions/transform/dense/bias"])
    t = layer_norm(t, v["cls/predictions/transform/LayerNorm/gamma"], v["cls/predictions/transform/LayerNorm/beta"], 1e-12)
    mlm = t @ v["bert/embeddings/word_embeddings"].T + v["cls/predictions/output_bias"]
    nsp = pooled @ v["cls/seq_relationship/output_weights"].T + v["cls/seq_relationship/output_bias"]
    return mlm, nsp


def bert_tf_shapes(vocab=120, h=32, layers=2, inter=64, pos=24, types=2):
    """The variables of a google-research/bert pretraining checkpoint."""
    out = {"bert/embeddings/word_embeddings": [vocab, h], "bert/embeddings/position_embeddings": [pos, h],
           "bert/embeddings/token_type_embeddings": [types, h],
           "bert/embeddings/LayerNorm/gamma": [h], "bert/embeddings/LayerNorm/beta": [h]}
    for n in range(layers):
        p = f"bert/encoder/layer_{n}/"
        for w in ("attention/self/query", "attention/self/key", "attention/self/value", "attention/output/dense"):
            out[p + w + "/kernel"], out[p + w + "/bias"] = [h, h], [h]
        out[p + "intermediate/dense/kernel"], out[p + "intermediate/dense/bias"] = [h, inter], [inter]
        out[p + "output/dense/kernel"], out[p + "output/dense/bias"] = [inter, h], [h]
        for ln in ("attention/output/LayerNorm", "output/LayerNorm"):
            out[p + ln + "/gamma"], out[p + ln + "/beta"] = [h], [h]
    out.update({"bert/pooler/dense/kernel": [h, h], "bert/pooler/dense/bias": [h],
                "cls/predictions/transform/dense/kernel": [h, h], "cls/predictions/transform/dense/bias": [h],
                "cls/predictions/transform/LayerNorm/gamma": [h], "cls/predictions/transform/LayerNorm/beta": [h],
                "cls/predictions/output_bias": [vocab], "cls/seq_relationship/output_weights": [2, h],
                "cls/seq_relationship/output_bias": [2]})
    return out


# ---- GPT-2 ------------------------------------------------------------------

class Conv1D(nn.Module):
    """transformers' Conv1D: weight [in, out], y = x @ W + b."""

    def __init__(self, nf, nx):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        return x @ self.weight + self.bias


class GPT2Attention(nn.Module):
    def __init__(self, h, n_ctx):
        super().__init__()
        self.c_attn, self.c_proj = Conv1D(3 * h, h), Conv1D(h, h)
        self.register_buffer("bias", torch.tril(torch.ones(n_ctx, n_ctx, dtype=torch.uint8)).view(1, 1, n_ctx, n_ctx))
        self.register_buffer("masked_bias", torch.tensor(-1e4))


class GPT2MLP(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.c_fc, self.c_proj = Conv1D(4 * h, h), Conv1D(h, 4 * h)


class GPT2Block(nn.Module):
    def __init__(self, h, n_ctx):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(h, eps=1e-5), nn.LayerNorm(h, eps=1e-5)
        self.attn, self.mlp = GPT2Attention(h, n_ctx), GPT2MLP(h)


class GPT2Model(nn.Module):
    def __init__(self, vocab, h, layers, n_ctx):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, h), nn.Embedding(n_ctx, h)
        self.h = nn.ModuleList(GPT2Block(h, n_ctx) for _ in range(layers))
        self.ln_f = nn.LayerNorm(h, eps=1e-5)


class GPT2LMHeadModel(nn.Module):
    """transformers' GPT2LMHeadModel (gelu_new), eval mode."""

    def __init__(self, vocab=100, h=32, layers=2, heads=4, n_ctx=16):
        super().__init__()
        self.heads = heads
        self.transformer = GPT2Model(vocab, h, layers, n_ctx)
        self.lm_head = nn.Linear(h, vocab, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied
        with torch.no_grad():
            for p in self.parameters():
                p.normal_(0, 0.3)

    def forward(self, ids):
        t = self.transformer
        b, s = ids.shape
        x = t.wte(ids) + t.wpe(torch.arange(s))[None]
        for blk in t.h:
            a = blk.ln_1(x)
            q, k, v = blk.attn.c_attn(a).split(x.shape[2], 2)
            hd = x.shape[2] // self.heads

            def split(z):
                return z.view(b, s, self.heads, hd).permute(0, 2, 1, 3)
            w = split(q) @ split(k).transpose(-1, -2) / math.sqrt(hd)
            mask = blk.attn.bias[:, :, :s, :s].bool()
            w = torch.where(mask, w, blk.attn.masked_bias.to(w.dtype))
            ctx = (F.softmax(w, -1) @ split(v)).permute(0, 2, 1, 3).reshape(b, s, -1)
            x = x + blk.attn.c_proj(ctx)
            x = x + blk.mlp.c_proj(torch_gelu_tanh(blk.mlp.c_fc(blk.ln_2(x))))
        return self.lm_head(t.ln_f(x))


def gpt2_tf_forward(v, heads, ids):
    """openai/gpt-2 src/model.py over TF variables v (conv1d: x @ w[0] + b)."""
    def norm(x, scope):
        return layer_norm(x, v[scope + "/g"], v[scope + "/b"], 1e-5)

    def conv1d(x, scope):
        return x @ v[scope + "/w"][0] + v[scope + "/b"]
    b, s = ids.shape
    x = v["model/wte"][ids] + v["model/wpe"][:s][None]
    n = 0
    while f"model/h{n}/attn/c_attn/w" in v:
        p = f"model/h{n}/"
        c = conv1d(norm(x, p + "ln_1"), p + "attn/c_attn")
        hd = x.shape[2] // heads
        q, k, val = (c[..., i * x.shape[2]:(i + 1) * x.shape[2]].reshape(b, s, heads, hd).transpose(0, 2, 1, 3)
                     for i in range(3))
        w = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd)
        m = np.tril(np.ones((s, s)))
        w = w * m - 1e10 * (1 - m)  # model.py mask_attn_weights
        w = np.exp(w - w.max(-1, keepdims=True))
        a = ((w / w.sum(-1, keepdims=True)) @ val).transpose(0, 2, 1, 3).reshape(b, s, -1)
        x = x + conv1d(a, p + "attn/c_proj")
        x = x + conv1d(gelu_tanh(conv1d(norm(x, p + "ln_2"), p + "mlp/c_fc")), p + "mlp/c_proj")
        n += 1
    return norm(x, "model/ln_f") @ v["model/wte"].T


def gpt2_tf_shapes(vocab=100, h=32, layers=2, n_ctx=16):
    out = {"model/wte": [vocab, h], "model/wpe": [n_ctx, h], "model/ln_f/g": [h], "model/ln_f/b": [h]}
    for n in range(layers):
        p = f"model/h{n}/"
        for ln in ("ln_1", "ln_2"):
            out[p + ln + "/g"], out[p + ln + "/b"] = [h], [h]
        for scope, i, o in (("attn/c_attn", h, 3 * h), ("attn/c_proj", h, h), ("mlp/c_fc", h, 4 * h),
                            ("mlp/c_proj", 4 * h, h)):
            out[p + scope + "/w"], out[p + scope + "/b"] = [1, i, o], [o]
    return out
