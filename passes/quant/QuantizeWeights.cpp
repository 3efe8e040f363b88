// ds-quant-weights: mark GEMM weights for compile-time quantization with one scheme.
#include "passes/Passes.h"

#include "mlir/IR/Verifier.h"
#include "llvm/ADT/DenseSet.h"

#define DEBUG_TYPE "ds-quant-weights"

namespace mlir::ds {
#define GEN_PASS_DEF_QUANTIZEWEIGHTSPASS
#include "passes/Passes.h.inc"

namespace {

struct QuantizeWeightsPass : impl::QuantizeWeightsPassBase<QuantizeWeightsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    llvm::DenseSet<StringAttr> gemm;
    auto add = [&](FlatSymbolRefAttr ref) {
      if (ref) gemm.insert(ref.getAttr());
    };
    module.walk([&](Operation* op) {
      if (auto l = dyn_cast<LinearOp>(op)) add(l.getWeightAttr());
      if (auto s = dyn_cast<SwiGLULinearOp>(op)) {
        add(s.getGateAttr());
        add(s.getUpAttr());
      }
      if (auto q = dyn_cast<QKVRopeOp>(op)) {
        add(q.getWqAttr());
        add(q.getWkAttr());
        add(q.getWvAttr());
      }
      if (auto mp = dyn_cast<MLAProjectOp>(op)) {
        add(mp.getQAAttr());
        add(mp.getQBAttr());
        add(mp.getKvAAttr());
      }
      if (auto m = dyn_cast<MoEExpertsOp>(op)) {
        for (FlatSymbolRefAttr r : {m.getGateAttr(), m.getUpAttr(), m.getDownAttr(),
                                    m.getSharedGateAttr(), m.getSharedUpAttr(),
                                    m.getSharedDownAttr()})
          add(r);
      }
    });
    OpBuilder b(&getContext());
    for (WeightOp w : module.getOps<WeightOp>()) {
      if (!gemm.contains(w.getSymNameAttr())) continue;
      Type e = w.getTensorType().getElementType();
      if (!(e.isF32() || e.isF16() || e.isBF16())) continue;  // native FP8 stays as it is
      w.setQuantAttr(b.getStringAttr(scheme));
      ++numQuantized;
    }
    // The verifier rejects unknown schemes with a message naming the weight.
    if (failed(verify(module))) signalPassFailure();
  }
};

}  // namespace
}  // namespace mlir::ds
