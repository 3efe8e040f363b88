// The weight quantizers (int8 per channel, int4 groups, FP8 per channel): round-trip bounds, exact dequantRow formulas, edge rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "cpu/cpu_kernels.h"
#include "cpu/quantize.h"
#include "reference.h"

namespace ds::cpu::test {
namespace {

// Rows of mixed magnitude plus an all-zero, a constant and a single-spike row.
std::vector<float> testMatrix(Rng& rng, int64_t rows, int64_t cols) {
  std::vector<float> w(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) w[r * cols + c] = rng.uniform(-1, 1) * std::pow(10.0f, float(r % 5) - 2);
  for (int64_t c = 0; c < cols; ++c) {
    w[0 * cols + c] = 0.0f;
    w[1 * cols + c] = 3.25f;
    w[2 * cols + c] = c == cols / 2 ? -7.5f : 0.0f;
  }
  return w;
}

std::vector<float> dequantAll(const WeightView& v) {
  std::vector<float> out(v.rows * v.cols);
  for (int64_t r = 0; r < v.rows; ++r) dequantRow(v, r, out.data() + r * v.cols);
  return out;
}

TEST(QuantizeInt8, RoundTripWithinHalfScaleAndExactFormula) {
  Rng rng(1);
  const int64_t R = 13, C = 301;
  auto w = testMatrix(rng, R, C);
  std::vector<int8_t> q(int8Bytes(R, C));
  std::vector<float> s(R);
  ASSERT_TRUE(quantizeInt8PerChannel(w.data(), R, C, q.data(), s.data()));
  WeightView v;
  v.data = q.data();
  v.type = WeightType::I8;
  v.rows = R;
  v.cols = C;
  v.channel_scale = s.data();
  auto d = dequantAll(v);
  EXPECT_EQ(s[0], 1.0f);  // zero row
  for (int64_t r = 0; r < R; ++r) {
    float mx = 0;
    for (int64_t c = 0; c < C; ++c) mx = std::max(mx, std::fabs(w[r * C + c]));
    if (mx > 0) {
      EXPECT_EQ(s[r], mx / 127.0f) << r;
    }
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = r * C + c;
      ASSERT_EQ(d[i], float(q[i]) * s[r]) << "formula r" << r << " c" << c;
      ASSERT_GE(q[i], -127);
      // Half a step, plus the f32 roundings of w / s and q * s.
      ASSERT_LE(std::fabs(double(w[i]) - d[i]), s[r] * (0.5 + 1e-5)) << "r" << r << " c" << c;
    }
  }
  for (int64_t c = 0; c < C; ++c) EXPECT_EQ(q[c], 0);                 // zero row -> q = 0
  for (int64_t c = 0; c < C; ++c) EXPECT_EQ(q[C + c], 127);           // constant row -> max code
  EXPECT_EQ(q[2 * C + C / 2], -127);
}

TEST(QuantizeInt8, RoundsHalfToEven) {
  // Row max 127 -> scale 1 exactly, so w / scale = w and ties are visible.
  const float w[6] = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -2.5f};
  int8_t q[6];
  float s;
  ASSERT_TRUE(quantizeInt8PerChannel(w, 1, 6, q, &s));
  EXPECT_EQ(s, 1.0f);
  const int8_t want[6] = {127, 0, 2, 2, 0, -2};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(q[i], want[i]) << i;
}

struct Int4Case {
  int64_t group, cols;
  bool asym;
};

class QuantizeInt4 : public ::testing::TestWithParam<Int4Case> {};

