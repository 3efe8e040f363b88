// The engine adapter of ds-serve (see engine_adapter.h): requests, stats, cancel and options.
#include "engine_adapter.h"

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
  // The server holds its own bounded queue (server_core.cpp) and hands the engine at most
  // max_num_seqs requests; the engine's own bound covers the ones it preempts.
  eo.max_num_seqs = flags.max_num_seqs;
  eo.max_waiting = 0;
  return eo;
}

std::optional<ApiError> checkSupported(const ParsedRequest& r) {
  // min_p, presence/frequency penalties, logprobs and stop strings map to SamplingParams and
  // TextRequest (toTextRequest); n > 1 is n jobs answered together (http_choices.cpp).
  if (r.n > 16) return badRequest("'n' must be at most 16, got " + std::to_string(r.n), "n");
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
  t.sampling.min_p = static_cast<float>(r.min_p);
  t.sampling.presence_penalty = static_cast<float>(r.presence_penalty);
  t.sampling.frequency_penalty = static_cast<float>(r.frequency_penalty);
  // OpenAI reports the model's log-probabilities (vLLM's default too): raw, before penalties.
  t.sampling.logprobs = r.logprobs ? static_cast<int>(r.top_logprobs) : -1;
  t.sampling.logprobs_raw = true;
  t.stop = r.stop;
  t.include_stop_str_in_output = r.include_stop_str_in_output;
  return t;
}

EngineStats readEngineStats(Session& session) {
  EngineStats s;
  Engine& e = session.engine();
  const ds::EngineStats es = e.stats();
  s.running = es.running;
  s.waiting = es.waiting;
  s.preemptions = es.preemptions;
  s.kv_blocks_total = es.kv_blocks_total;
  s.kv_blocks_used = es.kv_blocks_used;
  s.kv_blocks_free = es.kv_blocks_free;
  s.prefix_cache_hit_rate = es.prefixHitRate();
  s.known_waiting = s.known_preemptions = s.known_kv_used = s.known_prefix_cache = true;
  return s;
}

bool engineCanAbort() { return true; }

bool cancelRequest(Session& session, int64_t request) { return session.abort(request).isOk(); }

}  // namespace ds::serve
