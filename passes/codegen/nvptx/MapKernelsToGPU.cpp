// ds-codegen-nvptx-map-to-gpu: the outlined linalg kernels as gpu.func kernels, one block per row.
#include "passes/Passes.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVM.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/UBToLLVM/UBToLLVM.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Target/LLVM/NVVM/Target.h"

#define DEBUG_TYPE "ds-codegen-nvptx-map-to-gpu"

namespace mlir::ds {
#define GEN_PASS_DEF_MAPKERNELSTOGPUPASS
#include "passes/Passes.h.inc"

namespace {

// The PTX ISA version LLVM's NVPTX backend must target for a chip (the oldest that knows it;
// `a` variants need the version that introduced them). ptxas of CUDA 12/13 reads all of these.
std::optional<StringRef> ptxFeatures(StringRef chip) {
  static const std::pair<StringRef, StringRef> table[] = {
      {"sm_80", "+ptx70"}, {"sm_86", "+ptx71"}, {"sm_89", "+ptx78"},
      {"sm_90", "+ptx78"}, {"sm_90a", "+ptx80"}, {"sm_100a", "+ptx86"}};
  for (const auto& [name, features] : table)
    if (name == chip) return features;
  return std::nullopt;
}

// Emits one kernel: blockIdx.x is the row, threads stride over the columns of each linalg op.
class KernelMapper {
 public:
  KernelMapper(func::FuncOp fn, gpu::GPUFuncOp kernel, int64_t threads)
      : fn_(fn), kernel_(kernel), threads_(threads),
        b_(OpBuilder::atBlockBegin(&kernel.getBody().front())) {}

  LogicalResult run() {
    Location loc = fn_.getLoc();
    for (auto [from, to] : llvm::zip(fn_.getArguments(), kernel_.getArguments()))
      map_.map(from, to);
    row_ = gpu::BlockIdOp::create(b_, loc, gpu::Dimension::x);
    tid_ = gpu::ThreadIdOp::create(b_, loc, gpu::Dimension::x);
    zero_ = arith::ConstantIndexOp::create(b_, loc, 0);
    step_ = arith::ConstantIndexOp::create(b_, loc, threads_);
    for (Operation& op : fn_.getBody().front()) {
      if (auto alloc = dyn_cast<memref::AllocOp>(op)) {
        if (failed(temporary(alloc))) return failure();
      } else if (isa<memref::DeallocOp>(op)) {
        // Workgroup memory lives as long as the block.
      } else if (isa<func::ReturnOp>(op)) {
        gpu::ReturnOp::create(b_, op.getLoc());
      } else if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op)) {
        if (failed(lower(linalgOp))) return failure();
        // The next op may read what other threads of the block wrote (temporaries, outputs).
        gpu::BarrierOp::create(b_, op.getLoc());
      } else {
        for (Value v : op.getOperands())
          if (temps_.contains(map_.lookupOrDefault(v)))
            return op.emitOpError() << "uses a per-row temporary outside a linalg op";
        if (auto view = dyn_cast<memref::SubViewOp>(op)) {
          cloneSubView(view);
          continue;
        }
        b_.clone(op, map_);
      }
    }
    return success();
  }

 private:
  // A view of an argument whose storage type changed (bf16 activations) is rebuilt on it.
  void cloneSubView(memref::SubViewOp view) {
    Value source = map_.lookup(view.getSource());
    if (source.getType() == view.getSource().getType()) {
      b_.clone(*view, map_);
      return;
    }
    auto mapped = [&](ArrayRef<OpFoldResult> values) {
      SmallVector<OpFoldResult> out;
      for (OpFoldResult v : values)
        out.push_back(isa<Value>(v) ? OpFoldResult(map_.lookup(cast<Value>(v))) : v);
      return out;
    };
    auto copy = memref::SubViewOp::create(b_, view.getLoc(), source,
                                          mapped(view.getMixedOffsets()),
                                          mapped(view.getMixedSizes()),
                                          mapped(view.getMixedStrides()));
    map_.map(view.getResult(), copy.getResult());
  }

  // Loads and stores convert between the storage type (bf16 activations) and the kernel's f32.
  Value load(OpBuilder& b, Location loc, Value memref, Type want, ValueRange idx) {
    Value v = memref::LoadOp::create(b, loc, memref, idx);
    return v.getType() == want ? v : arith::ExtFOp::create(b, loc, want, v).getResult();
  }
  void store(OpBuilder& b, Location loc, Value v, Value memref, ValueRange idx) {
    Type storage = cast<MemRefType>(memref.getType()).getElementType();
    if (v.getType() != storage) v = arith::TruncFOp::create(b, loc, storage, v);
    memref::StoreOp::create(b, loc, v, memref, idx);
  }

