// ds-fusion-all-reduce-add-rms-norm: all_reduce(p) feeding only add_rms_norm -> one launch.
#include "passes/Passes.h"

#define DEBUG_TYPE "ds-fusion-all-reduce-add-rms-norm"

namespace mlir::ds {
#define GEN_PASS_DEF_FUSEALLREDUCEADDRMSNORMPASS
#include "passes/Passes.h.inc"

namespace {

struct FuseAllReduceAddRMSNormPass
    : impl::FuseAllReduceAddRMSNormPassBase<FuseAllReduceAddRMSNormPass> {
  void runOnOperation() override {
    getOperation().walk([&](AddRMSNormOp norm) {
      if (norm.getAllReduceRhs()) return;
      auto reduced = [](Value v) {
        auto r = v.getDefiningOp<AllReduceOp>();
        return r && r->hasOneUse() ? r : AllReduceOp();
      };
      AllReduceOp r = reduced(norm.getRhs());
      if (!r) {
        // lhs + rhs == rhs + lhs bit for bit: move a reduced lhs to the rhs slot.
        r = reduced(norm.getLhs());
        if (!r || norm.getLhs() == norm.getRhs()) return;
        Value lhs = norm.getLhs();
        norm.getLhsMutable().assign(norm.getRhs());
        norm.getRhsMutable().assign(lhs);
      }
      norm.getRhsMutable().assign(r.getInput());
      norm.setAllReduceRhs(true);
      r.erase();
      ++numFused;
    });
  }
};

}  // namespace
}  // namespace mlir::ds
