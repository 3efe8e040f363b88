// MoE router (softmax/sigmoid; greedy, group_limited_greedy, noaux_tc; ties) and experts vs references.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "cpu/cpu_kernels.h"
#include "cpu/moe_routing.h"
#include "reference.h"

namespace ds::cpu::test {
namespace {

// Indices of the k largest values, ties to the lower index (stable sort of a descending order).
std::vector<int64_t> refTopK(const std::vector<double>& v, int64_t k) {
  std::vector<int64_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
  idx.resize(k);
  return idx;
}

// HF DeepseekV2TopkRouter / DeepseekV3TopkRouter for one token's logits.
void refGate(const std::vector<double>& logits, const double* bias, const MoEGateParams& p,
             std::vector<int64_t>& ids, std::vector<double>& w) {
  const int64_t E = logits.size();
  std::vector<double> scores(E);
  if (p.scoring == MoeScoring::Softmax) {
    double mx = *std::max_element(logits.begin(), logits.end()), sum = 0;
    for (int64_t i = 0; i < E; ++i) sum += (scores[i] = std::exp(logits[i] - mx));
    for (auto& s : scores) s /= sum;
  } else {
    for (int64_t i = 0; i < E; ++i) scores[i] = 1 / (1 + std::exp(-logits[i]));
  }
  std::vector<double> choice = scores;
  if (bias)
    for (int64_t i = 0; i < E; ++i) choice[i] += bias[i];
  std::vector<double> gathered = scores;
  if (p.method != MoeTopkMethod::Greedy) {
    const int64_t per = E / p.n_group;
    std::vector<double> gs(p.n_group);
    for (int64_t g = 0; g < p.n_group; ++g) {
      std::vector<double> grp(choice.begin() + g * per, choice.begin() + (g + 1) * per);
      std::sort(grp.rbegin(), grp.rend());
      gs[g] = p.method == MoeTopkMethod::GroupLimitedGreedy ? grp[0] : grp[0] + grp[1];
    }
    auto keep = refTopK(gs, p.topk_group);
    for (int64_t i = 0; i < E; ++i)
      if (std::find(keep.begin(), keep.end(), i / per) == keep.end()) {
        if (p.method == MoeTopkMethod::GroupLimitedGreedy) choice[i] = gathered[i] = 0.0;
        else choice[i] = -INFINITY;
      }
  }
  ids = refTopK(choice, p.top_k);
  w.clear();
  for (int64_t id : ids) w.push_back(gathered[id]);
  if (p.norm_topk_prob) {
    double s = std::accumulate(w.begin(), w.end(), 0.0) + 1e-20;
    for (auto& x : w) x /= s;
  }
  for (auto& x : w) x *= p.routed_scaling_factor;
}

// Inputs on a 1/8 grid with small H: every router logit is exact in f32 and double, so the
// kernel and the reference select from the same values.
struct GateInputs {
  std::vector<float> x, w, bias;
  int64_t T, H, E;
};

GateInputs gridInputs(Rng& rng, int64_t T, int64_t H, int64_t E) {
  GateInputs g{{}, {}, {}, T, H, E};
  auto grid = [&] { return float(rng.index(9) - 4) / 8.0f; };
  for (int64_t i = 0; i < T * H; ++i) g.x.push_back(grid());
  for (int64_t i = 0; i < E * H; ++i) g.w.push_back(grid());
  for (int64_t i = 0; i < E; ++i) g.bias.push_back(float(rng.index(5)) / 16.0f);
  return g;
}

void checkGate(const GateInputs& in, const MoEGateParams& p, bool use_bias, const char* name) {
  auto w = f32Weight(in.w, in.E, in.H);
  std::vector<float> weights(in.T * p.top_k);
  std::vector<int32_t> ids(in.T * p.top_k);
  moeGate(in.x.data(), in.T, in.H, w.view, use_bias ? in.bias.data() : nullptr, p, weights.data(),
          ids.data());
  std::vector<double> bias(in.bias.begin(), in.bias.end());
  for (int64_t t = 0; t < in.T; ++t) {
    std::vector<double> logits(in.E);
    for (int64_t e = 0; e < in.E; ++e)
      for (int64_t h = 0; h < in.H; ++h) logits[e] += double(in.x[t * in.H + h]) * in.w[e * in.H + h];
    std::vector<int64_t> rid;
    std::vector<double> rw;
    refGate(logits, use_bias ? bias.data() : nullptr, p, rid, rw);
    for (int64_t j = 0; j < p.top_k; ++j) {
      EXPECT_EQ(ids[t * p.top_k + j], rid[j]) << name << " t=" << t << " j=" << j;
      EXPECT_NEAR(weights[t * p.top_k + j], rw[j], 1e-6 * std::max(1.0, std::fabs(rw[j])))
          << name << " t=" << t << " j=" << j;
    }
  }
}

TEST(MoeGate, AllMethodsMatchHfReference) {
  Rng rng(41);
  auto in = gridInputs(rng, 24, 16, 16);
  MoEGateParams v2;  // DeepSeek-V2-Lite style: softmax, greedy, no normalisation
  v2.top_k = 6;
  v2.routed_scaling_factor = 1.0f;
  checkGate(in, v2, false, "softmax_greedy");
  MoEGateParams glg = v2;  // DeepSeek-V2: group_limited_greedy with group max, scaled
  glg.method = MoeTopkMethod::GroupLimitedGreedy;
  glg.n_group = 4;
  glg.topk_group = 2;
  glg.top_k = 3;
  glg.routed_scaling_factor = 16.0f;
  checkGate(in, glg, false, "softmax_group_limited_greedy");
  MoEGateParams v3;  // DeepSeek-V3: sigmoid, noaux_tc, bias, top-2 group sums, norm + scale
  v3.scoring = MoeScoring::Sigmoid;
  v3.method = MoeTopkMethod::NoauxTc;
  v3.n_group = 4;
  v3.topk_group = 2;
  v3.top_k = 4;
  v3.norm_topk_prob = true;
  v3.routed_scaling_factor = 2.5f;
  checkGate(in, v3, true, "sigmoid_noaux_tc");
  v3.norm_topk_prob = false;
  checkGate(in, v3, true, "sigmoid_noaux_tc_no_norm");
  v3.top_k = 6;  // more than the kept groups hold: -inf experts fill in, lowest index first
  v3.topk_group = 1;
  checkGate(in, v3, true, "sigmoid_noaux_tc_overflow");
}

// One token whose logits are exactly `logits` (x = e_0, w[:, 0] = logits).
void gateOne(const std::vector<float>& logits, const MoEGateParams& p, const float* bias,
             std::vector<int32_t>& ids, std::vector<float>& weights) {
  const int64_t E = logits.size(), H = 2;
  std::vector<float> w(E * H, 0.0f), x = {1.0f, 0.0f};
  for (int64_t e = 0; e < E; ++e) w[e * H] = logits[e];
  auto wv = f32Weight(w, E, H);
  ids.resize(p.top_k);
  weights.resize(p.top_k);
  moeGate(x.data(), 1, H, wv.view, bias, p, weights.data(), ids.data());
}

TEST(MoeGate, TiesGoToTheLowerIndex) {
  std::vector<int32_t> ids;
  std::vector<float> w;
  MoEGateParams greedy;
  greedy.top_k = 2;
  gateOne({0.1f, 0.7f, 0.3f, 0.7f, 0.7f}, greedy, nullptr, ids, w);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 3}));
  EXPECT_EQ(w[0], w[1]);

  // Groups 0 and 1 tie on their top-2 sum; topk_group = 1 keeps group 0.
  MoEGateParams v3;
  v3.scoring = MoeScoring::Sigmoid;
  v3.method = MoeTopkMethod::NoauxTc;
  v3.n_group = 4;
  v3.topk_group = 1;
  v3.top_k = 2;
  gateOne({0.5f, 0.25f, 0.25f, 0.5f, 0.75f, -1.0f, 0.0f, 0.0f}, v3, nullptr, ids, w);
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 1}));
  EXPECT_FLOAT_EQ(w[0], 1.0f / (1.0f + std::exp(-0.5f)));
  // The bias breaks the tie toward group 1 but the weights stay unbiased sigmoids.
  std::vector<float> bias = {0, 0, 0.0625f, 0, 0, 0, 0, 0};
  gateOne({0.5f, 0.25f, 0.25f, 0.5f, 0.75f, -1.0f, 0.0f, 0.0f}, v3, bias.data(), ids, w);
  // Expert 2's biased choice (0.562 + 0.0625) beats expert 3's 0.622; its weight is sigmoid(0.25).
  EXPECT_EQ(ids, (std::vector<int32_t>{2, 3}));
  EXPECT_FLOAT_EQ(w[0], 1.0f / (1.0f + std::exp(-0.25f)));

  // group_limited_greedy: group maxima tie (0.9 in groups 1 and 2): group 1 is kept.
  MoEGateParams glg;
  glg.method = MoeTopkMethod::GroupLimitedGreedy;
  glg.n_group = 3;
  glg.topk_group = 1;
  glg.top_k = 2;
  gateOne({0.1f, 0.2f, 0.9f, 0.3f, 0.4f, 0.9f}, glg, nullptr, ids, w);
  EXPECT_EQ(ids, (std::vector<int32_t>{2, 3}));
}

