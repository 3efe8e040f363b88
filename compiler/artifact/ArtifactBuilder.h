// Writes a .dsa artifact from a lowered module (@step + ds.weight), streaming weights from the checkpoint.
#pragma once

#include <string>

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

namespace ds {
class Checkpoint;
struct ModelConfig;
namespace artifact {
struct SecretKey;
}
}  // namespace ds

namespace mlir::ds {

struct CodeObject;
struct QuantCalibration;
struct TokenizerFiles;

// The cost model's per-token figures for the Artifact.cost table (compiler/target/CostModel.h),
// counted on the imported weights; the builder scales the byte figures to the stored bytes.
struct ArtifactCostFacts {
  uint64_t weight_bytes = 0;
  uint64_t decode_bytes_per_token = 0;
  uint64_t flops_per_token = 0;
  uint64_t attention_flops_per_context_token = 0;
  std::string device;
  double bandwidth_gbs = 0, tflops = 0;
};

struct ArtifactOptions {
  std::string output_path;
  std::string model_dir;      // tokenizer files and chat template are read from here
  // Storage type of float weights ("f32", "bf16", "f16"); FP8 block-scaled weights and their
  // scales are stored as they come.
  std::string weight_dtype = "f32";
  bool f32_vectors = false;   // rank-1 weights (norms, biases) stay f32 (GPU bf16 builds)
  bool progress = false;      // draw a progress bar on stderr
  // Generated kernels (compiler/codegen), required when launches carry `code_symbol`.
  const CodeObject* code = nullptr;
  // A fat artifact (--target host,sm_90a): the same kernels for further targets, stored after
  // `code` (launches name `code`; a GPU device picks its object by target and symbol name).
  std::vector<const CodeObject*> extra_code;
  // The CUDA kernel library for the GPU targets (compiler/artifact/CudaLibrary.h), stored after
  // the generated code with CodeObject.library set.
  std::vector<const CodeObject*> library_code;
  // Target.name as given (e.g. "host,sm_90a"); empty: the #ds.target's name.
  std::string target_name;
  // Input Hessians from --quant-calib (compiler/quant/Calibration.h): int4 weights found there
  // are quantized with GPTQ; null = scale search only.
  const QuantCalibration* calibration = nullptr;
  // The tokenizer blobs and chat template to store (compiler/artifact/TokenizerFiles.h), as
  // checked by the caller; null: read from model_dir here.
  const TokenizerFiles* tokenizer_files = nullptr;
  // Seed of synthetic weights (--weights random: the checkpoint is Checkpoint::synthetic()).
  uint64_t synthetic_seed = 0;
  // --quant-act int8: Artifact.int8_activations.
  bool int8_activations = false;
  // --quant-act bf16: Artifact.bf16_activations.
  bool bf16_activations = false;
  // --quant-act fp8 (GPU): Artifact.fp8_activations.
  bool fp8_activations = false;
  // Stored as Artifact.cost for ds-bench's roofline and predictions; null: none.
  const ArtifactCostFacts* cost = nullptr;
  // Signs the artifact (--sign, docs/artifact.md); null = unsigned.
  const ::ds::artifact::SecretKey* signing_key = nullptr;
};

struct ArtifactStats {
  uint64_t weight_bytes = 0;  // as stored: after --dtype/--quant, scales and shards included
  uint64_t file_bytes = 0;
  size_t tensors = 0;
  size_t launches = 0;
};

// `module` must hold func @step (after ds-convert-to-kernels) and the ds.weight declarations; its
// #ds.target (ds.target) fills the Target table ("host" without one).
llvm::Expected<ArtifactStats> writeArtifact(ModuleOp module, const ::ds::ModelConfig& config,
                                            const ::ds::Checkpoint& checkpoint,
                                            const ArtifactOptions& options);

}  // namespace mlir::ds
