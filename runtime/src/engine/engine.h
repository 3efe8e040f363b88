// Engine: requests in, tokens out. Schedules ragged batches (prefill chunks + decodes) over the
// paged KV cache and samples each sequence with its own sampler.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "base/status.h"
#include "engine/kv_blocks.h"
#include "engine/sampler.h"
#include "exec/model_runner.h"

namespace ds {

// The CPU's KV cache when EngineOptions::kv_cache_bytes is 0.
constexpr uint64_t kDefaultCpuKvCacheBytes = 64ull << 20;

struct EngineOptions {
  // Memory of the paged KV cache. 0 (the default): a GPU sizes it from its memory budget
  // (gpu_memory_fraction, like vLLM), the CPU takes cpu_kv_cache_bytes.
  uint64_t kv_cache_bytes = 0;
  uint64_t cpu_kv_cache_bytes = kDefaultCpuKvCacheBytes;
  int num_threads = 0;                    // 0: all hardware threads
  int64_t max_step_tokens = 512;          // token budget of one step (prefill is chunked)
  // Longest request (prompt + max_new_tokens) accepted, as vLLM's --max-model-len; 0: the
  // model's max_position_embeddings. Larger than the model's context is refused.
  int64_t max_model_len = 0;
  // Finished requests whose tokens generated() still returns; the oldest are forgotten first
  // (a long-running engine must not grow without bound).
  size_t max_finished_kept = 1024;
  // False: the artifact's generated native code is never loaded; library kernels run every
  // launch with the same results (RunnerOptions::allow_native_code).
  bool allow_native_code = true;
  // GPU targets (RunnerOptions, docs/cuda.md): the first GPU and the share of its memory used.
  int device_ordinal = 0;
  double gpu_memory_fraction = 0.9;
  // GPU decode steps run launch by launch instead of replaying CUDA graphs (vLLM's flag).
  bool enforce_eager = false;
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int64_t max_new_tokens = 64;
  std::vector<int32_t> stop_token_ids;    // generation ends after emitting one of these
};

enum class FinishReason { kNone = 0, kLength, kStop };

struct TokenEvent {
  int64_t request = 0;
  int32_t token = 0;
  FinishReason finish = FinishReason::kNone;
  // Only when the request's sampling.logprobs >= 0 (else never computed): the token's logprob
  // and the top sampling.logprobs alternatives (SamplingParams::logprobs_raw says of what).
  std::optional<TokenLogprobs> logprobs;
};

class Engine {
 public:
  // The artifact must outlive the engine.
  static StatusOr<std::unique_ptr<Engine>> create(const artifact::Artifact& artifact,
                                                  const EngineOptions& options);

  // Queues a request; INVALID_ARGUMENT for an empty prompt, out-of-vocabulary ids, bad sampling
  // parameters, or a prompt + max_new_tokens longer than the context (maxModelLen()) or than the
  // KV cache can ever hold.
  StatusOr<int64_t> submit(GenerationRequest request);
  // One model step over every running request; appends the tokens produced to `events`.
  Status step(std::vector<TokenEvent>* events);
  bool hasWork() const { return !active_.empty(); }
  size_t numRunning() const { return active_.size(); }
  // Ends a running request now, as if it had finished in the last step: its KV blocks are
  // freed and its tokens stay readable through generated(). No event is produced (the caller
  // reports the finish, e.g. Session on a stop string). False if the request is not running.
  bool finish(int64_t request);
  // All tokens generated so far for a request (kept after it finishes, for the last
  // max_finished_kept finished requests; empty for one forgotten or never submitted).
  const std::vector<int32_t>& generated(int64_t request) const;

  ModelRunner& runner() { return *runner_; }
  int64_t kvCapacityTokens() const { return blocks_.numBlocks() * blocks_.blockSize(); }
  // The context limit per request (0: the artifact states none and only the KV cache limits).
  int64_t maxModelLen() const { return options_.max_model_len; }

 private:
  struct Sequence {
    int64_t id;
    GenerationRequest request;
    Sampler sampler;
    std::vector<int32_t> tokens;  // prompt then generated
    int64_t cached = 0;           // tokens whose K/V are in the cache
    std::vector<int32_t> generated;
  };
  Engine(std::unique_ptr<ModelRunner> runner, KVBlockManager blocks, EngineOptions options)
      : runner_(std::move(runner)), blocks_(std::move(blocks)), options_(options) {}

  std::unique_ptr<ModelRunner> runner_;
  KVBlockManager blocks_;
  EngineOptions options_;
  std::vector<std::unique_ptr<Sequence>> active_;
  std::map<int64_t, std::vector<int32_t>> finished_;
  std::deque<int64_t> finished_order_;  // oldest first
  std::vector<float> logits_staging_;    // logits copied off a device that is not host-visible
  std::vector<int32_t> greedy_ids_;      // a step's rows' argmax from the device (all greedy)
  int64_t next_id_ = 0;
};

}  // namespace ds
