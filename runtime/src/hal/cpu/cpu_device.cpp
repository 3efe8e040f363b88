// CpuDevice: aligned host allocations with per-kind accounting, a stream that runs each call at
// once, and weight views into the artifact's mapping.
#include "hal/cpu/cpu_device.h"

#include <atomic>
#include <memory>
#include <new>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include <sys/mman.h>
#include <unistd.h>

#include "artifact/artifact_reader.h"
#include "artifact/synthetic.h"
#include "artifact/tensor_parallel.h"
#include "hal/cpu/cpu_executable.h"

namespace ds::hal {

namespace {

// Weight memory (packed copies, synthetic fills): 2 MiB aligned and, unless DS_CPU_HUGEPAGES=0,
// advised as transparent huge pages before its first touch (kernels whose THP mode is
// "madvise", as on this project's Debian machines, otherwise back it with 4 KiB pages, and a
// decode GEMV streaming gigabytes then walks page tables every 4 KiB). Advice only: a kernel
// that says no leaves ordinary pages, with the same results.
uint8_t* allocWeightMemory(uint64_t bytes) {
  constexpr uint64_t kHuge = 2ull << 20;
  const uint64_t size = (bytes + kHuge - 1) / kHuge * kHuge;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(kHuge, size));
  static const bool huge = [] {
    const char* v = std::getenv("DS_CPU_HUGEPAGES");
    return !(v && std::strcmp(v, "0") == 0);
  }();
#ifdef MADV_HUGEPAGE
  if (p && huge) (void)madvise(p, size, MADV_HUGEPAGE);
#endif
  return p;
}

}  // namespace

namespace fbs = ::ds::fb;

namespace {

uint64_t physicalMemoryBytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page)
                               : (uint64_t{1} << 48);
}

class CpuAllocator : public Allocator {
 public:
  StatusOr<Allocation> allocate(uint64_t bytes, MemoryKind kind) override {
    constexpr uint64_t kAlign = 64;
    if (bytes == 0) bytes = kAlign;
    // Checked against the machine before allocating: with overcommit a huge request could
    // "succeed" and fail later as the OOM killer.
    uint64_t total = 0;
    for (const auto& u : in_use_) total += u.load();
    const uint64_t physical = physicalMemoryBytes();
    if (bytes > physical || total + bytes > physical)
      return Status(DS_OUT_OF_MEMORY, "cannot allocate " + std::to_string(bytes) + " bytes of " +
                               memoryKindName(kind) + ": the CPU has " + std::to_string(physical) +
                               " bytes of memory and " + std::to_string(total) + " are in use");
    const uint64_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
    void* p = std::aligned_alloc(kAlign, rounded);
    if (!p)
      return Status(DS_OUT_OF_MEMORY, "out of host memory allocating " + std::to_string(rounded) +
                               " bytes of " + memoryKindName(kind));
    // Activations start zeroed (as the vectors they replace did); a KV pool stays untouched so
    // the pages of a large budget are only committed when blocks are used.
    if (kind == MemoryKind::Activations || kind == MemoryKind::Staging) std::memset(p, 0, rounded);
    in_use_[static_cast<int>(kind)] += rounded;
    return Allocation{p, rounded, kind};
  }
  void release(const Allocation& a) override {
    if (!a.data) return;
    in_use_[static_cast<int>(a.kind)] -= a.bytes;
    std::free(a.data);
  }
  uint64_t bytesInUse(MemoryKind kind) const override { return in_use_[static_cast<int>(kind)]; }

 private:
  std::atomic<uint64_t> in_use_[kNumMemoryKinds] = {};
};

class CpuEvent : public Event {
 public:
  bool complete() const override { return true; }
  Status wait() override { return Status::ok(); }
};

// Runs every call before returning: host memory is coherent, so a copy is a memcpy and an
// event is complete when recorded.
class CpuStream : public Stream {
 public:
  Status copyToDevice(void* dst, const void* src, uint64_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
    return Status::ok();
  }
  Status copyToHost(void* dst, const void* src, uint64_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
    return Status::ok();
  }
  StatusOr<std::unique_ptr<Event>> record() override {
    return std::unique_ptr<Event>(new CpuEvent());
  }
  Status synchronize() override { return Status::ok(); }
};

}  // namespace

struct CpuDevice::State {
  CpuAllocator allocator;
  CpuStream stream;
};

void applyCpuThreadPolicy(const CpuThreadPolicy& policy, uint64_t weight_bytes) {
  if (policy.num_threads > 0)
    cpu::setNumThreads(policy.num_threads);
  else if (weight_bytes < policy.single_thread_below_bytes)
    cpu::setNumThreads(1);
}

