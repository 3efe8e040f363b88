// linear on int8 / int4 / int6 weights with int8 activations (WeightView::int8_act): exact integer dot
// products (AVX-512 VNNI vpdpbusd where present) in a GEMM micro-kernel that keeps one output per
// lane (the layout of linear_bf16act.cpp; issue #13 items 2-3).
//
// Stored layout (made at load by packInt8Activations): output rows in panels of 32 (the last of 16
// when rows % 32 == 16). int8: per column quad p (4 columns) in order, the panel's rows' 4 bytes
// side by side (row n at byte (p * width + n) * 4), each code + 128 (vpdpbusd's unsigned operand).
// int4: per column octet o (8 columns), the rows' 4 bytes side by side; byte i of a row holds
// column 8o + i in its low nibble and 8o + 4 + i in its high nibble, each code + 8.
// int6 (u = code + 32 in [0, 63]): per column pair of octets (16 columns, o = 2P and 2P + 1), 12
// bytes per row: the two octets' low 4 bits of u as int4's nibbles (W rows x 4 bytes each), then
// W rows x 4 bytes of the high 2 bits: byte i holds those of columns 16P + i, 16P + 4 + i,
// 16P + 8 + i and 16P + 12 + i at bits 0, 2, 4 and 6 (i6PanelU).
//
// Definition (what every path computes, bit for bit):
//  - each token's row of x is quantized per block of B = 32 columns (int8 weights) or 64 (int4,
//    int6):
//    a = max |x|, q = nearbyint(x * (127 / a)) clamped to [-127, 127] (all zero when a = 0),
//    s_x = a / 127;
//  - d[b] = sum over the block of q_x * q_w, an exact integer (the kernels start vpdpbusd from
//    -offset * sum q_x, so the weights' +128 / +8 / +32 cancel; integer sums are order-free);
//  - one f32 chain per output over the blocks in order from +0: int8 acc = fma(float(d), s_x,
//    acc), then y = acc * channel_scale; int4 / int6 acc = fma(float(d) * s_x, group_scale, acc),
//    y = acc.
// The chain depends only on K: the tile shape, T, a token's place in the batch, the K blocking
// and the thread split never change a bit (batch invariant like every other path).
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
constexpr int kTileM = 6;  // tokens per micro-tile: 6 x 2 int32 + 6 x 2 f32 accumulators
// Token blocks whose codes (kBlockM x kBlockK bytes) stay in L2 while a thread's panels pass.
constexpr int64_t kBlockM = 96, kBlockK = 2048;

enum Kind { kI8 = 0, kI4 = 1, kI6 = 2 };
Kind kindOf(const WeightView& w) { return w.type == WeightType::I4 ? kI4 : w.type == WeightType::I6 ? kI6 : kI8; }
bool isGrouped(const WeightView& w) { return kindOf(w) != kI8; }  // group scales, 64-column blocks
int64_t blockCols(const WeightView& w) { return isGrouped(w) ? 64 : 32; }
int32_t codeOffset(const WeightView& w) { return kindOf(w) == kI4 ? 8 : kindOf(w) == kI6 ? 32 : 128; }
using detail::actPanels;
using detail::actPanelWidth;
// Bytes of one row (and per column of a panel: width * this / cols).
int64_t storedRowBytes(const WeightView& w) { return weightRowBytes(w.type, w.cols); }

// u = code + 32 of column c (from the panel's start) of row n of an int6 panel of width W.
inline int i6PanelU(const uint8_t* panel, int64_t W, int64_t n, int64_t c) {
  const int64_t k = c % 16, o = k / 8, half = (k % 8) / 4, i = k % 4;
  const uint8_t* pair = panel + (c / 16) * 12 * W;
  const uint8_t nib = pair[(o * W + n) * 4 + i], high = pair[(2 * W + n) * 4 + i];
  return ((nib >> (4 * half)) & 0xf) | ((high >> (2 * (2 * o + half))) & 3) << 4;
}

// Activations of T tokens: codes [T, K] in column order; per (token, block) -offset * sum q and s_x.
struct ActInt8 {
  std::vector<int8_t> q;
  std::vector<int32_t> minus;
  std::vector<float> scale;
};

