// The fixed-order dot-product tiles behind linear and attention (AVX2+FMA or portable 8-lane vectors).
#include <algorithm>

#include "cpu/internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define DS_CPU_X86 1
#endif

namespace ds::cpu::detail {
namespace {

// Canonical order of every dot product in the library: lane l (0..7) accumulates k = l mod 8 in
// increasing k (FMA on AVX2, mul+add otherwise), the lanes meet in the tree below, then the
// k tail (K mod 8) is added in order. K blocking only pauses a lane's sequence (its partial sum
// is stored and reloaded exactly), so blocking, tile shape, T and the thread split never change
// a result: a token's row is bitwise the same in any batch. reduce8 (internal.h) is the tree.

// Generic 8-lane vectors; the ABI note about passing them without AVX is moot for inlined helpers.
#pragma GCC diagnostic ignored "-Wpsabi"
// GCC 12 flags the _mm512_undefined_* inside its own AVX-512 headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
typedef float v8f __attribute__((vector_size(32)));

inline v8f load8(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// acc[(i * lda + j) * 8 + lane] += sum over k in [0, klen) (klen a multiple of 8).
template <int TM, int TN>
void partialGeneric(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t klen,
                    float* acc, int64_t lda) {
  v8f a[TM][TN];
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < TN; ++j) a[i][j] = load8(acc + (i * lda + j) * 8);
  for (int64_t k = 0; k < klen; k += 8) {
    v8f wv[TN];
    for (int j = 0; j < TN; ++j) wv[j] = load8(w + j * ldw + k);
    for (int i = 0; i < TM; ++i) {
      v8f xv = load8(x + i * ldx + k);
      for (int j = 0; j < TN; ++j) a[i][j] = a[i][j] + xv * wv[j];
    }
  }
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < TN; ++j) std::memcpy(acc + (i * lda + j) * 8, &a[i][j], sizeof(v8f));
}

#ifdef DS_CPU_X86
template <int TM, int TN>
__attribute__((target("avx2,fma"))) void partialAvx2(const float* x, int64_t ldx, const float* w,
                                                     int64_t ldw, int64_t klen, float* acc,
                                                     int64_t lda) {
  __m256 a[TM][TN];
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < TN; ++j) a[i][j] = _mm256_loadu_ps(acc + (i * lda + j) * 8);
  for (int64_t k = 0; k < klen; k += 8) {
    __m256 wv[TN];
    for (int j = 0; j < TN; ++j) wv[j] = _mm256_loadu_ps(w + j * ldw + k);
    for (int i = 0; i < TM; ++i) {
      __m256 xv = _mm256_loadu_ps(x + i * ldx + k);
      for (int j = 0; j < TN; ++j) a[i][j] = _mm256_fmadd_ps(xv, wv[j], a[i][j]);
    }
  }
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < TN; ++j) _mm256_storeu_ps(acc + (i * lda + j) * 8, a[i][j]);
}
#endif

using PartialFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t);

