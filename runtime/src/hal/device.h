// The device layer (HAL): what the plan executor needs from a backend, in the spirit of IREE's
// HAL and ggml-backend. A Device owns memory (an allocator per memory kind), a stream that
// orders copies and launches, and binds an artifact's plan to kernels (an Executable: the
// library kernel table indexed by the launch ABI's kinds, plus the artifact's generated code for
// this target). hal/cpu implements it with kernels/cpu; docs/adding_a_backend.md lists exactly
// what a new backend implements. LLVM-free.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "hal/launch.h"

namespace ds {
namespace artifact {
class Artifact;
}
class CommGroup;
struct CommPlacement;

namespace hal {

// What an allocation holds (devices may place kinds differently; the allocator accounts per kind).
enum class MemoryKind : uint8_t { Weights, KVCache, Activations, Staging };
constexpr int kNumMemoryKinds = 4;
const char* memoryKindName(MemoryKind kind);

// Device memory: `data` is a device address (a host address on the CPU device). Contents are
// undefined after allocate (a large KV pool is never touched before use). Alignment: 64 bytes.
struct Allocation {
  void* data = nullptr;
  uint64_t bytes = 0;
  MemoryKind kind = MemoryKind::Activations;
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  // RESOURCE_EXHAUSTED naming the bytes and the kind when the device cannot hold it (never throws).
  virtual StatusOr<Allocation> allocate(uint64_t bytes, MemoryKind kind) = 0;
  virtual void release(const Allocation& allocation) = 0;
  virtual uint64_t bytesInUse(MemoryKind kind) const = 0;
};

// An allocation released when it goes out of scope (grown by reallocating: contents are lost).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(Allocator* a, Allocation m) : allocator_(a), mem_(m) {}
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { reset(); }
  void reset();
  // Makes the buffer at least `bytes` large (a new allocation when it grows; old contents lost).
  Status reserve(Allocator& allocator, uint64_t bytes, MemoryKind kind);
  void* data() const { return mem_.data; }
  uint64_t bytes() const { return mem_.bytes; }

