// The compile pipeline as phase functions: Import -> Graph -> Plan -> Codegen -> Artifact.
// ds-compile is a thin driver over these (docs/compiler_pipeline.md). Import and Artifact are C++
// (files in, file out); Graph, Plan and Codegen run the pass pipelines of Pipelines.h. The target
// travels as the module's #ds.target, set once by Import.
#pragma once

#include <functional>
#include <string>

#include "compiler/artifact/ArtifactBuilder.h"
#include "compiler/pipelines/Pipelines.h"
#include "dialects/ds/DsDialect.h"
#include "ingest/checkpoint.h"
#include "ingest/hf_config.h"
#include "mlir/IR/OwningOpRef.h"

namespace mlir::ds {

// Where ds-compile stops (--compile-to), in pipeline order.
enum class CompileTo { DS, Graph, Plan, Codegen, LLVM, LLVMIR, Ptx, Artifact };

//===-- Import: Hugging Face folder -> ds module with #ds.target ----------------------------===//

struct ImportPhaseOptions {
  std::string model_dir;
  std::string target = "host";  // a table row ("host", "sm_90a") or a device alias ("h100")
  std::string cpu;              // code-generation level (--codegen-cpu); empty: the default
  // --weights random: no checkpoint is opened; every weight is declared from config.json's
  // shapes (Checkpoint::synthetic) and filled by the runtime at load.
  bool synthetic_weights = false;
  // Element type of the graph's activations: "f32" (host, exactness tests) or "bf16" (the GPU
  // targets' default; docs/codegen.md "Element types").
  std::string activation_type = "f32";
};

struct ImportedModel {
  ::ds::ModelConfig config;
  ::ds::Checkpoint checkpoint;
  OwningOpRef<ModuleOp> module;
};

// The #ds.target for --target / --codegen-cpu; errors name the flag and list the known values.
llvm::Expected<TargetAttr> resolveTarget(MLIRContext& context, llvm::StringRef target,
                                         llvm::StringRef cpu);

// Reads config.json and the safetensors headers, builds the ds graph, attaches `ds.target`.
llvm::Expected<ImportedModel> runImportPhase(MLIRContext& context,
                                             const ImportPhaseOptions& options);

//===-- Graph, Plan, Codegen: the registered pass pipelines on the module -------------------===//

// `afterSharding`, when set, sees the module right after ds-shard-tensor-parallel (tp > 1).
llvm::Error runGraphPhase(ModuleOp module, const GraphPipelineOptions& options,
                          std::function<void(ModuleOp)> afterSharding = {});
llvm::Error runPlanPhase(ModuleOp module, const PlanPipelineOptions& options);
// Refuses a #ds.target whose backend cannot emit code yet (nvptx).
llvm::Error runCodegenPhase(ModuleOp module, const CodegenPipelineOptions& options);

//===-- Artifact: native code of the kernels, weights and plan -> .dsa ----------------------===//

// The lowered kernel module (@ds_kernels) as optimized LLVM IR for the #ds.target
// (--compile-to=llvm-ir); an error when the plan has no generated kernels.
llvm::Expected<std::string> emitKernelLLVMIR(ModuleOp module);
// The kernels of a plan after the Codegen phase as the target's assembly (nvptx: PTX,
// --compile-to=ptx); an error for a target without one or a plan without generated kernels.
llvm::Expected<std::string> emitKernelAssembly(ModuleOp module);

struct ArtifactPhaseOptions {
  ArtifactOptions artifact;     // output path, model dir, dtypes, KV block size, progress
  std::string quant_calib;      // --quant-calib text file (int4 GPTQ), or empty
  bool quiet = false;           // no "calibrated on ..." line
};

struct ArtifactPhaseResult {
  ArtifactStats stats;
  size_t kernels = 0;           // entry points of the generated code object
  size_t code_bytes = 0;
  double codegen_seconds = 0;   // native code emission (LLVM IR, object, link)
};

// Emits the code object of @ds_kernels (if any) with the #ds.target's backend, calibrates when
// asked, and writes the artifact with the Target table filled from #ds.target.
llvm::Expected<ArtifactPhaseResult> runArtifactPhase(ModuleOp module,
                                                     const ImportedModel& model,
                                                     const ArtifactPhaseOptions& options);

}  // namespace mlir::ds
