// ds-shard-tensor-parallel: @forward -> the SPMD program of one of max(tp, ep) ranks, weights cut.
#include "passes/Passes.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/TypeSwitch.h"

#define DEBUG_TYPE "ds-shard-tensor-parallel"

namespace mlir::ds {
#define GEN_PASS_DEF_SHARDTENSORPARALLELPASS
#include "passes/Passes.h.inc"

namespace {

// How a value is laid out across ranks. Split values are cut along their parallel dimension
// (the last one of [T, C], the heads of [T, H, D]) into `pieces` parts; rank r holds part
// r / (tp / pieces). Partial values never escape: an all_reduce follows their producer.
struct Layout {
  int64_t pieces = 0;  // 0: replicated (every rank holds the whole value)
  bool split() const { return pieces > 0; }
};

int64_t parallelDim(Value v) { return cast<RankedTensorType>(v.getType()).getRank() == 3 ? 1 : -1; }

RankedTensorType divideDim(RankedTensorType t, int64_t dim, int64_t by) {
  SmallVector<int64_t> shape(t.getShape());
  if (dim < 0) dim += t.getRank();
  shape[dim] /= by;
  return RankedTensorType::get(shape, t.getElementType());
}

struct ShardTensorParallelPass : impl::ShardTensorParallelPassBase<ShardTensorParallelPass> {
  using Base::Base;

  int64_t N = 1;      // ranks: max(tp, ep)
  bool dense = false;  // tp > 1: attention, MLPs, embedding and logits are cut too
  ModuleOp module;
  llvm::DenseMap<Value, Layout> layout;
  llvm::DenseMap<Value, int64_t> splitMemo;  // -1 while being computed
  // Each weight's decision: {dim, pieces}, or {-1, 0} for "used whole".
  llvm::StringMap<std::pair<int64_t, int64_t>> weightCut;

  void runOnOperation() override {
    module = getOperation();
    if (tp < 1 || ep < 1) {
      module.emitError() << "ds-shard-tensor-parallel: tp and ep must be >= 1, got tp "
                         << tp.getValue() << ", ep " << ep.getValue();
      return signalPassFailure();
    }
    if (tp > 1 && ep > 1 && tp != ep) {
      module.emitError() << "ds-shard-tensor-parallel: ep " << ep.getValue()
                         << " must be 1 or equal tp " << tp.getValue()
                         << " (experts are distributed over the same ranks)";
      return signalPassFailure();
    }
    N = std::max<int64_t>(tp, ep);
    dense = tp > 1;
    if (N == 1) return;
    if (module->hasAttr("ds.tp")) {
      module.emitError() << "module is already sharded (ds.tp is set)";
      return signalPassFailure();
    }
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward) {
      module.emitError() << "expected a func.func @forward to shard";
      return signalPassFailure();
    }
    module->setAttr("ds.tp", IntegerAttr::get(IntegerType::get(&getContext(), 64), N));
    if (ep > 1) module->setAttr("ds.ep", IntegerAttr::get(IntegerType::get(&getContext(), 64), ep));
    // Decide every value's layout on the unsharded types first; the rewrite then retypes.
    forward.walk([&](Operation* op) {
      for (Value r : op->getResults())
        if (isa<RankedTensorType>(r.getType())) splitPieces(r);
    });
    for (Operation& op : llvm::make_early_inc_range(forward.getBody().front()))
      if (failed(rewrite(&op))) return signalPassFailure();
    if (failed(applyWeightCuts())) return signalPassFailure();
  }

  //===--------------------------------------------------------------------===//
  // Analysis: into how many pieces may `v` be produced split (0: it must be whole)?
  //===--------------------------------------------------------------------===//

  int64_t kvPieces(int64_t kvHeads) const {
    if (kvHeads % N == 0) return N;
    if (N % kvHeads == 0) return kvHeads;
    return 0;
  }

  // Query heads split N ways and the result flowing on split: the attention can go head-parallel.
  bool attentionSplits(AttentionOp a) {
    int64_t hq = a.getQ().getType().getDimSize(1), hkv = a.getK().getType().getDimSize(1);
    return hq % N == 0 && kvPieces(hkv) > 0 && splitPieces(a.getResult()) == N;
  }
  bool mlaSplits(MLAAttentionOp a) {
    return a.getQNope().getType().getDimSize(1) % N == 0 && splitPieces(a.getResult()) == N;
  }

