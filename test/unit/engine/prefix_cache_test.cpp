// KVBlockManager prefix caching: chained keys, sharing by reference count, cached blocks that
// outlive their sequences, LRU eviction (free blocks first, tails before heads), duplicates,
// the max_tokens cap, and a seeded random walk of add / match+acquire / reserve / commit /
// release / abort checked after every operation against an independent model: refcounts,
// the three block states, exact capacity accounting, and the tokens every block holds.
#include "engine/kv_blocks.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <random>

namespace ds {
namespace {

using Tokens = std::vector<int32_t>;

Tokens iota(int n, int from = 1) {
  Tokens t(n);
  for (int i = 0; i < n; ++i) t[i] = from + i;
  return t;
}

TEST(PrefixCacheTest, FullBlocksAreSharedAndOutliveTheirSequence) {
  KVBlockManager kv(8, 4, /*prefix_caching=*/true);
  const Tokens a = iota(10);
  ASSERT_TRUE(kv.addSequence(0).isOk());
  ASSERT_TRUE(kv.reserve(0, 10).isOk());           // blocks 0 1 2
  ASSERT_TRUE(kv.commitFull(0, a, 10).isOk());     // 0 and 1 are full; 2 holds 2 tokens
  EXPECT_TRUE(kv.isCached(0));
  EXPECT_TRUE(kv.isCached(1));
  EXPECT_FALSE(kv.isCached(2));
  EXPECT_EQ(kv.committedBlocks(0), 2);
  kv.release(0);
  EXPECT_EQ(kv.cachedBlocks(), 2);
  EXPECT_EQ(kv.freeBlocks(), 8);  // cached blocks count as free for reservations
  EXPECT_EQ(kv.usedBlocks(), 0);
  ASSERT_TRUE(kv.checkInvariants().isOk()) << kv.checkInvariants().toString();

  KVBlockManager::PrefixMatch m = kv.matchPrefix(a, 9);
  EXPECT_EQ(m.blocks, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(m.evictable, 2);
  EXPECT_TRUE(kv.canReserveWithPrefix(m, 10));
  ASSERT_TRUE(kv.addSequence(1).isOk());
  ASSERT_TRUE(kv.acquirePrefix(1, m).isOk());
  EXPECT_EQ(kv.reservedTokens(1), 8);
  EXPECT_EQ(kv.cachedBlocks(), 0);
  ASSERT_TRUE(kv.reserve(1, 9).isOk());
  EXPECT_EQ(kv.blockTable(1), (std::vector<int32_t>{0, 1, 2}));
  ASSERT_TRUE(kv.addSequence(2).isOk());
  m = kv.matchPrefix(a, 9);
  EXPECT_EQ(m.evictable, 0);
  ASSERT_TRUE(kv.acquirePrefix(2, m).isOk());
  EXPECT_EQ(kv.refCount(0), 2);
  EXPECT_EQ(kv.acquirePrefix(2, m).code(), DS_FAILED_PRECONDITION);  // table not empty
  ASSERT_TRUE(kv.checkInvariants().isOk()) << kv.checkInvariants().toString();
  kv.release(1);
  EXPECT_EQ(kv.refCount(0), 1);
  EXPECT_EQ(kv.cachedBlocks(), 0);
  kv.release(2);
  EXPECT_EQ(kv.cachedBlocks(), 2);
  ASSERT_TRUE(kv.checkInvariants().isOk());
}

TEST(PrefixCacheTest, KeysChainThePrefixAndTheCapHolds) {
  KVBlockManager kv(8, 4, true);
  const Tokens a = iota(12);
  ASSERT_TRUE(kv.addSequence(0).isOk());
  ASSERT_TRUE(kv.reserve(0, 12).isOk());
  ASSERT_TRUE(kv.commitFull(0, a, 12).isOk());
  EXPECT_EQ(kv.matchPrefix(a, 12).blocks.size(), 3u);
  EXPECT_EQ(kv.matchPrefix(a, 11).blocks.size(), 2u);  // the caller keeps a token to compute
  EXPECT_EQ(kv.matchPrefix(a, 3).blocks.size(), 0u);
  Tokens b = a;
  b[5] = 77;  // second block differs: the third block's key differs too (chained)
  EXPECT_EQ(kv.matchPrefix(b, 12).blocks.size(), 1u);
  Tokens c = iota(4, 5);  // a's second block alone, at position 0: another key
  EXPECT_EQ(kv.matchPrefix(c, 4).blocks.size(), 0u);
  KVBlockManager off(8, 4, false);
  ASSERT_TRUE(off.addSequence(0).isOk());
  ASSERT_TRUE(off.reserve(0, 12).isOk());
  ASSERT_TRUE(off.commitFull(0, a, 12).isOk());
  EXPECT_FALSE(off.isCached(0));
  EXPECT_TRUE(off.matchPrefix(a, 12).blocks.empty());
  off.release(0);
  EXPECT_EQ(off.cachedBlocks(), 0);
}

TEST(PrefixCacheTest, EvictsOnlyWhenNoFreeBlockIsLeftTailsFirst) {
  KVBlockManager kv(4, 2, true);
  const Tokens a = iota(4);  // two full blocks
  ASSERT_TRUE(kv.addSequence(0).isOk());
  ASSERT_TRUE(kv.reserve(0, 4).isOk());  // 0 1
  ASSERT_TRUE(kv.commitFull(0, a, 4).isOk());
  kv.release(0);  // 1 (tail) is stamped before 0
  ASSERT_TRUE(kv.addSequence(1).isOk());
  ASSERT_TRUE(kv.reserve(1, 4).isOk());  // free 2 3 first: the cache survives
  EXPECT_EQ(kv.blockTable(1), (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(kv.evictions(), 0);
  EXPECT_EQ(kv.matchPrefix(a, 4).blocks.size(), 2u);
  ASSERT_TRUE(kv.reserve(1, 5).isOk());  // evicts the tail block 1
  EXPECT_EQ(kv.blockTable(1).back(), 1);
  EXPECT_EQ(kv.evictions(), 1);
  EXPECT_EQ(kv.matchPrefix(a, 4).blocks, (std::vector<int32_t>{0}));
  EXPECT_FALSE(kv.canReserve(1, 9));
  EXPECT_EQ(kv.reserve(1, 9).code(), DS_OUT_OF_MEMORY);
  ASSERT_TRUE(kv.reserve(1, 8).isOk());
  EXPECT_TRUE(kv.matchPrefix(a, 4).blocks.empty());
  ASSERT_TRUE(kv.checkInvariants().isOk()) << kv.checkInvariants().toString();
}

TEST(PrefixCacheTest, AnEqualBlockComputedTwiceStaysPrivate) {
  KVBlockManager kv(8, 4, true);
  const Tokens a = iota(6);
  for (int64_t s : {0, 1}) {
    ASSERT_TRUE(kv.addSequence(s).isOk());
    ASSERT_TRUE(kv.reserve(s, 6).isOk());
  }
  ASSERT_TRUE(kv.commitFull(0, a, 6).isOk());
  ASSERT_TRUE(kv.commitFull(1, a, 6).isOk());
  EXPECT_TRUE(kv.isCached(kv.blockTable(0)[0]));
  EXPECT_FALSE(kv.isCached(kv.blockTable(1)[0]));
  ASSERT_TRUE(kv.checkInvariants().isOk()) << kv.checkInvariants().toString();
  kv.release(1);
  EXPECT_EQ(kv.cachedBlocks(), 0);  // its duplicate went back to the free pool
  kv.release(0);
  EXPECT_EQ(kv.cachedBlocks(), 1);
  ASSERT_TRUE(kv.checkInvariants().isOk());
}

TEST(PrefixCacheTest, AStaleMatchIsRefused) {
  KVBlockManager kv(2, 2, true);
  const Tokens a = iota(2);
  ASSERT_TRUE(kv.addSequence(0).isOk());
  ASSERT_TRUE(kv.reserve(0, 2).isOk());
  ASSERT_TRUE(kv.commitFull(0, a, 2).isOk());
  kv.release(0);
  const KVBlockManager::PrefixMatch m = kv.matchPrefix(iota(3), 2);
  ASSERT_EQ(m.blocks.size(), 1u);
  ASSERT_TRUE(kv.addSequence(1).isOk());
  ASSERT_TRUE(kv.reserve(1, 4).isOk());  // evicts the cached block
  ASSERT_TRUE(kv.addSequence(2).isOk());
  EXPECT_EQ(kv.acquirePrefix(2, m).code(), DS_FAILED_PRECONDITION);
  EXPECT_TRUE(kv.blockTable(2).empty());
  ASSERT_TRUE(kv.checkInvariants().isOk());
}

// The random walk. Sequences draw their tokens from a few shared prefixes plus random
// suffixes over a small alphabet, so hits, duplicates and evictions all happen. The model
// keeps each block's written tokens ("K/V") and checks that a hit hands out blocks holding
// exactly the sequence's tokens; refcounts and states are recomputed from the tables.
TEST(PrefixCacheTest, RandomOperationsKeepInvariants) {
  constexpr int64_t kBlocks = 32, kBlockSize = 4;
  KVBlockManager kv(kBlocks, kBlockSize, true);
  std::vector<Tokens> content(kBlocks, Tokens(kBlockSize, -1));
  struct Seq {
    Tokens tokens;
    int64_t computed = 0;
  };
  std::map<int64_t, Seq> seqs;
  const std::vector<Tokens> prefixes = {iota(8, 100), iota(6, 200), iota(11, 300)};
  std::mt19937_64 rng(20261126);
  int64_t next = 0, hits = 0, acquired = 0, oom = 0, released = 0, evict_seen = 0;

  for (int step = 0; step < 20000; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const int op = static_cast<int>(rng() % 10);
    if (op < 2 || seqs.empty()) {  // add, taking what the cache has
      Seq s;
      s.tokens = prefixes[rng() % prefixes.size()];
      const int extra = static_cast<int>(rng() % 12);
      for (int i = 0; i < extra; ++i) s.tokens.push_back(static_cast<int32_t>(rng() % 3));
      const KVBlockManager::PrefixMatch m =
          kv.matchPrefix(s.tokens, static_cast<int64_t>(s.tokens.size()) - 1);
      const int64_t id = next++;
      ASSERT_TRUE(kv.addSequence(id).isOk());
      if (!m.blocks.empty()) {
        const int64_t free_before = kv.freeBlocks();
        ASSERT_TRUE(kv.acquirePrefix(id, m).isOk());
        ASSERT_EQ(kv.freeBlocks(), free_before - m.evictable);
        ++hits;
        for (size_t j = 0; j < m.blocks.size(); ++j)
          for (int64_t k = 0; k < kBlockSize; ++k)
            ASSERT_EQ(content[m.blocks[j]][k], s.tokens[j * kBlockSize + k]) << "hit on a wrong block";
        s.computed = static_cast<int64_t>(m.blocks.size()) * kBlockSize;
      }
      seqs[id] = s;
    } else {
      auto it = seqs.begin();
      std::advance(it, static_cast<long>(rng() % seqs.size()));
      const int64_t id = it->first;
      Seq& s = it->second;
      if (op < 8) {  // compute a chunk: reserve, "write" K/V, commit; append tokens when done
        const int64_t known = static_cast<int64_t>(s.tokens.size());
        if (s.computed == known)
          for (int i = 1 + static_cast<int>(rng() % 6); i > 0; --i)
            s.tokens.push_back(static_cast<int32_t>(rng() % 3));
        const int64_t take = 1 + static_cast<int64_t>(rng() % (s.tokens.size() - s.computed));
        const int64_t free_before = kv.freeBlocks();
        const int64_t need = (s.computed + take + kBlockSize - 1) / kBlockSize -
                             static_cast<int64_t>(kv.blockTable(id).size());
        const Status st = kv.reserve(id, s.computed + take);
        ASSERT_EQ(st.isOk(), need <= free_before) << st.toString();
        if (!st.isOk()) {
          ASSERT_EQ(st.code(), DS_OUT_OF_MEMORY);
          ++oom;
        } else {
          ASSERT_EQ(kv.freeBlocks(), free_before - std::max<int64_t>(need, 0));
          const std::vector<int32_t>& table = kv.blockTable(id);
          for (int64_t p = s.computed; p < s.computed + take; ++p) {
            const int32_t b = table[p / kBlockSize];
            ASSERT_EQ(kv.refCount(b), 1) << "a write into a shared block";
            ASSERT_FALSE(kv.isCached(b)) << "a write into a keyed block";
            content[b][p % kBlockSize] = s.tokens[p];
          }
          s.computed += take;
          ASSERT_TRUE(kv.commitFull(id, s.tokens, s.computed).isOk());
          ++acquired;
        }
      } else {  // release (finish, preempt or abort: the same for the block manager)
        kv.release(id);
        seqs.erase(it);
        ++released;
      }
    }
    if (kv.evictions() > evict_seen) evict_seen = kv.evictions();
    // Invariants, recomputed independently from the tables.
    ASSERT_TRUE(kv.checkInvariants().isOk()) << kv.checkInvariants().toString();
    std::vector<int32_t> refs(kBlocks, 0);
    for (const auto& [id, s] : seqs) {
      const std::vector<int32_t>& table = kv.blockTable(id);
      ASSERT_GE(static_cast<int64_t>(table.size()) * kBlockSize, s.computed);
      for (int32_t b : table) ++refs[b];
      for (int64_t p = 0; p < s.computed; ++p)  // every computed token is where the table says
        ASSERT_EQ(content[table[p / kBlockSize]][p % kBlockSize], s.tokens[p]) << "seq " << id;
    }
    int64_t referenced = 0, cached = 0, free_ = 0;
    for (int32_t b = 0; b < kBlocks; ++b) {
      ASSERT_EQ(kv.refCount(b), refs[b]) << "block " << b;
      ASSERT_GE(kv.refCount(b), 0);
      if (refs[b] > 0) ++referenced;
      else if (kv.isCached(b)) ++cached;
      else ++free_;
      if (refs[b] > 1) {
        ASSERT_TRUE(kv.isCached(b)) << "shared block " << b << " is not keyed";
      }
    }
    ASSERT_EQ(cached, kv.cachedBlocks());
    ASSERT_EQ(free_ + cached, kv.freeBlocks());
    ASSERT_EQ(referenced + free_ + cached, kBlocks);
    ASSERT_EQ(kv.usedBlocks(), referenced);
  }
  std::printf("hits %lld, chunks %lld, out of memory %lld, releases %lld, evictions %lld\n",
              (long long)hits, (long long)acquired, (long long)oom, (long long)released,
              (long long)evict_seen);
  EXPECT_GT(hits, 500);
  EXPECT_GT(acquired, 2000);
  EXPECT_GT(oom, 100);
  EXPECT_GT(released, 1000);
  EXPECT_GT(evict_seen, 100);
}

}  // namespace
}  // namespace ds
