// ds-compile: Hugging Face model folder -> ds graph -> kernel plan -> .dsa artifact.
#include <chrono>

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

#include "compiler/artifact/ArtifactBuilder.h"
#include "compiler/import/ModelImporter.h"
#include "dialects/ds/DsDialect.h"
#include "dialects/dsk/DskDialect.h"
#include "model/checkpoint.h"
#include "model/hf_config.h"
#include "passes/Passes.h"

namespace cl = llvm::cl;

namespace {

enum class Emit { DS, Plan, Artifact };

cl::opt<std::string> inputDir(cl::Positional, cl::desc("<hugging-face-model-dir>"), cl::Required);
cl::opt<std::string> outputFile("o", cl::desc("Output file ('-' for stdout with --emit=ds|plan)"),
                                cl::value_desc("file"), cl::init(""));
cl::opt<Emit> emit("emit", cl::desc("Stage to write"), cl::init(Emit::Artifact),
                   cl::values(clEnumValN(Emit::DS, "ds", "the imported ds graph (MLIR)"),
                              clEnumValN(Emit::Plan, "plan", "the kernel plan (dsk MLIR)"),
                              clEnumValN(Emit::Artifact, "artifact", "the .dsa artifact")));
cl::opt<std::string> target("target", cl::desc("Target: host"), cl::init("host"));
cl::opt<std::string> weightDtype("dtype", cl::desc("Storage type of float weights: f32, bf16, f16"),
                                 cl::init("f32"));
cl::opt<int64_t> kvBlockSize("kv-block-size", cl::desc("Tokens per paged KV-cache block"),
                             cl::init(16));
cl::opt<bool> quiet("quiet", cl::desc("No progress bar or summary"), cl::init(false));

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

}  // namespace

int main(int argc, char** argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::registerAsmPrinterCLOptions();
  mlir::registerMLIRContextCLOptions();
  cl::ParseCommandLineOptions(argc, argv, "ds-compile: Hugging Face model -> ds artifact\n");
  auto start = std::chrono::steady_clock::now();

  if (target != "host")
    return fail("unsupported --target '" + target + "': this build compiles for 'host' only");
  if (kvBlockSize <= 0 || kvBlockSize > 4096)
    return fail("--kv-block-size must be in [1, 4096]");
  if (emit == Emit::Artifact && outputFile.empty())
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

  mlir::PassManager pm(&context);
  pm.addPass(mlir::ds::createConvertDsToKernelsPass());
  if (mlir::failed(pm.run(module->get()))) return fail("lowering to the kernel plan failed");
  if (emit == Emit::Plan) return printModule(module->get());

  mlir::ds::ArtifactOptions options;
  options.output_path = outputFile;
  options.model_dir = inputDir;
  options.target = target;
  options.weight_dtype = weightDtype;
  options.kv_block_size = kvBlockSize;
  options.progress = !quiet;
  auto stats = mlir::ds::writeArtifact(module->get(), *config, checkpoint.value(), options);
  if (!stats) return fail(llvm::toString(stats.takeError()));
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!quiet)
    llvm::errs() << "ds-compile: wrote " << outputFile << " (" << stats->tensors << " tensors, "
                 << stats->weight_bytes << " weight bytes, " << stats->launches
                 << " launches per step) in " << llvm::format("%.3f", seconds) << " s\n";
  return 0;
}