  int64_t splitPieces(Value v) {
    if (!dense) return 0;  // expert parallelism alone: everything but the experts is whole
    auto it = splitMemo.find(v);
    if (it != splitMemo.end()) return it->second < 0 ? 0 : it->second;
    splitMemo[v] = -1;
    int64_t result = -2;  // no use seen yet
    auto meet = [&](int64_t p) { result = (result == -2 || result == p) ? p : 0; };
    for (OpOperand& use : v.getUses()) {
      Operation* user = use.getOwner();
      int64_t p = llvm::TypeSwitch<Operation*, int64_t>(user)
          .Case<ViewOp>([&](ViewOp view) -> int64_t {
            int64_t q = splitPieces(view.getResult());
            if (q && view.getType().getRank() == 3 && view.getType().getDimSize(1) % q != 0) return 0;
            return q;
          })
          .Case<SliceOp>([&](SliceOp s) -> int64_t {
            return s.getInput().getType().getRank() == 3 ? splitPieces(s.getResult()) : 0;
          })
          .Case<RopeOp>([&](RopeOp r) { return splitPieces(r.getResult()); })
          .Case<AttentionOp>([&](AttentionOp a) -> int64_t {
            if (!attentionSplits(a)) return 0;
            if (use.getOperandNumber() == 0) return N;
            if (use.getOperandNumber() <= 2) return kvPieces(a.getK().getType().getDimSize(1));
            return 0;
          })
          .Case<MLAAttentionOp>([&](MLAAttentionOp a) -> int64_t {
            bool query = use.get() == a.getQNope() || use.get() == a.getQRope();
            return query && mlaSplits(a) ? N : 0;
          })
          .Case<SwiGLUOp>([&](SwiGLUOp s) { return splitPieces(s.getResult()); })
          .Case<LinearOp>([&](LinearOp l) -> int64_t {
            // Row-parallel: each rank multiplies its slice of the input by its weight columns.
            int64_t in = l.getInput().getType().getDimSize(1);
            return !l.getBiasAttr() && in % N == 0 ? N : 0;
          })
          .Default([](Operation*) -> int64_t { return 0; });
      meet(p);
    }
    if (result < 0) result = 0;
    splitMemo[v] = result;
    return result;
  }

  //===--------------------------------------------------------------------===//
  // Rewrite, op by op in program order.
  //===--------------------------------------------------------------------===//

  LogicalResult cut(Operation* user, FlatSymbolRefAttr ref, int64_t dim, int64_t pieces) {
    if (!ref) return success();
    auto [it, inserted] = weightCut.try_emplace(ref.getValue(), dim, pieces);
    if (!inserted && it->second != std::make_pair(dim, pieces))
      return user->emitOpError() << "uses weight " << ref
                                 << " with a different tensor-parallel cut than an earlier op";
    return success();
  }
  LogicalResult keepWhole(Operation* user, FlatSymbolRefAttr ref) { return cut(user, ref, -1, 0); }

  Value allReduce(OpBuilder& b, Value partial) {
    ++numCollectives;
    return AllReduceOp::create(b, partial.getLoc(), partial.getType(), partial);
  }

  // Replaces every later use of `old` with `repl` (built right after it).
  void replaceAfter(Value old, Value repl) {
    old.replaceUsesWithIf(repl, [&](OpOperand& u) { return u.getOwner() != repl.getDefiningOp(); });
  }

  // A split operand reaching an op that needs the whole value (a fallback: the analysis keeps
  // this off the common paths): gather the ranks' slices back.
  FailureOr<Value> whole(Operation* user, OpOperand& operand) {
    Value v = operand.get();
    Layout l = layout.lookup(v);
    if (!l.split()) return v;
    if (l.pieces != N)
      return user->emitOpError() << "needs the whole of a value replicated over fewer ranks";
    OpBuilder b(user);
    auto type = cast<RankedTensorType>(v.getType());
    Value flat = v;
    if (type.getRank() == 3)
      flat = ViewOp::create(b, v.getLoc(),
                            RankedTensorType::get({type.getDimSize(0), type.getDimSize(1) * type.getDimSize(2)},
                                                  type.getElementType()), v);
    auto flatType = cast<RankedTensorType>(flat.getType());
    Value gathered = AllGatherOp::create(
        b, v.getLoc(),
        RankedTensorType::get({flatType.getDimSize(0), flatType.getDimSize(1) * N},
                              flatType.getElementType()),
        flat);
    ++numCollectives;
    if (type.getRank() == 3)
      gathered = ViewOp::create(b, v.getLoc(), RankedTensorType::get(
          {type.getDimSize(0), type.getDimSize(1) * N, type.getDimSize(2)}, type.getElementType()), gathered);
    operand.set(gathered);
    return gathered;
  }

