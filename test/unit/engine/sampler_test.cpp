// Sampler tests: greedy ties, seeding, HF warper semantics against a sort-based reference,
// repetition penalty, empirical distribution (chi-square), parameter validation.
#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <thread>

namespace ds {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> randomLogits(int64_t vocab, uint64_t seed, float scale = 3.0f,
                                float quantum = 0.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (float& x : logits) {
    x = normal(rng);
    // Quantising creates many exact ties, which exercises the tie rules.
    if (quantum > 0.0f) x = std::round(x / quantum) * quantum;
  }
  return logits;
}

// Straightforward HF pipeline: penalty, temperature, top-k (ties at the k-th value kept),
// then top-p over a full (logit desc, id asc) sort. Independent of the radix select.
std::vector<double> reference(const std::vector<float>& raw, const SamplingParams& p,
                              const std::vector<int32_t>& history) {
  const int64_t vocab = static_cast<int64_t>(raw.size());
  std::vector<float> l = raw;
  std::set<int32_t> seen;
  for (int32_t t : history)
    if (t >= 0 && t < vocab) seen.insert(t);
  for (int32_t t : seen)
    l[t] = raw[t] < 0 ? raw[t] * p.repetition_penalty : raw[t] / p.repetition_penalty;

  std::vector<int64_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return l[a] > l[b]; });
  std::vector<bool> kept(static_cast<size_t>(vocab), true);
  if (p.top_k > 0 && p.top_k < vocab) {
    const float kth = l[order[p.top_k - 1]];
    for (int64_t i = 0; i < vocab; ++i) kept[i] = l[i] >= kth;
  }
  const double max_logit = l[order[0]];
  std::vector<double> e(static_cast<size_t>(vocab), 0.0);
  double z = 0.0;
  for (int64_t i = 0; i < vocab; ++i) {
    if (!kept[i]) continue;
    e[i] = std::exp((l[i] - max_logit) / p.temperature);
    z += e[i];
  }
  if (p.top_p < 1.0f) {
    double before = 0.0;
    for (int64_t i : order) {
      if (!kept[i]) continue;
      if (before >= p.top_p * z) kept[i] = false;
      before += e[i];
    }
  }
  std::vector<double> probs(static_cast<size_t>(vocab), 0.0);
  double kept_z = 0.0;
  for (int64_t i = 0; i < vocab; ++i)
    if (kept[i]) kept_z += e[i];
  for (int64_t i = 0; i < vocab; ++i)
    if (kept[i]) probs[i] = e[i] / kept_z;
  return probs;
}

void expectSameDistribution(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i] > 0.0, want[i] > 0.0) << "kept set differs at token " << i;
    ASSERT_NEAR(got[i], want[i], 1e-5 + 1e-4 * want[i]) << "token " << i;
  }
}

// Pearson chi-square of `draws` samples against `probs` (tokens with p = 0 must never
// appear); returns the statistic and sets dof.
double chiSquare(Sampler& s, const std::vector<float>& logits, const std::vector<double>& probs,
                 int draws, int* dof) {
  std::vector<int> counts(probs.size(), 0);
  for (int n = 0; n < draws; ++n) {
    const int32_t t = s.sample(logits.data(), static_cast<int64_t>(logits.size()), {});
    EXPECT_GE(t, 0);
    EXPECT_GT(probs[t], 0.0) << "drew filtered token " << t;
    ++counts[t];
  }
  double chi = 0.0;
  *dof = -1;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] <= 0.0) continue;
    const double expected = probs[i] * draws;
    chi += (counts[i] - expected) * (counts[i] - expected) / expected;
    ++*dof;
  }
  return chi;
}

// A loose bound (about 6 sigma above the chi-square mean) so only a real bias fails.
double chiBound(int dof) { return dof + 6.0 * std::sqrt(2.0 * dof) + 10.0; }

TEST(SamplerTest, GreedyIsArgmaxWithLowestIndexOnTies) {
  Sampler s;  // temperature 0
  const std::vector<float> ties = {1.0f, 5.0f, 3.0f, 5.0f, -kInf, 5.0f};
  EXPECT_EQ(s.sample(ties.data(), 6, {}), 1);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto logits = randomLogits(129280, seed, 2.0f, seed % 2 ? 0.5f : 0.0f);
    const int64_t want = std::max_element(logits.begin(), logits.end()) - logits.begin();
    EXPECT_EQ(s.sample(logits.data(), 129280, {}), want) << "seed " << seed;
  }
}

