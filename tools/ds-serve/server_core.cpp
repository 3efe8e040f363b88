// The engine thread of ds-serve: admission (prompt encoding, context and KV checks, the bounded
// queue), stepping, delivery of each request's text, cancellation and shutdown.
#include "server_core.h"

#include <algorithm>

#include "tokenizer/tokenizer.h"

namespace ds::serve {

// ---- Job ------------------------------------------------------------------------------------

Job::Update Job::take(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return fresh_; });
  fresh_ = false;
  Update out = pending_;
  pending_.text.clear();
  pending_.logprobs.clear();
  return out;
}

void Job::accept(int64_t prompt_tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  pending_.state = State::kAccepted;
  pending_.prompt_tokens = prompt_tokens;
  fresh_ = true;
  cv_.notify_all();
}

void Job::append(const std::string& text, std::optional<TokenLogprob> logprob) {
  if (text.empty() && !logprob) return;
  std::lock_guard<std::mutex> lock(mu_);
  pending_.text += text;
  if (logprob) pending_.logprobs.push_back(std::move(*logprob));
  fresh_ = true;
  cv_.notify_all();
}

void Job::finishWith(Finish f, int64_t completion_tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  pending_.state = State::kDone;
  pending_.finish = f;
  pending_.completion_tokens = completion_tokens;
  fresh_ = true;
  cv_.notify_all();
}

void Job::fail(ApiError e) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pending_.state == State::kDone) return;
  pending_.state = State::kDone;
  pending_.error = std::move(e);
  fresh_ = true;
  cv_.notify_all();
}

bool Job::done() {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.state == State::kDone;
}

// ---- ServerCore -----------------------------------------------------------------------------

namespace {
ApiError serverError(int status, std::string message, std::string code) {
  ApiError e;
  e.status = status;
  e.type = status == 429 ? "rate_limit_exceeded" : "server_error";
  e.message = std::move(message);
  e.code = std::move(code);
  return e;
}
double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

ServerCore::ServerCore(Session& session, CoreOptions options, Metrics& metrics)
    : session_(session), options_(options), metrics_(metrics) {
  kv_tokens_ = session_.engine().kvCapacityTokens();
  max_model_len_ = session_.engine().maxModelLen() > 0 ? session_.engine().maxModelLen() : kv_tokens_;
  snapshotStats();
}

bool ServerCore::submit(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    inbox_.push_back(job);
  }
  wake_.notify_one();
  return true;
}

void ServerCore::cancel(const std::shared_ptr<Job>& job) {
  if (job->cancelled.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_.push_back(job);
  }
  wake_.notify_one();
}

EngineStats ServerCore::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

void ServerCore::snapshotStats() {
  EngineStats s = readEngineStats(session_);
  std::lock_guard<std::mutex> lock(stats_mu_);
  stats_ = s;
}

void ServerCore::beginShutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    deadline_ = Clock::now() + grace;
    stopping_ = true;
  }
  wake_.notify_one();
}

