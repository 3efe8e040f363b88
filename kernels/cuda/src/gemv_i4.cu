// GEMV over int4 group-quantized weights in the GPU storage (include/ds_cuda_layout.h): two
// elements per mask-and-or, exact f16 subtraction, then the host's f32 scale arithmetic.
#include <cuda_fp16.h>

#include "common.cuh"

namespace ds::cuda {
namespace {

// Rows [blockIdx.y * MT, +MT) of y, column n = blockIdx.x * 8 + warp.
template <class A, int MT>
__device__ __forceinline__ void gemvI4(const ds_cuda_gemv_i4_params& p) {
  const int lane = threadIdx.x & 31;
  const int n = blockIdx.x * 8 + (threadIdx.x >> 5);
  const int m0 = blockIdx.y * MT;
  if (n >= p.N) return;
  const int rows = min(MT, p.M - m0);
  const int groups = p.K / p.group_size;
  const uint8_t* wrow = ptr<const uint8_t>(p.w) + static_cast<size_t>(n) * (p.K / 2);
  const float* srow = ptr<const float>(p.scale) + static_cast<size_t>(n) * groups;
  const float* zrow = p.zero ? ptr<const float>(p.zero) + static_cast<size_t>(n) * groups : nullptr;
  const __half2 bias2 = __float2half2_rn(zrow ? DS_CUDA_I4_ASYM_BIAS : DS_CUDA_I4_SYM_BIAS);
  const A* x = ptr<const A>(p.x) + static_cast<size_t>(m0) * p.x_stride;
  constexpr int C = Vec<A>::N;  // activations per 16-byte load

  float acc[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) acc[m] = 0.0f;
  for (int k0 = lane * 32; k0 < p.K; k0 += 32 * 32) {
    const uint4 raw = __ldcs(reinterpret_cast<const uint4*>(wrow + k0 / 2));
    const int g = k0 / p.group_size;  // 32 elements never straddle a group
    const float s = srow[g], z = zrow ? zrow[g] : 0.0f;
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      float wf[8];
#pragma unroll
      for (int pr = 0; pr < 4; ++pr) {
        const uint32_t bits = DS_CUDA_I4_HALF2_BITS(words[q], pr);
        const float2 v = __half22float2(__hsub2(*reinterpret_cast<const __half2*>(&bits), bias2));
        // The host's arithmetic: q * s, or (q - z) * s, each rounded in f32 (no fma).
        wf[2 * pr] = zrow ? __fmul_rn(__fsub_rn(v.x, z), s) : __fmul_rn(v.x, s);
        wf[2 * pr + 1] = zrow ? __fmul_rn(__fsub_rn(v.y, z), s) : __fmul_rn(v.y, s);
      }
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        if (m < rows) {
#pragma unroll
          for (int c = 0; c < 8; c += C) {
            float xf[C];
            loadN<C>(x + static_cast<size_t>(m) * p.x_stride + k0 + 8 * q + c, xf);
#pragma unroll
            for (int i = 0; i < C; ++i) acc[m] = fmaf(wf[c + i], xf[i], acc[m]);
          }
        }
      }
    }
  }
  storeGemvRows<A, MT>(acc, rows, p.bias, p.y, p.y_stride, m0, n);
}

// Any K % 8 == 0 and group size (partial last group), any alignment of x: one warp per output
// (column n = blockIdx.x * 8 + warp, row blockIdx.y), lanes over 32-bit words (8 elements).
template <class A>
__device__ __forceinline__ void gemvI4Any(const ds_cuda_gemv_i4_params& p) {
  const int lane = threadIdx.x & 31;
  const int n = blockIdx.x * 8 + (threadIdx.x >> 5), m = blockIdx.y;
  if (n >= p.N || m >= p.M) return;
  const int groups = (p.K + p.group_size - 1) / p.group_size;
  const uint32_t* wrow = ptr<const uint32_t>(p.w) + static_cast<size_t>(n) * (p.K / 8);
  const float* srow = ptr<const float>(p.scale) + static_cast<size_t>(n) * groups;
  const float* zrow = p.zero ? ptr<const float>(p.zero) + static_cast<size_t>(n) * groups : nullptr;
  const __half2 bias2 = __float2half2_rn(zrow ? DS_CUDA_I4_ASYM_BIAS : DS_CUDA_I4_SYM_BIAS);
  const A* x = ptr<const A>(p.x) + static_cast<size_t>(m) * p.x_stride;
  float acc = 0.0f;
  for (int j = lane; j < p.K / 8; j += 32) {
    const uint32_t word = wrow[j];
#pragma unroll
    for (int pr = 0; pr < 4; ++pr) {
      const uint32_t bits = DS_CUDA_I4_HALF2_BITS(word, pr);
      const float2 v = __half22float2(__hsub2(*reinterpret_cast<const __half2*>(&bits), bias2));
      const float q[2] = {v.x, v.y};
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int k = 8 * j + 2 * pr + e, g = k / p.group_size;
        const float w = zrow ? __fmul_rn(__fsub_rn(q[e], zrow[g]), srow[g]) : __fmul_rn(q[e], srow[g]);
        acc = fmaf(w, toF(x[k]), acc);
      }
    }
  }
  acc = warpSum(acc);
  if (lane != 0) return;
  const float b = p.bias ? ptr<const float>(p.bias)[n] : 0.0f;
  ptr<A>(p.y)[static_cast<size_t>(m) * p.y_stride + n] = fromF<A>(acc + b);
}

}  // namespace
}  // namespace ds::cuda

extern "C" __global__ void __launch_bounds__(256)
    ds_gemv_any_wi4_abf16(const __grid_constant__ ds_cuda_gemv_i4_params p) {
  ds::cuda::gemvI4Any<ds::cuda::bf16>(p);
}
extern "C" __global__ void __launch_bounds__(256)
    ds_gemv_any_wi4_af32(const __grid_constant__ ds_cuda_gemv_i4_params p) {
  ds::cuda::gemvI4Any<float>(p);
}

extern "C" __global__ void __launch_bounds__(256)
    ds_i4_to_gpu(const __grid_constant__ ds_cuda_i4_to_gpu_params p) {
  uint32_t* w = ds::cuda::ptr<uint32_t>(p.data);
  for (uint64_t i = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; i < p.words;
       i += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    const uint32_t v = w[i] ^ (p.symmetric ? 0x88888888u : 0u);
    uint32_t out = 0;
#pragma unroll
    for (int e = 0; e < 8; ++e) out |= ((v >> (4 * e)) & 0xfu) << (4 * (e / 2 + 4 * (e % 2)));
    w[i] = out;
  }
}

#define DS_GEMV_I4(an, A, MT)                                                            \
  extern "C" __global__ void __launch_bounds__(256)                                      \
      ds_gemv_wi4_a##an##_m##MT(const __grid_constant__ ds_cuda_gemv_i4_params p) {      \
    ds::cuda::gemvI4<A, MT>(p);                                                          \
  }
DS_GEMV_I4(bf16, ds::cuda::bf16, 1)
DS_GEMV_I4(bf16, ds::cuda::bf16, 2)
DS_GEMV_I4(bf16, ds::cuda::bf16, 4)
DS_GEMV_I4(f32, float, 1)
DS_GEMV_I4(f32, float, 2)
DS_GEMV_I4(f32, float, 4)
