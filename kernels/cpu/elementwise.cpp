// Row-local kernels: embed, rmsNorm, add and swiglu.
#include <algorithm>
#include <cmath>

#include "cpu/internal.h"

namespace ds::cpu {

void embed(const int32_t* ids, int64_t T, const WeightView& w, float* y) {
  const int64_t H = w.cols;
  detail::parallelFor(T, 4, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) dequantRow(w, ids[t], y + t * H);
  });
}

void embedRange(const int32_t* ids, int64_t T, const WeightView& w, int64_t first_row, float* y) {
  const int64_t H = w.cols;
  detail::parallelFor(T, 4, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t local = int64_t{ids[t]} - first_row;
      if (local >= 0 && local < w.rows)
        dequantRow(w, local, y + t * H);
      else
        std::fill(y + t * H, y + (t + 1) * H, 0.0f);
    }
  });
}

void rmsNorm(const float* x, int64_t T, int64_t H, const WeightView& w, float eps, float* y) {
  std::vector<float> weight(H);
  dequantRow(w, 0, weight.data());
  detail::parallelFor(T, 8, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const float* xr = x + t * H;
      float* yr = y + t * H;
      // HF (Llama/DeepSeek RMSNorm): variance = mean(x^2) in f32, x * rsqrt(var + eps), then
      // weight * that. The sum runs in double so its order cannot matter at f32 precision.
      double ss = 0.0;
      for (int64_t i = 0; i < H; ++i) ss += static_cast<double>(xr[i]) * xr[i];
      const float var = static_cast<float>(ss / static_cast<double>(H));
      const float r = 1.0f / std::sqrt(var + eps);
      for (int64_t i = 0; i < H; ++i) yr[i] = weight[i] * (xr[i] * r);
    }
  });
}

void add(const float* a, const float* b, int64_t n, float* out) {
  detail::parallelFor(n, 1 << 16, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = a[i] + b[i];
  });
}

void swiglu(const float* gate, const float* up, int64_t n, float* out) {
  detail::parallelFor(n, 1 << 14, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const float g = gate[i];
      // torch silu: x * sigmoid(x) = x / (1 + exp(-x)).
      out[i] = (g / (1.0f + std::exp(-g))) * up[i];
    }
  });
}

}  // namespace ds::cpu
