// The three places where ds-serve meets the engine, kept apart (docs/serving.md "Adapter points"):
//   1. requests:  ParsedRequest -> TextRequest / SamplingParams (checkSupported, toTextRequest)
//   2. stats:     what /metrics reports about the engine (readEngineStats)
//   3. cancel:    a request whose client went away (cancelRequest)
// plus the server flags that become EngineOptions (toEngineOptions).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "api/session.h"
#include "openai_protocol.h"

namespace ds::serve {

// Server flags that reach the engine.
struct EngineFlags {
  uint64_t kv_cache_bytes = 0;   // 0: the GPU's budget, 256 MiB on the CPU (as ds-run)
  int64_t max_model_len = 0;
  int threads = 0;
  int64_t max_num_seqs = 64;     // also enforced by the server (server_core.h)
  int64_t max_waiting = 256;     // likewise
  bool allow_native_code = true;
  double gpu_memory_fraction = 0.9;
  bool enforce_eager = false;
  int gpu_ordinal = 0;
};
EngineOptions toEngineOptions(const EngineFlags& flags);

// 1a. Fields the engine cannot honour yet: the 400 ("not supported yet") to answer, if any.
std::optional<ApiError> checkSupported(const ParsedRequest& r);

// The prompt as the Session renders and encodes it (chat template for chat requests).
// `parse_special`: special-token text in user input counts as control tokens (--parse-special).
TextPrompt toTextPrompt(const ParsedRequest& r, bool parse_special);

// 1b. The request the Session runs: the encoded prompt, sampling, limits, stops.
TextRequest toTextRequest(const ParsedRequest& r, std::vector<int32_t> prompt_ids,
                          int64_t max_new_tokens, uint64_t seed);

// 2. Engine counters for /metrics. `known` false: the engine does not expose that value yet
// and it is reported as 0.
struct EngineStats {
  int64_t running = 0;             // requests the engine is stepping
  int64_t waiting = 0;             // requests queued inside the engine (not the server's queue)
  int64_t preemptions = 0;         // total since start
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_free = 0;
  double prefix_cache_hit_rate = 0;
  bool known_waiting = false, known_preemptions = false, known_kv_used = false,
       known_prefix_cache = false;
};
EngineStats readEngineStats(Session& session);

// 3. Stops a running request. True when the engine dropped it (its KV blocks freed); false
// when the engine cannot abort yet: the caller then lets it run out and discards its tokens.
bool cancelRequest(Session& session, int64_t request);
// Whether cancelRequest can free anything with this engine (/metrics, tests).
bool engineCanAbort();

}  // namespace ds::serve
