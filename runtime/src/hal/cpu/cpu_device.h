// The CPU device: host memory, a synchronous stream, and the library kernels of kernels/cpu
// (hal/cpu/cpu_kernel_table.cpp) plus the artifact's generated host code (loaded once).
#pragma once

#include <memory>
#include <vector>

#include "cpu/composite_kernels.h"
#include "hal/device.h"

namespace ds::hal {

// Thread-count policy of the CPU kernels (process-wide: they share one OpenMP team size).
struct CpuThreadPolicy {
  int num_threads = 0;  // > 0: exactly this many; 0: the rule below
  // Fork/join costs microseconds per launch (milliseconds on a busy machine): a model whose
  // weights fit in cache-sized slices runs faster on one thread. Measured on stories260K
  // (1 MB): 4556 tokens/s on 1 thread vs 266 on 2 threads of a loaded 2-core machine. With
  // num_threads 0, weights below this run on 1 thread, larger ones on all hardware threads.
  uint64_t single_thread_below_bytes = 64ull << 20;
};
void applyCpuThreadPolicy(const CpuThreadPolicy& policy, uint64_t weight_bytes);

// One CPU device per tensor-parallel rank (each with its own memory accounting and scratch).
std::unique_ptr<Device> createCpuDevice(const DeviceOptions& options = {});

// A weight as the CPU kernels read it: one view (or one per expert), plus an f32 copy of 1-D
// tensors (norm weights, biases, router correction bias), which kernels take as float*.
struct CpuWeight {
  std::vector<cpu::WeightView> views;
  std::vector<float> f32;
};

class CpuWeights : public Weights {
 public:
  // Views of rank `rank`'s shards into the artifact's mapping (no copy but the 1-D f32 vectors).
  // Synthetic tensors (ds-compile --weights random) are filled into memory of their own first.
  static StatusOr<std::unique_ptr<CpuWeights>> load(const artifact::Artifact& artifact, int rank);
  // By the tensor index a launch names (the rank-0 entry of a sharded tensor).
  const CpuWeight& at(int32_t tensor) const { return entries_[static_cast<size_t>(tensor)]; }
  // Bytes of synthetic weights this rank filled at load (0 for an artifact with real weights).
  uint64_t syntheticBytes() const { return synthetic_bytes_; }
  // Bytes of real weights copied out of the mapping into the packed layout (0 when packing is
  // off: DS_CPU_PACK_WEIGHTS=0).
  uint64_t packedBytes() const { return packed_bytes_; }

 private:
  struct FreeDeleter {
    void operator()(uint8_t* p) const;
  };
  // Rewrites every view the decode tiles read faster packed (cpu::WeightView::packed): real
  // weights into packed_ (their mapped pages are dropped), synthetic ones in place.
  void pack(const artifact::Artifact& artifact);

  std::vector<CpuWeight> entries_;
  std::unique_ptr<uint8_t, FreeDeleter> synthetic_;  // the filled synthetic tensors, 64-B aligned
  uint64_t synthetic_bytes_ = 0;
  std::unique_ptr<uint8_t, FreeDeleter> packed_;
  uint64_t packed_bytes_ = 0;
  std::vector<std::unique_ptr<float[]>> panel_scales_;  // int8_act int4 views' panel_group_scale
  std::vector<std::unique_ptr<uint16_t[]>> panel_scales_f16_;  // their f16 copies, where exact
};

class CpuDevice : public Device {
 public:
  explicit CpuDevice(const DeviceOptions& options = {});
  ~CpuDevice() override;
  const DeviceInfo& info() const override { return info_; }
  Allocator& allocator() override;
  Stream& stream() override;
  StatusOr<std::unique_ptr<Weights>> loadWeights(const artifact::Artifact& artifact,
                                                 const StepPlan& plan, int rank) override;
  StatusOr<std::shared_ptr<const Executable>> loadExecutable(
      const artifact::Artifact& artifact, const StepPlan& plan,
      std::shared_ptr<const Executable> peer) override;
  // Temporaries of the composite kernels (this rank's; a rank runs on one thread at a time).
  cpu::Scratch& scratch() { return scratch_; }

  struct State;

 private:
  DeviceInfo info_;
  DeviceOptions options_;
  std::unique_ptr<State> state_;
  cpu::Scratch scratch_;
};

}  // namespace ds::hal
