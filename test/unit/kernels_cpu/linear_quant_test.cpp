// linear / dequantRow / embed / moeExperts on int8, int4- and int6-group and per-channel FP8 weights: vs a double reference, vs f32 on the dequantized weights, batch invariance.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "cpu/cpu_kernels.h"
#include "reference.h"

namespace ds::cpu::test {
namespace {

struct QuantCase {
  const char* name;
  WeightType type;
  int64_t group;  // I4 / I6 only
  bool asym;
};

void PrintTo(const QuantCase& c, std::ostream* os) { *os << c.name; }

// g20 is not a multiple of 8: the fused decode tiles decline it and the panel path runs.
const QuantCase kQuantCases[] = {
    {"i8", WeightType::I8, 0, false},          {"fp8_channel", WeightType::F8E4M3, 0, false},
    {"i4_sym_g64", WeightType::I4, 64, false}, {"i4_sym_g128", WeightType::I4, 128, false},
    {"i4_asym_g64", WeightType::I4, 64, true}, {"i4_asym_g128", WeightType::I4, 128, true},
    {"i4_sym_g20", WeightType::I4, 20, false},
    {"i6_g64", WeightType::I6, 64, false},     {"i6_g128", WeightType::I6, 128, false},
    {"i6_g20", WeightType::I6, 20, false},
};

OwnedWeight make(Rng& rng, const QuantCase& c, int64_t rows, int64_t cols) {
  return randomQuantWeight(rng, c.type, rows, cols, 0.5f, c.group, c.asym);
}

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

class QuantLinear : public ::testing::TestWithParam<QuantCase> {};

TEST_P(QuantLinear, DequantRowIsTheFormulaInF32) {
  const auto& qc = GetParam();
  Rng rng(1);
  const int64_t R = 17, C = 261;  // odd cols: partial last group, padded last byte
  auto w = make(rng, qc, R, C);
  std::vector<float> row(C);
  const int64_t G = qc.group ? (C + qc.group - 1) / qc.group : 0, rb = weightRowBytes(qc.type, C);
  for (int64_t r = 0; r < R; ++r) {
    dequantRow(w.view, r, row.data());
    for (int64_t c = 0; c < C; ++c) {
      float want;
      if (qc.type == WeightType::I8) {
        want = float(int8_t(w.bytes[r * C + c])) * w.scales[r];
      } else if (qc.type == WeightType::F8E4M3) {
        want = float(decodeFp8E4M3(w.bytes[r * C + c])) * w.scales[r];
      } else if (qc.type == WeightType::I6) {
        // Four codes per three bytes: bits 6 (c % 4) .. + 5 of the 24-bit word at byte 3 (c / 4).
        const uint8_t* q3 = w.bytes.data() + r * rb + 3 * (c / 4);
        const int u = ((q3[0] | q3[1] << 8 | q3[2] << 16) >> (6 * (c % 4))) & 63;
        want = float(u >= 32 ? u - 64 : u) * w.scales[r * G + c / qc.group];
      } else {
        const int nib = (w.bytes[r * rb + c / 2] >> (4 * (c % 2))) & 15;
        const int64_t g = r * G + c / qc.group;
        want = qc.asym ? (float(nib) - w.zeros[g]) * w.scales[g]
                       : float(nib >= 8 ? nib - 16 : nib) * w.scales[g];
      }
      ASSERT_EQ(row[c], want) << qc.name << " r" << r << " c" << c;
    }
  }
}

TEST_P(QuantLinear, MatchesReferenceForSeveralT) {
  const auto& qc = GetParam();
  Rng rng(7);
  for (int64_t K : {261, 256}) {
    const int64_t N = 300;
    auto w = make(rng, qc, N, K);
    auto bias = rng.vec(N);
    for (int64_t T : {1, 2, 3, 5, 17, 40}) {
      auto x = rng.vec(T * K);
      std::vector<float> y(T * N);
      linear(x.data(), T, w.view, bias.data(), y.data());
      EXPECT_LT(maxRelErr(y, refLinear(x, T, w.view, bias.data())), 2e-6) << qc.name << " T=" << T;
    }
  }
}

// The contract: the kernel is "dequantize, then the f32 GEMM", to the bit, on every path.
TEST_P(QuantLinear, EqualsF32LinearOnDequantizedWeightsBitwise) {
  const auto& qc = GetParam();
  Rng rng(9);
  const int64_t N = 77, K = 389;
  auto w = make(rng, qc, N, K);
  auto f = dequantizedF32(w.view);
  for (int64_t T : {1, 2, 3, 17}) {
    auto x = rng.vec(T * K);
    std::vector<float> yq(T * N), yf(T * N);
    linear(x.data(), T, w.view, nullptr, yq.data());
    linear(x.data(), T, f.view, nullptr, yf.data());
    EXPECT_EQ(0, std::memcmp(yq.data(), yf.data(), yq.size() * 4)) << qc.name << " T=" << T;
  }
}

TEST_P(QuantLinear, RowsAreBitwiseBatchInvariant) {
  const auto& qc = GetParam();
  Rng rng(11);
  const struct { int64_t N, K, T; } shapes[] = {{133, 300, 23}, {20, 4100, 70}};
  for (const auto& sh : shapes) {
    const int64_t N = sh.N, K = sh.K, T = sh.T;
    auto w = make(rng, qc, N, K);
    auto x = rng.vec(T * K);
    expectRowsBatchInvariant(w.view, x, T, qc.name);
  }
}

TEST_P(QuantLinear, BlasPathMatchesReference) {
  const auto& qc = GetParam();
  Rng rng(3);
  const int64_t N = 300, K = 200, T = 33;
  auto w = make(rng, qc, N, K);
  auto x = rng.vec(T * K);
  std::vector<float> y(T * N);
  setBatchInvariant(false);
  linear(x.data(), T, w.view, nullptr, y.data());
  setBatchInvariant(true);
  EXPECT_LT(maxRelErr(y, refLinear(x, T, w.view, nullptr)), 2e-6) << qc.name;
}

TEST_P(QuantLinear, EmbedReturnsDequantizedRows) {
  const auto& qc = GetParam();
  Rng rng(5);
  const int64_t V = 50, H = 133;
  auto w = make(rng, qc, V, H);
  const std::vector<int32_t> ids = {3, 49, 0, 3};
  std::vector<float> y(ids.size() * H), row(H);
  embed(ids.data(), ids.size(), w.view, y.data());
  for (size_t t = 0; t < ids.size(); ++t) {
    dequantRow(w.view, ids[t], row.data());
    EXPECT_EQ(0, std::memcmp(row.data(), y.data() + t * H, H * 4)) << qc.name;
  }
}

INSTANTIATE_TEST_SUITE_P(QuantTypes, QuantLinear, ::testing::ValuesIn(kQuantCases),
                         [](const auto& info) { return std::string(info.param.name); });

// Every FP8 code through the decode-time tiles (T = 1, 2) and the panel path (T = 3), raw and
// channel-scaled: the value is fp8(q) * s, NaN codes give NaN.
TEST(QuantLinearFp8, EveryCodeOnEveryPath) {
  const int64_t R = 256, C = 16;
  std::vector<uint8_t> codes(R * C);
  for (int64_t r = 0; r < R; ++r) std::fill(codes.begin() + r * C, codes.begin() + (r + 1) * C, uint8_t(r));
  std::vector<float> scales(R);
  for (int64_t r = 0; r < R; ++r) scales[r] = 0.75f + r / 512.0f;
  for (bool scaled : {false, true}) {
    WeightView w;
    w.data = codes.data();
    w.type = WeightType::F8E4M3;
    w.rows = R;
    w.cols = C;
    w.channel_scale = scaled ? scales.data() : nullptr;
    for (int64_t T : {1, 2, 3}) {
      std::vector<float> x(T * C, 0.0f), y(T * R);
      for (int64_t t = 0; t < T; ++t) x[t * C + t] = 1.0f;  // picks one column per token
      linear(x.data(), T, w, nullptr, y.data());
      for (int64_t t = 0; t < T; ++t)
        for (int64_t r = 0; r < R; ++r) {
          const float want = float(decodeFp8E4M3(uint8_t(r))) * (scaled ? scales[r] : 1.0f);
          if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(y[t * R + r])) << r;
          } else {
            ASSERT_EQ(y[t * R + r], want) << "code " << r << " T=" << T << " scaled=" << scaled;
          }
        }
    }
  }
}

