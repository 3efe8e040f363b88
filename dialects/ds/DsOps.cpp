// Verifiers of the ds ops: shapes and dtypes against each other and against ds.weight symbols.
#include "dialects/ds/DsDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace mlir::ds;

#define GET_OP_CLASSES
#include "dialects/ds/DsOps.cpp.inc"

namespace {

bool compatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

RankedTensorType tensorType(Value v) { return cast<RankedTensorType>(v.getType()); }

// Checks `t` has `rank` dimensions; names the operand in the diagnostic.
LogicalResult expectRank(Operation* op, StringRef what, RankedTensorType t, int64_t rank) {
  if (t.getRank() != rank)
    return op->emitOpError() << what << " must have rank " << rank << ", got " << t;
  return success();
}

// Checks that the token (first) dimensions of several values can agree.
LogicalResult expectSameTokens(Operation* op, ArrayRef<std::pair<StringRef, Value>> values) {
  int64_t tokens = ShapedType::kDynamic;
  StringRef first;
  for (auto [name, v] : values) {
    int64_t d = tensorType(v).getDimSize(0);
    if (!compatible(tokens, d))
      return op->emitOpError() << "token dimension of " << name << " (" << d
                               << ") does not match " << first << " (" << tokens << ")";
    if (!ShapedType::isDynamic(d)) {
      tokens = d;
      first = name;
    }
  }
  return success();
}

// Resolves a weight symbol; emits an error naming the role when it is not a ds.weight.
FailureOr<WeightOp> lookupWeight(Operation* op, SymbolTableCollection& tables,
                                 FlatSymbolRefAttr ref, StringRef role) {
  auto weight = tables.lookupNearestSymbolFrom<WeightOp>(op, ref);
  if (!weight) {
    op->emitOpError() << role << " " << ref << " does not reference a ds.weight";
    return failure();
  }
  return weight;
}

// Looks up a weight and checks its shape; kDynamic entries of `shape` match anything.
FailureOr<WeightOp> expectWeight(Operation* op, SymbolTableCollection& tables,
                                 FlatSymbolRefAttr ref, StringRef role,
                                 ArrayRef<int64_t> shape) {
  FailureOr<WeightOp> weight = lookupWeight(op, tables, ref, role);
  if (failed(weight)) return failure();
  ArrayRef<int64_t> actual = weight->getTensorType().getShape();
  bool ok = actual.size() == shape.size();
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = compatible(shape[i], actual[i]);
  if (!ok) {
    auto diag = op->emitOpError() << role << " " << ref << " has shape [";
    llvm::interleaveComma(actual, diag);
    diag << "], expected [";
    llvm::interleave(
        shape, diag,
        [&](int64_t d) {
          if (ShapedType::isDynamic(d)) diag << "?";
          else diag << d;
        },
        ", ");
    diag << "]";
    return failure();
  }
  return weight;
}

constexpr int64_t kAny = ShapedType::kDynamic;

bool isSupportedWeightElement(Type t) {
  if (t.isF32() || t.isF16() || t.isBF16() || isa<Float8E4M3FNType>(t)) return true;
  if (auto i = dyn_cast<IntegerType>(t)) return i.getWidth() == 4 || i.getWidth() == 8 || i.getWidth() == 32;
  return false;
}

}  // namespace

//===----------------------------------------------------------------------===//
// WeightOp
//===----------------------------------------------------------------------===//

