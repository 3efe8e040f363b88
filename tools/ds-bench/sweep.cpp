// ds-bench --sweep: decode at several batch sizes and prefill at several prompt lengths, each
// beside the cost model's prediction (Artifact.cost) and the fraction of this machine's measured
// roofline (bytes over the measured read bandwidth, FLOPs over the measured GEMM rate).
#include "sweep.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "artifact/artifact_info.h"
#include "artifact/artifact_reader.h"
#include "artifact/roofline.h"
#include "engine/engine.h"
#include "kernels/cpu/cpu_kernels.h"

namespace ds::bench {
namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A large copy on `threads` threads, best of 5, counting bytes read plus bytes written.
double measureCopyBandwidth(int threads) {
  const size_t bytes = size_t{256} << 20;
  std::vector<uint8_t> a(bytes, 1), b(bytes, 2);
  threads = std::max(threads, 1);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const double t0 = now();
    std::vector<std::thread> pool;
    const size_t slice = bytes / static_cast<size_t>(threads);
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] { std::memcpy(b.data() + t * slice, a.data() + t * slice, slice); });
    for (std::thread& th : pool) th.join();
    best = std::max(best, 2.0 * double(slice) * threads / (now() - t0));
  }
  return best;
}

// A large read (a sum, nothing written) on `threads` threads, best of 5: the ceiling of a
// decode step, which reads weights and writes almost nothing.
double measureReadBandwidth(int threads) {
  const size_t words = size_t{512} << 17;  // 512 MiB of uint64
  std::vector<uint64_t> a(words);
  for (size_t i = 0; i < words; ++i) a[i] = i * 0x9e3779b97f4a7c15ull;
  threads = std::max(threads, 1);
  double best = 0;
  std::vector<uint64_t> sums(threads);
  for (int rep = 0; rep < 5; ++rep) {
    const double t0 = now();
    std::vector<std::thread> pool;
    const size_t slice = words / static_cast<size_t>(threads) / 8 * 8;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const uint64_t* p = a.data() + t * slice;
        uint64_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (size_t i = 0; i < slice; i += 8)
          for (int j = 0; j < 8; ++j) s[j] += p[i + j];
        sums[t] = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
      });
    for (std::thread& th : pool) th.join();
    best = std::max(best, 8.0 * double(slice) * threads / (now() - t0));
  }
  volatile uint64_t sink = sums[0];  // keeps the sums alive
  (void)sink;
  return best;
}

// The CPU library's f32 GEMM (what prefill runs) on a 256 x 2048 x 2048 problem, best of 3.
double measureGemmRate() {
  const int64_t T = 256, K = 2048, N = 2048;
  std::vector<float> x(T * K), w(N * K), y(T * N);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 7) * 0.01f;
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(i % 5) * 0.01f;
  cpu::WeightView v;
  v.data = w.data();
  v.type = cpu::WeightType::F32;
  v.rows = N;
  v.cols = K;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const double t0 = now();
    cpu::linear(x.data(), T, v, nullptr, y.data());
    best = std::max(best, 2.0 * T * N * K / (now() - t0));
  }
  return best;
}

struct Row {
  std::string kind;  // "decode" or "prefill"
  int64_t size = 0;  // batch or prompt tokens
  double measured = 0, predicted = 0, roofline_fraction = 0, ms = 0;
  artifact::StepRoofline floor;  // this row's bytes and FLOPs per step (or per prompt)
  double step_seconds = 0;
  std::string note;
};

}  // namespace

