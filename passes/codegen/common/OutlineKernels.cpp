// ds-codegen-outline-kernels: elementwise/normalization dsk.launch regions -> linalg kernels on memrefs.
#include "passes/Passes.h"

#include <map>

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/Support/Format.h"

#include "cpu/cpu_kernels.h"

#define DEBUG_TYPE "ds-codegen-outline-kernels"

namespace mlir::ds {
#define GEN_PASS_DEF_OUTLINEKERNELSPASS
#include "passes/Passes.h.inc"

namespace {

using utils::IteratorType;

// What a generated kernel needs to know about one launch: the 2-D [rows, cols] view of its
// row-space buffers (rows = step rows * rowScale), the width of its weights and its eps.
struct KernelShape {
  int64_t cols = 0;
  int64_t rowScale = 1;
  float eps = 0;
  // rope: x [rows, heads, headDim], the first `rotDim` channels rotated by the runtime's table.
  int64_t heads = 0, headDim = 0, rotDim = 0;
  bool interleaved = false;  // pairs (2i, 2i + 1) (DeepSeek) instead of (i, i + rotDim / 2)
  std::vector<float> invFreq;
  float attentionFactor = 1;
  std::string ropeKey;
  bool bf16Rows = false;  // the plan's row buffers are bf16 (a GPU plan, --dtype bf16)
};

// A row-space buffer ([?, static dims...]) of f32, or of bf16 where `bf16` (GPU targets: their
// kernels keep the f32 body and load/store bf16 rows, ds-codegen-nvptx-map-to-gpu).
bool isRowBuffer(Value v, bool bf16) {
  auto t = dyn_cast<MemRefType>(v.getType());
  if (!t || t.getRank() < 1 || !t.isDynamicDim(0)) return false;
  if (!t.getElementType().isF32() && !(bf16 && t.getElementType().isBF16())) return false;
  for (int64_t i = 1; i < t.getRank(); ++i)
    if (t.isDynamicDim(i)) return false;
  return true;
}

// Whether the module's #ds.target is a GPU (bf16 row buffers are generated for it).
bool gpuTarget(Operation* op) {
  TargetAttr target = lookupTarget(op);
  return target && target.getBackend() == TargetBackend::nvptx;
}

// The f32 type of the kernel argument for a row buffer of the plan (bf16 rows become f32 in the
// target-independent kernel; the GPU mapping stores them as bf16 again).
MemRefType f32RowType(Type t) {
  auto m = cast<MemRefType>(t);
  return MemRefType::get(m.getShape(), Float32Type::get(m.getContext()), m.getLayout(),
                         m.getMemorySpace());
}

// Elements per row of the step's row space.
int64_t rowElems(Value v) {
  int64_t n = 1;
  for (int64_t d : cast<MemRefType>(v.getType()).getShape().drop_front()) n *= d;
  return n;
}

// The runtime's rope table (kernels/cpu) for these parameters, so generated code rotates by the
// same f32 frequencies and attention factor as the library kernel.
std::unique_ptr<::ds::cpu::RopeTable> ropeTable(RopeAttr r) {
  ::ds::cpu::RopeParams p;
  p.theta = r.getTheta().convertToDouble();
  p.dim = r.getDim();
  p.interleaved = r.getInterleaved();
  p.scaling = static_cast<::ds::cpu::RopeScaling>(static_cast<int>(r.getScaling()));
  p.factor = r.getFactor().convertToDouble();
  p.original_max_position = r.getOriginalMaxPosition();
  p.low_freq_factor = r.getLowFreqFactor().convertToDouble();
  p.high_freq_factor = r.getHighFreqFactor().convertToDouble();
  p.beta_fast = r.getBetaFast().convertToDouble();
  p.beta_slow = r.getBetaSlow().convertToDouble();
  p.mscale = r.getMscale().convertToDouble();
  p.mscale_all_dim = r.getMscaleAllDim().convertToDouble();
  p.attention_factor = r.getAttentionFactor().convertToDouble();
  return std::make_unique<::ds::cpu::RopeTable>(p);
}

// rope x[T, heads, headDim], positions[T] -> y (non-interleaved pairs (i, i + dim/2)).
std::optional<KernelShape> ropeShape(dsk::LaunchOp launch) {
  if (launch.getIns().size() != 2 || launch.getOuts().size() != 1 ||
      !launch.getWeights().empty())
    return std::nullopt;
  Value x = launch.getIns()[0], pos = launch.getIns()[1], y = launch.getOuts()[0];
  auto xt = dyn_cast<MemRefType>(x.getType());
  auto pt = dyn_cast<MemRefType>(pos.getType());
  auto r = launch.getParams().getAs<RopeAttr>("rope");
  const bool bf16 = gpuTarget(launch);
  if (!r || !xt || !pt || !isRowBuffer(x, bf16) || !isRowBuffer(y, bf16) || xt != y.getType() ||
      xt.getRank() != 3 || pt.getRank() != 1 || !pt.getElementType().isInteger(32) ||
      !pt.isDynamicDim(0))
    return std::nullopt;
  if (r.getDim() <= 0 || r.getDim() % 2 || r.getDim() > xt.getDimSize(2)) return std::nullopt;
  std::unique_ptr<::ds::cpu::RopeTable> table = ropeTable(r);
  KernelShape s;
  s.bf16Rows = xt.getElementType().isBF16();
  s.heads = xt.getDimSize(1);
  s.headDim = xt.getDimSize(2);
  s.rotDim = r.getDim();
  s.interleaved = r.getInterleaved();
  s.invFreq = table->invFreq();
  s.attentionFactor = table->attentionFactor();
  if (static_cast<int64_t>(s.invFreq.size()) != s.rotDim / 2) return std::nullopt;
  llvm::raw_string_ostream os(s.ropeKey);
  os << r;
  return s;
}

// The 1-D f32-readable weight a norm launch names, or 0 if it is not one.
int64_t normWidth(ModuleOp module, dsk::LaunchOp launch) {
  if (launch.getWeights().size() != 1) return 0;
  auto ref = cast<FlatSymbolRefAttr>(launch.getWeights()[0]);
  auto weight = module.lookupSymbol<WeightOp>(ref.getValue());
  if (!weight) return 0;
  RankedTensorType t = weight.getTensorType();
  if (t.getRank() != 1 || !isa<FloatType>(t.getElementType()) || weight.getQuant()) return 0;
  return t.getDimSize(0);
}

// The shape of a launch this pass can generate code for; nullopt leaves it a library call.
std::optional<KernelShape> supportedShape(ModuleOp module, dsk::LaunchOp launch) {
  if (launch.getKernel() == dsk::Kernel::rope) return ropeShape(launch);
  SmallVector<Value> buffers(launch.getIns());
  buffers.append(launch.getOuts().begin(), launch.getOuts().end());
  // Every row buffer of one element type: f32, or bf16 on a GPU target.
  const bool bf16 = gpuTarget(launch);
  for (Value v : buffers)
    if (!isRowBuffer(v, bf16) || rowElems(v) != rowElems(buffers.front()) ||
        cast<MemRefType>(v.getType()).getElementType() !=
            cast<MemRefType>(buffers.front().getType()).getElementType())
      return std::nullopt;
  KernelShape s;
  s.cols = rowElems(buffers.front());
  s.bf16Rows = cast<MemRefType>(buffers.front().getType()).getElementType().isBF16();
  switch (launch.getKernel()) {
    case dsk::Kernel::add:
    case dsk::Kernel::swiglu:
      if (launch.getIns().size() != 2 || launch.getOuts().size() != 1 ||
          !launch.getWeights().empty())
        return std::nullopt;
      return s;
    case dsk::Kernel::rms_norm:
    case dsk::Kernel::add_rms_norm: {
      // A tensor-parallel all-reduce folded into the launch stays with the library kernel.
      if (launch.getParams().contains("all_reduce_rhs")) return std::nullopt;
      bool fusedAdd = launch.getKernel() == dsk::Kernel::add_rms_norm;
      if (launch.getIns().size() != (fusedAdd ? 2u : 1u) ||
          launch.getOuts().size() != (fusedAdd ? 2u : 1u))
        return std::nullopt;
      int64_t h = normWidth(module, launch);
      auto eps = launch.getParams().getAs<FloatAttr>("eps");
      // The runtime normalizes rows of the weight's width; the last dimension must be one.
      int64_t last = cast<MemRefType>(buffers.front().getType()).getShape().back();
      if (h <= 0 || !eps || last != h) return std::nullopt;
      s.rowScale = s.cols / h;
      s.cols = h;
      s.eps = static_cast<float>(eps.getValueAsDouble());
      return s;
    }
    default:
      return std::nullopt;
  }
}

class KernelBuilder {
 public:
  KernelBuilder(OpBuilder& b, Location loc) : b_(b), loc_(loc), ctx_(b.getContext()) {}