std::unique_ptr<Device> createCpuDevice(const DeviceOptions& options) {
  return std::make_unique<CpuDevice>(options);
}

CpuDevice::CpuDevice(const DeviceOptions& options)
    : options_(options), state_(std::make_unique<State>()) {
  info_.name = "cpu";
  info_.target = "host";
  info_.host_visible = true;
}
CpuDevice::~CpuDevice() = default;
Allocator& CpuDevice::allocator() { return state_->allocator; }
Stream& CpuDevice::stream() { return state_->stream; }

StatusOr<std::unique_ptr<Weights>> CpuDevice::loadWeights(const artifact::Artifact& artifact,
                                                          const StepPlan&, int rank) {
  if (artifact.meta()->fp8_activations())
    return unsupported(artifact.path() + ": built with --quant-act fp8 (FP8 activations on a GPU's "
                       "FP8 tensor cores), which the host kernels do not implement");
  StatusOr<std::unique_ptr<CpuWeights>> w = CpuWeights::load(artifact, rank);
  if (!w.isOk()) return w.status();
  return std::unique_ptr<Weights>(std::move(w).value());
}

StatusOr<std::shared_ptr<const Executable>> CpuDevice::loadExecutable(
    const artifact::Artifact& artifact, const StepPlan& plan,
    std::shared_ptr<const Executable> peer) {
  // Every CPU rank runs the same code: reuse a peer's executable instead of loading it again.
  if (peer && dynamic_cast<const CpuExecutable*>(peer.get())) return peer;
  StatusOr<std::shared_ptr<const CpuExecutable>> exe = CpuExecutable::load(artifact, plan, options_.allow_native_code);
  if (!exe.isOk()) return exe.status();
  return std::shared_ptr<const Executable>(std::move(exe).value());
}

void CpuWeights::FreeDeleter::operator()(uint8_t* p) const { std::free(p); }

