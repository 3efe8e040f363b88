// Artifact phase: native code of the generated kernels for the #ds.target, GPTQ calibration when
// asked, then the .dsa (weights streamed from the checkpoint, plan, tokenizer, Target table).
#include <chrono>
#include <optional>

#include "compiler/artifact/TokenizerFiles.h"
#include "compiler/codegen/HostCodegen.h"
#include "compiler/pipelines/Phases.h"
#include "compiler/quant/Calibration.h"
#include "compiler/target/TargetInfo.h"
#include "ingest/input_files.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"
#include "tokenizer/tokenizer.h"

namespace mlir::ds {

namespace {

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

llvm::Expected<QuantCalibration> calibrate(const ImportedModel& model,
                                           const ArtifactPhaseOptions& options) {
  const std::string& path = options.quant_calib;
  auto start = std::chrono::steady_clock::now();
  std::string text;
  if (::ds::Status st = ::ds::readRegularFile(path, &text); !st.isOk())
    return llvm::createStringError("cannot read --quant-calib file: " + st.message());
  auto tok = ::ds::Tokenizer::fromDirectory(options.artifact.model_dir);
  if (!tok.isOk())
    return llvm::createStringError("--quant-calib needs the model's tokenizer: " +
                                   tok.status().message());
  auto ids = (*tok)->encode(text, /*add_special_tokens=*/false);
  if (!ids.isOk()) return llvm::createStringError(path + ": " + ids.status().message());
  std::vector<int32_t> tokens(ids->begin(), ids->end());
  auto calib = calibrateDense(model.config, model.checkpoint, tokens);
  if (!calib.isOk()) return llvm::createStringError(path + ": " + calib.status().message());
  if (!options.quiet)
    llvm::errs() << "ds-compile: calibrated on " << calib->tokens << " tokens ("
                 << calib->sequences << " windows) of " << path << " in "
                 << llvm::format("%.3f", secondsSince(start)) << " s\n";
  return std::move(*calib);
}

}  // namespace

llvm::Expected<std::string> emitKernelLLVMIR(ModuleOp module) {
  auto target = TargetInfo::forModule(module);
  if (!target) return target.takeError();
  ModuleOp kernels = findKernelModule(module);
  if (!kernels) return llvm::createStringError("the plan has no launch that generated kernels serve");
  return (*target)->emitLLVMIR(kernels);
}

llvm::Expected<std::string> emitKernelAssembly(ModuleOp module) {
  auto target = TargetInfo::forModule(module);
  if (!target) return target.takeError();
  ModuleOp kernels = findKernelModule(module);
  if (!kernels) return llvm::createStringError("the plan has no launch that generated kernels serve");
  return (*target)->emitAssembly(kernels);
}

llvm::Expected<ArtifactPhaseResult> runArtifactPhase(ModuleOp module,
                                                     const ImportedModel& model,
                                                     const ArtifactPhaseOptions& options) {
  auto target = TargetInfo::forModule(module);
  if (!target) return target.takeError();
  // The runtime has no device for a target without code generation either.
  if (llvm::Error e = (*target)->checkCanEmitCode()) return std::move(e);
  // What ds-run needs besides the weights, checked before the slow parts.
  auto tokenizerFiles = readTokenizerFiles(options.artifact.model_dir);
  if (!tokenizerFiles) return tokenizerFiles.takeError();
  if (llvm::Error e = checkTokenizerFiles(*tokenizerFiles)) return std::move(e);
  ArtifactPhaseResult result;
  std::optional<CodeObject> code;
  if (ModuleOp kernels = findKernelModule(module)) {
    auto start = std::chrono::steady_clock::now();
    auto compiled = (*target)->emitCode(kernels);
    if (!compiled) return compiled.takeError();
    code = std::move(*compiled);
    result.codegen_seconds = secondsSince(start);
    result.kernels = code->symbols.size();
    result.code_bytes = code->bytes.size();
  }
  std::optional<QuantCalibration> calibration;
  if (!options.quant_calib.empty()) {
    auto calib = calibrate(model, options);
    if (!calib) return calib.takeError();
    calibration = std::move(*calib);
  }
  ArtifactOptions artifact = options.artifact;
  artifact.code = code ? &*code : nullptr;
  artifact.calibration = calibration ? &*calibration : nullptr;
  artifact.tokenizer_files = &*tokenizerFiles;
  auto stats = writeArtifact(module, model.config, model.checkpoint, artifact);
  if (!stats) return stats.takeError();
  result.stats = *stats;
  return result;
}

}  // namespace mlir::ds
