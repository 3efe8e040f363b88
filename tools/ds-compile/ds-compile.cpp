// ds-compile: Hugging Face model folder -> ds graph -> kernel plan -> .dsa artifact.
#include <chrono>
#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

#include "compiler/artifact/ArtifactBuilder.h"
#include "compiler/codegen/HostCodegen.h"
#include "compiler/import/ModelImporter.h"
#include "compiler/quant/Calibration.h"
#include "compiler/target/Targets.h"
#include "cpu/cpu_kernels.h"
#include "dialects/ds/DsDialect.h"
#include "dialects/dsk/DskDialect.h"
#include "model/checkpoint.h"
#include "model/hf_config.h"
#include "passes/Passes.h"
#include "tokenizer/tokenizer.h"

namespace cl = llvm::cl;

namespace {

enum class Emit { DS, Graph, Plan, Codegen, LLVM, LLVMIR, Artifact };

cl::opt<std::string> inputDir(cl::Positional, cl::desc("<hugging-face-model-dir>"), cl::Required);
cl::opt<std::string> outputFile("o", cl::desc("Output file ('-' for stdout with --emit=ds|plan)"),
                                cl::value_desc("file"), cl::init(""));
cl::opt<Emit> emit("emit", cl::desc("Stage to write"), cl::init(Emit::Artifact),
                   cl::values(clEnumValN(Emit::DS, "ds", "the imported ds graph (MLIR)"),
                              clEnumValN(Emit::Graph, "graph", "the ds graph after fusion"),
                              clEnumValN(Emit::Plan, "plan", "the kernel plan (dsk MLIR)"),
                              clEnumValN(Emit::Codegen, "codegen",
                                         "the plan with generated kernels (linalg on memrefs)"),
                              clEnumValN(Emit::LLVM, "llvm",
                                         "the generated kernels in the LLVM dialect"),
                              clEnumValN(Emit::LLVMIR, "llvm-ir",
                                         "the generated kernels as optimized LLVM IR"),
                              clEnumValN(Emit::Artifact, "artifact", "the .dsa artifact")));
cl::opt<std::string> target("target", cl::desc("Target: host"), cl::init("host"));
cl::opt<std::string> weightDtype("dtype", cl::desc("Storage type of float weights: f32, bf16, f16"),
                                 cl::init("f32"));
cl::opt<int64_t> kvBlockSize("kv-block-size", cl::desc("Tokens per paged KV-cache block"),
                             cl::init(16));
cl::opt<bool> quiet("quiet", cl::desc("No progress bar or summary"), cl::init(false));
// `--stats` (weights, KV, activation memory, launches, cost-model predictions) is taken out of
// argv before LLVM parses it: LLVM registers its own -stats for pass statistics.
bool stats = false;
cl::opt<std::string> quant("quant",
                           cl::desc("Quantize GEMM weights: none, w8, w4g64, w4g128, w4g64a, "
                                    "w4g128a (asymmetric), fp8"),
                           cl::init("none"));
cl::opt<std::string> quantCalib(
    "quant-calib",
    cl::desc("Calibration text for int4 --quant: GPTQ codes from the f32 model's activations on "
             "it (dense Llama-family models; e.g. compiler/quant/calibration.txt)"),
    cl::init(""));
cl::opt<std::string> kvCache("kv-cache", cl::desc("KV cache storage: f32, int8, fp8"),
                             cl::init("f32"));
cl::opt<bool> fuse("fuse", cl::desc("Run the fusion passes (add+rms_norm, gate/up+swiglu, "
                                    "q/k/v+rope, MLA prologue)"),
                   cl::init(true));
cl::opt<int64_t> tensorParallel("tp", cl::desc("Tensor-parallel ranks: the artifact holds each "
                                               "rank's weight shards (host: ranks are threads)"),
                               cl::init(1));
cl::opt<std::string> codegen("codegen",
                            cl::desc("Fused elementwise/norm regions: host (generated kernels, "
                                     "docs/codegen.md) or none (library kernels)"),
                            cl::init("host"));
cl::opt<std::string> codegenCpu("codegen-cpu",
                               cl::desc("CPU level of generated host kernels: x86-64-v3, x86-64"),
                               cl::init("x86-64-v3"));
cl::opt<bool> planMemory("plan-memory", cl::desc("Reuse activation buffers by liveness"),
                         cl::init(true));
cl::opt<int64_t> statsContext("stats-context", cl::desc("Context length for --stats predictions"),
                              cl::init(1024));
cl::opt<int64_t> maxStepTokens("max-step-tokens",
                               cl::desc("Largest step (tokens) for --stats memory figures"),
                               cl::init(512));

int fail(const llvm::Twine& message) {
  llvm::WithColor::error(llvm::errs(), "ds-compile") << message << "\n";
  return 1;
}

int printModule(mlir::ModuleOp module) {
  std::string error;
  auto out = mlir::openOutputFile(outputFile.empty() ? std::string("-") : std::string(outputFile), &error);
  if (!out) return fail(error);
  module->print(out->os());
  out->os() << "\n";
  out->keep();
  return 0;
}

std::string mib(double bytes) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << llvm::format("%.2f MiB", bytes / (1024.0 * 1024.0));
  return s;
}

