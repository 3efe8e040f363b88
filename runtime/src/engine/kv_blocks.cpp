// KVBlockManager: all-or-nothing block reservation, lowest-id-first reuse, reference-counted
// prefix caching of full blocks (chained XXH3 keys, LRU eviction), invariant checks.
#include "engine/kv_blocks.h"

#include <xxhash.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <string>

namespace ds {
namespace {

constexpr int64_t kMaxBlocks = std::numeric_limits<int32_t>::max();

std::string seqName(int64_t seq) { return "KV cache: sequence " + std::to_string(seq); }
std::string blockName(int64_t b) { return "KV cache: block " + std::to_string(b); }

}  // namespace

KVBlockManager::KVBlockManager(int64_t num_blocks, int64_t block_size, bool prefix_caching) {
  if (num_blocks < 0 || num_blocks > kMaxBlocks) {
    init_status_ = invalidArgument("KV cache: num_blocks must be in [0, 2^31 - 1], got " +
                                   std::to_string(num_blocks));
    return;
  }
  if (block_size < 1) {
    init_status_ =
        invalidArgument("KV cache: block_size must be >= 1 token, got " + std::to_string(block_size));
    return;
  }
  num_blocks_ = num_blocks;
  block_size_ = block_size;
  prefix_caching_ = prefix_caching;
  // Ascending ids already form a valid min-heap.
  free_.resize(static_cast<size_t>(num_blocks));
  for (int64_t i = 0; i < num_blocks; ++i) free_[i] = static_cast<int32_t>(i);
  blocks_.resize(static_cast<size_t>(num_blocks));
}

StatusOr<KVBlockManager> KVBlockManager::create(int64_t num_blocks, int64_t block_size,
                                                bool prefix_caching) {
  KVBlockManager manager(num_blocks, block_size, prefix_caching);
  DS_RETURN_IF_ERROR(manager.init_status_);
  return manager;
}

int64_t KVBlockManager::blocksForMemory(uint64_t budget_bytes, uint64_t bytes_per_block) {
  if (bytes_per_block == 0) return 0;
  return static_cast<int64_t>(
      std::min<uint64_t>(budget_bytes / bytes_per_block, static_cast<uint64_t>(kMaxBlocks)));
}

int64_t KVBlockManager::addSequence() {
  while (seqs_.count(next_seq_)) ++next_seq_;
  seqs_.emplace(next_seq_, Sequence{});
  return next_seq_++;
}

Status KVBlockManager::addSequence(int64_t seq) {
  if (seq < 0) return invalidArgument(seqName(seq) + ": ids must be >= 0");
  if (!seqs_.emplace(seq, Sequence{}).second)
    return Status(DS_FAILED_PRECONDITION, seqName(seq) + " is already registered");
  return Status::ok();
}

int32_t KVBlockManager::takeBlock() {
  int32_t b;
  if (!free_.empty()) {
    std::pop_heap(free_.begin(), free_.end(), std::greater<int32_t>());
    b = free_.back();
    free_.pop_back();
  } else {
    // The least recently released cached block loses its key.
    auto oldest = evictable_.begin();
    b = oldest->second;
    evictable_.erase(oldest);
    Block& blk = blocks_[b];
    by_key_.erase(blk.key);
    blk.keyed = false;
    blk.tokens.clear();
    ++evictions_;
  }
  blocks_[b].ref = 1;
  return b;
}

void KVBlockManager::unref(int32_t b) {
  Block& blk = blocks_[b];
  if (--blk.ref > 0) return;
  if (blk.keyed) {
    blk.lru = lru_clock_++;
    evictable_.emplace(blk.lru, b);
  } else {
    free_.push_back(b);
    std::push_heap(free_.begin(), free_.end(), std::greater<int32_t>());
  }
}

Status KVBlockManager::reserve(int64_t seq, int64_t total_tokens) {
  DS_RETURN_IF_ERROR(init_status_);
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return notFound(seqName(seq) + " is not registered (call addSequence)");
  if (total_tokens < 0)
    return invalidArgument(seqName(seq) + ": total_tokens must be >= 0, got " +
                           std::to_string(total_tokens));
  Sequence& s = it->second;
  const int64_t have = static_cast<int64_t>(s.blocks.size());
  const int64_t need = blocksFor(total_tokens) - have;
  if (need > freeBlocks()) {
    return Status(DS_OUT_OF_MEMORY,
                  seqName(seq) + " needs " + std::to_string(need) + " more blocks of " +
                      std::to_string(block_size_) + " tokens to hold " +
                      std::to_string(total_tokens) + " tokens, but only " +
                      std::to_string(freeBlocks()) + " of " + std::to_string(num_blocks_) +
                      " blocks are free");
  }
  for (int64_t j = 0; j < need; ++j) s.blocks.push_back(takeBlock());
  s.reserved_tokens = std::max(s.reserved_tokens, total_tokens);
  return Status::ok();
}

bool KVBlockManager::canReserve(int64_t seq, int64_t total_tokens) const {
  if (!init_status_.isOk() || total_tokens < 0) return false;
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return false;
  return blocksFor(total_tokens) - static_cast<int64_t>(it->second.blocks.size()) <= freeBlocks();
}

void KVBlockManager::release(int64_t seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  const std::vector<int32_t>& blocks = it->second.blocks;
  for (auto b = blocks.rbegin(); b != blocks.rend(); ++b) unref(*b);
  seqs_.erase(it);
}

uint64_t KVBlockManager::keyOf(uint64_t parent, const int32_t* tokens) const {
  return XXH3_64bits_withSeed(tokens, static_cast<size_t>(block_size_) * sizeof(int32_t), parent);
}

KVBlockManager::PrefixMatch KVBlockManager::matchPrefix(const std::vector<int32_t>& tokens,
                                                        int64_t max_tokens) const {
  PrefixMatch m;
  if (!prefix_caching_ || !init_status_.isOk()) return m;
  const int64_t full = std::min<int64_t>(max_tokens, static_cast<int64_t>(tokens.size())) / block_size_;
  uint64_t parent = 0;
  for (int64_t j = 0; j < full; ++j) {
    const int32_t* t = tokens.data() + j * block_size_;
    const uint64_t key = keyOf(parent, t);
    auto hit = by_key_.find(key);
    if (hit == by_key_.end()) break;
    const Block& blk = blocks_[hit->second];
    if (blk.parent != parent || !std::equal(blk.tokens.begin(), blk.tokens.end(), t)) break;
    m.blocks.push_back(hit->second);
    m.keys.push_back(key);
    if (blk.ref == 0) ++m.evictable;
    parent = key;
  }
  return m;
}

bool KVBlockManager::canReserveWithPrefix(const PrefixMatch& match, int64_t total_tokens) const {
  if (!init_status_.isOk() || total_tokens < 0) return false;
  const int64_t fresh =
      std::max<int64_t>(blocksFor(total_tokens) - static_cast<int64_t>(match.blocks.size()), 0);
  return fresh + match.evictable <= freeBlocks();
}

Status KVBlockManager::acquirePrefix(int64_t seq, const PrefixMatch& match) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return notFound(seqName(seq) + " is not registered (call addSequence)");
  Sequence& s = it->second;
  if (!s.blocks.empty())
    return Status(DS_FAILED_PRECONDITION, seqName(seq) + " already holds blocks");
  for (size_t j = 0; j < match.blocks.size(); ++j) {
    auto hit = by_key_.find(match.keys[j]);
    if (hit == by_key_.end() || hit->second != match.blocks[j])
      return Status(DS_FAILED_PRECONDITION, blockName(match.blocks[j]) + " is no longer cached");
  }
  for (int32_t b : match.blocks) {
    Block& blk = blocks_[b];
    if (blk.ref++ == 0) evictable_.erase(blk.lru);
  }
  s.blocks = match.blocks;
  s.keys = match.keys;
  s.reserved_tokens = static_cast<int64_t>(s.blocks.size()) * block_size_;
  return Status::ok();
}

