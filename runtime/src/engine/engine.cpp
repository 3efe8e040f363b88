// Engine: the Scheduler decides each step (preemption, admission, chunked prefill + decode under
// the token budget); the engine builds the ragged batch, runs it and samples each sequence.
#include "engine/engine.h"

#include <algorithm>

#include "artifact/artifact_reader.h"

namespace ds {

StatusOr<std::unique_ptr<Engine>> Engine::create(const artifact::Artifact& artifact,
                                                 const EngineOptions& options) {
  if (options.max_step_tokens <= 0) return invalidArgument("max_step_tokens must be positive");
  EngineOptions resolved = options;
  const int64_t model_context =
      artifact.meta()->model() ? artifact.meta()->model()->max_position_embeddings() : 0;
  if (options.max_model_len < 0) return invalidArgument("max_model_len must not be negative");
  if (options.max_model_len > 0 && model_context > 0 && options.max_model_len > model_context)
    return invalidArgument("max_model_len " + std::to_string(options.max_model_len) +
                           " exceeds the model's context of " + std::to_string(model_context) +
                           " tokens (max_position_embeddings in " + artifact.path() + ")");
  if (options.max_model_len == 0) resolved.max_model_len = std::max<int64_t>(model_context, 0);
  StatusOr<uint64_t> per_block = ModelRunner::kvBytesPerBlock(artifact);
  if (!per_block.isOk()) return per_block.status();
  RunnerOptions ro;
  if (options.kv_cache_bytes > 0) {
    const int64_t blocks = KVBlockManager::blocksForMemory(options.kv_cache_bytes, *per_block);
    if (blocks <= 0)
      return invalidArgument("KV cache budget of " + std::to_string(options.kv_cache_bytes) +
                             " bytes holds no block of " + std::to_string(*per_block) + " bytes");
    ro.num_kv_blocks = blocks;
  } else {
    // The device decides: a GPU's budget, else cpu_kv_cache_bytes (RunnerOptions).
    if (options.cpu_kv_cache_bytes < *per_block)
      return invalidArgument("KV cache budget of " + std::to_string(options.cpu_kv_cache_bytes) +
                             " bytes holds no block of " + std::to_string(*per_block) + " bytes");
    ro.num_kv_blocks = 0;
    ro.kv_fallback_bytes = options.cpu_kv_cache_bytes;
    ro.max_step_tokens = options.max_step_tokens;
  }
  ro.num_threads = options.num_threads;
  ro.allow_native_code = options.allow_native_code;
  ro.device_ordinal = options.device_ordinal;
  ro.gpu_memory_fraction = options.gpu_memory_fraction;
  ro.enforce_eager = options.enforce_eager;
  ro.max_model_len = resolved.max_model_len;
  ro.max_step_tokens = options.max_step_tokens;
  StatusOr<std::unique_ptr<ModelRunner>> runner = ModelRunner::create(artifact, ro);
  if (!runner.isOk()) return runner.status();
  if (options.max_num_seqs < 1) return invalidArgument("max_num_seqs must be at least 1");
  if (options.max_waiting < 0) return invalidArgument("max_waiting must not be negative");
  StatusOr<KVBlockManager> manager = KVBlockManager::create(
      (*runner)->numBlocks(), (*runner)->blockSize(), options.enable_prefix_caching);
  if (!manager.isOk()) return manager.status();
  SchedulerOptions so;
  so.max_step_tokens = options.max_step_tokens;
  so.max_num_seqs = options.max_num_seqs;
  so.max_waiting = options.max_waiting;
  return std::unique_ptr<Engine>(new Engine(std::move(runner.value()),
                                            Scheduler(so, std::move(manager.value())), resolved));
}

StatusOr<int64_t> Engine::submit(GenerationRequest request) {
  if (request.prompt.empty()) return invalidArgument("the prompt has no tokens");
  for (int32_t id : request.prompt)
    if (id < 0 || id >= runner_->vocabSize())
      return invalidArgument("prompt token " + std::to_string(id) + " outside the vocabulary [0, " +
                             std::to_string(runner_->vocabSize()) + ")");
  if (request.max_new_tokens < 1) return invalidArgument("max_new_tokens must be at least 1");
  const int64_t prompt = static_cast<int64_t>(request.prompt.size());
  // Compared before adding: max_new_tokens may be anything up to INT64_MAX from the C API.
  const int64_t limit = options_.max_model_len;
  if (limit > 0 && (prompt > limit || request.max_new_tokens > limit - prompt))
    return invalidArgument("the prompt (" + std::to_string(prompt) + " tokens) + max_new_tokens (" +
                           std::to_string(request.max_new_tokens) + ") exceed the context of " +
                           std::to_string(limit) + " tokens (max_model_len)");
  if (request.max_new_tokens > kvCapacityTokens())
    return invalidArgument("max_new_tokens " + std::to_string(request.max_new_tokens) +
                           " exceeds the KV cache capacity of " + std::to_string(kvCapacityTokens()) +
                           " tokens (raise the KV budget)");
  int64_t need = prompt + request.max_new_tokens;
  if (need > kvCapacityTokens())
    return invalidArgument("prompt (" + std::to_string(prompt) + " tokens) + max_new_tokens (" +
                           std::to_string(request.max_new_tokens) + ") = " + std::to_string(need) +
                           " tokens exceed the KV cache capacity of " +
                           std::to_string(kvCapacityTokens()) + " tokens (raise the KV budget)");
  DS_RETURN_IF_ERROR(Sampler::validate(request.sampling));
  const int64_t id = next_id_;
  DS_RETURN_IF_ERROR(sched_.add(id, request.prompt, request.priority));
  ++next_id_;
  Sampler sampler(request.sampling);
  active_.emplace(id, Sequence{std::move(request), sampler, {}});
  return id;
}

const std::vector<int32_t>& Engine::generated(int64_t request) const {
  static const std::vector<int32_t> kEmpty;
  auto a = active_.find(request);
  if (a != active_.end()) return a->second.generated;
  auto it = finished_.find(request);
  return it == finished_.end() ? kEmpty : it->second.generated;
}

FinishReason Engine::finishReason(int64_t request) const {
  auto it = finished_.find(request);
  return it == finished_.end() ? FinishReason::kNone : it->second.reason;
}

EngineStats Engine::stats() const {
  EngineStats st;
  const KVBlockManager& kv = sched_.blocks();
  const SchedulerCounters& c = sched_.counters();
  st.running = static_cast<int64_t>(sched_.numRunning());
  st.waiting = static_cast<int64_t>(sched_.numWaiting());
  st.preemptions = c.preemptions;
  st.kv_blocks_total = kv.numBlocks();
  st.kv_blocks_used = kv.usedBlocks();
  st.kv_blocks_free = kv.freeBlocks();
  st.kv_blocks_cached = kv.cachedBlocks();
  st.prompt_tokens = c.prompt_tokens;
  st.cached_prompt_tokens = c.cached_prompt_tokens;
  st.recomputed_tokens = c.recomputed_tokens;
  st.finished_stop = finished_stop_;
  st.finished_length = finished_length_;
  st.aborted = aborted_;
  return st;
}

void Engine::retire(int64_t id, FinishReason reason) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  finished_[id] = Finished{std::move(it->second.generated), reason};
  active_.erase(it);
  if (reason == FinishReason::kStop) ++finished_stop_;
  else if (reason == FinishReason::kLength) ++finished_length_;
  else if (reason == FinishReason::kAbort) ++aborted_;
  finished_order_.push_back(id);
  while (finished_order_.size() > options_.max_finished_kept) {
    finished_.erase(finished_order_.front());
    finished_order_.pop_front();
  }
}

