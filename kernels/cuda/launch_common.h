// Shared helpers of the launch plans (launch.cpp, launch_moe.cpp, launch_mla.cpp, layout.cpp):
// host C++, no CUDA. Internal to the ds_cuda_launch library.
#pragma once

#include <algorithm>
#include <cstdint>

#include "ds_cuda_kernels.h"

namespace ds_cuda_plan_util {

inline int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline bool validDtype(int32_t d) { return d == DS_CUDA_F32 || d == DS_CUDA_BF16; }
inline int64_t dtypeBytes(int32_t d) { return d == DS_CUDA_BF16 ? 2 : 4; }
inline bool aligned(ds_cuda_ptr p, uint32_t a) { return p % a == 0; }
inline const char* dtypeName(int32_t d) { return d == DS_CUDA_BF16 ? "bf16" : "f32"; }

inline void setLaunch(ds_cuda_launch& l, const char* symbol, int64_t gx, int64_t gy, int64_t gz,
                      uint32_t block, uint32_t shared = 0) {
  l.symbol = symbol;
  l.grid[0] = static_cast<uint32_t>(gx);
  l.grid[1] = static_cast<uint32_t>(gy);
  l.grid[2] = static_cast<uint32_t>(gz);
  l.block[0] = block;
  l.block[1] = l.block[2] = 1;
  l.shared_bytes = shared;
}

// Grid-stride elementwise launches: enough blocks to fill any current GPU, capped.
inline int64_t strideBlocks(int64_t n) { return std::clamp<int64_t>(ceilDiv(n, 256), 1, 65535); }

// The library's symbol named prefix + suffix (launch.cpp's table), or null.
const char* symbol(const char* prefix, const char* suffix);

}  // namespace ds_cuda_plan_util