void ServerCore::admit(const std::shared_ptr<Job>& job) {
  const ParsedRequest& r = job->request;
  const bool chat = r.endpoint == Endpoint::kChat;
  auto invalid = [&](ApiError e) {
    metrics_.request(Outcome::kInvalid);
    job->fail(std::move(e));
  };
  if (!healthy_) {
    metrics_.request(Outcome::kError);
    job->fail(serverError(503, "the engine failed earlier; restart the server", "engine_failed"));
    return;
  }
  // Encoding runs here because the Session (tokenizer, template) belongs to this thread.
  std::vector<int32_t> ids = r.prompt_ids;
  if (!r.prompt_is_ids) {
    StatusOr<std::vector<int32_t>> encoded = session_.encode(toTextPrompt(r, options_.parse_special));
    if (!encoded.isOk()) {
      if (encoded.status().code() == DS_INVALID_ARGUMENT)
        return invalid(badRequest(encoded.status().message(), chat ? "messages" : "prompt"));
      metrics_.request(Outcome::kError);
      return job->fail(serverError(500, encoded.status().message(), "tokenizer_error"));
    }
    ids = std::move(encoded).value();
  }
  const int64_t prompt = static_cast<int64_t>(ids.size());
  const int64_t limit = std::min(max_model_len_, kv_tokens_);
  if (prompt >= max_model_len_)
    return invalid(badRequest("This model's maximum context length is " + std::to_string(max_model_len_) +
                                  " tokens. However, your prompt has " + std::to_string(prompt) +
                                  " tokens, which leaves no room for a completion.",
                              chat ? "messages" : "prompt", "context_length_exceeded"));
  // Defaults: OpenAI's 16 for completions, the rest of the context for chat (as vLLM).
  int64_t max_tokens = r.max_tokens ? *r.max_tokens : chat ? std::max<int64_t>(limit - prompt, 1) : 16;
  if (prompt + max_tokens > max_model_len_)
    return invalid(badRequest("This model's maximum context length is " + std::to_string(max_model_len_) +
                                  " tokens. However, you requested " + std::to_string(prompt + max_tokens) +
                                  " tokens (" + std::to_string(prompt) + " in the prompt, " +
                                  std::to_string(max_tokens) + " for the completion).",
                              "max_tokens", "context_length_exceeded"));
  if (prompt + max_tokens > kv_tokens_) {
    const int64_t block = session_.engine().runner().blockSize();
    return invalid(badRequest(
        "the request needs " + std::to_string(prompt + max_tokens) + " tokens of KV cache (" +
            std::to_string(prompt) + " prompt + " + std::to_string(max_tokens) +
            " max_tokens) but the whole cache holds " + std::to_string(kv_tokens_) + " tokens (" +
            std::to_string(kv_tokens_ / std::max<int64_t>(block, 1)) + " blocks of " +
            std::to_string(block) + "); lower max_tokens or raise --kv-cache-mem",
        "max_tokens", "kv_cache_too_small"));
  }
  const uint64_t seed = r.seed ? *r.seed : options_.seed_base + serial_++;
  job->last_token_id = ids.empty() ? -1 : ids.back();
  job->text_request = std::make_unique<TextRequest>(toTextRequest(r, std::move(ids), max_tokens, seed));
  job->prompt_tokens = prompt;
  if (waiting_.empty() && static_cast<int64_t>(running_.size()) < options_.max_num_seqs) {
    if (start(job)) job->accept(prompt);
    return;
  }
  if (static_cast<int64_t>(waiting_.size()) >= options_.max_waiting) {
    job->text_request.reset();
    metrics_.request(Outcome::kRejected);
    ApiError e = serverError(429, "the server's queue is full (" + std::to_string(options_.max_waiting) +
                                      " waiting requests, --max-waiting); retry later",
                             "queue_full");
    return job->fail(e);
  }
  waiting_.push_back(job);
  waiting_count_ = static_cast<int64_t>(waiting_.size());
  job->accept(prompt);
}

// Submits a validated job to the Session; false (and the job failed) if the Session refuses.
bool ServerCore::start(const std::shared_ptr<Job>& job) {
  StatusOr<int64_t> id = session_.submit(*job->text_request);
  job->text_request.reset();
  if (!id.isOk()) {
    const bool invalid = id.status().code() == DS_INVALID_ARGUMENT;
    metrics_.request(invalid ? Outcome::kInvalid : Outcome::kError);
    ApiError e = invalid ? badRequest(id.status().message())
                         : serverError(500, id.status().message(), "engine_error");
    job->fail(e);
    return false;
  }
  job->engine_id = *id;
  job->last_token = Clock::now();
  running_[*id] = job;
  return true;
}

void ServerCore::dropCancelled(const std::shared_ptr<Job>& job) {
  auto w = std::find(waiting_.begin(), waiting_.end(), job);
  if (w != waiting_.end()) {
    waiting_.erase(w);
    job->text_request.reset();
    waiting_count_ = static_cast<int64_t>(waiting_.size());
  } else if (job->engine_id >= 0 && running_.count(job->engine_id) && !job->detached) {
    if (cancelRequest(session_, job->engine_id)) running_.erase(job->engine_id);
    else job->detached = true;  // runs out; its tokens are dropped
  } else {
    return;  // already finished
  }
  metrics_.request(Outcome::kCancelled);
  job->fail(serverError(499, "the client closed the connection", "cancelled"));
}

