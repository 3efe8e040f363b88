// ds-fusion-merge-projection-weights: q/k/v (gate/up) weights of a fused op -> one stacked weight.
#include "passes/Passes.h"

#include "llvm/ADT/DenseMap.h"

#define DEBUG_TYPE "ds-fusion-merge-projection-weights"

namespace mlir::ds {
#define GEN_PASS_DEF_MERGEPROJECTIONWEIGHTSPASS
#include "passes/Passes.h.inc"

namespace {

struct MergeProjectionWeightsPass
    : impl::MergeProjectionWeightsPassBase<MergeProjectionWeightsPass> {
  ModuleOp module;
  llvm::DenseMap<StringAttr, int> uses;  // weight symbol -> referencing ops

  void runOnOperation() override {
    module = getOperation();
    module.walk([&](Operation* op) {
      if (isa<WeightOp>(op)) return;
      for (NamedAttribute a : op->getAttrs())
        if (auto ref = dyn_cast<FlatSymbolRefAttr>(a.getValue())) ++uses[ref.getAttr()];
    });
    module.walk([&](QKVRopeOp op) {
      if (auto w = merge(op, {op.getWqAttr(), op.getWkAttr(), op.getWvAttr()}, ".merged_qkv")) {
        FlatSymbolRefAttr b;
        if (op.getBqAttr()) {
          b = merge(op, {op.getBqAttr(), op.getBkAttr(), op.getBvAttr()}, ".merged_qkv_bias");
          if (!b) return;  // weights and biases merge together or not at all
        }
        op.setWqAttr(w);
        op.setWkAttr(w);
        op.setWvAttr(w);
        if (b) {
          op.setBqAttr(b);
          op.setBkAttr(b);
          op.setBvAttr(b);
        }
      }
    });
    module.walk([&](SwiGLULinearOp op) {
      if (auto w = merge(op, {op.getGateAttr(), op.getUpAttr()}, ".merged_gate_up")) {
        op.setGateAttr(w);
        op.setUpAttr(w);
      }
    });
  }

  // Declares the stacked weight (before the first part) or returns null if the parts do not
  // qualify. Parts must be distinct, plain checkpoint tensors used by this op only.
  FlatSymbolRefAttr merge(Operation* user, ArrayRef<FlatSymbolRefAttr> refs, StringRef suffix) {
    SmallVector<WeightOp> parts;
    for (FlatSymbolRefAttr ref : refs) {
      auto w = module.lookupSymbol<WeightOp>(ref.getAttr());
      if (!w || w.getExperts() || w.getScale() || w.getShard() || w.getConcat() ||
          uses.lookup(ref.getAttr()) != 1 || llvm::is_contained(parts, w))
        return nullptr;
      if (!parts.empty() &&
          (w.getTensorType().getElementType() != parts[0].getTensorType().getElementType() ||
           w.getTensorType().getRank() != parts[0].getTensorType().getRank() ||
           w.getQuant() != parts[0].getQuant() ||
           w.getTensorType().getShape().drop_front() != parts[0].getTensorType().getShape().drop_front()))
        return nullptr;
      parts.push_back(w);
    }
    SmallVector<int64_t> shape(parts[0].getTensorType().getShape());
    SmallVector<Attribute> names;
    shape[0] = 0;
    for (WeightOp w : parts) {
      shape[0] += w.getTensorType().getDimSize(0);
      names.push_back(w.getNameAttr());
    }
    OpBuilder b(parts[0]);
    std::string sym = (parts[0].getSymName() + suffix).str();
    auto merged = WeightOp::create(
        b, parts[0].getLoc(), sym,
        RankedTensorType::get(shape, parts[0].getTensorType().getElementType()),
        parts[0].getName(), parts[0].getFileAttr(), IntegerAttr(), FlatSymbolRefAttr(),
        DenseI64ArrayAttr(), parts[0].getQuantAttr(), DenseI64ArrayAttr(), b.getArrayAttr(names));
    ++numMerged;
    return FlatSymbolRefAttr::get(merged.getSymNameAttr());
  }
};

}  // namespace
}  // namespace mlir::ds
