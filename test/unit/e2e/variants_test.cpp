// Compiler options against the plain build: fusion + memory planning must not change results;
// quantized weights and KV caches must stay within measured perplexity bounds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <fstream>
#include <sstream>

#include "e2e_util.h"
#include "hal/cpu/cpu_device.h"

namespace ds::test {
namespace {

std::vector<float> allLogits(const artifact::Artifact& art, const std::vector<int32_t>& tokens) {
  return teacherForcedLogits(art, tokens, static_cast<int64_t>(tokens.size()));
}

double perplexity(const std::vector<float>& logits, const std::vector<int32_t>& tokens, int64_t vocab) {
  double nll = 0;
  for (size_t p = 0; p + 1 < tokens.size(); ++p) {
    const float* row = logits.data() + p * vocab;
    double mx = row[0], sum = 0;
    for (int64_t v = 1; v < vocab; ++v) mx = std::max(mx, double(row[v]));
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - mx);
    nll += std::log(sum) + mx - row[tokens[p + 1]];
  }
  return std::exp(nll / (tokens.size() - 1));
}

// BOS + the authors' 255-token greedy continuation of stories260K.
std::vector<int32_t> storiesTokens() {
  std::ifstream in(std::string(DS_SOURCE_DIR) + "/test/models/stories260K/expected/greedy_from_bos.ids");
  std::vector<int32_t> t{1};
  for (int32_t id; in >> id;) t.push_back(id);
  return t;
}

class Fusion : public ::testing::TestWithParam<std::string> {};

TEST_P(Fusion, FusedAndPlannedBuildMatchesPlainBuild) {
  auto fused = openArtifact(GetParam());
  auto plain = openArtifact(GetParam() + ".unfused");
  ASSERT_NE(fused, nullptr);
  ASSERT_NE(plain, nullptr);
  EXPECT_LT(fused->meta()->plan()->launches()->size(), plain->meta()->plan()->launches()->size());
  Golden g = loadGolden(GetParam());
  std::vector<int32_t> tokens = g.prompts[2].prompt;
  tokens.insert(tokens.end(), g.prompts[2].generated.begin(), g.prompts[2].generated.end());
  std::vector<float> a = allLogits(*fused, tokens), b = allLogits(*plain, tokens);
  ASSERT_EQ(a.size(), b.size());
  double diff = 0, ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
    ref = std::max(ref, std::fabs(double(b[i])));
  }
  EXPECT_LE(diff, 1e-5 * ref) << "max |diff| " << diff << " vs max |logit| " << ref;
  EXPECT_EQ(generateGreedy(*fused, {g.prompts[1].prompt}, 32),
            generateGreedy(*plain, {g.prompts[1].prompt}, 32));
}

