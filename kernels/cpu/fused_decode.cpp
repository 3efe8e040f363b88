// Decode-time GEMV with the weight decode (f16/bf16/FP8/int8/int4 + scales) fused into the AVX2 dot tile (no panel).
#include <algorithm>

#include "cpu/internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define DS_CPU_X86 1
#endif

namespace ds::cpu::detail {

#ifdef DS_CPU_X86
namespace {

// Same value recipes as decodeAvx2 / decodeI4Avx2 / the scalar decoders (all exact), in registers.
// I4 codes are two's complement unless the mode carries a zero point (asymmetric: unsigned).
// p: the stored chunk of 8 columns.
template <WeightType WT, int MODE>
__attribute__((target("avx2,fma,f16c"))) inline __m256 decode8(const uint8_t* p) {
  if constexpr (WT == WeightType::F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  } else if constexpr (WT == WeightType::BF16) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  } else if constexpr (WT == WeightType::I8) {
    int64_t raw;
    std::memcpy(&raw, p, 8);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(raw)));
  } else if constexpr (WT == WeightType::I4) {
    int32_t raw;
    std::memcpy(&raw, p, 4);
    __m256i q = _mm256_and_si256(
        _mm256_srlv_epi32(_mm256_set1_epi32(raw), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
        _mm256_set1_epi32(0xf));
    if constexpr (MODE != kZeroScaled) {
      const __m256i eight = _mm256_set1_epi32(8);
      q = _mm256_sub_epi32(_mm256_xor_si256(q, eight), eight);
    }
    return _mm256_cvtepi32_ps(q);
  } else {
    // e4m3 -> f16 bits (sign to bit 15, exponent+mantissa to bits 7..13): the f16 value is the
    // FP8 value times 2^-8 for normals and subnormals alike, so an exact multiply by 256 restores
    // it. NaN codes (S.1111.111) become f16 NaN (0xffff).
    const __m128i q = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    const __m128i em = _mm_and_si128(q, _mm_set1_epi16(0x7f));
    __m128i h = _mm_or_si128(_mm_slli_epi16(em, 7), _mm_and_si128(_mm_slli_epi16(q, 8), _mm_set1_epi16(-32768)));
    h = _mm_or_si128(h, _mm_cmpeq_epi16(em, _mm_set1_epi16(0x7f)));
    // Scaled: the 256 is folded into the scale (fp8 * s and (fp8 / 256) * (256 s) are the same
    // real product, so the same f32 after one rounding).
    if constexpr (MODE == kScaled) return _mm256_cvtph_ps(h);
    return _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(256.0f));
  }
}

