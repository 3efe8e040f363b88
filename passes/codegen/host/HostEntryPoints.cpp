// ds-codegen-host-entry-points: C-ABI entry `void k(void* const* buffers, const float* const* weights, int64_t rows)` per kernel.
#include "passes/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"

#define DEBUG_TYPE "ds-codegen-host-entry-points"

namespace mlir::ds {
#define GEN_PASS_DEF_HOSTENTRYPOINTSPASS
#include "passes/Passes.h.inc"

namespace {

// Builds the memref descriptors the lowered kernel expects (allocated and aligned pointer,
// offset, sizes, strides per argument) from the runtime's pointer arrays.
LogicalResult buildEntry(LLVM::LLVMFuncOp impl) {
  auto shapes = impl->getAttrOfType<ArrayAttr>("ds.arg_shapes");
  auto numBuffers = impl->getAttrOfType<IntegerAttr>("ds.num_buffers");
  auto rowScale = impl->getAttrOfType<IntegerAttr>("ds.row_scale");
  if (!shapes || !numBuffers || !rowScale)
    return impl.emitError() << "generated kernel lacks ds.arg_shapes/ds.num_buffers/ds.row_scale";
  unsigned expected = 0;
  for (Attribute a : shapes) {
    auto shape = dyn_cast<DenseI64ArrayAttr>(a);
    if (!shape) return impl.emitError() << "ds.arg_shapes must hold dense i64 arrays";
    expected += 3 + 2 * shape.size();
  }
  if (impl.getNumArguments() != expected)
    return impl.emitError() << "lowered kernel takes " << impl.getNumArguments()
                            << " arguments, its memref descriptors need " << expected;

  MLIRContext* ctx = impl.getContext();
  std::string name = impl.getSymName().str();
  impl.setSymName(name + "_impl");
  impl.setLinkage(LLVM::Linkage::Internal);
  OpBuilder b(impl);
  Location loc = impl.getLoc();
  auto ptr = LLVM::LLVMPointerType::get(ctx);
  auto i64 = IntegerType::get(ctx, 64);
  auto fnType = LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(ctx), {ptr, ptr, i64});
  auto entry = LLVM::LLVMFuncOp::create(b, loc, name, fnType);
  entry->setAttr("ds.entry", impl->getAttr("ds.kernel"));
  Block* body = entry.addEntryBlock(b);
  b.setInsertionPointToStart(body);
  auto cst = [&](int64_t v) -> Value {
    return LLVM::ConstantOp::create(b, loc, i64, b.getI64IntegerAttr(v));
  };
  Value rows = LLVM::MulOp::create(b, loc, body->getArgument(2), cst(rowScale.getInt()));
  SmallVector<Value> args;
  int64_t nb = numBuffers.getInt();
  for (auto [i, a] : llvm::enumerate(shapes)) {
    ArrayRef<int64_t> shape = cast<DenseI64ArrayAttr>(a).asArrayRef();
    int64_t idx = static_cast<int64_t>(i) < nb ? static_cast<int64_t>(i) : static_cast<int64_t>(i) - nb;
    Value table = body->getArgument(static_cast<int64_t>(i) < nb ? 0 : 1);
    Value slot = LLVM::GEPOp::create(b, loc, ptr, ptr, table, ArrayRef<LLVM::GEPArg>{idx});
    Value p = LLVM::LoadOp::create(b, loc, ptr, slot);
    args.append({p, p, cst(0)});
    for (int64_t d : shape) args.push_back(ShapedType::isDynamic(d) ? rows : cst(d));
    SmallVector<int64_t> strides(shape.size(), 1);
    for (int64_t d = static_cast<int64_t>(shape.size()) - 2; d >= 0; --d)
      strides[d] = strides[d + 1] * shape[d + 1];
    for (int64_t s : strides) args.push_back(cst(s));
  }
  LLVM::CallOp::create(b, loc, impl, args);
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return success();
}

struct HostEntryPointsPass : impl::HostEntryPointsPassBase<HostEntryPointsPass> {
  void runOnOperation() override {
    // Host ABI: a module compiled for another backend (#ds.target) must not get host entries.
    if (TargetAttr target = lookupTarget(getOperation());
        target && target.getBackend() != TargetBackend::host) {
      getOperation().emitError()
          << "ds-codegen-host-entry-points: #ds.target '" << target.getName().getValue()
          << "' has backend = " << stringifyTargetBackend(target.getBackend())
          << "; host entry points need backend = host";
      return signalPassFailure();
    }
    SmallVector<LLVM::LLVMFuncOp> kernels;
    for (auto fn : getOperation().getOps<LLVM::LLVMFuncOp>())
      if (fn->hasAttr("ds.kernel") && !fn.isExternal() &&
          fn.getLinkage() != LLVM::Linkage::Internal) kernels.push_back(fn);
    for (LLVM::LLVMFuncOp fn : kernels) {
      if (failed(buildEntry(fn))) return signalPassFailure();
      ++numEntries;
    }
  }
};

}  // namespace
}  // namespace mlir::ds
