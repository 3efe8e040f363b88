// linear with int8 activations (WeightView::int8_act, linear_a8.cpp): the layout round-trips, the
// result is the definition (per-32-block activation codes, exact integer dots) up to f32
// rounding, stays close to the f32 result, and is batch invariant. Runs on the VNNI path where
// the CPU has it and on the portable one (kernels_cpu_test_avx2 / _portable).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "cpu/cpu_kernels.h"
#include "cpu/internal.h"
#include "reference.h"

namespace ds::cpu::test {
namespace {

struct A8Case {
  const char* name;
  WeightType type;
  int64_t group;  // I4 / I6
};

bool grouped(WeightType t) { return t == WeightType::I4 || t == WeightType::I6; }

void PrintTo(const A8Case& c, std::ostream* os) { *os << c.name; }

const A8Case kA8Cases[] = {
    {"i8", WeightType::I8, 0},
    {"i4_g64", WeightType::I4, 64},
    {"i4_g128", WeightType::I4, 128},
    {"i6_g64", WeightType::I6, 64},
    {"i6_g128", WeightType::I6, 128},
};

struct A8Weight {
  OwnedWeight w;
  std::vector<uint8_t> bytes;
  WeightView view;
};

A8Weight make(Rng& rng, const A8Case& c, int64_t rows, int64_t cols) {
  A8Weight a{randomQuantWeight(rng, c.type, rows, cols, 0.5f, c.group, false), {}, {}};
  EXPECT_TRUE(canUseInt8Activations(a.w.view));
  a.bytes.resize(rows * weightRowBytes(c.type, cols));
  a.view = packInt8Activations(a.w.view, a.bytes.data());
  return a;
}

// The definition in double: per-block codes (32 columns for int8 weights, 64 for int4) as the
// kernel makes them, exact integer dots.
std::vector<double> refInt8Act(const std::vector<float>& x, int64_t T, const WeightView& w) {
  const int64_t N = w.rows, K = w.cols, B = grouped(w.type) ? 64 : 32;
  const std::vector<double> W = refDequant(w);  // q_w * s_w
  std::vector<double> y(T * N, 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < K / B; ++b) {
      const float* xb = x.data() + t * K + b * B;
      float amax = 0;
      for (int j = 0; j < B; ++j) amax = std::max(amax, std::fabs(xb[j]));
      const float inv = amax > 0 ? 127.0f / amax : 0.0f, sx = amax / 127.0f;
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int j = 0; j < B; ++j) s += std::nearbyint(xb[j] * inv) * W[n * K + b * B + j];
        y[t * N + n] += s * sx;
      }
    }
  return y;
}

class Int8Act : public ::testing::TestWithParam<A8Case> {};

TEST_P(Int8Act, LayoutRoundTripsThroughDequantRowAndEmbed) {
  Rng rng(3);
  const int64_t K = grouped(GetParam().type) ? 192 : 224;
  const A8Weight a = make(rng, GetParam(), 48, K);  // a 32-row panel and a 16-row one
  EXPECT_TRUE(a.view.int8_act);
  EXPECT_NE(a.bytes, a.w.bytes);
  std::vector<float> p(K), q(K);
  for (int64_t r = 0; r < 48; ++r) {
    dequantRow(a.w.view, r, p.data());
    dequantRow(a.view, r, q.data());
    ASSERT_EQ(0, std::memcmp(p.data(), q.data(), p.size() * 4)) << "row " << r;
  }
  const int32_t ids[2] = {37, 2};
  std::vector<float> e1(2 * K), e2(2 * K);
  embed(ids, 2, a.w.view, e1.data());
  embed(ids, 2, a.view, e2.data());
  EXPECT_EQ(0, std::memcmp(e1.data(), e2.data(), e1.size() * 4));
}

// K = 384, 160 (int8) / 192 (int4), and one activation block (32 / 64); 48 rows: both panel
// widths.
TEST_P(Int8Act, IsTheDefinitionAndCloseToF32) {
  const bool i4 = grouped(GetParam().type);  // 64-column blocks, group scales
  for (int64_t K : {int64_t{384}, i4 ? int64_t{192} : int64_t{160}, i4 ? int64_t{64} : int64_t{32}}) {
  SCOPED_TRACE("K = " + std::to_string(K));
  Rng rng(5);
  const int64_t N = 48, T = 5;
  const A8Weight a = make(rng, GetParam(), N, K);
  std::vector<float> x(T * K);
  for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
  x[5] = 9.0f;  // an outlier: only its block's scale grows
  std::vector<float> bias(N), y(T * N), f(T * N);
  for (float& v : bias) v = rng.uniform(-1.0f, 1.0f);
  linear(x.data(), T, a.view, bias.data(), y.data());
  linear(x.data(), T, a.w.view, bias.data(), f.data());  // f32 activations, same weights
  const std::vector<double> ref = refInt8Act(x, T, a.w.view);
  double f2 = 0, e2 = 0;
  for (int64_t i = 0; i < T * N; ++i) {
    f2 += double(f[i] - bias[i % N]) * (f[i] - bias[i % N]);
    e2 += (double(y[i]) - f[i]) * (double(y[i]) - f[i]);
    EXPECT_NEAR(y[i], ref[i] + bias[i % N], 1e-4 * (1.0 + std::fabs(ref[i]))) << i;
  }
  // 8-bit activation codes (one block with a 9x outlier): about a percent of the output's RMS.
  EXPECT_LT(std::sqrt(e2), 0.02 * std::sqrt(f2));
  EXPECT_GT(e2, 0.0);  // and they are not the f32 path
  }
}

