// RMSNorm over rows: y = x * rsqrt(mean(x^2) + eps) * w, f32 accumulation. One block per row.
#include "cuda/common.cuh"

namespace {

template <typename T>
__device__ void rmsNormRow(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y,
                           int cols, float eps) {
  const T* xr = x + static_cast<size_t>(blockIdx.x) * cols;
  T* yr = y + static_cast<size_t>(blockIdx.x) * cols;
  float sum = 0.0f;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) {
    float v = ds::cuda::toFloat(xr[i]);
    sum += v * v;
  }
  float inv = rsqrtf(ds::cuda::blockReduceSum(sum) / cols + eps);
  for (int i = threadIdx.x; i < cols; i += blockDim.x)
    yr[i] = static_cast<T>(ds::cuda::toFloat(xr[i]) * inv * ds::cuda::toFloat(w[i]));
}

}  // namespace

// Entry points have C names: the runtime looks them up with cuModuleGetFunction.
extern "C" __global__ void ds_rms_norm_f32(const float* x, const float* w, float* y, int cols,
                                           float eps) {
  rmsNormRow(x, w, y, cols, eps);
}

extern "C" __global__ void ds_rms_norm_bf16(const __nv_bfloat16* x, const __nv_bfloat16* w,
                                            __nv_bfloat16* y, int cols, float eps) {
  rmsNormRow(x, w, y, cols, eps);
}
