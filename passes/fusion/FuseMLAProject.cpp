// ds-fusion-mla-project: DeepSeek's MLA prologue (q LoRA, latent, splits, ropes) -> ds.mla_project.
#include "passes/Passes.h"

#define DEBUG_TYPE "ds-fusion-mla-project"

namespace mlir::ds {
#define GEN_PASS_DEF_FUSEMLAPROJECTPASS
#include "passes/Passes.h.inc"

namespace {

template <typename OpT>
OpT single(Value v) {
  auto op = v.getDefiningOp<OpT>();
  return op && op->hasOneUse() ? op : OpT();
}

struct FuseMLAProjectPass : impl::FuseMLAProjectPassBase<FuseMLAProjectPass> {
  void runOnOperation() override {
    SmallVector<MLAAttentionOp> attns;
    getOperation().walk([&](MLAAttentionOp a) { attns.push_back(a); });
    for (MLAAttentionOp m : attns) fuse(m);
  }

  void fuse(MLAAttentionOp m) {
    // q side: q_nope = slice(q3, 0), q_rope = rope(slice(q3, nope)), q3 = view(q_b(...)).
    auto sNope = single<SliceOp>(m.getQNope());
    auto rq = single<RopeOp>(m.getQRope());
    if (!sNope || !rq || sNope.getOffset() != 0) return;
    auto sPe = single<SliceOp>(rq.getInput());
    if (!sPe || sPe.getInput() != sNope.getInput()) return;
    auto q3 = sNope.getInput().getDefiningOp<ViewOp>();
    if (!q3 || !llvm::hasNItems(q3->getUses(), 2)) return;
    auto qb = single<LinearOp>(q3.getInput());
    if (!qb || qb.getBiasAttr()) return;
    // kv side: c_kv = rms_norm(slice(kva, 0)), k_rope = view(rope(view(slice(kva, rank)))).
    auto kn = single<RMSNormOp>(m.getCKv());
    auto kOut = single<ViewOp>(m.getKRope());
    if (!kn || !kOut) return;
    auto rk = single<RopeOp>(kOut.getInput());
    if (!rk || rk.getRope() != rq.getRope() || rk.getPositions() != rq.getPositions()) return;
    auto kIn = single<ViewOp>(rk.getInput());
    if (!kIn) return;
    auto sKpe = single<SliceOp>(kIn.getInput());
    auto sCkv = single<SliceOp>(kn.getInput());
    if (!sKpe || !sCkv || sCkv.getOffset() != 0 || sKpe.getInput() != sCkv.getInput()) return;
    auto kva = sCkv.getInput().getDefiningOp<LinearOp>();
    if (!kva || kva.getBiasAttr() || !llvm::hasNItems(kva->getUses(), 2)) return;
    Value x = kva.getInput();
    // q LoRA (q_b(rms_norm(q_a(x)))) or a plain q_proj(x).
    RMSNormOp qn;
    LinearOp qa;
    if (qb.getInput() != x) {
      qn = single<RMSNormOp>(qb.getInput());
      if (!qn) return;
      qa = single<LinearOp>(qn.getInput());
      if (!qa || qa.getInput() != x || qa.getBiasAttr()) return;
      if (qn.getEps() != kn.getEps()) return;
    }
    OpBuilder b(m);
    auto fused = MLAProjectOp::create(
        b, m.getLoc(), m.getQNope().getType(), m.getQRope().getType(), m.getCKv().getType(),
        m.getKRope().getType(), qa ? qa.getWeightAttr() : FlatSymbolRefAttr(),
        qn ? qn.getWeightAttr() : FlatSymbolRefAttr(), qb.getWeightAttr(), kva.getWeightAttr(),
        kn.getWeightAttr(), x, rq.getPositions(), rq.getRope(), kn.getEpsAttr());
    m.getQNopeMutable().assign(fused.getQNope());
    m.getQRopeMutable().assign(fused.getQRope());
    m.getCKvMutable().assign(fused.getCKv());
    m.getKRopeMutable().assign(fused.getKRope());
    SmallVector<Operation*> dead = {sNope, rq, sPe, q3, qb, kn, kOut, rk, kIn, sKpe, sCkv, kva};
    if (qn) dead.append({qn, qa});
    // Erase users before producers.
    for (Operation* op : dead) op->dropAllUses();
    for (Operation* op : dead) op->erase();
    ++numFused;
  }
};

}  // namespace
}  // namespace mlir::ds