  AffineMap id2() { return AffineMap::getMultiDimIdentityMap(2, ctx_); }
  AffineMap rowOf2() { return AffineMap::get(2, 0, {getAffineDimExpr(0, ctx_)}, ctx_); }
  AffineMap colOf2() { return AffineMap::get(2, 0, {getAffineDimExpr(1, ctx_)}, ctx_); }
  AffineMap id1() { return AffineMap::getMultiDimIdentityMap(1, ctx_); }

  // A per-row temporary on the heap: rows can be T x heads of a long prefill, too much for the
  // stack of a worker thread.
  Value temporary(MemRefType type, Value rows) {
    Value v = memref::AllocOp::create(b_, loc_, type, ValueRange{rows});
    temps_.push_back(v);
    return v;
  }
  void freeTemporaries() {
    for (Value v : temps_) memref::DeallocOp::create(b_, loc_, v);
  }

  Value cst(Type t, double v) {
    return arith::ConstantOp::create(b_, loc_, t, b_.getFloatAttr(t, v));
  }

  void elementwise(ValueRange ins, Value out,
                   function_ref<Value(OpBuilder&, Location, ValueRange)> fn) {
    SmallVector<AffineMap> maps(ins.size() + 1, id2());
    linalg::GenericOp::create(
        b_, loc_, TypeRange{}, ins, ValueRange{out}, maps,
        {IteratorType::parallel, IteratorType::parallel},
        [&](OpBuilder& nb, Location l, ValueRange args) {
          linalg::YieldOp::create(nb, l, fn(nb, l, args.drop_back()));
        });
  }