int runSweep(const artifact::Artifact& art, const SweepOptions& o) {
  const fb::Artifact& meta = *art.meta();
  artifact::TokenCost tc;
  std::string device = "(none)";
  double device_bw = 0, device_flops = 0;
  if (const fb::CostFacts* c = meta.cost()) {
    tc.weight_bytes = double(c->weight_bytes());
    tc.decode_bytes_per_token = double(c->decode_bytes_per_token());
    tc.flops_per_token = double(c->flops_per_token());
    tc.attention_flops_per_context_token = double(c->attention_flops_per_context_token());
    device = c->device() ? c->device()->str() : "(none)";
    device_bw = c->device_bandwidth_gbs() * 1e9 * artifact::kBandwidthEfficiency;
    device_flops = c->device_tflops() * 1e12 * artifact::kComputeEfficiency;
  }
  if (const fb::Plan* plan = meta.plan(); plan && plan->kv_cache())
    tc.kv_bytes_per_token = double(artifact::kvBytesPerToken(*plan->kv_cache()));
  const int threads = o.engine.num_threads > 0 ? o.engine.num_threads
                                              : static_cast<int>(std::thread::hardware_concurrency());
  const int64_t context_limit = meta.model() ? meta.model()->max_position_embeddings() : 0;
  const int32_t vocab = meta.model() ? static_cast<int32_t>(meta.model()->vocab_size()) : 1;

  std::vector<Row> rows;
  auto engineFor = [&](int64_t tokens, int64_t step_tokens) {
    EngineOptions eo = o.engine;
    eo.max_step_tokens = std::max<int64_t>(step_tokens, 1);
    // Every sequence of the largest batch runs at once (the engine's default caps at 256).
    for (int64_t b : o.batches) eo.max_num_seqs = std::max<int64_t>(eo.max_num_seqs, b);
    const uint64_t per_token = std::max<uint64_t>(uint64_t(tc.kv_bytes_per_token), 1);
    eo.kv_cache_bytes = std::max<uint64_t>(eo.kv_cache_bytes, per_token * uint64_t(tokens + 64) * 2);
    return Engine::create(art, eo);
  };
  for (int64_t batch : o.batches) {
    Row r{"decode", batch};
    const int64_t ctx = o.context, steps = o.decode_steps;
    if (context_limit > 0 && ctx + steps + 1 > context_limit) {
      r.note = "skipped: context " + std::to_string(context_limit);
      rows.push_back(r);
      continue;
    }
    auto engine = engineFor(batch * (ctx + steps + 1), std::min<int64_t>(batch * ctx, 8192));
    if (!engine.isOk()) { r.note = engine.status().message(); rows.push_back(r); continue; }
    for (int64_t b = 0; b < batch; ++b) {
      GenerationRequest g;
      for (int64_t t = 0; t < ctx; ++t) g.prompt.push_back(int32_t((b * 131 + t * 7 + 1) % vocab));
      g.max_new_tokens = steps + 1;
      auto id = (*engine)->submit(g);
      if (!id.isOk()) { r.note = id.status().message(); break; }
    }
    if (!r.note.empty()) { rows.push_back(r); continue; }
    std::vector<TokenEvent> ev;
    // Prefill until every sequence has its first token; then time the pure decode steps.
    while ((*engine)->hasWork() && int64_t(ev.size()) < batch)
      if (Status s = (*engine)->step(&ev); !s.isOk()) { r.note = s.message(); break; }
    const size_t before = ev.size();
    const double t0 = now();
    int64_t nsteps = 0;
    while (r.note.empty() && (*engine)->hasWork()) {
      if (Status s = (*engine)->step(&ev); !s.isOk()) r.note = s.message();
      ++nsteps;
    }
    const double dt = now() - t0;
    const double tokens = double(ev.size() - before);
    if (nsteps == 0 || dt <= 0) { rows.push_back(r); continue; }
    r.ms = dt * 1e3 / double(nsteps);
    r.measured = tokens / dt;
    const artifact::StepRoofline floor = artifact::decodeStep(tc, batch, ctx + steps / 2);
    r.predicted = device_bw > 0 ? double(batch) / floor.seconds(device_bw, device_flops) : 0;
    r.floor = floor;
    r.step_seconds = dt / double(nsteps);
    rows.push_back(r);
  }
  for (int64_t prompt : o.prompts) {
    Row r{"prefill", prompt};
    if (context_limit > 0 && prompt + 1 > context_limit) {
      r.note = "skipped: context " + std::to_string(context_limit);
      rows.push_back(r);
      continue;
    }
    auto engine = engineFor(prompt + 1, prompt);
    if (!engine.isOk()) { r.note = engine.status().message(); rows.push_back(r); continue; }
    GenerationRequest g;
    for (int64_t t = 0; t < prompt; ++t) g.prompt.push_back(int32_t((t * 7 + 1) % vocab));
    g.max_new_tokens = 1;
    if (auto id = (*engine)->submit(g); !id.isOk()) { r.note = id.status().message(); rows.push_back(r); continue; }
    std::vector<TokenEvent> ev;
    const double t0 = now();
    while ((*engine)->hasWork())
      if (Status s = (*engine)->step(&ev); !s.isOk()) { r.note = s.message(); break; }
    const double dt = now() - t0;
    r.ms = dt * 1e3;  // time to first token
    r.measured = double(prompt) / dt;
    const artifact::StepRoofline floor = artifact::prefillStep(tc, prompt);
    r.predicted = device_bw > 0 ? double(prompt) / floor.seconds(device_bw, device_flops) : 0;
    r.floor = floor;
    r.step_seconds = dt;
    rows.push_back(r);
  }

  // A row that failed (not one skipped past the context) fails the run: exit 1 after the table.
  int rc = 0;
  for (const Row& r : rows)
    if (!r.note.empty() && r.note.rfind("skipped", 0) != 0) rc = 1;
  // The machine's ceilings, measured after the runs: the library GEMM's threads may keep
  // spinning for a while after it returns, which would slow the steps measured next.
  const double copy_bw = measureCopyBandwidth(threads);
  const double read_bw = measureReadBandwidth(threads);
  const double gemm_rate = measureGemmRate();
  // Steps read weights and KV and write little: their floor is the read bandwidth.
  for (Row& r : rows)
    if (r.step_seconds > 0) r.roofline_fraction = r.floor.seconds(read_bw, gemm_rate) / r.step_seconds;

  if (o.json) {
    nlohmann::json j;
    j["artifact"] = art.path();
    j["threads"] = threads;
    j["measured_copy_gbs"] = copy_bw / 1e9;
    j["measured_read_gbs"] = read_bw / 1e9;
    j["measured_gemm_gflops"] = gemm_rate / 1e9;
    j["cost_model_device"] = device;
    j["decode_context"] = o.context;
    j["rows"] = nlohmann::json::array();
    for (const Row& r : rows)
      j["rows"].push_back({{"kind", r.kind}, {"size", r.size}, {"tokens_per_s", r.measured},
                           {"ms", r.ms}, {"predicted_tokens_per_s", r.predicted},
                           {"roofline_fraction", r.roofline_fraction}, {"note", r.note}});
    std::printf("%s\n", j.dump(2).c_str());
    return rc;
  }
  std::printf("machine: %d threads, read %.1f GB/s, copy %.1f GB/s (read + write), f32 GEMM "
              "%.1f GFLOP/s; cost model device: %s\n", threads, read_bw / 1e9, copy_bw / 1e9,
              gemm_rate / 1e9, device.c_str());
  std::printf("decode: size = batch at %lld tokens of context, ms per step; prefill: size = prompt "
              "tokens, ms = time to first token; roofline = this machine's floor / measured time\n",
              static_cast<long long>(o.context));
  std::printf("%-8s %8s %12s %10s %14s %10s\n", "kind", "size", "tokens/s", "ms", "predicted t/s",
              "roofline");
  for (const Row& r : rows) {
    if (!r.note.empty() && r.measured == 0) {
      std::printf("%-8s %8lld %s\n", r.kind.c_str(), static_cast<long long>(r.size), r.note.c_str());
      continue;
    }
    std::printf("%-8s %8lld %12.1f %10.3f %14.1f %9.0f%%\n", r.kind.c_str(),
                static_cast<long long>(r.size), r.measured, r.ms, r.predicted,
                100.0 * r.roofline_fraction);
  }
  return rc;
}

}  // namespace ds::bench
