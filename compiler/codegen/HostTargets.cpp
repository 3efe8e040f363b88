// The host CPU levels of generated kernels (x86-64 microarchitecture levels).
#include "compiler/codegen/HostTargets.h"

namespace mlir::ds {

const std::vector<HostCpu>& knownHostCpus() {
  static const std::vector<HostCpu> cpus = {
      // x86-64-v3 without the extensions the kernels never need (f16c, movbe, lzcnt), so the
      // runtime check asks no more of the machine than the code uses.
      {"x86-64-v3", "x86_64-unknown-linux-gnu", "x86-64",
       {"sse4.2", "popcnt", "avx", "avx2", "fma", "bmi", "bmi2"}, 256},
      // Baseline: SSE2 only, for machines without AVX2.
      {"x86-64", "x86_64-unknown-linux-gnu", "x86-64", {}, 128},
  };
  return cpus;
}

std::optional<HostCpu> findHostCpu(const std::string& name) {
  for (const HostCpu& c : knownHostCpus())
    if (c.name == name) return c;
  return std::nullopt;
}

const HostCpu& defaultHostCpu() { return knownHostCpus().front(); }

}  // namespace mlir::ds
