// Imports a Hugging Face checkpoint (config + safetensors headers) into a `ds` module.
#pragma once

#include <string>

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/Error.h"

namespace ds {
class Checkpoint;
struct ModelConfig;
}  // namespace ds

namespace mlir::ds {

struct ImportOptions {
  // Element type of activations in the graph (the host target computes in f32).
  std::string activation_type = "f32";
};

// Builds `func.func @forward(%ids, %positions, %kv_cache, %logit_rows) -> logits` and one
// ds.weight per checkpoint tensor the graph uses. Every tensor the config implies is checked for
// presence, dtype and shape; errors name the checkpoint and the tensor. Reads headers only.
llvm::Expected<OwningOpRef<ModuleOp>> importModel(MLIRContext& context,
                                                  const ::ds::ModelConfig& config,
                                                  const ::ds::Checkpoint& checkpoint,
                                                  const ImportOptions& options = {});

// Loads <dir>/config.json and the checkpoint, then imports.
llvm::Expected<OwningOpRef<ModuleOp>> importModelDirectory(MLIRContext& context,
                                                           const std::string& dir,
                                                           const ImportOptions& options = {});

}  // namespace mlir::ds
