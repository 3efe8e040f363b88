// Graph, Plan and Codegen phases: one PassManager run of the registered pipeline each.
#include "compiler/pipelines/Phases.h"
#include "compiler/target/TargetInfo.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassInstrumentation.h"

namespace mlir::ds {

namespace {

// Calls `callback` on the module after each run of the pass named `argument`.
class AfterPass : public PassInstrumentation {
 public:
  AfterPass(llvm::StringRef argument, std::function<void(ModuleOp)> callback)
      : argument_(argument.str()), callback_(std::move(callback)) {}
  void runAfterPass(Pass* pass, Operation* op) override {
    if (pass->getArgument() == argument_)
      if (auto module = dyn_cast<ModuleOp>(op)) callback_(module);
  }

 private:
  std::string argument_;
  std::function<void(ModuleOp)> callback_;
};

llvm::Error runPipeline(ModuleOp module, llvm::StringRef phase,
                        llvm::function_ref<void(OpPassManager&)> build,
                        std::unique_ptr<PassInstrumentation> instrumentation = nullptr) {
  PassManager pm(module->getContext());
  // --mlir-print-ir-after-all and friends, when the driver registered them.
  (void)applyPassManagerCLOptions(pm);
  if (instrumentation) pm.addInstrumentation(std::move(instrumentation));
  build(pm);
  if (failed(pm.run(module)))
    return llvm::createStringError("the %s phase failed", phase.str().c_str());
  return llvm::Error::success();
}

}  // namespace

llvm::Error runGraphPhase(ModuleOp module, const GraphPipelineOptions& options,
                          std::function<void(ModuleOp)> afterSharding) {
  if (llvm::Error e = validateGraphOptions(options)) return e;
  std::unique_ptr<PassInstrumentation> report;
  if (afterSharding)
    report = std::make_unique<AfterPass>("ds-shard-tensor-parallel", std::move(afterSharding));
  return runPipeline(
      module, "Graph (ds-pipeline-graph)",
      [&](OpPassManager& pm) { buildGraphPipeline(pm, options); }, std::move(report));
}

llvm::Error runPlanPhase(ModuleOp module, const PlanPipelineOptions& options) {
  return runPipeline(module, "Plan (ds-pipeline-plan)",
                     [&](OpPassManager& pm) { buildPlanPipeline(pm, options); });
}

llvm::Error runCodegenPhase(ModuleOp module, const CodegenPipelineOptions& options) {
  auto target = TargetInfo::forModule(module);
  if (!target) return target.takeError();
  if (llvm::Error e = (*target)->checkCanEmitCode()) return e;
  return runPipeline(module, "Codegen (ds-pipeline-codegen)",
                     [&](OpPassManager& pm) {
                       buildCodegenPipeline(pm, options,
                                            (*target)->backend() == TargetBackend::nvptx
                                                ? "nvptx"
                                                : "host");
                     });
}

}  // namespace mlir::ds