#ifdef DS_CPU_X86
// TM x rows against TP pairs of w rows, two w rows per 16-lane vector (row 2q in lanes 0-7, row
// 2q + 1 in lanes 8-15) and each x row broadcast to both halves: every half runs partialAvx2's
// 8-lane FMA sequence on its own (x, w) pair, so the partial sums are its bits; the accumulators
// of rows 2q and 2q + 1 are adjacent in acc (8 floats each), one 16-float load and store.
template <int TM, int TP>
__attribute__((target("avx512f,avx512dq,avx2,fma"))) void partialPairsAvx512(
    const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t klen, float* acc, int64_t lda) {
  __m512 a[TM][TP];
  for (int i = 0; i < TM; ++i)
    for (int q = 0; q < TP; ++q) a[i][q] = _mm512_loadu_ps(acc + (i * lda + 2 * q) * 8);
  for (int64_t k = 0; k < klen; k += 8) {
    __m512 wv[TP];
    for (int q = 0; q < TP; ++q)
      wv[q] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(w + 2 * q * ldw + k)),
                                 _mm256_loadu_ps(w + (2 * q + 1) * ldw + k), 1);
    for (int i = 0; i < TM; ++i) {
      const __m512 xv = _mm512_broadcast_f32x8(_mm256_loadu_ps(x + i * ldx + k));
      for (int q = 0; q < TP; ++q) a[i][q] = _mm512_fmadd_ps(xv, wv[q], a[i][q]);
    }
  }
  for (int i = 0; i < TM; ++i)
    for (int q = 0; q < TP; ++q) _mm512_storeu_ps(acc + (i * lda + 2 * q) * 8, a[i][q]);
}
// reduce8 of the two 8-lane partial sums at a[0, 16) into y[0], y[1]: adjacent lanes, then lane
// pairs two apart, then the 128-bit halves, which is reduce8's tree ((0+1)+(2+3)) + ((4+5)+(6+7))
// (float addition commutes exactly, so the operand order inside each sum does not matter).
__attribute__((target("avx512f"))) void reducePairAvx512(const float* a, float* y) {
  const __m512 v = _mm512_loadu_ps(a);
  const __m512 t1 = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
  const __m512 t2 = _mm512_add_ps(t1, _mm512_permute_ps(t1, _MM_SHUFFLE(1, 0, 3, 2)));
  const __m512 t3 = _mm512_add_ps(t2, _mm512_shuffle_f32x4(t2, t2, _MM_SHUFFLE(2, 3, 0, 1)));
  y[0] = _mm512_cvtss_f32(t3);
  y[1] = _mm_cvtss_f32(_mm512_extractf32x4_ps(t3, 2));
}
// The whole K (a multiple of 8) of TM x rows against 8 w rows (4 pairs) with the accumulators
// in registers from +0 (partialPairsAvx512's FMA sequence), then the 8 outputs' lane trees at
// once: three rounds of even / odd lane permutes add adjacent lanes, then those pairs, then the
// halves, each sum of the same two operands as reduce8's ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)).
// No partial-sum buffer and no per-output reductions: the attention score tiles' fast path.
template <int TM>
__attribute__((target("avx512f,avx512dq,avx2,fma"))) void fullPairsAvx512(
    const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, float* y, int64_t ldy,
    const char* pf, int64_t pf_lines) {
  __m512 a[TM][4];
  for (int i = 0; i < TM; ++i)
    for (int q = 0; q < 4; ++q) a[i][q] = _mm512_setzero_ps();
  const int64_t per_step = (pf_lines + K / 8 - 1) / (K / 8);
  for (int64_t k = 0, line = 0; k < K; k += 8) {
    for (int64_t u = 0; u < per_step && line < pf_lines; ++u, ++line) _mm_prefetch(pf + 64 * line, _MM_HINT_T1);
    __m512 wv[4];
    for (int q = 0; q < 4; ++q)
      wv[q] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(w + 2 * q * ldw + k)),
                                 _mm256_loadu_ps(w + (2 * q + 1) * ldw + k), 1);
    for (int i = 0; i < TM; ++i) {
      const __m512 xv = _mm512_broadcast_f32x8(_mm256_loadu_ps(x + i * ldx + k));
      for (int q = 0; q < 4; ++q) a[i][q] = _mm512_fmadd_ps(xv, wv[q], a[i][q]);
    }
  }
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int i = 0; i < TM; ++i) {
    // Lanes 4r..4r+3 of s01 (outputs r = 0..3) and s23 (4..7): l0+l1, l2+l3, l4+l5, l6+l7.
    const __m512 s01 = _mm512_add_ps(_mm512_permutex2var_ps(a[i][0], even, a[i][1]),
                                     _mm512_permutex2var_ps(a[i][0], odd, a[i][1]));
    const __m512 s23 = _mm512_add_ps(_mm512_permutex2var_ps(a[i][2], even, a[i][3]),
                                     _mm512_permutex2var_ps(a[i][2], odd, a[i][3]));
    // Lanes 2r, 2r+1 (outputs r = 0..7): (l0+l1)+(l2+l3), (l4+l5)+(l6+l7).
    const __m512 u = _mm512_add_ps(_mm512_permutex2var_ps(s01, even, s23), _mm512_permutex2var_ps(s01, odd, s23));
    const __m512 v = _mm512_add_ps(_mm512_permutexvar_ps(even, u), _mm512_permutexvar_ps(odd, u));
    _mm256_storeu_ps(y + i * ldy, _mm512_castps512_ps256(v));
  }
}
using FullFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t,
                       const char*, int64_t);
