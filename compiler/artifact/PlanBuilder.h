// Serializes func @step (dsk dialect) into the artifact's flatbuffer Plan.
#pragma once

#include <string>

#include "artifact_generated.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

namespace mlir::ds {

// `tensorIndex` maps a ds.weight symbol to its index in Artifact.tensors. The KV cache spec is
// the step's `!dsk.kv_cache` argument (none without one).
llvm::Expected<flatbuffers::Offset<::ds::fb::Plan>> buildPlan(
    flatbuffers::FlatBufferBuilder& fbb, ModuleOp module,
    const llvm::StringMap<int>& tensorIndex, size_t* launchCount);

// Storage type of an MLIR element type in the artifact.
llvm::Expected<::ds::fb::DType> fbDType(Type type);

}  // namespace mlir::ds
