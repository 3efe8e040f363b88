// CudaDevice: discovery, the allocator over cuMemAlloc (per-kind accounting, the budget, out of
// memory as a status), the stream and its events, the kernel library and decode-step graphs
// (weight upload: cuda_weights.cpp). Not yet run on a GPU (docs/cuda.md).
#include "hal/cuda/cuda_device.h"

#include "hal/cuda/cuda_graphs.h"

#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>

#include "artifact/artifact_reader.h"
#include "artifact/synthetic.h"
#include "artifact/tensor_parallel.h"
#include "hal/cuda/cuda_executable.h"
#include "hal/cuda/cuda_synthetic.h"

namespace ds::hal {

namespace cuda {
namespace {

constexpr uint64_t kAlign = 256;  // cuMemAlloc's own alignment (the contract asks for 64)

class CudaAllocator : public Allocator {
 public:
  CudaAllocator(const CudaDevice& device) : device_(device) {}
  StatusOr<Allocation> allocate(uint64_t bytes, MemoryKind kind) override {
    const uint64_t rounded = (std::max<uint64_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
    const uint64_t used = total();
    if (rounded > device_.budgetBytes() || used + rounded > device_.budgetBytes())
      return Status(DS_OUT_OF_MEMORY,
                    "cannot allocate " + bytesText(rounded) + " of " + memoryKindName(kind) +
                        " on " + device_.info().name + ": " + bytesText(used) +
                        " of its budget of " + bytesText(device_.budgetBytes()) +
                        " are in use (--gpu-memory-fraction)");
    DS_RETURN_IF_ERROR(device_.bind());
    CUdeviceptr p = 0;
    Status st = device_.driver().check(device_.driver().cuMemAlloc(&p, rounded),
                                       "cuMemAlloc_v2(" + std::to_string(rounded) + " bytes of " +
                                           memoryKindName(kind) + ")");
    if (!st.isOk()) return st;
    // Activations start zeroed, as on the CPU; a KV pool is left as it is.
    if (kind == MemoryKind::Activations || kind == MemoryKind::Staging) {
      st = device_.driver().check(device_.driver().cuMemsetD8Async(p, 0, rounded, device_.cuStream()),
                                  "cuMemsetD8Async");
      if (!st.isOk()) {
        device_.driver().cuMemFree(p);
        return st;
      }
    }
    in_use_[static_cast<int>(kind)] += rounded;
    return Allocation{reinterpret_cast<void*>(static_cast<uintptr_t>(p)), rounded, kind};
  }
  void release(const Allocation& a) override {
    if (!a.data) return;
    // The stream may still read it: cuMemFree synchronizes the device for us (the driver
    // waits for outstanding work on the pointer), so no use-after-free on the GPU.
    if (device_.bind().isOk()) device_.driver().cuMemFree(reinterpret_cast<uintptr_t>(a.data));
    in_use_[static_cast<int>(a.kind)] -= a.bytes;
  }
  uint64_t bytesInUse(MemoryKind kind) const override { return in_use_[static_cast<int>(kind)]; }
  uint64_t total() const {
    uint64_t t = 0;
    for (const auto& u : in_use_) t += u.load();
    return t;
  }

 private:
  const CudaDevice& device_;
  std::atomic<uint64_t> in_use_[kNumMemoryKinds] = {};
};

class CudaEvent : public Event {
 public:
  CudaEvent(const CudaDriver& d, CUevent e) : driver_(d), event_(e) {}
  ~CudaEvent() override { driver_.cuEventDestroy(event_); }
  bool complete() const override { return driver_.cuEventQuery(event_) == CUDA_SUCCESS; }
  Status wait() override { return driver_.check(driver_.cuEventSynchronize(event_), "cuEventSynchronize"); }

