// Weight upload planning: the device layout of a rank's weights (one allocation, each tensor
// aligned) and the chunks that carry them from the artifact's mapping through pinned staging
// buffers, double-buffered so the host copy of chunk i+1 overlaps the DMA of chunk i. Plain
// data, testable without a GPU (docs/cuda.md "Weight upload"); CudaDevice executes it.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "base/status.h"

namespace ds::hal::cuda {

// One piece of a tensor inside a chunk: bytes [src_offset, src_offset + bytes) of the tensor go
// to staging offset `staging_offset` (= device offset - chunk's device offset).
struct UploadPiece {
  size_t tensor = 0;
  uint64_t src_offset = 0, staging_offset = 0, bytes = 0;
};

// One staging fill and one host-to-device copy of `bytes` at `device_offset` of the weights
// allocation, through staging buffer `slot`. Alignment gaps between pieces are zero-filled.
struct UploadChunk {
  int slot = 0;
  uint64_t device_offset = 0, bytes = 0;
  std::vector<UploadPiece> pieces;  // ascending staging_offset
};

struct UploadPlan {
  std::vector<uint64_t> offsets;  // per tensor, in the weights allocation
  uint64_t total_bytes = 0;       // the allocation (the last tensor's end, aligned)
  uint64_t staging_bytes = 0;     // per slot
  int num_slots = 0;
  std::vector<UploadChunk> chunks;
};

// Lays the tensors (their byte sizes, in order) out back to back, each at a multiple of
// `alignment` (256: what the kernels' 16-byte vector loads and cuMemAlloc give), and cuts the
// whole range into chunks of at most `staging_bytes` (rounded down to the alignment) that
// alternate over `num_slots` staging buffers. A tensor larger than a staging buffer spans
// several chunks; small ones share one. Empty tensors get an offset and no piece.
// INVALID_ARGUMENT for staging_bytes < alignment or num_slots < 1.
// `copied` (empty: every tensor) marks the tensors that are copied: the others (synthetic
// weights, filled on the device afterwards) get their offset but no piece, chunks are trimmed
// to the pieces they carry, and chunks without any are dropped (no DMA for them).
StatusOr<UploadPlan> planWeightUpload(const std::vector<uint64_t>& tensor_bytes,
                                      uint64_t staging_bytes, int num_slots = 2,
                                      uint64_t alignment = 256,
                                      const std::vector<bool>& copied = {});

// Called after each chunk's copy is queued: bytes done so far and the total (ds-run's progress).
using UploadProgress = std::function<void(uint64_t done, uint64_t total)>;

}  // namespace ds::hal::cuda
