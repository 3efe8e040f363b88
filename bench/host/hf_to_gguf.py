#!/usr/bin/env python3
"""A Hugging Face Llama or Qwen2 folder as a GGUF for llama.cpp, for the side-by-side benchmarks
(docs/serving.md "Against llama-server", bench/host/compare.sh).

llama.cpp's own convert_hf_to_gguf.py needs torch; this writes the same GGUF with numpy and the
gguf-py package llama.cpp vendors (--gguf-py DIR): Llama's q/k rows permuted as llama.cpp does
(GGML's llama rope pairs channels (2i, 2i + 1); Hugging Face rotates halves), Qwen2 as is (NEOX
rope) with its q/k/v biases. Tensors keep their type (F32, or BF16/F16 bits as stored). The
vocabulary comes from tokenizer.model (SentencePiece); a folder without one (random weights of a
real shape, bench/host/make_random_hf.py) gets placeholder tokens - enough for llama-bench.

usage: hf_to_gguf.py <hf-dir> <out.gguf> --gguf-py <llama.cpp>/gguf-py
"""
import argparse
import json
import os
import struct
import sys

import numpy as np


def read_safetensors(path):
    """name -> (numpy array, GGUF raw type or None for f32). BF16/F16 stay as their bits."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[a:b]
        if info["dtype"] == "F32":
            out[name] = (raw.view(np.float32).reshape(info["shape"]), None)
        elif info["dtype"] in ("BF16", "F16"):
            out[name] = (raw.view(np.uint16).reshape(info["shape"]), info["dtype"])
        else:
            sys.exit(f"{path}: tensor {name} is {info['dtype']}; this converter reads F32/F16/BF16")
    return out


def permute(w, heads):  # convert_hf_to_gguf.py LlamaModel.permute
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hf_dir")
    ap.add_argument("out")
    ap.add_argument("--gguf-py", required=True)
    args = ap.parse_args()
    sys.path.insert(0, args.gguf_py)
    import gguf
    import sentencepiece as spm

    cfg = json.load(open(os.path.join(args.hf_dir, "config.json")))
    arch = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2"}.get(cfg.get("model_type"))
    if not arch:
        sys.exit("only Llama/Mistral/Qwen2 checkpoints")
    t = read_safetensors(os.path.join(args.hf_dir, "model.safetensors"))
    H, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    nh, nkv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    hd = cfg.get("head_dim", H // nh)
    raw_types = {"BF16": gguf.GGMLQuantizationType.BF16, "F16": gguf.GGMLQuantizationType.F16}

    w = gguf.GGUFWriter(args.out, arch)
    w.add_name(os.path.basename(os.path.normpath(args.hf_dir)))
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(H)
    w.add_block_count(L)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_dimension_count(hd)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
    w.add_vocab_size(cfg["vocab_size"])
    types_seen = {tp for _, tp in t.values()}
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16 if "BF16" in types_seen else
                    gguf.LlamaFileType.MOSTLY_F16 if "F16" in types_seen else gguf.LlamaFileType.ALL_F32)

    spm_path = os.path.join(args.hf_dir, "tokenizer.model")
    tokens, scores, types = [], [], []
    if os.path.exists(spm_path):
        sp = spm.SentencePieceProcessor(model_file=spm_path)
        for i in range(sp.vocab_size()):
            tokens.append(sp.id_to_piece(i).encode("utf-8"))
            scores.append(sp.get_score(i))
            types.append(gguf.TokenType.UNKNOWN if sp.is_unknown(i) else gguf.TokenType.CONTROL
                         if sp.is_control(i) else gguf.TokenType.BYTE if sp.is_byte(i) else gguf.TokenType.NORMAL)
    else:  # placeholder pieces: ids are all llama-bench needs
        specials = {cfg.get("bos_token_id", 1), cfg.get("eos_token_id", 2)}
        for i in range(cfg["vocab_size"]):
            tokens.append(f"<t{i}>".encode())
            scores.append(-float(i))
            types.append(gguf.TokenType.CONTROL if i in specials else gguf.TokenType.NORMAL)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(cfg.get("bos_token_id", 1))
    w.add_eos_token_id(cfg.get("eos_token_id", 2))
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    def put(gname, hfname, perm=None):
        arr, tp = t[hfname]
        if perm:
            arr = permute(np.asarray(arr), perm)
        if tp is not None and arr.ndim == 1:  # norms and biases are F32 in GGUF (ggml adds f32 only)
            arr = (np.asarray(arr, dtype=np.uint32) << 16).view(np.float32) if tp == "BF16" else \
                np.asarray(arr).view(np.float16).astype(np.float32)
            tp = None
        if tp is None:
            w.add_tensor(gname, np.asarray(arr, dtype=np.float32))
        else:
            w.add_tensor(gname, np.ascontiguousarray(arr), raw_shape=arr.shape, raw_dtype=raw_types[tp])

    llama = arch == "llama"
    put("token_embd.weight", "model.embed_tokens.weight")
    for i in range(L):
        p = f"model.layers.{i}."
        put(f"blk.{i}.attn_norm.weight", p + "input_layernorm.weight")
        put(f"blk.{i}.attn_q.weight", p + "self_attn.q_proj.weight", nh if llama else None)
        put(f"blk.{i}.attn_k.weight", p + "self_attn.k_proj.weight", nkv if llama else None)
        put(f"blk.{i}.attn_v.weight", p + "self_attn.v_proj.weight")
        for x, g in (("q", "attn_q"), ("k", "attn_k"), ("v", "attn_v")):
            if p + f"self_attn.{x}_proj.bias" in t:
                put(f"blk.{i}.{g}.bias", p + f"self_attn.{x}_proj.bias")
        put(f"blk.{i}.attn_output.weight", p + "self_attn.o_proj.weight")
        put(f"blk.{i}.ffn_norm.weight", p + "post_attention_layernorm.weight")
        put(f"blk.{i}.ffn_gate.weight", p + "mlp.gate_proj.weight")
        put(f"blk.{i}.ffn_up.weight", p + "mlp.up_proj.weight")
        put(f"blk.{i}.ffn_down.weight", p + "mlp.down_proj.weight")
    put("output_norm.weight", "model.norm.weight")
    if "lm_head.weight" in t:
        put("output.weight", "lm_head.weight")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
