// DeepSeek MLA over a paged latent cache (f32 or int8/FP8 with per-token scales): latent write and absorbed attention.
#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#include "cpu/internal.h"

namespace ds::cpu {
void mlaKvWrite(const PagedLatentKV& cache, const BatchView& batch, const float* c_kv,
                const float* k_rope) {
  const int64_t R = cache.rank, Dr = cache.rope_dim, L = R + Dr;
  const bool quant = cache.type != KVType::F32;
  detail::parallelFor(batch.num_tokens, quant ? 16 : 64, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t slot = detail::slotOf(batch, cache.block_size, batch.token_seq[t], batch.positions[t]);
      if (quant) {
        // The latent and the rope part differ in range, so each gets its own scale.
        uint8_t* q = cache.qdata + slot * L;
        cache.scales[slot * 2] = detail::quantizeVec(cache.type, c_kv + t * R, R, q);
        cache.scales[slot * 2 + 1] = detail::quantizeVec(cache.type, k_rope + t * Dr, Dr, q + R);
        continue;
      }
      std::memcpy(cache.data + slot * L, c_kv + t * R, R * sizeof(float));
      std::memcpy(cache.data + slot * L + R, k_rope + t * Dr, Dr * sizeof(float));
    }
  });
}

namespace {

// q_lat[t][r] = sum over d in order of q_nope[t][d] * w_uk[d][r] from zero, a multiply then an add
// (the scalar loop's bits; 16 r at a time where AVX-512 runs). Each w_uk row is read once for all
// the chunk's tokens.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx512f"))) void addScaledRow512(float* o, float s, const float* w, int64_t n) {
  const __m512 sv = _mm512_set1_ps(s);
  int64_t r = 0;
  for (; r + 16 <= n; r += 16)
    _mm512_storeu_ps(o + r, _mm512_add_ps(_mm512_loadu_ps(o + r), _mm512_mul_ps(sv, _mm512_loadu_ps(w + r))));
  for (; r < n; ++r) o[r] += s * w[r];
}
#endif
void addScaledRow(float* o, float s, const float* w, int64_t n) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool wide = detail::useAvx512();
  if (wide) return addScaledRow512(o, s, w, n);
#endif
  for (int64_t r = 0; r < n; ++r) o[r] += s * w[r];
}

}  // namespace

