// Engine scheduling: every running sequence gets its pending tokens (prompt chunks or the last
// sampled token) into one ragged step, in submission order, within the token budget.
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
  StatusOr<KVBlockManager> manager =
      KVBlockManager::create((*runner)->numBlocks(), (*runner)->blockSize());
  if (!manager.isOk()) return manager.status();
  return std::unique_ptr<Engine>(
      new Engine(std::move(runner.value()), std::move(manager.value()), resolved));
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
    return invalidArgument("prompt + max_new_tokens = " + std::to_string(need) +
                           " tokens exceed the KV cache capacity of " +
                           std::to_string(kvCapacityTokens()) + " tokens (raise the KV budget)");
  DS_RETURN_IF_ERROR(Sampler::validate(request.sampling));
  int64_t id = next_id_++;
  auto seq = std::make_unique<Sequence>(Sequence{id, request, Sampler(request.sampling),
                                                 request.prompt, 0, {}});
  DS_RETURN_IF_ERROR(blocks_.addSequence(id));
  active_.push_back(std::move(seq));
  return id;
}

const std::vector<int32_t>& Engine::generated(int64_t request) const {
  static const std::vector<int32_t> kEmpty;
  for (const auto& s : active_)
    if (s->id == request) return s->generated;
  auto it = finished_.find(request);
  return it == finished_.end() ? kEmpty : it->second;
}

Status Engine::step(std::vector<TokenEvent>* events) {
  if (active_.empty()) return Status::ok();
  StepBatch batch;
  struct Slot {
    Sequence* seq;
    int64_t take;
    int32_t logit_row;  // -1: prompt chunk that does not reach the end yet
  };
  std::vector<Slot> slots;
  int64_t budget = options_.max_step_tokens;
  for (auto& s : active_) {
    int64_t pending = static_cast<int64_t>(s->tokens.size()) - s->cached;
    int64_t take = std::min(pending, budget);
    if (take <= 0) break;
    if (!blocks_.canReserve(s->id, s->cached + take)) continue;  // waits for blocks to free
    DS_RETURN_IF_ERROR(blocks_.reserve(s->id, s->cached + take));
    int32_t seq_index = static_cast<int32_t>(slots.size());
    for (int64_t i = 0; i < take; ++i) {
      batch.token_ids.push_back(s->tokens[s->cached + i]);
      batch.positions.push_back(static_cast<int32_t>(s->cached + i));
      batch.token_seq.push_back(seq_index);
    }
    int32_t row = -1;
    if (take == pending) {
      row = static_cast<int32_t>(batch.logit_rows.size());
      batch.logit_rows.push_back(static_cast<int32_t>(batch.token_ids.size() - 1));
    }
    slots.push_back({s.get(), take, row});
    budget -= take;
  }
  if (slots.empty())
    return internalError("no running request fits the KV cache (submit() admits only ones that do)");
  batch.num_seqs = static_cast<int64_t>(slots.size());
  for (const Slot& slot : slots)
    batch.max_blocks_per_seq = std::max<int64_t>(
        batch.max_blocks_per_seq, static_cast<int64_t>(blocks_.blockTable(slot.seq->id).size()));
  batch.block_table.assign(batch.num_seqs * batch.max_blocks_per_seq, -1);
  for (size_t i = 0; i < slots.size(); ++i) {
    const std::vector<int32_t>& table = blocks_.blockTable(slots[i].seq->id);
    std::copy(table.begin(), table.end(), batch.block_table.begin() + i * batch.max_blocks_per_seq);
  }

  StatusOr<LogitsView> view = runner_->step(batch);
  if (!view.isOk()) return view.status();
  // Every row greedy without a penalty (which reads the history): the device's argmax, when it
  // has one, sends R ids back instead of R x vocab logits; same tokens (lowest index of the max).
  bool device_greedy = true;
  for (const Slot& slot : slots)
    if (slot.logit_row >= 0 && !slot.seq->sampler.plainGreedy()) device_greedy = false;
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
  int64_t vocab = runner_->vocabSize();
  for (const Slot& slot : slots) {
    Sequence& s = *slot.seq;
    s.cached += slot.take;
    if (slot.logit_row < 0) continue;
    std::optional<TokenLogprobs> logprobs;
    if (s.request.sampling.logprobs >= 0) logprobs.emplace();  // never plainGreedy (host rows)
    int32_t token = !greedy_ids_.empty() ? greedy_ids_[static_cast<size_t>(slot.logit_row)]
                                         : s.sampler.sample(logits + slot.logit_row * vocab, vocab, s.tokens,
                                                            s.request.prompt.size(),
                                                            logprobs ? &*logprobs : nullptr);
    s.tokens.push_back(token);
    s.generated.push_back(token);
    FinishReason finish = FinishReason::kNone;
    const auto& stops = s.request.stop_token_ids;
    if (std::find(stops.begin(), stops.end(), token) != stops.end()) finish = FinishReason::kStop;
    else if (static_cast<int64_t>(s.generated.size()) >= s.request.max_new_tokens)
      finish = FinishReason::kLength;
    events->push_back({s.id, token, finish, std::move(logprobs)});
  }
  // Retire finished sequences and free their blocks.
  for (auto it = active_.begin(); it != active_.end();) {
    Sequence& s = **it;
    bool done = !s.generated.empty() &&
                (static_cast<int64_t>(s.generated.size()) >= s.request.max_new_tokens ||
                 std::find(s.request.stop_token_ids.begin(), s.request.stop_token_ids.end(),
                           s.generated.back()) != s.request.stop_token_ids.end());
    if (done && s.cached + 1 >= static_cast<int64_t>(s.tokens.size())) {
      blocks_.release(s.id);
      finished_[s.id] = std::move(s.generated);
      finished_order_.push_back(s.id);
      while (finished_order_.size() > options_.max_finished_kept) {
        finished_.erase(finished_order_.front());
        finished_order_.pop_front();
      }
      it = active_.erase(it);
    } else {
      ++it;
    }
  }
  return Status::ok();
}

// Session stop strings end a request between steps. Kept apart from step() (which retires
// requests the same way) so the scheduler can change around it.
bool Engine::finish(int64_t request) {
  auto it = std::find_if(active_.begin(), active_.end(),
                         [&](const std::unique_ptr<Sequence>& s) { return s->id == request; });
  if (it == active_.end()) return false;
  blocks_.release(request);
  finished_[request] = std::move((*it)->generated);
  finished_order_.push_back(request);
  while (finished_order_.size() > options_.max_finished_kept) {
    finished_.erase(finished_order_.front());
    finished_order_.pop_front();
  }
  active_.erase(it);
  return true;
}

}  // namespace ds
