// NVPTX lowering of generated kernels: ds GPU mapping, upstream conversions to NVVM.
#include "passes/codegen/nvptx/NVPTXLowering.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Transforms/Passes.h"

#include "passes/Passes.h"

namespace mlir::ds {

void buildNVPTXKernelLoweringPipeline(OpPassManager& pm, llvm::StringRef activationType) {
  MapKernelsToGPUPassOptions map;
  map.activationType = activationType.str();
  pm.addPass(createMapKernelsToGPUPass(map));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  OpPassManager& gpu = pm.nest<gpu::GPUModuleOp>();
  gpu.addPass(memref::createExpandStridedMetadataPass());
  gpu.addPass(createLowerAffinePass());
  gpu.addPass(createSCFToControlFlowPass());
  gpu.addPass(createArithToLLVMConversionPass());
  gpu.addPass(createConvertIndexToLLVMPass());
  // 64-bit indices: rows x cols of a long prefill may pass 2^31 elements.
  ConvertGpuOpsToNVVMOpsOptions nvvm;
  nvvm.indexBitwidth = 64;
  gpu.addPass(createConvertGpuOpsToNVVMOps(nvvm));
  gpu.addPass(createCanonicalizerPass());
  gpu.addPass(createCSEPass());
  gpu.addPass(createReconcileUnrealizedCastsPass());
}

}  // namespace mlir::ds
