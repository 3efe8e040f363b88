// ds-convert-to-kernels: func @forward (ds graph, tensors) -> func @step (dsk launches, buffers).
#include "passes/Passes.h"

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

std::optional<dsk::Kernel> kernelFor(Operation* op) {
  return llvm::TypeSwitch<Operation*, std::optional<dsk::Kernel>>(op)
      .Case<EmbedOp>([](auto) { return dsk::Kernel::embed; })
      .Case<RMSNormOp>([](auto) { return dsk::Kernel::rms_norm; })
      .Case<LinearOp>([](auto) { return dsk::Kernel::linear; })
      .Case<AddOp>([](auto) { return dsk::Kernel::add; })
      .Case<SwiGLUOp>([](auto) { return dsk::Kernel::swiglu; })
      .Case<SliceOp>([](auto) { return dsk::Kernel::slice; })
      .Case<RopeOp>([](auto) { return dsk::Kernel::rope; })
      .Case<AttentionOp>([](auto) { return dsk::Kernel::attention; })
      .Case<MLAAttentionOp>([](auto) { return dsk::Kernel::mla_attention; })
      .Case<MoEGateOp>([](auto) { return dsk::Kernel::moe_gate; })
      .Case<MoEExpertsOp>([](auto) { return dsk::Kernel::moe_experts; })
      .Case<LogitsOp>([](auto) { return dsk::Kernel::logits; })
      .Case<AddRMSNormOp>([](auto) { return dsk::Kernel::add_rms_norm; })
      .Case<SwiGLULinearOp>([](auto) { return dsk::Kernel::swiglu_linear; })
      .Case<QKVRopeOp>([](auto) { return dsk::Kernel::qkv_rope; })
      .Case<MLAProjectOp>([](auto) { return dsk::Kernel::mla_project; })
      .Case<AllReduceOp>([](auto) { return dsk::Kernel::all_reduce; })
      .Case<AllGatherOp>([](auto) { return dsk::Kernel::all_gather; })
      .Default([](Operation*) { return std::nullopt; });
}

// Weight operands in the order the runtime's kernels take them.
SmallVector<StringRef> weightAttrNames(Operation* op) {
  return llvm::TypeSwitch<Operation*, SmallVector<StringRef>>(op)
      .Case<LinearOp>([](auto) { return SmallVector<StringRef>{"weight", "bias"}; })
      .Case<MLAAttentionOp>([](auto) { return SmallVector<StringRef>{"kv_b"}; })
      .Case<SwiGLULinearOp>([](auto) { return SmallVector<StringRef>{"gate", "up"}; })
      .Case<QKVRopeOp>([](auto) { return SmallVector<StringRef>{"wq", "wk", "wv", "bq", "bk", "bv"}; })
      .Case<MLAProjectOp>([](auto) {
        return SmallVector<StringRef>{"q_a", "q_a_norm", "q_b", "kv_a", "kv_a_norm"};
      })
      .Case<MoEGateOp>([](auto) { return SmallVector<StringRef>{"weight", "correction_bias"}; })
      .Case<MoEExpertsOp>([](auto) {
        return SmallVector<StringRef>{"gate", "up", "down", "shared_gate", "shared_up", "shared_down"};
      })
      .Default([](Operation*) { return SmallVector<StringRef>{"weight"}; });
}

dsk::RowSpace rowSpaceOf(Value buffer) {
  if (auto alloc = buffer.getDefiningOp<dsk::AllocOp>()) return alloc.getRows();
  if (auto view = buffer.getDefiningOp<dsk::ViewOp>()) return rowSpaceOf(view.getSource());
  return dsk::RowSpace::tokens;
}

struct ConvertDsToKernelsPass : impl::ConvertDsToKernelsPassBase<ConvertDsToKernelsPass> {
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
    auto step = func::FuncOp::create(b, forward.getLoc(), "step",
                                     FunctionType::get(ctx, {i32Buffer, i32Buffer, i32Buffer},
                                                       {logitsType}));
    step.setArgAttr(0, "ds.name", b.getStringAttr("token_ids"));
    step.setArgAttr(1, "ds.name", b.getStringAttr("positions"));
    step.setArgAttr(2, "ds.name", b.getStringAttr("logit_rows"));
    Block* entry = step.addEntryBlock();
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
      std::optional<dsk::Kernel> kernel = kernelFor(&op);
      if (!kernel) return op.emitOpError() << "has no kernel on the host target";
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
      SmallVector<Attribute> weights;
      for (StringRef name : weightAttrNames(&op))
        if (auto ref = op.getAttrOfType<FlatSymbolRefAttr>(name)) weights.push_back(ref);
      SmallVector<NamedAttribute> params;
      for (NamedAttribute attr : op.getAttrs())
        if (!isa<FlatSymbolRefAttr>(attr.getValue())) params.push_back(attr);
      dsk::LaunchOp::create(b, loc, dsk::KernelAttr::get(ctx, *kernel), ins, outs,
                            b.getArrayAttr(weights), b.getDictionaryAttr(params));
    }
    func::ReturnOp::create(b, returnOp.getLoc(), map.lookup(returnOp.getOperand(0)));
    return success();
  }
};

}  // namespace
}  // namespace mlir::ds
