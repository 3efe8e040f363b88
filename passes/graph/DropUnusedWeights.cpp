// ds-graph-drop-unused-weights: erase ds.weight declarations nothing references.
#include "passes/Passes.h"

#include "llvm/ADT/DenseSet.h"

#define DEBUG_TYPE "ds-graph-drop-unused-weights"

namespace mlir::ds {
#define GEN_PASS_DEF_DROPUNUSEDWEIGHTSPASS
#include "passes/Passes.h.inc"

namespace {

struct DropUnusedWeightsPass : impl::DropUnusedWeightsPassBase<DropUnusedWeightsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    llvm::DenseSet<StringAttr> used;
    module.walk([&](Operation* op) {
      if (isa<WeightOp>(op)) return;
      for (NamedAttribute attr : op->getAttrs())
        attr.getValue().walk([&](FlatSymbolRefAttr ref) { used.insert(ref.getAttr()); });
    });
    // A used block-scaled weight keeps its scale alive.
    for (auto weight : module.getOps<WeightOp>())
      if (used.contains(weight.getSymNameAttr()))
        if (FlatSymbolRefAttr scale = weight.getScaleAttr()) used.insert(scale.getAttr());
    for (auto weight : llvm::make_early_inc_range(module.getOps<WeightOp>())) {
      if (used.contains(weight.getSymNameAttr())) continue;
      weight.erase();
      ++numErased;
    }
  }
};

}  // namespace
}  // namespace mlir::ds