  // acc[r] = sum_i x[r, i]^2 in `accType` (f64 for rms_norm, as the library kernel sums).
  Value sumOfSquares(Value x, Value rows, Type accType) {
    auto accBuffer = MemRefType::get({ShapedType::kDynamic}, accType);
    Value acc = temporary(accBuffer, rows);
    linalg::FillOp::create(b_, loc_, ValueRange{cst(accType, 0.0)}, ValueRange{acc});
    linalg::GenericOp::create(
        b_, loc_, TypeRange{}, ValueRange{x}, ValueRange{acc}, {id2(), rowOf2()},
        {IteratorType::parallel, IteratorType::reduction},
        [&](OpBuilder& nb, Location l, ValueRange a) {
          Value v = a[0];
          if (accType != v.getType()) v = arith::ExtFOp::create(nb, l, accType, v);
          Value sq = arith::MulFOp::create(nb, l, v, v);
          linalg::YieldOp::create(nb, l, ValueRange{arith::AddFOp::create(nb, l, a[1], sq)});
        });
    return acc;
  }

  // inv[r] = 1 / sqrt(f32(acc[r] / cols) + eps)
  Value inverseRms(Value acc, Value rows, int64_t cols, float eps) {
    Type f32 = b_.getF32Type();
    Type accType = cast<MemRefType>(acc.getType()).getElementType();
    auto buffer = MemRefType::get({ShapedType::kDynamic}, f32);
    Value inv = temporary(buffer, rows);
    Value n = cst(accType, static_cast<double>(cols));
    Value e = cst(f32, eps);
    Value one = cst(f32, 1.0);
    linalg::GenericOp::create(
        b_, loc_, TypeRange{}, ValueRange{acc}, ValueRange{inv}, {id1(), id1()},
        {IteratorType::parallel}, [&](OpBuilder& nb, Location l, ValueRange a) {
          Value mean = arith::DivFOp::create(nb, l, a[0], n);
          if (accType != f32) mean = arith::TruncFOp::create(nb, l, f32, mean);
          Value s = math::SqrtOp::create(nb, l, arith::AddFOp::create(nb, l, mean, e));
          linalg::YieldOp::create(nb, l, ValueRange{arith::DivFOp::create(nb, l, one, s)});
        });
    return inv;
  }