 private:
  const CudaDriver& driver_;
  CUevent event_;
};

// Queues copies on one non-blocking stream. Host memory passed in may be pageable: the driver
// stages pageable host-to-device copies before returning, so callers may reuse their vectors;
// device-to-host copies into pageable memory complete before returning.
class CudaStream : public Stream {
 public:
  CudaStream(const CudaDevice& device, CUstream s) : device_(device), stream_(s) {}
  Status copyToDevice(void* dst, const void* src, uint64_t bytes) override {
    if (!bytes) return Status::ok();
    DS_RETURN_IF_ERROR(device_.bind());
    return device_.driver().check(
        device_.driver().cuMemcpyHtoDAsync(reinterpret_cast<uintptr_t>(dst), src, bytes, stream_),
        "cuMemcpyHtoDAsync_v2(" + std::to_string(bytes) + " bytes)");
  }
  Status copyToHost(void* dst, const void* src, uint64_t bytes) override {
    if (!bytes) return Status::ok();
    DS_RETURN_IF_ERROR(device_.bind());
    return device_.driver().check(
        device_.driver().cuMemcpyDtoHAsync(dst, reinterpret_cast<uintptr_t>(src), bytes, stream_),
        "cuMemcpyDtoHAsync_v2(" + std::to_string(bytes) + " bytes)");
  }
  StatusOr<std::unique_ptr<Event>> record() override {
    DS_RETURN_IF_ERROR(device_.bind());
    const CudaDriver& d = device_.driver();
    CUevent e = nullptr;
    DS_RETURN_IF_ERROR(d.check(d.cuEventCreate(&e, CU_EVENT_DISABLE_TIMING), "cuEventCreate"));
    auto event = std::make_unique<CudaEvent>(d, e);
    DS_RETURN_IF_ERROR(d.check(d.cuEventRecord(e, stream_), "cuEventRecord"));
    return std::unique_ptr<Event>(std::move(event));
  }
  Status synchronize() override {
    DS_RETURN_IF_ERROR(device_.bind());
    return device_.driver().check(device_.driver().cuStreamSynchronize(stream_), "cuStreamSynchronize");
  }
  CUstream handle() const { return stream_; }

