// Shared helpers of the hand-written CUDA kernels: reductions, bf16/f32 vector loads and stores.
#pragma once

#include <cuda_bf16.h>
#include <stdint.h>

#include "ds_cuda_kernels.h"

namespace ds::cuda {

typedef __nv_bfloat16 bf16;

template <class T>
__device__ __forceinline__ T* ptr(ds_cuda_ptr p) {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(p));
}

__device__ __forceinline__ float warpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result, in
// a fixed order (deterministic).
__device__ __forceinline__ float blockSum(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warpSum(v);
  __syncthreads();  // partial may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : 0.0f;
  return warpSum(v);
}

// Max over the block (non-negative inputs; 0 for an empty block), every thread gets it.
__device__ __forceinline__ float blockMax(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warpMax(v);
  __syncthreads();  // partial may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : 0.0f;
  return warpMax(v);
}

// The selection order of argmax and top-k: the larger value first, the lower index on ties
// (torch.argmax, the host's topK). Callers keep NaN out, so the order is total.
__device__ __forceinline__ bool ranksBefore(float v, int i, float bv, int bi) {
  return v > bv || (v == bv && i < bi);
}

__device__ __forceinline__ float toF(float v) { return v; }
__device__ __forceinline__ float toF(bf16 v) { return __bfloat162float(v); }
template <class T> __device__ __forceinline__ T fromF(float v);
template <> __device__ __forceinline__ float fromF<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 fromF<bf16>(float v) { return __float2bfloat16_rn(v); }
// Rounds through the storage type (bf16 arithmetic points of the Hugging Face reference).
template <class T> __device__ __forceinline__ float roundTo(float v) { return toF(fromF<T>(v)); }

// The GEMV epilogue of one warp's column n: sums over the lanes, then lane 0 writes rows
// [m0, m0 + rows) of y (row stride y_stride) in A, plus the f32 bias when given.
template <class A, int MT>
__device__ __forceinline__ void storeGemvRows(float (&acc)[MT], int rows, ds_cuda_ptr bias,
                                              ds_cuda_ptr y, int y_stride, int m0, int n) {
#pragma unroll
  for (int m = 0; m < MT; ++m) acc[m] = warpSum(acc[m]);
  if ((threadIdx.x & 31) != 0) return;
  const float b = bias ? ptr<const float>(bias)[n] : 0.0f;
#pragma unroll
  for (int m = 0; m < MT; ++m)
    if (m < rows) ptr<A>(y)[static_cast<size_t>(m0 + m) * y_stride + n] = fromF<A>(acc[m] + b);
}

// Elements of T in one 16-byte load.
template <class T> struct Vec { static constexpr int N = 16 / sizeof(T); };

__device__ __forceinline__ void unpack(uint4 r, float* f) {
  const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

// N consecutive elements (16-byte aligned) to f32 through the read-only cache.
template <int N>
__device__ __forceinline__ void loadN(const bf16* p, float* f) {
  static_assert(N % 8 == 0, "bf16 loads are 8 wide");
#pragma unroll
  for (int i = 0; i < N / 8; ++i) unpack(__ldg(reinterpret_cast<const uint4*>(p) + i), f + 8 * i);
}
template <int N>
__device__ __forceinline__ void loadN(const float* p, float* f) {
  static_assert(N % 4 == 0, "f32 loads are 4 wide");
#pragma unroll
  for (int i = 0; i < N / 4; ++i) {
    const float4 v = __ldg(reinterpret_cast<const float4*>(p) + i);
    f[4 * i] = v.x; f[4 * i + 1] = v.y; f[4 * i + 2] = v.z; f[4 * i + 3] = v.w;
  }
}

template <int N>
__device__ __forceinline__ void storeN(bf16* p, const float* f) {
  static_assert(N % 8 == 0, "bf16 stores are 8 wide");
#pragma unroll
  for (int i = 0; i < N / 8; ++i) {
    uint32_t w[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const __nv_bfloat162 h = __floats2bfloat162_rn(f[8 * i + 2 * j], f[8 * i + 2 * j + 1]);
      w[j] = *reinterpret_cast<const uint32_t*>(&h);
    }
    reinterpret_cast<uint4*>(p)[i] = make_uint4(w[0], w[1], w[2], w[3]);
  }
}
template <int N>
__device__ __forceinline__ void storeN(float* p, const float* f) {
  static_assert(N % 4 == 0, "f32 stores are 4 wide");
#pragma unroll
  for (int i = 0; i < N / 4; ++i)
    reinterpret_cast<float4*>(p)[i] = make_float4(f[4 * i], f[4 * i + 1], f[4 * i + 2], f[4 * i + 3]);
}

}  // namespace ds::cuda
