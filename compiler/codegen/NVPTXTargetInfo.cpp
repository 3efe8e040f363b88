// TargetInfo of the nvptx backend: the GPU's memory hierarchy, PTX from the kernel module's
// gpu.module (MLIR's #nvvm.target serializer over LLVM's NVPTX backend) and a cubin from ptxas
// when one is installed (found when ds-compile runs, never at build time). The only file here
// that names NVIDIA.
#include "compiler/target/TargetInfo.h"

#include <cstdlib>

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

namespace mlir::ds {

namespace {

// ptxas: $DS_PTXAS, else on PATH, else the CUDA toolkit's default place; empty when none.
std::string findPtxas() {
  if (const char* env = std::getenv("DS_PTXAS")) return env;  // "" disables ptxas
  if (auto found = llvm::sys::findProgramByName("ptxas")) return *found;
  for (const char* dir : {"CUDA_HOME", "CUDA_PATH"})
    if (const char* root = std::getenv(dir)) {
      std::string p = std::string(root) + "/bin/ptxas";
      if (llvm::sys::fs::can_execute(p)) return p;
    }
  if (llvm::sys::fs::can_execute("/usr/local/cuda/bin/ptxas")) return "/usr/local/cuda/bin/ptxas";
  return {};
}

// The CUDA toolkit holding libdevice (math functions the kernels call: expf, cos, sin, sqrt).
std::string findToolkit() {
  auto hasLibdevice = [](llvm::StringRef root) {
    return llvm::sys::fs::exists(root.str() + "/nvvm/libdevice/libdevice.10.bc");
  };
  for (const char* var : {"CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"})
    if (const char* root = std::getenv(var); root && hasLibdevice(root)) return root;
  std::string ptxas = findPtxas();
  if (!ptxas.empty()) {
    llvm::StringRef root = llvm::sys::path::parent_path(llvm::sys::path::parent_path(ptxas));
    if (hasLibdevice(root)) return root.str();
  }
  if (hasLibdevice("/usr/local/cuda")) return "/usr/local/cuda";
  return {};
}

gpu::GPUModuleOp findGpuModule(ModuleOp kernels) {
  for (auto m : kernels.getOps<gpu::GPUModuleOp>()) return m;
  return {};
}

class NVPTXTargetInfo final : public TargetInfo {
 public:
  NVPTXTargetInfo(TargetAttr target, const CodegenLevel* level) : TargetInfo(target, level) {}

  llvm::ArrayRef<MemorySpace> memorySpaces() const override {
    // NVPTX address spaces (LLVM NVPTX backend numbering), from device memory to registers.
    static const MemorySpace spaces[] = {
        {"global", 1}, {"constant", 4}, {"shared", 3}, {"local", 5}};
    return spaces;
  }
  CodeFormat codeFormat() const override { return CodeFormat::Ptx; }
  llvm::Error checkCanEmitCode() const override { return llvm::Error::success(); }
  llvm::Expected<std::string> emitLLVMIR(ModuleOp) const override {
    return llvm::createStringError("--target %s: the kernels' LLVM IR is not a stage of the "
                                   "nvptx backend; use --compile-to=llvm (NVVM dialect) or "
                                   "--compile-to=ptx",
                                   name().str().c_str());
  }

  llvm::Expected<std::string> emitAssembly(ModuleOp kernels) const override {
    if (!findGpuModule(kernels))
      return llvm::createStringError("the kernel module has no gpu.module: run the Codegen phase "
                                     "for --target %s first",
                                     name().str().c_str());
    MLIRContext* ctx = kernels.getContext();
    DialectRegistry registry;
    registerBuiltinDialectTranslation(registry);
    registerLLVMDialectTranslation(registry);
    registerGPUDialectTranslation(registry);
    registerNVVMDialectTranslation(registry);
    NVVM::registerNVVMTargetInterfaceExternalModels(registry);
    ctx->appendDialectRegistry(registry);
    std::string toolkit = findToolkit();
    if (toolkit.empty())
      return llvm::createStringError(
          "--target %s: no CUDA toolkit with nvvm/libdevice/libdevice.10.bc (looked at "
          "$CUDA_HOME, $CUDA_PATH, $CUDA_ROOT, beside ptxas and /usr/local/cuda); the generated "
          "kernels call its math functions",
          name().str().c_str());
    // The serializer replaces the gpu.module by a gpu.binary: work on a copy.
    OwningOpRef<ModuleOp> copy(kernels.clone());
    PassManager pm(ctx, ModuleOp::getOperationName());
    GpuModuleToBinaryPassOptions options;
    options.toolkitPath = toolkit;
    options.compilationTarget = "isa";  // PTX; ptxas runs below, found at run time
    pm.addPass(createGpuModuleToBinaryPass(options));
    std::string diagnostics;
    {
      ScopedDiagnosticHandler handler(ctx, [&](Diagnostic& d) {
        diagnostics += d.str() + "\n";
        return success();
      });
      if (failed(pm.run(*copy)))
        return llvm::createStringError("--target %s: PTX emission failed: %s",
                                       name().str().c_str(), diagnostics.c_str());
    }
    for (auto binary : copy->getOps<gpu::BinaryOp>())
      for (Attribute a : binary.getObjects())
        if (auto object = dyn_cast<gpu::ObjectAttr>(a)) return object.getObject().str();
    return llvm::createStringError("--target %s: gpu-module-to-binary produced no object",
                                   name().str().c_str());
  }

