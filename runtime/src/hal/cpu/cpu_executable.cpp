// CpuExecutable: binds a plan to the CPU kernel table, its rope tables and generated code.
#include "hal/cpu/cpu_executable.h"

#include "artifact/artifact_reader.h"

namespace ds::hal {

StatusOr<std::shared_ptr<const CpuExecutable>> CpuExecutable::load(
    const artifact::Artifact& artifact, const StepPlan& plan, bool allow_native_code) {
  auto exe = std::make_shared<CpuExecutable>();
  // Host kernels compute in f32 over f32 activations and i32 indices (bf16/f16 activation
  // buffers are for GPU targets).
  for (size_t i = 0; i < plan.buffers.size(); ++i) {
    const DType d = plan.buffers[i].dtype;
    if (d != DType::F32 && d != DType::I32)
      return unsupported(artifact.path() + ": plan.buffers[" + std::to_string(i) + "] holds " +
                         fb::EnumNameDType(static_cast<fb::DType>(d)) +
                         " activations; the CPU device runs f32 activations (compile with "
                         "--target host)");
  }
  switch (plan.kv.dtype) {
    case DType::F32: exe->kv_type_ = cpu::KVType::F32; break;
    case DType::I8: exe->kv_type_ = cpu::KVType::I8; break;
    case DType::F8E4M3: exe->kv_type_ = cpu::KVType::F8E4M3; break;
    default:
      if (plan.kv.kind != KVKind::None)
        return unsupported(artifact.path() + ": KV cache dtype " +
                           fb::EnumNameDType(static_cast<fb::DType>(plan.kv.dtype)) +
                           " is not supported on the host");
  }
  for (size_t i = 0; i < plan.launches.size(); ++i) {
    const LaunchDesc& l = plan.launches[i];
    if (!kCpuKernels[static_cast<size_t>(l.kind)])
      return unsupported(artifact.path() + ": plan.launches[" + std::to_string(i) + "] (" +
                         l.sig->name + ") has no CPU kernel");
  }
  StatusOr<std::unique_ptr<GeneratedKernels>> gen = GeneratedKernels::load(artifact, allow_native_code);
  if (!gen.isOk()) return gen.status();
  exe->generated_ = std::move(gen.value());
  exe->ropes_.resize(plan.launches.size());
  for (size_t i = 0; i < plan.launches.size(); ++i) {
    const LaunchDesc& l = plan.launches[i];
    if (l.kind != abi::KernelKind::Rope && l.kind != abi::KernelKind::QKVRope &&
        l.kind != abi::KernelKind::MlaProject)
      continue;
    exe->ropes_[i] = std::make_unique<cpu::RopeTable>(ropeParams(l.params.rope));
  }
  return std::shared_ptr<const CpuExecutable>(std::move(exe));
}

cpu::RopeParams ropeParams(const RopeDesc& r) {
  cpu::RopeParams p;
  p.theta = r.theta;
  p.dim = r.dim;
  p.interleaved = r.interleaved;
  p.scaling = static_cast<cpu::RopeScaling>(r.scaling);
  p.factor = r.factor;
  p.original_max_position = r.original_max_position;
  p.low_freq_factor = r.low_freq_factor;
  p.high_freq_factor = r.high_freq_factor;
  p.beta_fast = r.beta_fast;
  p.beta_slow = r.beta_slow;
  p.mscale = r.mscale;
  p.mscale_all_dim = r.mscale_all_dim;
  p.attention_factor = r.attention_factor;
  return p;
}

cpu::Rotary CpuExecutable::rotary(size_t index, size_t slot) const {
  cpu::Rotary r;
  r.table = ropes_[index].get();
  r.fn = generated_->epilogue(index, slot);
  return r;
}

Status CpuExecutable::launch(Device& device, const LaunchArgs& a) const {
  const LaunchDesc& l = *a.launch;
  if (GeneratedKernelFn fn = generated_->entry(a.index)) {  // docs/codegen.md (ABI checked at load)
    void* bufs[kMaxGeneratedBuffers];
    const float* ws[kMaxGeneratedWeights];
    size_t nb = 0;
    for (size_t i = 0; i < l.inputs.size(); ++i) bufs[nb++] = a.in[i].data;
    for (size_t i = 0; i < l.outputs.size(); ++i) bufs[nb++] = a.out[i].data;
    const auto& weights = static_cast<const CpuWeights&>(*a.weights);
    for (size_t i = 0; i < l.weights.size() && l.weights[i] >= 0; ++i)
      ws[i] = weights.at(l.weights[i]).f32.data();
    // The kernels are row-wise (docs/codegen.md): when every operand has the launch's rows, the
    // rows are split over the kernel threads, each chunk a call on row-offset buffers (a row's
    // result is the same whichever call computes it).
    const int64_t rows = a.out[0].rows;
    int64_t row_elems = 0;
    bool split = rows > 1;
    auto operand = [&](const BufferArg& b) {
      split = split && b.rows == rows && b.desc && b.desc->row_bytes > 0;
      if (b.desc) row_elems = std::max(row_elems, b.desc->row_elems);
    };
    for (size_t i = 0; i < l.inputs.size(); ++i) operand(a.in[i]);
    for (size_t i = 0; i < l.outputs.size(); ++i) operand(a.out[i]);
    if (!split) {
      fn(bufs, ws, rows);
      return Status::ok();
    }
    cpu::parallelRows(rows, std::max<int64_t>(1, 2048 / std::max<int64_t>(1, row_elems)), [&](int64_t b, int64_t e) {
      void* part[kMaxGeneratedBuffers];
      size_t n = 0;
      for (size_t i = 0; i < l.inputs.size(); ++i)
        part[n++] = static_cast<uint8_t*>(a.in[i].data) + b * a.in[i].desc->row_bytes;
      for (size_t i = 0; i < l.outputs.size(); ++i)
        part[n++] = static_cast<uint8_t*>(a.out[i].data) + b * a.out[i].desc->row_bytes;
      fn(part, ws, e - b);
    });
    return Status::ok();
  }
  return kCpuKernels[static_cast<size_t>(l.kind)](static_cast<CpuDevice&>(device), *this, a);
}

}  // namespace ds::hal
