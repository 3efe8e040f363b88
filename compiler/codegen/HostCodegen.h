// Host code emission: a kernel module in the LLVM dialect (the Codegen phase's output) -> LLVM IR
// -> object file for the #ds.target's CPU level -> shared object bytes. Serves HostTargetInfo.
#pragma once

#include <string>

#include "compiler/target/TargetInfo.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

namespace mlir::ds {

// LLVM IR of the lowered kernels, optimized at O2 for the target's CPU level (--compile-to=llvm-ir).
llvm::Expected<std::string> hostKernelsToLLVMIR(ModuleOp kernels, const TargetInfo& target);

// LLVM IR, optimization, an object file for the target's CPU level, then a shared object linked
// with ld.lld (or binutils ld; $DS_LINKER overrides).
llvm::Expected<CodeObject> compileHostKernels(ModuleOp kernels, const TargetInfo& target);

}  // namespace mlir::ds