const FullFn kFull512[6] = {&fullPairsAvx512<1>, &fullPairsAvx512<2>, &fullPairsAvx512<3>,
                            &fullPairsAvx512<4>, &fullPairsAvx512<5>, &fullPairsAvx512<6>};
#define DS_PAIR_ROW(m) {&partialPairsAvx512<m, 1>, &partialPairsAvx512<m, 2>, &partialPairsAvx512<m, 3>, &partialPairsAvx512<m, 4>}
// Up to 6 x rows: 6 x 4 accumulators + 4 pair vectors + 1 broadcast fit the 32 registers.
constexpr int64_t kPairRows = 6;
const PartialFn kPairs512[kPairRows][4] = {DS_PAIR_ROW(1), DS_PAIR_ROW(2), DS_PAIR_ROW(3),
                                           DS_PAIR_ROW(4), DS_PAIR_ROW(5), DS_PAIR_ROW(6)};
#endif

#define DS_TILE_ROW(F, m) {&F<m, 1>, &F<m, 2>, &F<m, 3>, &F<m, 4>}
#define DS_TILE_TABLE(F) {DS_TILE_ROW(F, 1), DS_TILE_ROW(F, 2), DS_TILE_ROW(F, 3), DS_TILE_ROW(F, 4)}

const PartialFn kGeneric[4][4] = DS_TILE_TABLE(partialGeneric);
#ifdef DS_CPU_X86
const PartialFn kAvx2[4][4] = DS_TILE_TABLE(partialAvx2);
#endif

const PartialFn (*tileTable())[4] {
#ifdef DS_CPU_X86
  if (useAvx2()) return kAvx2;
#endif
  return kGeneric;
}

// Blocking: 64 tokens at a time bounds the partial-sum buffer. K blocks are long: measured on
// Zen 4, 256-1024 wide K blocks (L1-sized) were 20-30% slower than streaming from L2.
constexpr int64_t kTokBlock = 64, kKBlock = 4096;

}  // namespace

