// linear on int8 / int4 weights with int8 activations (WeightView::int8_act): integer dot
// products (AVX-512 VNNI vpdpbusd where present) instead of decoding every weight to f32.
//
// Definition (what every path computes, bit for bit):
//  - each token's row of x is quantized per block of 32 columns: a = max |x|, q = nearbyint(x *
//    (127 / a)) (all zero when a = 0), s_x = a / 127;
//  - per block and lane l (0..7, columns 4l..4l+3 of the block) the exact integer
//    d_l = sum q_x * q_w; int8 (channel scale s_w): acc_l = fma(float(d_l), s_x, acc_l) over
//    the blocks in order, y = reduce8(acc) * s_w; int4 (group scales, groups of 64 k columns):
//    the blocks of a group accumulate into g_l the same way, then acc_l = fma(g_l, s_w[g], acc_l).
// Integer sums are exact, so the order inside d_l is free; everything else runs in one order
// per (token, row) whatever the batch: batch invariance holds.
//
// Stored layout (made at load by packInt8Act): rows in groups of 4, each row cut into 32-byte
// chunks, the 4 rows' chunks interleaved (one sequential stream). A chunk is 32 int8 codes + 128
// (unsigned, for vpdpbusd's unsigned operand) or 64 int4 codes + 8 with the low nibbles holding
// columns 0..31 and the high nibbles 32..63. The activation's int32 "minus offset" sums
// (-128 or -8 times the sum of each lane's 4 codes) start each vpdpbusd, so it yields d_l.
#include <algorithm>
#include <cmath>

#include "cpu/internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define DS_CPU_X86 1
#endif