  // A [rows, ...] temporary becomes [1, ...] workgroup memory: each block holds its own row.
  LogicalResult temporary(memref::AllocOp alloc) {
    MemRefType type = alloc.getType();
    if (type.getRank() < 1 || !type.isDynamicDim(0) || type.getNumDynamicDims() != 1)
      return alloc.emitOpError() << "temporary must be [rows, static...], got " << type;
    SmallVector<int64_t> shape(type.getShape());
    shape[0] = 1;
    auto space = gpu::AddressSpaceAttr::get(alloc.getContext(), gpu::AddressSpace::Workgroup);
    auto wg = MemRefType::get(shape, type.getElementType(), MemRefLayoutAttrInterface(), space);
    Value v = kernel_.addWorkgroupAttribution(wg, alloc.getLoc());
    map_.map(alloc.getResult(), v);
    temps_.insert(v);
    return success();
  }

  // The indices of `operand` at loop ivs: its (projected permutation) map; row 0 of temporaries.
  FailureOr<SmallVector<Value>> indices(linalg::LinalgOp op, OpOperand& operand, ValueRange ivs) {
    AffineMap map = op.getMatchingIndexingMap(&operand);
    bool temp = temps_.contains(map_.lookup(operand.get()));
    SmallVector<Value> result;
    for (AffineExpr e : map.getResults()) {
      auto dim = dyn_cast<AffineDimExpr>(e);
      if (!dim) return op.emitOpError() << "indexing map is not a projected permutation";
      result.push_back(temp && dim.getPosition() == 0 ? zero_ : ivs[dim.getPosition()]);
    }
    return result;
  }

  // The region at ivs: loads, the body with `carried` for the single init (reductions), stores
  // unless `carried` (then the yielded value is returned).
  FailureOr<Value> body(OpBuilder& b, linalg::LinalgOp op, ValueRange ivs, Value carried = {}) {
    Block* block = op.getBlock();
    IRMapping m = map_;
    for (OpOperand& operand : op->getOpOperands()) {
      BlockArgument arg = op.getMatchingBlockArgument(&operand);
      if (arg.use_empty() && op.isDpsInput(&operand)) continue;
      if (carried && op.isDpsInit(&operand)) {
        m.map(arg, carried);
        continue;
      }
      if (!isa<MemRefType>(operand.get().getType())) {  // a scalar (linalg.fill's value)
        m.map(arg, map_.lookup(operand.get()));
        continue;
      }
      if (arg.use_empty()) continue;
      auto idx = indices(op, operand, ivs);
      if (failed(idx)) return failure();
      m.map(arg, load(b, op.getLoc(), map_.lookup(operand.get()), arg.getType(), *idx));
    }
    for (Operation& inner : block->without_terminator()) {
      if (isa<linalg::IndexOp>(inner))
        return op.emitOpError() << "linalg.index is not supported by the GPU mapping";
      b.clone(inner, m);
    }
    auto yield = cast<linalg::YieldOp>(block->getTerminator());
    if (carried) return m.lookup(yield.getOperand(0));
    for (auto [operand, value] : llvm::zip(op.getDpsInitsMutable(), yield.getOperands())) {
      auto idx = indices(op, operand, ivs);
      if (failed(idx)) return failure();
      store(b, op.getLoc(), m.lookup(value), map_.lookup(operand.get()), *idx);
    }
    return Value();
  }

  // Static extents of the loops after the row loop, and their product.
  FailureOr<SmallVector<int64_t>> innerExtents(linalg::LinalgOp op) {
    SmallVector<int64_t> ranges = op.getStaticLoopRanges();
    if (ranges.empty() || !ShapedType::isDynamic(ranges[0]) ||
        op.getIteratorTypesArray()[0] != utils::IteratorType::parallel)
      return op.emitOpError() << "the first loop must be the parallel row loop of dynamic size";
    SmallVector<int64_t> inner(ranges.begin() + 1, ranges.end());
    if (llvm::any_of(inner, ShapedType::isDynamic))
      return op.emitOpError() << "loops after the row loop must have static sizes";
    return inner;
  }

  // The loop ivs {row, i1, ...} of the flat index `flat` over the inner extents.
  SmallVector<Value> delinearize(OpBuilder& b, Location loc, Value flat, ArrayRef<int64_t> inner) {
    SmallVector<Value> ivs(inner.size() + 1);
    ivs[0] = row_;
    for (int64_t d = inner.size() - 1; d > 0; --d) {
      Value extent = arith::ConstantIndexOp::create(b, loc, inner[d]);
      ivs[d + 1] = arith::RemUIOp::create(b, loc, flat, extent);
      flat = arith::DivUIOp::create(b, loc, flat, extent);
    }
    ivs[1] = flat;
    return ivs;
  }

