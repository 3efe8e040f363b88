// Decode-time GEMV over packed weights (WeightView::packed) with AVX-512: two rows per vector.
//
// A packed group holds kPackRows = 4 rows with their 8-column chunks interleaved, so the chunks
// of rows (0, 1) and of rows (2, 3) sit side by side: one 16-lane vector decodes 8 columns of
// two rows, lanes 0-7 for the first, 8-15 for the second. Lane l of each half accumulates
// columns k = l mod 8 in increasing k with the same decode, scale and FMA as the AVX2 tile
// (fused_decode.cpp) and dequantRow + dotTile, and ends in the same reduce8 tree: results are
// bitwise those of every other path, only the memory stream is one sequential read.
//
// int4 codes become values by a table lookup (vpermt2ps over 16 codes x 2 rows) whose entries are
// computed per group with the canonical f32 recipe (q * s, or (q - z) * s), so the values are
// the same bits with 5 instead of 8 vector operations per 16 weights.
#include <algorithm>

#include "cpu/internal.h"

// GCC 12 flags the _mm512_undefined_* inside its own AVX-512 headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define DS_CPU_X86 1
#endif

namespace ds::cpu::detail {

#ifdef DS_CPU_X86
namespace {

#define DS_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

DS_AVX512 inline __m512 join(__m256 lo, __m256 hi) {
  return _mm512_castpd_ps(
      _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));
}

// 8 columns of two rows (p: the first row's chunk, the second's follows) as 16 f32 lanes,
// before any scale. FP8 stays 2^-8 of its value when the scale absorbs the 256 (see decode8).
template <WeightType WT, int MODE>
DS_AVX512 inline __m512 decode16(const uint8_t* p) {
  if constexpr (WT == WeightType::F16) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  } else if constexpr (WT == WeightType::BF16) {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  } else if constexpr (WT == WeightType::I8) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  } else {
    static_assert(WT == WeightType::F8E4M3, "int4 goes through the table");
    const __m256i q = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m256i em = _mm256_and_si256(q, _mm256_set1_epi16(0x7f));
    __m256i h = _mm256_or_si256(_mm256_slli_epi16(em, 7),
                                _mm256_and_si256(_mm256_slli_epi16(q, 8), _mm256_set1_epi16(-32768)));
    h = _mm256_or_si256(h, _mm256_cmpeq_epi16(em, _mm256_set1_epi16(0x7f)));
    if constexpr (MODE == kScaled) return _mm512_cvtph_ps(h);
    return _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(256.0f));
  }
}

// One group of 4 rows: y[i * ldy + j] for tokens i < TM, rows j < 4.
template <WeightType WT, int MODE, int TM>
DS_AVX512 void group4(const float* x, int64_t ldx, const uint8_t* g, int64_t K,
                      const float* const* srow, const float* const* zrow, int64_t bc, float* y,
                      int64_t ldy) {
  constexpr int64_t cb = WT == WeightType::I4 ? 4 : WT == WeightType::I8 || WT == WeightType::F8E4M3 ? 8 : 16;
  constexpr float kFold = WT == WeightType::F8E4M3 ? 256.0f : 1.0f;
  __m512 a[TM][2];
  for (int i = 0; i < TM; ++i) a[i][0] = a[i][1] = _mm512_setzero_ps();
  // int4: the 8 nibbles of each half's dword, lane l shifted right by 4 l; bit 4 picks the table.
  const __m512i half = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m512i shifts = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
  const __m512i nib = _mm512_set1_epi32(0xf);
  const __m512i second = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 16, 16, 16, 16, 16, 16, 16, 16);
  // Code n's value before scaling: two's complement (n ^ 8) - 8, or n with a zero point.
  const __m512 codes = MODE == kZeroScaled
                           ? _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
                           : _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1);
  for (int64_t c0 = 0; c0 < K; c0 += bc) {
    const int64_t c1 = std::min(K, c0 + bc), blk = c0 / bc;
    __m512 s[2], tab[4];
    if constexpr (WT == WeightType::I4) {
      for (int j = 0; j < 4; ++j) {
        __m512 v = codes;
        if constexpr (MODE == kZeroScaled) v = _mm512_sub_ps(v, _mm512_set1_ps(zrow[j][blk]));
        tab[j] = _mm512_mul_ps(v, _mm512_set1_ps(srow[j][blk]));
      }
    } else if constexpr (MODE == kScaled) {
      for (int p = 0; p < 2; ++p)
        s[p] = join(_mm256_set1_ps(srow[2 * p][blk] * kFold), _mm256_set1_ps(srow[2 * p + 1][blk] * kFold));
    }
    const uint8_t* chunk = g + (c0 >> 3) * 4 * cb;
    for (int64_t k = c0; k < c1; k += 8, chunk += 4 * cb) {
      __m512 wv[2];
      for (int p = 0; p < 2; ++p) {
        if constexpr (WT == WeightType::I4) {
          const __m512i raw = _mm512_permutexvar_epi32(
              half, _mm512_castsi128_si512(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(chunk + p * 2 * cb))));
          // (code & 0xf) | bit 4 for the second row: ternary logic (a & b) | c.
          const __m512i idx = _mm512_ternarylogic_epi32(_mm512_srlv_epi32(raw, shifts), nib, second, 0xEA);
          wv[p] = _mm512_permutex2var_ps(tab[2 * p], idx, tab[2 * p + 1]);
        } else {
          wv[p] = decode16<WT, MODE>(chunk + p * 2 * cb);
          if constexpr (MODE == kScaled) wv[p] = _mm512_mul_ps(wv[p], s[p]);
        }
      }
      for (int i = 0; i < TM; ++i) {
        const __m256 x8 = _mm256_loadu_ps(x + i * ldx + k);
        const __m512 xv = join(x8, x8);
        a[i][0] = _mm512_fmadd_ps(xv, wv[0], a[i][0]);
        a[i][1] = _mm512_fmadd_ps(xv, wv[1], a[i][1]);
      }
    }
  }
  alignas(64) float lanes[16];
  for (int i = 0; i < TM; ++i)
    for (int p = 0; p < 2; ++p) {
      _mm512_store_ps(lanes, a[i][p]);
      y[i * ldy + 2 * p] = reduce8(lanes);
      y[i * ldy + 2 * p + 1] = reduce8(lanes + 8);
    }
}

