// The roofline of one step from the cost model's per-token figures (fb::CostFacts): the one
// formula behind ds-compile's --cost-report predictions and ds-bench's "predicted" and "% of
// roofline" columns. LLVM-free, header-only.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ds::artifact {

struct TokenCost {
  double weight_bytes = 0;
  double decode_bytes_per_token = 0;  // weights read by one decode token (MoE: its experts)
  double flops_per_token = 0;
  double attention_flops_per_context_token = 0;
  double kv_bytes_per_token = 0;
};

struct StepRoofline {
  double bytes = 0, flops = 0;
  // Seconds at `bandwidth` bytes/s and `flop_rate` FLOP/s: the larger of the two floors.
  double seconds(double bandwidth, double flop_rate) const {
    return std::max(bandwidth > 0 ? bytes / bandwidth : 0.0, flop_rate > 0 ? flops / flop_rate : 0.0);
  }
};

// One decode step of `batch` sequences with `context` cached tokens each: the weights are read
// once per step (MoE: at most all of them), each sequence reads its KV.
inline StepRoofline decodeStep(const TokenCost& c, int64_t batch, int64_t context) {
  const double b = static_cast<double>(batch), ctx = static_cast<double>(context);
  StepRoofline r;
  const double weights = c.decode_bytes_per_token * b;
  r.bytes = (c.weight_bytes > 0 ? std::min(c.weight_bytes, weights) : weights) +
            b * ctx * c.kv_bytes_per_token;
  r.flops = b * (c.flops_per_token + c.attention_flops_per_context_token * ctx);
  return r;
}

// One prompt of `prompt` tokens: every weight read once, causal attention over prompt/2
// positions per token on average, the prompt's KV written.
inline StepRoofline prefillStep(const TokenCost& c, int64_t prompt) {
  const double p = static_cast<double>(prompt);
  StepRoofline r;
  r.bytes = c.weight_bytes + p * c.kv_bytes_per_token;
  r.flops = c.flops_per_token * p + c.attention_flops_per_context_token * p * p / 2.0;
  return r;
}

// The cost model's efficiency assumptions against a device's peak figures.
constexpr double kBandwidthEfficiency = 0.8, kComputeEfficiency = 0.6;

}  // namespace ds::artifact
