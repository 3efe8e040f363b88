// ModelRunner: executes an artifact's step plan on the CPU over a paged KV cache (one executor
// per tensor-parallel rank).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/status.h"

namespace ds {
namespace artifact {
class Artifact;
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
  int64_t num_kv_blocks = 0;  // KV cache capacity in blocks of the plan's block size
  int num_threads = 0;        // 0: all hardware threads
};

class ModelRunner {
 public:
  // The artifact must outlive the runner (weights are read from its mapping).
  static StatusOr<std::unique_ptr<ModelRunner>> create(const artifact::Artifact& artifact,
                                                       const RunnerOptions& options);
  ~ModelRunner();

  // Runs the plan; `logits` receives [R, vocab] f32. Validates the batch first (ids < vocab,
  // positions covered by the block tables, rows < T, ...) and returns INVALID_ARGUMENT on any
  // inconsistency, never touching the cache then.
  Status step(const StepBatch& batch, std::vector<float>* logits);

  int64_t vocabSize() const;
  int64_t blockSize() const;
  int64_t numBlocks() const;
  // Bytes one KV block takes over all layers and all tensor-parallel ranks (what
  // --kv-cache-mem is divided by).
  static StatusOr<uint64_t> kvBytesPerBlock(const artifact::Artifact& artifact);
  // Number of launches in one step (for reports).
  size_t numLaunches() const;
  // Tensor-parallel ranks (plan.tp_size): each has its weight shards, KV cache and buffers,
  // and runs on a thread of its own during step(); 1 runs on the caller's thread.
  int tpSize() const;

  struct Impl;
  struct Parallel;

 private:
  ModelRunner(std::unique_ptr<Impl> impl, std::unique_ptr<Parallel> tp);
  std::unique_ptr<Impl> impl_;      // rank 0
  std::unique_ptr<Parallel> tp_;    // the other ranks; null when tpSize() == 1
};

}  // namespace ds
