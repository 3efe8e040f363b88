// linear (GEMV / GEMM) with f32, f16, bf16, FP8 (block or channel scales), int8 and int4-group weights.
#include <cblas.h>

#include <algorithm>

#include "cpu/internal.h"

namespace ds::cpu {
namespace {

// Rows per work item, a multiple of 12 (the 4-row decode and 3-row prefill tiles). A
// dequantized panel stays at or above ~48 KiB in L2 (12 rows at K = 4096 f32 -> 192 KiB).
int64_t panelRows(const WeightView& w, int64_t T) {
  if (detail::isPlainF32(w)) return 24;
  if (T <= 2) return 4;
  int64_t rows = 16384 / std::max<int64_t>(1, w.cols);
  return std::clamp<int64_t>((rows + 11) / 12 * 12, 12, 60);
}

void addBias(const float* bias, int64_t T, int64_t N, float* y) {
  if (!bias) return;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) y[t * N + n] += bias[n];
}

// Prefill path when batch invariance is off: cblas_sgemm per slice of output rows, one slice per
// kernel thread. OpenBLAS is pinned to one thread so it never competes with (or nests inside)
// the OpenMP workers, which own all the parallelism.
void linearBlas(const float* x, int64_t T, const WeightView& w, float* y) {
#ifdef OPENBLAS_VERSION
  static const bool single = (openblas_set_num_threads(1), true);
  (void)single;
#endif
  const int64_t N = w.rows, K = w.cols;
  const bool direct = detail::isPlainF32(w);
  const int64_t P = direct ? N : std::min<int64_t>(N, 128);
  detail::parallelFor(N, 64, [&](int64_t b, int64_t e) {
    thread_local std::vector<float> buf;
    for (int64_t n0 = b; n0 < e; n0 += P) {
      const int64_t np = std::min(P, e - n0);
      const float* rows = detail::rowsF32(w, n0, np, buf);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, np, K, 1.0f, x, K, rows, K, 0.0f,
                  y + n0, N);
    }
  });
}

}  // namespace

void linear(const float* x, int64_t T, const WeightView& w, const float* bias, float* y) {
  const int64_t N = w.rows, K = w.cols;
  if (T <= 0 || N <= 0) return;
  if (w.int8_act || w.bf16_act) {
    if (w.int8_act) detail::linearInt8Act(x, T, w, y);
    else detail::linearBf16Act(x, T, w, y);
    addBias(bias, T, N, y);
    return;
  }
  if (!batchInvariant() && T >= 16) {
    linearBlas(x, T, w, y);
    addBias(bias, T, N, y);
    return;
  }
  const int64_t P = panelRows(w, T);
  const int64_t panels = (N + P - 1) / P;
  // Enough work per thread to amortise the fork: ~64k multiply-adds.
  const int64_t min_panels = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, P * K * T));
  detail::parallelFor(panels, min_panels, [&](int64_t b, int64_t e) {
    thread_local std::vector<float> buf;
    for (int64_t p = b; p < e; ++p) {
      const int64_t n0 = p * P, np = std::min(P, N - n0);
      if (T <= 2 && detail::dotTileFused(x, K, T, w, n0, np, y + n0, N)) continue;
      const float* rows = detail::rowsF32(w, n0, np, buf);
      detail::dotTile(x, K, T, rows, K, np, K, y + n0, N);
    }
  });
  addBias(bias, T, N, y);
}

}  // namespace ds::cpu
