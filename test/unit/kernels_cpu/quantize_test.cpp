// The weight quantizers (int8 per channel, int4 groups, FP8 per channel; round to nearest and scale search): round-trip bounds, exact dequantRow formulas, edge rows, search error <= RTN error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

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

// Gaussian rows (sigma 0.02) with a few 8x outliers in half of them, then the edge rows of
// testMatrix (zero, constant, single spike) and one all-positive row.
std::vector<float> searchMatrix(int64_t rows, int64_t cols, uint32_t seed) {
  Rng rng(seed);
  std::normal_distribution<float> n(0.0f, 0.02f);
  auto w = testMatrix(rng, rows, cols);
  for (int64_t r = 4; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) w[r * cols + c] = n(rng.gen());
    if (r % 2 == 0)
      for (int k = 0; k < 3; ++k) w[r * cols + rng.index(cols)] *= 8.0f;
  }
  for (int64_t c = 0; c < cols; ++c) w[3 * cols + c] = 0.5f + rng.uniform(0, 1);
  return w;
}

// Sum of squared errors per row (double, index order).
std::vector<double> rowErrors(const std::vector<float>& w, const std::vector<float>& d, int64_t R, int64_t C) {
  std::vector<double> e(R, 0.0);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const double x = double(w[r * C + c]) - d[r * C + c];
      e[r] += x * x;
    }
  return e;
}

TEST_P(QuantizeInt4, SearchNeverWorseThanRtnPerRowAndDecodesWithTheFormula) {
  const auto p = GetParam();
  const int64_t R = 40, C = p.cols, G = int4Groups(C, p.group);
  auto w = searchMatrix(R, C, 7);
  std::vector<uint8_t> pr(int4Bytes(R, C)), ps(int4Bytes(R, C), 0xaa);
  std::vector<float> sr(int4ScaleCount(R, C, p.group)), zr(sr.size()), ss(sr.size()), zs(sr.size());
  ASSERT_TRUE(quantizeInt4Groups(w.data(), R, C, p.group, p.asym, pr.data(), sr.data(), zr.data()));
  ASSERT_TRUE(quantizeInt4GroupsSearch(w.data(), R, C, p.group, p.asym, ps.data(), ss.data(),
                                       p.asym ? zs.data() : nullptr));
  WeightView v;
  v.type = WeightType::I4;
  v.rows = R;
  v.cols = C;
  v.group_size = p.group;
  v.data = pr.data();
  v.group_scale = sr.data();
  v.group_zero = p.asym ? zr.data() : nullptr;
  auto dr = dequantAll(v);
  v.data = ps.data();
  v.group_scale = ss.data();
  v.group_zero = p.asym ? zs.data() : nullptr;
  auto ds = dequantAll(v);
  if (!p.asym) {
    // The search stores f16-valued symmetric scales: its bound is round to nearest at the same
    // scale rounded to f16 (max|group| / 7, _Float16 as the reference rounding).
    for (int64_t r = 0; r < R; ++r)
      for (int64_t g = 0; g < G; ++g) {
        const int64_t c0 = g * p.group, c1 = std::min(C, c0 + p.group);
        const float s0 = static_cast<float>(static_cast<_Float16>(sr[r * G + g]));
        for (int64_t c = c0; c < c1; ++c)
          dr[r * C + c] = std::min(std::max(std::nearbyint(w[r * C + c] / s0), -8.0f), 7.0f) * s0;
      }
  }
  auto er = rowErrors(w, dr, R, C), es = rowErrors(w, ds, R, C);
  double totalR = 0, totalS = 0;
  for (int64_t r = 0; r < R; ++r) {
    EXPECT_LE(es[r], er[r] * (1 + 1e-12)) << "row " << r;
    if (r >= 4) totalR += er[r], totalS += es[r];
  }
  // On Gaussian / outlier rows the search must actually find better scales.
  std::printf("int4 %s g%lld: search / RTN squared error %.3f\n", p.asym ? "asym" : "sym",
              static_cast<long long>(p.group), totalS / totalR);
  // Measured 0.79-0.86 (symmetric), 0.92-0.95 (asymmetric: RTN already uses all 16 codes).
  EXPECT_LT(totalS, (p.asym ? 0.97 : 0.9) * totalR) << totalS << " vs RTN " << totalR;
  const int64_t rb = (C + 1) / 2;
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t g = r * G + c / p.group;
      const int nib = (ps[r * rb + c / 2] >> (4 * (c & 1))) & 0xf;
      const float q = p.asym ? float(nib) : float(nib >= 8 ? nib - 16 : nib);
      ASSERT_GT(ss[g], 0.0f);
      const float want = p.asym ? (q - zs[g]) * ss[g] : q * ss[g];
      ASSERT_EQ(ds[r * C + c], want) << "formula r" << r << " c" << c;
      // The code is round-to-nearest for the chosen scale: inside the representable range the
      // half-step bound holds, outside it the code is the clamp.
      const float x = w[r * C + c];
      const float lo = p.asym ? (0.0f - zs[g]) * ss[g] : -8.0f * ss[g];
      const float hi = p.asym ? (15.0f - zs[g]) * ss[g] : 7.0f * ss[g];
      if (x >= lo && x <= hi) {
        ASSERT_LE(std::fabs(double(x) - ds[r * C + c]), ss[g] * (0.5 + 1e-5)) << r << " " << c;
      } else {
        ASSERT_EQ(ds[r * C + c], x < lo ? lo : hi) << "clamped r" << r << " c" << c;
      }
      if (p.asym) {
        ASSERT_EQ(zs[g], std::nearbyint(zs[g]));
      }
    }
  for (int64_t c = 0; c < C; ++c) EXPECT_EQ(ds[c], 0.0f);  // zero row
  // Padding nibble of odd rows stays 0.
  if (C % 2) {
    for (int64_t r = 0; r < R; ++r) EXPECT_EQ(ps[r * rb + rb - 1] >> 4, 0) << r;
  }
}

