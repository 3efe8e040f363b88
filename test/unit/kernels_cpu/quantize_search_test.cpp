// The int4 scale search (lanes = candidates on AVX-512 / AVX2, scalar on the portable path)
// against a scalar copy of its definition (quantize.cpp: the error of x * (1 / s) codes, summed
// in f32 in index order): codes, scales and zero points must be bitwise equal. Symmetric scales
// are f16 values (so the CPU device keeps f16 panel copies), except outside f16's normal range.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "cpu/quantize.h"

namespace ds::cpu::test {
namespace {

float refSafe(float s) { return s > 0.0f && std::isfinite(s) ? s : 1.0f; }
// Symmetric candidates are stored as f16 values where that is a normal f16 (the compiler's
// own _Float16 conversion, round to nearest even, as the independent reference).
float refHalf(float s) { return s >= 0x1p-14f && s <= 65504.0f ? static_cast<float>(static_cast<_Float16>(s)) : s; }

float refErr(const float* x, int64_t n, float s, float z, bool asym) {
  const float inv = 1.0f / s;
  float e = 0;
  for (int64_t i = 0; i < n; ++i) {
    float q = std::nearbyint(x[i] * inv);
    if (asym) q = q + z;
    if (std::isnan(q)) q = 0.0f;
    q = std::min(std::max(q, asym ? 0.0f : -8.0f), asym ? 15.0f : 7.0f);
    const float d = asym ? (q - z) * s : q * s;
    const float diff = x[i] - d;
    e = e + diff * diff;
  }
  return e;
}

std::pair<float, float> refSearch(const float* x, int64_t n, bool asym) {
  if (!asym) {
    float amax = 0.0f;
    for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
    float best = refHalf(refSafe(amax / 7.0f));
    float bestErr = refErr(x, n, best, 0.0f, false);
    for (int k = 0; k <= 16; ++k)
      for (float d : {7.0f, 8.0f}) {
        const float s = refHalf(refSafe(amax * (1.0f - static_cast<float>(k) / 32.0f) / d));
        const float e = refErr(x, n, s, 0.0f, false);
        if (e < bestErr) bestErr = e, best = s;
      }
    return {best, 0.0f};
  }
  float lo0 = 0.0f, hi0 = 0.0f;
  for (int64_t i = 0; i < n; ++i) lo0 = std::min(lo0, x[i]), hi0 = std::max(hi0, x[i]);
  std::pair<float, float> best{0.0f, 0.0f};
  float bestErr = 0;
  for (int i = 0; i <= 16; ++i)
    for (int j = 0; j <= 16; ++j) {
      const float lo = lo0 * (1.0f - static_cast<float>(i) / 32.0f);
      const float hi = hi0 * (1.0f - static_cast<float>(j) / 32.0f);
      const float s = refSafe((hi - lo) / 15.0f);
      float z = std::nearbyint(-lo / s);
      z = std::min(std::max(z, 0.0f), 15.0f);
      const float e = refErr(x, n, s, z, true);
      if ((i == 0 && j == 0) || e < bestErr) bestErr = e, best = {s, z};
    }
  return best;
}

TEST(QuantizeSearch, Int4MatchesTheScalarSearchBitwise) {
  std::mt19937 rng(13);
  std::normal_distribution<float> g(0.0f, 0.02f);
  const int64_t R = 48, C = 300;  // partial last group for 64 and 128
  std::vector<float> w(R * C);
  for (float& v : w) v = g(rng);
  for (int k = 0; k < 60; ++k) w[rng() % w.size()] *= 8.0f;  // outliers
  for (int64_t c = 0; c < C; ++c) w[3 * C + c] = 0.0f;         // a zero row
  for (int64_t c = 0; c < C; ++c) w[4 * C + c] = 0.5f;         // a constant row
  for (int64_t c = 0; c < C; ++c) w[5 * C + c] = std::fabs(w[5 * C + c]);  // one-signed rows
  for (int64_t c = 0; c < C; ++c) w[6 * C + c] = -std::fabs(w[6 * C + c]);
  for (int64_t c = 0; c < C; c += 7) w[7 * C + c] = 1e-30f;    // tiny values
  for (int64_t group : {64, 128, 1, 7}) {
    for (bool asym : {false, true}) {
      const int64_t G = int4Groups(C, group);
      std::vector<uint8_t> p(int4Bytes(R, C));
      std::vector<float> s(R * G), z(asym ? R * G : 0);
      ASSERT_TRUE(quantizeInt4GroupsSearch(w.data(), R, C, group, asym, p.data(), s.data(),
                                           asym ? z.data() : nullptr));
      int mismatches = 0;
      for (int64_t r = 0; r < R; ++r)
        for (int64_t gi = 0; gi < G; ++gi) {
          const int64_t c0 = gi * group, n = std::min(C, c0 + group) - c0;
          auto [rs, rz] = refSearch(w.data() + r * C + c0, n, asym);
          uint32_t a, b;
          std::memcpy(&a, &s[r * G + gi], 4);
          std::memcpy(&b, &rs, 4);
          if (a != b || (asym && z[r * G + gi] != rz)) ++mismatches;
        }
      EXPECT_EQ(mismatches, 0) << "group " << group << (asym ? " asym" : " sym");
      if (asym) continue;
      int inexact = 0, tiny = 0;
      for (float v : s) {
        if (v < 0x1p-14f) ++tiny;
        else if (static_cast<float>(static_cast<_Float16>(v)) != v) ++inexact;
      }
      EXPECT_EQ(inexact, 0) << "group " << group;
      // Below f16's normal range (kept as f32): only groups of 1 (row 7's 1e-30 columns, and
      // single Gaussian values under 7 * 2^-14).
      if (group == 1) EXPECT_GE(tiny, (C + 6) / 7);
      else EXPECT_EQ(tiny, 0) << "group " << group;
    }
  }
}

}  // namespace
}  // namespace ds::cpu::test