TEST(QuantMoe, ExpertsEqualF32ExpertsOnDequantizedWeightsAndAreBatchInvariant) {
  Rng rng(43);
  const int64_t E = 4, H = 72, I = 40, T = 7, K = 2;
  std::vector<OwnedWeight> q, f;
  std::vector<WeightView> gq, uq, dq, gf, uf, df;
  for (int64_t e = 0; e < E; ++e) {
    // Expert e mixes encodings: I8 gate, I4 up (sym, or asym for odd e), I4 down (g64 over I = 40:
    // one partial group).
    q.push_back(randomQuantWeight(rng, WeightType::I8, I, H, 0.3f));
    q.push_back(randomQuantWeight(rng, WeightType::I4, I, H, 0.3f, 64, e % 2 == 1));
    q.push_back(randomQuantWeight(rng, e == 2 ? WeightType::F8E4M3 : WeightType::I4, H, I, 0.3f, 64, false));
  }
  for (int64_t e = 0; e < E; ++e) {
    gq.push_back(q[3 * e].view), uq.push_back(q[3 * e + 1].view), dq.push_back(q[3 * e + 2].view);
    for (int k = 0; k < 3; ++k) f.push_back(dequantizedF32(q[3 * e + k].view));
  }
  for (int64_t e = 0; e < E; ++e)
    gf.push_back(f[3 * e].view), uf.push_back(f[3 * e + 1].view), df.push_back(f[3 * e + 2].view);
  auto x = rng.vec(T * H);
  std::vector<int32_t> ids = {0, 3, 3, 1, 2, 0, 2, 3, 1, 0, 2, 1, 3, 0};
  auto wts = rng.vec(T * K, 0.1f, 1.0f);
  std::vector<float> out(T * H), want(T * H);
  moeExperts(x.data(), T, H, wts.data(), ids.data(), K, gq.data(), uq.data(), dq.data(), E, out.data());
  moeExperts(x.data(), T, H, wts.data(), ids.data(), K, gf.data(), uf.data(), df.data(), E, want.data());
  EXPECT_EQ(0, std::memcmp(out.data(), want.data(), out.size() * 4));
  float mx = 0;
  for (float v : out) mx = std::max(mx, std::fabs(v));
  EXPECT_GT(mx, 0.0f);
  for (int64_t t : {0, 4, 6}) {
    std::vector<float> one(H);
    moeExperts(x.data() + t * H, 1, H, wts.data() + t * K, ids.data() + t * K, K, gq.data(),
               uq.data(), dq.data(), E, one.data());
    EXPECT_EQ(0, std::memcmp(one.data(), out.data() + t * H, H * 4)) << "t=" << t;
  }
}

}  // namespace
}  // namespace ds::cpu::test
