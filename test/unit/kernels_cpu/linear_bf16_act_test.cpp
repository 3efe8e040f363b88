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
  const Bf16Weight a = make(rng, 8, 96);
  EXPECT_TRUE(a.view.bf16_act);
  EXPECT_NE(a.bytes, a.w.bytes);
  std::vector<float> p(96), q(96);
  for (int64_t r = 0; r < 8; ++r) {
    dequantRow(a.w.view, r, p.data());
    dequantRow(a.view, r, q.data());
    ASSERT_EQ(0, std::memcmp(p.data(), q.data(), p.size() * 4)) << "row " << r;
  }
}

TEST(Bf16Act, VectorPathEqualsScalarDefinitionAndIsTheRoundedDot) {
  Rng rng(4);
  const int64_t N = 12, K = 160;
  const Bf16Weight a = make(rng, N, K);
  for (int64_t T : {1, 2, 3, 5}) {
    std::vector<float> x(T * K), fast(T * N), scalar(T * N);
    // Magnitudes over 2^-12..2^4, so partial sums need more than 24 bits and the order of the
    // two fused adds per lane shows in the rounding.
    for (float& v : x) v = std::ldexp(rng.uniform(-1.0f, 1.0f), static_cast<int>(rng.index(17)) - 12);
    x[3] = 1e-40f;  // a subnormal: read as zero
    linear(x.data(), T, a.view, nullptr, fast.data());
    detail::linearBf16Act(x.data(), T, a.view, scalar.data(), /*portable=*/true);
    ASSERT_EQ(0, std::memcmp(fast.data(), scalar.data(), fast.size() * 4)) << "T " << T;
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

TEST(Bf16Act, RowsAreBitwiseBatchInvariant) {
  Rng rng(6);
  const int64_t N = 8, K = 64;
  const Bf16Weight a = make(rng, N, K);
  std::vector<float> x(6 * K), all(6 * N), one(N);
  for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
  for (int64_t T : {2, 4, 5, 6}) {
    linear(x.data(), T, a.view, nullptr, all.data());
    for (int64_t t = 0; t < T; ++t) {
      linear(x.data() + t * K, 1, a.view, nullptr, one.data());
      ASSERT_EQ(0, std::memcmp(one.data(), all.data() + t * N, N * 4)) << "T " << T << " row " << t;
    }
  }
}

TEST(Bf16Act, Eligibility) {
  Rng rng(8);
  EXPECT_FALSE(canUseBf16Activations(randomWeight(rng, WeightType::BF16, 8, 48).view)) << "cols % 32";
  EXPECT_FALSE(canUseBf16Activations(randomWeight(rng, WeightType::BF16, 6, 64).view)) << "rows % 4";
  EXPECT_FALSE(canUseBf16Activations(randomWeight(rng, WeightType::F16, 8, 64).view)) << "f16";
}

}  // namespace
}  // namespace ds::cpu::test
