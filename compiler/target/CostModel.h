// The roofline cost model over the devices of the target table (compiler/target/TargetTable.h).
#pragma once

#include <cstdint>

#include "compiler/target/TargetTable.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::ds {

// What one token costs, read off the ds graph and its weights.
struct ModelCost {
  uint64_t weight_bytes = 0;            // everything stored
  uint64_t decode_bytes_per_token = 0;  // weights one decode token reads at batch 1 (MoE: top-k experts)
  uint64_t flops_per_token = 0;         // GEMM FLOPs per token, without attention over the context
  uint64_t fp8_flops_per_token = 0;     // the part over FP8 E4M3 weights (FP8 tensor cores with --quant-act fp8)
  uint64_t attention_flops_per_context_token = 0;  // per token, per cached position
  uint64_t kv_bytes_per_token = 0;
  int64_t launches_per_step = 0;
  // Tensor parallelism: the figures above are one rank's; each token also pays these
  // collectives (ring all-reduce / all-gather of `collective_bytes_per_token` in all).
  int64_t tp = 1;
  int64_t collectives_per_step = 0;
  uint64_t collective_bytes_per_token = 0;
};

// `module` holds func @forward (the ds graph). kv_bytes_per_token is filled by the caller.
ModelCost estimateCost(ModuleOp module);

struct Prediction {
  double decode_tokens_per_s;   // batch 1 at `context` tokens of history
  double prefill_ms;            // one prompt of `prompt` tokens
};

// Roofline: decode is memory bound (weights + KV read once per token at 80% of peak bandwidth);
// prefill is compute bound (60% of peak bf16 FLOPs) unless its bytes take longer. With tp > 1
// every step adds its collectives: latency each, plus 2 (tp - 1) / tp of the bytes over the link.
// fp8_activations (--quant-act fp8): prefill's GEMM FLOPs over FP8 weights run at the device's
// FP8 rate (when it has FP8 tensor cores), the other GEMMs and attention at bf16's.
Prediction predict(const DeviceSpec& device, const ModelCost& cost, int64_t context,
                   int64_t prompt, bool fp8_activations = false);

}  // namespace mlir::ds