  // The library's rope (kernels/cpu/rope.cpp): per token, cos/sin of pos * inv_freq in double,
  // rounded to f32 and scaled; then y = x * cos + rotate_half(x) * sin over the first rotDim
  // channels of every head; channels past rotDim are copied.
  void rope(Value x, Value pos, Value y, const KernelShape& s, memref::GlobalOp invGlobal) {
    Type f32 = b_.getF32Type(), f64 = b_.getF64Type();
    int64_t half = s.rotDim / 2;
    Value rows = memref::DimOp::create(b_, loc_, x, 0);
    Value inv = memref::GetGlobalOp::create(b_, loc_, invGlobal.getType(), invGlobal.getSymName());
    auto tableType = MemRefType::get({ShapedType::kDynamic, half}, f32);
    Value cs = temporary(tableType, rows), sn = temporary(tableType, rows);
    Value af = cst(f32, s.attentionFactor);
    linalg::GenericOp::create(
        b_, loc_, TypeRange{}, ValueRange{pos, inv}, ValueRange{cs, sn},
        {rowOf2(), colOf2(), id2(), id2()}, {IteratorType::parallel, IteratorType::parallel},
        [&](OpBuilder& nb, Location l, ValueRange a) {
          Value p = arith::SIToFPOp::create(nb, l, f32, a[0]);
          Value prod = arith::MulFOp::create(nb, l, p, a[1]);
          Value f = arith::ExtFOp::create(nb, l, f64, prod);
          Value c = arith::TruncFOp::create(nb, l, f32, math::CosOp::create(nb, l, f));
          Value sv = arith::TruncFOp::create(nb, l, f32, math::SinOp::create(nb, l, f));
          linalg::YieldOp::create(nb, l, ValueRange{arith::MulFOp::create(nb, l, c, af),
                                                    arith::MulFOp::create(nb, l, sv, af)});
        });
    auto slice = [&](Value m, int64_t offset, int64_t size, int64_t stride = 1) -> Value {
      SmallVector<OpFoldResult> offsets = {b_.getIndexAttr(0), b_.getIndexAttr(0),
                                           b_.getIndexAttr(offset)};
      SmallVector<OpFoldResult> sizes = {rows, b_.getIndexAttr(s.heads), b_.getIndexAttr(size)};
      SmallVector<OpFoldResult> strides = {b_.getIndexAttr(1), b_.getIndexAttr(1),
                                           b_.getIndexAttr(stride)};
      return memref::SubViewOp::create(b_, loc_, m, offsets, sizes, strides);
    };
    // The two halves of every rotated pair: (i, i + half), or (2i, 2i + 1) when interleaved
    // (stride-2 views; the vectorizer's strided transfers lower to scalar accesses).
    auto lo = [&](Value m) { return s.interleaved ? slice(m, 0, half, 2) : slice(m, 0, half); };
    auto hi = [&](Value m) { return s.interleaved ? slice(m, 1, half, 2) : slice(m, half, half); };
    AffineMap id3 = AffineMap::getMultiDimIdentityMap(3, ctx_);
    AffineMap tok3 = AffineMap::get(3, 0, {getAffineDimExpr(0, ctx_), getAffineDimExpr(2, ctx_)},
                                    ctx_);
    SmallVector<IteratorType> par3(3, IteratorType::parallel);
    linalg::GenericOp::create(
        b_, loc_, TypeRange{}, ValueRange{lo(x), hi(x), cs, sn},
        ValueRange{lo(y), hi(y)}, {id3, id3, tok3, tok3, id3, id3}, par3,
        [&](OpBuilder& nb, Location l, ValueRange a) {
          Value lo = arith::SubFOp::create(nb, l, arith::MulFOp::create(nb, l, a[0], a[2]),
                                           arith::MulFOp::create(nb, l, a[1], a[3]));
          Value hi = arith::AddFOp::create(nb, l, arith::MulFOp::create(nb, l, a[1], a[2]),
                                           arith::MulFOp::create(nb, l, a[0], a[3]));
          linalg::YieldOp::create(nb, l, ValueRange{lo, hi});
        });
    if (s.rotDim < s.headDim) {
      int64_t rest = s.headDim - s.rotDim;
      linalg::GenericOp::create(
          b_, loc_, TypeRange{}, ValueRange{slice(x, s.rotDim, rest)},
          ValueRange{slice(y, s.rotDim, rest)}, {id3, id3}, par3,
          [&](OpBuilder& nb, Location l, ValueRange a) { linalg::YieldOp::create(nb, l, a[0]); });
    }
  }

