// Public header of the dsk (kernel-level plan) dialect.
#pragma once

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/dsk/DskDialect.h.inc"
#include "dialects/dsk/DskEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/dsk/DskAttrs.h.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/dsk/DskTypes.h.inc"

#define GET_OP_CLASSES
#include "dialects/dsk/DskOps.h.inc"