  llvm::Expected<CodeObject> emitCode(ModuleOp kernels) const override {
    auto ptx = emitAssembly(kernels);
    if (!ptx) return ptx.takeError();
    CodeObject code;
    code.target = name().str();
    code.triple = triple().str();
    code.cpu = cpu().str();
    for (llvm::StringRef f : features()) code.features.push_back(f.str());
    // Lowered kernels are llvm.func with nvvm.kernel (gpu.func before lowering).
    for (Operation& op : findGpuModule(kernels).getBody()->getOperations())
      if (op.hasAttr("nvvm.kernel") || op.hasAttr(gpu::GPUDialect::getKernelFuncAttrName()))
        if (auto name = op.getAttrOfType<StringAttr>(SymbolTable::getSymbolAttrName()))
          code.symbols.push_back(name.str());
    std::string ptxas = findPtxas();
    if (ptxas.empty()) {
      // The driver compiles PTX at load (cuModuleLoadData wants it NUL-terminated).
      code.format = CodeFormat::Ptx;
      code.bytes.assign(ptx->begin(), ptx->end());
      code.bytes.push_back(0);
      return code;
    }
    auto cubin = runPtxas(ptxas, *ptx, code.resource_usage);
    if (!cubin) return cubin.takeError();
    // Entry points only (ptxas also reports device functions such as libdevice's helpers).
    for (CodeObject::KernelResources& k : parsePtxasResources(code.resource_usage))
      if (llvm::is_contained(code.symbols, k.name)) code.kernels.push_back(std::move(k));
    code.format = CodeFormat::Cubin;
    code.bytes = std::move(*cubin);
    return code;
  }

 private:
  llvm::Expected<std::vector<uint8_t>> runPtxas(const std::string& ptxas, const std::string& ptx,
                                                std::string& usage) const {
    llvm::SmallString<128> in, out, log;
    int fd;
    if (auto ec = llvm::sys::fs::createTemporaryFile("ds-kernels", "ptx", fd, in))
      return llvm::createStringError(ec, "ptxas input file");
    {
      llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
      os << ptx;
    }
    llvm::sys::fs::createTemporaryFile("ds-kernels", "cubin", out);
    llvm::sys::fs::createTemporaryFile("ds-kernels", "log", log);
    std::string arch = "-arch=" + cpu().str();
    llvm::SmallVector<llvm::StringRef> args = {ptxas, arch, "-O3", "-v", "-o", out, in};
    std::optional<llvm::StringRef> redirects[] = {std::nullopt, llvm::StringRef(log),
                                                  llvm::StringRef(log)};
    std::string error;
    int rc = llvm::sys::ExecuteAndWait(ptxas, args, std::nullopt, redirects, 0, 0, &error);
    auto logText = llvm::MemoryBuffer::getFile(log);
    if (logText) usage = (*logText)->getBuffer().str();
    auto bytes = llvm::MemoryBuffer::getFile(out, /*IsText=*/false, /*RequiresNullTerminator=*/false);
    llvm::sys::fs::remove(in);
    llvm::sys::fs::remove(out);
    llvm::sys::fs::remove(log);
    if (rc != 0 || !bytes)
      return llvm::createStringError("%s %s failed (exit %d%s%s): %s", ptxas.c_str(), arch.c_str(),
                                     rc, error.empty() ? "" : ", ", error.c_str(), usage.c_str());
    return std::vector<uint8_t>((*bytes)->getBufferStart(), (*bytes)->getBufferEnd());
  }
};

}  // namespace

std::vector<CodeObject::KernelResources> parsePtxasResources(llvm::StringRef report) {
  std::vector<CodeObject::KernelResources> out;
  // The number before `unit` in `line` ("24 registers", "272 bytes smem"); 0 when absent.
  auto numberBefore = [](llvm::StringRef line, llvm::StringRef unit) -> int64_t {
    size_t at = line.find(unit);
    if (at == llvm::StringRef::npos) return 0;
    llvm::StringRef head = line.take_front(at).rtrim();
    size_t start = head.find_last_not_of("0123456789");
    int64_t v = 0;
    head.drop_front(start == llvm::StringRef::npos ? 0 : start + 1).getAsInteger(10, v);
    return v;
  };
  llvm::SmallVector<llvm::StringRef> lines;
  report.split(lines, '\n');
  for (llvm::StringRef line : lines) {
    if (size_t at = line.find("Function properties for "); at != llvm::StringRef::npos) {
      out.push_back({line.drop_front(at + 24).trim().str()});
      continue;
    }
    if (out.empty()) continue;
    CodeObject::KernelResources& k = out.back();
    if (line.contains("bytes stack frame")) {
      k.stack_bytes = numberBefore(line, " bytes stack frame");
      k.spill_store_bytes = numberBefore(line, " bytes spill stores");
      k.spill_load_bytes = numberBefore(line, " bytes spill loads");
    } else if (line.contains("Used ") && line.contains(" registers")) {
      k.registers = static_cast<int>(numberBefore(line, " registers"));
      k.shared_bytes = numberBefore(line, " bytes smem");
    }
  }
  return out;
}

std::unique_ptr<TargetInfo> createNVPTXTargetInfo(TargetAttr target, const CodegenLevel* level) {
  return std::make_unique<NVPTXTargetInfo>(target, level);
}

}  // namespace mlir::ds
