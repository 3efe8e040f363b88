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
#include "engine/scheduler.h"
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
  // Most sequences running at once (vLLM's --max-num-seqs); more wait their turn.
  int64_t max_num_seqs = 256;
  // Most requests waiting to run; submit() beyond it is RESOURCE_EXHAUSTED (a server's 429).
  // 0: no bound. Requests sent back by preemption always re-enter the queue.
  int64_t max_waiting = 0;
  // Share the KV blocks of common prompt prefixes between requests and keep finished
  // requests' full blocks cached until evicted (vLLM v1's default). Same tokens either way.
  bool enable_prefix_caching = true;
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int64_t max_new_tokens = 64;
  std::vector<int32_t> stop_token_ids;    // generation ends after emitting one of these
  int priority = 0;                       // lower runs first (vLLM); FIFO among equals
};

// kAbort never appears in a TokenEvent (abort() returns at once); finishReason() reports it.
enum class FinishReason { kNone = 0, kLength, kStop, kAbort };

// What a server's /metrics reads (Engine::stats()).
struct EngineStats {
  int64_t running = 0, waiting = 0;
  int64_t preemptions = 0;                    // total since creation
  int64_t kv_blocks_total = 0, kv_blocks_used = 0, kv_blocks_free = 0;  // free includes cached
  int64_t kv_blocks_cached = 0;               // unreferenced blocks kept by the prefix cache
  int64_t prompt_tokens = 0;                  // of requests admitted (first time only)
  int64_t cached_prompt_tokens = 0;           // of those, taken from the prefix cache
  int64_t recomputed_tokens = 0;              // prefilled again after preemption
  int64_t finished_stop = 0, finished_length = 0, aborted = 0;
  double prefixHitRate() const {
    return prompt_tokens ? double(cached_prompt_tokens) / double(prompt_tokens) : 0.0;
  }
};

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
  // KV cache can ever hold; RESOURCE_EXHAUSTED when max_waiting requests are waiting.
  StatusOr<int64_t> submit(GenerationRequest request);
  // One model step (Scheduler: preemption, admission, chunked prefill + decode under the
  // token budget); appends the tokens produced to `events`, at most one per request.
  Status step(std::vector<TokenEvent>* events);
  // Cancels a running or waiting request: its blocks are freed now, no further event comes,
  // finishReason() says kAbort. NOT_FOUND for an id that is not running or waiting.
  Status abort(int64_t request);
  bool hasWork() const { return numRequests() > 0; }
  size_t numRunning() const { return sched_.numRunning(); }
  size_t numWaiting() const { return sched_.numWaiting(); }
  // Submitted and not finished (running + waiting): the most events the next step yields.
  size_t numRequests() const { return sched_.numRunning() + sched_.numWaiting(); }
  EngineStats stats() const;
  // Ends a running or waiting request now, as if it had finished with a stop (Session's stop
  // strings): its KV blocks are freed (full ones stay cached), its tokens stay readable through
  // generated(), finishReason() says kStop. No event is produced (the caller reports the
  // finish). False if the request is not running or waiting.
  bool finish(int64_t request);
  // All tokens generated so far for a request (kept after it finishes, for the last
  // max_finished_kept finished requests; empty for one forgotten or never submitted).
  const std::vector<int32_t>& generated(int64_t request) const;
  // kNone while running or waiting (or forgotten/unknown), else why it ended.
  FinishReason finishReason(int64_t request) const;

  ModelRunner& runner() { return *runner_; }
  const Scheduler& scheduler() const { return sched_; }
  int64_t kvCapacityTokens() const {
    return sched_.blocks().numBlocks() * sched_.blocks().blockSize();
  }
  // The context limit per request (0: the artifact states none and only the KV cache limits).
  int64_t maxModelLen() const { return options_.max_model_len; }

 private:
  // The scheduler keeps the tokens (prompt + generated) and KV state; this the rest.
  struct Sequence {
    GenerationRequest request;
    Sampler sampler;
    std::vector<int32_t> generated;
  };
  struct Finished {
    std::vector<int32_t> generated;
    FinishReason reason = FinishReason::kNone;
  };
  Engine(std::unique_ptr<ModelRunner> runner, Scheduler sched, EngineOptions options)
      : runner_(std::move(runner)), sched_(std::move(sched)), options_(options) {}
  void retire(int64_t id, FinishReason reason);

  std::unique_ptr<ModelRunner> runner_;
  Scheduler sched_;
  EngineOptions options_;
  std::map<int64_t, Sequence> active_;  // running or waiting
  std::map<int64_t, Finished> finished_;
  std::deque<int64_t> finished_order_;  // oldest first
  std::vector<float> logits_staging_;    // logits copied off a device that is not host-visible
  std::vector<int32_t> greedy_ids_;      // a step's rows' argmax from the device (all greedy)
  int64_t next_id_ = 0;
  int64_t finished_stop_ = 0, finished_length_ = 0, aborted_ = 0;
};

}  // namespace ds
