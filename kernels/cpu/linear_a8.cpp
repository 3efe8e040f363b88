// linear on int8 / int4 weights with int8 activations (WeightView::int8_act): integer dot
// products (AVX-512 VNNI vpdpbusd where present) instead of decoding every weight to f32.
//
// Stored layout (made at load by packInt8Activations): rows in groups of 4; each row's bytes cut
// into 64-byte units (+ one 32-byte tail unit when the row has 32 bytes over), the 4 rows' units
// interleaved (unit u of row j at u * 256 + j * 64, the tails after the last full units at
// j * 32): one sequential stream. int8 bytes are code + 128 (vpdpbusd's unsigned operand). int4:
// each 32-byte half holds 64 columns, byte i = (code[i] + 8) | (code[32 + i] + 8) << 4, so one
// 64-byte unit (128 columns) splits into "low" columns 0-31, 64-95 and "high" 32-63, 96-127.
//
// Definition (what every path computes, bit for bit):
//  - each token's row of x is quantized per block of 32 columns (int8 weights) or 64 (int4):
//    a = max |x|, q = nearbyint(x * (127 / a)) (all zero when a = 0), s = a / 127; the codes are
//    laid out in the order the weight units take them (int4: per unit its low nibbles'
//    columns, then its high nibbles');
//  - 16 float lanes acc. Lane l of a 64-byte unit covers the 4 bytes 4l..4l+3 of each operand;
//    its exact integer d_l = sum q_x * q_w over them (int4: over its low and its high nibbles,
//    both in the lane's 64-column block; vpdpbusd started from -offset times the activation
//    codes' sum, so the weights' +128 / +8 cancels). int8: acc_l = fma(float(d_l), s_l, acc_l)
//    with s_l the scale of lane l's block. int4: acc_l = fma(float(d_l) * s_l, sw_l, acc_l)
//    with sw_l the group scale of lane l's columns. A 32-byte tail unit does the same on lanes
//    0-7 only.
//  - y = reduce8(acc_0..7) + reduce8(acc_8..15), times the channel scale for int8.
// Integer sums are exact, so their order is free; the float part runs in one order per (token,
// row) whatever the batch or tile: batch invariance holds.
#include <algorithm>
#include <cmath>

#include "cpu/internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define DS_CPU_X86 1
#endif

