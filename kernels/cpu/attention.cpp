// Paged KV cache write (f32 or per-head-scaled int8/FP8) and causal GQA attention over a ragged batch.
#include <cmath>

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
        const int64_t i = slot * H + h;
        c.k_scale[i] = detail::quantizeVec(c.type, k + (t * H + h) * D, D, c.kq + i * D);
        c.v_scale[i] = detail::quantizeVec(c.type, v + (t * H + h) * Dv, Dv, c.vq + i * Dv);
      }
    }
  });
}

}  // namespace

void kvWrite(const PagedKV& cache, const BatchView& batch, const float* k, const float* v) {
  if (cache.type != KVType::F32) return kvWriteQuantized(cache, batch, k, v);
  const int64_t kw = cache.kv_heads * cache.head_dim, vw = cache.kv_heads * cache.v_dim;
  detail::parallelFor(batch.num_tokens, 64, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t slot = detail::slotOf(batch, cache.block_size, batch.token_seq[t], batch.positions[t]);
      std::memcpy(cache.k + slot * kw, k + t * kw, kw * sizeof(float));
      std::memcpy(cache.v + slot * vw, v + t * vw, vw * sizeof(float));
    }
  });
}

void attention(const PagedKV& cache, const BatchView& batch, const float* q, int64_t q_heads,
               float scale, int64_t sliding_window, float* out) {
  const int64_t T = batch.num_tokens, Hkv = cache.kv_heads, D = cache.head_dim, Dv = cache.v_dim;
  const int64_t group = q_heads / Hkv;
  // Each (token, head) reads only its own sequence's positions in position order, so its result
  // is the same whatever else shares the batch.
  const bool quant = cache.type != KVType::F32;
  detail::parallelFor(T * q_heads, 1, [&](int64_t b, int64_t e) {
    std::vector<float> scores, kbuf(quant ? D : 0), vbuf(quant ? Dv : 0);
    // A quantized vector is dequantized into a scratch row, so the arithmetic that follows is the
    // f32 path's on the values kvReadSlot returns.
    auto keyAt = [&](int64_t slot, int64_t kvh) -> const float* {
      const int64_t i = slot * Hkv + kvh;
      if (!quant) return cache.k + i * D;
      detail::dequantVec(cache.type, cache.kq + i * D, D, cache.k_scale[i], kbuf.data());
      return kbuf.data();
    };
    auto valueAt = [&](int64_t slot, int64_t kvh) -> const float* {
      const int64_t i = slot * Hkv + kvh;
      if (!quant) return cache.v + i * Dv;
      detail::dequantVec(cache.type, cache.vq + i * Dv, Dv, cache.v_scale[i], vbuf.data());
      return vbuf.data();
    };
    for (int64_t item = b; item < e; ++item) {
      const int64_t t = item / q_heads, h = item % q_heads, kvh = h / group;
      const int64_t s = batch.token_seq[t], pos = batch.positions[t];
      const int64_t lo = sliding_window > 0 ? std::max<int64_t>(0, pos - sliding_window + 1) : 0;
      const int64_t n = pos - lo + 1;
      scores.resize(n);
      const float* qv = q + (t * q_heads + h) * D;
      for (int64_t j = 0; j < n; ++j) {
        const int64_t slot = detail::slotOf(batch, cache.block_size, s, lo + j);
        scores[j] = detail::dot(qv, keyAt(slot, kvh), D) * scale;
      }
      detail::softmaxInPlace(scores.data(), n);
      float* o = out + (t * q_heads + h) * Dv;
      std::fill(o, o + Dv, 0.0f);
      for (int64_t j = 0; j < n; ++j) {
        const int64_t slot = detail::slotOf(batch, cache.block_size, s, lo + j);
        const float* vv = valueAt(slot, kvh);
        const float p = scores[j];
        for (int64_t d = 0; d < Dv; ++d) o[d] += p * vv[d];
      }
    }
  });
}

}  // namespace ds::cpu
