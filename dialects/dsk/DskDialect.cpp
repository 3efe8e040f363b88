// dsk dialect registration and verifiers.
#include "dialects/dsk/DskDialect.h"

#include "abi/launch_abi.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::dsk;

#include "dialects/dsk/DskDialect.cpp.inc"
#include "dialects/dsk/DskEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/dsk/DskAttrs.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/dsk/DskTypes.cpp.inc"

// `tokens` / `logit_rows` as a bare keyword.
static ParseResult parseRowSpace(OpAsmParser& parser, RowSpaceAttr& rows) {
  StringRef keyword;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseKeyword(&keyword)) return failure();
  std::optional<RowSpace> value = symbolizeRowSpace(keyword);
  if (!value) return parser.emitError(loc) << "expected 'tokens' or 'logit_rows'";
  rows = RowSpaceAttr::get(parser.getContext(), *value);
  return success();
}
static void printRowSpace(OpAsmPrinter& printer, Operation*, RowSpaceAttr rows) {
  printer << stringifyRowSpace(rows.getValue());
}

#define GET_OP_CLASSES
#include "dialects/dsk/DskOps.cpp.inc"

void DSKDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/dsk/DskOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/dsk/DskAttrs.cpp.inc"
      >();
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialects/dsk/DskTypes.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// !dsk.kv_cache
//===----------------------------------------------------------------------===//

// <gqa, layers = L, block = B, kv_heads = H, head_dim = D, v_dim = Dv, T>
// <mla, layers = L, block = B, rank = R, rope_dim = Dr, T>
Type KVCacheType::parse(AsmParser& parser) {
  StringRef kindName;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess() || parser.parseKeyword(&kindName)) return {};
  std::optional<KVKind> kind = symbolizeKVKind(kindName);
  if (!kind) return parser.emitError(loc) << "expected 'gqa' or 'mla'", Type();
  auto field = [&](StringRef name, int64_t* value) -> ParseResult {
    return failure(parser.parseComma() || parser.parseKeyword(name) || parser.parseEqual() ||
                   parser.parseInteger(*value));
  };
  int64_t layers = 0, block = 0, heads = 0, headDim = 0, vDim = 0, rank = 0, ropeDim = 0;
  if (field("layers", &layers) || field("block", &block)) return {};
  if (*kind == KVKind::gqa) {
    if (field("kv_heads", &heads) || field("head_dim", &headDim) || field("v_dim", &vDim))
      return {};
  } else if (field("rank", &rank) || field("rope_dim", &ropeDim)) {
    return {};
  }
  Type element;
  if (parser.parseComma() || parser.parseType(element) || parser.parseGreater()) return {};
  return parser.getChecked<KVCacheType>(parser.getContext(), *kind, layers, block, heads,
                                        headDim, vDim, rank, ropeDim, element);
}

void KVCacheType::print(AsmPrinter& printer) const {
  printer << "<" << stringifyKVKind(getKind()) << ", layers = " << getLayers()
          << ", block = " << getBlockSize();
  if (getKind() == KVKind::gqa)
    printer << ", kv_heads = " << getKvHeads() << ", head_dim = " << getHeadDim()
            << ", v_dim = " << getVDim();
  else
    printer << ", rank = " << getRank() << ", rope_dim = " << getRopeDim();
  printer << ", " << getElementType() << ">";
}