INSTANTIATE_TEST_SUITE_P(Models, Fusion,
                         ::testing::Values("stories260K", "tiny-llama", "tiny-deepseek-v3"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

struct QuantCase {
  const char* variant;
  double max_ppl_increase;  // relative to the f32 build
};

class Quantized : public ::testing::TestWithParam<QuantCase> {};

// ds-compile's int4 / int6 group scales are f16 values (the scale search and GPTQ round them), so
// the CPU device reads half-size f16 panel copies of them (cpu_kernels.h); the default int4 host
// build (GPTQ here, 6-bit output layer) and the 6-bit embedding / output build.
TEST(Int4Build, GroupScalesAreReadAsF16PanelCopies) {
  for (const char* variant : {"stories260K.w4g128.calib.a8", "stories260K.w4g128.calib.lmhead6"}) {
    auto art = openArtifact(variant);
    ASSERT_NE(art, nullptr) << variant;
    auto weights = hal::CpuWeights::load(*art, 0);
    ASSERT_TRUE(weights.isOk()) << weights.status().message();
    int grouped = 0, i6 = 0;
    for (size_t t = 0; t < art->meta()->tensors()->size(); ++t)
      for (const cpu::WeightView& v : (*weights)->at(static_cast<int32_t>(t)).views) {
        if (!v.int8_act || !v.group_scale) continue;
        ++grouped;
        i6 += v.type == cpu::WeightType::I6;
        EXPECT_NE(v.panel_group_scale_f16, nullptr) << variant << " tensor " << t;
      }
    EXPECT_GE(grouped, 8) << variant;
    EXPECT_GE(i6, 1) << variant;  // the output layer
  }
}

// Issue #6's targets: w8 / fp8 (and the KV int8 cache) within 1% of f32, int4 g128 within 5% with
// GPTQ on the committed calibration text (`.calib`). The scale-search-only int4 builds and the
// FP8 KV cache are held to what they measure (docs/quantization.md: 260K parameters, hidden
// size 64, so an int4 group spans a whole row). `.lmhead`: the tied output projection /
// embedding in int8 too (--quant-lm-head w8), held to the same targets as without; `.lmhead4`
// in 4-bit groups (--quant-lm-head w4g64 --quant-embed w4g64, opt-in); `.calib.a8` is the default
// int4 host build (int8 activations, 6-bit output layer), `.lmhead8` the same with an int8 one,
// `.lmhead6` 6-bit groups of 64 asked for through --quant-embed (tied).
TEST_P(Quantized, PerplexityWithinBound) {
  auto base = openArtifact("stories260K");
  auto quant = openArtifact(std::string("stories260K.") + GetParam().variant);
  ASSERT_NE(base, nullptr);
  ASSERT_NE(quant, nullptr);
  std::vector<int32_t> tokens = storiesTokens();
  ASSERT_EQ(tokens.size(), 256u);
  double p0 = perplexity(allLogits(*base, tokens), tokens, 512);
  double p1 = perplexity(allLogits(*quant, tokens), tokens, 512);
  RecordProperty("perplexity_f32", std::to_string(p0));
  RecordProperty(std::string("perplexity_") + GetParam().variant, std::to_string(p1));
  EXPECT_LE(p1, p0 * (1.0 + GetParam().max_ppl_increase)) << GetParam().variant << ": " << p1 << " vs " << p0;
  EXPECT_GT(p1, 1.0);
}

INSTANTIATE_TEST_SUITE_P(Stories260K, Quantized,
                         ::testing::Values(QuantCase{"w8", 0.01}, QuantCase{"kvint8", 0.01},
                                           QuantCase{"fp8", 0.01}, QuantCase{"kvfp8", 0.01},
                                           QuantCase{"w4g128", 0.10}, QuantCase{"w4g128a", 0.09},
                                           QuantCase{"w4g128.calib", 0.05},
                                           QuantCase{"w4g128a.calib", 0.05},
                                           QuantCase{"w8.lmhead", 0.01},
                                           QuantCase{"w4g128.calib.lmhead", 0.05},
                                           QuantCase{"w8.a8", 0.01},
                                           QuantCase{"bf16", 0.01},
                                           QuantCase{"bf16.a16", 0.01},
                                           QuantCase{"w4g128.calib.a8", 0.05},
                                           // Opt-in 4-bit output projection + embedding: held
                                           // to what it measures (+7.3%; a group is a whole
                                           // 64-wide row of this model).
                                           QuantCase{"w4g128.calib.lmhead4", 0.08},
                                           // The default int4 host build's 6-bit output
                                           // layer (in .calib.a8: +3.5%) and the int8 one
                                           // (+3.6%) held to the int4 target.
                                           QuantCase{"w4g128.calib.lmhead6", 0.05},
                                           QuantCase{"w4g128.calib.lmhead8", 0.05}),
                         [](const auto& info) {
                           std::string s = info.param.variant;
                           std::replace(s.begin(), s.end(), '.', '_');
                           return s;
                         });

TEST(Quantized, W8GreedyMatchesF32For64Tokens) {
  auto base = openArtifact("stories260K");
  auto w8 = openArtifact("stories260K.w8");
  ASSERT_NE(base, nullptr);
  ASSERT_NE(w8, nullptr);
  EXPECT_EQ(generateGreedy(*w8, {{1}}, 64), generateGreedy(*base, {{1}}, 64));
}

// ds-compile's default host w8 build (int8 activations, int8 output projection) and the bf16
// build with bf16 activations keep the batch-invariance promise: four sequences of different lengths in one batch, and a chunked
// prefill, give each sequence the tokens it gets alone.
class ActivationBuild : public ::testing::TestWithParam<std::string> {};

TEST_P(ActivationBuild, IsBatchInvariant) {
  auto a8 = openArtifact(GetParam());
  ASSERT_NE(a8, nullptr);
  const std::vector<int32_t> t = storiesTokens();
  const std::vector<std::vector<int32_t>> prompts = {
      {1}, {t.begin(), t.begin() + 40}, {t.begin(), t.begin() + 17}, {t.begin() + 3, t.begin() + 29}};
  auto batched = generateGreedy(*a8, prompts, 24);
  ASSERT_EQ(batched.size(), 4u);
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(batched[i], generateGreedy(*a8, {prompts[i]}, 24)[0]) << "prompt " << i;
  EXPECT_EQ(generateGreedy(*a8, {prompts[1]}, 24, 5)[0], batched[1]);
  // Logits, bit for bit: a 40-token prompt one token per step, in steps of 7, and whole.
  const std::vector<int32_t> p40(t.begin(), t.begin() + 40);
  const std::vector<float> whole = teacherForcedLogits(*a8, p40, 40);
  for (int64_t chunk : {1, 7}) {
    const LogitDiff d = compareLogits(teacherForcedLogits(*a8, p40, chunk), whole);
    EXPECT_EQ(d.diff, 0.0) << "chunk " << chunk;
    EXPECT_TRUE(d.finite);
  }
}

INSTANTIATE_TEST_SUITE_P(Stories260K, ActivationBuild,
                         ::testing::Values("stories260K.w8.a8", "stories260K.bf16.a16",
                                           "stories260K.w4g128.calib.lmhead4",
                                           "stories260K.w4g128.calib.a8"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '.', '_');
                           return s;
                         });

// Max |logit diff| relative to max |logit| over all positions of the golden's longest prompt.
double relativeLogitDiff(const artifact::Artifact& a, const artifact::Artifact& b,
                         const std::vector<int32_t>& tokens) {
  std::vector<float> x = allLogits(a, tokens), y = allLogits(b, tokens);
  EXPECT_EQ(x.size(), y.size());
  double diff = 0, ref = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    EXPECT_TRUE(std::isfinite(x[i]));
    diff = std::max(diff, std::fabs(double(x[i]) - y[i]));
    ref = std::max(ref, std::fabs(double(y[i])));
  }
  return diff / ref;
}