TEST(MoeGate, BadConfigsStayInBounds) {
  // top_k > E: the extra slots come back as id -1 / weight 0 (moeExperts skips them).
  std::vector<int32_t> ids;
  std::vector<float> w;
  MoEGateParams big;
  big.top_k = 5;
  gateOne({0.1f, 0.3f, 0.2f}, big, nullptr, ids, w);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 2, 0, -1, -1}));
  EXPECT_EQ(w[3], 0.0f);
  // E = 7 not divisible by n_group = 3: the leftover expert 6 is never chosen.
  MoEGateParams v3;
  v3.scoring = MoeScoring::Sigmoid;
  v3.method = MoeTopkMethod::NoauxTc;
  v3.n_group = 3;
  v3.topk_group = 3;
  v3.top_k = 2;
  gateOne({0.0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 9.0f}, v3, nullptr, ids, w);
  EXPECT_EQ(ids, (std::vector<int32_t>{5, 4}));
}

TEST(MoeExperts, MatchesReferenceAndIsBatchInvariant) {
  Rng rng(43);
  const int64_t E = 5, H = 40, I = 28, T = 7, K = 2;
  std::vector<OwnedWeight> g, u, d;
  std::vector<WeightView> gv, uv, dv;
  for (int64_t e = 0; e < E; ++e) {
    g.push_back(randomWeight(rng, WeightType::BF16, I, H, 0.3f));
    u.push_back(randomWeight(rng, WeightType::F16, I, H, 0.3f));
    d.push_back(randomWeight(rng, WeightType::F8E4M3, H, I, 0.3f, 16, 16));
  }
  for (int64_t e = 0; e < E; ++e) gv.push_back(g[e].view), uv.push_back(u[e].view), dv.push_back(d[e].view);
  auto x = rng.vec(T * H);
  std::vector<int32_t> ids = {0, 3, 3, 1, 4, 0, 2, 3, 1, 0, 4, 2, 3, 5 /* skipped */};
  auto wts = rng.vec(T * K, 0.1f, 1.0f);
  std::vector<float> out(T * H);
  moeExperts(x.data(), T, H, wts.data(), ids.data(), K, gv.data(), uv.data(), dv.data(), E, out.data());

  std::vector<double> want(T * H, 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < K; ++j) {
      const int32_t e = ids[t * K + j];
      if (e >= E) continue;
      auto G = refDequant(gv[e]), U = refDequant(uv[e]), D = refDequant(dv[e]);
      std::vector<double> a(I);
      for (int64_t i = 0; i < I; ++i) {
        double gs = 0, us = 0;
        for (int64_t h = 0; h < H; ++h) gs += G[i * H + h] * x[t * H + h], us += U[i * H + h] * x[t * H + h];
        a[i] = gs / (1 + std::exp(-gs)) * us;
      }
      for (int64_t h = 0; h < H; ++h) {
        double s = 0;
        for (int64_t i = 0; i < I; ++i) s += D[h * I + i] * a[i];
        want[t * H + h] += wts[t * K + j] * s;
      }
    }
  EXPECT_LT(maxRelErr(out, want), 1e-5);

  for (int64_t t : {0, 4, 6}) {
    std::vector<float> one(H);
    moeExperts(x.data() + t * H, 1, H, wts.data() + t * K, ids.data() + t * K, K, gv.data(),
               uv.data(), dv.data(), E, one.data());
    EXPECT_EQ(0, std::memcmp(one.data(), out.data() + t * H, H * 4)) << "t=" << t;
  }
}

