// ds-opt: mlir-opt-style driver registering only the dialects, passes and pipelines ds-compile uses.
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Transforms/Passes.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

#include "compiler/pipelines/Pipelines.h"
#include "dialects/ds/DsDialect.h"
#include "passes/Passes.h"

int main(int argc, char** argv) {
  mlir::DialectRegistry registry;
  registry.insert<mlir::ds::DSDialect, mlir::dsk::DSKDialect, mlir::func::FuncDialect, mlir::arith::ArithDialect,
                  mlir::tensor::TensorDialect>();
  // Generated kernels (passes/codegen): linalg on memrefs down to the LLVM dialect.
  registry.insert<mlir::linalg::LinalgDialect, mlir::memref::MemRefDialect, mlir::math::MathDialect,
                  mlir::scf::SCFDialect, mlir::vector::VectorDialect, mlir::LLVM::LLVMDialect>();
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  mlir::registerSymbolDCEPass();
  mlir::ds::registerDsPasses();
  // The Graph, Plan and Codegen phases of ds-compile: --ds-pipeline-graph="fuse=true quant=w8 tp=2".
  mlir::ds::registerDsPipelines();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "ds optimizer driver\n", registry));
}
