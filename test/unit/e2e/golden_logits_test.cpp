// Teacher-forced logits of every position vs Hugging Face transformers (f32, all tiny models).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "e2e_util.h"

namespace ds::test {
namespace {

struct Compare {
  double max_diff = 0, max_ref = 0;
};

class GoldenLogits : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenLogits, EveryPositionWithinTolerance) {
  auto art = openArtifact(GetParam());
  ASSERT_NE(art, nullptr);
  Golden g = loadGolden(GetParam());
  ASSERT_FALSE(g.prompts.empty());
  for (size_t p = 0; p < g.prompts.size(); ++p) {
    const GoldenPrompt& gp = g.prompts[p];
    std::vector<int32_t> tokens = gp.prompt;
    tokens.insert(tokens.end(), gp.generated.begin(), gp.generated.end());
    ASSERT_EQ(static_cast<int64_t>(tokens.size()), gp.rows);
    // Whole sequence in one step, then in chunks of 7 that cross the 16-token KV blocks.
    for (int64_t chunk : {static_cast<int64_t>(tokens.size()), int64_t{7}}) {
      std::vector<float> got = teacherForcedLogits(*art, tokens, chunk);
      ASSERT_EQ(got.size(), gp.logits.size());
      Compare c;
      for (size_t i = 0; i < got.size(); ++i) {
        c.max_diff = std::max(c.max_diff, std::fabs(double(got[i]) - gp.logits[i]));
        c.max_ref = std::max(c.max_ref, std::fabs(double(gp.logits[i])));
      }
      EXPECT_LE(c.max_diff, 1e-4 * c.max_ref)
          << GetParam() << " prompt " << p << " chunk " << chunk << ": max |diff| " << c.max_diff
          << " vs max |logit| " << c.max_ref;
      RecordProperty(GetParam() + "_p" + std::to_string(p) + "_c" + std::to_string(chunk) + "_rel",
                     std::to_string(c.max_diff / c.max_ref));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GoldenLogits, ::testing::ValuesIn(goldenModels()),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

}  // namespace
}  // namespace ds::test