namespace ds::cpu {
namespace {

constexpr int64_t kRows = 4, kUnit = 64, kTail = 32;

bool isInt4(const WeightView& w) { return w.type == WeightType::I4; }

// A row's 64-byte units and its 32-byte tail (0 or 1).
struct Units {
  int64_t rb, full, tail;
};
Units unitsOf(const WeightView& w) {
  const int64_t rb = weightRowBytes(w.type, w.cols);
  return {rb, rb / kUnit, (rb % kUnit) / kTail};
}

// Activations of T tokens in kernel order (see the definition above).
struct ActInt8 {
  std::vector<int8_t> q;       // [T, K]
  // int8 weights: per lane of 4 columns (K / 4 per token): -128 * the lane's code sum, and its
  // block's scale. int4: per lane of a unit (K / 8 per token: 16 per 128-column unit, 8 for a
  // 64-column tail): -8 * the sum of the lane's 4 low and 4 high codes, and its block's scale.
  std::vector<int32_t> minus;
  std::vector<float> scale;
};

// One block's codes (n columns) and scale.
float quantizeBlock(const float* x, int64_t n, int8_t* q) {
  float amax = 0.0f;
  for (int64_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  for (int64_t j = 0; j < n; ++j)
    q[j] = static_cast<int8_t>(std::clamp(std::nearbyint(x[j] * inv), -127.0f, 127.0f));
  return amax / 127.0f;
}

inline int32_t sum4(const int8_t* q) { return q[0] + q[1] + q[2] + q[3]; }

void quantizeActivations(const float* x, int64_t T, const WeightView& w, ActInt8& a) {
  const int64_t K = w.cols;
  const Units u = unitsOf(w);
  const bool int4 = isInt4(w);
  a.q.resize(T * K);
  a.minus.resize(T * K / (int4 ? 8 : 4));
  a.scale.resize(T * K / (int4 ? 8 : 4));
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * K;
    int8_t* qt = a.q.data() + t * K;
    int32_t* mt = a.minus.data() + t * K / (int4 ? 8 : 4);
    float* st = a.scale.data() + t * K / (int4 ? 8 : 4);
    if (!int4) {  // blocks of 32 in natural order; 8 lanes each
      for (int64_t b = 0; b < K / 32; ++b) {
        const float s = quantizeBlock(xt + 32 * b, 32, qt + 32 * b);
        for (int l = 0; l < 8; ++l) {
          mt[8 * b + l] = -128 * sum4(qt + 32 * b + 4 * l);
          st[8 * b + l] = s;
        }
      }
      continue;
    }
    // int4: blocks of 64 columns. A unit (128 columns) keeps [0, 32) [64, 96) [32, 64) [96, 128)
    // (its low nibbles' columns, then its high nibbles'); lanes 0-7 see block 0, 8-15 block 1.
    int8_t blk[128];
    for (int64_t n = 0; n < u.full; ++n) {
      const float s0 = quantizeBlock(xt + 128 * n, 64, blk);
      const float s1 = quantizeBlock(xt + 128 * n + 64, 64, blk + 64);
      int8_t* q = qt + 128 * n;
      std::memcpy(q, blk, 32);
      std::memcpy(q + 32, blk + 64, 32);
      std::memcpy(q + 64, blk + 32, 32);
      std::memcpy(q + 96, blk + 96, 32);
      for (int l = 0; l < 16; ++l) {
        mt[16 * n + l] = -8 * (sum4(q + 4 * l) + sum4(q + 64 + 4 * l));
        st[16 * n + l] = l < 8 ? s0 : s1;
      }
    }
    if (u.tail) {  // 64 columns in natural order: low nibbles [0, 32), high [32, 64)
      int8_t* q = qt + 128 * u.full;
      const float s = quantizeBlock(xt + 128 * u.full, 64, q);
      for (int l = 0; l < 8; ++l) {
        mt[16 * u.full + l] = -8 * (sum4(q + 4 * l) + sum4(q + 32 + 4 * l));
        st[16 * u.full + l] = s;
      }
    }
  }
}

// int4: the group scale of column c of row r.
inline float groupScale(const WeightView& w, int64_t r, int64_t c) {
  const int64_t G = (w.cols + w.group_size - 1) / w.group_size;
  return w.group_scale[r * G + c / w.group_size];
}

// Lane l's exact integer over bytes 4l..4l+3 of unsigned codes u and activation codes q.
inline int32_t laneDot(const uint8_t* u, const int8_t* q, int32_t minus, int l) {
  int32_t s = minus;
  for (int j = 4 * l; j < 4 * l + 4; ++j) s += static_cast<int32_t>(u[j]) * q[j];
  return s;
}

// Portable path: y[(t - t0) * ldy + j] for tokens [t0, t0 + tm), rows 4g + j.
void groupGeneric(const WeightView& w, const ActInt8& a, int64_t t0, int64_t tm, int64_t g,
                  float* y, int64_t ldy) {
  const int64_t K = w.cols;
  const Units u = unitsOf(w);
  const auto* base = static_cast<const uint8_t*>(w.data) + g * kRows * u.rb;
  const bool int4 = isInt4(w);
  const int64_t ucols = int4 ? 128 : 64;  // columns per full unit
  for (int64_t t = t0; t < t0 + tm; ++t)
    for (int64_t j = 0; j < kRows; ++j) {
      const int64_t r = g * kRows + j;
      const int8_t* q = a.q.data() + t * K;
      const int32_t* minus = a.minus.data() + t * K / (int4 ? 8 : 4);
      const float* sx = a.scale.data() + t * K / (int4 ? 8 : 4);
      float acc[16] = {};
      for (int64_t n = 0; n < u.full + u.tail; ++n) {
        const bool tail = n == u.full;
        const uint8_t* v = tail ? base + u.full * kRows * kUnit + j * kTail : base + (n * kRows + j) * kUnit;
        const int lanes = tail ? 8 : 16, bytes = tail ? 32 : 64;
        const int64_t c0 = n * ucols;  // first column (also the kernel-order offset of q)
        if (!int4) {
          for (int l = 0; l < lanes; ++l)
            acc[l] = std::fma(static_cast<float>(laneDot(v, q + c0, minus[c0 / 4 + l], l)),
                              sx[c0 / 4 + l], acc[l]);
          continue;
        }
        uint8_t lo[64], hi[64];
        for (int i = 0; i < bytes; ++i) {
          lo[i] = v[i] & 0xf;
          hi[i] = v[i] >> 4;
        }
        for (int l = 0; l < lanes; ++l) {
          // Low then high nibbles, one exact integer; lanes 0-7 hold the unit's first 64
          // columns (one activation block, one group), 8-15 the next 64.
          const int32_t d = laneDot(hi, q + c0 + bytes, laneDot(lo, q + c0, minus[16 * n + l], l), l);
          const float tl = static_cast<float>(d) * sx[16 * n + l];
          acc[l] = std::fma(tl, groupScale(w, r, c0 + (l < 8 ? 0 : 64)), acc[l]);
        }
      }
      const float s = detail::reduce8(acc) + detail::reduce8(acc + 8);
      y[(t - t0) * ldy + j] = int4 ? s : s * w.channel_scale[r];
    }
}

#ifdef DS_CPU_X86
#define DS_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))

bool useVnni() {
  static const bool on = detail::useAvx512() && __builtin_cpu_supports("avx512vnni");
  return on;
}

// groupGeneric for TM tokens: one 16-lane vector per (token, row).
template <int TM, bool INT4>
DS_VNNI void groupVnni(const WeightView& w, const ActInt8& a, int64_t t0, int64_t g, float* y,
                       int64_t ldy) {
  const int64_t K = w.cols;
  const Units u = unitsOf(w);
  const auto* base = static_cast<const uint8_t*>(w.data) + g * kRows * u.rb;
  constexpr int64_t ucols = INT4 ? 128 : 64;
  const int64_t r0 = g * kRows;
  __m512 acc[TM][kRows];
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < kRows; ++j) acc[i][j] = _mm512_setzero_ps();
  const __m512i nib = _mm512_set1_epi8(0xf);
  // int4 group scales per unit: lanes 0-7 take the group of the unit's first 64 columns, 8-15
  // of the next 64. Groups of a multiple of 128 (or one group per row) cover whole units: one
  // broadcast per group change; groups of 64: two consecutive scales; else the general lookup.
  const float* srow[kRows] = {};
  int64_t upg = 0;  // whole units per group (0: general)
  if constexpr (INT4) {
    const int64_t G = (K + w.group_size - 1) / w.group_size;
    for (int j = 0; j < kRows; ++j) srow[j] = w.group_scale + (r0 + j) * G;
    upg = G == 1 ? u.full + 1 : w.group_size % 128 == 0 ? w.group_size / 128 : 0;
  }
  __m512 swg[kRows];
  const __m512i pair = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  int64_t gi = -1, left = 0;  // current group and its units still to come (upg > 0)
  for (int64_t n = 0; n < u.full; ++n) {
    const bool reload = upg > 0 && left == 0;
    if (reload) ++gi, left = upg;
    --left;
    const uint8_t* unit = base + n * kRows * kUnit;
    const int64_t c0 = n * ucols;
    __m512i lo[kRows], hi[kRows];
    __m512 sw[kRows];
    for (int j = 0; j < kRows; ++j) {
      const __m512i v = _mm512_loadu_si512(unit + j * kUnit);
      if constexpr (INT4) {
        lo[j] = _mm512_and_si512(v, nib);
        hi[j] = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
        if (upg > 0) {
          if (reload) swg[j] = _mm512_set1_ps(srow[j][gi]);
          sw[j] = swg[j];
        } else if (w.group_size == 64) {
          sw[j] = _mm512_permutexvar_ps(
              pair, _mm512_castps128_ps512(_mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(srow[j] + 2 * n)))));
        } else {
          sw[j] = _mm512_mask_broadcastss_ps(_mm512_set1_ps(groupScale(w, r0 + j, c0)), 0xFF00,
                                             _mm_set_ss(groupScale(w, r0 + j, c0 + 64)));
        }
      } else {
        lo[j] = v;
      }
    }
    for (int i = 0; i < TM; ++i) {
      const int64_t t = t0 + i;
      const int8_t* q = a.q.data() + t * K + c0;
      const int64_t per = INT4 ? 8 : 4;  // columns per lane entry of minus / scale
      const int32_t* minus = a.minus.data() + (t * K + c0) / per;
      const float* sx = a.scale.data() + (t * K + c0) / per;
      const __m512i q0 = _mm512_loadu_si512(q), m0 = _mm512_loadu_si512(minus);
      const __m512 s0 = _mm512_loadu_ps(sx);
      if constexpr (INT4) {
        const __m512i q1 = _mm512_loadu_si512(q + 64);
        for (int j = 0; j < kRows; ++j) {
          const __m512i d = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(m0, lo[j], q0), hi[j], q1);
          acc[i][j] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(d), s0), sw[j], acc[i][j]);
        }
      } else {
        for (int j = 0; j < kRows; ++j)
          acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(m0, lo[j], q0)), s0, acc[i][j]);
      }
    }
  }
  if (u.tail) {  // lanes 0-7 only
    const uint8_t* unit = base + u.full * kRows * kUnit;
    const int64_t c0 = u.full * ucols;
    const __m256i nib8 = _mm256_set1_epi8(0xf);
    for (int j = 0; j < kRows; ++j) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(unit + j * kTail));
      for (int i = 0; i < TM; ++i) {
        const int64_t t = t0 + i;
        const int8_t* q = a.q.data() + t * K + c0;
        const int64_t per = INT4 ? 8 : 4;
        const int32_t* minus = a.minus.data() + (t * K + c0) / per;
        const float* sx = a.scale.data() + (t * K + c0) / per;
        const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
        const __m256i m0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(minus));
        __m256 tl;
        if constexpr (INT4) {
          const __m256i q1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32));
          const __m256i d = _mm256_dpbusd_epi32(
              _mm256_dpbusd_epi32(m0, _mm256_and_si256(v, nib8), q0),
              _mm256_and_si256(_mm256_srli_epi16(v, 4), nib8), q1);
          tl = _mm256_mul_ps(_mm256_cvtepi32_ps(d), _mm256_loadu_ps(sx));
          // fma(t, sw, acc) on lanes 0-7: mask3_fmadd keeps acc where the mask is clear.
          acc[i][j] = _mm512_mask3_fmadd_ps(_mm512_castps256_ps512(tl),
                                            _mm512_set1_ps(groupScale(w, r0 + j, c0)), acc[i][j],
                                            0x00FF);
        } else {
          tl = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(m0, v, q0));
          acc[i][j] = _mm512_mask3_fmadd_ps(_mm512_castps256_ps512(tl),
                                            _mm512_castps256_ps512(_mm256_loadu_ps(sx)), acc[i][j],
                                            0x00FF);
        }
      }
    }
  }
  alignas(64) float lanes[16];
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < kRows; ++j) {
      _mm512_store_ps(lanes, acc[i][j]);
      const float s = detail::reduce8(lanes) + detail::reduce8(lanes + 8);
      y[i * ldy + j] = INT4 ? s : s * w.channel_scale[r0 + j];
    }
}