// The event's logprobs with token strings, when the request asked. A token's string is what it
// adds to the text after the previous token (decode(prev, id) minus decode(prev)): decoding an
// id alone would drop a SentencePiece token's leading space.
std::optional<TokenLogprob> ServerCore::tokenLogprob(const Session& session, const TextEvent& e,
                                                     int32_t prev) {
  if (!e.logprobs) return std::nullopt;
  const Tokenizer* tok = session.tokenizer();
  std::string before;
  if (tok && prev >= 0) {
    StatusOr<std::string> b = tok->decode({prev});
    if (b.isOk()) before = *b;
  }
  auto piece = [&](int32_t id) {
    if (tok) {
      StatusOr<std::string> s = prev >= 0 ? tok->decode({prev, id}) : tok->decode({id});
      if (s.isOk() && s->compare(0, before.size(), before) == 0) return s->substr(before.size());
      StatusOr<std::string> alone = tok->decode({id});
      if (alone.isOk()) return *alone;
    }
    return "<" + std::to_string(id) + ">";
  };
  TokenLogprob out;
  out.token = piece(e.token);
  out.logprob = e.logprobs->logprob;
  for (const TopLogprob& t : e.logprobs->top) out.top.emplace_back(piece(t.token), t.logprob);
  return out;
}

void ServerCore::step() {
  events_.clear();
  Status st = session_.step(&events_);
  if (!st.isOk()) {
    // The engine keeps the requests it failed on and cannot drop them yet: stop stepping.
    healthy_ = false;
    failAll(serverError(500, "engine step failed: " + st.message(), "engine_error"), Outcome::kError);
    return;
  }
  // Before any response goes out: a client that reads /metrics right after its response sees
  // the engine as it is after this step (its request retired, its blocks released).
  snapshotStats();
  const Clock::time_point now = Clock::now();
  for (const TextEvent& e : events_) {
    auto it = running_.find(e.request);
    if (it == running_.end()) continue;
    Job& job = *it->second;
    if (!job.detached) {
      if (job.generated == 0) metrics_.firstToken(seconds(now - job.arrival));
      else metrics_.interToken(seconds(now - job.last_token));
    }
    ++job.generated;
    job.last_token = now;
    if (!job.detached) job.append(e.text, tokenLogprob(session_, e, job.last_token_id));
    job.last_token_id = e.token;
    if (e.finish != FinishReason::kNone) {
      if (!job.detached) {
        const Finish f = e.finish == FinishReason::kStop ? Finish::kStop : Finish::kLength;
        metrics_.request(f == Finish::kStop ? Outcome::kStop : Outcome::kLength);
        metrics_.finished(seconds(now - job.arrival), job.prompt_tokens, job.generated);
        job.finishWith(f, job.generated);
      }
      running_.erase(it);
    }
  }
}

void ServerCore::failAll(const ApiError& e, Outcome outcome) {
  for (auto& [id, job] : running_)
    if (!job->detached) {
      metrics_.request(outcome);
      job->fail(e);
    }
  running_.clear();
  for (auto& job : waiting_) {
    metrics_.request(outcome);
    job->fail(e);
  }
  waiting_.clear();
  waiting_count_ = 0;
}

void ServerCore::run() {
  for (;;) {
    std::vector<std::shared_ptr<Job>> incoming, cancels;
    bool stopping = false;
    Clock::time_point deadline;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Sleeps while there is nothing to step; HTTP threads and shutdown wake it.
      wake_.wait(lock, [&] {
        return !inbox_.empty() || !cancels_.empty() || stopping_ || (healthy_ && session_.hasWork());
      });
      incoming.swap(inbox_);
      cancels.swap(cancels_);
      stopping = stopping_;
      deadline = deadline_;
    }
    for (auto& job : incoming) admit(job);
    for (auto& job : cancels) dropCancelled(job);
    if (stopping && Clock::now() >= deadline && (!running_.empty() || !waiting_.empty())) {
      // The grace period is over: what still runs is cancelled (the engine goes away with us).
      for (auto& [id, job] : running_)
        if (!job->detached) cancelRequest(session_, id);
      failAll(serverError(503, "the server is shutting down", "shutting_down"), Outcome::kCancelled);
    }
    if (healthy_ && session_.hasWork()) step();
    while (!waiting_.empty() && static_cast<int64_t>(running_.size()) < options_.max_num_seqs) {
      std::shared_ptr<Job> job = waiting_.front();
      waiting_.pop_front();
      start(job);
    }
    waiting_count_ = static_cast<int64_t>(waiting_.size());
    snapshotStats();
    if (stopping && waiting_.empty() && (running_.empty() || !healthy_)) {
      std::lock_guard<std::mutex> lock(mu_);
      if (inbox_.empty() && cancels_.empty()) break;
    }
  }
}

}  // namespace ds::serve
