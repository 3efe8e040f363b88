// Quantized KV caches (int8 / FP8 with per-head, per-token scales): write/read bounds, attention and MLA vs the f32 cache, sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>

#include "cpu/cpu_kernels.h"
#include "cpu/internal.h"
#include "cpu/quantize.h"
#include "reference.h"

namespace ds::cpu::test {
namespace {

constexpr int64_t kBlock = 8, kBlocksPerSeq = 8, kSeqs = 3;

// Per-element bound of one quantized vector with absmax m: int8 half a step of m / 127; FP8 half
// an ulp (2^-4 relative) or, below the normal range, half a subnormal step (2^-10 * scale).
double bound(KVType t, float x, float absmax) {
  if (t == KVType::I8) return absmax / 127.0 * 0.5 * (1 + 1e-5);
  return std::ldexp(std::fabs(x), -4) * (1 + 1e-5) + std::ldexp(absmax / 448.0, -10);
}

// Keys / values with per-head magnitudes spread over 1e-3..10, a zero vector and an outlier channel.
std::vector<float> kvValues(Rng& rng, int64_t T, int64_t H, int64_t D) {
  std::vector<float> x(T * H * D);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const float amp = std::pow(10.0f, float((t + h) % 5) - 3);
      float* v = x.data() + (t * H + h) * D;
      for (int64_t d = 0; d < D; ++d) v[d] = rng.uniform(-amp, amp);
      if ((t + h) % 7 == 3) v[(t * 3) % D] *= 6.0f;
      if (t == 1 && h == 0) std::fill(v, v + D, 0.0f);
    }
  return x;
}

class KvQuant : public ::testing::TestWithParam<KVType> {};

TEST_P(KvQuant, WriteThenReadIsWithinTheQuantizationBound) {
  const KVType type = GetParam();
  Rng rng(1);
  const int64_t H = 3, D = 40, Dv = 24, blocks = 4, T = 20;
  PagedKV c{nullptr, nullptr, blocks, kBlock, H, D, Dv};
  c.type = type;
  std::vector<uint8_t> buf(blocks * kvBlockBytes(type, kBlock, H, D, Dv));
  kvBindBuffer(c, buf.data());
  ASSERT_NE(c.kq, nullptr);
  auto k = kvValues(rng, T, H, D), v = kvValues(rng, T, H, Dv);
  // One sequence over blocks 2, 0, 3: positions 0..19.
  std::vector<int32_t> table = {2, 0, 3}, seq(T, 0), pos(T);
  for (int64_t t = 0; t < T; ++t) pos[t] = int32_t(t);
  BatchView b{T, pos.data(), seq.data(), 1, table.data(), 3};
  kvWrite(c, b, k.data(), v.data());
  std::vector<float> kr(H * D), vr(H * Dv);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t slot = table[t / kBlock] * kBlock + t % kBlock;
    kvReadSlot(c, slot, kr.data(), vr.data());
    for (int64_t h = 0; h < H; ++h) {
      for (auto [src, got, n, scale] :
           {std::make_tuple(k.data() + (t * H + h) * D, kr.data() + h * D, D, c.k_scale[kvIndex(c, slot, h)]),
            std::make_tuple(v.data() + (t * H + h) * Dv, vr.data() + h * Dv, Dv, c.v_scale[kvIndex(c, slot, h)])}) {
        float m = 0;
        for (int64_t d = 0; d < n; ++d) m = std::max(m, std::fabs(src[d]));
        if (type == KVType::I8) {
          if (m > 0) EXPECT_EQ(scale, m / 127.0f);
          for (int64_t d = 0; d < n; ++d)
            ASSERT_LE(std::fabs(double(src[d]) - got[d]), bound(type, src[d], m)) << "t" << t << " h" << h << " d" << d;
          continue;
        }
        // FP8: the least-squares scale among absmax / 448 * 2^(k / 16), k in [-2, 16]. Elements
        // inside the range keep the half-ulp bound of that scale; clipped ones decode to +-448 s.
        bool candidate = m == 0;
        for (int k = -2; k <= 16 && !candidate; ++k)
          candidate = scale == m / 448.0f * std::exp2(static_cast<float>(k) / 16.0f);
        EXPECT_TRUE(candidate) << "scale " << scale << " for absmax " << m;
        double err = 0, rtnErr = 0;
        for (int64_t d = 0; d < n; ++d) {
          double x = src[d], e = std::fabs(x - got[d]);
          err += e * e;
          if (std::fabs(x) <= 448.0 * scale)
            ASSERT_LE(e, bound(type, src[d], 448.0f * scale)) << "t" << t << " h" << h << " d" << d;
          else
            ASSERT_EQ(std::fabs(got[d]), 448.0f * scale) << "clipped element";
          // What the absmax scale would have given (f32 math like the kernels').
          if (m > 0) {
            float s0 = m / 448.0f;
            double r = fp8E4M3ToF32(f32ToFp8E4M3(src[d] / s0)) * s0;
            rtnErr += (x - r) * (x - r);
          }
        }
        EXPECT_LE(err, rtnErr * (1 + 1e-6) + 1e-30) << "the search is never worse than absmax";
      }
    }
  }
}

