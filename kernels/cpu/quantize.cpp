// Weight quantizers (int8 per channel, int4 groups, FP8 per channel; round-to-nearest and scale search) and the per-vector KV cache quantizer.
#include "cpu/quantize.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>
#include <vector>

#include "cpu/internal.h"

// GCC 12 flags the _mm512_undefined_* inside its own AVX-512 headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DS_QUANT_AVX2 1
#include <immintrin.h>
#endif

namespace ds::cpu {
namespace {

float absMax(const float* x, int64_t n) {
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

// A zero (or underflowed) range would divide by zero: such vectors encode as q = 0 with scale 1.
float safeScale(float s) { return s > 0.0f && std::isfinite(s) ? s : 1.0f; }

// round-half-even(v) clamped to [lo, hi]; NaN goes to 0 (a float -> int cast of NaN is UB).
int roundClamp(float v, float lo, float hi) {
  float r = std::nearbyint(v);
  if (r != r) r = 0.0f;
  return static_cast<int>(std::min(std::max(r, lo), hi));
}

void quantI8(const float* x, int64_t n, float scale, int8_t* q) {
  for (int64_t i = 0; i < n; ++i) q[i] = static_cast<int8_t>(roundClamp(x[i] / scale, -127.0f, 127.0f));
}

void quantFp8(const float* x, int64_t n, float scale, uint8_t* q) {
  for (int64_t i = 0; i < n; ++i) q[i] = f32ToFp8E4M3(x[i] / scale);
}

}  // namespace

uint8_t f32ToFp8E4M3(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const float a = std::fabs(x);
  if (a != a) return sign | 0x7fu;
  if (a >= 448.0f) return sign | 0x7eu;  // saturate (448 = S.1111.110, the largest finite)
  // Subnormals are multiples of 2^-9; a rounding up to 8 * 2^-9 gives code 8 = the least normal.
  if (a < 0x1p-6f) return sign | static_cast<uint8_t>(std::nearbyint(a * 512.0f));
  // Round the 23-bit mantissa to 3 bits, half to even; a carry moves into the exponent.
  uint32_t u;
  std::memcpy(&u, &a, 4);
  u += 0x7ffffu + ((u >> 20) & 1u);
  const uint32_t code = (u >> 20) - (120u << 3);  // rebias 127 -> 7
  return sign | static_cast<uint8_t>(std::min<uint32_t>(code, 0x7eu));
}

bool quantizeInt8PerChannel(const float* w, int64_t rows, int64_t cols, int8_t* q, float* scales) {
  if (rows < 0 || cols < 0 || (rows * cols > 0 && (!w || !q || !scales))) return false;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w + r * cols;
    scales[r] = safeScale(absMax(row, cols) / 127.0f);
    quantI8(row, cols, scales[r], q + r * cols);
  }
  return true;
}

bool quantizeInt4Groups(const float* w, int64_t rows, int64_t cols, int64_t group_size,
                        bool asymmetric, uint8_t* packed, float* scales, float* zeros) {
  if (rows < 0 || cols < 0 || group_size < 1) return false;
  if (rows * cols > 0 && (!w || !packed || !scales || (asymmetric && !zeros))) return false;
  const int64_t G = int4Groups(cols, group_size), rb = weightRowBytes(WeightType::I4, cols);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* prow = packed + r * rb;
    std::fill(prow, prow + rb, uint8_t{0});
    for (int64_t g = 0; g < G; ++g) {
      const int64_t c0 = g * group_size, c1 = std::min(cols, c0 + group_size);
      const float* x = w + r * cols;
      float scale, zero = 0.0f;
      if (asymmetric) {
        float lo = 0.0f, hi = 0.0f;
        for (int64_t c = c0; c < c1; ++c) lo = std::min(lo, x[c]), hi = std::max(hi, x[c]);
        scale = safeScale((hi - lo) / 15.0f);
        zero = static_cast<float>(roundClamp(-lo / scale, 0.0f, 15.0f));
        zeros[r * G + g] = zero;
      } else {
        scale = safeScale(absMax(x + c0, c1 - c0) / 7.0f);
      }
      scales[r * G + g] = scale;
      for (int64_t c = c0; c < c1; ++c) {
        const int q = int4Code(x[c], scale, zero, asymmetric);
        prow[c / 2] |= static_cast<uint8_t>((q & 0xf) << (4 * (c & 1)));
      }
    }
  }
  return true;
}

