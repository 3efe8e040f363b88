// parseHFConfig: unsupported fields, type errors, defaults, and the less common variants it honours.
#include <cmath>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ingest/hf_config.h"

namespace ds {
namespace {

using nlohmann::json;

json llamaBase() {
  return json{{"model_type", "llama"},        {"vocab_size", 100},       {"hidden_size", 64},
              {"intermediate_size", 128},     {"num_hidden_layers", 4},  {"num_attention_heads", 4}};
}

json deepseekBase(const char* type) {
  json j = llamaBase();
  j["model_type"] = type;
  j.update(json{{"kv_lora_rank", 32},        {"q_lora_rank", nullptr},      {"qk_nope_head_dim", 16},
                {"qk_rope_head_dim", 8},     {"v_head_dim", 16},            {"n_routed_experts", 8},
                {"n_shared_experts", 1},     {"num_experts_per_tok", 2},    {"moe_intermediate_size", 32},
                {"first_k_dense_replace", 1}, {"n_group", 2},               {"topk_group", 1}});
  return j;
}

StatusOr<ModelConfig> parse(const json& j) { return parseHFConfig(j.dump(), "test/config.json"); }

ModelConfig parseOk(const json& j) {
  auto c = parse(j);
  EXPECT_TRUE(c.isOk()) << c.status().toString();
  return c.isOk() ? c.value() : ModelConfig{};
}

// Expects failure with `code` and a message naming the file and containing `part`.
void expectError(const json& j, ds_status_code_t code, const std::string& part) {
  auto c = parse(j);
  ASSERT_FALSE(c.isOk()) << "accepted: " << j.dump();
  EXPECT_EQ(c.status().code(), code) << c.status().toString();
  EXPECT_NE(c.status().message().find(part), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("test/config.json"), std::string::npos) << c.status().message();
}

json with(json j, const std::string& key, json value) {
  j[key] = std::move(value);
  return j;
}

TEST(HFConfigErrorsTest, UnsupportedModelTypeAndMathFields) {
  expectError(with(llamaBase(), "model_type", "gpt2"), DS_UNSUPPORTED, "unsupported: model_type=gpt2");
  expectError(with(llamaBase(), "hidden_act", "gelu"), DS_UNSUPPORTED, "unsupported: hidden_act=gelu");
  expectError(with(llamaBase(), "mlp_bias", true), DS_UNSUPPORTED, "unsupported: mlp_bias=true");
  expectError(with(llamaBase(), "partial_rotary_factor", 0.5), DS_UNSUPPORTED,
              "unsupported: partial_rotary_factor=0.5");
  expectError(with(llamaBase(), "final_logit_softcapping", 30.0), DS_UNSUPPORTED, "final_logit_softcapping");
  expectError(with(with(llamaBase(), "model_type", "mistral"), "attention_bias", true), DS_INVALID_ARGUMENT,
              "(8) must divide num_attention_heads (4)");  // Mistral's absent kv heads default to 8
  expectError(with(with(with(llamaBase(), "model_type", "mistral"), "num_key_value_heads", 2), "attention_bias", true),
              DS_UNSUPPORTED,
              "attention_bias=true");
}

TEST(HFConfigErrorsTest, RopeScalingVariants) {
  expectError(with(llamaBase(), "rope_scaling", json{{"type", "dynamic"}, {"factor", 2.0}}), DS_UNSUPPORTED,
              "unsupported: rope_scaling.type=dynamic");
  expectError(with(llamaBase(), "rope_scaling", json{{"rope_type", "longrope"}}), DS_UNSUPPORTED,
              "unsupported: rope_scaling.rope_type=longrope");
  expectError(with(llamaBase(), "rope_scaling", json{{"rope_type", "linear"}, {"factor", 2.0}, {"extra", 1}}),
              DS_UNSUPPORTED, "unsupported: rope_scaling.extra=1");
  expectError(with(llamaBase(), "rope_scaling", json{{"rope_type", "llama3"}, {"factor", 8.0}}),
              DS_INVALID_ARGUMENT, "'rope_scaling.low_freq_factor'");
  expectError(with(llamaBase(), "rope_scaling", json{{"type", "linear"}, {"rope_type", "yarn"}, {"factor", 2}}),
              DS_INVALID_ARGUMENT, "disagrees");
  expectError(with(llamaBase(), "rope_scaling", "linear"), DS_INVALID_ARGUMENT, "'rope_scaling'");

  const ModelConfig linear = parseOk(with(llamaBase(), "rope_scaling", json{{"type", "linear"}, {"factor", 4}}));
  EXPECT_EQ(linear.rope_scaling.type, RopeScalingType::kLinear);
  EXPECT_EQ(linear.rope_scaling.factor, 4.0);
  // Generic (non-DeepSeek) YaRN without mscale: cos/sin factor 0.1 ln(s) + 1, softmax scale untouched.
  json yarn = with(llamaBase(), "max_position_embeddings", 8192);
  yarn["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  const ModelConfig y = parseOk(yarn);
  EXPECT_EQ(y.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_DOUBLE_EQ(y.ropeAttentionFactor(), 0.1 * std::log(4.0) + 1.0);
  EXPECT_DOUBLE_EQ(y.attentionSoftmaxScale(), 1.0 / 4.0);
  yarn["rope_scaling"]["attention_factor"] = 1.25;
  EXPECT_DOUBLE_EQ(parseOk(yarn).ropeAttentionFactor(), 1.25);
  // transformers 5 style: rope_parameters carries rope_theta.
  const ModelConfig v5 =
      parseOk(with(llamaBase(), "rope_parameters", json{{"rope_type", "default"}, {"rope_theta", 1e6}}));
  EXPECT_EQ(v5.rope_theta, 1e6);
  EXPECT_EQ(v5.rope_scaling.type, RopeScalingType::kNone);
  json both = with(llamaBase(), "rope_scaling", json{{"type", "linear"}, {"factor", 2.0}});
  both["rope_theta"] = 1e4;
  both["rope_parameters"] = {{"rope_type", "linear"}, {"factor", 2.0}, {"rope_theta", 5e5}};
  const ModelConfig b = parseOk(both);
  EXPECT_EQ(b.rope_theta, 5e5);
  EXPECT_EQ(b.rope_scaling.type, RopeScalingType::kLinear);
}

TEST(HFConfigErrorsTest, TypeErrorsNameFieldAndFile) {
  expectError(with(llamaBase(), "hidden_size", "64"), DS_INVALID_ARGUMENT,
              "field 'hidden_size' must be an integer, got string");
  expectError(with(llamaBase(), "rms_norm_eps", "1e-5"), DS_INVALID_ARGUMENT, "field 'rms_norm_eps' must be a number");
  expectError(with(llamaBase(), "tie_word_embeddings", "true"), DS_INVALID_ARGUMENT,
              "'tie_word_embeddings' must be a boolean");
  expectError(with(llamaBase(), "num_hidden_layers", 4.5), DS_INVALID_ARGUMENT, "'num_hidden_layers'");
  expectError(with(llamaBase(), "eos_token_id", json{1, "x"}), DS_INVALID_ARGUMENT, "'eos_token_id'");
  expectError(with(llamaBase(), "model_type", 3), DS_INVALID_ARGUMENT, "'model_type' must be a string");
  json missing = llamaBase();
  missing.erase("vocab_size");
  expectError(missing, DS_INVALID_ARGUMENT, "missing required field 'vocab_size'");
  expectError(with(llamaBase(), "num_key_value_heads", 3), DS_INVALID_ARGUMENT, "'num_key_value_heads'");
  expectError(with(llamaBase(), "hidden_size", 0), DS_INVALID_ARGUMENT, "'hidden_size' must be positive");
  // Sizes that would make the parser allocate absurd per-layer tables are refused, not attempted.
  expectError(with(llamaBase(), "num_hidden_layers", 1000000000000), DS_INVALID_ARGUMENT,
              "'num_hidden_layers' is implausibly large");
  expectError(with(llamaBase(), "vocab_size", 1ll << 40), DS_INVALID_ARGUMENT, "'vocab_size' is implausibly large");
}

TEST(HFConfigErrorsTest, MalformedJson) {
  auto bad = parseHFConfig("{\"model_type\": \"llama\",", "x/config.json");
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), DS_DATA_LOSS);
  EXPECT_NE(bad.status().message().find("x/config.json"), std::string::npos);
  auto dup = parseHFConfig(R"({"model_type": "llama", "hidden_size": 64, "hidden_size": 128})", "x/config.json");
  ASSERT_FALSE(dup.isOk());
  EXPECT_NE(dup.status().message().find("duplicate JSON key 'hidden_size'"), std::string::npos);
  auto arr = parseHFConfig("[]", "x/config.json");
  EXPECT_EQ(arr.status().code(), DS_INVALID_ARGUMENT);
  auto missing = loadHFConfig("/nonexistent/model");
  EXPECT_EQ(missing.status().code(), DS_NOT_FOUND);
  EXPECT_NE(missing.status().message().find("/nonexistent/model/config.json"), std::string::npos);
}

TEST(HFConfigErrorsTest, DefaultsAndBiases) {
  const ModelConfig c = parseOk(llamaBase());
  EXPECT_EQ(c.num_key_value_heads, 4);  // defaults to num_attention_heads
  EXPECT_EQ(c.head_dim, 16);            // hidden / heads
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_EQ(c.bos_token_id, 1);
  const ModelConfig biased = parseOk(with(llamaBase(), "attention_bias", true));
  EXPECT_TRUE(biased.attention_qkv_bias);
  EXPECT_TRUE(biased.attention_o_bias);
  EXPECT_EQ(parseOk(with(llamaBase(), "head_dim", 32)).head_dim, 32);
  EXPECT_EQ(parseOk(with(llamaBase(), "eos_token_id", json{128001, 128008, 128009})).eos_token_ids,
            (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_FALSE(parseOk(with(llamaBase(), "bos_token_id", nullptr)).bos_token_id.has_value());
  EXPECT_EQ(parseOk(with(llamaBase(), "dtype", "bfloat16")).torch_dtype, "bfloat16");
  // Absent num_key_value_heads takes the HF class default (Mistral 8, Qwen2 32); null means MHA.
  json mistral = with(with(llamaBase(), "model_type", "mistral"), "num_attention_heads", 16);
  EXPECT_EQ(parseOk(mistral).num_key_value_heads, 8);
  EXPECT_EQ(parseOk(with(mistral, "num_key_value_heads", nullptr)).num_key_value_heads, 16);
  json qwen = with(with(with(llamaBase(), "model_type", "qwen2"), "num_attention_heads", 32), "hidden_size", 256);
  EXPECT_EQ(parseOk(qwen).num_key_value_heads, 32);
  EXPECT_EQ(parseOk(with(qwen, "num_attention_heads", 64)).num_key_value_heads, 32);
}

TEST(HFConfigErrorsTest, SlidingWindows) {
  json qwen = with(with(llamaBase(), "model_type", "qwen2"), "num_key_value_heads", 2);
  qwen.update(json{{"use_sliding_window", true}, {"sliding_window", 1024}, {"max_window_layers", 2}});
  EXPECT_EQ(parseOk(qwen).layer_sliding_window, (std::vector<int64_t>{0, 0, 1024, 1024}));
  qwen["use_sliding_window"] = false;
  EXPECT_EQ(parseOk(qwen).layer_sliding_window, (std::vector<int64_t>(4, 0)));
  json mistral = with(with(llamaBase(), "model_type", "mistral"), "num_key_value_heads", 2);
  EXPECT_EQ(parseOk(mistral).layer_sliding_window, (std::vector<int64_t>(4, 4096)));  // HF default
  mistral["sliding_window"] = nullptr;
  EXPECT_EQ(parseOk(mistral).slidingWindow(2), 0);
  json typed = with(qwen, "use_sliding_window", true);
  typed["layer_types"] = {"sliding_attention", "full_attention", "full_attention", "sliding_attention"};
  EXPECT_EQ(parseOk(typed).layer_sliding_window, (std::vector<int64_t>{1024, 0, 0, 1024}));
  expectError(with(llamaBase(), "layer_types",
                   json{"sliding_attention", "full_attention", "full_attention", "full_attention"}),
              DS_UNSUPPORTED, "unsupported: layer_types=[0]=sliding_attention");
  expectError(with(llamaBase(), "layer_types", json{"full_attention"}), DS_INVALID_ARGUMENT, "'layer_types'");
}

TEST(HFConfigErrorsTest, DeepseekRouting) {
  const ModelConfig v2 = parseOk(deepseekBase("deepseek_v2"));
  EXPECT_EQ(v2.deepseek.q_lora_rank, 0);
  EXPECT_EQ(v2.deepseek.topk_method, TopkMethod::kGreedy);  // V2 default
  EXPECT_EQ(v2.deepseek.scoring_func, ScoringFunc::kSoftmax);
  EXPECT_EQ(v2.head_dim, 24);
  json absent_q = deepseekBase("deepseek_v3");
  absent_q.erase("q_lora_rank");
  const ModelConfig v3 = parseOk(absent_q);
  EXPECT_EQ(v3.deepseek.q_lora_rank, 1536);  // absent: the class default, unlike explicit null
  EXPECT_EQ(v3.deepseek.topk_method, TopkMethod::kNoauxTc);
  EXPECT_EQ(v3.deepseek.scoring_func, ScoringFunc::kSigmoid);
  EXPECT_TRUE(v3.deepseek.gate_has_correction_bias);

  const ModelConfig f = parseOk(with(deepseekBase("deepseek_v2"), "moe_layer_freq", 2));
  EXPECT_FALSE(f.isMoELayer(0));
  EXPECT_FALSE(f.isMoELayer(1));  // >= first_k_dense_replace but odd
  EXPECT_TRUE(f.isMoELayer(2));
  EXPECT_FALSE(parseOk(with(deepseekBase("deepseek_v2"), "n_routed_experts", nullptr)).isMoELayer(2));

  expectError(with(deepseekBase("deepseek_v3"), "topk_method", "random"), DS_UNSUPPORTED,
              "unsupported: topk_method=random");
  expectError(with(deepseekBase("deepseek_v3"), "scoring_func", "tanh"), DS_UNSUPPORTED,
              "unsupported: scoring_func=tanh");
  json ambiguous = deepseekBase("deepseek_v2");
  ambiguous.update(json{{"norm_topk_prob", true}, {"routed_scaling_factor", 16.0}});
  expectError(ambiguous, DS_UNSUPPORTED, "unsupported: routed_scaling_factor=");
  expectError(with(deepseekBase("deepseek_v3"), "num_key_value_heads", 2), DS_UNSUPPORTED,
              "unsupported: num_key_value_heads=2");
  expectError(with(deepseekBase("deepseek_v3"), "n_group", 3), DS_INVALID_ARGUMENT, "'n_group'");
  expectError(with(deepseekBase("deepseek_v3"), "num_experts_per_tok", 9), DS_INVALID_ARGUMENT,
              "'num_experts_per_tok'");
  expectError(with(deepseekBase("deepseek_v3"), "kv_lora_rank", "512"), DS_INVALID_ARGUMENT,
              "'kv_lora_rank' must be an integer");
  expectError(with(deepseekBase("deepseek_v3"), "attention_bias", true), DS_UNSUPPORTED, "attention_bias=true");
}

TEST(HFConfigErrorsTest, QuantizationConfig) {
  const json fp8 = {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"activation_scheme", "dynamic"},
                    {"weight_block_size", {128, 128}}};
  EXPECT_TRUE(parseOk(with(deepseekBase("deepseek_v3"), "quantization_config", fp8)).quantization.fp8_block);
  auto variant = [&](const char* key, json value) {
    json q = fp8;
    q[key] = std::move(value);
    return with(deepseekBase("deepseek_v3"), "quantization_config", q);
  };
  expectError(variant("quant_method", "awq"), DS_UNSUPPORTED, "unsupported: quantization_config.quant_method=awq");
  expectError(variant("fmt", "e5m2"), DS_UNSUPPORTED, "unsupported: quantization_config.fmt=e5m2");
  expectError(variant("activation_scheme", "static"), DS_UNSUPPORTED,
              "unsupported: quantization_config.activation_scheme=static");
  expectError(variant("weight_block_size", json{64, 64}), DS_UNSUPPORTED,
              "unsupported: quantization_config.weight_block_size=[64,64]");
  expectError(variant("weight_block_size", nullptr), DS_UNSUPPORTED, "weight_block_size");
  expectError(variant("bits", 4), DS_UNSUPPORTED, "unsupported: quantization_config.bits=4");
}

}  // namespace
}  // namespace ds
