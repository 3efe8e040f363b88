// Sampling options on hand-made logits: min-p, presence/frequency penalties, logprobs (values
// against a direct log-softmax, top-N order and ties), plainGreedy, validation, determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "engine/sampler.h"

namespace ds {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

SamplingParams params(float temperature, uint64_t seed = 0) {
  SamplingParams p;
  p.temperature = temperature;
  p.seed = seed;
  return p;
}

// log_softmax(x / T) in double, NaN as -inf.
std::vector<double> logSoftmax(const std::vector<float>& x, double t = 1.0) {
  double max = -INFINITY;
  for (float v : x)
    if (!std::isnan(v)) max = std::max<double>(max, v);
  double z = 0.0;
  for (float v : x)
    if (!std::isnan(v)) z += std::exp((v - max) / t);
  std::vector<double> out;
  for (float v : x) out.push_back(std::isnan(v) ? -INFINITY : (v - max) / t - std::log(z));
  return out;
}

std::vector<float> randomLogits(int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (float& x : logits) x = normal(rng);
  return logits;
}

TEST(MinP, KeepsTokensAtLeastMinPTimesTheTopProbability) {
  // Probabilities relative to the top: 1, e^-1, e^-2, e^-3 (T = 1).
  const std::vector<float> logits = {3.0f, 2.0f, 1.0f, 0.0f};
  SamplingParams p = params(1.0f);
  p.min_p = 0.2f;  // e^-1 = 0.37 stays, e^-2 = 0.135 goes
  Sampler s(p);
  const auto probs = s.distribution(logits.data(), 4, {});
  const double z = 1.0 + std::exp(-1.0);
  EXPECT_NEAR(probs[0], 1.0 / z, 1e-6);
  EXPECT_NEAR(probs[1], std::exp(-1.0) / z, 1e-6);
  EXPECT_EQ(probs[2], 0.0);
  EXPECT_EQ(probs[3], 0.0);
  // Temperature first: at T = 2 the ratios are e^-0.5, e^-1, e^-1.5 = 0.61, 0.37, 0.22.
  p.temperature = 2.0f;
  p.min_p = 0.25f;
  const auto warm = Sampler(p).distribution(logits.data(), 4, {});
  EXPECT_GT(warm[2], 0.0);
  EXPECT_EQ(warm[3], 0.0);
  // min_p = 1 keeps exactly the tokens tied at the max (ratio exactly 1).
  const std::vector<float> ties = {1.0f, 5.0f, 5.0f, 4.999f};
  p.temperature = 1.0f;
  p.min_p = 1.0f;
  const auto top = Sampler(p).distribution(ties.data(), 4, {});
  EXPECT_EQ(top, (std::vector<double>{0.0, 0.5, 0.5, 0.0}));
  // Just above and just below the boundary: ratio e^-(ln 10 -/+ 1e-3) against min_p = 0.1.
  const float d = static_cast<float>(std::log(10.0));
  const std::vector<float> edge = {0.0f, -(d - 1e-3f), -(d + 1e-3f)};
  p.min_p = 0.1f;
  const auto e = Sampler(p).distribution(edge.data(), 3, {});
  EXPECT_GT(e[1], 0.0);
  EXPECT_EQ(e[2], 0.0);
  // Draws never leave the kept set, and greedy ignores min-p.
  Sampler draw(p);
  for (int n = 0; n < 200; ++n) EXPECT_NE(draw.sample(edge.data(), 3, {}), 2);
  p.temperature = 0.0f;
  EXPECT_EQ(Sampler(p).sample(edge.data(), 3, {}), 0);
}

TEST(MinP, AppliesAfterTopKAndTopP) {
  // HF order: top-p over the full distribution, then min-p intersects.
  const std::vector<float> logits = {2.0f, 1.9f, 1.0f, 0.0f, -1.0f};
  SamplingParams p = params(1.0f);
  p.top_p = 0.99f;
  p.min_p = 0.3f;  // e^-1 = 0.37 stays, e^-2 goes
  const auto probs = Sampler(p).distribution(logits.data(), 5, {});
  const double z = 1.0 + std::exp(-0.1) + std::exp(-1.0);
  EXPECT_NEAR(probs[0], 1.0 / z, 1e-6);
  EXPECT_NEAR(probs[2], std::exp(-1.0) / z, 1e-6);
  EXPECT_EQ(probs[3], 0.0);
  EXPECT_EQ(probs[4], 0.0);
  p.top_k = 1;
  EXPECT_EQ(Sampler(p).distribution(logits.data(), 5, {})[0], 1.0);
}

TEST(Penalties, PresenceAndFrequencyCountGeneratedTokensOnly) {
  const std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  // Prompt {0, 0, 1}; generated {2, 2, 2, 3}.
  const std::vector<int32_t> history = {0, 0, 1, 2, 2, 2, 3};
  SamplingParams p = params(1.0f);
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  const auto probs = Sampler(p).distribution(logits.data(), 5, history, /*prompt_len=*/3);
  // Penalised logits: tokens 0, 1 (prompt only) and 4 untouched; 2: 1 - 0.75 - 0.5; 3: 1 - 0.25 - 0.5.
  const std::vector<double> want = {1.0, 1.0, -0.25, 0.25, 1.0};
  double z = 0.0;
  for (double x : want) z += std::exp(x);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(probs[i], std::exp(want[i]) / z, 1e-6) << i;
  // prompt_len = size: nothing generated, nothing penalised.
  const auto none = Sampler(p).distribution(logits.data(), 5, history, history.size());
  for (double x : none) EXPECT_NEAR(x, 0.2, 1e-6);
  // Negative values encourage repetition.
  p.temperature = 0.0f;
  p.presence_penalty = -0.1f;
  p.frequency_penalty = 0.0f;
  EXPECT_EQ(Sampler(p).sample(logits.data(), 5, history, 3), 2);
}

TEST(Penalties, GreedySeesThemAndRepetitionPenaltyComesFirst) {
  const std::vector<float> logits = {3.0f, 2.5f};
  const std::vector<int32_t> history = {7, 0, 0};  // prompt {7}; token 0 generated twice
  SamplingParams p = params(0.0f);
  p.frequency_penalty = 0.2f;  // 3 - 0.4 = 2.6 > 2.5
  EXPECT_EQ(Sampler(p).sample(logits.data(), 2, history, 1), 0);
  p.frequency_penalty = 0.3f;  // 3 - 0.6 = 2.4 < 2.5
  EXPECT_EQ(Sampler(p).sample(logits.data(), 2, history, 1), 1);
  // Repetition penalty (over prompt + generated) first, then presence: token 0 gets
  // 3 / 1.2 - 0.15 = 2.35 < 2.5; without the repetition penalty 3 - 0.15 = 2.85 > 2.5.
  p.frequency_penalty = 0.0f;
  p.presence_penalty = 0.15f;
  p.repetition_penalty = 1.2f;
  EXPECT_EQ(Sampler(p).sample(logits.data(), 2, history, 1), 1);
  p.repetition_penalty = 1.0f;
  EXPECT_EQ(Sampler(p).sample(logits.data(), 2, history, 1), 0);
  // Exact values through the processed logprobs: (3 / 1.2) - 0.15 = 2.35 and 2.5.
  p.repetition_penalty = 1.2f;
  p.logprobs = 1;
  TokenLogprobs lp;
  Sampler(p).sample(logits.data(), 2, history, 1, &lp);
  const auto want = logSoftmax({3.0f / 1.2f - 0.15f, 2.5f});
  EXPECT_NEAR(lp.logprob, want[1], 1e-6);
  ASSERT_EQ(lp.top.size(), 1u);
  EXPECT_EQ(lp.top[0].token, 1);
}

TEST(PlainGreedy, OnlyWithoutPenaltiesAndLogprobs) {
  EXPECT_TRUE(Sampler(params(0.0f)).plainGreedy());
  SamplingParams p = params(0.0f);
  p.min_p = 0.5f;  // never changes the argmax
  EXPECT_TRUE(Sampler(p).plainGreedy());
  for (int which = 0; which < 5; ++which) {
    SamplingParams q = params(0.0f);
    if (which == 0) q.presence_penalty = 0.1f;
    if (which == 1) q.frequency_penalty = -0.1f;
    if (which == 2) q.repetition_penalty = 1.1f;
    if (which == 3) q.logprobs = 0;
    if (which == 4) q.temperature = 0.5f;
    EXPECT_FALSE(Sampler(q).plainGreedy()) << which;
  }
}

TEST(Logprobs, MatchADirectLogSoftmaxAfterTemperature) {
  const auto logits = randomLogits(1000, 3);
  for (float t : {0.0f, 0.5f, 1.0f, 1.7f}) {
    SCOPED_TRACE("T=" + std::to_string(t));
    SamplingParams p = params(t, 42);
    p.logprobs = 20;
    Sampler s(p);
    TokenLogprobs lp;
    const int32_t token = s.sample(logits.data(), 1000, {}, 0, &lp);
    const auto want = logSoftmax(logits, t == 0.0f ? 1.0 : t);
    EXPECT_NEAR(lp.logprob, want[token], 1e-5);
    ASSERT_EQ(lp.top.size(), 20u);
    // The top 20 by value, descending, each with its log-softmax.
    std::vector<int32_t> order(1000);
    for (int i = 0; i < 1000; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
    for (int k = 0; k < 20; ++k) {
      EXPECT_EQ(lp.top[k].token, order[k]) << k;
      EXPECT_NEAR(lp.top[k].logprob, want[order[k]], 1e-5) << k;
    }
    if (t == 0.0f) {
      EXPECT_EQ(token, lp.top[0].token);
    }
    // The same sampler with logprobs off draws the same tokens (no RNG use).
    SamplingParams off = p;
    off.logprobs = -1;
    Sampler a(p), b(off);
    for (int n = 0; n < 20; ++n)
      EXPECT_EQ(a.sample(logits.data(), 1000, {}, 0, &lp), b.sample(logits.data(), 1000, {}));
  }
}

TEST(Logprobs, TopNOrderAndTieRuleAndFilteredTokens) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Ties at 2.0 (ids 1, 3, 5) list lower ids first; NaN is -inf; top-k does not hide tokens.
  const std::vector<float> logits = {0.5f, 2.0f, nan, 2.0f, 3.0f, 2.0f, -kInf};
  SamplingParams p = params(1.0f, 1);
  p.top_k = 1;
  p.logprobs = 7;
  TokenLogprobs lp;
  EXPECT_EQ(Sampler(p).sample(logits.data(), 7, {}, 0, &lp), 4);
  const auto want = logSoftmax(logits);
  const std::vector<int32_t> ids = {4, 1, 3, 5, 0, 2, 6};
  ASSERT_EQ(lp.top.size(), 7u);
  for (int k = 0; k < 7; ++k) {
    EXPECT_EQ(lp.top[k].token, ids[k]) << k;
    if (std::isinf(want[ids[k]])) {
      EXPECT_EQ(lp.top[k].logprob, -kInf) << k;
    } else {
      EXPECT_NEAR(lp.top[k].logprob, want[ids[k]], 1e-6) << k;
    }
  }
  // N above the vocabulary: the whole vocabulary. N = 0: the chosen token only.
  p.logprobs = 20;
  Sampler(p).sample(logits.data(), 7, {}, 0, &lp);
  EXPECT_EQ(lp.top.size(), 7u);
  p.logprobs = 0;
  Sampler(p).sample(logits.data(), 7, {}, 0, &lp);
  EXPECT_TRUE(lp.top.empty());
  EXPECT_NEAR(lp.logprob, want[4], 1e-6);
  // Off: the output is not touched.
  p.logprobs = -1;
  lp.logprob = 123.0f;
  Sampler(p).sample(logits.data(), 7, {}, 0, &lp);
  EXPECT_EQ(lp.logprob, 123.0f);
}

TEST(Logprobs, RawIgnoresPenaltiesAndTemperature) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.0f};
  const std::vector<int32_t> history = {1, 1};
  SamplingParams p = params(0.5f, 3);
  p.frequency_penalty = 1.0f;
  p.repetition_penalty = 1.5f;
  p.logprobs = 3;
  TokenLogprobs processed, raw;
  const int32_t t1 = Sampler(p).sample(logits.data(), 3, history, 0, &processed);
  p.logprobs_raw = true;
  const int32_t t2 = Sampler(p).sample(logits.data(), 3, history, 0, &raw);
  EXPECT_EQ(t1, t2);  // the mode changes what is reported, not what is drawn
  const auto want_raw = logSoftmax(logits);
  // Processed: 2 / 1.5 - 2 x 1 = -0.667 for token 1, then / 0.5.
  const auto want_processed = logSoftmax({1.0f, 2.0f / 1.5f - 2.0f, 0.0f}, 0.5);
  for (const TopLogprob& t : raw.top) EXPECT_NEAR(t.logprob, want_raw[t.token], 1e-6);
  for (const TopLogprob& t : processed.top) EXPECT_NEAR(t.logprob, want_processed[t.token], 1e-5);
  EXPECT_EQ(raw.top[0].token, 1);
  EXPECT_EQ(processed.top[0].token, 0);
}

