// The host backend's lowering of a kernel module (linalg on memrefs) to the LLVM dialect with the
// runtime's C entry points. Not a pass: the pass list the Codegen pipeline nests on @ds_kernels.
#pragma once

#include "mlir/Pass/PassManager.h"

namespace mlir::ds {

// `pm` runs on the kernel module (builtin.module {ds.codegen}): tile + vectorize for the vector
// width of the closest #ds.target, then scf/vector/memref/arith/math/func -> LLVM dialect, then
// ds-codegen-host-entry-points (docs/codegen.md).
void buildHostKernelLoweringPipeline(OpPassManager& pm);

}  // namespace mlir::ds