TEST(SamplerTest, NanAndInfinities) {
  Sampler greedy;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> with_nan = {nan, 1.0f, nan, 2.0f};
  EXPECT_EQ(greedy.sample(with_nan.data(), 4, {}), 3);
  const std::vector<float> dead = {-kInf, nan, -kInf};
  EXPECT_EQ(greedy.sample(dead.data(), 3, {}), 0);

  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.5f;
  Sampler s(p);
  for (int n = 0; n < 50; ++n) {
    EXPECT_EQ(s.sample(dead.data(), 3, {}), 0);
    EXPECT_EQ(s.sample(with_nan.data(), 4, {}) % 2, 1);  // never a NaN token
  }
  const std::vector<float> inf = {0.0f, kInf, 3.0f};
  for (int n = 0; n < 50; ++n) EXPECT_EQ(s.sample(inf.data(), 3, {}), 1);
}

TEST(SamplerTest, SameSeedSameSamplesDifferentSeedDifferent) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 1234;
  const auto logits = randomLogits(1000, 7, 1.0f);
  Sampler a(p), b(p);
  p.seed = 1235;
  Sampler c(p);
  std::vector<int32_t> sa, sb, sc;
  for (int n = 0; n < 200; ++n) {
    sa.push_back(a.sample(logits.data(), 1000, {}));
    sb.push_back(b.sample(logits.data(), 1000, {}));
    sc.push_back(c.sample(logits.data(), 1000, {}));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST(SamplerTest, SamplesDoNotDependOnOtherRequests) {
  SamplingParams p;
  p.temperature = 0.8f;
  p.top_k = 50;
  p.seed = 99;
  const auto logits = randomLogits(5000, 3);
  const auto other = randomLogits(5000, 4);
  Sampler alone(p), batched(p), neighbour(SamplingParams{1.0f, 0, 0.9f, 5, 1.0f});
  for (int n = 0; n < 100; ++n) {
    const int32_t want = alone.sample(logits.data(), 5000, {});
    neighbour.sample(other.data(), 5000, {});  // a different request in the same step
    EXPECT_EQ(batched.sample(logits.data(), 5000, {}), want);
  }
}

TEST(SamplerTest, ConcurrentRequestsMatchSequentialOnes) {
  // Scratch buffers are per thread, so requests sampled on different threads must give
  // exactly what they give alone.
  const auto logits = randomLogits(129280, 8);
  const std::vector<SamplingParams> params = {{0.7f, 0, 0.9f, 1, 1.0f}, {1.0f, 40, 1.0f, 2, 1.2f},
                                              {1.2f, 0, 1.0f, 3, 1.0f}, {0.0f, 0, 1.0f, 4, 1.1f}};
  std::vector<std::vector<int32_t>> sequential(params.size()), threaded(params.size());
  auto run = [&](size_t r, std::vector<int32_t>* out) {
    Sampler s(params[r]);
    std::vector<int32_t> history = {5, 6, 7};
    for (int n = 0; n < 30; ++n) out->push_back(s.sample(logits.data(), 129280, history));
  };
  for (size_t r = 0; r < params.size(); ++r) run(r, &sequential[r]);
  std::vector<std::thread> threads;
  for (size_t r = 0; r < params.size(); ++r) threads.emplace_back(run, r, &threaded[r]);
  for (auto& t : threads) t.join();
  EXPECT_EQ(threaded, sequential);
}

TEST(SamplerTest, TopKOneAndTinyTopPEqualGreedy) {
  for (uint64_t seed = 0; seed < 10; ++seed) {
    const auto logits = randomLogits(129280, 100 + seed);
    const int64_t want = std::max_element(logits.begin(), logits.end()) - logits.begin();
    SamplingParams k1{1.5f, 1, 1.0f, seed, 1.0f};
    SamplingParams p_tiny{1.5f, 0, 1e-6f, seed, 1.0f};
    Sampler a(k1), b(p_tiny);
    for (int n = 0; n < 5; ++n) {
      EXPECT_EQ(a.sample(logits.data(), 129280, {}), want);
      EXPECT_EQ(b.sample(logits.data(), 129280, {}), want);
    }
  }
}

TEST(SamplerTest, WarpersMatchSortBasedReference) {
  struct Case {
    int64_t vocab;
    float quantum;
    SamplingParams p;
  };
  const std::vector<Case> cases = {
      {50, 0.0f, {1.0f, 0, 1.0f, 0, 1.0f}},       {50, 0.0f, {0.7f, 5, 1.0f, 0, 1.0f}},
      {50, 0.5f, {1.0f, 7, 1.0f, 0, 1.0f}},       {50, 0.0f, {1.0f, 0, 0.8f, 0, 1.0f}},
      {50, 0.5f, {1.3f, 0, 0.6f, 0, 1.0f}},       {50, 0.25f, {1.0f, 10, 0.7f, 0, 1.0f}},
      {4096, 0.0f, {1.0f, 0, 0.95f, 0, 1.0f}},    {4096, 0.125f, {2.0f, 0, 0.5f, 0, 1.0f}},
      {129280, 0.0f, {1.0f, 0, 0.9f, 0, 1.0f}},   {129280, 0.0f, {0.6f, 40, 0.9f, 0, 1.0f}},
      {129280, 0.5f, {1.0f, 0, 0.3f, 0, 1.0f}},   {129280, 0.0f, {1.0f, 0, 0.999f, 0, 1.3f}},
  };
  for (size_t c = 0; c < cases.size(); ++c) {
    SCOPED_TRACE("case " + std::to_string(c));
    const auto logits = randomLogits(cases[c].vocab, 500 + c, 3.0f, cases[c].quantum);
    std::vector<int32_t> history;
    if (cases[c].p.repetition_penalty != 1.0f)
      for (int32_t t = 0; t < cases[c].vocab; t += 7) history.push_back(t);
    Sampler s(cases[c].p);
    expectSameDistribution(s.distribution(logits.data(), cases[c].vocab, history),
                           reference(logits, cases[c].p, history));
  }
}

TEST(SamplerTest, EmpiricalDistributionMatchesSoftmax) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f, 2.5f, -3.0f};
  for (const SamplingParams& p :
       {SamplingParams{1.0f, 0, 1.0f, 11, 1.0f}, SamplingParams{0.5f, 0, 1.0f, 12, 1.0f},
        SamplingParams{2.0f, 0, 1.0f, 13, 1.0f}, SamplingParams{1.0f, 4, 1.0f, 14, 1.0f},
        SamplingParams{1.0f, 0, 0.8f, 15, 1.0f}}) {
    SCOPED_TRACE("T=" + std::to_string(p.temperature) + " k=" + std::to_string(p.top_k) +
                 " p=" + std::to_string(p.top_p));
    const auto probs = reference(logits, p, {});
    Sampler s(p);
    int dof = 0;
    const double chi = chiSquare(s, logits, probs, 100000, &dof);
    EXPECT_LT(chi, chiBound(dof)) << "dof " << dof;
  }
}

