// The paged GQA cache as the attention kernels read it (include/ds_cuda_kernels.h "Paged KV
// cache"): one layer's K or V region, float caches as stored, int8 / FP8 (E4M3) caches decoded in
// registers: value = decode(code) * the vector's f32 scale, the host's dequantized value exactly.
#pragma once

#include <cuda_fp8.h>

#include "common.cuh"

namespace ds::cuda {

// Cache element tags of the quantized caches (ds_cuda_paged_kv.dtype DS_CUDA_KV_INT8 /
// DS_CUDA_FP8_E4M3); float caches use their storage type (bf16, float).
struct KvI8 {};
struct KvF8 {};

// Loads N (= 2, 4 or 8) consecutive elements; 4-, 8- or 16-byte aligned by construction.
template <int N>
__device__ __forceinline__ void loadSmall(const bf16* p, float* f) {
  if constexpr (N == 8) {
    loadN<8>(p, f);
  } else {
#pragma unroll
    for (int i = 0; i < N; i += 2) {
      const float2 v = __bfloat1622float2(reinterpret_cast<const __nv_bfloat162*>(p)[i / 2]);
      f[i] = v.x; f[i + 1] = v.y;
    }
  }
}
template <int N>
__device__ __forceinline__ void loadSmall(const float* p, float* f) {
#pragma unroll
  for (int i = 0; i < N; ++i) f[i] = p[i];
}

// Vector r = slot * kv_heads + kv head, head_dim (D) elements.
template <class C>
struct KvRegion {
  const C* data;
  __device__ __forceinline__ KvRegion(ds_cuda_ptr base, const ds_cuda_paged_kv&) : data(ptr<const C>(base)) {}
  template <int N>
  __device__ __forceinline__ void load(int64_t r, int D, int off, float* f) const {
    loadSmall<N>(data + r * D + off, f);
  }
  __device__ __forceinline__ float at(int64_t r, int D, int d) const { return toF(data[r * D + d]); }
};

__device__ __forceinline__ float decodeCode(KvI8, uint32_t b) {
  return static_cast<float>(static_cast<int8_t>(static_cast<uint8_t>(b)));
}
__device__ __forceinline__ float decodeCode(KvF8, uint32_t b) {  // exact through f16
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(b), __NV_E4M3)));
}
// Two codes in the low 16 bits.
__device__ __forceinline__ float2 decodePair(KvI8, uint32_t w) {
  return make_float2(decodeCode(KvI8{}, w & 0xffu), decodeCode(KvI8{}, (w >> 8) & 0xffu));
}
__device__ __forceinline__ float2 decodePair(KvF8, uint32_t w) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(w & 0xffffu), __NV_E4M3);
  return __half22float2(__half2(h));
}

// Quantized region: f32 scales [slots * kv_heads], then the codes [slots * kv_heads, D] (the plan
// checks that slots * kv_heads % 4 == 0, so the codes stay 16-byte aligned).
template <class Q>
struct KvQuantRegion {
  const float* scales;
  const uint8_t* codes;
  __device__ __forceinline__ KvQuantRegion(ds_cuda_ptr base, const ds_cuda_paged_kv& kv)
      : scales(ptr<const float>(base)),
        codes(reinterpret_cast<const uint8_t*>(scales + static_cast<int64_t>(kv.num_blocks) * kv.block_size * kv.kv_heads)) {}
  template <int N>
  __device__ __forceinline__ void load(int64_t r, int D, int off, float* f) const {
    static_assert(N == 2 || N == 4 || N == 8, "2, 4 or 8 codes per load");
    const uint8_t* p = codes + r * D + off;
    uint32_t w[2] = {0, 0};
    if constexpr (N == 2) w[0] = *reinterpret_cast<const uint16_t*>(p);
    if constexpr (N == 4) w[0] = *reinterpret_cast<const uint32_t*>(p);
    if constexpr (N == 8) {
      const uint2 v = *reinterpret_cast<const uint2*>(p);
      w[0] = v.x, w[1] = v.y;
    }
    const float s = scales[r];
#pragma unroll
    for (int i = 0; i < N; i += 2) {
      const float2 d = decodePair(Q{}, w[i / 4] >> (8 * (i % 4)));
      f[i] = d.x * s;
      f[i + 1] = d.y * s;
    }
  }
  __device__ __forceinline__ float at(int64_t r, int D, int d) const {
    return decodeCode(Q{}, codes[r * D + d]) * scales[r];
  }
};
template <> struct KvRegion<KvI8> : KvQuantRegion<KvI8> { using KvQuantRegion<KvI8>::KvQuantRegion; };
template <> struct KvRegion<KvF8> : KvQuantRegion<KvF8> { using KvQuantRegion<KvF8>::KvQuantRegion; };

}  // namespace ds::cuda
