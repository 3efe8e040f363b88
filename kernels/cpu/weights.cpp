// Thread settings and weight decoding (f16, bf16, FP8-E4M3 with block or channel scales, int8, int4 groups) to f32.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

#include "cpu/internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

namespace ds::cpu {
namespace {

std::atomic<int> g_threads{0};
std::atomic<bool> g_batch_invariant{true};
thread_local int t_threads = 0;  // setThreadLocalNumThreads; 0: g_threads applies

int64_t elementBytes(WeightType t) {
  switch (t) {
    case WeightType::F32: return 4;
    case WeightType::F16:
    case WeightType::BF16: return 2;
    case WeightType::F8E4M3:
    case WeightType::I8: return 1;
    case WeightType::I4: return 0;  // two per byte: weightRowBytes / decodeI4 handle it
    case WeightType::I6: return 0;  // four per three bytes: weightRowBytes / i6Code
  }
  return 4;
}

template <class Src, class Cvt>
inline void decodeLoop(const Src* src, int64_t n, float* out, Cvt cvt) {
  for (int64_t i = 0; i < n; ++i) out[i] = cvt(src[i]);
}

// FP8 has only 256 codes: a table is the fastest portable decoder.
struct Fp8Table {
  float v[256];
  Fp8Table() {
    for (int c = 0; c < 256; ++c) v[c] = detail::fp8e4m3ToF32(static_cast<uint8_t>(c));
  }
};
const Fp8Table kFp8;

// Portable decode (and the tail of the AVX2 one). Both are exact, so which one runs never
// changes a value; AVX2 only makes decode, the bottleneck of a quantized GEMV, 8 wide.
void decodeGeneric(WeightType type, const void* src, int64_t n, float* out) {
  switch (type) {
    case WeightType::F32: std::memcpy(out, src, n * sizeof(float)); break;
    case WeightType::F16:
      decodeLoop(static_cast<const uint16_t*>(src), n, out,
                 [](uint16_t h) { return detail::f16ToF32(h); });
      break;
    case WeightType::BF16:
      decodeLoop(static_cast<const uint16_t*>(src), n, out,
                 [](uint16_t h) { return detail::bf16ToF32(h); });
      break;
    case WeightType::F8E4M3:
      decodeLoop(static_cast<const uint8_t*>(src), n, out, [](uint8_t q) { return kFp8.v[q]; });
      break;
    case WeightType::I8:
      decodeLoop(static_cast<const int8_t*>(src), n, out, [](int8_t q) { return static_cast<float>(q); });
      break;
    case WeightType::I4:
      for (int64_t i = 0; i < n; ++i) out[i] = detail::i4ToF32(static_cast<const uint8_t*>(src), i, true);
      break;
    case WeightType::I6:
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(detail::i6Code(static_cast<const uint8_t*>(src), i));
      break;
  }
}

void decodeI4Generic(const uint8_t* src, int64_t n, bool is_signed, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = detail::i4ToF32(src, i, is_signed);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// Explicit 8-wide decoders: the same bit recipes as the scalar ones in internal.h (exact).
__attribute__((target("avx2,fma,f16c"))) void decodeAvx2(WeightType type, const void* src,
                                                          int64_t n, float* out) {
  int64_t i = 0;
  switch (type) {
    case WeightType::F32: std::memcpy(out, src, n * sizeof(float)); return;
    case WeightType::F16: {
      const auto* p = static_cast<const uint16_t*>(src);
      for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i))));
      break;
    }
    case WeightType::BF16: {
      const auto* p = static_cast<const uint16_t*>(src);
      for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)));
        _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
      }
      break;
    }
    case WeightType::F8E4M3: {
      // Same recipe as decode8 in fused_decode.cpp: e4m3 as f16 bits (value * 2^-8), times 256.
      const auto* p = static_cast<const uint8_t*>(src);
      const __m128i m7f = _mm_set1_epi16(0x7f), sign = _mm_set1_epi16(-32768);
      const __m256 k256 = _mm256_set1_ps(256.0f);
      for (; i + 8 <= n; i += 8) {
        const __m128i q = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + i)));
        const __m128i em = _mm_and_si128(q, m7f);
        __m128i h = _mm_or_si128(_mm_slli_epi16(em, 7), _mm_and_si128(_mm_slli_epi16(q, 8), sign));
        h = _mm_or_si128(h, _mm_cmpeq_epi16(em, m7f));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtph_ps(h), k256));
      }
      break;
    }
    case WeightType::I8: {
      const auto* p = static_cast<const int8_t*>(src);
      for (; i + 8 <= n; i += 8) {
        int64_t raw;
        std::memcpy(&raw, p + i, 8);
        _mm256_storeu_ps(out + i, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(raw))));
      }
      break;
    }
    case WeightType::I4: return detail::decodeI4(static_cast<const uint8_t*>(src), n, true, out);
    case WeightType::I6: return decodeGeneric(type, src, n, out);  // the head's f32 path only
  }
  decodeGeneric(type, static_cast<const uint8_t*>(src) + i * elementBytes(type), n - i, out + i);
}

