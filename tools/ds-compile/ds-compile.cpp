// ds-compile: imports a Hugging Face model folder and emits the requested stage.
#include "mlir/IR/AsmState.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

#include "compiler/import/ModelImporter.h"
#include "dialects/ds/DsDialect.h"

namespace cl = llvm::cl;

namespace {

enum class Emit { DS };

cl::opt<std::string> inputDir(cl::Positional, cl::desc("<hugging-face-model-dir>"), cl::Required);
cl::opt<std::string> outputFile("o", cl::desc("Output file ('-' for stdout)"),
                                cl::value_desc("file"), cl::init("-"));
cl::opt<Emit> emit("emit", cl::desc("Stage to write"), cl::init(Emit::DS),
                   cl::values(clEnumValN(Emit::DS, "ds", "the imported ds graph (MLIR text)")));
cl::opt<std::string> activationType("activation-type",
                                    cl::desc("Activation element type of the graph"),
                                    cl::init("f32"));

int fail(const llvm::Twine& message) {
  llvm::WithColor::error(llvm::errs(), "ds-compile") << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::registerAsmPrinterCLOptions();
  mlir::registerMLIRContextCLOptions();
  cl::ParseCommandLineOptions(argc, argv, "ds-compile: Hugging Face model -> ds artifact\n");

  mlir::MLIRContext context;
  context.loadDialect<mlir::ds::DSDialect, mlir::func::FuncDialect>();
  mlir::ds::ImportOptions options;
  options.activation_type = activationType;
  auto module = mlir::ds::importModelDirectory(context, inputDir, options);
  if (!module) return fail(llvm::toString(module.takeError()));
  if (mlir::failed(mlir::verify(module->get())))
    return fail("internal error: the imported module does not verify");

  std::string error;
  auto out = mlir::openOutputFile(outputFile, &error);
  if (!out) return fail(error);
  module->get()->print(out->os());
  out->os() << "\n";
  out->keep();
  return 0;
}
