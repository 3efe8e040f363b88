// Tensor-parallel plan checks and shard resolution shared by the runner's ranks.
#pragma once

#include <cstdint>

#include "base/status.h"

namespace ds {
namespace artifact {
class Artifact;
}

// Largest plan.tp_size the runner accepts.
constexpr int kMaxTensorParallel = 64;

// plan.tp_size in [1, 64]; every Tensor.shards has tp_size entries, shards[0] is the entry
// itself, every index is in the tensor table, and each shard matches the entry (dtype, quant,
// experts, rank of the shape, tp_rank = its position); EmbedParams cover the vocabulary.
// DATA_LOSS naming the file and the tensor (or launch) otherwise.
Status checkTensorParallel(const artifact::Artifact& artifact);

// The tensor index rank `rank` reads for the launch weight `index` (the entry itself when the
// tensor is replicated). Assumes checkTensorParallel passed.
uint32_t shardIndex(const artifact::Artifact& artifact, uint32_t index, int rank);

}  // namespace ds
