// embed, rmsNorm, add, swiglu and rotary embedding (all HF scaling kinds) against double references.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "cpu/cpu_kernels.h"
#include "cpu/internal.h"
#include "reference.h"

namespace ds::cpu::test {
namespace {

TEST(Elementwise, EmbedGathersDequantizedRows) {
  Rng rng(2);
  auto w = randomWeight(rng, WeightType::BF16, 50, 40);
  const auto W = refDequant(w.view);
  std::vector<int32_t> ids = {3, 49, 0, 3};
  std::vector<float> y(4 * 40);
  embed(ids.data(), 4, w.view, y.data());
  for (int t = 0; t < 4; ++t)
    for (int c = 0; c < 40; ++c) ASSERT_EQ(double(y[t * 40 + c]), W[ids[t] * 40 + c]);
}

// Vocab-parallel lookup: rows of this rank's range, zero rows (not stale data) for the others.
TEST(Elementwise, EmbedRangeZeroesIdsOutsideTheShard) {
  Rng rng(3);
  auto w = randomWeight(rng, WeightType::F16, 10, 12);  // table rows [20, 30)
  const auto W = refDequant(w.view);
  std::vector<int32_t> ids = {20, 19, 29, 30, 0, 25};
  std::vector<float> y(6 * 12, 7.0f);
  embedRange(ids.data(), 6, w.view, 20, y.data());
  for (int t = 0; t < 6; ++t) {
    const bool mine = ids[t] >= 20 && ids[t] < 30;
    for (int c = 0; c < 12; ++c)
      ASSERT_EQ(double(y[t * 12 + c]), mine ? W[(ids[t] - 20) * 12 + c] : 0.0) << t << " " << c;
  }
}

TEST(Elementwise, RmsNormMatchesReferenceAndWorksInPlace) {
  Rng rng(3);
  const int64_t T = 5, H = 333;
  auto x = rng.vec(T * H, -3, 3);
  auto w = randomWeight(rng, WeightType::BF16, 1, H);
  const auto W = refDequant(w.view);
  const float eps = 1e-6f;
  std::vector<double> ref(T * H);
  for (int64_t t = 0; t < T; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < H; ++i) ss += double(x[t * H + i]) * x[t * H + i];
    double r = 1.0 / std::sqrt(ss / H + eps);
    for (int64_t i = 0; i < H; ++i) ref[t * H + i] = W[i] * x[t * H + i] * r;
  }
  std::vector<float> y(T * H);
  rmsNorm(x.data(), T, H, w.view, eps, y.data());
  EXPECT_LT(maxRelErr(y, ref), 1e-6);
  rmsNorm(x.data(), T, H, w.view, eps, x.data());
  EXPECT_EQ(0, std::memcmp(x.data(), y.data(), y.size() * 4));
}

TEST(Elementwise, AddAndSwiglu) {
  Rng rng(4);
  const int64_t n = 1000;
  auto a = rng.vec(n, -8, 8), b = rng.vec(n, -8, 8);
  std::vector<float> out(n);
  add(a.data(), b.data(), n, out.data());
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out[i], a[i] + b[i]);
  swiglu(a.data(), b.data(), n, out.data());
  std::vector<double> ref(n);
  for (int64_t i = 0; i < n; ++i) ref[i] = a[i] / (1.0 + std::exp(-double(a[i]))) * b[i];
  EXPECT_LT(maxRelErr(out, ref), 1e-6);
  swiglu(a.data(), b.data(), n, a.data());  // aliasing gate
  EXPECT_EQ(0, std::memcmp(a.data(), out.data(), n * 4));
}

// expPoly (the exp of swiglu, library and generated alike) against double exp: relative error
// under 2^-22 on [-87, 88] (measured 2^-23.5; MLIR documents about 2^-22.5), 0 below 2^-126, 1
// at 0, NaN through.
TEST(Elementwise, ExpPolyIsCloseToExp) {
  double worst = 0;
  for (int i = 0; i <= 2000000; ++i) {
    const float x = -87.0f + 175.0f * static_cast<float>(i) / 2000000.0f;
    const double want = std::exp(double(x));
    if (want < 0x1p-126) continue;  // flushed range, checked below
    worst = std::max(worst, std::fabs(detail::expPoly(x) - want) / want);
  }
  std::printf("expPoly: worst relative error %.3g (2^%.2f)\n", worst, std::log2(worst));
  EXPECT_LT(worst, 0x1p-22);
  EXPECT_EQ(detail::expPoly(0.0f), 1.0f);
  EXPECT_EQ(detail::expPoly(-100.0f), 0.0f);
  EXPECT_TRUE(std::isnan(detail::expPoly(NAN)));
  EXPECT_GT(detail::expPoly(88.7f), 3e38f);
}