StatusOr<std::unique_ptr<CpuWeights>> CpuWeights::load(const artifact::Artifact& artifact,
                                                       int rank) {
  auto out = std::make_unique<CpuWeights>();
  const auto* tensors = artifact.meta()->tensors();
  const uint32_t n = tensors ? tensors->size() : 0;
  out->entries_.resize(n);
  // Synthetic tensors this rank reads (its shards and their scales) get memory of their own,
  // filled now: every byte is written, so timings see the pages a real load would touch.
  std::unordered_map<const fbs::Tensor*, const uint8_t*> filled;
  if (artifact.meta()->synthetic_weights()) {
    std::vector<const fbs::Tensor*> wanted;
    auto want = [&](int32_t index) {
      if (index < 0) return;
      const fbs::Tensor* t = tensors->Get(static_cast<uint32_t>(index));
      if (artifact::isSynthetic(*t) && filled.emplace(t, nullptr).second) wanted.push_back(t);
    };
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t own = shardIndex(artifact, i, rank);
      const fbs::Tensor* t = tensors->Get(own);
      want(static_cast<int32_t>(own));
      for (int32_t ref : {t->scale(), t->qscale(), t->qzero()}) want(ref);
    }
    constexpr uint64_t kAlign = 64;
    uint64_t total = 0;
    for (const fbs::Tensor* t : wanted) total += (t->nbytes() + kAlign - 1) / kAlign * kAlign;
    if (total > 0) {
      out->synthetic_.reset(allocWeightMemory(total));
      if (!out->synthetic_)
        return Status(DS_OUT_OF_MEMORY, artifact.path() + ": cannot allocate " +
                                            std::to_string(total) + " bytes for synthetic weights");
    }
    uint64_t at = 0;
    for (const fbs::Tensor* t : wanted) {
      uint8_t* dst = out->synthetic_.get() + at;
      std::vector<int64_t> shape(t->shape()->begin(), t->shape()->end());
      artifact::fillSyntheticTensor(artifact::syntheticSpec(*t), artifact.meta()->synthetic_seed(),
                                    shape, dst, t->nbytes());
      filled[t] = dst;
      at += (t->nbytes() + kAlign - 1) / kAlign * kAlign;
    }
    out->synthetic_bytes_ = total;
  }
  auto tensorData = [&](const fbs::Tensor& t) -> const uint8_t* {
    auto it = filled.find(&t);
    return it != filled.end() ? it->second : artifact.tensorData(t);
  };
  for (uint32_t i = 0; i < n; ++i) {
    // Launches name a sharded weight by its rank-0 entry: this rank reads its own shard.
    const fbs::Tensor* t = tensors->Get(shardIndex(artifact, i, rank));
    CpuWeight& e = out->entries_[i];
    const uint8_t* data = tensorData(*t);
    std::vector<int64_t> shape(t->shape()->begin(), t->shape()->end());
    const std::string name = artifact.path() + ": tensor '" + t->name()->str() + "'";
    cpu::WeightView v;
    switch (t->dtype()) {
      case fbs::DType_F32: v.type = cpu::WeightType::F32; break;
      case fbs::DType_F16: v.type = cpu::WeightType::F16; break;
      case fbs::DType_BF16: v.type = cpu::WeightType::BF16; break;
      case fbs::DType_F8_E4M3: v.type = cpu::WeightType::F8E4M3; break;
      case fbs::DType_I8: v.type = cpu::WeightType::I8; break;
      case fbs::DType_I4: v.type = cpu::WeightType::I4; break;
      case fbs::DType_I6: v.type = cpu::WeightType::I6; break;
      default:
        return unsupported(name + " has dtype " + fbs::EnumNameDType(t->dtype()) +
                           ", which the host kernels do not read");
    }
    int64_t experts = t->experts() > 0 ? t->experts() : 1;
    if (t->experts() > 0) shape.erase(shape.begin());
    v.rows = shape.size() == 1 ? 1 : shape[0];
    v.cols = shape.back();
    int64_t bytes_per_expert = v.rows * cpu::weightRowBytes(v.type, v.cols);
    // Compile-time quantization: per-channel or per-group scales (and int4 zero points).
    const float* qscale = nullptr;
    const float* qzero = nullptr;
    int64_t qscale_per_expert = 0;
    const bool grouped = t->quant() == fbs::QuantKind_Int4Group || t->quant() == fbs::QuantKind_Int6Group;
    if (t->quant() != fbs::QuantKind_None) {
      if (t->qscale() < 0) return dataLoss(name + " is quantized but has no scales");
      if ((v.type == cpu::WeightType::I8) != (t->quant() == fbs::QuantKind_Int8PerChannel) ||
          (v.type == cpu::WeightType::I4) != (t->quant() == fbs::QuantKind_Int4Group) ||
          (v.type == cpu::WeightType::I6) != (t->quant() == fbs::QuantKind_Int6Group))
        return dataLoss(name + " has dtype " + fbs::EnumNameDType(t->dtype()) +
                        " but quantization " + fbs::EnumNameQuantKind(t->quant()));
      qscale = reinterpret_cast<const float*>(tensorData(*tensors->Get(t->qscale())));
      if (t->qzero() >= 0)
        qzero = reinterpret_cast<const float*>(tensorData(*tensors->Get(t->qzero())));
      int64_t groups = 1;
      if (grouped) {
        if (t->group_size() <= 0) return dataLoss(name + " is int4 / int6 without a group size");
        v.group_size = t->group_size();
        groups = (v.cols + v.group_size - 1) / v.group_size;
      }
      qscale_per_expert = v.rows * groups;
      uint64_t have = tensors->Get(t->qscale())->nbytes() / sizeof(float);
      if (have != static_cast<uint64_t>(qscale_per_expert * experts))
        return dataLoss(name + " has " + std::to_string(have) + " scales, expected " +
                        std::to_string(qscale_per_expert * experts));
    } else if (v.type == cpu::WeightType::I8 || v.type == cpu::WeightType::I4 ||
               v.type == cpu::WeightType::I6) {
      return dataLoss(name + " is " + fbs::EnumNameDType(t->dtype()) +
                      " without quantization scales");
    }
    const float* scale = nullptr;
    int64_t scale_per_expert = 0;
    if (t->scale() >= 0) {
      const fbs::Tensor* s = tensors->Get(t->scale());
      scale = reinterpret_cast<const float*>(tensorData(*s));
      v.block_rows = t->block()->Get(0);
      v.block_cols = t->block()->Get(1);
      scale_per_expert = ((v.rows + v.block_rows - 1) / v.block_rows) *
                         ((v.cols + v.block_cols - 1) / v.block_cols);
    }
    for (int64_t x = 0; x < experts; ++x) {
      cpu::WeightView ev = v;
      ev.data = data + x * bytes_per_expert;
      if (scale) ev.block_scale = scale + x * scale_per_expert;
      if (qscale) {
        if (grouped) {
          ev.group_scale = qscale + x * qscale_per_expert;
          if (qzero) ev.group_zero = qzero + x * qscale_per_expert;
        } else {
          ev.channel_scale = qscale + x * qscale_per_expert;
        }
      }
      e.views.push_back(ev);
    }
    if (shape.size() == 1) {
      e.f32.resize(v.cols);
      cpu::dequantRow(e.views[0], 0, e.f32.data());
    }
  }
  const char* pack = std::getenv("DS_CPU_PACK_WEIGHTS");
  if (!pack || std::strcmp(pack, "0") != 0) out->pack(artifact);
  return out;
}

