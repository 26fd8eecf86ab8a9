#!/usr/bin/python3
"""An LLM-shaped sharded bf16 safetensors model for bench L1 (not a test),
named as Hugging Face Llama checkpoints are (model.embed_tokens.weight,
model.layers.N.self_attn.q_proj.weight, ..., lm_head.weight), and the two
skeletons it is grafted into:
  gen_llm.py model DIR LAYERS     DIR/model.safetensors.index.json + shards
                                  (huggingface_hub's 5 GB shards)
  gen_llm.py keras DIR LAYERS     DIR/l1.weights.h5: a Keras 3 .weights.h5
                                  of the same model in float16, Dense kernels
                                  [in, out], written sparse (HDF5 allocates
                                  the datasets early and never fills them:
                                  apply never reads a tensor it replaces)
Shapes: hidden 3072 (24 heads of 128), MLP 9216, vocabulary 32000; 32
layers are 8.24 GB.  The values: one 64 MiB block of N(0, 0.02) bf16
repeated (random bytes could be NaNs; regenerating 8 GB of normals would
take minutes)."""
import json
import os
import struct
import sys

import numpy as np

H, I, V = 3072, 9216, 32000
SHARD = 5_000_000_000


def tensors(layers):
    yield "model.embed_tokens.weight", (V, H)
    for n in range(layers):
        p = f"model.layers.{n}."
        yield p + "input_layernorm.weight", (H,)
        for x in "qkvo":
            yield p + f"self_attn.{x}_proj.weight", (H, H)
        yield p + "post_attention_layernorm.weight", (H,)
        yield p + "mlp.gate_proj.weight", (I, H)
        yield p + "mlp.up_proj.weight", (I, H)
        yield p + "mlp.down_proj.weight", (H, I)
    yield "model.norm.weight", (H,)
    yield "lm_head.weight", (V, H)


def nbytes(shape):
    return int(np.prod(shape)) * 2


def write_model(d, layers):
    rng = np.random.default_rng(0)
    block = (rng.normal(0, 0.02, 32 << 20).astype(np.float32).view(np.uint32) >> 16)
    block = block.astype(np.uint16).tobytes()
    # shards as huggingface_hub splits them: in order, at most SHARD bytes
    shards, cur, size = [], [], 0
    for name, shape in tensors(layers):
        if cur and size + nbytes(shape) > SHARD:
            shards.append(cur)
            cur, size = [], 0
        cur.append((name, shape))
        size += nbytes(shape)
    shards.append(cur)
    weight_map, total, pos = {}, 0, 0
    for k, sh in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for name, shape in sh:
            header[name] = {"dtype": "BF16", "shape": list(shape),
                            "data_offsets": [off, off + nbytes(shape)]}
            off += nbytes(shape)
            weight_map[name] = fname
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        with open(os.path.join(d, fname), "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h)
            left = off
            while left:
                n = min(left, len(block) - pos)
                f.write(block[pos:pos + n])
                left -= n
                pos = (pos + n) % len(block)
        total += off
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def keras_name(hf):
    """The skeleton's dataset for a Hugging Face name (bench/l1_keras.yaml
    maps them back)."""
    if hf == "model.embed_tokens.weight":
        return "layers/token_embedding/vars/0"
    if hf == "model.norm.weight":
        return "layers/final_norm/vars/0"
    if hf == "lm_head.weight":
        return "layers/lm_head/vars/0"
    n, rest = hf[len("model.layers."):].split(".", 1)
    leaf = rest.rsplit(".", 1)[0].replace("self_attn.", "").replace("mlp.", "")
    return f"layers/decoder_{n}/{leaf}/vars/0"


def write_keras(d, layers):
    import h5py
    with h5py.File(os.path.join(d, "l1.weights.h5"), "w") as f:
        for name, shape in tensors(layers):
            if len(shape) == 2 and name != "model.embed_tokens.weight":
                shape = shape[::-1]  # Dense kernels are [in, out]
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
            grp = f.require_group(keras_name(name).rsplit("/", 1)[0])
            sid = h5py.h5s.create_simple(shape)
            h5py.h5d.create(grp.id, b"0", h5py.h5t.IEEE_F16LE, sid, dcpl=dcpl)
        f.create_group("optimizer/vars")
        f.create_group("vars")


if __name__ == "__main__":
    what, d, layers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(d, exist_ok=True)
    (write_model if what == "model" else write_keras)(d, layers)
