// Absorbed MLA over a paged latent cache vs the non-absorbed form (K and V expanded with kv_b).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/cpu_kernels.h"
#include "cpu/internal.h"
#include "reference.h"

namespace ds::cpu::test {
namespace {

constexpr int64_t kH = 3, kDn = 8, kDv = 6, kDr = 4, kR = 20, kBlock = 4, kBlocksPerSeq = 6;
constexpr int64_t kSeqs = 2;

struct MlaCase {
  const char* name;
  WeightType type;
  int64_t block_rows, block_cols;
};

void PrintTo(const MlaCase& c, std::ostream* os) { *os << c.name; }

class MlaTest : public ::testing::TestWithParam<MlaCase> {};

TEST_P(MlaTest, AbsorbedMatchesExpandedReferenceAndIsBatchInvariant) {
  const auto& mc = GetParam();
  Rng rng(31);
  auto kv_b = randomWeight(rng, mc.type, kH * (kDn + kDv), kR, 0.5f, mc.block_rows, mc.block_cols);
  const auto Wb = refDequant(kv_b.view);
  const int64_t blocks = kSeqs * kBlocksPerSeq + 3, L = kR + kDr;
  std::vector<float> data(blocks * kBlock * L, NAN);
  PagedLatentKV cache{data.data(), blocks, kBlock, kR, kDr};
  std::vector<int32_t> ids(blocks);
  for (int64_t i = 0; i < blocks; ++i) ids[i] = int32_t(i);
  std::shuffle(ids.begin(), ids.end(), rng.gen());
  std::vector<int32_t> table(ids.begin(), ids.begin() + kSeqs * kBlocksPerSeq);

  // Seq 0 has 9 cached tokens and decodes 1; seq 1 prefills 6 (crossing two block boundaries).
  std::vector<std::vector<float>> c_seq(kSeqs), r_seq(kSeqs);
  auto writeStep = [&](const std::vector<int32_t>& seqs, const std::vector<int32_t>& pos) {
    const int64_t T = seqs.size();
    auto c = rng.vec(T * kR), kr = rng.vec(T * kDr);
    BatchView b{T, pos.data(), seqs.data(), kSeqs, table.data(), kBlocksPerSeq};
    mlaKvWrite(cache, b, c.data(), kr.data());
    for (int64_t t = 0; t < T; ++t) {
      c_seq[seqs[t]].insert(c_seq[seqs[t]].end(), c.begin() + t * kR, c.begin() + (t + 1) * kR);
      r_seq[seqs[t]].insert(r_seq[seqs[t]].end(), kr.begin() + t * kDr, kr.begin() + (t + 1) * kDr);
    }
  };
  std::vector<int32_t> hs(9, 0), hp(9);
  for (int i = 0; i < 9; ++i) hp[i] = i;
  writeStep(hs, hp);
  std::vector<int32_t> seqs = {1, 1, 0, 1, 1, 1, 1}, pos = {0, 1, 9, 2, 3, 4, 5};
  writeStep(seqs, pos);
  const int64_t T = seqs.size();
  auto qn = rng.vec(T * kH * kDn), qr = rng.vec(T * kH * kDr);
  const float scale = 0.3f;
  std::vector<float> out(T * kH * kDv);
  BatchView b{T, pos.data(), seqs.data(), kSeqs, table.data(), kBlocksPerSeq};
  mlaAttention(cache, b, qn.data(), qr.data(), kv_b.view, kH, kDn, kDv, scale, out.data());

  // Reference: k_nope = W_uk c, v = W_uv c per position, then plain softmax attention.
  std::vector<double> want(T * kH * kDv, 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < kH; ++h) {
      const auto& C = c_seq[seqs[t]];
      const auto& KR = r_seq[seqs[t]];
      const double* wuk = Wb.data() + h * (kDn + kDv) * kR;
      const double* wuv = wuk + kDn * kR;
      const int64_t n = pos[t] + 1;
      std::vector<double> s(n);
      std::vector<std::vector<double>> v(n, std::vector<double>(kDv));
      for (int64_t j = 0; j < n; ++j) {
        double d = 0;
        for (int64_t a = 0; a < kDn; ++a) {
          double k = 0;
          for (int64_t r = 0; r < kR; ++r) k += wuk[a * kR + r] * C[j * kR + r];
          d += qn[(t * kH + h) * kDn + a] * k;
        }
        for (int64_t a = 0; a < kDr; ++a) d += double(qr[(t * kH + h) * kDr + a]) * KR[j * kDr + a];
        s[j] = d * scale;
        for (int64_t a = 0; a < kDv; ++a) {
          double x = 0;
          for (int64_t r = 0; r < kR; ++r) x += wuv[a * kR + r] * C[j * kR + r];
          v[j][a] = x;
        }
      }
      double mx = *std::max_element(s.begin(), s.end()), sum = 0;
      for (auto& x : s) sum += (x = std::exp(x - mx));
      for (int64_t j = 0; j < n; ++j)
        for (int64_t a = 0; a < kDv; ++a) want[(t * kH + h) * kDv + a] += s[j] / sum * v[j][a];
    }
  EXPECT_LT(maxRelErr(out, want), 1e-5) << mc.name;

  // The decode token of seq 0 alone gives bitwise the same row.
  int32_t s0 = 0, p0 = 9;
  BatchView one{1, &p0, &s0, kSeqs, table.data(), kBlocksPerSeq};
  std::vector<float> o1(kH * kDv);
  mlaAttention(cache, one, qn.data() + 2 * kH * kDn, qr.data() + 2 * kH * kDr, kv_b.view, kH, kDn,
               kDv, scale, o1.data());
  EXPECT_EQ(0, std::memcmp(o1.data(), out.data() + 2 * kH * kDv, kH * kDv * 4)) << mc.name;
}

// The chunked kernel is the per-(token, head) definition bit for bit: q_lat summed over d in
// order (multiply, add), scores (dot(q_lat, c) + dot(q_rope, k_rope)) * scale, softmaxInPlace,
// o_lat = sum p_j c_j in position order (multiply, add), out = dotTile(o_lat, W_uv). 20 prefill
// tokens make two chunks (16 + 4) across 5 cache blocks; a decode token of another sequence.
// Run on 1, 2 and 5 threads: the kernel groups the heads that share the latent reads by the
// thread count (all 3 heads in one item on 1 thread, one head per item on 5).
class MlaChunks : public ::testing::TestWithParam<int> {};

TEST_P(MlaChunks, ChunkedKernelIsThePerTokenDefinitionBitForBit) {
  const int saved = numThreads();
  setNumThreads(GetParam());
  Rng rng(33);
  auto kv_b = randomWeight(rng, WeightType::F32, kH * (kDn + kDv), kR, 0.5f);
  const auto* W = reinterpret_cast<const float*>(kv_b.bytes.data());
  const int64_t blocks = kSeqs * kBlocksPerSeq + 3, L = kR + kDr;
  std::vector<float> data(blocks * kBlock * L, NAN);
  PagedLatentKV cache{data.data(), blocks, kBlock, kR, kDr};
  std::vector<int32_t> table(kSeqs * kBlocksPerSeq);
  for (size_t i = 0; i < table.size(); ++i) table[i] = int32_t((i * 7) % blocks);
  std::vector<int32_t> seqs, pos;
  for (int i = 0; i < 5; ++i) seqs.push_back(0), pos.push_back(i);
  {
    auto c = rng.vec(5 * kR), kr = rng.vec(5 * kDr);
    BatchView b{5, pos.data(), seqs.data(), kSeqs, table.data(), kBlocksPerSeq};
    mlaKvWrite(cache, b, c.data(), kr.data());
  }
  seqs.clear(), pos.clear();
  for (int i = 0; i < 20; ++i) seqs.push_back(1), pos.push_back(i);
  seqs.push_back(0), pos.push_back(5);
  const int64_t T = seqs.size();
  auto c = rng.vec(T * kR), kr = rng.vec(T * kDr);
  BatchView b{T, pos.data(), seqs.data(), kSeqs, table.data(), kBlocksPerSeq};
  mlaKvWrite(cache, b, c.data(), kr.data());
  auto qn = rng.vec(T * kH * kDn), qr = rng.vec(T * kH * kDr);
  const float scale = 0.3f;
  std::vector<float> out(T * kH * kDv);
  mlaAttention(cache, b, qn.data(), qr.data(), kv_b.view, kH, kDn, kDv, scale, out.data());
  setNumThreads(saved);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < kH; ++h) {
      const float* wuk = W + h * (kDn + kDv) * kR;
      std::vector<float> q_lat(kR, 0.0f), o_lat(kR, 0.0f), want(kDv);
      for (int64_t d = 0; d < kDn; ++d)
        for (int64_t r = 0; r < kR; ++r) {
          const float m = qn[(t * kH + h) * kDn + d] * wuk[d * kR + r];
          q_lat[r] = q_lat[r] + m;
        }
      const int64_t n = pos[t] + 1;
      std::vector<float> sc(n);
      auto latent = [&](int64_t j) {
        const int64_t slot = int64_t(table[seqs[t] * kBlocksPerSeq + j / kBlock]) * kBlock + j % kBlock;
        return data.data() + slot * L;
      };
      for (int64_t j = 0; j < n; ++j)
        sc[j] = (detail::dot(q_lat.data(), latent(j), kR) + detail::dot(qr.data() + (t * kH + h) * kDr, latent(j) + kR, kDr)) *
                scale;
      detail::softmaxInPlace(sc.data(), n);
      for (int64_t j = 0; j < n; ++j)
        for (int64_t r = 0; r < kR; ++r) {
          const float m = sc[j] * latent(j)[r];
          o_lat[r] = o_lat[r] + m;
        }
      detail::dotTile(o_lat.data(), kR, 1, wuk + kDn * kR, kR, kDv, kR, want.data(), kDv);
      ASSERT_EQ(0, std::memcmp(want.data(), out.data() + (t * kH + h) * kDv, kDv * 4)) << "token " << t << " head " << h;
    }
}

INSTANTIATE_TEST_SUITE_P(Threads, MlaChunks, ::testing::Values(1, 2, 5));

INSTANTIATE_TEST_SUITE_P(KvB, MlaTest,
                         ::testing::Values(MlaCase{"f32", WeightType::F32, 0, 0},
                                           MlaCase{"bf16", WeightType::BF16, 0, 0},
                                           MlaCase{"fp8_block16", WeightType::F8E4M3, 16, 16}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace ds::cpu::test
