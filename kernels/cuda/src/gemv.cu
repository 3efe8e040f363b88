// Decode GEMV / skinny GEMM (M <= 16) for the memory-bound regime, plus its split-K reduce pass.
#include "common.cuh"

namespace ds::cuda {
namespace {

constexpr int kGemvWarps = 8;   // one output column per warp, 256 threads
constexpr int kGemvUnroll = 4;  // 16-byte weight loads in flight per lane

// Rows [blockIdx.y * MT, +MT) of y, column n = blockIdx.x * 8 + warp, K range of split z.
template <class W, class A, int MT>
__device__ __forceinline__ void gemv(const ds_cuda_gemv_params& p) {
  constexpr int V = Vec<W>::N;  // elements per 16-byte weight load
  const int lane = threadIdx.x & 31;
  const int n = blockIdx.x * kGemvWarps + (threadIdx.x >> 5);
  const int m0 = blockIdx.y * MT;
  if (n >= p.N) return;
  const int k0 = blockIdx.z * p.k_per_split;
  const int k1 = min(p.K, k0 + p.k_per_split);
  const W* wrow = ptr<const W>(p.w) + static_cast<size_t>(n) * p.K;
  const A* x = ptr<const A>(p.x);
  const int rows = min(MT, p.M - m0);

  float acc[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) acc[m] = 0.0f;

  for (int base = k0 + lane * V; base < k1; base += 32 * V * kGemvUnroll) {
    // Issue every weight load of this round before any arithmetic (memory-level parallelism).
    uint4 wv[kGemvUnroll];
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) {
      const int k = base + u * 32 * V;
      wv[u] = k < k1 ? __ldcs(reinterpret_cast<const uint4*>(wrow + k)) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) {
      const int k = base + u * 32 * V;
      if (k >= k1) break;
      float wf[V];
      if constexpr (sizeof(W) == 2) {
        unpack(wv[u], wf);
      } else {
        wf[0] = __uint_as_float(wv[u].x); wf[1] = __uint_as_float(wv[u].y);
        wf[2] = __uint_as_float(wv[u].z); wf[3] = __uint_as_float(wv[u].w);
      }
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        if (m < rows) {
          float xf[V];
          loadN<V>(x + static_cast<size_t>(m0 + m) * p.x_stride + k, xf);
#pragma unroll
          for (int i = 0; i < V; ++i) acc[m] = fmaf(wf[i], xf[i], acc[m]);
        }
      }
    }
  }

#pragma unroll
  for (int m = 0; m < MT; ++m) acc[m] = warpSum(acc[m]);
  if (lane != 0) return;
  if (p.splits > 1) {
    float* part = ptr<float>(p.workspace) + static_cast<size_t>(blockIdx.z) * p.M * p.N;
#pragma unroll
    for (int m = 0; m < MT; ++m)
      if (m < rows) part[static_cast<size_t>(m0 + m) * p.N + n] = acc[m];
    return;
  }
  const float b = p.bias ? ptr<const float>(p.bias)[n] : 0.0f;
  if (p.y_f32) {  // logits of a bf16 model: kept in f32
    float* y = ptr<float>(p.y);
#pragma unroll
    for (int m = 0; m < MT; ++m)
      if (m < rows) y[static_cast<size_t>(m0 + m) * p.y_stride + n] = acc[m] + b;
    return;
  }
  A* y = ptr<A>(p.y);
#pragma unroll
  for (int m = 0; m < MT; ++m)
    if (m < rows) y[static_cast<size_t>(m0 + m) * p.y_stride + n] = fromF<A>(acc[m] + b);
}

// y[m, n] = sum over splits in order + bias (A = f32 also for y_f32 of bf16 activations).
template <class A>
__device__ __forceinline__ void gemvReduce(const ds_cuda_gemv_params& p) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= p.M * p.N) return;
  const int m = i / p.N, n = i % p.N;
  const float* part = ptr<const float>(p.workspace);
  float s = 0.0f;
  for (int z = 0; z < p.splits; ++z) s += part[static_cast<size_t>(z) * p.M * p.N + i];
  if (p.bias) s += ptr<const float>(p.bias)[n];
  ptr<A>(p.y)[static_cast<size_t>(m) * p.y_stride + n] = fromF<A>(s);
}

// Any K, stride and alignment: column n = blockIdx.x * 8 + warp of row blockIdx.y, scalar loads.
template <class W, class A>
__device__ __forceinline__ void gemvAny(const ds_cuda_gemv_params& p) {
  const int lane = threadIdx.x & 31;
  const int n = blockIdx.x * kGemvWarps + (threadIdx.x >> 5);
  const int m = blockIdx.y;
  if (n >= p.N || m >= p.M) return;
  const W* wrow = ptr<const W>(p.w) + static_cast<size_t>(n) * p.K;
  const A* x = ptr<const A>(p.x) + static_cast<size_t>(m) * p.x_stride;
  float acc = 0.0f;
  for (int k = lane; k < p.K; k += 32) acc = fmaf(toF(wrow[k]), toF(x[k]), acc);
  acc = warpSum(acc);
  if (lane != 0) return;
  const float v = acc + (p.bias ? ptr<const float>(p.bias)[n] : 0.0f);
  const size_t at = static_cast<size_t>(m) * p.y_stride + n;
  if (p.y_f32)
    ptr<float>(p.y)[at] = v;
  else
    ptr<A>(p.y)[at] = fromF<A>(v);
}

}  // namespace
}  // namespace ds::cuda

#define DS_GEMV(wn, an, W, A, MT)                                                       \
  extern "C" __global__ void __launch_bounds__(256)                                     \
      ds_gemv_w##wn##_a##an##_m##MT(const __grid_constant__ ds_cuda_gemv_params p) {    \
    ds::cuda::gemv<W, A, MT>(p);                                                        \
  }
#define DS_GEMV_M124(wn, an, W, A) \
  DS_GEMV(wn, an, W, A, 1) DS_GEMV(wn, an, W, A, 2) DS_GEMV(wn, an, W, A, 4)

DS_GEMV_M124(bf16, bf16, ds::cuda::bf16, ds::cuda::bf16)
DS_GEMV(bf16, bf16, ds::cuda::bf16, ds::cuda::bf16, 8)
// f32 activations (the exactness path) stop at 4 rows per pass: 8 rows of 8 f32 x values per
// lane spill on sm_80. M > 4 takes several passes.
DS_GEMV_M124(bf16, f32, ds::cuda::bf16, float)
DS_GEMV_M124(f32, f32, float, float)

extern "C" __global__ void __launch_bounds__(256)
    ds_gemv_reduce_bf16(const __grid_constant__ ds_cuda_gemv_params p) {
  ds::cuda::gemvReduce<ds::cuda::bf16>(p);
}
extern "C" __global__ void __launch_bounds__(256)
    ds_gemv_reduce_f32(const __grid_constant__ ds_cuda_gemv_params p) {
  ds::cuda::gemvReduce<float>(p);
}

#define DS_GEMV_ANY(wn, an, W, A)                                                       \
  extern "C" __global__ void __launch_bounds__(256)                                     \
      ds_gemv_any_w##wn##_a##an(const __grid_constant__ ds_cuda_gemv_params p) {        \
    ds::cuda::gemvAny<W, A>(p);                                                         \
  }
DS_GEMV_ANY(bf16, bf16, ds::cuda::bf16, ds::cuda::bf16)
DS_GEMV_ANY(bf16, f32, ds::cuda::bf16, float)
DS_GEMV_ANY(f32, f32, float, float)
