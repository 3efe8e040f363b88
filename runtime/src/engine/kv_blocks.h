// Paged KV-cache bookkeeping: fixed-size blocks, per-sequence block tables, a free pool.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "base/status.h"

namespace ds {

// Plain data, no device memory: the engine asks it which physical KV blocks a sequence owns
// and passes the block tables to the attention kernels (vLLM's block manager, llama.cpp's
// llama-kv-cells). Not thread-safe; the scheduler owns it.
//
// Invariants (checked by checkInvariants()):
//  1. Every block id in [0, numBlocks()) is either in the free pool or owned by exactly one
//     sequence, never both, never twice.
//  2. A sequence's block table is ordered by position: entry j holds token positions
//     [j * blockSize(), (j + 1) * blockSize()).
//  3. A sequence holds exactly ceil(reservedTokens / blockSize()) blocks: reserve() grows
//     tables, only release() shrinks them.
//  4. freeBlocks() + the blocks held by all sequences == numBlocks().
// Allocation takes the lowest free ids first (also after a release), so block placement is
// a deterministic function of the call sequence.
class KVBlockManager {
 public:
  KVBlockManager() = default;  // no blocks; for StatusOr
  // Invalid arguments (num_blocks < 0 or > INT32_MAX, block_size < 1) give a manager with
  // no blocks whose reserve() returns the INVALID_ARGUMENT status; prefer create().
  KVBlockManager(int64_t num_blocks, int64_t block_size);
  static StatusOr<KVBlockManager> create(int64_t num_blocks, int64_t block_size);

  // How many blocks of `bytes_per_block` fit in `budget_bytes` (capped at INT32_MAX, since
  // block ids are int32; 0 if bytes_per_block is 0).
  static int64_t blocksForMemory(uint64_t budget_bytes, uint64_t bytes_per_block);

  // Registers a new, empty sequence and returns its id (ids count up from 0, skipping ids
  // already taken by the caller-given form).
  int64_t addSequence();
  // Registers a caller-chosen id (e.g. the request id). INVALID_ARGUMENT if negative,
  // FAILED_PRECONDITION if already registered.
  Status addSequence(int64_t seq);
  bool hasSequence(int64_t seq) const { return seqs_.count(seq) != 0; }

  // Grows `seq`'s table so it can hold `total_tokens` tokens (never shrinks it).
  // All-or-nothing: if the pool is short, nothing changes and the status is OUT_OF_MEMORY.
  // NOT_FOUND for an unknown sequence, INVALID_ARGUMENT for total_tokens < 0.
  Status reserve(int64_t seq, int64_t total_tokens);
  // Whether reserve(seq, total_tokens) would succeed now.
  bool canReserve(int64_t seq, int64_t total_tokens) const;
  // Returns the sequence's blocks to the pool and forgets the sequence; unknown ids are a no-op.
  void release(int64_t seq);

  // Physical block ids by position; empty for an unknown sequence.
  const std::vector<int32_t>& blockTable(int64_t seq) const;
  // Tokens the sequence's blocks can hold (blocks * block size); 0 for an unknown sequence.
  int64_t capacityTokens(int64_t seq) const;
  // Largest total_tokens reserved so far; 0 for an unknown sequence.
  int64_t reservedTokens(int64_t seq) const;

  int64_t freeBlocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t numBlocks() const { return num_blocks_; }
  int64_t blockSize() const { return block_size_; }
  int64_t numSequences() const { return static_cast<int64_t>(seqs_.size()); }

  // Verifies the invariants above; INTERNAL naming the first violation.
  Status checkInvariants() const;

 private:
  struct Sequence {
    std::vector<int32_t> blocks;
    int64_t reserved_tokens = 0;
  };
  int64_t blocksFor(int64_t tokens) const { return tokens / block_size_ + (tokens % block_size_ != 0); }

  int64_t num_blocks_ = 0;
  int64_t block_size_ = 1;
  Status init_status_;
  // Min-heap (std::greater) so the lowest free id comes out first.
  std::vector<int32_t> free_;
  std::unordered_map<int64_t, Sequence> seqs_;
  int64_t next_seq_ = 0;
};

}  // namespace ds
