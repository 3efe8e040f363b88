// ModelRunner: executes an artifact's step plan on a device over a paged KV cache (one executor
// per tensor-parallel rank, each with a device of its own).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/status.h"
#include "hal/cpu/cpu_device.h"

namespace ds {
namespace artifact {
class Artifact;
}
namespace hal {
class Device;
}

// One step's ragged batch: T tokens of S sequences (any mix of prefill and decode).
struct StepBatch {
  std::vector<int32_t> token_ids;   // [T]
  std::vector<int32_t> positions;   // [T] position of each token in its sequence
  std::vector<int32_t> token_seq;   // [T] index of the token's sequence in [0, S)
  std::vector<int32_t> logit_rows;  // [R] token rows whose logits are wanted
  int64_t num_seqs = 0;
  int64_t max_blocks_per_seq = 0;
  std::vector<int32_t> block_table; // [S, max_blocks_per_seq] of KV block ids (-1 unused)
};

struct RunnerOptions {
  // KV cache capacity in blocks of the plan's block size. 0: a GPU's memory budget decides
  // (docs/cuda.md "Memory budget": what gpu_memory_fraction leaves after weights, activations of
  // a max_step_tokens step and the graph reserve), the CPU takes kv_fallback_bytes.
  int64_t num_kv_blocks = 0;
  uint64_t kv_fallback_bytes = 64ull << 20;
  int64_t max_step_tokens = 512;
  // GPU decode steps replay CUDA graphs per batch bucket (docs/cuda.md "CUDA graphs") for up to
  // min(max_step_tokens, 256) sequences and contexts up to max_model_len (0: the model's);
  // enforce_eager runs every step launch by launch (vLLM's --enforce-eager).
  bool enforce_eager = false;
  int64_t max_model_len = 0;
  int num_threads = 0;        // CPU kernels' threads; 0: the policy below
  // Policy of the CPU device when num_threads is 0 (hal/cpu/cpu_device.h).
  uint64_t single_thread_below_bytes = hal::CpuThreadPolicy{}.single_thread_below_bytes;
  // False: the artifact's generated native code is never loaded; library kernels run every
  // launch, with the same results (hal::DeviceOptions).
  bool allow_native_code = true;
  // GPU targets (docs/cuda.md): the first GPU (rank r uses device_ordinal + r) and the share of
  // its memory the runner may use (vLLM's --gpu-memory-utilization).
  int device_ordinal = 0;
  double gpu_memory_fraction = 0.9;
};

// The logits rows of the last step: R x vocab f32 in the device's memory, valid until the next
// step (or the runner's end).
struct LogitsView {
  const float* data = nullptr;
  int64_t rows = 0, vocab = 0;
  hal::Device* device = nullptr;
  // The rows in host memory: `data` itself on a host-visible device (the CPU), else copied into
  // *staging through the device's stream.
  StatusOr<const float*> host(std::vector<float>* staging) const;
  // Greedy ids of every row computed where the rows are (Device::argmaxRows): true and `ids`
  // filled on a device with a device argmax (a GPU: R ids cross the bus instead of R x vocab
  // floats), false where the caller should read host() and sample there.
  StatusOr<bool> argmax(std::vector<int32_t>* ids) const;
};

class ModelRunner {
 public:
  // The artifact must outlive the runner (weights are read from its mapping).
  static StatusOr<std::unique_ptr<ModelRunner>> create(const artifact::Artifact& artifact,
                                                       const RunnerOptions& options);
  ~ModelRunner();

  // Runs the plan and hands back a view of the [R, vocab] logits. Validates the batch first
  // (ids < vocab, positions covered by the block tables, rows < T, ...) and returns
  // INVALID_ARGUMENT on any inconsistency, never touching the cache then.
  StatusOr<LogitsView> step(const StepBatch& batch);

  int64_t vocabSize() const;
  int64_t blockSize() const;
  int64_t numBlocks() const;
  // Bytes one KV block takes over all layers and all tensor-parallel ranks (what
  // --kv-cache-mem is divided by): artifact::kvBytesPerBlock x tp_size.
  static StatusOr<uint64_t> kvBytesPerBlock(const artifact::Artifact& artifact);
  // Whether this runtime on this machine has a device for the artifact's target and can run
  // its generated code (target, triple, kernel ABI, CPU features), decided from the metadata
  // without mapping any code; ds-inspect reports it.
  static Status checkRunsHere(const artifact::Artifact& artifact);
  // Number of launches in one step (for reports) and how many run generated code.
  size_t numLaunches() const;
  size_t numGeneratedLaunches() const;
  // Tensor-parallel ranks (plan.tp_size): each has its device, weight shards, KV cache and
  // buffers, and runs on a thread of its own during step(); 1 runs on the caller's thread.
  int tpSize() const;

  struct Impl;

 private:
  explicit ModelRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// step() with the logits copied to host memory (tests and tools that keep them).
Status stepToHost(ModelRunner& runner, const StepBatch& batch, std::vector<float>* logits);

}  // namespace ds
