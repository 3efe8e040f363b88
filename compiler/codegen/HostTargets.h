// Host CPU levels generated kernels are compiled for, as data: triple, LLVM CPU and the features the
// runtime checks before loading the code.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace mlir::ds {

struct HostCpu {
  std::string name;     // --codegen-cpu value, recorded in the artifact ("x86-64-v3")
  std::string triple;   // LLVM target triple
  std::string llvm_cpu; // LLVM CPU the code is scheduled for (its features are not implied)
  // Exactly the instruction-set extensions the code may use: passed to LLVM as +feature and
  // recorded in the artifact, where the runtime checks each one on the machine it runs on.
  std::vector<std::string> features;
  int vector_bits;      // width of the vectors the kernels are tiled for
};

const std::vector<HostCpu>& knownHostCpus();
std::optional<HostCpu> findHostCpu(const std::string& name);
// The default level: AVX2 + FMA (every x86 server of the last decade).
const HostCpu& defaultHostCpu();

}  // namespace mlir::ds
