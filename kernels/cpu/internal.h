// Private helpers shared by the CPU kernels: threading, weight decoding and the fixed-order dot tiles.
#pragma once

#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu/cpu_kernels.h"

namespace ds::cpu::detail {

// Runs f(begin, end) over [0, n) split into contiguous chunks that the threads claim one at a
// time (several chunks per thread, so a preempted or slower thread does not hold up the rest).
// Work below min_per_thread items per thread, or a call from inside a parallel region, runs
// serially. Results never depend on the split: every output element is computed by one call.
template <class F>
void parallelFor(int64_t n, int64_t min_per_thread, F&& f) {
  if (n <= 0) return;
  int64_t nt = std::min<int64_t>(numThreads(), n / std::max<int64_t>(1, min_per_thread));
#ifdef _OPENMP
  const bool nested = omp_in_parallel();
#else
  const bool nested = true;  // no OpenMP: always serial
#endif
  if (nt <= 1 || nested) {
    f(int64_t{0}, n);
    return;
  }
  const int64_t chunks = std::min<int64_t>(n, nt * 4);
  std::atomic<int64_t> next{0};
#ifdef _OPENMP
#pragma omp parallel num_threads(static_cast<int>(nt))
#endif
  {
    for (int64_t c = next++; c < chunks; c = next++) f(n * c / chunks, n * (c + 1) / chunks);
  }
}

// The panel walk of the activation GEMMs (linear_bf16act.cpp, linear_a8.cpp). Output rows come
// in panels of kActPanel (the last one narrower when rows % kActPanel != 0); K in `units`
// (column pairs, activation blocks) of which a micro-tile runs [u0, u1). One fork per call: each
// claimed range of panels walks the token blocks of block_m tokens (their activations stay in L2
// across the range's panels), within a block the K blocks of block_units (only when more than one
// micro-tile shares a panel: decode streams whole panels), then the panels' micro-tiles of up to
// tile_m tokens: tile(panel, width, t0, tm, u0, u1). A tile resumes its chains from y where
// u0 > 0, so results do not depend on the blocking or the thread split.
constexpr int64_t kActPanel = 32;
inline int64_t actPanels(int64_t rows) { return (rows + kActPanel - 1) / kActPanel; }
inline int64_t actPanelWidth(int64_t rows, int64_t panel) { return std::min(kActPanel, rows - panel * kActPanel); }
template <class Tile>
void forPanelTiles(int64_t T, int64_t N, int64_t K, int64_t units, int64_t block_units, int64_t block_m,
                   int64_t tile_m, Tile&& tile) {
  const int64_t min_panels = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, kActPanel * K * T));
  parallelFor(actPanels(N), min_panels, [&](int64_t pb, int64_t pe) {
    for (int64_t t0 = 0; t0 < T; t0 += block_m) {
      const int64_t t1 = std::min(T, t0 + block_m);
      const int64_t step = t1 - t0 > tile_m ? block_units : units;
      for (int64_t u0 = 0; u0 < units; u0 += step) {
        const int64_t u1 = std::min(units, u0 + step);
        for (int64_t j = pb; j < pe; ++j)
          for (int64_t m = t0; m < t1; m += tile_m)
            tile(j, actPanelWidth(N, j), m, std::min(tile_m, t1 - m), u0, u1);
      }
    }
  });
}

