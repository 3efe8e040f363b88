// linear on bf16 weights with bf16 activations (WeightView::bf16_act): AVX-512 BF16 dot products
// (vdpbf16ps), two multiply-adds per f32 lane and instruction, in a GEMM micro-kernel that keeps
// one output element per f32 lane (oneDNN's brgemm layout; issue #13 item 2).
//
// Stored layout (made at load by packBf16Activations): output rows in panels of 32 (the last
// panel of 16 when rows % 32 == 16); a panel holds, for each column pair p = k / 2 in order, its
// rows' two bf16 values side by side: row n of the panel at byte (p * width + n) * 4. A
// 32-row panel is one sequential stream of 128 bytes per column pair (two zmm loads), which the
// kernel multiplies by one broadcast activation pair per token.
//
// Definition (what every path computes, bit for bit):
//  - each token's row of x is rounded to bf16 (nearest even; NaN stays NaN);
//  - y[t, n] is one f32 chain over the column pairs in order, starting at +0:
//    acc = acc + x[2p + 1] * w[n, 2p + 1], then acc = acc + x[2p] * w[n, 2p], each a fused
//    multiply-add of the exact bf16 product rounded to nearest even, with bf16 subnormal inputs
//    read as zero and subnormal results flushed to zero (VDPBF16PS as the Intel SDM defines it;
//    the portable path computes the same).
// The order depends only on K: the tile shape, the number of tokens, a token's place in the batch,
// the K blocking (a chain paused in f32 memory resumes exactly) and the thread split never change
// it, so the path is batch invariant like every other.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>

#include "cpu/internal.h"

// GCC 12 flags the _mm512_undefined_* inside its own AVX-512 headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define DS_CPU_X86 1
#endif

namespace ds::cpu {
namespace {

constexpr int64_t kPanel = detail::kActPanel, kMinPanel = 16;
// Micro-tile: up to kTileM tokens x one panel (2 x 16 f32 lanes): 24 accumulators of the 32 zmm.
constexpr int kTileM = 12;
// Blocking: a token block's bf16 activations (kBlockM x kBlockK x 2 bytes, 240 KiB) stay in L2
// while the thread's panels pass over them; a panel's slice (kBlockK x 64 bytes, 64 KiB) stays in
// L1/L2 across the block's micro-tiles.
constexpr int64_t kBlockM = 120, kBlockK = 1024;

using detail::actPanels;
using detail::actPanelWidth;

// bf16 -> f32 with subnormals read as zero.
inline float daz(uint16_t h) {
  if ((h & 0x7f80u) == 0) h &= 0x8000u;
  return detail::bf16ToF32(h);
}
// Subnormal f32 results flushed to (signed) zero.
inline float ftz(float f) {
  return std::fpclassify(f) == FP_SUBNORMAL ? std::copysign(0.0f, f) : f;
}

// The scalar definition over pairs [p0, p1) of one panel, tokens [0, tm) of xb (stride K),
// resuming from c (first: from +0).
void tileGeneric(const uint16_t* xb, int64_t K, int64_t tm, const uint8_t* panel, int64_t width,
                 int64_t p0, int64_t p1, float* c, int64_t ldc, bool first) {
  for (int64_t t = 0; t < tm; ++t)
    for (int64_t n = 0; n < width; ++n) {
      float acc = first ? 0.0f : c[t * ldc + n];
      for (int64_t p = p0; p < p1; ++p) {
        uint16_t wv[2];
        std::memcpy(wv, panel + (p * width + n) * 4, 4);
        const uint16_t* xv = xb + t * K + 2 * p;
        acc = ftz(std::fma(daz(xv[1]), daz(wv[1]), acc));
        acc = ftz(std::fma(daz(xv[0]), daz(wv[0]), acc));
      }
      c[t * ldc + n] = acc;
    }
}

void convertGeneric(const float* x, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = detail::f32ToBf16(x[i]);
}

#ifdef DS_CPU_X86
#define DS_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))

bool useBf16Dot() {
  static const bool on = detail::useAvx512() && __builtin_cpu_supports("avx512bf16");
  return on;
}

// MB tokens x NV 16-row vectors of one panel, pairs [p0, p1).
template <int NV, int MB>
DS_BF16 void tileBf16(const uint16_t* xb, int64_t K, const uint8_t* panel, int64_t p0, int64_t p1,
                      float* c, int64_t ldc, bool first) {
  __m512 acc[MB][NV];
  for (int i = 0; i < MB; ++i)
    for (int v = 0; v < NV; ++v)
      acc[i][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + i * ldc + v * 16);
  const uint8_t* b = panel + p0 * NV * 64;
  typedef int32_t pair_t __attribute__((may_alias));
  const auto* a = reinterpret_cast<const pair_t*>(xb) + p0;  // pair p of token i: a[i * K / 2 + p]
  const int64_t lda = K / 2;
  for (int64_t p = p0; p < p1; ++p, b += NV * 64, ++a) {
    __m512bh bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = (__m512bh)_mm512_loadu_si512(b + v * 64);
    for (int i = 0; i < MB; ++i) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(a[i * lda]);
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], av, bv[v]);
    }
  }
  for (int i = 0; i < MB; ++i)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + i * ldc + v * 16, acc[i][v]);
}