float quantizeBlock(const float* x, int64_t n, int8_t* q) {
  float amax = 0.0f;
  for (int64_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  for (int64_t j = 0; j < n; ++j)
    q[j] = static_cast<int8_t>(std::clamp(std::nearbyint(x[j] * inv), -127.0f, 127.0f));
  return amax / 127.0f;
}

#ifdef DS_CPU_X86
// quantizeBlock and the codes' sum for n a multiple of 16, the same bits: |x| and max are exact
// and order-free, x * inv is the same f32 product, vrndscaleps(imm 0x0c) is nearbyint in the
// default rounding mode. A block with a non-finite value takes the scalar definition. Returns
// false (nothing written) in that case.
__attribute__((target("avx512f,avx512bw,avx512vl"))) bool quantizeBlockAvx512(
    const float* x, int64_t n, int8_t* q, float* scale, int32_t* sum) {
  __m512 m = _mm512_setzero_ps();
  __mmask16 nan = 0;
  for (int64_t j = 0; j < n; j += 16) {
    const __m512 v = _mm512_loadu_ps(x + j);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    m = _mm512_max_ps(m, _mm512_abs_ps(v));
  }
  const float amax = _mm512_reduce_max_ps(m);
  if (nan || !std::isfinite(amax)) return false;
  const __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  __m512i s = _mm512_setzero_si512();
  for (int64_t j = 0; j < n; j += 16) {
    __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(x + j), inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512i c = _mm512_cvttps_epi32(_mm512_min_ps(_mm512_max_ps(r, lo), hi));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + j), _mm512_cvtepi32_epi8(c));
    s = _mm512_add_epi32(s, c);
  }
  *scale = amax / 127.0f;
  *sum = _mm512_reduce_add_epi32(s);
  return true;
}
#endif

}  // namespace

namespace detail {
float quantizeActivationBlock(const float* x, int64_t n, int8_t* q, int32_t* sum, bool portable) {
#ifdef DS_CPU_X86
  static const bool wide = useAvx512();
  float scale;
  if (!portable && wide && n % 16 == 0 && quantizeBlockAvx512(x, n, q, &scale, sum)) return scale;
#else
  (void)portable;
#endif
  const float a = quantizeBlock(x, n, q);
  int32_t s = 0;
  for (int64_t j = 0; j < n; ++j) s += q[j];
  *sum = s;
  return a;
}
}  // namespace detail

namespace {

void quantizeActivations(const float* x, int64_t T, const WeightView& w, ActInt8& a) {
  const int64_t K = w.cols, B = blockCols(w), nb = K / B, off = codeOffset(w);
  a.q.resize(T * K);
  a.minus.resize(T * nb);
  a.scale.resize(T * nb);
  detail::parallelFor(T, std::max<int64_t>(1, 8192 / K), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t b = 0; b < nb; ++b) {
        int32_t s = 0;
        a.scale[t * nb + b] = detail::quantizeActivationBlock(x + t * K + b * B, B, a.q.data() + t * K + b * B, &s);
        a.minus[t * nb + b] = static_cast<int32_t>(-off * s);
      }
  });
}

// What a tile needs: the panel, its rows, the activations, the blocks to run.
struct TileArgs {
  const WeightView* w;
  const uint8_t* panel;
  int64_t row0, width;
  const ActInt8* a;
  int64_t t0;          // first token
  int64_t b0, b1;      // blocks [b0, b1)
  bool first, last;    // the chain starts at +0 / the channel scale is applied
  float* c;            // c[i * ldc + n]
  int64_t ldc;
};

// Group scale of row r for block b (int4 / int6).
inline float groupScale(const WeightView& w, int64_t r, int64_t b) {
  const int64_t G = (w.cols + w.group_size - 1) / w.group_size;
  return w.group_scale[r * G + (b * 64) / w.group_size];
}

