// The CUDA device (docs/cuda.md): the driver through the dlopen'd symbol table, one GPU's
// primary context, a stream, an allocator over cuMemAlloc under the --gpu-memory-fraction
// budget, weights uploaded through pinned staging buffers, and executables that load the
// artifact's GPU code objects. Nothing here has run on a GPU yet.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hal/cuda/cuda_blaslt.h"
#include "hal/cuda/cuda_budget.h"
#include "hal/cuda/cuda_driver.h"
#include "hal/cuda/cuda_library.h"
#include "hal/cuda/cuda_upload.h"
#include "hal/device.h"

namespace ds::hal {

// The device for GPU target `target` ("sm_90a") on GPU options.device_ordinal. UNAVAILABLE
// "the artifact is for sm_90a and needs an NVIDIA GPU with its driver (libcuda.so.1 not found)"
// when there is no driver, no GPU, or no GPU of that ordinal (ModelRunner adds the file and
// what to do). Which of the artifact's code objects runs is decided at loadExecutable.
StatusOr<std::unique_ptr<Device>> createCudaDevice(const std::string& target,
                                                   const DeviceOptions& options);

namespace cuda {

struct CudaDeviceProps {
  std::string name;  // "NVIDIA H100 80GB HBM3"
  int ordinal = 0, major = 0, minor = 0, sm_count = 0;
  uint64_t total_bytes = 0;
};

// A rank's weights in one device allocation: a device address per tensor index.
class CudaWeights : public Weights {
 public:
  // The address of the weight a launch names (its rank-0 tensor index: this rank's shard).
  CUdeviceptr at(int32_t tensor) const { return by_index_[static_cast<size_t>(shard_of_[tensor])]; }
  // The address of artifact tensor `index` (scales of quantized shards), 0 when not uploaded.
  CUdeviceptr address(int32_t index) const { return by_index_[static_cast<size_t>(index)]; }
  uint64_t bytes() const { return storage_.bytes(); }
  // The scales of the weight a launch names (this rank's shard). scale: int4 group scales
  // (group_size > 0, zero points in `zero`, 0 = symmetric) or per-channel int8 / FP8 scales
  // (group_size 0); block_scale: FP8 block scales (DeepSeek-V3) and the block shape. 0: none.
  struct QuantScales {
    CUdeviceptr scale = 0, zero = 0;
    int64_t group_size = 0;
    CUdeviceptr block_scale = 0;
    int64_t block_rows = 0, block_cols = 0;
  };
  const QuantScales& quantAt(int32_t tensor) const {
    return quant_[static_cast<size_t>(shard_of_[tensor])];
  }

 private:
  friend class CudaDevice;
  DeviceBuffer storage_;
  std::vector<CUdeviceptr> by_index_;
  std::vector<int32_t> shard_of_;
  std::vector<QuantScales> quant_;  // per artifact tensor
};

class CudaDevice : public Device {
 public:
  static StatusOr<std::unique_ptr<CudaDevice>> create(const std::string& target,
                                                      const DeviceOptions& options);
  ~CudaDevice() override;
  const DeviceInfo& info() const override { return info_; }
  Allocator& allocator() override;
  Stream& stream() override;
  StatusOr<std::unique_ptr<Weights>> loadWeights(const artifact::Artifact& artifact,
                                                 const StepPlan& plan, int rank) override;
  StatusOr<std::shared_ptr<const Executable>> loadExecutable(
      const artifact::Artifact& artifact, const StepPlan& plan,
      std::shared_ptr<const Executable> peer) override;
  // planMemory's KV blocks, with what the device holds now (weights, modules) as the weights.
  StatusOr<int64_t> kvBlocksInBudget(const StepPlan& plan, int64_t max_step_tokens,
                                     uint64_t kv_block_bytes, size_t num_graph_buckets) override;
  // Tensor-parallel GPU ranks: an NCCL group (cuda_comm.h) over `ranks` (CUDA devices, one GPU
  // each), NCCL loaded with dlopen (nccl_library.h); UNAVAILABLE without it.
  StatusOr<std::unique_ptr<CommGroup>> createCommGroup(const std::vector<Device*>& ranks,
                                                       const CommPlacement& where) override;
  // ds_argmax_f32 of the kernel library (once an executable loaded it), the ids copied back.
  Status argmaxRows(const float* logits, int64_t rows, int64_t vocab, int32_t* out) override;
  // graphBatchBuckets(max_batch); the records are CUDA graphs (captureGraph, replayGraph).
  std::vector<int64_t> captureBuckets(int64_t max_batch) const override;
  bool hasCapture(int64_t bucket) const override { return hasGraph(bucket); }
  Status capture(int64_t bucket, const std::function<Status()>& launches) override {
    return captureGraph(bucket, launches);
  }
  Status replay(int64_t bucket) override { return replayGraph(bucket); }
  void dropCaptures() override;