using GroupFn = void (*)(const float*, int64_t, const uint8_t*, int64_t, const float* const*,
                         const float* const*, int64_t, float*, int64_t);

template <WeightType WT, int MODE>
GroupFn byTokens(int64_t M) {
  return M == 1 ? &group4<WT, MODE, 1> : &group4<WT, MODE, 2>;
}

template <WeightType WT>
GroupFn rawOrScaled(int mode, int64_t M) {
  return mode == kScaled ? byTokens<WT, kScaled>(M) : byTokens<WT, kRaw>(M);
}

GroupFn pickGroup(WeightType t, int mode, int64_t M) {
  switch (t) {
    case WeightType::F16: return rawOrScaled<WeightType::F16>(mode, M);
    case WeightType::BF16: return rawOrScaled<WeightType::BF16>(mode, M);
    case WeightType::F8E4M3: return rawOrScaled<WeightType::F8E4M3>(mode, M);
    case WeightType::I8: return rawOrScaled<WeightType::I8>(mode, M);
    case WeightType::I4:
      return mode == kZeroScaled ? byTokens<WeightType::I4, kZeroScaled>(M)
                                 : byTokens<WeightType::I4, kScaled>(M);
    case WeightType::F32:
    case WeightType::I6: break;  // scaleLayout refuses I6: dequantRows + dotTile
  }
  return nullptr;
}

}  // namespace

void fusedPackedAvx512(const float* x, int64_t ldx, int64_t M, const WeightView& w,
                       const ScaleLayout& L, int64_t r0, int64_t N, float* y, int64_t ldy) {
  const int64_t K = w.cols, rb = weightRowBytes(w.type, K);
  const auto* base = static_cast<const uint8_t*>(w.data);
  const GroupFn fn = pickGroup(w.type, L.mode, M);
  for (int64_t j0 = 0; j0 < N; j0 += kPackRows) {
    const int64_t r = r0 + j0;
    const float* srow[4] = {nullptr, nullptr, nullptr, nullptr};
    const float* zrow[4] = {nullptr, nullptr, nullptr, nullptr};
    for (int j = 0; j < 4; ++j) {
      if (L.scale) srow[j] = L.scale + ((r + j) / L.rows_per) * L.stride;
      if (L.zero) zrow[j] = L.zero + ((r + j) / L.rows_per) * L.stride;
    }
    fn(x, ldx, base + r * rb, K, srow, zrow, L.bc, y + j0, ldy);
  }
}

namespace {
template <WeightType WT>
DS_AVX512 int64_t dequantScaled16(const uint8_t* q, int64_t n, float scale, float* out) {
  const __m512 s = _mm512_set1_ps(scale);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, _mm512_mul_ps(decode16<WT, kRaw>(q + i), s));
  return i;
}
}  // namespace

int64_t dequantScaledAvx512(KVType type, const uint8_t* q, int64_t n, float scale, float* out) {
  return type == KVType::I8 ? dequantScaled16<WeightType::I8>(q, n, scale, out)
                            : dequantScaled16<WeightType::F8E4M3>(q, n, scale, out);
}
#endif

}  // namespace ds::cpu::detail
