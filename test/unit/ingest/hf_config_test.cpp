// parseHFConfig on every real config.json in the shared data, with their key numbers asserted.
#include "ingest/hf_config.h"

#include <cmath>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace ds {
namespace {

const std::string kData = DS_SHARED_DATA_DIR;

ModelConfig load(const std::string& rel) {
  auto cfg = loadHFConfig(kData + "/" + rel);
  EXPECT_TRUE(cfg.isOk()) << cfg.status().toString();
  return cfg.isOk() ? cfg.value() : ModelConfig{};
}

TEST(HFConfigRealTest, EveryRealConfigParses) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kData + "/configs")) {
    if (entry.path().extension() != ".json") continue;
    auto cfg = loadHFConfig(entry.path().string());
    EXPECT_TRUE(cfg.isOk()) << cfg.status().toString();
    ++count;
  }
  EXPECT_GE(count, 5);
  EXPECT_TRUE(loadHFConfig(kData + "/models/stories260K").isOk());
}

TEST(HFConfigRealTest, Stories260K) {
  const ModelConfig c = load("models/stories260K");
  EXPECT_EQ(c.arch, ModelArch::kLlama);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_hidden_layers, 5);
  EXPECT_EQ(c.num_attention_heads, 8);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kNone);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_qkv_bias);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(c.torch_dtype, "float32");
  EXPECT_EQ(c.layer_sliding_window, std::vector<int64_t>(5, 0));
  EXPECT_FALSE(c.isMoELayer(0));
  EXPECT_DOUBLE_EQ(c.attentionSoftmaxScale(), 1.0 / std::sqrt(8.0));
}

TEST(HFConfigRealTest, R1DistillLlama8B) {
  const ModelConfig c = load("configs/deepseek-r1-distill-llama-8b.json");
  EXPECT_EQ(c.arch, ModelArch::kLlama);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.num_hidden_layers, 32);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.ropeAttentionFactor(), 1.0);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{128001});
  EXPECT_FALSE(c.is_deepseek);
  EXPECT_FALSE(c.quantization.fp8_block);
}

TEST(HFConfigRealTest, R1DistillQwen) {
  const ModelConfig small = load("configs/deepseek-r1-distill-qwen-1.5b.json");
  EXPECT_EQ(small.arch, ModelArch::kQwen2);
  EXPECT_EQ(small.hidden_size, 1536);
  EXPECT_EQ(small.num_attention_heads, 12);
  EXPECT_EQ(small.num_key_value_heads, 2);
  EXPECT_EQ(small.head_dim, 128);
  EXPECT_TRUE(small.attention_qkv_bias);
  EXPECT_FALSE(small.attention_o_bias);
  EXPECT_EQ(small.rope_scaling.type, RopeScalingType::kNone);
  // use_sliding_window is false: the sliding_window value must not apply anywhere.
  EXPECT_EQ(small.layer_sliding_window, std::vector<int64_t>(28, 0));
  EXPECT_EQ(small.bos_token_id, 151643);
  const ModelConfig big = load("configs/deepseek-r1-distill-qwen-7b.json");
  EXPECT_EQ(big.vocab_size, 152064);
  EXPECT_EQ(big.intermediate_size, 18944);
  EXPECT_EQ(big.num_key_value_heads, 4);
  EXPECT_EQ(big.head_dim, 128);
}

