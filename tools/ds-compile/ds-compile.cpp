// ds-compile: a thin driver over the compile pipeline's phases (compiler/pipelines/Phases.h):
// Import -> Graph -> Plan -> Codegen -> Artifact, stopping where --compile-to says.
#include <chrono>
#include <cstdlib>
#include <optional>

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/ADT/Statistic.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

#include "abi/launch_abi.h"
#include "artifact/signing_keys.h"
#include "artifact/tensor_parallel.h"
#include "common/exit_codes.h"
#include "compiler/artifact/CudaLibrary.h"
#include "compiler/pipelines/Phases.h"
#include "compiler/quant/HeadDefaults.h"
#include "compiler/target/CostReport.h"
#include "compiler/target/TargetInfo.h"
#include "ds/status.h"
#include "ds_cuda_kernels.h"
#include "ingest/input_files.h"
#include "passes/Passes.h"

namespace cl = llvm::cl;
using mlir::ds::CompileTo;

namespace {

cl::OptionCategory category("ds-compile options");

cl::opt<std::string> inputDir(cl::Positional, cl::desc("<hugging-face-model-dir>"), cl::Required,
                              cl::cat(category));
cl::opt<std::string> outputFile("o", cl::desc("Output file, never an input, a link or a non-regular "
                                               "file ('-' for stdout with --compile-to=ds..ptx)"),
                                cl::value_desc("file"), cl::init(""), cl::cat(category));
const cl::ValuesClass stages = cl::values(
    clEnumValN(CompileTo::DS, "ds", "Import: the ds graph (MLIR)"),
    clEnumValN(CompileTo::Graph, "graph", "Graph: after sharding, fusion, quantization"),
    clEnumValN(CompileTo::Plan, "plan", "Plan: the kernel plan (dsk MLIR)"),
    clEnumValN(CompileTo::Codegen, "codegen",
               "Codegen: the plan with outlined kernels (linalg on memrefs)"),
    clEnumValN(CompileTo::LLVM, "llvm", "Codegen: the kernels in the LLVM dialect"),
    clEnumValN(CompileTo::LLVMIR, "llvm-ir", "the kernels as optimized LLVM IR"),
    clEnumValN(CompileTo::Ptx, "ptx", "the kernels as PTX (--target sm_*)"),
    clEnumValN(CompileTo::Artifact, "artifact", "Artifact: the .dsa file (-o)"));
cl::opt<CompileTo> compileTo("compile-to",
                             cl::desc("Phase to stop after and write (--emit: the same)"),
                             cl::init(CompileTo::Artifact), stages, cl::cat(category));
// The former name; a separate option (not a cl::alias) so errors can name the flag given.
cl::opt<CompileTo> emit("emit", cl::desc("Alias for --compile-to"), cl::init(CompileTo::Artifact),
                        stages, cl::Hidden, cl::cat(category));
cl::opt<std::string> target("target",
                            cl::desc("Target: host, sm_80, sm_86, sm_89, sm_90a, sm_100a; a fat "
                                     "artifact: host,sm_90a[,...] (one plan, code per target)"),
                            cl::init("host"), cl::cat(category));
cl::opt<std::string> codegenCpu("codegen-cpu",
                                cl::desc("CPU level of generated host kernels (x86-64-v3, "
                                         "x86-64-v4, sapphirerapids, znver4, native, x86-64); "
                                         "a list (x86-64-v3,x86-64-v4): code per level, the "
                                         "runtime runs the best one the CPU has"),
                                cl::init("x86-64-v3"), cl::cat(category));
cl::opt<std::string> codegen("codegen",
                             cl::desc("Fused elementwise/norm regions: host (generated kernels, "
                                      "docs/codegen.md) or none (library kernels)"),
                             cl::init("host"), cl::cat(category));
cl::opt<bool> fuse("fuse", cl::desc("Run the fusion passes (add+rms_norm, gate/up+swiglu, "
                                    "q/k/v+rope, MLA prologue)"),
                   cl::init(true), cl::cat(category));
cl::opt<std::string> quant("quant",
                           cl::desc("Quantize GEMM weights: none, w8, w4g64, w4g128, w4g64a, "
                                    "w4g128a (asymmetric), fp8"),
                           cl::init("none"), cl::cat(category));
cl::opt<std::string> quantLmHead(
    "quant-lm-head",
    cl::desc("Quantize the output projection (lm_head; the embedding too when tied): auto, none, "
             "w8 (int8 per row), w6g64 / w6g128 (6-bit groups, host only, llama.cpp's Q6_K "
             "class), or w4g64 / w4g128 (4-bit groups, host only: fewer bytes per decoded token, "
             "lower precision). auto: for host builds w6g128 with an int4 --quant and w8 with w8 "
             "(as llama.cpp's quantized files keep Q6_K / Q8_0 outputs; docs/quantization.md), "
             "else none"),
    cl::init("auto"), cl::cat(category));
bool lmHeadAuto = false;  // --quant-lm-head auto: resolved after import (autoLmHeadQuant)
cl::opt<std::string> quantAct(
    "quant-act",
    cl::desc("Activations of the host's GEMMs: auto, none (f32, exact on the stored weights), "
             "int8 (int8/int4 weights: per-block int8 codes and integer dot products, as "
             "llama.cpp does) or bf16 (bf16 weights: activations rounded to bf16, bf16 dot "
             "products). Faster, slightly different results. auto: int8 for host builds with an "
             "int8 or int4 --quant, bf16 for host --dtype bf16 builds without --quant, else none"),
    cl::init("auto"), cl::cat(category));
cl::opt<std::string> quantEmbed("quant-embed",
                                cl::desc("Quantize the embedding table: none, w8 (int8 per row), "
                                         "w6g64, w6g128, w4g64 or w4g128 (host only)"),
                                cl::init("none"), cl::cat(category));
cl::opt<std::string> quantCalib(
    "quant-calib",
    cl::desc("Calibration text for int4 --quant: GPTQ codes from the f32 model's activations on "
             "it (dense Llama-family models; e.g. compiler/quant/calibration.txt)"),
    cl::init(""), cl::cat(category));
cl::opt<int64_t> tensorParallel("tp", cl::desc("Tensor-parallel ranks: the artifact holds each "
                                               "rank's weight shards (host: ranks are threads)"),
                                cl::init(1), cl::cat(category));
cl::opt<int64_t> expertParallel(
    "ep", cl::desc("Expert-parallel ranks: the routed experts of MoE layers are distributed "
                   "whole over the ranks (1, or equal to --tp; --ep N alone gives N ranks that "
                   "replicate everything else)"),
    cl::init(1), cl::cat(category));
cl::opt<bool> planMemory("plan-memory", cl::desc("Reuse activation buffers by liveness"),
                         cl::init(true), cl::cat(category));
cl::opt<std::string> weightDtype(
    "dtype",
    cl::desc("Model dtype: the storage type of float weights (f32, bf16, f16) and, on a GPU target, "
             "of the activations too (f32, bf16). Default: f32 on the host, bf16 on GPU targets"),
    cl::init(""), cl::cat(category));
cl::opt<std::string> kvCache("kv-cache",
                             cl::desc("KV cache storage: auto (the activations' type), f32, bf16, "
                                      "int8, fp8"),
                             cl::init("auto"), cl::cat(category));
cl::opt<int64_t> kvBlockSize("kv-block-size", cl::desc("Tokens per paged KV-cache block"),
                             cl::init(16), cl::cat(category));
cl::opt<bool> costReport("cost-report",
                         cl::desc("Print weights, KV, activation memory, launches and the cost "
                                  "model's predictions per device"),
                         cl::init(false), cl::cat(category));
cl::opt<int64_t> costContext("cost-context", cl::desc("Context length for --cost-report predictions"),
                             cl::init(1024), cl::cat(category));
cl::opt<int64_t> maxStepTokens("max-step-tokens",
                               cl::desc("Largest step (tokens) for --cost-report memory figures"),
                               cl::init(512), cl::cat(category));
cl::opt<std::string> signKey("sign",
                            cl::desc("Sign the artifact with this secret key file (ds-keygen; "
                                     "docs/artifact.md)"),
                            cl::value_desc("key-file"), cl::init(""), cl::cat(category));
cl::opt<std::string> weightsSource(
    "weights",
    cl::desc("Weights: checkpoint (the safetensors) or random (synthetic: tensor specs and a seed, "
             "filled at load; shapes from config.json, which may be all the input holds)"),
    cl::init("checkpoint"), cl::cat(category));
cl::opt<uint64_t> weightsSeed("weights-seed", cl::desc("Seed of --weights random"), cl::init(0),
                              cl::cat(category));
cl::opt<std::string> cudaKernels(
    "cuda-kernels",
    cl::desc("Folder of the CUDA kernel library's builds (ds_cuda_kernels.sm_XY.cubin, "
             ".compute_XY.ptx) that GPU artifacts embed; default $DS_CUDA_KERNELS_DIR, else the "
             "build tree's kernels/cuda; none: embed no library (the runtime then needs "
             "DS_CUDA_KERNELS; smaller artifacts)"),
    cl::value_desc("dir"), cl::init(""), cl::cat(category));
cl::opt<bool> quiet("quiet", cl::desc("No progress bar or summary"), cl::init(false),
                    cl::cat(category));

int fail(const llvm::Twine& message, int code = ds::tools::kExitFailure) {
  llvm::WithColor::error(llvm::errs(), "ds-compile") << message << "\n";
  return code;
}
// A command-line mistake: exit code 2 (docs/tools.md).
int usageError(const llvm::Twine& message) { return fail(message, ds::tools::kExitUsage); }
int fail(llvm::Error error) { return fail(llvm::toString(std::move(error))); }

// The flag the user spelled (--emit is kept as an alias of --compile-to).
std::string stageFlag() { return emit.getNumOccurrences() ? "--emit" : "--compile-to"; }

int writeText(llvm::function_ref<void(llvm::raw_ostream&)> print) {
  std::string error;
  auto out = mlir::openOutputFile(outputFile.empty() ? std::string("-") : std::string(outputFile), &error);
  if (!out) return fail(error);
  print(out->os());
  out->keep();
  return 0;
}
int printModule(mlir::ModuleOp module) {
  return writeText([&](llvm::raw_ostream& os) { module->print(os); os << "\n"; });
}

void printVersion(llvm::raw_ostream& os) {
  os << "ds-compile " << ds_runtime_version() << " (LLVM " << LLVM_VERSION_STRING << ")\n";
}

// Flags that need no model: checked before anything is read.
// --target host,sm_90a: the primary target first, then the GPU targets of a fat artifact.
llvm::SmallVector<std::string> splitList(llvm::StringRef list) {
  llvm::SmallVector<llvm::StringRef> parts;
  list.split(parts, ',');
  llvm::SmallVector<std::string> out;
  for (llvm::StringRef p : parts) out.push_back(p.trim().str());
  return out;
}
llvm::SmallVector<std::string> targetList() { return splitList(target); }
// --codegen-cpu x86-64-v3,x86-64-v4: host code per level, the first the plan's (empty: default).
llvm::SmallVector<std::string> cpuList() {
  return codegenCpu.getNumOccurrences() ? splitList(codegenCpu) : llvm::SmallVector<std::string>{""};
}

// Every --codegen-cpu level is a level of the (first) target's row; a list makes a fat host
// artifact: distinct levels, a host target, the artifact stage.
int checkCpuLevels() {
  const mlir::ds::TargetDesc* t = mlir::ds::findTarget(targetList().front());
  if (!t) return 0;  // the import names the unknown target and the known ones
  const auto cpus = cpuList();
  for (size_t i = 0; i < cpus.size(); ++i) {
    if (!mlir::ds::findLevel(*t, cpus[i]) || (cpus[i].empty() && cpus.size() > 1))
      return usageError("unsupported --codegen-cpu '" + cpus[i] + "' (" +
                        mlir::ds::levelNames(*t) + ")" +
                        (t->backend == mlir::ds::TargetBackend::host ? "" : " for --target " + t->name));
    for (size_t j = 0; j < i; ++j)
      if (cpus[j] == cpus[i]) return usageError("--codegen-cpu " + codegenCpu + " names " + cpus[i] + " twice");
  }
  if (cpus.size() == 1) return 0;
  if (t->backend != mlir::ds::TargetBackend::host)
    return usageError("--codegen-cpu " + codegenCpu + ": a list of CPU levels is host code, and "
                      "--target " + target + " has none");
  if (compileTo != CompileTo::Artifact)
    return usageError("--codegen-cpu " + codegenCpu + ": a list of CPU levels writes an artifact; "
                      "the other stages take one level");
  return 0;
}

int checkFatTargets() {
  const auto targets = targetList();
  if (targets.size() == 1) return 0;
  // host first (the GPU code shares the host plan), or GPU targets only (sm_80,sm_90a: one GPU
  // plan, code per target; the runtime picks the object for the GPU it finds).
  const mlir::ds::TargetDesc* first = mlir::ds::findTarget(targets.front());
  if (targets.front() != "host" && (!first || first->backend != mlir::ds::TargetBackend::nvptx))
    return usageError("--target " + target + ": a fat artifact lists host then GPU targets "
                      "(host,sm_90a) or GPU targets only (sm_80,sm_90a)");
  for (size_t i = 1; i < targets.size(); ++i) {
    const mlir::ds::TargetDesc* t = mlir::ds::findTarget(targets[i]);
    if (!t || t->backend != mlir::ds::TargetBackend::nvptx)
      return usageError("--target " + target + ": '" + targets[i] + "' is not a GPU target (" +
                        mlir::ds::targetNames() + ")");
    for (size_t j = 1; j < i; ++j)
      if (targets[j] == targets[i]) return usageError("--target " + target + " names " + targets[i] + " twice");
  }
  if (compileTo != CompileTo::Artifact)
    return usageError("--target " + target + ": a fat target list writes an artifact; the other "
                      "stages take one target");
  return 0;
}

// The host target only: the host-only schemes and kernels (int8 / bf16 activations, 4- and 6-bit
// output layers) apply.
bool hostOnly() {
  return llvm::all_of(targetList(), [](const std::string& t) { return t == "host"; });
}

// GPU targets only (one, or a GPU-only fat list): the activations follow --dtype.
bool gpuTarget() {
  for (const std::string& name : targetList()) {
    const mlir::ds::TargetDesc* t = mlir::ds::findTarget(name);
    if (!t || t->backend != mlir::ds::TargetBackend::nvptx) return false;
  }
  return true;
}

// The activations' element type: --dtype on a GPU target, f32 on the host and in fat artifacts
// (their one plan is the host's). docs/codegen.md "Element types".
std::string activationType;

// --dtype and --kv-cache defaults and combinations (docs/tools.md).
int resolveDtypes() {
  const bool gpu = gpuTarget();
  if (weightDtype.empty()) weightDtype = gpu ? "bf16" : "f32";
  if (weightDtype != "f32" && weightDtype != "bf16" && weightDtype != "f16")
    return usageError("unsupported --dtype '" + weightDtype + "' (f32, bf16, f16)");
  if (gpu && weightDtype == "f16")
    return usageError("--dtype f16 on --target " + target + ": GPU targets run f32 or bf16 "
                      "activations (the CUDA kernel library has no f16 kernels); use --dtype bf16");
  activationType = gpu ? weightDtype.getValue() : "f32";
  if (kvCache == "auto") kvCache = activationType;
  if (kvCache != "f32" && kvCache != "bf16" && kvCache != "int8" && kvCache != "fp8")
    return usageError("unsupported --kv-cache '" + kvCache + "' (auto, f32, bf16, int8, fp8)");
  if (kvCache == "bf16" && activationType != "bf16")
    return usageError("--kv-cache bf16 needs bf16 activations (--dtype bf16 on a GPU target); the " +
                      std::string(gpu ? "f32 activations of --dtype f32" : "host's f32 activations") +
                      " keep an f32, int8 or fp8 cache");
  if (gpu && (kvCache == "f32" || kvCache == "bf16") && kvCache != activationType)
    return usageError("--kv-cache " + kvCache + " with " + activationType + " activations on --target " +
                      target + ": the CUDA attention kernels read the cache in the activations' type; "
                      "use --kv-cache auto");
  return 0;
}

int checkFlags() {
  if (emit.getNumOccurrences() && compileTo.getNumOccurrences())
    return usageError("--emit is the former name of --compile-to: give one of them");
  if (emit.getNumOccurrences()) compileTo = emit.getValue();
  if (int rc = checkFatTargets()) return rc;
  if (int rc = checkCpuLevels()) return rc;
  if (tensorParallel < 1 || tensorParallel > ds::kMaxTensorParallel)
    return usageError("--tp must be in [1, " + llvm::Twine(ds::kMaxTensorParallel) + "]");
  if (expertParallel < 1 || expertParallel > ds::kMaxTensorParallel)
    return usageError("--ep must be in [1, " + llvm::Twine(ds::kMaxTensorParallel) + "]");
  if (expertParallel > 1 && tensorParallel > 1 && expertParallel != tensorParallel)
    return usageError("--ep " + llvm::Twine(expertParallel.getValue()) + " must be 1 or equal --tp " +
                      llvm::Twine(tensorParallel.getValue()) +
                      " (experts are distributed over the tensor-parallel ranks)");
  if (kvBlockSize <= 0 || kvBlockSize > ds::abi::kMaxKvBlockSize)
    return usageError("--kv-block-size must be in [1, " +
                      llvm::Twine(ds::abi::kMaxKvBlockSize) + "]");
  if (int rc = resolveDtypes()) return rc;
  auto scheme = mlir::ds::quantScheme(quant);
  if (!scheme) {
    llvm::consumeError(scheme.takeError());
    return usageError("unsupported --quant '" + quant + "' (none, w8, w4g64, w4g128, w4g64a, w4g128a, fp8)");
  }
  const bool int_scheme =
      *scheme && ((*scheme)->rfind("int8", 0) == 0 || (*scheme)->rfind("int4", 0) == 0);
  const bool host_only = hostOnly();
  if (quantAct == "auto")
    quantAct = !host_only ? "none" : int_scheme ? "int8" : !*scheme && weightDtype == "bf16" ? "bf16" : "none";
  if (quantAct != "none" && quantAct != "int8" && quantAct != "bf16" && quantAct != "fp8")
    return usageError("unsupported --quant-act '" + quantAct + "' (auto, none, int8, bf16, fp8)");
  if (quantAct == "fp8") {
    // GPU targets whose every device has FP8 tensor cores (the target table's fp8_tflops);
    // the weights must be FP8 (the checkpoint's block-scaled ones, or --quant fp8).
    for (const std::string& t : targetList()) {
      const mlir::ds::TargetDesc* d = mlir::ds::findTarget(t);
      bool fp8_mma = d && d->backend == mlir::ds::TargetBackend::nvptx && !d->devices.empty();
      for (const mlir::ds::DeviceSpec& dev : d ? d->devices : std::vector<mlir::ds::DeviceSpec>{})
        fp8_mma = fp8_mma && dev.fp8_tflops > 0;
      if (!fp8_mma)
        return usageError("--quant-act fp8 needs FP8 tensor cores: target '" + t +
                          "' has none (sm_89, sm_90a and sm_100a do)");
    }
    if (*scheme && quant != "fp8")
      return usageError("--quant-act fp8 is for FP8 weights (the checkpoint's or --quant fp8), not --quant " + quant);
  }
  if (quantAct == "bf16") {
    if (*scheme)
      return usageError("--quant-act bf16 is for bf16 weights, not --quant " + quant +
                        " (int8 / int4 take --quant-act int8)");
    for (const std::string& t : targetList())
      if (t != "host")
        return usageError("--quant-act bf16 is implemented for the host target only, not '" + t + "'");
  }
  if (quantAct == "int8") {
    if (!int_scheme)
      return usageError("--quant-act int8 needs an int8 or int4 --quant (w8, w4g64, w4g128, ...)");
    for (const std::string& t : targetList())
      if (t != "host")
        return usageError("--quant-act int8 is implemented for the host target only, not '" + t + "'");
  }
  // auto is resolved once the model's shapes are known (main, autoLmHeadQuant); it is host only
  // where it picks a host-only scheme, so it needs none of the checks below.
  lmHeadAuto = quantLmHead == "auto";
  std::vector<std::string> given{quantEmbed.getValue()};
  if (!lmHeadAuto) given.push_back(quantLmHead.getValue());
  for (const std::string& v : given) {
    if (auto head = mlir::ds::headQuantScheme(v); !head) {
      llvm::consumeError(head.takeError());
      return usageError("unsupported --quant-lm-head / --quant-embed '" + v + "' (auto for the "
                        "lm head, none, w8, w6g64, w6g128, w4g64, w4g128)");
    }
    if (v.rfind("w4", 0) == 0 || v.rfind("w6", 0) == 0)
      for (const std::string& t : targetList())
        if (t != "host")
          return usageError("--quant-lm-head / --quant-embed " + v + " is implemented for the host "
                            "target only, not '" + t + "'");
  }
  // auto quantizes the head exactly when --quant is int8 / int4 on a host-only build.
  bool headQuant = (lmHeadAuto ? host_only && int_scheme : quantLmHead != "none") || quantEmbed != "none";
  if (!quantCalib.empty() && !*scheme) return usageError("--quant-calib needs an int4 --quant");
  if (!quantCalib.empty() && (*scheme)->rfind("int4", 0) != 0)
    return usageError("--quant-calib applies to int4 schemes (w4g64, w4g128, w4g64a, w4g128a), not '" +
                quant + "'");
  if (weightsSource != "checkpoint" && weightsSource != "random")
    return usageError("unsupported --weights '" + weightsSource + "' (checkpoint, random)");
  if (weightsSeed.getNumOccurrences() && weightsSource != "random")
    return usageError("--weights-seed needs --weights random");
  if (weightsSource == "random" && (*scheme || headQuant))
    return usageError("--quant " + quant + " with --weights random: synthetic weights are filled "
                      "in the checkpoint's float (or FP8) type and not quantized; compile without "
                      "--quant");
  if (codegen != "host" && codegen != "none")
    return usageError("unsupported --codegen '" + codegen + "' (host, none)");
  bool kernelStage = compileTo == CompileTo::Codegen || compileTo == CompileTo::LLVM ||
                     compileTo == CompileTo::LLVMIR || compileTo == CompileTo::Ptx;
  if (codegen == "none" && kernelStage)
    return usageError(stageFlag() + "=codegen|llvm|llvm-ir need --codegen=host");
  if (compileTo == CompileTo::Artifact && outputFile.empty() && !costReport)
    return usageError(stageFlag() + "=artifact needs -o <file.dsa>");
  if (compileTo == CompileTo::Artifact && outputFile == "-")
    return usageError("an artifact is binary: give -o <file.dsa> ('-' is stdout for the text "
                      "stages, " + stageFlag() + "=ds..ptx)");
  if (signKey.getNumOccurrences() && (compileTo != CompileTo::Artifact || outputFile.empty()))
    return usageError("--sign signs an artifact: it needs -o <file.dsa>");
  return 0;
}

// The files this compile reads, so -o can never name one of them (docs/tools.md, "Output").
ds::InputFiles inputs;

// -o rules, checked before anything is written: not an input, not a link, not a device/FIFO/dir.
int checkOutputPath() {
  if (outputFile.empty() || outputFile == "-") return 0;
  ds::Status st = inputs.checkOutput(outputFile);
  return st.isOk() ? 0 : fail(st.message());
}

}  // namespace