int int4Code(float w, float scale, float zero, bool asymmetric) {
  // GPTQ order for the asymmetric code: round(w / scale) + zero, then clamp.
  if (asymmetric) return roundClamp(std::nearbyint(w / scale) + zero, 0.0f, 15.0f);
  return roundClamp(w / scale, -8.0f, 7.0f);
}

float fp8E4M3ToF32(uint8_t q) { return detail::fp8e4m3ToF32(q); }

bool quantizeFp8PerChannel(const float* w, int64_t rows, int64_t cols, uint8_t* q, float* scales) {
  if (rows < 0 || cols < 0 || (rows * cols > 0 && (!w || !q || !scales))) return false;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w + r * cols;
    scales[r] = safeScale(absMax(row, cols) / 448.0f);
    quantFp8(row, cols, scales[r], q + r * cols);
  }
  return true;
}

namespace {

// The search's error of one group for a scale / zero point: the codes as int4Code makes them
// but with x * (1 / scale) for x / scale (a division per candidate and element was half of a
// 1.5B w4g128 build; the two differ only where a quotient sits on a rounding boundary, and the
// chosen scale is then quantized with int4Code itself), summed in f32 in index order. The
// vector paths below compute exactly this, candidate per lane.
// [lo, hi] is the code range: [0, 15] asymmetric, [-8, 7] int4 / [-32, 31] int6 symmetric.
float int4GroupError(const float* x, int64_t n, float scale, float zero, bool asym, float lo, float hi) {
  const float inv = 1.0f / scale;
  float e = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    float r = std::nearbyint(x[i] * inv);
    if (asym) r = r + zero;
    if (r != r) r = 0.0f;
    r = std::min(std::max(r, lo), hi);
    const float d = asym ? (r - zero) * scale : r * scale;
    const float diff = x[i] - d;
    e = e + diff * diff;
  }
  return e;
}

#ifdef DS_QUANT_AVX2
// errs[c] = int4GroupError(x, n, s[c], z[c], asym) for c < m, bitwise: 8 candidates in the
// lanes, each lane accumulating in index order (no sum is reassociated).
__attribute__((target("avx2"))) void int4ErrorsAvx2(const float* x, int64_t n, const float* s,
                                                    const float* z, int m, bool asym, float qlo,
                                                    float qhi, float* errs) {
  const __m256 lo = _mm256_set1_ps(qlo), hi = _mm256_set1_ps(qhi);
  for (int c0 = 0; c0 < m; c0 += 8) {
    alignas(32) float sb[8], zb[8], ib[8];
    for (int k = 0; k < 8; ++k) {
      sb[k] = c0 + k < m ? s[c0 + k] : 1.0f;
      zb[k] = c0 + k < m ? z[c0 + k] : 0.0f;
      ib[k] = 1.0f / sb[k];
    }
    const __m256 S = _mm256_load_ps(sb), Z = _mm256_load_ps(zb), I = _mm256_load_ps(ib);
    __m256 a = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; ++i) {
      const __m256 xv = _mm256_set1_ps(x[i]);
      __m256 r = _mm256_round_ps(_mm256_mul_ps(xv, I), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      if (asym) r = _mm256_add_ps(r, Z);
      r = _mm256_and_ps(r, _mm256_cmp_ps(r, r, _CMP_ORD_Q));  // NaN -> 0
      r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
      const __m256 d = _mm256_sub_ps(xv, _mm256_mul_ps(asym ? _mm256_sub_ps(r, Z) : r, S));
      a = _mm256_add_ps(a, _mm256_mul_ps(d, d));
    }
    alignas(32) float eb[8];
    _mm256_store_ps(eb, a);
    for (int k = 0; k < 8 && c0 + k < m; ++k) errs[c0 + k] = eb[k];
  }
}