// Elements of the declared weights: per rank (local types), in the checkpoint (full shapes), and
// the full elements and count of the weights cut across tensor-parallel ranks.
struct WeightElements {
  double local = 0, full = 0, cut = 0;
  int count = 0, cutCount = 0;
};
WeightElements weightElements(mlir::ModuleOp module) {
  WeightElements e;
  for (mlir::ds::WeightOp w : module.getOps<mlir::ds::WeightOp>()) {
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

void printStats(mlir::ModuleOp module, const ::ds::ModelConfig& config, mlir::ds::ModelCost cost) {
  auto step = module.lookupSymbol<mlir::func::FuncOp>("step");
  auto attr = [&](llvm::StringRef name) -> int64_t {
    auto a = step ? step->getAttrOfType<mlir::IntegerAttr>(name) : nullptr;
    return a ? a.getInt() : 0;
  };
  int64_t launches = 0;
  int64_t kvPerToken = 0;
  // The same per-block sizes the runtime divides --kv-cache-mem by.
  ::ds::cpu::KVType kvType = kvCache == "int8"  ? ::ds::cpu::KVType::I8
                             : kvCache == "fp8" ? ::ds::cpu::KVType::F8E4M3
                                                : ::ds::cpu::KVType::F32;
  if (step) {
    step.walk([&](mlir::dsk::LaunchOp l) {
      ++launches;
      if (l.getKernel() == mlir::dsk::Kernel::attention) {
        auto k = llvm::cast<mlir::MemRefType>(l.getIns()[1].getType());
        auto v = llvm::cast<mlir::MemRefType>(l.getIns()[2].getType());
        kvPerToken += ::ds::cpu::kvBlockBytes(kvType, 1, k.getDimSize(1), k.getDimSize(2), v.getDimSize(2));
      } else if (l.getKernel() == mlir::dsk::Kernel::mla_attention) {
        auto c = llvm::cast<mlir::MemRefType>(l.getIns()[2].getType());
        auto r = llvm::cast<mlir::MemRefType>(l.getIns()[3].getType());
        kvPerToken += ::ds::cpu::mlaBlockBytes(kvType, 1, c.getDimSize(1), r.getDimSize(1));
      }
    });
  }
  cost.kv_bytes_per_token = kvPerToken;
  int64_t planned = attr("dsk.arena_bytes_per_token"), unplanned = attr("dsk.unplanned_bytes_per_token");
  int64_t plannedRows = attr("dsk.arena_bytes_per_logit_row");
  int64_t unplannedRows = attr("dsk.unplanned_bytes_per_logit_row");
  auto& os = llvm::outs();
  os << "model           " << config.model_type << ", " << config.num_hidden_layers << " layers, hidden "
     << config.hidden_size << ", vocab " << config.vocab_size << "\n";
  // Tensor parallelism: a rank stores its shards plus every replicated weight.
  WeightElements elems = weightElements(module);
  double localElems = elems.local, fullElems = elems.full;
  auto tpAttr = module->getAttrOfType<mlir::IntegerAttr>("ds.tp");
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
    cost.attention_flops_per_context_token =
        static_cast<uint64_t>(double(cost.attention_flops_per_context_token) * share);
    if (step)
      step.walk([&](mlir::dsk::LaunchOp l) {
        // Collectives, standalone or folded into an add + RMSNorm (its reduced input).
        bool folded = l.getKernel() == mlir::dsk::Kernel::add_rms_norm &&
                      l.getParams().contains("all_reduce_rhs");
        if (l.getKernel() != mlir::dsk::Kernel::all_reduce &&
            l.getKernel() != mlir::dsk::Kernel::all_gather && !folded)
          return;
        auto type = llvm::cast<mlir::MemRefType>(
            folded ? l.getIns()[1].getType() : l.getOuts()[0].getType());
        int64_t row = 4;
        for (int64_t d : type.getShape().drop_front()) row *= d;
        ++cost.collectives_per_step;
        cost.collective_bytes_per_token += row;
      });
  }
  os << "weights         " << mib(rankBytes) << " per rank (" << tp << " rank" << (tp > 1 ? "s" : "")
     << "; " << mib(totalBytes) << " in all)\n";
  os << "kv cache        " << kvPerToken << " bytes per token" << (tp > 1 ? " per rank" : "") << " (" << kvCache << ")\n";
  os << "launches        " << launches << " per step (" << cost.launches_per_step
     << " before fusion, " << llvm::format("%.1f", 100.0 * (1.0 - double(launches) / cost.launches_per_step))
     << "% fewer)\n";
  int64_t T = maxStepTokens;
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
     << cost.flops_per_token << " GEMM FLOPs\n";
  os << "predicted (roofline: 80% of peak bandwidth, 60% of peak bf16 FLOPs; decode at batch 1 with "
     << statsContext << " tokens of context, prefill of " << statsContext << " tokens"
     << (cost.tp > 1 ? llvm::formatv("; {0} ranks, {1} collectives per step", cost.tp,
                                     cost.collectives_per_step).str()
                     : std::string())
     << "):\n";
  for (const mlir::ds::TargetSpec& t : mlir::ds::knownTargets()) {
    mlir::ds::Prediction p = mlir::ds::predict(t, cost, statsContext, statsContext);
    double gib = double(cost.weight_bytes) / (1024.0 * 1024.0 * 1024.0);  // one rank's
    std::string fits;
    if (gib > t.memory_gib && cost.tp > 1)
      fits = llvm::formatv("  (a rank's {0:F1} GiB of weights exceed {1} GiB)", gib, t.memory_gib).str();
    else if (gib > t.memory_gib)
      fits = llvm::formatv("  (weights need >= {0} devices of {1} GiB)",
                           static_cast<int>(std::ceil(gib / t.memory_gib)), t.memory_gib)
                 .str();
    os << llvm::format("  %-8s %-7s %10.1f tokens/s decode  %10.3f ms prefill", t.name.c_str(),
                       t.arch.c_str(), p.decode_tokens_per_s, p.prefill_ms)
       << fits << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::registerAsmPrinterCLOptions();
  mlir::registerMLIRContextCLOptions();
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && (llvm::StringRef(argv[i]) == "--stats" || llvm::StringRef(argv[i]) == "-stats"))
      stats = true;
    else
      args.push_back(argv[i]);
  }
  cl::ParseCommandLineOptions(static_cast<int>(args.size()), args.data(),
                              "ds-compile: Hugging Face model -> ds artifact\n"
                              "  --stats  print weights, KV, activation memory, launches and the\n"
                              "           cost model's predictions\n");
  auto start = std::chrono::steady_clock::now();

  if (target != "host")
    return fail("unsupported --target '" + target + "': this build compiles for 'host' only");
  if (tensorParallel < 1 || tensorParallel > 64)
    return fail("--tp must be in [1, 64]");
  if (kvBlockSize <= 0 || kvBlockSize > 4096)
    return fail("--kv-block-size must be in [1, 4096]");
  if (emit == Emit::Artifact && outputFile.empty() && !stats)
    return fail("--emit=artifact needs -o <file.dsa>");

  ::ds::StatusOr<::ds::ModelConfig> config = ::ds::loadHFConfig(inputDir);
  if (!config.isOk()) return fail(config.status().message());
  ::ds::StatusOr<::ds::Checkpoint> checkpoint = ::ds::Checkpoint::open(inputDir);
  if (!checkpoint.isOk()) return fail(checkpoint.status().message());

  mlir::MLIRContext context;
  context.loadDialect<mlir::ds::DSDialect, mlir::dsk::DSKDialect, mlir::func::FuncDialect>();
  auto module = mlir::ds::importModel(context, *config, checkpoint.value());
  if (!module) return fail(llvm::toString(module.takeError()));
  if (mlir::failed(mlir::verify(module->get())))
    return fail("internal error: the imported module does not verify");
  if (emit == Emit::DS) return printModule(module->get());

  mlir::ds::ModelCost cost = mlir::ds::estimateCost(module->get());
  mlir::PassManager pm(&context);
  if (tensorParallel > 1) {
    mlir::PassManager shard(&context);
    mlir::ds::ShardTensorParallelPassOptions so;
    so.tp = tensorParallel;
    shard.addPass(mlir::ds::createShardTensorParallelPass(so));
    if (mlir::failed(shard.run(module->get()))) return fail("tensor-parallel sharding failed");
    // What was cut: anything that does not divide evenly stays whole on every rank.
    WeightElements e = weightElements(module->get());
    if (!quiet && emit == Emit::Artifact)
      llvm::errs() << "ds-compile: --tp " << tensorParallel << ": " << e.cutCount << " of "
                   << e.count << " weights cut across ranks ("
                   << llvm::format("%.1f", 100.0 * e.cut / std::max(1.0, e.full))
                   << "% of the parameters); the rest is replicated"
                   << (e.cutCount == 0 ? " (no head, vocabulary or hidden size divides evenly)" : "")
                   << "\n";
  }
  if (fuse) {
    mlir::PassManager graph(&context);
    graph.addNestedPass<mlir::func::FuncOp>(mlir::ds::createFuseAddRMSNormPass());
    graph.addNestedPass<mlir::func::FuncOp>(mlir::ds::createFuseSwiGLULinearPass());
    graph.addNestedPass<mlir::func::FuncOp>(mlir::ds::createFuseQKVRopePass());
    graph.addNestedPass<mlir::func::FuncOp>(mlir::ds::createFuseMLAProjectPass());
    // One GEMM per fused q/k/v and gate/up launch; the separate weights are then unused.
    graph.addPass(mlir::ds::createMergeProjectionWeightsPass());
    graph.addPass(mlir::ds::createDropUnusedWeightsPass());
    if (tensorParallel > 1)
      graph.addNestedPass<mlir::func::FuncOp>(mlir::ds::createFuseAllReduceAddRMSNormPass());
    if (mlir::failed(graph.run(module->get()))) return fail("graph passes failed");
  }
  if (quant != "none") {
    static const std::map<std::string, std::string> kSchemes = {
        {"w8", "int8"}, {"fp8", "fp8"}, {"w4g64", "int4_g64"}, {"w4g128", "int4_g128"},
        {"w4g64a", "int4_g64_asym"}, {"w4g128a", "int4_g128_asym"}};
    auto it = kSchemes.find(quant);
    if (it == kSchemes.end())
      return fail("unsupported --quant '" + quant + "' (none, w8, w4g64, w4g128, w4g64a, w4g128a, fp8)");
    if (!quantCalib.empty() && it->second.rfind("int4", 0) != 0)
      return fail("--quant-calib applies to int4 schemes (w4g64, w4g128, w4g64a, w4g128a), not '" +
                  quant + "'");
    mlir::PassManager q(&context);
    mlir::ds::QuantizeWeightsPassOptions qo;
    qo.scheme = it->second;
    q.addPass(mlir::ds::createQuantizeWeightsPass(qo));
    if (mlir::failed(q.run(module->get()))) return fail("weight quantization failed");
  }
  if (emit == Emit::Graph) return printModule(module->get());
  pm.addPass(mlir::ds::createConvertDsToKernelsPass());
  if (planMemory) pm.addPass(mlir::ds::createPlanMemoryPass());
  if (mlir::failed(pm.run(module->get()))) return fail("lowering to the kernel plan failed");
  if (stats) printStats(module->get(), *config, cost);
  if (emit == Emit::Plan) return printModule(module->get());
  if (outputFile.empty() && emit == Emit::Artifact) return 0;  // --stats only

  std::optional<mlir::ds::CodeObject> code;
  double codegenSeconds = 0;
  if (codegen == "host") {
    auto codegenStart = std::chrono::steady_clock::now();
    std::optional<mlir::ds::HostCpu> cpu = mlir::ds::findHostCpu(codegenCpu);
    if (!cpu) return fail("unsupported --codegen-cpu '" + codegenCpu + "' (x86-64-v3, x86-64)");
    mlir::PassManager outline(&context);
    outline.addPass(mlir::ds::createOutlineKernelsPass());
    if (mlir::failed(outline.run(module->get()))) return fail("outlining generated kernels failed");
    if (emit == Emit::Codegen) return printModule(module->get());
    mlir::ModuleOp kernels = mlir::ds::findKernelModule(module->get());
    if (emit == Emit::LLVM) {
      if (!kernels) return fail("the plan has no launch that generated kernels serve");
      auto lowered = mlir::ds::lowerKernelsToLLVMDialect(kernels, *cpu);
      if (!lowered) return fail(llvm::toString(lowered.takeError()));
      return printModule(lowered->get());
    }
    if (emit == Emit::LLVMIR) {
      if (!kernels) return fail("the plan has no launch that generated kernels serve");
      auto ir = mlir::ds::kernelsToLLVMIR(kernels, *cpu);
      if (!ir) return fail(llvm::toString(ir.takeError()));
      std::string error;
      auto out = mlir::openOutputFile(outputFile.empty() ? std::string("-") : std::string(outputFile), &error);
      if (!out) return fail(error);
      out->os() << *ir;
      out->keep();
      return 0;
    }
    if (kernels) {
      auto compiled = mlir::ds::compileHostKernels(kernels, *cpu);
      if (!compiled) return fail(llvm::toString(compiled.takeError()));
      code = std::move(*compiled);
    }
    codegenSeconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - codegenStart).count();
  } else if (codegen != "none") {
    return fail("unsupported --codegen '" + codegen + "' (host, none)");
  } else if (emit == Emit::Codegen || emit == Emit::LLVM || emit == Emit::LLVMIR) {
    return fail("--emit=codegen|llvm|llvm-ir need --codegen=host");
  }
  if (outputFile.empty()) return fail("--emit=artifact needs -o <file.dsa>");

  if (!quantCalib.empty() && quant == "none") return fail("--quant-calib needs an int4 --quant");
  std::optional<mlir::ds::QuantCalibration> calibration;
  if (!quantCalib.empty()) {
    auto calibStart = std::chrono::steady_clock::now();
    std::ifstream in(quantCalib, std::ios::binary);
    if (!in) return fail("cannot read --quant-calib file '" + quantCalib + "'");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto tok = ::ds::Tokenizer::fromDirectory(inputDir);
    if (!tok.isOk()) return fail("--quant-calib needs the model's tokenizer: " + tok.status().message());
    auto ids = (*tok)->encode(text, /*add_special_tokens=*/false);
    if (!ids.isOk()) return fail(quantCalib + ": " + ids.status().message());
    std::vector<int32_t> tokens(ids->begin(), ids->end());
    auto calib = mlir::ds::calibrateDense(*config, checkpoint.value(), tokens);
    if (!calib.isOk()) return fail(quantCalib + ": " + calib.status().message());
    calibration = std::move(*calib);
    if (!quiet)
      llvm::errs() << "ds-compile: calibrated on " << calibration->tokens << " tokens ("
                   << calibration->sequences << " windows) of " << quantCalib << " in "
                   << llvm::format("%.3f", std::chrono::duration<double>(
                                               std::chrono::steady_clock::now() - calibStart)
                                               .count())
                   << " s\n";
  }

  mlir::ds::ArtifactOptions options;
  options.output_path = outputFile;
  options.model_dir = inputDir;
  options.target = target;
  options.weight_dtype = weightDtype;
  options.kv_block_size = kvBlockSize;
  options.kv_cache_dtype = kvCache;
  options.progress = !quiet;
  options.code = code ? &*code : nullptr;
  options.calibration = calibration ? &*calibration : nullptr;
  auto stats = mlir::ds::writeArtifact(module->get(), *config, checkpoint.value(), options);
  if (!stats) return fail(llvm::toString(stats.takeError()));
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!quiet)
    llvm::errs() << "ds-compile: wrote " << outputFile << " (" << stats->tensors << " tensors, "
                 << stats->weight_bytes << " weight bytes, " << stats->launches
                 << " launches per step";
  if (!quiet && code)
    llvm::errs() << ", " << code->symbols.size() << " generated kernels ("
                 << code->bytes.size() << " bytes, " << llvm::format("%.3f", codegenSeconds)
                 << " s)";
  if (!quiet)
    llvm::errs() << ") in " << llvm::format("%.3f", seconds) << " s\n";
  return 0;
}
