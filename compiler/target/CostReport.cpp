// The cost report (ds-compile --cost-report): memory, launches and roofline predictions.
#include "compiler/target/CostReport.h"

#include <algorithm>
#include <cmath>

#include "cpu/cpu_kernels.h"
#include "dialects/dsk/DskDialect.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "ingest/hf_config.h"

namespace mlir::ds {

namespace {

std::string mib(double bytes) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << llvm::format("%.2f MiB", bytes / (1024.0 * 1024.0));
  return s;
}

}  // namespace

WeightElements weightElements(ModuleOp module) {
  WeightElements e;
  for (WeightOp w : module.getOps<WeightOp>()) {
    double full = 1;
    for (int64_t d : w.getFullShape()) full *= double(d);
    e.local += double(w.getTensorType().getNumElements());
    e.full += full;
    ++e.count;
    if (w.getShard()) {
      e.cut += full;
      ++e.cutCount;
    }
  }
  return e;
}

void printCostReport(llvm::raw_ostream& os, ModuleOp module, const ::ds::ModelConfig& config,
                     ModelCost cost, const CostReportOptions& options) {
  auto step = module.lookupSymbol<func::FuncOp>("step");
  auto attr = [&](llvm::StringRef name) -> int64_t {
    auto a = step ? step->getAttrOfType<IntegerAttr>(name) : nullptr;
    return a ? a.getInt() : 0;
  };
  int64_t launches = 0;
  int64_t kvPerToken = 0;
  // The same per-block sizes the runtime divides --kv-cache-mem by.
  ::ds::cpu::KVType kvType = options.kv_cache == "int8"  ? ::ds::cpu::KVType::I8
                             : options.kv_cache == "fp8" ? ::ds::cpu::KVType::F8E4M3
                                                         : ::ds::cpu::KVType::F32;
  if (step) {
    step.walk([&](dsk::LaunchOp l) {
      ++launches;
      if (l.getKernel() == dsk::Kernel::attention) {
        auto k = llvm::cast<MemRefType>(l.getIns()[1].getType());
        auto v = llvm::cast<MemRefType>(l.getIns()[2].getType());
        const int64_t bytes = ::ds::cpu::kvBlockBytes(kvType, 1, k.getDimSize(1), k.getDimSize(2), v.getDimSize(2));
        kvPerToken += options.kv_cache == "bf16" ? bytes / 2 : bytes;  // bf16: no scales
      } else if (l.getKernel() == dsk::Kernel::mla_attention) {
        auto c = llvm::cast<MemRefType>(l.getIns()[2].getType());
        auto r = llvm::cast<MemRefType>(l.getIns()[3].getType());
        const int64_t bytes = ::ds::cpu::mlaBlockBytes(kvType, 1, c.getDimSize(1), r.getDimSize(1));
        kvPerToken += options.kv_cache == "bf16" ? bytes / 2 : bytes;
      }
    });
  }
  cost.kv_bytes_per_token = kvPerToken;
  int64_t planned = attr("dsk.arena_bytes_per_token"), unplanned = attr("dsk.unplanned_bytes_per_token");
  int64_t plannedRows = attr("dsk.arena_bytes_per_logit_row");
  int64_t unplannedRows = attr("dsk.unplanned_bytes_per_logit_row");
  os << "model           " << config.model_type << ", " << config.num_hidden_layers << " layers, hidden "
     << config.hidden_size << ", vocab " << config.vocab_size << "\n";
  // Tensor parallelism: a rank stores its shards plus every replicated weight.
  WeightElements elems = weightElements(module);
  double localElems = elems.local, fullElems = elems.full;
  auto tpAttr = module->getAttrOfType<IntegerAttr>("ds.tp");
  int64_t tp = tpAttr ? tpAttr.getInt() : 1;
  double rankBytes = fullElems > 0 ? double(cost.weight_bytes) * localElems / fullElems : 0;
  double totalBytes = double(cost.weight_bytes);
  if (tp > 1) {
    // One rank's share of the weights, bytes and GEMM FLOPs, plus its collectives.
    double share = localElems / fullElems;
    cost.tp = tp;
    cost.weight_bytes = static_cast<uint64_t>(rankBytes);
    cost.decode_bytes_per_token = static_cast<uint64_t>(double(cost.decode_bytes_per_token) * share);
    cost.flops_per_token = static_cast<uint64_t>(double(cost.flops_per_token) * share);
    cost.fp8_flops_per_token = static_cast<uint64_t>(double(cost.fp8_flops_per_token) * share);
    cost.attention_flops_per_context_token =
        static_cast<uint64_t>(double(cost.attention_flops_per_context_token) * share);
    if (step)
      step.walk([&](dsk::LaunchOp l) {
        // Collectives, standalone or folded into an add + RMSNorm (its reduced input).
        bool folded = l.getKernel() == dsk::Kernel::add_rms_norm &&
                      l.getParams().contains("all_reduce_rhs");
        if (l.getKernel() != dsk::Kernel::all_reduce &&
            l.getKernel() != dsk::Kernel::all_gather && !folded)
          return;
        auto type = llvm::cast<MemRefType>(
            folded ? l.getIns()[1].getType() : l.getOuts()[0].getType());
        int64_t row = 4;
        for (int64_t d : type.getShape().drop_front()) row *= d;
        ++cost.collectives_per_step;
        cost.collective_bytes_per_token += row;
      });
  }
  os << "weights         " << mib(rankBytes) << " per rank (" << tp << " rank" << (tp > 1 ? "s" : "")
     << "; " << mib(totalBytes) << " in all)\n";
  os << "kv cache        " << kvPerToken << " bytes per token" << (tp > 1 ? " per rank" : "") << " (" << options.kv_cache << ")\n";
  os << "launches        " << launches << " per step (" << cost.launches_per_step
     << " before fusion, " << llvm::format("%.1f", 100.0 * (1.0 - double(launches) / cost.launches_per_step))
     << "% fewer)\n";
  int64_t T = options.max_step_tokens;
  if (unplanned > 0) {
    double before = double(unplanned) * T + double(unplannedRows) * T;
    double after = double(planned) * T + double(plannedRows) * T;
    os << "activations     largest step (" << T << " tokens, all rows with logits): "
       << mib(after) << " planned vs " << mib(before) << " one buffer per value ("
       << llvm::format("%.1f", 100.0 * (1.0 - after / before)) << "% less)\n";
    os << "                per token: " << planned << " bytes planned, " << unplanned
       << " unplanned; per logit row: " << plannedRows << " vs " << unplannedRows << "\n";
  }
  os << "per token       " << cost.decode_bytes_per_token << " weight bytes read at batch 1, "
     << cost.flops_per_token << " GEMM FLOPs";
  if (cost.fp8_flops_per_token > 0)
    os << " (" << cost.fp8_flops_per_token << " over FP8 weights"
       << (options.fp8_activations ? ": FP8 tensor cores, --quant-act fp8" : ": bf16 MMA after decoding") << ")";
  os << "\n";
  os << "predicted (roofline: 80% of peak bandwidth, 60% of peak bf16 FLOPs; decode at batch 1 with "
     << options.context << " tokens of context, prefill of " << options.context << " tokens"
     << (cost.tp > 1 ? llvm::formatv("; {0} ranks, {1} collectives per step", cost.tp,
                                     cost.collectives_per_step).str()
                     : std::string())
     << "):\n";
  for (const CostDevice& d : costModelDevices()) {
    const DeviceSpec& t = *d.device;
    Prediction p = predict(t, cost, options.context, options.context, options.fp8_activations);
    double gib = double(cost.weight_bytes) / (1024.0 * 1024.0 * 1024.0);  // one rank's
    std::string fits;
    if (gib > t.memory_gib && cost.tp > 1)
      fits = llvm::formatv("  (a rank's {0:F1} GiB of weights exceed {1} GiB)", gib, t.memory_gib).str();
    else if (gib > t.memory_gib)
      fits = llvm::formatv("  (weights need >= {0} devices of {1} GiB)",
                           static_cast<int>(std::ceil(gib / t.memory_gib)), t.memory_gib)
                 .str();
    os << llvm::format("  %-8s %-7s %10.1f tokens/s decode  %10.3f ms prefill", t.name.c_str(),
                       d.target->name.c_str(), p.decode_tokens_per_s, p.prefill_ms)
       << fits << "\n";
  }
}

void printShardReport(llvm::raw_ostream& os, ModuleOp module) {
  // What was cut: anything that does not divide evenly stays whole on every rank.
  WeightElements e = weightElements(module);
  auto attr = [&](llvm::StringRef name) {
    auto a = module->getAttrOfType<IntegerAttr>(name);
    return a ? a.getInt() : int64_t{1};
  };
  const int64_t ranks = attr("ds.tp"), ep = attr("ds.ep");
  os << "ds-compile: --tp " << ranks;
  if (ep > 1) {
    int layers = 0;
    module.walk([&](MoEExpertsOp m) { layers += m.getExpertsPerRank().has_value(); });
    os << " ranks, --ep " << ep << " (the routed experts of " << layers
       << " MoE layers distributed whole)";
  }
  os << ": " << e.cutCount << " of " << e.count
     << " weights cut across ranks (" << llvm::format("%.1f", 100.0 * e.cut / std::max(1.0, e.full))
     << "% of the parameters); the rest is replicated"
     << (e.cutCount == 0 ? " (no head, vocabulary or hidden size divides evenly)" : "") << "\n";
}

}  // namespace mlir::ds
