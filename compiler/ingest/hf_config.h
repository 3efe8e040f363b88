// Hugging Face config.json -> ModelConfig for llama, qwen2, mistral, deepseek_v2, deepseek_v3.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ds {

enum class ModelArch { kLlama, kQwen2, kMistral, kDeepseekV2, kDeepseekV3 };
const char* modelArchName(ModelArch arch);  // the HF model_type spelling

enum class RopeScalingType { kNone, kLinear, kLlama3, kYarn };

// Raw rope scaling parameters as the config gives them (HF defaults filled in).
struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1.0;
  // llama3 and yarn
  int64_t original_max_position_embeddings = 0;
  // llama3
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  // yarn; 0 for mscale/mscale_all_dim means "not given" (HF treats both as falsy then)
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 0.0;
  double mscale_all_dim = 0.0;
  std::optional<double> attention_factor;
  bool truncate = true;
};

enum class TopkMethod { kGreedy, kGroupLimitedGreedy, kNoauxTc };
enum class ScoringFunc { kSoftmax, kSigmoid };

// Multi-head latent attention + MoE routing (deepseek_v2 / deepseek_v3 only).
struct DeepseekConfig {
  int64_t q_lora_rank = 0;  // 0: no q LoRA, q_proj is a plain projection (V2-Lite)
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  int64_t n_routed_experts = 0;
  int64_t n_shared_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  TopkMethod topk_method = TopkMethod::kGreedy;
  ScoringFunc scoring_func = ScoringFunc::kSoftmax;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
  // The gate carries the e_score_correction_bias weight (topk_method == noaux_tc): it biases
  // expert choice only, never the combine weights.
  bool gate_has_correction_bias = false;
  // Multi-token-prediction layers stored after the decoder layers; unused by plain decoding.
  int64_t num_nextn_predict_layers = 0;
  // q_pe/k_pe use interleaved (GPT-J) pairs in the checkpoint, as DeepSeek's reference code.
  bool rope_interleave = true;
};

// FP8 weights with per-block inverse scales (tensor "<w>_scale_inv", F32, ceil(rows/bn) x ceil(cols/bk)).
struct QuantizationConfig {
  bool fp8_block = false;
  int64_t block_rows = 0;  // weight_block_size[0]
  int64_t block_cols = 0;  // weight_block_size[1]
};

struct ModelConfig {
  std::string source;      // file name for error messages
  std::string model_type;  // as written in config.json
  ModelArch arch = ModelArch::kLlama;

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;  // dense MLP (DeepSeek: the first_k_dense_replace layers)
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  // Per-head q/k size. DeepSeek: qk_nope_head_dim + qk_rope_head_dim (values use v_head_dim).
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  std::string hidden_act = "silu";  // only silu is accepted
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_qkv_bias = false;  // llama attention_bias, always true for qwen2
  bool attention_o_bias = false;    // llama attention_bias; never for qwen2
  // Attention window per layer in tokens (0 = full causal). A query at position p sees keys
  // in (p - window, p], as HF's sliding-window mask does. Size num_hidden_layers.
  std::vector<int64_t> layer_sliding_window;
  std::string torch_dtype;  // "bfloat16", ... ("" if absent); informational
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;

  bool is_deepseek = false;
  DeepseekConfig deepseek;
  QuantizationConfig quantization;

  // DeepSeek: routed-experts layer (layer >= first_k_dense_replace && layer % moe_layer_freq == 0).
  bool isMoELayer(int64_t layer) const;
  int64_t slidingWindow(int64_t layer) const;
  // Multiplier of q.k before softmax: head_dim^-0.5, times mscale^2 for DeepSeek YaRN with
  // mscale_all_dim (as DeepSeek's reference code and HF do).
  double attentionSoftmaxScale() const;
  // YaRN multiplier applied to cos/sin (1.0 for other rope types).
  double ropeAttentionFactor() const;
};

// Parses config.json text. Errors: "<source_name>: ..." naming the field; UNSUPPORTED with
// "unsupported: <field>=<value>" for anything that would change the math we do not implement;
// INVALID_ARGUMENT for wrong types or inconsistent values; DATA_LOSS for malformed JSON.
StatusOr<ModelConfig> parseHFConfig(std::string_view json, std::string_view source_name);
// Reads <dir>/config.json (or `dir` itself if it names a .json file).
StatusOr<ModelConfig> loadHFConfig(const std::string& dir);

// YaRN's magnitude correction, 0.1 * mscale * ln(scale) + 1 (1 for scale <= 1).
double yarnGetMscale(double scale, double mscale);

}  // namespace ds
