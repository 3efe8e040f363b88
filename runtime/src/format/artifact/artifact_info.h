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

// The KV cache's size, the one formula every tool and device uses (docs/artifact.md). One slot
// (token) of one layer:
//   GQA: kv_heads * (head_dim + v_dim) * dtype size, plus kv_heads * 2 f32 scales when the cache
//        is quantized (int8 / fp8: one scale per written K and V vector)
//   MLA: (rank + rope_dim) * dtype size, plus 2 f32 scales when quantized (c_kv's and k_rope's)
//   None: 0.
// Values are one tensor-parallel rank's (the spec is per rank).
uint64_t kvBytesPerSlot(const fb::KVCacheSpec& spec);
// One block over all layers: kvBytesPerSlot * block_size * num_layers.
uint64_t kvBytesPerBlock(const fb::KVCacheSpec& spec);
// One token over all layers: kvBytesPerSlot * num_layers.
uint64_t kvBytesPerToken(const fb::KVCacheSpec& spec);

// Sum of segment sizes plus the bytes of synthetic tensors (filled at load): the memory the
// weights need once mapped/uploaded.
uint64_t weightBytes(const fb::Artifact& meta);

}  // namespace ds::artifact