template <bool INT4>
void groupVnniTm(const WeightView& w, const ActInt8& a, int64_t t0, int64_t tm, int64_t g,
                 float* y, int64_t ldy) {
  switch (tm) {
    case 1: return groupVnni<1, INT4>(w, a, t0, g, y, ldy);
    case 2: return groupVnni<2, INT4>(w, a, t0, g, y, ldy);
    case 3: return groupVnni<3, INT4>(w, a, t0, g, y, ldy);
    default: return groupVnni<4, INT4>(w, a, t0, g, y, ldy);
  }
}

void group(const WeightView& w, const ActInt8& a, int64_t t0, int64_t tm, int64_t g, float* y,
           int64_t ldy, bool portable) {
  if (portable || !useVnni()) return groupGeneric(w, a, t0, tm, g, y, ldy);
  if (isInt4(w)) return groupVnniTm<true>(w, a, t0, tm, g, y, ldy);
  return groupVnniTm<false>(w, a, t0, tm, g, y, ldy);
}
#else
void group(const WeightView& w, const ActInt8& a, int64_t t0, int64_t tm, int64_t g, float* y,
           int64_t ldy, bool) {
  groupGeneric(w, a, t0, tm, g, y, ldy);
}
#endif

}  // namespace

bool canUseInt8Activations(const WeightView& w) {
  if (w.packed != 0 || w.int8_act || w.bf16_act || w.block_scale || w.rows < kRows || w.rows % kRows != 0) return false;
  if (w.type == WeightType::I8)
    return w.channel_scale && !w.group_scale && w.cols % 32 == 0;
  if (w.type == WeightType::I4)
    return w.group_scale && !w.group_zero && !w.channel_scale && w.cols % 64 == 0 &&
           (w.group_size % 64 == 0 || w.group_size >= w.cols);
  return false;
}

