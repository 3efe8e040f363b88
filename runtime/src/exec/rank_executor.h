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
    // Recorded decode steps (CUDA graphs, docs/cuda.md): batches up to max_graph_batch sequences
    // whose block tables are at most graph_max_blocks wide replay a record per batch bucket on a
    // device that has them (Device::captureBuckets). 0: every step eager.
    int64_t max_graph_batch = 0;
    int64_t graph_max_blocks = 0;
  };
  // KV blocks this rank holds for the engine (Config::num_kv_blocks, or what the budget gave);
  // recorded steps add one scratch block of their own for their padding.
  int64_t numKvBlocks() const { return config_.num_kv_blocks; }
  // Decode steps that replayed a record / were recorded (reports and tests).
  uint64_t replayedSteps() const { return replayed_; }
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
  // Activation memory of one kind of step: eager steps grow theirs as they come; recorded steps
  // have their own, sized once for the largest bucket, so a record's addresses stay valid.
  struct Arenas {
    hal::DeviceBuffer token, row;          // memory-planned buffers per row space
    std::vector<hal::DeviceBuffer> own;    // buffers with memory of their own
    hal::DeviceBuffer token_seq, block_table;  // the batch's index arrays on the device
  };
  Status layoutBuffers(int64_t T, int64_t R, Arenas& arenas);
  int64_t rowsOf(const hal::BufferDesc& b) const;
  // Uploads the batch's arrays into `a` (laid out for it) and fills the step's index fields.
  Status uploadInputs(const StepBatch& b, Arenas& a, hal::StepArgs* step);
  Status launchAll(const hal::StepArgs& step);
  // A pure decode step padded to `bucket` (hal/decode_steps.h), replayed or recorded.
  // b padded to `bucket` sequences at the widest table graphs replay with (pad sequences write
  // into the scratch block after the engine's).
  StatusOr<StepBatch> paddedToBucket(const StepBatch& b, int64_t bucket) const;
  Status runRecorded(const StepBatch& b, int64_t bucket);

  const hal::StepPlan* plan_ = nullptr;
  Config config_;
  std::unique_ptr<hal::Device> device_;
  std::unique_ptr<hal::Weights> weights_;
  std::shared_ptr<const hal::Executable> exe_;
  std::vector<hal::DeviceBuffer> kv_layers_;  // one per layer: num_kv_blocks (+1 scratch) blocks
  std::vector<void*> kv_ptrs_;
  Arenas eager_, recorded_;
  std::vector<void*> base_;                    // per buffer, set for every step
  std::vector<int64_t> buckets_;               // recorded decode batch sizes (empty: none)
  int64_t kv_blocks_allocated_ = 0;            // num_kv_blocks, + 1 scratch with buckets
  uint64_t capture_epoch_ = 0;                 // Executable::bufferEpoch of the records
  uint64_t replayed_ = 0;
  uint64_t steps_ = 0;                         // StepArgs::step_id of the last step
  int64_t T_ = 0, R_ = 0;
  int64_t sized_tokens_ = 0, sized_rows_ = 0;  // the largest eager step reserveFor has seen
};

}  // namespace ds
