// splitMemoryBudget and the activation/reserve estimates it is fed with.
#include "hal/cuda/cuda_budget.h"

#include <cmath>
#include <cstdio>

namespace ds::hal::cuda {

namespace {

constexpr uint64_t kAlign = 256;  // cuMemAlloc's alignment; the CUDA allocator rounds to it
uint64_t roundUp(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

std::string fractionText(double f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", f);
  return buf;
}

}  // namespace

std::string bytesText(uint64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, " bytes (%.2f GiB)", static_cast<double>(bytes) / (1ull << 30));
  return std::to_string(bytes) + buf;
}

StatusOr<MemoryBudget> splitMemoryBudget(const BudgetRequest& r) {
  if (!(r.fraction > 0.0 && r.fraction <= 1.0))
    return invalidArgument("--gpu-memory-fraction must be in (0, 1], got " + std::to_string(r.fraction));
  MemoryBudget b;
  b.budget = static_cast<uint64_t>(std::floor(r.fraction * static_cast<double>(r.total_bytes)));
  b.weights = r.weight_bytes;
  b.activations = r.activation_bytes;
  b.reserve = r.reserve_bytes;
  const std::string budget = "the budget is " + fractionText(r.fraction) + " x " +
                             bytesText(r.total_bytes) + " = " + bytesText(b.budget);
  if (r.free_bytes > 0 && b.budget > r.free_bytes)
    return Status(DS_OUT_OF_MEMORY,
                  "only " + bytesText(r.free_bytes) + " of the GPU's memory are free but " + budget +
                      ": another process holds the rest; lower --gpu-memory-fraction or free the GPU");
  if (b.weights > b.budget)
    return Status(DS_OUT_OF_MEMORY,
                  "the weights take " + bytesText(b.weights) + " but " + budget +
                      ": raise --gpu-memory-fraction, use a GPU with more memory, quantize the "
                      "weights or shard them with --tp");
  const uint64_t fixed = b.weights + b.activations + b.reserve;
  const uint64_t left = fixed < b.budget ? b.budget - fixed : 0;
  b.kv_blocks = r.kv_block_bytes ? static_cast<int64_t>(left / r.kv_block_bytes) : 0;
  if (b.kv_blocks < 1)
    return Status(DS_OUT_OF_MEMORY,
                  "no KV cache block fits: weights " + bytesText(b.weights) + " + activations " +
                      bytesText(b.activations) + " + reserve " + bytesText(b.reserve) + " leave " +
                      bytesText(left) + " of a block of " + bytesText(r.kv_block_bytes) + "; " +
                      budget + ": raise --gpu-memory-fraction or lower the step's token budget");
  b.kv_bytes = static_cast<uint64_t>(b.kv_blocks) * r.kv_block_bytes;
  return b;
}

uint64_t activationBytes(const StepPlan& plan, int64_t max_tokens) {
  const uint64_t T = static_cast<uint64_t>(max_tokens);
  uint64_t total = roundUp(T * static_cast<uint64_t>(plan.arena_bytes_per_token)) +
                   roundUp(T * static_cast<uint64_t>(plan.arena_bytes_per_logit_row));
  for (const BufferDesc& b : plan.buffers) {
    if (b.alias_of >= 0 || b.arena_offset >= 0) continue;
    const uint64_t rows = b.rows == RowSpace::Fixed ? static_cast<uint64_t>(b.fixed_rows) : T;
    total += roundUp(rows * b.row_bytes);
  }
  // The step's index inputs: token ids, positions, logit rows, token_seq (+ block tables,
  // counted in the reserve).
  total += 4 * roundUp(T * 4);
  return total;
}

uint64_t reserveBytes(size_t num_graph_buckets) {
  constexpr uint64_t kMiB = 1ull << 20;
  // cuBLASLt workspace (kBlasLtWorkspaceBytes) + block tables and staging (32 MiB) + ~4 MiB
  // per captured graph + 256 MiB for the context, module code and the allocator's fragmentation.
  return kBlasLtWorkspaceBytes + 32 * kMiB + 4 * kMiB * num_graph_buckets + 256 * kMiB;
}

}  // namespace ds::hal::cuda