LogicalResult WeightOp::verify() {
  RankedTensorType type = getTensorType();
  if (!isSupportedWeightElement(type.getElementType()))
    return emitOpError() << "unsupported weight element type " << type.getElementType();
  bool hasPlaceholder = getName().contains("{e}");
  if (std::optional<int64_t> experts = getExperts()) {
    if (*experts <= 0) return emitOpError() << "experts must be positive, got " << *experts;
    if (type.getRank() < 2 || type.getDimSize(0) != *experts)
      return emitOpError() << "stacked weight of " << *experts
                           << " experts must have leading dimension " << *experts << ", got "
                           << type;
    if (!hasPlaceholder)
      return emitOpError() << "stacked weight name '" << getName()
                           << "' must contain the expert placeholder {e}";
  } else if (hasPlaceholder) {
    return emitOpError() << "name '" << getName() << "' has {e} but no experts attribute";
  }
  if (std::optional<StringRef> q = getQuant()) {
    static const char* kSchemes[] = {"int8",           "fp8",      "int4_g64", "int4_g128",
                                     "int4_g64_asym",  "int4_g128_asym", "int6_g64", "int6_g128"};
    if (llvm::find(kSchemes, *q) == std::end(kSchemes))
      return emitOpError() << "unknown quantization '" << *q
                           << "' (int8, fp8, int4_g64, int4_g128, int4_g64_asym, int4_g128_asym, "
                              "int6_g64, int6_g128)";
    Type e = type.getElementType();
    if (!(e.isF32() || e.isF16() || e.isBF16()))
      return emitOpError() << "only f32/f16/bf16 weights can be quantized, got " << e;
    if (type.getRank() != 2 && !(type.getRank() == 3 && getExperts()))
      return emitOpError() << "only matrices (or stacked expert matrices) can be quantized";
  }
  if (getScale().has_value() != getBlock().has_value())
    return emitOpError() << "block-scaled weights need both 'scale' and 'block'";
  if (std::optional<ArrayRef<int64_t>> block = getBlock()) {
    if (block->size() != 2 || (*block)[0] <= 0 || (*block)[1] <= 0)
      return emitOpError() << "block must be two positive sizes";
  }
  if (std::optional<ArrayAttr> concat = getConcat()) {
    if (concat->size() < 2)
      return emitOpError() << "concat needs at least two checkpoint tensors";
    if (getExperts() || getScale() || getShard())
      return emitOpError() << "a concatenated weight cannot be stacked experts, block-scaled or sharded";
  }
  if (std::optional<ArrayRef<int64_t>> shard = getShard()) {
    if (shard->size() != 2)
      return emitOpError() << "shard must be [dim, pieces]";
    int64_t dim = (*shard)[0], pieces = (*shard)[1];
    if (dim < 0 || dim >= type.getRank())
      return emitOpError() << "shard dimension " << dim << " is outside the rank-"
                           << type.getRank() << " type";
    if (pieces < 1) return emitOpError() << "shard pieces must be positive, got " << pieces;
    auto module = (*this)->getParentOfType<ModuleOp>();
    auto tp = module ? module->getAttrOfType<IntegerAttr>("ds.tp") : IntegerAttr();
    if (!tp) return emitOpError() << "a sharded weight needs the module attribute ds.tp";
    if (tp.getInt() % pieces != 0)
      return emitOpError() << "shard pieces " << pieces << " must divide ds.tp = " << tp.getInt();
  }
  return success();
}

SmallVector<int64_t> WeightOp::getFullShape() {
  SmallVector<int64_t> shape(getTensorType().getShape());
  if (std::optional<ArrayRef<int64_t>> shard = getShard()) shape[(*shard)[0]] *= (*shard)[1];
  return shape;
}

LogicalResult WeightOp::verifySymbolUses(SymbolTableCollection& tables) {
  if (!getScaleAttr()) return success();
  // The scale grid covers the checkpoint tensor; a shard's grid is derived when it is written.
  SmallVector<int64_t> full = getFullShape();
  ArrayRef<int64_t> block = *getBlock();
  int64_t rank = static_cast<int64_t>(full.size());
  if (rank < 2) return emitOpError() << "block-scaled weight must have rank >= 2";
  SmallVector<int64_t> expected(ArrayRef<int64_t>(full).drop_back(2));
  expected.push_back(llvm::divideCeil(full[rank - 2], block[0]));
  expected.push_back(llvm::divideCeil(full[rank - 1], block[1]));
  FailureOr<WeightOp> scale = expectWeight(*this, tables, getScaleAttr(), "scale", expected);
  if (failed(scale)) return failure();
  if (!scale->getTensorType().getElementType().isF32())
    return emitOpError() << "scale " << getScaleAttr() << " must hold f32 values";
  return success();
}

//===----------------------------------------------------------------------===//
// Embedding, norms, linear
//===----------------------------------------------------------------------===//