// The scalar definition for tm tokens.
void tileGeneric(const TileArgs& t, int64_t tm) {
  const WeightView& w = *t.w;
  const int64_t K = w.cols, B = blockCols(w), nb = K / B, W = t.width;
  const Kind kind = kindOf(w);
  for (int64_t i = 0; i < tm; ++i)
    for (int64_t n = 0; n < W; ++n) {
      const int64_t tok = t.t0 + i, r = t.row0 + n;
      float acc = t.first ? 0.0f : t.c[i * t.ldc + n];
      for (int64_t b = t.b0; b < t.b1; ++b) {
        const int8_t* q = t.a->q.data() + tok * K + b * B;
        int32_t d = t.a->minus[tok * nb + b];
        if (kind == kI8) {
          for (int64_t p = b * 8; p < b * 8 + 8; ++p)
            for (int j = 0; j < 4; ++j) d += int32_t(t.panel[(p * W + n) * 4 + j]) * q[(p - b * 8) * 4 + j];
          acc = std::fma(static_cast<float>(d), t.a->scale[tok * nb + b], acc);
        } else if (kind == kI6) {
          for (int64_t c = 0; c < 64; ++c) d += i6PanelU(t.panel, W, n, b * 64 + c) * q[c];
          acc = std::fma(static_cast<float>(d) * t.a->scale[tok * nb + b], groupScale(w, r, b), acc);
        } else {
          for (int64_t o = b * 8; o < b * 8 + 8; ++o)
            for (int j = 0; j < 4; ++j) {
              const uint8_t v = t.panel[(o * W + n) * 4 + j];
              const int64_t c = (o - b * 8) * 8;
              d += int32_t(v & 0xf) * q[c + j] + int32_t(v >> 4) * q[c + 4 + j];
            }
          acc = std::fma(static_cast<float>(d) * t.a->scale[tok * nb + b], groupScale(w, r, b), acc);
        }
      }
      t.c[i * t.ldc + n] = (t.last && kind == kI8) ? acc * w.channel_scale[r] : acc;
    }
}

#ifdef DS_CPU_X86
#define DS_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))

bool useVnni() {
  static const bool on = detail::useAvx512() && __builtin_cpu_supports("avx512vnni");
  return on;
}

// One column octet of int4 / int6 weights into MB tokens' integer sums: lo[v] holds u of columns
// 8o..8o+3 (a byte each, a row's four side by side), hi[v] of 8o+4..8o+7; q points at the first
// token's code of column 8o (token i at q + i * K). Decode-sized tiles put hi's products in e.
template <int NV, int MB, bool kSplit>
DS_VNNI __attribute__((always_inline)) inline void dotOctet(__m512i (&d)[MB][NV], __m512i (&e)[MB][NV],
                                                            const __m512i (&lo)[NV], const __m512i (&hi)[NV],
                                                            const int8_t* q, int64_t K) {
  typedef int32_t quad_t __attribute__((may_alias));
  for (int i = 0; i < MB; ++i) {
    const __m512i x0 = _mm512_set1_epi32(*reinterpret_cast<const quad_t*>(q + i * K));
    const __m512i x1 = _mm512_set1_epi32(*reinterpret_cast<const quad_t*>(q + i * K + 4));
    for (int v = 0; v < NV; ++v) {
      d[i][v] = _mm512_dpbusd_epi32(d[i][v], lo[v], x0);
      if constexpr (kSplit) e[i][v] = _mm512_dpbusd_epi32(e[i][v], hi[v], x1);
      else d[i][v] = _mm512_dpbusd_epi32(d[i][v], hi[v], x1);
    }
  }
}

