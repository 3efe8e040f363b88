// ds dialect registration, attribute and type storage, attribute verifiers (#ds.rope, #ds.target).
#include "dialects/ds/DsDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::ds;

#include "dialects/ds/DsDialect.cpp.inc"
#include "dialects/ds/DsEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/ds/DsAttrs.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/ds/DsTypes.cpp.inc"

void DSDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/ds/DsOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/ds/DsAttrs.cpp.inc"
      >();
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialects/ds/DsTypes.cpp.inc"
      >();
}

LogicalResult RopeAttr::verify(function_ref<InFlightDiagnostic()> emitError, APFloat thetaF,
                               int64_t dim, bool interleaved, RopeScaling scaling,
                               APFloat factorF, int64_t originalMaxPosition,
                               APFloat lowFreqF, APFloat highFreqF, APFloat betaFastF,
                               APFloat betaSlowF, APFloat mscale, APFloat mscaleAllDim,
                               APFloat attentionFactor) {
  double theta = thetaF.convertToDouble(), factor = factorF.convertToDouble();
  double lowFreqFactor = lowFreqF.convertToDouble(), highFreqFactor = highFreqF.convertToDouble();
  double betaFast = betaFastF.convertToDouble(), betaSlow = betaSlowF.convertToDouble();
  if (!(theta > 0.0)) return emitError() << "rope theta must be positive, got " << theta;
  if (dim <= 0 || dim % 2 != 0)
    return emitError() << "rope dim must be a positive even number, got " << dim;
  if (scaling != RopeScaling::none && !(factor > 0.0))
    return emitError() << "rope scaling factor must be positive, got " << factor;
  if ((scaling == RopeScaling::llama3 || scaling == RopeScaling::yarn) &&
      originalMaxPosition <= 0)
    return emitError() << "rope scaling '" << stringifyRopeScaling(scaling)
                       << "' needs original_max_position > 0";
  if (scaling == RopeScaling::llama3 && !(highFreqFactor > lowFreqFactor))
    return emitError() << "llama3 rope scaling needs high_freq_factor > low_freq_factor";
  if (scaling == RopeScaling::yarn && !(betaFast > betaSlow))
    return emitError() << "yarn rope scaling needs beta_fast > beta_slow";
  if (mscale.isNegative() || mscaleAllDim.isNegative() || attentionFactor.isNegative())
    return emitError() << "yarn mscale, mscale_all_dim and attention_factor must be >= 0";
  return success();
}

SmallVector<StringRef> TargetAttr::getFeatureNames() const {
  SmallVector<StringRef> names;
  for (Attribute f : getFeatures()) names.push_back(cast<StringAttr>(f).getValue());
  return names;
}

LogicalResult TargetAttr::verify(function_ref<InFlightDiagnostic()> emitError, StringAttr name,
                                 TargetBackend backend, StringAttr triple, StringAttr cpu,
                                 ArrayAttr features, int64_t vectorBits) {
  if (!name || name.getValue().empty()) return emitError() << "#ds.target name must not be empty";
  if (!triple || triple.getValue().empty())
    return emitError() << "#ds.target triple must not be empty";
  bool nvptxTriple = triple.getValue().starts_with("nvptx");
  if (backend == TargetBackend::nvptx && !nvptxTriple)
    return emitError() << "#ds.target triple '" << triple.getValue()
                       << "' is not an nvptx triple (backend = nvptx)";
  if (backend == TargetBackend::host && nvptxTriple)
    return emitError() << "#ds.target triple '" << triple.getValue()
                       << "' is a GPU triple (backend = host)";
  if (!cpu || cpu.getValue().empty()) return emitError() << "#ds.target cpu must not be empty";
  if (backend == TargetBackend::nvptx && !cpu.getValue().starts_with("sm_"))
    return emitError() << "#ds.target cpu '" << cpu.getValue()
                       << "' is not an SM version (sm_80, sm_90a, ...) (backend = nvptx)";
  llvm::StringSet<> seen;
  for (Attribute f : features) {
    auto s = dyn_cast<StringAttr>(f);
    if (!s || s.getValue().empty() || s.getValue().starts_with("+") ||
        s.getValue().starts_with("-") || s.getValue().contains(','))
      return emitError() << "#ds.target features must be feature names (\"avx2\", not \"+avx2\"), got "
                         << f;
    if (!seen.insert(s.getValue()).second)
      return emitError() << "#ds.target features list '" << s.getValue() << "' twice";
  }
  if (vectorBits < 32 || vectorBits % 32 != 0 || vectorBits > 4096)
    return emitError() << "#ds.target vector_bits must be a multiple of 32 in [32, 4096], got "
                       << vectorBits;
  return success();
}

LogicalResult DSDialect::verifyOperationAttribute(Operation* op, NamedAttribute attr) {
  if (attr.getName() != kTargetAttrName) return success();
  if (!isa<TargetAttr>(attr.getValue()))
    return op->emitError() << "'" << kTargetAttrName << "' must be a #ds.target attribute, got "
                           << attr.getValue();
  if (!isa<ModuleOp>(op))
    return op->emitError() << "'" << kTargetAttrName << "' belongs on a builtin.module";
  return success();
}

TargetAttr mlir::ds::lookupTarget(Operation* op) {
  for (; op; op = op->getParentOp())
    if (auto t = op->getAttrOfType<TargetAttr>(DSDialect::kTargetAttrName)) return t;
  return nullptr;
}