TEST(Logprobs, InfinitiesAndDeadRows) {
  const std::vector<float> inf = {0.0f, kInf, kInf};
  SamplingParams p = params(0.0f);
  p.logprobs = 3;
  TokenLogprobs lp;
  EXPECT_EQ(Sampler(p).sample(inf.data(), 3, {}, 0, &lp), 1);
  EXPECT_NEAR(lp.logprob, -std::log(2.0), 1e-6);
  EXPECT_EQ(lp.top[2].logprob, -kInf);
  const std::vector<float> dead = {-kInf, -kInf};
  EXPECT_EQ(Sampler(p).sample(dead.data(), 2, {}, 0, &lp), 0);
  EXPECT_EQ(lp.logprob, -kInf);
}

TEST(Determinism, SameSeedSameTokensWithEveryOption) {
  const auto logits = randomLogits(5000, 9);
  SamplingParams p = params(0.9f, 77);
  p.top_k = 200;
  p.top_p = 0.9f;
  p.min_p = 0.05f;
  p.presence_penalty = 0.4f;
  p.frequency_penalty = 0.3f;
  p.repetition_penalty = 1.1f;
  p.logprobs = 5;
  auto run = [&](SamplingParams q) {
    Sampler s(q);
    std::vector<int32_t> history = {1, 2, 3};
    TokenLogprobs lp;
    for (int n = 0; n < 40; ++n) history.push_back(s.sample(logits.data(), 5000, history, 3, &lp));
    return history;
  };
  EXPECT_EQ(run(p), run(p));
  SamplingParams other = p;
  other.seed = 78;
  EXPECT_NE(run(p), run(other));
}