template <int NV, int MB, int KIND>
DS_VNNI void tileVnni(const TileArgs& t) {
  constexpr bool GROUPED = KIND != kI8;
  const WeightView& w = *t.w;
  const int64_t K = w.cols, B = GROUPED ? 64 : 32, nb = K / B, W = t.width;
  typedef int32_t quad_t __attribute__((may_alias));
  __m512 acc[MB][NV];
  for (int i = 0; i < MB; ++i)
    for (int v = 0; v < NV; ++v)
      acc[i][v] = t.first ? _mm512_setzero_ps() : _mm512_loadu_ps(t.c + i * t.ldc + v * 16);
  const __m512i nib = _mm512_set1_epi8(0xf), top = _mm512_set1_epi8(0x30);
  const int64_t G = GROUPED ? (K + w.group_size - 1) / w.group_size : 0;
  const __m512i gidx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                          _mm512_set1_epi32(static_cast<int32_t>(G)));
  // Decode-sized tiles (few chains) split each block's integer sum over two accumulators for
  // more independent vpdpbusd chains; larger tiles keep one (registers). Exact either way.
  constexpr bool kSplit = MB <= 2;
  for (int64_t b = t.b0; b < t.b1; ++b) {
    __m512i d[MB][NV], e[MB][NV];
    for (int i = 0; i < MB; ++i) {
      const __m512i m = _mm512_set1_epi32(t.a->minus[(t.t0 + i) * nb + b]);
      for (int v = 0; v < NV; ++v) d[i][v] = m, e[i][v] = _mm512_setzero_si512();
    }
    const int8_t* qb = t.a->q.data() + t.t0 * K + b * B;
    if constexpr (KIND == kI6) {
      // 4 column pairs of 16 per block, 12 W bytes each: octet 2P's nibbles, 2P + 1's, the highs.
      const uint8_t* wb = t.panel + b * 48 * W;
      for (int P = 0; P < 4; ++P)
        for (int o = 0; o < 2; ++o) {
          __m512i lo[NV], hi[NV];
          for (int v = 0; v < NV; ++v) {
            const uint8_t* pair = wb + P * 12 * W + v * 64;
            const __m512i raw = _mm512_loadu_si512(pair + o * W * 4);
            const __m512i h = _mm512_loadu_si512(pair + 2 * W * 4);
            // High bits of octet o's low / high half (bits 4o and 4o + 2) moved to bits 4-5.
            const __m512i hl = o == 0 ? _mm512_slli_epi16(h, 4) : h;
            const __m512i hh = o == 0 ? _mm512_slli_epi16(h, 2) : _mm512_srli_epi16(h, 2);
            lo[v] = _mm512_ternarylogic_epi32(raw, nib, _mm512_and_si512(hl, top), 0xEA);  // (a & b) | c
            hi[v] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(raw, 4), nib, _mm512_and_si512(hh, top), 0xEA);
          }
          dotOctet<NV, MB, kSplit>(d, e, lo, hi, qb + P * 16 + o * 8, K);
        }
    } else {
      const uint8_t* wb = t.panel + b * 8 * W * 4;  // 8 quads (int8) or 8 octets (int4) per block
      for (int p = 0; p < 8; ++p) {
        __m512i lo[NV], hi[NV];
        for (int v = 0; v < NV; ++v) {
          const __m512i raw = _mm512_loadu_si512(wb + (p * W + v * 16) * 4);
          if constexpr (KIND == kI4) {
            lo[v] = _mm512_and_si512(raw, nib);
            hi[v] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), nib);
          } else {
            lo[v] = raw;
          }
        }
        if constexpr (KIND == kI4) {
          dotOctet<NV, MB, kSplit>(d, e, lo, hi, qb + p * 8, K);
        } else {
          for (int i = 0; i < MB; ++i) {
            const __m512i x0 = _mm512_set1_epi32(*reinterpret_cast<const quad_t*>(qb + i * K + p * 4));
            for (int v = 0; v < NV; ++v) {
              if (kSplit && p % 2 == 1) e[i][v] = _mm512_dpbusd_epi32(e[i][v], lo[v], x0);
              else d[i][v] = _mm512_dpbusd_epi32(d[i][v], lo[v], x0);
            }
          }
        }
      }
    }
    __m512 sw[NV];
    if constexpr (GROUPED) {
      const int64_t g = (b * 64) / w.group_size;
      for (int v = 0; v < NV; ++v)
        sw[v] = w.panel_group_scale_f16
                    ? _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                          w.panel_group_scale_f16 + t.row0 * G + g * W + v * 16)))  // exact
                : w.panel_group_scale
                    ? _mm512_loadu_ps(w.panel_group_scale + t.row0 * G + g * W + v * 16)
                    : _mm512_i32gather_ps(gidx, w.group_scale + (t.row0 + v * 16) * G + g, 4);
    }
    for (int i = 0; i < MB; ++i) {
      const __m512 sx = _mm512_set1_ps(t.a->scale[(t.t0 + i) * nb + b]);
      for (int v = 0; v < NV; ++v) {
        const __m512 df = _mm512_cvtepi32_ps(kSplit ? _mm512_add_epi32(d[i][v], e[i][v]) : d[i][v]);  // exact
        if constexpr (GROUPED) acc[i][v] = _mm512_fmadd_ps(_mm512_mul_ps(df, sx), sw[v], acc[i][v]);
        else acc[i][v] = _mm512_fmadd_ps(df, sx, acc[i][v]);
      }
    }
  }
  for (int v = 0; v < NV; ++v) {
    const __m512 cs = (!GROUPED && t.last) ? _mm512_loadu_ps(w.channel_scale + t.row0 + v * 16) : _mm512_set1_ps(1.0f);
    for (int i = 0; i < MB; ++i)
      _mm512_storeu_ps(t.c + i * t.ldc + v * 16, (!GROUPED && t.last) ? _mm512_mul_ps(acc[i][v], cs) : acc[i][v]);
  }
}