namespace ds::cpu {
namespace {

constexpr int64_t kRows = 4, kChunk = 32, kBlock = 32;

bool isInt4(const WeightView& w) { return w.type == WeightType::I4; }
// Columns per 32-byte chunk.
int64_t chunkCols(const WeightView& w) { return isInt4(w) ? 64 : 32; }

// Activations of T tokens, quantized per block (see the definition above).
struct ActInt8 {
  std::vector<int8_t> q;         // [T, K]
  std::vector<float> scale;      // [T, K / 32]
  std::vector<int32_t> minus;    // [T, K / 4]: -offset * (sum of each lane's 4 codes)
};

void quantizeActivations(const float* x, int64_t T, int64_t K, int32_t offset, ActInt8& a) {
  const int64_t nb = K / kBlock;
  a.q.resize(T * K);
  a.scale.resize(T * nb);
  a.minus.resize(T * K / 4);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + t * K + b * kBlock;
      float amax = 0.0f;
      for (int64_t j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(xb[j]));
      const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      a.scale[t * nb + b] = amax / 127.0f;
      int8_t* q = a.q.data() + t * K + b * kBlock;
      for (int64_t j = 0; j < kBlock; ++j)
        q[j] = static_cast<int8_t>(std::clamp(std::nearbyint(xb[j] * inv), -127.0f, 127.0f));
      int32_t* m = a.minus.data() + (t * K + b * kBlock) / 4;
      for (int64_t l = 0; l < kBlock / 4; ++l)
        m[l] = -offset * (q[4 * l] + q[4 * l + 1] + q[4 * l + 2] + q[4 * l + 3]);
    }
}

// The weight's scale pointers for rows r..r+3.
struct RowScales {
  const float* s[kRows];
  int64_t G = 1, group_chunks = 0;  // int4: groups per row, 32-byte chunks per group
};

RowScales rowScales(const WeightView& w, int64_t r) {
  RowScales rs;
  if (isInt4(w)) {
    const int64_t g = std::min(w.group_size, w.cols);
    rs.G = (w.cols + w.group_size - 1) / w.group_size;
    rs.group_chunks = g / 64;
    for (int64_t j = 0; j < kRows; ++j) rs.s[j] = w.group_scale + (r + j) * rs.G;
  } else {
    for (int64_t j = 0; j < kRows; ++j) rs.s[j] = w.channel_scale + r + j;
  }
  return rs;
}

// Lane l's integer dot of a 32-byte chunk of unsigned codes u with 32 activation codes q,
// started from minus[l]: the exact d_l.
inline void dotLanes(const uint8_t* u, const int8_t* q, const int32_t* minus, int32_t* d) {
  for (int l = 0; l < 8; ++l) {
    int32_t s = minus[l];
    for (int j = 4 * l; j < 4 * l + 4; ++j) s += static_cast<int32_t>(u[j]) * q[j];
    d[l] = s;
  }
}

// Portable path: tokens [t0, t0 + tm) x rows of group g.
void groupGeneric(const WeightView& w, const ActInt8& a, int64_t t0, int64_t tm, int64_t g,
                  float* y, int64_t ldy) {
  const int64_t K = w.cols, nb = K / kBlock, chunks = K / chunkCols(w);
  const auto* base = static_cast<const uint8_t*>(w.data) + g * kRows * chunks * kChunk;
  const RowScales rs = rowScales(w, g * kRows);
  for (int64_t t = t0; t < t0 + tm; ++t)
    for (int64_t j = 0; j < kRows; ++j) {
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, grp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      const int8_t* q = a.q.data() + t * K;
      const int32_t* minus = a.minus.data() + t * K / 4;
      const float* sx = a.scale.data() + t * nb;
      for (int64_t c = 0; c < chunks; ++c) {
        const uint8_t* chunk = base + (c * kRows + j) * kChunk;
        int32_t d[8];
        if (isInt4(w)) {
          uint8_t lo[32], hi[32];
          for (int i = 0; i < 32; ++i) {
            lo[i] = chunk[i] & 0xf;
            hi[i] = chunk[i] >> 4;
          }
          dotLanes(lo, q + 64 * c, minus + 16 * c, d);
          for (int l = 0; l < 8; ++l) grp[l] = std::fma(static_cast<float>(d[l]), sx[2 * c], grp[l]);
          dotLanes(hi, q + 64 * c + 32, minus + 16 * c + 8, d);
          for (int l = 0; l < 8; ++l) grp[l] = std::fma(static_cast<float>(d[l]), sx[2 * c + 1], grp[l]);
          if ((c + 1) % rs.group_chunks == 0 || c + 1 == chunks) {
            const float s = rs.s[j][c / rs.group_chunks];
            for (int l = 0; l < 8; ++l) {
              acc[l] = std::fma(grp[l], s, acc[l]);
              grp[l] = 0.0f;
            }
          }
        } else {
          dotLanes(chunk, q + 32 * c, minus + 8 * c, d);
          for (int l = 0; l < 8; ++l) acc[l] = std::fma(static_cast<float>(d[l]), sx[c], acc[l]);
        }
      }
      const float s = detail::reduce8(acc);
      y[(t - t0) * ldy + j] = isInt4(w) ? s : s * rs.s[j][0];
    }
}

#ifdef DS_CPU_X86
#define DS_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))

bool useVnni() {
  static const bool on = detail::useAvx512() && __builtin_cpu_supports("avx512vnni");
  return on;
}

// The same computation as groupGeneric for TM tokens, 8 lanes per ymm.
template <int TM, bool INT4>
DS_VNNI void groupVnni(const WeightView& w, const ActInt8& a, int64_t t0, int64_t g, float* y,
                       int64_t ldy) {
  const int64_t K = w.cols, nb = K / kBlock, chunks = K / (INT4 ? 64 : 32);
  const auto* base = static_cast<const uint8_t*>(w.data) + g * kRows * chunks * kChunk;
  const RowScales rs = rowScales(w, g * kRows);
  __m256 acc[TM][kRows], grp[TM][kRows];
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < kRows; ++j) acc[i][j] = grp[i][j] = _mm256_setzero_ps();
  const __m256i nib = _mm256_set1_epi8(0xf);
  for (int64_t c = 0; c < chunks; ++c) {
    const uint8_t* chunk = base + c * kRows * kChunk;
    __m256i lo[kRows], hi[kRows];
    for (int j = 0; j < kRows; ++j) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(chunk + j * kChunk));
      if constexpr (INT4) {
        lo[j] = _mm256_and_si256(v, nib);
        hi[j] = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
      } else {
        lo[j] = v;
      }
    }
    for (int i = 0; i < TM; ++i) {
      const int64_t t = t0 + i;
      const int8_t* q = a.q.data() + t * K;
      const int32_t* minus = a.minus.data() + t * K / 4;
      const float* sx = a.scale.data() + t * nb;
      if constexpr (INT4) {
        const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 64 * c));
        const __m256i q1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 64 * c + 32));
        const __m256i m0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(minus + 16 * c));
        const __m256i m1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(minus + 16 * c + 8));
        const __m256 s0 = _mm256_broadcast_ss(sx + 2 * c), s1 = _mm256_broadcast_ss(sx + 2 * c + 1);
        for (int j = 0; j < kRows; ++j) {
          grp[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_dpbusd_epi32(m0, lo[j], q0)), s0, grp[i][j]);
          grp[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_dpbusd_epi32(m1, hi[j], q1)), s1, grp[i][j]);
        }
      } else {
        const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * c));
        const __m256i m0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(minus + 8 * c));
        const __m256 s0 = _mm256_broadcast_ss(sx + c);
        for (int j = 0; j < kRows; ++j)
          acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_dpbusd_epi32(m0, lo[j], q0)), s0, acc[i][j]);
      }
    }
    if constexpr (INT4) {
      if ((c + 1) % rs.group_chunks == 0 || c + 1 == chunks) {
        for (int j = 0; j < kRows; ++j) {
          const __m256 s = _mm256_set1_ps(rs.s[j][c / rs.group_chunks]);
          for (int i = 0; i < TM; ++i) {
            acc[i][j] = _mm256_fmadd_ps(grp[i][j], s, acc[i][j]);
            grp[i][j] = _mm256_setzero_ps();
          }
        }
      }
    }
  }
  alignas(32) float lanes[8];
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < kRows; ++j) {
      _mm256_store_ps(lanes, acc[i][j]);
      const float s = detail::reduce8(lanes);
      y[i * ldy + j] = INT4 ? s : s * rs.s[j][0];
    }
}

