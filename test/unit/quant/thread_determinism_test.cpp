// quantizeWeight's output (codes, scales, zero points) is the same for any thread count.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "compiler/artifact/WeightQuantizer.h"

namespace mlir::ds {
namespace {

TEST(QuantizeWeight, ByteIdenticalForAnyThreadCount) {
  std::mt19937 rng(4);
  std::normal_distribution<float> g(0.0f, 0.02f);
  const int64_t experts = 2, rows = 37, cols = 200;
  std::vector<float> w(experts * rows * cols);
  for (float& v : w) v = g(rng);
  for (const char* scheme : {"int8", "fp8", "int4_g64", "int4_g128", "int4_g64_asym"}) {
    auto e = parseQuantScheme(scheme);
    ASSERT_TRUE(e);
    QuantizedWeight one;
    ASSERT_TRUE(quantizeWeight(*e, w.data(), experts, rows, cols, &one, nullptr, 1));
    for (int threads : {2, 3, 5, 16, 100}) {
      QuantizedWeight many;
      ASSERT_TRUE(quantizeWeight(*e, w.data(), experts, rows, cols, &many, nullptr, threads));
      EXPECT_EQ(one.codes, many.codes) << scheme << " threads " << threads;
      EXPECT_EQ(one.scales, many.scales) << scheme << " threads " << threads;
      EXPECT_EQ(one.zeros, many.zeros) << scheme << " threads " << threads;
    }
  }
}

}  // namespace
}  // namespace mlir::ds