TEST(SamplerTest, TemperatureScalesLogits) {
  const std::vector<float> logits = {2.0f, 1.0f, 0.0f};
  for (float t : {0.25f, 1.0f, 4.0f}) {
    Sampler s(SamplingParams{t, 0, 1.0f, 0, 1.0f});
    const auto probs = s.distribution(logits.data(), 3, {});
    double z = 0.0;
    for (float x : logits) z += std::exp(x / t);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(probs[i], std::exp(logits[i] / t) / z, 1e-6);
  }
  // Lower temperature sharpens: the top token's probability falls as T grows.
  Sampler cold(SamplingParams{0.25f, 0, 1.0f, 0, 1.0f}), hot(SamplingParams{4.0f, 0, 1.0f, 0, 1.0f});
  EXPECT_GT(cold.distribution(logits.data(), 3, {})[0], 0.98);
  EXPECT_LT(hot.distribution(logits.data(), 3, {})[0], 0.45);
}

TEST(SamplerTest, RepetitionPenaltyFollowsHuggingFace) {
  // Positive logits are divided, negative multiplied; duplicates penalised once.
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f};
  Sampler s(SamplingParams{1.0f, 0, 1.0f, 0, 2.0f});
  const auto probs = s.distribution(logits.data(), 4, {0, 1, 1, 0, 99, -5});
  const std::vector<double> penalised = {1.0, -2.0, 0.5, 3.0};
  double z = 0.0;
  for (double x : penalised) z += std::exp(x);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(probs[i], std::exp(penalised[i]) / z, 1e-6) << i;

  // Greedy is penalised too: 3.0 / 1.5 = 2.0 < 2.9.
  Sampler g(SamplingParams{0.0f, 0, 1.0f, 0, 1.5f});
  const std::vector<float> pos = {3.0f, 2.9f};
  EXPECT_EQ(g.sample(pos.data(), 2, {}), 0);
  EXPECT_EQ(g.sample(pos.data(), 2, {0}), 1);
  // Negative: -1 * 2 = -2 < -1.5, so the unseen token wins.
  Sampler g2(SamplingParams{0.0f, 0, 1.0f, 0, 2.0f});
  const std::vector<float> neg = {-1.0f, -1.5f};
  EXPECT_EQ(g2.sample(neg.data(), 2, {0}), 1);
  // A penalty < 1 favours repetition.
  Sampler g3(SamplingParams{0.0f, 0, 1.0f, 0, 0.5f});
  EXPECT_EQ(g3.sample(pos.data(), 2, {1}), 1);
}