TEST_P(QuantizeInt4, RoundTripWithinHalfScaleAndExactFormula) {
  const auto p = GetParam();
  Rng rng(2);
  const int64_t R = 9, C = p.cols, G = int4Groups(C, p.group);
  auto w = testMatrix(rng, R, C);
  // A group that is all positive and one all negative (the asymmetric range must still hold 0).
  for (int64_t c = 0; c < std::min<int64_t>(p.group, C); ++c) {
    w[3 * C + c] = 2.0f + rng.uniform(0, 1);
    w[4 * C + c] = -2.0f - rng.uniform(0, 1);
  }
  std::vector<uint8_t> packed(int4Bytes(R, C), 0xaa);
  std::vector<float> s(int4ScaleCount(R, C, p.group)), z(p.asym ? s.size() : 0);
  ASSERT_EQ(int64_t(packed.size()), R * ((C + 1) / 2));
  ASSERT_TRUE(quantizeInt4Groups(w.data(), R, C, p.group, p.asym, packed.data(), s.data(),
                                 p.asym ? z.data() : nullptr));
  WeightView v;
  v.data = packed.data();
  v.type = WeightType::I4;
  v.rows = R;
  v.cols = C;
  v.group_scale = s.data();
  v.group_zero = p.asym ? z.data() : nullptr;
  v.group_size = p.group;
  auto d = dequantAll(v);
  const int64_t rb = (C + 1) / 2;
  for (int64_t r = 0; r < R; ++r) {
    if (C % 2) {
      EXPECT_EQ(packed[r * rb + rb - 1] >> 4, 0) << "pad nibble r" << r;
    }
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = r * C + c, g = r * G + c / p.group;
      const int nib = (packed[r * rb + c / 2] >> (4 * (c % 2))) & 15;
      float want;
      if (p.asym) {
        ASSERT_EQ(z[g], std::nearbyint(z[g]));
        ASSERT_GE(z[g], 0.0f);
        ASSERT_LE(z[g], 15.0f);
        want = (float(nib) - z[g]) * s[g];
      } else {
        const int q = nib >= 8 ? nib - 16 : nib;
        want = float(q) * s[g];
      }
      ASSERT_EQ(d[i], want) << "formula r" << r << " c" << c;
      ASSERT_LE(std::fabs(double(w[i]) - d[i]), s[g] * (0.5 + 1e-5)) << "r" << r << " c" << c;
    }
  }
  // Zero row: zero codes (asymmetric: q = zero point), scale 1; constant row exactly representable.
  for (int64_t c = 0; c < C; ++c) EXPECT_EQ(d[c], 0.0f);
  for (int64_t g = 0; g < G; ++g) EXPECT_EQ(s[g], 1.0f);
  for (int64_t c = 0; c < C; ++c) EXPECT_NEAR(d[C + c], 3.25f, 1e-6f);
}

INSTANTIATE_TEST_SUITE_P(Groups, QuantizeInt4,
                         ::testing::Values(Int4Case{64, 256, false}, Int4Case{64, 301, false},
                                           Int4Case{128, 301, false}, Int4Case{128, 301, true},
                                           Int4Case{64, 257, true}, Int4Case{128, 100, true}),
                         [](const auto& info) {
                           const auto& p = info.param;
                           return std::string(p.asym ? "asym" : "sym") + "_g" +
                                  std::to_string(p.group) + "_c" + std::to_string(p.cols);
                         });

TEST(QuantizeFp8, EncoderIsNearestEvenSaturating) {
  // Every finite code encodes to itself (-0 aside), and every midpoint between neighbours rounds
  // to the code with an even mantissa.
  for (int c = 0; c < 256; ++c) {
    const double v = decodeFp8E4M3(uint8_t(c));
    if (std::isnan(v) || c == 0x80) continue;
    EXPECT_EQ(f32ToFp8E4M3(float(v)), c) << c;
  }
  for (int c = 0; c < 0x7e; ++c) {
    const double a = decodeFp8E4M3(uint8_t(c)), b = decodeFp8E4M3(uint8_t(c + 1));
    const float mid = float((a + b) / 2);  // exact in f32
    const int even = (c & 1) ? c + 1 : c;
    EXPECT_EQ(f32ToFp8E4M3(mid), even) << c;
    EXPECT_EQ(f32ToFp8E4M3(-mid), even | 0x80) << c;
    EXPECT_EQ(f32ToFp8E4M3(std::nextafter(mid, 0.0f)), c) << c;
    EXPECT_EQ(f32ToFp8E4M3(std::nextafter(mid, 1e9f)), c + 1) << c;
  }
  EXPECT_EQ(f32ToFp8E4M3(1e9f), 0x7e);
  EXPECT_EQ(f32ToFp8E4M3(-INFINITY), 0xfe);
  EXPECT_EQ(f32ToFp8E4M3(460.0f), 0x7e);
  EXPECT_TRUE(std::isnan(decodeFp8E4M3(f32ToFp8E4M3(NAN))));
}

