// The GQA attention softmax (MLA and the MoE router keep softmaxInPlace): the library's own exp and a 16-lane sum, so the exponentials
// run 16 at a time where AVX-512 runs and the result is the same bits on every machine (glibc's
// expf differs between versions and between its FMA and non-FMA builds).
//
// expDs(x) (Cephes' expf, with every step an explicit f32 multiply or add, no fused operations):
//   NaN -> NaN; x < -87.3 -> +0; x = min(x, 88.3762626647949);
//   n = nearest-even integer of x * log2(e); r = (x - n * 0.693359375) - n * -2.12194440e-4;
//   y = 1.9875691500e-4, then y = y * r + c for c = 1.3981999507e-3, 8.3334519073e-3,
//   4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1; y = ((y * (r * r)) + r) + 1;
//   result y * 2^n (2^n built from its exponent bits). Within 2 ulp of exp over [-87.3, 88.3].
// attentionSoftmax(s, n): m = max over the non-NaN s_j; e_j = expDs(s_j - m); sum = 16 lanes, lane l
//   adding e_j for j = l mod 16 in order over the first n - n mod 16 values, the lanes reduced as
//   reduce8(lanes 0..7) + reduce8(lanes 8..15), then the last n mod 16 values added in order;
//   s_j = e_j / sum.
#include <cmath>
#include <cstring>

#include "cpu/internal.h"

// GCC 12 flags the _mm512_undefined_* inside its own AVX-512 headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define DS_CPU_X86 1
#endif

namespace ds::cpu::detail {
namespace {

constexpr float kLow = -87.3f, kHigh = 88.3762626647949f, kLog2e = 1.44269504088896341f;
constexpr float kC1 = 0.693359375f, kC2 = -2.12194440e-4f;
constexpr float kP[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                         4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

void softmaxGeneric(float* s, int64_t n) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, s[j]);
  float lanes[16] = {};
  const int64_t n16 = n / 16 * 16;
  for (int64_t j = 0; j < n; ++j) s[j] = expDs(s[j] - mx);
  for (int64_t j = 0; j < n16; ++j) lanes[j % 16] += s[j];
  float sum = reduce8(lanes) + reduce8(lanes + 8);
  for (int64_t j = n16; j < n; ++j) sum += s[j];
  for (int64_t j = 0; j < n; ++j) s[j] /= sum;
}

#ifdef DS_CPU_X86
#define DS_AVX512 __attribute__((target("avx512f,avx512dq")))

DS_AVX512 __m512 exp16(__m512 in) {
  const __mmask16 nan = _mm512_cmp_ps_mask(in, in, _CMP_UNORD_Q);
  const __mmask16 low = _mm512_cmp_ps_mask(in, _mm512_set1_ps(kLow), _CMP_LT_OQ);
  const __m512 x = _mm512_min_ps(in, _mm512_set1_ps(kHigh));
  const __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(fx, _mm512_set1_ps(kC1)));
  r = _mm512_sub_ps(r, _mm512_mul_ps(fx, _mm512_set1_ps(kC2)));
  __m512 y = _mm512_set1_ps(kP[0]);
  for (int i = 1; i < 6; ++i) y = _mm512_add_ps(_mm512_mul_ps(y, r), _mm512_set1_ps(kP[i]));
  y = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(y, _mm512_mul_ps(r, r)), r), _mm512_set1_ps(1.0f));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
  y = _mm512_mul_ps(y, _mm512_castsi512_ps(e));
  y = _mm512_mask_mov_ps(y, low, _mm512_setzero_ps());
  return _mm512_mask_mov_ps(y, nan, in);
}

DS_AVX512 void softmaxAvx512(float* s, int64_t n) {
  const int64_t n16 = n / 16 * 16;
  // max: maxps returns its second operand when the first is NaN, so NaNs are skipped as in
  // std::max(mx, s_j); the order of the comparisons cannot change a maximum (a signed zero's sign
  // aside, which no exp below can see).
  __m512 m = _mm512_set1_ps(-INFINITY);
  for (int64_t j = 0; j < n16; j += 16) m = _mm512_max_ps(_mm512_loadu_ps(s + j), m);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, m);
  float mx = -INFINITY;
  for (float v : lanes) mx = std::max(mx, v);
  for (int64_t j = n16; j < n; ++j) mx = std::max(mx, s[j]);
  const __m512 mv = _mm512_set1_ps(mx);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t j = 0; j < n16; j += 16) {
    const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(s + j), mv));
    _mm512_storeu_ps(s + j, e);
    acc = _mm512_add_ps(acc, e);
  }
  for (int64_t j = n16; j < n; ++j) s[j] = expDs(s[j] - mx);
  _mm512_store_ps(lanes, acc);
  float sum = reduce8(lanes) + reduce8(lanes + 8);
  for (int64_t j = n16; j < n; ++j) sum += s[j];
  const __m512 sv = _mm512_set1_ps(sum);
  for (int64_t j = 0; j < n16; j += 16) _mm512_storeu_ps(s + j, _mm512_div_ps(_mm512_loadu_ps(s + j), sv));
  for (int64_t j = n16; j < n; ++j) s[j] /= sum;
}
#endif

}  // namespace

float expDs(float x) {
  if (std::isnan(x)) return x;
  if (x < kLow) return 0.0f;
  x = std::min(x, kHigh);
  const float fx = std::nearbyint(x * kLog2e);
  float r = x - fx * kC1;
  r = r - fx * kC2;
  float y = kP[0];
  for (int i = 1; i < 6; ++i) y = y * r + kP[i];
  y = ((y * (r * r)) + r) + 1.0f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(fx) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return y * scale;
}

void attentionSoftmax(float* scores, int64_t n, bool portable) {
#ifdef DS_CPU_X86
  static const bool wide = useAvx512();
  if (wide && !portable) return softmaxAvx512(scores, n);
#endif
  softmaxGeneric(scores, n);
}

}  // namespace ds::cpu::detail
