#!/usr/bin/env python3
"""A Hugging Face folder of a real model shape filled with random weights (issue 13's
benchmarks): config.json from ../shared/data/configs, model.safetensors in bf16 with every byte
written (never a sparse hole: zero pages would make speed numbers meaningless). Matrices and
embeddings ~ N(0, 0.02), norm weights 1, biases ~ N(0, 0.01), like ds-compile --weights random.
Llama and Qwen2 shapes. numpy only.

usage: make_random_hf.py <config.json> <out-dir> [--seed 0]
"""
import argparse
import json
import os
import struct

import numpy as np


def tensors(c):
    H, L, V = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    nh, nkv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    hd = c.get("head_dim", H // nh)
    F = c["intermediate_size"]
    bias = c["model_type"] == "qwen2" or c.get("attention_bias", False)
    t = [("model.embed_tokens.weight", [V, H])]
    for i in range(L):
        p = f"model.layers.{i}."
        t += [(p + "input_layernorm.weight", [H]),
              (p + "self_attn.q_proj.weight", [nh * hd, H]), (p + "self_attn.k_proj.weight", [nkv * hd, H]),
              (p + "self_attn.v_proj.weight", [nkv * hd, H]), (p + "self_attn.o_proj.weight", [H, nh * hd])]
        if bias:
            t += [(p + "self_attn.q_proj.bias", [nh * hd]), (p + "self_attn.k_proj.bias", [nkv * hd]),
                  (p + "self_attn.v_proj.bias", [nkv * hd])]
        t += [(p + "post_attention_layernorm.weight", [H]), (p + "mlp.gate_proj.weight", [F, H]),
              (p + "mlp.up_proj.weight", [F, H]), (p + "mlp.down_proj.weight", [H, F])]
    t.append(("model.norm.weight", [H]))
    if not c.get("tie_word_embeddings", False):
        t.append(("lm_head.weight", [V, H]))
    return t


def bf16(a):  # round to nearest even
    u = a.astype(np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    c = json.load(open(a.config))
    if c.get("model_type") not in ("llama", "qwen2", "mistral"):
        raise SystemExit(f"{a.config}: only Llama/Qwen2/Mistral shapes")
    c["torch_dtype"] = "bfloat16"
    os.makedirs(a.out, exist_ok=True)
    json.dump(c, open(os.path.join(a.out, "config.json"), "w"), indent=2)
    specs = tensors(c)
    header, off = {}, 0
    for name, shape in specs:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + n]}
        off += n
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    rng = np.random.default_rng(a.seed)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name, shape in specs:
            if name.endswith("norm.weight"):
                v = np.ones(shape, np.float32)
            else:
                std = 0.01 if name.endswith("bias") else 0.02
                rows = shape[0]
                step = max(1, (1 << 24) // max(1, int(np.prod(shape[1:]))))
                for r0 in range(0, rows, step):  # chunks: bounded memory for 151936 x 1536
                    part = rng.standard_normal((min(step, rows - r0), *shape[1:]), dtype=np.float32) * std
                    f.write(bf16(part).tobytes())
                continue
            f.write(bf16(v).tobytes())
    print(f"wrote {a.out} ({off / 2**30:.2f} GiB of bf16 weights)")


if __name__ == "__main__":
    main()
