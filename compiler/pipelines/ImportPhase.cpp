// Import phase: --target resolved against the target table, the model imported, #ds.target set.
#include "compiler/import/ModelImporter.h"
#include "compiler/pipelines/Phases.h"
#include "compiler/target/TargetTable.h"
#include "dialects/dsk/DskDialect.h"
#include "mlir/IR/Verifier.h"

namespace mlir::ds {

llvm::Expected<TargetAttr> resolveTarget(MLIRContext& context, llvm::StringRef target,
                                         llvm::StringRef cpu) {
  const TargetDesc* desc = findTarget(target);
  if (!desc)
    return llvm::createStringError("unsupported --target '%s' (%s; devices: %s)",
                                   target.str().c_str(), targetNames().c_str(),
                                   deviceNames().c_str());
  const CodegenLevel* level = findLevel(*desc, cpu);
  if (!level)
    return llvm::createStringError(
        "unsupported --codegen-cpu '%s' (%s)%s", cpu.str().c_str(), levelNames(*desc).c_str(),
        desc->backend == TargetBackend::host ? "" : (" for --target " + desc->name).c_str());
  context.loadDialect<DSDialect>();
  return buildTargetAttr(&context, *desc, *level);
}

llvm::Expected<ImportedModel> runImportPhase(MLIRContext& context,
                                             const ImportPhaseOptions& options) {
  llvm::Expected<TargetAttr> target = resolveTarget(context, options.target, options.cpu);
  if (!target) return target.takeError();
  ::ds::StatusOr<::ds::ModelConfig> config = ::ds::loadHFConfig(options.model_dir);
  if (!config.isOk()) return llvm::createStringError(config.status().message());
  ::ds::StatusOr<::ds::Checkpoint> checkpoint =
      options.synthetic_weights ? ::ds::StatusOr<::ds::Checkpoint>(::ds::Checkpoint::synthetic(config->source))
                                : ::ds::Checkpoint::open(options.model_dir);
  if (!checkpoint.isOk()) return llvm::createStringError(checkpoint.status().message());

  context.loadDialect<DSDialect, dsk::DSKDialect, func::FuncDialect>();
  ImportOptions import;
  import.activation_type = options.activation_type;
  auto module = importModel(context, *config, checkpoint.value(), import);
  if (!module) return module.takeError();
  module->get()->setAttr(DSDialect::kTargetAttrName, *target);
  if (failed(verify(module->get())))
    return llvm::createStringError("internal error: the imported module does not verify");
  return ImportedModel{std::move(*config), std::move(checkpoint.value()), std::move(*module)};
}

}  // namespace mlir::ds
