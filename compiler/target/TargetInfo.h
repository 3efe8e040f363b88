// What the phases after Import ask of a target, behind one small interface (in the spirit of
// Triton's TargetInfoBase): built from the module's #ds.target, never from flags. The host
// backend is compiler/codegen/HostTargetInfo.cpp; the nvptx one (compiler/codegen/
// NVPTXTargetInfo.cpp) emits PTX, and a cubin when ptxas is installed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "compiler/target/TargetTable.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

namespace mlir::ds {

// How native code is packaged (runtime/schema/artifact.fbs CodeFormat for what artifacts hold).
enum class CodeFormat { ElfSharedObject, Ptx, Cubin };

// One level of the memory hierarchy and the LLVM address space that reaches it.
struct MemorySpace {
  const char* name;          // "global", "shared", ...
  unsigned address_space;    // LLVM address space of pointers into it
};

// Native code for one target, as the artifact stores it (runtime/schema/artifact.fbs CodeObject).
struct CodeObject {
  std::string target;                  // "host"
  std::string triple;
  std::string cpu;                     // the #ds.target cpu ("x86-64-v3")
  std::vector<std::string> features;   // what the runtime checks
  std::vector<std::string> symbols;    // entry points defined
  std::vector<uint8_t> bytes;          // an ELF shared object, PTX text or a cubin
  CodeFormat format = CodeFormat::ElfSharedObject;
  // nvptx: what ptxas -v said per kernel (registers, spills, shared memory); empty for PTX.
  std::string resource_usage;
  // The same, parsed (parsePtxasResources), one entry per kernel.
  struct KernelResources {
    std::string name;
    int registers = 0;
    int64_t shared_bytes = 0, stack_bytes = 0, spill_store_bytes = 0, spill_load_bytes = 0;
  };
  std::vector<KernelResources> kernels;
  // The CUDA kernel library (compiler/artifact/CudaLibrary.h), not generated code: stored with
  // CodeObject.library set; launches never name it.
  bool library = false;
};

// ptxas -v's report ("Function properties for K", "N bytes stack frame, N bytes spill stores,
// N bytes spill loads", "Used N registers, ... N bytes smem") as one entry per kernel.
std::vector<CodeObject::KernelResources> parsePtxasResources(llvm::StringRef report);

class TargetInfo {
 public:
  virtual ~TargetInfo() = default;

  // The backend's view of `target` (its row of the table supplies the LLVM CPU).
  static llvm::Expected<std::unique_ptr<TargetInfo>> get(TargetAttr target);
  // The #ds.target of `module`; an error naming `ds.target` when it has none.
  static llvm::Expected<std::unique_ptr<TargetInfo>> forModule(ModuleOp module);

  TargetAttr attr() const { return target_; }
  llvm::StringRef name() const { return target_.getName().getValue(); }
  TargetBackend backend() const { return target_.getBackend(); }
  llvm::StringRef triple() const { return target_.getTriple().getValue(); }
  llvm::StringRef cpu() const { return target_.getCpu().getValue(); }
  const std::string& llvmCpu() const { return level_->llvm_cpu; }
  // The LLVM CPU the code is scheduled for (tune-cpu): a named level's chip, else llvmCpu().
  const std::string& tuneCpu() const {
    return level_->tune_cpu.empty() ? level_->llvm_cpu : level_->tune_cpu;
  }
  llvm::SmallVector<llvm::StringRef> features() const { return target_.getFeatureNames(); }
  int64_t vectorBits() const { return target_.getVectorBits(); }

  // The memory hierarchy generated code addresses, outermost first.
  virtual llvm::ArrayRef<MemorySpace> memorySpaces() const = 0;
  virtual CodeFormat codeFormat() const = 0;
  // An error saying why while the backend cannot emit code (nvptx: "the CUDA target is not
  // implemented yet"); Codegen and Artifact then refuse the target.
  virtual llvm::Error checkCanEmitCode() const = 0;
  // Optimized LLVM IR of a kernel module the Codegen phase lowered to the LLVM dialect.
  virtual llvm::Expected<std::string> emitLLVMIR(ModuleOp kernels) const = 0;
  // The code object (host: an ELF shared object) of such a kernel module.
  virtual llvm::Expected<CodeObject> emitCode(ModuleOp kernels) const = 0;
  // The kernels as target assembly text (nvptx: PTX); backends without one say so.
  virtual llvm::Expected<std::string> emitAssembly(ModuleOp) const {
    return llvm::createStringError("--target %s has no assembly stage (--compile-to=ptx needs an "
                                   "sm_* target)",
                                   name().str().c_str());
  }

 protected:
  TargetInfo(TargetAttr target, const CodegenLevel* level) : target_(target), level_(level) {}

 private:
  TargetAttr target_;
  const CodegenLevel* level_;
};

// The nested module of generated kernels (attribute `ds.codegen`, made by
// ds-codegen-outline-kernels) in `module`, or null.
ModuleOp findKernelModule(ModuleOp module);

// The backends (compiler/codegen); TargetInfo::get picks one by #ds.target backend.
std::unique_ptr<TargetInfo> createHostTargetInfo(TargetAttr target, const CodegenLevel* level);
std::unique_ptr<TargetInfo> createNVPTXTargetInfo(TargetAttr target, const CodegenLevel* level);

}  // namespace mlir::ds
