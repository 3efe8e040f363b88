// RankExecutor: one tensor-parallel rank of a plan on its device: buffer layout from the memory
// plan, the paged KV pool, and the launch loop.
#pragma once

#include <memory>
#include <vector>

#include "base/status.h"
#include "hal/device.h"

namespace ds {
class Communicator;
struct StepBatch;

class RankExecutor {
 public:
  struct Config {
    int rank = 0, tp = 1;
    Communicator* comm = nullptr;  // null when tp == 1
    // KV cache capacity in blocks; 0: this device's budget decides (Device::kvBlocksInBudget),
    // or, on a device without one, kv_fallback_bytes.
    int64_t num_kv_blocks = 0;
    uint64_t kv_fallback_bytes = 0;
    int64_t max_step_tokens = 512;   // the activations the budget keeps room for
    size_t num_graph_buckets = 0;    // CUDA graphs the budget keeps room for
  };
  // KV blocks this rank holds (Config::num_kv_blocks, or what the budget gave).
  int64_t numKvBlocks() const { return config_.num_kv_blocks; }
  // Loads this rank's weights and binds the plan (reusing `peer`, another rank's executable,
  // when the device can), then allocates the KV pool. `plan` must outlive the executor.
  static StatusOr<std::unique_ptr<RankExecutor>> create(
      const artifact::Artifact& artifact, const hal::StepPlan& plan,
      std::unique_ptr<hal::Device> device, const Config& config,
      std::shared_ptr<const hal::Executable> peer);
  ~RankExecutor();

  // The whole step on this rank: buffers for T tokens / R rows, inputs uploaded, every launch.
  // The batch must already be checked.
  Status runStep(const StepBatch& batch);
  // Device address of buffer `id` as laid out for the last step.
  void* buffer(int id) const { return base_[static_cast<size_t>(id)]; }
  hal::Device& device() { return *device_; }
  const std::shared_ptr<const hal::Executable>& executable() const { return exe_; }

 private:
  RankExecutor() = default;
  Status layoutBuffers(int64_t T, int64_t R);
  int64_t rowsOf(const hal::BufferDesc& b) const;

  const hal::StepPlan* plan_ = nullptr;
  Config config_;
  std::unique_ptr<hal::Device> device_;
  std::unique_ptr<hal::Weights> weights_;
  std::shared_ptr<const hal::Executable> exe_;
  std::vector<hal::DeviceBuffer> kv_layers_;  // one per layer: num_kv_blocks blocks
  std::vector<void*> kv_ptrs_;
  hal::DeviceBuffer token_arena_, row_arena_;  // memory-planned buffers per row space
  std::vector<hal::DeviceBuffer> own_;         // buffers with memory of their own
  std::vector<void*> base_;                    // per buffer, set for every step
  hal::DeviceBuffer token_seq_, block_table_;  // the batch's index arrays on the device
  uint64_t steps_ = 0;                         // StepArgs::step_id of the last step
  int64_t T_ = 0, R_ = 0;
};

}  // namespace ds
