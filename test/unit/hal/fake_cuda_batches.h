// Step batches of one sequence for the fake-driver tests (cuda_fake_prefill_test.cpp,
// cuda_fake_moe_prefill_test.cpp, cuda_nccl_test.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "exec/model_runner.h"

namespace ds::test {

// Token ids first, first + 1, ... wrapping after `span` ids (first + t % span).
inline std::vector<int32_t> tokenIds(int32_t n, int32_t first, int32_t span) {
  std::vector<int32_t> ids;
  for (int32_t t = 0; t < n; ++t) ids.push_back(first + t % span);
  return ids;
}

// Sequence 0's tokens `ids` at positions first_pos, first_pos + 1, ..., logits of the last one,
// and a block table of `blocks` consecutive blocks from `first_block`.
inline StepBatch sequenceStep(const std::vector<int32_t>& ids, int32_t first_pos, int64_t blocks,
                              int32_t first_block = 0) {
  StepBatch b;
  for (size_t t = 0; t < ids.size(); ++t) {
    b.token_ids.push_back(ids[t]);
    b.positions.push_back(first_pos + static_cast<int32_t>(t));
    b.token_seq.push_back(0);
  }
  b.logit_rows = {static_cast<int32_t>(ids.size()) - 1};
  b.num_seqs = 1;
  b.max_blocks_per_seq = blocks;
  for (int64_t i = 0; i < blocks; ++i) b.block_table.push_back(first_block + static_cast<int32_t>(i));
  return b;
}

}  // namespace ds::test
