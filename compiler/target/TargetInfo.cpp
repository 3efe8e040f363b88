// TargetInfo: the module's #ds.target, its table row, and the backend that serves it.
#include "compiler/target/TargetInfo.h"

namespace mlir::ds {

llvm::Expected<std::unique_ptr<TargetInfo>> TargetInfo::get(TargetAttr target) {
  const TargetDesc* desc = findTarget(target.getName().getValue());
  if (!desc || desc->name != target.getName().getValue())
    return llvm::createStringError("#ds.target name '%s' is not in the target table (%s)",
                                   target.getName().getValue().str().c_str(),
                                   targetNames().c_str());
  const CodegenLevel* level = findLevel(*desc, target.getCpu().getValue());
  if (!level)
    return llvm::createStringError("#ds.target cpu '%s' is not a level of '%s' (%s)",
                                   target.getCpu().getValue().str().c_str(), desc->name.c_str(),
                                   levelNames(*desc).c_str());
  switch (target.getBackend()) {
    case TargetBackend::host:
      return createHostTargetInfo(target, level);
    case TargetBackend::nvptx:
      return createNVPTXTargetInfo(target, level);
  }
  return llvm::createStringError("#ds.target has an unknown backend");
}

llvm::Expected<std::unique_ptr<TargetInfo>> TargetInfo::forModule(ModuleOp module) {
  auto target = module->getAttrOfType<TargetAttr>(DSDialect::kTargetAttrName);
  if (!target)
    return llvm::createStringError(
        "the module has no '%s' attribute (the Import phase sets it from --target)",
        DSDialect::kTargetAttrName.data());
  return get(target);
}

ModuleOp findKernelModule(ModuleOp module) {
  for (auto nested : module.getOps<ModuleOp>())
    if (nested->hasAttr("ds.codegen")) return nested;
  return nullptr;
}

}  // namespace mlir::ds