Status KVBlockManager::commitFull(int64_t seq, const std::vector<int32_t>& tokens, int64_t computed) {
  if (!prefix_caching_) return Status::ok();
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return notFound(seqName(seq) + " is not registered (call addSequence)");
  Sequence& s = it->second;
  const int64_t full = std::min<int64_t>(
      {computed, static_cast<int64_t>(tokens.size()), s.reserved_tokens}) / block_size_;
  for (int64_t j = static_cast<int64_t>(s.keys.size()); j < full; ++j) {
    const uint64_t parent = j == 0 ? 0 : s.keys[j - 1];
    const int32_t* t = tokens.data() + j * block_size_;
    const uint64_t key = keyOf(parent, t);
    s.keys.push_back(key);
    if (by_key_.count(key)) continue;  // an equal block (or a collision) is cached: stay private
    Block& blk = blocks_[s.blocks[j]];
    blk.keyed = true;
    blk.key = key;
    blk.parent = parent;
    blk.tokens.assign(t, t + block_size_);
    by_key_.emplace(key, s.blocks[j]);
  }
  return Status::ok();
}

const std::vector<int32_t>& KVBlockManager::blockTable(int64_t seq) const {
  static const std::vector<int32_t> kEmpty;
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? kEmpty : it->second.blocks;
}

int64_t KVBlockManager::capacityTokens(int64_t seq) const {
  return static_cast<int64_t>(blockTable(seq).size()) * block_size_;
}

int64_t KVBlockManager::reservedTokens(int64_t seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? 0 : it->second.reserved_tokens;
}

int64_t KVBlockManager::committedBlocks(int64_t seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? 0 : static_cast<int64_t>(it->second.keys.size());
}