  const CudaDriver& driver() const { return *driver_; }
  const CudaDeviceProps& props() const { return props_; }
  CUstream cuStream() const;
  // Makes this device's context current on the calling thread (ranks run on threads of their own).
  Status bind() const;
  // fraction x total: what the allocator hands out at most.
  uint64_t budgetBytes() const { return budget_; }
  // The split of the budget for a plan (docs/cuda.md): weights, activations for max_step_tokens,
  // the reserve for `num_graph_buckets` graphs, and the KV blocks the rest holds.
  StatusOr<MemoryBudget> planMemory(const StepPlan& plan, uint64_t weight_bytes,
                                    int64_t max_step_tokens, uint64_t kv_block_bytes,
                                    size_t num_graph_buckets) const;
  // Progress of loadWeights (ds-run's bar): bytes copied plus synthetic bytes filled (after the
  // copies, one ds_synthetic_fill call of <= 256 MiB at a time); called on the loading thread.
  void setUploadProgress(UploadProgress progress) { progress_ = std::move(progress); }
  // Staging buffer size per slot (two slots).
  static constexpr uint64_t kStagingBytes = 64ull << 20;

  // cuBLASLt (docs/cuda.md "cuBLASLt"): the library when this process can load it and
  // $DS_CUDA_BLASLT is not "0", else null - executables then keep every GEMM on the GEMV kernels,
  // and the first miss prints a one-line note on stderr (blasLtNote() keeps it). Loaded once.
  const BlasLtLibrary* blasLtLibrary();
  const std::string& blasLtNote() const { return blaslt_note_; }
  // This device's cuBLASLt handle, workspace (kBlasLtWorkspaceBytes) and descriptor cache,
  // created on the first call (the first GEMM, or before a graph capture); UNAVAILABLE without
  // the library.
  StatusOr<BlasLt*> blasLt();
  // The CUDA kernel library in this device's context, loaded on first use from the source
  // chooseLibrarySource picks ($DS_CUDA_KERNELS, the artifact's library objects, the build
  // tree) with every symbol of ds_cuda_kernel_symbols() resolved. Executables and the synthetic
  // weight fill share it; it lives until the device. `what` names who needs it in errors.
  StatusOr<const CudaLibrary*> kernelLibrary(const artifact::Artifact& artifact,
                                             const std::string& what) const;

  // Decode steps as CUDA graphs (docs/cuda.md): `capture` records everything `run` queues on
  // the stream into the graph of `bucket`; `replay` launches it. Graphs live until the device.
  Status captureGraph(int64_t bucket, const std::function<Status()>& run);
  Status replayGraph(int64_t bucket);
  bool hasGraph(int64_t bucket) const { return graphs_.count(bucket) != 0; }

 private:
  CudaDevice() = default;
  // Copies the plan's chunks; progress reports bytes copied of `progress_total` (copies plus
  // the synthetic bytes filled after them).
  // int4_symmetric per tensor: -1 copied as stored, 0/1 int4 rows repacked to the GPU storage
  // (ds_cuda_layout.h) with zero points / symmetric, in the staging buffer.
  Status uploadWeights(const UploadPlan& plan, const std::vector<const uint8_t*>& sources,
                       const std::vector<int8_t>& int4_symmetric,
                       CUdeviceptr base, uint64_t progress_total);

  struct State;
  const CudaDriver* driver_ = nullptr;
  CudaDeviceProps props_;
  DeviceInfo info_;
  DeviceOptions options_;
  uint64_t budget_ = 0;
  UploadProgress progress_;
  std::unique_ptr<State> state_;
  bool blaslt_tried_ = false;
  const BlasLtLibrary* blaslt_lib_ = nullptr;
  std::string blaslt_note_;
  std::unique_ptr<BlasLt> blaslt_;  // destroyed first in ~CudaDevice (it holds an allocation)
  std::map<int64_t, std::pair<CUgraph, CUgraphExec>> graphs_;
  mutable std::mutex library_mutex_;
  mutable std::unique_ptr<CudaLibrary> library_;
  DeviceBuffer argmax_out_;  // int32 [rows] of the last argmaxRows
};

}  // namespace cuda
}  // namespace ds::hal
