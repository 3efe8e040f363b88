// GPTQ rows against the scale search they start from (output error in the Hessian norm, codes
// decoding with the I4 formula) and the dense-model calibration on stories260K.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "compiler/quant/Calibration.h"
#include "compiler/quant/Gptq.h"
#include "cpu/cpu_kernels.h"
#include "cpu/quantize.h"
#include "ingest/checkpoint.h"
#include "ingest/hf_config.h"

namespace mlir::ds {
namespace {

namespace cpu = ::ds::cpu;

// Decoded rows of an I4 view.
std::vector<float> decode(const std::vector<uint8_t>& packed, const std::vector<float>& s,
                          const std::vector<float>& z, int64_t R, int64_t C, int64_t g, bool asym) {
  cpu::WeightView v;
  v.data = packed.data();
  v.type = cpu::WeightType::I4;
  v.rows = R;
  v.cols = C;
  v.group_scale = s.data();
  v.group_zero = asym ? z.data() : nullptr;
  v.group_size = g;
  std::vector<float> out(R * C);
  for (int64_t r = 0; r < R; ++r) cpu::dequantRow(v, r, out.data() + r * C);
  return out;
}

// sum over rows of (w - d)^T H (w - d): the squared output error on the calibration inputs.
double outputError(const std::vector<float>& w, const std::vector<float>& d,
                   const std::vector<double>& H, int64_t R, int64_t C) {
  double e = 0;
  for (int64_t r = 0; r < R; ++r)
    for (int64_t i = 0; i < C; ++i)
      for (int64_t j = 0; j < C; ++j)
        e += (double(w[r * C + i]) - d[r * C + i]) * H[i * C + j] * (double(w[r * C + j]) - d[r * C + j]);
  return e;
}

struct Case {
  int64_t group, cols;
  bool asym;
};

class Gptq : public ::testing::TestWithParam<Case> {};

TEST_P(Gptq, LowersOutputErrorBelowTheScaleSearch) {
  const Case p = GetParam();
  const int64_t R = 48, C = p.cols, T = 512;
  std::mt19937 gen(11);
  std::normal_distribution<float> n(0.0f, 1.0f);
  // Correlated inputs with uneven channel energy, as activations are.
  std::vector<float> X(T * C);
  for (int64_t t = 0; t < T; ++t) {
    const float common = n(gen);
    for (int64_t c = 0; c < C; ++c) X[t * C + c] = (0.5f + c % 5) * (n(gen) + 0.7f * common);
  }
  std::vector<double> H(C * C, 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < C; ++i)
      for (int64_t j = 0; j < C; ++j) H[i * C + j] += double(X[t * C + i]) * X[t * C + j] / T;
  std::vector<float> w(R * C);
  for (float& x : w) x = 0.02f * n(gen);
  const int64_t G = cpu::int4Groups(C, p.group), rb = (C + 1) / 2;
  std::vector<uint8_t> ps(R * rb), pg(R * rb, 0xaa);
  std::vector<float> ss(R * G), zs(R * G);
  ASSERT_TRUE(cpu::quantizeInt4GroupsSearch(w.data(), R, C, p.group, p.asym, ps.data(), ss.data(), zs.data()));
  std::vector<float> sg = ss;
  std::optional<GptqPlan> plan = makeGptqPlan(H.data(), C);
  ASSERT_TRUE(plan.has_value());
  for (int64_t r = 0; r < R; ++r)
    gptqInt4Row(*plan, w.data() + r * C, p.group, p.asym, sg.data() + r * G,
                p.asym ? zs.data() + r * G : nullptr, pg.data() + r * rb);
  const auto ds = decode(ps, ss, zs, R, C, p.group, p.asym);
  const auto dg = decode(pg, sg, zs, R, C, p.group, p.asym);
  const double es = outputError(w, ds, H, R, C), eg = outputError(w, dg, H, R, C);
  RecordProperty("search_output_error", std::to_string(es));
  RecordProperty("gptq_output_error", std::to_string(eg));
  std::printf("%s: GPTQ / search output error %.3f\n", p.asym ? "asym" : "sym", eg / es);
  EXPECT_LT(eg, 0.8 * es) << "GPTQ " << eg << " vs scale search " << es;
  // Codes decode with the I4 formula; padding nibbles stay 0; scales stay positive.
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int nib = (pg[r * rb + c / 2] >> (4 * (c & 1))) & 0xf;
      const int64_t gi = r * G + c / p.group;
      ASSERT_GT(sg[gi], 0.0f);
      const float q = p.asym ? float(nib) : float(nib >= 8 ? nib - 16 : nib);
      ASSERT_EQ(dg[r * C + c], p.asym ? (q - zs[gi]) * sg[gi] : q * sg[gi]);
    }
  if (C % 2) {
    for (int64_t r = 0; r < R; ++r) EXPECT_EQ(pg[r * rb + rb - 1] >> 4, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Int4, Gptq,
                         ::testing::Values(Case{128, 64, false}, Case{128, 64, true},
                                           Case{64, 172, false}, Case{64, 77, true}),
                         [](const auto& info) {
                           const Case& p = info.param;
                           return std::string(p.asym ? "asym" : "sym") + "_g" +
                                  std::to_string(p.group) + "_c" + std::to_string(p.cols);
                         });

TEST(Gptq, IdentityHessianKeepsTheSearchCodes) {
  // With H = I there is nothing to compensate: the codes are the scale search's.
  const int64_t R = 8, C = 64;
  std::mt19937 gen(3);
  std::normal_distribution<float> n(0.0f, 0.02f);
  std::vector<float> w(R * C);
  for (float& x : w) x = n(gen);
  std::vector<double> H(C * C, 0.0);
  for (int64_t i = 0; i < C; ++i) H[i * C + i] = 1.0;
  std::vector<uint8_t> ps(R * C / 2), pg(R * C / 2);
  std::vector<float> ss(R), sg;
  ASSERT_TRUE(cpu::quantizeInt4GroupsSearch(w.data(), R, C, 128, false, ps.data(), ss.data(), nullptr));
  sg = ss;
  auto plan = makeGptqPlan(H.data(), C);
  ASSERT_TRUE(plan.has_value());
  for (int64_t r = 0; r < R; ++r)
    gptqInt4Row(*plan, w.data() + r * C, 128, false, sg.data() + r, nullptr, pg.data() + r * C / 2);
  EXPECT_EQ(ps, pg);
}

TEST(Gptq, RejectsAnIndefiniteHessian) {
  std::vector<double> H = {1, 0, 0, -5};  // damping 5% of the mean diagonal cannot fix it
  EXPECT_FALSE(makeGptqPlan(H.data(), 2).has_value());
}

TEST(Calibration, Stories260KHessiansAreSymmetricPerWeight) {
  const std::string dir = std::string(DS_SOURCE_DIR) + "/test/models/stories260K";
  auto cfg = ::ds::loadHFConfig(dir);
  ASSERT_TRUE(cfg.isOk()) << cfg.status().toString();
  auto ckpt = ::ds::Checkpoint::open(dir);
  ASSERT_TRUE(ckpt.isOk()) << ckpt.status().toString();
  std::vector<int32_t> tokens;
  for (int i = 0; i < 300; ++i) tokens.push_back(3 + (i * 37) % 500);
  auto calib = calibrateDense(*cfg, ckpt.value(), tokens, 128);
  ASSERT_TRUE(calib.isOk()) << calib.status().toString();
  EXPECT_EQ(calib->sequences, 3);               // 127 + 127 + 46 tokens after BOS
  EXPECT_EQ(calib->tokens, 300 + 3);
  EXPECT_EQ(calib->hessians.size(), 5u * 7u);
  const double* hq = calib->find("model.layers.2.self_attn.q_proj.weight", 64);
  const double* hk = calib->find("model.layers.2.self_attn.k_proj.weight", 64);
  const double* hd = calib->find("model.layers.2.mlp.down_proj.weight", 172);
  ASSERT_NE(hq, nullptr);
  ASSERT_NE(hd, nullptr);
  EXPECT_EQ(calib->find("model.layers.2.mlp.down_proj.weight", 64), nullptr);  // size mismatch
  EXPECT_EQ(calib->find("model.embed_tokens.weight", 64), nullptr);
  for (int64_t i = 0; i < 64 * 64; ++i) EXPECT_EQ(hq[i], hk[i]);  // q and k share their input
  for (int64_t i = 0; i < 172; ++i) {
    EXPECT_GT(hd[i * 172 + i], 0.0) << i;
    for (int64_t j = 0; j < 172; ++j) ASSERT_EQ(hd[i * 172 + j], hd[j * 172 + i]);
  }
  double tr = 0;
  for (int64_t i = 0; i < 64; ++i) tr += hq[i * 64 + i];
  EXPECT_GT(tr, 0.0);
  EXPECT_TRUE(std::isfinite(tr));
  // Deterministic.
  auto again = calibrateDense(*cfg, ckpt.value(), tokens, 128);
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(again->hessians, calib->hessians);
}

TEST(Calibration, RejectsModelsItCannotRunAndBadTokens) {
  const std::string v3 = std::string(DS_SOURCE_DIR) + "/test/models/tiny-deepseek-v3";
  auto cfg = ::ds::loadHFConfig(v3);
  ASSERT_TRUE(cfg.isOk());
  auto ckpt = ::ds::Checkpoint::open(v3);
  ASSERT_TRUE(ckpt.isOk());
  auto r = calibrateDense(*cfg, ckpt.value(), {5, 6, 7});
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), DS_UNSUPPORTED);
  EXPECT_NE(r.status().message().find("deepseek_v3"), std::string::npos) << r.status().message();
  const std::string s = std::string(DS_SOURCE_DIR) + "/test/models/stories260K";
  auto scfg = ::ds::loadHFConfig(s);
  auto sck = ::ds::Checkpoint::open(s);
  ASSERT_TRUE(scfg.isOk() && sck.isOk());
  auto bad = calibrateDense(*scfg, sck.value(), {5, 512});
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("512"), std::string::npos);
  EXPECT_FALSE(calibrateDense(*scfg, sck.value(), {}).isOk());
}

}  // namespace
}  // namespace mlir::ds
