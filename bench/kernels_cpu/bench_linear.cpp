// GEMV/GEMM throughput of ds::cpu::linear per weight type (GFLOP/s and weight GB/s), with cblas_sgemm as a baseline.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_kernels.h"

namespace {

using ds::cpu::WeightType;
using ds::cpu::WeightView;

// Process CPU time instead of wall time: on a machine shared with other jobs, wall time mostly
// measures the scheduler; CPU time summed over the threads still measures the kernel.
bool g_cpu_time = false;

double now() {
  if (g_cpu_time) {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double medianSeconds(int reps, const std::function<void()>& fn) {
  fn();  // warm-up: page-in, thread pool start
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const double a = now();
    fn();
    t.push_back(now() - a);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Weight {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  WeightView view;
  int64_t totalBytes() const { return bytes.size() + scales.size() * 4; }
};

Weight makeWeight(WeightType type, int64_t n, int64_t k, std::mt19937& gen) {
  Weight w;
  const int64_t esize = type == WeightType::F32 ? 4 : type == WeightType::F8E4M3 ? 1 : 2;
  w.bytes.resize(n * k * esize);
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : w.bytes) b = static_cast<uint8_t>(byte(gen));
  if (type == WeightType::F32 || type == WeightType::BF16 || type == WeightType::F16) {
    // Random bytes can be NaN/huge; write sane small values instead.
    std::uniform_real_distribution<float> u(-0.05f, 0.05f);
    for (int64_t i = 0; i < n * k; ++i) {
      float f = u(gen);
      if (type == WeightType::F32) {
        std::memcpy(w.bytes.data() + i * 4, &f, 4);
      } else {
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        uint16_t h = type == WeightType::BF16 ? uint16_t(bits >> 16) : uint16_t(0x2000 | (bits & 0x3ff));
        std::memcpy(w.bytes.data() + i * 2, &h, 2);
      }
    }
  } else {
    for (auto& b : w.bytes)
      if ((b & 0x7f) == 0x7f) b = 0x10;
    w.scales.assign(((n + 127) / 128) * ((k + 127) / 128), 1e-3f);
    w.view.block_scale = w.scales.data();
    w.view.block_rows = 128;
    w.view.block_cols = 128;
  }
  w.view.data = w.bytes.data();
  w.view.type = type;
  w.view.rows = n;
  w.view.cols = k;
  return w;
}

void report(const char* label, int64_t T, int64_t n, int64_t k, int64_t bytes, double s) {
  std::printf("%-34s T=%-3lld %9.3f ms %8.1f GFLOP/s %7.1f GB/s\n", label, (long long)T, s * 1e3,
              2.0 * T * n * k / s * 1e-9, bytes / s * 1e-9);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t n = 4096, k = 4096;
  int reps = 10;
  for (int i = 1; i < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--cpu-time") {
      g_cpu_time = true;
      --i;
      continue;
    }
    if (i + 1 >= argc) a = "?";
    if (a == "--n") n = std::atoll(argv[i + 1]);
    else if (a == "--k") k = std::atoll(argv[i + 1]);
    else if (a == "--reps") reps = std::atoi(argv[i + 1]);
    else if (a == "--threads") ds::cpu::setNumThreads(std::atoi(argv[i + 1]));
    else {
      std::fprintf(stderr, "usage: %s [--n N] [--k K] [--reps R] [--threads P] [--cpu-time]\n", argv[0]);
      return 2;
    }
  }
  std::printf("linear y[T,%lld] = x[T,%lld] W^T, %d threads, median of %d (%s)\n", (long long)n,
              (long long)k, ds::cpu::numThreads(), reps,
              g_cpu_time ? "process CPU time: GFLOP/s per CPU-second" : "wall time");
  std::mt19937 gen(1);
  std::vector<float> x(512 * k), y(512 * n);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto& v : x) v = u(gen);

  const struct {
    const char* name;
    WeightType type;
  } types[] = {{"f32", WeightType::F32}, {"bf16", WeightType::BF16}, {"f16", WeightType::F16},
               {"fp8-e4m3 (128x128 scales)", WeightType::F8E4M3}};
  for (const auto& ty : types) {
    Weight w = makeWeight(ty.type, n, k, gen);
    for (int64_t T : {1, 64}) {
      ds::cpu::setBatchInvariant(true);
      double s = medianSeconds(reps, [&] { ds::cpu::linear(x.data(), T, w.view, nullptr, y.data()); });
      report((std::string(ty.name) + " invariant").c_str(), T, n, k, w.totalBytes(), s);
      if (T >= 16) {
        ds::cpu::setBatchInvariant(false);
        s = medianSeconds(reps, [&] { ds::cpu::linear(x.data(), T, w.view, nullptr, y.data()); });
        report((std::string(ty.name) + " openblas").c_str(), T, n, k, w.totalBytes(), s);
        ds::cpu::setBatchInvariant(true);
      }
    }
    if (ty.type == WeightType::BF16 && ds::cpu::canUseBf16Activations(w.view)) {
      // --quant-act bf16 (the default for host --dtype bf16 builds): the packed layout and bf16
      // dot products; T = 512 is a prefill (docs/cpu_kernels.md compares it with oneDNN).
      std::vector<uint8_t> packed(w.bytes.size() + 4096);
      const WeightView a16 = ds::cpu::packBf16Activations(w.view, packed.data());
      for (int64_t T : {1, 64, 512}) {
        const double s = medianSeconds(reps, [&] { ds::cpu::linear(x.data(), T, a16, nullptr, y.data()); });
        report("bf16 weights, bf16 activations", T, n, k, w.totalBytes(), s);
      }
    }
    if (ty.type == WeightType::F32) {
      const float* W = static_cast<const float*>(w.view.data);
      double s = medianSeconds(reps, [&] {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, W, k, x.data(), 1, 0.0f, y.data(), 1);
      });
      report("f32 cblas_sgemv (baseline)", 1, n, k, w.totalBytes(), s);
    }
  }
  return 0;
}
