// SwiGLU, residual add, embedding gather, logits-row gather and greedy argmax.
#include "common.cuh"

namespace ds::cuda {
namespace {

template <class T>
__device__ __forceinline__ void swiglu(const ds_cuda_swiglu_params& p) {
  const int64_t n = static_cast<int64_t>(p.rows) * p.cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / p.cols, c = i % p.cols;
    const float g = toF(ptr<const T>(p.gate)[r * p.gate_stride + c]);
    const float u = toF(ptr<const T>(p.up)[r * p.up_stride + c]);
    ptr<T>(p.y)[r * p.y_stride + c] = fromF<T>(g / (1.0f + expf(-g)) * u);
  }
}

template <class T>
__device__ __forceinline__ void add(const ds_cuda_add_params& p) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < p.n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    ptr<T>(p.y)[i] = fromF<T>(toF(ptr<const T>(p.a)[i]) + toF(ptr<const T>(p.b)[i]));
}

template <class T>
__device__ __forceinline__ void copyRow(const T* src, T* dst, int n) {
  for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = src ? src[i] : fromF<T>(0.0f);
}

template <class T>
__device__ __forceinline__ void embed(const ds_cuda_embed_params& p) {
  const int t = blockIdx.x;
  const int id = ptr<const int32_t>(p.ids)[t] - p.row_offset;
  const T* src = id >= 0 && id < p.table_rows
                     ? ptr<const T>(p.weight) + static_cast<int64_t>(id) * p.hidden
                     : nullptr;
  copyRow(src, ptr<T>(p.y) + static_cast<int64_t>(t) * p.hidden, p.hidden);
}

template <class T>
__device__ __forceinline__ void gatherRows(const ds_cuda_gather_rows_params& p) {
  const int r = blockIdx.x;
  const int src_row = ptr<const int32_t>(p.rows)[r];
  const T* src = src_row >= 0 && src_row < p.x_rows
                     ? ptr<const T>(p.x) + static_cast<int64_t>(src_row) * p.hidden
                     : nullptr;
  copyRow(src, ptr<T>(p.y) + static_cast<int64_t>(r) * p.hidden, p.hidden);
}

template <class T>
__device__ __forceinline__ void copyCols(const ds_cuda_copy_cols_params& p) {
  const int64_t n = static_cast<int64_t>(p.rows) * p.cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / p.cols, c = i % p.cols;
    ptr<T>(p.y)[r * p.y_stride + c] = ptr<const T>(p.x)[r * p.x_stride + c];
  }
}


template <class T>
__device__ __forceinline__ void argmax(const ds_cuda_argmax_params& p) {
  const T* x = ptr<const T>(p.x) + static_cast<int64_t>(blockIdx.x) * p.x_stride;
  float bv = -INFINITY;
  int bi = INT_MAX;
  for (int i = threadIdx.x; i < p.vocab; i += blockDim.x) {
    const float v = toF(x[i]);
    if (ranksBefore(v, i, bv, bi)) { bv = v; bi = i; }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ranksBefore(ov, oi, bv, bi)) { bv = ov; bi = oi; }
  }
  __shared__ float s_v[32];
  __shared__ int s_i[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) { s_v[warp] = bv; s_i[warp] = bi; }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w)
      if (ranksBefore(s_v[w], s_i[w], bv, bi)) { bv = s_v[w]; bi = s_i[w]; }
    // Every value -inf or NaN: index 0 (torch.argmax of an all -inf row).
    ptr<int32_t>(p.out)[blockIdx.x] = bi == INT_MAX ? 0 : bi;
  }
}

}  // namespace
}  // namespace ds::cuda

#define DS_ELEMENTWISE(tn, T)                                                                 \
  extern "C" __global__ void __launch_bounds__(256)                                           \
      ds_swiglu_##tn(const __grid_constant__ ds_cuda_swiglu_params p) {                       \
    ds::cuda::swiglu<T>(p);                                                                   \
  }                                                                                           \
  extern "C" __global__ void __launch_bounds__(256)                                           \
      ds_add_##tn(const __grid_constant__ ds_cuda_add_params p) {                             \
    ds::cuda::add<T>(p);                                                                      \
  }                                                                                           \
  extern "C" __global__ void __launch_bounds__(256)                                           \
      ds_embed_##tn(const __grid_constant__ ds_cuda_embed_params p) {                         \
    ds::cuda::embed<T>(p);                                                                    \
  }                                                                                           \
  extern "C" __global__ void __launch_bounds__(256)                                           \
      ds_gather_rows_##tn(const __grid_constant__ ds_cuda_gather_rows_params p) {             \
    ds::cuda::gatherRows<T>(p);                                                               \
  }                                                                                           \
  extern "C" __global__ void __launch_bounds__(256)                                           \
      ds_copy_cols_##tn(const __grid_constant__ ds_cuda_copy_cols_params p) {                 \
    ds::cuda::copyCols<T>(p);                                                                 \
  }                                                                                           \
  extern "C" __global__ void __launch_bounds__(256)                                           \
      ds_argmax_##tn(const __grid_constant__ ds_cuda_argmax_params p) {                       \
    ds::cuda::argmax<T>(p);                                                                   \
  }
DS_ELEMENTWISE(bf16, ds::cuda::bf16)
DS_ELEMENTWISE(f32, float)