namespace {

// Where the stored unit holding row byte b of row j (within its group) lies, and its size.
inline int64_t unitOffset(const Units& u, int64_t j, int64_t b) {
  const int64_t n = b / kUnit;
  if (n < u.full) return (n * kRows + j) * kUnit + b % kUnit;
  return u.full * kRows * kUnit + j * kTail + (b - u.full * kUnit);
}

}  // namespace

WeightView packInt8Activations(const WeightView& w, void* dst) {
  const Units u = unitsOf(w);
  const auto* src = static_cast<const uint8_t*>(w.data);
  auto* out = static_cast<uint8_t*>(dst);
  const bool int4 = isInt4(w);
  detail::parallelFor(w.rows / kRows, 16, [&](int64_t b, int64_t e) {
    std::vector<uint8_t> grp(kRows * u.rb);  // a copy: dst may be w.data
    for (int64_t g = b; g < e; ++g) {
      std::memcpy(grp.data(), src + g * kRows * u.rb, kRows * u.rb);
      uint8_t* o = out + g * kRows * u.rb;
      for (int64_t j = 0; j < kRows; ++j)
        for (int64_t h = 0; h < u.rb; h += 32) {  // 32-byte halves (never split across units)
          const uint8_t* in = grp.data() + j * u.rb + h;
          uint8_t* d = o + unitOffset(u, j, h);
          if (!int4) {
            for (int i = 0; i < 32; ++i) d[i] = in[i] ^ 0x80;  // code + 128
            continue;
          }
          // Columns 2m, 2m + 1 (byte m) and 32 + 2m, 33 + 2m (byte 16 + m), each code + 8: the
          // low nibbles of d[2m], d[2m + 1] and their high nibbles.
          for (int m = 0; m < 16; ++m) {
            const uint8_t x = in[m] ^ 0x88, y = in[16 + m] ^ 0x88;
            d[2 * m] = static_cast<uint8_t>((x & 0xf) | ((y & 0xf) << 4));
            d[2 * m + 1] = static_cast<uint8_t>((x >> 4) | (y & 0xf0));
          }
        }
    }
  });
  WeightView v = w;
  v.data = dst;
  v.int8_act = true;
  return v;
}