TEST(HFConfigRealTest, DeepseekV2Lite) {
  const ModelConfig c = load("configs/deepseek-v2-lite-16b.json");
  EXPECT_EQ(c.arch, ModelArch::kDeepseekV2);
  ASSERT_TRUE(c.is_deepseek);
  const DeepseekConfig& d = c.deepseek;
  EXPECT_EQ(d.q_lora_rank, 0);  // null: plain q_proj
  EXPECT_EQ(d.kv_lora_rank, 512);
  EXPECT_EQ(d.qk_nope_head_dim, 128);
  EXPECT_EQ(d.qk_rope_head_dim, 64);
  EXPECT_EQ(d.v_head_dim, 128);
  EXPECT_EQ(c.head_dim, 192);
  EXPECT_EQ(d.n_routed_experts, 64);
  EXPECT_EQ(d.n_shared_experts, 2);
  EXPECT_EQ(d.num_experts_per_tok, 6);
  EXPECT_EQ(d.moe_intermediate_size, 1408);
  EXPECT_EQ(d.topk_method, TopkMethod::kGreedy);
  EXPECT_EQ(d.scoring_func, ScoringFunc::kSoftmax);
  EXPECT_FALSE(d.norm_topk_prob);
  EXPECT_FALSE(d.gate_has_correction_bias);
  EXPECT_EQ(d.num_nextn_predict_layers, 0);
  EXPECT_FALSE(c.isMoELayer(0));
  EXPECT_TRUE(c.isMoELayer(1));
  EXPECT_TRUE(c.isMoELayer(26));
  EXPECT_FALSE(c.isMoELayer(27));
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kYarn);
  EXPECT_EQ(c.rope_scaling.factor, 40.0);
  EXPECT_EQ(c.rope_scaling.mscale, 0.707);
  EXPECT_EQ(c.rope_scaling.mscale_all_dim, 0.707);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_DOUBLE_EQ(c.ropeAttentionFactor(), 1.0);  // mscale == mscale_all_dim
  const double m = 0.1 * 0.707 * std::log(40.0) + 1.0;
  EXPECT_DOUBLE_EQ(c.attentionSoftmaxScale(), m * m / std::sqrt(192.0));
  EXPECT_FALSE(c.quantization.fp8_block);
}

TEST(HFConfigRealTest, DeepseekV3) {
  const ModelConfig c = load("configs/deepseek-v3-671b.json");
  EXPECT_EQ(c.arch, ModelArch::kDeepseekV3);
  const DeepseekConfig& d = c.deepseek;
  EXPECT_EQ(c.num_hidden_layers, 61);
  EXPECT_EQ(c.hidden_size, 7168);
  EXPECT_EQ(c.num_attention_heads, 128);
  EXPECT_EQ(c.vocab_size, 129280);
  EXPECT_EQ(d.n_routed_experts, 256);
  EXPECT_EQ(d.n_shared_experts, 1);
  EXPECT_EQ(d.num_experts_per_tok, 8);
  EXPECT_EQ(d.kv_lora_rank, 512);
  EXPECT_EQ(d.q_lora_rank, 1536);
  EXPECT_EQ(d.moe_intermediate_size, 2048);
  EXPECT_EQ(d.first_k_dense_replace, 3);
  EXPECT_EQ(d.n_group, 8);
  EXPECT_EQ(d.topk_group, 4);
  EXPECT_EQ(d.topk_method, TopkMethod::kNoauxTc);
  EXPECT_EQ(d.scoring_func, ScoringFunc::kSigmoid);
  EXPECT_TRUE(d.gate_has_correction_bias);
  EXPECT_TRUE(d.norm_topk_prob);
  EXPECT_EQ(d.routed_scaling_factor, 2.5);
  EXPECT_EQ(d.num_nextn_predict_layers, 1);
  EXPECT_TRUE(d.rope_interleave);
  int moe_layers = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) moe_layers += c.isMoELayer(l);
  EXPECT_EQ(moe_layers, 58);
  EXPECT_FALSE(c.isMoELayer(2));
  EXPECT_TRUE(c.isMoELayer(3));
  EXPECT_FALSE(c.isMoELayer(61));  // the MTP layer is not a decoder layer
  ASSERT_TRUE(c.quantization.fp8_block);
  EXPECT_EQ(c.quantization.block_rows, 128);
  EXPECT_EQ(c.quantization.block_cols, 128);
  EXPECT_EQ(c.bos_token_id, 0);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{1});
  const double m = 0.1 * std::log(40.0) + 1.0;
  EXPECT_DOUBLE_EQ(c.attentionSoftmaxScale(), m * m / std::sqrt(192.0));
  EXPECT_DOUBLE_EQ(c.ropeAttentionFactor(), 1.0);
}

}  // namespace
}  // namespace ds
