// ds-fusion-add-rms-norm: ds.add -> ds.rms_norm becomes one ds.add_rms_norm producing both.
#include "passes/Passes.h"

#include "llvm/ADT/SmallPtrSet.h"

#define DEBUG_TYPE "ds-fusion-add-rms-norm"

namespace mlir::ds {
#define GEN_PASS_DEF_FUSEADDRMSNORMPASS
#include "passes/Passes.h.inc"

namespace {

struct FuseAddRMSNormPass : impl::FuseAddRMSNormPassBase<FuseAddRMSNormPass> {
  void runOnOperation() override {
    SmallVector<RMSNormOp> norms;
    getOperation().walk([&](RMSNormOp norm) {
      if (norm.getInput().getDefiningOp<AddOp>()) norms.push_back(norm);
    });
    llvm::SmallPtrSet<Operation*, 8> fusedAdds;
    for (RMSNormOp norm : norms) {
      // An earlier fusion may have replaced this norm's input with a fused sum: one norm per
      // add, a second norm of the same sum stays a plain rms_norm.
      auto add = norm.getInput().getDefiningOp<AddOp>();
      if (!add || !fusedAdds.insert(add).second) continue;
      OpBuilder b(add);
      auto fused = AddRMSNormOp::create(b, add.getLoc(), add.getType(), add.getType(),
                                        norm.getWeightAttr(), add.getLhs(), add.getRhs(),
                                        norm.getEpsAttr(), /*all_reduce_rhs=*/UnitAttr());
      norm.getResult().replaceAllUsesWith(fused.getResult());
      add.getResult().replaceAllUsesWith(fused.getSum());
      norm.erase();
      add.erase();
      ++numFused;
    }
  }
};

}  // namespace
}  // namespace mlir::ds
