// KVBlockManager: all-or-nothing block reservation, lowest-id-first reuse, invariant checks.
#include "engine/kv_blocks.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <string>

namespace ds {
namespace {

constexpr int64_t kMaxBlocks = std::numeric_limits<int32_t>::max();

std::string seqName(int64_t seq) { return "KV cache: sequence " + std::to_string(seq); }

}  // namespace

KVBlockManager::KVBlockManager(int64_t num_blocks, int64_t block_size) {
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
  // Ascending ids already form a valid min-heap.
  free_.resize(static_cast<size_t>(num_blocks));
  for (int64_t i = 0; i < num_blocks; ++i) free_[i] = static_cast<int32_t>(i);
}

StatusOr<KVBlockManager> KVBlockManager::create(int64_t num_blocks, int64_t block_size) {
  KVBlockManager manager(num_blocks, block_size);
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
  for (int64_t j = 0; j < need; ++j) {
    std::pop_heap(free_.begin(), free_.end(), std::greater<int32_t>());
    s.blocks.push_back(free_.back());
    free_.pop_back();
  }
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
  for (int32_t b : it->second.blocks) {
    free_.push_back(b);
    std::push_heap(free_.begin(), free_.end(), std::greater<int32_t>());
  }
  seqs_.erase(it);
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

Status KVBlockManager::checkInvariants() const {
  constexpr int64_t kFree = -1, kUnseen = -2;
  std::vector<int64_t> owner(static_cast<size_t>(num_blocks_), kUnseen);
  for (int32_t b : free_) {
    if (b < 0 || b >= num_blocks_)
      return internalError("KV cache: free pool holds out-of-range block " + std::to_string(b));
    if (owner[b] != kUnseen)
      return internalError("KV cache: block " + std::to_string(b) + " is in the free pool twice");
    owner[b] = kFree;
  }
  if (!std::is_heap(free_.begin(), free_.end(), std::greater<int32_t>()))
    return internalError("KV cache: free pool is not a min-heap");
  int64_t owned = 0;
  for (const auto& [seq, s] : seqs_) {
    if (static_cast<int64_t>(s.blocks.size()) != blocksFor(s.reserved_tokens))
      return internalError(seqName(seq) + " holds " + std::to_string(s.blocks.size()) +
                           " blocks for " + std::to_string(s.reserved_tokens) + " tokens");
    for (int32_t b : s.blocks) {
      if (b < 0 || b >= num_blocks_)
        return internalError(seqName(seq) + " holds out-of-range block " + std::to_string(b));
      if (owner[b] == kFree)
        return internalError(seqName(seq) + " holds block " + std::to_string(b) +
                             ", which is also free");
      if (owner[b] != kUnseen)
        return internalError("KV cache: block " + std::to_string(b) + " owned by sequences " +
                             std::to_string(owner[b]) + " and " + std::to_string(seq));
      owner[b] = seq;
      ++owned;
    }
  }
  if (owned + freeBlocks() != num_blocks_) {
    for (int64_t b = 0; b < num_blocks_; ++b)
      if (owner[b] == kUnseen)
        return internalError("KV cache: block " + std::to_string(b) + " is neither free nor owned");
  }
  return Status::ok();
}

}  // namespace ds
