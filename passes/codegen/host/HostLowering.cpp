// Host lowering of generated kernels: ds tiling, upstream conversions to LLVM, host entry points.
#include "passes/codegen/host/HostLowering.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/Vector/Transforms/Passes.h"
#include "mlir/Transforms/Passes.h"

#include "passes/Passes.h"

namespace mlir::ds {

void buildHostKernelLoweringPipeline(OpPassManager& pm) {
  // vector-width 0: the f32 lanes of the #ds.target the kernel module sits in.
  pm.addNestedPass<func::FuncOp>(createTileAndVectorizePass());
  // exp as vector arithmetic, not one libm call per lane (the swiglu's silu).
  pm.addNestedPass<func::FuncOp>(createApproximateExpPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addNestedPass<func::FuncOp>(vector::createLowerVectorMaskPass());
  // Row reductions become vector.reduction with the running sum as accumulator: LLVM's ordered
  // reduce.fadd, so each row sums in the library kernels' sequential order.
  pm.addNestedPass<func::FuncOp>(
      vector::createLowerVectorMultiReductionPass(vector::VectorMultiReductionLowering::InnerReduction));
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  pm.addNestedPass<func::FuncOp>(createConvertVectorToSCFPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createConvertVectorToLLVMPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createUBToLLVMConversionPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createHostEntryPointsPass());
}

}  // namespace mlir::ds