// Three sequences written step by step into one f32 cache and one quantized cache (same blocks).
struct Gqa {
  static constexpr int64_t Hq = 8, Hkv = 2, D = 64, Dv = 48;
  int64_t blocks = kSeqs * kBlocksPerSeq + 3;
  std::vector<uint8_t> fbuf, qbuf;
  PagedKV f, q;
  std::vector<int32_t> table;

  Gqa(Rng& rng, KVType type) {
    f = {nullptr, nullptr, blocks, kBlock, Hkv, D, Dv};
    q = f;
    q.type = type;
    fbuf.resize(blocks * kvBlockBytes(KVType::F32, kBlock, Hkv, D, Dv));
    qbuf.resize(blocks * kvBlockBytes(type, kBlock, Hkv, D, Dv));
    kvBindBuffer(f, fbuf.data());
    kvBindBuffer(q, qbuf.data());
    std::vector<int32_t> ids(blocks);
    for (int64_t i = 0; i < blocks; ++i) ids[i] = int32_t(i);
    std::shuffle(ids.begin(), ids.end(), rng.gen());
    table.assign(ids.begin(), ids.begin() + kSeqs * kBlocksPerSeq);
  }
  BatchView batch(const std::vector<int32_t>& s, const std::vector<int32_t>& p) const {
    return {int64_t(s.size()), p.data(), s.data(), kSeqs, table.data(), kBlocksPerSeq};
  }
  float outlier = 1.0f;  // magnitude of key channel 5 relative to the others
  void write(Rng& rng, const std::vector<int32_t>& s, const std::vector<int32_t>& p) {
    const int64_t T = s.size();
    auto k = rng.vec(T * Hkv * D), v = rng.vec(T * Hkv * Dv);
    for (int64_t i = 0; i < T * Hkv * D; i += D) k[i + 5] *= outlier;
    kvWrite(f, batch(s, p), k.data(), v.data());
    kvWrite(q, batch(s, p), k.data(), v.data());
  }
};

double relDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, m = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i])), m = std::max(m, std::fabs(double(b[i])));
  return d / m;
}

