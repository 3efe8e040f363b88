// A hand-built llama-style model written as tp = 1, 2, 4 artifacts sliced from the same weights.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "artifact_generated.h"
#include "base/status.h"

namespace ds::testing {

struct TpDims {
  int64_t vocab = 32, hidden = 16, heads = 8, kv_heads = 4, head_dim = 4, inter = 24;
  int64_t layers = 2, block_size = 4;
};

// Full (unsharded) f32 weights, row-major [out, in] like Hugging Face.
struct TpWeights {
  TpDims dims;
  std::vector<float> embed, lm_head, final_norm;
  struct Layer {
    std::vector<float> norm1, wq, bq, wk, wv, wo, norm2, gate, up, down;
  };
  std::vector<Layer> layers;
};
TpWeights randomTpWeights(const TpDims& dims, uint32_t seed);

// One tensor as it will be written; tests may edit these (and tp_size) before writing.
struct TpTensor {
  std::string name;
  fb::DType dtype = fb::DType_F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  fb::QuantKind quant = fb::QuantKind_None;
  int32_t qscale = -1;
  int32_t tp_rank = 0;
  std::vector<uint32_t> shards;  // empty: replicated / not sharded
};

struct TpBuild {
  int tp = 1;
  bool int8_gate = false;  // gate projections as int8 with per-channel scales
  int64_t gathered_cols = 0;  // width of the gathered logits buffer (0: the vocabulary)
  // Runs on the tensor table and the plan's tp_size / Embed rows_per_rank before writing.
  std::function<void(std::vector<TpTensor>& tensors, int32_t& tp_size, int64_t& rows_per_rank)>
      mutate;
};

// The plan for `build.tp` ranks: vocab-parallel embed + AllReduce, column-split q/k/v (+ bias)
// and gate/up, row-split o/down + AllReduce, heads split (GQA KV per rank), vocab-split lm_head
// + AllGather. tp == 1 writes the plain plan (no shards, no collectives).
Status writeTpModel(const std::string& path, const TpWeights& w, const TpBuild& build);

}  // namespace ds::testing
