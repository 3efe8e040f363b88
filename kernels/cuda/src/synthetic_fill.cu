// Synthetic weights on the device (ds-compile --weights random): the host fill's element
// function (runtime/src/format/artifact/synthetic_element.h), compiled here for the GPU, so the
// bytes are the host's bit for bit.
#include "artifact/synthetic_element.h"
#include "common.cuh"

namespace ds::cuda {
namespace {

template <class Store>
__device__ __forceinline__ void fillEach(const ds_cuda_synthetic_fill_params& p, Store store) {
  for (uint64_t i = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; i < p.count;
       i += static_cast<uint64_t>(gridDim.x) * blockDim.x)
    store(i, ds::synth::value(p.key, p.first + i, p.mean, p.std));
}

}  // namespace
}  // namespace ds::cuda

extern "C" __global__ void __launch_bounds__(256)
    ds_synthetic_fill(const __grid_constant__ ds_cuda_synthetic_fill_params p) {
  using namespace ds::cuda;
  namespace s = ds::synth;
  switch (p.dtype) {
    case DS_CUDA_SYNTH_F32:
      fillEach(p, [&](uint64_t i, float v) { ptr<float>(p.dst)[i] = v; });
      break;
    case DS_CUDA_SYNTH_F16:
      fillEach(p, [&](uint64_t i, float v) { ptr<uint16_t>(p.dst)[i] = s::toF16(v); });
      break;
    case DS_CUDA_SYNTH_BF16:
      fillEach(p, [&](uint64_t i, float v) { ptr<uint16_t>(p.dst)[i] = s::toBF16(v); });
      break;
    case DS_CUDA_SYNTH_F8_E4M3:
      fillEach(p, [&](uint64_t i, float v) {
        ptr<uint8_t>(p.dst)[i] = s::toF8E4M3(s::clampTo(v, -448.0f, 448.0f));
      });
      break;
    case DS_CUDA_SYNTH_I8:
      fillEach(p, [&](uint64_t i, float v) { ptr<uint8_t>(p.dst)[i] = s::toI8(v); });
      break;
    case DS_CUDA_SYNTH_I32:
      fillEach(p, [&](uint64_t i, float v) { ptr<int32_t>(p.dst)[i] = s::toI32(v); });
      break;
    case DS_CUDA_SYNTH_I4:
      for (uint64_t i = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; i < p.count;
           i += static_cast<uint64_t>(gridDim.x) * blockDim.x)
        ptr<uint8_t>(p.dst)[i] = s::i4Byte(p.key, p.mean, p.std, static_cast<uint64_t>(p.cols), p.first + i);
      break;
    default:
      break;  // refused by ds_cuda_plan_synthetic_fill
  }
}
