// The CPU device's executable: the library kernel table (one function per launch ABI kind),
// the plan's rope tables, and the artifact's generated host code, loaded once and shared by the
// ranks.
#pragma once

#include <memory>
#include <vector>

#include "cpu/composite_kernels.h"
#include "hal/cpu/cpu_device.h"
#include "hal/cpu/generated_kernels.h"

namespace ds::hal {

// A launch's rope description as the rope-table builder takes it (every device builds its
// frequency tables with cpu::RopeTable).
cpu::RopeParams ropeParams(const RopeDesc& rope);

class CpuExecutable;

// One launch ABI kind on the CPU: reads args.in / args.weights, writes args.out.
using CpuKernelFn = Status (*)(CpuDevice& device, const CpuExecutable& exe,
                               const LaunchArgs& args);
// Indexed by abi::KernelKind (hal/cpu/cpu_kernel_table.cpp); null: the CPU lacks that kind.
extern const CpuKernelFn kCpuKernels[abi::kNumKernelKinds];

class CpuExecutable : public Executable {
 public:
  // UNIMPLEMENTED naming the launch when a kind has no CPU kernel or the KV cache dtype has no
  // host layout; errors of the generated code's loader (format, ABI, CPU features, symbols).
  // !allow_native_code: the generated code is not loaded and library kernels serve every launch.
  static StatusOr<std::shared_ptr<const CpuExecutable>> load(const artifact::Artifact& artifact,
                                                             const StepPlan& plan,
                                                             bool allow_native_code = true);
  Status launch(Device& device, const LaunchArgs& args) const override;
  size_t numGenerated() const override { return generated_->numServed(); }

  // Launch `index`'s rotary epilogue `slot` (its generated one, else the library rope table).
  cpu::Rotary rotary(size_t index, size_t slot) const;
  // Launch `index`'s generated epilogue `slot`, or null.
  cpu::GeneratedFn epilogue(size_t index, size_t slot) const {
    return generated_->epilogue(index, slot);
  }
  cpu::KVType kvType() const { return kv_type_; }

 private:
  std::unique_ptr<GeneratedKernels> generated_;
  std::vector<std::unique_ptr<cpu::RopeTable>> ropes_;  // per launch (null if it has no rope)
  cpu::KVType kv_type_ = cpu::KVType::F32;
};

}  // namespace ds::hal
