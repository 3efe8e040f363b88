// planWeightUpload: the weights' device layout and its staging chunks.
#include "hal/cuda/cuda_upload.h"

#include <algorithm>
#include <string>

namespace ds::hal::cuda {

StatusOr<UploadPlan> planWeightUpload(const std::vector<uint64_t>& tensor_bytes,
                                      uint64_t staging_bytes, int num_slots, uint64_t alignment,
                                      const std::vector<bool>& copied) {
  if (alignment == 0 || staging_bytes < alignment || num_slots < 1)
    return invalidArgument("weight upload: staging buffers of " + std::to_string(staging_bytes) +
                           " bytes x " + std::to_string(num_slots) + " cannot carry " +
                           std::to_string(alignment) + "-byte aligned tensors");
  UploadPlan p;
  p.num_slots = num_slots;
  p.staging_bytes = staging_bytes / alignment * alignment;
  p.offsets.reserve(tensor_bytes.size());
  uint64_t end = 0;
  for (uint64_t bytes : tensor_bytes) {
    p.offsets.push_back(end);
    end = (end + bytes + alignment - 1) / alignment * alignment;
  }
  p.total_bytes = end;
  size_t t = 0;  // first tensor that may still overlap the next chunk
  for (uint64_t d0 = 0; d0 < p.total_bytes; d0 += p.staging_bytes) {
    UploadChunk c;
    c.slot = static_cast<int>(p.chunks.size() % static_cast<size_t>(num_slots));
    c.device_offset = d0;
    c.bytes = std::min(p.staging_bytes, p.total_bytes - d0);
    const uint64_t d1 = d0 + c.bytes;
    for (size_t i = t; i < tensor_bytes.size() && p.offsets[i] < d1; ++i) {
      const uint64_t a = std::max(p.offsets[i], d0);
      const uint64_t b = std::min(p.offsets[i] + tensor_bytes[i], d1);
      if (a < b && (copied.empty() || copied[i])) c.pieces.push_back({i, a - p.offsets[i], a - d0, b - a});
      if (p.offsets[i] + tensor_bytes[i] <= d1) t = i + 1;  // done with it
    }
    if (!copied.empty()) {
      if (c.pieces.empty()) continue;  // all synthetic (or gaps): nothing to copy
      // Only the range the pieces cover (a tensor start is aligned, so the trim keeps alignment).
      const uint64_t lo = c.pieces.front().staging_offset;
      const uint64_t hi = c.pieces.back().staging_offset + c.pieces.back().bytes;
      for (UploadPiece& piece : c.pieces) piece.staging_offset -= lo;
      c.device_offset += lo;
      c.bytes = hi - lo;
    }
    p.chunks.push_back(std::move(c));
  }
  return p;
}

}  // namespace ds::hal::cuda
