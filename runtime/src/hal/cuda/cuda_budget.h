// The GPU memory budget (vLLM's --gpu-memory-fraction): fraction x device memory, split into
// weights, activation arenas, a reserve for CUDA graphs and library workspaces, and KV blocks
// from the rest. Plain arithmetic, testable without a GPU (docs/cuda.md "Memory budget").
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "hal/launch.h"

namespace ds::hal::cuda {

// The cuBLASLt workspace each device reserves (32 MiB, as NVIDIA's samples use on Hopper);
// counted in reserveBytes, allocated by the device on its first cuBLASLt GEMM.
constexpr uint64_t kBlasLtWorkspaceBytes = 32ull << 20;

// vLLM's default --gpu-memory-utilization.
constexpr double kDefaultGpuMemoryFraction = 0.9;

struct BudgetRequest {
  uint64_t total_bytes = 0;       // the device's memory (cuDeviceTotalMem)
  uint64_t free_bytes = 0;        // free when the runner starts (cuMemGetInfo); 0: not checked
  double fraction = kDefaultGpuMemoryFraction;
  uint64_t weight_bytes = 0;      // this rank's weights as uploaded (alignment included)
  uint64_t activation_bytes = 0;  // arenas and buffers of a max_step_tokens step
  uint64_t reserve_bytes = 0;     // CUDA graphs, cuBLASLt workspace, staging (reserveBytes)
  uint64_t kv_block_bytes = 0;    // one KV block over all layers of this rank
};

struct MemoryBudget {
  uint64_t budget = 0;  // fraction x total
  uint64_t weights = 0, activations = 0, reserve = 0;
  uint64_t kv_bytes = 0;  // kv_blocks x kv_block_bytes (<= what is left)
  int64_t kv_blocks = 0;
};

// RESOURCE (DS_OUT_OF_MEMORY) naming every number when the weights alone exceed the budget, when
// weights + activations + reserve leave no KV block, or when the budget exceeds the memory free
// right now (another process holds the GPU); INVALID_ARGUMENT for a fraction outside (0, 1].
StatusOr<MemoryBudget> splitMemoryBudget(const BudgetRequest& request);

// Activation memory of a step of `max_tokens` tokens with as many logit rows (the worst case):
// both arenas plus every buffer with memory of its own, as exec/rank_executor lays them out,
// each rounded to the allocator's alignment.
uint64_t activationBytes(const StepPlan& plan, int64_t max_tokens);

// The fixed reserve: CUDA graph executables (a few MiB of device memory each, per bucket), the
// cuBLASLt workspace, the per-step index buffers and the driver's own. An estimate, not yet
// measured on a GPU (docs/cuda.md).
uint64_t reserveBytes(size_t num_graph_buckets);

// "17179869184 bytes (16.00 GiB)".
std::string bytesText(uint64_t bytes);

}  // namespace ds::hal::cuda
