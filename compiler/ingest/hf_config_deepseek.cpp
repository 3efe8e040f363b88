// DeepSeek V2/V3 fields (MLA ranks, MoE routing) and the FP8 block quantization_config.
#include <string>

#include "ingest/hf_config.h"
#include "ingest/hf_config_fields.h"

namespace ds {
namespace {

// Defaults of the DeepSeek configuration classes (HF transformers and DeepSeek's own
// configuration_deepseek.py agree on these).
struct DeepseekDefaults {
  int64_t n_routed_experts, n_shared_experts;
  std::optional<int64_t> num_experts_per_tok;
  int64_t moe_intermediate_size, first_k_dense_replace, n_group, topk_group, nextn;
  const char* topk_method;
  const char* scoring_func;
  bool norm_topk_prob;
  double routed_scaling_factor;
};

}  // namespace

Status parseDeepseekFields(const ConfigFields& f, ModelConfig* c) {
  const bool v3 = c->arch == ModelArch::kDeepseekV3;
  const DeepseekDefaults def =
      v3 ? DeepseekDefaults{256, 1, 8, 2048, 3, 8, 4, 1, "noaux_tc", "sigmoid", true, 2.5}
         : DeepseekDefaults{64, 2, std::nullopt, 1407, 0, 1, 1, 0, "greedy", "softmax", false, 1.0};
  DeepseekConfig& d = c->deepseek;

  // q_lora_rank: explicit null means "no q compression" (V2-Lite); absent means the default.
  if (f.isNull("q_lora_rank")) {
    d.q_lora_rank = 0;
  } else {
    DS_RETURN_IF_ERROR(f.getInt("q_lora_rank", &d.q_lora_rank, 1536));
  }
  DS_RETURN_IF_ERROR(f.getInt("kv_lora_rank", &d.kv_lora_rank, 512));
  DS_RETURN_IF_ERROR(f.getInt("qk_nope_head_dim", &d.qk_nope_head_dim, 128));
  DS_RETURN_IF_ERROR(f.getInt("qk_rope_head_dim", &d.qk_rope_head_dim, 64));
  DS_RETURN_IF_ERROR(f.getInt("v_head_dim", &d.v_head_dim, 128));

  // Explicit null: a dense model (DeepSeek's code then builds no MoE layer).
  if (f.isNull("n_routed_experts")) {
    d.n_routed_experts = 0;
  } else {
    DS_RETURN_IF_ERROR(f.getInt("n_routed_experts", &d.n_routed_experts, def.n_routed_experts));
  }
  DS_RETURN_IF_ERROR(f.getInt("n_shared_experts", &d.n_shared_experts, def.n_shared_experts));
  DS_RETURN_IF_ERROR(f.getInt("moe_intermediate_size", &d.moe_intermediate_size, def.moe_intermediate_size));
  DS_RETURN_IF_ERROR(f.getInt("first_k_dense_replace", &d.first_k_dense_replace, def.first_k_dense_replace));
  DS_RETURN_IF_ERROR(f.getInt("moe_layer_freq", &d.moe_layer_freq, 1));
  DS_RETURN_IF_ERROR(f.getInt("n_group", &d.n_group, def.n_group));
  DS_RETURN_IF_ERROR(f.getInt("topk_group", &d.topk_group, def.topk_group));
  DS_RETURN_IF_ERROR(f.getInt("num_experts_per_tok", &d.num_experts_per_tok,
                             d.n_routed_experts > 0 ? def.num_experts_per_tok : std::optional<int64_t>(0)));
  DS_RETURN_IF_ERROR(f.getBool("norm_topk_prob", &d.norm_topk_prob, def.norm_topk_prob));
  DS_RETURN_IF_ERROR(f.getDouble("routed_scaling_factor", &d.routed_scaling_factor, def.routed_scaling_factor));
  DS_RETURN_IF_ERROR(f.getInt("num_nextn_predict_layers", &d.num_nextn_predict_layers, def.nextn));
  DS_RETURN_IF_ERROR(f.getBool("rope_interleave", &d.rope_interleave, true));

  std::string topk_method, scoring_func;
  DS_RETURN_IF_ERROR(f.getString("topk_method", &topk_method, std::string(def.topk_method)));
  if (topk_method == "greedy") d.topk_method = TopkMethod::kGreedy;
  else if (topk_method == "group_limited_greedy") d.topk_method = TopkMethod::kGroupLimitedGreedy;
  else if (topk_method == "noaux_tc") d.topk_method = TopkMethod::kNoauxTc;
  else return f.unsupportedValue("topk_method");
  DS_RETURN_IF_ERROR(f.getString("scoring_func", &scoring_func, std::string(def.scoring_func)));
  if (scoring_func == "softmax") d.scoring_func = ScoringFunc::kSoftmax;
  else if (scoring_func == "sigmoid") d.scoring_func = ScoringFunc::kSigmoid;
  else return f.unsupportedValue("scoring_func");
  d.gate_has_correction_bias = d.topk_method == TopkMethod::kNoauxTc;

  // Training-only or parallelism-only fields: type-checked, no effect on the math.
  int64_t ep_size;
  DS_RETURN_IF_ERROR(f.getInt("ep_size", &ep_size, 1));
  double aux_loss_alpha;
  DS_RETURN_IF_ERROR(f.getDouble("aux_loss_alpha", &aux_loss_alpha, 0.0));
  bool seq_aux;
  DS_RETURN_IF_ERROR(f.getBool("seq_aux", &seq_aux, true));

  bool attention_bias = false;
  DS_RETURN_IF_ERROR(f.getBool("attention_bias", &attention_bias, false));
  if (attention_bias) return f.unsupportedValue("attention_bias", "true");

  // --- consistency ---------------------------------------------------------
  if (d.q_lora_rank < 0) return f.invalid("q_lora_rank", "must be positive or null");
  for (auto [key, value] : {std::pair<const char*, int64_t>{"kv_lora_rank", d.kv_lora_rank},
                            {"qk_nope_head_dim", d.qk_nope_head_dim}, {"qk_rope_head_dim", d.qk_rope_head_dim},
                            {"v_head_dim", d.v_head_dim}}) {
    if (value <= 0) return f.invalid(key, "must be positive, got " + std::to_string(value));
  }
  if (d.qk_rope_head_dim % 2 != 0) return f.invalid("qk_rope_head_dim", "must be even (rotary pairs)");
  if (c->num_key_value_heads != c->num_attention_heads) {
    // MLA expands the latent to every head; grouped KV has no meaning there.
    return f.unsupportedValue("num_key_value_heads", std::to_string(c->num_key_value_heads) +
                                                         " (MLA needs num_key_value_heads == num_attention_heads)");
  }
  c->head_dim = d.qk_nope_head_dim + d.qk_rope_head_dim;

  if (d.n_routed_experts < 0) return f.invalid("n_routed_experts", "must be >= 0");
  if (d.n_routed_experts > 0) {
    if (d.num_experts_per_tok <= 0 || d.num_experts_per_tok > d.n_routed_experts) {
      return f.invalid("num_experts_per_tok", "must be in [1, n_routed_experts=" + std::to_string(d.n_routed_experts) +
                                                  "], got " + std::to_string(d.num_experts_per_tok));
    }
    if (d.moe_intermediate_size <= 0) return f.invalid("moe_intermediate_size", "must be positive");
    if (d.n_shared_experts < 0) return f.invalid("n_shared_experts", "must be >= 0");
    if (d.moe_layer_freq <= 0) return f.invalid("moe_layer_freq", "must be positive");
    if (d.first_k_dense_replace < 0) return f.invalid("first_k_dense_replace", "must be >= 0");
    if (d.topk_method != TopkMethod::kGreedy) {
      if (d.n_group <= 0 || d.n_routed_experts % d.n_group != 0) {
        return f.invalid("n_group", "must divide n_routed_experts=" + std::to_string(d.n_routed_experts));
      }
      if (d.topk_group <= 0 || d.topk_group > d.n_group) return f.invalid("topk_group", "must be in [1, n_group]");
      const int64_t per_group = d.n_routed_experts / d.n_group;
      if (d.num_experts_per_tok > d.topk_group * per_group) {
        return f.invalid("num_experts_per_tok", "exceeds the experts of the topk_group selected groups");
      }
      if (d.topk_method == TopkMethod::kNoauxTc && per_group < 2) {
        return f.invalid("n_group", "noaux_tc scores a group by its top-2 experts: needs >= 2 experts per group");
      }
    }
    // DeepSeek's V2 code scales routed weights only when it does not normalise them; HF's V2
    // port always scales. Both agree (and equal "normalise if asked, then scale", the V3 rule)
    // unless normalisation and a scale != 1 meet, so that combination is refused.
    if (!v3 && d.norm_topk_prob && d.num_experts_per_tok > 1 && d.routed_scaling_factor != 1.0) {
      return f.unsupportedValue("routed_scaling_factor",
                                std::to_string(d.routed_scaling_factor) + " with norm_topk_prob=true (deepseek_v2)");
    }
  }
  if (d.num_nextn_predict_layers < 0) return f.invalid("num_nextn_predict_layers", "must be >= 0");
  return Status::ok();
}

Status parseQuantizationConfig(const ConfigFields& f, ModelConfig* c) {
  const nlohmann::json* q = f.raw("quantization_config");
  if (!q) return Status::ok();
  if (!q->is_object()) return f.invalid("quantization_config", "must be an object");
  ConfigFields qf(*q, f.source(), "quantization_config.");
  for (auto it = q->begin(); it != q->end(); ++it) {
    const std::string& key = it.key();
    if (key != "quant_method" && key != "fmt" && key != "activation_scheme" && key != "weight_block_size" &&
        !(key == "modules_to_not_convert" && it->is_null())) {
      return qf.unsupportedValue(key.c_str());
    }
  }
  std::string method, fmt, activation;
  DS_RETURN_IF_ERROR(qf.getString("quant_method", &method, std::nullopt));
  if (method != "fp8") return qf.unsupportedValue("quant_method");
  DS_RETURN_IF_ERROR(qf.getString("fmt", &fmt, std::string("e4m3")));
  if (fmt != "e4m3") return qf.unsupportedValue("fmt");
  DS_RETURN_IF_ERROR(qf.getString("activation_scheme", &activation, std::string("dynamic")));
  if (activation != "dynamic") return qf.unsupportedValue("activation_scheme");
  const nlohmann::json* block = qf.raw("weight_block_size");
  if (!block) return qf.unsupportedValue("weight_block_size", "null (per-tensor FP8)");
  if (!block->is_array() || block->size() != 2 || !(*block)[0].is_number_integer() ||
      !(*block)[1].is_number_integer()) {
    return qf.invalid("weight_block_size", "must be a list of two integers, got " + block->dump());
  }
  const int64_t rows = (*block)[0].get<int64_t>(), cols = (*block)[1].get<int64_t>();
  if (rows != 128 || cols != 128) return qf.unsupportedValue("weight_block_size", block->dump());
  c->quantization.fp8_block = true;
  c->quantization.block_rows = rows;
  c->quantization.block_cols = cols;
  return Status::ok();
}

}  // namespace ds