void CpuWeights::pack(const artifact::Artifact& artifact) {
  // Measured on the R1-Distill-Qwen-1.5B shape (bf16, 2 threads of a Zen 4 VM): the 4-row decode
  // tile reads 13 GB/s per thread from row-major rows (4 streams) and 23 GB/s from packed ones.
  const uint8_t* syn = synthetic_.get();
  auto synthetic = [&](const void* p) {
    const auto* b = static_cast<const uint8_t*>(p);
    return syn && b >= syn && b < syn + synthetic_bytes_;
  };
  auto bytes = [](const cpu::WeightView& v) { return v.rows * cpu::weightRowBytes(v.type, v.cols); };
  constexpr uint64_t kAlign = 64;
  // Views of one tensor share its bytes: where they went, and an int4 tensor's panel scales.
  struct Packed {
    void* data = nullptr;
    const float* panel_scales = nullptr;
    const uint16_t* panel_scales_f16 = nullptr;
  };
  std::unordered_map<const void*, Packed> packed_at;
  uint64_t total = 0;
  const bool int8_act = artifact.meta()->int8_activations();
  const bool bf16_act = artifact.meta()->bf16_activations();
  auto a8 = [&](const cpu::WeightView& v) { return int8_act && cpu::canUseInt8Activations(v); };
  auto a16 = [&](const cpu::WeightView& v) { return bf16_act && cpu::canUseBf16Activations(v); };
  auto packable = [&](const cpu::WeightView& v) { return a8(v) || a16(v) || cpu::canPackWeight(v); };
  for (const CpuWeight& e : entries_)
    for (const cpu::WeightView& v : e.views)
      if (packable(v) && !synthetic(v.data) && packed_at.emplace(v.data, Packed{}).second)
        total += (bytes(v) + kAlign - 1) / kAlign * kAlign;
  if (total > 0) {
    packed_.reset(allocWeightMemory(total));
    if (!packed_) return;  // no memory for a copy: the row-major views stay (slower, same results)
  }
  packed_bytes_ = total;
  uint64_t at = 0;
  for (CpuWeight& e : entries_)
    for (cpu::WeightView& v : e.views) {
      if (!packable(v)) continue;
      const bool int8 = a8(v), bf16 = a16(v);
      Packed& p = packed_at[v.data];
      if (!p.data) {
        const bool in_place = synthetic(v.data);
        p.data = in_place ? const_cast<void*>(v.data) : packed_.get() + at;
        if (!in_place) at += (bytes(v) + kAlign - 1) / kAlign * kAlign;
        float* scales = nullptr;
        const int64_t nf = int8 ? cpu::int8ActScaleFloats(v) : 0;
        if (nf > 0) {
          panel_scales_.emplace_back(new (std::nothrow) float[static_cast<size_t>(nf)]);
          scales = panel_scales_.back().get();  // null without memory: the kernel gathers
        }
        if (int8) p.panel_scales = cpu::packInt8Activations(v, p.data, scales).panel_group_scale;
        else if (bf16) cpu::packBf16Activations(v, p.data);
        else cpu::packWeight(v, p.data);
        if (!in_place) artifact.dropPages(v.data, static_cast<size_t>(bytes(v)));
        if (p.panel_scales) {  // f16 copies where every scale is an f16 (ds-compile's are)
          std::unique_ptr<uint16_t[]> half(new (std::nothrow) uint16_t[static_cast<size_t>(nf)]);
          if (half && cpu::panelScalesToF16(p.panel_scales, nf, half.get())) {
            p.panel_scales_f16 = half.get();
            panel_scales_f16_.push_back(std::move(half));
            p.panel_scales = nullptr;  // the f32 copy (just made) is not read
            panel_scales_.pop_back();
          }
        }
      }
      v.data = p.data;
      if (int8) {
        v.int8_act = true;
        v.panel_group_scale = p.panel_scales;
        v.panel_group_scale_f16 = p.panel_scales_f16;
      }
      else if (bf16) v.bf16_act = true;
      else v.packed = cpu::kPackRows;
    }
}

}  // namespace ds::hal
