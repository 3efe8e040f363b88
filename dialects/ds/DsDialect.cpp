// ds dialect registration, attribute and type storage, attribute verifiers.
#include "dialects/ds/DsDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
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
