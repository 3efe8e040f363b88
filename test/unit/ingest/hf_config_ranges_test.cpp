// parseHFConfig: numeric fields out of range fail at compile time, naming the file and the field.
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ingest/hf_config.h"

namespace ds {
namespace {

using nlohmann::json;

json llamaBase() {
  return json{{"model_type", "llama"},    {"vocab_size", 100},      {"hidden_size", 64},
              {"intermediate_size", 128}, {"num_hidden_layers", 4}, {"num_attention_heads", 4}};
}

json with(json j, const std::string& key, json value) {
  j[key] = std::move(value);
  return j;
}

// Fails with INVALID_ARGUMENT naming test/config.json, the field and `part`.
void expectInvalid(const json& j, const std::string& field, const std::string& part) {
  auto c = parseHFConfig(j.dump(), "test/config.json");
  ASSERT_FALSE(c.isOk()) << "accepted: " << j.dump();
  EXPECT_EQ(c.status().code(), DS_INVALID_ARGUMENT) << c.status().toString();
  const std::string& m = c.status().message();
  EXPECT_NE(m.find("test/config.json"), std::string::npos) << m;
  EXPECT_NE(m.find("'" + field + "'"), std::string::npos) << m;
  EXPECT_NE(m.find(part), std::string::npos) << m;
}

TEST(HFConfigRangesTest, RopeThetaMustBePositive) {
  expectInvalid(with(llamaBase(), "rope_theta", 0.0), "rope_theta", "must be positive");
  expectInvalid(with(llamaBase(), "rope_theta", -10000.0), "rope_theta", "must be positive");
  // transformers 5 keeps it inside rope_parameters.
  expectInvalid(with(llamaBase(), "rope_parameters", json{{"rope_type", "default"}, {"rope_theta", -1.0}}),
                "rope_parameters.rope_theta", "must be positive");
  EXPECT_TRUE(parseHFConfig(with(llamaBase(), "rope_theta", 5e5).dump(), "c").isOk());
}

TEST(HFConfigRangesTest, NumbersMustBeFinite) {
  // JSON has no infinity literal, but 1e999 parses to one.
  std::string text = with(llamaBase(), "rope_theta", 1.0).dump();
  text.replace(text.find("\"rope_theta\":1.0"), 16, "\"rope_theta\":1e999");
  auto c = parseHFConfig(text, "test/config.json");
  if (!c.isOk()) {  // nlohmann may already refuse the literal; either way it is not accepted
    EXPECT_NE(c.status().message().find("test/config.json"), std::string::npos);
  } else {
    ADD_FAILURE() << "an infinite rope_theta was accepted";
  }
}

TEST(HFConfigRangesTest, RmsNormEpsInUnitInterval) {
  expectInvalid(with(llamaBase(), "rms_norm_eps", 0.0), "rms_norm_eps", "must be in (0, 1)");
  expectInvalid(with(llamaBase(), "rms_norm_eps", -1e-6), "rms_norm_eps", "must be in (0, 1)");
  expectInvalid(with(llamaBase(), "rms_norm_eps", 2.0), "rms_norm_eps", "must be in (0, 1)");
}

TEST(HFConfigRangesTest, SizesPositiveAndBounded) {
  for (const char* key : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "max_position_embeddings"}) {
    expectInvalid(with(llamaBase(), key, 0), key, "must be positive");
    expectInvalid(with(llamaBase(), key, -3), key, "must be positive");
  }
  expectInvalid(with(llamaBase(), "hidden_size", int64_t{1} << 40), "hidden_size", "implausibly large");
  expectInvalid(with(llamaBase(), "num_hidden_layers", 1 << 20), "num_hidden_layers", "implausibly large");
  expectInvalid(with(llamaBase(), "head_dim", 0), "head_dim", "must be positive");
  expectInvalid(with(llamaBase(), "head_dim", 15), "head_dim", "must be even");
  expectInvalid(with(llamaBase(), "head_dim", int64_t{1} << 40), "head_dim", "implausibly large");
  expectInvalid(with(llamaBase(), "hidden_size", 66), "hidden_size", "not a multiple");
}

TEST(HFConfigRangesTest, RopeScalingFactorPositive) {
  expectInvalid(with(llamaBase(), "rope_scaling", json{{"rope_type", "linear"}, {"factor", 0.0}}),
                "rope_scaling.factor", "must be positive");
}

}  // namespace
}  // namespace ds
