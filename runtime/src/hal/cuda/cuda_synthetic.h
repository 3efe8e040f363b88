// Synthetic weights on the GPU (ds-compile --weights random): which bytes of the weights
// allocation each ds_synthetic_fill launch writes. Pure planning, testable without a GPU
// (docs/cuda.md "Synthetic weights"); CudaDevice::loadWeights launches the calls.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "artifact/synthetic.h"
#include "base/status.h"
#include "ds_cuda_kernels.h"

namespace ds::hal::cuda {

struct SyntheticFillTensor {
  uint32_t tensor = 0;            // artifact index (for messages)
  std::string name;
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
  artifact::SyntheticSpec spec;   // dtype, mean, std, stream
  uint64_t offset = 0;            // in the weights allocation (planWeightUpload's)
};

// One launch: params.dst = weights base + `offset` (set at launch; 0 here).
struct SyntheticFillCall {
  uint32_t tensor = 0;
  uint64_t offset = 0;  // of the first byte written, in the weights allocation
  uint64_t bytes = 0;   // bytes written
  ds_cuda_synthetic_fill_params params{};
  ds_cuda_launch launch{};
};

struct SyntheticFillPlan {
  std::vector<SyntheticFillCall> calls;
  uint64_t total_bytes = 0;  // every synthetic tensor's nbytes
};

// Each tensor's elements (I4: bytes of rows padded to whole bytes) in calls of at most
// `call_bytes` (so the progress callback moves during an 8B model's fill), with the artifact's
// `seed`. UNSUPPORTED naming the tensor for a dtype the kernel has no encoding for;
// DATA_LOSS when nbytes is not whole elements (rows for I4) of the shape.
StatusOr<SyntheticFillPlan> planSyntheticFill(const std::vector<SyntheticFillTensor>& tensors,
                                              uint64_t seed, const ds_cuda_device_limits& dev,
                                              uint64_t call_bytes = uint64_t{256} << 20);

}  // namespace ds::hal::cuda