TEST(QuantizeFp8, SearchNeverWorseThanRtnPerRowAndDecodesWithTheFormula) {
  const int64_t R = 40, C = 203;
  auto w = searchMatrix(R, C, 8);
  std::vector<uint8_t> qr(fp8Bytes(R, C)), qs(fp8Bytes(R, C));
  std::vector<float> sr(R), ss(R);
  ASSERT_TRUE(quantizeFp8PerChannel(w.data(), R, C, qr.data(), sr.data()));
  ASSERT_TRUE(quantizeFp8PerChannelSearch(w.data(), R, C, qs.data(), ss.data()));
  WeightView v;
  v.type = WeightType::F8E4M3;
  v.rows = R;
  v.cols = C;
  v.data = qr.data();
  v.channel_scale = sr.data();
  auto dr = dequantAll(v);
  v.data = qs.data();
  v.channel_scale = ss.data();
  auto ds = dequantAll(v);
  auto er = rowErrors(w, dr, R, C), es = rowErrors(w, ds, R, C);
  double totalR = 0, totalS = 0;
  for (int64_t r = 0; r < R; ++r) {
    EXPECT_LE(es[r], er[r] * (1 + 1e-12)) << "row " << r;
    if (r >= 4) totalR += er[r], totalS += es[r];
  }
  std::printf("fp8: search / RTN squared error %.3f\n", totalS / totalR);
  EXPECT_LT(totalS, 0.85 * totalR) << totalS << " vs RTN " << totalR;  // measured 0.775
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = r * C + c;
      ASSERT_EQ(ds[i], fp8E4M3ToF32(qs[i]) * ss[r]);
      ASSERT_EQ(qs[i], f32ToFp8E4M3(w[i] / ss[r]));  // RNE code for the chosen scale
      const double a = std::fabs(double(w[i]));
      if (a <= 448.0 * ss[r]) {  // unclipped: the FP8 bound of the chosen scale
        ASSERT_LE(std::fabs(double(w[i]) - ds[i]), std::ldexp(a, -4) * (1 + 1e-5) + std::ldexp(ss[r], -10)) << i;
      }
    }
}

TEST(Quantize, SearchIsRowLocalAndRejectsBadArguments) {
  const int64_t R = 9, C = 130;
  auto w = searchMatrix(R, C, 9);
  for (bool asym : {false, true}) {
    std::vector<uint8_t> a(int4Bytes(R, C)), b(int4Bytes(1, C));
    std::vector<float> sa(int4ScaleCount(R, C, 64)), za(sa.size()), sb(3), zb(3);
    ASSERT_TRUE(quantizeInt4GroupsSearch(w.data(), R, C, 64, asym, a.data(), sa.data(), za.data()));
    ASSERT_TRUE(quantizeInt4GroupsSearch(w.data() + 6 * C, 1, C, 64, asym, b.data(), sb.data(), zb.data()));
    EXPECT_EQ(0, std::memcmp(b.data(), a.data() + 6 * b.size(), b.size()));
    EXPECT_EQ(0, std::memcmp(sb.data(), sa.data() + 18, 12));
    if (asym) {
      EXPECT_EQ(0, std::memcmp(zb.data(), za.data() + 18, 12));
    }
  }
  std::vector<uint8_t> fa(fp8Bytes(R, C)), fb(fp8Bytes(1, C));
  std::vector<float> fsa(R), fsb(1);
  ASSERT_TRUE(quantizeFp8PerChannelSearch(w.data(), R, C, fa.data(), fsa.data()));
  ASSERT_TRUE(quantizeFp8PerChannelSearch(w.data() + 5 * C, 1, C, fb.data(), fsb.data()));
  EXPECT_EQ(0, std::memcmp(fb.data(), fa.data() + 5 * C, C));
  EXPECT_EQ(fsb[0], fsa[5]);
  float x[4] = {1, 2, 3, 4}, s[4];
  uint8_t p[4];
  EXPECT_FALSE(quantizeInt4GroupsSearch(x, 1, 4, 0, false, p, s, nullptr));
  EXPECT_FALSE(quantizeInt4GroupsSearch(x, 1, 4, 64, true, p, s, nullptr));
  EXPECT_FALSE(quantizeFp8PerChannelSearch(x, -1, 4, p, s));
  EXPECT_FALSE(quantizeFp8PerChannelSearch(x, 1, 4, nullptr, s));
  EXPECT_TRUE(quantizeFp8PerChannelSearch(x, 0, 4, nullptr, nullptr));
}

TEST(Quantize, Int4CodeMatchesTheQuantizers) {
  EXPECT_EQ(int4Code(0.5f, 1.0f, 0.0f, false), 0);   // half to even
  EXPECT_EQ(int4Code(1.5f, 1.0f, 0.0f, false), 2);
  EXPECT_EQ(int4Code(-100.0f, 1.0f, 0.0f, false), -8);
  EXPECT_EQ(int4Code(100.0f, 1.0f, 0.0f, false), 7);
  EXPECT_EQ(int4Code(-2.0f, 1.0f, 3.0f, true), 1);
  EXPECT_EQ(int4Code(-9.0f, 1.0f, 3.0f, true), 0);
  EXPECT_EQ(int4Code(20.0f, 1.0f, 3.0f, true), 15);
  EXPECT_EQ(int4Code(NAN, 1.0f, 0.0f, false), 0);
}

}  // namespace
}  // namespace ds::cpu::test