using TileFn = void (*)(const TileArgs&);
template <int NV, int KIND, int... M>
constexpr std::array<TileFn, sizeof...(M)> tiles(std::integer_sequence<int, M...>) {
  return {&tileVnni<NV, M + 1, KIND>...};
}

void tile(const TileArgs& t, int64_t tm, bool portable) {
  if (portable || !useVnni()) return tileGeneric(t, tm);
  static constexpr auto seq = std::make_integer_sequence<int, kTileM>{};
  static constexpr std::array<std::array<TileFn, kTileM>, 3> two = {tiles<2, kI8>(seq), tiles<2, kI4>(seq), tiles<2, kI6>(seq)};
  static constexpr std::array<std::array<TileFn, kTileM>, 3> one = {tiles<1, kI8>(seq), tiles<1, kI4>(seq), tiles<1, kI6>(seq)};
  (t.width == kPanel ? two : one)[kindOf(*t.w)][tm - 1](t);
}
#else
void tile(const TileArgs& t, int64_t tm, bool) { tileGeneric(t, tm); }
#endif

}  // namespace

bool canUseInt8Activations(const WeightView& w) {
  if (w.packed != 0 || w.int8_act || w.bf16_act || w.block_scale || w.rows < kMinPanel ||
      w.rows % kMinPanel != 0)
    return false;
  if (w.type == WeightType::I8) return w.channel_scale && !w.group_scale && w.cols % 32 == 0;
  if (w.type == WeightType::I4 || w.type == WeightType::I6)
    return w.group_scale && !w.group_zero && !w.channel_scale && w.cols % 64 == 0 &&
           (w.group_size % 64 == 0 || w.group_size >= w.cols);
  return false;
}

int64_t int8ActScaleFloats(const WeightView& w) {
  if (!isGrouped(w) || !canUseInt8Activations(w)) return 0;
  return w.rows * ((w.cols + w.group_size - 1) / w.group_size);
}

