// ds-convert-to-kernels: func @forward (ds graph, tensors) -> func @step (dsk launches, buffers).
#include "passes/Passes.h"

#include "abi/launch_abi.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/TypeSwitch.h"

#define DEBUG_TYPE "ds-convert-to-kernels"

namespace mlir::ds {
#define GEN_PASS_DEF_CONVERTDSTOKERNELSPASS
#include "passes/Passes.h.inc"

namespace {

MemRefType bufferType(Type tensorType) {
  auto t = cast<RankedTensorType>(tensorType);
  return MemRefType::get(t.getShape(), t.getElementType());
}

// The launch ABI signature of a ds op: the dsk kernel of the same name (ds.rms_norm -> rms_norm).
const ::ds::abi::KernelSignature* signatureFor(Operation* op) {
  return ::ds::abi::signatureByName(op->getName().stripDialect());
}

dsk::RowSpace rowSpaceOf(Value buffer) {
  if (auto alloc = buffer.getDefiningOp<dsk::AllocOp>()) return alloc.getRows();
  if (auto view = buffer.getDefiningOp<dsk::ViewOp>()) return rowSpaceOf(view.getSource());
  return dsk::RowSpace::tokens;
}

struct ConvertDsToKernelsPass : impl::ConvertDsToKernelsPassBase<ConvertDsToKernelsPass> {
  using Base::Base;

  // The step's KV cache type from the attention ops of @forward (null without attention).
  FailureOr<dsk::KVCacheType> kvCacheType(func::FuncOp forward) {
    MLIRContext* ctx = &getContext();
    if (kvBlockSize < 1 || kvBlockSize > ::ds::abi::kMaxKvBlockSize)
      return forward.emitError() << "kv-block-size must be in [1, " << ::ds::abi::kMaxKvBlockSize
                                 << "], got " << kvBlockSize;
    Type element;
    if (kvCache == "f32") element = Float32Type::get(ctx);
    else if (kvCache == "bf16") element = BFloat16Type::get(ctx);
    else if (kvCache == "int8") element = IntegerType::get(ctx, 8);
    else if (kvCache == "fp8") element = Float8E4M3FNType::get(ctx);
    else return forward.emitError() << "kv-cache must be f32, bf16, int8 or fp8, got '" << kvCache << "'";
    std::optional<dsk::KVKind> kind;
    int64_t layers = 0, heads = 0, headDim = 0, vDim = 0, rank = 0, ropeDim = 0;
    auto dims = [](Value v) { return cast<RankedTensorType>(v.getType()).getShape(); };
    WalkResult walk = forward.walk([&](Operation* op) -> WalkResult {
      dsk::KVKind k;
      if (auto a = dyn_cast<AttentionOp>(op)) {
        k = dsk::KVKind::gqa;
        heads = dims(a.getK())[1];
        headDim = dims(a.getK())[2];
        vDim = dims(a.getV())[2];
        layers = std::max<int64_t>(layers, a.getLayer() + 1);
      } else if (auto m = dyn_cast<MLAAttentionOp>(op)) {
        k = dsk::KVKind::mla;
        rank = dims(m.getCKv())[1];
        ropeDim = dims(m.getKRope())[1];
        layers = std::max<int64_t>(layers, m.getLayer() + 1);
      } else {
        return WalkResult::advance();
      }
      if (kind && *kind != k) {
        op->emitOpError() << "mixes GQA and MLA attention in one model: one KV cache layout per plan";
        return WalkResult::interrupt();
      }
      kind = k;
      return WalkResult::advance();
    });
    if (walk.wasInterrupted()) return failure();
    if (!kind) return dsk::KVCacheType();
    return dsk::KVCacheType::getChecked([&] { return forward.emitError(); }, ctx, *kind, layers,
                                        int64_t(kvBlockSize), heads, headDim, vDim, rank, ropeDim,
                                        element);
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward) {
      module.emitError() << "expected a func.func @forward to lower";
      return signalPassFailure();
    }
    if (failed(lower(forward))) return signalPassFailure();
    forward.erase();
  }

