// Teacher-forced logits of every position vs Hugging Face transformers (f32, all tiny models).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "e2e_util.h"
#include "exec/model_runner.h"

namespace ds::test {
namespace {

struct Compare {
  double max_diff = 0, max_ref = 0;
};

// Runs `tokens` of one sequence through the runner in chunks of `chunk` tokens, collecting the
// logits of every position.
std::vector<float> teacherForced(const artifact::Artifact& art, const std::vector<int32_t>& tokens,
                                 int64_t chunk) {
  RunnerOptions ro;
  ro.num_kv_blocks = 64;
  auto runner = ModelRunner::create(art, ro);
  EXPECT_TRUE(runner.isOk()) << runner.status().toString();
  if (!runner.isOk()) return {};
  int64_t bs = (*runner)->blockSize();
  int64_t n = static_cast<int64_t>(tokens.size());
  StepBatch b;
  b.num_seqs = 1;
  b.max_blocks_per_seq = (n + bs - 1) / bs;
  // A scattered block table: sequence blocks are not contiguous in the cache.
  for (int64_t i = 0; i < b.max_blocks_per_seq; ++i) b.block_table.push_back(static_cast<int32_t>(63 - 3 * i));
  std::vector<float> all;
  for (int64_t start = 0; start < n; start += chunk) {
    int64_t end = std::min(n, start + chunk);
    b.token_ids.assign(tokens.begin() + start, tokens.begin() + end);
    b.positions.clear();
    b.logit_rows.clear();
    for (int64_t p = start; p < end; ++p) {
      b.positions.push_back(static_cast<int32_t>(p));
      b.logit_rows.push_back(static_cast<int32_t>(p - start));
    }
    b.token_seq.assign(end - start, 0);
    std::vector<float> logits;
    Status st = (*runner)->step(b, &logits);
    EXPECT_TRUE(st.isOk()) << st.toString();
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

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
      std::vector<float> got = teacherForced(*art, tokens, chunk);
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
