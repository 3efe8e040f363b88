// The attention softmax (softmax.cpp): expDs's accuracy, the AVX-512 path equal to the scalar
// definition bit for bit (NaN, -inf, underflow and lane tails included), and the result close to
// a double-precision softmax.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/internal.h"
#include "reference.h"

namespace ds::cpu::test {
namespace {

int64_t ulps(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::llabs(int64_t(ia) - int64_t(ib));
}

TEST(AttentionSoftmax, ExpIsWithinTwoUlpOfExp) {
  int64_t worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.001953125f * 7.3f) {
    const float want = static_cast<float>(std::exp(double(x)));
    worst = std::max(worst, ulps(detail::expDs(x), want));
  }
  EXPECT_LE(worst, 2);
  EXPECT_EQ(detail::expDs(0.0f), 1.0f);
  EXPECT_EQ(detail::expDs(-INFINITY), 0.0f);
  EXPECT_EQ(detail::expDs(-100.0f), 0.0f);
  EXPECT_TRUE(std::isnan(detail::expDs(NAN)));
  EXPECT_TRUE(std::isfinite(detail::expDs(1000.0f)));  // clamped, as the definition says
}

TEST(AttentionSoftmax, VectorPathIsTheScalarDefinitionBitForBit) {
  Rng rng(3);
  for (int64_t n : {1, 5, 16, 17, 31, 48, 200, 1000}) {
    std::vector<float> s(n);
    for (float& v : s) v = rng.uniform(-30.0f, 30.0f);
    if (n > 3) s[2] = -INFINITY, s[n - 1] = -200.0f;  // masked-like and underflowing scores
    if (n > 20) s[19] = NAN;                          // a NaN is skipped by the max, stays NaN
    std::vector<float> fast = s, scalar = s;
    detail::attentionSoftmax(fast.data(), n);
    detail::attentionSoftmax(scalar.data(), n, /*portable=*/true);
    ASSERT_EQ(0, std::memcmp(fast.data(), scalar.data(), n * 4)) << "n " << n;
    if (n > 20) continue;
    double mx = -INFINITY, sum = 0;
    for (float v : s) mx = std::max(mx, double(v));
    for (float v : s) sum += std::exp(double(v) - mx);
    for (int64_t j = 0; j < n; ++j) EXPECT_NEAR(fast[j], std::exp(double(s[j]) - mx) / sum, 1e-6) << n << " " << j;
  }
}

}  // namespace
}  // namespace ds::cpu::test