  LogicalResult lower(linalg::LinalgOp op) {
    Location loc = op.getLoc();
    auto inner = innerExtents(op);
    if (failed(inner)) return failure();
    int64_t total = 1;
    for (int64_t e : *inner) total *= e;
    SmallVector<utils::IteratorType> iters = op.getIteratorTypesArray();
    bool reduction = llvm::any_of(iters, [](utils::IteratorType t) {
      return t == utils::IteratorType::reduction;
    });
    if (inner->empty()) {
      // One value per row (the inverse rms): thread 0 computes it.
      Value first = arith::CmpIOp::create(b_, loc, arith::CmpIPredicate::eq, tid_, zero_);
      auto ifOp = scf::IfOp::create(b_, loc, first, /*withElseRegion=*/false);
      OpBuilder tb = ifOp.getThenBodyBuilder();
      return failure(failed(body(tb, op, ValueRange{row_})));
    }
    Value end = arith::ConstantIndexOp::create(b_, loc, total);
    if (!reduction) {
      // Consecutive threads take consecutive elements: coalesced global accesses.
      auto loop = scf::ForOp::create(b_, loc, tid_, end, step_);
      OpBuilder lb = OpBuilder::atBlockBegin(loop.getBody());
      return failure(failed(body(lb, op, delinearize(lb, loc, loop.getInductionVar(), *inner))));
    }
    // A row reduction (sum): per-thread partial sums, a block-wide all-reduce, thread 0 adds the
    // total to the init. The order differs from the host's sequential sum (not bit-identical).
    if (op.getNumDpsInits() != 1 || !llvm::all_of(llvm::drop_begin(iters), [](auto t) {
          return t == utils::IteratorType::reduction;
        }))
      return op.emitOpError() << "only row reductions over every inner loop are supported";
    OpOperand* init = op.getDpsInitOperand(0);
    BlockArgument acc = op.getMatchingBlockArgument(init);
    auto yield = cast<linalg::YieldOp>(op.getBlock()->getTerminator());
    auto add = yield.getOperand(0).getDefiningOp<arith::AddFOp>();
    if (!add || !acc.hasOneUse() || (add.getLhs() != acc && add.getRhs() != acc))
      return op.emitOpError() << "only sum reductions (yield addf(acc, x)) are supported";
    Type elem = acc.getType();
    Value zeroAcc = arith::ConstantOp::create(b_, loc, elem, b_.getFloatAttr(elem, 0.0));
    auto loop = scf::ForOp::create(b_, loc, tid_, end, step_, ValueRange{zeroAcc});
    {
      OpBuilder lb = OpBuilder::atBlockBegin(loop.getBody());
      auto ivs = delinearize(lb, loc, loop.getInductionVar(), *inner);
      auto next = body(lb, op, ivs, loop.getRegionIterArgs()[0]);
      if (failed(next)) return failure();
      scf::YieldOp::create(lb, loc, *next);
    }
    Value sum = gpu::AllReduceOp::create(
        b_, loc, loop.getResult(0),
        gpu::AllReduceOperationAttr::get(b_.getContext(), gpu::AllReduceOperation::ADD),
        /*uniform=*/true);
    Value first = arith::CmpIOp::create(b_, loc, arith::CmpIPredicate::eq, tid_, zero_);
    auto ifOp = scf::IfOp::create(b_, loc, first, /*withElseRegion=*/false);
    OpBuilder tb = ifOp.getThenBodyBuilder();
    auto idx = indices(op, *init, ValueRange{row_});
    if (failed(idx)) return failure();
    Value out = map_.lookup(init->get());
    Value old = load(tb, loc, out, sum.getType(), *idx);
    store(tb, loc, arith::AddFOp::create(tb, loc, old, sum), out, *idx);
    return success();
  }

  func::FuncOp fn_;
  gpu::GPUFuncOp kernel_;
  int64_t threads_;
  OpBuilder b_;
  IRMapping map_;
  llvm::DenseSet<Value> temps_;
  Value row_, tid_, zero_, step_;
};

// Threads per block: the widest op's inner elements rounded up to a warp, at most `maxThreads`.
int64_t blockSize(func::FuncOp fn, int64_t maxThreads) {
  int64_t widest = 1;
  fn.walk([&](linalg::LinalgOp op) {
    int64_t n = 1;
    for (int64_t e : llvm::drop_begin(op.getStaticLoopRanges()))
      if (!ShapedType::isDynamic(e)) n *= e;
    widest = std::max(widest, n);
  });
  return std::min(maxThreads, std::max<int64_t>(32, llvm::alignTo(widest, 32)));
}

struct MapKernelsToGPUPass : impl::MapKernelsToGPUPassBase<MapKernelsToGPUPass> {
  using Base::Base;

