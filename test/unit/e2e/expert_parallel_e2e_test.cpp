// --ep artifacts (routed experts distributed whole over host ranks, alone and with --tp) against
// the single-rank build of every MoE test model: same greedy tokens, teacher-forced logits within
// 1e-4 of the largest logit, and each rank holding its own experts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <set>

#include "artifact/synthetic.h"
#include "e2e_util.h"

namespace ds::test {
namespace {

struct EpCase {
  const char* base;     // the single-rank build
  const char* variant;  // its expert-parallel build
  int ranks;
};
void PrintTo(const EpCase& c, std::ostream* os) { *os << c.variant << " vs " << c.base; }

class ExpertParallel : public ::testing::TestWithParam<EpCase> {};

TEST_P(ExpertParallel, EachRankHoldsItsExperts) {
  const EpCase& c = GetParam();
  auto one = openArtifact(c.base);
  auto many = openArtifact(c.variant);
  ASSERT_NE(one, nullptr);
  ASSERT_NE(many, nullptr);
  ASSERT_EQ(many->meta()->plan()->tp_size(), c.ranks);
  const auto* tensors = many->meta()->tensors();
  int moe = 0;
  for (const fb::Launch* l : *many->meta()->plan()->launches()) {
    if (l->kernel() != fb::Kernel_MoEExperts) continue;
    ++moe;
    const fb::MoEExpertsParams* p = l->params_as_MoEExpertsParams();
    ASSERT_NE(p, nullptr) << "moe_experts launch without experts_per_rank";
    for (uint32_t slot = 0; slot < 3; ++slot) {  // gate, up, down
      const fb::Tensor* t = tensors->Get(l->weights()->Get(slot));
      ASSERT_NE(t->shards(), nullptr) << t->name()->str();
      ASSERT_EQ(t->shards()->size(), static_cast<uint32_t>(c.ranks));
      EXPECT_EQ(t->experts(), p->experts_per_rank()) << t->name()->str();
      EXPECT_EQ(t->shape()->Get(0), p->experts_per_rank());
      std::set<uint32_t> segments;
      for (uint32_t r = 0; r < t->shards()->size(); ++r) {
        const fb::Tensor* s = tensors->Get(t->shards()->Get(r));
        EXPECT_EQ(s->experts(), p->experts_per_rank());
        if (s->segment() != artifact::kNoSegment) segments.insert(s->segment());
      }
      // Every rank its own experts' bytes (none shared between ranks).
      EXPECT_EQ(segments.size(), static_cast<size_t>(c.ranks)) << t->name()->str();
    }
  }
  EXPECT_GE(moe, 1);
  // The single-rank build's routed experts: ranks x experts_per_rank of them.
  for (const fb::Launch* l : *one->meta()->plan()->launches())
    if (l->kernel() == fb::Kernel_MoEExperts) {
      EXPECT_EQ(l->params_as_MoEExpertsParams(), nullptr);
      const fb::Tensor* g = one->meta()->tensors()->Get(l->weights()->Get(0));
      for (const fb::Launch* m : *many->meta()->plan()->launches())
        if (m->kernel() == fb::Kernel_MoEExperts) {
          EXPECT_EQ(m->params_as_MoEExpertsParams()->experts_per_rank() * c.ranks, g->experts());
          break;
        }
      break;
    }
}

TEST_P(ExpertParallel, MatchesSingleRankBuild) {
  const EpCase& c = GetParam();
  auto one = openArtifact(c.base);
  auto many = openArtifact(c.variant);
  ASSERT_NE(one, nullptr);
  ASSERT_NE(many, nullptr);
  std::string model = c.base;
  model = model.substr(0, model.find('.'));
  Golden g = loadGolden(model);
  ASSERT_GE(g.prompts.size(), 3u);
  std::vector<int32_t> tokens = g.prompts[2].prompt;
  tokens.insert(tokens.end(), g.prompts[2].generated.begin(), g.prompts[2].generated.end());
  std::vector<float> a = teacherForcedLogits(*many, tokens, 7);
  std::vector<float> b = teacherForcedLogits(*one, tokens, 7);
  ASSERT_EQ(a.size(), b.size());
  LogitDiff d = compareLogits(a, b);
  ASSERT_TRUE(d.finite);
  char rel[32];
  std::snprintf(rel, sizeof rel, "%.2e", d.diff / d.ref);
  RecordProperty("max_rel_logit_diff", rel);
  EXPECT_LE(d.diff, 1e-4 * d.ref) << "max |diff| " << d.diff << " vs max |logit| " << d.ref;
  std::vector<std::vector<int32_t>> prompts;
  for (const GoldenPrompt& p : g.prompts) prompts.push_back(p.prompt);
  EXPECT_EQ(generateGreedy(*many, prompts, 32), generateGreedy(*one, prompts, 32));
}

INSTANTIATE_TEST_SUITE_P(
    Models, ExpertParallel,
    ::testing::Values(EpCase{"tiny-deepseek-v2", "tiny-deepseek-v2.ep2", 2},
                      EpCase{"tiny-deepseek-v2", "tiny-deepseek-v2.tp4ep4", 4},
                      EpCase{"tiny-deepseek-v3", "tiny-deepseek-v3.ep2", 2},
                      EpCase{"tiny-deepseek-v3", "tiny-deepseek-v3.tp4ep4", 4},
                      EpCase{"tiny-deepseek-v3-fp8", "tiny-deepseek-v3-fp8.ep2", 2},
                      EpCase{"tiny-deepseek-v3-fp8", "tiny-deepseek-v3-fp8.tp4ep4", 4},
                      EpCase{"tiny-deepseek-v3.w4g64", "tiny-deepseek-v3.w4g64.ep2", 2}),
    [](const auto& info) {
      std::string s = info.param.variant;
      std::replace(s.begin(), s.end(), '-', '_');
      std::replace(s.begin(), s.end(), '.', '_');
      return s;
    });

}  // namespace
}  // namespace ds::test
