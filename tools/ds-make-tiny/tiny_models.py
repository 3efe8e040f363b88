# Shapes, configs and random weights of the tiny models (Hugging Face tensor names and config keys).
import numpy as np

from tiny_io import bf16, f32, quantize_fp8_blockwise

VOCAB = 512


class Init:
    """Random weights scaled so activations stay O(1): linear ~ N(0, 1/fan_in), norms ~ 1 + noise."""

    def __init__(self, seed):
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def linear(self, out_dim, in_dim, gain=1.0):
        return self.rng.standard_normal((out_dim, in_dim)) * (gain / np.sqrt(in_dim))

    def norm(self, n):
        return 1.0 + 0.1 * self.rng.standard_normal(n)

    def vec(self, n, std):
        return std * self.rng.standard_normal(n)

    def embedding(self, vocab, hidden, used, std=1.0):
        # Rows past the tokenizer's size are padding in real checkpoints and never trained: keep them small so
        # a greedy continuation stays inside the tokenizer.
        e = std * self.rng.standard_normal((vocab, hidden))
        e[used:] *= 0.05
        return e


def _llama_like_layer(init, p, hidden, heads, kv_heads, head_dim, inter, qkv_bias, out_gain=1.0):
    t = {p + "input_layernorm.weight": init.norm(hidden),
         p + "self_attn.q_proj.weight": init.linear(heads * head_dim, hidden),
         p + "self_attn.k_proj.weight": init.linear(kv_heads * head_dim, hidden),
         p + "self_attn.v_proj.weight": init.linear(kv_heads * head_dim, hidden),
         p + "self_attn.o_proj.weight": init.linear(hidden, heads * head_dim, out_gain),
         p + "post_attention_layernorm.weight": init.norm(hidden),
         p + "mlp.gate_proj.weight": init.linear(inter, hidden),
         p + "mlp.up_proj.weight": init.linear(inter, hidden),
         p + "mlp.down_proj.weight": init.linear(hidden, inter, out_gain)}
    if qkv_bias:
        # A large v bias adds one constant vector to every position, i.e. one token favoured everywhere.
        for n, dim, std in (("q", heads, 0.3), ("k", kv_heads, 0.3), ("v", kv_heads, 0.02)):
            t[p + f"self_attn.{n}_proj.bias"] = init.vec(dim * head_dim, std)
    return t


def tiny_llama(used_vocab):
    c = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": VOCAB,
         "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2, "num_attention_heads": 8,
         "num_key_value_heads": 2, "head_dim": 8, "hidden_act": "silu", "max_position_embeddings": 131072,
         "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
         "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                          "original_max_position_embeddings": 8192, "rope_type": "llama3"},
         "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False, "initializer_range": 0.02,
         "pretraining_tp": 1, "use_cache": True, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"}
    init = Init(1001)
    t = {"model.embed_tokens.weight": init.embedding(VOCAB, 64, used_vocab)}
    for i in range(c["num_hidden_layers"]):
        t.update(_llama_like_layer(init, f"model.layers.{i}.", 64, 8, 2, 8, 176, False))
    t["model.norm.weight"] = init.norm(64)
    t["lm_head.weight"] = init.embedding(VOCAB, 64, used_vocab, std=3.0 / 8.0)
    return c, {k: f32(v) for k, v in t.items()}


def tiny_qwen2(used_vocab, bos_id, eos_id):
    c = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": VOCAB,
         "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "hidden_act": "silu", "max_position_embeddings": 131072,
         "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 4096, "use_sliding_window": False,
         "max_window_layers": 2, "attention_dropout": 0.0, "tie_word_embeddings": True,
         "initializer_range": 0.02, "use_cache": True, "bos_token_id": bos_id, "eos_token_id": eos_id,
         "torch_dtype": "float32"}
    init = Init(1002)
    # Tied: the same matrix embeds and produces logits. A token's own embedding left in the residual stream then
    # scores itself highly, so random weights repeat the input token; larger layer outputs drown it out.
    t = {"model.embed_tokens.weight": init.embedding(VOCAB, 64, used_vocab, std=0.35)}
    for i in range(c["num_hidden_layers"]):
        t.update(_llama_like_layer(init, f"model.layers.{i}.", 64, 4, 2, 16, 160, True, out_gain=3.0))
    t["model.norm.weight"] = init.norm(64)
    return c, {k: f32(v) for k, v in t.items()}


def _mla(init, p, c):
    h, nh = c["hidden_size"], c["num_attention_heads"]
    qk = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
    t = {}
    if c["q_lora_rank"] is None:
        t[p + "self_attn.q_proj.weight"] = init.linear(nh * qk, h)
    else:
        t[p + "self_attn.q_a_proj.weight"] = init.linear(c["q_lora_rank"], h)
        t[p + "self_attn.q_a_layernorm.weight"] = init.norm(c["q_lora_rank"])
        t[p + "self_attn.q_b_proj.weight"] = init.linear(nh * qk, c["q_lora_rank"])
    t[p + "self_attn.kv_a_proj_with_mqa.weight"] = init.linear(c["kv_lora_rank"] + c["qk_rope_head_dim"], h)
    t[p + "self_attn.kv_a_layernorm.weight"] = init.norm(c["kv_lora_rank"])
    t[p + "self_attn.kv_b_proj.weight"] = init.linear(nh * (c["qk_nope_head_dim"] + c["v_head_dim"]),
                                                       c["kv_lora_rank"])
    t[p + "self_attn.o_proj.weight"] = init.linear(h, nh * c["v_head_dim"])
    return t