// Exact conversions of one stored element to f32.
inline float bitsToF32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float bf16ToF32(uint16_t h) { return bitsToF32(static_cast<uint32_t>(h) << 16); }
// f32 -> bf16, round to nearest even; NaN stays a (quiet) NaN. The same rule as ds::floatToBF16
// in runtime/src/format, which the kernels do not link.
inline uint16_t f32ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
// Branch-free (integer selects only) so the portable decode loop vectorizes.
inline float f16ToF32(uint16_t h) {
  const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;
  // Rebias the exponent 15 -> 127; inf / nan (exponent 31) go to exponent 255.
  const uint32_t special = 0u - static_cast<uint32_t>(em >= 0x7c00u);
  const uint32_t normal = (em << 13) + (112u << 23) + (special & (112u << 23));
  const float sub = static_cast<float>(static_cast<int32_t>(em)) * 0x1p-24f;  // subnormal
  uint32_t sub_bits;
  std::memcpy(&sub_bits, &sub, 4);
  const uint32_t is_sub = 0u - static_cast<uint32_t>(em < 0x400u);
  return bitsToF32((sub_bits & is_sub) | (normal & ~is_sub) | sign);
}
// Group scales as f16 (int4 / int6 weights): the quantizers round each candidate scale to
// the nearest value of 11 significant bits (round half to even) when the result is a normal
// f16 (2^-14 .. 65504), so the CPU device can keep the panel copies in half the bytes, exactly.
// Other positive scales are returned unchanged (and keep their f32 panel copies).
inline float roundScaleToF16(float s) {
  uint32_t u;
  std::memcpy(&u, &s, 4);
  if (!(s >= 0x1p-14f && s <= 65504.0f)) return s;
  u += 0xfffu + ((u >> 13) & 1u);
  u &= ~0x1fffu;
  const float r = bitsToF32(u);
  return r <= 65504.0f ? r : s;
}
// The f16 bits of s when s is exactly a normal f16, else false.
inline bool f16BitsIfExact(float s, uint16_t* h) {
  uint32_t u;
  std::memcpy(&u, &s, 4);
  const uint32_t mag = u & 0x7fffffffu;
  if ((u & 0x1fffu) != 0 || mag < (113u << 23) || mag > 0x477fe000u) return false;  // 2^-14, 65504
  *h = static_cast<uint16_t>(((u >> 16) & 0x8000u) | ((mag - (112u << 23)) >> 13));
  return true;
}
// float8_e4m3fn: bias 7, no infinities, S.1111.111 is NaN.
inline float fp8e4m3ToF32(uint8_t q) {
  uint32_t em = q & 0x7fu;
  float v = bitsToF32((em << 20) + (120u << 23));
  if (em < 8u) v = static_cast<float>(static_cast<int32_t>(em)) * 0x1p-9f;  // subnormal
  if (em == 0x7fu) v = bitsToF32(0x7fc00000u);
  return (q & 0x80u) ? -v : v;
}

// Whether the AVX2+FMA code paths run (decided once per process). Setting the environment
// variable DS_CPU_KERNELS_PORTABLE=1 forces the portable paths, so tests can cover them too.
bool useAvx2();

// Whether the AVX-512 (F, BW, VL) tiles over packed weights run (decided once per process).
// DS_CPU_KERNELS_AVX2=1 stops at AVX2, DS_CPU_KERNELS_PORTABLE=1 at the portable code.
bool useAvx512();

// Row r of an int8_act weight back in the row-major stored form (weightRowBytes bytes).
void unpackInt8ActRow(const WeightView& w, int64_t r, uint8_t* row);
// linear without bias on an int8_act weight (linear_a8.cpp). portable: the scalar definition
// even where VNNI runs (tests compare the two bit for bit).
void linearInt8Act(const float* x, int64_t T, const WeightView& w, float* y, bool portable = false);
// The same for bf16_act weights (linear_bf16act.cpp).
void unpackBf16ActRow(const WeightView& w, int64_t r, uint8_t* row);
void linearBf16Act(const float* x, int64_t T, const WeightView& w, float* y, bool portable = false);

// The stored bytes of row r of w, any layout (packed rows are gathered into buf).
const uint8_t* rowBytes(const WeightView& w, int64_t r, std::vector<uint8_t>& buf);

// Decodes n elements of a stored row (no scales) to f32. I4 decodes as two's complement nibbles;
// I6 spans start on a quad of columns (a row start, or a multiple of 4 columns into it).
void decodeSpan(WeightType type, const void* src, int64_t n, float* out);
// n packed 4-bit codes from column 0 of a row: two's complement (is_signed) or unsigned.
void decodeI4(const uint8_t* src, int64_t n, bool is_signed, float* out);
inline float i4ToF32(const uint8_t* row, int64_t c, bool is_signed) {
  const int nib = (row[c >> 1] >> (4 * (c & 1))) & 0xf;
  return static_cast<float>(is_signed ? (nib ^ 8) - 8 : nib);
}

