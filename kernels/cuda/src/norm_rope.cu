// RMSNorm, add + RMSNorm (one block per row, 16-byte vectors) and rotary embedding (in place).
#include "common.cuh"

namespace ds::cuda {
namespace {

// f32: y = x * inv * w. bf16 follows Hugging Face's LlamaRMSNorm: the normalized value is
// rounded to bf16, then multiplied by the bf16 weight (and rounded again).
template <class T>
__device__ __forceinline__ float normOut(float x, float inv, float w) {
  if constexpr (sizeof(T) == 2) return roundTo<T>(x * inv) * w;
  return x * inv * w;
}

template <class T>
__device__ __forceinline__ void rmsNorm(const ds_cuda_rms_norm_params& p) {
  constexpr int V = Vec<T>::N;
  const int64_t base = static_cast<int64_t>(blockIdx.x) * p.cols;
  const T* x = ptr<const T>(p.x) + base;
  const T* src = p.add ? ptr<const T>(p.sum) + base : x;  // pass 2 rereads its own pass-1 writes
  float ss = 0.0f;
  for (int c = threadIdx.x * V; c < p.cols; c += blockDim.x * V) {
    float v[V];
    loadN<V>(x + c, v);
    if (p.add) {
      float r[V];
      loadN<V>(ptr<const T>(p.residual) + base + c, r);
#pragma unroll
      for (int i = 0; i < V; ++i) v[i] = roundTo<T>(v[i] + r[i]);
      storeN<V>(ptr<T>(p.sum) + base + c, v);
    }
#pragma unroll
    for (int i = 0; i < V; ++i) ss = fmaf(v[i], v[i], ss);
  }
  const float inv = rsqrtf(blockSum(ss) / p.cols + p.eps);
  for (int c = threadIdx.x * V; c < p.cols; c += blockDim.x * V) {
    float v[V], w[V];
    // Not loadN (the read-only path): with add, src was written by this kernel.
    if constexpr (sizeof(T) == 2) {
      unpack(*reinterpret_cast<const uint4*>(src + c), v);
    } else {
      const float4 f = *reinterpret_cast<const float4*>(src + c);
      v[0] = f.x; v[1] = f.y; v[2] = f.z; v[3] = f.w;
    }
    if (sizeof(T) == 2 && p.weight_f32)  // f32 weights (exact copies of bf16 ones, or finer)
      loadN<V>(ptr<const float>(p.weight) + c, w);
    else
      loadN<V>(ptr<const T>(p.weight) + c, w);
#pragma unroll
    for (int i = 0; i < V; ++i) v[i] = normOut<T>(v[i], inv, w[i]);
    storeN<V>(ptr<T>(p.y) + base + c, v);
  }
}

template <class T>
__device__ __forceinline__ void rope(const ds_cuda_rope_params& p) {
  __shared__ float s_cos[256], s_sin[256];
  const int t = blockIdx.x, half = p.rot_dim / 2;
  const float pos = static_cast<float>(ptr<const int32_t>(p.positions)[t]);
  const float* inv_freq = ptr<const float>(p.inv_freq);
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    // Like the host RopeTable: the angle in f32, cos/sin in double, rounded, then scaled.
    const float f = pos * inv_freq[i];
    double s, c;
    sincos(static_cast<double>(f), &s, &c);
    s_cos[i] = static_cast<float>(c) * p.attention_factor;
    s_sin[i] = static_cast<float>(s) * p.attention_factor;
  }
  __syncthreads();
  T* x = ptr<T>(p.x) + static_cast<int64_t>(t) * p.token_stride;
  for (int idx = threadIdx.x; idx < p.heads * half; idx += blockDim.x) {
    const int h = idx / half, i = idx % half;
    T* v = x + h * p.head_dim;
    const int ia = p.interleaved ? 2 * i : i, ib = p.interleaved ? 2 * i + 1 : i + half;
    const float a = toF(v[ia]), b = toF(v[ib]), c = s_cos[i], s = s_sin[i];
    v[ia] = fromF<T>(a * c - b * s);
    v[ib] = fromF<T>(b * c + a * s);
  }
}

}  // namespace
}  // namespace ds::cuda

extern "C" __global__ void __launch_bounds__(256)
    ds_rms_norm_bf16(const __grid_constant__ ds_cuda_rms_norm_params p) {
  ds::cuda::rmsNorm<ds::cuda::bf16>(p);
}
extern "C" __global__ void __launch_bounds__(256)
    ds_rms_norm_f32(const __grid_constant__ ds_cuda_rms_norm_params p) {
  ds::cuda::rmsNorm<float>(p);
}
extern "C" __global__ void __launch_bounds__(256)
    ds_add_rms_norm_bf16(const __grid_constant__ ds_cuda_rms_norm_params p) {
  ds::cuda::rmsNorm<ds::cuda::bf16>(p);
}
extern "C" __global__ void __launch_bounds__(256)
    ds_add_rms_norm_f32(const __grid_constant__ ds_cuda_rms_norm_params p) {
  ds::cuda::rmsNorm<float>(p);
}
extern "C" __global__ void __launch_bounds__(128)
    ds_rope_bf16(const __grid_constant__ ds_cuda_rope_params p) {
  ds::cuda::rope<ds::cuda::bf16>(p);
}
extern "C" __global__ void __launch_bounds__(128)
    ds_rope_f32(const __grid_constant__ ds_cuda_rope_params p) {
  ds::cuda::rope<float>(p);
}
