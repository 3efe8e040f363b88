// The CUDA device's executable: the artifact's GPU module for this device (chosen by
// cuda_code_select), the generated kernels it defines, and the library kernel table by launch
// ABI kind. The table is empty until the CUDA kernel library (kernels/cuda) is wired in: filling
// kCudaKernels[kind] is the whole change that makes a kind run (docs/cuda.md).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hal/cuda/cuda_code_select.h"
#include "hal/cuda/cuda_device.h"
#include "hal/cuda/cuda_launches.h"

namespace ds::hal::cuda {

class CudaExecutable;

// One launch ABI kind on the GPU: queues its kernel(s) on the device's stream.
using CudaKernelFn = Status (*)(CudaDevice& device, const CudaExecutable& exe,
                                const LaunchArgs& args);
// Indexed by abi::KernelKind (cuda_executable.cpp); null: no CUDA kernel for that kind yet.
extern const CudaKernelFn kCudaKernels[abi::kNumKernelKinds];

class CudaExecutable : public Executable {
 public:
  // Selects and loads the artifact's module for this device (UNAVAILABLE naming both sides when
  // none runs on it), resolves each launch's generated entry point in it, and refuses (naming the
  // launch and its kind) any launch with neither a generated kernel nor a library kernel.
  static StatusOr<std::shared_ptr<const CudaExecutable>> load(const CudaDevice& device,
                                                              const artifact::Artifact& artifact,
                                                              const StepPlan& plan);
  ~CudaExecutable() override;
  Status launch(Device& device, const LaunchArgs& args) const override;
  // Plans every launch against a placeholder workspace (launching nothing) and grows the
  // workspace once to the largest need (one synchronize and one epoch bump at most).
  Status reserveFor(Device& device, const std::function<Status()>& launches) const override;
  size_t numGenerated() const override;
  // Bumped when the workspace or the decode row-range table is reallocated.
  uint64_t bufferEpoch() const override { return epoch_; }

  // The code object the device runs (-1: the artifact has no GPU code) and why it was chosen.
  int codeObject() const { return code_object_; }
  CodeMatch codeMatch() const { return match_; }
  const std::string& codeTarget() const { return code_target_; }
  // Launch `index`'s generated kernel in the module, or null.
  CUfunction entry(size_t index) const { return entries_[index]; }
  // Binds launch `a` to device addresses (cuda_launches.h) and queues its calls on the stream.
  Status run(CudaDevice& device, const LaunchArgs& a) const;

 private:
  const CudaDevice* device_ = nullptr;
  CUmodule module_ = nullptr;
  int code_object_ = -1;
  CodeMatch match_ = CodeMatch::ExactCubin;
  std::string code_target_;
  std::vector<CUfunction> entries_;  // per launch
  std::vector<uint32_t> threads_;    // per generated launch: its .maxntid
  CUmodule library_ = nullptr;       // the device's kernel library (owned by the device)
  std::map<std::string, CUfunction> library_fns_;
  bool quant_gemm_ = false;  // the library has the tensor-core prefill GEMMs (older ones do not)
  bool mla_prefill_ = false; // the library has ds_mla_prefill_* (older ones do not)
  bool fp8_act_ = false;     // --quant-act fp8 on a GPU with FP8 tensor cores
  bool fp8_moe_ = false;     // ... and the library has the experts' FP8 x FP8 GEMMs (older ones do not)
  struct SlotInfo {
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
  };
  std::vector<std::vector<SlotInfo>> slots_;      // per launch, per weight slot
  std::vector<std::vector<float>> inv_freq_;      // per rope launch (empty otherwise)
  std::vector<float> attention_factor_;
  // Lazily sized on the first launches (the stream is synchronized before one grows).
  mutable std::vector<DeviceBuffer> inv_freq_dev_;
  mutable DeviceBuffer workspace_, seq_q_start_;
  mutable DeviceBuffer iota_;      // int32 0, 1, 2, ...: a decode step's row ranges
  mutable bool pure_decode_ = false;
  mutable uint64_t epoch_ = 0;
  mutable std::vector<int32_t> seq_q_start_host_;
  mutable uint64_t attention_step_ = 0;  // StepArgs::step_id the row ranges below belong to
  mutable int64_t max_context_ = 0, max_q_len_ = 0;
  // Per launch: cuBLASLt refused one of its GEMMs (no algorithm), so it stays on GEMV.
  mutable std::vector<uint8_t> gemv_only_;
  // reserveFor in progress: run() only plans and records the workspace it needs.
  mutable bool sizing_ = false;
  mutable uint64_t sized_bytes_ = 0;
};

}  // namespace ds::hal::cuda
