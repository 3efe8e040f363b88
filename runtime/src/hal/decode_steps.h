// Replayable decode steps (docs/cuda.md "CUDA graphs"), device-independent: which recorded
// batch size (bucket) a step uses and how a pure decode step is padded up to it. A device that
// records steps (hal::Device::captureBuckets) gets padded steps from exec; plain data, testable
// without a GPU.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"

namespace ds::hal {

// The smallest bucket >= batch, or -1 when the batch is larger than every bucket (the step then
// runs eagerly, launch by launch).
int64_t chooseBucket(const std::vector<int64_t>& buckets, int64_t batch);

// The inputs of one step, as exec's StepBatch holds them (hal does not depend on exec).
struct DecodeInputs {
  std::vector<int32_t> token_ids, positions, token_seq, logit_rows;
  int64_t num_seqs = 0, max_blocks_per_seq = 0;
  std::vector<int32_t> block_table;  // [num_seqs, max_blocks_per_seq]
};

// Whether a step can replay a decode graph: every sequence has exactly one token and every token
// is a logit row (no prefill chunk). Mixed steps run eagerly.
bool isPureDecode(const DecodeInputs& step);
// The same test on a step's index arrays (no copy: exec asks it for every step).
bool isPureDecode(const std::vector<int32_t>& token_seq, const std::vector<int32_t>& logit_rows,
                  int64_t num_seqs);

// Pads a pure decode step of B tokens to `bucket` tokens so a graph captured for that shape
// replays it: every pad token is token 0 at position 0 of a sequence of its own whose block table
// row is [scratch_block, -1, ...], so its K/V write lands in a block the engine never hands out,
// and it is a logit row (the caller reads only the first B rows). The block table is widened to
// `graph_max_blocks` columns (-1 filled), the width the graph was captured with.
// INVALID_ARGUMENT when the step is not a pure decode, is larger than the bucket, or uses more
// blocks per sequence than the graph holds.
Status padDecodeStep(DecodeInputs* step, int64_t bucket, int64_t graph_max_blocks,
                     int32_t scratch_block);

}  // namespace ds::hal