void group(const WeightView& w, const ActInt8& a, int64_t t0, int64_t tm, int64_t g, float* y,
           int64_t ldy) {
  if (!useVnni()) return groupGeneric(w, a, t0, tm, g, y, ldy);
  if (isInt4(w)) return tm == 1 ? groupVnni<1, true>(w, a, t0, g, y, ldy) : groupVnni<2, true>(w, a, t0, g, y, ldy);
  return tm == 1 ? groupVnni<1, false>(w, a, t0, g, y, ldy) : groupVnni<2, false>(w, a, t0, g, y, ldy);
}
#else
void group(const WeightView& w, const ActInt8& a, int64_t t0, int64_t tm, int64_t g, float* y,
           int64_t ldy) {
  groupGeneric(w, a, t0, tm, g, y, ldy);
}
#endif

}  // namespace

bool canUseInt8Activations(const WeightView& w) {
  if (w.packed != 0 || w.int8_act || w.block_scale || w.rows < kRows || w.rows % kRows != 0) return false;
  if (w.type == WeightType::I8)
    return w.channel_scale && !w.group_scale && w.cols % 32 == 0;
  if (w.type == WeightType::I4)
    return w.group_scale && !w.group_zero && !w.channel_scale && w.cols % 64 == 0 &&
           (w.group_size % 64 == 0 || w.group_size >= w.cols);
  return false;
}

WeightView packInt8Activations(const WeightView& w, void* dst) {
  const int64_t rb = weightRowBytes(w.type, w.cols), chunks = rb / kChunk;
  const auto* src = static_cast<const uint8_t*>(w.data);
  auto* out = static_cast<uint8_t*>(dst);
  const bool int4 = isInt4(w);
  detail::parallelFor(w.rows / kRows, 16, [&](int64_t b, int64_t e) {
    std::vector<uint8_t> grp(kRows * rb);  // a copy: dst may be w.data
    for (int64_t g = b; g < e; ++g) {
      std::memcpy(grp.data(), src + g * kRows * rb, kRows * rb);
      uint8_t* o = out + g * kRows * rb;
      for (int64_t c = 0; c < chunks; ++c)
        for (int64_t j = 0; j < kRows; ++j, o += kChunk) {
          const uint8_t* in = grp.data() + j * rb + c * kChunk;  // columns [64c, 64c + 64) (int4)
          if (!int4) {
            for (int i = 0; i < 32; ++i) o[i] = in[i] ^ 0x80;  // code + 128
            continue;
          }
          // Columns 2m, 2m + 1 (byte m) and 32 + 2m, 33 + 2m (byte 16 + m), each code + 8: the
          // low nibbles of o[2m], o[2m + 1] and their high nibbles.
          for (int m = 0; m < 16; ++m) {
            const uint8_t a = in[m] ^ 0x88, b = in[16 + m] ^ 0x88;
            o[2 * m] = static_cast<uint8_t>((a & 0xf) | ((b & 0xf) << 4));
            o[2 * m + 1] = static_cast<uint8_t>((a >> 4) | (b & 0xf0));
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
  const int64_t rb = weightRowBytes(w.type, w.cols), chunks = rb / kChunk;
  const auto* g = static_cast<const uint8_t*>(w.data) + (r / kRows) * kRows * rb + (r % kRows) * kChunk;
  for (int64_t c = 0; c < chunks; ++c) {
    const uint8_t* in = g + c * kRows * kChunk;
    uint8_t* o = row + c * kChunk;
    if (!isInt4(w)) {
      for (int i = 0; i < 32; ++i) o[i] = in[i] ^ 0x80;
      continue;
    }
    std::memset(o, 0, kChunk);
    for (int i = 0; i < 32; ++i) {
      const int lo = (in[i] & 0xf) ^ 8, hi = (in[i] >> 4) ^ 8;  // back to two's complement
      o[i >> 1] |= static_cast<uint8_t>(lo << (4 * (i & 1)));
      o[(32 + i) >> 1] |= static_cast<uint8_t>(hi << (4 * (i & 1)));
    }
  }
}

void linearInt8Act(const float* x, int64_t T, const WeightView& w, float* y) {
  const int64_t N = w.rows, K = w.cols, groups = N / kRows;
  thread_local ActInt8 mine;
  ActInt8& act = mine;  // the workers below read the caller's
  quantizeActivations(x, T, K, isInt4(w) ? 8 : 128, act);
  // A group's weights stay in cache while every token pair passes over them.
  const int64_t min_groups = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, kRows * K * T));
  detail::parallelFor(groups, min_groups, [&](int64_t b, int64_t e) {
    alignas(32) float out[2 * kRows];
    for (int64_t g = b; g < e; ++g)
      for (int64_t t0 = 0; t0 < T; t0 += 2) {
        const int64_t tm = std::min<int64_t>(2, T - t0);
        group(w, act, t0, tm, g, out, kRows);
        for (int64_t i = 0; i < tm; ++i)
          std::memcpy(y + (t0 + i) * N + g * kRows, out + i * kRows, kRows * sizeof(float));
      }
  });
}

}  // namespace detail

}  // namespace ds::cpu