LogicalResult EmbedOp::verify() {
  if (failed(expectRank(*this, "result", getType(), 2))) return failure();
  if (std::optional<int64_t> rows = getRowsPerRank(); rows && *rows <= 0)
    return emitOpError() << "rows_per_rank must be positive, got " << *rows;
  return expectSameTokens(*this, {{"ids", getIds()}, {"result", getResult()}});
}

LogicalResult EmbedOp::verifySymbolUses(SymbolTableCollection& tables) {
  int64_t rows = getRowsPerRank() ? *getRowsPerRank() : kAny;
  return expectWeight(*this, tables, getWeightAttr(), "weight", {rows, getType().getDimSize(1)});
}

//===----------------------------------------------------------------------===//
// Collectives
//===----------------------------------------------------------------------===//

LogicalResult AllGatherOp::verify() {
  RankedTensorType in = getInput().getType(), out = getType();
  if (failed(expectSameTokens(*this, {{"input", getInput()}, {"result", getResult()}})))
    return failure();
  if (in.getElementType() != out.getElementType())
    return emitOpError() << "changes the element type";
  int64_t c = in.getDimSize(1), total = out.getDimSize(1);
  if (ShapedType::isDynamic(c) || ShapedType::isDynamic(total) || total % c != 0)
    return emitOpError() << "result columns " << total << " must be a multiple of the input's " << c;
  auto module = (*this)->getParentOfType<ModuleOp>();
  if (auto tp = module ? module->getAttrOfType<IntegerAttr>("ds.tp") : IntegerAttr())
    if (total != c * tp.getInt())
      return emitOpError() << "gathers " << total / c << " slices but ds.tp = " << tp.getInt();
  return success();
}

LogicalResult RMSNormOp::verify() {
  if (getEps().convertToFloat() < 0.0f) return emitOpError() << "eps must be non-negative";
  return success();
}

LogicalResult RMSNormOp::verifySymbolUses(SymbolTableCollection& tables) {
  RankedTensorType t = getInput().getType();
  return expectWeight(*this, tables, getWeightAttr(), "weight", {t.getDimSize(t.getRank() - 1)});
}

LogicalResult LinearOp::verify() {
  if (failed(expectRank(*this, "input", getInput().getType(), 2)) ||
      failed(expectRank(*this, "result", getType(), 2)))
    return failure();
  return expectSameTokens(*this, {{"input", getInput()}, {"result", getResult()}});
}

LogicalResult LinearOp::verifySymbolUses(SymbolTableCollection& tables) {
  int64_t in = getInput().getType().getDimSize(1), out = getType().getDimSize(1);
  if (failed(expectWeight(*this, tables, getWeightAttr(), "weight", {out, in}))) return failure();
  if (FlatSymbolRefAttr bias = getBiasAttr())
    if (failed(expectWeight(*this, tables, bias, "bias", {out}))) return failure();
  return success();
}

LogicalResult AddRMSNormOp::verify() {
  if (getEps().convertToFloat() < 0.0f) return emitOpError() << "eps must be non-negative";
  return success();
}

LogicalResult AddRMSNormOp::verifySymbolUses(SymbolTableCollection& tables) {
  RankedTensorType t = getLhs().getType();
  return expectWeight(*this, tables, getWeightAttr(), "weight", {t.getDimSize(t.getRank() - 1)});
}

LogicalResult SwiGLULinearOp::verify() {
  if (failed(expectRank(*this, "input", getInput().getType(), 2)) ||
      failed(expectRank(*this, "result", getType(), 2)))
    return failure();
  return expectSameTokens(*this, {{"input", getInput()}, {"result", getResult()}});
}

LogicalResult SwiGLULinearOp::verifySymbolUses(SymbolTableCollection& tables) {
  int64_t in = getInput().getType().getDimSize(1), out = getType().getDimSize(1);
  if (getGateAttr() == getUpAttr())  // merged gate/up: one [2N, K] GEMM
    return success(succeeded(expectWeight(*this, tables, getGateAttr(), "gate", {2 * out, in})));
  if (failed(expectWeight(*this, tables, getGateAttr(), "gate", {out, in})) ||
      failed(expectWeight(*this, tables, getUpAttr(), "up", {out, in})))
    return failure();
  return success();
}

