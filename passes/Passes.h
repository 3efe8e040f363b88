// Generated declarations and registration of every ds pass.
#pragma once

#include "mlir/Pass/Pass.h"

#include "dialects/ds/DsDialect.h"
#include "dialects/dsk/DskDialect.h"

namespace mlir::ds {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

}  // namespace mlir::ds
