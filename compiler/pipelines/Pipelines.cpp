// The Graph, Plan and Codegen phases as pass pipelines, and their registration for ds-opt.
#include "compiler/pipelines/Pipelines.h"

#include <map>

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassRegistry.h"

#include "artifact/tensor_parallel.h"
#include "passes/Passes.h"
#include "passes/codegen/host/HostLowering.h"
#include "passes/codegen/nvptx/NVPTXLowering.h"

namespace mlir::ds {

llvm::Expected<std::optional<std::string>> quantScheme(llvm::StringRef quant) {
  static const std::map<std::string, std::string, std::less<>> kSchemes = {
      {"w8", "int8"},         {"fp8", "fp8"},
      {"w4g64", "int4_g64"},  {"w4g128", "int4_g128"},
      {"w4g64a", "int4_g64_asym"}, {"w4g128a", "int4_g128_asym"}};
  if (quant == "none") return std::nullopt;
  auto it = kSchemes.find(quant);
  if (it == kSchemes.end())
    return llvm::createStringError("unsupported quant '%s' (none, w8, w4g64, w4g128, w4g64a, "
                                   "w4g128a, fp8)",
                                   quant.str().c_str());
  return it->second;
}

llvm::Expected<std::optional<std::string>> headQuantScheme(llvm::StringRef quant) {
  if (quant == "none") return std::nullopt;
  // 6-bit groups: the output layer / embedding only (llama.cpp's Q6_K class).
  if (quant == "w6g64") return std::optional<std::string>("int6_g64");
  if (quant == "w6g128") return std::optional<std::string>("int6_g128");
  if (quant == "w8" || quant == "w4g64" || quant == "w4g128") return quantScheme(quant);
  return llvm::createStringError(
      "unsupported lm-head / embed quant '%s' (none, w8, w6g64, w6g128, w4g64, w4g128)",
      quant.str().c_str());
}

llvm::Error validateGraphOptions(const GraphPipelineOptions& options) {
  if (options.tp < 1 || options.tp > ::ds::kMaxTensorParallel)
    return llvm::createStringError("tp must be in [1, %d], got %lld", ::ds::kMaxTensorParallel,
                                   static_cast<long long>(options.tp));
  if (options.ep < 1 || options.ep > ::ds::kMaxTensorParallel)
    return llvm::createStringError("ep must be in [1, %d], got %lld", ::ds::kMaxTensorParallel,
                                   static_cast<long long>(options.ep));
  if (options.ep > 1 && options.tp > 1 && options.ep != options.tp)
    return llvm::createStringError("ep %lld must be 1 or equal tp %lld",
                                   static_cast<long long>(options.ep),
                                   static_cast<long long>(options.tp));
  auto scheme = quantScheme(options.quant);
  if (!scheme) return scheme.takeError();
  for (const std::string* v : {&options.quantLmHead.getValue(), &options.quantEmbed.getValue()})
    if (auto head = headQuantScheme(*v); !head) return head.takeError();
  return llvm::Error::success();
}

void buildGraphPipeline(OpPassManager& pm, const GraphPipelineOptions& options) {
  // Sharding first: the fusions and the quantizer see each rank's program.
  const bool sharded = options.tp > 1 || options.ep > 1;
  if (sharded) {
    ShardTensorParallelPassOptions shard;
    shard.tp = options.tp;
    shard.ep = options.ep;
    pm.addPass(createShardTensorParallelPass(shard));
  }
  if (options.fuse) {
    pm.addNestedPass<func::FuncOp>(createFuseAddRMSNormPass());
    pm.addNestedPass<func::FuncOp>(createFuseSwiGLULinearPass());
    pm.addNestedPass<func::FuncOp>(createFuseQKVRopePass());
    pm.addNestedPass<func::FuncOp>(createFuseMLAProjectPass());
    // One GEMM per fused q/k/v and gate/up launch; the separate weights are then unused.
    pm.addPass(createMergeProjectionWeightsPass());
    pm.addPass(createDropUnusedWeightsPass());
    if (sharded) pm.addNestedPass<func::FuncOp>(createFuseAllReduceAddRMSNormPass());
  }
  llvm::Expected<std::optional<std::string>> scheme = quantScheme(options.quant);
  if (!scheme) {
    // Callers validate first; an unknown scheme reaches the ds.weight verifier, which names it.
    llvm::consumeError(scheme.takeError());
    scheme = std::optional<std::string>(options.quant);
  }
  auto head = [](const std::string& v) {  // validated above; an unknown value reaches the pass
    llvm::Expected<std::optional<std::string>> s = headQuantScheme(v);
    if (!s) {
      llvm::consumeError(s.takeError());
      return v;
    }
    return s->value_or(std::string("none"));
  };
  if (*scheme || options.quantLmHead != "none" || options.quantEmbed != "none") {
    QuantizeWeightsPassOptions quant;
    quant.scheme = *scheme ? **scheme : std::string("none");
    quant.lmHead = head(options.quantLmHead);
    quant.embedTable = head(options.quantEmbed);
    pm.addPass(createQuantizeWeightsPass(quant));
  }
}

void buildPlanPipeline(OpPassManager& pm, const PlanPipelineOptions& options) {
  ConvertDsToKernelsPassOptions convert;
  convert.kvBlockSize = options.kvBlockSize;
  convert.kvCache = options.kvCache;
  pm.addPass(createConvertDsToKernelsPass(convert));
  if (options.planMemory) pm.addPass(createPlanMemoryPass());
}

llvm::Error validateCodegenOptions(const CodegenPipelineOptions& options) {
  if (options.backend != "host" && options.backend != "nvptx")
    return llvm::createStringError("backend must be host or nvptx, got '%s'",
                                   options.backend.getValue().c_str());
  if (options.activationType != "f32" && options.activationType != "bf16")
    return llvm::createStringError("activation-type must be f32 or bf16, got '%s'",
                                   options.activationType.getValue().c_str());
  return llvm::Error::success();
}

void buildCodegenPipeline(OpPassManager& pm, const CodegenPipelineOptions& options) {
  buildCodegenPipeline(pm, options, options.backend);
}

void buildCodegenPipeline(OpPassManager& pm, const CodegenPipelineOptions& options,
                          llvm::StringRef backend) {
  pm.addPass(createOutlineKernelsPass());
  if (!options.lowerToLLVM) return;
  // The nested kernel module, lowered for the #ds.target backend (`backend` option; each
  // backend's passes refuse a module of another backend).
  if (backend == "nvptx")
    buildNVPTXKernelLoweringPipeline(pm.nest<ModuleOp>(), options.activationType);
  else
    buildHostKernelLoweringPipeline(pm.nest<ModuleOp>());
}

namespace {

template <typename Options>
void registerPhase(llvm::StringRef arg, llvm::StringRef description,
                   void (*build)(OpPassManager&, const Options&),
                   llvm::Error (*validate)(const Options&)) {
  std::string name = arg.str();
  registerPassPipeline(
      arg, description,
      [=](OpPassManager& pm, llvm::StringRef text,
          function_ref<LogicalResult(const llvm::Twine&)> errorHandler) -> LogicalResult {
        Options options;
        if (failed(options.parseFromString(text))) return failure();
        if (validate)
          if (llvm::Error e = validate(options)) {
            (void)errorHandler(name + ": " + llvm::toString(std::move(e)));
            return failure();
          }
        build(pm, options);
        return success();
      },
      [](function_ref<void(const mlir::detail::PassOptions&)> handler) { handler(Options()); });
}

}  // namespace

void registerDsPipelines() {
  registerPhase<GraphPipelineOptions>(
      "ds-pipeline-graph",
      "Graph phase: tensor-parallel sharding, fusion, merged weights, quantization (ds graph)",
      buildGraphPipeline, validateGraphOptions);
  registerPhase<PlanPipelineOptions>(
      "ds-pipeline-plan", "Plan phase: ds graph -> dsk kernel plan, activation memory planned",
      buildPlanPipeline, nullptr);
  registerPhase<CodegenPipelineOptions>(
      "ds-pipeline-codegen",
      "Codegen phase: generated kernels outlined (linalg), lowered for the #ds.target",
      buildCodegenPipeline, validateCodegenOptions);
}

}  // namespace mlir::ds