// The same with 16 candidates per vector.
__attribute__((target("avx512f,avx2"))) void int4ErrorsAvx512(const float* x, int64_t n,
                                                              const float* s, const float* z,
                                                              int m, bool asym, float qlo,
                                                              float qhi, float* errs) {
  const __m512 lo = _mm512_set1_ps(qlo), hi = _mm512_set1_ps(qhi);
  for (int c0 = 0; c0 < m; c0 += 16) {
    alignas(64) float sb[16], zb[16], ib[16];
    for (int k = 0; k < 16; ++k) {
      sb[k] = c0 + k < m ? s[c0 + k] : 1.0f;
      zb[k] = c0 + k < m ? z[c0 + k] : 0.0f;
      ib[k] = 1.0f / sb[k];
    }
    const __m512 S = _mm512_load_ps(sb), Z = _mm512_load_ps(zb), I = _mm512_load_ps(ib);
    __m512 a = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; ++i) {
      const __m512 xv = _mm512_set1_ps(x[i]);
      __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(xv, I), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      if (asym) r = _mm512_add_ps(r, Z);
      r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, r, _CMP_ORD_Q), r);  // NaN -> 0
      r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
      const __m512 d = _mm512_sub_ps(xv, _mm512_mul_ps(asym ? _mm512_sub_ps(r, Z) : r, S));
      a = _mm512_add_ps(a, _mm512_mul_ps(d, d));
    }
    alignas(64) float eb[16];
    _mm512_store_ps(eb, a);
    for (int k = 0; k < 16 && c0 + k < m; ++k) errs[c0 + k] = eb[k];
  }
}

// int4Code for columns [c0, c1) of row x in blocks of 16 (c0 even), packed into prow; returns
// the first column left for the scalar loop. Same operations as int4Code, so the same codes.
__attribute__((target("avx512f,avx2"))) int64_t int4CodesAvx512(const float* x, int64_t c0,
                                                                int64_t c1, float scale,
                                                                float zero, bool asym,
                                                                uint8_t* prow) {
  const __m512 S = _mm512_set1_ps(scale), Z = _mm512_set1_ps(zero);
  const __m512 lo = _mm512_set1_ps(asym ? 0.0f : -8.0f), hi = _mm512_set1_ps(asym ? 15.0f : 7.0f);
  int64_t c = c0;
  for (; c + 16 <= c1; c += 16) {
    __m512 r = _mm512_roundscale_ps(_mm512_div_ps(_mm512_loadu_ps(x + c), S),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (asym) r = _mm512_add_ps(r, Z);
    r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, r, _CMP_ORD_Q), r);  // NaN -> 0
    r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
    alignas(64) int32_t q[16];
    _mm512_store_si512(q, _mm512_cvtps_epi32(r));
    for (int k = 0; k < 16; k += 2)
      prow[(c + k) / 2] = static_cast<uint8_t>((q[k] & 0xf) | ((q[k + 1] & 0xf) << 4));
  }
  return c;
}

#endif

void int4Errors(const float* x, int64_t n, const float* s, const float* z, int m, bool asym,
                float* errs, float qlo, float qhi) {
#ifdef DS_QUANT_AVX2
  static const bool avx512 = detail::useAvx512();
  if (avx512) return int4ErrorsAvx512(x, n, s, z, m, asym, qlo, qhi, errs);
  if (detail::useAvx2()) return int4ErrorsAvx2(x, n, s, z, m, asym, qlo, qhi, errs);
#endif
  for (int c = 0; c < m; ++c) errs[c] = int4GroupError(x, n, s[c], asym ? z[c] : 0.0f, asym, qlo, qhi);
}

// Best symmetric scale of one group over the grid, for codes in [-(qmax + 1), qmax]: candidate 0
// is round to nearest (max|group| / qmax), then max|group| * (1 - k / shrink) / d, k = 0..16,
// d in {qmax, qmax + 1} (d = qmax + 1 lets a negative extreme take the lowest code). int4: qmax 7,
// shrink 32; int6: qmax 31, shrink 64 (its steps are finer, so the shrink grid is too). (A
// least-squares refit of each point, as llama.cpp does, lowered the int4 weight error slightly
// more but not the model's perplexity.) A later candidate wins only with a strictly smaller error.
// Every candidate is rounded to f16 precision where that is a normal f16 (roundScaleToF16): the
// error is measured with the scale actually stored.
float searchSym(const float* x, int64_t n, float qmax, float shrink) {
  constexpr int kM = 1 + 17 * 2;
  const float amax = absMax(x, n);
  float s[kM], z[kM] = {};
  float e[kM];
  s[0] = detail::roundScaleToF16(safeScale(amax / qmax));
  int m = 1;
  for (int k = 0; k <= 16; ++k)
    for (float d : {qmax, qmax + 1.0f})
      s[m++] = detail::roundScaleToF16(safeScale(amax * (1.0f - static_cast<float>(k) / shrink) / d));
  int4Errors(x, n, s, z, kM, false, e, -(qmax + 1.0f), qmax);
  int best = 0;
  for (int c = 1; c < kM; ++c)
    if (e[c] < e[best]) best = c;
  return s[best];
}

