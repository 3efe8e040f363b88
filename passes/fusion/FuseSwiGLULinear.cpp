// ds-fusion-swiglu-linear: gate/up projections of one input feeding ds.swiglu become one op.
#include "passes/Passes.h"

#define DEBUG_TYPE "ds-fusion-swiglu-linear"

namespace mlir::ds {
#define GEN_PASS_DEF_FUSESWIGLULINEARPASS
#include "passes/Passes.h.inc"

namespace {

struct FuseSwiGLULinearPass : impl::FuseSwiGLULinearPassBase<FuseSwiGLULinearPass> {
  void runOnOperation() override {
    SmallVector<SwiGLUOp> candidates;
    getOperation().walk([&](SwiGLUOp op) { candidates.push_back(op); });
    for (SwiGLUOp op : candidates) {
      auto gate = op.getGate().getDefiningOp<LinearOp>();
      auto up = op.getUp().getDefiningOp<LinearOp>();
      if (!gate || !up || gate == up || gate.getInput() != up.getInput()) continue;
      if (gate.getBiasAttr() || up.getBiasAttr()) continue;
      if (!gate->hasOneUse() || !up->hasOneUse()) continue;
      OpBuilder b(op);
      auto fused = SwiGLULinearOp::create(b, op.getLoc(), op.getType(), gate.getWeightAttr(),
                                          up.getWeightAttr(), gate.getInput());
      op.getResult().replaceAllUsesWith(fused.getResult());
      op.erase();
      gate.erase();
      up.erase();
      ++numFused;
    }
  }
};

}  // namespace
}  // namespace mlir::ds
