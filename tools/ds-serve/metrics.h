// /metrics: the server's counters and latency histograms in the Prometheus text format
// (version 0.0.4). Names and meanings: docs/serving.md "Metrics". Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine_adapter.h"

namespace ds::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1) {}
  void observe(double v);
  // Appends the _bucket / _sum / _count series of `name`.
  void write(const std::string& name, std::string* out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

// Outcomes of /v1 requests (label `outcome` of ds_serve_requests_total).
enum class Outcome { kStop, kLength, kCancelled, kInvalid, kRejected, kUnauthorized, kError };

class Metrics {
 public:
  Metrics();
  void request(Outcome o);
  void firstToken(double seconds);   // time to first token
  void interToken(double seconds);   // between two tokens of one request
  void finished(double e2e_seconds, int64_t prompt_tokens, int64_t generated_tokens);
  // The whole exposition; `server_waiting` is the server's own queue.
  std::string render(const EngineStats& engine, int64_t server_waiting, bool can_abort) const;

 private:
  mutable std::mutex mu_;
  std::map<Outcome, uint64_t> outcomes_;
  Histogram ttft_, itl_, e2e_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0;
};

}  // namespace ds::serve
