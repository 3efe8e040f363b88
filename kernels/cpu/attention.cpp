// Paged KV cache write (f32 or per-head-scaled int8/FP8) and causal GQA attention over a ragged batch.
#include <algorithm>
#include <array>
#include <utility>
#include <cmath>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#include "cpu/internal.h"

namespace ds::cpu {
namespace detail {
void softmaxInPlace(float* scores, int64_t n) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, scores[j]);
  float sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    scores[j] = std::exp(scores[j] - mx);
    sum += scores[j];
  }
  for (int64_t j = 0; j < n; ++j) scores[j] /= sum;
}
}  // namespace detail

namespace {

// Quantized caches: each (slot, head) vector gets its own absmax scale.
void kvWriteQuantized(const PagedKV& c, const BatchView& batch, const float* k, const float* v) {
  const int64_t H = c.kv_heads, D = c.head_dim, Dv = c.v_dim;
  detail::parallelFor(batch.num_tokens, 16, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t slot = detail::slotOf(batch, c.block_size, batch.token_seq[t], batch.positions[t]);
      for (int64_t h = 0; h < H; ++h) {
        const int64_t i = kvIndex(c, slot, h);
        c.k_scale[i] = detail::quantizeVec(c.type, k + (t * H + h) * D, D, c.kq + i * D);
        c.v_scale[i] = detail::quantizeVec(c.type, v + (t * H + h) * Dv, Dv, c.vq + i * Dv);
      }
    }
  });
}

}  // namespace

void kvWrite(const PagedKV& cache, const BatchView& batch, const float* k, const float* v) {
  if (cache.type != KVType::F32) return kvWriteQuantized(cache, batch, k, v);
  const int64_t H = cache.kv_heads, D = cache.head_dim, Dv = cache.v_dim;
  detail::parallelFor(batch.num_tokens, 64, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t slot = detail::slotOf(batch, cache.block_size, batch.token_seq[t], batch.positions[t]);
      for (int64_t h = 0; h < H; ++h) {
        const int64_t i = kvIndex(cache, slot, h);
        std::memcpy(cache.k + i * D, k + (t * H + h) * D, D * sizeof(float));
        std::memcpy(cache.v + i * Dv, v + (t * H + h) * Dv, Dv * sizeof(float));
      }
    }
  });
}

