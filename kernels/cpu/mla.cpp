// DeepSeek MLA over a paged latent cache (f32 or int8/FP8 with per-token scales): latent write and absorbed attention.
#include <cmath>

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

void mlaAttention(const PagedLatentKV& cache, const BatchView& batch, const float* q_nope,
                  const float* q_rope, const WeightView& kv_b, int64_t heads, int64_t nope_dim,
                  int64_t v_dim, float scale, float* out) {
  const int64_t T = batch.num_tokens, R = cache.rank, Dr = cache.rope_dim, L = R + Dr;
  const int64_t Dn = nope_dim, Dv = v_dim;
  const bool quant = cache.type != KVType::F32;
  // Work item = (head, chunk of tokens): the head's kv_b slice is dequantized once per item and
  // each token's result depends only on its own sequence.
  const int64_t chunk = 16, chunks = (T + chunk - 1) / chunk;
  detail::parallelFor(heads * chunks, 1, [&](int64_t b, int64_t e) {
    std::vector<float> wbuf, q_lat(R), o_lat(R), scores, lbuf(quant ? L : 0);
    // A quantized slot is dequantized into lbuf (the values mlaKvReadSlot returns).
    auto latAt = [&](int64_t slot) -> const float* {
      if (!quant) return cache.data + slot * L;
      mlaKvReadSlot(cache, slot, lbuf.data(), lbuf.data() + R);
      return lbuf.data();
    };
    for (int64_t item = b; item < e; ++item) {
      const int64_t h = item / chunks, t0 = (item % chunks) * chunk;
      const int64_t t1 = std::min(T, t0 + chunk);
      const float* w = detail::rowsF32(kv_b, h * (Dn + Dv), Dn + Dv, wbuf);
      const float* w_uk = w;            // [Dn, R]
      const float* w_uv = w + Dn * R;   // [Dv, R]
      for (int64_t t = t0; t < t1; ++t) {
        const float* qn = q_nope + (t * heads + h) * Dn;
        const float* qr = q_rope + (t * heads + h) * Dr;
        // q_lat = W_uk^T q_nope, so q_lat . c_kv = q_nope . (W_uk c_kv) = q_nope . k_nope.
        std::fill(q_lat.begin(), q_lat.end(), 0.0f);
        for (int64_t d = 0; d < Dn; ++d) {
          const float qd = qn[d];
          const float* wr = w_uk + d * R;
          for (int64_t r = 0; r < R; ++r) q_lat[r] += qd * wr[r];
        }
        const int64_t s = batch.token_seq[t], n = int64_t{batch.positions[t]} + 1;
        scores.resize(n);
        for (int64_t j = 0; j < n; ++j) {
          const float* lat = latAt(detail::slotOf(batch, cache.block_size, s, j));
          scores[j] = (detail::dot(q_lat.data(), lat, R) + detail::dot(qr, lat + R, Dr)) * scale;
        }
        detail::softmaxInPlace(scores.data(), n);
        std::fill(o_lat.begin(), o_lat.end(), 0.0f);
        for (int64_t j = 0; j < n; ++j) {
          const float* lat = latAt(detail::slotOf(batch, cache.block_size, s, j));
          const float p = scores[j];
          for (int64_t r = 0; r < R; ++r) o_lat[r] += p * lat[r];
        }
        // out = W_uv o_lat = sum_j p_j (W_uv c_kv_j) = sum_j p_j v_j.
        float* o = out + (t * heads + h) * Dv;
        detail::dotTile(o_lat.data(), R, 1, w_uv, R, Dv, R, o, Dv);
      }
    }
  });
}

}  // namespace ds::cpu
