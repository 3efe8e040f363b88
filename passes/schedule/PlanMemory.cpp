// ds-schedule-plan-memory: pack @step's activation buffers into per-row-space arenas by liveness.
#include "passes/Passes.h"

#include <algorithm>

#include "llvm/ADT/DenseMap.h"

#define DEBUG_TYPE "ds-schedule-plan-memory"

namespace mlir::ds {
#define GEN_PASS_DEF_PLANMEMORYPASS
#include "passes/Passes.h.inc"

namespace {

int64_t rowBytes(MemRefType type) {
  int64_t n = type.getElementTypeBitWidth() / 8;
  for (int64_t d : type.getShape().drop_front()) n *= d;
  return n;
}

struct Interval {
  dsk::AllocOp alloc;
  int64_t bytes, begin, end;  // live over launches [begin, end]
  int64_t offset = -1;
};

// Best-fit placement of intervals into one arena; returns the arena size.
int64_t place(std::vector<Interval>& items) {
  constexpr int64_t kAlign = 64;
  std::vector<Interval*> order;
  for (Interval& i : items) order.push_back(&i);
  std::stable_sort(order.begin(), order.end(), [](Interval* a, Interval* b) {
    return a->bytes != b->bytes ? a->bytes > b->bytes : a->begin < b->begin;
  });
  int64_t arena = 0;
  std::vector<Interval*> placed;
  for (Interval* it : order) {
    // Occupied ranges of the placed buffers that are live at the same time as `it`.
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (Interval* p : placed)
      if (p->begin <= it->end && it->begin <= p->end) busy.push_back({p->offset, p->offset + p->bytes});
    std::sort(busy.begin(), busy.end());
    int64_t best = -1, bestGap = INT64_MAX, cursor = 0;
    for (auto [lo, hi] : busy) {
      if (lo - cursor >= it->bytes && lo - cursor < bestGap) {
        best = cursor;
        bestGap = lo - cursor;
      }
      cursor = std::max(cursor, (hi + kAlign - 1) / kAlign * kAlign);
    }
    it->offset = best >= 0 ? best : cursor;
    arena = std::max(arena, it->offset + it->bytes);
    placed.push_back(it);
  }
  return arena;
}

struct PlanMemoryPass : impl::PlanMemoryPassBase<PlanMemoryPass> {
  void runOnOperation() override {
    auto step = getOperation().lookupSymbol<func::FuncOp>("step");
    if (!step) {
      getOperation().emitError() << "expected a func.func @step (run ds-convert-to-kernels first)";
      return signalPassFailure();
    }
    Block& body = step.getBody().front();
    // Position of every op; a value's uses through views count as uses of its root buffer.
    llvm::DenseMap<Operation*, int64_t> index;
    int64_t n = 0;
    for (Operation& op : body) index[&op] = n++;
    llvm::DenseMap<Value, dsk::AllocOp> root;
    std::vector<Interval> tokens, rows;
    llvm::DenseMap<Operation*, Interval*> byAlloc;
    for (Operation& op : body) {
      if (auto alloc = dyn_cast<dsk::AllocOp>(op)) root[alloc.getBuffer()] = alloc;
      if (auto view = dyn_cast<dsk::ViewOp>(op))
        if (dsk::AllocOp r = root.lookup(view.getSource())) root[view.getResult()] = r;
    }
    llvm::DenseMap<Operation*, std::pair<int64_t, int64_t>> live;
    for (Operation& op : body) {
      for (Value v : op.getOperands()) {
        dsk::AllocOp r = root.lookup(v);
        if (!r) continue;
        auto& range = live.try_emplace(r, index[r], index[r]).first->second;
        range.second = std::max(range.second, isa<func::ReturnOp>(op) ? n : index[&op]);
      }
    }
    for (Operation& op : body) {
      auto alloc = dyn_cast<dsk::AllocOp>(op);
      if (!alloc) continue;
      auto [b, e] = live.lookup(alloc);
      Interval it{alloc, rowBytes(alloc.getBuffer().getType()), b, std::max(b, e)};
      (alloc.getRows() == dsk::RowSpace::tokens ? tokens : rows).push_back(it);
    }
    auto sum = [](const std::vector<Interval>& v) {
      int64_t s = 0;
      for (const Interval& i : v) s += i.bytes;
      return s;
    };
    OpBuilder b(&getContext());
    int64_t unplannedTokens = sum(tokens), unplannedRows = sum(rows);
    int64_t arenaTokens = place(tokens), arenaRows = place(rows);
    for (auto* list : {&tokens, &rows})
      for (Interval& i : *list) {
        i.alloc->setAttr("offset", b.getI64IntegerAttr(i.offset));
        ++numBuffers;
      }
    step->setAttr("dsk.arena_bytes_per_token", b.getI64IntegerAttr(arenaTokens));
    step->setAttr("dsk.arena_bytes_per_logit_row", b.getI64IntegerAttr(arenaRows));
    step->setAttr("dsk.unplanned_bytes_per_token", b.getI64IntegerAttr(unplannedTokens));
    step->setAttr("dsk.unplanned_bytes_per_logit_row", b.getI64IntegerAttr(unplannedRows));
  }
};

}  // namespace
}  // namespace mlir::ds
