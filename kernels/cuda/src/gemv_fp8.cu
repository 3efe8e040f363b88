// GEMV over FP8 E4M3 weights with 128 x 128 (any block) f32 scales, as DeepSeek-V3 ships them
// (include/ds_cuda_layout.h). The codes are decoded in registers (moe.cu's WeightLoad, exact
// through f16) and scaled in f32 like the host's dequantRow; f32 accumulation.
#include "common.cuh"

namespace ds::cuda {
namespace {

// int8 codes (--quant w8): 16 per load, value q * scale in f32 like the host.
struct Int8Codes {
  template <int C>
  __device__ static void decode(uint4 r, int c, float scale, float* f) {
    const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < C; ++i)
      f[i] = static_cast<float>(static_cast<int8_t>((w[(c + i) >> 2] >> (8 * ((c + i) & 3))) & 0xff)) * scale;
  }
};

template <class Codes, class A, int MT>
__device__ __forceinline__ void gemvFp8(const ds_cuda_gemv_fp8_params& p) {
  constexpr int V = 16;  // codes per 16-byte load
  const int lane = threadIdx.x & 31;
  const int n = blockIdx.x * 8 + (threadIdx.x >> 5);
  const int m0 = blockIdx.y * MT;
  if (n >= p.N) return;
  const int rows = min(MT, p.M - m0);
  const int kb = (p.K + p.block_cols - 1) / p.block_cols;
  const uint8_t* wrow = ptr<const uint8_t>(p.w) + static_cast<size_t>(n) * p.K;
  const float* srow = ptr<const float>(p.scale) + static_cast<size_t>(n / p.block_rows) * kb;
  const A* x = ptr<const A>(p.x) + static_cast<size_t>(m0) * p.x_stride;
  constexpr int C = Vec<A>::N;
  float acc[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) acc[m] = 0.0f;
  for (int base = lane * V; base < p.K; base += 32 * V * 2) {
    uint4 raw[2];
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int k = base + u * 32 * V;
      raw[u] = k < p.K ? __ldcs(reinterpret_cast<const uint4*>(wrow + k)) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int k = base + u * 32 * V;
      if (k >= p.K) break;
      const float s = srow[k / p.block_cols];
#pragma unroll
      for (int c = 0; c < V; c += C) {
        float wf[C];
        Codes::template decode<C>(raw[u], c, s, wf);
#pragma unroll
        for (int m = 0; m < MT; ++m) {
          if (m < rows) {
            float xf[C];
            loadN<C>(x + static_cast<size_t>(m) * p.x_stride + k + c, xf);
#pragma unroll
            for (int i = 0; i < C; ++i) acc[m] = fmaf(wf[i], xf[i], acc[m]);
          }
        }
      }
    }
  }
  storeGemvRows<A, MT>(acc, rows, p.bias, p.y, p.y_stride, m0, n);
}

}  // namespace
}  // namespace ds::cuda

#define DS_GEMV_FP8(an, A, MT)                                                                  \
  extern "C" __global__ void __launch_bounds__(256)                                             \
      ds_gemv_wfp8_a##an##_m##MT(const __grid_constant__ ds_cuda_gemv_fp8_params p) {           \
    ds::cuda::gemvFp8<ds::cuda::WeightLoad<__nv_fp8_e4m3>, A, MT>(p);                           \
  }                                                                                             \
  extern "C" __global__ void __launch_bounds__(256)                                             \
      ds_gemv_wi8_a##an##_m##MT(const __grid_constant__ ds_cuda_gemv_fp8_params p) {            \
    ds::cuda::gemvFp8<ds::cuda::Int8Codes, A, MT>(p);                                           \
  }
DS_GEMV_FP8(bf16, ds::cuda::bf16, 1)
DS_GEMV_FP8(bf16, ds::cuda::bf16, 2)
DS_GEMV_FP8(bf16, ds::cuda::bf16, 4)
// f32 activations stop at 2 rows per pass: 4 spill on sm_89 (the resource check caught it).
DS_GEMV_FP8(f32, float, 1)
DS_GEMV_FP8(f32, float, 2)
