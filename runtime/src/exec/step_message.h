// The leader's message to follower processes (docs/tensor_parallel.md "Multi-node"): each step's
// batch, or the end of the run. Followers check it like any input (sizes bounded by the bytes).
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "exec/model_runner.h"

namespace ds {

std::vector<uint8_t> encodeStepMessage(const StepBatch& batch);
std::vector<uint8_t> encodeStopMessage();
// The KV block count the leader's budget chose, and which artifact it runs (its metadata
// checksum: every process must run the same file).
std::vector<uint8_t> encodeBlocksMessage(int64_t num_kv_blocks, uint64_t artifact_id);
// What a message says: a step (into *batch), stop, or the KV block count and artifact (into
// *blocks, *artifact_id).
enum class StepMessage { Step, Stop, Blocks };
StatusOr<StepMessage> decodeStepMessage(const std::vector<uint8_t>& bytes, StepBatch* batch, int64_t* blocks,
                                        uint64_t* artifact_id = nullptr);

}  // namespace ds
