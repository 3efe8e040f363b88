// linear with bf16 activations (WeightView::bf16_act, linear_bf16act.cpp): the layout round-trips,
// the vdpbf16ps tiles compute the scalar definition bit for bit, the result is the bf16-rounded
// dot product up to f32 rounding, and rows are batch invariant.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "cpu/cpu_kernels.h"
#include "cpu/internal.h"
#include "reference.h"

namespace ds::cpu::test {
namespace {

struct Bf16Weight {
  OwnedWeight w;
  std::vector<uint8_t> bytes;
  WeightView view;
};

Bf16Weight make(Rng& rng, int64_t rows, int64_t cols) {
  Bf16Weight a{randomWeight(rng, WeightType::BF16, rows, cols, 0.5f), {}, {}};
  EXPECT_TRUE(canUseBf16Activations(a.w.view));
  a.bytes.resize(rows * cols * 2);
  a.view = packBf16Activations(a.w.view, a.bytes.data());
  return a;
}

float toBf16(float f) {  // round to nearest even (finite inputs)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(Bf16Act, LayoutRoundTripsThroughDequantRow) {
  Rng rng(2);
  const Bf16Weight a = make(rng, 48, 96);  // a 32-row panel and a 16-row one
  EXPECT_TRUE(a.view.bf16_act);
  EXPECT_NE(a.bytes, a.w.bytes);
  std::vector<float> p(96), q(96);
  for (int64_t r = 0; r < 48; ++r) {
    dequantRow(a.w.view, r, p.data());
    dequantRow(a.view, r, q.data());
    ASSERT_EQ(0, std::memcmp(p.data(), q.data(), p.size() * 4)) << "row " << r;
  }
}

// The definition written out: one chain per output over the column pairs, odd product first,
// each a fused multiply-add with bf16 subnormals read as zero and subnormal results flushed.
float definition(const float* x, const uint16_t* w, int64_t K) {
  auto daz = [](uint16_t h) {
    if ((h & 0x7f80u) == 0) h &= 0x8000u;
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  };
  auto ftz = [](float f) { return std::fpclassify(f) == FP_SUBNORMAL ? std::copysign(0.0f, f) : f; };
  float acc = 0.0f;
  for (int64_t p = 0; p < K / 2; ++p) {
    const uint16_t x1 = detail::f32ToBf16(x[2 * p + 1]), x0 = detail::f32ToBf16(x[2 * p]);
    acc = ftz(std::fma(daz(x1), daz(w[2 * p + 1]), acc));
    acc = ftz(std::fma(daz(x0), daz(w[2 * p]), acc));
  }
  return acc;
}

TEST(Bf16Act, VectorPathEqualsScalarDefinitionAndIsTheRoundedDot) {
  Rng rng(4);
  // 48 rows: a 32-row panel and a 16-row one. K = 2100: two K blocks of the kernel (a chain
  // paused in memory and resumed), and a column count that is no multiple of 32. T up to 130:
  // partial micro-tiles (12 tokens) and two token blocks (120).
  const int64_t N = 48;
  for (int64_t K : {162, 2100}) {
  const Bf16Weight a = make(rng, N, K);
  const auto* rows = reinterpret_cast<const uint16_t*>(a.w.bytes.data());
  for (int64_t T : {1, 2, 3, 5, 13, 130}) {
    std::vector<float> x(T * K), fast(T * N), scalar(T * N);
    // Magnitudes over 2^-12..2^4, so partial sums need more than 24 bits and the order of the
    // two fused adds per lane shows in the rounding.
    for (float& v : x) v = std::ldexp(rng.uniform(-1.0f, 1.0f), static_cast<int>(rng.index(17)) - 12);
    x[3] = 1e-40f;  // a subnormal: read as zero
    linear(x.data(), T, a.view, nullptr, fast.data());
    detail::linearBf16Act(x.data(), T, a.view, scalar.data(), /*portable=*/true);
    ASSERT_EQ(0, std::memcmp(fast.data(), scalar.data(), fast.size() * 4)) << "T " << T;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = 0; n < N; ++n) {
        const float d = definition(x.data() + t * K, rows + n * K, K);
        ASSERT_EQ(0, std::memcmp(&d, &fast[t * N + n], 4)) << "K " << K << " T " << T << " " << t << " " << n;
      }
    if (T > 13) continue;
    const std::vector<double> W = refDequant(a.w.view);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0, mag = 0;
        for (int64_t k = 0; k < K; ++k) {
          s += double(toBf16(x[t * K + k])) * W[n * K + k];
          mag += std::fabs(double(x[t * K + k]) * W[n * K + k]);
        }
        EXPECT_NEAR(fast[t * N + n], s, 1e-6 * mag + 1e-30) << t << " " << n;
      }
  }
  }
}

TEST(Bf16Act, RowsAreBitwiseBatchInvariant) {
  Rng rng(6);
  const int64_t N = 80, K = 64;
  const Bf16Weight a = make(rng, N, K);
  std::vector<float> x(130 * K), all(130 * N), one(N);
  for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
  for (int64_t T : {2, 4, 5, 6, 13, 25, 130}) {
    linear(x.data(), T, a.view, nullptr, all.data());
    for (int64_t t = 0; t < T; ++t) {
      linear(x.data() + t * K, 1, a.view, nullptr, one.data());
      ASSERT_EQ(0, std::memcmp(one.data(), all.data() + t * N, N * 4)) << "T " << T << " row " << t;
    }
  }
}

TEST(Bf16Act, Eligibility) {
  Rng rng(8);
  EXPECT_TRUE(canUseBf16Activations(randomWeight(rng, WeightType::BF16, 16, 34).view));
  EXPECT_FALSE(canUseBf16Activations(randomWeight(rng, WeightType::BF16, 16, 47).view)) << "cols % 2";
  EXPECT_FALSE(canUseBf16Activations(randomWeight(rng, WeightType::BF16, 24, 64).view)) << "rows % 16";
  EXPECT_FALSE(canUseBf16Activations(randomWeight(rng, WeightType::F16, 16, 64).view)) << "f16";
}

}  // namespace
}  // namespace ds::cpu::test
