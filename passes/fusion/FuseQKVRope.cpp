// ds-fusion-qkv-rope: attention's q/k/v projections + views + q/k rope become one ds.qkv_rope.
#include "passes/Passes.h"

#define DEBUG_TYPE "ds-fusion-qkv-rope"

namespace mlir::ds {
#define GEN_PASS_DEF_FUSEQKVROPEPASS
#include "passes/Passes.h.inc"

namespace {

// value = view(linear(...)) with single uses; returns the linear.
LinearOp viewedLinear(Value v, ViewOp* view) {
  auto vw = v.getDefiningOp<ViewOp>();
  if (!vw || !vw->hasOneUse()) return {};
  auto lin = vw.getInput().getDefiningOp<LinearOp>();
  if (!lin || !lin->hasOneUse()) return {};
  *view = vw;
  return lin;
}

struct FuseQKVRopePass : impl::FuseQKVRopePassBase<FuseQKVRopePass> {
  void runOnOperation() override {
    SmallVector<AttentionOp> attns;
    getOperation().walk([&](AttentionOp a) { attns.push_back(a); });
    for (AttentionOp a : attns) {
      auto rq = a.getQ().getDefiningOp<RopeOp>();
      auto rk = a.getK().getDefiningOp<RopeOp>();
      if (!rq || !rk || rq == rk || !rq->hasOneUse() || !rk->hasOneUse()) continue;
      if (rq.getRope() != rk.getRope() || rq.getPositions() != rk.getPositions()) continue;
      ViewOp vq, vk, vv;
      LinearOp lq = viewedLinear(rq.getInput(), &vq), lk = viewedLinear(rk.getInput(), &vk),
               lv = viewedLinear(a.getV(), &vv);
      if (!lq || !lk || !lv || !vv->hasOneUse()) continue;
      if (lq.getInput() != lk.getInput() || lq.getInput() != lv.getInput()) continue;
      int biases = !!lq.getBiasAttr() + !!lk.getBiasAttr() + !!lv.getBiasAttr();
      if (biases != 0 && biases != 3) continue;
      OpBuilder b(a);
      auto fused = QKVRopeOp::create(b, a.getLoc(), rq.getType(), rk.getType(), vv.getType(),
                                     lq.getWeightAttr(), lk.getWeightAttr(), lv.getWeightAttr(),
                                     lq.getInput(), rq.getPositions(), rq.getRope(),
                                     lq.getBiasAttr(), lk.getBiasAttr(), lv.getBiasAttr());
      a.getQMutable().assign(fused.getQ());
      a.getKMutable().assign(fused.getK());
      a.getVMutable().assign(fused.getV());
      for (Operation* op : {rq.getOperation(), rk.getOperation(), vq.getOperation(),
                            vk.getOperation(), vv.getOperation(), lq.getOperation(),
                            lk.getOperation(), lv.getOperation()})
        op->erase();
      ++numFused;
    }
  }
};

}  // namespace
}  // namespace mlir::ds