namespace detail {

void unpackInt8ActRow(const WeightView& w, int64_t r, uint8_t* row) {
  const Units u = unitsOf(w);
  const auto* g = static_cast<const uint8_t*>(w.data) + (r / kRows) * kRows * u.rb;
  for (int64_t h = 0; h < u.rb; h += 32) {
    const uint8_t* in = g + unitOffset(u, r % kRows, h);
    uint8_t* o = row + h;
    if (!isInt4(w)) {
      for (int i = 0; i < 32; ++i) o[i] = in[i] ^ 0x80;
      continue;
    }
    std::memset(o, 0, 32);
    for (int i = 0; i < 32; ++i) {
      const int lo = (in[i] & 0xf) ^ 8, hi = (in[i] >> 4) ^ 8;  // back to two's complement
      o[i >> 1] |= static_cast<uint8_t>(lo << (4 * (i & 1)));
      o[(32 + i) >> 1] |= static_cast<uint8_t>(hi << (4 * (i & 1)));
    }
  }
}

void linearInt8Act(const float* x, int64_t T, const WeightView& w, float* y, bool portable) {
  thread_local ActInt8 mine;
  ActInt8& act = mine;  // the workers below read the caller's
  quantizeActivations(x, T, w, act);
  // 3 bytes of activations per column: code, lane sum, scale.
  forRowGroupTiles<kRows>(T, w.rows, w.cols, 3, y, [&](int64_t t0, int64_t tm, int64_t g, float* out) {
    group(w, act, t0, tm, g, out, kRows, portable);
  });
}

}  // namespace detail

}  // namespace ds::cpu