TEST(SamplerTest, PenaltyLoweringTheMaxKeepsMassFinite) {
  // Every token seen and heavily penalised: a stale max would underflow every exp.
  const std::vector<float> logits = {80.0f, 79.0f};
  Sampler s(SamplingParams{0.01f, 0, 1.0f, 0, 100.0f});
  const auto probs = s.distribution(logits.data(), 2, {0, 1});
  // Penalised logits 0.8 and 0.79 at T = 0.01 differ by 1 after scaling.
  EXPECT_NEAR(probs[0], 1.0 / (1.0 + std::exp(-1.0)), 1e-5);
  EXPECT_NEAR(probs[0] + probs[1], 1.0, 1e-9);
}

TEST(SamplerTest, InvalidParamsAreRejectedByName) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Bad {
    SamplingParams p;
    const char* field;
  };
  const std::vector<Bad> bad = {
      {{-0.1f, 0, 1.0f, 0, 1.0f}, "temperature"}, {{nan, 0, 1.0f, 0, 1.0f}, "temperature"},
      {{kInf, 0, 1.0f, 0, 1.0f}, "temperature"},  {{1.0f, -1, 1.0f, 0, 1.0f}, "top_k"},
      {{1.0f, 0, 0.0f, 0, 1.0f}, "top_p"},        {{1.0f, 0, 1.5f, 0, 1.0f}, "top_p"},
      {{1.0f, 0, nan, 0, 1.0f}, "top_p"},         {{1.0f, 0, -0.5f, 0, 1.0f}, "top_p"},
      {{1.0f, 0, 1.0f, 0, 0.0f}, "repetition_penalty"},
      {{1.0f, 0, 1.0f, 0, -1.0f}, "repetition_penalty"},
  };
  for (const Bad& b : bad) {
    const Status st = Sampler::validate(b.p);
    EXPECT_EQ(st.code(), DS_INVALID_ARGUMENT) << b.field;
    EXPECT_NE(st.message().find(b.field), std::string::npos) << st.message();
    EXPECT_FALSE(Sampler::create(b.p).isOk());
  }
  EXPECT_TRUE(Sampler::validate(SamplingParams{}).isOk());
  EXPECT_TRUE(Sampler::create(SamplingParams{0.7f, 50, 0.95f, 1, 1.1f}).isOk());

  Sampler s(SamplingParams{1.0f, 0, 1.0f, 0, 1.0f});
  const float one = 1.0f;
  EXPECT_EQ(s.sample(nullptr, 10, {}), -1);
  EXPECT_EQ(s.sample(&one, 0, {}), -1);
  EXPECT_EQ(s.sample(&one, 1, {}), 0);
}

}  // namespace
}  // namespace ds