// swiglu's vector path (AVX-512 where present) is the scalar definition bit for bit, tails and
// the clamped ranges included (|g| up to 200).
TEST(Elementwise, SwigluVectorPathIsTheScalarDefinition) {
  Rng rng(8);
  for (int64_t n : {1, 15, 16, 17, 1000, 8960}) {
    auto g = rng.vec(n, -200, 200), u = rng.vec(n, -4, 4);
    for (int64_t i = 0; i < n; i += 7) g[i] = rng.uniform(-3, 3);
    std::vector<float> out(n);
    swiglu(g.data(), u.data(), n, out.data());
    for (int64_t i = 0; i < n; ++i) {
      const float want = (g[i] / (1.0f + detail::expPoly(-g[i]))) * u[i];
      ASSERT_EQ(std::memcmp(&out[i], &want, 4), 0) << "n " << n << " i " << i << ": " << out[i] << " vs " << want;
    }
  }
}

//===--------------------------------------------------------------------===//
// Rotary embedding: transcription of transformers/modeling_rope_utils.py in double.
//===--------------------------------------------------------------------===//

struct RefRope {
  std::vector<double> inv_freq;
  double attention_factor = 1.0;
};

double getMscale(double scale, double mscale) {
  return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

RefRope refRope(const RopeParams& p) {
  RefRope r;
  const int64_t dim = p.dim;
  std::vector<double> base(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i) base[i] = 1.0 / std::pow(p.theta, double(2 * i) / dim);
  r.inv_freq = base;
  if (p.scaling == RopeScaling::Linear) {
    for (auto& f : r.inv_freq) f /= p.factor;
  } else if (p.scaling == RopeScaling::Llama3) {
    const double old = double(p.original_max_position);
    const double low_wl = old / p.low_freq_factor, high_wl = old / p.high_freq_factor;
    for (auto& f : r.inv_freq) {
      const double wl = 2 * M_PI / f;
      if (wl > low_wl) {
        f = f / p.factor;
      } else if (wl >= high_wl) {
        const double s = (old / wl - p.low_freq_factor) / (p.high_freq_factor - p.low_freq_factor);
        f = (1 - s) * f / p.factor + s * f;
      }
    }
  } else if (p.scaling == RopeScaling::Yarn) {
    if (p.attention_factor > 0) r.attention_factor = p.attention_factor;
    else if (p.mscale != 0 && p.mscale_all_dim != 0)
      r.attention_factor = getMscale(p.factor, p.mscale) / getMscale(p.factor, p.mscale_all_dim);
    else r.attention_factor = getMscale(p.factor, 1);
    auto corr = [&](double rot) {
      return dim * std::log(p.original_max_position / (rot * 2 * M_PI)) / (2 * std::log(p.theta));
    };
    double low = corr(p.beta_fast), high = corr(p.beta_slow);
    if (p.truncate) low = std::floor(low), high = std::ceil(high);
    low = std::max(low, 0.0);
    high = std::min(high, double(dim - 1));
    if (low == high) high += 0.001;
    for (int64_t i = 0; i < dim / 2; ++i) {
      double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
      double extra = 1 - ramp;
      r.inv_freq[i] = base[i] / p.factor * (1 - extra) + base[i] * extra;
    }
  }
  return r;
}

// Rotation of x[heads, head_dim] at pos with HF's f32 angle (pos.float() * inv_freq.float()).
void refRotate(const RopeParams& p, const RefRope& r, float pos, const float* x, int64_t heads,
               int64_t head_dim, double* out) {
  const int64_t half = p.dim / 2;
  for (int64_t h = 0; h < heads; ++h) {
    const float* v = x + h * head_dim;
    double* o = out + h * head_dim;
    for (int64_t c = 0; c < head_dim; ++c) o[c] = v[c];
    for (int64_t i = 0; i < half; ++i) {
      const double ang = double(pos * float(r.inv_freq[i]));
      const double c = std::cos(ang) * r.attention_factor, s = std::sin(ang) * r.attention_factor;
      const int64_t a = p.interleaved ? 2 * i : i, b = p.interleaved ? 2 * i + 1 : i + half;
      o[a] = v[a] * c - v[b] * s;
      o[b] = v[b] * c + v[a] * s;
    }
  }
}

struct RopeCase {
  const char* name;
  RopeParams p;
};

std::vector<RopeCase> ropeCases() {
  std::vector<RopeCase> cases;
  RopeParams d;
  d.theta = 10000;
  d.dim = 64;
  cases.push_back({"default", d});
  RopeParams lin = d;
  lin.scaling = RopeScaling::Linear;
  lin.factor = 4;
  cases.push_back({"linear", lin});
  RopeParams l3 = d;  // Llama 3.1 values
  l3.theta = 500000;
  l3.dim = 128;
  l3.scaling = RopeScaling::Llama3;
  l3.factor = 8;
  l3.low_freq_factor = 1;
  l3.high_freq_factor = 4;
  l3.original_max_position = 8192;
  cases.push_back({"llama3", l3});
  RopeParams y = d;  // DeepSeek-V3 values: mscale == mscale_all_dim -> attention factor 1
  y.scaling = RopeScaling::Yarn;
  y.factor = 40;
  y.original_max_position = 4096;
  y.mscale = 1;
  y.mscale_all_dim = 1;
  y.interleaved = true;
  cases.push_back({"yarn_deepseek_v3", y});
  RopeParams y2 = y;  // only factor: attention factor 0.1 ln(factor) + 1
  y2.mscale = 0;
  y2.mscale_all_dim = 0;
  y2.interleaved = false;
  y2.truncate = false;
  y2.factor = 16;
  cases.push_back({"yarn_plain_no_truncate", y2});
  RopeParams y3 = y;  // explicit attention factor and unequal mscales
  y3.mscale = 0.707;
  y3.mscale_all_dim = 1.0;
  cases.push_back({"yarn_mscale_ratio", y3});
  RopeParams y4 = y;
  y4.attention_factor = 1.25;
  cases.push_back({"yarn_given_attention_factor", y4});
  return cases;
}

TEST(Rope, InverseFrequenciesAndAttentionFactorMatchHfFormulas) {
  for (const auto& rc : ropeCases()) {
    RopeTable table(rc.p);
    const RefRope ref = refRope(rc.p);
    ASSERT_EQ(table.invFreq().size(), ref.inv_freq.size()) << rc.name;
    for (size_t i = 0; i < ref.inv_freq.size(); ++i)
      EXPECT_NEAR(table.invFreq()[i] / ref.inv_freq[i], 1.0, 1e-6) << rc.name << " i=" << i;
    EXPECT_NEAR(table.attentionFactor(), ref.attention_factor, 1e-7) << rc.name;
  }
}

TEST(Rope, ApplyMatchesReferenceRotation) {
  Rng rng(9);
  for (const auto& rc : ropeCases()) {
    RopeTable table(rc.p);
    // inv_freq is checked against the HF formulas above (to an f32 ulp); the rotation is checked
    // with the table's own f32 values, since one ulp of inv_freq is pos ulps of the angle.
    RefRope ref = refRope(rc.p);
    ref.inv_freq.assign(table.invFreq().begin(), table.invFreq().end());
    const int64_t T = 6, heads = 3, head_dim = rc.p.dim + 8;  // 8 channels pass through
    std::vector<int32_t> pos = {0, 1, 7, 63, 250, 40000};
    auto x = rng.vec(T * heads * head_dim);
    auto y = x;
    table.apply(y.data(), pos.data(), T, heads, head_dim);
    std::vector<double> want(x.size());
    for (int64_t t = 0; t < T; ++t)
      refRotate(rc.p, ref, float(pos[t]), x.data() + t * heads * head_dim, heads, head_dim,
                want.data() + t * heads * head_dim);
    EXPECT_LT(maxRelErr(y, want), 1e-6) << rc.name;
  }
}

TEST(Rope, InterleavedEqualsHalfSplitOnDeinterleavedChannels) {
  // DeepSeek-V3's apply_rotary_pos_emb_interleave == rotate_half on (x0, x2, ..., x1, x3, ...).
  RopeParams p = ropeCases()[3].p;
  RopeParams half = p;
  half.interleaved = false;
  Rng rng(12);
  const int64_t D = p.dim;
  auto x = rng.vec(D);
  std::vector<float> de(D);
  for (int64_t i = 0; i < D / 2; ++i) de[i] = x[2 * i], de[i + D / 2] = x[2 * i + 1];
  int32_t pos = 1234;
  RopeTable(p).apply(x.data(), &pos, 1, 1, D);
  RopeTable(half).apply(de.data(), &pos, 1, 1, D);
  for (int64_t i = 0; i < D / 2; ++i) {
    EXPECT_EQ(x[2 * i], de[i]);
    EXPECT_EQ(x[2 * i + 1], de[i + D / 2]);
  }
}

TEST(Rope, MlaSoftmaxScaleFollowsYarnMscale) {
  RopeParams p = ropeCases()[3].p;  // factor 40, mscale_all_dim 1
  const double m = 0.1 * std::log(40.0) + 1.0;
  EXPECT_FLOAT_EQ(mlaSoftmaxScale(p, 192), float(m * m / std::sqrt(192.0)));
  p.mscale_all_dim = 0;
  EXPECT_FLOAT_EQ(mlaSoftmaxScale(p, 192), float(1 / std::sqrt(192.0)));
  RopeParams none;
  none.mscale_all_dim = 1;
  EXPECT_FLOAT_EQ(mlaSoftmaxScale(none, 192), float(1 / std::sqrt(192.0)));
  EXPECT_DOUBLE_EQ(yarnGetMscale(1.0, 5.0), 1.0);
}

}  // namespace
}  // namespace ds::cpu::test