LogicalResult KVCacheType::verify(function_ref<InFlightDiagnostic()> emitError, KVKind kind,
                                  int64_t layers, int64_t blockSize, int64_t kvHeads,
                                  int64_t headDim, int64_t vDim, int64_t rank, int64_t ropeDim,
                                  Type elementType) {
  if (layers < 1 || blockSize < 1 || blockSize > ds::abi::kMaxKvBlockSize)
    return emitError() << "kv_cache needs layers >= 1 and a block size in [1, "
                       << ds::abi::kMaxKvBlockSize << "]";
  if (kind == KVKind::gqa && (kvHeads < 1 || headDim < 1 || vDim < 1))
    return emitError() << "a gqa kv_cache needs kv_heads, head_dim and v_dim >= 1";
  if (kind == KVKind::mla && (rank < 1 || ropeDim < 1))
    return emitError() << "an mla kv_cache needs rank and rope_dim >= 1";
  if (!elementType.isF32() && !elementType.isInteger(8) && !isa<Float8E4M3FNType>(elementType) &&
      !elementType.isBF16() && !elementType.isF16())
    return emitError() << "kv_cache element type must be f32, bf16, f16, i8 or f8E4M3FN, got "
                       << elementType;
  return success();
}

namespace {
// Trailing dimensions must be static: only the row count varies from step to step.
LogicalResult checkBuffer(Operation* op, MemRefType type) {
  if (!ShapedType::isDynamic(type.getDimSize(0)))
    return op->emitOpError() << "buffer's first dimension must be dynamic (T or R), got " << type;
  for (int64_t d : type.getShape().drop_front())
    if (ShapedType::isDynamic(d))
      return op->emitOpError() << "only the first dimension may be dynamic, got " << type;
  if (!type.getLayout().isIdentity())
    return op->emitOpError() << "buffers are contiguous (identity layout), got " << type;
  return success();
}
}  // namespace

LogicalResult AllocOp::verify() { return checkBuffer(*this, getBuffer().getType()); }

LogicalResult ViewOp::verify() {
  MemRefType src = getSource().getType(), dst = getType();
  if (failed(checkBuffer(*this, src)) || failed(checkBuffer(*this, dst))) return failure();
  if (src.getElementType() != dst.getElementType())
    return emitOpError() << "a view keeps the element type";
  int64_t a = 1, b = 1;
  for (int64_t d : src.getShape().drop_front()) a *= d;
  for (int64_t d : dst.getShape().drop_front()) b *= d;
  if (a != b) return emitOpError() << "row of " << a << " elements viewed as " << b;
  return success();
}