 private:
  const CudaDevice& device_;
  CUstream stream_;
};

}  // namespace

struct CudaDevice::State {
  CUcontext context = nullptr;
  CUdevice device = 0;
  std::unique_ptr<CudaAllocator> allocator;
  std::unique_ptr<CudaStream> stream;
};

StatusOr<std::unique_ptr<CudaDevice>> CudaDevice::create(const std::string& target,
                                                         const DeviceOptions& options) {
  const std::string needs = "the artifact is for " + target + " and needs an NVIDIA GPU with its driver (";
  const std::string library =
      options.cuda_driver_library.empty() ? kCudaDriverLibrary : options.cuda_driver_library;
  StatusOr<const CudaDriver*> driver = loadCudaDriver(library);
  if (!driver.isOk()) return Status(DS_UNAVAILABLE, needs + driver.status().message() + ")");
  const CudaDriver& d = **driver;
  int count = 0;
  Status st = d.check(d.cuDeviceGetCount(&count), "cuDeviceGetCount");
  if (!st.isOk()) return Status(DS_UNAVAILABLE, needs + st.message() + ")");
  if (count == 0) return Status(DS_UNAVAILABLE, needs + "the driver sees no GPU)");
  if (options.device_ordinal < 0 || options.device_ordinal >= count)
    return Status(DS_UNAVAILABLE, "GPU " + std::to_string(options.device_ordinal) +
                                      " was asked for but the driver sees " + std::to_string(count) +
                                      " GPU(s) (ordinals 0.." + std::to_string(count - 1) + ")");
  if (!(options.gpu_memory_fraction > 0.0 && options.gpu_memory_fraction <= 1.0))
    return invalidArgument("--gpu-memory-fraction must be in (0, 1], got " +
                           std::to_string(options.gpu_memory_fraction));
  std::unique_ptr<CudaDevice> dev(new CudaDevice());
  dev->driver_ = &d;
  dev->options_ = options;
  dev->state_ = std::make_unique<State>();
  State& s = *dev->state_;
  CudaDeviceProps& p = dev->props_;
  p.ordinal = options.device_ordinal;
  DS_RETURN_IF_ERROR(d.check(d.cuDeviceGet(&s.device, p.ordinal), "cuDeviceGet"));
  char name[256] = {};
  DS_RETURN_IF_ERROR(d.check(d.cuDeviceGetName(name, sizeof name - 1, s.device), "cuDeviceGetName"));
  p.name = name;
  DS_RETURN_IF_ERROR(d.check(d.cuDeviceGetAttribute(&p.major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, s.device),
                             "cuDeviceGetAttribute(compute capability major)"));
  DS_RETURN_IF_ERROR(d.check(d.cuDeviceGetAttribute(&p.minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, s.device),
                             "cuDeviceGetAttribute(compute capability minor)"));
  DS_RETURN_IF_ERROR(d.check(d.cuDeviceGetAttribute(&p.sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, s.device),
                             "cuDeviceGetAttribute(multiprocessor count)"));
  size_t total = 0;
  DS_RETURN_IF_ERROR(d.check(d.cuDeviceTotalMem(&total, s.device), "cuDeviceTotalMem_v2"));
  p.total_bytes = total;
  // The primary context: the one cuBLASLt, NCCL and any cudart user in the process share.
  DS_RETURN_IF_ERROR(d.check(d.cuDevicePrimaryCtxRetain(&s.context, s.device), "cuDevicePrimaryCtxRetain"));
  DS_RETURN_IF_ERROR(dev->bind());
  dev->budget_ = static_cast<uint64_t>(options.gpu_memory_fraction * static_cast<double>(total));
  CUstream stream = nullptr;
  DS_RETURN_IF_ERROR(d.check(d.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate"));
  s.stream = std::make_unique<CudaStream>(*dev, stream);
  s.allocator = std::make_unique<CudaAllocator>(*dev);
  dev->info_.name = "cuda:" + std::to_string(p.ordinal) + " (" + p.name + ", sm_" +
                    std::to_string(p.major * 10 + p.minor) + ")";
  dev->info_.target = target;
  dev->info_.host_visible = false;
  return dev;
}

CudaDevice::~CudaDevice() {
  if (!state_ || !driver_) return;
  if (bind().isOk() && state_->stream) driver_->cuStreamSynchronize(state_->stream->handle());
  blaslt_.reset();  // its handle and workspace, while the context and the allocator live
  for (auto& [bucket, g] : graphs_) {
    driver_->cuGraphExecDestroy(g.second);
    driver_->cuGraphDestroy(g.first);
  }
  if (state_->stream) driver_->cuStreamDestroy(state_->stream->handle());
  if (library_ && library_->module) driver_->cuModuleUnload(library_->module);
  // Allocations made through the allocator are owned by DeviceBuffers of the executor, which are
  // gone by now (the device is the last thing a RankExecutor frees).
  if (state_->context) driver_->cuDevicePrimaryCtxRelease(state_->device);
}

Allocator& CudaDevice::allocator() { return *state_->allocator; }
Stream& CudaDevice::stream() { return *state_->stream; }
CUstream CudaDevice::cuStream() const { return state_->stream ? state_->stream->handle() : nullptr; }

Status CudaDevice::bind() const {
  return driver_->check(driver_->cuCtxSetCurrent(state_->context), "cuCtxSetCurrent");
}

StatusOr<MemoryBudget> CudaDevice::planMemory(const StepPlan& plan, uint64_t weight_bytes,
                                              int64_t max_step_tokens, uint64_t kv_block_bytes,
                                              size_t num_graph_buckets) const {
  DS_RETURN_IF_ERROR(bind());
  size_t free_bytes = 0, total = 0;
  DS_RETURN_IF_ERROR(driver_->check(driver_->cuMemGetInfo(&free_bytes, &total), "cuMemGetInfo_v2"));
  BudgetRequest r;
  r.total_bytes = props_.total_bytes;
  // What this device already holds counts as free for its own budget.
  r.free_bytes = free_bytes + state_->allocator->total();
  r.fraction = options_.gpu_memory_fraction;
  r.weight_bytes = weight_bytes;
  r.activation_bytes = activationBytes(plan, max_step_tokens);
  r.reserve_bytes = reserveBytes(num_graph_buckets);
  r.kv_block_bytes = kv_block_bytes;
  StatusOr<MemoryBudget> b = splitMemoryBudget(r);
  if (!b.isOk()) return Status(b.status().code(), info_.name + ": " + b.status().message());
  return b;
}

StatusOr<int64_t> CudaDevice::kvBlocksInBudget(const StepPlan& plan, int64_t max_step_tokens,
                                               uint64_t kv_block_bytes, size_t num_graph_buckets) {
  StatusOr<MemoryBudget> b = planMemory(plan, state_->allocator->total(), max_step_tokens,
                                        kv_block_bytes, num_graph_buckets);
  if (!b.isOk()) return b.status();
  return b->kv_blocks;
}

StatusOr<const CudaLibrary*> CudaDevice::kernelLibrary(const artifact::Artifact& artifact,
                                                       const std::string& what) const {
  std::lock_guard<std::mutex> lock(library_mutex_);
  if (library_) return library_.get();
  DS_RETURN_IF_ERROR(bind());
  StatusOr<LibrarySource> src =
      chooseLibrarySource(libraryObjects(artifact), std::getenv("DS_CUDA_KERNELS"),
                          buildTreeLibraryPath(), props_.major, props_.minor,
                          props_.name + ", " + info_.name);
  if (!src.isOk())
    return Status(src.status().code(), what + " needs the CUDA kernel library: " + src.status().message());
  const std::string source = src->describe();
  std::vector<uint8_t> file;
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  if (src->kind == LibrarySource::Kind::Artifact) {
    const fb::CodeObject* obj = artifact.meta()->code()->Get(static_cast<uint32_t>(src->code_object));
    data = artifact.segmentData(obj->segment());
    size = obj->size();
  } else {
    std::ifstream in(src->path, std::ios::binary);
    if (!in)
      return Status(DS_UNAVAILABLE,
                    what + " needs the CUDA kernel library: " + source + " cannot be read" +
                        (src->tried.empty() ? std::string() : " (" + src->tried + ")") +
                        "; set DS_CUDA_KERNELS to ds_cuda_kernels.fatbin or recompile the artifact "
                        "with ds-compile --cuda-kernels DIR");
    file.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    data = file.data();
    size = file.size();
  }
  if (!data || size == 0) return dataLoss(what + ": the CUDA kernel library, " + source + ", is empty");
  StatusOr<CUmodule> m = loadCudaModule(*driver_, data, size, "the CUDA kernel library, " + source);
  if (!m.isOk()) return m.status();
  auto lib = std::make_unique<CudaLibrary>();
  lib->module = *m;
  lib->source = source;
  // A library embedded by an older ds-compile lacks the kernels added since: those are recorded
  // as missing and refused by name when a launch needs them; everything else runs.
  for (const char* const* sym = ds_cuda_kernel_symbols(); *sym; ++sym) {
    CUfunction f = nullptr;
    const CUresult r = driver_->cuModuleGetFunction(&f, lib->module, *sym);
    if (r == CUDA_ERROR_NOT_FOUND) {
      lib->missing.push_back(*sym);
      continue;
    }
    Status st = driver_->check(r, std::string("cuModuleGetFunction(") + *sym + ") in " + source);
    if (!st.isOk()) {
      driver_->cuModuleUnload(lib->module);
      return st;
    }
    lib->functions[*sym] = f;
  }
  if (lib->functions.empty()) {
    driver_->cuModuleUnload(lib->module);
    return dataLoss(what + ": the CUDA kernel library, " + source + ", has none of the kernels");
  }
  library_ = std::move(lib);
  return library_.get();
}

StatusOr<std::shared_ptr<const Executable>> CudaDevice::loadExecutable(
    const artifact::Artifact& artifact, const StepPlan& plan, std::shared_ptr<const Executable>) {
  // Modules belong to a context: each rank's device (its own GPU) loads its own, no peer reuse.
  DS_RETURN_IF_ERROR(bind());
  StatusOr<std::shared_ptr<const CudaExecutable>> exe = CudaExecutable::load(*this, artifact, plan);
  if (!exe.isOk()) return exe.status();
  return std::shared_ptr<const Executable>(std::move(exe).value());
}

const BlasLtLibrary* CudaDevice::blasLtLibrary() {
  if (blaslt_tried_) return blaslt_lib_;
  blaslt_tried_ = true;
  if (const char* env = std::getenv("DS_CUDA_BLASLT"); env && std::string(env) == "0") {
    blaslt_note_ = "cuBLASLt is off (DS_CUDA_BLASLT=0)";
    return nullptr;
  }
  StatusOr<const BlasLtLibrary*> lib = loadBlasLt();
  if (lib.isOk()) return blaslt_lib_ = *lib;
  blaslt_note_ = lib.status().message() + ": GEMMs of more than " + std::to_string(kGemvMaxRows) +
                 " rows run on the GEMV kernels (slower prefill)";
  static std::once_flag once;  // one note per process, not per rank
  std::call_once(once, [&] { std::fprintf(stderr, "ds: note: %s\n", blaslt_note_.c_str()); });
  return nullptr;
}

StatusOr<BlasLt*> CudaDevice::blasLt() {
  if (blaslt_) return blaslt_.get();
  const BlasLtLibrary* lib = blasLtLibrary();
  if (!lib) return Status(DS_UNAVAILABLE, blaslt_note_);
  DS_RETURN_IF_ERROR(bind());
  StatusOr<std::unique_ptr<BlasLt>> b = BlasLt::create(*lib, allocator(), kBlasLtWorkspaceBytes);
  if (!b.isOk()) {
    // The library loads but cannot start here (a cuBLASLt newer than the driver, no memory for
    // its workspace): this device keeps every GEMM on the GEMV kernels, with one note.
    blaslt_lib_ = nullptr;
    blaslt_note_ = info_.name + ": " + b.status().message() + ": GEMMs of more than " +
                   std::to_string(kGemvMaxRows) + " rows run on the GEMV kernels (slower prefill)";
    static std::once_flag once;
    std::call_once(once, [&] { std::fprintf(stderr, "ds: note: %s\n", blaslt_note_.c_str()); });
    return Status(DS_UNAVAILABLE, blaslt_note_);
  }
  blaslt_ = std::move(b).value();
  return blaslt_.get();
}

Status CudaDevice::argmaxRows(const float* logits, int64_t rows, int64_t vocab, int32_t* out) {
  const CudaLibrary* lib = nullptr;
  {
    std::lock_guard<std::mutex> lock(library_mutex_);
    lib = library_.get();
  }
  if (!lib) return unsupported("the CUDA kernel library is not loaded yet");
  auto fn = lib->functions.find("ds_argmax_f32");
  if (fn == lib->functions.end()) return unsupported("the CUDA kernel library has no ds_argmax_f32");
  if (rows <= 0) return Status::ok();
  if (vocab <= 0 || vocab > INT32_MAX || rows > INT32_MAX)
    return invalidArgument("argmax over " + std::to_string(rows) + " rows of " + std::to_string(vocab));
  DS_RETURN_IF_ERROR(bind());
  DS_RETURN_IF_ERROR(argmax_out_.reserve(allocator(), static_cast<uint64_t>(rows) * 4, MemoryKind::Staging));
  ds_cuda_argmax_params p{};
  p.x = reinterpret_cast<uintptr_t>(logits);
  p.out = reinterpret_cast<uintptr_t>(argmax_out_.data());
  p.rows = static_cast<int32_t>(rows);
  p.vocab = static_cast<int32_t>(vocab);
  p.x_stride = static_cast<int32_t>(vocab);
  p.dtype = DS_CUDA_F32;
  ds_cuda_plan plan;
  if (const char* e = ds_cuda_plan_argmax(&p, &plan)) return invalidArgument(std::string("argmax: ") + e);
  void* args[] = {&p};
  const ds_cuda_launch& l = plan.launches[0];
  DS_RETURN_IF_ERROR(driver_->check(
      driver_->cuLaunchKernel(fn->second, l.grid[0], l.grid[1], l.grid[2], l.block[0], l.block[1],
                              l.block[2], l.shared_bytes, cuStream(), args, nullptr),
      "cuLaunchKernel(ds_argmax_f32)"));
  DS_RETURN_IF_ERROR(stream().copyToHost(out, argmax_out_.data(), static_cast<uint64_t>(rows) * 4));
  return stream().synchronize();
}

std::vector<int64_t> CudaDevice::captureBuckets(int64_t max_batch) const {
  return graphBatchBuckets(max_batch);
}

void CudaDevice::dropCaptures() {
  if (graphs_.empty() || !bind().isOk()) return;
  driver_->cuStreamSynchronize(cuStream());  // a replay in flight still reads them
  for (auto& [bucket, g] : graphs_) {
    driver_->cuGraphExecDestroy(g.second);
    driver_->cuGraphDestroy(g.first);
  }
  graphs_.clear();
}

Status CudaDevice::captureGraph(int64_t bucket, const std::function<Status()>& run) {
  DS_RETURN_IF_ERROR(bind());
  const CudaDriver& d = *driver_;
  if (hasGraph(bucket)) return Status::ok();
  // cuBLASLt's handle and workspace are made before the capture: allocating (and the
  // workspace's memset) must not happen inside one.
  if (blasLtLibrary()) {
    StatusOr<BlasLt*> blas = blasLt();
    // UNAVAILABLE: it cannot start here, and the steps recorded use GEMV kernels instead.
    if (!blas.isOk() && blas.status().code() != DS_UNAVAILABLE) return blas.status();
  }
  DS_RETURN_IF_ERROR(d.check(d.cuStreamBeginCapture(cuStream(), CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
                             "cuStreamBeginCapture_v2(bucket " + std::to_string(bucket) + ")"));
  Status ran = run();
  CUgraph graph = nullptr;
  // Capture ends even when `run` failed, so the stream is usable again.
  Status ended = d.check(d.cuStreamEndCapture(cuStream(), &graph), "cuStreamEndCapture");
  if (!ran.isOk() || !ended.isOk()) {
    if (graph) d.cuGraphDestroy(graph);
    return ran.isOk() ? ended : ran;
  }
  CUgraphExec exec = nullptr;
  Status inst = d.check(d.cuGraphInstantiate(&exec, graph, 0), "cuGraphInstantiateWithFlags");
  if (!inst.isOk()) {
    d.cuGraphDestroy(graph);
    return inst;
  }
  graphs_[bucket] = {graph, exec};
  return Status::ok();
}

Status CudaDevice::replayGraph(int64_t bucket) {
  auto it = graphs_.find(bucket);
  if (it == graphs_.end())
    return internalError("no CUDA graph was captured for batch bucket " + std::to_string(bucket));
  DS_RETURN_IF_ERROR(bind());
  return driver_->check(driver_->cuGraphLaunch(it->second.second, cuStream()),
                        "cuGraphLaunch(bucket " + std::to_string(bucket) + ")");
}

}  // namespace cuda

StatusOr<std::unique_ptr<Device>> createCudaDevice(const std::string& target,
                                                   const DeviceOptions& options) {
  StatusOr<std::unique_ptr<cuda::CudaDevice>> d = cuda::CudaDevice::create(target, options);
  if (!d.isOk()) return d.status();
  return std::unique_ptr<Device>(std::move(d).value());
}

}  // namespace ds::hal