TEST(Validation, NewFieldsAreRejectedByName) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Bad {
    SamplingParams p;
    const char* field;
  };
  std::vector<Bad> bad;
  for (float v : {-0.01f, 1.01f, nan}) {
    SamplingParams p;
    p.min_p = v;
    bad.push_back({p, "min_p"});
  }
  for (float v : {-2.01f, 2.01f, nan, kInf}) {
    SamplingParams p;
    p.presence_penalty = v;
    bad.push_back({p, "presence_penalty"});
    p.presence_penalty = 0.0f;
    p.frequency_penalty = v;
    bad.push_back({p, "frequency_penalty"});
  }
  for (int v : {-2, 21}) {
    SamplingParams p;
    p.logprobs = v;
    bad.push_back({p, "logprobs"});
  }
  for (const Bad& b : bad) {
    const Status st = Sampler::validate(b.p);
    EXPECT_EQ(st.code(), DS_INVALID_ARGUMENT) << b.field;
    EXPECT_NE(st.message().find(b.field), std::string::npos) << st.message();
  }
  SamplingParams edge;
  edge.min_p = 1.0f;
  edge.presence_penalty = -2.0f;
  edge.frequency_penalty = 2.0f;
  edge.logprobs = 20;
  EXPECT_TRUE(Sampler::validate(edge).isOk());
}

}  // namespace
}  // namespace ds
