// The engine adapter of ds-serve (see engine_adapter.h). Everything marked TODO(engine) is a
// field or counter that the engine work in progress provides; wiring it means editing this file.
#include "engine_adapter.h"

#include <type_traits>
#include <utility>

namespace ds::serve {

EngineOptions toEngineOptions(const EngineFlags& flags) {
  EngineOptions eo;
  eo.kv_cache_bytes = flags.kv_cache_bytes;
  eo.cpu_kv_cache_bytes = 256ull << 20;  // as ds-run
  eo.max_model_len = flags.max_model_len;
  eo.num_threads = flags.threads;
  eo.allow_native_code = flags.allow_native_code;
  eo.gpu_memory_fraction = flags.gpu_memory_fraction;
  eo.enforce_eager = flags.enforce_eager;
  eo.device_ordinal = flags.gpu_ordinal;
  // TODO(engine): eo.max_num_seqs = flags.max_num_seqs; eo.max_waiting = flags.max_waiting;
  // once EngineOptions has them. Until then the server holds the waiting queue itself
  // (server_core.cpp), which stays correct afterwards (the engine then never sees more than
  // max_num_seqs requests, except those it preempts).
  return eo;
}

std::optional<ApiError> checkSupported(const ParsedRequest& r) {
  // TODO(engine): sampling extras (min_p, presence/frequency penalties, logprobs, stop strings,
  // n) arrive in SamplingParams / TextRequest; map them in toTextRequest and drop the line here.
  if (r.min_p != 0) return notSupportedYet("min_p", "min_p sampling");
  if (r.presence_penalty != 0) return notSupportedYet("presence_penalty", "a presence penalty");
  if (r.frequency_penalty != 0) return notSupportedYet("frequency_penalty", "a frequency penalty");
  if (!r.stop.empty()) return notSupportedYet("stop", "stop strings (stop_token_ids work)");
  if (r.n != 1) return notSupportedYet("n", "n > 1 completions per request");
  if (r.logprobs) return notSupportedYet("logprobs", "log probabilities");
  if (r.echo) return notSupportedYet("echo", "echoing the prompt");
  if (r.min_tokens != 0) return notSupportedYet("min_tokens", "min_tokens");
  return std::nullopt;
}

TextPrompt toTextPrompt(const ParsedRequest& r, bool parse_special) {
  TextPrompt p;
  p.parse_special = parse_special;
  if (r.endpoint == Endpoint::kChat) {
    p.chat = true;
    for (const Message& m : r.messages) p.messages.push_back({m.role, m.content});
  } else {
    p.text = r.prompt_text;
    p.add_bos = true;
  }
  return p;
}

TextRequest toTextRequest(const ParsedRequest& r, std::vector<int32_t> prompt_ids,
                          int64_t max_new_tokens, uint64_t seed) {
  TextRequest t;
  t.prompt_ids = std::move(prompt_ids);
  t.max_new_tokens = max_new_tokens;
  t.ignore_eos = r.ignore_eos;
  t.stop_token_ids = r.stop_token_ids;
  t.sampling.temperature = static_cast<float>(r.temperature);
  t.sampling.top_p = static_cast<float>(r.top_p);
  t.sampling.top_k = static_cast<int>(r.top_k);
  t.sampling.repetition_penalty = static_cast<float>(r.repetition_penalty);
  t.sampling.seed = seed;
  // TODO(engine): t.sampling.min_p = r.min_p; presence_penalty, frequency_penalty;
  // t.stop = r.stop; t.n = r.n; logprobs = r.logprobs ? r.top_logprobs : -1.
  return t;
}

EngineStats readEngineStats(Session& session) {
  EngineStats s;
  Engine& e = session.engine();
  s.running = static_cast<int64_t>(e.numRunning());
  s.kv_blocks_total = e.runner().numBlocks();
  // TODO(engine): waiting, preemptions, KV blocks used/free and the prefix-cache hit rate from
  // the engine's counters; set the known_* flags with them.
  return s;
}

namespace {

// Session::abort or Engine::abort, whichever exists (the first wins), found at compile time so
// this file builds against the engine of today (no abort) and picks it up once it lands.
// Any return type works: Status (ok = dropped), bool, or void (dropped).
template <typename R>
bool dropped(R&& r) {
  using T = std::decay_t<R>;
  if constexpr (std::is_same_v<T, bool>) return r;
  else return r.isOk();
}
template <typename T>
auto abortOn(T& target, int64_t id, int) -> decltype(target.abort(id), bool()) {
  if constexpr (std::is_void_v<decltype(target.abort(id))>) {
    target.abort(id);
    return true;
  } else {
    return dropped(target.abort(id));
  }
}
template <typename T>
bool abortOn(T&, int64_t, long) { return false; }

template <typename T, typename = void>
struct HasAbort : std::false_type {};
template <typename T>
struct HasAbort<T, std::void_t<decltype(std::declval<T&>().abort(int64_t{}))>> : std::true_type {};

}  // namespace

bool engineCanAbort() { return HasAbort<Session>::value || HasAbort<Engine>::value; }

bool cancelRequest(Session& session, int64_t request) {
  if constexpr (HasAbort<Session>::value) return abortOn(session, request, 0);
  else return abortOn(session.engine(), request, 0);
}

}  // namespace ds::serve