void dotTile(const float* x, int64_t ldx, int64_t M, const float* w, int64_t ldw, int64_t N,
             int64_t K, float* y, int64_t ldy, const void* ahead, int64_t ahead_bytes) {
  static const PartialFn(*table)[4] = tileTable();
  thread_local std::vector<float> accbuf;
  // Few tokens: 4 weight rows per pass (more independent FMA chains); else 4 tokens x 3 rows
  // (12 accumulators + 3 weight vectors + 1 x vector = the 16 AVX2 registers).
  const int64_t tm = 4, tn = M <= 2 ? 4 : 3;
  // The AVX-512 pair tiles run where the AVX2 FMA tiles would (same bits, twice the lanes).
  // One K block and whole groups of 8 w rows: the register-only tiles (same bits), then the
  // last N mod 8 w rows below.
#ifdef DS_CPU_X86
  static const bool pairs_on = table == kAvx2 && useAvx512();
  if (pairs_on && K % 8 == 0 && K <= kKBlock && N >= 8) {
    // Rows in ceil(M / 6) tiles of near-equal height (8 rows: 4 + 4, not 6 + 2: a short tile
    // loads as many w vectors for fewer FMAs).
    const int64_t row_tiles = (M + kPairRows - 1) / kPairRows, N8 = N / 8 * 8, tiles = row_tiles * (N8 / 8);
    const int64_t lines = (ahead_bytes + 63) / 64, per_tile = (lines + tiles - 1) / tiles;
    const char* pf = static_cast<const char*>(ahead);
    for (int64_t t = 0, i0 = 0, line = 0; t < row_tiles; ++t) {
      const int64_t ni = M / row_tiles + (t < M % row_tiles ? 1 : 0);
      for (int64_t j0 = 0; j0 < N8; j0 += 8, line += per_tile)
        kFull512[ni - 1](x + i0 * ldx, ldx, w + j0 * ldw, ldw, K, y + i0 * ldy + j0, ldy, pf + 64 * line,
                         std::clamp<int64_t>(lines - line, 0, per_tile));
      i0 += ni;
    }
    if (N8 == N) return;
    w += N8 * ldw, y += N8, N -= N8;
  }
  if (ahead)  // the other paths: all at once
    for (int64_t o = 0; o < ahead_bytes; o += 64) _mm_prefetch(static_cast<const char*>(ahead) + o, _MM_HINT_T1);
  const bool pairs = pairs_on && N >= 2;
#else
  (void)ahead, (void)ahead_bytes;
#endif
  const int64_t K8 = K / 8 * 8;
  for (int64_t t0 = 0; t0 < M; t0 += kTokBlock) {
    const int64_t mt = std::min(kTokBlock, M - t0);
    accbuf.assign(mt * N * 8, 0.0f);
    float* acc = accbuf.data();
    for (int64_t k0 = 0; k0 < K8; k0 += kKBlock) {
      const int64_t kl = std::min(kKBlock, K8 - k0);
#ifdef DS_CPU_X86
      if (pairs) {  // AVX-512: up to 6 x rows by 8 w rows per pass as 4 pairs, an odd last w row alone
        for (int64_t i0 = 0; i0 < mt; i0 += kPairRows) {
          const int64_t ni = std::min(kPairRows, mt - i0);
          const float* xi = x + (t0 + i0) * ldx + k0;
          for (int64_t j0 = 0; j0 < N; j0 += 8) {
            const int64_t nj = std::min<int64_t>(8, N - j0);
            if (nj >= 2)
              kPairs512[ni - 1][nj / 2 - 1](xi, ldx, w + j0 * ldw + k0, ldw, kl, acc + (i0 * N + j0) * 8, N);
            for (int64_t i = 0; i < ni && nj % 2; i += tm)  // the AVX2 tiles take up to tm rows
              table[std::min(tm, ni - i) - 1][0](xi + i * ldx, ldx, w + (j0 + nj - 1) * ldw + k0, ldw, kl,
                                                  acc + ((i0 + i) * N + j0 + nj - 1) * 8, N);
          }
        }
        continue;
      }
#endif
      for (int64_t i0 = 0; i0 < mt; i0 += tm) {
        const int64_t ni = std::min(tm, mt - i0);
        const float* xi = x + (t0 + i0) * ldx + k0;
        for (int64_t j0 = 0; j0 < N; j0 += tn) {
          const int64_t nj = std::min(tn, N - j0);
          table[ni - 1][nj - 1](xi, ldx, w + j0 * ldw + k0, ldw, kl, acc + (i0 * N + j0) * 8, N);
        }
      }
    }
    for (int64_t i = 0; i < mt; ++i) {
      int64_t j = 0;
#ifdef DS_CPU_X86
      if (pairs_on && K8 == K)  // two outputs' lane trees per vector, the same sums (reduce8)
        for (; j + 2 <= N; j += 2) reducePairAvx512(acc + (i * N + j) * 8, y + (t0 + i) * ldy + j);
#endif
      for (; j < N; ++j) {
        const float* xr = x + (t0 + i) * ldx;
        const float* wr = w + j * ldw;
        float s = reduce8(acc + (i * N + j) * 8);
        for (int64_t k = K8; k < K; ++k) s += xr[k] * wr[k];
        y[(t0 + i) * ldy + j] = s;
      }
    }
  }
}

float dot(const float* a, const float* b, int64_t K) {
  static const PartialFn(*table)[4] = tileTable();
  // The 1 x 1 case of dotTile without the buffer: one unbroken lane sweep is the same sequence.
  alignas(32) float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const int64_t K8 = K / 8 * 8;
  table[0][0](a, K, b, K, K8, acc, 1);
  float s = reduce8(acc);
  for (int64_t k = K8; k < K; ++k) s += a[k] * b[k];
  return s;
}

}  // namespace ds::cpu::detail