int32_t KVBlockManager::refCount(int32_t block) const {
  return block >= 0 && block < num_blocks_ ? blocks_[block].ref : 0;
}

bool KVBlockManager::isCached(int32_t block) const {
  return block >= 0 && block < num_blocks_ && blocks_[block].keyed;
}

Status KVBlockManager::checkInvariants() const {
  enum State : uint8_t { kUnseen, kFree, kCached, kReferenced };
  std::vector<State> state(static_cast<size_t>(num_blocks_), kUnseen);
  std::vector<int64_t> refs(static_cast<size_t>(num_blocks_), 0);
  std::vector<int64_t> holder(static_cast<size_t>(num_blocks_), -1);  // last table (ordinal) seen
  int64_t ordinal = 0;
  for (int32_t b : free_) {
    if (b < 0 || b >= num_blocks_)
      return internalError("KV cache: free pool holds out-of-range block " + std::to_string(b));
    if (state[b] != kUnseen) return internalError(blockName(b) + " is in the free pool twice");
    if (blocks_[b].ref != 0 || blocks_[b].keyed)
      return internalError(blockName(b) + " is free but referenced or keyed");
    state[b] = kFree;
  }
  if (!std::is_heap(free_.begin(), free_.end(), std::greater<int32_t>()))
    return internalError("KV cache: free pool is not a min-heap");
  for (const auto& [stamp, b] : evictable_) {
    if (b < 0 || b >= num_blocks_)
      return internalError("KV cache: cached pool holds out-of-range block " + std::to_string(b));
    if (state[b] != kUnseen) return internalError(blockName(b) + " is both free and cached");
    if (blocks_[b].ref != 0 || !blocks_[b].keyed || blocks_[b].lru != stamp)
      return internalError(blockName(b) + " is evictable but referenced, unkeyed or misstamped");
    state[b] = kCached;
  }
  for (const auto& [seq, s] : seqs_) {
    if (static_cast<int64_t>(s.blocks.size()) != blocksFor(s.reserved_tokens))
      return internalError(seqName(seq) + " holds " + std::to_string(s.blocks.size()) +
                           " blocks for " + std::to_string(s.reserved_tokens) + " tokens");
    if (s.keys.size() > s.blocks.size())
      return internalError(seqName(seq) + " has more committed blocks than blocks");
    for (size_t j = 0; j < s.blocks.size(); ++j) {
      const int32_t b = s.blocks[j];
      if (b < 0 || b >= num_blocks_)
        return internalError(seqName(seq) + " holds out-of-range block " + std::to_string(b));
      if (state[b] == kFree || state[b] == kCached)
        return internalError(seqName(seq) + " holds block " + std::to_string(b) +
                             ", which is also free or cached");
      if (holder[b] == ordinal)
        return internalError(seqName(seq) + " holds block " + std::to_string(b) + " twice");
      holder[b] = ordinal;
      state[b] = kReferenced;
      ++refs[b];
      const Block& blk = blocks_[b];
      if (j >= s.keys.size() && blk.keyed)
        return internalError(seqName(seq) + ": uncommitted entry " + std::to_string(j) +
                             " holds keyed " + blockName(b));
      if (blk.keyed && blk.key != s.keys[j])
        return internalError(seqName(seq) + ": entry " + std::to_string(j) + " key mismatch");
    }
    ++ordinal;
  }
  int64_t referenced = 0;
  for (int64_t b = 0; b < num_blocks_; ++b) {
    const Block& blk = blocks_[b];
    if (state[b] == kUnseen) return internalError(blockName(b) + " is neither free, cached nor referenced");
    if (blk.ref < 0 || blk.ref != refs[b])
      return internalError(blockName(b) + " has refcount " + std::to_string(blk.ref) + " but " +
                           std::to_string(refs[b]) + " tables hold it");
    if (blk.ref > 1 && !blk.keyed) return internalError(blockName(b) + " is shared but not keyed");
    if (blk.keyed) {
      auto hit = by_key_.find(blk.key);
      if (hit == by_key_.end() || hit->second != b)
        return internalError(blockName(b) + " is keyed but not in the key map");
      if (static_cast<int64_t>(blk.tokens.size()) != block_size_)
        return internalError(blockName(b) + " is keyed without a full block of tokens");
    }
    if (state[b] == kReferenced) ++referenced;
  }
  for (const auto& [key, b] : by_key_)
    if (b < 0 || b >= num_blocks_ || !blocks_[b].keyed || blocks_[b].key != key)
      return internalError("KV cache: key map names " + blockName(b) + " under a stale key");
  if (referenced + freeBlocks() != num_blocks_)
    return internalError("KV cache: " + std::to_string(referenced) + " referenced + " +
                         std::to_string(freeBlocks()) + " free/cached blocks != " +
                         std::to_string(num_blocks_));
  return Status::ok();
}

}  // namespace ds