// Keys with an outlier channel (common in real models) make the per-head scale coarser for the
// rest of the vector: the bound is looser there (numbers in docs/quantization.md).
void checkAttention(KVType type, float outlier, double bound) {
  Rng rng(2);
  Gqa g(rng, type);
  g.outlier = outlier;
  // History: seq 0 has 40 tokens, seq 1 has 9, seq 2 none; then a mixed step.
  std::vector<int32_t> s0(40, 0), p0(40), s1(9, 1), p1(9);
  for (int i = 0; i < 40; ++i) p0[i] = i;
  for (int i = 0; i < 9; ++i) p1[i] = i;
  g.write(rng, s0, p0);
  g.write(rng, s1, p1);
  const std::vector<int32_t> seqs = {2, 0, 2, 1, 2}, pos = {0, 40, 1, 9, 2};
  g.write(rng, seqs, pos);
  const int64_t T = seqs.size();
  auto q = rng.vec(T * Gqa::Hq * Gqa::D, -2.0f, 2.0f);
  const float scale = 1.0f / std::sqrt(float(Gqa::D));
  for (int64_t window : {0, 16}) {
    std::vector<float> of(T * Gqa::Hq * Gqa::Dv), oq(of.size());
    attention(g.f, g.batch(seqs, pos), q.data(), Gqa::Hq, scale, window, of.data());
    attention(g.q, g.batch(seqs, pos), q.data(), Gqa::Hq, scale, window, oq.data());
    const double rel = relDiff(oq, of);
    std::cout << "[ measured ] GQA attention " << (type == KVType::I8 ? "int8" : "fp8")
              << " cache, key outlier x" << outlier << ", window " << window
              << ": max|diff| / max|out| = " << rel << "\n";
    EXPECT_LT(rel, bound);

    // An f32 cache holding exactly the dequantized values gives bitwise the same output.
    std::vector<uint8_t> dbuf(g.fbuf.size());
    PagedKV d = g.f;
    kvBindBuffer(d, dbuf.data());
    std::vector<float> ks(Gqa::Hkv * Gqa::D), vs(Gqa::Hkv * Gqa::Dv);
    for (int64_t slot = 0; slot < g.blocks * kBlock; ++slot) {
      kvReadSlot(g.q, slot, ks.data(), vs.data());
      for (int64_t h = 0; h < Gqa::Hkv; ++h) {
        std::memcpy(d.k + kvIndex(d, slot, h) * Gqa::D, ks.data() + h * Gqa::D, Gqa::D * 4);
        std::memcpy(d.v + kvIndex(d, slot, h) * Gqa::Dv, vs.data() + h * Gqa::Dv, Gqa::Dv * 4);
      }
    }
    std::vector<float> od(of.size());
    attention(d, g.batch(seqs, pos), q.data(), Gqa::Hq, scale, window, od.data());
    EXPECT_EQ(0, std::memcmp(od.data(), oq.data(), od.size() * 4));
  }
  // Batch invariance: seq 0's decode token alone.
  const int32_t ss = 0, pp = 40;
  std::vector<float> all(T * Gqa::Hq * Gqa::Dv), one(Gqa::Hq * Gqa::Dv);
  attention(g.q, g.batch(seqs, pos), q.data(), Gqa::Hq, scale, 0, all.data());
  BatchView b1{1, &pp, &ss, kSeqs, g.table.data(), kBlocksPerSeq};
  attention(g.q, b1, q.data() + Gqa::Hq * Gqa::D, Gqa::Hq, scale, 0, one.data());
  EXPECT_EQ(0, std::memcmp(one.data(), all.data() + Gqa::Hq * Gqa::Dv, one.size() * 4));
}

// dequantVecs (a block of one head at once, 16 wide on AVX-512) is dequantVec per vector bit for
// bit: every code, lengths with and without a 16-lane tail, several scales.
TEST_P(KvQuant, BlockDequantIsThePerVectorDequantBitForBit) {
  const KVType type = GetParam();
  for (int64_t n : {16, 40, 128, 7}) {
    const int64_t count = 300 / n + 1;
    std::vector<uint8_t> codes(count * n);
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = uint8_t(i * 37 + 11);
    std::vector<float> scales(count), got(count * n, NAN), want(count * n, NAN);
    for (int64_t v = 0; v < count; ++v) scales[v] = std::ldexp(1.0f + 0.37f * float(v), int(v % 9) - 6);
    detail::dequantVecs(type, codes.data(), count, n, scales.data(), got.data());
    for (int64_t v = 0; v < count; ++v) detail::dequantVec(type, codes.data() + v * n, n, scales[v], want.data() + v * n);
    ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * 4)) << "n " << n;
  }
}

