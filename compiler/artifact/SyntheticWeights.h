// Synthetic weights (ds-compile --weights random): the tensor table of a module's ds.weight
// symbols as specs and fills, without any data (docs/artifact.md, "Synthetic weights").
#pragma once

#include <cstdint>
#include <vector>

#include "artifact_generated.h"
#include "compiler/artifact/WeightShards.h"
#include "dialects/ds/DsDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

namespace mlir::ds {

struct SyntheticTable {
  std::vector<TensorRecord> records;  // the whole tensor table, every entry synthetic
  llvm::StringMap<int> index;         // ds.weight symbol -> its (rank-0) entry
  uint64_t parameters = 0;            // as ModelInfo.parameter_count counts them
  uint64_t weight_bytes = 0;          // bytes the runtime fills (ranks sharing a shard: once)
};

// The fill a real checkpoint's tensor of this role would resemble: norms 1, biases N(0, 0.01),
// FP8 codes N(0, 1) with block scales 0.02 (values N(0, 0.02)), everything else (matrices,
// embeddings, MoE routers) N(0, 0.02).
void syntheticFillFor(llvm::StringRef name, ::ds::fb::DType stored, bool isScale, float* mean,
                      float* std);

// A vector weight: rank 1 (norm weights, biases; per-expert stacks are rank 2).
bool isVectorWeight(WeightOp op);

// The stored type of a weight declared `declared`: float weights (not FP8 block scales) as
// `floatStorage` (--dtype), vector weights as f32 when `f32Vectors` (GPU builds with bf16
// activations: generated norm kernels and the GEMV/GEMM bias epilogues read f32 vectors),
// everything else as declared.
::ds::fb::DType storedWeightType(WeightOp op, ::ds::fb::DType declared, ::ds::fb::DType floatStorage,
                                 bool f32Vectors);

// Float weights are stored as storedWeightType says, FP8 weights and their f32 scales as they
// are declared. Tensor-parallel shards (ds.tp > 1) get one entry per rank, like a real build;
// ranks holding the same part share its fill stream, so they hold the same values.
// Quantized weights (--quant) are refused.
llvm::Expected<SyntheticTable> buildSyntheticTable(ModuleOp module, ::ds::fb::DType floatStorage,
                                                  bool f32Vectors = false);

}  // namespace mlir::ds
