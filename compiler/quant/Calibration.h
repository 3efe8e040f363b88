// Calibration for activation-aware quantization: runs a dense Llama-family model in f32 over
// calibration tokens and collects, per GEMM weight, the second moment of its input activations.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace ds {
class Checkpoint;
struct ModelConfig;
}  // namespace ds

namespace mlir::ds {

struct QuantCalibration {
  int64_t tokens = 0;     // calibration tokens seen (BOS included)
  int64_t sequences = 0;  // windows the tokens were split into
  // Checkpoint weight name -> H = mean over tokens of x x^T ([cols x cols], row-major), x the
  // weight's input activation. Weights sharing an input (q/k/v, gate/up) share the values.
  std::map<std::string, std::vector<double>> hessians;

  // H for `name` when its size matches `cols`, else null (the weight is quantized without it).
  const double* find(const std::string& name, int64_t cols) const;
};

// Splits `tokens` (plain text ids, no special tokens) into windows of at most `window` tokens,
// each starting with the model's BOS when it has one, and runs the f32 model over them.
// Dense Llama / Mistral / Qwen2 only (DeepSeek's MLA and MoE are not implemented here): other
// models, or weights the checkpoint lacks, give UNSUPPORTED / NOT_FOUND naming them. Rope
// scaling and sliding windows are ignored (calibration only needs representative activations).
// Deterministic: one thread, fixed summation orders, H accumulated in double in token order.
::ds::StatusOr<QuantCalibration> calibrateDense(const ::ds::ModelConfig& config,
                                                const ::ds::Checkpoint& checkpoint,
                                                const std::vector<int32_t>& tokens,
                                                int64_t window = 256);

}  // namespace mlir::ds