template <int NV>
using TileFn = void (*)(const uint16_t*, int64_t, const uint8_t*, int64_t, int64_t, float*, int64_t, bool);

template <int NV, int... M>
constexpr std::array<TileFn<NV>, sizeof...(M)> tiles(std::integer_sequence<int, M...>) {
  return {&tileBf16<NV, M + 1>...};
}

void tile(const uint16_t* xb, int64_t K, int64_t tm, const uint8_t* panel, int64_t width, int64_t p0,
          int64_t p1, float* c, int64_t ldc, bool first, bool portable) {
  if (portable || !useBf16Dot()) return tileGeneric(xb, K, tm, panel, width, p0, p1, c, ldc, first);
  static constexpr auto two = tiles<2>(std::make_integer_sequence<int, kTileM>{});
  static constexpr auto one = tiles<1>(std::make_integer_sequence<int, kTileM>{});
  (width == kPanel ? two : one)[tm - 1](xb, K, panel, p0, p1, c, ldc, first);
}

// f32ToBf16 on 16 values at a time (the same integer recipe, NaN included).
DS_BF16 void convertBf16(const float* x, int64_t n, uint16_t* out) {
  int64_t i = 0;
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
  const __m512i bias = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x40);
  for (; i + 16 <= n; i += 16) {
    const __m512i u = _mm512_loadu_si512(x + i);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs_mask), inf);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(bias, lsb)), 16);
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), quiet);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm512_cvtepi32_epi16(r));
  }
  convertGeneric(x + i, n - i, out + i);
}

void convert(const float* x, int64_t n, uint16_t* out, bool portable) {
  if (portable || !useBf16Dot()) return convertGeneric(x, n, out);
  convertBf16(x, n, out);
}
#else
void tile(const uint16_t* xb, int64_t K, int64_t tm, const uint8_t* panel, int64_t width, int64_t p0,
          int64_t p1, float* c, int64_t ldc, bool first, bool) {
  tileGeneric(xb, K, tm, panel, width, p0, p1, c, ldc, first);
}
void convert(const float* x, int64_t n, uint16_t* out, bool) { convertGeneric(x, n, out); }
#endif

}  // namespace

bool canUseBf16Activations(const WeightView& w) {
  return w.type == WeightType::BF16 && w.packed == 0 && !w.int8_act && !w.bf16_act &&
         !w.block_scale && !w.channel_scale && !w.group_scale && w.rows >= kMinPanel &&
         w.rows % kMinPanel == 0 && w.cols > 0 && w.cols % 2 == 0;
}

WeightView packBf16Activations(const WeightView& w, void* dst) {
  const int64_t K = w.cols, pairs = K / 2;
  const auto* src = static_cast<const uint8_t*>(w.data);
  auto* out = static_cast<uint8_t*>(dst);
  detail::parallelFor(actPanels(w.rows), 4, [&](int64_t b, int64_t e) {
    std::vector<uint8_t> rows;  // a copy: dst may be w.data
    for (int64_t j = b; j < e; ++j) {
      const int64_t width = actPanelWidth(w.rows, j), bytes = width * K * 2;
      rows.assign(src + j * kPanel * K * 2, src + j * kPanel * K * 2 + bytes);
      uint8_t* o = out + j * kPanel * K * 2;
      for (int64_t p = 0; p < pairs; ++p)
        for (int64_t n = 0; n < width; ++n, o += 4) std::memcpy(o, rows.data() + (n * K + 2 * p) * 2, 4);
    }
  });
  WeightView v = w;
  v.data = dst;
  v.bf16_act = true;
  return v;
}

namespace detail {

void unpackBf16ActRow(const WeightView& w, int64_t r, uint8_t* row) {
  const int64_t K = w.cols, j = r / kPanel, width = actPanelWidth(w.rows, j);
  const auto* panel = static_cast<const uint8_t*>(w.data) + j * kPanel * K * 2;
  for (int64_t p = 0; p < K / 2; ++p) std::memcpy(row + p * 4, panel + (p * width + r % kPanel) * 4, 4);
}

void linearBf16Act(const float* x, int64_t T, const WeightView& w, float* y, bool portable) {
  const int64_t N = w.rows, K = w.cols;
  thread_local std::vector<uint16_t> mine;
  std::vector<uint16_t>& xb = mine;  // the workers below read the caller's
  xb.resize(T * K);
  parallelFor(T, std::max<int64_t>(1, 16384 / K),
              [&](int64_t b, int64_t e) { convert(x + b * K, (e - b) * K, xb.data() + b * K, portable); });
  const auto* base = static_cast<const uint8_t*>(w.data);
  forPanelTiles(T, N, K, K / 2, kBlockK / 2, kBlockM, kTileM,
                [&](int64_t j, int64_t width, int64_t m, int64_t tm, int64_t p0, int64_t p1) {
                  tile(xb.data() + m * K, K, tm, base + j * kPanel * K * 2, width, p0, p1,
                       y + m * N + j * kPanel, N, p0 == 0, portable);
                });
}

}  // namespace detail

}  // namespace ds::cpu