TEST(QuantizeFp8, RoundTripRelativeErrorAndExactFormula) {
  Rng rng(3);
  const int64_t R = 11, C = 203;
  auto w = testMatrix(rng, R, C);
  std::vector<uint8_t> q(fp8Bytes(R, C));
  std::vector<float> s(R);
  ASSERT_TRUE(quantizeFp8PerChannel(w.data(), R, C, q.data(), s.data()));
  WeightView v;
  v.data = q.data();
  v.type = WeightType::F8E4M3;
  v.rows = R;
  v.cols = C;
  v.channel_scale = s.data();
  auto d = dequantAll(v);
  double worst_rel = 0;
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = r * C + c;
      ASSERT_EQ(d[i], float(decodeFp8E4M3(q[i])) * s[r]);
      // 3 mantissa bits: half an ulp is 2^-4 relative for normals; subnormal codes (below 2^-6
      // of the scaled range) are absolute steps of 2^-9, half of which is 2^-10 * scale.
      const double err = std::fabs(double(w[i]) - d[i]);
      ASSERT_LE(err, std::ldexp(std::fabs(w[i]), -4) * (1 + 1e-5) + std::ldexp(s[r], -10)) << i;
      if (std::fabs(w[i]) / s[r] >= 0x1p-6) worst_rel = std::max(worst_rel, err / std::fabs(w[i]));
    }
  EXPECT_LE(worst_rel, 0.0625 * (1 + 1e-5));
  for (int64_t c = 0; c < C; ++c) EXPECT_EQ(d[c], 0.0f);
  EXPECT_EQ(s[0], 1.0f);
  for (int64_t c = 0; c < C; ++c) EXPECT_EQ(q[C + c], 0x7e);  // constant row -> 448 * scale
}

TEST(Quantize, RejectsBadArguments) {
  float w[4] = {1, 2, 3, 4}, s[4], z[4];
  uint8_t p[4];
  int8_t q[4];
  EXPECT_FALSE(quantizeInt8PerChannel(w, -1, 4, q, s));
  EXPECT_FALSE(quantizeInt8PerChannel(w, 1, 4, nullptr, s));
  EXPECT_FALSE(quantizeInt4Groups(w, 1, 4, 0, false, p, s, nullptr));
  EXPECT_FALSE(quantizeInt4Groups(w, 1, 4, 64, true, p, s, nullptr));
  EXPECT_TRUE(quantizeInt4Groups(w, 1, 4, 64, true, p, s, z));
  EXPECT_FALSE(quantizeFp8PerChannel(w, 1, 4, p, nullptr));
  EXPECT_TRUE(quantizeFp8PerChannel(w, 0, 4, nullptr, nullptr));  // nothing to write
}

TEST(Quantize, ByteSizes) {
  EXPECT_EQ(int8Bytes(3, 5), 15);
  EXPECT_EQ(fp8Bytes(3, 5), 15);
  EXPECT_EQ(int4Bytes(3, 5), 9);
  EXPECT_EQ(int4Bytes(3, 4), 6);
  EXPECT_EQ(int4Groups(300, 128), 3);
  EXPECT_EQ(int4ScaleCount(7, 256, 64), 28);
  EXPECT_EQ(weightRowBytes(WeightType::I4, 7), 4);
  EXPECT_EQ(weightRowBytes(WeightType::I8, 7), 7);
  EXPECT_EQ(weightRowBytes(WeightType::F32, 7), 28);
}

TEST(Quantize, IsDeterministicAndRowLocal) {
  Rng rng(4);
  const int64_t R = 6, C = 130;
  auto w = testMatrix(rng, R, C);
  std::vector<uint8_t> a(int4Bytes(R, C)), b(int4Bytes(1, C));
  std::vector<float> sa(int4ScaleCount(R, C, 64)), za(sa.size()), sb(3), zb(3);
  ASSERT_TRUE(quantizeInt4Groups(w.data(), R, C, 64, true, a.data(), sa.data(), za.data()));
  ASSERT_TRUE(quantizeInt4Groups(w.data() + 4 * C, 1, C, 64, true, b.data(), sb.data(), zb.data()));
  EXPECT_EQ(0, std::memcmp(b.data(), a.data() + 4 * b.size(), b.size()));
  EXPECT_EQ(0, std::memcmp(sb.data(), sa.data() + 12, 12));
  EXPECT_EQ(0, std::memcmp(zb.data(), za.data() + 12, 12));
}

}  // namespace
}  // namespace ds::cpu::test