TEST_P(Int8Act, RowsAreBitwiseBatchInvariant) {
  Rng rng(9);
  // K = 2112: prefill tiles pause each chain in memory between K blocks (2048 columns), a single
  // token runs it unbroken; T = 110: partial tiles and two token blocks.
  for (int64_t K : {grouped(GetParam().type) ? int64_t{192} : int64_t{160}, int64_t{2112}}) {
    const int64_t N = 48;
    const A8Weight a = make(rng, GetParam(), N, K);
    std::vector<float> x(110 * K), all(110 * N), one(N);
    for (float& v : x) v = rng.uniform(-2.0f, 2.0f);
    for (int64_t T : {1, 2, 3, 4, 5, 7, 13, 110}) {
      linear(x.data(), T, a.view, nullptr, all.data());
      for (int64_t t = 0; t < T; ++t) {
        linear(x.data() + t * K, 1, a.view, nullptr, one.data());
        ASSERT_EQ(0, std::memcmp(one.data(), all.data() + t * N, N * 4)) << "K " << K << " T " << T << " row " << t;
      }
    }
  }
}

// The VNNI tiles (where the CPU has them) compute the scalar definition bit for bit.
TEST_P(Int8Act, VectorPathEqualsScalarDefinitionBitwise) {
  Rng rng(21);
  const bool i4 = grouped(GetParam().type);  // 64-column blocks, group scales
  for (int64_t K : {int64_t{384}, i4 ? int64_t{192} : int64_t{160}, i4 ? int64_t{64} : int64_t{32}}) {
    const A8Weight a = make(rng, GetParam(), 48, K);
    for (int64_t T : {1, 2, 3, 4, 6, 7, 13}) {
      std::vector<float> x(T * K), fast(T * 48), scalar(T * 48);
      for (float& v : x) v = rng.uniform(-3.0f, 3.0f);
      linear(x.data(), T, a.view, nullptr, fast.data());
      detail::linearInt8Act(x.data(), T, a.view, scalar.data(), /*portable=*/true);
      ASSERT_EQ(0, std::memcmp(fast.data(), scalar.data(), fast.size() * 4)) << "K " << K << " T " << T;
      if (!i4) continue;
      // int4 / int6: the group scales copied per panel (one vector load) give the gathered scales' bits.
      std::vector<uint8_t> bytes(a.bytes.size());
      std::vector<float> scales(int8ActScaleFloats(a.w.view)), with(T * 48);
      ASSERT_GT(scales.size(), 0u);
      const WeightView pv = packInt8Activations(a.w.view, bytes.data(), scales.data());
      ASSERT_EQ(pv.panel_group_scale, scales.data());
      linear(x.data(), T, pv, nullptr, with.data());
      ASSERT_EQ(0, std::memcmp(fast.data(), with.data(), fast.size() * 4)) << "panel scales, K " << K << " T " << T;
      // Random scales are not f16 values: no f16 copy. Rounded to f16 (as ds-compile's are), the
      // f16 panel copy gives the bits of the gathered f32 scales.
      std::vector<uint16_t> half(scales.size());
      ASSERT_FALSE(panelScalesToF16(scales.data(), static_cast<int64_t>(scales.size()), half.data()));
      OwnedWeight hw = a.w;
      for (float& v : hw.scales) v = static_cast<float>(static_cast<_Float16>(v));
      hw.view.group_scale = hw.scales.data();
      std::vector<uint8_t> hbytes(a.bytes.size());
      WeightView hv = packInt8Activations(hw.view, hbytes.data(), scales.data());
      ASSERT_TRUE(panelScalesToF16(scales.data(), static_cast<int64_t>(scales.size()), half.data()));
      hv.panel_group_scale = nullptr;
      std::vector<float> gathered(T * 48), f16(T * 48);
      linear(x.data(), T, hv, nullptr, gathered.data());
      hv.panel_group_scale_f16 = half.data();
      linear(x.data(), T, hv, nullptr, f16.data());
      ASSERT_EQ(0, std::memcmp(gathered.data(), f16.data(), f16.size() * 4)) << "f16 panel scales, K " << K << " T " << T;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, Int8Act, ::testing::ValuesIn(kA8Cases),
                         [](const auto& info) { return std::string(info.param.name); });

// Group scales as f16: the quantizers' rounding (nearest even, normal f16 range only) and the
// exactness test the CPU device uses before it keeps f16 panel copies.
TEST(Int8ActScales, F16RoundingAndExactness) {
  uint16_t h = 0;
  for (float v : {0.5f, -0.5f, 65504.0f, 0x1p-14f, 1.0f + 0x1p-10f, 3.140625f}) {
    ASSERT_TRUE(detail::f16BitsIfExact(v, &h)) << v;
    EXPECT_EQ(detail::f16ToF32(h), v) << v;
    EXPECT_EQ(detail::roundScaleToF16(v), v) << v;
  }
  for (float v : {1.0f + 0x1p-11f, 65505.0f, 65536.0f, 0x1p-15f, 1e-30f, 0.0f, INFINITY, NAN})
    EXPECT_FALSE(detail::f16BitsIfExact(v, &h)) << v;
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> e(-14.0f, 15.9f);
  for (int i = 0; i < 20000; ++i) {
    const float v = std::exp2(e(gen)), r = detail::roundScaleToF16(v);
    ASSERT_EQ(r, static_cast<float>(static_cast<_Float16>(v))) << v;  // the compiler's RNE
    ASSERT_TRUE(detail::f16BitsIfExact(r, &h)) << v;
  }
  EXPECT_EQ(detail::roundScaleToF16(1.0f + 0x1p-11f), 1.0f);               // tie to even
  EXPECT_EQ(detail::roundScaleToF16(1.0f + 3 * 0x1p-11f), 1.0f + 0x1p-9f);  // tie to even (up)
  EXPECT_EQ(detail::roundScaleToF16(1e-30f), 1e-30f);      // below the normal range: kept
  EXPECT_EQ(detail::roundScaleToF16(65519.0f), 65519.0f);  // above 65504: kept
}

// The activation quantizer's AVX-512 path is its scalar definition bit for bit: scales, codes
// (rounding ties to even, the clamp) and sums; all-zero, tiny and large blocks.
TEST(Int8ActQuantizer, VectorBlocksEqualTheScalarDefinition) {
  Rng rng(41);
  for (int64_t n : {16, 32, 64, 48})
    for (int trial = 0; trial < 40; ++trial) {
      std::vector<float> x(n);
      const float mag = trial % 4 == 0 ? 1e-30f : trial % 4 == 1 ? 3e30f : 1.0f;
      for (float& v : x) v = rng.uniform(-1.0f, 1.0f) * mag;
      if (trial == 1) std::fill(x.begin(), x.end(), 0.0f);
      if (trial == 2) {  // amax 127: inv = 1, so x * inv lands on ties k + 0.5 (to even)
        for (int64_t j = 0; j < n; ++j) x[j] = static_cast<float>(j % 9) - 4.5f;
        x[0] = 127.0f;
      }
      if (trial == 3) x[n - 1] = -x[n - 1] - 1e3f * mag;  // the max on a negative value
      std::vector<int8_t> qv(n, 99), qs(n, 98);
      int32_t sv = -1, ss = -2;
      const float av = detail::quantizeActivationBlock(x.data(), n, qv.data(), &sv);
      const float as = detail::quantizeActivationBlock(x.data(), n, qs.data(), &ss, /*portable=*/true);
      ASSERT_EQ(0, std::memcmp(&av, &as, 4)) << "n " << n << " trial " << trial;
      ASSERT_EQ(qv, qs) << "n " << n << " trial " << trial;
      ASSERT_EQ(sv, ss) << "n " << n << " trial " << trial;
      if (trial == 2) EXPECT_EQ(qs[0], 127);
      if (trial == 2) EXPECT_EQ(qs[1], -4);  // -3.5 -> -4 (even)
    }
}

TEST(Int8ActEligibility, OnlyLayoutsTheKernelReads) {
  Rng rng(1);
  EXPECT_FALSE(canUseInt8Activations(randomQuantWeight(rng, WeightType::I4, 16, 128, 0.5f, 128, true).view))
      << "asymmetric int4";
  EXPECT_FALSE(canUseInt8Activations(randomQuantWeight(rng, WeightType::I4, 16, 96, 0.5f, 32, false).view))
      << "cols not a multiple of 64";
  EXPECT_FALSE(canUseInt8Activations(randomQuantWeight(rng, WeightType::I8, 24, 64, 0.5f).view))
      << "rows not a multiple of 16";
  EXPECT_FALSE(canUseInt8Activations(randomQuantWeight(rng, WeightType::F8E4M3, 16, 64, 0.5f).view))
      << "fp8";
  EXPECT_TRUE(canUseInt8Activations(randomQuantWeight(rng, WeightType::I4, 16, 64, 0.5f, 128, false).view))
      << "one group wider than the row";
  EXPECT_FALSE(canUseInt8Activations(randomQuantWeight(rng, WeightType::I6, 16, 128, 0.5f, 32, false).view))
      << "int6 groups of 32 columns";
  EXPECT_TRUE(canUseInt8Activations(randomQuantWeight(rng, WeightType::I6, 32, 128, 0.5f, 64, false).view))
      << "int6 groups of 64";
}

}  // namespace
}  // namespace ds::cpu::test