Status Engine::abort(int64_t request) {
  if (!active_.count(request))
    return notFound("request " + std::to_string(request) +
                    (finished_.count(request) ? " has already finished" : " is not running or waiting"));
  DS_RETURN_IF_ERROR(sched_.abort(request));
  retire(request, FinishReason::kAbort);
  return Status::ok();
}

Status Engine::step(std::vector<TokenEvent>* events) {
  if (!hasWork()) return Status::ok();
  const SchedulerOutput plan = sched_.schedule();
  if (plan.seqs.empty())
    return internalError("the scheduler found no request to run (" +
                         std::to_string(sched_.numRunning()) + " running, " +
                         std::to_string(sched_.numWaiting()) + " waiting, " +
                         std::to_string(sched_.blocks().freeBlocks()) + " of " +
                         std::to_string(sched_.blocks().numBlocks()) + " KV blocks free)");
  StepBatch batch;
  std::vector<int32_t> logit_row(plan.seqs.size(), -1);  // -1: a chunk short of the end
  int64_t max_blocks = 0;
  for (size_t i = 0; i < plan.seqs.size(); ++i) {
    const ScheduledSeq& p = plan.seqs[i];
    const std::vector<int32_t>& tokens = sched_.tokens(p.id);
    for (int64_t t = p.start; t < p.start + p.take; ++t) {
      batch.token_ids.push_back(tokens[t]);
      batch.positions.push_back(static_cast<int32_t>(t));
      batch.token_seq.push_back(static_cast<int32_t>(i));
    }
    if (p.sample) {
      logit_row[i] = static_cast<int32_t>(batch.logit_rows.size());
      batch.logit_rows.push_back(static_cast<int32_t>(batch.token_ids.size() - 1));
    }
    max_blocks = std::max<int64_t>(max_blocks, sched_.blocks().blockTable(p.id).size());
  }
  batch.num_seqs = static_cast<int64_t>(plan.seqs.size());
  batch.max_blocks_per_seq = max_blocks;
  batch.block_table.assign(batch.num_seqs * batch.max_blocks_per_seq, -1);
  for (size_t i = 0; i < plan.seqs.size(); ++i) {
    const std::vector<int32_t>& table = sched_.blocks().blockTable(plan.seqs[i].id);
    std::copy(table.begin(), table.end(), batch.block_table.begin() + i * batch.max_blocks_per_seq);
  }

  StatusOr<LogitsView> view = runner_->step(batch);
  if (!view.isOk()) return view.status();
  // Every row greedy without a penalty (which reads the history): the device's argmax, when it
  // has one, sends R ids back instead of R x vocab logits; same tokens (lowest index of the max).
  bool device_greedy = true;
  for (size_t i = 0; i < plan.seqs.size(); ++i)
    if (logit_row[i] >= 0 && !active_.at(plan.seqs[i].id).sampler.plainGreedy()) device_greedy = false;
  greedy_ids_.clear();
  if (device_greedy) {
    StatusOr<bool> done = view->argmax(&greedy_ids_);
    if (!done.isOk()) return done.status();
    if (!*done) greedy_ids_.clear();
  }
  const float* logits = nullptr;
  if (greedy_ids_.empty()) {
    StatusOr<const float*> rows = view->host(&logits_staging_);
    if (!rows.isOk()) return rows.status();
    logits = *rows;
  }
  // The K/V of every chunk are written: advance the computed counts, key full blocks.
  DS_RETURN_IF_ERROR(sched_.commit(plan));
  const int64_t vocab = runner_->vocabSize();
  for (size_t i = 0; i < plan.seqs.size(); ++i) {
    if (logit_row[i] < 0) continue;
    const int64_t id = plan.seqs[i].id;
    Sequence& s = active_.at(id);
    const size_t row = static_cast<size_t>(logit_row[i]);
    std::optional<TokenLogprobs> logprobs;
    if (s.request.sampling.logprobs >= 0) logprobs.emplace();  // never plainGreedy (host rows)
    // Penalties count generated tokens after the request's own prompt (sched_.tokens(id) holds
    // prompt + generated, also after a preemption).
    const int32_t token = !greedy_ids_.empty()
                              ? greedy_ids_[row]
                              : s.sampler.sample(logits + row * vocab, vocab, sched_.tokens(id),
                                                 s.request.prompt.size(),
                                                 logprobs ? &*logprobs : nullptr);
    s.generated.push_back(token);
    FinishReason finish = FinishReason::kNone;
    const auto& stops = s.request.stop_token_ids;
    if (std::find(stops.begin(), stops.end(), token) != stops.end()) finish = FinishReason::kStop;
    else if (static_cast<int64_t>(s.generated.size()) >= s.request.max_new_tokens)
      finish = FinishReason::kLength;
    events->push_back({id, token, finish, std::move(logprobs)});
    if (finish == FinishReason::kNone) {
      DS_RETURN_IF_ERROR(sched_.appendToken(id, token));
    } else {
      DS_RETURN_IF_ERROR(sched_.finish(id));  // frees its blocks (full ones stay cached)
      retire(id, finish);
    }
  }
  return Status::ok();
}

// Session stop strings end a request between steps, like a stop token would have.
bool Engine::finish(int64_t request) {
  if (!active_.count(request)) return false;
  if (!sched_.abort(request).isOk()) return false;  // frees its blocks (full ones stay cached)
  retire(request, FinishReason::kStop);
  return true;
}

}  // namespace ds
