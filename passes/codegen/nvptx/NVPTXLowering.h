// The nvptx backend's lowering of a kernel module (linalg on memrefs) to gpu.func kernels in the
// NVVM/LLVM dialects. Not a pass: the pass list the Codegen pipeline nests on @ds_kernels when
// the #ds.target backend is nvptx. PTX comes later, from gpu-module-to-binary (Artifact phase).
#pragma once

#include "mlir/Pass/PassManager.h"

namespace mlir::ds {

// `pm` runs on the kernel module (builtin.module {ds.codegen}): ds-codegen-nvptx-map-to-gpu, then
// inside gpu.module: strided metadata, scf -> cf, arith/index -> LLVM, convert-gpu-to-nvvm
// (memref, math through libdevice calls, gpu.all_reduce through shuffles), casts reconciled.
// `activationType`: storage type of the row buffers, "f32" or "bf16" (math stays f32).
void buildNVPTXKernelLoweringPipeline(OpPassManager& pm, llvm::StringRef activationType = "f32");

}  // namespace mlir::ds
