// TargetInfo of the nvptx backend: the GPU's memory hierarchy and code format are known, code
// emission is not implemented yet (docs/codegen.md, "NVPTX later"). The only file here that
// names NVIDIA.
#include "compiler/target/TargetInfo.h"

namespace mlir::ds {

namespace {

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
  llvm::Error checkCanEmitCode() const override {
    return llvm::createStringError(
        "the CUDA target is not implemented yet: --target %s (#ds.target backend = nvptx) "
        "compiles to --compile-to=ds|graph|plan and --cost-report, not to generated kernels or "
        "an artifact; use --target host",
        name().str().c_str());
  }
  llvm::Expected<std::string> emitLLVMIR(ModuleOp) const override { return checkCanEmitCode(); }
  llvm::Expected<CodeObject> emitCode(ModuleOp) const override { return checkCanEmitCode(); }
};

}  // namespace

std::unique_ptr<TargetInfo> createNVPTXTargetInfo(TargetAttr target, const CodegenLevel* level) {
  return std::make_unique<NVPTXTargetInfo>(target, level);
}

}  // namespace mlir::ds
