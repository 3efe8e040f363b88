// Public header of the ds dialect: dialect, enums, attributes, types and ops.
#pragma once

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "mlir/IR/DialectImplementation.h"


#include "dialects/ds/DsDialect.h.inc"
#include "dialects/ds/DsEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/ds/DsAttrs.h.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/ds/DsTypes.h.inc"

#define GET_OP_CLASSES
#include "dialects/ds/DsOps.h.inc"

namespace mlir::ds {
// The #ds.target of `op`'s closest ancestor (or `op` itself) carrying `ds.target`; null if none.
TargetAttr lookupTarget(Operation* op);
}  // namespace mlir::ds