  LogicalResult lower(func::FuncOp forward) {
    OpBuilder b(forward);
    MLIRContext* ctx = &getContext();
    Block& body = forward.getBody().front();
    if (body.getNumArguments() != 4 || !isa<KVCacheType>(body.getArgument(2).getType()))
      return forward.emitError() << "@forward must take (ids, positions, kv_cache, logit_rows)";
    auto i32Buffer = MemRefType::get({ShapedType::kDynamic}, b.getI32Type());
    auto returnOp = cast<func::ReturnOp>(body.getTerminator());
    Type logitsType = bufferType(returnOp.getOperand(0).getType());
    FailureOr<dsk::KVCacheType> kvType = kvCacheType(forward);
    if (failed(kvType)) return failure();
    SmallVector<Type> args = {i32Buffer, i32Buffer, i32Buffer};
    if (*kvType) args.push_back(*kvType);
    auto step = func::FuncOp::create(b, forward.getLoc(), "step",
                                     FunctionType::get(ctx, args, {logitsType}));
    step.setArgAttr(0, "ds.name", b.getStringAttr("token_ids"));
    step.setArgAttr(1, "ds.name", b.getStringAttr("positions"));
    step.setArgAttr(2, "ds.name", b.getStringAttr("logit_rows"));
    if (*kvType) step.setArgAttr(3, "ds.name", b.getStringAttr("kv_cache"));
    Block* entry = step.addEntryBlock();
    Value kvCacheValue = *kvType ? entry->getArgument(3) : Value();
    b.setInsertionPointToStart(entry);

    IRMapping map;
    map.map(body.getArgument(0), entry->getArgument(0));
    map.map(body.getArgument(1), entry->getArgument(1));
    map.map(body.getArgument(3), entry->getArgument(2));

    for (Operation& op : body.without_terminator()) {
      Location loc = op.getLoc();
      if (auto view = dyn_cast<ViewOp>(op)) {
        map.map(view.getResult(), dsk::ViewOp::create(b, loc, bufferType(view.getType()),
                                                      map.lookup(view.getInput())));
        continue;
      }
      const ::ds::abi::KernelSignature* sig = signatureFor(&op);
      std::optional<dsk::Kernel> kernel =
          sig ? dsk::symbolizeKernel(sig->name) : std::optional<dsk::Kernel>();
      if (!kernel) return op.emitOpError() << "has no kernel in the launch ABI table";
      SmallVector<Value> ins;
      for (Value operand : op.getOperands())
        if (!isa<KVCacheType>(operand.getType())) ins.push_back(map.lookup(operand));
      // Logits (and collectives over them) have one row per requested logit row.
      dsk::RowSpace rows = dsk::RowSpace::tokens;
      if (isa<LogitsOp>(op) || (isa<AllReduceOp, AllGatherOp>(op) && !ins.empty() &&
                                rowSpaceOf(ins.front()) == dsk::RowSpace::logit_rows))
        rows = dsk::RowSpace::logit_rows;
      SmallVector<Value> outs;
      for (Value result : op.getResults()) {
        Value buffer = dsk::AllocOp::create(b, loc, bufferType(result.getType()),
                                            dsk::RowSpaceAttr::get(ctx, rows), IntegerAttr());
        map.map(result, buffer);
        outs.push_back(buffer);
      }
      // Weights in the signature's slot order; `unit` marks an absent optional slot, trailing
      // absent slots are left out.
      SmallVector<Attribute> weights;
      for (size_t i = 0; i < sig->num_weights; ++i) {
        auto ref = op.getAttrOfType<FlatSymbolRefAttr>(sig->weights[i].name);
        weights.push_back(ref ? Attribute(ref) : Attribute(UnitAttr::get(ctx)));
      }
      while (!weights.empty() && isa<UnitAttr>(weights.back())) weights.pop_back();
      SmallVector<NamedAttribute> params;
      for (NamedAttribute attr : op.getAttrs())
        if (!isa<FlatSymbolRefAttr>(attr.getValue())) params.push_back(attr);
      Value kv = sig->kv_cache != ::ds::abi::KVUse::None ? kvCacheValue : Value();
      dsk::LaunchOp::create(b, loc, dsk::KernelAttr::get(ctx, *kernel), kv, ins, outs,
                            b.getArrayAttr(weights), b.getDictionaryAttr(params));
    }
    func::ReturnOp::create(b, returnOp.getLoc(), map.lookup(returnOp.getOperand(0)));
    return success();
  }
};

}  // namespace
}  // namespace mlir::ds