// Code of column c of an I6 row (cpu_kernels.h): 6 bits two's complement in [-32, 31].
inline int i6Code(const uint8_t* row, int64_t c) {
  const uint8_t* p = row + 3 * (c >> 2);
  const uint32_t word = p[0] | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16;
  const int u = (word >> (6 * (c & 3))) & 63;
  return (u ^ 32) - 32;
}
// Stores code q (in [-32, 31]) of column c into an I6 row whose bytes start zeroed.
inline void i6Store(uint8_t* row, int64_t c, int q) {
  const uint32_t bits = static_cast<uint32_t>(q & 63) << (6 * (c & 3));
  uint8_t* p = row + 3 * (c >> 2);
  p[0] |= static_cast<uint8_t>(bits), p[1] |= static_cast<uint8_t>(bits >> 8), p[2] |= static_cast<uint8_t>(bits >> 16);
}

// exp as the generated kernels compute it: MLIR's polynomial expansion of math.exp (Cephes; about
// 2^-22.5 relative error, results under 2^-126 flushed to 0), so swiglu's library kernel and its
// generated one (ds-codegen-approximate-exp) give the same bits. elementwise.cpp.
float expPoly(float x);

// An f32 weight without scales, read in place.
inline bool isPlainF32(const WeightView& w) {
  return w.type == WeightType::F32 && !w.block_scale && !w.channel_scale;
}

// KV cache vectors: quantizes x[n] into q with its absmax scale (returned), and the inverse.
float quantizeVec(KVType type, const float* x, int64_t n, uint8_t* q);
void dequantVec(KVType type, const uint8_t* q, int64_t n, float scale, float* out);
// dequantVec of `count` consecutive vectors (codes q[v * n, (v + 1) * n), scale scales[v]) into
// out[v * n, ...): a cache block of one head in one call, 16 wide on AVX-512; the same values.
void dequantVecs(KVType type, const uint8_t* q, int64_t count, int64_t n, const float* scales, float* out);

// dequantRow of rows [r0, r0 + n) into out[n, cols] (a packed weight's groups decode at once).
void dequantRows(const WeightView& w, int64_t r0, int64_t n, float* out);
// Rows [r0, r0 + n) of w as f32: a pointer into w for F32, else dequantized into buf.
const float* rowsF32(const WeightView& w, int64_t r0, int64_t n, std::vector<float>& buf);

// y[i * ldy + j] = sum_k x[i * ldx + k] * w[j * ldw + k] for i < M, j < N. Every element is
// reduced in the same order (8 lanes over k, a fixed lane tree, then the tail), whatever M and N
// are, so a row's result never depends on the other rows of the call.
// `ahead` (optional): bytes the caller reads next (the keys of a later cache block), fetched into
// L2 a few lines per k step of the tiles, so the requests overlap the arithmetic instead of
// arriving as one burst; results do not depend on it.
void dotTile(const float* x, int64_t ldx, int64_t M, const float* w, int64_t ldw, int64_t N,
             int64_t K, float* y, int64_t ldy, const void* ahead = nullptr, int64_t ahead_bytes = 0);
// dotTile for M <= 2 tokens straight from f16/bf16/FP8 rows [r0, r0 + N) of w, decoding in
// registers (same values and order as dequantRow + dotTile, so results are bitwise equal).
// Also I8 / F8E4M3 with channel scales and I4 groups (group_size a multiple of 8).
// Returns false where it does not apply (no AVX2, F32, M > 2, block_cols not a multiple of 8).
bool dotTileFused(const float* x, int64_t ldx, int64_t M, const WeightView& w, int64_t r0,
                  int64_t N, float* y, int64_t ldy);