int main(int argc, char** argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::registerAsmPrinterCLOptions();
  mlir::registerMLIRContextCLOptions();
  // Pass names for --mlir-print-ir-after=<pass> and friends: registered before those options.
  mlir::ds::registerDsPasses();
  mlir::registerPassManagerCLOptions();
  cl::HideUnrelatedOptions(category);
  cl::SetVersionPrinter(printVersion);
  // Errors go to errs() and come back as false: a command-line mistake exits 2 (docs/tools.md),
  // not LLVM's 1.
  if (!cl::ParseCommandLineOptions(argc, argv,
                                   "ds-compile: Hugging Face model -> ds artifact "
                                   "(docs/compiler_pipeline.md)\n",
                                   &llvm::errs()))
    return ds::tools::kExitUsage;
  // LLVM owns -stats (its pass statistics); the cost report was --stats before.
  if (llvm::AreStatisticsEnabled())
    return usageError("--stats is LLVM's statistics flag; the cost report is --cost-report");
  auto start = std::chrono::steady_clock::now();
  if (int rc = checkFlags()) return rc;
  // Inputs are checked to be regular files (a FIFO would hang the read) before they are opened.
  if (ds::Status st = inputs.addModelDir(inputDir); !st.isOk()) return fail(st.message());
  if (!quantCalib.empty()) {
    if (ds::Status st = inputs.add(quantCalib); !st.isOk())
      return fail("--quant-calib: " + st.message());
  }
  if (int rc = checkOutputPath()) return rc;
  // Read before compiling: a bad key file fails in milliseconds, not after the weights.
  std::optional<ds::artifact::SecretKey> signingKey;
  if (signKey.getNumOccurrences()) {
    auto key = ds::artifact::readSecretKeyFile(signKey);
    if (!key.isOk()) return fail(key.status().message());
    signingKey = key.value();
  }

  // Import: the ds graph, with the target attached as #ds.target.
  mlir::MLIRContext context;
  mlir::ds::ImportPhaseOptions importOptions;
  importOptions.model_dir = inputDir;
  importOptions.target = targetList().front();
  importOptions.synthetic_weights = weightsSource == "random";
  importOptions.activation_type = activationType;
  importOptions.cpu = cpuList().front();
  auto model = mlir::ds::runImportPhase(context, importOptions);
  if (!model) return fail(model.takeError());
  mlir::ModuleOp module = model->module.get();
  // Shards named by the index may live in subfolders: inputs too.
  for (const auto& file : model->checkpoint.files())
    if (ds::Status st = inputs.add(file->path()); !st.isOk()) return fail(st.message());
  if (int rc = checkOutputPath()) return rc;
  // The quantization pass leaves native FP8 weights as they are: on an FP8 checkpoint --quant
  // would change only a few weights while looking like it applied. Refused rather than ignored.
  if (model->config.quantization.fp8_block && quant != "none")
    return fail("--quant " + quant + ": " + model->config.source +
                " describes an FP8 block-quantized checkpoint (quantization_config), whose FP8 "
                "weights are stored as they are; compile it without --quant");
  if (compileTo == CompileTo::DS) return printModule(module);
  mlir::ds::ModelCost cost = mlir::ds::estimateCost(module);

  // Graph: sharding, fusion, quantization.
  mlir::ds::GraphPipelineOptions graph;
  graph.fuse = fuse;
  graph.quant = quant;
  if (lmHeadAuto) {
    // As llama.cpp's quantized files keep the output at Q6_K (Q8_0 files at 8 bits): 6-bit groups
    // of 128 under an int4 --quant where the host kernel reads them (g64's second scale stream
    // costs 11% of the logits GEMV's speed at 50 GB/s), int8 under w8 (docs/quantization.md).
    auto scheme = mlir::ds::quantScheme(quant);
    const std::string s = scheme && *scheme ? **scheme : std::string();
    if (!scheme) llvm::consumeError(scheme.takeError());
    quantLmHead = mlir::ds::autoLmHeadQuant(s, hostOnly(), model->config.vocab_size,
                                            model->config.hidden_size, tensorParallel);
  }
  graph.quantLmHead = quantLmHead;
  graph.quantEmbed = quantEmbed;
  graph.tp = tensorParallel;
  graph.ep = expertParallel;
  std::function<void(mlir::ModuleOp)> shardReport;
  if (!quiet && compileTo == CompileTo::Artifact)
    shardReport = [](mlir::ModuleOp m) { mlir::ds::printShardReport(llvm::errs(), m); };
  if (llvm::Error e = mlir::ds::runGraphPhase(module, graph, shardReport)) return fail(std::move(e));
  if (compileTo == CompileTo::Graph) return printModule(module);
  if (quant == "fp8") {
    // --quant fp8 made the GEMM weights FP8 after the cost was read off the imported graph: their
    // share of the FLOPs from the quantized graph (a ratio: sharding cancels out).
    const mlir::ds::ModelCost quantized = mlir::ds::estimateCost(module);
    if (quantized.flops_per_token > 0)
      cost.fp8_flops_per_token = static_cast<uint64_t>(
          double(cost.flops_per_token) * double(quantized.fp8_flops_per_token) / double(quantized.flops_per_token));
  }

  // Plan: the kernel plan over planned activation memory.
  mlir::ds::PlanPipelineOptions plan;
  plan.planMemory = planMemory;
  plan.kvBlockSize = kvBlockSize;
  plan.kvCache = kvCache;
  if (llvm::Error e = mlir::ds::runPlanPhase(module, plan)) return fail(std::move(e));
  if (costReport) {
    mlir::ds::CostReportOptions report;
    report.kv_cache = kvCache;
    report.fp8_activations = quantAct == "fp8";
    report.context = costContext;
    report.max_step_tokens = maxStepTokens;
    mlir::ds::printCostReport(llvm::outs(), module, model->config, cost, report);
  }
  if (compileTo == CompileTo::Plan) return printModule(module);
  if (outputFile.empty() && compileTo == CompileTo::Artifact) return 0;  // --cost-report only

  // A fat artifact: the same plan's kernels for each further CPU level (--codegen-cpu list: host
  // code objects, the runtime loads the best one the CPU has), then for each further (GPU)
  // target, compiled from a copy of the plan module before the host codegen lowers it.
  std::vector<mlir::ds::CodeObject> extraCode;
  const llvm::SmallVector<std::string> targets = targetList();
  std::vector<std::pair<std::string, std::string>> variants;  // (target, level)
  const llvm::SmallVector<std::string> cpus = cpuList();
  for (const std::string& cpu : llvm::ArrayRef(cpus).drop_front())
    variants.push_back({targets.front(), cpu});
  for (const std::string& name : llvm::ArrayRef(targets).drop_front()) variants.push_back({name, ""});
  if (codegen == "host")
    for (const auto& [name, cpu] : variants) {
      mlir::OwningOpRef<mlir::ModuleOp> copy(module.clone());
      auto attr = mlir::ds::resolveTarget(context, name, cpu);
      if (!attr) return fail(attr.takeError());
      copy.get()->setAttr(mlir::ds::DSDialect::kTargetAttrName, *attr);
      mlir::ds::CodegenPipelineOptions gpuKernels;
      if (!cpu.empty()) gpuKernels.activationType = activationType;  // a host level: as the plan's
      if (llvm::Error e = mlir::ds::runCodegenPhase(*copy, gpuKernels)) return fail(std::move(e));
      if (mlir::ModuleOp kernels = mlir::ds::findKernelModule(*copy)) {
        auto info = mlir::ds::TargetInfo::forModule(*copy);
        if (!info) return fail(info.takeError());
        auto code = (*info)->emitCode(kernels);
        if (!code) return fail(code.takeError());
        extraCode.push_back(std::move(*code));
      }
    }

  // The CUDA kernel library for every GPU target (sm_86 -> the sm_80 cubin, sm_100a -> the
  // compute_90 PTX): the artifact then needs nothing from the build tree at run time.
  std::vector<std::string> gpuTargets;
  for (const std::string& name : targets)
    if (const mlir::ds::TargetDesc* t = mlir::ds::findTarget(name);
        compileTo == CompileTo::Artifact && t && t->backend == mlir::ds::TargetBackend::nvptx)
      gpuTargets.push_back(name);
#ifdef DS_CUDA_KERNELS_DIR_DEFAULT
  const std::string defaultKernelsDir = DS_CUDA_KERNELS_DIR_DEFAULT;
#else
  const std::string defaultKernelsDir;
#endif
  std::vector<std::string> librarySymbols;
  for (const char* const* sym = ds_cuda_kernel_symbols(); *sym; ++sym) librarySymbols.push_back(*sym);
  auto library = mlir::ds::collectCudaLibrary(
      gpuTargets,
      mlir::ds::locateCudaLibrary(cudaKernels, std::getenv("DS_CUDA_KERNELS_DIR"), defaultKernelsDir),
      librarySymbols);
  if (!library) return fail(library.takeError());
  if (!gpuTargets.empty() && library->objects.empty())
    llvm::WithColor::warning(llvm::errs(), "ds-compile") << library->notes.front() << "\n";

  // Codegen: generated kernels for the module's #ds.target.
  auto codegenStart = std::chrono::steady_clock::now();
  if (codegen == "host") {
    mlir::ds::CodegenPipelineOptions kernels;
    kernels.lowerToLLVM = compileTo != CompileTo::Codegen;
    kernels.activationType = activationType;
    if (llvm::Error e = mlir::ds::runCodegenPhase(module, kernels)) return fail(std::move(e));
    if (compileTo == CompileTo::Codegen) return printModule(module);
    if (compileTo == CompileTo::LLVM) {
      mlir::ModuleOp lowered = mlir::ds::findKernelModule(module);
      if (!lowered) return fail("the plan has no launch that generated kernels serve");
      return printModule(lowered);
    }
    if (compileTo == CompileTo::LLVMIR) {
      auto ir = mlir::ds::emitKernelLLVMIR(module);
      if (!ir) return fail(ir.takeError());
      return writeText([&](llvm::raw_ostream& os) { os << *ir; });
    }
    if (compileTo == CompileTo::Ptx) {
      auto ptx = mlir::ds::emitKernelAssembly(module);
      if (!ptx) return fail(ptx.takeError());
      return writeText([&](llvm::raw_ostream& os) { os << *ptx; });
    }
  }
  double codegenSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - codegenStart).count();

  // Artifact: native code, weights, plan, tokenizer -> .dsa.
  mlir::ds::ArtifactPhaseOptions artifact;
  artifact.artifact.output_path = outputFile;
  // A bare config.json names a file: its folder holds the tokenizer files, if any.
  artifact.artifact.model_dir = inputDir;
  if (llvm::StringRef(inputDir).ends_with(".json")) {
    llvm::StringRef parent = llvm::sys::path::parent_path(inputDir);
    artifact.artifact.model_dir = parent.empty() ? "." : parent.str();
  }
  artifact.artifact.synthetic_seed = weightsSeed;
  artifact.artifact.int8_activations = quantAct == "int8";
  artifact.artifact.bf16_activations = quantAct == "bf16";
  artifact.artifact.fp8_activations = quantAct == "fp8";
  for (const mlir::ds::CodeObject& c : extraCode) artifact.artifact.extra_code.push_back(&c);
  for (const mlir::ds::CodeObject& c : library->objects) artifact.artifact.library_code.push_back(&c);
  if (targetList().size() > 1) artifact.artifact.target_name = target;
  // The cost model's figures and its first device for the target, for ds-bench's columns.
  mlir::ds::ArtifactCostFacts facts;
  facts.weight_bytes = cost.weight_bytes;
  facts.decode_bytes_per_token = cost.decode_bytes_per_token;
  facts.flops_per_token = cost.flops_per_token;
  facts.attention_flops_per_context_token = cost.attention_flops_per_context_token;
  for (const mlir::ds::CostDevice& d : mlir::ds::costModelDevices())
    if (d.target->name == llvm::StringRef(target).split(',').first.str() ||
        d.device->name == llvm::StringRef(target).split(',').first.str()) {
      facts.device = d.device->name;
      facts.bandwidth_gbs = d.device->memory_bandwidth_gbs;
      facts.tflops = d.device->bf16_tflops;  // ds-bench's roofline: bf16 (FP8 GEMMs not split out)
      break;
    }
  artifact.artifact.cost = &facts;
  artifact.artifact.weight_dtype = weightDtype;
  // Generated norm kernels and the CUDA GEMV/GEMM bias epilogues read f32 vectors: with bf16
  // activations, norm weights and biases stay f32 (a few KiB per layer).
  artifact.artifact.f32_vectors = activationType != "f32";
  artifact.artifact.progress = !quiet;
  artifact.artifact.signing_key = signingKey ? &*signingKey : nullptr;
  artifact.quant_calib = quantCalib;
  artifact.quiet = quiet;
  auto written = mlir::ds::runArtifactPhase(module, *model, artifact);
  if (!written) return fail(written.takeError());
  if (quiet) return 0;
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  llvm::errs() << "ds-compile: wrote " << outputFile << " (" << written->stats.tensors
               << " tensors, " << written->stats.weight_bytes << " weight bytes, "
               << written->stats.launches << " launches per step";
  if (written->kernels)
    llvm::errs() << ", " << written->kernels << " generated kernels (" << written->code_bytes
                 << " bytes, " << llvm::format("%.3f", codegenSeconds + written->codegen_seconds)
                 << " s)";
  llvm::errs() << ") in " << llvm::format("%.3f", seconds) << " s";
  if (weightsSource == "random")
    llvm::errs() << "; weights: synthetic (seed " << weightsSeed << "), filled at load";
  llvm::errs() << "\n";
  if (!library->objects.empty()) {
    uint64_t bytes = 0;
    for (const mlir::ds::CodeObject& c : library->objects) bytes += c.bytes.size();
    llvm::errs() << "ds-compile: CUDA kernel library embedded from " << library->dir << " ("
                 << bytes << " bytes): " << llvm::join(library->notes, ", ") << "\n";
  } else if (!gpuTargets.empty()) {
    llvm::errs() << "ds-compile: CUDA kernel library NOT embedded: the runtime will need "
                    "DS_CUDA_KERNELS\n";
  }
  return 0;
}