  LogicalResult requireWhole(Operation* op) {
    for (OpOperand& operand : op->getOpOperands())
      if (isa<RankedTensorType>(operand.get().getType()) && failed(whole(op, operand)))
        return failure();
    return success();
  }

  void setSplit(Value v, int64_t pieces) {
    v.setType(divideDim(cast<RankedTensorType>(v.getType()), parallelDim(v), pieces));
    layout[v] = {pieces};
  }

  LogicalResult rewrite(Operation* op) {
    OpBuilder after(op->getContext());
    after.setInsertionPointAfter(op);
    return llvm::TypeSwitch<Operation*, LogicalResult>(op)
        .Case<EmbedOp>([&](EmbedOp e) -> LogicalResult {
          int64_t vocab = weightShape(e.getWeightAttr())[0];
          if (!dense || vocab % N != 0) return keepWhole(op, e.getWeightAttr());
          if (failed(cut(op, e.getWeightAttr(), 0, N))) return failure();
          e.setRowsPerRank(vocab / N);
          replaceAfter(e.getResult(), allReduce(after, e.getResult()));
          return success();
        })
        .Case<LinearOp>([&](LinearOp l) -> LogicalResult {
          Layout in = layout.lookup(l.getInput());
          if (in.split() && in.pieces == N && !l.getBiasAttr()) {
            if (failed(cut(op, l.getWeightAttr(), 1, N))) return failure();
            replaceAfter(l.getResult(), allReduce(after, l.getResult()));
            return success();
          }
          if (failed(requireWhole(op))) return failure();
          int64_t p = splitPieces(l.getResult());
          if (p == 0 || l.getType().getDimSize(1) % p != 0) {
            if (failed(keepWhole(op, l.getWeightAttr())) || failed(keepWhole(op, l.getBiasAttr())))
              return failure();
            return success();
          }
          if (failed(cut(op, l.getWeightAttr(), 0, p)) || failed(cut(op, l.getBiasAttr(), 0, p)))
            return failure();
          setSplit(l.getResult(), p);
          return success();
        })
        .Case<ViewOp, SliceOp, RopeOp>([&](Operation*) -> LogicalResult {
          Layout in = layout.lookup(op->getOperand(0));
          if (!in.split()) return success();
          setSplit(op->getResult(0), in.pieces);
          return success();
        })
        .Case<AttentionOp>([&](AttentionOp a) -> LogicalResult {
          Layout q = layout.lookup(a.getQ());
          if (!q.split()) return requireWhole(op);
          Layout k = layout.lookup(a.getK()), v = layout.lookup(a.getV());
          if (q.pieces != N || !k.split() || k.pieces != v.pieces)
            return op->emitOpError() << "has query/key/value heads cut inconsistently";
          setSplit(a.getResult(), N);
          return success();
        })
        .Case<MLAAttentionOp>([&](MLAAttentionOp a) -> LogicalResult {
          Layout q = layout.lookup(a.getQNope());
          if (!q.split()) return success(keepWhole(op, a.getKvBAttr()).succeeded() &&
                                         requireWhole(op).succeeded());
          if (layout.lookup(a.getQRope()).pieces != N || layout.lookup(a.getCKv()).split() ||
              layout.lookup(a.getKRope()).split())
            return op->emitOpError() << "needs split query heads and a whole latent";
          if (failed(cut(op, a.getKvBAttr(), 0, N))) return failure();
          setSplit(a.getResult(), N);
          return success();
        })
        .Case<SwiGLUOp>([&](SwiGLUOp s) -> LogicalResult {
          Layout g = layout.lookup(s.getGate()), u = layout.lookup(s.getUp());
          if (g.split() && g.pieces == u.pieces) {
            setSplit(s.getResult(), g.pieces);
            return success();
          }
          return requireWhole(op);
        })
        .Case<MoEExpertsOp>([&](MoEExpertsOp m) -> LogicalResult {
          if (failed(requireWhole(op))) return failure();
          SmallVector<int64_t> gate = weightShape(m.getGateAttr());
          int64_t experts = gate[0], inter = gate[1];
          int64_t shared = m.getSharedGateAttr() ? weightShape(m.getSharedGateAttr())[0] : N;
          if (ep > 1 && experts % N == 0 && shared % N == 0) {
            // Expert parallel: each rank holds experts / N whole experts and skips the routed
            // slots of the others; shared experts are cut inside so the ranks' results sum.
            if (failed(cut(op, m.getGateAttr(), 0, N)) || failed(cut(op, m.getUpAttr(), 0, N)) ||
                failed(cut(op, m.getDownAttr(), 0, N)) ||
                failed(cut(op, m.getSharedGateAttr(), 0, N)) ||
                failed(cut(op, m.getSharedUpAttr(), 0, N)) ||
                failed(cut(op, m.getSharedDownAttr(), 1, N)))
              return failure();
            m.setExpertsPerRank(experts / N);
            ++numExpertParallel;
            replaceAfter(m.getResult(), allReduce(after, m.getResult()));
            return success();
          }
          if (!dense || inter % N != 0 || shared % N != 0) {
            for (auto ref : {m.getGateAttr(), m.getUpAttr(), m.getDownAttr(), m.getSharedGateAttr(),
                             m.getSharedUpAttr(), m.getSharedDownAttr()})
              if (failed(keepWhole(op, ref))) return failure();
            return success();
          }
          if (failed(cut(op, m.getGateAttr(), 1, N)) || failed(cut(op, m.getUpAttr(), 1, N)) ||
              failed(cut(op, m.getDownAttr(), 2, N)) || failed(cut(op, m.getSharedGateAttr(), 0, N)) ||
              failed(cut(op, m.getSharedUpAttr(), 0, N)) || failed(cut(op, m.getSharedDownAttr(), 1, N)))
            return failure();
          replaceAfter(m.getResult(), allReduce(after, m.getResult()));
          return success();
        })
        .Case<LogitsOp>([&](LogitsOp l) -> LogicalResult {
          if (failed(requireWhole(op))) return failure();
          int64_t vocab = l.getType().getDimSize(1);
          if (!dense || vocab % N != 0) return keepWhole(op, l.getWeightAttr());
          if (failed(cut(op, l.getWeightAttr(), 0, N))) return failure();
          RankedTensorType full = l.getType();
          l.getResult().setType(divideDim(full, 1, N));
          Value gathered = AllGatherOp::create(after, l.getLoc(), full, l.getResult());
          ++numCollectives;
          replaceAfter(l.getResult(), gathered);
          return success();
        })
        .Case<AllReduceOp, AllGatherOp>([](Operation*) { return success(); })
        .Case<AddRMSNormOp, SwiGLULinearOp, QKVRopeOp, MLAProjectOp>([&](Operation*) {
          return op->emitOpError() << "is fused; run ds-shard-tensor-parallel before fusion";
        })
        .Default([&](Operation*) -> LogicalResult {
          // Norms, adds, the router, return: they need whole values and whole weights.
          if (failed(requireWhole(op))) return failure();
          for (NamedAttribute attr : op->getAttrs())
            if (auto ref = dyn_cast<FlatSymbolRefAttr>(attr.getValue()))
              if (failed(keepWhole(op, ref))) return failure();
          return success();
        });
  }

  SmallVector<int64_t> weightShape(FlatSymbolRefAttr ref) {
    auto w = module.lookupSymbol<WeightOp>(ref.getAttr());
    return w ? SmallVector<int64_t>(w.getTensorType().getShape()) : SmallVector<int64_t>{0, 0, 0};
  }

  LogicalResult applyWeightCuts() {
    for (auto& entry : weightCut) {
      auto [dim, pieces] = entry.second;
      if (pieces == 0) continue;
      auto w = module.lookupSymbol<WeightOp>(entry.getKey());
      if (!w) return module.emitError() << "unknown weight @" << entry.getKey();
      RankedTensorType t = w.getTensorType();
      if (t.getDimSize(dim) % pieces != 0)
        return w.emitOpError() << "dimension " << dim << " (" << t.getDimSize(dim)
                               << ") does not split into " << pieces << " pieces";
      w.setType(divideDim(t, dim, pieces));
      w.setShard(ArrayRef<int64_t>{dim, pieces});
      if (w.getExperts() && dim == 0) w.setExperts(t.getDimSize(0) / pieces);
      ++numSharded;
    }
    return success();
  }
};

}  // namespace
}  // namespace mlir::ds
