// Paged KV-cache bookkeeping: fixed-size blocks, per-sequence block tables, a free pool, and
// (optionally) a prefix cache of full blocks shared by reference count.
#pragma once

#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

#include "base/status.h"

namespace ds {

// Plain data, no device memory: the engine asks it which physical KV blocks a sequence owns
// and passes the block tables to the attention kernels (vLLM's block manager, llama.cpp's
// llama-kv-cells). Not thread-safe; the scheduler owns it.
//
// Every block is in exactly one of three states:
//   free       refcount 0, no key, in the free pool (a min-heap: lowest id first);
//   cached     refcount 0, keyed (its tokens are known), evictable in LRU order;
//   referenced refcount > 0 = the number of sequence tables that hold it.
// Invariants (checked by checkInvariants()):
//  1. Every block id in [0, numBlocks()) is in exactly one state; a table never holds a block
//     twice; a block's refcount equals the number of tables holding it.
//  2. A sequence's block table is ordered by position: entry j holds token positions
//     [j * blockSize(), (j + 1) * blockSize()).
//  3. A sequence holds exactly ceil(reservedTokens / blockSize()) blocks: reserve() and
//     acquirePrefix() grow tables, only release() shrinks them.
//  4. freeBlocks() (free + cached) + the distinct referenced blocks == numBlocks().
//  5. Only full blocks are keyed, and only keyed blocks are shared: entry j of a table is
//     keyed iff j < the sequence's committed full blocks and the cache took it (a duplicate
//     of an already-keyed block stays private); entries past the committed ones are private
//     (refcount 1, no key). Keys map one-to-one to blocks.
// A block's key is XXH3-64 of its token ids seeded with its parent block's key (0 for the
// first block), so a key names the whole prefix up to the block's end. A lookup also compares
// the stored tokens and parent key, so a hash collision can only cost a miss, never a wrong
// block. Allocation takes the lowest free id first and evicts the least recently released
// cached block only when no free block is left: placement is a deterministic function of the
// call sequence.
class KVBlockManager {
 public:
  KVBlockManager() = default;  // no blocks; for StatusOr
  // Invalid arguments (num_blocks < 0 or > INT32_MAX, block_size < 1) give a manager with
  // no blocks whose reserve() returns the INVALID_ARGUMENT status; prefer create().
  KVBlockManager(int64_t num_blocks, int64_t block_size, bool prefix_caching = false);
  static StatusOr<KVBlockManager> create(int64_t num_blocks, int64_t block_size,
                                         bool prefix_caching = false);

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

  // Grows `seq`'s table so it can hold `total_tokens` tokens (never shrinks it), evicting
  // cached blocks when no free one is left. All-or-nothing: if free + cached blocks are short,
  // nothing changes and the status is OUT_OF_MEMORY. NOT_FOUND for an unknown sequence,
  // INVALID_ARGUMENT for total_tokens < 0.
  Status reserve(int64_t seq, int64_t total_tokens);
  // Whether reserve(seq, total_tokens) would succeed now.
  bool canReserve(int64_t seq, int64_t total_tokens) const;
  // Drops the sequence's references and forgets it: blocks no longer referenced become cached
  // (keyed ones, last block first in LRU order, so a prefix outlives its tails) or free;
  // unknown ids are a no-op.
  void release(int64_t seq);

  // Prefix caching. The cached full blocks that start `tokens`, at most `max_tokens` tokens'
  // worth (the caller keeps at least the last prompt token to compute); empty when caching is
  // off. `evictable` counts the matched blocks that are cached (not referenced): taking them
  // removes them from freeBlocks().
  struct PrefixMatch {
    std::vector<int32_t> blocks;
    std::vector<uint64_t> keys;
    int64_t evictable = 0;
  };
  PrefixMatch matchPrefix(const std::vector<int32_t>& tokens, int64_t max_tokens) const;
  // Whether an empty sequence that takes `match` could then reserve `total_tokens`.
  bool canReserveWithPrefix(const PrefixMatch& match, int64_t total_tokens) const;
  // Puts a match from matchPrefix (made since the last change) into `seq`'s empty table and
  // takes a reference on each block. FAILED_PRECONDITION if the table is not empty or a block
  // is no longer cached under its key.
  Status acquirePrefix(int64_t seq, const PrefixMatch& match);
  // Keys the sequence's blocks that became full: those entirely within tokens[0, computed),
  // whose K/V are written and final. A no-op with caching off.
  Status commitFull(int64_t seq, const std::vector<int32_t>& tokens, int64_t computed);
  bool prefixCaching() const { return prefix_caching_; }

  // Physical block ids by position; empty for an unknown sequence.
  const std::vector<int32_t>& blockTable(int64_t seq) const;
  // Tokens the sequence's blocks can hold (blocks * block size); 0 for an unknown sequence.
  int64_t capacityTokens(int64_t seq) const;
  // Largest total_tokens reserved so far; 0 for an unknown sequence.
  int64_t reservedTokens(int64_t seq) const;
  // Full blocks of the sequence that commitFull has seen.
  int64_t committedBlocks(int64_t seq) const;

  // Blocks a reservation can take: free plus cached (evictable).
  int64_t freeBlocks() const { return static_cast<int64_t>(free_.size() + evictable_.size()); }
  int64_t cachedBlocks() const { return static_cast<int64_t>(evictable_.size()); }
  int64_t usedBlocks() const { return num_blocks_ - freeBlocks(); }
  int64_t numBlocks() const { return num_blocks_; }
  int64_t blockSize() const { return block_size_; }
  int64_t numSequences() const { return static_cast<int64_t>(seqs_.size()); }
  int32_t refCount(int32_t block) const;
  bool isCached(int32_t block) const;  // keyed (referenced or not)
  int64_t evictions() const { return evictions_; }

  // Verifies the invariants above; INTERNAL naming the first violation.
  Status checkInvariants() const;

 private:
  struct Sequence {
    std::vector<int32_t> blocks;
    std::vector<uint64_t> keys;  // chain keys of the committed full blocks
    int64_t reserved_tokens = 0;
  };
  struct Block {
    int32_t ref = 0;
    bool keyed = false;
    uint64_t key = 0, parent = 0;
    uint64_t lru = 0;             // release stamp while cached
    std::vector<int32_t> tokens;  // the block's token ids while keyed
  };
  int64_t blocksFor(int64_t tokens) const { return tokens / block_size_ + (tokens % block_size_ != 0); }
  int32_t takeBlock();          // a fresh private block: lowest free id, else evict LRU
  void unref(int32_t block);
  uint64_t keyOf(uint64_t parent, const int32_t* tokens) const;

  int64_t num_blocks_ = 0;
  int64_t block_size_ = 1;
  bool prefix_caching_ = false;
  Status init_status_;
  // Min-heap (std::greater) so the lowest free id comes out first.
  std::vector<int32_t> free_;
  std::vector<Block> blocks_;
  std::unordered_map<uint64_t, int32_t> by_key_;
  std::map<uint64_t, int32_t> evictable_;  // lru stamp -> cached block, oldest first
  uint64_t lru_clock_ = 0;
  int64_t evictions_ = 0;
  std::unordered_map<int64_t, Sequence> seqs_;
  int64_t next_seq_ = 0;
};

}  // namespace ds
