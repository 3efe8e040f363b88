// Row-local kernels: embed, rmsNorm, add and swiglu.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

#include "cpu/internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define DS_ELEMENTWISE_X86 1
#endif

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

namespace {

// expPoly's constants (MLIR's math.exp polynomial approximation, from Cephes).
constexpr float kLog2e = 1.44269504088896341f, kC1 = -0.693359375f, kC2 = 2.12194440e-4f;
constexpr float kP0 = 1.9875691500E-4f, kP1 = 1.3981999507E-3f, kP2 = 8.3334519073E-3f,
                kP3 = 4.1665795894E-2f, kP4 = 1.6666665459E-1f, kP5 = 5.0000001201E-1f;

float siluUp(float g, float u) { return (g / (1.0f + detail::expPoly(-g))) * u; }

#ifdef DS_ELEMENTWISE_X86
// siluUp on 16 lanes: expPoly's operations one for one (vcmpps NLT/NGT_UQ are uge/ule,
// vroundps toward -inf is floor, vcvttps2dq is fptosi), so the same bits.
__attribute__((target("avx512f"))) void swigluAvx512(const float* gate, const float* up, int64_t n,
                                                      float* out) {
  const __m512 lo = _mm512_set1_ps(-87.8f), hi = _mm512_set1_ps(88.8f);
  const __m512 nlo = _mm512_set1_ps(-127.0f), nhi = _mm512_set1_ps(127.0f), one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i + 16 <= n; i += 16) {
    const __m512 g = _mm512_loadu_ps(gate + i);
    __m512 x = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(g), _mm512_set1_epi32(INT32_MIN)));  // -g
    x = _mm512_mask_mov_ps(lo, _mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ), x);
    x = _mm512_mask_mov_ps(hi, _mm512_cmp_ps_mask(x, hi, _CMP_NGT_UQ), x);
    __m512 k = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(kLog2e), _mm512_set1_ps(0.5f)),
                                    _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    k = _mm512_mask_mov_ps(nlo, _mm512_cmp_ps_mask(k, nlo, _CMP_NLT_UQ), k);
    k = _mm512_mask_mov_ps(nhi, _mm512_cmp_ps_mask(k, nhi, _CMP_NGT_UQ), k);
    x = _mm512_fmadd_ps(_mm512_set1_ps(kC1), k, x);
    x = _mm512_fmadd_ps(_mm512_set1_ps(kC2), k, x);
    __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(kP0), _mm512_set1_ps(kP1));
    z = _mm512_fmadd_ps(z, x, _mm512_set1_ps(kP2));
    z = _mm512_fmadd_ps(z, x, _mm512_set1_ps(kP3));
    z = _mm512_fmadd_ps(z, x, _mm512_set1_ps(kP4));
    z = _mm512_fmadd_ps(z, x, _mm512_set1_ps(kP5));
    z = _mm512_fmadd_ps(z, _mm512_mul_ps(x, x), x);
    z = _mm512_add_ps(z, one);
    const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(k), _mm512_set1_epi32(127)), 23);
    const __m512 ex = _mm512_mul_ps(z, _mm512_castsi512_ps(e));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, ex)), _mm512_loadu_ps(up + i)));
  }
}
#endif

}  // namespace

namespace detail {

float expPoly(float x) {
  // math.exp's expansion (mlir/lib/Dialect/Math/Transforms/PolynomialApproximation.cpp): clamp
  // to [-87.8, 88.8] (NaN passes), n = floor(x log2(e) + 1/2) clamped to [-127, 127],
  // r = x - n ln2 in two fma steps, a degree-6 polynomial in fma, times 2^n from the exponent
  // bits (0 for n = -127).
  x = (x >= -87.8f || x != x) ? x : -87.8f;
  x = (x <= 88.8f || x != x) ? x : 88.8f;
  float k = std::floor(std::fma(x, kLog2e, 0.5f));
  k = (k >= -127.0f || k != k) ? k : -127.0f;
  k = (k <= 127.0f || k != k) ? k : 127.0f;
  x = std::fma(kC1, k, x);
  x = std::fma(kC2, k, x);
  float z = std::fma(x, kP0, kP1);
  z = std::fma(z, x, kP2);
  z = std::fma(z, x, kP3);
  z = std::fma(z, x, kP4);
  z = std::fma(z, x, kP5);
  z = std::fma(z, x * x, x);
  z = z + 1.0f;
  const int32_t ki = k == k ? static_cast<int32_t>(k) : INT32_MIN;  // vcvttps2dq's NaN result
  const uint32_t bits = static_cast<uint32_t>(ki + 127) << 23;
  float p;
  std::memcpy(&p, &bits, 4);
  return z * p;
}

}  // namespace detail

void swiglu(const float* gate, const float* up, int64_t n, float* out) {
  detail::parallelFor(n, 1 << 14, [&](int64_t lo, int64_t hi) {
    int64_t i = lo;
#ifdef DS_ELEMENTWISE_X86
    if (detail::useAvx512()) {
      swigluAvx512(gate + lo, up + lo, hi - lo, out + lo);
      i = lo + (hi - lo) / 16 * 16;
    }
#endif
    // torch silu: x * sigmoid(x) = x / (1 + exp(-x)), exp as the generated kernels compute it.
    for (; i < hi; ++i) out[i] = siluUp(gate[i], up[i]);
  });
}

}  // namespace ds::cpu