  // convert-gpu-to-nvvm lowers the other dialects through their ConvertToLLVM interfaces, and
  // gpu-module-to-binary serializes through the #nvvm.target's interface: registered here, with
  // the first pass of the nvptx lowering.
  void getDependentDialects(DialectRegistry& registry) const override {
    Base::getDependentDialects(registry);
    arith::registerConvertArithToLLVMInterface(registry);
    cf::registerConvertControlFlowToLLVMInterface(registry);
    registerConvertFuncToLLVMInterface(registry);
    index::registerConvertIndexToLLVMInterface(registry);
    registerConvertMemRefToLLVMInterface(registry);
    ub::registerConvertUBToLLVMInterface(registry);
    NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    TargetAttr target = lookupTarget(module);
    if (!target || target.getBackend() != TargetBackend::nvptx) {
      module.emitError() << "ds-codegen-nvptx-map-to-gpu: #ds.target '"
                         << (target ? target.getName().getValue() : StringRef("(none)"))
                         << "' has no backend = nvptx; GPU kernels need an sm_* target";
      return signalPassFailure();
    }
    StringRef chip = target.getCpu().getValue();
    std::optional<StringRef> features = ptxFeatures(chip);
    if (!features) {
      module.emitError() << "ds-codegen-nvptx-map-to-gpu: no PTX ISA known for chip '" << chip
                         << "'";
      return signalPassFailure();
    }
    if (activationType != "f32" && activationType != "bf16") {
      module.emitError() << "activation-type must be f32 or bf16, got '" << activationType << "'";
      return signalPassFailure();
    }
    if (maxThreads < 32 || maxThreads > 1024 || maxThreads % 32) {
      module.emitError() << "max-threads must be a multiple of 32 in [32, 1024], got "
                         << static_cast<int64_t>(maxThreads);
      return signalPassFailure();
    }
    SmallVector<func::FuncOp> kernels;
    for (auto fn : module.getOps<func::FuncOp>())
      if (fn->hasAttr("ds.kernel")) kernels.push_back(fn);
    if (kernels.empty()) return;

    MLIRContext* ctx = &getContext();
    OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
    auto nvvmTarget = NVVM::NVVMTargetAttr::get(ctx, /*optLevel=*/3, target.getTriple().getValue(),
                                                chip, *features);
    auto gpuModule = gpu::GPUModuleOp::create(b, module.getLoc(), gpuModuleName,
                                              b.getArrayAttr({nvvmTarget}));
    module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(), b.getUnitAttr());
    OpBuilder gb = OpBuilder::atBlockBegin(gpuModule.getBody());
    // Constant tables (rope's inv_freq) move with the kernels.
    for (auto global : llvm::make_early_inc_range(module.getOps<memref::GlobalOp>()))
      global->moveBefore(gpuModule.getBody(), gpuModule.getBody()->end());
    for (func::FuncOp fn : kernels) {
      int64_t threads = blockSize(fn, maxThreads);
      // bf16 activations: the f32 row buffers (ins, outs) are stored as bf16; the kernel computes
      // and accumulates in f32 (weights stay the runner's f32 copies).
      SmallVector<Type> argTypes(fn.getArgumentTypes());
      int64_t numBuffers = 0;
      if (auto n = fn->getAttrOfType<IntegerAttr>("ds.num_buffers")) numBuffers = n.getInt();
      // The plan's row type recorded by ds-codegen-outline-kernels wins over the option.
      std::string rowType = activationType;
      if (auto t = fn->getAttrOfType<StringAttr>("ds.row_type")) rowType = t.str();
      if (rowType == "bf16")
        for (int64_t i = 0; i < numBuffers && i < static_cast<int64_t>(argTypes.size()); ++i) {
          auto t = cast<MemRefType>(argTypes[i]);
          if (t.getElementType().isF32())
            argTypes[i] = MemRefType::get(t.getShape(), gb.getBF16Type(), t.getLayout(),
                                          t.getMemorySpace());
        }
      auto kernel = gpu::GPUFuncOp::create(gb, fn.getLoc(), fn.getSymName(),
                                           gb.getFunctionType(argTypes, {}));
      kernel->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), gb.getUnitAttr());
      kernel.setKnownBlockSizeAttr(gb.getDenseI32ArrayAttr({static_cast<int32_t>(threads), 1, 1}));
      for (NamedAttribute attr : fn->getAttrs())
        if (attr.getName().getValue().starts_with("ds.")) kernel->setAttr(attr.getName(), attr.getValue());
      kernel->setAttr("ds.block_size", gb.getI64IntegerAttr(threads));
      kernel->setAttr("ds.activation_type", gb.getStringAttr(rowType));
      if (failed(KernelMapper(fn, kernel, threads).run())) return signalPassFailure();
      fn.erase();
      ++numKernels;
    }
  }
};

}  // namespace
}  // namespace mlir::ds
