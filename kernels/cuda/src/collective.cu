// Tensor-parallel reductions (include/ds_cuda_collective.h): the rank-ordered sum of the slots
// NCCL gathered. Memory bound, grid-stride, one element per thread per pass.
#include "common.cuh"

namespace ds::cuda {

template <typename T>
__device__ __forceinline__ void commSumRanks(const ds_cuda_comm_sum_params& p) {
  const T* src = reinterpret_cast<const T*>(p.src);
  const T* self = reinterpret_cast<const T*>(p.self);
  T* dst = reinterpret_cast<T*>(p.dst);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < p.count; i += stride) {
    // Rank 0 first, then + x_1, + x_2, ...: (((x0 + x1) + x2) + ...) in f32, one rounding.
    float acc = 0.0f;
    for (int r = 0; r < p.nranks; ++r) {
      const T v = (self && r == p.self_rank) ? self[i] : src[r * p.slot_stride + i];
      acc = r == 0 ? toF(v) : __fadd_rn(acc, toF(v));
    }
    dst[i] = fromF<T>(acc);
  }
}

}  // namespace ds::cuda

#define DS_COMM_KERNELS(tn, T)                                                               \
  extern "C" __global__ void __launch_bounds__(256)                                          \
      ds_comm_sum_ranks_##tn(const __grid_constant__ ds_cuda_comm_sum_params p) {            \
    ds::cuda::commSumRanks<T>(p);                                                            \
  }
DS_COMM_KERNELS(bf16, ds::cuda::bf16)
DS_COMM_KERNELS(f32, float)
#undef DS_COMM_KERNELS
