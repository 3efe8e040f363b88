// ds-quant-weights: mark GEMM weights for compile-time quantization with one scheme.
#include "passes/Passes.h"

#include "mlir/IR/Verifier.h"
#include "llvm/ADT/DenseMap.h"
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
    // The output projection / embedding table: opt-in, int8 per row or 6-bit / 4-bit groups
    // (symmetric; llama.cpp keeps its output at 6-8 bits by default, lower on request).
    llvm::DenseMap<StringAttr, std::string> head;  // weight -> its scheme
    for (const std::string* opt : {&lmHead.getValue(), &embedTable.getValue()})
      if (*opt != "none" && *opt != "int8" && *opt != "int6_g64" && *opt != "int6_g128" &&
          *opt != "int4_g64" && *opt != "int4_g128") {
        module.emitError() << "lm-head / embed quantization must be none, int8, int6_g64, "
                              "int6_g128, int4_g64 or int4_g128, got '"
                           << *opt << "'";
        return signalPassFailure();
      }
    bool conflict = false;
    auto mark = [&](FlatSymbolRefAttr ref, const std::string& s, Operation* op) {
      auto [it, inserted] = head.try_emplace(ref.getAttr(), s);
      if (!inserted && it->second != s && !conflict) {
        op->emitError() << "weight @" << ref.getValue() << " is both the output projection and the "
                        << "embedding table (tied): lm-head " << lmHead << " and embed " << embedTable
                        << " disagree; give one scheme";
        conflict = true;
      }
    };
    module.walk([&](Operation* op) {
      if (auto l = dyn_cast<LogitsOp>(op); l && lmHead != "none") mark(l.getWeightAttr(), lmHead, op);
      if (auto e = dyn_cast<EmbedOp>(op); e && embedTable != "none") mark(e.getWeightAttr(), embedTable, op);
    });
    if (conflict) return signalPassFailure();
    OpBuilder b(&getContext());
    for (WeightOp w : module.getOps<WeightOp>()) {
      bool isGemm = scheme != "none" && gemm.contains(w.getSymNameAttr());
      auto headIt = head.find(w.getSymNameAttr());
      bool isHead = headIt != head.end();
      if (!isGemm && !isHead) continue;
      Type e = w.getTensorType().getElementType();
      if (!(e.isF32() || e.isF16() || e.isBF16())) continue;  // native FP8 stays as it is
      w.setQuantAttr(b.getStringAttr(isHead ? headIt->second : scheme.getValue()));
      ++numQuantized;
    }
    // The verifier rejects unknown schemes with a message naming the weight.
    if (failed(verify(module))) signalPassFailure();
  }
};

}  // namespace
}  // namespace mlir::ds