// Eight nibbles (one 32-bit load) to eight lanes: broadcast, shift lane l right by 4 l, mask.
__attribute__((target("avx2,fma,f16c"))) void decodeI4Avx2(const uint8_t* src, int64_t n,
                                                            bool is_signed, float* out) {
  const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
  const __m256i mask = _mm256_set1_epi32(0xf), eight = _mm256_set1_epi32(8);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    int32_t raw;
    std::memcpy(&raw, src + i / 2, 4);
    __m256i q = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(raw), shifts), mask);
    if (is_signed) q = _mm256_sub_epi32(_mm256_xor_si256(q, eight), eight);
    _mm256_storeu_ps(out + i, _mm256_cvtepi32_ps(q));
  }
  for (; i < n; ++i) out[i] = detail::i4ToF32(src, i, is_signed);
}
#endif

}  // namespace

int64_t weightRowBytes(WeightType type, int64_t cols) {
  if (type == WeightType::I6) return 3 * ((cols + 3) / 4);
  return type == WeightType::I4 ? (cols + 1) / 2 : cols * elementBytes(type);
}

void setNumThreads(int n) { g_threads = std::max(1, n); }

void parallelRows(int64_t n, int64_t min_per_thread, const std::function<void(int64_t, int64_t)>& f) {
  detail::parallelFor(n, min_per_thread, f);
}
void setThreadLocalNumThreads(int n) { t_threads = std::max(0, n); }
int numThreads() {
  if (t_threads > 0) return t_threads;
  int n = g_threads.load();
  if (n > 0) return n;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

void setBatchInvariant(bool on) { g_batch_invariant = on; }
bool batchInvariant() { return g_batch_invariant.load(); }

namespace detail {

bool useAvx2() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool on = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                         __builtin_cpu_supports("f16c") && !std::getenv("DS_CPU_KERNELS_PORTABLE");
  return on;
#else
  return false;
#endif
}

bool useAvx512() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool on = useAvx2() && __builtin_cpu_supports("avx512f") &&
                         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                         !std::getenv("DS_CPU_KERNELS_AVX2");
  return on;
#else
  return false;
#endif
}

void decodeSpan(WeightType type, const void* src, int64_t n, float* out) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (useAvx2()) return decodeAvx2(type, src, n, out);
#endif
  decodeGeneric(type, src, n, out);
}

void decodeI4(const uint8_t* src, int64_t n, bool is_signed, float* out) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (useAvx2()) return decodeI4Avx2(src, n, is_signed, out);
#endif
  decodeI4Generic(src, n, is_signed, out);
}

const float* rowsF32(const WeightView& w, int64_t r0, int64_t n, std::vector<float>& buf) {
  if (isPlainF32(w))
    return static_cast<const float*>(w.data) + r0 * w.cols;
  if (static_cast<int64_t>(buf.size()) < n * w.cols) buf.resize(n * w.cols);
  dequantRows(w, r0, n, buf.data());
  return buf.data();
}

}  // namespace detail

bool canPackWeight(const WeightView& w) {
  return w.packed == 0 && !w.int8_act && !w.bf16_act && w.type != WeightType::F32 && w.rows >= kPackRows &&
         w.rows % kPackRows == 0 && w.cols > 0 && w.cols % kPackChunk == 0;
}

WeightView packWeight(const WeightView& w, void* dst) {
  const int64_t rb = weightRowBytes(w.type, w.cols), cb = weightRowBytes(w.type, kPackChunk);
  const int64_t chunks = w.cols / kPackChunk, groups = w.rows / kPackRows;
  const auto* src = static_cast<const uint8_t*>(w.data);
  auto* out = static_cast<uint8_t*>(dst);
  // A group is packed from a copy of itself, so dst may be w.data (packing in place).
  detail::parallelFor(groups, 16, [&](int64_t b, int64_t e) {
    std::vector<uint8_t> group(kPackRows * rb);
    for (int64_t g = b; g < e; ++g) {
      const uint8_t* in = group.data();
      std::memcpy(group.data(), src + g * kPackRows * rb, kPackRows * rb);
      uint8_t* o = out + g * kPackRows * rb;
      for (int64_t c = 0; c < chunks; ++c)
        for (int64_t q = 0; q < kPackRows; ++q, o += cb) std::memcpy(o, in + q * rb + c * cb, cb);
    }
  });
  WeightView v = w;
  v.data = dst;
  v.packed = kPackRows;
  return v;
}

