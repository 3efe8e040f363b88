// Paged GQA attention on a ragged batch (prefill + decode, shuffled blocks, sliding window) vs a
// reference that rebuilds each sequence's contiguous K/V from positions; plus batch invariance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/cpu_kernels.h"
#include "cpu/internal.h"
#include "reference.h"

namespace ds::cpu::test {
namespace {

constexpr int64_t kBlock = 8, kBlocksPerSeq = 8, kSeqs = 3;
constexpr int64_t kHq = 6, kHkv = 2, kD = 20, kDv = 20;  // 16 lanes + a tail

// Three sequences whose history the test writes step by step through kvWrite.
struct World {
  std::vector<float> kc, vc;
  PagedKV cache;
  std::vector<int32_t> table;
  // Contiguous per-sequence K/V by position, what the reference attends over.
  std::vector<std::vector<float>> seq_k, seq_v;

  explicit World(Rng& rng) {
    const int64_t blocks = kSeqs * kBlocksPerSeq + 5;
    kc.assign(blocks * kBlock * kHkv * kD, NAN);  // unwritten slots poison wrong reads
    vc.assign(blocks * kBlock * kHkv * kDv, NAN);
    cache = {kc.data(), vc.data(), blocks, kBlock, kHkv, kD, kDv};
    std::vector<int32_t> ids(blocks);
    for (int64_t i = 0; i < blocks; ++i) ids[i] = static_cast<int32_t>(i);
    std::shuffle(ids.begin(), ids.end(), rng.gen());
    table.assign(ids.begin(), ids.begin() + kSeqs * kBlocksPerSeq);
    seq_k.resize(kSeqs);
    seq_v.resize(kSeqs);
  }