// Expert permutation bookkeeping (moe_routing.h, the host's and the GPU's definition): rows
// grouped by local expert in slot order, the inverse slot -> row, the active list, and the
// skipped slots (-1 and other ranks' experts), against a direct definition.
void checkPermutation(const std::vector<int32_t>& ids, const std::vector<float>& w, int64_t T,
                      int64_t K, int64_t first, int64_t L) {
  ExpertRows r;
  permuteByExpert(ids.data(), w.data(), T, K, first, L, &r);
  ASSERT_EQ(r.start.size(), static_cast<size_t>(L + 1));
  ASSERT_EQ(r.active.size(), static_cast<size_t>(L + 1));
  ASSERT_EQ(r.slot_row.size(), static_cast<size_t>(T * K));
  int32_t row = 0, activeCount = 0;
  for (int64_t e = 0; e < L; ++e) {
    ASSERT_EQ(r.start[e], row) << "expert " << e;
    for (int64_t s = 0; s < T * K; ++s) {  // the slots of e, in slot order
      if (ids[s] != first + e) continue;
      ASSERT_EQ(r.slot_row[s], row) << "slot " << s;
      EXPECT_EQ(r.row_token[row], s / K);
      EXPECT_EQ(r.row_weight[row], w[s]);
      ++row;
    }
    if (row > r.start[e]) EXPECT_EQ(r.active[activeCount++], e);
  }
  EXPECT_EQ(r.start[L], row);
  EXPECT_EQ(r.rows(), row);
  EXPECT_EQ(r.active[L], activeCount);
  for (int64_t i = activeCount; i < L; ++i) EXPECT_EQ(r.active[i], 0) << "active tail " << i;
  for (int64_t s = 0; s < T * K; ++s)
    if (ids[s] < first || ids[s] >= first + L) EXPECT_EQ(r.slot_row[s], -1) << "slot " << s;
}

