// parseHFConfig: common transformer fields, RoPE scaling and attention windows; DeepSeek parts elsewhere.
#include "ingest/hf_config.h"

#include <cmath>
#include <set>
#include <utility>

#include "ingest/hf_config_fields.h"
#include "ingest/json_util.h"

namespace ds {
namespace {

using nlohmann::json;

// Defaults of the HF configuration classes for fields that may be absent.
struct ArchDefaults {
  const char* model_type;
  ModelArch arch;
  int64_t max_position_embeddings;
  std::optional<int64_t> bos;
  std::optional<int64_t> eos;
  // HF class default when the key is absent (an explicit null means num_attention_heads).
  std::optional<int64_t> kv_heads;
};

const ArchDefaults kArchs[] = {
    {"llama", ModelArch::kLlama, 2048, 1, 2, std::nullopt},
    {"qwen2", ModelArch::kQwen2, 32768, std::nullopt, std::nullopt, 32},
    {"mistral", ModelArch::kMistral, 4096 * 32, 1, 2, 8},
    {"deepseek_v2", ModelArch::kDeepseekV2, 2048, 100000, 100001, std::nullopt},
    {"deepseek_v3", ModelArch::kDeepseekV3, 4096, 0, 1, std::nullopt},  // MLA: kv heads == heads
};

std::string describe(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// The rotary frequencies are theta^(-2i/d): theta <= 0 gives NaN or no rotation at all.
Status checkRopeTheta(const ConfigFields& f, double theta) {
  if (theta > 0) return Status::ok();
  return f.invalid("rope_theta", "must be positive, got " + std::to_string(theta));
}

Status parseRope(const ConfigFields& f, ModelConfig* c) {
  DS_RETURN_IF_ERROR(f.getDouble("rope_theta", &c->rope_theta, 10000.0));
  DS_RETURN_IF_ERROR(checkRopeTheta(f, c->rope_theta));
  // transformers >= 5 writes "rope_parameters" (with rope_theta inside); older ones "rope_scaling".
  // Both may be present (a v4 config re-saved by v5); rope_parameters' theta is then the live one.
  if (const json* params = f.raw("rope_parameters")) {
    if (params->is_object() && params->contains("rope_theta")) {
      ConfigFields p(*params, f.source(), "rope_parameters.");
      DS_RETURN_IF_ERROR(p.getDouble("rope_theta", &c->rope_theta, c->rope_theta));
      DS_RETURN_IF_ERROR(checkRopeTheta(p, c->rope_theta));
    }
  }
  const char* key = f.has("rope_scaling") ? "rope_scaling" : "rope_parameters";
  const json* rope = f.raw(key);
  if (!rope) return Status::ok();
  if (!rope->is_object()) return f.invalid(key, std::string("must be an object or null, got ") + rope->type_name());
  ConfigFields r(*rope, f.source(), std::string(key) + ".");

  std::string type, rope_type;
  DS_RETURN_IF_ERROR(r.getString("type", &type, std::string()));
  DS_RETURN_IF_ERROR(r.getString("rope_type", &rope_type, std::string()));
  if (!type.empty() && !rope_type.empty() && type != rope_type) {
    return r.invalid("type", "'" + type + "' disagrees with rope_type '" + rope_type + "'");
  }
  if (type.empty()) type = rope_type;
  if (type.empty()) return r.invalid("rope_type", "is missing (need 'type' or 'rope_type')");
  if (r.has("rope_theta")) {
    DS_RETURN_IF_ERROR(r.getDouble("rope_theta", &c->rope_theta, std::nullopt));
    DS_RETURN_IF_ERROR(checkRopeTheta(r, c->rope_theta));
  }

  std::set<std::string> allowed = {"type", "rope_type", "rope_theta"};
  RopeScaling& s = c->rope_scaling;
  if (type == "default") {
    s.type = RopeScalingType::kNone;
  } else if (type == "linear") {
    s.type = RopeScalingType::kLinear;
    allowed.insert("factor");
    DS_RETURN_IF_ERROR(r.getDouble("factor", &s.factor, std::nullopt));
  } else if (type == "llama3") {
    s.type = RopeScalingType::kLlama3;
    for (const char* k : {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) allowed.insert(k);
    DS_RETURN_IF_ERROR(r.getDouble("factor", &s.factor, std::nullopt));
    DS_RETURN_IF_ERROR(r.getDouble("low_freq_factor", &s.low_freq_factor, std::nullopt));
    DS_RETURN_IF_ERROR(r.getDouble("high_freq_factor", &s.high_freq_factor, std::nullopt));
    DS_RETURN_IF_ERROR(r.getInt("original_max_position_embeddings", &s.original_max_position_embeddings,
                                std::nullopt));
    if (!(s.low_freq_factor > 0 && s.high_freq_factor > s.low_freq_factor)) {
      return r.invalid("high_freq_factor", "must exceed low_freq_factor > 0");
    }
  } else if (type == "yarn") {
    s.type = RopeScalingType::kYarn;
    for (const char* k : {"factor", "original_max_position_embeddings", "beta_fast", "beta_slow", "mscale",
                    "mscale_all_dim", "attention_factor", "truncate"}) allowed.insert(k);
    DS_RETURN_IF_ERROR(r.getDouble("factor", &s.factor, std::nullopt));
    // DeepSeek's YaRN defaults to 4096 pretraining positions; HF's generic YaRN to the model's.
    DS_RETURN_IF_ERROR(r.getInt("original_max_position_embeddings", &s.original_max_position_embeddings,
                                c->is_deepseek ? 4096 : c->max_position_embeddings));
    DS_RETURN_IF_ERROR(r.getDouble("beta_fast", &s.beta_fast, 32.0));
    DS_RETURN_IF_ERROR(r.getDouble("beta_slow", &s.beta_slow, 1.0));
    DS_RETURN_IF_ERROR(r.getDouble("mscale", &s.mscale, 0.0));
    DS_RETURN_IF_ERROR(r.getDouble("mscale_all_dim", &s.mscale_all_dim, 0.0));
    if (r.has("attention_factor")) {
      double af;
      DS_RETURN_IF_ERROR(r.getDouble("attention_factor", &af, std::nullopt));
      s.attention_factor = af;
    }
    DS_RETURN_IF_ERROR(r.getBool("truncate", &s.truncate, true));
  } else {
    // dynamic NTK (sequence-length dependent), longrope, ...: not implemented.
    return r.unsupportedValue(rope_type.empty() ? "type" : "rope_type", type);
  }
  if (s.type != RopeScalingType::kNone && !(s.factor > 0)) return r.invalid("factor", "must be positive");
  if (s.type != RopeScalingType::kNone && s.type != RopeScalingType::kLinear &&
      s.original_max_position_embeddings <= 0) {
    return r.invalid("original_max_position_embeddings", "must be positive");
  }
  for (auto it = rope->begin(); it != rope->end(); ++it) {
    if (allowed.count(it.key())) continue;
    if (it.key() == "partial_rotary_factor" && it->is_number() && it->get<double>() == 1.0) continue;
    return r.unsupportedValue(it.key().c_str(), describe(*it));
  }
  return Status::ok();
}

// Fills layer_sliding_window from sliding_window / use_sliding_window / max_window_layers / layer_types.
Status parseAttentionWindows(const ConfigFields& f, ModelConfig* c) {
  int64_t window = 0;
  std::vector<bool> sliding(static_cast<size_t>(c->num_hidden_layers), false);
  if (c->arch == ModelArch::kMistral) {
    // Mistral applies its window to every layer; HF's default is 4096 when the key is absent.
    if (!f.isNull("sliding_window")) DS_RETURN_IF_ERROR(f.getInt("sliding_window", &window, 4096));
    if (window > 0) sliding.assign(sliding.size(), true);
  } else if (c->arch == ModelArch::kQwen2) {
    bool use = false;
    int64_t max_window_layers = 28;
    DS_RETURN_IF_ERROR(f.getBool("use_sliding_window", &use, false));
    DS_RETURN_IF_ERROR(f.getInt("max_window_layers", &max_window_layers, 28));
    if (use && !f.isNull("sliding_window")) DS_RETURN_IF_ERROR(f.getInt("sliding_window", &window, 4096));
    for (int64_t i = 0; i < c->num_hidden_layers; ++i) sliding[i] = window > 0 && i >= max_window_layers;
  }
  if (window < 0) return f.invalid("sliding_window", "must be positive or null");

  if (const json* types = f.raw("layer_types")) {
    if (!types->is_array() || static_cast<int64_t>(types->size()) != c->num_hidden_layers) {
      return f.invalid("layer_types", "must be a list of num_hidden_layers strings");
    }
    for (size_t i = 0; i < types->size(); ++i) {
      const json& t = (*types)[i];
      const std::string kind = t.is_string() ? t.get<std::string>() : std::string();
      if (kind == "full_attention") {
        sliding[i] = false;
      } else if (kind == "sliding_attention" && window > 0) {
        sliding[i] = true;
      } else {
        return f.unsupportedValue("layer_types", "[" + std::to_string(i) + "]=" + describe(t));
      }
    }
  }
  c->layer_sliding_window.assign(static_cast<size_t>(c->num_hidden_layers), 0);
  for (size_t i = 0; i < sliding.size(); ++i) c->layer_sliding_window[i] = sliding[i] ? window : 0;
  return Status::ok();
}

// Fields of other families that change the math; present with a non-neutral value -> refuse.
Status rejectForeignMath(const ConfigFields& f) {
  if (const json* v = f.raw("partial_rotary_factor")) {
    if (!v->is_number() || v->get<double>() != 1.0) return f.unsupportedValue("partial_rotary_factor");
  }
  for (const char* key : {"attn_logit_softcapping", "final_logit_softcapping", "logits_scaling",
                          "embedding_multiplier", "residual_multiplier", "attention_multiplier"}) {
    if (f.has(key)) return f.unsupportedValue(key);
  }
  for (const char* key : {"use_qk_norm", "qk_layernorm"}) {
    if (const json* v = f.raw(key)) {
      if (!(v->is_boolean() && !v->get<bool>())) return f.unsupportedValue(key);
    }
  }
  return Status::ok();
}

constexpr int64_t kMaxDim = (int64_t{1} << 31) - 1;
constexpr int64_t kMaxLayers = 1 << 16;

Status checkPositive(const ConfigFields& f, const char* key, int64_t value) {
  if (value <= 0) return f.invalid(key, "must be positive, got " + std::to_string(value));
  return Status::ok();
}

Status parseCommon(const ConfigFields& f, const ArchDefaults& defaults, ModelConfig* c) {
  DS_RETURN_IF_ERROR(f.getInt("vocab_size", &c->vocab_size, std::nullopt));
  DS_RETURN_IF_ERROR(f.getInt("hidden_size", &c->hidden_size, std::nullopt));
  DS_RETURN_IF_ERROR(f.getInt("intermediate_size", &c->intermediate_size, std::nullopt));
  DS_RETURN_IF_ERROR(f.getInt("num_hidden_layers", &c->num_hidden_layers, std::nullopt));
  DS_RETURN_IF_ERROR(f.getInt("num_attention_heads", &c->num_attention_heads, std::nullopt));
  const bool kv_absent = !f.has("num_key_value_heads") && !f.isNull("num_key_value_heads");
  DS_RETURN_IF_ERROR(f.getInt("num_key_value_heads", &c->num_key_value_heads,
                              kv_absent ? defaults.kv_heads.value_or(c->num_attention_heads)
                                        : c->num_attention_heads));
  DS_RETURN_IF_ERROR(f.getInt("max_position_embeddings", &c->max_position_embeddings,
                              defaults.max_position_embeddings));
  for (auto [key, value] : {std::pair<const char*, int64_t>{"vocab_size", c->vocab_size},
                            {"hidden_size", c->hidden_size}, {"intermediate_size", c->intermediate_size},
                            {"num_hidden_layers", c->num_hidden_layers},
                            {"num_attention_heads", c->num_attention_heads},
                            {"num_key_value_heads", c->num_key_value_heads},
                            {"max_position_embeddings", c->max_position_embeddings}}) {
    DS_RETURN_IF_ERROR(checkPositive(f, key, value));
    // Kernels index with 32-bit ints, and the per-layer tables are allocated up front.
    if (value > kMaxDim) return f.invalid(key, "is implausibly large: " + std::to_string(value));
  }
  if (c->num_hidden_layers > kMaxLayers) {
    return f.invalid("num_hidden_layers", "is implausibly large: " + std::to_string(c->num_hidden_layers));
  }
  if (c->num_attention_heads % c->num_key_value_heads != 0) {
    return f.invalid("num_key_value_heads", "(" + std::to_string(c->num_key_value_heads) +
                                                ") must divide num_attention_heads (" +
                                                std::to_string(c->num_attention_heads) + ")");
  }
  if (!c->is_deepseek) {  // DeepSeek's per-head sizes come from the MLA fields
    if (!f.has("head_dim") && c->hidden_size % c->num_attention_heads != 0) {
      return f.invalid("hidden_size", "is not a multiple of num_attention_heads and head_dim is absent");
    }
    DS_RETURN_IF_ERROR(f.getInt("head_dim", &c->head_dim, c->hidden_size / c->num_attention_heads));
    DS_RETURN_IF_ERROR(checkPositive(f, "head_dim", c->head_dim));
    if (c->head_dim > kMaxDim) return f.invalid("head_dim", "is implausibly large: " + std::to_string(c->head_dim));
    if (c->head_dim % 2 != 0) return f.invalid("head_dim", "must be even (rotary pairs)");
  }
  DS_RETURN_IF_ERROR(f.getString("hidden_act", &c->hidden_act, std::string("silu")));
  if (c->hidden_act != "silu") return f.unsupportedValue("hidden_act");
  DS_RETURN_IF_ERROR(f.getDouble("rms_norm_eps", &c->rms_norm_eps, 1e-6));
  if (!(c->rms_norm_eps > 0 && c->rms_norm_eps < 1)) {
    return f.invalid("rms_norm_eps", "must be in (0, 1), got " + std::to_string(c->rms_norm_eps));
  }
  DS_RETURN_IF_ERROR(f.getBool("tie_word_embeddings", &c->tie_word_embeddings, false));

  bool mlp_bias = false;
  DS_RETURN_IF_ERROR(f.getBool("mlp_bias", &mlp_bias, false));
  if (mlp_bias) return f.unsupportedValue("mlp_bias", "true");
  if (c->arch == ModelArch::kLlama) {
    bool bias = false;
    DS_RETURN_IF_ERROR(f.getBool("attention_bias", &bias, false));
    c->attention_qkv_bias = c->attention_o_bias = bias;
  } else if (c->arch == ModelArch::kQwen2) {
    // Qwen2's attention hard-codes q/k/v bias and no o bias; the config key is not read by HF.
    c->attention_qkv_bias = true;
    c->attention_o_bias = false;
  } else if (c->arch == ModelArch::kMistral) {
    bool bias = false;
    DS_RETURN_IF_ERROR(f.getBool("attention_bias", &bias, false));
    if (bias) return f.unsupportedValue("attention_bias", "true");
  }
  double dropout;
  DS_RETURN_IF_ERROR(f.getDouble("attention_dropout", &dropout, 0.0));  // inference: no dropout

  const char* dtype_key = f.has("torch_dtype") ? "torch_dtype" : "dtype";
  DS_RETURN_IF_ERROR(f.getString(dtype_key, &c->torch_dtype, std::string()));
  std::optional<int64_t> bos;
  DS_RETURN_IF_ERROR(f.getOptionalInt("bos_token_id", &bos));
  c->bos_token_id = f.isNull("bos_token_id") ? std::nullopt : (bos ? bos : defaults.bos);
  std::vector<int64_t> eos_default;
  if (defaults.eos) eos_default.push_back(*defaults.eos);
  if (f.isNull("eos_token_id")) eos_default.clear();
  DS_RETURN_IF_ERROR(f.getIntList("eos_token_id", &c->eos_token_ids, eos_default));
  return Status::ok();
}

}  // namespace

const char* modelArchName(ModelArch arch) {
  for (const ArchDefaults& a : kArchs) {
    if (a.arch == arch) return a.model_type;
  }
  return "?";
}

double yarnGetMscale(double scale, double mscale) {
  if (scale <= 1.0) return 1.0;
  return 0.1 * mscale * std::log(scale) + 1.0;
}

bool ModelConfig::isMoELayer(int64_t layer) const {
  if (!is_deepseek || deepseek.n_routed_experts == 0 || layer < 0 || layer >= num_hidden_layers) return false;
  return layer >= deepseek.first_k_dense_replace && layer % deepseek.moe_layer_freq == 0;
}

int64_t ModelConfig::slidingWindow(int64_t layer) const {
  if (layer < 0 || layer >= static_cast<int64_t>(layer_sliding_window.size())) return 0;
  return layer_sliding_window[static_cast<size_t>(layer)];
}

double ModelConfig::attentionSoftmaxScale() const {
  double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  if (is_deepseek && rope_scaling.type == RopeScalingType::kYarn && rope_scaling.mscale_all_dim != 0.0) {
    const double m = yarnGetMscale(rope_scaling.factor, rope_scaling.mscale_all_dim);
    scale *= m * m;
  }
  return scale;
}

double ModelConfig::ropeAttentionFactor() const {
  if (rope_scaling.type != RopeScalingType::kYarn) return 1.0;
  if (rope_scaling.attention_factor) return *rope_scaling.attention_factor;
  const double f = rope_scaling.factor;
  if (rope_scaling.mscale != 0.0 && rope_scaling.mscale_all_dim != 0.0) {
    return yarnGetMscale(f, rope_scaling.mscale) / yarnGetMscale(f, rope_scaling.mscale_all_dim);
  }
  return yarnGetMscale(f, 1.0);
}

StatusOr<ModelConfig> parseHFConfig(std::string_view text, std::string_view source_name) {
  const std::string source(source_name);
  json root;
  DS_RETURN_IF_ERROR(parseJsonStrict(text, source, &root));
  if (!root.is_object()) return invalidArgument(source + ": config is a JSON " + root.type_name() + ", not an object");
  ConfigFields f(root, source);

  ModelConfig c;
  c.source = source;
  DS_RETURN_IF_ERROR(f.getString("model_type", &c.model_type, std::nullopt));
  const ArchDefaults* defaults = nullptr;
  for (const ArchDefaults& a : kArchs) {
    if (c.model_type == a.model_type) defaults = &a;
  }
  if (!defaults) return f.unsupportedValue("model_type");
  c.arch = defaults->arch;
  c.is_deepseek = c.arch == ModelArch::kDeepseekV2 || c.arch == ModelArch::kDeepseekV3;

  DS_RETURN_IF_ERROR(parseCommon(f, *defaults, &c));
  DS_RETURN_IF_ERROR(rejectForeignMath(f));
  if (c.is_deepseek) DS_RETURN_IF_ERROR(parseDeepseekFields(f, &c));
  DS_RETURN_IF_ERROR(parseRope(f, &c));
  DS_RETURN_IF_ERROR(parseAttentionWindows(f, &c));
  DS_RETURN_IF_ERROR(parseQuantizationConfig(f, &c));
  return c;
}

StatusOr<ModelConfig> loadHFConfig(const std::string& dir) {
  const bool is_file = dir.size() >= 5 && dir.compare(dir.size() - 5, 5, ".json") == 0;
  const std::string path = is_file ? dir : dir + "/config.json";
  std::string text;
  DS_RETURN_IF_ERROR(readTextFile(path, &text));
  return parseHFConfig(text, path);
}

}  // namespace ds