LogicalResult LaunchOp::verify() {
  if (getOuts().empty()) return emitOpError() << "a launch writes at least one buffer";
  for (Value v : getOuts())
    if (!v.getDefiningOp<AllocOp>() && !v.getDefiningOp<ViewOp>())
      return emitOpError() << "outputs must be step buffers (dsk.alloc or dsk.view)";
  const ds::abi::KernelSignature* sig = ds::abi::signature(static_cast<uint32_t>(getKernel()));
  if (!sig || stringifyKernel(getKernel()) != sig->name)
    return emitOpError() << "kernel " << stringifyKernel(getKernel())
                         << " has no entry in the launch ABI table";
  const std::string abi = ds::abi::describe(*sig);
  if (getIns().size() != sig->num_inputs || getOuts().size() != sig->num_outputs)
    return emitOpError() << "has " << getIns().size() << " inputs and " << getOuts().size()
                         << " outputs; " << abi << " takes " << sig->num_inputs << " and "
                         << sig->num_outputs;
  auto checkOperand = [&](const ds::abi::Operand& o, Value v, StringRef side) -> LogicalResult {
    auto type = cast<MemRefType>(v.getType());
    bool index = type.getElementType().isInteger(32);
    if (o.kind == ds::abi::OperandKind::Index ? !index : !isa<FloatType>(type.getElementType()))
      return emitOpError() << side << " '" << o.name << "' must be "
                           << (o.kind == ds::abi::OperandKind::Index ? "i32 indices" : "a float activation") << ", got " << type;
    if (o.trailing_rank >= 0 && type.getRank() != o.trailing_rank + 1)
      return emitOpError() << side << " '" << o.name << "' must have rank "
                           << o.trailing_rank + 1 << ", got " << type;
    return success();
  };
  for (auto [i, v] : llvm::enumerate(getIns()))
    if (failed(checkOperand(sig->inputs[i], v, "input"))) return failure();
  for (auto [i, v] : llvm::enumerate(getOuts()))
    if (failed(checkOperand(sig->outputs[i], v, "output"))) return failure();

  SmallVector<bool> present;
  for (Attribute a : getWeights()) {
    if (!isa<FlatSymbolRefAttr, UnitAttr>(a))
      return emitOpError() << "weights are symbol references or `unit` (an absent optional "
                              "slot), got " << a;
    present.push_back(isa<FlatSymbolRefAttr>(a));
  }
  if (std::string e = ds::abi::checkWeightSlots(*sig, present.data(), present.size());
      !e.empty())
    return emitOpError() << "weights: " << e << " (" << abi << ")";

  // The paged KV cache: exactly the kernels that use one take it, of their layout, with shapes
  // that agree with it.
  if (sig->kv_cache == ds::abi::KVUse::None) {
    if (getKvCache()) return emitOpError() << "does not take a KV cache (" << abi << ")";
  } else {
    if (!getKvCache()) return emitOpError() << "needs the step's KV cache: kv(%cache : !dsk.kv_cache<...>)";
    auto kv = cast<KVCacheType>(getKvCache().getType());
    const bool gqa = sig->kv_cache == ds::abi::KVUse::GQA;
    if (kv.getKind() != (gqa ? KVKind::gqa : KVKind::mla))
      return emitOpError() << "needs a " << (gqa ? "gqa" : "mla") << " KV cache, got " << kv;
    auto layer = getParams().getAs<IntegerAttr>("layer");
    if (layer && (layer.getInt() < 0 || layer.getInt() >= kv.getLayers()))
      return emitOpError() << "names KV layer " << layer.getInt() << " of " << kv.getLayers();
    auto trailing = [](Value v) { return cast<MemRefType>(v.getType()).getShape().drop_front(); };
    auto expect = [&](Value v, ArrayRef<int64_t> want, StringRef name) -> LogicalResult {
      if (trailing(v) != want)
        return emitOpError() << "input '" << name << "' must have rows of [" << want
                             << "] to match " << kv;
      return success();
    };
    if (gqa && getIns().size() == 4) {
      if (failed(expect(getIns()[1], {kv.getKvHeads(), kv.getHeadDim()}, "k")) ||
          failed(expect(getIns()[2], {kv.getKvHeads(), kv.getVDim()}, "v")))
        return failure();
    } else if (!gqa && getIns().size() == 5) {
      if (failed(expect(getIns()[2], {kv.getRank()}, "c_kv")) ||
          failed(expect(getIns()[3], {kv.getRopeDim()}, "k_rope")))
        return failure();
    }
  }

  for (NamedAttribute attr : getParams()) {
    const ds::abi::Param* p = ds::abi::param(*sig, attr.getName().getValue());
    if (!p) return emitOpError() << "unknown parameter '" << attr.getName().getValue() << "' (" << abi << ")";
    Attribute v = attr.getValue();
    bool ok = false;
    switch (p->type) {
      case ds::abi::ParamType::I64: ok = isa<IntegerAttr>(v) && !isa<BoolAttr>(v); break;
      case ds::abi::ParamType::F32: ok = isa<FloatAttr>(v); break;
      case ds::abi::ParamType::Bool: ok = isa<BoolAttr>(v); break;
      case ds::abi::ParamType::Unit: ok = isa<UnitAttr>(v); break;
      default: ok = v.getDialect().getNamespace() == "ds"; break;  // #ds.rope, #ds<moe_...>
    }
    if (!ok) return emitOpError() << "parameter '" << p->name << "' has the wrong type: " << v;
  }
  for (size_t i = 0; i < sig->num_params; ++i)
    if (sig->params[i].required && !getParams().contains(sig->params[i].name))
      return emitOpError() << "missing parameter '" << sig->params[i].name << "' (" << abi << ")";
  return success();
}