namespace {

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// R rows' weighted sums over the same n value rows, output columns [d0, d0 + 16 C): each value
// vector is loaded once for all R rows (a GQA group's query heads, an MLA token's heads), so the
// value rows stream through once per 16 C columns instead of once per row. Per output element the
// terms are added in j order from zero, one FMA (or a product then a sum) each: the same chain
// as one row at a time. Rows [j0, j1) of the n: a chain paused in o (f32) resumes exactly, so
// the caller can walk the value rows in blocks and read each from memory once for all columns.
// The first column pass over a block fetches whole value rows kPvAhead on into L2 (16, 32 and 64
// measured alike; into L1 a chunk at a time, as before, 20% slower at 2,048 positions).
constexpr int64_t kPvAhead = 32;
template <int R, int C, bool FUSED>
__attribute__((target("avx512f,fma"))) void pvRows(float* const* o, const float* const* p,
                                                   const float* const* v, int64_t n, int64_t j0,
                                                   int64_t j1, int64_t d0, int64_t pf_lines) {
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = j0 == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(o[r] + d0 + 16 * c);
  for (int64_t j = j0; j < j1; ++j) {
    __m512 vj[C];
    // The rows come from cache blocks anywhere in memory: fetch a few rows ahead by address.
    if (j + kPvAhead < n)
      for (int64_t l = 0; l < pf_lines; ++l) _mm_prefetch(reinterpret_cast<const char*>(v[j + kPvAhead] + 16 * l), _MM_HINT_T1);
    for (int c = 0; c < C; ++c) vj[c] = _mm512_loadu_ps(v[j] + d0 + 16 * c);
    for (int r = 0; r < R; ++r) {
      const __m512 pj = _mm512_set1_ps(p[r][j]);
      for (int c = 0; c < C; ++c)
        acc[r][c] = FUSED ? _mm512_fmadd_ps(pj, vj[c], acc[r][c]) : _mm512_add_ps(acc[r][c], _mm512_mul_ps(pj, vj[c]));
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(o[r] + d0 + 16 * c, acc[r][c]);
}

using PvFn = void (*)(float* const*, const float* const*, const float* const*, int64_t, int64_t,
                     int64_t, int64_t, int64_t);
// Value rows per block: 128 x 512 bytes (head_dim 128) stay in L2 while every column chunk of
// every group of rows passes over them, so each value row comes from memory once (32, 64, 128 and
// 512 measured alike; unblocked, the second 64 columns were read in a second sweep).
constexpr int64_t kPvBlock = 128;
// Up to 6 rows x 8 chunks of 16 columns, at most 24 accumulators used at once (+ the value
// vectors and a broadcast within the 32 registers).
constexpr int kPvRows = 6, kPvChunks = 8, kPvAccumulators = 24;
template <bool FUSED, int... I>
constexpr std::array<PvFn, sizeof...(I)> pvTable(std::integer_sequence<int, I...>) {
  return {&pvRows<I / kPvChunks + 1, I % kPvChunks + 1, FUSED>...};
}
#endif

}  // namespace

namespace detail {
void weightedSums(float* const* o, const float* const* p, int64_t R, const float* const* v, int64_t n,
                  int64_t Dv, bool fused) {
  int64_t d0 = 0;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool wide = detail::useAvx512();
  static constexpr auto seq = std::make_integer_sequence<int, kPvRows * kPvChunks>{};
  static constexpr auto fma_table = pvTable<true>(seq), mul_add_table = pvTable<false>(seq);
  if (wide) {
    const auto& table = fused ? fma_table : mul_add_table;
    // Rows in ceil(R / 6) groups of near-equal size (8 rows: 4 + 4, not 6 + 2).
    const int64_t groups = (R + kPvRows - 1) / kPvRows;
    for (int64_t j0 = 0; j0 < n; j0 += kPvBlock)
      for (int64_t t = 0, r0 = 0, nr = 0; t < groups; ++t, r0 += nr) {
        nr = R / groups + (t < R % groups ? 1 : 0);
        const int64_t chunks = std::min<int64_t>(kPvChunks, kPvAccumulators / nr);
        for (int64_t d = 0; d + 16 <= Dv; d += 16 * chunks)
          table[(nr - 1) * kPvChunks + std::min<int64_t>(chunks, (Dv - d) / 16) - 1](
              o + r0, p + r0, v, n, j0, std::min(n, j0 + kPvBlock), d, r0 == 0 && d == 0 ? (Dv + 15) / 16 : 0);
      }
    d0 = Dv / 16 * 16;
  }
#endif
  for (int64_t r = 0; r < R && d0 < Dv; ++r) {  // columns the vector tiles left (none when Dv % 16 == 0)
    std::fill(o[r] + d0, o[r] + Dv, 0.0f);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t d = d0; d < Dv; ++d) o[r][d] = fused ? std::fma(p[r][j], v[j][d], o[r][d]) : o[r][d] + p[r][j] * v[j][d];
  }
}

std::vector<SequenceChunk> sequenceChunks(const BatchView& batch, int64_t max_tokens) {
  std::vector<SequenceChunk> chunks;
  for (int64_t t = 0; t < batch.num_tokens;) {
    int64_t e = t + 1;
    while (e < batch.num_tokens && e - t < max_tokens && batch.token_seq[e] == batch.token_seq[t] &&
           batch.positions[e] == batch.positions[e - 1] + 1)
      ++e;
    chunks.push_back({t, e});
    t = e;
  }
  // Longest key ranges first: the threads claim the heavy items early (a causal prefill's last
  // chunks attend the most positions) and the light ones even out the end.
  std::stable_sort(chunks.begin(), chunks.end(), [&](const SequenceChunk& a, const SequenceChunk& b) {
    return batch.positions[a.t1 - 1] > batch.positions[b.t1 - 1];
  });
  return chunks;
}
}  // namespace detail

// Measured best at two blocks (R1-1.5B, 2,048 positions, 2 threads: 8.7-10.0 -> 7.6-8.6 ms per
// step of the 28 layers' attention; one block ahead about as good, four no better). Since
// 2026-12-08 the block's lines are requested a few per k step of the score tiles (dotTile's
// `ahead`) instead of 128 at once: with the whole-K tiles and the value blocking and prefetch,
// 0.66-0.74x the previous kernel's time cold (28 layers' f32 caches), 0.80-0.85x hot.
constexpr int64_t kKeyBlocksAhead = 2;

void attention(const PagedKV& cache, const BatchView& batch, const float* q, int64_t q_heads,
               float scale, int64_t sliding_window, float* out) {
  const int64_t Hkv = cache.kv_heads, D = cache.head_dim, Dv = cache.v_dim, bs = cache.block_size;
  const int64_t group = q_heads / Hkv;
  // Definition, per (token, head) and whatever else shares the batch: s_j = dot(q, k_j) * scale
  // (dot's fixed order) over the token's own positions [lo, pos], attentionSoftmax, then
  // o = sum_j p_j v_j in position order from zero (a fused multiply-add per element). The rows of
  // a chunk (its tokens x the kv head's query heads) share the key and value reads: the scores
  // come from dotTile over each cache block (each element reduced in dot's order; a row's extra
  // scores past its own position are computed and ignored), and each row's weighted sum keeps its
  // outputs in registers over its positions. A quantized vector is dequantized first (the values
  // kvReadSlot returns).
  const bool quant = cache.type != KVType::F32;
  const std::vector<detail::SequenceChunk> chunks =
      detail::sequenceChunks(batch, std::clamp<int64_t>(48 / std::max<int64_t>(1, group), 1, 16));
  const int64_t items = static_cast<int64_t>(chunks.size()) * Hkv;
  detail::parallelFor(items, 1, [&](int64_t b, int64_t e) {
    std::vector<float> qrows, scores, kbuf, vbuf;
    std::vector<const float*> vrows, prows;
    std::vector<float*> orows;
    std::vector<int64_t> lo_of, hi_of;
    for (int64_t item = b; item < e; ++item) {
      const detail::SequenceChunk c = chunks[item / Hkv];
      const int64_t kvh = item % Hkv, tokens = c.t1 - c.t0, R = tokens * group;
      const int64_t s = batch.token_seq[c.t0];
      auto lowest = [&](int64_t pos) {
        return sliding_window > 0 ? std::max<int64_t>(0, pos - sliding_window + 1) : int64_t{0};
      };
      const int64_t jlo = lowest(batch.positions[c.t0]), jhi = batch.positions[c.t1 - 1];
      const int64_t L = jhi - jlo + 1;
      qrows.resize(R * D);
      lo_of.resize(R);
      hi_of.resize(R);
      for (int64_t i = 0; i < tokens; ++i) {
        const int64_t t = c.t0 + i;
        std::memcpy(qrows.data() + i * group * D, q + (t * q_heads + kvh * group) * D, group * D * sizeof(float));
        for (int64_t g = 0; g < group; ++g) {
          lo_of[i * group + g] = lowest(batch.positions[t]) - jlo;
          hi_of[i * group + g] = batch.positions[t] - jlo;
        }
      }
      scores.resize(R * L);
      for (int64_t p0 = jlo; p0 <= jhi;) {
        const int64_t p1 = std::min(jhi + 1, (p0 / bs + 1) * bs);  // one cache block
        const int64_t slot0 = detail::slotOf(batch, bs, s, p0), n = p1 - p0;
        const float* keys = cache.k + kvIndex(cache, slot0, kvh) * D;
        if (quant) {  // a block's slots are consecutive: one run of codes and scales
          kbuf.resize(n * D);
          const int64_t i = kvIndex(cache, slot0, kvh);
          detail::dequantVecs(cache.type, cache.kq + i * D, n, D, cache.k_scale + i, kbuf.data());
          keys = kbuf.data();
        }
        // The keys of the block kKeyBlocksAhead on into L2 while this one's tiles run: a
        // sequence's blocks lie anywhere in the cache, so the hardware cannot run ahead across them.
        const void* next = nullptr;
        if (const int64_t pa = p1 + (kKeyBlocksAhead - 1) * bs; pa <= jhi) {
          const int64_t ia = kvIndex(cache, detail::slotOf(batch, bs, s, pa / bs * bs), kvh);
          next = quant ? static_cast<const void*>(cache.kq + ia * D) : cache.k + ia * D;
        }
        detail::dotTile(qrows.data(), D, R, keys, D, n, D, scores.data() + (p0 - jlo), L, next,
                        next ? bs * D * (quant ? 1 : int64_t{sizeof(float)}) : 0);
        p0 = p1;
      }
      vrows.resize(L);
      if (quant) vbuf.resize(L * Dv);
      for (int64_t j = 0; j < L;) {  // a run of consecutive slots to the block's end at a time
        const int64_t i = kvIndex(cache, detail::slotOf(batch, bs, s, jlo + j), kvh);
        const int64_t run = std::min(L - j, bs - (jlo + j) % bs);
        if (quant) detail::dequantVecs(cache.type, cache.vq + i * Dv, run, Dv, cache.v_scale + i, vbuf.data() + j * Dv);
        for (int64_t u = 0; u < run; ++u, ++j) vrows[j] = quant ? vbuf.data() + j * Dv : cache.v + (i + u) * Dv;
      }
      orows.resize(group);
      prows.resize(group);
      for (int64_t i = 0; i < tokens; ++i) {  // a token's query heads share its positions
        const int64_t lo = lo_of[i * group], n = hi_of[i * group] - lo + 1;
        for (int64_t g = 0; g < group; ++g) {
          float* row = scores.data() + (i * group + g) * L + lo;
          for (int64_t j = 0; j < n; ++j) row[j] *= scale;
          detail::attentionSoftmax(row, n);
          prows[g] = row;
          orows[g] = out + ((c.t0 + i) * q_heads + kvh * group + g) * Dv;
        }
        detail::weightedSums(orows.data(), prows.data(), group, vrows.data() + lo, n, Dv, /*fused=*/true);
      }
    }
  });
}

}  // namespace ds::cpu