void mlaAttention(const PagedLatentKV& cache, const BatchView& batch, const float* q_nope,
                  const float* q_rope, const WeightView& kv_b, int64_t heads, int64_t nope_dim,
                  int64_t v_dim, float scale, float* out) {
  const int64_t R = cache.rank, Dr = cache.rope_dim, L = R + Dr, bs = cache.block_size;
  const int64_t Dn = nope_dim, Dv = v_dim;
  const bool quant = cache.type != KVType::F32;
  // Definition per (token, head), whatever else shares the batch: q_lat = W_uk^T q_nope (each
  // element summed over d in order, multiply then add), s_j = (dot(q_lat, c_j) + dot(q_rope,
  // k_rope_j)) * scale over positions [0, pos], softmaxInPlace, o_lat = sum_j p_j c_j in position
  // order (multiply then add), out = dotTile(o_lat, W_uv). Work item = (chunk of a sequence's
  // consecutive tokens, group of heads): the heads of a group share every latent read (the point
  // of MLA: one latent cache for all heads), the scores of all their rows come from dotTile over
  // each cache block (dot's order per element) and the weighted sums of a token's heads from
  // weightedSums; each head's kv_b slice is dequantized once per item.
  const std::vector<detail::SequenceChunk> chunks = detail::sequenceChunks(batch, 16);
  const int64_t nc = static_cast<int64_t>(chunks.size());
  int64_t most = 1;
  for (const detail::SequenceChunk& c : chunks) most = std::max<int64_t>(most, c.t1 - c.t0);
  // Up to 64 score rows per item, and groups small enough that every thread gets an item.
  int64_t G = std::clamp<int64_t>(64 / most, 1, heads);
  while (G > 1 && nc * ((heads + G - 1) / G) < numThreads()) G = (G + 1) / 2;
  const int64_t ng = (heads + G - 1) / G;
  detail::parallelFor(ng * nc, 1, [&](int64_t b, int64_t e) {
    std::vector<float> wbuf, q_lat, q_r, o_lat, s_lat, s_rope, lbuf;
    std::vector<const float*> lat, prow;
    std::vector<float*> orow;
    for (int64_t item = b; item < e; ++item) {
      const detail::SequenceChunk c = chunks[item % nc];
      const int64_t h0 = (item / nc) * G, hn = std::min(G, heads - h0);
      const int64_t tokens = c.t1 - c.t0, rows = hn * tokens, s = batch.token_seq[c.t0];
      const int64_t jhi = batch.positions[c.t1 - 1], n_all = jhi + 1;
      // Row g * tokens + i: head h0 + g, token c.t0 + i.
      q_lat.assign(rows * R, 0.0f);
      q_r.resize(rows * Dr);
      for (int64_t g = 0; g < hn; ++g) {
        const int64_t h = h0 + g;
        // q_lat = W_uk^T q_nope, so q_lat . c_kv = q_nope . (W_uk c_kv) = q_nope . k_nope.
        const float* w_uk = detail::rowsF32(kv_b, h * (Dn + Dv), Dn, wbuf);  // [Dn, R]
        for (int64_t d = 0; d < Dn; ++d)
          for (int64_t i = 0; i < tokens; ++i)
            addScaledRow(q_lat.data() + (g * tokens + i) * R, q_nope[((c.t0 + i) * heads + h) * Dn + d], w_uk + d * R, R);
        for (int64_t i = 0; i < tokens; ++i)
          std::memcpy(q_r.data() + (g * tokens + i) * Dr, q_rope + ((c.t0 + i) * heads + h) * Dr, Dr * sizeof(float));
      }
      // The latents of positions [0, jhi] (dequantized once where the cache is quantized).
      lat.resize(n_all);
      if (quant) lbuf.resize(n_all * L);
      for (int64_t j = 0; j < n_all; ++j) {
        const int64_t slot = detail::slotOf(batch, bs, s, j);
        lat[j] = cache.data + slot * L;
        if (quant) {
          mlaKvReadSlot(cache, slot, lbuf.data() + j * L, lbuf.data() + j * L + R);
          lat[j] = lbuf.data() + j * L;
        }
      }
      s_lat.resize(rows * n_all);
      s_rope.resize(rows * n_all);
      for (int64_t p0 = 0; p0 < n_all;) {
        // One cache block (consecutive slots, stride L), or one dequantized run.
        int64_t p1 = quant ? n_all : std::min(n_all, (p0 / bs + 1) * bs);
        detail::dotTile(q_lat.data(), R, rows, lat[p0], L, p1 - p0, R, s_lat.data() + p0, n_all);
        detail::dotTile(q_r.data(), Dr, rows, lat[p0] + R, L, p1 - p0, Dr, s_rope.data() + p0, n_all);
        p0 = p1;
      }
      o_lat.resize(rows * R);
      prow.resize(hn);
      orow.resize(hn);
      for (int64_t i = 0; i < tokens; ++i) {  // a token's heads share its positions
        const int64_t n = int64_t{batch.positions[c.t0 + i]} + 1;
        for (int64_t g = 0; g < hn; ++g) {
          const int64_t r = g * tokens + i;
          float* row = s_lat.data() + r * n_all;
          const float* rope = s_rope.data() + r * n_all;
          for (int64_t j = 0; j < n; ++j) row[j] = (row[j] + rope[j]) * scale;
          detail::softmaxInPlace(row, n);
          prow[g] = row;
          orow[g] = o_lat.data() + r * R;
        }
        detail::weightedSums(orow.data(), prow.data(), hn, lat.data(), n, R, /*fused=*/false);
      }
      // out = W_uv o_lat = sum_j p_j (W_uv c_kv_j) = sum_j p_j v_j.
      for (int64_t g = 0; g < hn; ++g) {
        const int64_t h = h0 + g;
        const float* w_uv = detail::rowsF32(kv_b, h * (Dn + Dv) + Dn, Dv, wbuf);  // [Dv, R]
        detail::dotTile(o_lat.data() + g * tokens * R, R, tokens, w_uv, R, Dv, R, out + (c.t0 * heads + h) * Dv,
                        heads * Dv);
      }
    }
  });
}

}  // namespace ds::cpu
