// Graph buckets and decode padding (device-independent).
#include "hal/decode_steps.h"

#include <string>

namespace ds::hal {

int64_t chooseBucket(const std::vector<int64_t>& buckets, int64_t batch) {
  if (batch < 1) return -1;
  for (int64_t b : buckets)  // ascending
    if (b >= batch) return b;
  return -1;
}

bool isPureDecode(const std::vector<int32_t>& token_seq, const std::vector<int32_t>& logit_rows,
                  int64_t num_seqs) {
  const size_t T = token_seq.size();
  if (T == 0 || static_cast<int64_t>(T) != num_seqs || logit_rows.size() != T) return false;
  std::vector<char> seen_seq(T, 0), seen_row(T, 0);
  for (size_t t = 0; t < T; ++t) {
    const int32_t q = token_seq[t], r = logit_rows[t];
    if (q < 0 || static_cast<size_t>(q) >= T || seen_seq[q]) return false;
    if (r < 0 || static_cast<size_t>(r) >= T || seen_row[r]) return false;
    seen_seq[q] = seen_row[r] = 1;
  }
  return true;
}

bool isPureDecode(const DecodeInputs& s) {
  return s.token_ids.size() == s.token_seq.size() && isPureDecode(s.token_seq, s.logit_rows, s.num_seqs);
}

Status padDecodeStep(DecodeInputs* s, int64_t bucket, int64_t graph_max_blocks,
                     int32_t scratch_block) {
  const int64_t B = static_cast<int64_t>(s->token_ids.size());
  if (!isPureDecode(*s))
    return invalidArgument("a step of " + std::to_string(B) + " tokens of " +
                           std::to_string(s->num_seqs) +
                           " sequences is not a pure decode step; it cannot replay a decode graph");
  if (B > bucket)
    return invalidArgument("a decode step of " + std::to_string(B) + " sequences does not fit the " +
                           "graph bucket of " + std::to_string(bucket));
  if (s->max_blocks_per_seq > graph_max_blocks)
    return invalidArgument("the step's block tables have " + std::to_string(s->max_blocks_per_seq) +
                           " columns; the decode graph was captured with " +
                           std::to_string(graph_max_blocks));
  std::vector<int32_t> table(static_cast<size_t>(bucket * graph_max_blocks), -1);
  for (int64_t q = 0; q < B; ++q)
    for (int64_t c = 0; c < s->max_blocks_per_seq; ++c)
      table[q * graph_max_blocks + c] = s->block_table[q * s->max_blocks_per_seq + c];
  for (int64_t q = B; q < bucket; ++q) {
    table[q * graph_max_blocks] = scratch_block;
    s->token_ids.push_back(0);
    s->positions.push_back(0);
    s->token_seq.push_back(static_cast<int32_t>(q));
    s->logit_rows.push_back(static_cast<int32_t>(q));
  }
  s->block_table = std::move(table);
  s->num_seqs = bucket;
  s->max_blocks_per_seq = graph_max_blocks;
  return Status::ok();
}

}  // namespace ds::hal
