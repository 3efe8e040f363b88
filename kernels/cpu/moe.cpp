// Mixture of experts: the DeepSeek-V2/V3 router (softmax/sigmoid, greedy/group-limited/noaux_tc) and the experts.
#include <cmath>
#include <numeric>

#include "cpu/internal.h"
#include "cpu/moe_routing.h"

namespace ds::cpu {
namespace {

// The k best of v[0, n) as indices, best first; ties go to the lower index (a fixed rule where
// torch.topk leaves the order unspecified).
void topK(const float* v, int64_t n, int64_t k, int64_t* idx, std::vector<int64_t>& tmp) {
  tmp.resize(n);
  std::iota(tmp.begin(), tmp.end(), int64_t{0});
  k = std::min(k, n);
  std::partial_sort(tmp.begin(), tmp.begin() + k, tmp.end(), [v](int64_t a, int64_t b) {
    return v[a] > v[b] || (v[a] == v[b] && a < b);
  });
  std::copy(tmp.begin(), tmp.begin() + k, idx);
}

}  // namespace

void moeGate(const float* x, int64_t T, int64_t H, const WeightView& w,
             const float* correction_bias, const MoEGateParams& p, float* weights, int32_t* ids) {
  const int64_t E = w.rows, K = p.top_k;
  std::vector<float> logits(T * E);
  linear(x, T, w, nullptr, logits.data());  // HF: F.linear(x.float(), weight.float())
  detail::parallelFor(T, 16, [&](int64_t b, int64_t e) {
    std::vector<float> scores(E), choice(E), group_scores;
    std::vector<int64_t> tmp, sel(K), groups;
    for (int64_t t = b; t < e; ++t) {
      const float* lg = logits.data() + t * E;
      if (p.scoring == MoeScoring::Softmax) {
        std::copy(lg, lg + E, scores.begin());
        detail::softmaxInPlace(scores.data(), E);
      } else {
        for (int64_t i = 0; i < E; ++i) scores[i] = 1.0f / (1.0f + std::exp(-lg[i]));
      }
      // The correction bias only steers the choice; the weights come from the unbiased scores.
      for (int64_t i = 0; i < E; ++i) choice[i] = scores[i] + (correction_bias ? correction_bias[i] : 0.0f);
      if (p.method != MoeTopkMethod::Greedy && p.n_group > 1 && p.n_group <= E) {
        const int64_t G = p.n_group, per = E / G;
        group_scores.assign(G, 0.0f);
        for (int64_t g = 0; g < G; ++g) {
          const float* c = choice.data() + g * per;
          if (p.method == MoeTopkMethod::GroupLimitedGreedy) {
            group_scores[g] = *std::max_element(c, c + per);  // V2: max per group
          } else {
            int64_t top2[2];
            topK(c, per, 2, top2, tmp);  // V3: sum of the top-2 per group
            group_scores[g] = per >= 2 ? c[top2[0]] + c[top2[1]] : c[top2[0]];
          }
        }
        groups.resize(std::min(p.topk_group, G));
        topK(group_scores.data(), G, p.topk_group, groups.data(), tmp);
        std::vector<char> keep(G, 0);
        for (int64_t g : groups) keep[g] = 1;
        // V2 masks with 0.0 (and gathers the masked scores); V3 masks the choice with -inf.
        const float masked = p.method == MoeTopkMethod::GroupLimitedGreedy ? 0.0f : -INFINITY;
        // E not divisible by n_group is a config error (HF's view() fails); the experts past
        // the last whole group are treated as masked rather than read out of bounds.
        for (int64_t i = 0; i < E; ++i)
          if (i / per >= G || !keep[i / per]) {
            choice[i] = masked;
            if (p.method == MoeTopkMethod::GroupLimitedGreedy) scores[i] = 0.0f;
          }
      }
      topK(choice.data(), E, K, sel.data(), tmp);
      float* wt = weights + t * K;
      // top_k > E (a config error) leaves the extra slots as id -1 / weight 0, which
      // moeExperts skips.
      for (int64_t j = 0; j < K; ++j) {
        wt[j] = j < E ? scores[sel[j]] : 0.0f;
        ids[t * K + j] = j < E ? static_cast<int32_t>(sel[j]) : -1;
      }
      if (p.norm_topk_prob) {
        float denom = 0.0f;
        for (int64_t j = 0; j < K; ++j) denom += wt[j];
        denom += 1e-20f;
        for (int64_t j = 0; j < K; ++j) wt[j] /= denom;
      }
      for (int64_t j = 0; j < K; ++j) wt[j] = wt[j] * p.routed_scaling_factor;
    }
  });
}

void moeExperts(const float* x, int64_t T, int64_t H, const float* weights, const int32_t* ids,
                int64_t top_k, const WeightView* gate, const WeightView* up,
                const WeightView* down, int64_t num_experts, float* out,
                int64_t first_expert) {
  // Slots grouped by local expert, in token order (moe_routing.h, the GPU's definition too).
  // Ids outside [first_expert, first_expert + E) are skipped (HF skips its num_experts sentinel
  // the same way): expert parallelism drops the other ranks' experts that way.
  ExpertRows routed;
  permuteByExpert(ids, weights, T, top_k, first_expert, num_experts, &routed);
  std::fill(out, out + T * H, 0.0f);
  std::vector<float> xe, g, u, y;
  // Experts in ascending order, as HF's DeepseekV3Experts loop adds them with index_add_: each
  // token's sum then has a fixed order whatever other tokens share the step.
  for (int64_t e = 0; e < num_experts; ++e) {
    const int32_t first = routed.start[e];
    if (routed.start[e + 1] == first) continue;
    const int64_t n = routed.start[e + 1] - first, I = gate[e].rows;
    xe.resize(n * H);
    g.resize(n * I);
    u.resize(n * I);
    y.resize(n * H);
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(xe.data() + i * H, x + int64_t{routed.row_token[first + i]} * H, H * sizeof(float));
    linear(xe.data(), n, gate[e], nullptr, g.data());
    linear(xe.data(), n, up[e], nullptr, u.data());
    swiglu(g.data(), u.data(), n * I, g.data());
    linear(g.data(), n, down[e], nullptr, y.data());
    for (int64_t i = 0; i < n; ++i) {
      float* o = out + int64_t{routed.row_token[first + i]} * H;
      const float* yr = y.data() + i * H;
      const float wgt = routed.row_weight[first + i];
      for (int64_t c = 0; c < H; ++c) o[c] += yr[c] * wgt;
    }
  }
}

}  // namespace ds::cpu
