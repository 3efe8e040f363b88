#!/usr/bin/env python3
"""ds-make-synthetic: a checkpoint with real shapes and no real data, from a config.json alone.

Writes <out>/config.json and <out>/model.safetensors whose header lists every tensor a Hugging
Face checkpoint of that config holds (Llama/Mistral/Qwen2, DeepSeek-V2/V3 with MoE, FP8 block
scales when the config has a quantization_config), with the data area left as a sparse hole.
Use it to import, size (`ds-compile --cost-report`) and benchmark real model shapes without
downloading weights. Stdlib only.

Usage: ds-make-synthetic.py <config.json> <out-dir> [--dtype BF16|F16|F32]
"""
import argparse
import json
import math
import os
import shutil
import struct

SIZES = {"F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1}


def tensors(c, dtype):
    t = {}
    fp8 = (c.get("quantization_config") or {}).get("quant_method") == "fp8"
    block = (c.get("quantization_config") or {}).get("weight_block_size", [128, 128])

    def mat(name, rows, cols, quantizable=True):
        if fp8 and quantizable:
            t[name] = ("F8_E4M3", [rows, cols])
            t[name + "_scale_inv"] = ("F32", [math.ceil(rows / block[0]), math.ceil(cols / block[1])])
        else:
            t[name] = (dtype, [rows, cols])

    def vec(name, n, dt=None):
        t[name] = (dt or dtype, [n])

    H, V, L = c["hidden_size"], c["vocab_size"], c["num_hidden_layers"]
    nh = c["num_attention_heads"]
    nkv = c.get("num_key_value_heads") or nh
    mat("model.embed_tokens.weight", V, H, False)
    vec("model.norm.weight", H)
    if not c.get("tie_word_embeddings", False):
        mat("lm_head.weight", V, H, False)
    deepseek = c["model_type"] in ("deepseek_v2", "deepseek_v3")
    for l in range(L):
        p = "model.layers.%d." % l
        vec(p + "input_layernorm.weight", H)
        vec(p + "post_attention_layernorm.weight", H)
        a = p + "self_attn."
        if deepseek:
            qk = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
            if c.get("q_lora_rank"):
                mat(a + "q_a_proj.weight", c["q_lora_rank"], H)
                vec(a + "q_a_layernorm.weight", c["q_lora_rank"])
                mat(a + "q_b_proj.weight", nh * qk, c["q_lora_rank"])
            else:
                mat(a + "q_proj.weight", nh * qk, H)
            mat(a + "kv_a_proj_with_mqa.weight", c["kv_lora_rank"] + c["qk_rope_head_dim"], H)
            vec(a + "kv_a_layernorm.weight", c["kv_lora_rank"])
            mat(a + "kv_b_proj.weight", nh * (c["qk_nope_head_dim"] + c["v_head_dim"]), c["kv_lora_rank"])
            mat(a + "o_proj.weight", H, nh * c["v_head_dim"])
        else:
            d = c.get("head_dim") or H // nh
            bias = c["model_type"] == "qwen2" or c.get("attention_bias", False)
            for n, rows in (("q", nh * d), ("k", nkv * d), ("v", nkv * d)):
                mat(a + n + "_proj.weight", rows, H)
                if bias:
                    vec(a + n + "_proj.bias", rows)
            mat(a + "o_proj.weight", H, nh * d)
            if c.get("attention_bias", False) and c["model_type"] != "qwen2":
                vec(a + "o_proj.bias", H)
        m = p + "mlp."
        moe = deepseek and c.get("n_routed_experts") and l >= c.get("first_k_dense_replace", 0) \
            and l % c.get("moe_layer_freq", 1) == 0
        if moe:
            E, I = c["n_routed_experts"], c["moe_intermediate_size"]
            t[m + "gate.weight"] = ("F32" if fp8 else dtype, [E, H])
            if c.get("topk_method") == "noaux_tc" or c["model_type"] == "deepseek_v3":
                vec(m + "gate.e_score_correction_bias", E, "F32")
            for e in range(E):
                x = m + "experts.%d." % e
                mat(x + "gate_proj.weight", I, H)
                mat(x + "up_proj.weight", I, H)
                mat(x + "down_proj.weight", H, I)
            if c.get("n_shared_experts"):
                S = I * c["n_shared_experts"]
                mat(m + "shared_experts.gate_proj.weight", S, H)
                mat(m + "shared_experts.up_proj.weight", S, H)
                mat(m + "shared_experts.down_proj.weight", H, S)
        else:
            I = c["intermediate_size"]
            mat(m + "gate_proj.weight", I, H)
            mat(m + "up_proj.weight", I, H)
            mat(m + "down_proj.weight", H, I)
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("out")
    ap.add_argument("--dtype", default="BF16", choices=["BF16", "F16", "F32"])
    args = ap.parse_args()
    with open(args.config) as f:
        c = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    shutil.copyfile(args.config, os.path.join(args.out, "config.json"))
    header, off, params = {}, 0, 0
    for name, (dt, shape) in sorted(tensors(c, args.dtype).items()):
        n = math.prod(shape)
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n * SIZES[dt]]}
        off += n * SIZES[dt]
        if not name.endswith("_scale_inv"):
            params += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path = os.path.join(args.out, "model.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        f.truncate(8 + len(raw) + off)  # a hole: no disk used for the data
    print("%s: %d tensors, %.2f B parameters, %.1f GB (sparse)" % (path, len(header), params / 1e9, off / 1e9))


if __name__ == "__main__":
    main()