TEST(Quantized, MoEExpertsAndQuantizedLatentCache) {
  auto base = openArtifact("tiny-deepseek-v3");
  auto base2 = openArtifact("tiny-deepseek-v2");
  auto w8 = openArtifact("tiny-deepseek-v2.w8");
  auto w4 = openArtifact("tiny-deepseek-v3.w4g64");
  ASSERT_NE(base, nullptr);
  ASSERT_NE(base2, nullptr);
  ASSERT_NE(w8, nullptr);
  ASSERT_NE(w4, nullptr);
  // Routed experts stored as stacked int4 views with per-group scales; latent caches quantized.
  const auto* t = w4->findTensor("model.layers.1.mlp.experts.gate_proj.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype(), fb::DType_I4);
  EXPECT_EQ(t->quant(), fb::QuantKind_Int4Group);
  EXPECT_EQ(w4->meta()->plan()->kv_cache()->dtype(), fb::DType_F8_E4M3);
  EXPECT_EQ(w8->meta()->plan()->kv_cache()->dtype(), fb::DType_I8);
  // DeepSeek-V2's softmax router is smooth; V3's sigmoid group routing with random weights flips
  // experts under any perturbation, so V3 only checks that int4 experts run and take effect.
  double d8 = relativeLogitDiff(*w8, *base2, loadGolden("tiny-deepseek-v2").prompts[2].prompt);
  double d4 = relativeLogitDiff(*w4, *base, loadGolden("tiny-deepseek-v3").prompts[2].prompt);
  RecordProperty("v2_w8_kvint8_rel_diff", std::to_string(d8));
  RecordProperty("v3_w4g64_kvfp8_rel_diff", std::to_string(d4));
  std::printf("v2 w8+kv int8: %.5f, v3 w4g64+kv fp8: %.5f (max |diff| / max |logit|)\n", d8, d4);
  EXPECT_GT(d8, 0.0);
  EXPECT_LT(d8, 0.10);  // measured 0.061 (random weights, 3 layers, 512-way logits)
  EXPECT_GT(d4, 0.0);
}

}  // namespace
}  // namespace ds::test
