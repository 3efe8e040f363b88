// linear on bf16 weights with bf16 activations (WeightView::bf16_act): AVX-512 BF16 dot products
// (vdpbf16ps), two multiply-adds per f32 lane and instruction, instead of widening every weight.
//
// Stored layout (made at load by packBf16Activations): rows in groups of 4, each row cut into
// 64-byte units (32 columns), the 4 rows' units interleaved (unit u of row j at u * 256 + j * 64):
// one sequential stream. The values are the weight's own bf16.
//
// Definition (what every path computes, bit for bit):
//  - each token's row of x is rounded to bf16 (nearest even; NaN stays NaN);
//  - 16 f32 lanes; lane l of unit u covers columns 32u + 2l and 32u + 2l + 1 and takes, in unit
//    order, acc_l = acc_l + x[2l + 1] * w[2l + 1], then acc_l = acc_l + x[2l] * w[2l], each a
//    fused multiply-add of the exact bf16 product rounded to nearest even, with bf16 subnormal
//    inputs read as zero and subnormal results flushed to zero (VDPBF16PS as the Intel SDM
//    defines it; the portable path computes the same);
//  - y = reduce8(acc_0..7) + reduce8(acc_8..15).
// The order depends only on K: batch invariant like every other path.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define DS_CPU_X86 1
#endif

namespace ds::cpu {
namespace {

constexpr int64_t kRows = 4, kUnit = 64, kCols = 32;

// bf16 -> f32 with subnormals read as zero.
inline float daz(uint16_t h) {
  if ((h & 0x7f80u) == 0) h &= 0x8000u;
  return detail::bf16ToF32(h);
}
// Subnormal f32 results flushed to (signed) zero.
inline float ftz(float f) {
  return std::fpclassify(f) == FP_SUBNORMAL ? std::copysign(0.0f, f) : f;
}

void groupGeneric(const WeightView& w, const uint16_t* xb, int64_t t0, int64_t tm, int64_t g,
                  float* y, int64_t ldy) {
  const int64_t K = w.cols, units = K / kCols;
  const auto* base = static_cast<const uint8_t*>(w.data) + g * kRows * K * 2;
  for (int64_t t = t0; t < t0 + tm; ++t)
    for (int64_t j = 0; j < kRows; ++j) {
      float acc[16] = {};
      for (int64_t u = 0; u < units; ++u) {
        uint16_t wv[32];
        std::memcpy(wv, base + (u * kRows + j) * kUnit, kUnit);
        const uint16_t* xv = xb + t * K + u * kCols;
        for (int l = 0; l < 16; ++l) {
          acc[l] = ftz(std::fma(daz(xv[2 * l + 1]), daz(wv[2 * l + 1]), acc[l]));
          acc[l] = ftz(std::fma(daz(xv[2 * l]), daz(wv[2 * l]), acc[l]));
        }
      }
      y[(t - t0) * ldy + j] = detail::reduce8(acc) + detail::reduce8(acc + 8);
    }
}

#ifdef DS_CPU_X86
#define DS_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))

bool useBf16Dot() {
  static const bool on = detail::useAvx512() && __builtin_cpu_supports("avx512bf16");
  return on;
}

template <int TM>
DS_BF16 void groupBf16(const WeightView& w, const uint16_t* xb, int64_t t0, int64_t g, float* y,
                       int64_t ldy) {
  const int64_t K = w.cols, units = K / kCols;
  const auto* base = static_cast<const uint8_t*>(w.data) + g * kRows * K * 2;
  __m512 acc[TM][kRows];
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < kRows; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t u = 0; u < units; ++u) {
    const uint8_t* unit = base + u * kRows * kUnit;
    __m512bh wv[kRows];
    for (int j = 0; j < kRows; ++j) wv[j] = (__m512bh)_mm512_loadu_si512(unit + j * kUnit);
    for (int i = 0; i < TM; ++i) {
      const __m512bh xv = (__m512bh)_mm512_loadu_si512(xb + (t0 + i) * K + u * kCols);
      for (int j = 0; j < kRows; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], xv, wv[j]);
    }
  }
  alignas(64) float lanes[16];
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < kRows; ++j) {
      _mm512_store_ps(lanes, acc[i][j]);
      y[i * ldy + j] = detail::reduce8(lanes) + detail::reduce8(lanes + 8);
    }
}

void group(const WeightView& w, const uint16_t* xb, int64_t t0, int64_t tm, int64_t g, float* y,
           int64_t ldy, bool portable) {
  if (portable || !useBf16Dot()) return groupGeneric(w, xb, t0, tm, g, y, ldy);
  switch (tm) {
    case 1: return groupBf16<1>(w, xb, t0, g, y, ldy);
    case 2: return groupBf16<2>(w, xb, t0, g, y, ldy);
    case 3: return groupBf16<3>(w, xb, t0, g, y, ldy);
    default: return groupBf16<4>(w, xb, t0, g, y, ldy);
  }
}
#else
void group(const WeightView& w, const uint16_t* xb, int64_t t0, int64_t tm, int64_t g, float* y,
           int64_t ldy, bool) {
  groupGeneric(w, xb, t0, tm, g, y, ldy);
}
#endif

}  // namespace

bool canUseBf16Activations(const WeightView& w) {
  return w.type == WeightType::BF16 && w.packed == 0 && !w.int8_act && !w.bf16_act &&
         !w.block_scale && !w.channel_scale && !w.group_scale && w.rows >= kRows &&
         w.rows % kRows == 0 && w.cols > 0 && w.cols % kCols == 0;
}

WeightView packBf16Activations(const WeightView& w, void* dst) {
  const int64_t rb = w.cols * 2, units = rb / kUnit;
  const auto* src = static_cast<const uint8_t*>(w.data);
  auto* out = static_cast<uint8_t*>(dst);
  detail::parallelFor(w.rows / kRows, 16, [&](int64_t b, int64_t e) {
    std::vector<uint8_t> grp(kRows * rb);  // a copy: dst may be w.data
    for (int64_t g = b; g < e; ++g) {
      std::memcpy(grp.data(), src + g * kRows * rb, kRows * rb);
      uint8_t* o = out + g * kRows * rb;
      for (int64_t u = 0; u < units; ++u)
        for (int64_t j = 0; j < kRows; ++j, o += kUnit) std::memcpy(o, grp.data() + j * rb + u * kUnit, kUnit);
    }
  });
  WeightView v = w;
  v.data = dst;
  v.bf16_act = true;
  return v;
}

namespace detail {

void unpackBf16ActRow(const WeightView& w, int64_t r, uint8_t* row) {
  const int64_t rb = w.cols * 2, units = rb / kUnit;
  const auto* g = static_cast<const uint8_t*>(w.data) + (r / kRows) * kRows * rb + (r % kRows) * kUnit;
  for (int64_t u = 0; u < units; ++u) std::memcpy(row + u * kUnit, g + u * kRows * kUnit, kUnit);
}

void linearBf16Act(const float* x, int64_t T, const WeightView& w, float* y, bool portable) {
  thread_local std::vector<uint16_t> mine;
  std::vector<uint16_t>& xb = mine;  // the workers below read the caller's
  xb.resize(T * w.cols);
  for (int64_t i = 0; i < T * w.cols; ++i) xb[i] = f32ToBf16(x[i]);
  forRowGroupTiles<kRows>(T, w.rows, w.cols, 2, y, [&](int64_t t0, int64_t tm, int64_t g, float* out) {
    group(w, xb.data(), t0, tm, g, out, kRows, portable);
  });
}

}  // namespace detail

}  // namespace ds::cpu
