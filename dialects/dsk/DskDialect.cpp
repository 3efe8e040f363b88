// dsk dialect registration and verifiers.
#include "dialects/dsk/DskDialect.h"

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
  return success();
}
