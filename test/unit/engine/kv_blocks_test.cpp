// KVBlockManager tests: growth, all-or-nothing exhaustion, lowest-id reuse, and a seeded
// property test against a set-based model of the pool.
#include "engine/kv_blocks.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

namespace ds {
namespace {

using Table = std::vector<int32_t>;

TEST(KVBlocksTest, ReserveGrowsByWholeBlocks) {
  KVBlockManager kv(10, 16);
  ASSERT_TRUE(kv.checkInvariants().isOk());
  const int64_t a = kv.addSequence(), b = kv.addSequence();
  EXPECT_NE(a, b);
  EXPECT_TRUE(kv.reserve(a, 0).isOk());
  EXPECT_EQ(kv.blockTable(a), Table{});
  EXPECT_TRUE(kv.reserve(a, 1).isOk());
  EXPECT_EQ(kv.blockTable(a), Table{0});
  EXPECT_TRUE(kv.reserve(a, 16).isOk());
  EXPECT_EQ(kv.blockTable(a), Table{0});
  EXPECT_TRUE(kv.reserve(a, 17).isOk());
  EXPECT_EQ(kv.blockTable(a), (Table{0, 1}));
  EXPECT_EQ(kv.capacityTokens(a), 32);
  EXPECT_TRUE(kv.reserve(a, 5).isOk());  // never shrinks
  EXPECT_EQ(kv.capacityTokens(a), 32);
  EXPECT_EQ(kv.reservedTokens(a), 17);
  EXPECT_TRUE(kv.reserve(b, 40).isOk());
  EXPECT_EQ(kv.blockTable(b), (Table{2, 3, 4}));
  EXPECT_EQ(kv.freeBlocks(), 5);
  EXPECT_TRUE(kv.checkInvariants().isOk());
  kv.release(a);
  EXPECT_FALSE(kv.hasSequence(a));
  EXPECT_EQ(kv.freeBlocks(), 7);
  EXPECT_EQ(kv.capacityTokens(a), 0);
  EXPECT_TRUE(kv.checkInvariants().isOk());
}

TEST(KVBlocksTest, ExhaustionIsAllOrNothing) {
  KVBlockManager kv(8, 4);
  const int64_t a = kv.addSequence(), b = kv.addSequence();
  ASSERT_TRUE(kv.reserve(a, 20).isOk());  // 5 blocks
  ASSERT_TRUE(kv.reserve(b, 4).isOk());   // 1 block, 2 left
  EXPECT_TRUE(kv.canReserve(b, 12));
  EXPECT_FALSE(kv.canReserve(b, 13));
  const Status st = kv.reserve(b, 13);
  EXPECT_EQ(st.code(), DS_OUT_OF_MEMORY);
  EXPECT_NE(st.message().find("sequence " + std::to_string(b)), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("3 more blocks"), std::string::npos) << st.message();
  EXPECT_EQ(kv.blockTable(b), Table{5});
  EXPECT_EQ(kv.freeBlocks(), 2);
  EXPECT_EQ(kv.reservedTokens(b), 4);
  EXPECT_TRUE(kv.checkInvariants().isOk());
  EXPECT_TRUE(kv.reserve(b, 12).isOk());
  EXPECT_EQ(kv.blockTable(b), (Table{5, 6, 7}));
  EXPECT_EQ(kv.freeBlocks(), 0);
  EXPECT_FALSE(kv.canReserve(a, 21));
  EXPECT_TRUE(kv.canReserve(a, 20));
  EXPECT_EQ(kv.reserve(a, 21).code(), DS_OUT_OF_MEMORY);
}

TEST(KVBlocksTest, ReleasedBlocksAreReusedLowestFirst) {
  KVBlockManager kv(6, 1);
  const int64_t a = kv.addSequence(), b = kv.addSequence(), c = kv.addSequence();
  ASSERT_TRUE(kv.reserve(a, 2).isOk());  // 0 1
  ASSERT_TRUE(kv.reserve(b, 2).isOk());  // 2 3
  ASSERT_TRUE(kv.reserve(c, 1).isOk());  // 4
  kv.release(c);
  kv.release(a);
  const int64_t d = kv.addSequence();
  ASSERT_TRUE(kv.reserve(d, 3).isOk());
  EXPECT_EQ(kv.blockTable(d), (Table{0, 1, 4}));
  ASSERT_TRUE(kv.reserve(b, 3).isOk());
  EXPECT_EQ(kv.blockTable(b), (Table{2, 3, 5}));
  EXPECT_TRUE(kv.checkInvariants().isOk());
}

TEST(KVBlocksTest, SequenceIdsAndBadArguments) {
  KVBlockManager kv(4, 8);
  EXPECT_TRUE(kv.addSequence(1).isOk());
  EXPECT_EQ(kv.addSequence(1).code(), DS_FAILED_PRECONDITION);
  EXPECT_EQ(kv.addSequence(-3).code(), DS_INVALID_ARGUMENT);
  EXPECT_EQ(kv.addSequence(), 0);
  EXPECT_EQ(kv.addSequence(), 2);  // 1 is taken by the caller
  EXPECT_EQ(kv.reserve(77, 1).code(), DS_NOT_FOUND);
  EXPECT_FALSE(kv.canReserve(77, 1));
  EXPECT_EQ(kv.reserve(0, -1).code(), DS_INVALID_ARGUMENT);
  EXPECT_FALSE(kv.canReserve(0, -1));
  EXPECT_TRUE(kv.blockTable(77).empty());
  kv.release(77);  // no-op
  EXPECT_EQ(kv.numSequences(), 3);

  const auto bad_blocks = KVBlockManager::create(-1, 16);
  EXPECT_EQ(bad_blocks.status().code(), DS_INVALID_ARGUMENT);
  EXPECT_NE(bad_blocks.status().message().find("num_blocks"), std::string::npos);
  const auto bad_size = KVBlockManager::create(4, 0);
  EXPECT_NE(bad_size.status().message().find("block_size"), std::string::npos);
  KVBlockManager broken(4, 0);
  const int64_t s = broken.addSequence();
  EXPECT_EQ(broken.reserve(s, 1).code(), DS_INVALID_ARGUMENT);
  EXPECT_TRUE(broken.checkInvariants().isOk());
  auto ok = KVBlockManager::create(3, 2);
  ASSERT_TRUE(ok.isOk());
  EXPECT_EQ(ok->numBlocks(), 3);
  EXPECT_EQ(ok->blockSize(), 2);
}

TEST(KVBlocksTest, BlocksForMemory) {
  EXPECT_EQ(KVBlockManager::blocksForMemory(1000, 100), 10);
  EXPECT_EQ(KVBlockManager::blocksForMemory(999, 100), 9);
  EXPECT_EQ(KVBlockManager::blocksForMemory(99, 100), 0);
  EXPECT_EQ(KVBlockManager::blocksForMemory(1000, 0), 0);
  EXPECT_EQ(KVBlockManager::blocksForMemory(~0ull, 1), 2147483647);
  // 70 GiB of DeepSeek-V3 MLA cache: 61 layers * 64 tokens * 576 bf16 values per block.
  const uint64_t per_block = 61ull * 64 * 576 * 2;
  EXPECT_EQ(KVBlockManager::blocksForMemory(70ull << 30, per_block), (70ull << 30) / per_block);
}

// Random add / reserve / release against a model that keeps the free pool as a std::set
// and allocates with *set.begin(); tables must match exactly after every step.
TEST(KVBlocksTest, RandomOperationsKeepInvariants) {
  constexpr int64_t kBlocks = 64, kBlockSize = 16;
  KVBlockManager kv(kBlocks, kBlockSize);
  std::set<int32_t> model_free;
  for (int32_t i = 0; i < kBlocks; ++i) model_free.insert(i);
  std::map<int64_t, Table> model;
  std::mt19937_64 rng(20261125);
  int reserved_ok = 0, reserved_oom = 0, released = 0;

  for (int step = 0; step < 20000; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const int op = static_cast<int>(rng() % 10);
    if (op < 2 || model.empty()) {
      const int64_t id = kv.addSequence();
      ASSERT_EQ(model.count(id), 0u);
      model[id] = {};
    } else {
      auto it = model.begin();
      std::advance(it, static_cast<long>(rng() % model.size()));
      const int64_t seq = it->first;
      if (op < 8) {
        const int64_t tokens = static_cast<int64_t>(rng() % (kBlockSize * 24));
        const int64_t need = (tokens + kBlockSize - 1) / kBlockSize - static_cast<int64_t>(it->second.size());
        const bool fits = need <= static_cast<int64_t>(model_free.size());
        ASSERT_EQ(kv.canReserve(seq, tokens), fits);
        const Status st = kv.reserve(seq, tokens);
        ASSERT_EQ(st.isOk(), fits) << st.toString();
        if (fits) {
          ++reserved_ok;
          for (int64_t j = 0; j < need; ++j) {
            it->second.push_back(*model_free.begin());
            model_free.erase(model_free.begin());
          }
        } else {
          ++reserved_oom;
          ASSERT_EQ(st.code(), DS_OUT_OF_MEMORY);
        }
      } else {
        kv.release(seq);
        for (int32_t b : it->second) model_free.insert(b);
        model.erase(it);
        ++released;
      }
    }
    ASSERT_TRUE(kv.checkInvariants().isOk()) << kv.checkInvariants().toString();
    ASSERT_EQ(kv.freeBlocks(), static_cast<int64_t>(model_free.size()));
    ASSERT_EQ(kv.numSequences(), static_cast<int64_t>(model.size()));
    for (const auto& [seq, table] : model) ASSERT_EQ(kv.blockTable(seq), table) << "seq " << seq;
  }
  // The walk must have visited every branch, including exhaustion.
  EXPECT_GT(reserved_ok, 1000);
  EXPECT_GT(reserved_oom, 100);
  EXPECT_GT(released, 1000);
}

}  // namespace
}  // namespace ds
