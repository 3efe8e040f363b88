// Derived facts about an artifact's metadata: dtype sizes, KV cache bytes per token, weight bytes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "artifact_generated.h"

namespace ds::artifact {

// Bytes per element; 0 for a value outside the enum (the metadata checks reject those).
size_t dtypeSize(fb::DType dtype);
// Bytes a tensor's data takes: shape x dtype size, except I4 (two codes per byte, rows padded).
bool tensorBytes(const fb::Tensor& t, uint64_t* out);

// Elements of a tensor's shape; false if a dim is negative or the product overflows.
bool shapeElements(const flatbuffers::Vector<int64_t>* shape, uint64_t* out);

// KV cache bytes one token occupies across all layers:
//   GQA: layers * kv_heads * (head_dim + v_dim) * dtype size (v_dim 0 means head_dim)
//   MLA: layers * (rank + rope_dim) * dtype size (the compressed latent plus the shared rope key)
//   None: 0.
uint64_t kvBytesPerToken(const fb::KVCacheSpec& spec);

// Sum of segment sizes: the memory the weights need once mapped/uploaded.
uint64_t weightBytes(const fb::Artifact& meta);

}  // namespace ds::artifact