WeightView packInt8Activations(const WeightView& w, void* dst, float* scale_dst) {
  const int64_t K = w.cols, rb = storedRowBytes(w);
  const Kind kind = kindOf(w);
  const bool int4 = kind == kI4;
  const auto* src = static_cast<const uint8_t*>(w.data);
  auto* out = static_cast<uint8_t*>(dst);
  detail::parallelFor(actPanels(w.rows), 4, [&](int64_t b, int64_t e) {
    std::vector<uint8_t> rows;  // a copy: dst may be w.data
    for (int64_t j = b; j < e; ++j) {
      const int64_t W = actPanelWidth(w.rows, j);
      rows.assign(src + j * kPanel * rb, src + j * kPanel * rb + W * rb);
      uint8_t* o = out + j * kPanel * rb;
      if (kind == kI6) {
        std::memset(o, 0, W * rb);
        for (int64_t c = 0; c < K; ++c) {
          const int64_t k = c % 16, oct = k / 8, half = (k % 8) / 4, i = k % 4;
          uint8_t* pair = o + (c / 16) * 12 * W;
          for (int64_t n = 0; n < W; ++n) {
            const int u = detail::i6Code(rows.data() + n * rb, c) + 32;  // i6PanelU's inverse
            pair[(oct * W + n) * 4 + i] |= static_cast<uint8_t>((u & 0xf) << (4 * half));
            pair[(2 * W + n) * 4 + i] |= static_cast<uint8_t>((u >> 4) << (2 * (2 * oct + half)));
          }
        }
        continue;
      }
      for (int64_t p = 0; p < (int4 ? K / 8 : K / 4); ++p)
        for (int64_t n = 0; n < W; ++n, o += 4) {
          const uint8_t* r = rows.data() + n * rb;
          for (int i = 0; i < 4; ++i) {
            if (!int4) {
              o[i] = r[4 * p + i] ^ 0x80;  // code + 128
              continue;
            }
            // Row-major int4: byte m holds columns 2m (low nibble) and 2m + 1; two's complement.
            auto code = [&](int64_t c) { return ((r[c / 2] >> (4 * (c % 2))) & 0xf) ^ 8; };  // + 8
            o[i] = static_cast<uint8_t>(code(8 * p + i) | code(8 * p + 4 + i) << 4);
          }
        }
    }
  });
  WeightView v = w;
  v.data = dst;
  v.int8_act = true;
  if (kind != kI8 && scale_dst) {
    const int64_t G = (K + w.group_size - 1) / w.group_size;
    for (int64_t j = 0; j < actPanels(w.rows); ++j) {
      const int64_t W = actPanelWidth(w.rows, j);
      for (int64_t g = 0; g < G; ++g)
        for (int64_t n = 0; n < W; ++n) scale_dst[j * kPanel * G + g * W + n] = w.group_scale[(j * kPanel + n) * G + g];
    }
    v.panel_group_scale = scale_dst;
  }
  return v;
}

bool panelScalesToF16(const float* scales, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; ++i)
    if (!detail::f16BitsIfExact(scales[i], out + i)) return false;
  return true;
}

namespace detail {

void unpackInt8ActRow(const WeightView& w, int64_t r, uint8_t* row) {
  const int64_t K = w.cols, rb = storedRowBytes(w), j = r / kPanel, W = actPanelWidth(w.rows, j), n = r % kPanel;
  const uint8_t* panel = static_cast<const uint8_t*>(w.data) + j * kPanel * rb;
  if (kindOf(w) == kI6) {
    std::memset(row, 0, rb);
    for (int64_t c = 0; c < K; ++c) i6Store(row, c, i6PanelU(panel, W, n, c) - 32);
    return;
  }
  if (kindOf(w) == kI8) {
    for (int64_t p = 0; p < K / 4; ++p)
      for (int i = 0; i < 4; ++i) row[4 * p + i] = panel[(p * W + n) * 4 + i] ^ 0x80;
    return;
  }
  std::memset(row, 0, rb);
  for (int64_t o = 0; o < K / 8; ++o)
    for (int i = 0; i < 4; ++i) {
      const uint8_t v = panel[(o * W + n) * 4 + i];
      const int64_t c0 = 8 * o + i, c1 = 8 * o + 4 + i;
      row[c0 / 2] |= static_cast<uint8_t>(((v & 0xf) ^ 8) << (4 * (c0 % 2)));
      row[c1 / 2] |= static_cast<uint8_t>(((v >> 4) ^ 8) << (4 * (c1 % 2)));
    }
}

void linearInt8Act(const float* x, int64_t T, const WeightView& w, float* y, bool portable) {
  thread_local ActInt8 mine;
  ActInt8& act = mine;  // the workers below read the caller's
  quantizeActivations(x, T, w, act);
  const int64_t N = w.rows, K = w.cols, rb = storedRowBytes(w), B = blockCols(w), nb = K / B;
  const auto* base = static_cast<const uint8_t*>(w.data);
  forPanelTiles(T, N, K, nb, kBlockK / B, kBlockM, kTileM,
                [&](int64_t j, int64_t width, int64_t m, int64_t tm, int64_t b0, int64_t b1) {
                  TileArgs a{&w, base + j * kPanel * rb, j * kPanel, width, &act, m, b0, b1,
                             b0 == 0, b1 == nb, y + m * N + j * kPanel, N};
                  tile(a, tm, portable);
                });
}

}  // namespace detail

}  // namespace ds::cpu
