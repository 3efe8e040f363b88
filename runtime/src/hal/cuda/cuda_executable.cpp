// CudaExecutable: module selection and loading, generated entry points, the kernel table.
#include "hal/cuda/cuda_executable.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>

#include "artifact/artifact_reader.h"
#include "comm/communicator.h"
#include "cpu/cpu_kernels.h"
#include "hal/cpu/cpu_executable.h"

namespace ds::hal::cuda {

namespace {
Status libraryKernel(CudaDevice& device, const CudaExecutable& exe, const LaunchArgs& a) {
  return exe.run(device, a);
}

// One exchange of a collective's plan on the rank's communicator (ordered on this device's
// stream: the communicator is the one CudaDevice::createCommGroup made for it).
Status runExchange(Communicator& comm, const CudaCall& c) {
  const CudaExchange& x = c.exchange;
  void* recv = reinterpret_cast<void*>(static_cast<uintptr_t>(x.recv));
  const void* send = reinterpret_cast<const void*>(static_cast<uintptr_t>(x.send));
  if (c.kind == CudaCallKind::AllGather) return comm.allGatherBytes(send, x.bytes, recv);
  const size_t n = static_cast<size_t>(comm.size());
  if (x.to.size() != n || x.from.size() != n) return internalError("allToAllV: one piece per rank expected");
  std::vector<Communicator::Piece> to(n), from(n);
  for (size_t p = 0; p < n; ++p) {
    to[p] = {x.to[p].offset, x.to[p].bytes};
    from[p] = {x.from[p].offset, x.from[p].bytes};
  }
  return comm.allToAllV(send, to.data(), recv, from.data());
}
}  // namespace

// The kinds served by kernels/cuda through the launch builder (cuda_launches.cpp, DeepSeek's
// MLA / MoE / slice in cuda_launches_deepseek.cpp, the collectives in
// cuda_launches_collective.cpp: exchanges of the rank's communicator plus library kernels).
const CudaKernelFn kCudaKernels[abi::kNumKernelKinds] = {
    libraryKernel,  // embed
    libraryKernel,  // rms_norm
    libraryKernel,  // linear
    libraryKernel,  // add
    libraryKernel,  // swiglu
    libraryKernel,  // slice
    libraryKernel,  // rope
    libraryKernel,  // attention
    libraryKernel,  // mla_attention
    libraryKernel,  // moe_gate
    libraryKernel,  // moe_experts
    libraryKernel,  // logits
    libraryKernel,  // add_rms_norm
    libraryKernel,  // swiglu_linear
    libraryKernel,  // qkv_rope
    libraryKernel,  // mla_project
    libraryKernel,  // all_reduce
    libraryKernel,  // all_gather
};

namespace {

// Stands in for the workspace's address while a launch is planned only to learn its size.
constexpr uint64_t kSizingWorkspace = 1ull << 40;

}  // namespace

StatusOr<std::shared_ptr<const CudaExecutable>> CudaExecutable::load(
    const CudaDevice& device, const artifact::Artifact& artifact, const StepPlan& plan) {
  auto exe = std::make_shared<CudaExecutable>();
  exe->device_ = &device;
  exe->entries_.assign(plan.launches.size(), nullptr);
  const CudaDeviceProps& p = device.props();
  const std::string device_name = p.name + ", " + device.info().name;
  // The artifact's GPU code objects (sm_XY cubins, compute_XY PTX), in artifact order.
  std::vector<std::string> targets;
  std::vector<int> indices;
  if (const auto* code = artifact.meta()->code())
    for (uint32_t c = 0; c < code->size(); ++c) {
      const std::string t = code->Get(c)->target() ? code->Get(c)->target()->str() : "";
      // The kernel library's objects are not the artifact's module (CudaDevice::kernelLibrary).
      if (parseCudaArch(t) && !code->Get(c)->library()) {
        targets.push_back(t);
        indices.push_back(static_cast<int>(c));
      }
    }
  if (targets.empty()) {
    // No GPU code at all (every launch a library kernel): the artifact's target must still run here.
    const std::string t = artifact.meta()->target() && artifact.meta()->target()->name()
                              ? artifact.meta()->target()->name()->str() : "";
    StatusOr<CodeChoice> fits = selectCode({t}, p.major, p.minor, device_name);
    if (!fits.isOk()) return Status(fits.status().code(), artifact.path() + ": " + fits.status().message());
    exe->code_target_ = t;
  } else {
    StatusOr<CodeChoice> choice = selectCode(targets, p.major, p.minor, device_name);
    if (!choice.isOk())
      return Status(choice.status().code(), artifact.path() + ": " + choice.status().message());
    exe->code_object_ = indices[static_cast<size_t>(choice->index)];
    exe->match_ = choice->match;
    exe->code_target_ = targets[static_cast<size_t>(choice->index)];
    const fb::CodeObject* obj = artifact.meta()->code()->Get(static_cast<uint32_t>(exe->code_object_));
    const uint8_t* data = artifact.segmentData(obj->segment());
    if (!data || obj->size() == 0)
      return dataLoss(artifact.path() + ": code object " + std::to_string(exe->code_object_) +
                      " (" + exe->code_target_ + ") has no bytes");
    StatusOr<CUmodule> m = loadCudaModule(device.driver(), data, obj->size(),
                                      artifact.path() + " code object " +
                                          std::to_string(exe->code_object_) + ", " + exe->code_target_);
    if (!m.isOk()) return m.status();
    exe->module_ = *m;
  }
  exe->threads_.assign(plan.launches.size(), 0);
  exe->slots_.resize(plan.launches.size());
  exe->inv_freq_.resize(plan.launches.size());
  exe->attention_factor_.assign(plan.launches.size(), 1.0f);
  exe->inv_freq_dev_.resize(plan.launches.size());
  exe->gemv_only_.assign(plan.launches.size(), 0);
  const auto* tensors = artifact.meta()->tensors();
  for (size_t i = 0; i < plan.launches.size(); ++i) {
    const LaunchDesc& l = plan.launches[i];
    for (int32_t t : l.weights) {
      SlotInfo info;
      if (t >= 0 && tensors && static_cast<uint32_t>(t) < tensors->size()) {
        const fb::Tensor* tensor = tensors->Get(static_cast<uint32_t>(t));
        info.dtype = static_cast<DType>(tensor->dtype());
        if (tensor->shape()) info.shape.assign(tensor->shape()->begin(), tensor->shape()->end());
      }
      exe->slots_[i].push_back(std::move(info));
    }
    if (l.kind == abi::KernelKind::Rope || l.kind == abi::KernelKind::QKVRope ||
        l.kind == abi::KernelKind::MlaProject) {
      cpu::RopeTable table(ropeParams(l.params.rope));
      exe->inv_freq_[i] = table.invFreq();
      exe->attention_factor_[i] = table.attentionFactor();
    }
  }
  for (size_t i = 0; i < plan.launches.size(); ++i) {
    const LaunchDesc& l = plan.launches[i];
    const std::string what = artifact.path() + ": plan.launches[" + std::to_string(i) + "] (" +
                             l.sig->name + ")";
    // A launch served by generated code names a symbol of a GPU code object; every target's
    // object of a fat artifact defines the same symbols, so it is looked up in the chosen one.
    const bool gpu_code = l.code_object >= 0 && exe->module_ && artifact.meta()->code() &&
                          static_cast<uint32_t>(l.code_object) < artifact.meta()->code()->size() &&
                          artifact.meta()->code()->Get(static_cast<uint32_t>(l.code_object))->target() &&
                          parseCudaArch(artifact.meta()->code()->Get(static_cast<uint32_t>(l.code_object))->target()->str());
    if (gpu_code) {
      CUfunction f = nullptr;
      DS_RETURN_IF_ERROR(device.driver().check(
          device.driver().cuModuleGetFunction(&f, exe->module_, l.code_symbol.c_str()),
          "cuModuleGetFunction(" + l.code_symbol + ") for " + what));
      exe->entries_[i] = f;
      int threads = 0;
      DS_RETURN_IF_ERROR(device.driver().check(
          device.driver().cuFuncGetAttribute(&threads, /*MAX_THREADS_PER_BLOCK*/ 0, f),
          "cuFuncGetAttribute(" + l.code_symbol + ")"));
      exe->threads_[i] = static_cast<uint32_t>(threads);
      continue;
    }
    if (!kCudaKernels[static_cast<size_t>(l.kind)])
      return unsupported(what + " has no CUDA kernel yet (the CUDA kernel table covers the dense "
                         "Llama/Qwen2 kinds); compile with --target host to run on the CPU");
    if (!exe->library_) {
      // The kernel library (docs/cuda.md "Kernel library"): the device's, loaded once.
      StatusOr<const CudaLibrary*> lib = device.kernelLibrary(artifact, what);
      if (!lib.isOk()) return lib.status();
      exe->library_ = (*lib)->module;
      exe->library_fns_ = (*lib)->functions;
      exe->quant_gemm_ = true;
      for (const char* k : {"ds_gemm_q_i4_abf16", "ds_gemm_q_fp8_abf16", "ds_gemm_q_i8_abf16",
                            "ds_moe_gemm_wbf16_abf16_plain", "ds_moe_gemm_wbf16_abf16_swiglu",
                            "ds_moe_gemm_wfp8_abf16_plain", "ds_moe_gemm_wfp8_abf16_swiglu"})
        exe->quant_gemm_ = exe->quant_gemm_ && exe->library_fns_.count(k);
      exe->mla_prefill_ = exe->library_fns_.count("ds_mla_prefill_bf16_abf16") > 0;
      // --quant-act fp8: FP8 GEMMs on the FP8 tensor cores, where the GPU has them (compute
      // capability 8.9 and up; ds-compile refused the flag for targets without them).
      exe->fp8_act_ = artifact.meta()->fp8_activations() && exe->library_fns_.count("ds_gemm_fp8mma_abf16") &&
                      (p.major > 8 || (p.major == 8 && p.minor >= 9));
      exe->fp8_moe_ = exe->fp8_act_ && exe->library_fns_.count("ds_moe_gemm_wfp8_afp8_plain") &&
                      exe->library_fns_.count("ds_moe_gemm_wfp8_afp8_swiglu");
    }
  }
  return std::shared_ptr<const CudaExecutable>(std::move(exe));
}

CudaExecutable::~CudaExecutable() {
  if (!device_->bind().isOk()) return;
  if (module_) device_->driver().cuModuleUnload(module_);
}

size_t CudaExecutable::numGenerated() const {
  size_t n = 0;
  for (CUfunction f : entries_) n += f != nullptr;
  return n;
}

Status CudaExecutable::launch(Device& device, const LaunchArgs& a) const {
  const LaunchDesc& l = *a.launch;
  if (entries_[a.index]) return run(static_cast<CudaDevice&>(device), a);
  if (CudaKernelFn fn = kCudaKernels[static_cast<size_t>(l.kind)])
    return fn(static_cast<CudaDevice&>(device), *this, a);
  return unsupported("plan.launches[" + std::to_string(a.index) + "] (" + l.sig->name +
                     "): no CUDA kernel for this kind yet");
}

Status CudaExecutable::reserveFor(Device& device, const std::function<Status()>& launches) const {
  sizing_ = true;
  sized_bytes_ = 0;
  const Status planned = launches();
  sizing_ = false;
  DS_RETURN_IF_ERROR(planned);
  if (sized_bytes_ <= workspace_.bytes()) return Status::ok();
  DS_RETURN_IF_ERROR(device.stream().synchronize());  // queued kernels may read the old one
  DS_RETURN_IF_ERROR(workspace_.reserve(device.allocator(), sized_bytes_, MemoryKind::Activations));
  ++epoch_;
  return Status::ok();
}

Status CudaExecutable::run(CudaDevice& device, const LaunchArgs& a) const {
  const LaunchDesc& l = *a.launch;
  const StepArgs& s = *a.step;
  const CudaDriver& d = device.driver();
  auto addr = [](const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); };
  CudaStepView step;
  step.T = s.T;
  step.R = s.R;
  step.positions = addr(s.positions);
  step.token_seq = addr(s.token_seq);
  step.block_table = addr(s.block_table);
  step.num_seqs = s.num_seqs;
  step.max_blocks_per_seq = s.max_blocks_per_seq;
  step.num_kv_blocks = s.num_kv_blocks;
  step.kv = s.kv;
  step.rank = s.rank;
  step.tp = s.tp;
  std::vector<uint64_t> layers;
  if (s.kv && s.kv_layers)
    for (int64_t i = 0; i < s.kv->num_layers; ++i) layers.push_back(addr(s.kv_layers[i]));
  step.kv_layers = layers.data();
  // GQA and MLA attention read the batch shape; MLA's split-KV plan needs the step's context (a
  // plan for a context of 1 would attend to the first 16 positions only).
  if (l.kind == abi::KernelKind::Attention || l.kind == abi::KernelKind::MlaAttention) {
    if (!s.host_positions || !s.host_token_seq)
      return internalError("CUDA attention needs the step's host positions and token_seq");
    // Once per step, shared by every layer's attention: the sequences' row ranges (tokens of a
    // sequence are contiguous rows, as the engine batches them), on the host and the device.
    if (attention_step_ != s.step_id || s.step_id == 0) {
      attention_step_ = s.step_id;
      max_context_ = max_q_len_ = 0;
      seq_q_start_host_.assign(static_cast<size_t>(s.num_seqs) + 1, 0);
      for (int64_t t = 0; t < s.T; ++t) {
        seq_q_start_host_[static_cast<size_t>(s.host_token_seq[t]) + 1]++;
        max_context_ = std::max<int64_t>(max_context_, s.host_positions[t] + 1);
      }
      for (size_t i = 1; i < seq_q_start_host_.size(); ++i) {
        max_q_len_ = std::max<int64_t>(max_q_len_, seq_q_start_host_[i]);
        seq_q_start_host_[i] += seq_q_start_host_[i - 1];
      }
      // Prefill steps, and decode steps of small heads (ds_attn_small), read it. A decode step
      // (one token per sequence, in sequence order) has row ranges 0, 1, 2, ...: a constant
      // table on the device, never uploaded, so a recorded decode step (CUDA graph) reads the
      // same bytes whatever eager steps ran in between.
      pure_decode_ = max_q_len_ <= 1 && s.num_seqs == s.T;
      for (int64_t t = 0; pure_decode_ && t < s.T; ++t) pure_decode_ = s.host_token_seq[t] == t;
      const uint64_t bytes = seq_q_start_host_.size() * 4;
      if (pure_decode_) {
        if (iota_.bytes() < bytes) {
          std::vector<int32_t> iota(std::max<size_t>(seq_q_start_host_.size(), 1024));
          for (size_t i = 0; i < iota.size(); ++i) iota[i] = static_cast<int32_t>(i);
          DS_RETURN_IF_ERROR(device.stream().synchronize());  // a replay may still read the old one
          DS_RETURN_IF_ERROR(iota_.reserve(device.allocator(), iota.size() * 4, MemoryKind::Staging));
          DS_RETURN_IF_ERROR(device.stream().copyToDevice(iota_.data(), iota.data(), iota.size() * 4));
          ++epoch_;
        }
      } else {
        DS_RETURN_IF_ERROR(seq_q_start_.reserve(device.allocator(), bytes, MemoryKind::Staging));
        DS_RETURN_IF_ERROR(device.stream().copyToDevice(seq_q_start_.data(), seq_q_start_host_.data(), bytes));
      }
    }
    step.max_context = std::max(max_context_, s.plan_context);
    step.max_q_len = max_q_len_;
    step.seq_q_start = addr(pure_decode_ ? iota_.data() : seq_q_start_.data());
  }
  CudaLaunchView v;
  v.launch = &l;
  for (size_t i = 0; i < l.inputs.size(); ++i) {
    v.in[i] = addr(a.in[i].data);
    v.in_desc[i] = a.in[i].desc;
    v.in_rows[i] = a.in[i].rows;
  }
  for (size_t i = 0; i < l.outputs.size(); ++i) {
    v.out[i] = addr(a.out[i].data);
    v.out_desc[i] = a.out[i].desc;
    v.out_rows[i] = a.out[i].rows;
  }
  const auto& weights = static_cast<const CudaWeights&>(*a.weights);
  for (size_t i = 0; i < l.weights.size() && i < 8; ++i) {
    if (l.weights[i] < 0) continue;
    v.weights[i] = weights.at(l.weights[i]);
    v.weight_dtype[i] = slots_[a.index][i].dtype;
    v.weight_shape[i] = slots_[a.index][i].shape;
    const CudaWeights::QuantScales q = weights.quantAt(l.weights[i]);
    v.weight_scale[i] = q.scale;
    v.weight_zero[i] = q.zero;
    v.weight_group[i] = q.group_size;
    v.weight_block_scale[i] = q.block_scale;
    v.weight_block[i][0] = q.block_rows;
    v.weight_block[i][1] = q.block_cols;
  }
  if (!inv_freq_[a.index].empty()) {
    DeviceBuffer& buf = inv_freq_dev_[a.index];
    if (!buf.data()) {
      const uint64_t bytes = inv_freq_[a.index].size() * 4;
      DS_RETURN_IF_ERROR(buf.reserve(device.allocator(), bytes, MemoryKind::Weights));
      DS_RETURN_IF_ERROR(device.stream().copyToDevice(buf.data(), inv_freq_[a.index].data(), bytes));
    }
    v.inv_freq = addr(buf.data());
    v.attention_factor = attention_factor_[a.index];
  }
  v.limits.sm_count = device.props().sm_count;
  v.generated = entries_[a.index] != nullptr;
  v.generated_threads = threads_[a.index];
  v.blaslt = !gemv_only_[a.index] && device.blasLtLibrary() != nullptr;
  v.quant_gemm = quant_gemm_;
  v.fp8_act = fp8_act_;
  v.fp8_moe = fp8_moe_;
  v.mla_prefill = mla_prefill_;
  const std::string what = "plan.launches[" + std::to_string(a.index) + "] (" + l.sig->name + ")";
  if (sizing_) {  // reserveFor: the workspace this launch needs, nothing queued
    v.workspace = kSizingWorkspace;
    StatusOr<CudaLaunchPlan> p = planCudaLaunch(v, step);
    if (p.isOk()) sized_bytes_ = std::max(sized_bytes_, p->workspace_bytes);
    return Status::ok();  // a refusal is the real launch's to report
  }
  // Plans the launch; when it needs more workspace than there is, grows it and plans again
  // (the params embed the address).
  auto planSized = [&]() -> StatusOr<CudaLaunchPlan> {
    v.workspace = addr(workspace_.data());
    StatusOr<CudaLaunchPlan> p = planCudaLaunch(v, step);
    if (p.isOk() && p->workspace_bytes <= workspace_.bytes()) return p;
    if (!p.isOk()) {
      // Before the first workspace exists its address is 0, and a launch placing scratch in it
      // (swiglu_linear's gate|up, logits' gathered rows) is refused for a null pointer. Plan
      // against an aligned placeholder to learn the size; a refusal there is the launch's own.
      if (workspace_.data()) return p;
      v.workspace = kSizingWorkspace;
      StatusOr<CudaLaunchPlan> sized = planCudaLaunch(v, step);
      if (!sized.isOk()) return sized;
      if (sized->workspace_bytes == 0) return p;
      p = std::move(sized);
    }
    // The old workspace may still be read by queued kernels: drain the stream before it goes.
    DS_RETURN_IF_ERROR(device.stream().synchronize());
    DS_RETURN_IF_ERROR(workspace_.reserve(device.allocator(), p->workspace_bytes, MemoryKind::Activations));
    ++epoch_;  // recorded steps name the old workspace
    v.workspace = addr(workspace_.data());
    return planCudaLaunch(v, step);
  };
  StatusOr<CudaLaunchPlan> plan = planSized();
  if (!plan.isOk()) return plan.status();
  BlasLt* blas = nullptr;
  std::string refused;
  for (const CudaCall& c : plan->calls) {
    if (c.kind != CudaCallKind::BlasLtGemm) continue;
    if (!blas) {
      StatusOr<BlasLt*> b = device.blasLt();
      if (!b.isOk() && b.status().code() == DS_UNAVAILABLE) {  // cannot start: GEMV from now on
        refused = b.status().message();
        break;
      }
      if (!b.isOk()) return b.status();
      blas = *b;
    }
    // Descriptors and the heuristic's algorithm, once per shape. No algorithm for a shape: this
    // launch stays on the GEMV kernels from now on (nothing has been queued yet).
    Status ready = blas->prepare(c.gemm);
    if (ready.code() == DS_UNSUPPORTED) {
      refused = ready.message();
      break;
    }
    if (!ready.isOk()) return Status(ready.code(), ready.message() + " for " + what);
  }
  if (!refused.empty()) {
    static std::once_flag once;  // one note per process
    if (device.blasLtLibrary())  // else the device's own note said it already
      std::call_once(once, [&] {
        std::fprintf(stderr, "ds: note: %s: %s stays on the GEMV kernels\n", refused.c_str(), what.c_str());
      });
    gemv_only_[a.index] = 1;
    v.blaslt = false;
    plan = planSized();
    if (!plan.isOk()) return plan.status();
  }
  for (CudaCall& c : plan->calls) {
    if (c.kind == CudaCallKind::AllGather || c.kind == CudaCallKind::AllToAllV) {
      if (!s.comm || s.comm->size() != s.tp)
        return internalError(what + ": tensor parallelism over " + std::to_string(s.tp) +
                             " ranks without a communicator of that size");
      Status ran = runExchange(*s.comm, c);
      if (!ran.isOk()) return Status(ran.code(), ran.message() + " for " + what);
      continue;
    }
    if (c.kind == CudaCallKind::BlasLtGemm) {
      Status ran = blas->run(c.gemm, device.cuStream());
      if (!ran.isOk()) return Status(ran.code(), ran.message() + " for " + what);
      continue;
    }
    CUfunction fn = nullptr;
    if (c.generated) {
      fn = entries_[a.index];
    } else {
      auto it = library_fns_.find(c.symbol);
      if (it == library_fns_.end())
        return unsupported("the CUDA kernel library this artifact carries has no " + c.symbol +
                           " (it predates that kernel): recompile the artifact with this ds-compile");
      fn = it->second;
    }
    std::vector<void*> args;
    if (c.words) {
      for (size_t w = 0; w < c.params.size(); w += 8) args.push_back(c.params.data() + w);
    } else {
      args.push_back(c.params.data());
    }
    DS_RETURN_IF_ERROR(d.check(d.cuLaunchKernel(fn, c.grid[0], c.grid[1], c.grid[2], c.block[0],
                                                c.block[1], c.block[2], c.shared_bytes,
                                                device.cuStream(), args.data(), nullptr),
                               "cuLaunchKernel(" + c.symbol + ") for " + what));
  }
  return Status::ok();
}

}  // namespace ds::hal::cuda
