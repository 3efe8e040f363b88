// CudaExecutable: module selection and loading, generated entry points, the kernel table.
#include "hal/cuda/cuda_executable.h"

#include <cstring>

#include "artifact/artifact_reader.h"

namespace ds::hal::cuda {

// Empty until kernels/cuda is wired in: each entry will be a small function that reads LaunchArgs,
// picks the launch geometry (kernels/cuda's geometry header) and calls cuLaunchKernel on a
// function of the library module. Load refuses every launch whose kind is null here.
const CudaKernelFn kCudaKernels[abi::kNumKernelKinds] = {};

namespace {

// A fatbin (cudafe's container of cubins + PTX) starts with this little-endian magic.
constexpr uint32_t kFatbinMagic = 0xBA55ED50u;

StatusOr<CUmodule> loadModule(const CudaDriver& d, const uint8_t* data, uint64_t size,
                              const std::string& what) {
  CUmodule m = nullptr;
  uint32_t magic = 0;
  if (size >= 4) std::memcpy(&magic, data, 4);
  if (magic == kFatbinMagic) {
    DS_RETURN_IF_ERROR(d.check(d.cuModuleLoadFatBinary(&m, data), "cuModuleLoadFatBinary(" + what + ")"));
  } else if (size >= 4 && std::memcmp(data, "\x7f" "ELF", 4) == 0) {
    DS_RETURN_IF_ERROR(d.check(d.cuModuleLoadData(&m, data), "cuModuleLoadData(" + what + ")"));
  } else {
    // PTX text: the driver wants it NUL-terminated, the artifact stores it without.
    std::string ptx(reinterpret_cast<const char*>(data), size);
    DS_RETURN_IF_ERROR(d.check(d.cuModuleLoadData(&m, ptx.c_str()), "cuModuleLoadData(" + what + ", PTX JIT)"));
  }
  return m;
}

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
      if (parseCudaArch(t)) {
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
    StatusOr<CUmodule> m = loadModule(device.driver(), data, obj->size(),
                                      artifact.path() + " code object " +
                                          std::to_string(exe->code_object_) + ", " + exe->code_target_);
    if (!m.isOk()) return m.status();
    exe->module_ = *m;
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
    }
    if (!kCudaKernels[static_cast<size_t>(l.kind)])
      return unsupported(what + " has no CUDA kernel yet: the runtime's CUDA kernel table is empty "
                         "until the kernel library (kernels/cuda) is wired in; compile with "
                         "--target host to run on the CPU");
  }
  return std::shared_ptr<const CudaExecutable>(std::move(exe));
}

CudaExecutable::~CudaExecutable() {
  if (module_ && device_->bind().isOk()) device_->driver().cuModuleUnload(module_);
}

size_t CudaExecutable::numGenerated() const {
  size_t n = 0;
  for (CUfunction f : entries_) n += f != nullptr;
  return n;
}

Status CudaExecutable::launch(Device& device, const LaunchArgs& a) const {
  const LaunchDesc& l = *a.launch;
  // Generated kernels need their launch geometry from the NVPTX codegen's entry-point ABI, which
  // is not defined yet; until then only library kernels could run (and load refuses kinds that
  // have none, so this is reached only if the table is filled without the geometry).
  if (CudaKernelFn fn = kCudaKernels[static_cast<size_t>(l.kind)])
    return fn(static_cast<CudaDevice&>(device), *this, a);
  return unsupported("plan.launches[" + std::to_string(a.index) + "] (" + l.sig->name +
                     "): no CUDA kernel for this kind yet");
}

}  // namespace ds::hal::cuda