LogicalResult QKVRopeOp::verify() {
  RankedTensorType q = getQ().getType(), k = getK().getType(), v = getV().getType();
  if (failed(expectRank(*this, "input", getInput().getType(), 2)) ||
      failed(expectRank(*this, "q", q, 3)) || failed(expectRank(*this, "k", k, 3)) ||
      failed(expectRank(*this, "v", v, 3)))
    return failure();
  if (q.getDimSize(2) != k.getDimSize(2) || k.getDimSize(1) != v.getDimSize(1))
    return emitOpError() << "q/k head dims or k/v head counts differ";
  if (getRope().getDim() > q.getDimSize(2))
    return emitOpError() << "rope dim " << getRope().getDim() << " exceeds head dim " << q.getDimSize(2);
  bool anyBias = getBq() || getBk() || getBv();
  if (anyBias && !(getBq() && getBk() && getBv()))
    return emitOpError() << "biases must be given for all of q, k, v or none";
  return expectSameTokens(*this, {{"input", getInput()}, {"positions", getPositions()},
                                  {"q", getQ()}, {"k", getK()}, {"v", getV()}});
}

LogicalResult QKVRopeOp::verifySymbolUses(SymbolTableCollection& tables) {
  int64_t in = getInput().getType().getDimSize(1);
  auto rows = [](RankedTensorType t) { return t.getDimSize(1) * t.getDimSize(2); };
  int64_t nq = rows(getQ().getType()), nk = rows(getK().getType()), nv = rows(getV().getType());
  bool merged = getWqAttr() == getWkAttr() && getWkAttr() == getWvAttr();
  if (merged || getWqAttr() == getWkAttr() || getWkAttr() == getWvAttr() || getWqAttr() == getWvAttr()) {
    // One merged [Nq + Nk + Nv, K] projection (and bias), or an error naming the mix.
    if (!merged) return emitOpError() << "wq, wk, wv must be three weights or one merged weight";
    if (failed(expectWeight(*this, tables, getWqAttr(), "wq", {nq + nk + nv, in}))) return failure();
    if (getBqAttr() && (getBqAttr() != getBkAttr() || getBkAttr() != getBvAttr()))
      return emitOpError() << "a merged projection needs one merged bias";
    if (getBqAttr() && failed(expectWeight(*this, tables, getBqAttr(), "bq", {nq + nk + nv})))
      return failure();
    return success();
  }
  if (failed(expectWeight(*this, tables, getWqAttr(), "wq", {nq, in})) ||
      failed(expectWeight(*this, tables, getWkAttr(), "wk", {nk, in})) ||
      failed(expectWeight(*this, tables, getWvAttr(), "wv", {nv, in})))
    return failure();
  if (getBqAttr() &&
      (failed(expectWeight(*this, tables, getBqAttr(), "bq", {nq})) ||
       failed(expectWeight(*this, tables, getBkAttr(), "bk", {nk})) ||
       failed(expectWeight(*this, tables, getBvAttr(), "bv", {nv}))))
    return failure();
  return success();
}

LogicalResult MLAProjectOp::verify() {
  RankedTensorType qn = getQNope().getType(), qr = getQRope().getType(),
                   ckv = getCKv().getType(), kr = getKRope().getType();
  if (failed(expectRank(*this, "input", getInput().getType(), 2)) ||
      failed(expectRank(*this, "q_nope", qn, 3)) || failed(expectRank(*this, "q_rope", qr, 3)) ||
      failed(expectRank(*this, "c_kv", ckv, 2)) || failed(expectRank(*this, "k_rope", kr, 2)))
    return failure();
  if (qn.getDimSize(1) != qr.getDimSize(1) || qr.getDimSize(2) != kr.getDimSize(1))
    return emitOpError() << "q_nope/q_rope heads or q_rope/k_rope dims differ";
  if (getRope().getDim() != kr.getDimSize(1))
    return emitOpError() << "rope dim must equal the rope part (" << kr.getDimSize(1) << ")";
  if (getQA().has_value() != getQANorm().has_value())
    return emitOpError() << "q LoRA needs both q_a and q_a_norm";
  return expectSameTokens(*this, {{"input", getInput()}, {"positions", getPositions()},
                                  {"q_nope", getQNope()}, {"c_kv", getCKv()}});
}