def _mlp(init, p, hidden, inter, gain=1.0):
    return {p + "gate_proj.weight": init.linear(inter, hidden),
            p + "up_proj.weight": init.linear(inter, hidden),
            p + "down_proj.weight": init.linear(hidden, inter, gain)}


def _deepseek_tensors(c, seed, used_vocab, with_bias):
    init = Init(seed)
    h = c["hidden_size"]
    t = {"model.embed_tokens.weight": init.embedding(VOCAB, h, used_vocab)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = init.norm(h)
        t.update(_mla(init, p, c))
        t[p + "post_attention_layernorm.weight"] = init.norm(h)
        if i < c["first_k_dense_replace"]:
            t.update(_mlp(init, p + "mlp.", h, c["intermediate_size"]))
            continue
        m = c["moe_intermediate_size"]
        t[p + "mlp.gate.weight"] = init.linear(c["n_routed_experts"], h, gain=2.0)
        if with_bias:
            # Comparable to the spread of sigmoid scores, so the bias changes which experts win.
            t[p + "mlp.gate.e_score_correction_bias"] = init.vec(c["n_routed_experts"], 0.1)
        for e in range(c["n_routed_experts"]):
            t.update(_mlp(init, p + f"mlp.experts.{e}.", h, m))
        t.update(_mlp(init, p + "mlp.shared_experts.", h, m * c["n_shared_experts"]))
    t["model.norm.weight"] = init.norm(h)
    t["lm_head.weight"] = init.embedding(VOCAB, h, used_vocab, std=3.0 / np.sqrt(h))
    return t


def _deepseek_config(arch, model_type, **shape):
    c = {"architectures": [arch], "model_type": model_type, "vocab_size": VOCAB}
    c.update(shape)
    c.update({"hidden_act": "silu", "max_position_embeddings": 163840, "rms_norm_eps": 1e-06,
              "rope_theta": 10000, "attention_bias": False, "attention_dropout": 0.0, "moe_layer_freq": 1,
              "ep_size": 1, "num_nextn_predict_layers": 0, "tie_word_embeddings": False,
              "initializer_range": 0.02, "use_cache": True, "bos_token_id": 0, "eos_token_id": 1})
    return c


def _yarn(mscale):
    return {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": mscale, "mscale_all_dim": mscale,
            "original_max_position_embeddings": 4096, "type": "yarn"}


def _v3_shape(hidden, inter, moe_inter, layers, q_lora, kv_lora, nope, rope, v):
    return dict(hidden_size=hidden, intermediate_size=inter, moe_intermediate_size=moe_inter,
                num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4, n_shared_experts=1,
                n_routed_experts=16, routed_scaling_factor=2.5, kv_lora_rank=kv_lora, q_lora_rank=q_lora,
                qk_rope_head_dim=rope, v_head_dim=v, qk_nope_head_dim=nope, topk_method="noaux_tc",
                n_group=4, topk_group=2, num_experts_per_tok=4, first_k_dense_replace=1, norm_topk_prob=True,
                scoring_func="sigmoid", rope_scaling=_yarn(1.0))


def tiny_deepseek_v3(used_vocab):
    c = _deepseek_config("DeepseekV3ForCausalLM", "deepseek_v3",
                         **_v3_shape(64, 128, 32, 3, 48, 32, 16, 16, 24))
    c["torch_dtype"] = "float32"
    t = _deepseek_tensors(c, 1003, used_vocab, with_bias=True)
    return c, {k: f32(v) for k, v in t.items()}


def tiny_deepseek_v2(used_vocab):
    shape = dict(hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=3,
                 num_attention_heads=4, num_key_value_heads=4, n_shared_experts=2, n_routed_experts=12,
                 routed_scaling_factor=1.0, kv_lora_rank=32, q_lora_rank=None, qk_rope_head_dim=8,
                 v_head_dim=16, qk_nope_head_dim=24, topk_method="greedy", n_group=1, topk_group=1,
                 num_experts_per_tok=3, first_k_dense_replace=1, norm_topk_prob=False,
                 scoring_func="softmax", aux_loss_alpha=0.001, seq_aux=True, rope_scaling=_yarn(0.707))
    c = _deepseek_config("DeepseekV2ForCausalLM", "deepseek_v2", **shape)
    c["torch_dtype"] = "float32"
    t = _deepseek_tensors(c, 1004, used_vocab, with_bias=False)
    return c, {k: f32(v) for k, v in t.items()}


# In the released DeepSeek-V3 checkpoint every nn.Linear weight of attention and MLP/experts is FP8 with a
# `weight_scale_inv`; embeddings, all RMSNorm weights, the router (`mlp.gate.weight`) and lm_head stay BF16 and
# the router's e_score_correction_bias is F32.
_FP8_SUFFIXES = ("_proj.weight", "_proj_with_mqa.weight")


def tiny_deepseek_v3_fp8(used_vocab):
    # hidden 192, q_lora 160, kv_lora 144, dense 288: several 128-blocks, each dimension ending in a partial one.
    c = _deepseek_config("DeepseekV3ForCausalLM", "deepseek_v3",
                         **_v3_shape(192, 288, 64, 2, 160, 144, 32, 16, 24))
    c["torch_dtype"] = "bfloat16"
    c["quantization_config"] = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                "weight_block_size": [128, 128]}
    t = _deepseek_tensors(c, 1005, used_vocab, with_bias=True)
    out = {}
    for name, w in t.items():
        if name.endswith(_FP8_SUFFIXES) and name != "lm_head.weight":
            q, s = quantize_fp8_blockwise(w)
            out[name] = q
            out[name + "_scale_inv"] = s
        elif name.endswith("e_score_correction_bias"):
            out[name] = f32(w)
        else:
            out[name] = bf16(w)
    return c, out
