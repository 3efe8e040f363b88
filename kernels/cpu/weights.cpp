// Thread settings and weight decoding (f16, bf16, FP8-E4M3 with DeepSeek block scales) to f32.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "cpu/internal.h"

namespace ds::cpu {
namespace {

std::atomic<int> g_threads{0};
std::atomic<bool> g_batch_invariant{true};

template <class Src, class Cvt>
inline void decodeLoop(const Src* src, int64_t n, float* out, Cvt cvt) {
  for (int64_t i = 0; i < n; ++i) out[i] = cvt(src[i]);
}

// The decoders are exact, so an AVX2 build of the same loop gives identical values; it only
// makes decode (the bottleneck of a quantized GEMV) vectorize 8 wide.
void decodeGeneric(WeightType type, const void* src, int64_t n, float* out) {
  switch (type) {
    case WeightType::F32: std::memcpy(out, src, n * sizeof(float)); break;
    case WeightType::F16: decodeLoop(static_cast<const uint16_t*>(src), n, out, detail::f16ToF32); break;
    case WeightType::BF16: decodeLoop(static_cast<const uint16_t*>(src), n, out, detail::bf16ToF32); break;
    case WeightType::F8E4M3:
      decodeLoop(static_cast<const uint8_t*>(src), n, out, detail::fp8e4m3ToF32);
      break;
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2,fma,f16c"))) void decodeAvx2(WeightType type, const void* src,
                                                          int64_t n, float* out) {
  switch (type) {
    case WeightType::F32: std::memcpy(out, src, n * sizeof(float)); break;
    case WeightType::F16: decodeLoop(static_cast<const uint16_t*>(src), n, out, detail::f16ToF32); break;
    case WeightType::BF16: decodeLoop(static_cast<const uint16_t*>(src), n, out, detail::bf16ToF32); break;
    case WeightType::F8E4M3:
      decodeLoop(static_cast<const uint8_t*>(src), n, out, detail::fp8e4m3ToF32);
      break;
  }
}
const bool kHasAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif

int64_t elementBytes(WeightType t) {
  switch (t) {
    case WeightType::F32: return 4;
    case WeightType::F16:
    case WeightType::BF16: return 2;
    case WeightType::F8E4M3: return 1;
  }
  return 4;
}

}  // namespace

void setNumThreads(int n) { g_threads = std::max(1, n); }
int numThreads() {
  int n = g_threads.load();
  if (n > 0) return n;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

void setBatchInvariant(bool on) { g_batch_invariant = on; }
bool batchInvariant() { return g_batch_invariant.load(); }

namespace detail {

void decodeSpan(WeightType type, const void* src, int64_t n, float* out) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (kHasAvx2) return decodeAvx2(type, src, n, out);
#endif
  decodeGeneric(type, src, n, out);
}

const float* rowsF32(const WeightView& w, int64_t r0, int64_t n, std::vector<float>& buf) {
  if (w.type == WeightType::F32 && !w.block_scale)
    return static_cast<const float*>(w.data) + r0 * w.cols;
  if (static_cast<int64_t>(buf.size()) < n * w.cols) buf.resize(n * w.cols);
  for (int64_t i = 0; i < n; ++i) dequantRow(w, r0 + i, buf.data() + i * w.cols);
  return buf.data();
}

}  // namespace detail

void dequantRow(const WeightView& w, int64_t r, float* out) {
  const int64_t K = w.cols;
  const auto* row = static_cast<const uint8_t*>(w.data) + r * K * elementBytes(w.type);
  detail::decodeSpan(w.type, row, K, out);
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

}  // namespace ds::cpu