// Best asymmetric (scale, zero) of one group over shrunk [lo, hi] ranges (0 always inside).
std::pair<float, float> searchInt4Asym(const float* x, int64_t n) {
  constexpr int kM = 17 * 17;
  float lo0 = 0.0f, hi0 = 0.0f;
  for (int64_t i = 0; i < n; ++i) lo0 = std::min(lo0, x[i]), hi0 = std::max(hi0, x[i]);
  float s[kM], z[kM];
  float e[kM];
  int m = 0;
  for (int i = 0; i <= 16; ++i) {
    for (int j = 0; j <= 16; ++j, ++m) {
      const float lo = lo0 * (1.0f - static_cast<float>(i) / 32.0f);
      const float hi = hi0 * (1.0f - static_cast<float>(j) / 32.0f);
      s[m] = safeScale((hi - lo) / 15.0f);
      z[m] = static_cast<float>(roundClamp(-lo / s[m], 0.0f, 15.0f));
    }
  }
  int4Errors(x, n, s, z, kM, true, e, 0.0f, 15.0f);
  int best = 0;
  for (int c = 1; c < kM; ++c)
    if (e[c] < e[best]) best = c;
  return {s[best], z[best]};
}

double fp8RowError(const float* x, int64_t n, float scale) {
  double e = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double diff = double(x[i]) - double(detail::fp8e4m3ToF32(f32ToFp8E4M3(x[i] / scale)) * scale);
    e += diff * diff;
  }
  return e;
}

// Candidate multipliers of the absmax scale, factors[0] == 1 (ties keep round-to-nearest's
// scale). Weights: 2^(k / 64), k in [-8, 64]; KV cache writes (every step): 2^(k / 16), k in
// [-2, 16].
const std::vector<float>& weightFp8Factors() {
  static const std::vector<float> f = [] {
    std::vector<float> v{1.0f};
    for (int k = -8; k <= 64; ++k)
      if (k != 0) v.push_back(static_cast<float>(std::exp2(k / 64.0)));
    return v;
  }();
  return f;
}
const std::vector<float>& kvFp8Factors() {
  static const std::vector<float> f = [] {
    std::vector<float> v{1.0f};
    for (int k = -2; k <= 16; ++k)
      if (k != 0) v.push_back(std::exp2(static_cast<float>(k) / 16.0f));
    return v;
  }();
  return f;
}

// The scale absmax / 448 * factors[k] with the least squared FP8 error over x.
float bestFp8Scale(const float* x, int64_t n, const std::vector<float>& factors) {
  const float base = safeScale(absMax(x, n) / 448.0f);
  float best = base;
  double bestErr = fp8RowError(x, n, base);
  for (size_t k = 1; k < factors.size(); ++k) {
    const float s = safeScale(base * factors[k]);
    const double e = fp8RowError(x, n, s);
    if (e < bestErr) bestErr = e, best = s;
  }
  return best;
}

// The searched group quantizers' walk: argument checks, then each row (its code bytes zeroed)
// and each group [c0, c1) of it in order; group(x, c0, c1, i, prow) codes row x's group into
// prow and stores its scale (and zero) at index i = r * G + g.
template <class F>
bool forEachGroup(const float* w, int64_t rows, int64_t cols, int64_t group_size, WeightType type,
                  uint8_t* packed, bool outputs, F&& group) {
  if (rows < 0 || cols < 0 || group_size < 1) return false;
  if (rows * cols > 0 && (!w || !packed || !outputs)) return false;
  const int64_t G = int4Groups(cols, group_size), rb = weightRowBytes(type, cols);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* prow = packed + r * rb;
    std::fill(prow, prow + rb, uint8_t{0});
    for (int64_t g = 0; g < G; ++g)
      group(w + r * cols, g * group_size, std::min(cols, (g + 1) * group_size), r * G + g, prow);
  }
  return true;
}

}  // namespace