TEST_P(KvQuant, AttentionIsCloseToTheF32CacheAndExactOnItsValues) {
  checkAttention(GetParam(), 1.0f, GetParam() == KVType::I8 ? 1e-2 : 5e-2);
}

TEST_P(KvQuant, AttentionWithAKeyOutlierChannelStaysBounded) {
  checkAttention(GetParam(), 4.0f, GetParam() == KVType::I8 ? 2e-2 : 1e-1);
}

TEST_P(KvQuant, MlaIsCloseToTheF32CacheAndExactOnItsValues) {
  const KVType type = GetParam();
  Rng rng(3);
  const int64_t H = 4, Dn = 16, Dv = 16, Dr = 8, R = 64, L = R + Dr;
  const int64_t blocks = kSeqs * kBlocksPerSeq + 2;
  auto kv_b = randomWeight(rng, WeightType::BF16, H * (Dn + Dv), R, 0.3f);
  PagedLatentKV f{nullptr, blocks, kBlock, R, Dr}, q = f, d = f;
  q.type = type;
  std::vector<uint8_t> fb(blocks * mlaBlockBytes(KVType::F32, kBlock, R, Dr));
  std::vector<uint8_t> qb(blocks * mlaBlockBytes(type, kBlock, R, Dr)), db(fb.size());
  mlaBindBuffer(f, fb.data());
  mlaBindBuffer(q, qb.data());
  mlaBindBuffer(d, db.data());
  std::vector<int32_t> table(kSeqs * kBlocksPerSeq);
  for (size_t i = 0; i < table.size(); ++i) table[i] = int32_t((i * 7 + 3) % blocks);
  auto step = [&](const std::vector<int32_t>& s, const std::vector<int32_t>& p) {
    const int64_t T = s.size();
    // The rope part is ~10x smaller than the latent: separate scales keep it precise.
    auto c = rng.vec(T * R, -1.0f, 1.0f), kr = rng.vec(T * Dr, -0.1f, 0.1f);
    BatchView b{T, p.data(), s.data(), kSeqs, table.data(), kBlocksPerSeq};
    mlaKvWrite(f, b, c.data(), kr.data());
    mlaKvWrite(q, b, c.data(), kr.data());
    // Write/read bound on each slot just written.
    std::vector<float> cr(R), rr(Dr);
    for (int64_t t = 0; t < T; ++t) {
      const int64_t slot = int64_t(table[s[t] * kBlocksPerSeq + p[t] / kBlock]) * kBlock + p[t] % kBlock;
      mlaKvReadSlot(q, slot, cr.data(), rr.data());
      float mc = 0, mr = 0;
      for (int64_t i = 0; i < R; ++i) mc = std::max(mc, std::fabs(c[t * R + i]));
      for (int64_t i = 0; i < Dr; ++i) mr = std::max(mr, std::fabs(kr[t * Dr + i]));
      for (int64_t i = 0; i < R; ++i) ASSERT_LE(std::fabs(double(c[t * R + i]) - cr[i]), bound(type, c[t * R + i], mc));
      for (int64_t i = 0; i < Dr; ++i) ASSERT_LE(std::fabs(double(kr[t * Dr + i]) - rr[i]), bound(type, kr[t * Dr + i], mr));
    }
  };
  std::vector<int32_t> s0(30, 0), p0(30);
  for (int i = 0; i < 30; ++i) p0[i] = i;
  step(s0, p0);
  const std::vector<int32_t> seqs = {1, 0, 1, 1}, pos = {0, 30, 1, 2};
  step(seqs, pos);
  const int64_t T = seqs.size();
  auto qn = rng.vec(T * H * Dn, -2, 2), qr = rng.vec(T * H * Dr, -2, 2);
  BatchView b{T, pos.data(), seqs.data(), kSeqs, table.data(), kBlocksPerSeq};
  const float scale = 1.0f / std::sqrt(float(Dn + Dr));
  std::vector<float> of(T * H * Dv), oq(of.size()), od(of.size());
  mlaAttention(f, b, qn.data(), qr.data(), kv_b.view, H, Dn, Dv, scale, of.data());
  mlaAttention(q, b, qn.data(), qr.data(), kv_b.view, H, Dn, Dv, scale, oq.data());
  const double rel = relDiff(oq, of);
  std::cout << "[ measured ] MLA " << (type == KVType::I8 ? "int8" : "fp8")
            << " latent cache: max|diff| / max|out| = " << rel << "\n";
  EXPECT_LT(rel, type == KVType::I8 ? 1e-2 : 5e-2);
  for (int64_t slot = 0; slot < blocks * kBlock; ++slot)
    mlaKvReadSlot(q, slot, d.data + slot * L, d.data + slot * L + R);
  mlaAttention(d, b, qn.data(), qr.data(), kv_b.view, H, Dn, Dv, scale, od.data());
  EXPECT_EQ(0, std::memcmp(od.data(), oq.data(), od.size() * 4));
  // Batch invariance: seq 0's decode token alone.
  const int32_t ss = 0, pp = 30;
  BatchView b1{1, &pp, &ss, kSeqs, table.data(), kBlocksPerSeq};
  std::vector<float> one(H * Dv);
  mlaAttention(q, b1, qn.data() + H * Dn, qr.data() + H * Dr, kv_b.view, H, Dn, Dv, scale, one.data());
  EXPECT_EQ(0, std::memcmp(one.data(), oq.data() + H * Dv, one.size() * 4));
}

