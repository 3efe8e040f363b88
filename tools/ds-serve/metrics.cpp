// Prometheus text exposition of ds-serve's metrics.
#include "metrics.h"

#include <cstdio>

namespace ds::serve {

namespace {
std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}
void head(std::string* out, const char* name, const char* type, const char* help) {
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}
void sample(std::string* out, const std::string& name, double v) { *out += name + " " + num(v) + "\n"; }
const char* outcomeName(Outcome o) {
  switch (o) {
    case Outcome::kStop: return "stop";
    case Outcome::kLength: return "length";
    case Outcome::kCancelled: return "cancelled";
    case Outcome::kInvalid: return "invalid";
    case Outcome::kRejected: return "rejected";
    case Outcome::kUnauthorized: return "unauthorized";
    case Outcome::kError: return "error";
  }
  return "error";
}
// vLLM's buckets for the same histograms.
const std::vector<double> kTtftBuckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25,
                                          0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0};
const std::vector<double> kItlBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075,
                                         0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5};
const std::vector<double> kE2eBuckets = {0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5,
                                         5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0};
}  // namespace

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::write(const std::string& name, std::string* out) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    *out += name + "_bucket{le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  *out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  sample(out, name + "_sum", sum_);
  *out += name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics() : ttft_(kTtftBuckets), itl_(kItlBuckets), e2e_(kE2eBuckets) {}

void Metrics::request(Outcome o) {
  std::lock_guard<std::mutex> lock(mu_);
  ++outcomes_[o];
}
void Metrics::firstToken(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.observe(s);
}
void Metrics::interToken(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  itl_.observe(s);
}
void Metrics::finished(double e2e, int64_t prompt, int64_t generated) {
  std::lock_guard<std::mutex> lock(mu_);
  e2e_.observe(e2e);
  prompt_tokens_ += static_cast<uint64_t>(prompt);
  generated_tokens_ += static_cast<uint64_t>(generated);
}

std::string Metrics::render(const EngineStats& e, int64_t server_waiting, bool can_abort) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  head(&out, "ds_serve_requests_total", "counter",
       "Requests to /v1 by outcome (stop, length, cancelled, invalid, rejected, unauthorized, error).");
  for (Outcome o : {Outcome::kStop, Outcome::kLength, Outcome::kCancelled, Outcome::kInvalid,
                    Outcome::kRejected, Outcome::kUnauthorized, Outcome::kError}) {
    auto it = outcomes_.find(o);
    out += std::string("ds_serve_requests_total{outcome=\"") + outcomeName(o) + "\"} " +
           std::to_string(it == outcomes_.end() ? 0 : it->second) + "\n";
  }
  head(&out, "ds_serve_num_requests_running", "gauge", "Requests the engine is generating for.");
  sample(&out, "ds_serve_num_requests_running", static_cast<double>(e.running));
  head(&out, "ds_serve_num_requests_waiting", "gauge",
       "Requests accepted and queued (the server's queue plus the engine's).");
  sample(&out, "ds_serve_num_requests_waiting", static_cast<double>(server_waiting + e.waiting));
  head(&out, "ds_serve_num_preemptions_total", "counter", "Requests preempted by the engine (0 until it reports them).");
  sample(&out, "ds_serve_num_preemptions_total", static_cast<double>(e.preemptions));
  head(&out, "ds_serve_kv_blocks_total", "gauge", "Blocks of the paged KV cache.");
  sample(&out, "ds_serve_kv_blocks_total", static_cast<double>(e.kv_blocks_total));
  head(&out, "ds_serve_kv_blocks_used", "gauge", "KV blocks held by requests (0 until the engine reports it).");
  sample(&out, "ds_serve_kv_blocks_used", static_cast<double>(e.kv_blocks_used));
  head(&out, "ds_serve_kv_blocks_free", "gauge", "KV blocks free (0 until the engine reports it).");
  sample(&out, "ds_serve_kv_blocks_free", static_cast<double>(e.kv_blocks_free));
  head(&out, "ds_serve_prefix_cache_hit_rate", "gauge",
       "Share of prompt tokens found in the prefix cache (0 until the engine has one).");
  sample(&out, "ds_serve_prefix_cache_hit_rate", e.prefix_cache_hit_rate);
  head(&out, "ds_serve_engine_stats_known", "gauge",
       "1 where the engine reports the value, 0 where the metric is a placeholder 0.");
  auto known = [&](const char* stat, bool k) {
    out += std::string("ds_serve_engine_stats_known{stat=\"") + stat + "\"} " + (k ? "1" : "0") + "\n";
  };
  known("waiting", e.known_waiting);
  known("preemptions", e.known_preemptions);
  known("kv_blocks_used", e.known_kv_used);
  known("prefix_cache_hit_rate", e.known_prefix_cache);
  known("abort", can_abort);
  head(&out, "ds_serve_prompt_tokens_total", "counter", "Prompt tokens of finished requests.");
  sample(&out, "ds_serve_prompt_tokens_total", static_cast<double>(prompt_tokens_));
  head(&out, "ds_serve_generation_tokens_total", "counter", "Tokens generated for finished requests.");
  sample(&out, "ds_serve_generation_tokens_total", static_cast<double>(generated_tokens_));
  head(&out, "ds_serve_time_to_first_token_seconds", "histogram",
       "From the request's arrival to its first generated token.");
  ttft_.write("ds_serve_time_to_first_token_seconds", &out);
  head(&out, "ds_serve_inter_token_latency_seconds", "histogram",
       "Between consecutive generated tokens of one request.");
  itl_.write("ds_serve_inter_token_latency_seconds", &out);
  head(&out, "ds_serve_e2e_request_latency_seconds", "histogram",
       "From arrival to the last token, finished requests.");
  e2e_.write("ds_serve_e2e_request_latency_seconds", &out);
  return out;
}

}  // namespace ds::serve
