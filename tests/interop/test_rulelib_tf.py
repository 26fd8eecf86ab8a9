"""Forward-pass proofs of rules/hf-to-tf/*.yaml.  The skeleton is a TF
checkpoint V2 written by the independent Python writer of test_tf.py (random
values, global_step set), never by graft.  After graft apply, a NumPy forward
pass reading the checkpoint by its TF names and layouts must equal the
PyTorch model's output (1e-4 of the output's scale), and --reverse must give
back every PyTorch tensor bit for bit."""
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import hfmodels  # noqa: E402
from fwdlib import apply, close, rules_path  # noqa: E402
from graftlib import Results  # noqa: E402
from test_tf import read_bundle, write_skeleton  # noqa: E402

import torch  # noqa: E402

R = Results()


def tf_skeleton(prefix, shapes, step):
    """Random float32 variables plus an int64 global_step."""
    rng = np.random.default_rng(9)
    tensors = {n: (1, s) for n, s in shapes.items()}
    values = {n: rng.standard_normal(s).astype("<f4").tobytes() for n, s in shapes.items()}
    tensors["global_step"], values["global_step"] = (9, []), struct.pack("<q", step)
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    write_skeleton(prefix, tensors, values)
    return prefix + ".index"


def tf_values(prefix):
    out = {}
    for name, dtype, dims, data in read_bundle(prefix):
        out[name] = np.frombuffer(data, "<f4" if dtype == "float32" else "<i8").reshape(dims)
    return out


def reverse_exact(rules, ckpt_index, sd, tag, tied):
    """--reverse into a PyTorch skeleton of random values: every mapped tensor
    comes back bit for bit; the ignored (tied) ones keep the skeleton's."""
    skel = {k: torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v.clone() for k, v in sd.items()}
    skel_path, back = R.path(tag + "_rskel.pth"), R.path(tag + "_back.pth")
    torch.save(skel, skel_path)
    apply(rules, ckpt_index, skel_path, back, "--reverse")
    got = torch.load(back)
    assert set(got) == set(sd)
    for k, v in sd.items():
        want = skel[k] if k in tied else v
        assert got[k].dtype == v.dtype and torch.equal(got[k], want), k


def transplant(tag, model, shapes, step):
    """Save the model's state dict, fill a TF skeleton of `shapes` through
    rules/hf-to-tf/<tag>.yaml; (state dict, output prefix, TF variables)."""
    sd = model.state_dict()
    src = R.path(tag + ".pth")
    torch.save(sd, src)
    index = tf_skeleton(R.path(tag + "_skel/model.ckpt"), shapes, step)
    out = R.path(tag + "_out/model.ckpt")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    apply(rules_path("hf-to-tf", tag), src, index, out + ".index")
    v = tf_values(out)
    assert v["global_step"] == step  # kept from the skeleton
    return sd, out, v


def bert():
    torch.manual_seed(3)
    model = hfmodels.BertForPreTraining().eval()
    sd, out, v = transplant("bert", model, hfmodels.bert_tf_shapes(), 4242)
    g = torch.Generator().manual_seed(4)
    ids, types = torch.randint(0, 120, (2, 11), generator=g), torch.randint(0, 2, (2, 11), generator=g)
    mask = torch.ones(2, 11, dtype=torch.long)
    mask[1, 7:] = 0
    with torch.no_grad():
        mlm, nsp = model(ids, types, mask)
    tmlm, tnsp = hfmodels.bert_tf_forward(v, 4, ids.numpy(), types.numpy(), mask.numpy().astype("f8"))
    close("bert masked-LM logits", tmlm, mlm.numpy())
    close("bert next-sentence logits", tnsp, nsp.numpy())
    reverse_exact(rules_path("hf-to-tf", "bert"), out + ".index", sd, "bert",
                  {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias", "bert.embeddings.position_ids"})


def gpt2():
    torch.manual_seed(5)
    model = hfmodels.GPT2LMHeadModel().eval()
    sd, out, v = transplant("gpt2", model, hfmodels.gpt2_tf_shapes(), 77)
    ids = torch.randint(0, 100, (2, 13), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        want = model(ids).numpy()
    close("gpt2 logits", hfmodels.gpt2_tf_forward(v, 4, ids.numpy()), want)
    tied = {"lm_head.weight"} | {k for k in sd if k.endswith((".attn.bias", ".attn.masked_bias"))}
    reverse_exact(rules_path("hf-to-tf", "gpt2"), out + ".index", sd, "gpt2", tied)


if __name__ == "__main__":
    R.check("HF BERT -> Google BERT TF checkpoint (NumPy forward pass, --reverse exact)", bert)
    R.check("HF GPT-2 -> OpenAI GPT-2 TF checkpoint (NumPy forward pass, --reverse exact)", gpt2)
    R.close()
