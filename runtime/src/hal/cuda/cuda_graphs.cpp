// Graph buckets and decode padding.
#include "hal/cuda/cuda_graphs.h"

#include <string>

namespace ds::hal::cuda {

std::vector<int64_t> graphBatchBuckets(int64_t max_batch) {
  std::vector<int64_t> out;
  for (int64_t b : {1, 2, 4})
    if (b <= max_batch) out.push_back(b);
  for (int64_t b = 8; b <= max_batch && b <= 256; b += 8) out.push_back(b);
  for (int64_t b = 272; b <= max_batch; b += 16) out.push_back(b);
  if (max_batch >= 1 && out.back() != max_batch) out.push_back(max_batch);
  return out;
}

}  // namespace ds::hal::cuda
