// ds-codegen-approximate-exp: f32 math.exp -> MLIR's polynomial approximation (vectorizable).
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Approximation.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "ds-codegen-approximate-exp"

namespace mlir::ds {
#define GEN_PASS_DEF_APPROXIMATEEXPPASS
#include "passes/Passes.h.inc"

namespace {

struct ApproximateExpPass : impl::ApproximateExpPassBase<ApproximateExpPass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp fn = getOperation();
    int64_t f32Exps = 0;
    fn.walk([&](math::ExpOp op) {
      if (getElementTypeOrSelf(op.getType()).isF32()) ++f32Exps;
    });
    if (f32Exps == 0) return;
    RewritePatternSet patterns(&getContext());
    // Only exp: the approximation's own op set (fma, floor, integer exponent bits) lowers to
    // plain vector instructions; f64 and other math ops keep their libm calls.
    populateMathPolynomialApproximationPatterns(
        patterns, [](StringRef name) { return name == math::ExpOp::getOperationName(); });
    if (failed(applyPatternsGreedily(fn, std::move(patterns)))) return signalPassFailure();
    int64_t left = 0;
    fn.walk([&](math::ExpOp op) {
      if (getElementTypeOrSelf(op.getType()).isF32()) ++left;
    });
    if (left) {
      fn.emitError() << left << " f32 math.exp op(s) were not expanded";
      return signalPassFailure();
    }
    numExpanded += f32Exps;
  }
};

}  // namespace
}  // namespace mlir::ds
