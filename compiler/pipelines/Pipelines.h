// The MLIR-to-MLIR phases of the compile pipeline (Import -> Graph -> Plan -> Codegen ->
// Artifact) as registered pass pipelines: `ds-opt --ds-pipeline-graph="fuse=true quant=w8 tp=2"`,
// `--ds-pipeline-plan`, `--ds-pipeline-codegen` run what ds-compile runs (docs/compiler_pipeline.md).
#pragma once

#include <optional>
#include <string>

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"
#include "llvm/Support/Error.h"

namespace mlir::ds {

// Graph: target-independent rewrites of the ds graph (@forward).
struct GraphPipelineOptions : public PassPipelineOptions<GraphPipelineOptions> {
  Option<bool> fuse{*this, "fuse",
                    llvm::cl::desc("fusion passes: add+rms_norm, gate/up+swiglu, q/k/v+rope, MLA "
                                   "prologue, merged projection weights"),
                    llvm::cl::init(true)};
  Option<std::string> quant{*this, "quant",
                            llvm::cl::desc("GEMM weight quantization: none, w8, fp8, w4g64, "
                                           "w4g128, w4g64a, w4g128a"),
                            llvm::cl::init("none")};
  Option<std::string> quantLmHead{*this, "quant-lm-head",
                                  llvm::cl::desc("output projection (logits weight): none, w8, w4g64, w4g128"),
                                  llvm::cl::init("none")};
  Option<std::string> quantEmbed{*this, "quant-embed",
                                 llvm::cl::desc("embedding table: none, w8, w4g64, w4g128"),
                                 llvm::cl::init("none")};
  Option<int64_t> tp{*this, "tp", llvm::cl::desc("tensor-parallel ranks, in [1, 64]"),
                     llvm::cl::init(1)};
  Option<int64_t> ep{*this, "ep",
                     llvm::cl::desc("expert-parallel ranks for the routed experts: 1, or equal "
                                    "to tp when tp > 1"),
                     llvm::cl::init(1)};
};

// Plan: the ds graph lowered to the dsk kernel plan (@step), activation memory planned.
struct PlanPipelineOptions : public PassPipelineOptions<PlanPipelineOptions> {
  Option<bool> planMemory{*this, "plan-memory",
                          llvm::cl::desc("reuse activation buffers by liveness"),
                          llvm::cl::init(true)};
  Option<int64_t> kvBlockSize{*this, "kv-block-size",
                              llvm::cl::desc("tokens per paged KV-cache block, in [1, 4096]"),
                              llvm::cl::init(16)};
  Option<std::string> kvCache{*this, "kv-cache",
                              llvm::cl::desc("KV cache storage: f32, bf16, int8, fp8"),
                              llvm::cl::init("f32")};
};

// Codegen: generated kernels outlined from the plan (target independent), then lowered for the
// module's #ds.target (host: LLVM dialect with C entry points) inside the nested @ds_kernels.
struct CodegenPipelineOptions : public PassPipelineOptions<CodegenPipelineOptions> {
  Option<bool> lowerToLLVM{*this, "lower-to-llvm",
                           llvm::cl::desc("lower the outlined linalg kernels to the LLVM dialect "
                                          "(false: stop after outlining)"),
                           llvm::cl::init(true)};
  // The pipeline is built before it sees the module, so the backend is an option; ds-compile
  // sets it from the module's #ds.target (nvptx for the sm_* targets).
  Option<std::string> backend{*this, "backend",
                              llvm::cl::desc("backend whose kernel lowering runs: host or nvptx "
                                             "(the #ds.target backend; ds-compile sets it)"),
                              llvm::cl::init("host")};
  // nvptx only: the generated kernels' row-buffer storage type for kernels that do not say
  // (ds-codegen-outline-kernels marks those of a bf16 plan `ds.row_type = "bf16"`, which wins).
  Option<std::string> activationType{
      *this, "activation-type",
      llvm::cl::desc("nvptx: storage type of the kernels' activation buffers (f32, bf16)"),
      llvm::cl::init("f32")};
};

// The ds-quant-weights scheme of a --quant / quant= value ("w8" -> "int8"); none for "none".
// An error lists the accepted values.
llvm::Expected<std::optional<std::string>> quantScheme(llvm::StringRef quant);
// The same for --quant-lm-head / --quant-embed (none, w8, w4g64, w4g128: "w4g64" -> "int4_g64").
llvm::Expected<std::optional<std::string>> headQuantScheme(llvm::StringRef quant);

// Option checks; errors name the option ("tp must be in [1, 64], got 0").
llvm::Error validateGraphOptions(const GraphPipelineOptions& options);

void buildGraphPipeline(OpPassManager& pm, const GraphPipelineOptions& options);
void buildPlanPipeline(OpPassManager& pm, const PlanPipelineOptions& options);
// The Codegen phase for `backend` ("host", "nvptx") whatever options.backend says: ds-compile
// passes its module's #ds.target backend.
void buildCodegenPipeline(OpPassManager& pm, const CodegenPipelineOptions& options,
                          llvm::StringRef backend);
llvm::Error validateCodegenOptions(const CodegenPipelineOptions& options);
void buildCodegenPipeline(OpPassManager& pm, const CodegenPipelineOptions& options);

// Registers ds-pipeline-graph, ds-pipeline-plan and ds-pipeline-codegen.
void registerDsPipelines();

}  // namespace mlir::ds
