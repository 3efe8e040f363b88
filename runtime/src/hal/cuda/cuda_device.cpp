// CudaDevice: discovery, the allocator over cuMemAlloc (per-kind accounting, the budget, out of
// memory as a status), the stream and its events, weight upload through pinned staging buffers,
// and decode-step graphs. Not yet run on a GPU (docs/cuda.md).
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

// Pinned host memory (cuMemHostAlloc): DMA reads it directly, so copies from it overlap host work.
struct PinnedBuffer {
  const CudaDriver* driver = nullptr;
  void* data = nullptr;
  ~PinnedBuffer() {
    if (data) driver->cuMemFreeHost(data);
  }
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

StatusOr<std::unique_ptr<Weights>> CudaDevice::loadWeights(const artifact::Artifact& artifact,
                                                           const StepPlan&, int rank) {
  if (artifact.meta()->int8_activations() || artifact.meta()->bf16_activations())
    return unsupported(artifact.path() + ": built with --quant-act " +
                       (artifact.meta()->int8_activations() ? "int8" : "bf16") +
                       ", which only the host kernels implement; rebuild without it for the GPU");
  const auto* tensors = artifact.meta()->tensors();
  const uint32_t n = tensors ? tensors->size() : 0;
  auto w = std::unique_ptr<CudaWeights>(new CudaWeights());
  w->shard_of_.resize(n);
  // This rank's shards and the scale tensors they name: everything its kernels may read.
  std::set<uint32_t> wanted;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t j = shardIndex(artifact, i, rank);
    w->shard_of_[i] = static_cast<int32_t>(j);
    wanted.insert(j);
    const fb::Tensor* t = tensors->Get(j);
    for (int32_t extra : {t->scale(), t->qscale(), t->qzero()})
      if (extra >= 0 && static_cast<uint32_t>(extra) < n) wanted.insert(static_cast<uint32_t>(extra));
  }
  std::vector<uint32_t> order(wanted.begin(), wanted.end());
  std::vector<uint64_t> sizes;
  std::vector<const uint8_t*> sources;
  std::vector<bool> copied;  // false: synthetic, filled on the device after the upload
  std::vector<int8_t> int4(order.size(), -1);
  w->int4_.assign(n, {});
  for (uint32_t j : order) {
    const fb::Tensor* t = tensors->Get(j);
    if (t->quant() == fb::QuantKind_Int4Group) {
      // The GPU int4 storage is made as the rows are staged (whole 32-bit words: cols % 8 == 0).
      const int64_t cols = t->shape() && t->shape()->size() ? t->shape()->Get(t->shape()->size() - 1) : 0;
      if (cols % 8 != 0 || t->nbytes() % 4 != 0)
        return unsupported(artifact.path() + ": tensor '" + t->name()->str() + "' has int4 rows of " +
                           std::to_string(cols) + " columns; the GPU kernels need a multiple of 8");
      int4[sources.size()] = t->qzero() < 0 ? 1 : 0;
    }
    const bool synthetic = artifact::isSynthetic(*t);
    const uint8_t* data = synthetic ? nullptr : artifact.tensorData(*t);
    if (!synthetic && !data && t->nbytes() > 0)
      return dataLoss(artifact.path() + ": tensor '" + t->name()->str() + "' has no data in the artifact");
    sizes.push_back(t->nbytes());
    sources.push_back(data);
    copied.push_back(!synthetic);
  }
  StatusOr<UploadPlan> plan = planWeightUpload(sizes, kStagingBytes, 2, 256, copied);
  if (!plan.isOk()) return plan.status();
  // Synthetic tensors (--weights random): their place in the layout, then ds_synthetic_fill.
  std::vector<SyntheticFillTensor> synthetic;
  for (size_t k = 0; k < order.size(); ++k) {
    if (copied[k]) continue;
    const fb::Tensor* t = tensors->Get(order[k]);
    SyntheticFillTensor s;
    s.tensor = order[k];
    s.name = t->name()->str();
    if (t->shape()) s.shape.assign(t->shape()->begin(), t->shape()->end());
    s.nbytes = t->nbytes();
    s.spec = artifact::syntheticSpec(*t);
    s.offset = plan->offsets[k];
    synthetic.push_back(std::move(s));
  }
  const ds_cuda_device_limits limits = {props_.sm_count, 48 << 10};
  StatusOr<SyntheticFillPlan> fill =
      planSyntheticFill(synthetic, artifact.meta()->synthetic_seed(), limits);
  if (!fill.isOk()) return Status(fill.status().code(), artifact.path() + ": " + fill.status().message());
  DS_RETURN_IF_ERROR(w->storage_.reserve(allocator(), std::max<uint64_t>(plan->total_bytes, 1),
                                         MemoryKind::Weights));
  const CUdeviceptr base = reinterpret_cast<uintptr_t>(w->storage_.data());
  w->by_index_.assign(n, 0);
  for (size_t k = 0; k < order.size(); ++k) w->by_index_[order[k]] = base + plan->offsets[k];
  uint64_t copy_bytes = 0;
  for (const UploadChunk& c : plan->chunks) copy_bytes += c.bytes;
  const uint64_t progress_total = copy_bytes + fill->total_bytes;
  for (uint32_t j : order) {
    const fb::Tensor* t = tensors->Get(j);
    if (t->scale() >= 0 && t->block() && t->block()->size() == 2) {  // FP8 block scales
      CudaWeights::Int4Groups& q = w->int4_[j];
      q.block_scale = w->by_index_[static_cast<size_t>(t->scale())];
      q.block_rows = t->block()->Get(0);
      q.block_cols = t->block()->Get(1);
    }
    if (t->quant() == fb::QuantKind_Int8PerChannel || t->quant() == fb::QuantKind_Fp8PerChannel) {
      // --quant w8 / fp8: one f32 scale per output row (group_size 0 marks per-channel).
      w->int4_[j].scale = t->qscale() >= 0 ? w->by_index_[static_cast<size_t>(t->qscale())] : 0;
      continue;
    }
    if (t->quant() != fb::QuantKind_Int4Group) continue;
    CudaWeights::Int4Groups& q = w->int4_[j];
    q.scale = t->qscale() >= 0 ? w->by_index_[static_cast<size_t>(t->qscale())] : 0;
    q.zero = t->qzero() >= 0 ? w->by_index_[static_cast<size_t>(t->qzero())] : 0;
    q.group_size = t->group_size();
  }
  DS_RETURN_IF_ERROR(uploadWeights(*plan, sources, int4, base, progress_total));
  if (!fill->calls.empty()) {
    // The kernel library (the artifact's, docs/cuda.md) is loaded here if no executable has yet.
    StatusOr<const CudaLibrary*> lib = kernelLibrary(artifact, artifact.path() + ": the synthetic weights");
    if (!lib.isOk()) return lib.status();
    auto fn = (*lib)->functions.find("ds_synthetic_fill");
    if (fn == (*lib)->functions.end()) return internalError("the CUDA kernel library has no ds_synthetic_fill");
    uint64_t done = copy_bytes;
    for (const SyntheticFillCall& c : fill->calls) {
      ds_cuda_synthetic_fill_params params = c.params;
      params.dst = base + c.offset;
      void* args[] = {&params};
      const ds_cuda_launch& l = c.launch;
      DS_RETURN_IF_ERROR(driver_->check(
          driver_->cuLaunchKernel(fn->second, l.grid[0], l.grid[1], l.grid[2], l.block[0], l.block[1],
                                  l.block[2], l.shared_bytes, cuStream(), args, nullptr),
          "cuLaunchKernel(ds_synthetic_fill) for tensor " + std::to_string(c.tensor)));
      // Synchronized per call (at most 256 MiB, milliseconds) so the progress is what is done.
      DS_RETURN_IF_ERROR(driver_->check(driver_->cuStreamSynchronize(cuStream()),
                                        "cuStreamSynchronize(synthetic weights)"));
      done += c.bytes;
      if (progress_) progress_(done, progress_total);
    }
    // Synthetic int4 rows are filled in the host's storage: repacked in place like uploads.
    auto repack = (*lib)->functions.find("ds_i4_to_gpu");
    for (const SyntheticFillTensor& s : synthetic) {
      const fb::Tensor* t = tensors->Get(s.tensor);
      if (t->quant() != fb::QuantKind_Int4Group) continue;
      if (repack == (*lib)->functions.end()) return internalError("the CUDA kernel library has no ds_i4_to_gpu");
      ds_cuda_i4_to_gpu_params params{};
      params.data = base + s.offset;
      params.words = s.nbytes / 4;
      params.symmetric = t->qzero() < 0 ? 1 : 0;
      ds_cuda_plan rp;
      if (const char* e = ds_cuda_plan_i4_to_gpu(&params, &limits, &rp))
        return invalidArgument(artifact.path() + ": tensor '" + s.name + "': " + e);
      void* args[] = {&params};
      const ds_cuda_launch& l = rp.launches[0];
      DS_RETURN_IF_ERROR(driver_->check(
          driver_->cuLaunchKernel(repack->second, l.grid[0], l.grid[1], l.grid[2], l.block[0],
                                  l.block[1], l.block[2], l.shared_bytes, cuStream(), args, nullptr),
          "cuLaunchKernel(ds_i4_to_gpu) for tensor '" + s.name + "'"));
    }
    DS_RETURN_IF_ERROR(driver_->check(driver_->cuStreamSynchronize(cuStream()),
                                      "cuStreamSynchronize(int4 repack)"));
  }
  return std::unique_ptr<Weights>(std::move(w));
}

