// Decode-time GEMV on f16/bf16/FP8 weights with the decode fused into the AVX2 dot tile (no panel).
#include <algorithm>

#include "cpu/internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define DS_CPU_X86 1
#endif

namespace ds::cpu::detail {

#ifdef DS_CPU_X86
namespace {

// Same value recipes as decodeAvx2 / the scalar decoders (all exact), applied in registers.
template <WeightType WT>
__attribute__((target("avx2,fma,f16c"))) inline __m256 decode8(const uint8_t* row, int64_t k) {
  if constexpr (WT == WeightType::F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k)));
  } else if constexpr (WT == WeightType::BF16) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  } else {
    int64_t raw;
    std::memcpy(&raw, row + k, 8);
    const __m256i m7f = _mm256_set1_epi32(0x7f);
    __m256i q = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(raw));
    __m256i em = _mm256_and_si256(q, m7f);
    __m256 normal =
        _mm256_castsi256_ps(_mm256_add_epi32(_mm256_slli_epi32(em, 20), _mm256_set1_epi32(120 << 23)));
    __m256 sub = _mm256_mul_ps(_mm256_cvtepi32_ps(em), _mm256_set1_ps(0x1p-9f));
    __m256 v = _mm256_blendv_ps(normal, sub, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(8), em)));
    v = _mm256_blendv_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fc00000)),
                         _mm256_castsi256_ps(_mm256_cmpeq_epi32(em, m7f)));
    __m256i sign = _mm256_slli_epi32(_mm256_srli_epi32(q, 7), 31);
    return _mm256_or_ps(v, _mm256_castsi256_ps(sign));
  }
}

// acc[(i * 4 + j) * 8 + lane] = lane sums over k < K8 of x_i * w_j, w_j decoded (and scaled by its
// block's scale, the same f32 product dequantRow makes) on the fly.
template <WeightType WT, bool kScaled, int TM, int TN>
__attribute__((target("avx2,fma,f16c"))) void fusedTile(const float* x, int64_t ldx,
                                                        const uint8_t* const* rows,
                                                        const float* const* scales, int64_t K8,
                                                        int64_t bc, float* acc) {
  __m256 a[TM][TN];
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < TN; ++j) a[i][j] = _mm256_setzero_ps();
  for (int64_t c0 = 0; c0 < K8; c0 += bc) {
    const int64_t c1 = std::min(K8, c0 + bc);
    __m256 s[TN];
    if constexpr (kScaled)
      for (int j = 0; j < TN; ++j) s[j] = _mm256_set1_ps(scales[j][c0 / bc]);
    for (int64_t k = c0; k < c1; k += 8) {
      __m256 wv[TN];
      for (int j = 0; j < TN; ++j) {
        wv[j] = decode8<WT>(rows[j], k);
        if constexpr (kScaled) wv[j] = _mm256_mul_ps(wv[j], s[j]);
      }
      for (int i = 0; i < TM; ++i) {
        __m256 xv = _mm256_loadu_ps(x + i * ldx + k);
        for (int j = 0; j < TN; ++j) a[i][j] = _mm256_fmadd_ps(xv, wv[j], a[i][j]);
      }
    }
  }
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < TN; ++j) _mm256_storeu_ps(acc + (i * 4 + j) * 8, a[i][j]);
}

using FusedFn = void (*)(const float*, int64_t, const uint8_t* const*, const float* const*,
                         int64_t, int64_t, float*);

template <WeightType WT, bool S>
FusedFn pick(int tm, int tn) {
  static const FusedFn table[2][4] = {
      {&fusedTile<WT, S, 1, 1>, &fusedTile<WT, S, 1, 2>, &fusedTile<WT, S, 1, 3>, &fusedTile<WT, S, 1, 4>},
      {&fusedTile<WT, S, 2, 1>, &fusedTile<WT, S, 2, 2>, &fusedTile<WT, S, 2, 3>, &fusedTile<WT, S, 2, 4>}};
  return table[tm - 1][tn - 1];
}

FusedFn pickFn(WeightType t, bool scaled, int tm, int tn) {
  switch (t) {
    case WeightType::F16: return pick<WeightType::F16, false>(tm, tn);
    case WeightType::BF16: return pick<WeightType::BF16, false>(tm, tn);
    case WeightType::F8E4M3:
      return scaled ? pick<WeightType::F8E4M3, true>(tm, tn) : pick<WeightType::F8E4M3, false>(tm, tn);
    case WeightType::F32: break;
  }
  return nullptr;
}

float decodeOne(WeightType t, const uint8_t* row, int64_t k) {
  uint16_t h;
  switch (t) {
    case WeightType::F16: std::memcpy(&h, row + 2 * k, 2); return f16ToF32(h);
    case WeightType::BF16: std::memcpy(&h, row + 2 * k, 2); return bf16ToF32(h);
    case WeightType::F8E4M3: return fp8e4m3ToF32(row[k]);
    case WeightType::F32: break;
  }
  return 0.0f;
}

}  // namespace
#endif

bool dotTileFused(const float* x, int64_t ldx, int64_t M, const WeightView& w, int64_t r0,
                  int64_t N, float* y, int64_t ldy) {
#ifdef DS_CPU_X86
  const bool scaled = w.block_scale != nullptr;
  if (!useAvx2() || M < 1 || M > 2 || w.type == WeightType::F32) return false;
  if (scaled && (w.type != WeightType::F8E4M3 || w.block_cols <= 0 || w.block_cols % 8 != 0))
    return false;
  const int64_t K = w.cols, K8 = K / 8 * 8;
  const int64_t esize = w.type == WeightType::F8E4M3 ? 1 : 2;
  const int64_t bc = scaled ? w.block_cols : std::max<int64_t>(K8, 8);
  const int64_t ncb = scaled ? (K + bc - 1) / bc : 0;
  const auto* base = static_cast<const uint8_t*>(w.data);
  alignas(32) float acc[2 * 4 * 8];
  for (int64_t j0 = 0; j0 < N; j0 += 4) {
    const int nj = static_cast<int>(std::min<int64_t>(4, N - j0));
    const uint8_t* rows[4];
    const float* srow[4] = {nullptr, nullptr, nullptr, nullptr};
    for (int j = 0; j < nj; ++j) {
      const int64_t r = r0 + j0 + j;
      rows[j] = base + r * K * esize;
      if (scaled) srow[j] = w.block_scale + (r / w.block_rows) * ncb;
    }
    pickFn(w.type, scaled, static_cast<int>(M), nj)(x, ldx, rows, srow, K8, bc, acc);
    for (int64_t i = 0; i < M; ++i)
      for (int j = 0; j < nj; ++j) {
        float s = reduce8(acc + (i * 4 + j) * 8);
        for (int64_t k = K8; k < K; ++k) {
          float v = decodeOne(w.type, rows[j], k);
          if (scaled) v *= srow[j][k / bc];
          s += x[i * ldx + k] * v;
        }
        y[i * ldy + j0 + j] = s;
      }
  }
  return true;
#else
  return false;
#endif
}

}  // namespace ds::cpu::detail