LogicalResult MLAProjectOp::verifySymbolUses(SymbolTableCollection& tables) {
  int64_t in = getInput().getType().getDimSize(1);
  auto qn = getQNope().getType();
  int64_t heads = qn.getDimSize(1), nope = qn.getDimSize(2);
  int64_t rdim = getKRope().getType().getDimSize(1), rank = getCKv().getType().getDimSize(1);
  int64_t qIn = in;
  if (FlatSymbolRefAttr qa = getQAAttr()) {
    FailureOr<WeightOp> w = expectWeight(*this, tables, qa, "q_a", {kAny, in});
    if (failed(w)) return failure();
    qIn = w->getTensorType().getDimSize(0);
    if (failed(expectWeight(*this, tables, getQANormAttr(), "q_a_norm", {qIn}))) return failure();
  }
  if (failed(expectWeight(*this, tables, getQBAttr(), "q_b", {heads * (nope + rdim), qIn})) ||
      failed(expectWeight(*this, tables, getKvAAttr(), "kv_a", {rank + rdim, in})) ||
      failed(expectWeight(*this, tables, getKvANormAttr(), "kv_a_norm", {rank})))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

LogicalResult ViewOp::verify() {
  RankedTensorType in = getInput().getType(), out = getType();
  if (in.getElementType() != out.getElementType())
    return emitOpError() << "element type changes from " << in.getElementType() << " to "
                         << out.getElementType();
  if (in.getRank() < 1 || out.getRank() < 1)
    return emitOpError() << "input and result need a token dimension";
  auto rowElements = [](RankedTensorType t) -> std::optional<int64_t> {
    int64_t n = 1;
    for (int64_t d : t.getShape().drop_front()) {
      if (ShapedType::isDynamic(d)) return std::nullopt;
      n *= d;
    }
    return n;
  };
  std::optional<int64_t> a = rowElements(in), b = rowElements(out);
  if (!a || !b) return emitOpError() << "only the token dimension may be dynamic";
  if (*a != *b)
    return emitOpError() << "row of " << *a << " elements cannot be viewed as " << *b;
  return expectSameTokens(*this, {{"input", getInput()}, {"result", getResult()}});
}

LogicalResult SliceOp::verify() {
  RankedTensorType in = getInput().getType(), out = getType();
  int64_t rank = in.getRank();
  if (out.getRank() != rank || in.getElementType() != out.getElementType())
    return emitOpError() << "result must have the input's rank and element type";
  for (int64_t i = 0; i + 1 < rank; ++i)
    if (!compatible(in.getDimSize(i), out.getDimSize(i)))
      return emitOpError() << "leading dimension " << i << " must be kept";
  int64_t offset = getOffset(), size = getSize(), last = in.getDimSize(rank - 1);
  if (offset < 0 || size <= 0) return emitOpError() << "needs offset >= 0 and size > 0";
  if (!ShapedType::isDynamic(last) && offset + size > last)
    return emitOpError() << "slice [" << offset << ", " << offset + size
                         << ") exceeds last dimension " << last;
  if (out.getDimSize(rank - 1) != size)
    return emitOpError() << "result last dimension must equal size " << size;
  return success();
}

//===----------------------------------------------------------------------===//
// Position embedding and attention
//===----------------------------------------------------------------------===//

LogicalResult RopeOp::verify() {
  RankedTensorType in = getInput().getType();
  if (failed(expectRank(*this, "input", in, 3))) return failure();
  if (getRope().getDim() > in.getDimSize(2))
    return emitOpError() << "rope dim " << getRope().getDim() << " exceeds head dim "
                         << in.getDimSize(2);
  return expectSameTokens(*this, {{"input", getInput()}, {"positions", getPositions()}});
}

LogicalResult AttentionOp::verify() {
  RankedTensorType q = getQ().getType(), k = getK().getType(), v = getV().getType(),
                   out = getType();
  for (auto [name, t] : {std::pair<StringRef, RankedTensorType>{"q", q}, {"k", k}, {"v", v},
                         {"result", out}})
    if (failed(expectRank(*this, name, t, 3))) return failure();
  if (failed(expectSameTokens(*this, {{"q", getQ()}, {"k", getK()}, {"v", getV()},
                                      {"positions", getPositions()}, {"result", getResult()}})))
    return failure();
  int64_t hq = q.getDimSize(1), hkv = k.getDimSize(1);
  if (hkv != v.getDimSize(1))
    return emitOpError() << "k has " << hkv << " heads but v has " << v.getDimSize(1);
  if (hkv <= 0 || hq % hkv != 0)
    return emitOpError() << "query heads (" << hq << ") must be a multiple of kv heads (" << hkv
                         << ")";
  if (q.getDimSize(2) != k.getDimSize(2))
    return emitOpError() << "q head dim " << q.getDimSize(2) << " != k head dim "
                         << k.getDimSize(2);
  if (out.getDimSize(1) != hq || out.getDimSize(2) != v.getDimSize(2))
    return emitOpError() << "result must be [T, " << hq << ", " << v.getDimSize(2) << "]";
  if (static_cast<int64_t>(getLayer()) < 0) return emitOpError() << "layer must be non-negative";
  if (!(getScale().convertToFloat() > 0.0f)) return emitOpError() << "scale must be positive";
  if (std::optional<int64_t> w = getSlidingWindow(); w && *w <= 0)
    return emitOpError() << "sliding_window must be positive";
  return success();
}

LogicalResult MLAAttentionOp::verify() {
  RankedTensorType qn = getQNope().getType(), qr = getQRope().getType(),
                   ckv = getCKv().getType(), kr = getKRope().getType(), out = getType();
  if (failed(expectRank(*this, "q_nope", qn, 3)) || failed(expectRank(*this, "q_rope", qr, 3)) ||
      failed(expectRank(*this, "c_kv", ckv, 2)) || failed(expectRank(*this, "k_rope", kr, 2)) ||
      failed(expectRank(*this, "result", out, 3)))
    return failure();
  if (failed(expectSameTokens(*this, {{"q_nope", getQNope()}, {"q_rope", getQRope()},
                                      {"c_kv", getCKv()}, {"k_rope", getKRope()},
                                      {"positions", getPositions()}, {"result", getResult()}})))
    return failure();
  int64_t heads = qn.getDimSize(1);
  if (qr.getDimSize(1) != heads || out.getDimSize(1) != heads)
    return emitOpError() << "q_nope, q_rope and result must have the same number of heads";
  if (qr.getDimSize(2) != kr.getDimSize(1))
    return emitOpError() << "q_rope dim " << qr.getDimSize(2) << " != k_rope dim "
                         << kr.getDimSize(1);
  if (static_cast<int64_t>(getLayer()) < 0) return emitOpError() << "layer must be non-negative";
  if (!(getScale().convertToFloat() > 0.0f)) return emitOpError() << "scale must be positive";
  return success();
}

LogicalResult MLAAttentionOp::verifySymbolUses(SymbolTableCollection& tables) {
  int64_t heads = getQNope().getType().getDimSize(1);
  int64_t nope = getQNope().getType().getDimSize(2), vdim = getType().getDimSize(2);
  int64_t rank = getCKv().getType().getDimSize(1);
  return expectWeight(*this, tables, getKvBAttr(), "kv_b", {heads * (nope + vdim), rank});
}

//===----------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------===//

LogicalResult MoEGateOp::verify() {
  if (failed(expectRank(*this, "input", getInput().getType(), 2))) return failure();
  int64_t k = static_cast<int64_t>(getTopK());
  if (k <= 0) return emitOpError() << "top_k must be positive";
  for (Value v : {getWeights(), getIds()})
    if (tensorType(v).getDimSize(1) != k)
      return emitOpError() << "results must be [T, " << k << "]";
  if (failed(expectSameTokens(*this, {{"input", getInput()}, {"weights", getWeights()},
                                      {"ids", getIds()}})))
    return failure();
  if (static_cast<int64_t>(getNGroup()) < 1 || static_cast<int64_t>(getTopkGroup()) < 1 ||
      getTopkGroup() > getNGroup())
    return emitOpError() << "needs 1 <= topk_group (" << getTopkGroup() << ") <= n_group ("
                         << getNGroup() << ")";
  if (getTopkMethod() == MoeTopkMethod::noaux_tc && !getCorrectionBias())
    return emitOpError() << "topk_method noaux_tc needs a correction_bias";
  if (!(getRoutedScalingFactor().convertToFloat() > 0.0f))
    return emitOpError() << "routed_scaling_factor must be positive";
  return success();
}

LogicalResult MoEGateOp::verifySymbolUses(SymbolTableCollection& tables) {
  FailureOr<WeightOp> w = expectWeight(*this, tables, getWeightAttr(), "weight",
                                       {kAny, getInput().getType().getDimSize(1)});
  if (failed(w)) return failure();
  int64_t experts = w->getTensorType().getDimSize(0);
  if (experts % static_cast<int64_t>(getNGroup()) != 0)
    return emitOpError() << experts << " experts cannot form " << getNGroup() << " groups";
  int64_t eligible = static_cast<int64_t>(getTopkGroup()) * (experts / getNGroup());
  if (static_cast<int64_t>(getTopK()) > eligible)
    return emitOpError() << "top_k " << getTopK() << " exceeds the " << eligible
                         << " experts of the selected groups";
  if (FlatSymbolRefAttr bias = getCorrectionBiasAttr()) {
    FailureOr<WeightOp> b = expectWeight(*this, tables, bias, "correction_bias", {experts});
    if (failed(b)) return failure();
  }
  return success();
}

LogicalResult MoEExpertsOp::verify() {
  RankedTensorType in = getInput().getType();
  if (failed(expectRank(*this, "input", in, 2))) return failure();
  if (getType() != in) return emitOpError() << "result type must equal input type";
  if (getWeights().getType().getDimSize(1) != getIds().getType().getDimSize(1))
    return emitOpError() << "weights and ids must have the same top_k";
  bool anyShared = getSharedGate() || getSharedUp() || getSharedDown();
  bool allShared = getSharedGate() && getSharedUp() && getSharedDown();
  if (anyShared && !allShared)
    return emitOpError() << "shared experts need shared_gate, shared_up and shared_down";
  if (std::optional<int64_t> perRank = getExpertsPerRank(); perRank && *perRank <= 0)
    return emitOpError() << "experts_per_rank must be positive, got " << *perRank;
  return expectSameTokens(*this, {{"input", getInput()}, {"weights", getWeights()},
                                  {"ids", getIds()}});
}

LogicalResult MoEExpertsOp::verifySymbolUses(SymbolTableCollection& tables) {
  int64_t hidden = getInput().getType().getDimSize(1);
  FailureOr<WeightOp> gate = expectWeight(*this, tables, getGateAttr(), "gate", {kAny, kAny, hidden});
  if (failed(gate)) return failure();
  int64_t experts = gate->getTensorType().getDimSize(0);
  int64_t inter = gate->getTensorType().getDimSize(1);
  if (std::optional<int64_t> perRank = getExpertsPerRank(); perRank && *perRank != experts)
    return emitOpError() << "experts_per_rank " << *perRank << " differs from the "
                         << experts << " experts of the rank-local gate weight";
  if (failed(expectWeight(*this, tables, getUpAttr(), "up", {experts, inter, hidden})) ||
      failed(expectWeight(*this, tables, getDownAttr(), "down", {experts, hidden, inter})))
    return failure();
  if (!getSharedGateAttr()) return success();
  FailureOr<WeightOp> sg =
      expectWeight(*this, tables, getSharedGateAttr(), "shared_gate", {kAny, hidden});
  if (failed(sg)) return failure();
  int64_t sharedInter = sg->getTensorType().getDimSize(0);
  if (failed(expectWeight(*this, tables, getSharedUpAttr(), "shared_up", {sharedInter, hidden})) ||
      failed(expectWeight(*this, tables, getSharedDownAttr(), "shared_down", {hidden, sharedInter})))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// Logits
//===----------------------------------------------------------------------===//

LogicalResult LogitsOp::verify() {
  if (failed(expectRank(*this, "input", getInput().getType(), 2))) return failure();
  if (Value rows = getRows())
    return expectSameTokens(*this, {{"rows", rows}, {"result", getResult()}});
  return expectSameTokens(*this, {{"input", getInput()}, {"result", getResult()}});
}

LogicalResult LogitsOp::verifySymbolUses(SymbolTableCollection& tables) {
  return expectWeight(*this, tables, getWeightAttr(), "weight",
                      {getType().getDimSize(1), getInput().getType().getDimSize(1)});
}