TEST(MoePermutation, GroupsSlotsByExpertInSlotOrder) {
  Rng rng(7);
  for (int64_t T : {1, 5, 300}) {
    const int64_t K = 6, E = 64;
    std::vector<int32_t> ids(T * K);
    for (int64_t i = 0; i < T * K; ++i) ids[i] = static_cast<int32_t>(rng.index(E));
    if (T > 1) ids[3] = -1;  // an unrouted slot (top_k > experts)
    std::vector<float> w = rng.vec(T * K, 0.0f, 1.0f);
    checkPermutation(ids, w, T, K, 0, E);
    // Expert parallelism, 4 ranks of 16 experts: each rank's rows are its experts' slots, and
    // every routed slot has a row on exactly one rank.
    std::vector<int> owners(T * K, 0);
    for (int64_t rank = 0; rank < 4; ++rank) {
      checkPermutation(ids, w, T, K, rank * 16, 16);
      ExpertRows r;
      permuteByExpert(ids.data(), w.data(), T, K, rank * 16, 16, &r);
      for (int64_t s = 0; s < T * K; ++s) owners[s] += r.slot_row[s] >= 0;
    }
    for (int64_t s = 0; s < T * K; ++s) EXPECT_EQ(owners[s], ids[s] >= 0 ? 1 : 0) << "slot " << s;
  }
  // No local slot at all: zero rows, empty active list.
  checkPermutation({40, 41, 42, 43}, {1, 1, 1, 1}, 2, 2, 0, 8);
}

// Expert parallelism in the kernel: the ranks' partial results (each its own experts, the
// others' slots skipped) sum to the single-rank result.
TEST(MoeExperts, RankPartialsSumToTheWhole) {
  Rng rng(44);
  const int64_t E = 8, H = 32, I = 16, T = 5, K = 3, ranks = 4, per = E / ranks;
  std::vector<OwnedWeight> g, u, d;
  std::vector<WeightView> gv, uv, dv;
  for (int64_t e = 0; e < E; ++e) {
    g.push_back(randomWeight(rng, WeightType::BF16, I, H, 0.3f));
    u.push_back(randomWeight(rng, WeightType::BF16, I, H, 0.3f));
    d.push_back(randomWeight(rng, WeightType::BF16, H, I, 0.3f));
  }
  for (int64_t e = 0; e < E; ++e) gv.push_back(g[e].view), uv.push_back(u[e].view), dv.push_back(d[e].view);
  auto x = rng.vec(T * H);
  std::vector<int32_t> ids = {0, 5, 7, 1, 2, 3, 6, 4, 0, 7, 6, 5, 2, 3, 1};
  auto wts = rng.vec(T * K, 0.1f, 1.0f);
  std::vector<float> whole(T * H), part(T * H);
  moeExperts(x.data(), T, H, wts.data(), ids.data(), K, gv.data(), uv.data(), dv.data(), E, whole.data());
  std::vector<double> sum(T * H, 0.0);
  for (int64_t r = 0; r < ranks; ++r) {
    moeExperts(x.data(), T, H, wts.data(), ids.data(), K, gv.data() + r * per, uv.data() + r * per,
               dv.data() + r * per, per, part.data(), r * per);
    for (int64_t i = 0; i < T * H; ++i) sum[i] += part[i];
  }
  EXPECT_LT(maxRelErr(whole, sum), 1e-6);
}

}  // namespace
}  // namespace ds::cpu::test