// How dotTileFused turns decoded codes into values: as they are, times a scale, or (q - zero)
// times a scale: the same f32 operation sequence dequantRow applies, so results stay bitwise equal.
enum FusedMode { kRaw = 0, kScaled = 1, kZeroScaled = 2 };
// Where the row scales of w come from: per-row pointers start at scale + (r / rows_per) * stride,
// each covering bc columns (block, channel or int4 group scales).
struct ScaleLayout {
  int mode = kRaw;
  const float* scale = nullptr;
  const float* zero = nullptr;
  int64_t rows_per = 1, stride = 0, bc = 0;
};
// False for layouts the fused tiles do not take (then the dequantized panel path runs).
bool scaleLayout(const WeightView& w, ScaleLayout& L);
// dotTileFused on a packed weight (w.packed == kPackRows; r0 and N multiples of it) with the
// AVX-512 tiles: two rows per 16-lane vector, each half in the canonical 8-lane order.
void fusedPackedAvx512(const float* x, int64_t ldx, int64_t M, const WeightView& w,
                       const ScaleLayout& L, int64_t r0, int64_t N, float* y, int64_t ldy);
// dequantVec's values (decode16's exact codes, then one multiply by the scale) 16 at a time over
// the first n - n % 16 codes of an int8 / FP8 KV vector; returns how many it wrote. AVX-512 only.
int64_t dequantScaledAvx512(KVType type, const uint8_t* q, int64_t n, float scale, float* out);

// The lane tree that ends every dot product: lanes (0+1)+(2+3) + (4+5)+(6+7).
inline float reduce8(const float* l) {
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

// One dot product with the same order as dotTile.
float dot(const float* a, const float* b, int64_t K);

// Softmax over scores[0, n) in place as HF does it: f32, max-subtracted, exp, divided by the sum.
void softmaxInPlace(float* scores, int64_t n);
// The GQA attention softmax (softmax.cpp has the exact definition; MLA and the MoE router keep
// softmaxInPlace, HF's form with libm's exp): the library's own
// exp (expDs, within 2 ulp) and a 16-lane sum, AVX-512 where it runs, the same bits everywhere.
// portable: the scalar definition even where AVX-512 runs (tests compare the two).
void attentionSoftmax(float* scores, int64_t n, bool portable = false);
// One block of int8 activation codes (linear_a8.cpp's definition): a = max |x|, q = nearbyint(x *
// (127 / a)) clamped to [-127, 127], *sum = the codes' sum; returns a / 127. AVX-512 for n a
// multiple of 16 with finite values, the scalar loop otherwise or when portable: the same bits.
float quantizeActivationBlock(const float* x, int64_t n, int8_t* q, int32_t* sum, bool portable = false);
// For each of R rows over the same n value rows: o[r][d] = sum over j < n of p[r][j] * v[j][d]
// from zero in j order (attention.cpp): one fused multiply-add per term, or (fused = false) a
// multiply then an add; AVX-512 where it runs, the scalar loop's bits either way. Every value
// vector is read once per 64-128 columns for up to 6 rows (a GQA group, an MLA token's heads).
void weightedSums(float* const* o, const float* const* p, int64_t R, const float* const* v, int64_t n,
                  int64_t Dv, bool fused);
// Runs of a batch's tokens that belong to one sequence at consecutive positions, at most
// max_tokens each, the ones ending at the latest position first (attention work items).
struct SequenceChunk {
  int64_t t0, t1;
};
std::vector<SequenceChunk> sequenceChunks(const BatchView& batch, int64_t max_tokens);
// The library's exp (softmax.cpp: Cephes expf in explicit f32 steps, within 2 ulp of expf).
float expDs(float x);

// Cache slot (block * block_size + offset) that holds position pos of sequence s.
inline int64_t slotOf(const BatchView& b, int64_t block_size, int64_t s, int64_t pos) {
  const int32_t block = b.block_table[s * b.max_blocks_per_seq + pos / block_size];
  return int64_t{block} * block_size + pos % block_size;
}

}  // namespace ds::cpu::detail