INSTANTIATE_TEST_SUITE_P(Types, KvQuant, ::testing::Values(KVType::I8, KVType::F8E4M3),
                         [](const auto& info) { return std::string(info.param == KVType::I8 ? "i8" : "fp8"); });

TEST(KvCache, BlockBytesAndBinding) {
  EXPECT_EQ(kvBlockBytes(KVType::F32, 16, 8, 128, 128), 16 * 8 * 256 * 4);
  EXPECT_EQ(kvBlockBytes(KVType::I8, 16, 8, 128, 128), 16 * 8 * (256 + 8));
  EXPECT_EQ(kvBlockBytes(KVType::F8E4M3, 16, 8, 128, 96), 16 * 8 * (224 + 8));
  EXPECT_EQ(mlaBlockBytes(KVType::F32, 64, 512, 64), 64 * 576 * 4);
  EXPECT_EQ(mlaBlockBytes(KVType::I8, 64, 512, 64), 64 * (576 + 8));
  PagedKV c{nullptr, nullptr, 5, 4, 3, 7, 5};
  c.type = KVType::I8;
  std::vector<uint8_t> buf(5 * kvBlockBytes(c.type, 4, 3, 7, 5));
  kvBindBuffer(c, buf.data());
  // The four arrays tile the buffer exactly, in order, without overlap.
  const auto* base = buf.data();
  EXPECT_EQ(reinterpret_cast<uint8_t*>(c.k_scale), base);
  EXPECT_EQ(reinterpret_cast<uint8_t*>(c.v_scale), base + 60 * 4);
  EXPECT_EQ(c.kq, base + 120 * 4);
  EXPECT_EQ(c.vq, c.kq + 60 * 7);
  EXPECT_EQ(c.vq + 60 * 5, base + buf.size());
  PagedLatentKV m{nullptr, 5, 4, 6, 2};
  m.type = KVType::F8E4M3;
  std::vector<uint8_t> mb(5 * mlaBlockBytes(m.type, 4, 6, 2));
  mlaBindBuffer(m, mb.data());
  EXPECT_EQ(reinterpret_cast<uint8_t*>(m.scales), mb.data());
  EXPECT_EQ(m.qdata + 20 * 8, mb.data() + mb.size());
}

}  // namespace
}  // namespace ds::cpu::test