namespace detail {

const uint8_t* rowBytes(const WeightView& w, int64_t r, std::vector<uint8_t>& buf) {
  const int64_t rb = weightRowBytes(w.type, w.cols);
  const auto* base = static_cast<const uint8_t*>(w.data);
  if (w.int8_act || w.bf16_act) {
    buf.resize(rb);
    if (w.int8_act) unpackInt8ActRow(w, r, buf.data());
    else unpackBf16ActRow(w, r, buf.data());
    return buf.data();
  }
  if (w.packed == 0) return base + r * rb;
  // Gather the row's chunks out of its group (see WeightView::packed).
  const int64_t cb = weightRowBytes(w.type, kPackChunk), P = w.packed;
  const uint8_t* src = base + (r / P) * P * rb + (r % P) * cb;
  buf.resize(rb);
  for (int64_t c = 0; c < w.cols / kPackChunk; ++c) std::memcpy(buf.data() + c * cb, src + c * P * cb, cb);
  return buf.data();
}

}  // namespace detail

namespace {

// The codes of n stored elements as f32 (int4: two's complement unless w has zero points).
void decodeRaw(const WeightView& w, const uint8_t* src, int64_t n, float* out) {
  if (w.type == WeightType::I4) return detail::decodeI4(src, n, w.group_zero == nullptr, out);
  detail::decodeSpan(w.type, src, n, out);
}

// Row r's scales (int4 groups and zero points, channel, FP8 blocks) applied to its decoded codes.
void applyRowScales(const WeightView& w, int64_t r, float* out) {
  const int64_t K = w.cols;
  if ((w.type == WeightType::I4 || w.type == WeightType::I6) && w.group_scale) {
    const bool asym = w.group_zero != nullptr;
    const int64_t g = w.group_size > 0 ? w.group_size : K;
    const int64_t G = (K + g - 1) / g;
    for (int64_t gi = 0; gi < G; ++gi) {
      const float s = w.group_scale[r * G + gi];
      const int64_t end = std::min(K, (gi + 1) * g);
      if (asym) {
        const float z = w.group_zero[r * G + gi];
        for (int64_t c = gi * g; c < end; ++c) out[c] = (out[c] - z) * s;
      } else {
        for (int64_t c = gi * g; c < end; ++c) out[c] *= s;
      }
    }
  }
  if (w.channel_scale) {
    const float s = w.channel_scale[r];
    for (int64_t c = 0; c < K; ++c) out[c] *= s;
  }
  if (!w.block_scale) return;
  // DeepSeek-V3 FP8: weight_dequant multiplies the decoded value by its [128 x 128] block's
  // scale in f32; the last row/column block may be partial.
  const int64_t br = w.block_rows > 0 ? w.block_rows : w.rows;
  const int64_t bc = w.block_cols > 0 ? w.block_cols : K;
  const int64_t ncb = (K + bc - 1) / bc;
  const float* scales = w.block_scale + (r / br) * ncb;
  for (int64_t cb = 0; cb < ncb; ++cb) {
    const float s = scales[cb];
    const int64_t end = std::min(K, (cb + 1) * bc);
    for (int64_t c = cb * bc; c < end; ++c) out[c] *= s;
  }
}

}  // namespace

void dequantRow(const WeightView& w, int64_t r, float* out) {
  thread_local std::vector<uint8_t> gathered;
  decodeRaw(w, detail::rowBytes(w, r, gathered), w.cols, out);
  applyRowScales(w, r, out);
}

namespace detail {

void dequantRows(const WeightView& w, int64_t r0, int64_t n, float* out) {
  const int64_t K = w.cols, P = w.packed;
  if (P == 0 || r0 % P != 0 || n % P != 0) {
    for (int64_t i = 0; i < n; ++i) dequantRow(w, r0 + i, out + i * K);
    return;
  }
  // A packed group decodes as one span (its chunks are whole elements), then its 8-column
  // pieces go to their rows: the same values as dequantRow, without gathering row by row.
  thread_local std::vector<float> codes;
  codes.resize(P * K);
  const int64_t rb = weightRowBytes(w.type, K);
  for (int64_t g = 0; g < n; g += P) {
    decodeRaw(w, static_cast<const uint8_t*>(w.data) + (r0 + g) * rb, P * K, codes.data());
    const float* c = codes.data();
    for (int64_t k = 0; k < K; k += kPackChunk)
      for (int64_t q = 0; q < P; ++q, c += kPackChunk)
        std::memcpy(out + (g + q) * K + k, c, kPackChunk * sizeof(float));
    for (int64_t q = 0; q < P; ++q) applyRowScales(w, r0 + g + q, out + (g + q) * K);
  }
}

}  // namespace detail

}  // namespace ds::cpu
