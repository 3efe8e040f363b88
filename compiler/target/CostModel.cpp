// The cost of a token read off the ds graph, and roofline predictions per device.
#include "compiler/target/CostModel.h"

#include "artifact/roofline.h"

#include <algorithm>

#include "dialects/ds/DsDialect.h"

namespace mlir::ds {

namespace {
uint64_t bytesOf(WeightOp w) {
  RankedTensorType t = w.getTensorType();
  uint64_t n = t.getElementTypeBitWidth();
  for (int64_t d : t.getShape()) n *= d;
  uint64_t bytes = n / 8;
  if (FlatSymbolRefAttr s = w.getScaleAttr())
    if (auto scale = SymbolTable::lookupNearestSymbolFrom<WeightOp>(w, s)) bytes += bytesOf(scale);
  return bytes;
}
// FP8 E4M3 weights: stored so (a native FP8 checkpoint) or marked for --quant fp8.
bool isFp8(WeightOp w) {
  if (isa<Float8E4M3FNType>(w.getTensorType().getElementType())) return true;
  auto q = w->getAttrOfType<StringAttr>("quant");
  return q && q.getValue() == "fp8";
}
uint64_t elems(WeightOp w, int dropLeading = 0) {
  uint64_t n = 1;
  for (int64_t d : w.getTensorType().getShape().drop_front(dropLeading)) n *= d;
  return n;
}
}  // namespace

ModelCost estimateCost(ModuleOp module) {
  ModelCost c;
  for (WeightOp w : module.getOps<WeightOp>())
    if (!w.getName().ends_with("_scale_inv")) c.weight_bytes += bytesOf(w);
  auto lookup = [&](Operation* op, FlatSymbolRefAttr ref) {
    return SymbolTable::lookupNearestSymbolFrom<WeightOp>(op, ref);
  };
  module.walk([&](Operation* op) {
    if (op->getDialect() && op->getDialect()->getNamespace() == "ds" && !isa<WeightOp, ViewOp>(op))
      ++c.launches_per_step;
    // Every GEMM weight read once per decode token: 2 FLOPs per element.
    auto gemm = [&](std::initializer_list<FlatSymbolRefAttr> refs) {
      for (FlatSymbolRefAttr ref : refs)
        if (ref) {
          WeightOp w = lookup(op, ref);
          c.decode_bytes_per_token += bytesOf(w);
          c.flops_per_token += 2 * elems(w);
          if (isFp8(w)) c.fp8_flops_per_token += 2 * elems(w);
        }
    };
    if (auto l = dyn_cast<LinearOp>(op)) {
      gemm({l.getWeightAttr()});
    } else if (auto l = dyn_cast<LogitsOp>(op)) {
      gemm({l.getWeightAttr()});
    } else if (auto s = dyn_cast<SwiGLULinearOp>(op)) {
      gemm({s.getGateAttr(), s.getUpAttr()});
    } else if (auto q = dyn_cast<QKVRopeOp>(op)) {
      gemm({q.getWqAttr(), q.getWkAttr(), q.getWvAttr()});
    } else if (auto mp = dyn_cast<MLAProjectOp>(op)) {
      gemm({mp.getQAAttr(), mp.getQBAttr(), mp.getKvAAttr()});
    } else if (auto g = dyn_cast<MoEGateOp>(op)) {
      gemm({g.getWeightAttr()});
    } else if (auto e = dyn_cast<EmbedOp>(op)) {
      WeightOp w = lookup(op, e.getWeightAttr());
      c.decode_bytes_per_token += bytesOf(w) / w.getTensorType().getDimSize(0);
    } else if (auto m = dyn_cast<MoEExpertsOp>(op)) {
      int64_t k = m.getWeights().getType().getDimSize(1);
      for (FlatSymbolRefAttr ref : {m.getGateAttr(), m.getUpAttr(), m.getDownAttr()}) {
        WeightOp w = lookup(op, ref);
        int64_t experts = w.getTensorType().getDimSize(0);
        // Expert parallel: this rank holds experts / E of them, so k * experts / E of a token's
        // k routed slots land here on average (uniform routing; the busiest rank sets the pace).
        int64_t all = experts * (m.getExpertsPerRank() ? w.getFullShape()[0] / experts : 1);
        c.decode_bytes_per_token += bytesOf(w) / experts * k * experts / all;
        c.flops_per_token += 2 * elems(w, 1) * k * experts / all;
        if (isFp8(w)) c.fp8_flops_per_token += 2 * elems(w, 1) * k * experts / all;
      }
      gemm({m.getSharedGateAttr(), m.getSharedUpAttr(), m.getSharedDownAttr()});
    } else if (auto a = dyn_cast<AttentionOp>(op)) {
      auto q = a.getQ().getType();
      // q.k and p.v over every cached position.
      c.attention_flops_per_context_token +=
          2 * q.getDimSize(1) * (q.getDimSize(2) + a.getV().getType().getDimSize(2));
    } else if (auto a = dyn_cast<MLAAttentionOp>(op)) {
      auto q = a.getQRope().getType();
      int64_t rank = a.getCKv().getType().getDimSize(1);
      // Absorbed form: scores over rank + rope dims, values over rank, per head.
      c.attention_flops_per_context_token += 2 * q.getDimSize(1) * (2 * rank + q.getDimSize(2));
    }
  });
  return c;
}

::ds::artifact::TokenCost tokenCost(const ModelCost& c) {
  ::ds::artifact::TokenCost t;
  t.weight_bytes = double(c.weight_bytes);
  t.decode_bytes_per_token = double(c.decode_bytes_per_token);
  t.flops_per_token = double(c.flops_per_token);
  t.attention_flops_per_context_token = double(c.attention_flops_per_context_token);
  t.kv_bytes_per_token = double(c.kv_bytes_per_token);
  return t;
}

Prediction predict(const DeviceSpec& t, const ModelCost& c, int64_t context, int64_t prompt,
                   bool fp8_activations) {
  using namespace ::ds::artifact;
  // The roofline shared with ds-bench (runtime/src/format/artifact/roofline.h).
  const double bw = t.memory_bandwidth_gbs * 1e9 * kBandwidthEfficiency;
  const double flops = t.bf16_tflops * 1e12 * kComputeEfficiency;
  const TokenCost tc = tokenCost(c);
  double decodeS = decodeStep(tc, 1, context).seconds(bw, flops);
  const StepRoofline pre = prefillStep(tc, prompt);
  double prefillS = pre.seconds(bw, flops);
  if (fp8_activations && t.fp8_tflops > 0 && c.fp8_flops_per_token > 0) {
    // Prefill's GEMMs over FP8 weights at the FP8 rate; the other GEMMs and attention at bf16's
    // (decode keeps bf16 activations: memory bound either way).
    const double fp8 = double(c.fp8_flops_per_token) * double(prompt);
    const double f8 = t.fp8_tflops * 1e12 * kComputeEfficiency;
    prefillS = std::max(bw > 0 ? pre.bytes / bw : 0.0, (pre.flops - fp8) / flops + fp8 / f8);
  }
  if (c.tp > 1 && t.link_gbs > 0) {
    double ring = 2.0 * double(c.tp - 1) / double(c.tp) / (t.link_gbs * 1e9);
    double latency = double(c.collectives_per_step) * t.collective_latency_us * 1e-6;
    decodeS += latency + double(c.collective_bytes_per_token) * ring;
    prefillS += latency + double(c.collective_bytes_per_token) * prompt * ring;
  }
  return {decodeS > 0 ? 1.0 / decodeS : 0.0, prefillS * 1e3};
}

}  // namespace mlir::ds