bool quantizeInt4GroupsSearch(const float* w, int64_t rows, int64_t cols, int64_t group_size,
                              bool asymmetric, uint8_t* packed, float* scales, float* zeros) {
  const bool outputs = scales && (!asymmetric || zeros);
  return forEachGroup(w, rows, cols, group_size, WeightType::I4, packed, outputs,
                      [&](const float* x, int64_t c0, int64_t c1, int64_t i, uint8_t* prow) {
      float scale, zero = 0.0f;
      if (asymmetric) {
        std::tie(scale, zero) = searchInt4Asym(x + c0, c1 - c0);
        zeros[i] = zero;
      } else {
        scale = searchSym(x + c0, c1 - c0, 7.0f, 32.0f);
      }
      scales[i] = scale;
      int64_t c = c0;
#ifdef DS_QUANT_AVX2
      if (detail::useAvx512() && c0 % 2 == 0) c = int4CodesAvx512(x, c0, c1, scale, zero, asymmetric, prow);
#endif
      for (; c < c1; ++c) {
        const int q = int4Code(x[c], scale, zero, asymmetric);
        prow[c / 2] |= static_cast<uint8_t>((q & 0xf) << (4 * (c & 1)));
      }
    });
}

int int6Code(float w, float scale) { return roundClamp(w / scale, -32.0f, 31.0f); }

float groupScaleAsStored(float s) { return detail::roundScaleToF16(s); }

bool quantizeInt6GroupsSearch(const float* w, int64_t rows, int64_t cols, int64_t group_size,
                              uint8_t* packed, float* scales) {
  return forEachGroup(w, rows, cols, group_size, WeightType::I6, packed, scales != nullptr,
                      [&](const float* x, int64_t c0, int64_t c1, int64_t i, uint8_t* prow) {
    const float scale = searchSym(x + c0, c1 - c0, 31.0f, 64.0f);
    scales[i] = scale;
    for (int64_t c = c0; c < c1; ++c) detail::i6Store(prow, c, int6Code(x[c], scale));
  });
}

bool quantizeFp8PerChannelSearch(const float* w, int64_t rows, int64_t cols, uint8_t* q,
                                 float* scales) {
  if (rows < 0 || cols < 0 || (rows * cols > 0 && (!w || !q || !scales))) return false;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w + r * cols;
    scales[r] = bestFp8Scale(row, cols, weightFp8Factors());
    quantFp8(row, cols, scales[r], q + r * cols);
  }
  return true;
}

int64_t int8Bytes(int64_t rows, int64_t cols) { return rows * cols; }
int64_t int4Bytes(int64_t rows, int64_t cols) { return rows * weightRowBytes(WeightType::I4, cols); }
int64_t int6Bytes(int64_t rows, int64_t cols) { return rows * weightRowBytes(WeightType::I6, cols); }
int64_t fp8Bytes(int64_t rows, int64_t cols) { return rows * cols; }
int64_t int4Groups(int64_t cols, int64_t group_size) {
  return group_size > 0 ? (cols + group_size - 1) / group_size : 0;
}
int64_t int4ScaleCount(int64_t rows, int64_t cols, int64_t group_size) {
  return rows * int4Groups(cols, group_size);
}

namespace detail {

float quantizeVec(KVType type, const float* x, int64_t n, uint8_t* q) {
  if (type == KVType::I8) {
    const float s = safeScale(absMax(x, n) / 127.0f);
    quantI8(x, n, s, reinterpret_cast<int8_t*>(q));
    return s;
  }
  // FP8 is non-uniform: the scale with the least squared error beats absmax / 448. A coarser grid
  // than the weights' since this runs at every write.
  const float s = bestFp8Scale(x, n, kvFp8Factors());
  quantFp8(x, n, s, q);
  return s;
}

void dequantVec(KVType type, const uint8_t* q, int64_t n, float scale, float* out) {
  decodeSpan(type == KVType::I8 ? WeightType::I8 : WeightType::F8E4M3, q, n, out);
  for (int64_t i = 0; i < n; ++i) out[i] *= scale;
}

void dequantVecs(KVType type, const uint8_t* q, int64_t count, int64_t n, const float* scales, float* out) {
#ifdef DS_QUANT_AVX2
  static const bool wide = useAvx512();
#endif
  for (int64_t v = 0; v < count; ++v, q += n, out += n) {
    int64_t i = 0;
#ifdef DS_QUANT_AVX2
    if (wide) i = dequantScaledAvx512(type, q, n, scales[v], out);
#endif
    if (i < n) dequantVec(type, q + i, n - i, scales[v], out + i);
  }
}

}  // namespace detail
}  // namespace ds::cpu
