// linear (GEMV / GEMM) with f32, f16, bf16 and block-scaled FP8 weights, and the fixed-order dot tiles.
#include <cblas.h>

#include <algorithm>

#include "cpu/internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define DS_CPU_X86 1
#endif

namespace ds::cpu {
namespace detail {
namespace {

// The lane tree shared by every path: lanes (0+1)+(2+3) + (4+5)+(6+7).
inline float reduce8(const float* l) {
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

// Generic 8-lane vectors; the ABI note about passing them without AVX is moot for inlined helpers.
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float v8f __attribute__((vector_size(32)));

inline v8f load8(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Portable tile: mul then add (no contraction), 8 lanes over k.
template <int TM, int TN>
void tileGeneric(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, float* y,
                 int64_t ldy) {
  v8f acc[TM][TN];
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < TN; ++j) acc[i][j] = v8f{0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    v8f wv[TN];
    for (int j = 0; j < TN; ++j) wv[j] = load8(w + j * ldw + k);
    for (int i = 0; i < TM; ++i) {
      v8f xv = load8(x + i * ldx + k);
      for (int j = 0; j < TN; ++j) acc[i][j] = acc[i][j] + xv * wv[j];
    }
  }
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < TN; ++j) {
      float l[8];
      std::memcpy(l, &acc[i][j], sizeof(l));
      float s = reduce8(l);
      for (int64_t kk = k; kk < K; ++kk) s += x[i * ldx + kk] * w[j * ldw + kk];
      y[i * ldy + j] = s;
    }
}

#ifdef DS_CPU_X86
template <int TM, int TN>
__attribute__((target("avx2,fma"))) void tileAvx2(const float* x, int64_t ldx, const float* w,
                                                  int64_t ldw, int64_t K, float* y, int64_t ldy) {
  __m256 acc[TM][TN];
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < TN; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[TN];
    for (int j = 0; j < TN; ++j) wv[j] = _mm256_loadu_ps(w + j * ldw + k);
    for (int i = 0; i < TM; ++i) {
      __m256 xv = _mm256_loadu_ps(x + i * ldx + k);
      for (int j = 0; j < TN; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < TN; ++j) {
      float l[8];
      _mm256_storeu_ps(l, acc[i][j]);
      float s = reduce8(l);
      for (int64_t kk = k; kk < K; ++kk) s += x[i * ldx + kk] * w[j * ldw + kk];
      y[i * ldy + j] = s;
    }
}
const bool kUseAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t);

#define DS_TILE_ROW(F, m) {&F<m, 1>, &F<m, 2>, &F<m, 3>, &F<m, 4>}
#define DS_TILE_TABLE(F) {DS_TILE_ROW(F, 1), DS_TILE_ROW(F, 2), DS_TILE_ROW(F, 3), DS_TILE_ROW(F, 4)}

const TileFn kGeneric[4][4] = DS_TILE_TABLE(tileGeneric);
#ifdef DS_CPU_X86
const TileFn kAvx2[4][4] = DS_TILE_TABLE(tileAvx2);
#endif

const TileFn (*tileTable())[4] {
#ifdef DS_CPU_X86
  if (kUseAvx2) return kAvx2;
#endif
  return kGeneric;
}

}  // namespace

void dotTile(const float* x, int64_t ldx, int64_t M, const float* w, int64_t ldw, int64_t N,
             int64_t K, float* y, int64_t ldy) {
  static const TileFn(*table)[4] = tileTable();
  // Few tokens: 4 weight rows per pass (more independent FMA chains); else 4 tokens x 2 rows.
  const int64_t tm = 4, tn = M <= 2 ? 4 : 2;
  for (int64_t i0 = 0; i0 < M; i0 += tm) {
    const int64_t ni = std::min(tm, M - i0);
    for (int64_t j0 = 0; j0 < N; j0 += tn) {
      const int64_t nj = std::min(tn, N - j0);
      table[ni - 1][nj - 1](x + i0 * ldx, ldx, w + j0 * ldw, ldw, K, y + i0 * ldy + j0, ldy);
    }
  }
}

float dot(const float* a, const float* b, int64_t K) {
  float y;
  dotTile(a, K, 1, b, K, 1, K, &y, 1);
  return y;
}

}  // namespace detail

namespace {

// Rows per work item: the dequantized panel stays around 64 KiB (L2) for any K.
int64_t panelRows(const WeightView& w) {
  if (w.type == WeightType::F32 && !w.block_scale) return 16;
  int64_t rows = 16384 / std::max<int64_t>(1, w.cols);
  return std::clamp<int64_t>((rows + 3) / 4 * 4, 4, 64);
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
  const bool direct = w.type == WeightType::F32 && !w.block_scale;
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
  if (!batchInvariant() && T >= 16) {
    linearBlas(x, T, w, y);
    addBias(bias, T, N, y);
    return;
  }
  const int64_t P = panelRows(w);
  const int64_t panels = (N + P - 1) / P;
  // Enough work per thread to amortise the fork: ~64k multiply-adds.
  const int64_t min_panels = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, P * K * T));
  detail::parallelFor(panels, min_panels, [&](int64_t b, int64_t e) {
    thread_local std::vector<float> buf;
    for (int64_t p = b; p < e; ++p) {
      const int64_t n0 = p * P, np = std::min(P, N - n0);
      const float* rows = detail::rowsF32(w, n0, np, buf);
      detail::dotTile(x, K, T, rows, K, np, K, y + n0, N);
    }
  });
  addBias(bias, T, N, y);
}

}  // namespace ds::cpu