  // y[r, i] = w[i] * (x[r, i] * inv[r])
  void scale(Value x, Value inv, Value w, Value y) {
    linalg::GenericOp::create(
        b_, loc_, TypeRange{}, ValueRange{x, inv, w}, ValueRange{y},
        {id2(), rowOf2(), colOf2(), id2()}, {IteratorType::parallel, IteratorType::parallel},
        [&](OpBuilder& nb, Location l, ValueRange a) {
          Value xr = arith::MulFOp::create(nb, l, a[0], a[1]);
          linalg::YieldOp::create(nb, l, ValueRange{arith::MulFOp::create(nb, l, a[2], xr)});
        });
  }

 private:
  OpBuilder& b_;
  Location loc_;
  MLIRContext* ctx_;
  SmallVector<Value> temps_;
};

// Builds func.func @name(ins..., outs..., weights...) in linalg; buffers are [rows, cols].
func::FuncOp buildKernel(OpBuilder& b, Location loc, StringRef name, dsk::LaunchOp launch,
                         const KernelShape& s) {
  MLIRContext* ctx = b.getContext();
  Type f32 = b.getF32Type();
  auto rowType = MemRefType::get({ShapedType::kDynamic, s.cols}, f32);
  auto weightType = MemRefType::get({s.cols}, f32);
  unsigned numBuffers = launch.getIns().size() + launch.getOuts().size();
  SmallVector<Type> args(numBuffers, rowType);
  args.append(launch.getWeights().size(), weightType);
  bool rope = launch.getKernel() == dsk::Kernel::rope;
  memref::GlobalOp invFreq;
  if (rope) {
    args = {f32RowType(launch.getIns()[0].getType()), launch.getIns()[1].getType(),
            f32RowType(launch.getOuts()[0].getType())};
    auto invType = MemRefType::get({s.rotDim / 2}, f32);
    auto values = DenseElementsAttr::get(RankedTensorType::get({s.rotDim / 2}, f32),
                                         llvm::ArrayRef<float>(s.invFreq));
    invFreq = memref::GlobalOp::create(b, loc, (name + "_inv_freq").str(),
                                       b.getStringAttr("private"), invType, values,
                                       /*constant=*/true, IntegerAttr());
  }
  auto fn = func::FuncOp::create(b, loc, name, FunctionType::get(ctx, args, {}));
  SmallVector<Attribute> shapes;
  for (Type t : args) shapes.push_back(b.getDenseI64ArrayAttr(cast<MemRefType>(t).getShape()));
  fn->setAttr("ds.kernel", b.getStringAttr(dsk::stringifyKernel(launch.getKernel())));
  fn->setAttr("ds.num_buffers", b.getI64IntegerAttr(numBuffers));
  fn->setAttr("ds.row_scale", b.getI64IntegerAttr(s.rowScale));
  fn->setAttr("ds.arg_shapes", b.getArrayAttr(shapes));
  // The plan stores these rows as bf16: the GPU mapping loads/stores them so (docs/codegen.md).
  if (s.bf16Rows) fn->setAttr("ds.row_type", b.getStringAttr("bf16"));
  Block* entry = fn.addEntryBlock();
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(entry);
  KernelBuilder k(b, loc);
  auto a = entry->getArguments();
  switch (launch.getKernel()) {
    case dsk::Kernel::add:
      k.elementwise({a[0], a[1]}, a[2], [](OpBuilder& nb, Location l, ValueRange v) -> Value {
        return arith::AddFOp::create(nb, l, v[0], v[1]);
      });
      break;
    case dsk::Kernel::swiglu:
      // The library's silu: g / (1 + exp(-g)), then times up.
      k.elementwise({a[0], a[1]}, a[2], [&](OpBuilder& nb, Location l, ValueRange v) -> Value {
        Value e = math::ExpOp::create(nb, l, arith::NegFOp::create(nb, l, v[0]));
        Value one = arith::ConstantOp::create(nb, l, f32, nb.getF32FloatAttr(1.0f));
        Value silu = arith::DivFOp::create(nb, l, v[0], arith::AddFOp::create(nb, l, one, e));
        return arith::MulFOp::create(nb, l, silu, v[1]);
      });
      break;
    case dsk::Kernel::rms_norm: {
      Value rows = memref::DimOp::create(b, loc, a[0], 0);
      Value acc = k.sumOfSquares(a[0], rows, b.getF64Type());
      k.scale(a[0], k.inverseRms(acc, rows, s.cols, s.eps), a[2], a[1]);
      break;
    }
    case dsk::Kernel::rope:
      k.rope(a[0], a[1], a[2], s, invFreq);
      break;
    case dsk::Kernel::add_rms_norm: {
      // The library's fused loop: the sum, its f32 sum of squares, then the scaled row.
      k.elementwise({a[0], a[1]}, a[2], [](OpBuilder& nb, Location l, ValueRange v) -> Value {
        return arith::AddFOp::create(nb, l, v[0], v[1]);
      });
      Value rows = memref::DimOp::create(b, loc, a[0], 0);
      Value acc = k.sumOfSquares(a[2], rows, f32);
      k.scale(a[2], k.inverseRms(acc, rows, s.cols, s.eps), a[4], a[3]);
      break;
    }
    default:
      break;
  }
  k.freeTemporaries();
  func::ReturnOp::create(b, loc);
  return fn;
}

// Identical launches (same kernel, shapes and parameters) share one generated kernel.
std::string kernelKey(dsk::LaunchOp launch, const KernelShape& s) {
  std::string key;
  llvm::raw_string_ostream os(key);
  os << dsk::stringifyKernel(launch.getKernel()) << "|" << launch.getIns().size() << "|"
     << launch.getOuts().size() << "|" << launch.getWeights().size() << "|" << s.cols << "|"
     << s.rowScale << "|" << llvm::format("%a", static_cast<double>(s.eps)) << "|" << s.heads
     << "|" << s.headDim << "|" << s.ropeKey << "|" << (s.bf16Rows ? "bf16" : "f32");
  return key;
}

struct OutlineKernelsPass : impl::OutlineKernelsPassBase<OutlineKernelsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto step = module.lookupSymbol<func::FuncOp>("step");
    if (!step) {
      module.emitError() << "expected a func.func @step (run ds-convert-to-kernels first)";
      return signalPassFailure();
    }
    if (module.lookupSymbol(kernelModuleName)) {
      module.emitError() << "module already holds generated kernels (@" << kernelModuleName << ")";
      return signalPassFailure();
    }
    OpBuilder b(module.getBodyRegion());
    b.setInsertionPointToEnd(module.getBody());
    ModuleOp kernels;
    std::map<std::string, std::string> byKey;
    // The generated kernel for `launch` (shared by identical launches), or "" if unsupported.
    auto kernelFor = [&](dsk::LaunchOp launch) -> std::string {
      std::optional<KernelShape> shape = supportedShape(module, launch);
      if (!shape) return "";
      std::string key = kernelKey(launch, *shape);
      auto it = byKey.find(key);
      if (it == byKey.end()) {
        if (!kernels) {
          kernels = ModuleOp::create(b, module.getLoc(), StringRef(kernelModuleName));
          kernels->setAttr("ds.codegen", b.getUnitAttr());
        }
        std::string name = ("ds_" + dsk::stringifyKernel(launch.getKernel()) + "_" +
                            llvm::Twine(byKey.size())).str();
        OpBuilder kb = OpBuilder::atBlockEnd(kernels.getBody());
        buildKernel(kb, launch.getLoc(), name, launch, *shape);
        it = byKey.emplace(key, name).first;
        ++numKernels;
      }
      return it->second;
    };
    SmallVector<dsk::LaunchOp> launches;
    step.walk([&](dsk::LaunchOp launch) { launches.push_back(launch); });
    for (dsk::LaunchOp launch : launches) {
      std::string sym = kernelFor(launch);
      if (!sym.empty()) {
        launch->setAttr("code_symbol", b.getStringAttr(sym));
        ++numLaunches;
        continue;
      }
      // GEMM launches keep the library GEMMs; their elementwise epilogue is generated: the
      // kernel of an equivalent standalone launch over the same buffers (built, then erased).
      SmallVector<std::string> epilogues;
      OpBuilder lb(launch);
      MLIRContext* ctx = &getContext();
      auto standalone = [&](dsk::Kernel k, ValueRange ins, ValueRange outs, DictionaryAttr params) {
        auto tmp = dsk::LaunchOp::create(lb, launch.getLoc(), dsk::KernelAttr::get(ctx, k), Value(), ins,
                                         outs, lb.getArrayAttr({}), params);
        std::string s = kernelFor(tmp);
        tmp.erase();
        return s;
      };
      // An in-place rope of x with the launch's positions and rope parameters.
      auto ropeOf = [&](Value x) {
        DictionaryAttr p = lb.getDictionaryAttr(
            {lb.getNamedAttr("rope", launch.getParams().getAs<RopeAttr>("rope"))});
        return standalone(dsk::Kernel::rope, {x, launch.getIns()[1]}, {x}, p);
      };
      if (launch.getKernel() == dsk::Kernel::swiglu_linear) {
        Value y = launch.getOuts()[0];
        epilogues.push_back(standalone(dsk::Kernel::swiglu, {y, y}, {y}, lb.getDictionaryAttr({})));
      } else if (launch.getKernel() == dsk::Kernel::qkv_rope) {
        epilogues.push_back(ropeOf(launch.getOuts()[0]));
        epilogues.push_back(ropeOf(launch.getOuts()[1]));
      } else if (launch.getKernel() == dsk::Kernel::mla_project) {
        // The rope of q_rope [T, H, Dr] and of the head-shared k_rope [T, Dr] (as [T, 1, Dr]).
        Value kRope = launch.getOuts()[3];
        auto kt = cast<MemRefType>(kRope.getType());
        auto k3 = dsk::ViewOp::create(
            lb, launch.getLoc(),
            MemRefType::get({ShapedType::kDynamic, 1, kt.getDimSize(1)}, kt.getElementType()), kRope);
        epilogues.push_back(ropeOf(launch.getOuts()[1]));
        epilogues.push_back(ropeOf(k3));
        k3.erase();
      }
      if (epilogues.empty() || llvm::is_contained(epilogues, std::string())) continue;
      SmallVector<Attribute> names;
      for (const std::string& e : epilogues) names.push_back(b.getStringAttr(e));
      launch->setAttr("epilogue_symbols", b.getArrayAttr(names));
      ++numEpilogues;
    }
  }
};

}  // namespace
}  // namespace mlir::ds
