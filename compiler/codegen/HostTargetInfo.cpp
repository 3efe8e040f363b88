// TargetInfo of the host backend: one flat memory, ELF shared objects built by HostCodegen.cpp.
#include "compiler/codegen/HostCodegen.h"
#include "compiler/target/TargetInfo.h"

namespace mlir::ds {

namespace {

class HostTargetInfo final : public TargetInfo {
 public:
  HostTargetInfo(TargetAttr target, const CodegenLevel* level) : TargetInfo(target, level) {}

  llvm::ArrayRef<MemorySpace> memorySpaces() const override {
    // Caches are not addressed: every buffer and weight is one plain pointer.
    static const MemorySpace spaces[] = {{"memory", 0}};
    return spaces;
  }
  CodeFormat codeFormat() const override { return CodeFormat::ElfSharedObject; }
  llvm::Error checkCanEmitCode() const override { return llvm::Error::success(); }
  llvm::Expected<std::string> emitLLVMIR(ModuleOp kernels) const override {
    return hostKernelsToLLVMIR(kernels, *this);
  }
  llvm::Expected<CodeObject> emitCode(ModuleOp kernels) const override {
    return compileHostKernels(kernels, *this);
  }
};

}  // namespace

std::unique_ptr<TargetInfo> createHostTargetInfo(TargetAttr target, const CodegenLevel* level) {
  return std::make_unique<HostTargetInfo>(target, level);
}

}  // namespace mlir::ds