// acc[(i * 4 + j) * 8 + lane] = lane sums over k < K8 of x_i * w_j, w_j decoded and scaled per
// bc-wide block of its row (block, channel or group scale: the same f32 product dequantRow makes).
// Chunk k / 8 of row j starts at rows[j] + (k / 8) * stride (either weight layout).
template <WeightType WT, int MODE, int TM, int TN>
__attribute__((target("avx2,fma,f16c"))) void fusedTile(const float* x, int64_t ldx,
                                                        const uint8_t* const* rows, int64_t stride,
                                                        const float* const* scales,
                                                        const float* const* zeros, int64_t K8,
                                                        int64_t bc, float* acc) {
  __m256 a[TM][TN];
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < TN; ++j) a[i][j] = _mm256_setzero_ps();
  for (int64_t c0 = 0; c0 < K8; c0 += bc) {
    const int64_t c1 = std::min(K8, c0 + bc);
    __m256 s[TN], z[TN];
    constexpr float kFold = WT == WeightType::F8E4M3 ? 256.0f : 1.0f;  // see decode8
    if constexpr (MODE != kRaw)
      for (int j = 0; j < TN; ++j) s[j] = _mm256_set1_ps(scales[j][c0 / bc] * kFold);
    if constexpr (MODE == kZeroScaled)
      for (int j = 0; j < TN; ++j) z[j] = _mm256_set1_ps(zeros[j][c0 / bc]);
    for (int64_t k = c0; k < c1; k += 8) {
      __m256 wv[TN];
      for (int j = 0; j < TN; ++j) {
        wv[j] = decode8<WT, MODE>(rows[j] + (k >> 3) * stride);
        if constexpr (MODE == kZeroScaled) wv[j] = _mm256_sub_ps(wv[j], z[j]);
        if constexpr (MODE != kRaw) wv[j] = _mm256_mul_ps(wv[j], s[j]);
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

using FusedFn = void (*)(const float*, int64_t, const uint8_t* const*, int64_t,
                         const float* const*, const float* const*, int64_t, int64_t, float*);

template <WeightType WT, int M>
FusedFn pick(int tm, int tn) {
  static const FusedFn table[2][4] = {
      {&fusedTile<WT, M, 1, 1>, &fusedTile<WT, M, 1, 2>, &fusedTile<WT, M, 1, 3>, &fusedTile<WT, M, 1, 4>},
      {&fusedTile<WT, M, 2, 1>, &fusedTile<WT, M, 2, 2>, &fusedTile<WT, M, 2, 3>, &fusedTile<WT, M, 2, 4>}};
  return table[tm - 1][tn - 1];
}

template <WeightType WT>
FusedFn pickScaled(int mode, int tm, int tn) {
  return mode == kScaled ? pick<WT, kScaled>(tm, tn) : pick<WT, kRaw>(tm, tn);
}

FusedFn pickFn(WeightType t, int mode, int tm, int tn) {
  switch (t) {
    case WeightType::F16: return pickScaled<WeightType::F16>(mode, tm, tn);
    case WeightType::BF16: return pickScaled<WeightType::BF16>(mode, tm, tn);
    case WeightType::F8E4M3: return pickScaled<WeightType::F8E4M3>(mode, tm, tn);
    case WeightType::I8: return pickScaled<WeightType::I8>(mode, tm, tn);
    case WeightType::I4:
      return mode == kZeroScaled ? pick<WeightType::I4, kZeroScaled>(tm, tn)
                                 : pick<WeightType::I4, kScaled>(tm, tn);
    case WeightType::F32:
    case WeightType::I6: break;  // scaleLayout refuses I6: dequantRows + dotTile
  }
  return nullptr;
}

float decodeOne(WeightType t, const uint8_t* row, int64_t k, bool is_signed) {
  uint16_t h;
  switch (t) {
    case WeightType::F16: std::memcpy(&h, row + 2 * k, 2); return f16ToF32(h);
    case WeightType::BF16: std::memcpy(&h, row + 2 * k, 2); return bf16ToF32(h);
    case WeightType::F8E4M3: return fp8e4m3ToF32(row[k]);
    case WeightType::I8: return static_cast<float>(static_cast<int8_t>(row[k]));
    case WeightType::I4: return i4ToF32(row, k, is_signed);
    case WeightType::F32:
    case WeightType::I6: break;  // scaleLayout refuses I6: dequantRows + dotTile
  }
  return 0.0f;
}

}  // namespace

bool scaleLayout(const WeightView& w, ScaleLayout& L) {
  const int64_t K = w.cols, K8 = K / 8 * 8;
  const int kinds = (w.block_scale != nullptr) + (w.channel_scale != nullptr) +
                    (w.group_scale != nullptr || w.group_zero != nullptr);
  if (kinds > 1) return false;
  if (w.type == WeightType::I4) {
    // Symmetric int4 without a scale is not an encoding anything produces: leave it to the panel.
    if (!w.group_scale || w.group_size <= 0 || w.group_size % 8 != 0) return false;
    L.mode = w.group_zero ? kZeroScaled : kScaled;
    L.scale = w.group_scale;
    L.zero = w.group_zero;
    L.stride = (K + w.group_size - 1) / w.group_size;
    L.bc = w.group_size;
  } else if (w.group_scale || w.group_zero) {
    return false;
  } else if (w.block_scale) {
    if (w.block_cols <= 0 || w.block_cols % 8 != 0) return false;
    L.mode = kScaled;
    L.scale = w.block_scale;
    L.rows_per = w.block_rows > 0 ? w.block_rows : w.rows;
    L.stride = (K + w.block_cols - 1) / w.block_cols;
    L.bc = w.block_cols;
  } else if (w.channel_scale) {
    // One scale block spanning the whole row.
    L.mode = kScaled;
    L.scale = w.channel_scale;
    L.stride = 1;
    L.bc = std::max<int64_t>(K, 8);
  } else {
    L.bc = std::max<int64_t>(K8, 8);
  }
  return true;
}

#endif

bool dotTileFused(const float* x, int64_t ldx, int64_t M, const WeightView& w, int64_t r0,
                  int64_t N, float* y, int64_t ldy) {
#ifdef DS_CPU_X86
  if (!useAvx2() || M < 1 || M > 2 || w.type == WeightType::F32 || w.int8_act || w.bf16_act) return false;
  ScaleLayout L;
  if (!scaleLayout(w, L)) return false;
  if (w.packed == kPackRows && useAvx512() && r0 % kPackRows == 0 && N % kPackRows == 0) {
    fusedPackedAvx512(x, ldx, M, w, L, r0, N, y, ldy);
    return true;
  }
  const int64_t K = w.cols, K8 = K / 8 * 8, rb = weightRowBytes(w.type, K);
  // Chunks of 8 columns follow each other in a row-major row; a packed group interleaves them.
  const int64_t cb = weightRowBytes(w.type, 8), P = w.packed;
  const int64_t stride = P ? P * cb : cb;
  const bool is_signed = L.mode != kZeroScaled;
  const auto* base = static_cast<const uint8_t*>(w.data);
  alignas(32) float acc[2 * 4 * 8];
  for (int64_t j0 = 0; j0 < N; j0 += 4) {
    const int nj = static_cast<int>(std::min<int64_t>(4, N - j0));
    const uint8_t* rows[4];
    const float* srow[4] = {nullptr, nullptr, nullptr, nullptr};
    const float* zrow[4] = {nullptr, nullptr, nullptr, nullptr};
    for (int j = 0; j < nj; ++j) {
      const int64_t r = r0 + j0 + j;
      rows[j] = P ? base + (r / P) * P * rb + (r % P) * cb : base + r * rb;
      if (L.scale) srow[j] = L.scale + (r / L.rows_per) * L.stride;
      if (L.zero) zrow[j] = L.zero + (r / L.rows_per) * L.stride;
    }
    pickFn(w.type, L.mode, static_cast<int>(M), nj)(x, ldx, rows, stride, srow, zrow, K8, L.bc, acc);
    for (int64_t i = 0; i < M; ++i)
      for (int j = 0; j < nj; ++j) {
        float s = reduce8(acc + (i * 4 + j) * 8);
        for (int64_t k = K8; k < K; ++k) {
          float v = decodeOne(w.type, rows[j], k, is_signed);
          if (L.mode == kZeroScaled) v = v - zrow[j][k / L.bc];
          if (L.mode != kRaw) v *= srow[j][k / L.bc];
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
