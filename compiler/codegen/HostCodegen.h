// Generated kernels for --target host: linalg kernels -> LLVM dialect -> object -> shared object bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/codegen/HostTargets.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/Error.h"

namespace mlir::ds {

// Native code for one target, as the artifact stores it (runtime/schema/artifact.fbs CodeObject).
struct CodeObject {
  std::string target;                  // "host"
  std::string triple;
  std::string cpu;                     // HostCpu::name
  std::vector<std::string> features;   // what the runtime checks
  std::vector<std::string> symbols;    // entry points defined
  std::vector<uint8_t> bytes;          // an ELF shared object
};

// The nested module of generated kernels (attribute `ds.codegen`) in `module`, or null.
ModuleOp findKernelModule(ModuleOp module);

// Host lowering of a kernel module: tile + vectorize for `cpu`, then scf/vector/memref/arith/
// math/func -> LLVM dialect, then the C entry points (docs/codegen.md).
void buildHostLoweringPipeline(OpPassManager& pm, const HostCpu& cpu);

// A top-level copy of `kernels` lowered to the LLVM dialect (--emit=llvm).
llvm::Expected<OwningOpRef<ModuleOp>> lowerKernelsToLLVMDialect(ModuleOp kernels,
                                                               const HostCpu& cpu);

// LLVM IR of the lowered kernels, optimized at O2 for `cpu` (--emit=llvm-ir).
llvm::Expected<std::string> kernelsToLLVMIR(ModuleOp kernels, const HostCpu& cpu);

// The whole path: lowering, LLVM IR, optimization, an object file for `cpu`, then a shared
// object linked with ld.lld (or binutils ld; $DS_LINKER overrides).
llvm::Expected<CodeObject> compileHostKernels(ModuleOp kernels, const HostCpu& cpu);

}  // namespace mlir::ds
