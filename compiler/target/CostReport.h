// The cost report of a planned module (ds-compile --cost-report): weights, KV cache, activation
// memory, launches, and the cost model's predictions for every device of the target table.
#pragma once

#include <cstdint>
#include <string>

#include "compiler/target/CostModel.h"
#include "llvm/Support/raw_ostream.h"

namespace ds {
struct ModelConfig;
}  // namespace ds

namespace mlir::ds {

// Elements of the declared weights: per rank (local types), in the checkpoint (full shapes), and
// the full elements and count of the weights cut across tensor-parallel ranks.
struct WeightElements {
  double local = 0, full = 0, cut = 0;
  int count = 0, cutCount = 0;
};
WeightElements weightElements(ModuleOp module);

struct CostReportOptions {
  std::string kv_cache = "f32";   // f32, int8, fp8: the KV bytes per token
  int64_t context = 1024;         // context length of the predictions
  int64_t max_step_tokens = 512;  // largest step for the activation memory figures
  bool fp8_activations = false;   // --quant-act fp8: FP8-weight GEMMs at the FP8 rate
};

// `module` holds func @step (the Plan phase's output); `cost` was estimated on the imported graph.
void printCostReport(llvm::raw_ostream& os, ModuleOp module, const ::ds::ModelConfig& config,
                     ModelCost cost, const CostReportOptions& options);

// "--tp N [--ep M]: a of b weights cut across ranks (...)" for a module right after sharding
// (the ranks from its ds.tp, expert parallelism from ds.ep).
void printShardReport(llvm::raw_ostream& os, ModuleOp module);

}  // namespace mlir::ds