 private:
  Allocator* allocator_ = nullptr;
  Allocation mem_;
};

// A point in a stream's work; complete() once everything before it has run.
class Event {
 public:
  virtual ~Event() = default;
  virtual bool complete() const = 0;
  virtual Status wait() = 0;  // blocks the calling host thread
};

// Orders copies and kernel launches on one device (one per rank). The CPU stream runs each call
// before returning; a GPU stream queues them.
class Stream {
 public:
  virtual ~Stream() = default;
  virtual Status copyToDevice(void* dst, const void* src, uint64_t bytes) = 0;
  virtual Status copyToHost(void* dst, const void* src, uint64_t bytes) = 0;
  virtual StatusOr<std::unique_ptr<Event>> record() = 0;
  virtual Status synchronize() = 0;
};

// One rank's weights as its device's kernels read them (CPU: views into the artifact mapping).
class Weights {
 public:
  virtual ~Weights() = default;
};

class Device;

// An artifact's plan bound to a device's kernels: the library kernel table (one entry per launch
// ABI kind; a kind a device lacks is an error at load, naming the launch) and per-launch state
// built once (rope tables, generated code). Immutable after load and shared by every rank of a
// runner whose devices are alike (the CPU's generated code is loaded once, not once per rank).
class Executable {
 public:
  virtual ~Executable() = default;
  // Runs one launch on `device` (a device of the kind that loaded this executable).
  virtual Status launch(Device& device, const LaunchArgs& args) const = 0;
  // Launches of one step served by generated code (for reports).
  virtual size_t numGenerated() const = 0;
  // Bumped whenever a buffer the executable's launches read or write is reallocated (a grown
  // workspace): recorded steps (Device::capture) made before then name freed memory.
  virtual uint64_t bufferEpoch() const { return 0; }
  // Sizes, once, what a step's launches need (`launches` calls launch() for each; nothing runs
  // while it sizes), so the step itself allocates nothing: no stream synchronization mid-step,
  // no epoch bump that would drop recorded steps. Default: nothing to size (the CPU).
  virtual Status reserveFor(Device& device, const std::function<Status()>& launches) const {
    (void)device, (void)launches;
    return Status::ok();
  }
};

// How a device binds artifacts (the same for every rank of a runner).
struct DeviceOptions {
  // False: the artifact's generated native code is never loaded (never mapped, no dlopen, its
  // ELF constructors never run); every launch it would serve runs the device's library kernels
  // and epilogues instead, which give the same bits (docs/codegen.md). For artifacts from
  // elsewhere: a .dsa with host code is an executable (docs/artifact.md).
  bool allow_native_code = true;
  // GPU devices (hal/cuda, docs/cuda.md): which GPU, and the share of its memory this device
  // may allocate (vLLM's --gpu-memory-utilization; weights + activations + KV + reserve).
  int device_ordinal = 0;
  double gpu_memory_fraction = 0.9;
  // The CUDA driver library ("": libcuda.so.1); tests point it elsewhere.
  std::string cuda_driver_library;
};

struct DeviceInfo {
  std::string name;            // "cpu", "cuda:0 (NVIDIA H100 80GB HBM3, sm_90a)"
  std::string target;          // the artifact target it runs ("host", "sm_90a")
  bool host_visible = false;   // allocations are host pointers: views can be read in place
};

class Device {
 public:
  virtual ~Device() = default;
  virtual const DeviceInfo& info() const = 0;
  virtual Allocator& allocator() = 0;
  virtual Stream& stream() = 0;
  // This rank's weights (its tensor-parallel shards) in the form the device's kernels read.
  virtual StatusOr<std::unique_ptr<Weights>> loadWeights(const artifact::Artifact& artifact,
                                                         const StepPlan& plan, int rank) = 0;
  // Binds the plan to this device's kernels. `peer` is another rank's executable (null for the
  // first rank): a device may reuse it instead of loading the code again.
  virtual StatusOr<std::shared_ptr<const Executable>> loadExecutable(
      const artifact::Artifact& artifact, const StepPlan& plan,
      std::shared_ptr<const Executable> peer) = 0;
  // Devices with a memory budget of their own (GPUs, docs/cuda.md "Memory budget"): how many KV
  // blocks of `kv_block_bytes` (all layers of this rank) fit next to what the device holds
  // (weights, code), the activations of a `max_step_tokens` step and its reserve for
  // `num_graph_buckets` CUDA graphs; an error naming the numbers when none fits. 0: no budget
  // (the CPU: the caller sizes the cache from a byte count).
  // Recorded steps (CUDA graphs, docs/cuda.md): the decode batch sizes this device replays for a
  // runner of at most `max_batch` sequences (empty: none, the CPU). exec pads a pure decode step
  // to the smallest bucket >= its batch, into buffers that keep their addresses, and calls
  // hasCapture/capture/replay.
  virtual std::vector<int64_t> captureBuckets(int64_t max_batch) const {
    (void)max_batch;
    return {};
  }
  // Whether `bucket` has a record; capture records what `launches` queues (nothing runs);
  // replay queues the record. exec runs a bucket's first step eagerly, then captures it.
  // dropCaptures forgets every record (the buffers they name moved).
  virtual bool hasCapture(int64_t bucket) const {
    (void)bucket;
    return false;
  }
  virtual Status capture(int64_t bucket, const std::function<Status()>& launches) {
    (void)bucket, (void)launches;
    return unsupported("this device does not record steps");
  }
  virtual Status replay(int64_t bucket) {
    (void)bucket;
    return unsupported("this device does not record steps");
  }
  virtual void dropCaptures() {}
  // Greedy sampling on the device: out[r] (host memory) = the lowest index of the maximum of
  // the f32 logits row r (`logits` in this device's memory, rows x vocab, contiguous), as
  // torch.argmax and the host greedy sampler pick it, NaN never winning. UNSUPPORTED where the
  // device has no such kernel (the CPU: its rows are host memory, the sampler reads them).
  virtual Status argmaxRows(const float* logits, int64_t rows, int64_t vocab, int32_t* out) {
    (void)logits, (void)rows, (void)vocab, (void)out;
    return unsupported("no device argmax");
  }
  // Tensor parallelism (plan.tp_size > 1): the group joining `ranks` (this process's devices of
  // this kind, this one first; `where` places them among all ranks and processes), communicator i
  // for ranks[i], whose collectives are ordered on that device's stream. Default (the CPU): the
  // in-process group over host memory, or between processes one rank each (createProcessGroup);
  // the CUDA device joins its GPUs over NCCL (docs/tensor_parallel.md "Collectives on GPUs").
  virtual StatusOr<std::unique_ptr<CommGroup>> createCommGroup(const std::vector<Device*>& ranks,
                                                               const CommPlacement& where);
  virtual StatusOr<int64_t> kvBlocksInBudget(const StepPlan& plan, int64_t max_step_tokens,
                                             uint64_t kv_block_bytes, size_t num_graph_buckets) {
    (void)plan, (void)max_step_tokens, (void)kv_block_bytes, (void)num_graph_buckets;
    return int64_t{0};
  }
};

}  // namespace hal
}  // namespace ds
