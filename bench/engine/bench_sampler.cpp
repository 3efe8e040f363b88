// Sampler timings at DeepSeek-V3's vocabulary (129280): greedy, top-k, top-p, penalty.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "engine/sampler.h"

namespace {

constexpr int64_t kVocab = 129280;

struct Timing {
  double median, min;
};

// Median and fastest microseconds per sample() over `iters` calls (the minimum is the
// better estimate on a shared, loaded machine).
Timing timeSampler(const ds::SamplingParams& p, const std::vector<float>& logits,
                    const std::vector<int32_t>& history, int iters) {
  ds::Sampler s(p);
  std::vector<double> times;
  volatile int32_t sink = 0;
  for (int n = 0; n < iters; ++n) {
    const auto t0 = std::chrono::steady_clock::now();
    sink = s.sample(logits.data(), kVocab, history);
    const auto t1 = std::chrono::steady_clock::now();
    times.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  (void)sink;
  std::sort(times.begin(), times.end());
  return {times[iters / 2], times.front()};
}

}  // namespace

int main() {
  std::mt19937_64 rng(1);
  // "flat": N(0, 1) logits, nearly uniform softmax, so top-p keeps ~90% of the vocabulary
  // (worst case). "peaked": N(0, 3) plus a few strong tokens, closer to a trained model.
  std::normal_distribution<float> n1(0.0f, 1.0f), n3(0.0f, 3.0f);
  std::vector<float> flat(kVocab), peaked(kVocab);
  for (auto& x : flat) x = n1(rng);
  for (auto& x : peaked) x = n3(rng);
  for (int i = 0; i < 8; ++i) peaked[rng() % kVocab] = 25.0f + i;
  std::vector<int32_t> history;
  for (int i = 0; i < 4096; ++i) history.push_back(static_cast<int32_t>(rng() % kVocab));

  struct Row {
    const char* name;
    ds::SamplingParams p;
    bool use_history;
  };
  const Row rows[] = {
      {"greedy", {0.0f, 0, 1.0f, 0, 1.0f}, false},
      {"greedy + rep.penalty (4096 hist)", {0.0f, 0, 1.0f, 0, 1.1f}, true},
      {"T=1 (no filter)", {1.0f, 0, 1.0f, 0, 1.0f}, false},
      {"T=0.7 top_k=50", {0.7f, 50, 1.0f, 0, 1.0f}, false},
      {"T=0.7 top_p=0.9", {0.7f, 0, 0.9f, 0, 1.0f}, false},
      {"T=0.7 top_k=50 top_p=0.9", {0.7f, 50, 0.9f, 0, 1.0f}, false},
      {"T=0.7 top_p=0.9 rep.penalty", {0.7f, 0, 0.9f, 0, 1.1f}, true},
  };
  std::printf("vocab %lld, 300 calls each, microseconds per sample() (median / min)\n",
              static_cast<long long>(kVocab));
  std::printf("%-36s %18s %18s\n", "params", "flat", "peaked");
  const std::vector<int32_t> no_history;
  for (const Row& r : rows) {
    const std::vector<int32_t>& h = r.use_history ? history : no_history;
    const Timing f = timeSampler(r.p, flat, h, 300), pk = timeSampler(r.p, peaked, h, 300);
    std::printf("%-36s %8.1f / %7.1f %8.1f / %7.1f\n", r.name, f.median, f.min, pk.median, pk.min);
  }
  return 0;
}
