// linear / dequantRow against a double reference for every weight type, plus batch invariance.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "cpu/cpu_kernels.h"
#include "reference.h"

namespace ds::cpu::test {
namespace {

struct WeightCase {
  const char* name;
  WeightType type;
  int64_t block_rows, block_cols;
};

void PrintTo(const WeightCase& c, std::ostream* os) { *os << c.name; }

const WeightCase kCases[] = {
    {"f32", WeightType::F32, 0, 0},
    {"f16", WeightType::F16, 0, 0},
    {"bf16", WeightType::BF16, 0, 0},
    {"fp8", WeightType::F8E4M3, 0, 0},
    {"fp8_block128", WeightType::F8E4M3, 128, 128},
    {"fp8_block16x24", WeightType::F8E4M3, 16, 24},
};

std::vector<double> refLinear(const std::vector<float>& x, int64_t T, const WeightView& w,
                              const float* bias) {
  const std::vector<double> W = refDequant(w);
  std::vector<double> y(T * w.rows);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < w.rows; ++n) {
      double s = bias ? bias[n] : 0.0;
      for (int64_t k = 0; k < w.cols; ++k) s += double(x[t * w.cols + k]) * W[n * w.cols + k];
      y[t * w.rows + n] = s;
    }
  return y;
}

TEST(Decode, Fp8AllCodesMatchFormat) {
  // All 256 codes in one row (vector path) and each code alone (scalar path).
  std::vector<uint8_t> codes(256);
  for (int c = 0; c < 256; ++c) codes[c] = static_cast<uint8_t>(c);
  for (int64_t width : {256, 1}) {
    for (int64_t start = 0; start < 256; start += width) {
      WeightView w;
      w.data = codes.data() + start;
      w.type = WeightType::F8E4M3;
      w.rows = 1;
      w.cols = width;
      std::vector<float> got(width);
      dequantRow(w, 0, got.data());
      for (int64_t i = 0; i < width; ++i) {
        const double want = decodeFp8E4M3(codes[start + i]);
        if (std::isnan(want)) {
          EXPECT_TRUE(std::isnan(got[i])) << start + i;
        } else {
          EXPECT_EQ(double(got[i]), want) << "code " << start + i;
        }
      }
    }
  }
}

TEST(Decode, F16AllCodesMatchFormat) {
  std::vector<uint16_t> codes(65536);
  for (int c = 0; c < 65536; ++c) codes[c] = static_cast<uint16_t>(c);
  WeightView w;
  w.data = codes.data();
  w.type = WeightType::F16;
  w.rows = 1;
  w.cols = 65536;
  std::vector<float> got(65536);
  dequantRow(w, 0, got.data());
  for (int c = 0; c < 65536; ++c) {
    double want = decodeF16(static_cast<uint16_t>(c));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got[c])) << c;
    } else {
      ASSERT_EQ(double(got[c]), want) << "code " << c;
    }
  }
}

TEST(Decode, DequantRowAppliesPartialBlockScales) {
  Rng rng(1);
  for (const auto& wc : kCases) {
    auto w = randomWeight(rng, wc.type, 37, 300, 1.0f, wc.block_rows, wc.block_cols);
    const auto ref = refDequant(w.view);
    std::vector<float> row(300);
    for (int64_t r : {0, 15, 16, 36}) {
      dequantRow(w.view, r, row.data());
      for (int64_t c = 0; c < 300; ++c)
        ASSERT_EQ(double(row[c]), double(float(ref[r * 300 + c]))) << wc.name << " r" << r << " c" << c;
    }
  }
}

class LinearTest : public ::testing::TestWithParam<WeightCase> {};

TEST_P(LinearTest, MatchesReferenceForSeveralT) {
  const auto& wc = GetParam();
  Rng rng(7);
  // Rows and cols not multiples of 128 (partial FP8 blocks) nor of the 8-lane / tile sizes.
  const int64_t N = 300, K = 261;
  auto w = randomWeight(rng, wc.type, N, K, 0.5f, wc.block_rows, wc.block_cols);
  auto bias = rng.vec(N);
  for (int64_t T : {1, 2, 3, 5, 17, 40}) {
    auto x = rng.vec(T * K);
    std::vector<float> y(T * N);
    linear(x.data(), T, w.view, bias.data(), y.data());
    EXPECT_LT(maxRelErr(y, refLinear(x, T, w.view, bias.data())), 2e-6) << wc.name << " T=" << T;
    linear(x.data(), T, w.view, nullptr, y.data());
    EXPECT_LT(maxRelErr(y, refLinear(x, T, w.view, nullptr)), 2e-6) << wc.name << " T=" << T;
  }
}

TEST_P(LinearTest, RowsAreBitwiseBatchInvariant) {
  const auto& wc = GetParam();
  Rng rng(11);
  // The second shape crosses the 64-token block and the 4096-wide K block of the dot tiles.
  const struct { int64_t N, K, T; } shapes[] = {{133, 300, 23}, {20, 4100, 70}};
  for (const auto& sh : shapes) {
    const int64_t N = sh.N, K = sh.K, T = sh.T;
    auto w = randomWeight(rng, wc.type, N, K, 0.5f, wc.block_rows, wc.block_cols);
    auto x = rng.vec(T * K);
    expectRowsBatchInvariant(w.view, x, T, wc.name);
  }
}

TEST_P(LinearTest, BlasPathMatchesReference) {
  const auto& wc = GetParam();
  Rng rng(3);
  const int64_t N = 300, K = 200, T = 33;
  auto w = randomWeight(rng, wc.type, N, K, 0.5f, wc.block_rows, wc.block_cols);
  auto x = rng.vec(T * K);
  auto bias = rng.vec(N);
  std::vector<float> y(T * N);
  setBatchInvariant(false);
  linear(x.data(), T, w.view, bias.data(), y.data());
  setBatchInvariant(true);
  EXPECT_LT(maxRelErr(y, refLinear(x, T, w.view, bias.data())), 2e-6) << wc.name;
}

INSTANTIATE_TEST_SUITE_P(AllTypes, LinearTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Linear, LargeKStaysAccurate) {
  Rng rng(5);
  const int64_t N = 64, K = 4099, T = 3;
  auto w = randomWeight(rng, WeightType::BF16, N, K);
  auto x = rng.vec(T * K);
  std::vector<float> y(T * N);
  linear(x.data(), T, w.view, nullptr, y.data());
  EXPECT_LT(maxRelErr(y, refLinear(x, T, w.view, nullptr)), 1e-5);
}

}  // namespace
}  // namespace ds::cpu::test