  // Appends tokens (seq, pos) with random k/v through kvWrite; positions must be the next ones.
  void write(Rng& rng, const std::vector<int32_t>& seqs, const std::vector<int32_t>& pos) {
    const int64_t T = seqs.size();
    auto k = rng.vec(T * kHkv * kD), v = rng.vec(T * kHkv * kDv);
    BatchView b{T, pos.data(), seqs.data(), kSeqs, table.data(), kBlocksPerSeq};
    kvWrite(cache, b, k.data(), v.data());
    for (int64_t t = 0; t < T; ++t) {
      auto& sk = seq_k[seqs[t]];
      auto& sv = seq_v[seqs[t]];
      ASSERT_EQ(int64_t(sk.size()), pos[t] * kHkv * kD);
      sk.insert(sk.end(), k.begin() + t * kHkv * kD, k.begin() + (t + 1) * kHkv * kD);
      sv.insert(sv.end(), v.begin() + t * kHkv * kDv, v.begin() + (t + 1) * kHkv * kDv);
    }
  }
};

std::vector<double> refAttention(const World& w, const std::vector<int32_t>& seqs,
                                 const std::vector<int32_t>& pos, const std::vector<float>& q,
                                 float scale, int64_t window) {
  const int64_t T = seqs.size();
  std::vector<double> out(T * kHq * kDv, 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < kHq; ++h) {
      const int64_t kvh = h / (kHq / kHkv);
      const auto& K = w.seq_k[seqs[t]];
      const auto& V = w.seq_v[seqs[t]];
      std::vector<double> s;
      std::vector<int64_t> used;
      for (int64_t j = 0; j <= pos[t]; ++j) {
        if (window > 0 && pos[t] - j >= window) continue;
        double d = 0;
        for (int64_t c = 0; c < kD; ++c)
          d += double(q[(t * kHq + h) * kD + c]) * K[(j * kHkv + kvh) * kD + c];
        s.push_back(d * scale);
        used.push_back(j);
      }
      double mx = *std::max_element(s.begin(), s.end()), sum = 0;
      for (auto& x : s) sum += (x = std::exp(x - mx));
      for (size_t i = 0; i < s.size(); ++i)
        for (int64_t c = 0; c < kDv; ++c)
          out[(t * kHq + h) * kDv + c] += s[i] / sum * V[(used[i] * kHkv + kvh) * kDv + c];
    }
  return out;
}

class PagedAttention : public ::testing::TestWithParam<int64_t> {};

TEST_P(PagedAttention, RaggedPrefillAndDecodeMatchReference) {
  const int64_t window = GetParam();
  Rng rng(21);
  World w(rng);
  // History: seq 1 has 37 tokens (crosses 4 block boundaries), seq 2 has 14.
  std::vector<int32_t> s1(37, 1), p1(37), s2(14, 2), p2(14);
  for (int i = 0; i < 37; ++i) p1[i] = i;
  for (int i = 0; i < 14; ++i) p2[i] = i;
  w.write(rng, s1, p1);
  w.write(rng, s2, p2);
  // This step: seq 0 prefills 5 tokens, seq 1 decodes one, seq 2 prefills a chunk of 4
  // (crossing a block boundary at 16), tokens interleaved across sequences.
  std::vector<int32_t> seqs = {2, 0, 0, 1, 2, 0, 2, 0, 0, 2};
  std::vector<int32_t> pos = {14, 0, 1, 37, 15, 2, 16, 3, 4, 17};
  w.write(rng, seqs, pos);
  const int64_t T = seqs.size();
  auto q = rng.vec(T * kHq * kD);
  const float scale = 1.0f / std::sqrt(float(kD));
  std::vector<float> out(T * kHq * kDv);
  BatchView b{T, pos.data(), seqs.data(), kSeqs, w.table.data(), kBlocksPerSeq};
  attention(w.cache, b, q.data(), kHq, scale, window, out.data());
  EXPECT_LT(maxRelErr(out, refAttention(w, seqs, pos, q, scale, window)), 1e-5);

  // Batch invariance: each sequence's tokens alone give bitwise the same rows.
  for (int32_t s = 0; s < kSeqs; ++s) {
    std::vector<int32_t> ss, sp;
    std::vector<float> sq;
    std::vector<int64_t> rows;
    for (int64_t t = 0; t < T; ++t)
      if (seqs[t] == s) {
        ss.push_back(s);
        sp.push_back(pos[t]);
        sq.insert(sq.end(), q.begin() + t * kHq * kD, q.begin() + (t + 1) * kHq * kD);
        rows.push_back(t);
      }
    BatchView sb{int64_t(ss.size()), sp.data(), ss.data(), kSeqs, w.table.data(), kBlocksPerSeq};
    std::vector<float> so(ss.size() * kHq * kDv);
    attention(w.cache, sb, sq.data(), kHq, scale, window, so.data());
    for (size_t i = 0; i < rows.size(); ++i)
      EXPECT_EQ(0, std::memcmp(so.data() + i * kHq * kDv, out.data() + rows[i] * kHq * kDv,
                               kHq * kDv * 4))
          << "seq " << s << " token " << i;
  }
}

// The per-(token, head) definition the chunked kernel keeps bit for bit: dot's order for each
// score, times scale, attentionSoftmax (its scalar definition) over the token's own window, then
// o = fma(p_j, v_j, o) in position order from zero.
std::vector<float> definition(const World& w, const std::vector<int32_t>& seqs, const std::vector<int32_t>& pos,
                              const std::vector<float>& q, float scale, int64_t window) {
  const int64_t T = seqs.size();
  std::vector<float> out(T * kHq * kDv, 0.0f);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < kHq; ++h) {
      const int64_t kvh = h / (kHq / kHkv), lo = window > 0 ? std::max<int64_t>(0, pos[t] - window + 1) : 0;
      std::vector<float> s;
      for (int64_t j = lo; j <= pos[t]; ++j)
        s.push_back(detail::dot(q.data() + (t * kHq + h) * kD, w.seq_k[seqs[t]].data() + (j * kHkv + kvh) * kD, kD) *
                    scale);
      detail::attentionSoftmax(s.data(), s.size(), /*portable=*/true);
      float* o = out.data() + (t * kHq + h) * kDv;
      for (size_t i = 0; i < s.size(); ++i)
        for (int64_t c = 0; c < kDv; ++c) {
          o[c] = std::fma(s[i], w.seq_v[seqs[t]][((lo + i) * kHkv + kvh) * kDv + c], o[c]);
        }
    }
  return out;
}

TEST_P(PagedAttention, ChunkedKernelIsThePerTokenDefinitionBitForBit) {
  const int64_t window = GetParam();
  Rng rng(23);
  World w(rng);
  std::vector<int32_t> s1(21, 1), p1(21);
  for (int i = 0; i < 21; ++i) p1[i] = i;
  w.write(rng, s1, p1);
  // seq 0 prefills 40 tokens (chunks of 16, 16 and 8 query tokens, 5 cache blocks), seq 1 decodes
  // one, seq 2 prefills 3; tokens of seq 2 split by a decode (two chunks).
  std::vector<int32_t> seqs, pos;
  for (int i = 0; i < 40; ++i) seqs.push_back(0), pos.push_back(i);
  seqs.insert(seqs.end(), {2, 2, 1, 2});
  pos.insert(pos.end(), {0, 1, 21, 2});
  w.write(rng, seqs, pos);
  const int64_t T = seqs.size();
  auto q = rng.vec(T * kHq * kD);
  const float scale = 0.37f;
  std::vector<float> out(T * kHq * kDv);
  BatchView b{T, pos.data(), seqs.data(), kSeqs, w.table.data(), kBlocksPerSeq};
  attention(w.cache, b, q.data(), kHq, scale, window, out.data());
  const std::vector<float> want = definition(w, seqs, pos, q, scale, window);
  for (int64_t i = 0; i < T * kHq * kDv; ++i)
    ASSERT_EQ(0, std::memcmp(&out[i], &want[i], 4)) << "token " << i / (kHq * kDv) << " element " << i % (kHq * kDv);
}

INSTANTIATE_TEST_SUITE_P(Window, PagedAttention, ::testing::Values(0, 1, 5, 16));

// weightedSums (several rows over the same value rows, the value vectors read once per 64-128
// columns for up to 6 rows, in blocks of value rows whose sums pause in the output) gives each row
// the scalar chain's bits: fused (GQA) and mul + add (MLA), row counts across the 6-row groups,
// widths across the 16-column chunks and tails, value counts across the blocks.
TEST(WeightedSums, EachRowIsTheScalarChainBitForBit) {
  Rng rng(31);
  for (bool fused : {true, false})
    for (int64_t R : {1, 2, 3, 4, 5, 6, 7, 12, 13})
      for (int64_t Dv : {16, 20, 64, 100, 128, 512})
        for (int64_t n : {1, 9, 37, 300}) {
          auto values = rng.vec(n * Dv), probs = rng.vec(R * n, 0.0f, 1.0f);
          std::vector<const float*> v(n), p(R);
          std::vector<float*> o(R);
          std::vector<float> out(R * Dv, NAN);
          for (int64_t j = 0; j < n; ++j) v[j] = values.data() + (n - 1 - j) * Dv;  // any addresses
          for (int64_t r = 0; r < R; ++r) p[r] = probs.data() + r * n, o[r] = out.data() + r * Dv;
          detail::weightedSums(o.data(), p.data(), R, v.data(), n, Dv, fused);
          for (int64_t r = 0; r < R; ++r)
            for (int64_t d = 0; d < Dv; ++d) {
              float want = 0.0f;
              for (int64_t j = 0; j < n; ++j)
                want = fused ? std::fma(p[r][j], v[j][d], want) : want + p[r][j] * v[j][d];
              ASSERT_EQ(0, std::memcmp(&want, &out[r * Dv + d], 4))
                  << "fused " << fused << " R " << R << " Dv " << Dv << " n " << n << " row " << r << " col " << d;
            }
        }
}

// dotTile (AVX-512: whole-K register tiles of up to 6 rows x 8 w rows with the 8 lane trees
// reduced together, else up to 6 rows x 4 pairs of w rows over a partial-sum buffer, an odd w
// row on the AVX2 tiles) is dot's order for every element, whatever M, N and K (past one K
// block too), with y rows longer than N (attention writes a block's scores into a wider row).
TEST(DotTile, EveryElementIsDotBitForBit) {
  Rng rng(37);
  for (int64_t M : {1, 2, 4, 5, 6, 7, 12, 13, 70})
    for (int64_t N : {1, 2, 7, 8, 9, 16, 17, 24, 31})
      for (int64_t K : {8, 20, 128, 4104}) {
        if (K > 128 && M > 7) continue;
        const int64_t ldy = N + 3;
        auto x = rng.vec(M * K), w = rng.vec(N * K);
        std::vector<float> y(M * ldy, NAN);
        detail::dotTile(x.data(), K, M, w.data(), K, N, K, y.data(), ldy);
        for (int64_t i = 0; i < M; ++i) {
          for (int64_t j = 0; j < N; ++j) {
            const float want = detail::dot(x.data() + i * K, w.data() + j * K, K);
            ASSERT_EQ(0, std::memcmp(&want, &y[i * ldy + j], 4)) << "M " << M << " N " << N << " K " << K << " (" << i << ", " << j << ")";
          }
          for (int64_t j = N; j < ldy; ++j) ASSERT_TRUE(std::isnan(y[i * ldy + j])) << "wrote past N";
        }
        // With memory to fetch ahead (the keys of a later block): the same bits.
        std::vector<float> y2(M * ldy, NAN);
        detail::dotTile(x.data(), K, M, w.data(), K, N, K, y2.data(), ldy, x.data(), M * K * 4 + 3);
        ASSERT_EQ(0, std::memcmp(y.data(), y2.data(), y.size() * 4)) << "M " << M << " N " << N << " K " << K;
      }
}

TEST(PagedAttentionWrite, KvWriteLandsInTheBlockOfEachPosition) {
  Rng rng(5);
  World w(rng);
  std::vector<int32_t> seqs = {0, 2, 0}, pos = {0, 0, 1};
  w.write(rng, seqs, pos);
  // Position 1 of sequence 0 sits at offset 1 of the block the table names for block 0, each kv
  // head's vector in that head's region (head-major: head h's slots from h * slots).
  const int64_t slot = int64_t(w.table[0]) * kBlock + 1, slots = w.cache.num_blocks * kBlock;
  for (int64_t h = 0; h < kHkv; ++h) {
    EXPECT_EQ(kvIndex(w.cache, slot, h), h * slots + slot);
    for (int64_t c = 0; c < kD; ++c) EXPECT_EQ(w.kc[(h * slots + slot) * kD + c], w.seq_k[0][(kHkv + h) * kD + c]);
    for (int64_t c = 0; c < kDv; ++c) EXPECT_EQ(w.vc[(h * slots + slot) * kDv + c], w.seq_v[0][(kHkv + h) * kDv + c]);
  }
  // kvReadSlot gathers the heads back into [kv_heads, dim].
  std::vector<float> k(kHkv * kD), v(kHkv * kDv);
  kvReadSlot(w.cache, slot, k.data(), v.data());
  EXPECT_EQ(0, std::memcmp(k.data(), w.seq_k[0].data() + kHkv * kD, k.size() * 4));
  EXPECT_EQ(0, std::memcmp(v.data(), w.seq_v[0].data() + kHkv * kDv, v.size() * 4));
}

}  // namespace
}  // namespace ds::cpu::test
