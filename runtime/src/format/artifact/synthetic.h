// Synthetic weights (ds-compile --weights random): the fill that turns a tensor's spec and the
// artifact's seed into values, the same on every device and thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "artifact_generated.h"

namespace ds::artifact {

// Tensor.segment of a synthetic tensor: no data in the file. A runtime that predates synthetic
// weights refuses it as an out-of-range segment instead of reading another tensor's bytes.
constexpr uint32_t kNoSegment = 0xFFFFFFFFu;

inline bool isSynthetic(const fb::Tensor& t) { return t.synthetic() != nullptr; }

// An approximately standard normal value for element `index` of stream `stream`: the sum of four
// 16-bit uniforms of one splitmix64 hash of (seed, stream, index), centred and scaled to unit
// variance (Irwin-Hall, n = 4). Bounded by +-3.47, so always finite; no log/sin, so a fill runs
// at memory bandwidth. Counter-based: any element can be computed alone, in any order.
float syntheticNormal(uint64_t seed, uint64_t stream, uint64_t index);

struct SyntheticSpec {
  fb::DType dtype = fb::DType_F32;
  float mean = 0.0f;
  float std = 0.0f;
  uint64_t stream = 0;
};

// Writes elements [first, first + count) of a synthetic tensor into `dst` (which points at
// element `first`), every byte written. F32/F16/BF16: mean + std * n; F8_E4M3: the same clamped
// to +-448 then encoded (never the NaN code); I8: rounded and clamped to [-127, 127]; I32:
// rounded. I4 (two codes per byte, rows padded to a byte) is filled by fillSyntheticTensor.
void fillSyntheticRange(const SyntheticSpec& spec, uint64_t seed, uint64_t first, uint64_t count,
                        uint8_t* dst);

// Fills a whole tensor of `nbytes` bytes (shape `shape`, rows of the last dim for I4) on up to
// `threads` threads (0: the hardware's), every page written. Deterministic for any thread count.
void fillSyntheticTensor(const SyntheticSpec& spec, uint64_t seed,
                         const std::vector<int64_t>& shape, uint8_t* dst, uint64_t nbytes,
                         unsigned threads = 0);

// The spec of a synthetic tensor entry.
SyntheticSpec syntheticSpec(const fb::Tensor& t);

}  // namespace ds::artifact
