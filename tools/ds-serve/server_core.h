// The engine side of ds-serve: one thread owns the Session (it is not thread-safe) and steps it;
// HTTP threads hand it Jobs and read each Job's results under the Job's own lock, waking on its
// condition variable. Nothing busy-waits. docs/serving.md "Threads".
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/session.h"
#include "engine_adapter.h"
#include "metrics.h"
#include "openai_protocol.h"

namespace ds::serve {

using Clock = std::chrono::steady_clock;

// One request's life: the HTTP thread creates it, the engine thread fills it.
class Job {
 public:
  enum class State { kPending, kAccepted, kDone };
  explicit Job(ParsedRequest r) : request(std::move(r)), arrival(Clock::now()) {}

  const ParsedRequest request;
  const Clock::time_point arrival;

  // What the HTTP thread takes (under mu). Text accumulates until taken.
  struct Update {
    State state = State::kPending;
    std::string text;
    std::vector<TokenLogprob> logprobs;  // of the tokens since the last take (when asked)
    std::optional<ApiError> error;     // with kDone: the request failed
    std::optional<Finish> finish;      // with kDone: how it ended
    int64_t prompt_tokens = 0, completion_tokens = 0;
  };
  // Waits until something new is there (or `timeout` passes) and takes it: the text produced
  // since the last take, the state and counts.
  Update take(std::chrono::milliseconds timeout);

  // Engine thread.
  void accept(int64_t prompt_tokens);
  void append(const std::string& text, std::optional<TokenLogprob> logprob = std::nullopt);
  void finishWith(Finish f, int64_t completion_tokens);
  void fail(ApiError e);
  bool done();

  std::atomic<bool> cancelled{false};  // the client went away

  // Engine-thread-only bookkeeping.
  int64_t engine_id = -1;
  std::unique_ptr<TextRequest> text_request;  // admitted, not yet submitted
  int64_t prompt_tokens = 0;
  int64_t generated = 0;
  int32_t last_token_id = -1;  // the previous token (logprobs' token strings)
  Clock::time_point last_token;
  bool detached = false;  // cancelled, but the engine cannot abort: its tokens are dropped

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  Update pending_;
  bool fresh_ = false;  // something changed since the last take
};

struct CoreOptions {
  int64_t max_num_seqs = 64;   // requests generating at once
  int64_t max_waiting = 256;   // accepted requests queued behind them; more: 429
  bool parse_special = false;  // special-token text in prompts is a control token
  uint64_t seed_base = 0;      // unseeded requests get seed_base + their serial number
};

class ServerCore {
 public:
  ServerCore(Session& session, CoreOptions options, Metrics& metrics);

  // HTTP threads. submit: false when the server is shutting down (answer 503).
  bool submit(const std::shared_ptr<Job>& job);
  void cancel(const std::shared_ptr<Job>& job);
  bool healthy() const { return healthy_.load(); }
  bool stopping() const { return stopping_.load(); }
  int64_t waiting() const { return waiting_count_.load(); }
  EngineStats stats() const;
  int64_t maxModelLen() const { return max_model_len_; }

  // Stops taking requests; running and queued ones get `grace` to finish, then are cancelled
  // (their clients get 503 or a stream error). run() returns once nothing is left.
  void beginShutdown(std::chrono::milliseconds grace);
  // The engine thread's body.
  void run();

 private:
  void admit(const std::shared_ptr<Job>& job);
  bool start(const std::shared_ptr<Job>& job);
  void dropCancelled(const std::shared_ptr<Job>& job);
  void step();
  static std::optional<TokenLogprob> tokenLogprob(const Session& session, const TextEvent& e,
                                                  int32_t prev);
  void failAll(const ApiError& e, Outcome outcome);
  void snapshotStats();

  Session& session_;
  const CoreOptions options_;
  Metrics& metrics_;
  int64_t max_model_len_ = 0;  // the context limit requests are checked against
  int64_t kv_tokens_ = 0;      // KV cache capacity in tokens

  // Shared with HTTP threads (under mu_).
  std::mutex mu_;
  std::condition_variable wake_;
  std::vector<std::shared_ptr<Job>> inbox_;
  std::vector<std::shared_ptr<Job>> cancels_;
  Clock::time_point deadline_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> healthy_{true};
  std::atomic<int64_t> waiting_count_{0};
  mutable std::mutex stats_mu_;
  EngineStats stats_;

  // Engine thread only.
  std::deque<std::shared_ptr<Job>> waiting_;
  std::map<int64_t, std::shared_ptr<Job>> running_;  // by engine request id
  std::vector<TextEvent> events_;
  uint64_t serial_ = 0;
};

}  // namespace ds::serve