Status CudaDevice::uploadWeights(const UploadPlan& plan, const std::vector<const uint8_t*>& sources,
                                 const std::vector<int8_t>& int4_symmetric, CUdeviceptr base,
                                 uint64_t progress_total) {
  DS_RETURN_IF_ERROR(bind());
  const CudaDriver& d = *driver_;
  const int slots = std::min<int>(plan.num_slots, static_cast<int>(plan.chunks.size()));
  std::vector<PinnedBuffer> staging(static_cast<size_t>(slots));
  std::vector<CUevent> done(static_cast<size_t>(slots), nullptr);
  struct Events {  // destroyed on every path
    const CudaDriver& d;
    std::vector<CUevent>& e;
    ~Events() {
      for (CUevent x : e)
        if (x) d.cuEventDestroy(x);
    }
  } guard{d, done};
  for (int s = 0; s < slots; ++s) {
    staging[s].driver = &d;
    DS_RETURN_IF_ERROR(d.check(d.cuMemHostAlloc(&staging[s].data, plan.staging_bytes, CU_MEMHOSTALLOC_PORTABLE),
                               "cuMemHostAlloc(" + std::to_string(plan.staging_bytes) + " bytes of staging)"));
    DS_RETURN_IF_ERROR(d.check(d.cuEventCreate(&done[s], CU_EVENT_DISABLE_TIMING), "cuEventCreate"));
  }
  std::vector<bool> in_flight(static_cast<size_t>(slots), false);
  uint64_t copied = 0;
  for (const UploadChunk& c : plan.chunks) {
    // The slot's previous DMA must be done before the host overwrites it; meanwhile the other
    // slot's copy runs, so the memcpy below overlaps it.
    if (in_flight[c.slot])
      DS_RETURN_IF_ERROR(d.check(d.cuEventSynchronize(done[c.slot]), "cuEventSynchronize"));
    auto* dst = static_cast<uint8_t*>(staging[c.slot].data);
    uint64_t filled = 0;
    for (const UploadPiece& p : c.pieces) {
      if (p.staging_offset > filled) std::memset(dst + filled, 0, p.staging_offset - filled);
      std::memcpy(dst + p.staging_offset, sources[p.tensor] + p.src_offset, p.bytes);
      if (p.tensor < int4_symmetric.size() && int4_symmetric[p.tensor] >= 0) {
        // Word-local permutation: any 4-byte-aligned piece repacks on its own.
        if (p.src_offset % 4 != 0 || p.bytes % 4 != 0)
          return internalError("int4 upload piece not on a 32-bit word boundary");
        ds_cuda_i4_to_gpu(dst + p.staging_offset, p.bytes, int4_symmetric[p.tensor]);
      }
      filled = p.staging_offset + p.bytes;
    }
    if (c.bytes > filled) std::memset(dst + filled, 0, c.bytes - filled);
    DS_RETURN_IF_ERROR(d.check(d.cuMemcpyHtoDAsync(base + c.device_offset, dst, c.bytes, cuStream()),
                               "cuMemcpyHtoDAsync_v2(weights, " + std::to_string(c.bytes) + " bytes)"));
    DS_RETURN_IF_ERROR(d.check(d.cuEventRecord(done[c.slot], cuStream()), "cuEventRecord"));
    in_flight[c.slot] = true;
    copied += c.bytes;
    if (progress_) progress_(copied, progress_total);
  }
  return d.check(d.cuStreamSynchronize(cuStream()), "cuStreamSynchronize(weights)");
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
